//! Test harness shared by the crates' integration tests: fresh databases of both dialects, the
//! application spawned on 127.0.0.1 port 0, and headless Chromium with axe-core.
//!
//! PostgreSQL tests run when `STILLPOINT_TEST_POSTGRES_URL` names a server the tests may create
//! databases on. Browser tests run when Chromium and ChromeDriver are installed. Under `CI=true`
//! a missing prerequisite fails the test instead of skipping it.

pub mod browser;
pub mod database;
pub mod spawn;

pub use browser::Browser;
pub use database::{RawDatabase, TestDatabase, postgres_admin_url};
pub use spawn::{ManualClock, Seed, TestApp, hidden_field, spawn_app};

/// Whether the tests run in continuous integration, where nothing may be skipped.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// Skips a test outside CI, or fails it in CI, because `prerequisite` is missing.
///
/// # Panics
/// Panics under `CI=true`.
pub fn skip_or_fail(test: &str, prerequisite: &str) {
    assert!(
        !in_ci(),
        "{test}: {prerequisite} is missing and CI=true forbids skipping"
    );
    eprintln!("SKIPPED {test}: {prerequisite} is missing (set CI=true to make this a failure)");
}

/// Defines a `sqlite` and a `postgres` module with one `#[tokio::test]` per scenario; each test
/// calls `scenario(Dialect)`. A scenario returns early where its database is not available (see
/// [`TestDatabase::of`]), which fails in CI.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $scenario() { super::$scenario(stillpoint_storage::Dialect::Sqlite).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $scenario() { super::$scenario(stillpoint_storage::Dialect::Postgres).await; } )*
        }
    };
}
