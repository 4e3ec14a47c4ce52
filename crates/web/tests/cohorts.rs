//! Creating cohorts through the API: the planned sessions, and bad input rejected by field with
//! nothing stored. Runs on SQLite, and on PostgreSQL when it is configured.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stillpoint_app::ports::{CohortStore as _, ProgramStore as _};
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};

/// Builds a valid request for a NORTH cohort in Chicago; the test clock reads 2026-12-04.
fn north_cohort(app: &TestApp) -> Value {
    let demo = app.demo.as_ref().expect("demo");
    let facilitator = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "facilitator@demo-clinic.example")
        .expect("facilitator");
    json!({
        "site_id": demo.sites[0].id.to_string(),
        "name": "NORTH · spring evening group",
        "time_zone": "America/Chicago",
        "lead_facilitator_id": facilitator.id.to_string(),
        "orientation_date": "2027-02-23",
        "first_class_date": "2027-03-02",
        "class_time": "18:30",
        "class_minutes": 150,
        "retreat_start": "2027-04-10T09:30",
        "retreat_minutes": 360,
        "curriculum_id": "mbsr-online",
        "curriculum_version": 1,
    })
}

async fn create(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client()
        .post(app.url("/api/v1/cohorts"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn cohort_is_created_with_its_sessions(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "cohort_create").await else {
        return;
    };
    let admin = app.api_token("program.admin").await;
    let (status, body) = create(&app, &admin, &north_cohort(&app)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sessions = body["sessions"].as_array().expect("sessions");
    assert_eq!(
        sessions.len(),
        10,
        "orientation, eight classes and the retreat"
    );
    assert_eq!(sessions[0]["kind"], "orientation");
    // Chicago moves to daylight time on 2027-03-14: the class stays at 18:30 local, 00:30 UTC
    // the next day before and 23:30 UTC after.
    assert_eq!(sessions[1]["start"], "2027-03-03T00:30:00Z");
    assert_eq!(sessions[3]["start"], "2027-03-16T23:30:00Z");
    assert!(
        sessions
            .iter()
            .all(|session| session["dst_warning"].is_null())
    );

    let id: stillpoint_domain::CohortId = body["id"].as_str().expect("id").parse().expect("uuid");
    let stored = app
        .database
        .database
        .list_cohort_sessions(id)
        .await
        .expect("sessions");
    assert_eq!(stored.len(), 10);
}

async fn bad_cohorts_are_rejected_by_field(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "cohort_reject").await else {
        return;
    };
    let admin = app.api_token("program.admin").await;
    let before = app.database.database.count_cohorts().await.expect("count");
    let south_facilitator = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "clinician.south@demo-clinic.example")
        .expect("account")
        .id
        .to_string();

    for (field, value, expected) in [
        ("first_class_date", json!("2026-11-03"), "start_date"),
        ("retreat_start", json!("2027-03-05T09:00"), "retreat_date"),
        ("time_zone", json!("Mars/Olympus"), "time_zone"),
        ("capacity", json!(0), "capacity"),
        ("class_minutes", json!(600), "class_length"),
        ("video_provider", json!("fax"), "video_provider"),
        (
            "lead_facilitator_id",
            json!(south_facilitator),
            "lead_facilitator_id",
        ),
        ("orientation_date", json!("2027-13-40"), "orientation_date"),
    ] {
        let mut body = north_cohort(&app);
        body[field] = value;
        let (status, problem) = create(&app, &admin, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {problem}"
        );
        assert_eq!(problem["field"], expected, "{field}: {problem}");
    }
    assert_eq!(
        app.database.database.count_cohorts().await.expect("count"),
        before,
        "nothing was stored"
    );

    // Only administrators of the site may create cohorts there.
    let clinician = app.api_token("clinician").await;
    assert_eq!(
        create(&app, &clinician, &north_cohort(&app)).await.0,
        StatusCode::FORBIDDEN
    );
}

stillpoint_test_support::on_both_databases!(
    cohort_is_created_with_its_sessions,
    bad_cohorts_are_rejected_by_field,
);
