//! Stillpoint's use cases and the ports they run on.
//!
//! A use case loads what it needs through a storage port, lets the domain decide, and writes the
//! result in one storage call, which the storage layer runs as one transaction. Nothing here knows
//! about HTTP or SQL: the web layer calls these functions and the storage crate implements the
//! ports.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod care;
pub mod clock;
pub mod cohort_view;
pub mod cohorts;
pub mod consent;
pub mod curricula;
pub mod demo;
mod demo_measures;
mod demo_practice;
mod demo_programs;
pub mod enrolment;
pub mod error;
pub mod invitations;
pub mod jobs;
pub mod library;
pub mod live;
pub mod measures;
pub mod mfa;
pub mod notifications;
pub mod notify;
pub mod patients;
pub mod ports;
pub mod practice;
pub mod practice_review;
pub mod program;
pub mod random;
pub mod referrals;
pub mod reminders;
pub mod safety;
pub mod secrets;
pub mod sites;

pub use clock::{Clock, SystemClock};
pub use error::{AppError, StorageError};
pub use ports::Store;
