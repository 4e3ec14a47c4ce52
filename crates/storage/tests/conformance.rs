//! The storage conformance suite: every test runs against SQLite, and against PostgreSQL when
//! `STILLPOINT_TEST_POSTGRES_URL` is set (always in CI). Both dialects must behave the same,
//! including which constraint a conflicting write names.

use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    AccountStore, HealthStore, PatientStore, SecondFactorStore, SessionStore, SignInSession,
    SiteStore,
};
use stillpoint_domain::{
    Account, AccountId, ChronicCondition, EmailAddress, Icd10Code, Language, Patient, PatientId,
    Role, RoleAssignment, Site, SiteId, TimeZoneName,
};
use stillpoint_storage::{Database, Dialect, MigrateError};
use stillpoint_test_support::TestDatabase;
use uuid::Uuid;

fn new_id() -> Uuid {
    Uuid::now_v7()
}

fn site(code: &str) -> Site {
    Site {
        id: SiteId::from_uuid(new_id()),
        code: code.to_owned(),
        name: format!("{code} clinic"),
        time_zone: TimeZoneName::parse("America/Chicago").expect("valid zone"),
    }
}

fn account(local: &str, roles: Vec<RoleAssignment>) -> Account {
    Account {
        id: AccountId::from_uuid(new_id()),
        email: EmailAddress::parse(&format!("{local}@clinic.example")).expect("valid address"),
        display_name: format!("Person {local}"),
        language: Language::spanish(),
        time_zone: TimeZoneName::parse("America/Denver").expect("valid zone"),
        roles,
        preferences: stillpoint_domain::DisplayPreferences::default(),
    }
}

fn condition(code: &str, display: &str) -> ChronicCondition {
    ChronicCondition {
        code: Icd10Code::parse(code).expect("valid code"),
        display: display.to_owned(),
    }
}

fn patient(site_id: SiteId) -> Patient {
    Patient {
        id: PatientId::from_uuid(new_id()),
        account_id: None,
        site_id,
        given_name: "Rosa".to_owned(),
        family_name: "Díaz".to_owned(),
        birth_date: date(1961, 3, 9),
        language: Language::spanish(),
        time_zone: TimeZoneName::parse("America/Phoenix").expect("valid zone"),
        conditions: vec![
            condition("M79.7", "Fibromyalgia"),
            condition("E11.9", "Type 2 diabetes mellitus without complications"),
        ],
    }
}

