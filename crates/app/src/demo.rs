//! The demo clinic: a deterministic synthetic data set for trying Stillpoint and for tests.
//!
//! Everything here is invented. Names are drawn from common given and family names, conditions
//! are real ICD-10-CM codes with their published titles, and the same seed and date always give
//! the same clinic. Later capabilities add their data (cohorts, measures, practice) by extending
//! [`DemoClinic`] and [`seed`].

use jiff::civil::Date;
use stillpoint_domain::care_team::{CaregiverGrant, CaregiverScope, Cohort};
use stillpoint_domain::condition::COMMON_CHRONIC_CONDITIONS as CONDITIONS;
use stillpoint_domain::consent::ConsentRecord;
use stillpoint_domain::curriculum::Curriculum;
use stillpoint_domain::{
    Account, AccountId, ChronicCondition, CohortId, EmailAddress, Icd10Code, Language, Patient,
    PatientId, Role, RoleAssignment, Site, SiteId, TimeZoneName,
};
use uuid::Uuid;

use crate::AppError;
use crate::auth::hash_password;
use crate::consent::ConsentLibrary;
use crate::ports::Store;
use crate::secrets::SecretSealer;

/// The password of every demo account. It is printed by `stillpoint demo` and must never be
/// used outside the demo.
pub const DEMO_PASSWORD: &str = "mindful-demo-2026";

/// Number of synthetic patients in the demo clinic.
pub const DEMO_PATIENT_COUNT: usize = 48;

/// A sign-in the demo prints for one role.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub role: Role,
    pub email: EmailAddress,
}

/// A cohort with its facilitators (account, whether lead) and member patients.
pub type DemoCohort = (Cohort, Vec<(AccountId, bool)>, Vec<PatientId>);

/// The generated clinic, before it is stored.
#[derive(Debug, Clone)]
pub struct DemoClinic {
    pub sites: Vec<Site>,
    pub accounts: Vec<Account>,
    pub patients: Vec<Patient>,
    /// One login per role, in [`Role::ALL`] order.
    pub logins: Vec<DemoLogin>,
    /// Cohorts with their facilitators (account, lead) and members.
    pub cohorts: Vec<DemoCohort>,
    /// The demo patient shares some of their program with the demo caregiver.
    pub caregiver_grants: Vec<(PatientId, AccountId, Vec<CaregiverScope>)>,
    /// The authenticator secret of each staff account, which the seed enrols, so staff sign-ins
    /// ask for a one-time code as they do in a real clinic.
    pub totp_secrets: Vec<(AccountId, Vec<u8>)>,
}

impl DemoClinic {
    /// Returns whether the patient belongs to one of the demo cohorts, whose members have a pathway
    /// history, consents and attendance already.
    #[must_use]
    pub fn is_cohort_member(&self, patient: PatientId) -> bool {
        self.cohorts
            .iter()
            .any(|(_, _, members)| members.contains(&patient))
    }

