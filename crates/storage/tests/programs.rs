//! The storage of the MBSR programs behaves the same on SQLite and PostgreSQL. Curriculum
//! versions freeze when published, session changes are sequenced and atomic, roll calls replace
//! marks, capacity respects places taken, calendar feeds are revocable, and the system can record
//! a move without an actor.

use jiff::civil::{date, time};
use jiff::{SignedDuration, Timestamp};
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    AccountStore as _, AttendanceEntry, CareTeamStore as _, CohortStore as _, CurriculumStatus,
    CurriculumStore as _, EnrolmentStore as _, NewCohort, PatientStore as _, ProgramStore as _,
    SessionChange, SessionStatus, SiteStore as _, StoredCurriculum,
};
use stillpoint_domain::attendance::{AttendanceMark, AttendanceRecord, Makeup};
use stillpoint_domain::care_team::Cohort;
use stillpoint_domain::curriculum::{Curriculum, CurriculumId, parse_documents};
use stillpoint_domain::enrolment::EnrolmentState;
use stillpoint_domain::schedule::{self, ScheduleRequest};
use stillpoint_domain::{
    Account, AccountId, ChronicCondition, CohortId, EmailAddress, Icd10Code, Language, Patient,
    PatientId, Role, RoleAssignment, Site, SiteId, TimeZoneName,
};
use stillpoint_storage::{Database, Dialect};
use stillpoint_test_support::TestDatabase;
use uuid::Uuid;

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

/// Reads the shipped gentle curriculum from its documents, as the server does.
fn gentle() -> Curriculum {
    let documents = [
        (
            "mbsr-gentle/en.toml".to_owned(),
            include_str!("../../../content/curricula/mbsr-gentle/en.toml").to_owned(),
        ),
        (
            "mbsr-gentle/es.toml".to_owned(),
            include_str!("../../../content/curricula/mbsr-gentle/es.toml").to_owned(),
        ),
    ];
    parse_documents(&documents).expect("the shipped curriculum parses")
}

