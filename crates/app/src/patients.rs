//! Reading patients' records.

use stillpoint_domain::{Account, Role, SiteId};

use crate::ports::Store;
use crate::{AppError, StorageError};

/// The site that holds the care of the patient `account` signs in as, or `None` for an account
/// that is not a patient's or has no record yet.
pub async fn care_site_of(
    store: &dyn Store,
    account: &Account,
) -> Result<Option<SiteId>, AppError> {
    if !account.has_role(Role::Patient) {
        return Ok(None);
    }
    match store.find_patient_for_account(account.id).await {
        Ok(patient) => Ok(Some(patient.site_id)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other.into()),
    }
}
