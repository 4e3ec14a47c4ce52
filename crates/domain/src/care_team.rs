//! Who may open a patient's record: the care-team rules.
//!
//! Access follows the relationship between the person and the patient, not only their role
//! (the "minimum necessary" standard of the HIPAA Privacy Rule, 45 CFR 164.502(b)):
//!
//! - a patient opens their own record;
//! - a clinician or program administrator opens the records of patients whose care is held at a
//!   site where they hold that role;
//! - a facilitator opens the records of patients in the cohorts they facilitate;
//! - a caregiver gets only the parts a patient granted them, until the patient revokes it;
//! - a clinician may open any other record by "breaking the glass" with a stated reason, for a
//!   limited time, and every access during it is flagged in the audit trail;
//! - a system administrator runs the installation and reads the audit trail, but opens no
//!   records through that role.

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Account, AccountId, CohortId, InvalidValue, PatientId, Role, SiteId};

/// How long break-glass access to one patient lasts.
pub const BREAK_GLASS_DURATION: SignedDuration = SignedDuration::from_mins(60);

/// The shortest accepted break-glass reason, so that a reviewer learns something from it.
pub const MIN_BREAK_GLASS_REASON: usize = 15;

/// A part of a patient's program that a caregiver can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaregiverScope {
    /// The dates and times of classes.
    Schedule,
    /// Home practice: minutes and days practised (never unshared diary notes).
    Practice,
    /// Progress summaries of questionnaires (never item-level answers).
    Progress,
    /// Being invited to some live sessions.
    Sessions,
}

impl CaregiverScope {
    pub const ALL: [Self; 4] = [
        Self::Schedule,
        Self::Practice,
        Self::Progress,
        Self::Sessions,
    ];

    /// Returns the stable code used in storage, the API and translation message ids.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Practice => "practice",
            Self::Progress => "progress",
            Self::Sessions => "sessions",
        }
    }

    /// Parses a comma-separated list of codes, ignoring duplicates; the result is sorted.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, InvalidValue> {
        let mut scopes = text
            .split(',')
            .map(str::trim)
            .filter(|code| !code.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Self>, _>>()?;
        scopes.sort_unstable();
        scopes.dedup();
        Ok(scopes)
    }

    /// Joins scopes as a comma-separated list of codes.
    #[must_use]
    pub fn join(scopes: &[Self]) -> String {
        scopes
            .iter()
            .map(|scope| scope.code())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for CaregiverScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for CaregiverScope {
    type Err = InvalidValue;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.code() == code)
            .ok_or_else(|| {
                InvalidValue::new(
                    "scopes",
                    format!(
                        "'{code}' is not something that can be shared; use schedule, practice, progress or sessions"
                    ),
                )
            })
    }
}

/// A cohort: patients at one site who go through a program together with their facilitators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cohort {
    pub id: CohortId,
    pub site_id: SiteId,
    pub name: String,
}

/// A patient's grant to a caregiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaregiverGrant {
    pub patient_id: PatientId,
    pub caregiver: AccountId,
    pub scopes: Vec<CaregiverScope>,
    pub granted_at: Timestamp,
    /// When the patient stopped sharing; a revoked grant gives no access.
    pub revoked_at: Option<Timestamp>,
}

impl CaregiverGrant {
    /// Returns the scopes in force: none once revoked.
    #[must_use]
    pub fn active_scopes(&self) -> &[CaregiverScope] {
        if self.revoked_at.is_some() {
            &[]
        } else {
            &self.scopes
        }
    }
}

/// A clinician's time-limited access to a patient outside their care team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    pub clinician: AccountId,
    pub patient_id: PatientId,
    pub reason: String,
    pub opened_at: Timestamp,
    pub expires_at: Timestamp,
}

impl BreakGlassGrant {
    /// Opens access for [`BREAK_GLASS_DURATION`] from `now`, after checking the reason.
    pub fn open(
        clinician: &Account,
        patient_id: PatientId,
        reason: &str,
        now: Timestamp,
    ) -> Result<Self, InvalidValue> {
        if !may_break_glass(clinician) {
            return Err(InvalidValue::new(
                "reason",
                "only clinicians can open a record outside their care team",
            ));
        }
        let reason = reason.trim();
        if reason.chars().count() < MIN_BREAK_GLASS_REASON {
            return Err(InvalidValue::new(
                "reason",
                format!(
                    "state why you need this record in at least {MIN_BREAK_GLASS_REASON} characters, for example the clinical situation"
                ),
            ));
        }
        if reason.chars().count() > 500 {
            return Err(InvalidValue::new(
                "reason",
                "keep the reason under 500 characters",
            ));
        }

        Ok(Self {
            clinician: clinician.id,
            patient_id,
            reason: reason.to_owned(),
            opened_at: now,
            expires_at: now.saturating_add(BREAK_GLASS_DURATION).unwrap_or(now),
        })
    }

