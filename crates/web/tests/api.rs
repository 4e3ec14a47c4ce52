//! The JSON API, health probes and middleware, over real HTTP against both databases.

use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stillpoint_app::demo::DEMO_PASSWORD;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};

async fn demo_app(dialect: Dialect, test: &str) -> Option<TestApp> {
    spawn_app(dialect, Seed::DemoClinic, test).await
}

/// Signs in through the API and returns the bearer token.
async fn sign_in(app: &TestApp, local: &str) -> String {
    app.api_token(local).await
}

async fn get_json(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.client().get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn probes_report_ready(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "probes_report_ready").await else {
        return;
    };
    assert_eq!(
        get_json(&app, "/healthz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        get_json(&app, "/readyz", None).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );

    app.database.database.close().await;
    let (status, body) = get_json(&app, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "not_ready");
    assert_eq!(get_json(&app, "/healthz", None).await.0, StatusCode::OK);
}

async fn sign_in_sets_a_safe_cookie(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "sign_in_sets_a_safe_cookie").await else {
        return;
    };
    let email = "clinician@demo-clinic.example";
    let code = app.next_one_time_code(email).expect("staff code");
    let response = app
        .client()
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": DEMO_PASSWORD, "one_time_code": code}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("stillpoint_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP must not set Secure: {cookie}"
    );

    let body: Value = response.json().await.expect("json");
    assert_eq!(body["account"]["email"], "clinician@demo-clinic.example");
    assert_eq!(body["account"]["roles"][0]["role"], "clinician");
    let token = body["token"].as_str().expect("token");
    let (status, me) = get_json(&app, "/api/v1/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["display_name"], "Dr. Elena Vargas");
}

async fn wrong_password_is_problem_document(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "wrong_password_is_problem_document").await else {
        return;
    };
    for (email, password) in [
        ("clinician@demo-clinic.example", "not-the-password"),
        ("nobody@demo-clinic.example", DEMO_PASSWORD),
    ] {
        let response = app
            .client()
            .post(app.url("/api/v1/sessions"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["code"], "invalid_credentials");
        assert_eq!(problem["status"], 401);
        assert_eq!(problem["type"], "about:blank");
    }
}

async fn malformed_bodies_name_the_problem(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "malformed_bodies_name_the_problem").await else {
        return;
    };
    let client = app.client();
    let url = app.url("/api/v1/sessions");

    let missing_field = client
        .post(&url)
        .json(&json!({"email": "a@b.example"}))
        .send()
        .await
        .expect("request");
    assert_eq!(missing_field.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = missing_field.json().await.expect("json");
    assert_eq!(problem["field"], "body");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("password"),
        "{problem}"
    );

    let not_json = client
        .post(&url)
        .body("email=a")
        .send()
        .await
        .expect("request");
    assert_eq!(not_json.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = not_json.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("application/json"),
        "{problem}"
    );

    let bad_email = client
        .post(&url)
        .json(&json!({"email": "not an address", "password": "x"}))
        .send()
        .await
        .expect("request");
    assert_eq!(bad_email.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = bad_email.json().await.expect("json");
    assert_eq!(problem["field"], "email");
}

async fn patient_account_names_care_site(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "patient_account_names_care_site").await else {
        return;
    };
    let north = app.demo.as_ref().expect("demo").sites[0].id.to_string();

    let patient = sign_in(&app, "patient").await;
    let (_, me) = get_json(&app, "/api/v1/me", Some(&patient)).await;
    assert_eq!(me["care_site_id"], north);

    let clinician = sign_in(&app, "clinician").await;
    let (_, me) = get_json(&app, "/api/v1/me", Some(&clinician)).await;
    assert!(me.get("care_site_id").is_none(), "{me}");
}

