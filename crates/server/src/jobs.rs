//! The job worker every server runs: it steps through due jobs, and sleeps a second when none
//! is due.

use std::sync::Arc;
use std::time::Duration;

use stillpoint_app::jobs::{DEFAULT_LEASE, Worker};
use stillpoint_app::{Store, SystemClock};
use stillpoint_domain::jobs::RetryPolicy;

/// The pause when no job is due, and after a database error.
const IDLE_PAUSE: Duration = Duration::from_secs(1);

/// Starts this server's worker. Its name in leases combines the process id with a random
/// part, so two servers on one host never share it.
pub fn spawn_job_worker(store: Arc<dyn Store>) {
    let token = stillpoint_app::random::new_token();
    let name = format!("{}-{}", std::process::id(), &token[..8]);
    // A job of a kind without a handler fails for good and waits in the dead-letter list.
    let worker = Worker::new(name.clone(), RetryPolicy::default(), DEFAULT_LEASE).with_handler(
        stillpoint_app::notifications::ALERT_ESCALATED,
        Arc::new(stillpoint_app::notifications::EscalationNotifier {
            store: store.clone(),
        }),
    );
    tokio::spawn(async move {
        tracing::info!(worker = %name, "job worker started");
        loop {
            let jitter = stillpoint_app::random::unit_interval();
            match worker.step(store.as_ref(), &SystemClock, jitter).await {
                Ok(Some(_)) => {}
                Ok(None) => tokio::time::sleep(IDLE_PAUSE).await,
                Err(error) => {
                    tracing::error!(worker = %name, error = %error, "job worker step failed; retrying in a second");
                    tokio::time::sleep(IDLE_PAUSE).await;
                }
            }
        }
    });
}
