//! Program upkeep when the server starts and while it runs: storing the shipped curricula and
//! checking hourly for patients who have stopped coming.

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
