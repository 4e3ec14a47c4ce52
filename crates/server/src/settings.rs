//! Settings: built-in defaults, then an optional TOML file, then `STILLPOINT_*` environment
//! variables, then command-line flags (each later source wins). Validated once at start; every
//! error names the setting and the fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::SignedDuration;
use serde::Deserialize;
use stillpoint_app::auth::SessionPolicy;
use stillpoint_notify::{SmsSettings, SmtpSecurity, SmtpSettings};
use stillpoint_storage::DatabaseUrl;

/// A setting that is missing, malformed or unusable.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct SettingsError {
    pub setting: String,
    pub problem: String,
}

fn invalid(setting: &str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        setting: setting.to_owned(),
        problem: problem.into(),
    }
}

/// The settings file, every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub clinic_name: Option<String>,
    pub locales_dir: Option<PathBuf>,
    pub consent_dir: Option<PathBuf>,
    #[serde(default)]
    pub log: LogFileSettings,
    #[serde(default)]
    pub tls: TlsFileSettings,
    #[serde(default)]
    pub http: HttpFileSettings,
    #[serde(default)]
    pub sessions: SessionFileSettings,
    #[serde(default)]
    pub audit: AuditFileSettings,
    #[serde(default)]
    pub secrets: SecretsFileSettings,
    #[serde(default)]
    pub programs: ProgramsFileSettings,
    #[serde(default)]
    pub jobs: JobsFileSettings,
    #[serde(default)]
    pub practice: PracticeFileSettings,
    #[serde(default)]
    pub video: VideoFileSettings,
    pub smtp: Option<SmtpFileSettings>,
    pub sms: Option<SmsFileSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsFileSettings {
    pub lease_seconds: Option<u64>,
    pub workers: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpFileSettings {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsFileSettings {
    pub base_url: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub from: Option<String>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramsFileSettings {
    pub lapse_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeFileSettings {
    pub max_upload_megabytes: Option<u64>,
    pub rules_file: Option<PathBuf>,
}

/// The `[video]` table: the embedded SFU's UDP address, the join window, ICE servers and LiveKit.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoFileSettings {
    pub udp_address: Option<String>,
    pub public_ip: Option<String>,
    pub join_before_minutes: Option<u32>,
    pub join_after_minutes: Option<u32>,
    #[serde(default)]
    pub stun_urls: Vec<String>,
    #[serde(default)]
    pub turn_urls: Vec<String>,
    pub turn_secret_file: Option<PathBuf>,
    pub livekit_url: Option<String>,
    pub livekit_api_key: Option<String>,
    pub livekit_api_secret_file: Option<PathBuf>,
}

/// The secrets of `[video]`, read from files or the environment, never from the settings file.
#[derive(Default, Clone)]
pub struct VideoSecrets {
    pub turn_secret: Option<String>,
    pub livekit_api_secret: Option<String>,
}

impl std::fmt::Debug for VideoSecrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VideoSecrets")
            .field(
                "turn_secret",
                &self.turn_secret.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "livekit_api_secret",
                &self.livekit_api_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFileSettings {
    pub key_path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFileSettings {
    pub key_path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFileSettings {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFileSettings {
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFileSettings {
    pub request_timeout_seconds: Option<u64>,
    pub shutdown_grace_seconds: Option<u64>,
    pub secure_cookies: Option<bool>,
    pub trusted_proxies: Option<Vec<String>>,
    pub public_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFileSettings {
    pub staff_idle_minutes: Option<u32>,
    pub patient_idle_minutes: Option<u32>,
    pub absolute_hours: Option<u32>,
    pub staff_two_step_verification: Option<bool>,
}

/// Values given on the command line or in the environment (clap reads both).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub clinic_name: String,
    pub locales_dir: Option<PathBuf>,
    /// A folder of consent documents that replace or add to the bundled ones.
    pub consent_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    /// A `tracing` filter directive such as `info` or `stillpoint=debug,info`.
    pub log_level: String,
    pub tls: Option<TlsSettings>,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub secure_cookies: bool,
    pub session_policy: SessionPolicy,
    /// The key that signs audit checkpoints; `None` for `audit-checkpoint.key` in the data folder.
    pub audit_key_path: Option<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The key that seals secrets in the database; `None` for `secrets.key` in the data folder.
    pub secrets_key_path: Option<PathBuf>,
    /// The address people reach the server at; `None` for the listen address.
    pub public_url: Option<String>,
    /// Days without an attended session after which an active patient counts as lapsed.
    pub lapse_days: u16,
    /// The largest recording the practice library accepts, in bytes.
    pub max_upload_bytes: usize,
    /// The clinic's own tailoring and check-in rules; `None` for the bundled ones.
    pub practice_rules: Option<PathBuf>,
    /// The `[video]` table as written; the server checks it when it starts the SFU.
    pub video: VideoFileSettings,
    pub video_secrets: VideoSecrets,
    /// How long a job a server claimed stays that server's. After a crash, another server (or the same
    /// one, restarted) runs the job again once this has passed.
    pub job_lease: SignedDuration,
    /// How many jobs this server runs at once.
    pub job_workers: usize,
    /// The SMTP server for e-mail; `None` sends no e-mail (in-app notices still work).
    pub smtp: Option<SmtpSettings>,
    /// The SMS provider; `None` sends no text messages.
    pub sms: Option<SmsSettings>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "stillpoint-data";

impl FileSettings {
    /// Reads a settings file; a missing or malformed file is an error naming it.
    pub fn read(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            invalid(
                "--config",
                format!("cannot read {}: {error}; check the path", path.display()),
            )
        })?;
        let mut settings: Self = toml::from_str(&text).map_err(|error| {
            let detail = error.message().to_owned();
            let line = error
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1)
                .map_or_else(String::new, |line| format!(" at line {line}"));
            invalid(
                "--config",
                format!(
                    "{}{line} is not a valid settings file: {detail}",
                    path.display()
                ),
            )
        })?;

        // Relative paths in the file are relative to the file, not to the working directory,
        // which differs when a service manager starts the server.
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |relative: &mut Option<PathBuf>| {
            if let Some(value) = relative.as_mut().filter(|value| value.is_relative()) {
                *value = base.join(&*value);
            }
        };
        resolve(&mut settings.data_dir);
        resolve(&mut settings.locales_dir);
        resolve(&mut settings.consent_dir);
        resolve(&mut settings.practice.rules_file);
        resolve(&mut settings.video.turn_secret_file);
        resolve(&mut settings.video.livekit_api_secret_file);
        resolve(&mut settings.tls.cert_path);
        resolve(&mut settings.tls.key_path);
        resolve(&mut settings.audit.key_path);
        resolve(&mut settings.secrets.key_path);
        if let Some(smtp) = settings.smtp.as_mut() {
            resolve(&mut smtp.password_file);
            resolve(&mut smtp.ca_file);
        }
        if let Some(sms) = settings.sms.as_mut() {
            resolve(&mut sms.auth_token_file);
        }
        Ok(settings)
    }
}

impl Settings {
    /// Merges the file and the overrides and validates the result.
    pub fn resolve(file: FileSettings, overrides: Overrides) -> Result<Self, SettingsError> {
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "listen",
                format!(
                    "'{listen_text}' is not an address and port; use a value such as 127.0.0.1:8080"
                ),
            )
        })?;

        let data_dir = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database = match overrides
            .database_url
            .or(file.database_url)
            .filter(|url| !url.is_empty())
        {
            Some(url) => DatabaseUrl::parse(&url)
                .map_err(|error| invalid("database_url", error.to_string()))?,
            None => DatabaseUrl::sqlite_in(&data_dir),
        };

        let (log_format, log_level) =
            log_settings(overrides.log_format, overrides.log_level, file.log)?;
        let tls = tls_settings(file.tls)?;

        let clinic_name = file.clinic_name.unwrap_or_else(|| "Stillpoint".to_owned());
        if clinic_name.trim().is_empty() {
            return Err(invalid(
                "clinic_name",
                "the clinic name is empty; set it to the name patients know the clinic by",
            ));
        }
        if let Some(folder) = &file.locales_dir
            && !folder.is_dir()
        {
            return Err(invalid(
                "locales_dir",
                format!(
                    "{} is not a folder; give the folder that holds one sub-folder per language",
                    folder.display()
                ),
            ));
        }

        Self {
            listen,
            data_dir,
            database,
            clinic_name,
            locales_dir: file.locales_dir,
            consent_dir: file.consent_dir,
            log_format,
            log_level,
            request_timeout: Duration::from_secs(positive(
                "http.request_timeout_seconds",
                file.http.request_timeout_seconds,
                30,
            )?),
            shutdown_grace: Duration::from_secs(positive(
                "http.shutdown_grace_seconds",
                file.http.shutdown_grace_seconds,
                30,
            )?),
            secure_cookies: file.http.secure_cookies.unwrap_or(false) || tls.is_some(),
            tls,
            session_policy: session_policy(&file.sessions)?,
            audit_key_path: file.audit.key_path,
            secrets_key_path: file.secrets.key_path,
            public_url: public_url(file.http.public_url)?,
            trusted_proxies: trusted_proxies(&file.http.trusted_proxies.unwrap_or_default())?,
            lapse_days: lapse_days(file.programs.lapse_days)?,
            max_upload_bytes: max_upload_bytes(file.practice.max_upload_megabytes)?,
            practice_rules: file.practice.rules_file,
            video_secrets: VideoSecrets {
                turn_secret: secret(
                    "video.turn_secret_file",
                    "STILLPOINT_TURN_SECRET",
                    file.video.turn_secret_file.as_deref(),
                )?,
                livekit_api_secret: secret(
                    "video.livekit_api_secret_file",
                    "STILLPOINT_LIVEKIT_API_SECRET",
                    file.video.livekit_api_secret_file.as_deref(),
                )?,
            },
            video: file.video,
            job_lease: job_lease(file.jobs.lease_seconds)?,
            job_workers: job_workers(file.jobs.workers)?,
            smtp: file.smtp.map(smtp_settings).transpose()?,
            sms: file.sms.map(sms_settings).transpose()?,
        }
        .checked_channels()
    }

    /// Checks the settings that depend on each other for sending messages.
    fn checked_channels(self) -> Result<Self, SettingsError> {
        let timeouts = [
            self.smtp.as_ref().map(|smtp| smtp.timeout),
            self.sms.as_ref().map(|sms| sms.timeout),
        ];
        if let Some(longest) = timeouts.into_iter().flatten().max() {
            // A send waits up to one timeout to connect and one to send. A lease shorter than
            // that lets another worker take the job over while the first still sends it.
            let needed = 2 * longest.as_secs();
            if self.job_lease.as_secs() <= i64::try_from(needed).unwrap_or(i64::MAX) {
                return Err(invalid(
                    "jobs.lease_seconds",
                    format!(
                        "must be longer than {needed} seconds, twice the longest smtp or sms timeout_seconds; raise it or lower the timeout"
                    ),
                ));
            }
            if self.public_url.is_none() {
                return Err(invalid(
                    "http.public_url",
                    "is missing; e-mail and text messages link to Stillpoint, so set the address people reach it at, such as https://mbsr.clinic.example",
                ));
            }
        }
        Ok(self)
    }
}

fn log_settings(
    format: Option<String>,
    level: Option<String>,
    file: LogFileSettings,
) -> Result<(LogFormat, String), SettingsError> {
    let log_format = match format.or(file.format).as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(invalid(
                "log_format",
                format!("'{other}' is not a log format; use 'text' or 'json'"),
            ));
        }
    };
    let log_level = level.or(file.level).unwrap_or_else(|| "info".to_owned());
    // A bare word is a valid filter for a module of that name, so a misspelt level such as
    // "inof" would silently drop every log line; bare words must be levels.
    let known_level = |word: &str| {
        matches!(
            word.trim().to_ascii_lowercase().as_str(),
            "off" | "error" | "warn" | "info" | "debug" | "trace"
        )
    };
    let bare_words_are_levels = log_level
        .split(',')
        .filter(|directive| !directive.contains('='))
        .all(known_level);
    if !bare_words_are_levels || tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        return Err(invalid(
            "log_level",
            format!("'{log_level}' is not a log filter; use error, warn, info, debug or trace"),
        ));
    }
    Ok((log_format, log_level))
}

