//! Opening patients' records under the care-team rules (see
//! [`stillpoint_domain::care_team`]), caregivers' grants, and break-glass access.
//!
//! Every attempt to open a record is audited, including refused ones, and accesses under
//! break-glass access are flagged.

use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::care_team::{
    self, BreakGlassGrant, CareRelationship, CaregiverGrant, CaregiverScope, Cohort, RecordAccess,
};
use stillpoint_domain::consent::CAREGIVER_SHARING;
use stillpoint_domain::{Account, AccountId, EmailAddress, InvalidValue, Patient, PatientId, Role};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{PatientSummary, Store};
use crate::{AppError, Clock, StorageError};

/// A patient's record as the viewer may see it.
#[derive(Debug, Clone)]
pub struct PatientRecord {
    pub patient: Patient,
    pub cohorts: Vec<Cohort>,
    pub access: RecordAccess,
}

/// Decides what `account` may see of `patient`.
pub async fn access_to(
    store: &dyn Store,
    clock: &dyn Clock,
    account: &Account,
    patient: &Patient,
) -> Result<RecordAccess, AppError> {
    let facilitates_patient = account.has_role(Role::Facilitator)
        && store.facilitates_patient(account.id, patient.id).await?;
    let caregiver_scopes = if account.has_role(Role::Caregiver) {
        store
            .find_caregiver_grant(patient.id, account.id)
            .await?
            .map(|grant| grant.active_scopes().to_vec())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let break_glass = care_team::may_break_glass(account)
        && store
            .active_break_glass(account.id, patient.id, clock.now())
            .await?
            .is_some();

    let relationship = CareRelationship {
        own_record: patient.account_id == Some(account.id),
        patient_site: patient.site_id,
        facilitates_patient,
        caregiver_scopes,
        break_glass,
    };
    Ok(care_team::record_access(account, &relationship))
}

/// Opens a patient's record, auditing the attempt whatever its outcome. An unknown id is
/// `NotFound` and a record outside the viewer's care is `Forbidden`.
pub async fn open_record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    patient_id: PatientId,
) -> Result<PatientRecord, AppError> {
    let patient = match store.get_patient(patient_id).await {
        Ok(patient) => patient,
        Err(StorageError::NotFound { .. }) => {
            record_read(
                store,
                clock,
                context,
                patient_id,
                AuditOutcome::Denied,
                false,
            )
            .await?;
            return Err(StorageError::NotFound {
                entity: "patient",
                id: patient_id.to_string(),
            }
            .into());
        }
        Err(other) => return Err(other.into()),
    };

    let access = access_to(store, clock, account, &patient).await?;
    if access == RecordAccess::Denied {
        tracing::info!(account_id = %account.id, patient_id = %patient_id, "patient record access denied: outside the care team");
        record_read(
            store,
            clock,
            context,
            patient_id,
            AuditOutcome::Denied,
            false,
        )
        .await?;
        return Err(AppError::Forbidden);
    }
    let break_glass = access == RecordAccess::BreakGlass;
    record_read(
        store,
        clock,
        context,
        patient_id,
        AuditOutcome::Success,
        break_glass,
    )
    .await?;

    let cohorts = if access.sees_clinical_record() {
        store.cohorts_of_patient(patient_id).await?
    } else {
        Vec::new()
    };
    Ok(PatientRecord {
        patient,
        cohorts,
        access,
    })
}

