//! Outcome measures and safety alerts through the JSON API: scoring, idempotent submission,
//! bad input that stores nothing, the alert raised in the same transaction as its response,
//! and the alert's lifecycle and escalation. Runs on SQLite, and on PostgreSQL when it is
//! configured.
//!
//! The test clock starts at 2026-12-04T15:00Z, a Friday at 09:00 in Chicago, inside the
//! default staffed hours (weekdays 08:00–18:00), so an alert's deadline is 15 minutes later.

#![allow(clippy::too_many_lines)]

use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stillpoint_app::Clock as _;
use stillpoint_app::ports::{
    AccountStore as _, AuditFilter, AuditStore as _, JobStore as _, MeasureStore as _,
    NotificationStore as _, PatientStore as _, SafetySettings,
};
use stillpoint_domain::audit::NewAuditEvent;
use stillpoint_domain::{EmailAddress, PatientId};
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};

async fn patient_of(app: &TestApp, local: &str) -> PatientId {
    let email = EmailAddress::parse(&TestApp::demo_email(local)).expect("email");
    let account = app
        .database
        .database
        .find_credentials(&email)
        .await
        .expect("demo account")
        .account;
    app.database
        .database
        .find_patient_for_account(account.id)
        .await
        .expect("the demo patient has a record")
        .id
}

