//! The background work every server runs: the job worker, which steps through due jobs and
//! sleeps a second when none is due, and the reminder planner, which queues the reminders due
//! in the next hours every minute.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stillpoint_app::measures::MeasureLibrary;
use stillpoint_app::notify::{Mailer, Notifier, SmsSender};
use stillpoint_app::{Store, SystemClock, reminders};
use stillpoint_domain::jobs::RetryPolicy;
use stillpoint_notify::{CatalogComposer, HttpSmsSender, SmtpMailer};

use crate::settings::Settings;

/// The pause when no job is due, and after a database error.
const IDLE_PAUSE: Duration = Duration::from_secs(1);

/// How often the reminder planner runs.
const PLANNING_INTERVAL: Duration = Duration::from_mins(1);

/// Builds what the notification jobs need from the settings: the SMTP and SMS channels when
/// they are set up, and the catalogues for the message text.
pub fn notifier(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Arc<Notifier>> {
    let catalogs = stillpoint_i18n::Catalogs::load(settings.locales_dir.as_deref())?;
    let mailer: Option<Arc<dyn Mailer>> = if let Some(smtp) = &settings.smtp {
        Some(Arc::new(SmtpMailer::new(smtp)?))
    } else {
        tracing::warn!("no [smtp] settings: e-mail reminders are off; in-app notices still work");
        None
    };
    let sms: Option<Arc<dyn SmsSender>> = match &settings.sms {
        Some(sms) => Some(Arc::new(
            HttpSmsSender::new(sms.clone()).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| crate::server::public_url(settings.listen, settings.tls.is_some()));
    Ok(Arc::new(Notifier {
        store,
        clock: Arc::new(SystemClock),
        composer: Arc::new(CatalogComposer::new(
            Arc::new(catalogs),
            settings.clinic_name.clone(),
        )),
        mailer,
        sms,
        measures: Arc::new(
            stillpoint_web::measure_files::load().context("the shipped instruments are invalid")?,
        ),
        sealer: Arc::new(crate::server::load_secrets_key(settings)?),
        public_url: public_url.trim_end_matches('/').to_owned(),
    }))
}

/// Starts one of this server's workers. Its name in leases combines the process id with a
/// random part, so two servers on one host never share it.
pub fn spawn_job_worker(notifier: &Arc<Notifier>, lease: jiff::SignedDuration) {
    let token = stillpoint_app::random::new_token();
    let name = format!("{}-{}", std::process::id(), &token[..8]);
    // A job of a kind without a handler fails for good and waits in the dead-letter list.
    let worker =
        stillpoint_app::notify::worker(name.clone(), notifier, RetryPolicy::default(), lease);
    let store = notifier.store.clone();
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

/// Plans reminders now and then every minute. Several servers may all run it: a reminder
/// planned by one is a duplicate key to the others.
pub fn spawn_reminder_planner(store: Arc<dyn Store>, measures: Arc<MeasureLibrary>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PLANNING_INTERVAL);
        tracing::info!("reminder planner started");
        loop {
            ticker.tick().await;
            if let Err(error) = reminders::plan(
                store.as_ref(),
                &SystemClock,
                &measures,
                reminders::PLANNING_HORIZON,
            )
            .await
            {
                tracing::error!(error = %error, "reminder planning failed; retrying in a minute");
            }
        }
    });
}

/// Starts the workers and the planner.
pub fn start(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Arc<Notifier>> {
    let notifier = notifier(settings, store.clone())?;
    for _ in 0..settings.job_workers {
        spawn_job_worker(&notifier, settings.job_lease);
    }
    spawn_reminder_planner(store, notifier.measures.clone());
    Ok(notifier)
}