    /// Computes the code the authenticator app of the staff account with `email` shows at `at`.
    #[must_use]
    pub fn one_time_code(&self, email: &str, at: jiff::Timestamp) -> Option<String> {
        let account = self.accounts.iter().find(|a| a.email.as_str() == email)?;
        let (_, secret) = self.totp_secrets.iter().find(|(id, _)| *id == account.id)?;
        crate::mfa::code_for_secret(secret, at).ok()
    }
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014): small, fast and fully determined by its seed, which is all the demo needs.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound`; the modulo bias is irrelevant for demo data.
    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next_u64() % (bound as u64)).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random (version 4 layout) UUID drawn from this generator, so ids are reproducible.
    fn uuid(&mut self) -> Uuid {
        let high = u128::from(self.next_u64());
        let low = u128::from(self.next_u64());
        uuid::Builder::from_random_bytes(((high << 64) | low).to_be_bytes()).into_uuid()
    }
}

const ENGLISH_GIVEN: &[&str] = &[
    "James", "Mary", "Robert", "Patricia", "John", "Linda", "Michael", "Barbara", "David", "Susan",
    "William", "Karen", "Thomas", "Nancy", "Joseph", "Margaret", "Charles", "Sandra",
];
const ENGLISH_FAMILY: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis",
];
const SPANISH_GIVEN: &[&str] = &[
    "María",
    "José",
    "Guadalupe",
    "Juan",
    "Carmen",
    "Luis",
    "Rosa",
    "Carlos",
    "Ana",
    "Jorge",
    "Lucía",
    "Miguel",
    "Elena",
    "Javier",
    "Teresa",
    "Francisco",
    "Isabel",
    "Manuel",
];
const SPANISH_FAMILY: &[&str] = &[
    "García",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "González",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Gómez",
    "Díaz",
    "Cruz",
    "Morales",
    "Reyes",
    "Ortiz",
];

/// Time zones patients live in; a telehealth program's patients are not all in the site's zone.
const PATIENT_TIME_ZONES: &[&str] = &[
    "America/Chicago",
    "America/Chicago",
    "America/New_York",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Puerto_Rico",
];

fn zone(name: &str) -> TimeZoneName {
    TimeZoneName::parse(name)
        .unwrap_or_else(|_| unreachable!("demo zone {name} is in the tz database"))
}

fn email(local: &str) -> EmailAddress {
    EmailAddress::parse(&format!("{local}@demo-clinic.example"))
        .unwrap_or_else(|_| unreachable!("demo address {local} is well formed"))
}

fn demo_sites(rng: &mut SplitMix64) -> Vec<Site> {
    vec![
        Site {
            id: SiteId::from_uuid(rng.uuid()),
            code: "NORTH".to_owned(),
            name: "Riverbend Health, North Campus".to_owned(),
            time_zone: zone("America/Chicago"),
        },
        Site {
            id: SiteId::from_uuid(rng.uuid()),
            code: "SOUTH".to_owned(),
            name: "Riverbend Health, South Valley Clinic".to_owned(),
            time_zone: zone("America/Denver"),
        },
    ]
}

/// A demo person: e-mail local part, display name, language, time zone, and roles with the
/// index of the site they are held at.
type DemoPerson = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(Role, Option<usize>)],
);

/// Staff of every role at both sites (site 0 is NORTH, site 1 is SOUTH), one patient and one
/// caregiver.
const DEMO_PEOPLE: &[DemoPerson] = &[
    (
        "admin",
        "Sam Okafor",
        "en",
        "America/Chicago",
        &[(Role::SystemAdministrator, None)],
    ),
    (
        "program.admin",
        "Dana Whitfield",
        "en",
        "America/Chicago",
        &[
            (Role::ProgramAdministrator, Some(0)),
            (Role::ProgramAdministrator, Some(1)),
        ],
    ),
    (
        "clinician",
        "Dr. Elena Vargas",
        "es",
        "America/Chicago",
        &[(Role::Clinician, Some(0))],
    ),
    (
        "facilitator",
        "Maya Lindqvist",
        "en",
        "America/Chicago",
        &[(Role::Facilitator, Some(0))],
    ),
    (
        "clinician.south",
        "Dr. Aaron Cole",
        "en",
        "America/Denver",
        &[(Role::Clinician, Some(1))],
    ),
    (
        "facilitator.south",
        "Rafael Ibarra",
        "es",
        "America/Denver",
        &[(Role::Facilitator, Some(1)), (Role::Facilitator, Some(0))],
    ),
    (
        "patient",
        "Lucía Morales",
        "es",
        "America/Chicago",
        &[(Role::Patient, None)],
    ),
    (
        "caregiver",
        "Tomás Morales",
        "es",
        "America/Chicago",
        &[(Role::Caregiver, None)],
    ),
];

fn demo_accounts(rng: &mut SplitMix64, sites: &[Site]) -> Vec<Account> {
    DEMO_PEOPLE
        .iter()
        .map(|&(local, name, language, time_zone, roles)| Account {
            id: AccountId::from_uuid(rng.uuid()),
            email: email(local),
            display_name: name.to_owned(),
            language: Language::parse(language).unwrap_or_else(|_| Language::english()),
            time_zone: zone(time_zone),
            preferences: stillpoint_domain::DisplayPreferences::default(),
            roles: roles
                .iter()
                .map(|&(role, site)| RoleAssignment {
                    role,
                    site_id: site.map(|index| sites[index].id),
                })
                .collect(),
        })
        .collect()
}

fn demo_patient(rng: &mut SplitMix64, sites: &[Site], today: Date) -> Patient {
    let spanish = rng.below(3) == 0;
    let (given, family, language) = if spanish {
        (SPANISH_GIVEN, SPANISH_FAMILY, Language::spanish())
    } else {
        (ENGLISH_GIVEN, ENGLISH_FAMILY, Language::english())
    };
    let age_days = i32::try_from(365 * 28 + rng.below(365 * 50)).unwrap_or(365 * 50);
    let birth_date = today.saturating_sub(jiff::Span::new().days(age_days));
    let site = rng.pick(sites);

    let condition_count = 1 + rng.below(3);
    let mut conditions: Vec<ChronicCondition> = Vec::new();
    while conditions.len() < condition_count {
        let (code, display) = *rng.pick(CONDITIONS);
        if conditions
            .iter()
            .all(|existing| existing.code.as_str() != code)
        {
            conditions.push(ChronicCondition {
                code: Icd10Code::parse(code)
                    .unwrap_or_else(|_| unreachable!("{code} is well formed")),
                display: display.to_owned(),
            });
        }
    }

    Patient {
        id: PatientId::from_uuid(rng.uuid()),
        account_id: None,
        site_id: site.id,
        given_name: (*rng.pick(given)).to_owned(),
        family_name: (*rng.pick(family)).to_owned(),
        birth_date,
        language,
        time_zone: zone(rng.pick::<&str>(PATIENT_TIME_ZONES)),
        conditions,
    }
}

/// Generates the demo clinic for `seed`, with ages computed on `today`.
#[must_use]
pub fn generate(seed: u64, today: Date) -> DemoClinic {
    let mut rng = SplitMix64(seed);
    let sites = demo_sites(&mut rng);
    let accounts = demo_accounts(&mut rng, &sites);

    let mut patients: Vec<Patient> = (0..DEMO_PATIENT_COUNT)
        .map(|_| demo_patient(&mut rng, &sites, today))
        .collect();
    // The demo patient account signs in to the first patient record.
    if let Some(patient_account) = accounts.iter().find(|a| a.has_role(Role::Patient)) {
        let record = &mut patients[0];
        record.account_id = Some(patient_account.id);
        "Lucía".clone_into(&mut record.given_name);
        "Morales".clone_into(&mut record.family_name);
        record.language = Language::spanish();
        record.site_id = sites[0].id;
    }

    let logins = Role::ALL
        .into_iter()
        .filter_map(|role| {
            accounts
                .iter()
                .find(|account| account.has_role(role))
                .map(|account| DemoLogin {
                    role,
                    email: account.email.clone(),
                })
        })
        .collect();

    // A separate generator, so adding secrets left every other generated value unchanged.
    let mut secret_rng = SplitMix64(seed ^ 0x746f_7470);
    let totp_secrets = accounts
        .iter()
        .filter(|account| account.is_staff())
        .map(|account| {
            let secret: Vec<u8> = (0..20)
                .map(|_| secret_rng.next_u64().to_le_bytes()[0])
                .collect();
            (account.id, secret)
        })
        .collect();

    let cohorts = demo_cohorts(&mut secret_rng, &sites, &accounts, &patients);
    let caregiver_grants = match (
        patients
            .first()
            .and_then(|patient| patient.account_id.map(|_| patient.id)),
        accounts
            .iter()
            .find(|account| account.has_role(Role::Caregiver)),
    ) {
        (Some(patient), Some(caregiver)) => vec![(
            patient,
            caregiver.id,
            vec![CaregiverScope::Schedule, CaregiverScope::Practice],
        )],
        _ => Vec::new(),
    };

    DemoClinic {
        sites,
        accounts,
        patients,
        logins,
        cohorts,
        caregiver_grants,
        totp_secrets,
    }
}

/// Builds one cohort per site, led by the first facilitator with the role there (the other
/// facilitator at the site co-facilitates), with the first eight patients of the site.
fn demo_cohorts(
    rng: &mut SplitMix64,
    sites: &[Site],
    accounts: &[Account],
    patients: &[Patient],
) -> Vec<DemoCohort> {
    let names = ["Tuesday evening group", "Thursday morning group"];
    sites
        .iter()
        .zip(names)
        .map(|(site, name)| {
            let cohort = Cohort {
                id: CohortId::from_uuid(rng.uuid()),
                site_id: site.id,
                name: format!("{} · {name}", site.code),
            };
            let facilitators = accounts
                .iter()
                .filter(|account| {
                    account
                        .roles
                        .iter()
                        .any(|held| held.role == Role::Facilitator && held.site_id == Some(site.id))
                })
                .enumerate()
                .map(|(index, account)| (account.id, index == 0))
                .collect();
            let members = patients
                .iter()
                .filter(|patient| patient.site_id == site.id)
                .take(8)
                .map(|patient| patient.id)
                .collect();
            (cohort, facilitators, members)
        })
        .collect()
}

/// Returns the first clinician of `site`.
pub(crate) fn site_clinician(clinic: &DemoClinic, site: SiteId) -> Option<AccountId> {
    clinic
        .accounts
        .iter()
        .find(|account| {
            account
                .roles
                .iter()
                .any(|held| held.role == Role::Clinician && held.site_id == Some(site))
        })
        .map(|account| account.id)
}

/// A clock stopped at the seed's `now`, for use cases that read the clock.
#[derive(Debug)]
struct FixedClock(jiff::Timestamp);

impl crate::Clock for FixedClock {
    fn now(&self) -> jiff::Timestamp {
        self.0
    }
}

/// Stores the demo clinic. Every account gets [`DEMO_PASSWORD`], staff accounts get their
/// authenticator secret, sealed with `sealer`, and the demo patient has agreed to every document
/// of `consents` in their language.
pub async fn seed(
    store: &dyn Store,
    sealer: &SecretSealer,
    consents: &ConsentLibrary,
    curricula: &[Curriculum],
    library: &crate::measures::MeasureLibrary,
    clinic: &DemoClinic,
    now: jiff::Timestamp,
) -> Result<(), AppError> {
    for site in &clinic.sites {
        store.insert_site(site).await?;
    }
    for account in &clinic.accounts {
        let password_hash = hash_password(DEMO_PASSWORD)?;
        store.insert_account(account, &password_hash).await?;
    }
    for patient in &clinic.patients {
        store.insert_patient(patient).await?;
    }
    crate::curricula::install_bundled(store, &FixedClock(now), curricula).await?;
    crate::demo_programs::seed(store, clinic, curricula, now).await?;
    crate::demo_measures::seed(store, clinic, library, now).await?;
    crate::demo_practice::seed(store, clinic, now).await?;
    for (patient, caregiver, scopes) in &clinic.caregiver_grants {
        let grant = CaregiverGrant {
            patient_id: *patient,
            caregiver: *caregiver,
            scopes: scopes.clone(),
            granted_at: now,
            revoked_at: None,
        };
        store.put_caregiver_grant(&grant).await?;
    }
    // The demo patient and every cohort member have agreed to the documents in their language.
    let members: Vec<PatientId> = clinic
        .cohorts
        .iter()
        .flat_map(|(_, _, members)| members.iter().copied())
        .collect();
    for patient in clinic
        .patients
        .iter()
        .filter(|patient| patient.account_id.is_some() || members.contains(&patient.id))
    {
        for id in consents.ids() {
            let Some(document) = consents.document(id, &patient.language) else {
                continue;
            };
            let record = ConsentRecord {
                patient_id: patient.id,
                document_id: document.id.clone(),
                version: document.version,
                language: document.language.clone(),
                content_hash: document.content_hash.clone(),
                signed_name: format!("{} {}", patient.given_name, patient.family_name),
                signed_at: now,
                // A patient without an account signed on paper, and a clinician of their site
                // recorded it.
                signer: patient
                    .account_id
                    .or_else(|| site_clinician(clinic, patient.site_id))
                    .unwrap_or(AccountId::from_uuid(Uuid::nil())),
                withdrawn_at: None,
                withdrawal_reason: None,
            };
            store.insert_consent_record(&record).await?;
        }
    }
    for (account, secret) in &clinic.totp_secrets {
        let sealed_secret = sealer.seal(&account.to_string(), secret);
        store
            .put_unconfirmed_totp(*account, &sealed_secret, now)
            .await?;
        store.confirm_totp(*account, 0, now, &[]).await?;
    }
    tracing::info!(
        sites = clinic.sites.len(),
        accounts = clinic.accounts.len(),
        patients = clinic.patients.len(),
        "demo clinic seeded"
    );

    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn demo_is_deterministic() {
        let first = generate(7, date(2026, 12, 4));
        let second = generate(7, date(2026, 12, 4));
        assert_eq!(first.patients, second.patients);
        assert_eq!(first.accounts, second.accounts);
        assert_ne!(generate(8, date(2026, 12, 4)).patients, first.patients);
    }

    #[test]
    fn demo_has_a_login_for_every_role() {
        let clinic = generate(1, date(2026, 12, 4));
        let roles: Vec<Role> = clinic.logins.iter().map(|login| login.role).collect();
        assert_eq!(roles, Role::ALL.to_vec());
    }

    #[test]
    fn demo_covers_both_sites_languages_and_several_zones() {
        let clinic = generate(1, date(2026, 12, 4));
        for site in &clinic.sites {
            assert!(
                clinic.patients.iter().any(|p| p.site_id == site.id),
                "{}",
                site.code
            );
        }
        for language in ["en", "es"] {
            assert!(
                clinic
                    .patients
                    .iter()
                    .any(|p| p.language.as_str() == language),
                "{language}"
            );
        }
        let mut zones: Vec<&str> = clinic
            .patients
            .iter()
            .map(|p| p.time_zone.as_str())
            .collect();
        zones.sort_unstable();
        zones.dedup();
        assert!(zones.len() >= 4, "{zones:?}");
    }

    #[test]
    fn demo_patients_are_adults_with_conditions() {
        let today = date(2026, 12, 4);
        let clinic = generate(1, today);
        for patient in &clinic.patients {
            let age = patient.age_on(today);
            assert!((18..=90).contains(&age), "age {age}");
            assert!(!patient.conditions.is_empty());
        }
    }

    #[test]
    fn demo_staff_roles_name_existing_sites() {
        let clinic = generate(1, date(2026, 12, 4));
        for account in &clinic.accounts {
            for assignment in &account.roles {
                assert!(RoleAssignment::new(assignment.role, assignment.site_id).is_ok());
                if let Some(site) = assignment.site_id {
                    assert!(clinic.sites.iter().any(|s| s.id == site));
                }
            }
        }
    }
}
