//! A fresh, migrated database per test, in either dialect.

use std::path::PathBuf;

use stillpoint_storage::{Database, DatabaseUrl, Dialect};

use crate::skip_or_fail;

/// The environment variable naming a PostgreSQL server for tests, as a URL whose user may
/// create databases, for example `postgres://postgres@127.0.0.1:5432/postgres`.
pub const POSTGRES_URL_VARIABLE: &str = "STILLPOINT_TEST_POSTGRES_URL";

/// The PostgreSQL URL for tests, if one is configured.
#[must_use]
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

/// A migrated database that lives as long as this value (the SQLite file is deleted on drop).
#[derive(Debug)]
pub struct TestDatabase {
    pub database: Database,
    pub url: DatabaseUrl,
    _directory: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A new SQLite file in a temporary folder.
    pub async fn sqlite() -> Self {
        let directory = tempfile::tempdir().expect("a temporary folder can be created");
        let url = DatabaseUrl::sqlite_in(directory.path());
        let database = connect_and_migrate(&url).await;
        Self {
            database,
            url,
            _directory: Some(directory),
        }
    }

    /// A new database on the PostgreSQL server from [`POSTGRES_URL_VARIABLE`], or `None` (after
    /// printing a notice, or failing under CI) when the variable is unset.
    pub async fn postgres(test: &str) -> Option<Self> {
        let Some(admin_url) = postgres_admin_url() else {
            skip_or_fail(test, POSTGRES_URL_VARIABLE);
            return None;
        };
        let url = create_postgres_database(&admin_url).await;
        let database = connect_and_migrate(&url).await;
        Some(Self {
            database,
            url,
            _directory: None,
        })
    }

    /// A handle on an existing database, for raw statements only: nothing is created, migrated
    /// or deleted.
    #[must_use]
    pub fn from_url(url: DatabaseUrl) -> RawDatabase {
        RawDatabase { url }
    }

    /// A fresh database of `dialect`, or `None` when that dialect is not available here.
    pub async fn of(dialect: Dialect, test: &str) -> Option<Self> {
        match dialect {
            Dialect::Sqlite => Some(Self::sqlite().await),
            Dialect::Postgres => Self::postgres(test).await,
        }
    }

    /// Runs a statement on a separate connection, outside the storage layer, for tests that
    /// set up states the application cannot produce (such as a migration from a newer release).
    pub async fn execute_raw(&self, statement: &str) {
        RawDatabase {
            url: self.url.clone(),
        }
        .execute_raw(statement)
        .await;
    }

    /// Like [`Self::execute_raw`], returning the database's error message instead of panicking.
    pub async fn try_execute_raw(&self, statement: &str) -> Result<(), String> {
        RawDatabase {
            url: self.url.clone(),
        }
        .try_execute_raw(statement)
        .await
    }

    /// The SQLite file, for tests that inspect or damage it.
    #[must_use]
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => Some(path.clone()),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}

async fn connect_and_migrate(url: &DatabaseUrl) -> Database {
    let database = Database::connect(url)
        .await
        .expect("the test database opens");
    database
        .migrate()
        .await
        .expect("migrations apply to a fresh database");
    database
}

/// Creates an empty database with a unique name and returns its URL.
async fn create_postgres_database(admin_url: &str) -> DatabaseUrl {
    use sqlx::Connection as _;

    let name = format!("stillpoint_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {POSTGRES_URL_VARIABLE}: {error}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .expect("the test user may create databases");
    let _ = connection.close().await;

    let mut url = url::Url::parse(admin_url).expect("the PostgreSQL test URL is valid");
    url.set_path(&name);
    DatabaseUrl::parse(url.as_str()).expect("the derived URL is valid")
}

/// A database reached with raw SQL only, bypassing the storage layer.
#[derive(Debug, Clone)]
pub struct RawDatabase {
    url: DatabaseUrl,
}

impl RawDatabase {
    /// Runs one statement; panics with the database's message when it fails.
    pub async fn execute_raw(&self, statement: &str) {
        if let Err(error) = self.try_execute_raw(statement).await {
            panic!("raw statement failed: {error}: {statement}");
        }
    }

    /// Runs one statement and returns the database's message when it fails.
    pub async fn try_execute_raw(&self, statement: &str) -> Result<(), String> {
        use sqlx::Connection as _;

        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&self.url.connect_string())
            .await
            .expect("a raw connection opens");
        let outcome = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut connection)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string());
        let _ = connection.close().await;
        outcome
    }
}