async fn sign_ins_and_patient_reads_are_audited(dialect: Dialect) {
    use stillpoint_app::ports::AuditStore as _;
    use stillpoint_domain::audit::{AuditAction, AuditOutcome};

    let Some(app) = demo_app(dialect, "sign_ins_and_patient_reads_are_audited").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let patient_account = demo
        .accounts
        .iter()
        .find(|a| a.email.as_str() == "patient@demo-clinic.example")
        .expect("patient");
    let patient_record = demo
        .patients
        .iter()
        .find(|p| p.account_id == Some(patient_account.id))
        .expect("record");

    let failed = app
        .client()
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"email": "patient@demo-clinic.example", "password": "not-the-password"}))
        .send()
        .await
        .expect("request");
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let token = sign_in(&app, "patient").await;
    get_json(&app, "/api/v1/me", Some(&token)).await;

    let events = app
        .database
        .database
        .list_audit_events(0, 100)
        .await
        .expect("events");
    let summary: Vec<(AuditAction, AuditOutcome, Option<String>)> = events
        .iter()
        .map(|e| {
            (
                e.event.action,
                e.event.outcome,
                e.event.patient.map(|p| p.to_string()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (AuditAction::SignIn, AuditOutcome::Denied, None),
            (AuditAction::SignIn, AuditOutcome::Success, None),
            (
                AuditAction::Read,
                AuditOutcome::Success,
                Some(patient_record.id.to_string())
            ),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.actor == Some(patient_account.id))
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.source_address.as_deref() == Some("127.0.0.1"))
    );
}

async fn repeated_failures_are_throttled(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "repeated_failures_are_throttled").await else {
        return;
    };
    let attempt = |password: &'static str| {
        app.client()
            .post(app.url("/api/v1/sessions"))
            .json(&json!({"email": "patient@demo-clinic.example", "password": password}))
            .send()
    };

    for _ in 0..5 {
        assert_eq!(
            attempt("wrong-password").await.expect("request").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = attempt(DEMO_PASSWORD).await.expect("request");
    assert_eq!(
        throttled.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry_after: i64 = throttled.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let problem: Value = throttled.json().await.expect("json");
    assert_eq!(problem["code"], "too_many_attempts");

    let other_account = app
        .client()
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"email": "caregiver@demo-clinic.example", "password": DEMO_PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(
        other_account.status(),
        StatusCode::CREATED,
        "other accounts are not locked"
    );

    app.clock.advance(SignedDuration::from_mins(15));
    assert_eq!(
        attempt(DEMO_PASSWORD).await.expect("request").status(),
        StatusCode::CREATED
    );

    // Three failures, a success, then four more: only the four count, because the success
    // cleared the three; without that the seven would lock the account.
    for _ in 0..3 {
        assert_eq!(
            attempt("wrong-password").await.expect("request").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(DEMO_PASSWORD).await.expect("request").status(),
        StatusCode::CREATED
    );
    for _ in 0..4 {
        assert_eq!(
            attempt("wrong-password").await.expect("request").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(DEMO_PASSWORD).await.expect("request").status(),
        StatusCode::CREATED,
        "a successful sign-in resets the count"
    );
}

async fn parallel_attempts_are_throttled_together(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "parallel_attempts_are_throttled_together").await else {
        return;
    };
    let attempts = (0..10).map(|_| {
        app.client()
            .post(app.url("/api/v1/sessions"))
            .json(&json!({"email": "clinician@demo-clinic.example", "password": "wrong-password"}))
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|response| response.expect("request").status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        checked <= 5,
        "at most five passwords were checked: {statuses:?}"
    );
    assert_eq!(checked + throttled, 10, "{statuses:?}");
}

async fn many_addresses_from_one_client_are_throttled(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "many_addresses_from_one_client_are_throttled").await else {
        return;
    };
    for n in 0..20 {
        let response = app
            .client()
            .post(app.url("/api/v1/sessions"))
            .json(
                &json!({"email": format!("guess{n}@demo-clinic.example"), "password": "password1"}),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let response = app
        .client()
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"email": "admin@demo-clinic.example", "password": DEMO_PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn audit_search_follows_administrator_scope(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "audit_search_follows_administrator_scope").await else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo");
    let patient_account = demo
        .accounts
        .iter()
        .find(|a| a.email.as_str() == "patient@demo-clinic.example")
        .expect("patient");
    let patient_record = demo
        .patients
        .iter()
        .find(|p| p.account_id == Some(patient_account.id))
        .expect("record");

    let patient = sign_in(&app, "patient").await;
    get_json(&app, "/api/v1/me", Some(&patient)).await;

    let admin = sign_in(&app, "admin").await;
    let path = format!("/api/v1/audit-events?patient_id={}", patient_record.id);
    let (status, events) = get_json(&app, &path, Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["read"], "the patient's own read of their record");
    assert_eq!(events[0]["patient_id"], patient_record.id.to_string());

    let (status, sign_ins) =
        get_json(&app, "/api/v1/audit-events?action=sign_in", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sign_ins.as_array().expect("list").len(), 2, "{sign_ins}");

    // The program administrator runs both sites, so sees the same patient; a site outside their
    // assignment would hide it.
    let program_admin = sign_in(&app, "program.admin").await;
    let (status, scoped) = get_json(&app, &path, Some(&program_admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        scoped
            .as_array()
            .expect("list")
            .iter()
            .all(|e| e["patient_id"] == patient_record.id.to_string())
    );
    let (_, unscoped) = get_json(
        &app,
        "/api/v1/audit-events?action=sign_in",
        Some(&program_admin),
    )
    .await;
    assert_eq!(
        unscoped.as_array().expect("list").len(),
        0,
        "sign-ins concern no patient of their sites"
    );

    let clinician = sign_in(&app, "clinician").await;
    assert_eq!(
        get_json(&app, "/api/v1/audit-events", Some(&clinician))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, problem) =
        get_json(&app, "/api/v1/audit-events?from=yesterday", Some(&admin)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "from");

    let (status, report) = get_json(&app, "/api/v1/me/record-access", Some(&patient)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = report
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Sam Okafor"),
        "the administrator's search of this patient shows: {report}"
    );
    assert!(names.contains(&"Dana Whitfield"), "{report}");
    assert_eq!(
        get_json(&app, "/api/v1/me/record-access", Some(&clinician))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

async fn sites_follow_administrator_scope(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "sites_follow_administrator_scope").await else {
        return;
    };

    let admin = sign_in(&app, "admin").await;
    let (status, sites) = get_json(&app, "/api/v1/sites", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<&str> = sites
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["NORTH", "SOUTH"]);
    let total: i64 = sites
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["patient_count"].as_i64().expect("count"))
        .sum();
    assert_eq!(total, 48);

    let site_id = sites[0]["id"].as_str().expect("id").to_owned();
    let (status, site) = get_json(&app, &format!("/api/v1/sites/{site_id}"), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site["code"], "NORTH");

    for local in ["clinician", "facilitator", "patient", "caregiver"] {
        let token = sign_in(&app, local).await;
        assert_eq!(
            get_json(&app, "/api/v1/sites", Some(&token)).await.0,
            StatusCode::FORBIDDEN,
            "{local}"
        );
        assert_eq!(
            get_json(&app, &format!("/api/v1/sites/{site_id}"), Some(&token))
                .await
                .0,
            StatusCode::FORBIDDEN,
            "{local}"
        );
    }
    assert_eq!(
        get_json(&app, "/api/v1/sites", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, problem) = get_json(&app, "/api/v1/sites/not-a-uuid", Some(&admin)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "site_id");
    let unknown = "0191e0a0-0000-7000-8000-000000000000";
    assert_eq!(
        get_json(&app, &format!("/api/v1/sites/{unknown}"), Some(&admin))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

async fn idle_staff_session_expires(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "idle_staff_session_expires").await else {
        return;
    };
    let staff = sign_in(&app, "clinician").await;
    let patient = sign_in(&app, "patient").await;

    app.clock.advance(SignedDuration::from_mins(14));
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&staff)).await.0,
        StatusCode::OK
    );
    app.clock.advance(SignedDuration::from_mins(14));
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&staff)).await.0,
        StatusCode::OK,
        "activity extends the session"
    );
    app.clock.advance(SignedDuration::from_mins(16));
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&staff)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&patient)).await.0,
        StatusCode::OK,
        "patients idle for 60 minutes"
    );
}

