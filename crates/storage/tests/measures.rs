//! The storage of responses and safety alerts behaves the same on SQLite and PostgreSQL: a
//! response commits with its scores, alert and audit events or not at all, concurrent
//! submissions with one client id store one response, and concurrent lifecycle steps or
//! escalations on one alert let exactly one through.

use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    AccountStore as _, AlertEscalation, AlertEvent, AlertTransition, AuditStore as _,
    MeasureStore as _, NewAlert, NewResponse, PatientStore as _, SiteStore as _, StoredResponse,
    StoredScore, SubmitOutcome,
};
use stillpoint_domain::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use stillpoint_domain::measures::safety::{AlertLevel, AlertState, EscalationLevel};
use stillpoint_domain::{
    Account, AccountId, AlertId, EmailAddress, Language, Patient, PatientId, ResponseId, Role,
    RoleAssignment, Site, SiteId, TimeZoneName,
};
use stillpoint_storage::{Database, Dialect};
use stillpoint_test_support::TestDatabase;
use uuid::Uuid;

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

struct Fixture {
    site: SiteId,
    clinician: AccountId,
    patient: PatientId,
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
    let clinician = Account {
        id: AccountId::from_uuid(Uuid::now_v7()),
        email: EmailAddress::parse("clinician@clinic.example").expect("address"),
        display_name: "Clinician".to_owned(),
        language: Language::english(),
        time_zone: zone.clone(),
        roles: vec![RoleAssignment::new(Role::Clinician, Some(site.id)).expect("role")],
        preferences: stillpoint_domain::DisplayPreferences::default(),
    };
    db.insert_account(&clinician, "not-a-usable-hash")
        .await
        .expect("account");
    let patient = Patient {
        id: PatientId::from_uuid(Uuid::now_v7()),
        account_id: None,
        site_id: site.id,
        given_name: "Rosa".to_owned(),
        family_name: "Díaz".to_owned(),
        birth_date: date(1961, 3, 9),
        language: Language::spanish(),
        time_zone: zone,
        conditions: Vec::new(),
    };
    db.insert_patient(&patient).await.expect("patient");
    Fixture {
        site: site.id,
        clinician: clinician.id,
        patient: patient.id,
    }
}

fn audit(patient: PatientId, kind: &str, id: String) -> NewAuditEvent {
    NewAuditEvent {
        recorded_at: at("2027-01-04T15:00:00Z"),
        actor: None,
        actor_role: None,
        patient: Some(patient),
        resource_type: kind.to_owned(),
        resource_id: Some(id),
        action: AuditAction::Create,
        outcome: AuditOutcome::Success,
        source_address: None,
        break_glass: false,
    }
}

/// A PHQ-9 submission with a total of `total`, raising a high alert when `alert` is set.
fn submission(fixture: &Fixture, client_id: &str, total: f64, alert: bool) -> NewResponse {
    let id = ResponseId::from_uuid(Uuid::now_v7());
    let item9 = u8::from(alert);
    let alert = alert.then(|| NewAlert {
        id: AlertId::from_uuid(Uuid::now_v7()),
        patient: fixture.patient,
        site: fixture.site,
        source: "response",
        level: AlertLevel::High,
        rules: vec!["phq9_item9".to_owned()],
        raised_at: at("2027-01-04T15:00:00Z"),
        deadline: at("2027-01-04T15:15:00Z"),
    });
    let mut events = vec![audit(fixture.patient, "measure_response", id.to_string())];
    if let Some(alert) = &alert {
        events.push(audit(fixture.patient, "safety_alert", alert.id.to_string()));
    }
    NewResponse {
        response: StoredResponse {
            id,
            client_id: client_id.to_owned(),
            patient: fixture.patient,
            instrument: "phq-9".to_owned(),
            instrument_version: 1,
            occasion: Some("baseline".to_owned()),
            answers: [("9".to_owned(), item9)].into_iter().collect(),
            language: Language::spanish(),
            submitted_by: fixture.clinician,
            submitted_at: at("2027-01-04T15:00:00Z"),
            scores: vec![StoredScore {
                scale: "total".to_owned(),
                raw: Some(total),
                reported: Some(total),
                band: Some("moderate".to_owned()),
                incomplete: false,
                problem: None,
            }],
            alert: alert.as_ref().map(|alert| alert.id),
        },
        alert,
        audit: events,
    }
}

async fn response_commits_with_alert_and_audit(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "measures_response_commits").await else {
        return;
    };
    let db = &test_db.database;
    let fixture = fixture(db).await;
    let head_before = db
        .audit_head()
        .await
        .expect("head")
        .map_or(0, |(sequence, _)| sequence);

    let outcome = db
        .submit_response(submission(&fixture, "form-1", 12.0, true))
        .await
        .expect("stored");
    let SubmitOutcome::Stored(stored) = outcome else {
        panic!("a first submission is stored");
    };
    let read = db.get_response(stored.id).await.expect("read back");
    assert_eq!(read.scores, stored.scores);
    assert_eq!(read.answers, stored.answers);
    let alert = db
        .get_alert(stored.alert.expect("alert id"))
        .await
        .expect("alert");
    assert_eq!(alert.state, AlertState::Raised);
    assert_eq!(alert.escalation, EscalationLevel::CareTeam);
    assert_eq!(alert.events.len(), 1);
    let head_after = db
        .audit_head()
        .await
        .expect("head")
        .map_or(0, |(sequence, _)| sequence);
    assert_eq!(
        head_after,
        head_before + 2,
        "the response's and the alert's audit events"
    );

    // A submission whose alert breaks a constraint stores nothing at all: not the response,
    // not its score, not its audit event.
    let mut broken = submission(&fixture, "form-2", 9.0, true);
    if let Some(alert) = &mut broken.alert {
        alert.site = SiteId::from_uuid(Uuid::now_v7());
    }
    let error = db.submit_response(broken).await.expect_err("unknown site");
    assert!(matches!(error, StorageError::Conflict { .. }), "{error:?}");
    assert_eq!(
        db.responses_of_patient(fixture.patient)
            .await
            .expect("list")
            .len(),
        1
    );
    let head_final = db
        .audit_head()
        .await
        .expect("head")
        .map_or(0, |(sequence, _)| sequence);
    assert_eq!(head_final, head_after);
}