fn conflict_name(error: StorageError) -> String {
    match error {
        StorageError::Conflict { constraint } => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn site_round_trip(db: &Database) {
    let north = site("NORTH");
    db.insert_site(&north).await.expect("insert");
    assert_eq!(db.get_site(north.id).await.expect("get"), north);
}

async fn sites_are_listed_by_code(db: &Database) {
    for code in ["WEST", "EAST", "NORTH"] {
        db.insert_site(&site(code)).await.expect("insert");
    }
    let codes: Vec<String> = db
        .list_sites()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.code)
        .collect();
    assert_eq!(codes, ["EAST", "NORTH", "WEST"]);
}

async fn duplicate_site_code_names_constraint(db: &Database) {
    db.insert_site(&site("NORTH")).await.expect("first insert");
    let error = db
        .insert_site(&site("NORTH"))
        .await
        .expect_err("duplicate code");
    assert_eq!(conflict_name(error), "sites_code_key");
}

async fn duplicate_site_id_names_primary_key(db: &Database) {
    let north = site("NORTH");
    db.insert_site(&north).await.expect("first insert");
    let mut copy = site("SOUTH");
    copy.id = north.id;
    assert_eq!(
        conflict_name(db.insert_site(&copy).await.expect_err("same id")),
        "sites_pkey"
    );
}

async fn missing_site_is_not_found(db: &Database) {
    let id = SiteId::from_uuid(new_id());
    match db.get_site(id).await {
        Err(StorageError::NotFound {
            entity,
            id: reported,
        }) => {
            assert_eq!(entity, "site");
            assert_eq!(reported, id.to_string());
        }
        other => panic!("expected not found, got {other:?}"),
    }
}

async fn account_with_roles_round_trip(db: &Database) {
    let north = site("NORTH");
    let south = site("SOUTH");
    db.insert_site(&north).await.expect("insert");
    db.insert_site(&south).await.expect("insert");
    let clinician = account(
        "ana",
        vec![
            RoleAssignment {
                role: Role::Clinician,
                site_id: Some(north.id),
            },
            RoleAssignment {
                role: Role::Clinician,
                site_id: Some(south.id),
            },
            RoleAssignment {
                role: Role::SystemAdministrator,
                site_id: None,
            },
        ],
    );
    db.insert_account(&clinician, "$argon2id$stub")
        .await
        .expect("insert");

    let mut stored = db.get_account(clinician.id).await.expect("get");
    stored
        .roles
        .sort_by_key(|assignment| (assignment.role, assignment.site_id));
    let mut expected = clinician.clone();
    expected
        .roles
        .sort_by_key(|assignment| (assignment.role, assignment.site_id));
    assert_eq!(stored, expected);

    let credentials = db
        .find_credentials(&clinician.email)
        .await
        .expect("by e-mail");
    assert_eq!(credentials.account.id, clinician.id);
    assert_eq!(credentials.password_hash, "$argon2id$stub");
    assert_eq!(db.count_accounts().await.expect("count"), 1);
}

async fn duplicate_email_names_constraint(db: &Database) {
    db.insert_account(&account("ana", vec![]), "h")
        .await
        .expect("first");
    let error = db
        .insert_account(&account("ana", vec![]), "h")
        .await
        .expect_err("same e-mail");
    assert_eq!(conflict_name(error), "accounts_email_key");
}

async fn failed_role_write_leaves_no_account(db: &Database) {
    let unknown_site = SiteId::from_uuid(new_id());
    let staff = account(
        "ben",
        vec![RoleAssignment {
            role: Role::Facilitator,
            site_id: Some(unknown_site),
        }],
    );

    let error = db
        .insert_account(&staff, "h")
        .await
        .expect_err("unknown site");
    assert!(matches!(error, StorageError::Conflict { .. }), "{error:?}");
    assert!(matches!(
        db.get_account(staff.id).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(db.count_accounts().await.expect("count"), 0);
}

async fn patient_with_conditions_round_trip(db: &Database) {
    let north = site("NORTH");
    db.insert_site(&north).await.expect("insert");
    let record = patient(north.id);
    db.insert_patient(&record).await.expect("insert");
    assert_eq!(db.get_patient(record.id).await.expect("get"), record);
}

async fn duplicate_condition_rolls_back_patient(db: &Database) {
    let north = site("NORTH");
    db.insert_site(&north).await.expect("insert");
    let mut record = patient(north.id);
    record.conditions.push(condition("M79.7", "Fibromyalgia"));

    let error = db
        .insert_patient(&record)
        .await
        .expect_err("duplicate condition");
    assert_eq!(conflict_name(error), "patient_conditions_pkey");
    assert!(matches!(
        db.get_patient(record.id).await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn patient_at_unknown_site_is_conflict(db: &Database) {
    let record = patient(SiteId::from_uuid(new_id()));
    let error = db.insert_patient(&record).await.expect_err("unknown site");
    assert!(matches!(error, StorageError::Conflict { .. }), "{error:?}");
}

async fn patients_are_counted_by_site(db: &Database) {
    let north = site("NORTH");
    let south = site("SOUTH");
    let east = site("EAST");
    for record in [&north, &south, &east] {
        db.insert_site(record).await.expect("insert");
    }
    for site_id in [north.id, north.id, south.id] {
        db.insert_patient(&patient(site_id)).await.expect("insert");
    }

    let mut counts = db.count_patients_by_site().await.expect("count");
    counts.sort();
    let mut expected = vec![(north.id, 2), (south.id, 1)];
    expected.sort();
    assert_eq!(counts, expected);
}

async fn patient_is_found_by_account(db: &Database) {
    let north = site("NORTH");
    db.insert_site(&north).await.expect("insert");
    let login = account(
        "rosa",
        vec![RoleAssignment {
            role: Role::Patient,
            site_id: None,
        }],
    );
    db.insert_account(&login, "h").await.expect("insert");
    let mut record = patient(north.id);
    record.account_id = Some(login.id);
    db.insert_patient(&record).await.expect("insert");

    assert_eq!(
        db.find_patient_for_account(login.id)
            .await
            .expect("found")
            .id,
        record.id
    );
    let stranger = AccountId::from_uuid(new_id());
    assert!(matches!(
        db.find_patient_for_account(stranger).await,
        Err(StorageError::NotFound { .. })
    ));

    let mut second = patient(north.id);
    second.account_id = Some(login.id);
    let error = db
        .insert_patient(&second)
        .await
        .expect_err("one record per account");
    assert_eq!(conflict_name(error), "patients_account_id_key");
}

async fn session_lifecycle(db: &Database) {
    let login = account("carl", vec![]);
    db.insert_account(&login, "h").await.expect("insert");
    let start: Timestamp = "2026-12-04T10:00:00.123Z".parse().expect("valid");
    let session = SignInSession {
        token_digest: "d".repeat(64),
        account_id: login.id,
        created_at: start,
        last_seen_at: start,
        expires_at: start + SignedDuration::from_hours(12),
        second_factor_at: None,
    };
    db.insert_session(&session).await.expect("insert");
    assert_eq!(
        db.find_session(&session.token_digest).await.expect("find"),
        session
    );

    let later = start + SignedDuration::from_mins(5);
    db.touch_session(&session.token_digest, later)
        .await
        .expect("touch");
    assert_eq!(
        db.find_session(&session.token_digest)
            .await
            .expect("find")
            .last_seen_at,
        later
    );

    let verified = SignInSession {
        token_digest: "f".repeat(64),
        second_factor_at: Some(later),
        ..session.clone()
    };
    db.insert_session(&verified).await.expect("insert");
    assert_eq!(
        db.find_session(&verified.token_digest)
            .await
            .expect("find")
            .second_factor_at,
        Some(later)
    );

    db.delete_session(&session.token_digest)
        .await
        .expect("delete");
    assert!(matches!(
        db.find_session(&session.token_digest).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        db.delete_session(&session.token_digest).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        db.touch_session(&session.token_digest, later).await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn totp_enrolment_and_step_claims(db: &Database) {
    let login = account("tess", vec![]);
    db.insert_account(&login, "h").await.expect("insert");
    let at: Timestamp = "2026-12-04T10:00:00Z".parse().expect("valid");
    assert_eq!(db.find_totp_credential(login.id).await.expect("find"), None);

    // An unfinished enrolment can be restarted with a new secret.
    db.put_unconfirmed_totp(login.id, "first", at)
        .await
        .expect("put");
    db.put_unconfirmed_totp(login.id, "second", at)
        .await
        .expect("replace");
    let stored = db
        .find_totp_credential(login.id)
        .await
        .expect("find")
        .expect("stored");
    assert_eq!(stored.sealed_secret, "second");
    assert_eq!(stored.confirmed_at, None);
    assert!(
        !db.claim_totp_step(login.id, 5).await.expect("claim"),
        "unconfirmed"
    );

    let digests = vec!["a".repeat(64), "b".repeat(64)];
    db.confirm_totp(login.id, 100, at, &digests)
        .await
        .expect("confirm");
    assert_eq!(
        db.find_totp_credential(login.id)
            .await
            .expect("find")
            .expect("stored")
            .confirmed_at,
        Some(at)
    );
    let error = db
        .put_unconfirmed_totp(login.id, "third", at)
        .await
        .expect_err("a confirmed credential is not replaced");
    assert_eq!(conflict_name(error), "totp_credentials_pkey");

    // Each step is accepted once, and never one at or before the last accepted step.
    assert!(!db.claim_totp_step(login.id, 100).await.expect("claim"));
    assert!(db.claim_totp_step(login.id, 101).await.expect("claim"));
    assert!(!db.claim_totp_step(login.id, 101).await.expect("claim"));
    assert!(!db.claim_totp_step(login.id, 99).await.expect("claim"));

    // A recovery code works once.
    assert_eq!(
        db.count_unused_recovery_codes(login.id)
            .await
            .expect("count"),
        2
    );
    assert!(
        db.use_recovery_code(login.id, &digests[0], at)
            .await
            .expect("use")
    );
    assert!(
        !db.use_recovery_code(login.id, &digests[0], at)
            .await
            .expect("reuse")
    );
    assert_eq!(
        db.count_unused_recovery_codes(login.id)
            .await
            .expect("count"),
        1
    );
    db.replace_recovery_codes(login.id, &["c".repeat(64)])
        .await
        .expect("replace");
    assert!(
        !db.use_recovery_code(login.id, &digests[1], at)
            .await
            .expect("old code")
    );
    assert_eq!(
        db.count_unused_recovery_codes(login.id)
            .await
            .expect("count"),
        1
    );

    db.remove_second_factor(login.id).await.expect("remove");
    assert_eq!(db.find_totp_credential(login.id).await.expect("find"), None);
    assert_eq!(
        db.count_unused_recovery_codes(login.id)
            .await
            .expect("count"),
        0
    );
}

async fn roles_are_removed_and_accounts_deactivated(db: &Database) {
    let north = site("RMV");
    db.insert_site(&north).await.expect("site");
    let clinician = RoleAssignment::new(Role::Clinician, Some(north.id)).expect("valid");
    let caregiver = RoleAssignment::new(Role::Caregiver, None).expect("valid");
    let login = account("rory", vec![clinician, caregiver]);
    db.insert_account(&login, "h").await.expect("insert");

    assert!(
        db.remove_role_assignment(login.id, clinician)
            .await
            .expect("remove")
    );
    assert!(
        !db.remove_role_assignment(login.id, clinician)
            .await
            .expect("again")
    );
    assert_eq!(
        db.get_account(login.id).await.expect("get").roles,
        vec![caregiver]
    );

    let at: Timestamp = "2026-12-04T10:00:00Z".parse().expect("valid");
    let session = SignInSession {
        token_digest: "e".repeat(64),
        account_id: login.id,
        created_at: at,
        last_seen_at: at,
        expires_at: at + SignedDuration::from_hours(1),
        second_factor_at: None,
    };
    db.insert_session(&session).await.expect("session");
    db.set_account_deactivated(login.id, Some(at))
        .await
        .expect("deactivate");
    assert_eq!(
        db.find_credentials(&login.email)
            .await
            .expect("find")
            .deactivated_at,
        Some(at)
    );
    assert!(matches!(
        db.find_session(&session.token_digest).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(
        db.deactivated_accounts().await.expect("list"),
        vec![login.id]
    );
    db.set_account_deactivated(login.id, None)
        .await
        .expect("reactivate");
    assert!(db.deactivated_accounts().await.expect("list").is_empty());
}

async fn account_language_is_updated(db: &Database) {
    let login = account("dee", vec![]);
    db.insert_account(&login, "h").await.expect("insert");
    db.set_account_language(login.id, &Language::english())
        .await
        .expect("update");
    assert_eq!(
        db.get_account(login.id).await.expect("get").language,
        Language::english()
    );

    let stranger = AccountId::from_uuid(new_id());
    assert!(matches!(
        db.set_account_language(stranger, &Language::english())
            .await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn schema_is_current_and_migrate_is_idempotent(db: &Database) {
    let status = db.schema_status().await.expect("status");
    assert!(status.is_current(), "{status:?}");
    assert!(!status.known.is_empty());
    assert_eq!(db.migrate().await.expect("second run"), Vec::<i64>::new());
    db.ping().await.expect("ping");
}

async fn closed_pool_is_unavailable(db: &Database) {
    db.close().await;
    assert!(matches!(
        db.list_sites().await,
        Err(StorageError::Unavailable(_))
    ));
    assert!(matches!(db.ping().await, Err(StorageError::Unavailable(_))));
}

/// Generates one test per scenario and dialect.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let database = stillpoint_test_support::TestDatabase::sqlite().await;
                    super::$scenario(&database.database).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let test = concat!("postgres::", stringify!($scenario));
                    if let Some(database) = stillpoint_test_support::TestDatabase::postgres(test).await {
                        super::$scenario(&database.database).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    site_round_trip,
    sites_are_listed_by_code,
    duplicate_site_code_names_constraint,
    duplicate_site_id_names_primary_key,
    missing_site_is_not_found,
    account_with_roles_round_trip,
    duplicate_email_names_constraint,
    failed_role_write_leaves_no_account,
    patient_with_conditions_round_trip,
    duplicate_condition_rolls_back_patient,
    patient_at_unknown_site_is_conflict,
    patients_are_counted_by_site,
    patient_is_found_by_account,
    session_lifecycle,
    totp_enrolment_and_step_claims,
    roles_are_removed_and_accounts_deactivated,
    account_language_is_updated,
    schema_is_current_and_migrate_is_idempotent,
    closed_pool_is_unavailable,
);

/// A database that a newer release migrated is refused before anything is written.
async fn newer_database_is_refused(database: &TestDatabase) {
    let checksum = match database.database.dialect() {
        Dialect::Sqlite => "X'00'",
        Dialect::Postgres => "'\\x00'::bytea",
    };
    database
        .execute_raw(&format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99991231000000, 'from the future', TRUE, {checksum}, 0)"
        ))
        .await;
    let db = &database.database;
    let before = db.schema_status().await.expect("status");

    match db.migrate().await {
        Err(MigrateError::NewerDatabase { versions }) => {
            assert_eq!(versions, vec![99_991_231_000_000]);
        }
        other => panic!("expected the newer database to be refused, got {other:?}"),
    }
    assert_eq!(db.schema_status().await.expect("status"), before);
    assert!(!db.schema_status().await.expect("status").is_current());
}

#[tokio::test]
async fn newer_database_is_refused_on_sqlite() {
    newer_database_is_refused(&TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn newer_database_is_refused_on_postgres() {
    if let Some(database) = TestDatabase::postgres("newer_database_is_refused_on_postgres").await {
        newer_database_is_refused(&database).await;
    }
}

#[tokio::test]
async fn sqlite_connections_are_durable() {
    let database = TestDatabase::sqlite().await;
    let settings = database
        .database
        .sqlite_durability()
        .await
        .expect("pragmas");
    let value = |name: &str| {
        settings
            .iter()
            .find(|(pragma, _)| *pragma == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(value("journal_mode").as_deref(), Some("wal"));
    // SQLite reports synchronous = FULL as 2 (https://sqlite.org/pragma.html#pragma_synchronous).
    assert_eq!(value("synchronous").as_deref(), Some("2"));
    assert_eq!(value("foreign_keys").as_deref(), Some("1"));
    assert_eq!(value("busy_timeout").as_deref(), Some("5000"));
    assert_eq!(database.database.dialect(), Dialect::Sqlite);
}
