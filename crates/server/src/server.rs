//! Starting the HTTP server: data folder, database, migrations, listener, TLS and graceful
//! shutdown.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use stillpoint_app::SystemClock;
use stillpoint_app::secrets::SecretSealer;
use stillpoint_storage::Database;
use stillpoint_web::i18n::Catalogs;
use stillpoint_web::{AppState, WebConfig};

use crate::settings::Settings;

/// Creates the data folder if needed, checks that files can be written in it, and returns its
/// absolute path (a relative one depends on the working directory, which differs under a service
/// manager).
pub fn prepare_data_dir(folder: &Path) -> anyhow::Result<PathBuf> {
    let fix = "choose another folder with --data-dir or give the server's user write permission";
    // The folder contains health information, so only the server's user may open it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .map_err(|error| {
            anyhow!(
                "data folder {} cannot be created: {error}; {fix}",
                folder.display()
            )
        })?;
    let probe = folder.join(".stillpoint-write-check");
    std::fs::write(&probe, b"ok").map_err(|error| {
        anyhow!(
            "data folder {} is not writable: {error}; {fix}",
            folder.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    folder.canonicalize().map_err(|error| {
        anyhow!(
            "data folder {} cannot be resolved: {error}; {fix}",
            folder.display()
        )
    })
}

/// Connects to the database and applies pending migrations, refusing a newer schema.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    let database = Database::connect(&settings.database).await?;
    let applied = database.migrate().await?;
    for (pragma, value) in database.sqlite_durability().await? {
        tracing::info!(pragma, value, "sqlite connection setting");
    }
    tracing::info!(
        dialect = %database.dialect(),
        location = %settings.database.display_location(),
        migrations_applied = applied.len(),
        "database ready"
    );
    Ok(database)
}

/// Builds the application and starts its background work (the job worker and the reminder
/// planner); `demo_hints` shows demo aids such as the current one-time code.
pub fn build_app(
    settings: &Settings,
    database: Database,
    demo_hints: bool,
) -> anyhow::Result<Router> {
    let catalogs = Catalogs::load(settings.locales_dir.as_deref())?;
    let config = WebConfig {
        clinic_name: settings.clinic_name.clone(),
        secure_cookies: settings.secure_cookies,
        hsts: settings.tls.is_some(),
        session_policy: settings.session_policy,
        request_timeout: settings.request_timeout,
        trusted_proxies: settings.trusted_proxies.clone(),
        secrets: load_secrets_key(settings)?,
        demo_hints,
        max_upload_bytes: settings.max_upload_bytes,
        public_url: settings
            .public_url
            .clone()
            .unwrap_or_else(|| public_url(settings.listen, settings.tls.is_some())),
        ..WebConfig::default()
    };
    let consents = stillpoint_web::consent_files::load(settings.consent_dir.as_deref())?;
    let store: Arc<dyn stillpoint_app::Store> = Arc::new(database);
    let mut state = AppState::new(store.clone(), Arc::new(SystemClock), catalogs, config)
        .with_consents(consents);
    if let Some(path) = &settings.practice_rules {
        state = state.with_practice_rules(load_practice_rules(path)?);
    }
    state = state.with_live(live_state(settings)?);
    let notifier = crate::jobs::start(settings, store)?;
    let _ = state.notifier.set(notifier);
    Ok(stillpoint_web::router(state))
}

/// Reads the secrets key, creating it (readable by the owner only) on first start.
pub fn load_secrets_key(settings: &Settings) -> anyhow::Result<SecretSealer> {
    let path = settings
        .secrets_key_path
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("secrets.key"));
    if !path.exists() {
        crate::audit_trail::write_private(&path, &SecretSealer::new_key_text())
            .with_context(|| format!("cannot create the secrets key {}", path.display()))?;
        tracing::info!(path = %path.display(), "secrets key created");
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the secrets key {}", path.display()))?;
    SecretSealer::from_key_text(&text)
        .with_context(|| format!("the secrets key {} is not usable", path.display()))
}

/// Binds the listening socket, turning "address in use" into a message with the fix.
pub fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(address).map_err(|error| {
        let fix = match error.kind() {
            std::io::ErrorKind::AddrInUse => "another process is using it; stop that process or choose another port with --listen",
            std::io::ErrorKind::PermissionDenied => "ports below 1024 need privileges; choose a port above 1024 with --listen",
            std::io::ErrorKind::AddrNotAvailable => "this machine has no such address; use 127.0.0.1 or 0.0.0.0 with --listen",
            _ => "choose another address with --listen",
        };
        anyhow!("cannot listen on {address}: {error}; {fix}")
    })?;
    listener
        .set_nonblocking(true)
        .context("cannot configure the listening socket")?;
    Ok(listener)
}

