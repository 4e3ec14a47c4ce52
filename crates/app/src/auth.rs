//! Signing in with an e-mail address and password, and resolving a session token to its account.
//!
//! Passwords are hashed with Argon2id at the OWASP Password Storage Cheat Sheet's minimum
//! parameters (19 MiB memory, 2 iterations, 1 lane), which are the `argon2` crate's defaults.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use jiff::{SignedDuration, Timestamp};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::throttle::ThrottlePolicy;
use stillpoint_domain::{Account, AccountId, EmailAddress, InvalidValue};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{SignInSession, Store};
use crate::random::{new_token, token_digest};
use crate::{AppError, Clock, StorageError};

/// Minimum password length for passwords people choose.
// NOTE: 8 characters is the minimum of NIST SP 800-63B revision 3 (section 5.1.1.2) for
// user-chosen passwords.
// Revision 4 requires 15 where the password is the only authentication factor, which is still the
// case for patients and caregivers (staff add a one-time code).
pub const MIN_PASSWORD_LENGTH: usize = 8;

/// How long a session may stay idle and how long it may last at most, and how failed sign-ins
/// are throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub staff_idle: SignedDuration,
    pub patient_idle: SignedDuration,
    pub absolute: SignedDuration,
    pub throttle: ThrottlePolicy,
    /// Whether staff must pass a second sign-in step with a one-time code (see [`crate::mfa`]).
    pub staff_second_factor: bool,
}

/// The shortest time between two writes of a session's last activity.
const TOUCH_INTERVAL: SignedDuration = SignedDuration::from_mins(1);

/// How long failed attempts are kept at most, whatever the throttling window.
const FAILURE_RETENTION: SignedDuration = SignedDuration::from_hours(24);

impl Default for SessionPolicy {
    /// Staff sessions end after 15 idle minutes and patient sessions after 60; any session ends
    /// 12 hours after sign-in.
    fn default() -> Self {
        Self {
            staff_idle: SignedDuration::from_mins(15),
            patient_idle: SignedDuration::from_mins(60),
            absolute: SignedDuration::from_hours(12),
            throttle: ThrottlePolicy::default(),
            staff_second_factor: true,
        }
    }
}

impl SessionPolicy {
    /// The idle timeout that applies to `account`: the staff one when it has any staff role.
    #[must_use]
    pub fn idle_timeout(&self, account: &Account) -> SignedDuration {
        if account.is_staff() {
            self.staff_idle
        } else {
            self.patient_idle
        }
    }

    /// Whether `account` must pass the second sign-in step before using a session.
    #[must_use]
    pub fn requires_second_factor(&self, account: &Account) -> bool {
        self.staff_second_factor && account.is_staff()
    }

    /// Whether `session` is still usable at `now`.
    #[must_use]
    pub fn is_active(&self, session: &SignInSession, account: &Account, now: Timestamp) -> bool {
        let idle_deadline = session
            .last_seen_at
            .saturating_add(self.idle_timeout(account))
            .unwrap_or(session.last_seen_at);
        now < session.expires_at && now < idle_deadline
    }
}

/// Hashes a new password after checking its length.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(InvalidValue::new(
            "password",
            format!("use at least {MIN_PASSWORD_LENGTH} characters"),
        )
        .into());
    }

    if is_common_password(password) {
        return Err(InvalidValue::new(
            "password",
            "this password is one of the most commonly used ones and easy to guess; choose another, such as a phrase of several words",
        )
        .into());
    }

    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|error| AppError::Internal(format!("password hashing failed: {error}")))?;
    Ok(hash.to_string())
}

/// Limits concurrent Argon2id computations to the number of cores. Each one takes 19 MiB and
/// tens of milliseconds of CPU, so without a limit a burst of sign-in attempts would exhaust
/// memory and starve every other request.
static HASHING_PERMITS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        tokio::sync::Semaphore::new(cores)
    });

/// Checks a password on a blocking thread, so the hash computation never stalls the async
/// workers that serve other requests.
async fn verify_off_runtime(password: &str, stored_hash: &str) -> Result<bool, AppError> {
    let _permit = HASHING_PERMITS
        .acquire()
        .await
        .map_err(|error| AppError::Internal(format!("password hashing is shut down: {error}")))?;
    let password = password.to_owned();
    let stored_hash = stored_hash.to_owned();
    tokio::task::spawn_blocking(move || password_matches(&password, &stored_hash))
        .await
        .map_err(|error| AppError::Internal(format!("password check failed: {error}")))
}