async fn concurrent_duplicates_store_once(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "measures_duplicates").await else {
        return;
    };
    let db = &test_db.database;
    let fixture = fixture(db).await;
    let mut tasks = Vec::new();
    for index in 0..16 {
        let db = db.clone();
        // Half repeat one client id, half are distinct.
        let client_id = if index % 2 == 0 {
            "same".to_owned()
        } else {
            format!("own-{index}")
        };
        let request = submission(&fixture, &client_id, f64::from(index), index == 0);
        tasks.push(tokio::spawn(
            async move { db.submit_response(request).await },
        ));
    }
    let mut stored = 0;
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.expect("task").expect("submitted") {
            SubmitOutcome::Stored(_) => stored += 1,
            SubmitOutcome::Duplicate(response) => duplicates.push(response),
        }
    }
    assert_eq!(stored, 9, "one 'same' and eight distinct");
    assert_eq!(duplicates.len(), 7);
    let responses = db
        .responses_of_patient(fixture.patient)
        .await
        .expect("list");
    assert_eq!(responses.len(), 9);
    let same = responses
        .iter()
        .find(|r| r.client_id == "same")
        .expect("stored once");
    for duplicate in &duplicates {
        assert_eq!(
            duplicate.id, same.id,
            "every repeat returns the stored response"
        );
        assert_eq!(duplicate.scores, same.scores);
    }
}

async fn alert_steps_and_escalations_race_safely(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "measures_alert_races").await else {
        return;
    };
    let db = &test_db.database;
    let fixture = fixture(db).await;
    let SubmitOutcome::Stored(stored) = db
        .submit_response(submission(&fixture, "form-1", 20.0, true))
        .await
        .expect("stored")
    else {
        panic!("stored");
    };
    let alert = stored.alert.expect("alert");
    let step = |actor| AlertTransition {
        alert,
        from: AlertState::Raised,
        to: AlertState::Acknowledged,
        outcome: None,
        event: AlertEvent {
            at: at("2027-01-04T15:05:00Z"),
            actor: Some(actor),
            step: "acknowledged".to_owned(),
            detail: String::new(),
        },
        audit: audit(fixture.patient, "safety_alert", alert.to_string()),
    };
    let escalation = AlertEscalation {
        alert,
        from: EscalationLevel::CareTeam,
        to: EscalationLevel::ProgramAdministrators,
        deadline: at("2027-01-04T15:30:00Z"),
        event: AlertEvent {
            at: at("2027-01-04T15:16:00Z"),
            actor: None,
            step: "escalated".to_owned(),
            detail: "program_administrators".to_owned(),
        },
        audit: audit(fixture.patient, "safety_alert", alert.to_string()),
    };

    // Two acknowledgements at once from two servers (two pools, so the in-process lock does
    // not serialise them): one wins, the other conflicts.
    let second_server = Database::connect(&test_db.url).await.expect("second pool");
    let (one, other) = (step(fixture.clinician), step(fixture.clinician));
    let (first, second) = tokio::join!(
        db.record_alert_transition(&one),
        second_server.record_alert_transition(&other)
    );
    assert_eq!(
        u8::from(first.is_ok()) + u8::from(second.is_ok()),
        1,
        "{first:?} {second:?}"
    );
    // An acknowledged alert no longer escalates.
    let error = db
        .escalate_alert(&escalation)
        .await
        .expect_err("acknowledged");
    assert!(matches!(error, StorageError::Conflict { .. }));
    assert!(
        db.overdue_alerts(at("2027-01-04T16:00:00Z"))
            .await
            .expect("overdue")
            .is_empty()
    );
    let stored_alert = db.get_alert(alert).await.expect("alert");
    assert_eq!(
        stored_alert.events.len(),
        2,
        "raised and one acknowledgement"
    );
    assert_eq!(
        stored_alert.deadline,
        at("2027-01-04T15:00:00Z") + SignedDuration::from_mins(15)
    );
}

async fn bad_submission_spares_its_batch(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "measures_bad_in_batch").await else {
        return;
    };
    let db = &test_db.database;
    let fixture = fixture(db).await;
    let mut tasks = Vec::new();
    for index in 0..12 {
        let db = db.clone();
        let mut request = submission(&fixture, &format!("form-{index}"), 5.0, index == 5);
        if index == 5
            && let Some(alert) = &mut request.alert
        {
            // An unknown site breaks a foreign key, so this one submission must fail alone.
            alert.site = SiteId::from_uuid(Uuid::now_v7());
        }
        tasks.push(tokio::spawn(
            async move { db.submit_response(request).await },
        ));
    }
    let mut failed = 0;
    for task in tasks {
        if task.await.expect("task").is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 1);
    let stored = db
        .responses_of_patient(fixture.patient)
        .await
        .expect("list");
    assert_eq!(stored.len(), 11);
    assert!(!stored.iter().any(|response| response.client_id == "form-5"));
}

stillpoint_test_support::on_both_databases!(
    bad_submission_spares_its_batch,
    response_commits_with_alert_and_audit,
    concurrent_duplicates_store_once,
    alert_steps_and_escalations_race_safely,
);