fn tls_settings(file: TlsFileSettings) -> Result<Option<TlsSettings>, SettingsError> {
    match (file.cert_path, file.key_path) {
        (None, None) => Ok(None),
        (Some(cert_path), Some(key_path)) => {
            for (setting, path) in [("tls.cert_path", &cert_path), ("tls.key_path", &key_path)] {
                if !path.is_file() {
                    return Err(invalid(
                        setting,
                        format!(
                            "{} does not exist or is not a file; give the path of a PEM file",
                            path.display()
                        ),
                    ));
                }
            }
            Ok(Some(TlsSettings {
                cert_path,
                key_path,
            }))
        }
        _ => Err(invalid(
            "tls",
            "set both cert_path and key_path, or neither",
        )),
    }
}

fn trusted_proxies(addresses: &[String]) -> Result<Vec<std::net::IpAddr>, SettingsError> {
    addresses
        .iter()
        .map(|text| {
            text.trim().parse().map_err(|_| {
                invalid(
                    "http.trusted_proxies",
                    format!("'{text}' is not an IP address; list addresses such as \"127.0.0.1\""),
                )
            })
        })
        .collect()
}

fn positive(setting: &str, value: Option<u64>, default: u64) -> Result<u64, SettingsError> {
    match value {
        Some(0) => Err(invalid(setting, "must be at least 1")),
        Some(value) => Ok(value),
        None => Ok(default),
    }
}

