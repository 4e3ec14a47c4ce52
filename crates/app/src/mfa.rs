//! Two-step verification for staff: a time-based one-time code (TOTP, RFC 6238) from an
//! authenticator app, with one-time recovery codes for a lost phone.
//!
//! Codes are the RFC 6238 defaults that every common authenticator app uses: HMAC-SHA-1, six
//! digits, 30-second steps. One step of clock drift either way is accepted, and each step is
//! accepted once per account (RFC 6238, section 5.2), so an overheard code cannot be replayed.
//! Wrong codes count against the same throttle as wrong passwords.

use jiff::Timestamp;
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::{Account, AccountId};
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::auth::{SessionPolicy, throttle_attempt};
use crate::ports::SignInSession;
use crate::ports::Store;
use crate::random::{new_token, token_digest};
use crate::secrets::SecretSealer;
use crate::{AppError, Clock, StorageError};

/// How many recovery codes an account gets at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Length of a TOTP shared secret in bytes: 160 bits, the length RFC 4226 (section 4) recommends.
const SECRET_LENGTH: usize = 20;

/// The state of an account's two-step verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorStatus {
    /// No authenticator set up, or set-up not finished.
    NotEnrolled,
    Enrolled {
        recovery_codes_left: i64,
    },
}

/// The secret and URI a person adds to an authenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The secret in base32, for typing in by hand or reading with a screen reader.
    pub secret_base32: String,
    /// The `otpauth://` URI that a QR code carries.
    pub otpauth_uri: String,
}

/// The kind of code that passed the second step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    AuthenticatorCode,
    /// A recovery code, now used up; `left` unused ones remain.
    RecoveryCode {
        left: i64,
    },
}

/// The dependencies of a one-time code check: storage, the key of the stored secrets, the clock
/// and the throttling policy.
#[derive(Debug, Clone, Copy)]
pub struct CodeCheck<'a> {
    pub store: &'a dyn Store,
    pub sealer: &'a SecretSealer,
    pub clock: &'a dyn Clock,
    pub policy: &'a SessionPolicy,
}

/// Returns the account's status.
pub async fn status(store: &dyn Store, account: AccountId) -> Result<SecondFactorStatus, AppError> {
    let credential = store.find_totp_credential(account).await?;
    if credential.is_some_and(|credential| credential.confirmed_at.is_some()) {
        let recovery_codes_left = store.count_unused_recovery_codes(account).await?;
        return Ok(SecondFactorStatus::Enrolled {
            recovery_codes_left,
        });
    }
    Ok(SecondFactorStatus::NotEnrolled)
}

/// Returns the unfinished enrolment of the account, starting one with a new secret when there is
/// none. Fails with `Forbidden` when an authenticator is set up already.
pub async fn enrolment(
    store: &dyn Store,
    sealer: &SecretSealer,
    clock: &dyn Clock,
    account: &Account,
    issuer: &str,
) -> Result<Enrolment, AppError> {
    let context = account.id.to_string();
    let secret = match store.find_totp_credential(account.id).await? {
        Some(credential) if credential.confirmed_at.is_some() => return Err(AppError::Forbidden),
        Some(credential) => open_secret(sealer, account.id, &credential.sealed_secret)?,
        None => {
            let secret = new_secret();
            let sealed_secret = sealer.seal(&context, &secret);
            store
                .put_unconfirmed_totp(account.id, &sealed_secret, clock.now())
                .await?;
            secret
        }
    };

    let totp = totp_for(secret, Some((issuer, account.email.as_str())))?;
    let otpauth_uri = totp
        .to_url()
        .map_err(|error| AppError::Internal(format!("otpauth URI failed: {error}")))?;
    Ok(Enrolment {
        secret_base32: totp.secret().to_base32(),
        otpauth_uri,
    })
}

