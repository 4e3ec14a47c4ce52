//! SQLite and PostgreSQL storage for Stillpoint, through one sqlx `AnyPool`.
//!
//! Both dialects run the same SQL text (`$1` placeholders, `RETURNING`, `ON CONFLICT`), so a query
//! is written once. What differs lives in [`dialect`]: connection settings, the migration set and
//! how a constraint violation names its constraint. Values cross the boundary as text and
//! integers: ids are UUID text, instants are UTC milliseconds, dates are ISO 8601 text.

mod account_links;
mod accounts;
mod audit;
mod care_team;
mod cohorts;
mod consent;
mod curricula;
mod database;
mod deliveries;
pub mod dialect;
mod enrolment;
mod error;
mod health;
mod jobs;
mod live;
mod measures;
mod migrate;
mod notifications;
mod patients;
mod practice;
mod programs;
mod second_factor;
mod sessions;
mod sites;
mod throttle;
mod values;

pub use database::{ConnectError, Database, DatabaseUrl};
pub use dialect::Dialect;
pub use measures::response_batch_counts;
pub use migrate::MigrateError;
