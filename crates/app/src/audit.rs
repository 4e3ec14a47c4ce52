//! Recording and verifying the audit trail.
//!
//! Sign-ins, sign-outs, reads of a patient's record and searches of the trail append events; each
//! use case that touches patient data records its own. A failure to record fails the action too:
//! access that cannot be accounted for is not granted.

use stillpoint_domain::audit::{
    AuditAction, AuditEvent, AuditOutcome, ChainBreak, ChainVerifier, Checkpoint, NewAuditEvent,
};
use stillpoint_domain::{Account, AccountId, PatientId, Role, SiteId};

use crate::ports::{AuditFilter, Store};
use crate::{AppError, Clock, StorageError};

/// The acting account and the client address, as the web layer resolved them.
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

/// The record an event concerns and the action taken on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub patient: Option<PatientId>,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// Whether the access happened under break-glass access rather than care-team membership.
    pub break_glass: bool,
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
        break_glass: entry.break_glass,
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

/// The reason verification did not succeed.
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

/// Most events one search returns.
pub const SEARCH_LIMIT: i64 = 500;

/// Lists audit events for an administrator: a system administrator gets every event, a program
/// administrator only events about patients of their sites. The search itself is audited.
pub async fn search(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    mut filter: AuditFilter,
) -> Result<Vec<AuditEvent>, AppError> {
    if !account.has_role(Role::SystemAdministrator) {
        let sites: Vec<SiteId> = account
            .roles
            .iter()
            .filter(|assignment| assignment.role == Role::ProgramAdministrator)
            .filter_map(|assignment| assignment.site_id)
            .collect();
        if sites.is_empty() {
            return Err(AppError::Forbidden);
        }
        filter.patient_sites = Some(sites);
    }

    let events = store.search_audit_events(&filter, SEARCH_LIMIT).await?;
    let entry = AuditEntry {
        patient: filter.patient,
        resource_type: "AuditEvent",
        resource_id: None,
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    record(store, clock, context, entry).await?;
    Ok(events)
}

/// One access to a patient's record, as the patient's access report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAccess {
    pub event: AuditEvent,
    /// The display name of the account that acted, when it still exists.
    pub actor_name: Option<String>,
}

/// Lists who accessed the signed-in patient's record, newest first, leaving out the patient's
/// own actions. Viewing the report is audited as a read of the patient's record.
pub async fn record_access_report(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<Vec<RecordAccess>, AppError> {
    if !account.has_role(Role::Patient) {
        return Err(AppError::Forbidden);
    }
    let patient = match store.find_patient_for_account(account.id).await {
        Ok(patient) => patient,
        Err(StorageError::NotFound { .. }) => return Ok(Vec::new()),
        Err(other) => return Err(other.into()),
    };

    let filter = AuditFilter {
        patient: Some(patient.id),
        ..AuditFilter::default()
    };
    let events = store.search_audit_events(&filter, SEARCH_LIMIT).await?;
    let mut names: Vec<(AccountId, Option<String>)> = Vec::new();
    let mut report = Vec::new();
    for event in events
        .into_iter()
        .filter(|event| event.event.actor != Some(account.id))
    {
        let actor_name = match event.event.actor {
            Some(actor) => display_name(store, &mut names, actor).await?,
            None => None,
        };
        report.push(RecordAccess { event, actor_name });
    }

    let entry = AuditEntry {
        patient: Some(patient.id),
        resource_type: "AuditEvent",
        resource_id: None,
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    record(store, clock, context, entry).await?;
    Ok(report)
}

/// The display name of `actor`, looked up once per report; `None` for a removed account.
async fn display_name(
    store: &dyn Store,
    names: &mut Vec<(AccountId, Option<String>)>,
    actor: AccountId,
) -> Result<Option<String>, AppError> {
    if let Some((_, name)) = names.iter().find(|(id, _)| *id == actor) {
        return Ok(name.clone());
    }
    let name = match store.get_account(actor).await {
        Ok(account) => Some(account.display_name),
        Err(StorageError::NotFound { .. }) => None,
        Err(other) => return Err(other.into()),
    };
    names.push((actor, name.clone()));
    Ok(name)
}
