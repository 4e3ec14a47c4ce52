//! Referring a patient: a clinician or program administrator at a site creates the patient's
//! record, which starts the enrolment pathway at "referred".

use jiff::civil::Date;
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::{
    Account, ChronicCondition, InvalidValue, Language, Patient, PatientId, Role, SiteId,
    TimeZoneName,
};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::Store;
use crate::random::new_uuid;
use crate::{AppError, Clock};

/// The referral form's fields.
#[derive(Debug, Clone)]
pub struct Referral {
    pub site: SiteId,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Date,
    pub language: Language,
    pub time_zone: String,
    pub conditions: Vec<ChronicCondition>,
}

/// Returns the sites where `account` may refer patients: where it is a clinician or program
/// administrator.
#[must_use]
pub fn referring_sites(account: &Account) -> Vec<SiteId> {
    account
        .roles
        .iter()
        .filter(|held| matches!(held.role, Role::Clinician | Role::ProgramAdministrator))
        .filter_map(|held| held.site_id)
        .collect()
}

/// Creates the referred patient's record and returns its id.
pub async fn refer(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    staff: &Account,
    referral: Referral,
) -> Result<PatientId, AppError> {
    if !referring_sites(staff).contains(&referral.site) {
        return Err(AppError::Forbidden);
    }
    let name = |field: &'static str, value: &str| {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > 100 {
            Err(InvalidValue::new(
                field,
                "enter the name as the patient writes it, up to 100 characters",
            ))
        } else {
            Ok(value.to_owned())
        }
    };
    let given_name = name("given_name", &referral.given_name)?;
    let family_name = name("family_name", &referral.family_name)?;
    let site = store.get_site(referral.site).await?;
    let today = clock
        .now()
        .to_zoned_datetime(site.time_zone.time_zone())
        .date();
    let birth_date = Patient::validate_birth_date(referral.birth_date, today)?;
    if referral.conditions.is_empty() {
        return Err(InvalidValue::new(
            "conditions",
            "choose at least one chronic condition the patient lives with",
        )
        .into());
    }

    let patient = Patient {
        id: PatientId::from_uuid(new_uuid()),
        account_id: None,
        site_id: referral.site,
        given_name,
        family_name,
        birth_date,
        language: referral.language,
        time_zone: TimeZoneName::parse(&referral.time_zone)?,
        conditions: referral.conditions,
    };
    store.insert_patient(&patient).await?;
    let entry = AuditEntry {
        patient: Some(patient.id),
        resource_type: "Patient",
        resource_id: Some(patient.id.to_string()),
        action: AuditAction::Create,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    tracing::info!(patient_id = %patient.id, site_id = %patient.site_id, "patient referred");
    Ok(patient.id)
}
