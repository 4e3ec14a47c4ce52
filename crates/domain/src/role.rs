//! Roles people hold in a clinic, and where they hold them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{InvalidValue, SiteId};

/// A role in the MBSR program. Staff roles are held per site; patient, caregiver and system
/// administrator are not tied to one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Patient,
    Caregiver,
    /// An MBSR teacher who runs cohorts.
    Facilitator,
    /// A psychologist, nurse, physician or social worker who screens and reviews measures.
    Clinician,
    /// Builds cohorts and sites, manages staff, and reviews program results for their sites.
    ProgramAdministrator,
    /// Installs, configures, audits and backs up the whole installation.
    SystemAdministrator,
}

impl Role {
    pub const ALL: [Self; 6] = [
        Self::Patient,
        Self::Caregiver,
        Self::Facilitator,
        Self::Clinician,
        Self::ProgramAdministrator,
        Self::SystemAdministrator,
    ];

    /// The stable code used in storage, the API and translation message ids.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Caregiver => "caregiver",
            Self::Facilitator => "facilitator",
            Self::Clinician => "clinician",
            Self::ProgramAdministrator => "program_administrator",
            Self::SystemAdministrator => "system_administrator",
        }
    }

    /// Whether the role belongs to the care team or administration, as opposed to patients and
    /// the people they invite.
    #[must_use]
    pub const fn is_staff(self) -> bool {
        !matches!(self, Self::Patient | Self::Caregiver)
    }

    /// Whether an assignment of this role must name a site.
    #[must_use]
    pub const fn is_site_scoped(self) -> bool {
        matches!(
            self,
            Self::Facilitator | Self::Clinician | Self::ProgramAdministrator
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = InvalidValue;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.code() == code)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|role| role.code()).collect();
                InvalidValue::new(
                    "role",
                    format!("'{code}' is not a role; use one of {}", known.join(", ")),
                )
            })
    }
}

/// One role held by an account, at a site for the site-scoped staff roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub role: Role,
    pub site_id: Option<SiteId>,
}

impl RoleAssignment {
    /// Builds an assignment, requiring a site exactly for the site-scoped roles.
    pub fn new(role: Role, site_id: Option<SiteId>) -> Result<Self, InvalidValue> {
        match (role.is_site_scoped(), site_id) {
            (true, None) => Err(InvalidValue::new(
                "site_id",
                format!("the {role} role is held at a site; choose the site"),
            )),
            (false, Some(_)) => Err(InvalidValue::new(
                "site_id",
                format!("the {role} role is not tied to a site; leave the site empty"),
            )),
            _ => Ok(Self { role, site_id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.code().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn unknown_role_code_lists_the_known_ones() {
        let error = "nurse".parse::<Role>().expect_err("not a role");
        assert!(error.problem.contains("clinician"), "{}", error.problem);
    }

    #[test]
    fn site_scoped_role_requires_site() {
        let site = SiteId::from_uuid(uuid::Uuid::nil());
        assert!(RoleAssignment::new(Role::Clinician, None).is_err());
        assert!(RoleAssignment::new(Role::Clinician, Some(site)).is_ok());
        assert!(RoleAssignment::new(Role::SystemAdministrator, Some(site)).is_err());
        assert!(RoleAssignment::new(Role::Patient, None).is_ok());
    }
}