async fn sign_out_ends_the_session(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "sign_out_ends_the_session").await else {
        return;
    };
    let token = sign_in(&app, "facilitator").await;
    let response = app
        .client()
        .delete(app.url("/api/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn sign_out_everywhere_ends_every_session(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "sign_out_everywhere_ends_every_session").await else {
        return;
    };
    let phone = sign_in(&app, "facilitator").await;
    let laptop = sign_in(&app, "facilitator").await;
    let other_person = sign_in(&app, "clinician").await;

    let response = app
        .client()
        .delete(app.url("/api/v1/sessions"))
        .bearer_auth(&phone)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&phone)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&laptop)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&other_person)).await.0,
        StatusCode::OK
    );
}

async fn language_preference_is_stored(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "language_preference_is_stored").await else {
        return;
    };
    let token = sign_in(&app, "facilitator").await;
    let put = |language: &'static str| {
        app.client()
            .put(app.url("/api/v1/me/language"))
            .bearer_auth(&token)
            .json(&json!({"language": language}))
            .send()
    };

    let response = put("es").await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&token)).await.1["language"],
        "es"
    );
    assert_eq!(
        get_json(&app, "/api/v1/locales", Some(&token)).await.1["current"],
        "es"
    );

    for rejected in ["fr", "english"] {
        let response = put(rejected).await.expect("request");
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rejected}"
        );
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["field"], "language", "{rejected}");
    }
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(&token)).await.1["language"],
        "es"
    );
}