fn conflict_name(error: StorageError) -> String {
    match error {
        StorageError::Conflict { constraint } => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A site with a facilitator, two patients and a cohort of 10 planned sessions starting
/// 2027-03-02 in Chicago.
struct Fixture {
    facilitator: AccountId,
    patients: [PatientId; 2],
    cohort: CohortId,
}

async fn fixture(db: &Database) -> Fixture {
    let zone = TimeZoneName::parse("America/Chicago").expect("zone");
    let site = Site {
        id: SiteId::from_uuid(Uuid::now_v7()),
        code: "NORTH".to_owned(),
        name: "North clinic".to_owned(),
        time_zone: zone.clone(),
    };
    db.insert_site(&site).await.expect("site");
    let facilitator = Account {
        id: AccountId::from_uuid(Uuid::now_v7()),
        email: EmailAddress::parse("facilitator@clinic.example").expect("address"),
        display_name: "Facilitator".to_owned(),
        language: Language::english(),
        time_zone: zone.clone(),
        roles: vec![RoleAssignment::new(Role::Facilitator, Some(site.id)).expect("role")],
        preferences: stillpoint_domain::DisplayPreferences::default(),
    };
    db.insert_account(&facilitator, "not-a-usable-hash")
        .await
        .expect("account");
    let mut patients = Vec::new();
    for given_name in ["Rosa", "Iván"] {
        let patient = Patient {
            id: PatientId::from_uuid(Uuid::now_v7()),
            account_id: None,
            site_id: site.id,
            given_name: given_name.to_owned(),
            family_name: "Díaz".to_owned(),
            birth_date: date(1961, 3, 9),
            language: Language::spanish(),
            time_zone: zone.clone(),
            conditions: vec![ChronicCondition {
                code: Icd10Code::parse("M79.7").expect("code"),
                display: "Fibromyalgia".to_owned(),
            }],
        };
        db.insert_patient(&patient).await.expect("patient");
        patients.push(patient.id);
    }
    let sessions = schedule::plan(
        &ScheduleRequest {
            time_zone: zone.clone(),
            orientation_date: date(2027, 2, 23),
            first_class_date: date(2027, 3, 2),
            class_time: time(18, 0, 0, 0),
            class_length: SignedDuration::from_mins(90),
            retreat_start: date(2027, 4, 10).at(9, 30, 0, 0),
            retreat_length: SignedDuration::from_mins(180),
            skip_dates: Vec::new(),
        },
        date(2027, 1, 1),
    )
    .expect("plan");
    let cohort = Cohort {
        id: CohortId::from_uuid(Uuid::now_v7()),
        site_id: site.id,
        name: "Tuesday group".to_owned(),
    };
    db.create_cohort(
        &NewCohort {
            cohort: cohort.clone(),
            capacity: 15,
            language: Language::english(),
            time_zone: zone,
            video_provider: "embedded",
            facilitators: vec![(facilitator.id, true)],
            sessions,
            curriculum: (CurriculumId::parse("mbsr-gentle").expect("id"), 1),
        },
        at("2027-01-01T12:00:00Z"),
    )
    .await
    .expect("cohort");
    Fixture {
        facilitator: facilitator.id,
        patients: [patients[0], patients[1]],
        cohort: cohort.id,
    }
}

async fn curriculum_versions_freeze_when_published(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "curriculum_versions").await else {
        return;
    };
    let db = &database.database;
    let mut curriculum = gentle();
    let stored = StoredCurriculum {
        curriculum: curriculum.clone(),
        status: CurriculumStatus::Draft,
        based_on: None,
        created_by: None,
        site: None,
        revision: 0,
        created_at: at("2027-01-01T12:00:00Z"),
        published_at: None,
    };
    db.insert_curriculum_version(&stored).await.expect("insert");
    assert_eq!(
        db.get_curriculum_version(&curriculum.id, 1)
            .await
            .expect("get"),
        stored
    );
    let duplicate = db
        .insert_curriculum_version(&stored)
        .await
        .expect_err("twice");
    assert_eq!(conflict_name(duplicate), "curriculum_versions_pkey");

    curriculum.class_minutes = 95;
    db.update_curriculum_draft(&curriculum, 0)
        .await
        .expect("draft edit");
    let stale = db
        .update_curriculum_draft(&curriculum, 0)
        .await
        .expect_err("an edit from an older reading");
    assert_eq!(conflict_name(stale), "curriculum_versions_changed");
    let stale = db
        .publish_curriculum_version(&curriculum.id, 1, 0, at("2027-01-02T12:00:00Z"))
        .await
        .expect_err("a publish from an older reading");
    assert_eq!(conflict_name(stale), "curriculum_versions_changed");
    db.publish_curriculum_version(&curriculum.id, 1, 1, at("2027-01-02T12:00:00Z"))
        .await
        .expect("publish");
    let published = db
        .get_curriculum_version(&curriculum.id, 1)
        .await
        .expect("get");
    assert_eq!(published.status, CurriculumStatus::Published);
    assert_eq!(published.curriculum.class_minutes, 95);
    assert_eq!(published.published_at, Some(at("2027-01-02T12:00:00Z")));
    assert_eq!(published.revision, 1);

    curriculum.class_minutes = 100;
    let frozen = db
        .update_curriculum_draft(&curriculum, 1)
        .await
        .expect_err("frozen");
    assert_eq!(conflict_name(frozen), "curriculum_versions_changed");
    let again = db
        .publish_curriculum_version(&curriculum.id, 1, 1, at("2027-01-03T12:00:00Z"))
        .await
        .expect_err("published already");
    assert_eq!(conflict_name(again), "curriculum_versions_changed");
    assert_eq!(
        db.get_curriculum_version(&curriculum.id, 1)
            .await
            .expect("get")
            .curriculum
            .class_minutes,
        95
    );
    assert!(matches!(
        db.get_curriculum_version(&curriculum.id, 2).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(db.list_curriculum_versions().await.expect("list").len(), 1);
}

async fn session_changes_are_sequenced(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "session_changes").await else {
        return;
    };
    let db = &database.database;
    let fixture = fixture(db).await;
    let sessions = db
        .list_cohort_sessions(fixture.cohort)
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), 10);
    let week_two = &sessions[2];
    assert_eq!(week_two.sequence, 0);

    let mut moved = week_two.planned.clone();
    moved.start += SignedDuration::from_hours(1);
    moved.end += SignedDuration::from_hours(1);
    let change = SessionChange {
        session: week_two.id,
        expected_sequence: 0,
        new_plan: Some(moved.clone()),
        reason: "Room booked".to_owned(),
        actor: fixture.facilitator,
        at: at("2027-02-01T12:00:00Z"),
    };
    db.change_cohort_session(&change).await.expect("moved");
    let stale = db.change_cohort_session(&change).await.expect_err("stale");
    assert_eq!(conflict_name(stale), "cohort_sessions_changed");

    let cancel = SessionChange {
        expected_sequence: 1,
        new_plan: None,
        reason: "Facilitator ill".to_owned(),
        at: at("2027-02-02T12:00:00Z"),
        ..change.clone()
    };
    db.change_cohort_session(&cancel).await.expect("cancelled");
    let stored = db.get_cohort_session(week_two.id).await.expect("session");
    assert_eq!(stored.sequence, 2);
    assert_eq!(stored.status, SessionStatus::Cancelled);
    assert_eq!(stored.planned.start, moved.start);
    let after_cancel = SessionChange {
        expected_sequence: 2,
        ..change
    };
    let refused = db
        .change_cohort_session(&after_cancel)
        .await
        .expect_err("cancelled sessions stay cancelled");
    assert_eq!(conflict_name(refused), "cohort_sessions_changed");

    let changes = db
        .list_session_changes(fixture.cohort)
        .await
        .expect("changes");
    assert_eq!(changes.len(), 2, "the stale change left no record");
    assert!(changes[0].cancelled);
    assert_eq!(changes[0].reason, "Facilitator ill");
    assert_eq!(changes[1].new_start, Some(moved.start));
    assert_eq!(changes[1].previous_start, week_two.planned.start);
}

