//! The enrolment pathway through the API: every step for a consenting patient, consent checked
//! before each step, screening routing, cohort checks and refused moves. Runs on SQLite, and on
//! PostgreSQL when it is configured.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};

async fn step(app: &TestApp, token: &str, patient: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client()
        .post(app.url(&format!("/api/v1/patients/{patient}/enrolment")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn screening(flags: &[&str]) -> Value {
    json!({
        "action": "complete_screening",
        "screening": {
            "conditions": ["G89.4", "E11.9"],
            "symptom_burden": 6,
            "interested_in_non_drug_coping": true,
            "exclusion_flags": flags,
        }
    })
}

#[allow(clippy::too_many_lines)] // One journey, read top to bottom.
async fn pathway_runs_from_referral_to_completion(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "enrolment_pathway").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let patient_id = unassigned(demo);
    let clinician_account = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "clinician@demo-clinic.example")
        .expect("clinician")
        .id;
    app.record_paper_consents(patient_id, clinician_account)
        .await;
    let patient = patient_id.to_string();
    let north_cohort = demo.cohorts[0].0.id.to_string();
    let south_cohort = demo.cohorts[1].0.id.to_string();
    let clinician = app.api_token("clinician").await;

    // A move the current state does not allow names both states.
    let (status, problem) = step(&app, &clinician, &patient, json!({"action": "start"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "transition_not_allowed");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("'referred' cannot move to 'active'"),
        "{problem}"
    );

    let (status, body) = step(
        &app,
        &clinician,
        &patient,
        json!({"action": "start_screening"}),
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("screening"))
    );

    let mut bad = screening(&[]);
    bad["screening"]["symptom_burden"] = json!(11);
    let (status, problem) = step(&app, &clinician, &patient, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "symptom_burden");

    for (action, expected) in [
        (screening(&[]), "eligible"),
        (json!({"action": "record_consent"}), "consented"),
        (json!({"action": "complete_orientation"}), "oriented"),
    ] {
        let (status, body) = step(&app, &clinician, &patient, action).await;
        assert_eq!(
            (status, body["state"].as_str()),
            (StatusCode::OK, Some(expected))
        );
    }

    // The cohort must be at the patient's site.
    let (status, problem) = step(
        &app,
        &clinician,
        &patient,
        json!({"action": "enrol", "cohort_id": south_cohort}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "cohort_id");

    let (status, body) = step(
        &app,
        &clinician,
        &patient,
        json!({"action": "enrol", "cohort_id": north_cohort}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "enrolled");
    assert_eq!(body["cohort_id"], north_cohort.as_str());

    for (action, expected) in [
        ("start", "active"),
        ("mark_lapsed", "lapsed"),
        ("return", "returned"),
        ("complete", "completed"),
    ] {
        let (status, body) = step(&app, &clinician, &patient, json!({"action": action})).await;
        assert_eq!(
            (status, body["state"].as_str()),
            (StatusCode::OK, Some(expected)),
            "{action}"
        );
    }

    // The history records every move with its actor, and each move is audited.
    let response = app
        .client()
        .get(app.url(&format!("/api/v1/patients/{patient}/enrolment")))
        .bearer_auth(&clinician)
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("json");
    let history = body["history"].as_array().expect("history");
    assert_eq!(history.len(), 9);
    assert_eq!(history[0]["from_state"], "referred");
    assert_eq!(history[8]["to_state"], "completed");
    let clinician_id = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "clinician@demo-clinic.example")
        .expect("clinician")
        .id
        .to_string();
    assert!(
        history
            .iter()
            .all(|entry| entry["account_id"] == clinician_id.as_str())
    );
}

async fn consent_is_checked_before_each_step(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "enrolment_consent").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let north = demo.sites[0].id;
    // A patient without an account has agreed to nothing.
    let unconsented = demo
        .patients
        .iter()
        .find(|patient| {
            patient.site_id == north
                && patient.account_id.is_none()
                && !demo.is_cohort_member(patient.id)
        })
        .expect("a NORTH patient outside the cohorts")
        .id
        .to_string();
    let clinician = app.api_token("clinician").await;
    step(
        &app,
        &clinician,
        &unconsented,
        json!({"action": "start_screening"}),
    )
    .await;
    step(&app, &clinician, &unconsented, screening(&[])).await;
    let (status, problem) = step(
        &app,
        &clinician,
        &unconsented,
        json!({"action": "record_consent"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "consent");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("telehealth-video")
    );

    // A patient who withdraws a consent cannot take the next step: Lucía, taking part in the
    // NORTH cohort, is paused, withdraws the telehealth consent, and cannot be taken back.
    let lucia = demo.patients[0].id.to_string();
    assert_eq!(
        step(&app, &clinician, &lucia, json!({"action": "mark_lapsed"}))
            .await
            .0,
        StatusCode::OK
    );
    let patient = app.browser_session("patient").await;
    let withdrawn = app
        .post_form(
            &patient,
            "/consent/telehealth-video/withdraw",
            &[("reason", "")],
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
    let (status, problem) = step(&app, &clinician, &lucia, json!({"action": "return"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "consent");
}

async fn screening_routes_and_access_is_scoped(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "enrolment_routing").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let patient = unassigned(demo).to_string();
    let clinician = app.api_token("clinician").await;
    step(
        &app,
        &clinician,
        &patient,
        json!({"action": "start_screening"}),
    )
    .await;
    let (status, body) = step(
        &app,
        &clinician,
        &patient,
        screening(&["active_suicidality"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "higher_level_of_care");
    assert_eq!(body["exclusion_flags"], json!(["active_suicidality"]));
    let (status, _) = step(
        &app,
        &clinician,
        &patient,
        json!({"action": "withdraw", "reason": "referred to psychiatry"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "the pathway ended there");

    // Only the patient's care team may see or move the enrolment.
    for local in ["clinician.south", "patient", "caregiver"] {
        let token = app.api_token(local).await;
        let response = app
            .client()
            .get(app.url(&format!("/api/v1/patients/{patient}/enrolment")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{local}");
    }
}

/// Checks that a patient enrolled in the SOUTH cohort, whose orientation is on 2026-12-10, cannot
/// be marked as taking part before that day.
async fn start_waits_for_the_first_session(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "enrolment_start").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let south = demo.sites[1].id;
    let patient = demo
        .patients
        .iter()
        .find(|patient| patient.site_id == south && !demo.is_cohort_member(patient.id))
        .expect("a SOUTH patient outside the cohorts")
        .id;
    let clinician = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "clinician.south@demo-clinic.example")
        .expect("clinician.south")
        .id;
    app.record_paper_consents(patient, clinician).await;
    let token = app.api_token("clinician.south").await;
    let patient = patient.to_string();
    let south_cohort = demo.cohorts[1].0.id.to_string();
    for action in [
        json!({"action": "start_screening"}),
        screening(&[]),
        json!({"action": "record_consent"}),
        json!({"action": "complete_orientation"}),
        json!({"action": "enrol", "cohort_id": south_cohort}),
    ] {
        assert_eq!(step(&app, &token, &patient, action).await.0, StatusCode::OK);
    }

    let (status, problem) = step(&app, &token, &patient, json!({"action": "start"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "cohort_id");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("first session is on 2026-12-10"),
        "{problem}"
    );

    app.clock.advance(jiff::SignedDuration::from_hours(24 * 6));
    let token = app.api_token("clinician.south").await;
    let (status, body) = step(&app, &token, &patient, json!({"action": "start"})).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("active"))
    );
}

stillpoint_test_support::on_both_databases!(
    pathway_runs_from_referral_to_completion,
    consent_is_checked_before_each_step,
    screening_routes_and_access_is_scoped,
    start_waits_for_the_first_session,
);

/// Returns a NORTH patient who is in no demo cohort, so their pathway starts at referred.
fn unassigned(demo: &stillpoint_app::demo::DemoClinic) -> stillpoint_domain::PatientId {
    demo.patients
        .iter()
        .find(|patient| patient.site_id == demo.sites[0].id && !demo.is_cohort_member(patient.id))
        .expect("a NORTH patient outside the cohorts")
        .id
}