fn lapse_days(value: Option<u64>) -> Result<u16, SettingsError> {
    let days = positive(
        "programs.lapse_days",
        value,
        u64::from(stillpoint_app::program::DEFAULT_LAPSE_DAYS),
    )?;
    u16::try_from(days)
        .ok()
        .filter(|days| *days <= 365)
        .ok_or_else(|| invalid("programs.lapse_days", "must be 365 days or fewer"))
}

fn max_upload_bytes(megabytes: Option<u64>) -> Result<usize, SettingsError> {
    let megabytes = positive("practice.max_upload_megabytes", megabytes, 100)?;
    if megabytes > 2_000 {
        return Err(invalid(
            "practice.max_upload_megabytes",
            "must be 2000 MB or less; a 45-minute recording in Opus or MP3 is well under 100 MB",
        ));
    }
    usize::try_from(megabytes * 1_000_000).map_err(|_| {
        invalid(
            "practice.max_upload_megabytes",
            "is too large for this machine",
        )
    })
}

fn job_lease(seconds: Option<u64>) -> Result<SignedDuration, SettingsError> {
    let default = stillpoint_app::jobs::DEFAULT_LEASE;
    match seconds {
        None => Ok(default),
        Some(seconds) if (5..=3600).contains(&seconds) => Ok(SignedDuration::from_secs(
            i64::try_from(seconds).unwrap_or(300),
        )),
        Some(_) => Err(invalid(
            "jobs.lease_seconds",
            "must be between 5 and 3600 seconds; longer than any one send, short enough that a crashed server's work resumes soon",
        )),
    }
}