    #[must_use]
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.opened_at <= now && now < self.expires_at
    }
}

/// The facts about one person and one patient that access depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareRelationship {
    /// Whether the record is the person's own.
    pub own_record: bool,
    /// The site responsible for the patient's care.
    pub patient_site: SiteId,
    /// Whether the person facilitates a cohort the patient belongs to.
    pub facilitates_patient: bool,
    /// The scopes of the patient's grant to the person, empty without an active grant.
    pub caregiver_scopes: Vec<CaregiverScope>,
    /// Whether the person has unexpired break-glass access to the patient.
    pub break_glass: bool,
}

/// How much of a patient's record a person may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordAccess {
    /// The patient's own record.
    Own,
    /// A member of the patient's care team: the whole clinical record.
    CareTeam,
    /// Break-glass access: the whole record, flagged in the audit trail.
    BreakGlass,
    /// A caregiver: only the granted parts.
    Caregiver(Vec<CaregiverScope>),
    /// No access.
    Denied,
}

impl RecordAccess {
    /// Returns whether the whole clinical record is open.
    #[must_use]
    pub fn sees_clinical_record(&self) -> bool {
        matches!(self, Self::Own | Self::CareTeam | Self::BreakGlass)
    }
}

/// Decides what `account` may see of the patient described by `relationship`.
#[must_use]
pub fn record_access(account: &Account, relationship: &CareRelationship) -> RecordAccess {
    if relationship.own_record && account.has_role(Role::Patient) {
        return RecordAccess::Own;
    }
    let holds_at_patient_site = |role: Role| {
        account
            .roles
            .iter()
            .any(|held| held.role == role && held.site_id == Some(relationship.patient_site))
    };
    let care_team = holds_at_patient_site(Role::Clinician)
        || holds_at_patient_site(Role::ProgramAdministrator)
        || (relationship.facilitates_patient && account.has_role(Role::Facilitator));
    if care_team {
        return RecordAccess::CareTeam;
    }
    if relationship.break_glass && may_break_glass(account) {
        return RecordAccess::BreakGlass;
    }
    if account.has_role(Role::Caregiver) && !relationship.caregiver_scopes.is_empty() {
        return RecordAccess::Caregiver(relationship.caregiver_scopes.clone());
    }
    RecordAccess::Denied
}

/// Returns whether `account` may open records outside its care team by breaking the glass.
#[must_use]
pub fn may_break_glass(account: &Account) -> bool {
    account.has_role(Role::Clinician)
}