/// Serves `app` on `listener` until SIGTERM or SIGINT, then lets requests in flight finish
/// (up to the grace period) before returning.
pub async fn serve(listener: TcpListener, app: Router, settings: &Settings) -> anyhow::Result<()> {
    let handle: Handle<SocketAddr> = Handle::new();
    let grace = settings.shutdown_grace;
    let signal_handle = handle.clone();
    tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutdown requested; finishing requests in flight"
        );
        signal_handle.graceful_shutdown(Some(grace));
    });

    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    match &settings.tls {
        Some(tls) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = RustlsConfig::from_pem_file(&tls.cert_path, &tls.key_path)
                .await
                .map_err(|error| {
                    anyhow!(
                        "cannot load the TLS certificate {} or key {}: {error}; check that both are PEM files that belong together",
                        tls.cert_path.display(),
                        tls.key_path.display()
                    )
                })?;
            axum_server::from_tcp_rustls(listener, config)
                .context("cannot start the TLS listener")?
                .handle(handle)
                .serve(service)
                .await
                .context("the HTTPS server failed")?;
        }
        None => {
            axum_server::from_tcp(listener)
                .context("cannot start the listener")?
                .handle(handle)
                .serve(service)
                .await
                .context("the HTTP server failed")?;
        }
    }
    Ok(())
}

async fn wait_for_shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The URL people open, for a listening address.
#[must_use]
pub fn public_url(address: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = if address.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        address.ip().to_string()
    };
    let host = if address.is_ipv6() && !address.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    format!("{scheme}://{host}:{}/", address.port())
}

/// Reads a clinic's tailoring and check-in rules.
fn load_practice_rules(
    path: &std::path::Path,
) -> anyhow::Result<stillpoint_domain::practice::tailoring::TailoringRules> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the practice rules file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "the practice rules file {} is invalid; compare it with content/practice/tailoring.toml",
            path.display()
        )
    })
}

/// Starts the embedded SFU and gathers the live session settings of `[video]`.
fn live_state(settings: &Settings) -> anyhow::Result<stillpoint_web::live::LiveState> {
    use stillpoint_web::live::{LiveKitSettings, LiveState};

    let video = &settings.video;
    let udp_address: SocketAddr = match &video.udp_address {
        Some(text) => text.parse().with_context(|| {
            format!("video.udp_address '{text}' is not an address such as 0.0.0.0:3478")
        })?,
        None => SocketAddr::new(settings.listen.ip(), 0),
    };
    let public_ip = video
        .public_ip
        .as_deref()
        .map(|text| {
            text.parse::<std::net::IpAddr>()
                .with_context(|| format!("video.public_ip '{text}' is not an IP address"))
        })
        .transpose()?;
    let window = stillpoint_domain::live::JoinWindow::from_minutes(
        video.join_before_minutes.unwrap_or(15),
        video.join_after_minutes.unwrap_or(30),
    )
    .map_err(|invalid| anyhow!("video.{invalid}"))?;
    let sfu = if udp_address.ip().is_unspecified() && public_ip.is_none() {
        // Browsers cannot connect to 0.0.0.0, so rooms keep their lobby, controls and
        // chat but carry no media until an administrator sets video.public_ip.
        tracing::warn!(%udp_address, "embedded video is off: set video.public_ip to the address browsers reach");
        None
    } else {
        Some(
            stillpoint_video::Sfu::start(udp_address, public_ip).with_context(|| {
                format!("the embedded video server cannot use UDP {udp_address}")
            })?,
        )
    };

    let secrets = &settings.video_secrets;
    let livekit = match (
        &video.livekit_url,
        &video.livekit_api_key,
        &secrets.livekit_api_secret,
    ) {
        (Some(url), Some(api_key), Some(api_secret)) => {
            let keys = stillpoint_video::livekit::LiveKitKeys {
                api_key: api_key.clone(),
                api_secret: api_secret.clone(),
            };
            let rooms = stillpoint_video::livekit::LiveKitRooms::new(
                url,
                keys.clone(),
                stillpoint_video::livekit::RoomLimits::default(),
            )
            .map_err(|problem| anyhow!(problem))?;
            Some(LiveKitSettings::new(url.clone(), keys, Arc::new(rooms)))
        }
        (None, None, None) => None,
        _ => {
            return Err(anyhow!(
                "video.livekit_url, video.livekit_api_key and the API secret (video.livekit_api_secret_file or STILLPOINT_LIVEKIT_API_SECRET) go together; set all three or none"
            ));
        }
    };
    let ice_servers = if video.stun_urls.is_empty() {
        Vec::new()
    } else {
        vec![stillpoint_video::ice::IceServer {
            urls: video.stun_urls.clone(),
            username: None,
            credential: None,
        }]
    };
    Ok(LiveState {
        hub: Arc::new(stillpoint_video::Hub::new(sfu)),
        window,
        ice_servers,
        turn_urls: video.turn_urls.clone(),
        turn_secret: secrets.turn_secret.clone(),
        livekit,
        access_recheck: stillpoint_web::live::ACCESS_RECHECK,
    })
}