/// Lists the patients in the viewer's care: at the sites where they are a clinician or program
/// administrator, and in the cohorts they facilitate. The list view is audited as one read.
pub async fn list_patients(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<Vec<PatientSummary>, AppError> {
    let sites = care_team::sites_with_full_view(account);
    let facilitator = account.has_role(Role::Facilitator).then_some(account.id);
    let patients = store.list_care_team_patients(&sites, facilitator).await?;
    let entry = AuditEntry {
        patient: None,
        resource_type: "PatientList",
        resource_id: None,
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(patients)
}

/// Opens break-glass access for a clinician to a patient outside their care team, for
/// [`care_team::BREAK_GLASS_DURATION`]. The program administrators of the patient's site see it
/// on their home page.
pub async fn break_glass(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    patient_id: PatientId,
    reason: &str,
) -> Result<BreakGlassGrant, AppError> {
    let patient = store.get_patient(patient_id).await?;
    if access_to(store, clock, account, &patient).await? != RecordAccess::Denied {
        return Err(InvalidValue::new(
            "reason",
            "you can already open this record; break-glass access is only for patients outside your care team",
        )
        .into());
    }
    let grant = BreakGlassGrant::open(account, patient_id, reason, clock.now())?;
    store.insert_break_glass(&grant).await?;

    let entry = AuditEntry {
        patient: Some(patient_id),
        resource_type: "BreakGlassAccess",
        resource_id: Some(patient_id.to_string()),
        action: AuditAction::Create,
        outcome: AuditOutcome::Success,
        break_glass: true,
    };
    audit::record(store, clock, context, entry).await?;
    // NOTE: program administrators see break-glass access on their home page; an e-mail to them
    // waits for the notifications service.
    tracing::warn!(account_id = %account.id, patient_id = %patient_id, "break-glass access opened");
    Ok(grant)
}

/// Returns the viewer's unexpired break-glass access to `patient`, if any.
pub async fn active_break_glass(
    store: &dyn Store,
    clock: &dyn Clock,
    account: &Account,
    patient: PatientId,
) -> Result<Option<BreakGlassGrant>, AppError> {
    Ok(store
        .active_break_glass(account.id, patient, clock.now())
        .await?)
}

/// Lists break-glass access opened in the last 14 days to patients at the administrator's
/// sites. A non-empty report is audited as one read, because it names patients.
pub async fn recent_break_glass(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<Vec<BreakGlassGrant>, AppError> {
    let sites: Vec<_> = account
        .roles
        .iter()
        .filter(|held| held.role == Role::ProgramAdministrator)
        .filter_map(|held| held.site_id)
        .collect();
    let now = clock.now();
    let since = now
        .saturating_sub(jiff::SignedDuration::from_hours(14 * 24))
        .unwrap_or(now);
    let grants = store.recent_break_glass(&sites, since).await?;
    if !grants.is_empty() {
        // One event for the report as a whole: it is an oversight list, and a line per patient
        // on every home page view would flood the patients' own access reports.
        record_list_read(store, clock, context, "BreakGlassReport", None).await?;
    }
    Ok(grants)
}

/// Returns the patient record of a patient's own account.
async fn own_patient(store: &dyn Store, account: &Account) -> Result<Patient, AppError> {
    if !account.has_role(Role::Patient) {
        return Err(AppError::Forbidden);
    }
    match store.find_patient_for_account(account.id).await {
        Ok(patient) => Ok(patient),
        Err(StorageError::NotFound { .. }) => Err(AppError::Forbidden),
        Err(other) => Err(other.into()),
    }
}

/// A grant with the caregiver's account, for the patient's sharing page.
#[derive(Debug, Clone)]
pub struct GrantView {
    pub grant: CaregiverGrant,
    pub caregiver: Account,
}

/// Lists the patient's grants to caregivers, revoked ones included. The read is audited.
pub async fn caregiver_grants(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<Vec<GrantView>, AppError> {
    let patient = own_patient(store, account).await?;
    record_list_read(store, clock, context, "CaregiverGrant", Some(patient.id)).await?;
    let mut views = Vec::new();
    for grant in store.caregiver_grants_of_patient(patient.id).await? {
        let caregiver = store.get_account(grant.caregiver).await?;
        views.push(GrantView { grant, caregiver });
    }
    Ok(views)
}

/// The result of sharing with a caregiver.
#[derive(Debug, Clone)]
pub enum Sharing {
    /// The caregiver has an account, which can now open the chosen parts.
    Granted(CaregiverGrant),
    /// The address has no account: an invitation for the patient to pass on, which creates the
    /// caregiver's account and the grant when accepted.
    Invited(crate::invitations::IssuedLink),
}

/// Shares the chosen parts of the patient's program with the caregiver at `email`, replacing an
/// earlier grant to the same caregiver, or invites them when they have no account yet.
pub async fn grant_caregiver(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    email: &str,
    scopes: &[CaregiverScope],
) -> Result<Sharing, AppError> {
    let patient = own_patient(store, account).await?;
    if scopes.is_empty() {
        return Err(InvalidValue::new(
            "scopes",
            "choose at least one thing to share, or stop sharing instead",
        )
        .into());
    }
    let agreed = store
        .consent_records_of_patient(patient.id)
        .await?
        .into_iter()
        .find(|record| record.document_id == CAREGIVER_SHARING)
        .is_some_and(|record| record.withdrawn_at.is_none());
    if !agreed {
        return Err(InvalidValue::new(
            "consent",
            "first agree to the caregiver sharing document on the Consent page",
        )
        .into());
    }
    let email = EmailAddress::parse(email)?;
    let caregiver = match store.find_credentials(&email).await {
        Ok(credentials) if credentials.account.has_role(Role::Caregiver) => credentials.account,
        Ok(_) => {
            return Err(InvalidValue::new(
                "email",
                "this address belongs to an account that is not a caregiver's; use your caregiver's own address",
            )
            .into());
        }
        Err(StorageError::NotFound { .. }) => {
            let link = crate::invitations::invite_caregiver(
                store,
                clock,
                context,
                account,
                email.as_str(),
                scopes,
            )
            .await?;
            return Ok(Sharing::Invited(link));
        }
        Err(other) => return Err(other.into()),
    };

    let grant = CaregiverGrant {
        patient_id: patient.id,
        caregiver: caregiver.id,
        scopes: scopes.to_vec(),
        granted_at: clock.now(),
        revoked_at: None,
    };
    store.put_caregiver_grant(&grant).await?;
    record_grant_change(
        store,
        clock,
        context,
        &patient,
        caregiver.id,
        AuditAction::Create,
    )
    .await?;
    tracing::info!(patient_id = %patient.id, caregiver_id = %caregiver.id, "caregiver grant saved");
    Ok(Sharing::Granted(grant))
}

/// Stops sharing with every caregiver of `patient`, for the withdrawal of the caregiver sharing
/// consent; returns how many grants ended.
pub(crate) async fn revoke_all_caregivers(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: &Patient,
) -> Result<usize, AppError> {
    let mut revoked = 0;
    for grant in store.caregiver_grants_of_patient(patient.id).await? {
        if store
            .revoke_caregiver_grant(patient.id, grant.caregiver, clock.now())
            .await?
        {
            record_grant_change(
                store,
                clock,
                context,
                patient,
                grant.caregiver,
                AuditAction::Delete,
            )
            .await?;
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// Stops sharing with a caregiver, at once.
pub async fn revoke_caregiver(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    caregiver: AccountId,
) -> Result<(), AppError> {
    let patient = own_patient(store, account).await?;
    if !store
        .revoke_caregiver_grant(patient.id, caregiver, clock.now())
        .await?
    {
        return Err(StorageError::NotFound {
            entity: "caregiver grant",
            id: caregiver.to_string(),
        }
        .into());
    }
    record_grant_change(
        store,
        clock,
        context,
        &patient,
        caregiver,
        AuditAction::Delete,
    )
    .await?;
    tracing::info!(patient_id = %patient.id, caregiver_id = %caregiver, "caregiver grant revoked");
    Ok(())
}

/// Lists the patients who share with a caregiver, with what they share. The read is audited
/// once per patient listed.
pub async fn shared_with_caregiver(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<Vec<(PatientSummary, CaregiverGrant)>, AppError> {
    if !account.has_role(Role::Caregiver) {
        return Ok(Vec::new());
    }
    let shared = store.patients_of_caregiver(account.id).await?;
    for (patient, _) in &shared {
        record_list_read(store, clock, context, "CaregiverGrant", Some(patient.id)).await?;
    }
    Ok(shared)
}

async fn record_list_read(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    resource_type: &'static str,
    patient: Option<PatientId>,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient,
        resource_type,
        resource_id: None,
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}

async fn record_read(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: PatientId,
    outcome: AuditOutcome,
    break_glass: bool,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: Some(patient),
        resource_type: "Patient",
        resource_id: Some(patient.to_string()),
        action: AuditAction::Read,
        outcome,
        break_glass,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}

async fn record_grant_change(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: &Patient,
    caregiver: AccountId,
    action: AuditAction,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: Some(patient.id),
        resource_type: "CaregiverGrant",
        resource_id: Some(caregiver.to_string()),
        action,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