stillpoint_test_support::on_both_databases!(
    probes_report_ready,
    sign_in_sets_a_safe_cookie,
    wrong_password_is_problem_document,
    malformed_bodies_name_the_problem,
    patient_account_names_care_site,
    sign_ins_and_patient_reads_are_audited,
    repeated_failures_are_throttled,
    parallel_attempts_are_throttled_together,
    many_addresses_from_one_client_are_throttled,
    audit_search_follows_administrator_scope,
    sites_follow_administrator_scope,
    idle_staff_session_expires,
    sign_out_ends_the_session,
    sign_out_everywhere_ends_every_session,
    language_preference_is_stored,
    staff_sign_in_needs_one_time_code,
    wrong_codes_are_throttled,
);

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "headers")
        .await
        .expect("sqlite");
    for path in [
        "/",
        "/sign-in",
        "/healthz",
        "/api/v1/locales",
        "/no-such-page",
    ] {
        let response = app
            .client()
            .get(app.url(path))
            .send()
            .await
            .expect("request");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert!(
            headers.get("strict-transport-security").is_none(),
            "{path}: no HSTS without TLS"
        );
        assert!(headers.get("x-request-id").is_some(), "{path}");
    }
}

#[tokio::test]
async fn request_id_from_client_is_echoed() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "request_id")
        .await
        .expect("sqlite");
    let response = app
        .client()
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-1234")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "trace-1234");

    let response = app
        .client()
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>".repeat(20))
        .send()
        .await
        .expect("request");
    let replaced = response.headers()["x-request-id"].to_str().expect("ascii");
    assert!(
        !replaced.contains("script"),
        "an invalid client id is replaced: {replaced}"
    );
}

