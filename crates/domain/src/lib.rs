//! The pure core of Stillpoint: the clinic's sites, the people who use it and the value types that
//! every rule is written in.
//!
//! This crate performs no I/O and never reads the clock: a rule that depends on time takes `now`
//! as an argument. Its dependency list is part of the design and must never contain tokio, sqlx,
//! axum or hyper (a test in this crate checks that).

pub mod account;
pub mod attendance;
pub mod audit;
pub mod care_team;
pub mod clinic;
pub mod condition;
pub mod consent;
pub mod curriculum;
pub mod enrolment;
pub mod id;
pub mod jobs;
pub mod language;
pub mod live;
pub mod measures;
pub mod notify;
pub mod patient;
pub mod practice;
pub mod reminders;
pub mod role;
pub mod schedule;
pub mod throttle;
pub mod time_zone;

pub use account::{Account, DisplayPreferences, EmailAddress};
pub use clinic::Site;
pub use condition::{ChronicCondition, Icd10Code};
pub use id::{
    AccountId, AlertId, CohortId, CohortSessionId, PatientId, PracticeEntryId, RecordingId,
    ResponseId, SiteId, SuggestionId,
};
pub use language::Language;
pub use patient::Patient;
pub use role::{Role, RoleAssignment};
pub use time_zone::TimeZoneName;

/// A value that failed validation, with the field it came from and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidValue {
    /// The name of the field as the user or caller knows it, for example `email`.
    pub field: &'static str,
    /// What is wrong and what to enter instead, as a plain sentence.
    pub problem: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}