/// Finishes enrolment with a first code from the app, marks the session as verified, and
/// returns new recovery codes, which are shown once and stored only as digests.
pub async fn confirm_enrolment(
    check: CodeCheck<'_>,
    context: &AuditContext,
    account: &Account,
    session_token: &str,
    code: &str,
) -> Result<(Vec<String>, String), AppError> {
    let CodeCheck {
        store,
        sealer,
        clock,
        policy,
    } = check;
    let now = clock.now();
    throttle_attempt(store, clock, policy, context, &account.email).await?;
    let credential = store
        .find_totp_credential(account.id)
        .await?
        .filter(|credential| credential.confirmed_at.is_none())
        .ok_or(AppError::Forbidden)?;
    let secret = open_secret(sealer, account.id, &credential.sealed_secret)?;

    let Some(step) = matching_step(&secret, code, now)? else {
        record(store, clock, context, account.id, AuditOutcome::Denied).await?;
        return Err(AppError::InvalidOneTimeCode);
    };
    let codes = new_recovery_codes();
    let digests: Vec<String> = codes
        .iter()
        .map(|code| recovery_digest(sealer, code))
        .collect();
    store.confirm_totp(account.id, step, now, &digests).await?;
    // Every other session that passed the password step could have seen the secret during
    // set-up, so only the session that confirmed it survives.
    let keep = token_digest(session_token);
    end_other_sessions(store, account, &keep).await?;
    let token = finish(store, clock, context, account, session_token, now).await?;
    tracing::info!(account_id = %account.id, "authenticator app set up");
    Ok((codes, token))
}

/// Checks a code from the authenticator app, or a recovery code, for a session that has passed
/// the password step, and marks the session as verified.
pub async fn verify(
    check: CodeCheck<'_>,
    context: &AuditContext,
    account: &Account,
    session_token: &str,
    code: &str,
) -> Result<(Verified, String), AppError> {
    let CodeCheck {
        store,
        sealer,
        clock,
        policy,
    } = check;
    let now = clock.now();
    throttle_attempt(store, clock, policy, context, &account.email).await?;
    let credential = store
        .find_totp_credential(account.id)
        .await?
        .filter(|credential| credential.confirmed_at.is_some())
        .ok_or(AppError::Forbidden)?;

    let normalised = normalise(code);
    let verified = if normalised.len() == 6 && normalised.bytes().all(|b| b.is_ascii_digit()) {
        let secret = open_secret(sealer, account.id, &credential.sealed_secret)?;
        match matching_step(&secret, &normalised, now)? {
            Some(step) if store.claim_totp_step(account.id, step).await? => {
                Some(Verified::AuthenticatorCode)
            }
            _ => None,
        }
    } else if store
        .use_recovery_code(account.id, &recovery_digest(sealer, &normalised), now)
        .await?
    {
        let left = store.count_unused_recovery_codes(account.id).await?;
        tracing::info!(account_id = %account.id, left, "recovery code used");
        Some(Verified::RecoveryCode { left })
    } else {
        None
    };

    let Some(verified) = verified else {
        tracing::info!(account_id = %account.id, "second sign-in step failed: wrong code");
        record(store, clock, context, account.id, AuditOutcome::Denied).await?;
        return Err(AppError::InvalidOneTimeCode);
    };
    let token = finish(store, clock, context, account, session_token, now).await?;
    Ok((verified, token))
}