#[tokio::test]
async fn cross_site_form_posts_are_rejected() {
    let app = spawn_app(Dialect::Sqlite, Seed::DemoClinic, "cross_site")
        .await
        .expect("sqlite");
    let client = app.client();
    let token = app.form_token(&client).await;
    let form = [
        ("email", "admin@demo-clinic.example"),
        ("password", DEMO_PASSWORD),
        ("csrf_token", &token),
    ];

    let from_elsewhere = client
        .post(app.url("/sign-in"))
        .header("origin", "http://evil.example")
        .form(&form)
        .send()
        .await
        .expect("request");
    assert_eq!(from_elsewhere.status(), StatusCode::FORBIDDEN);
    assert!(from_elsewhere.headers().get("set-cookie").is_none());

    let fetch_cross_site = client
        .post(app.url("/sign-in"))
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .expect("request");
    assert_eq!(fetch_cross_site.status(), StatusCode::FORBIDDEN);

    let same_origin = client
        .post(app.url("/sign-in"))
        .header("origin", format!("http://{}", app.address))
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .expect("request");
    assert_eq!(same_origin.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "not_found")
        .await
        .expect("sqlite");

    let page = app
        .client()
        .get(app.url("/no-such-page"))
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(page.text().await.expect("body").contains("Page not found"));

    let api = app
        .client()
        .get(app.url("/api/v1/no-such-resource"))
        .send()
        .await
        .expect("request");
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn metrics_use_route_templates() {
    let app = spawn_app(Dialect::Sqlite, Seed::DemoClinic, "metrics")
        .await
        .expect("sqlite");
    let token = sign_in(&app, "admin").await;
    let (_, sites) = get_json(&app, "/api/v1/sites", Some(&token)).await;
    let site_id = sites[0]["id"].as_str().expect("id").to_owned();
    get_json(&app, &format!("/api/v1/sites/{site_id}"), Some(&token)).await;
    get_json(&app, "/healthz", None).await;

    let text = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains(
            "stillpoint_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("route=\"/api/v1/sites/{site_id}\""), "{text}");
    assert!(!text.contains(&site_id), "metrics must not contain ids");
    assert!(text.contains("# TYPE stillpoint_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn assets_are_cached_for_a_year() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "assets")
        .await
        .expect("sqlite");
    let page = app
        .client()
        .get(app.url("/"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let href = page
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a stylesheet link");
    assert!(
        href.starts_with("/assets/stillpoint.")
            && std::path::Path::new(href)
                .extension()
                .is_some_and(|extension| extension.eq_ignore_ascii_case("css")),
        "{href}"
    );

    let response = app
        .client()
        .get(app.url(href))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    let stale = app
        .client()
        .get(app.url("/assets/stillpoint.000000000000.css"))
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn framework_errors_become_problem_documents() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "framework_errors")
        .await
        .expect("sqlite");

    let wrong_method = app
        .client()
        .patch(app.url("/api/v1/sessions"))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = wrong_method.json().await.expect("json");
    assert_eq!(problem["status"], 405);

    let too_large = app
        .client()
        .post(app.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        too_large.headers()["content-type"],
        "application/problem+json"
    );

    let page = app
        .client()
        .put(app.url("/sign-in"))
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn unauthorized_names_the_scheme() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "www_authenticate")
        .await
        .expect("sqlite");
    let response = app
        .client()
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"stillpoint\""
    );
}

#[tokio::test]
async fn basic_credentials_do_not_bypass_origin_check() {
    let app = spawn_app(Dialect::Sqlite, Seed::DemoClinic, "basic_bypass")
        .await
        .expect("sqlite");
    let response = app
        .client()
        .post(app.url("/sign-in"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("origin", "http://evil.example")
        .form(&[
            ("email", "admin@demo-clinic.example"),
            ("password", DEMO_PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unusual_methods_share_one_metrics_label() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "method_label")
        .await
        .expect("sqlite");
    for name in ["FOO1", "FOO2", "FOO3"] {
        let method = reqwest::Method::from_bytes(name.as_bytes()).expect("token");
        app.client()
            .request(method, app.url("/"))
            .send()
            .await
            .expect("request");
    }
    let text = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(!text.contains("FOO"), "{text}");
    assert!(
        text.contains("method=\"other\",route=\"/\",status=\"405\"} 3"),
        "{text}"
    );
}

async fn staff_sign_in_needs_one_time_code(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "staff_sign_in_needs_one_time_code").await else {
        return;
    };
    let email = "facilitator@demo-clinic.example";
    let attempt = |code: Option<String>| {
        let mut body = json!({"email": email, "password": DEMO_PASSWORD});
        if let Some(code) = code {
            body["one_time_code"] = Value::String(code);
        }
        app.client()
            .post(app.url("/api/v1/sessions"))
            .json(&body)
            .send()
    };

    let without = attempt(None).await.expect("request");
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = without.json().await.expect("json");
    assert_eq!(problem["code"], "second_factor_required");

    let wrong = attempt(Some("000000".to_owned())).await.expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = wrong.json().await.expect("json");
    assert_eq!(problem["code"], "invalid_one_time_code");

    let code = app.next_one_time_code(email).expect("code");
    let accepted = attempt(Some(code.clone())).await.expect("request");
    assert_eq!(accepted.status(), StatusCode::CREATED);
    let body: Value = accepted.json().await.expect("json");
    let token = body["token"].as_str().expect("token");
    assert_eq!(
        get_json(&app, "/api/v1/me", Some(token)).await.0,
        StatusCode::OK
    );

    // The same code is accepted once, even within its 30 seconds.
    let replayed = attempt(Some(code)).await.expect("request");
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);

    // The refused attempts left no usable session behind: only the accepted one is open.
    let sessions = app
        .state
        .store
        .search_audit_events(
            &stillpoint_app::ports::AuditFilter {
                action: Some(stillpoint_domain::audit::AuditAction::SignOut),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("search");
    assert_eq!(sessions.len(), 3, "three half-open sessions were ended");
}

async fn wrong_codes_are_throttled(dialect: Dialect) {
    let Some(app) = demo_app(dialect, "wrong_codes_are_throttled").await else {
        return;
    };
    let email = "clinician.south@demo-clinic.example";
    let attempt = |code: String| {
        app.client()
            .post(app.url("/api/v1/sessions"))
            .json(&json!({"email": email, "password": DEMO_PASSWORD, "one_time_code": code}))
            .send()
    };
    // Each wrong code counts as a failed attempt; after 5 the next request waits.
    let mut statuses = Vec::new();
    for guess in 0..6 {
        statuses.push(
            attempt(format!("{guess:06}"))
                .await
                .expect("request")
                .status(),
        );
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::UNAUTHORIZED)
            .count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "guessing codes is throttled: {statuses:?}"
    );
    let code = app.next_one_time_code(email).expect("code");
    assert_eq!(
        attempt(code).await.expect("request").status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code waits"
    );
}