/// Returns the sites where `account` may open every patient's record, because it is a clinician
/// or program administrator there.
#[must_use]
pub fn sites_with_full_view(account: &Account) -> Vec<SiteId> {
    let mut sites: Vec<SiteId> = account
        .roles
        .iter()
        .filter(|held| matches!(held.role, Role::Clinician | Role::ProgramAdministrator))
        .filter_map(|held| held.site_id)
        .collect();
    sites.sort_unstable_by_key(ToString::to_string);
    sites.dedup();
    sites
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmailAddress, Language, RoleAssignment, TimeZoneName};

    fn site(n: u128) -> SiteId {
        SiteId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn person(roles: &[(Role, Option<SiteId>)]) -> Account {
        Account {
            id: AccountId::from_uuid(uuid::Uuid::from_u128(99)),
            email: EmailAddress::parse("p@example.org").expect("valid"),
            display_name: "P".to_owned(),
            language: Language::english(),
            time_zone: TimeZoneName::parse("UTC").expect("valid"),
            preferences: crate::DisplayPreferences::default(),
            roles: roles
                .iter()
                .map(|(role, site_id)| RoleAssignment {
                    role: *role,
                    site_id: *site_id,
                })
                .collect(),
        }
    }

    fn relationship() -> CareRelationship {
        CareRelationship {
            own_record: false,
            patient_site: site(1),
            facilitates_patient: false,
            caregiver_scopes: Vec::new(),
            break_glass: false,
        }
    }

    #[test]
    fn staff_access_follows_site_and_cohort() {
        let north_clinician = person(&[(Role::Clinician, Some(site(1)))]);
        let south_clinician = person(&[(Role::Clinician, Some(site(2)))]);
        let facilitator = person(&[(Role::Facilitator, Some(site(1)))]);
        let administrator = person(&[(Role::ProgramAdministrator, Some(site(1)))]);
        let system = person(&[(Role::SystemAdministrator, None)]);
        let plain = relationship();

        assert_eq!(
            record_access(&north_clinician, &plain),
            RecordAccess::CareTeam
        );
        assert_eq!(
            record_access(&south_clinician, &plain),
            RecordAccess::Denied
        );
        assert_eq!(record_access(&facilitator, &plain), RecordAccess::Denied);
        assert_eq!(
            record_access(&administrator, &plain),
            RecordAccess::CareTeam
        );
        assert_eq!(record_access(&system, &plain), RecordAccess::Denied);

        let in_cohort = CareRelationship {
            facilitates_patient: true,
            ..relationship()
        };
        assert_eq!(
            record_access(&facilitator, &in_cohort),
            RecordAccess::CareTeam
        );
    }

    #[test]
    fn caregiver_sees_only_active_grant() {
        let caregiver = person(&[(Role::Caregiver, None)]);
        assert_eq!(
            record_access(&caregiver, &relationship()),
            RecordAccess::Denied
        );
        let granted = CareRelationship {
            caregiver_scopes: vec![CaregiverScope::Schedule],
            ..relationship()
        };
        assert_eq!(
            record_access(&caregiver, &granted),
            RecordAccess::Caregiver(vec![CaregiverScope::Schedule])
        );
        let grant = CaregiverGrant {
            patient_id: PatientId::from_uuid(uuid::Uuid::from_u128(5)),
            caregiver: caregiver.id,
            scopes: vec![CaregiverScope::Schedule],
            granted_at: Timestamp::UNIX_EPOCH,
            revoked_at: Some(Timestamp::UNIX_EPOCH),
        };
        assert!(grant.active_scopes().is_empty());
    }

    #[test]
    fn patient_sees_only_own_record() {
        let patient = person(&[(Role::Patient, None)]);
        assert_eq!(
            record_access(&patient, &relationship()),
            RecordAccess::Denied
        );
        let own = CareRelationship {
            own_record: true,
            ..relationship()
        };
        assert_eq!(record_access(&patient, &own), RecordAccess::Own);
    }

    #[test]
    fn break_glass_is_for_clinicians_with_reason() {
        let now = Timestamp::from_second(1_800_000_000).expect("valid");
        let patient = PatientId::from_uuid(uuid::Uuid::from_u128(5));
        let clinician = person(&[(Role::Clinician, Some(site(2)))]);
        let facilitator = person(&[(Role::Facilitator, Some(site(2)))]);

        assert!(BreakGlassGrant::open(&clinician, patient, "short", now).is_err());
        assert!(
            BreakGlassGrant::open(&facilitator, patient, "patient called in distress", now)
                .is_err()
        );
        let grant =
            BreakGlassGrant::open(&clinician, patient, "  patient called in distress ", now)
                .expect("opens");
        assert_eq!(grant.reason, "patient called in distress");
        assert!(grant.is_active(now));
        assert!(grant.is_active(now + SignedDuration::from_mins(59)));
        assert!(!grant.is_active(now + SignedDuration::from_mins(60)));

        let glass = CareRelationship {
            break_glass: true,
            ..relationship()
        };
        assert_eq!(record_access(&clinician, &glass), RecordAccess::BreakGlass);
        assert_eq!(record_access(&facilitator, &glass), RecordAccess::Denied);
    }

    #[test]
    fn scope_lists_parse_and_join() {
        let scopes = CaregiverScope::parse_list("practice, schedule,practice").expect("valid");
        assert_eq!(
            scopes,
            vec![CaregiverScope::Schedule, CaregiverScope::Practice]
        );
        assert_eq!(CaregiverScope::join(&scopes), "schedule,practice");
        assert!(CaregiverScope::parse_list("diary").is_err());
        assert_eq!(CaregiverScope::parse_list("").expect("empty"), vec![]);
    }
}
