//! The `serve` and `migrate` commands.

use std::sync::Arc;

use stillpoint_storage::{Database, DatabaseUrl};

use crate::audit_trail::{self, CheckpointFiles};

use crate::server;
use crate::settings::Settings;

/// Resolves the data folder to an absolute path (creating it) and points a SQLite database at it.
/// With PostgreSQL the folder still holds the audit checkpoint and its key.
pub fn prepare_storage(settings: &mut Settings) -> anyhow::Result<()> {
    // Only the default database follows the data folder to its resolved path; a SQLite URL given
    // explicitly, for example on an encrypted volume, is kept.
    let default_database = DatabaseUrl::sqlite_in(&settings.data_dir);
    settings.data_dir = server::prepare_data_dir(&settings.data_dir)?;
    if settings.database == default_database {
        settings.database = DatabaseUrl::sqlite_in(&settings.data_dir);
    }
    Ok(())
}

/// Runs the server until SIGTERM or SIGINT. The port is bound before the database is opened, so
/// a port in use stops the start before anything is written.
pub async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    let listener = server::bind(settings.listen)?;
    prepare_storage(&mut settings)?;
    let database = server::open_database(&settings).await?;
    crate::programs::install_curricula(&database).await?;
    let app = server::build_app(&settings, database.clone(), false)?;
    crate::programs::spawn_lapse_checker(Arc::new(database.clone()), settings.lapse_days);
    crate::programs::spawn_alert_escalation(Arc::new(database.clone()));
    let checkpoints = CheckpointFiles::new(&settings.data_dir, settings.audit_key_path.as_deref());
    let audit_key = checkpoints.key()?;
    audit_trail::spawn_checkpointer(
        Arc::new(database.clone()),
        checkpoints.clone(),
        audit_key.clone(),
    );

    let url = server::public_url(settings.listen, settings.tls.is_some());
    if !settings.secure_cookies && !settings.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %settings.listen,
            "cookies are not marked Secure although the server accepts remote connections; \
             set [tls] or, behind an HTTPS proxy, http.secure_cookies = true"
        );
    }
    tracing::info!(%url, data_dir = %settings.data_dir.display(), version = env!("CARGO_PKG_VERSION"), "stillpoint started");
    println!("Stillpoint is listening on {url}");
    server::serve(listener, app, &settings).await?;

    if let Err(error) = checkpoints.advance(&database, &audit_key).await {
        tracing::warn!(
            error = format!("{error:#}"),
            "final audit checkpoint could not be written"
        );
    }
    database.close().await;
    tracing::info!("stillpoint stopped");
    Ok(())
}

/// Applies pending migrations and reports what was done.
pub async fn migrate(mut settings: Settings) -> anyhow::Result<()> {
    prepare_storage(&mut settings)?;
    let database = Database::connect(&settings.database).await?;
    let applied = database.migrate().await?;
    database.close().await;

    if applied.is_empty() {
        println!(
            "The database at {} is up to date.",
            settings.database.display_location()
        );
    } else {
        println!(
            "Applied {} migration(s) to {}: {applied:?}",
            applied.len(),
            settings.database.display_location()
        );
    }
    Ok(())
}
