//! Reading patients' records.

use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::{Account, Role, SiteId};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::Store;
use crate::{AppError, Clock, StorageError};

/// The site that holds the care of the patient `account` signs in as, or `None` for an account
/// that is not a patient's or has no record yet. Reading the record is audited.
pub async fn care_site_of(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<Option<SiteId>, AppError> {
    if !account.has_role(Role::Patient) {
        return Ok(None);
    }
    let patient = match store.find_patient_for_account(account.id).await {
        Ok(patient) => patient,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(other.into()),
    };

    let entry = AuditEntry {
        patient: Some(patient.id),
        resource_type: "Patient",
        resource_id: Some(patient.id.to_string()),
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(Some(patient.site_id))
}

/// Returns a patient's full name, for staff-facing lists such as the break-glass report.
pub async fn display_name(
    store: &dyn Store,
    patient: stillpoint_domain::PatientId,
) -> Result<String, AppError> {
    let patient = store.get_patient(patient).await?;
    Ok(format!("{} {}", patient.given_name, patient.family_name))
}

/// Returns the id of the patient record `account` signs in to, if it is a patient's account
/// with one.
pub async fn own_record_id(
    store: &dyn Store,
    account: &Account,
) -> Result<Option<stillpoint_domain::PatientId>, AppError> {
    if !account.has_role(Role::Patient) {
        return Ok(None);
    }
    match store.find_patient_for_account(account.id).await {
        Ok(patient) => Ok(Some(patient.id)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other.into()),
    }
}