async fn roll_call_replaces_marks(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "roll_call_marks").await else {
        return;
    };
    let db = &database.database;
    let fixture = fixture(db).await;
    let sessions = db
        .list_cohort_sessions(fixture.cohort)
        .await
        .expect("sessions");
    let mark = |patient, mark, minutes, makeup| AttendanceEntry {
        session: sessions[1].id,
        patient,
        record: AttendanceRecord {
            mark,
            minutes_attended: minutes,
            makeup,
        },
    };
    let [rosa, ivan] = fixture.patients;
    db.put_attendance(
        &[
            mark(rosa, AttendanceMark::Present, 90, None),
            mark(ivan, AttendanceMark::Absent, 0, None),
        ],
        fixture.facilitator,
        at("2027-03-02T02:00:00Z"),
    )
    .await
    .expect("roll call");
    db.put_attendance(
        &[mark(
            ivan,
            AttendanceMark::Excused,
            0,
            Some(Makeup::Recording),
        )],
        fixture.facilitator,
        at("2027-03-03T02:00:00Z"),
    )
    .await
    .expect("correction");

    let marks = db
        .cohort_attendance(fixture.cohort)
        .await
        .expect("attendance");
    assert_eq!(marks.len(), 2);
    let ivan_marks = db.patient_attendance(ivan).await.expect("attendance");
    assert_eq!(
        ivan_marks,
        vec![mark(
            ivan,
            AttendanceMark::Excused,
            0,
            Some(Makeup::Recording)
        )]
    );

    // A mark for a patient who does not exist rolls the whole roll call back.
    let stranger = PatientId::from_uuid(Uuid::now_v7());
    let failed = db
        .put_attendance(
            &[
                mark(rosa, AttendanceMark::Late, 80, None),
                mark(stranger, AttendanceMark::Present, 90, None),
            ],
            fixture.facilitator,
            at("2027-03-03T03:00:00Z"),
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(
        db.patient_attendance(rosa).await.expect("attendance")[0]
            .record
            .mark,
        AttendanceMark::Present
    );
}