/// Replaces the account's recovery codes with new ones and returns them.
pub async fn renew_recovery_codes(
    store: &dyn Store,
    sealer: &SecretSealer,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<Vec<String>, AppError> {
    if !matches!(
        status(store, account.id).await?,
        SecondFactorStatus::Enrolled { .. }
    ) {
        return Err(AppError::Forbidden);
    }
    let codes = new_recovery_codes();
    let digests: Vec<String> = codes
        .iter()
        .map(|code| recovery_digest(sealer, code))
        .collect();
    store.replace_recovery_codes(account.id, &digests).await?;
    record(store, clock, context, account.id, AuditOutcome::Success).await?;
    tracing::info!(account_id = %account.id, "recovery codes renewed");
    Ok(codes)
}

/// Removes an account's authenticator and recovery codes and ends its sessions, for someone who
/// lost both; their next sign-in sets up a new authenticator.
pub async fn reset(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: AccountId,
) -> Result<(), AppError> {
    store.remove_second_factor(account).await?;
    store.delete_account_sessions(account).await?;
    record(store, clock, context, account, AuditOutcome::Success).await?;
    tracing::info!(account_id = %account, "two-step verification reset");
    Ok(())
}

/// Computes the code the account's authenticator app shows at `at`, or `None` without a
/// confirmed one. Only the demo shows it, so visitors can sign in as staff without an app.
pub async fn current_code(
    store: &dyn Store,
    sealer: &SecretSealer,
    account: &Account,
    at: Timestamp,
) -> Result<Option<String>, AppError> {
    let Some(credential) = store
        .find_totp_credential(account.id)
        .await?
        .filter(|credential| credential.confirmed_at.is_some())
    else {
        return Ok(None);
    };
    let secret = open_secret(sealer, account.id, &credential.sealed_secret)?;
    let totp = totp_for(secret, None)?;
    // The current step's code may have been used already; the next step's is accepted too.
    // Beyond that no code works until time moves on.
    let now_step = unix_seconds(at) / 30;
    let unused = u64::try_from(credential.last_used_step + 1).unwrap_or_default();
    let step = now_step.max(unused);
    if step > now_step + 1 {
        return Ok(None);
    }
    Ok(Some(totp.generate(step * 30).to_string()))
}

/// Computes the code an authenticator app shows for `secret_base32` at `at`, for tests.
pub fn code_at(secret_base32: &str, at: Timestamp) -> Result<String, AppError> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|error| AppError::Internal(format!("invalid base32 secret: {error}")))?;
    code_for_secret(secret.as_bytes(), at)
}

/// Computes the code an authenticator app shows for the raw `secret` at `at`.
pub fn code_for_secret(secret: &[u8], at: Timestamp) -> Result<String, AppError> {
    let totp = totp_for(secret.to_vec(), None)?;
    Ok(totp.generate(unix_seconds(at)).to_string())
}

/// Generates a random secret of [`SECRET_LENGTH`] bytes.
#[must_use]
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0_u8; SECRET_LENGTH];
    // NOTE: without the operating system's random source no secret can be made; panicking is
    // deliberate and happens before anything is stored.
    getrandom::fill(&mut secret).expect("the operating system's random source failed");
    secret
}

async fn end_other_sessions(
    store: &dyn Store,
    account: &Account,
    keep: &str,
) -> Result<(), AppError> {
    let current = store.find_session(keep).await?;
    store.delete_account_sessions(account.id).await?;
    store.insert_session(&current).await?;
    Ok(())
}

/// Completes the second step: clears the throttle, replaces the session with a new fully
/// signed-in one under a new token (so a token seen before the step is worthless after it), and
/// records the success. Returns the new token.
async fn finish(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session_token: &str,
    now: Timestamp,
) -> Result<String, AppError> {
    store.clear_sign_in_failures(&account.email).await?;
    let old_digest = token_digest(session_token);
    let old = store
        .find_session(&old_digest)
        .await
        .map_err(|error| match error {
            StorageError::NotFound { .. } => AppError::SessionEnded,
            other => other.into(),
        })?;
    let token = new_token();
    let session = SignInSession {
        token_digest: token_digest(&token),
        account_id: account.id,
        created_at: old.created_at,
        last_seen_at: now,
        expires_at: old.expires_at,
        second_factor_at: Some(now),
    };
    store.insert_session(&session).await?;
    store.delete_session(&old_digest).await?;
    record(store, clock, context, account.id, AuditOutcome::Success).await?;
    Ok(token)
}

async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: AccountId,
    outcome: AuditOutcome,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: None,
        resource_type: "Account",
        resource_id: Some(account.to_string()),
        action: AuditAction::SecondFactor,
        outcome,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}

