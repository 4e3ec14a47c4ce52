//! Recording and verifying the audit trail.
//!
//! Every read and write of patient data, and every sign-in and sign-out, appends an event. A
//! failure to record fails the action too: access that cannot be accounted for is not granted.

use stillpoint_domain::audit::{
    AuditAction, AuditEvent, AuditOutcome, ChainBreak, ChainVerifier, Checkpoint, NewAuditEvent,
};
use stillpoint_domain::{Account, AccountId, PatientId, Role};

use crate::ports::Store;
use crate::{AppError, Clock, StorageError};

/// Who is acting and from where, as the web layer knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    pub actor: Option<AccountId>,
    pub actor_role: Option<Role>,
    pub source_address: Option<String>,
}

impl AuditContext {
    /// The context of a signed-in account. The role recorded is its first staff role, else its
    /// first role.
    #[must_use]
    pub fn for_account(account: &Account, source_address: Option<String>) -> Self {
        let role = account
            .roles
            .iter()
            .map(|assignment| assignment.role)
            .find(|role| role.is_staff())
            .or_else(|| account.roles.first().map(|assignment| assignment.role));
        Self {
            actor: Some(account.id),
            actor_role: role,
            source_address,
        }
    }

    /// The context of a request from someone not (yet) signed in.
    #[must_use]
    pub fn anonymous(source_address: Option<String>) -> Self {
        Self {
            actor: None,
            actor_role: None,
            source_address,
        }
    }
}

/// What happened to which record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub patient: Option<PatientId>,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
}

/// Appends one event to the trail.
pub async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    entry: AuditEntry,
) -> Result<AuditEvent, AppError> {
    let event = NewAuditEvent {
        recorded_at: clock.now(),
        actor: context.actor,
        actor_role: context.actor_role,
        patient: entry.patient,
        resource_type: entry.resource_type.to_owned(),
        resource_id: entry.resource_id,
        action: entry.action,
        outcome: entry.outcome,
        source_address: context.source_address.clone(),
        break_glass: false,
    };
    store.append_audit_event(&event).await.map_err(|error| {
        tracing::error!(error = %error, action = %event.action, "audit event could not be recorded");
        AppError::from(error)
    })
}

/// The result of walking the whole trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailReport {
    /// Number of events checked.
    pub events: i64,
    /// The last event's sequence and hash.
    pub head: Option<(i64, String)>,
}

/// Why verification did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit trail broken: {0}")]
    Broken(#[from] ChainBreak),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Events read per query while verifying.
const PAGE_SIZE: i64 = 1000;

/// Walks the whole trail in sequence order and checks every link, and the checkpoint when one is
/// given.
pub async fn verify_trail(
    store: &dyn Store,
    checkpoint: Option<Checkpoint>,
    key: &[u8],
) -> Result<TrailReport, VerifyError> {
    let mut verifier = ChainVerifier::new(checkpoint, key)?;
    let mut after = 0;
    let mut head = None;
    loop {
        let page = store.list_audit_events(after, PAGE_SIZE).await?;
        for event in &page {
            verifier.check(event)?;
        }
        let Some(last) = page.last() else { break };
        after = last.sequence;
        head = Some((last.sequence, last.hash.clone()));
        if i64::try_from(page.len()).unwrap_or(0) < PAGE_SIZE {
            break;
        }
    }
    let events = verifier.finish()?;
    Ok(TrailReport { events, head })
}