async fn capacity_and_places_agree(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "capacity_places").await else {
        return;
    };
    let db = &database.database;
    let fixture = fixture(db).await;
    for patient in fixture.patients {
        db.record_transition(
            patient,
            None,
            &EnrolmentState::Enrolled {
                cohort: fixture.cohort,
            },
            Some(fixture.facilitator),
            None,
            None,
            at("2027-02-01T12:00:00Z"),
        )
        .await
        .expect("enrolled");
    }
    assert!(
        !db.set_cohort_capacity(fixture.cohort, 1)
            .await
            .expect("update")
    );
    assert_eq!(
        db.get_cohort_details(fixture.cohort)
            .await
            .expect("details")
            .capacity,
        15
    );
    assert!(
        db.set_cohort_capacity(fixture.cohort, 2)
            .await
            .expect("update")
    );
    let roster = db.cohort_roster(fixture.cohort).await.expect("roster");
    assert_eq!(roster.len(), 2);
    assert_eq!(
        roster[0].given_name, "Iván",
        "ordered by family then given name"
    );

    // The system marks a lapse without an actor, and the history keeps it that way.
    let [rosa, _] = fixture.patients;
    db.record_transition(
        rosa,
        Some(&EnrolmentState::Enrolled {
            cohort: fixture.cohort,
        }),
        &EnrolmentState::Lapsed {
            cohort: fixture.cohort,
        },
        None,
        Some("no attended session for 14 days"),
        None,
        at("2027-03-20T12:00:00Z"),
    )
    .await
    .expect("lapse");
    let history = db.enrolment_history(rosa).await.expect("history");
    assert_eq!(history.last().expect("move").actor, None);

    // A patient who withdraws leaves the facilitators' care team; one who lapsed stays in it.
    let [_, ivan] = fixture.patients;
    assert!(
        db.facilitates_patient(fixture.facilitator, rosa)
            .await
            .expect("lapsed")
    );
    assert!(
        db.facilitates_patient(fixture.facilitator, ivan)
            .await
            .expect("enrolled")
    );
    db.record_transition(
        ivan,
        Some(&EnrolmentState::Enrolled {
            cohort: fixture.cohort,
        }),
        &EnrolmentState::Withdrawn {
            reason: "moved away".to_owned(),
        },
        Some(fixture.facilitator),
        Some("moved away"),
        None,
        at("2027-03-21T12:00:00Z"),
    )
    .await
    .expect("withdrawn");
    assert!(
        !db.facilitates_patient(fixture.facilitator, ivan)
            .await
            .expect("withdrawn")
    );
    let lapsed = db.enrolments_in_states(&["lapsed"]).await.expect("lapsed");
    assert_eq!(lapsed.len(), 1);
    assert_eq!(lapsed[0].0, rosa);
}

async fn calendar_feeds_are_revocable(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "calendar_feeds").await else {
        return;
    };
    let db = &database.database;
    let fixture = fixture(db).await;
    let account = fixture.facilitator;
    assert_eq!(
        db.calendar_feed_created_at(account).await.expect("none"),
        None
    );
    db.put_calendar_feed(account, "digest-one", at("2027-01-01T12:00:00Z"))
        .await
        .expect("created");
    assert_eq!(
        db.find_calendar_feed("digest-one").await.expect("found"),
        account
    );
    db.put_calendar_feed(account, "digest-two", at("2027-01-02T12:00:00Z"))
        .await
        .expect("replaced");
    assert!(matches!(
        db.find_calendar_feed("digest-one").await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(
        db.calendar_feed_created_at(account).await.expect("created"),
        Some(at("2027-01-02T12:00:00Z"))
    );
    assert!(db.delete_calendar_feed(account).await.expect("deleted"));
    assert!(
        !db.delete_calendar_feed(account)
            .await
            .expect("nothing left")
    );
    assert!(matches!(
        db.find_calendar_feed("digest-two").await,
        Err(StorageError::NotFound { .. })
    ));
}

stillpoint_test_support::on_both_databases!(
    curriculum_versions_freeze_when_published,
    session_changes_are_sequenced,
    roll_call_replaces_marks,
    capacity_and_places_agree,
    calendar_feeds_are_revocable,
);
