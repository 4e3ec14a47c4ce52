//! Errors of the application layer. The web layer maps each variant to an HTTP status once.

use stillpoint_domain::InvalidValue;

/// A storage failure, in the three kinds a caller can act on differently.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The requested row does not exist (or is not visible to this query).
    #[error("{entity} {id} was not found")]
    NotFound { entity: &'static str, id: String },

    /// A write broke a named constraint, for example a duplicate e-mail address.
    #[error("the write conflicts with existing data (constraint {constraint})")]
    Conflict { constraint: String },

    /// The database could not be reached or failed; retrying later may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),

    /// A stored value or a query does not match what the code expects, which retrying will not
    /// fix: a row written by something else, or a programming error.
    #[error("stored data or a query is invalid: {0}")]
    Corrupt(String),
}

/// The outcome of a use case that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input failed validation; the value names the field and the fix.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),

    /// The e-mail address and password do not match an account. Deliberately does not say
    /// which of the two was wrong.
    #[error("the e-mail address or password is incorrect")]
    InvalidCredentials,

    /// Too many failed sign-in attempts for this address or from this client; the next attempt is
    /// allowed after `retry_after`.
    #[error("too many failed sign-in attempts; try again in {} seconds", retry_after.as_secs())]
    Throttled { retry_after: jiff::SignedDuration },

    /// A one-time code (from the authenticator app, or a recovery code) is wrong, expired or
    /// used already.
    #[error("the code is incorrect or has been used; enter the current code from the app")]
    InvalidOneTimeCode,

    /// The enrolment pathway does not allow this move from the patient's current state.
    #[error("a patient who is '{current}' cannot move to '{requested}'")]
    TransitionNotAllowed {
        current: &'static str,
        requested: &'static str,
    },

    /// A single-use link is unknown or of the wrong kind for the page.
    #[error("the link is not valid; ask for a new one")]
    LinkInvalid,

    /// A single-use link was used already.
    #[error("the link was used already; ask for a new one")]
    LinkUsed,

    /// A single-use link is past its expiry.
    #[error("the link has expired; ask for a new one")]
    LinkExpired,

    /// The session token is unknown, expired or signed out.
    #[error("the session has ended; sign in again")]
    SessionEnded,

    /// The signed-in account may not perform this action or see this resource.
    #[error("the account may not do this")]
    Forbidden,

    #[error(transparent)]
    Storage(#[from] StorageError),

    /// An internal fault such as a failed password hash computation.
    #[error("internal error: {0}")]
    Internal(String),
}