fn open_secret(
    sealer: &SecretSealer,
    account: AccountId,
    sealed_secret: &str,
) -> Result<Vec<u8>, AppError> {
    sealer.open(&account.to_string(), sealed_secret).map_err(|error| {
        tracing::error!(account_id = %account, error = %error, "stored TOTP secret does not open; is the secrets key the one it was sealed with?");
        AppError::Internal(error.to_string())
    })
}

fn totp_for(secret: Vec<u8>, label: Option<(&str, &str)>) -> Result<Totp, AppError> {
    let mut builder = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(secret);
    if let Some((issuer, account_name)) = label {
        // The otpauth label separates issuer and account with ':', so neither may contain one.
        builder = builder
            .with_issuer(Some(issuer.replace(':', " ")))
            .with_account_name(account_name.replace(':', " "));
    }
    builder
        .build()
        .map_err(|error| AppError::Internal(format!("TOTP set-up failed: {error}")))
}

/// Finds the time step a six-digit `code` matches at `now`, within one step either way.
fn matching_step(secret: &[u8], code: &str, now: Timestamp) -> Result<Option<i64>, AppError> {
    let code = normalise(code);
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp_for(secret.to_vec(), None)?;
    Ok(totp
        .check(&code, unix_seconds(now))
        .and_then(|step| i64::try_from(step).ok()))
}

fn unix_seconds(at: Timestamp) -> u64 {
    u64::try_from(at.as_second()).unwrap_or_default()
}

/// Removes spaces and dashes and lower-cases, so "123 456" and "ABCDE-FGHIJ" are accepted.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Recovery codes of ten characters from an alphabet without look-alike characters (no 0/o, 1/l),
/// written in two groups of five: 10 × 5 bits = 50 bits each.
fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let mut bytes = [0_u8; 10];
            getrandom::fill(&mut bytes).expect("the operating system's random source failed");
            let characters: String = bytes
                .iter()
                .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
                .collect();
            format!("{}-{}", &characters[..5], &characters[5..])
        })
        .collect()
}

fn recovery_digest(sealer: &SecretSealer, code: &str) -> String {
    sealer.keyed_digest("recovery code", &normalise(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_test_vectors_match() {
        // RFC 6238, appendix B, with the ASCII secret "12345678901234567890". The published
        // codes have eight digits, and a six-digit code is their last six.
        let secret = b"12345678901234567890".to_vec();
        for (seconds, eight_digits) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let at = Timestamp::from_second(seconds).expect("valid instant");
            let totp = totp_for(secret.clone(), None).expect("valid");
            assert_eq!(
                totp.generate(unix_seconds(at)).to_string(),
                eight_digits[2..],
                "{seconds}"
            );
        }
    }

    #[test]
    fn code_matches_within_one_step() {
        let secret = new_secret();
        let base32 = totp_for(secret.clone(), None)
            .expect("valid")
            .secret()
            .to_base32();
        let now = Timestamp::from_second(1_800_000_000).expect("valid");
        let code = code_at(&base32, now).expect("code");
        let step = 1_800_000_000 / 30;
        assert_eq!(matching_step(&secret, &code, now).expect("ok"), Some(step));
        let later = now + jiff::SignedDuration::from_secs(30);
        assert_eq!(
            matching_step(&secret, &code, later).expect("ok"),
            Some(step)
        );
        let much_later = now + jiff::SignedDuration::from_secs(90);
        assert_eq!(matching_step(&secret, &code, much_later).expect("ok"), None);
        assert_eq!(matching_step(&secret, "12345", now).expect("ok"), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        let sealer = SecretSealer::new(&[3; 32]);
        assert_eq!(
            recovery_digest(&sealer, code),
            recovery_digest(&sealer, &code.to_uppercase())
        );
        assert_eq!(
            recovery_digest(&sealer, code),
            recovery_digest(&sealer, &code.replace('-', " "))
        );
    }
}