fn job_workers(count: Option<u64>) -> Result<usize, SettingsError> {
    match count {
        None => Ok(DEFAULT_JOB_WORKERS),
        Some(count @ 1..=32) => Ok(usize::try_from(count).unwrap_or(DEFAULT_JOB_WORKERS)),
        Some(_) => Err(invalid("jobs.workers", "must be between 1 and 32")),
    }
}

/// Jobs a server runs at once by default. Sending waits mostly on the mail server or SMS
/// provider, so a few at once multiply the rate without loading the database.
pub const DEFAULT_JOB_WORKERS: usize = 4;

fn required(setting: &str, value: Option<String>, example: &str) -> Result<String, SettingsError> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            invalid(
                setting,
                format!("is missing; set it, for example {example}"),
            )
        })
}

/// Reads a secret from the environment variable `variable`, else from the file `path`.
fn secret(
    setting: &str,
    variable: &str,
    path: Option<&Path>,
) -> Result<Option<String>, SettingsError> {
    if let Ok(value) = std::env::var(variable)
        && !value.is_empty()
    {
        return Ok(Some(value));
    }
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|error| {
        invalid(
            setting,
            format!(
                "cannot read {}: {error}; check the path and its permissions",
                path.display()
            ),
        )
    })?;
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
}

fn timeout(
    setting: &str,
    value: Option<u64>,
    default: Duration,
) -> Result<Duration, SettingsError> {
    match value {
        Some(0) => Err(invalid(setting, "must be at least 1 second")),
        Some(seconds) if seconds > 300 => Err(invalid(setting, "must be 300 seconds or fewer")),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
        None => Ok(default),
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

fn smtp_settings(file: SmtpFileSettings) -> Result<SmtpSettings, SettingsError> {
    let host = required("smtp.host", file.host, "host = \"smtp.example.org\"")?;
    let security = match file.security.as_deref() {
        None => SmtpSecurity::StartTls,
        Some(text) => {
            SmtpSecurity::parse(text).map_err(|problem| invalid("smtp.security", problem))?
        }
    };
    if security == SmtpSecurity::None && !is_loopback_host(&host) {
        return Err(invalid(
            "smtp.security",
            format!(
                "'none' sends e-mail unencrypted, so it is allowed only for a relay on this host, not '{host}'; use 'starttls' or 'tls'"
            ),
        ));
    }
    let from = required(
        "smtp.from",
        file.from,
        "from = \"Lakeside Clinic <mbsr@example.org>\"",
    )?;
    let password = secret(
        "smtp.password_file",
        "STILLPOINT_SMTP_PASSWORD",
        file.password_file.as_deref(),
    )?;
    if password.is_some() != file.username.is_some() {
        return Err(invalid(
            "smtp.username",
            "give both the user name and the password (smtp.password_file or STILLPOINT_SMTP_PASSWORD), or neither",
        ));
    }
    Ok(SmtpSettings {
        port: file.port.unwrap_or_else(|| security.default_port()),
        host,
        security,
        username: file.username,
        password,
        from,
        timeout: timeout(
            "smtp.timeout_seconds",
            file.timeout_seconds,
            stillpoint_notify::smtp::DEFAULT_TIMEOUT,
        )?,
        extra_roots_pem: file
            .ca_file
            .map(|path| {
                std::fs::read_to_string(&path).map_err(|error| {
                    invalid(
                        "smtp.ca_file",
                        format!("cannot read {}: {error}; check the path", path.display()),
                    )
                })
            })
            .transpose()?,
    })
}

fn sms_settings(file: SmsFileSettings) -> Result<SmsSettings, SettingsError> {
    let base_url = required(
        "sms.base_url",
        file.base_url,
        "base_url = \"https://sms-provider.example\"",
    )?;
    let loopback_http = base_url.strip_prefix("http://").is_some_and(|rest| {
        is_loopback_host(rest.split(['/', ':']).next().unwrap_or_default())
            || rest.starts_with("[::1]")
    });
    if !base_url.starts_with("https://") && !loopback_http {
        return Err(invalid(
            "sms.base_url",
            format!(
                "'{base_url}' must be an https address (plain http only for a provider on this host)"
            ),
        ));
    }
    let account_sid = required(
        "sms.account_sid",
        file.account_sid,
        "account_sid = \"AC0123\"",
    )?;
    let auth_token = secret("sms.auth_token_file", "STILLPOINT_SMS_AUTH_TOKEN", file.auth_token_file.as_deref())?
        .ok_or_else(|| invalid("sms.auth_token_file", "is missing; give the file holding the provider's auth token, or set STILLPOINT_SMS_AUTH_TOKEN"))?;
    let from = required("sms.from", file.from, "from = \"+15555550100\"")?;
    Ok(SmsSettings {
        base_url: base_url.trim_end_matches('/').to_owned(),
        account_sid,
        auth_token,
        from,
        timeout: timeout(
            "sms.timeout_seconds",
            file.timeout_seconds,
            stillpoint_notify::sms::DEFAULT_TIMEOUT,
        )?,
    })
}

fn public_url(value: Option<String>) -> Result<Option<String>, SettingsError> {
    match value {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(Some(url)),
        Some(url) => Err(invalid(
            "http.public_url",
            format!("'{url}' is not an http or https address; write it as https://host"),
        )),
        None => Ok(None),
    }
}

fn session_policy(file: &SessionFileSettings) -> Result<SessionPolicy, SettingsError> {
    let defaults = SessionPolicy::default();
    let minutes = |setting: &str,
                   value: Option<u32>,
                   default: SignedDuration|
     -> Result<SignedDuration, SettingsError> {
        match value {
            Some(0) => Err(invalid(setting, "must be at least 1")),
            Some(value) => Ok(SignedDuration::from_mins(i64::from(value))),
            None => Ok(default),
        }
    };
    let policy = SessionPolicy {
        staff_idle: minutes(
            "sessions.staff_idle_minutes",
            file.staff_idle_minutes,
            defaults.staff_idle,
        )?,
        patient_idle: minutes(
            "sessions.patient_idle_minutes",
            file.patient_idle_minutes,
            defaults.patient_idle,
        )?,
        absolute: match file.absolute_hours {
            Some(0) => return Err(invalid("sessions.absolute_hours", "must be at least 1")),
            Some(hours) => SignedDuration::from_hours(i64::from(hours)),
            None => defaults.absolute,
        },
        throttle: defaults.throttle,
        staff_second_factor: file
            .staff_two_step_verification
            .unwrap_or(defaults.staff_second_factor),
    };
    if policy.absolute < policy.staff_idle || policy.absolute < policy.patient_idle {
        return Err(invalid(
            "sessions.absolute_hours",
            "is shorter than an idle timeout; make it at least as long as both",
        ));
    }
    Ok(policy)
}

/// The commented default settings file that `stillpoint print-config` prints.
pub const DEFAULT_FILE: &str = r#"# Stillpoint settings.
#
# Each value can also be given as a command-line flag or an environment variable; a flag wins over
# the environment, which wins over this file. Start the server with `stillpoint serve --config FILE`.

# Address and port to listen on (flag --listen, environment STILLPOINT_LISTEN).
# Use 0.0.0.0:8080 to accept connections from other machines, normally behind a reverse proxy.
listen = "127.0.0.1:8080"

# Folder for the SQLite database and uploaded files (flag --data-dir, STILLPOINT_DATA_DIR).
data_dir = "stillpoint-data"

# PostgreSQL instead of SQLite (flag --database-url, STILLPOINT_DATABASE_URL). Several servers
# may share one PostgreSQL database.
# database_url = "postgres://stillpoint:PASSWORD@127.0.0.1:5432/stillpoint"

# The clinic's name, shown on the start page.
clinic_name = "Stillpoint"

# A folder of extra or replacement translation catalogues: one sub-folder per language tag
# (for example fr/) holding .ftl files. Messages missing from a language fall back to English.
# locales_dir = "/etc/stillpoint/locales"

# A folder of consent documents in the layout of content/consent/ (one sub-folder per document,
# one <language>.md file per language). Its files replace bundled files of the same path or add
# new ones; raise `version` when the meaning changes, so patients are asked to agree again.
# consent_dir = "/etc/stillpoint/consent"

[log]
# "text" for a terminal, "json" for a log collector (flag --log-format, STILLPOINT_LOG_FORMAT).
format = "text"
# error, warn, info, debug or trace, or a per-module filter such as "stillpoint=debug,info"
# (flag --log-level, STILLPOINT_LOG_LEVEL).
level = "info"

[tls]
# Serve HTTPS directly with a PEM certificate chain and private key. Leave both unset when a
# reverse proxy terminates TLS, and set http.secure_cookies = true instead.
# cert_path = "/etc/stillpoint/tls/fullchain.pem"
# key_path = "/etc/stillpoint/tls/privkey.pem"

[http]
# Seconds a request may take before it is answered with 408 Request Timeout.
request_timeout_seconds = 30
# Seconds to let requests in flight finish after SIGTERM or SIGINT.
shutdown_grace_seconds = 30
# Mark cookies Secure. Always on when [tls] is set; turn it on behind an HTTPS proxy.
secure_cookies = false
# IP addresses of reverse proxies in front of the server. A request from one of them is attributed
# to the client its X-Forwarded-For header names, for the audit trail and sign-in throttling;
# without this every client behind the proxy shares the proxy's address.
trusted_proxies = []
# The address people reach Stillpoint at, used in the invitation and password reset links it
# hands out. Set it when a reverse proxy or a domain name is in front of the server; the default
# is the listen address.
# public_url = "https://mbsr.clinic.example"

[sessions]
# Minutes without activity after which a session ends.
staff_idle_minutes = 15
patient_idle_minutes = 60
# Hours after sign-in after which any session ends.
absolute_hours = 12
# Require staff to enter a one-time code from an authenticator app after their password. Turn
# this off only where the clinic's identity provider enforces a second factor in front of
# Stillpoint.
staff_two_step_verification = true

[audit]
# The key that signs the audit trail's checkpoints (created on first start when missing). The
# default, audit-checkpoint.key in the data folder, protects against someone who can change the
# database but not read the data folder. Keep it where database administrators cannot read it.
# key_path = "/etc/stillpoint/audit-checkpoint.key"

[secrets]
# The key that encrypts secrets stored in the database, such as the staff's authenticator secrets
# (created on first start when missing; default secrets.key in the data folder). Servers sharing
# one PostgreSQL database need the same key file, and a lost key means every staff member sets up
# their authenticator again.
# key_path = "/etc/stillpoint/secrets.key"

[programs]
# Days without an attended session after which a taking-part patient is marked as paused
# ("lapsed") and offered a way back on their program page. Nobody is removed from a cohort.
lapse_days = 14

[practice]
# The largest recording, in MB, that facilitators can upload to the practice library. The
# whole file is held in memory while it is checked.
max_upload_megabytes = 100
# A clinic's own tailoring and check-in rules, in the format of the bundled
# content/practice/tailoring.toml (default: the bundled rules).
# rules_file = "/etc/stillpoint/tailoring.toml"

[video]
# The UDP address of the embedded video server (default: the listen address's IP, any free
# port). Browsers must reach it; behind NAT or on 0.0.0.0 also set public_ip.
# udp_address = "0.0.0.0:3478"
# public_ip = "203.0.113.10"
# Minutes before a session's start and after its end in which its room can be entered.
join_before_minutes = 15
join_after_minutes = 30
# STUN and TURN servers for participants behind strict firewalls. TURN credentials are made
# per participant from turn_secret, as coturn's use-auth-secret option expects.
# stun_urls = ["stun:turn.example.org:3478"]
# turn_urls = ["turns:turn.example.org:443?transport=tcp"]
# The TURN server's shared secret is read from this file, or from STILLPOINT_TURN_SECRET.
# turn_secret_file = "/etc/stillpoint/turn-secret"
# For cohorts whose video provider is livekit: the LiveKit address and API key; the API secret
# is read from the file, or from STILLPOINT_LIVEKIT_API_SECRET.
# livekit_url = "wss://livekit.example.org"
# livekit_api_key = "API key"
# livekit_api_secret_file = "/etc/stillpoint/livekit-secret"

[jobs]
# Seconds a server holds a job it started (a reminder to send, say). If the server stops
# mid-job, the job runs again once this has passed, on any server sharing the database.
lease_seconds = 300
# Jobs this server runs at once. Each send mostly waits on the mail server or SMS provider.
workers = 4

# E-mail reminders and notices go through an SMTP server. Without this section Stillpoint sends
# no e-mail; in-app notices still work. Messages name no diagnosis, score or answer. With this
# section (or [sms]), http.public_url is required, because messages link to Stillpoint, and
# jobs.lease_seconds must be longer than twice the longest timeout_seconds. host and from are
# required.
# [smtp]
# host = "smtp.example.org"
# "starttls" (port 587, the default), "tls" (port 465), or "none" for a relay on this host only.
# security = "starttls"
# port = 587
# username = "mbsr@example.org"
# The password is read from this file, or from the environment variable STILLPOINT_SMTP_PASSWORD.
# password_file = "/etc/stillpoint/smtp-password"
# from = "Lakeside Clinic <mbsr@example.org>"
# timeout_seconds = 30
# PEM certificates of an authority to trust besides the built-in Mozilla roots, for a mail
# server whose certificate the clinic's own authority issued.
# ca_file = "/etc/stillpoint/smtp-ca.pem"

# Text-message reminders go through an HTTP provider that accepts Twilio's Messages API format.
# Without this section Stillpoint sends no text messages.
# [sms]
# base_url = "https://sms-provider.example"
# account_sid = "AC0123"
# The auth token is read from this file, or from STILLPOINT_SMS_AUTH_TOKEN.
# auth_token_file = "/etc/stillpoint/sms-token"
# from = "+15555550100"
# timeout_seconds = 10
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_the_defaults() {
        let file: FileSettings = toml::from_str(DEFAULT_FILE).expect("the default file parses");
        let settings =
            Settings::resolve(file, Overrides::default()).expect("the defaults are valid");
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.session_policy, SessionPolicy::default());
        assert!(settings.tls.is_none());
        assert!(matches!(settings.database, DatabaseUrl::Sqlite(_)));
    }

    #[test]
    fn overrides_win_over_the_file() {
        let file = FileSettings {
            listen: Some("127.0.0.1:9000".to_owned()),
            ..FileSettings::default()
        };
        let overrides = Overrides {
            listen: Some("127.0.0.1:9100".to_owned()),
            ..Overrides::default()
        };
        let settings = Settings::resolve(file, overrides).expect("valid");
        assert_eq!(settings.listen.port(), 9100);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: Vec<(Overrides, &str)> = vec![
            (
                Overrides {
                    listen: Some("localhost".to_owned()),
                    ..Overrides::default()
                },
                "listen",
            ),
            (
                Overrides {
                    database_url: Some("mysql://x/y".to_owned()),
                    ..Overrides::default()
                },
                "database_url",
            ),
            (
                Overrides {
                    log_format: Some("xml".to_owned()),
                    ..Overrides::default()
                },
                "log_format",
            ),
            (
                Overrides {
                    log_level: Some("loud[".to_owned()),
                    ..Overrides::default()
                },
                "log_level",
            ),
            (
                Overrides {
                    log_level: Some("inof".to_owned()),
                    ..Overrides::default()
                },
                "log_level",
            ),
        ];
        for (overrides, setting) in cases {
            let error = Settings::resolve(FileSettings::default(), overrides).expect_err(setting);
            assert_eq!(error.setting, setting);
        }
    }

    #[test]
    fn module_filters_are_accepted() {
        let overrides = Overrides {
            log_level: Some("stillpoint=debug,warn".to_owned()),
            ..Overrides::default()
        };
        assert!(Settings::resolve(FileSettings::default(), overrides).is_ok());
    }

    #[test]
    fn tls_needs_both_files() {
        let file = FileSettings {
            tls: TlsFileSettings {
                cert_path: Some(PathBuf::from("/nonexistent.pem")),
                key_path: None,
            },
            ..FileSettings::default()
        };
        assert_eq!(
            Settings::resolve(file, Overrides::default())
                .expect_err("half TLS")
                .setting,
            "tls"
        );
    }

    #[test]
    fn relative_paths_in_file_follow_the_file() {
        let folder =
            std::env::temp_dir().join(format!("stillpoint-settings-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("folder");
        let file = folder.join("stillpoint.toml");
        std::fs::write(
            &file,
            "data_dir = \"data\"\n[tls]\ncert_path = \"/etc/cert.pem\"\n",
        )
        .expect("write");

        let settings = FileSettings::read(&file).expect("parses");
        assert_eq!(settings.data_dir, Some(folder.join("data")));
        assert_eq!(settings.tls.cert_path, Some(PathBuf::from("/etc/cert.pem")));
        std::fs::remove_dir_all(folder).expect("clean up");
    }

    #[test]
    fn unknown_key_in_file_is_rejected() {
        let error =
            toml::from_str::<FileSettings>("listn = \"127.0.0.1:1\"").expect_err("unknown key");
        assert!(error.to_string().contains("listn"), "{error}");
    }

    #[test]
    fn absolute_lifetime_must_cover_idle_timeouts() {
        let file = FileSettings {
            sessions: SessionFileSettings {
                patient_idle_minutes: Some(120),
                absolute_hours: Some(1),
                ..SessionFileSettings::default()
            },
            ..FileSettings::default()
        };
        let error = Settings::resolve(file, Overrides::default()).expect_err("too short");
        assert_eq!(error.setting, "sessions.absolute_hours");
    }

    fn with_smtp(extra: &str) -> Result<Settings, SettingsError> {
        let text = format!(
            "{extra}\n[smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nfrom = \"Clinic <mbsr@clinic.example>\"\n"
        );
        let file: FileSettings = toml::from_str(&text).expect("parses");
        Settings::resolve(file, Overrides::default())
    }

    #[test]
    fn smtp_needs_public_url_and_long_lease() {
        let error = with_smtp("").expect_err("no public address");
        assert_eq!(error.setting, "http.public_url");

        let error = with_smtp(
            "[http]\npublic_url = \"https://mbsr.clinic.example\"\n[jobs]\nlease_seconds = 60",
        )
        .expect_err("lease shorter than two 30-second timeouts");
        assert_eq!(error.setting, "jobs.lease_seconds");

        let settings = with_smtp("[http]\npublic_url = \"https://mbsr.clinic.example\"")
            .expect("the defaults fit");
        assert_eq!(settings.smtp.expect("smtp").port, 25);
    }

    #[test]
    fn smtp_authority_file_must_exist() {
        let text = "[http]\npublic_url = \"https://mbsr.clinic.example\"\n[smtp]\nhost = \"smtp.example.org\"\nfrom = \"Clinic <mbsr@clinic.example>\"\nca_file = \"/nonexistent/stillpoint-ca.pem\"\n";
        let file: FileSettings = toml::from_str(text).expect("parses");
        let error = Settings::resolve(file, Overrides::default()).expect_err("no such file");
        assert_eq!(error.setting, "smtp.ca_file");
    }

    #[test]
    fn unencrypted_smtp_only_on_this_host() {
        let text = "[http]\npublic_url = \"https://mbsr.clinic.example\"\n[smtp]\nhost = \"smtp.example.org\"\nsecurity = \"none\"\nfrom = \"Clinic <mbsr@clinic.example>\"\n";
        let file: FileSettings = toml::from_str(text).expect("parses");
        let error = Settings::resolve(file, Overrides::default()).expect_err("remote plain SMTP");
        assert_eq!(error.setting, "smtp.security");
    }
}
