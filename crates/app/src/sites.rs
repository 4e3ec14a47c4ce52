//! Reading the clinic's sites.

use stillpoint_domain::{Account, Role, Site, SiteId};

use crate::AppError;
use crate::ports::Store;

/// A site with the number of patients whose care it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSummary {
    pub site: Site,
    pub patient_count: i64,
}

/// The sites `account` administers: all of them for a system administrator, the assigned ones
/// for a program administrator. Other roles may not list sites.
#[must_use]
pub fn administered_sites(account: &Account, all: Vec<Site>) -> Option<Vec<Site>> {
    if account.has_role(Role::SystemAdministrator) {
        return Some(all);
    }
    let assigned: Vec<SiteId> = account
        .roles
        .iter()
        .filter(|assignment| assignment.role == Role::ProgramAdministrator)
        .filter_map(|assignment| assignment.site_id)
        .collect();
    if assigned.is_empty() {
        return None;
    }
    Some(
        all.into_iter()
            .filter(|site| assigned.contains(&site.id))
            .collect(),
    )
}

/// Every site, for naming the sites that roles and records refer to.
pub async fn all_sites(store: &dyn Store) -> Result<Vec<Site>, AppError> {
    Ok(store.list_sites().await?)
}

/// Lists the sites `account` administers, with patient counts.
pub async fn list_sites(
    store: &dyn Store,
    account: &Account,
) -> Result<Vec<SiteSummary>, AppError> {
    let all = store.list_sites().await?;
    let sites = administered_sites(account, all).ok_or(AppError::Forbidden)?;
    let counts = store.count_patients_by_site().await?;

    Ok(sites
        .into_iter()
        .map(|site| {
            let patient_count = counts
                .iter()
                .find(|(id, _)| *id == site.id)
                .map_or(0, |(_, count)| *count);
            SiteSummary {
                site,
                patient_count,
            }
        })
        .collect())
}

/// One site, if `account` administers it. A site the account may not see is reported as not
/// found, so its existence is not revealed.
pub async fn get_site(store: &dyn Store, account: &Account, id: SiteId) -> Result<Site, AppError> {
    let summaries = list_sites(store, account).await?;
    summaries
        .into_iter()
        .map(|summary| summary.site)
        .find(|site| site.id == id)
        .ok_or_else(|| {
            crate::StorageError::NotFound {
                entity: "site",
                id: id.to_string(),
            }
            .into()
        })
}

#[cfg(test)]
mod tests {
    use stillpoint_domain::{AccountId, EmailAddress, Language, RoleAssignment, TimeZoneName};
    use uuid::Uuid;

    use super::*;

    fn site(n: u128) -> Site {
        Site {
            id: SiteId::from_uuid(Uuid::from_u128(n)),
            code: format!("S{n}"),
            name: format!("Site {n}"),
            time_zone: TimeZoneName::parse("UTC").expect("valid"),
        }
    }

    fn account(roles: Vec<RoleAssignment>) -> Account {
        Account {
            id: AccountId::from_uuid(Uuid::nil()),
            email: EmailAddress::parse("a@example.org").expect("valid"),
            display_name: "A".to_owned(),
            language: Language::english(),
            time_zone: TimeZoneName::parse("UTC").expect("valid"),
            preferences: stillpoint_domain::DisplayPreferences::default(),
            roles,
        }
    }

    #[test]
    fn system_administrator_sees_every_site() {
        let admin = account(vec![RoleAssignment {
            role: Role::SystemAdministrator,
            site_id: None,
        }]);
        assert_eq!(
            administered_sites(&admin, vec![site(1), site(2)]).map(|s| s.len()),
            Some(2)
        );
    }

    #[test]
    fn program_administrator_sees_only_assigned_sites() {
        let admin = account(vec![RoleAssignment {
            role: Role::ProgramAdministrator,
            site_id: Some(site(2).id),
        }]);
        let visible = administered_sites(&admin, vec![site(1), site(2)]).expect("allowed");
        assert_eq!(visible, vec![site(2)]);
    }

    #[test]
    fn clinician_and_patient_may_not_list_sites() {
        for role in [Role::Clinician, Role::Facilitator] {
            let staff = account(vec![RoleAssignment {
                role,
                site_id: Some(site(1).id),
            }]);
            assert_eq!(administered_sites(&staff, vec![site(1)]), None, "{role}");
        }
        let patient = account(vec![RoleAssignment {
            role: Role::Patient,
            site_id: None,
        }]);
        assert_eq!(administered_sites(&patient, vec![site(1)]), None);
    }
}
