//! Program upkeep when the server starts and while it runs: storing the shipped curricula and
//! checking hourly for patients who have stopped coming, and escalating safety alerts nobody
//! acknowledged in time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stillpoint_app::{Store, SystemClock, curricula, program};
use stillpoint_domain::curriculum::Curriculum;

/// How often the lapse check runs.
const LAPSE_CHECK_INTERVAL: Duration = Duration::from_hours(1);

/// Stores the shipped curriculum versions the database lacks and returns every shipped one.
pub async fn install_curricula(store: &dyn Store) -> anyhow::Result<Vec<Curriculum>> {
    let bundled =
        stillpoint_web::curriculum_files::load().context("the shipped curricula are invalid")?;
    curricula::install_bundled(store, &SystemClock, &bundled)
        .await
        .context("cannot store the shipped curricula")?;
    Ok(bundled)
}

/// Marks quiet patients as lapsed now and then every hour. Several servers sharing a database
/// may all run it: a patient moved by one is skipped by the others.
pub fn spawn_lapse_checker(store: Arc<dyn Store>, lapse_days: u16) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(LAPSE_CHECK_INTERVAL);
        loop {
            ticker.tick().await;
            if let Err(error) = program::mark_lapses(store.as_ref(), &SystemClock, lapse_days).await
            {
                tracing::warn!(error = %error, "lapse check failed; retrying in an hour");
            }
        }
    });
}

/// How often unacknowledged safety alerts are checked against their deadlines. The deadline
/// is 15 minutes by default, so an alert escalates at most this long after its deadline.
const ESCALATION_INTERVAL: Duration = Duration::from_secs(30);

/// Escalates safety alerts nobody acknowledged in time, every 30 seconds. Several servers may
/// all run it: an alert escalated by one is skipped by the others.
pub fn spawn_alert_escalation(store: Arc<dyn Store>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(ESCALATION_INTERVAL);
        tracing::info!("safety alert escalation started");
        loop {
            ticker.tick().await;
            if let Err(error) =
                stillpoint_app::safety::escalate_overdue(store.as_ref(), &SystemClock).await
            {
                tracing::error!(error = %error, "safety alert escalation check failed; retrying in 30 seconds");
            }
        }
    });
}
