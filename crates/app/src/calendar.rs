//! Private calendar feeds: each account can turn on one secret feed URL with its program
//! sessions, and turn it off or replace it at any time.
//!
//! The URL's token is the only credential a calendar client can send, so it is long, random,
//! stored only as its SHA-256 digest, and shown once when created.

use jiff::Timestamp;
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::care_team::CaregiverScope;
use stillpoint_domain::curriculum::Curriculum;
use stillpoint_domain::enrolment::EnrolmentState;
use stillpoint_domain::{Account, PatientId, Role};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{CohortDetails, CohortSession, Store};
use crate::random::{new_token, token_digest};
use crate::{AppError, Clock, StorageError, patients};

/// Creates the account's feed, replacing (and so revoking) any earlier one. Returns the token
/// for the URL; it is not stored and cannot be shown again.
pub async fn create_feed(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<String, AppError> {
    let token = new_token();
    store
        .put_calendar_feed(account.id, &token_digest(&token), clock.now())
        .await?;
    record(store, clock, context, account, None, AuditAction::Create).await?;
    tracing::info!(account_id = %account.id, "calendar feed created");
    Ok(token)
}

/// Turns the account's feed off; its URL stops working at once.
pub async fn revoke_feed(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<bool, AppError> {
    let revoked = store.delete_calendar_feed(account.id).await?;
    if revoked {
        record(store, clock, context, account, None, AuditAction::Delete).await?;
        tracing::info!(account_id = %account.id, "calendar feed revoked");
    }
    Ok(revoked)
}

/// When the account's current feed was created, if it has one.
pub async fn feed_created_at(
    store: &dyn Store,
    account: &Account,
) -> Result<Option<Timestamp>, AppError> {
    Ok(store.calendar_feed_created_at(account.id).await?)
}

/// One cohort's part of a feed.
#[derive(Debug, Clone)]
pub struct FeedCohort {
    pub details: CohortDetails,
    pub curriculum: Option<Curriculum>,
    pub sessions: Vec<CohortSession>,
}

/// A feed's content: the account it belongs to and the cohorts of its sessions.
#[derive(Debug, Clone)]
pub struct Feed {
    pub account: Account,
    pub cohorts: Vec<FeedCohort>,
}

/// Loads the feed for a URL token: a patient's own cohort while they hold a place in it, the
/// cohorts of patients who share their schedule with a caregiver, and the cohorts a facilitator
/// runs. Unknown, replaced or revoked tokens are `NotFound`, and so is the
/// feed of a deactivated account. Each fetch is audited as a read by the feed's owner from
/// `source_address`.
pub async fn feed(
    store: &dyn Store,
    clock: &dyn Clock,
    source_address: Option<String>,
    token: &str,
) -> Result<Feed, AppError> {
    let account_id = store.find_calendar_feed(&token_digest(token)).await?;
    let account = store.get_account(account_id).await?;
    if store.deactivated_accounts().await?.contains(&account.id) {
        return Err(StorageError::NotFound {
            entity: "calendar feed",
            id: "token".to_owned(),
        }
        .into());
    }

    let mut cohort_ids = Vec::new();
    let own_record = patients::own_record_id(store, &account).await?;
    let context = AuditContext::for_account(&account, source_address);
    record(
        store,
        clock,
        &context,
        &account,
        own_record,
        AuditAction::Read,
    )
    .await?;
    if let Some(patient) = own_record {
        let state = store.find_enrolment(patient).await?;
        if let Some(cohort) = state
            .filter(EnrolmentState::holds_place)
            .and_then(|state| state.cohort())
        {
            cohort_ids.push(cohort);
        }
    }
    // A caregiver gets the sessions of each patient who shares their schedule, while the grant
    // is active. Each such read is audited against that patient.
    if account.has_role(Role::Caregiver) {
        for (patient, grant) in store.patients_of_caregiver(account.id).await? {
            let shares_schedule =
                grant.revoked_at.is_none() && grant.scopes.contains(&CaregiverScope::Schedule);
            if !shares_schedule {
                continue;
            }
            let state = store.find_enrolment(patient.id).await?;
            if let Some(cohort) = state
                .filter(EnrolmentState::holds_place)
                .and_then(|state| state.cohort())
            {
                record(
                    store,
                    clock,
                    &context,
                    &account,
                    Some(patient.id),
                    AuditAction::Read,
                )
                .await?;
                if !cohort_ids.contains(&cohort) {
                    cohort_ids.push(cohort);
                }
            }
        }
    }
    if account.has_role(Role::Facilitator) {
        for details in store.list_cohort_details().await? {
            let facilitates = details
                .facilitators
                .iter()
                .any(|(facilitator, _)| *facilitator == account.id);
            if facilitates && !cohort_ids.contains(&details.cohort.id) {
                cohort_ids.push(details.cohort.id);
            }
        }
    }

    let mut cohorts = Vec::with_capacity(cohort_ids.len());
    for cohort in cohort_ids {
        let details = store.get_cohort_details(cohort).await?;
        let curriculum = match &details.curriculum {
            Some((id, version)) => {
                Some(store.get_curriculum_version(id, *version).await?.curriculum)
            }
            None => None,
        };
        cohorts.push(FeedCohort {
            sessions: store.list_cohort_sessions(cohort).await?,
            details,
            curriculum,
        });
    }
    Ok(Feed { account, cohorts })
}

/// Audits an action on the account's feed; a read names the patient whose schedule it shows.
async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    patient: Option<PatientId>,
    action: AuditAction,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient,
        resource_type: "CalendarFeed",
        resource_id: Some(account.id.to_string()),
        action,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
