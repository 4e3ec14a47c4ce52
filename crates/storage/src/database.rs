//! Connecting to the database named by a URL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyConnection, AnyPool, Connection as _, Executor as _, Row as _};

use crate::dialect::Dialect;

/// A validated database location.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file, created when missing.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
        }
    }
}

/// A database URL that could not be used, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "database URL '{url}' is not valid: {reason}; use postgres://USER:PASSWORD@HOST:PORT/DATABASE or sqlite://PATH"
    )]
    InvalidUrl { url: String, reason: String },

    #[error("cannot open database {location}: {reason}")]
    Unreachable { location: String, reason: String },
}

impl DatabaseUrl {
    /// The SQLite database inside a data folder.
    #[must_use]
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self::Sqlite(data_dir.join("stillpoint.db"))
    }

    /// Parses a `postgres://`, `postgresql://` or `sqlite://` URL.
    pub fn parse(text: &str) -> Result<Self, ConnectError> {
        let invalid = |reason: &str| ConnectError::InvalidUrl {
            url: describe_unparsed(text),
            reason: reason.to_owned(),
        };

        if let Some(path) = text.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(invalid("the SQLite path is empty"));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }

        let parsed = url::Url::parse(text).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(invalid(&format!(
                "the scheme '{}' is not supported",
                parsed.scheme()
            )));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the host is missing"));
        }
        if parsed.path().trim_start_matches('/').is_empty() {
            return Err(invalid("the database name is missing"));
        }

        Ok(Self::Postgres(text.to_owned()))
    }

    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The location without any password, safe to log and print.
    #[must_use]
    pub fn display_location(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => redact_password(url),
        }
    }

    /// The URL in the form sqlx connects with. It contains the password, if any: never log it.
    #[must_use]
    pub fn connect_string(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres(url) => url.clone(),
        }
    }
}

/// Creates an empty SQLite file readable only by its owner, unless it exists. SQLite gives the
/// write-ahead log and shared-memory files the same permissions as the database file.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;

    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Query parameters of a PostgreSQL URL that carry secrets.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// Replaces the password in a URL, and any password query parameter, with `***`.
