//! `stillpoint demo`: the server on a seeded, synthetic demo clinic.

use anyhow::Context as _;
use stillpoint_app::Clock as _;
use stillpoint_app::demo::{self, DEMO_PASSWORD};
use stillpoint_app::ports::AccountStore as _;
use stillpoint_storage::DatabaseUrl;

use std::sync::Arc;

use crate::audit_trail::{self, CheckpointFiles};
use crate::server;
use crate::settings::Settings;

/// The seed of the demo generator: every demo clinic is the same.
const DEMO_SEED: u64 = 2026;

/// The file in the data folder that records a completed demo seed.
const SEEDED_MARKER: &str = "demo-seeded";

/// How long before a session its room opens in the demo: a week, so the next class is open.
const DEMO_JOIN_BEFORE_MINUTES: u32 = 7 * 24 * 60;

/// Runs the demo. Without `--data-dir` the database lives in a temporary folder that is deleted
/// when the demo stops; with it, an existing demo database is reused instead of seeded again.
pub async fn run(mut settings: Settings, data_dir_given: bool) -> anyhow::Result<()> {
    let temporary = if data_dir_given {
        None
    } else {
        let folder = tempfile::Builder::new()
            .prefix("stillpoint-demo-")
            .tempdir()
            .context("cannot create a temporary data folder; give one with --data-dir")?;
        settings.data_dir = folder.path().to_path_buf();
        Some(folder)
    };
    "Riverbend Health".clone_into(&mut settings.clinic_name);
    // The demo's running cohort meets on Tuesday evenings, so its session rooms open a week
    // ahead here, letting anyone try the room on any day.
    settings
        .video
        .join_before_minutes
        .get_or_insert(DEMO_JOIN_BEFORE_MINUTES);

    let listener = server::bind(settings.listen)?;
    settings.data_dir = server::prepare_data_dir(&settings.data_dir)?;
    settings.database = DatabaseUrl::sqlite_in(&settings.data_dir);
    let database = server::open_database(&settings).await?;
    let curricula = crate::programs::install_curricula(&database).await?;
    let clinic = demo::generate(
        DEMO_SEED,
        stillpoint_app::SystemClock
            .now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date(),
    );
    // The marker file is written only after seeding succeeded, so an interrupted seed is
    // recognised instead of being mistaken for a finished demo clinic.
    let marker = settings.data_dir.join(SEEDED_MARKER);
    let accounts = database.count_accounts().await?;
    if accounts == 0 {
        let sealer = server::load_secrets_key(&settings)?;
        let consents = stillpoint_web::consent_files::load(settings.consent_dir.as_deref())?;
        demo::seed(
            &database,
            &sealer,
            &consents,
            &curricula,
            &stillpoint_web::measure_files::load()?,
            &clinic,
            stillpoint_app::SystemClock.now(),
        )
        .await?;
        stillpoint_app::library::add_bundled(
            &database,
            &stillpoint_app::SystemClock,
            &stillpoint_web::recording_files::load()?,
        )
        .await?;
        std::fs::write(&marker, b"seeded\n")
            .context("cannot record that the demo clinic was seeded")?;
    } else if marker.exists() {
        tracing::info!("the data folder already holds the demo clinic; starting without seeding");
    } else {
        anyhow::bail!(
            "the data folder {} holds a database that is not a complete demo clinic; \
             give an empty or new folder with --data-dir, or omit --data-dir",
            settings.data_dir.display()
        );
    }

    let app = server::build_app(&settings, database.clone(), true)?;
    crate::programs::spawn_lapse_checker(Arc::new(database.clone()), settings.lapse_days);
    crate::programs::spawn_alert_escalation(Arc::new(database.clone()));
    let checkpoints = CheckpointFiles::new(&settings.data_dir, None);
    let audit_key = checkpoints.key()?;
    audit_trail::spawn_checkpointer(Arc::new(database.clone()), checkpoints, audit_key);
    print_banner(&settings, &clinic, temporary.is_some());

    server::serve(listener, app, &settings).await?;
    database.close().await;
    if let Some(folder) = temporary {
        let path = folder.path().display().to_string();
        folder
            .close()
            .context("cannot delete the temporary data folder")?;
        tracing::info!(
            data_dir = path,
            "demo stopped; temporary data folder deleted"
        );
    } else {
        tracing::info!("demo stopped");
    }
    Ok(())
}

fn print_banner(settings: &Settings, clinic: &demo::DemoClinic, temporary: bool) {
    let url = server::public_url(settings.listen, settings.tls.is_some());
    println!();
    println!("Stillpoint demo clinic: {url}");
    println!(
        "Data folder: {}{}",
        settings.data_dir.display(),
        if temporary {
            " (deleted when the demo stops)"
        } else {
            ""
        }
    );
    println!();
    println!(
        "Sign in with one of these synthetic accounts. The password of every account is: {DEMO_PASSWORD}"
    );
    for login in &clinic.logins {
        println!(
            "  {:<22} {}",
            login.role.code().replace('_', " "),
            login.email
        );
    }
    println!(
        "The South site's staff sign in the same way: clinician.south and facilitator.south (at demo-clinic.example)."
    );
    println!();
    println!(
        "Staff accounts then ask for a one-time code from an authenticator app; in this demo the"
    );
    println!("page that asks shows the current code.");
    println!();
    println!(
        "Session rooms open up to a week before each session in this demo (usually 15 minutes), so the"
    );
    println!(
        "running cohort's next class can be joined from \"My program\" or its session page now."
    );
    println!();
    println!("Press Ctrl+C to stop.");
}