async fn post_json(app: &TestApp, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client()
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn phq9(values: [u8; 9]) -> Value {
    let answers: serde_json::Map<String, Value> = values
        .iter()
        .enumerate()
        .map(|(index, value)| ((index + 1).to_string(), json!(value)))
        .collect();
    Value::Object(answers)
}

async fn stored_count(app: &TestApp, patient: PatientId) -> usize {
    app.database
        .database
        .responses_of_patient(patient)
        .await
        .expect("responses")
        .len()
}

async fn responses_are_scored_and_bad_input_stores_nothing(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "measures_submit").await else {
        return;
    };
    let token = app.api_token("patient").await;
    let patient = patient_of(&app, "patient").await;
    let path = format!("/api/v1/patients/{patient}/responses");
    let before = stored_count(&app, patient).await;

    // Published PHQ-9 scoring: the sum of items 1–9, 10–14 is "moderate" (Kroenke, Spitzer and
    // Williams 2001). Item 9 is 0, so no alert.
    let (status, body) = post_json(
        &app,
        &token,
        &path,
        &json!({"instrument": "phq-9", "client_id": "form-1", "answers": phq9([3, 3, 2, 2, 1, 1, 0, 0, 0])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["scores"][0]["reported"], json!(12.0));
    assert_eq!(body["scores"][0]["band"], json!("moderate"));
    assert_eq!(body["instrument_version"], json!(1));
    assert_eq!(body["alert_id"], Value::Null);

    // The same form again: stored once, the same result returned.
    let (status, again) = post_json(
        &app,
        &token,
        &path,
        &json!({"instrument": "phq-9", "client_id": "form-1", "answers": phq9([3, 3, 2, 2, 1, 1, 0, 0, 0])}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], body["id"]);
    assert_eq!(again["duplicate"], json!(true));
    assert_eq!(again["scores"][0]["reported"], json!(12.0));
    assert_eq!(stored_count(&app, patient).await, before + 1);

    // The same client id with different answers is a client error, not a silent duplicate.
    let (status, problem) = post_json(
        &app,
        &token,
        &path,
        &json!({"instrument": "phq-9", "client_id": "form-1", "answers": phq9([0; 9])}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("client_id"),
        "{problem}"
    );

    // Each bad submission is rejected with the item named, and nothing is stored.
    let mut unknown = phq9([0; 9]);
    unknown["10"] = json!(1);
    let mut out_of_range = phq9([0; 9]);
    out_of_range["4"] = json!(4);
    let mut missing = phq9([0; 9]);
    missing.as_object_mut().expect("object").remove("3");
    let cases = [
        (
            json!({"instrument": "phq-9", "client_id": "bad-1", "answers": unknown}),
            "'10'",
        ),
        (
            json!({"instrument": "phq-9", "client_id": "bad-2", "answers": out_of_range}),
            "'4' has the value 4",
        ),
        (
            json!({"instrument": "phq-9", "client_id": "bad-3", "answers": missing}),
            "'3' is required",
        ),
        (
            json!({"instrument": "pss-10", "client_id": "bad-4", "answers": {}}),
            "licence",
        ),
        (
            json!({"instrument": "phq-99", "client_id": "bad-5", "answers": {}}),
            "not an instrument",
        ),
        (
            json!({"instrument": "phq-9", "client_id": "", "answers": phq9([0; 9])}),
            "client_id",
        ),
        (
            json!({"instrument": "phq-9", "client_id": "bad-6", "occasion": "week-99", "answers": phq9([0; 9])}),
            "occasion",
        ),
    ];
    for (request, expected) in cases {
        let (status, problem) = post_json(&app, &token, &path, &request).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}: {problem}"
        );
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(expected), "{expected}: {problem}");
    }
    assert_eq!(stored_count(&app, patient).await, before + 1);

    // A patient cannot submit a form for another patient.
    let other = app
        .demo
        .as_ref()
        .expect("demo")
        .patients
        .iter()
        .find(|candidate| candidate.id != patient)
        .expect("another patient")
        .id;
    let other_before = stored_count(&app, other).await;
    let (status, _) = post_json(
        &app,
        &token,
        &format!("/api/v1/patients/{other}/responses"),
        &json!({"instrument": "phq-9", "client_id": "other-1", "answers": phq9([0; 9])}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(stored_count(&app, other).await, other_before);

    // A clinician in the care team reads the responses; a caregiver cannot.
    let clinician = app.api_token("clinician").await;
    let (status, list) = get_json(&app, &clinician, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(before + 1));
    let caregiver = app.api_token("caregiver").await;
    let (status, _) = get_json(&app, &caregiver, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn item_nine_raises_an_alert_with_the_response(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "measures_alert").await else {
        return;
    };
    let token = app.api_token("patient").await;
    let patient = patient_of(&app, "patient").await;
    let path = format!("/api/v1/patients/{patient}/responses");

    // Any answer above 0 on PHQ-9 item 9 (LOINC 44260-8) raises a high-level alert.
    let (status, body) = post_json(
        &app,
        &token,
        &path,
        &json!({"instrument": "phq-9", "client_id": "item9", "answers": phq9([1, 1, 1, 0, 0, 0, 0, 0, 1])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["alert_level"], json!("high"));
    let alert_id = body["alert_id"].as_str().expect("an alert").to_owned();

    // The alert, its "raised" event and both audit events are stored.
    let alert = app
        .database
        .database
        .get_alert(alert_id.parse().expect("uuid"))
        .await
        .expect("the alert is stored");
    assert_eq!(alert.rules, vec!["phq9_item9".to_owned()]);
    assert_eq!(alert.events.len(), 1);
    assert_eq!(
        alert.deadline,
        "2026-12-04T15:15:00Z"
            .parse::<jiff::Timestamp>()
            .expect("instant")
    );
    let audit = app
        .database
        .database
        .search_audit_events(
            &AuditFilter {
                patient: Some(patient),
                ..AuditFilter::default()
            },
            100,
        )
        .await
        .expect("audit");
    let about = |kind: &str, id: &str| {
        audit
            .iter()
            .any(|event: &stillpoint_domain::audit::AuditEvent| {
                let NewAuditEvent {
                    resource_type,
                    resource_id,
                    ..
                } = &event.event;
                resource_type == kind && resource_id.as_deref() == Some(id)
            })
    };
    assert!(about("safety_alert", &alert_id));
    assert!(about("measure_response", body["id"].as_str().expect("id")));

    // A repeat of the same submission returns the same alert and raises no second one.
    let (status, again) = post_json(
        &app,
        &token,
        &path,
        &json!({"instrument": "phq-9", "client_id": "item9", "answers": phq9([1, 1, 1, 0, 0, 0, 0, 0, 1])}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["alert_id"], json!(alert_id));
    assert_eq!(again["alert_level"], json!("high"));

    // The clinician sees it in the inbox; a facilitator may not.
    let clinician = app.api_token("clinician").await;
    let (status, alerts) = get_json(&app, &clinician, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK);
    let open: Vec<&Value> = alerts
        .as_array()
        .expect("list")
        .iter()
        .filter(|alert| alert["id"] == json!(alert_id))
        .collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["state"], json!("raised"));
    let facilitator = app.api_token("facilitator").await;
    let (status, _) = get_json(&app, &facilitator, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A facilitator reads the patient's responses but not which ones raised an alert.
    let (status, list) = get_json(&app, &facilitator, &path).await;
    assert_eq!(status, StatusCode::OK);
    let item9 = list
        .as_array()
        .expect("list")
        .iter()
        .find(|response| response["client_id"] == json!("item9"))
        .expect("the response");
    assert_eq!(item9["alert_id"], Value::Null);

    // The program administrator sees it only once it escalates to them.
    let program_admin = app.api_token("program.admin").await;
    let (status, alerts) = get_json(&app, &program_admin, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !alerts
            .as_array()
            .expect("list")
            .iter()
            .any(|alert| alert["id"] == json!(alert_id)),
        "{alerts}"
    );

    // The lifecycle runs in order, and each step names what is missing.
    let steps = format!("/api/v1/alerts/{alert_id}/steps");
    let (status, problem) = post_json(&app, &clinician, &steps, &json!({"step": "resolve"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, acknowledged) =
        post_json(&app, &clinician, &steps, &json!({"step": "acknowledge"})).await;
    assert_eq!(status, StatusCode::OK, "{acknowledged}");
    assert_eq!(acknowledged["state"], json!("acknowledged"));
    let (status, problem) = post_json(&app, &clinician, &steps, &json!({"step": "action"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("outcome"),
        "{problem}"
    );
    let (status, problem) = post_json(
        &app,
        &clinician,
        &steps,
        &json!({"step": "action", "outcome": "other", "note": "  "}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("note"),
        "{problem}"
    );
    let (status, actioned) = post_json(
        &app,
        &clinician,
        &steps,
        &json!({"step": "action", "outcome": "patient_contacted", "note": "Called; safety plan reviewed."}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{actioned}");
    assert_eq!(actioned["outcome"], json!("patient_contacted"));
    let (status, resolved) = post_json(
        &app,
        &clinician,
        &steps,
        &json!({"step": "resolve", "note": "Follow-up booked."}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resolved["state"], json!("resolved"));
    let history: Vec<&str> = resolved["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event["step"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(history, ["raised", "acknowledged", "actioned", "resolved"]);
}

async fn unacknowledged_alerts_escalate(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "measures_escalation").await else {
        return;
    };
    let token = app.api_token("patient").await;
    let patient_id = patient_of(&app, "patient").await;
    let store = &app.database.database;
    let patient = store.get_patient(patient_id).await.expect("patient");

    // The site names a backup clinician.
    let backup = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.has_role(stillpoint_domain::Role::Clinician))
        .expect("a clinician")
        .id;
    let settings = SafetySettings {
        backup_clinician: Some(backup),
        ..SafetySettings::default()
    };
    let audit = NewAuditEvent {
        recorded_at: jiff::Timestamp::now(),
        actor: None,
        actor_role: None,
        patient: None,
        resource_type: "site_safety_settings".to_owned(),
        resource_id: None,
        action: stillpoint_domain::audit::AuditAction::Update,
        outcome: stillpoint_domain::audit::AuditOutcome::Success,
        source_address: None,
        break_glass: false,
    };
    store
        .set_safety_settings(patient.site_id, &settings, &audit)
        .await
        .expect("settings stored");

    let (status, body) = post_json(
        &app,
        &token,
        &format!("/api/v1/patients/{patient_id}/responses"),
        &json!({"instrument": "phq-9", "client_id": "late", "answers": phq9([2, 2, 2, 2, 2, 2, 2, 2, 2])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let alert_id = body["alert_id"]
        .as_str()
        .expect("alert")
        .parse()
        .expect("uuid");

    // The sweep also moves the demo clinic's own open alerts, so each step is checked on this
    // alert's stored escalation level rather than on the sweep's count.
    let escalate = || stillpoint_app::safety::escalate_overdue(store, app.clock.as_ref());
    let level = || async {
        store
            .get_alert(alert_id)
            .await
            .expect("alert")
            .escalation
            .code()
    };

    // Before the deadline nothing moves.
    app.clock.advance(SignedDuration::from_mins(14));
    escalate().await.expect("sweep");
    assert_eq!(level().await, "care_team");

    // After 15 minutes it goes to the backup clinician, then 15 minutes later to the program
    // administrators, and no further.
    app.clock.advance(SignedDuration::from_mins(2));
    assert!(escalate().await.expect("sweep") >= 1);
    assert_eq!(level().await, "backup_clinician");

    // The escalation queued a message: the worker turns it into one in-app notification for
    // the backup clinician, and running the job again adds nothing.
    let notifier = app.notifier(None, None);
    let worker = app.worker(&notifier);
    app.run_due_jobs(&worker).await;
    let unread = store
        .count_unread_notifications(backup)
        .await
        .expect("count");
    assert!(unread >= 1, "{unread}");
    let own_key = format!("alert_escalated:{alert_id}:backup_clinician");
    let job = store
        .list_jobs(stillpoint_domain::jobs::JobState::Done, 100)
        .await
        .expect("jobs")
        .into_iter()
        .find(|job| job.idempotency_key == own_key)
        .expect("the escalation job ran");
    assert_eq!(job.attempts, 1);
    let alert = store.get_alert(alert_id).await.expect("alert");
    assert_eq!(
        alert.deadline,
        app.clock
            .now()
            .checked_add(SignedDuration::from_mins(15))
            .expect("instant")
    );
    app.clock.advance(SignedDuration::from_mins(16));
    escalate().await.expect("sweep");
    assert_eq!(level().await, "program_administrators");
    app.run_due_jobs(&worker).await;
    let admin = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "program.admin@demo-clinic.example")
        .expect("program administrator")
        .id;
    let notes = store
        .notifications_of(admin, 10)
        .await
        .expect("notifications");
    assert!(
        notes
            .iter()
            .any(|note| note.message_key == "notification-alert-escalated"),
        "{notes:?}"
    );
    // The page shows them and marks them read.
    let program_admin = app.browser_session("program.admin").await;
    let page = program_admin
        .get(app.url("/notifications"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(page.contains("was not acknowledged in time"), "{page}");
    assert_eq!(
        store
            .count_unread_notifications(admin)
            .await
            .expect("count"),
        0
    );
    app.clock.advance(SignedDuration::from_mins(16));
    escalate().await.expect("sweep");
    let alert = store.get_alert(alert_id).await.expect("alert");
    assert_eq!(alert.escalation.code(), "program_administrators");
    let steps: Vec<&str> = alert
        .events
        .iter()
        .map(|event| event.step.as_str())
        .collect();
    assert_eq!(steps, ["raised", "escalated", "escalated"]);

    // An acknowledged alert is never escalated.
    let clinician = app.api_token("clinician").await;
    let (status, _) = post_json(
        &app,
        &clinician,
        &format!("/api/v1/alerts/{alert_id}/steps"),
        &json!({"step": "acknowledge"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(SignedDuration::from_hours(2));
    escalate().await.expect("sweep");
    let alert = store.get_alert(alert_id).await.expect("alert");
    assert_eq!(alert.state.code(), "acknowledged");
    assert_eq!(alert.events.len(), 4);
}

async fn patient_pages_show_crisis_resources_at_once(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "measures_pages").await else {
        return;
    };
    let patient = app.browser_session("patient").await;
    let get = |path: &'static str| {
        let request = patient.get(app.url(path));
        async move {
            let response = request.send().await.expect("request");
            (response.status(), response.text().await.expect("body"))
        }
    };

    let (status, page) = get("/measures/phq-9").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("name=\"item_9\""), "{page}");
    // The demo patient, Lucía, reads the pages in Spanish.
    assert!(
        page.contains("Necesito ayuda ahora"),
        "the help button is on every patient page"
    );
    let client_id = stillpoint_test_support::hidden_field(&page, "client_id").expect("client id");

    // A form missing item 3 comes back with the item named and the other answers kept.
    let mut fields: Vec<(String, String)> = vec![("client_id".into(), client_id.clone())];
    for item in [1, 2, 4, 5, 6, 7, 8, 9] {
        fields.push((
            format!("item_{item}"),
            if item == 9 { "1" } else { "0" }.into(),
        ));
    }
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = app.post_form(&patient, "/measures/phq-9", &borrowed).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.expect("body");
    assert!(
        page.contains("La pregunta 3 todavía no tiene respuesta"),
        "{page}"
    );
    // Item 9 is above 0, so the crisis resources show beside the problem and the care team is
    // told, once, though nothing of the form is stored.
    assert!(page.contains("mensaje de texto al 988"), "{page}");
    let patient_id = patient_of(&app, "patient").await;
    let open_alerts = || async {
        app.database
            .database
            .list_alerts(&stillpoint_app::ports::AlertFilter {
                sites: None,
                patient: Some(patient_id),
                open_only: true,
            })
            .await
            .expect("alerts")
    };
    let unsaved = || async {
        open_alerts()
            .await
            .iter()
            .filter(|alert| alert.source == "unsaved_form")
            .count()
    };
    assert_eq!(unsaved().await, 1);
    let response = app.post_form(&patient, "/measures/phq-9", &borrowed).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        unsaved().await,
        1,
        "a repeated incomplete form raises no second alert"
    );
    assert!(
        page.contains("id=\"item-9-1\" name=\"item_9\" value=\"1\" required checked"),
        "{page}"
    );

    // Complete with item 9 above 0: the crisis resources show on the very next page.
    fields.push(("item_3".into(), "0".into()));
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = app.post_form(&patient, "/measures/phq-9", &borrowed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("body");
    assert!(page.contains("role=\"alert\""), "{page}");
    assert!(page.contains("mensaje de texto al 988"), "{page}");
    assert!(
        page.contains("Nadie revisa sus respuestas las 24 horas"),
        "{page}"
    );

    // "I need help now" shows the resources before anything is sent, then raises an alert.
    let (status, page) = get("/help").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("mensaje de texto al 988"));
    let response = app.post_form(&patient, "/help", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, page) = get("/help?sent=1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Se pidió a su equipo de atención"), "{page}");
    assert!(page.contains("href=\"tel:988\""), "{page}");
    // Pressing again within 15 minutes joins the open request.
    let open_before = open_alerts().await.len();
    let response = app.post_form(&patient, "/help", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(open_alerts().await.len(), open_before);

    // Progress has a chart and the same data as a table.
    let (status, page) = get("/progress").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    assert!(page.contains("<caption>"), "{page}");

    // The clinician's navigation counts both open alerts, and the inbox takes the first step.
    let clinician = app.browser_session("clinician").await;
    let response = clinician
        .get(app.url("/alerts"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("body");
    // The demo clinician reads Spanish too. The count covers the two new alerts and the
    // demo's own open ones.
    let token = app.api_token("clinician").await;
    let (_, alerts) = get_json(&app, &token, "/api/v1/alerts").await;
    let open = alerts
        .as_array()
        .expect("list")
        .iter()
        .filter(|alert| alert["state"] == json!("raised"))
        .count();
    assert!(open >= 2, "{alerts}");
    assert!(page.contains(&format!("Alertas ({open})")), "{page}");
    assert!(page.contains("El paciente pulsó"), "{page}");
    let action = page
        .split("action=\"/alerts/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a step form");
    let response = app
        .post_form(
            &clinician,
            &format!("/alerts/{action}"),
            &[("step", "acknowledge")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = clinician
        .get(app.url("/alerts"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(page.contains("Registrar la acción"), "{page}");

    // The outcomes page gives the PHQ-9's reliable change, its SD taken from the demo clinic's
    // baselines because no published norms are stored.
    let outcomes = clinician
        .get(app.url(&format!("/patients/{patient_id}/measures")))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(outcomes.contains("RCI"), "{outcomes}");
    assert!(
        outcomes.contains("puntuaciones iniciales de esta clínica"),
        "{outcomes}"
    );
}

async fn licence_and_site_settings_take_effect(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "measures_admin").await else {
        return;
    };
    let patient_token = app.api_token("patient").await;
    let patient_id = patient_of(&app, "patient").await;
    let responses = format!("/api/v1/patients/{patient_id}/responses");
    let patient = app.browser_session("patient").await;
    let page_status = |client: &reqwest::Client, path: String| {
        let request = client.get(app.url(&path));
        async move { request.send().await.expect("request").status() }
    };

    // The PSS-10 needs the owner's permission: off until a licence is recorded.
    assert_eq!(
        page_status(&patient, "/measures/pss-10".into()).await,
        StatusCode::NOT_FOUND
    );
    let program_admin = app.browser_session("program.admin").await;
    let library = program_admin
        .get(app.url("/instruments"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(library.contains("off until the organisation"), "{library}");
    let lines: Vec<String> = (1..=10)
        .map(|n| format!("Clinic-supplied item {n}"))
        .collect();
    let ten = lines.join("\n");
    let fields = [
        ("holder", "Riverbend Health"),
        ("reference", "ASA-2026-001"),
        ("item_text_en", ten.as_str()),
    ];
    let response = app
        .post_form(&program_admin, "/instruments/pss-10/licence", &fields)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "only a system administrator"
    );

    let admin = app.browser_session("admin").await;
    let nine = lines[..9].join("\n");
    let response = app
        .post_form(
            &admin,
            "/instruments/pss-10/licence",
            &[
                ("holder", "Riverbend Health"),
                ("reference", "ASA-2026-001"),
                ("item_text_en", nine.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("give one line for each of the 10 items")
    );
    let response = app
        .post_form(&admin, "/instruments/pss-10/licence", &fields)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Now the patient sees the clinic's item text and the response scores: items 4, 5, 7 and 8
    // are reverse-keyed (Cohen's PSS-10), so all answers at 4 give 6 × 4 + 4 × 0 = 24.
    let form = patient
        .get(app.url("/measures/pss-10"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(form.contains("Clinic-supplied item 10"), "{form}");
    let ids: Vec<String> = app
        .state
        .measures
        .instrument("pss-10")
        .expect("pss-10")
        .items
        .iter()
        .map(|item| item.id.clone())
        .collect();
    let answers: serde_json::Map<String, Value> =
        ids.iter().map(|id| (id.clone(), json!(4))).collect();
    let (status, body) = post_json(
        &app,
        &patient_token,
        &responses,
        &json!({"instrument": "pss-10", "client_id": "pss-1", "answers": answers}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["scores"][0]["reported"], json!(24.0));

    // A site's settings: a bad threshold line is named, a good one raises alerts on high totals,
    // and the site's own crisis text replaces the default.
    let site = app
        .database
        .database
        .get_patient(patient_id)
        .await
        .expect("patient")
        .site_id;
    let settings_path = format!("/sites/{site}/safety");
    let mut settings = vec![
        ("staffed_day", "mon"),
        ("staffed_day", "tue"),
        ("staffed_day", "wed"),
        ("staffed_day", "thu"),
        ("staffed_day", "fri"),
        ("staffed_opens", "08:00"),
        ("staffed_closes", "18:00"),
        ("deadline_minutes", "15"),
        ("backup_clinician", ""),
        (
            "crisis_text_es",
            "Llame a la línea de crisis de la clínica: 555-0100, o al 988.",
        ),
        ("thresholds", "phq-9 total 99 high"),
    ];
    let response = app
        .post_form(&program_admin, &settings_path, &settings)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.expect("body").contains("line 1"));
    settings.pop();
    settings.push(("thresholds", "phq-9 total 20 moderate"));
    let response = app
        .post_form(&program_admin, &settings_path, &settings)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let facilitator = app.browser_session("facilitator").await;
    assert_eq!(
        page_status(&facilitator, settings_path.clone()).await,
        StatusCode::FORBIDDEN
    );

    let (status, body) = post_json(
        &app,
        &patient_token,
        &responses,
        &json!({"instrument": "phq-9", "client_id": "high-total", "answers": phq9([3, 3, 3, 3, 3, 3, 2, 1, 0])}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["scores"][0]["reported"], json!(21.0));
    assert_eq!(body["alert_level"], json!("moderate"));
    let help = patient
        .get(app.url("/help"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(help.contains("555-0100"), "{help}");
    // The site's text names 988 but not 911, so only the 988 buttons show.
    assert!(help.contains("href=\"tel:988\""), "{help}");
    assert!(!help.contains("href=\"tel:911\""), "{help}");
}

async fn dead_letter_job_is_retried(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "jobs_dead_letter_page").await else {
        return;
    };
    let store = &app.database.database;
    let now = app.clock.now();
    let stillpoint_app::ports::Enqueued::Queued(id) = store
        .enqueue(
            &stillpoint_app::ports::NewJob {
                kind: "unknown_kind".to_owned(),
                payload: "{}".to_owned(),
                idempotency_key: "dead-letter-test".to_owned(),
                due_at: now,
            },
            now,
        )
        .await
        .expect("queued")
    else {
        panic!("a new key is queued");
    };
    let worker = stillpoint_app::jobs::Worker::new(
        "test-worker",
        stillpoint_domain::jobs::RetryPolicy::default(),
        SignedDuration::from_mins(5),
    );
    let outcome = worker
        .step(store, app.clock.as_ref(), 0.0)
        .await
        .expect("step");
    assert!(
        matches!(
            outcome,
            Some(stillpoint_app::jobs::StepOutcome::Failed { .. })
        ),
        "{outcome:?}"
    );

    // Only a system administrator sees the log and retries.
    let program_admin = app.browser_session("program.admin").await;
    let status = program_admin
        .get(app.url("/jobs"))
        .send()
        .await
        .expect("request")
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = app.browser_session("admin").await;
    let page = admin
        .get(app.url("/jobs"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(page.contains("no handler for jobs of kind"), "{page}");
    assert!(page.contains(&format!("/jobs/{id}/retry")), "{page}");
    let response = app
        .post_form(&admin, &format!("/jobs/{id}/retry"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let job = store.get_job(id).await.expect("job");
    assert_eq!(job.state, stillpoint_domain::jobs::JobState::Queued);
    assert_eq!(job.attempts, 0);
    let response = app
        .post_form(&admin, &format!("/jobs/{id}/retry"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

stillpoint_test_support::on_both_databases!(
    responses_are_scored_and_bad_input_stores_nothing,
    item_nine_raises_an_alert_with_the_response,
    unacknowledged_alerts_escalate,
    patient_pages_show_crisis_resources_at_once,
    licence_and_site_settings_take_effect,
    dead_letter_job_is_retried,
);