fn redact_password(text: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(text) else {
        return describe_unparsed(text);
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let has_secret_parameter = parsed
        .query_pairs()
        .any(|(name, _)| SECRET_PARAMETERS.contains(&name.as_ref()));
    if has_secret_parameter {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if SECRET_PARAMETERS.contains(&name.as_ref()) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Describes a URL that did not parse. A URL without user information or query is shown whole.
/// Otherwise only its scheme is shown, because the password may be the part that broke the parse.
fn describe_unparsed(text: &str) -> String {
    if !text.contains('@') && !text.contains('?') {
        return text.to_owned();
    }
    match text.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
        {
            format!("{scheme}://…")
        }
        _ => "(not shown)".to_owned(),
    }
}

/// A connection pool with its dialect; implements every storage port of the application.
#[derive(Clone)]
pub struct Database {
    pub(crate) pool: AnyPool,
    /// Serialises audit appends within this process (see [`Dialect::audit_append_lock`]).
    pub(crate) audit_append: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The queue of the task that commits questionnaire responses in batches.
    pub(crate) submissions: crate::measures::SubmissionQueue,
    pub(crate) dialect: Dialect,
    pub(crate) location: String,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("dialect", &self.dialect)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens a pool and checks that one connection works. Creates a missing SQLite file but
    /// writes nothing else: migrations run separately.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, ConnectError> {
        install_default_drivers();
        let dialect = url.dialect();
        let setup = dialect.connection_setup();
        let unreachable = |error: sqlx::Error| ConnectError::Unreachable {
            location: url.display_location(),
            reason: error.to_string(),
        };

        if let DatabaseUrl::Sqlite(path) = url {
            create_private_file(path).map_err(|error| ConnectError::Unreachable {
                location: url.display_location(),
                reason: error.to_string(),
            })?;
        }
        // One direct connection first: a pool retries failed connections until its acquire
        // timeout and then reports only that it timed out, hiding the cause (connection
        // refused, not a database, wrong password).
        let mut probe = AnyConnection::connect(&url.connect_string())
            .await
            .map_err(unreachable)?;
        for statement in setup {
            probe.execute(*statement).await.map_err(unreachable)?;
        }
        probe.close().await.map_err(unreachable)?;

        // SQLite allows one writer at a time; a small pool keeps readers concurrent without
        // queueing many writers on the file lock.
        let max_connections = match dialect {
            Dialect::Sqlite => 4,
            Dialect::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _meta| {
                Box::pin(async move {
                    for statement in setup {
                        connection.execute(*statement).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url.connect_string())
            .await
            .map_err(|error| ConnectError::Unreachable {
                location: url.display_location(),
                reason: error.to_string(),
            })?;

        Ok(Self {
            pool,
            audit_append: std::sync::Arc::default(),
            submissions: std::sync::Arc::default(),
            dialect,
            location: url.display_location(),
        })
    }

    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The durability settings a pooled SQLite connection runs with, as `(pragma, value)`
    /// pairs; empty for PostgreSQL, whose durability is the server's configuration.
    pub async fn sqlite_durability(&self) -> Result<Vec<(&'static str, String)>, sqlx::Error> {
        if self.dialect != Dialect::Sqlite {
            return Ok(Vec::new());
        }
        let mut connection = self.pool.acquire().await?;
        let mut settings = Vec::new();
        for pragma in [
            "journal_mode",
            "synchronous",
            "foreign_keys",
            "busy_timeout",
        ] {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                .fetch_one(&mut *connection)
                .await?;
            let value = row
                .try_get::<String, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|number| number.to_string()))?;
            settings.push((pragma, value));
        }
        Ok(settings)
    }

    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_accepts_postgres_and_sqlite() {
        assert_eq!(
            DatabaseUrl::parse("postgres://sp:secret@127.0.0.1:5432/stillpoint")
                .map(|u| u.dialect()),
            Ok(Dialect::Postgres)
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/stillpoint/x.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from(
                "/var/lib/stillpoint/x.db"
            )))
        );
    }

    #[test]
    fn database_url_rejects_malformed_values() {
        for text in [
            "postgres//x",
            "mysql://h/db",
            "postgres://127.0.0.1",
            "postgres:///db",
            "sqlite://",
            "stillpoint",
        ] {
            let error = DatabaseUrl::parse(text).expect_err(text);
            assert!(matches!(error, ConnectError::InvalidUrl { .. }), "{text}");
        }
    }

    #[test]
    fn database_url_never_shows_the_password() {
        let url =
            DatabaseUrl::parse("postgres://sp:hunter22@db.internal/stillpoint").expect("valid");
        assert!(!url.display_location().contains("hunter22"));
        assert!(!format!("{url:?}").contains("hunter22"));
        let error = DatabaseUrl::parse("mysql://sp:hunter22@db.internal/x").expect_err("scheme");
        assert!(!error.to_string().contains("hunter22"));
    }

    #[test]
    fn database_url_hides_passwords_in_every_form() {
        let url = DatabaseUrl::parse(
            "postgres://db.internal/stillpoint?user=sp&password=hunter22&sslmode=require",
        )
        .expect("valid");
        assert!(
            !url.display_location().contains("hunter22"),
            "{}",
            url.display_location()
        );
        assert!(url.display_location().contains("sslmode=require"));

        for text in [
            "postgres://sp:hun/ter22@db/x",
            "postgres://sp:hunter22#x@db/x",
            "mysql://db/x?password=hunter22",
        ] {
            let error = DatabaseUrl::parse(text).expect_err(text);
            assert!(!error.to_string().contains("ter22"), "{error}");
        }
        let error = DatabaseUrl::parse("postgres//nohost").expect_err("no scheme separator");
        assert!(error.to_string().contains("postgres//nohost"), "{error}");
    }
}