/// Common passwords of 8 or more characters, lower-cased, from the bundled list (its header
/// names the source and licence).
static COMMON_PASSWORDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("../../../content/security/common-passwords.txt")
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    });

/// Whether `password`, ignoring case, is on the list of common passwords.
#[must_use]
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

fn password_matches(password: &str, stored_hash: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored_hash) else {
        tracing::error!("a stored password hash is not in PHC format");
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// A session that was just created; `token` goes to the client and is not stored.
#[derive(Debug)]
pub struct NewSession {
    pub token: String,
    pub account: Account,
    pub expires_at: Timestamp,
    /// Whether the session must pass the second sign-in step before it can be used.
    pub awaiting_second_factor: bool,
}

/// Checks the e-mail address and password and opens a session.
///
/// An unknown address costs the same hash computation as a wrong password, so response time
/// does not tell an attacker which addresses have accounts.
pub async fn sign_in(
    store: &dyn Store,
    clock: &dyn Clock,
    policy: &SessionPolicy,
    context: &AuditContext,
    email: &str,
    password: &str,
) -> Result<NewSession, AppError> {
    let email = EmailAddress::parse(email)?;
    let now = clock.now();
    let attempt_id = throttle_attempt(store, clock, policy, context, &email).await?;

    let credentials = match store.find_credentials(&email).await {
        Ok(credentials) => credentials,
        Err(StorageError::NotFound { .. }) => {
            verify_off_runtime(password, DUMMY_HASH).await?;
            audit::record(
                store,
                clock,
                context,
                sign_in_entry(None, AuditOutcome::Denied),
            )
            .await?;
            return Err(AppError::InvalidCredentials);
        }
        Err(other) => return Err(other.into()),
    };
    let account_context =
        AuditContext::for_account(&credentials.account, context.source_address.clone());
    let password_matches = verify_off_runtime(password, &credentials.password_hash).await?;
    if credentials.deactivated_at.is_some() {
        // The same response as a wrong password, so the address's state is not revealed.
        // NOTE: a deactivation that lands between this check and the session insert below leaves
        // that one session open until it expires.
        tracing::info!(account_id = %credentials.account.id, "sign-in rejected: account deactivated");
        let entry = sign_in_entry(Some(credentials.account.id), AuditOutcome::Denied);
        audit::record(store, clock, &account_context, entry).await?;
        return Err(AppError::InvalidCredentials);
    }
    if !password_matches {
        tracing::info!(account_id = %credentials.account.id, "sign-in failed: wrong password");
        let entry = sign_in_entry(Some(credentials.account.id), AuditOutcome::Denied);
        audit::record(store, clock, &account_context, entry).await?;
        return Err(AppError::InvalidCredentials);
    }
    // Earlier failures are forgotten only when the one-time code is passed too, so guessing codes
    // after a correct password is throttled like guessing passwords. A correct password itself
    // does not count as a failure.
    if policy.requires_second_factor(&credentials.account) {
        store.forget_sign_in_attempt(&attempt_id).await?;
    } else {
        store.clear_sign_in_failures(&email).await?;
    }

    let token = new_token();
    let expires_at = now.saturating_add(policy.absolute).unwrap_or(now);
    let session = SignInSession {
        token_digest: token_digest(&token),
        account_id: credentials.account.id,
        created_at: now,
        last_seen_at: now,
        expires_at,
        second_factor_at: None,
    };
    store.insert_session(&session).await?;
    let entry = sign_in_entry(Some(credentials.account.id), AuditOutcome::Success);
    audit::record(store, clock, &account_context, entry).await?;
    tracing::info!(account_id = %credentials.account.id, "signed in");

    Ok(NewSession {
        token,
        awaiting_second_factor: policy.requires_second_factor(&credentials.account),
        account: credentials.account,
        expires_at,
    })
}

/// Counts a sign-in attempt (a password or a one-time code) for `email` and the client address,
/// returning the attempt's id, and fails with `Throttled` when earlier failures exceed the
/// policy. The attempt is counted before anything is checked, so parallel attempts see each
/// other, and a success removes the address's attempts again.
pub(crate) async fn throttle_attempt(
    store: &dyn Store,
    clock: &dyn Clock,
    policy: &SessionPolicy,
    context: &AuditContext,
    email: &EmailAddress,
) -> Result<String, AppError> {
    let address = context.source_address.clone();
    let now = clock.now();
    let forget_before = now.saturating_sub(FAILURE_RETENTION).unwrap_or(now);
    let attempt_id = crate::random::new_uuid().to_string();
    store
        .record_sign_in_failure(
            email,
            address.as_deref().unwrap_or_default(),
            now,
            forget_before,
            &attempt_id,
        )
        .await?;

    let Some(retry_after) =
        throttle_wait(store, &policy.throttle, email, address.as_deref(), now).await?
    else {
        return Ok(attempt_id);
    };
    tracing::warn!(
        retry_after_seconds = retry_after.as_secs(),
        "sign-in throttled"
    );
    audit::record(
        store,
        clock,
        context,
        sign_in_entry(None, AuditOutcome::Denied),
    )
    .await?;
    Err(AppError::Throttled { retry_after })
}

/// A session's account, and whether the session still waits for the second sign-in step.
#[derive(Debug, Clone)]
pub struct ResolvedSession {
    pub account: Account,
    pub awaiting_second_factor: bool,
}

/// Resolves a session token to its account and records the activity, or ends the session when
/// it is idle or past its lifetime.
pub async fn resolve_session(
    store: &dyn Store,
    clock: &dyn Clock,
    policy: &SessionPolicy,
    token: &str,
) -> Result<ResolvedSession, AppError> {
    let digest = token_digest(token);
    let session = match store.find_session(&digest).await {
        Ok(session) => session,
        Err(StorageError::NotFound { .. }) => return Err(AppError::SessionEnded),
        Err(other) => return Err(other.into()),
    };
    // A session whose account was removed, or that another request ended meanwhile, has ended.
    let ended = |error: StorageError| match error {
        StorageError::NotFound { .. } => AppError::SessionEnded,
        other => other.into(),
    };
    let account = store.get_account(session.account_id).await.map_err(ended)?;

    let now = clock.now();
    if !policy.is_active(&session, &account, now) {
        store.delete_session(&digest).await?;
        tracing::info!(account_id = %account.id, "session expired");
        return Err(AppError::SessionEnded);
    }
    // Recording activity is a database write, so it is done at most once a minute per session;
    // the idle timeout is therefore measured to within a minute.
    if now.duration_since(session.last_seen_at) >= TOUCH_INTERVAL {
        store.touch_session(&digest, now).await.map_err(ended)?;
    }

    let awaiting_second_factor =
        session.second_factor_at.is_none() && policy.requires_second_factor(&account);
    Ok(ResolvedSession {
        account,
        awaiting_second_factor,
    })
}

/// Ends the session the token belongs to. Ending an unknown session is not an error.
pub async fn sign_out(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    token: &str,
) -> Result<(), AppError> {
    match store.delete_session(&token_digest(token)).await {
        Ok(()) => {
            let entry = AuditEntry {
                patient: None,
                resource_type: "Account",
                resource_id: context.actor.map(|id| id.to_string()),
                action: AuditAction::SignOut,
                outcome: AuditOutcome::Success,
                break_glass: false,
            };
            audit::record(store, clock, context, entry).await?;
            Ok(())
        }
        Err(StorageError::NotFound { .. }) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// How long the next attempt must wait, by the stricter of the per-address and per-client limits.
async fn throttle_wait(
    store: &dyn Store,
    policy: &ThrottlePolicy,
    email: &EmailAddress,
    address: Option<&str>,
    now: Timestamp,
) -> Result<Option<SignedDuration>, AppError> {
    let since = now.saturating_sub(policy.window).unwrap_or(now);
    let (mut by_email, mut by_address) = store
        .recent_sign_in_failures(email, address.unwrap_or_default(), since)
        .await?;
    // The attempt being decided was recorded already; only earlier ones count against it.
    for attempts in [&mut by_email, &mut by_address] {
        if let Some(position) = attempts.iter().position(|at| *at == now) {
            attempts.swap_remove(position);
        }
    }

    let for_email =
        policy.wait_before_next_attempt(&by_email, policy.max_failures_per_account, now);
    // Without a client address there is no bucket to count in: one shared "unknown" bucket would
    // let a single client lock everybody out.
    let for_address = address.and_then(|_| {
        policy.wait_before_next_attempt(&by_address, policy.max_failures_per_address, now)
    });
    Ok(for_email.max(for_address))
}

/// Ends every session of `account`, on every device, and returns how many ended.
pub async fn sign_out_everywhere(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<u64, AppError> {
    let ended = store.delete_account_sessions(account.id).await?;
    let entry = AuditEntry {
        patient: None,
        resource_type: "Account",
        resource_id: Some(account.id.to_string()),
        action: AuditAction::SignOut,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    tracing::info!(account_id = %account.id, sessions = ended, "signed out everywhere");
    Ok(ended)
}

/// The audit entry of a sign-in attempt on `account` (`None` when the address has no account).
fn sign_in_entry(account: Option<AccountId>, outcome: AuditOutcome) -> AuditEntry {
    AuditEntry {
        patient: None,
        resource_type: "Account",
        resource_id: account.map(|id| id.to_string()),
        action: AuditAction::SignIn,
        outcome,
        break_glass: false,
    }
}

/// An Argon2id hash of a random, discarded password, verified against when the e-mail address
/// has no account so that both paths cost one hash computation.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3RpbGxwb2ludGR1bW15$Nz0nMdCSPh2yG6Bx4CBUaEgb7lXJzl8y2QRrzcm2Wlw";

#[cfg(test)]
mod tests {
    use stillpoint_domain::{AccountId, Language, Role, RoleAssignment, TimeZoneName};

    use super::*;

    fn account_with(role: Role) -> Account {
        Account {
            id: AccountId::from_uuid(uuid::Uuid::nil()),
            email: EmailAddress::parse("a@example.org").expect("valid"),
            display_name: "A".to_owned(),
            language: Language::english(),
            time_zone: TimeZoneName::parse("UTC").expect("valid"),
            preferences: stillpoint_domain::DisplayPreferences::default(),
            roles: vec![RoleAssignment {
                role,
                site_id: None,
            }],
        }
    }

    fn session_at(start: Timestamp, last_seen: Timestamp) -> SignInSession {
        SignInSession {
            token_digest: String::new(),
            account_id: AccountId::from_uuid(uuid::Uuid::nil()),
            created_at: start,
            last_seen_at: last_seen,
            expires_at: start + SignedDuration::from_hours(12),
            second_factor_at: None,
        }
    }

    #[test]
    fn staff_session_ends_after_idle_timeout() {
        let policy = SessionPolicy::default();
        let start: Timestamp = "2026-12-04T09:00:00Z".parse().expect("valid");
        let session = session_at(start, start);
        let staff = account_with(Role::SystemAdministrator);
        assert!(policy.is_active(&session, &staff, start + SignedDuration::from_mins(14)));
        assert!(!policy.is_active(&session, &staff, start + SignedDuration::from_mins(15)));
    }

    #[test]
    fn patient_session_has_longer_idle_timeout() {
        let policy = SessionPolicy::default();
        let start: Timestamp = "2026-12-04T09:00:00Z".parse().expect("valid");
        let session = session_at(start, start);
        let patient = account_with(Role::Patient);
        assert!(policy.is_active(&session, &patient, start + SignedDuration::from_mins(59)));
        assert!(!policy.is_active(&session, &patient, start + SignedDuration::from_mins(60)));
    }

    #[test]
    fn active_session_ends_at_absolute_lifetime() {
        let policy = SessionPolicy::default();
        let start: Timestamp = "2026-12-04T09:00:00Z".parse().expect("valid");
        let end = start + SignedDuration::from_hours(12);
        let session = session_at(start, end - SignedDuration::from_mins(1));
        let patient = account_with(Role::Patient);
        assert!(!policy.is_active(&session, &patient, end));
    }

    #[test]
    fn password_hash_round_trip() {
        let hash = hash_password("correct horse battery").expect("hashes");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterY", &hash));
    }

    #[test]
    fn common_passwords_are_rejected() {
        for common in [
            "password",
            "Password1",
            "iloveyou",
            "12345678",
            "QWERTYUIOP",
        ] {
            let error = hash_password(common).expect_err(common);
            assert!(
                matches!(
                    error,
                    AppError::Invalid(InvalidValue {
                        field: "password",
                        ..
                    })
                ),
                "{common}"
            );
        }
        assert!(
            COMMON_PASSWORDS.len() > 10_000,
            "the bundled list is loaded"
        );
        assert!(!is_common_password("a long enough passphrase"));
    }

    #[test]
    fn short_password_is_rejected() {
        let error = hash_password("short").expect_err("too short");
        assert!(matches!(
            error,
            AppError::Invalid(InvalidValue {
                field: "password",
                ..
            })
        ));
    }

    #[test]
    fn dummy_hash_is_valid_phc() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!password_matches("anything", DUMMY_HASH));
    }
}
