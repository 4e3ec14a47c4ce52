//! Account life cycle through the pages: staff, patient and caregiver invitations, password
//! resets, lifting a sign-in lock and resetting two-step verification.

use jiff::SignedDuration;
use reqwest::StatusCode;
use stillpoint_app::demo::DEMO_PASSWORD;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, hidden_field, spawn_app};

async fn app(test: &str) -> TestApp {
    spawn_app(Dialect::Sqlite, Seed::DemoClinic, test)
        .await
        .expect("sqlite")
}

/// Extracts the issued link from a confirmation page, as a path on the test server.
fn issued_path(app: &TestApp, page: &str) -> String {
    let marker = "id=\"issued-link\" type=\"text\" readonly value=\"";
    let start = page.find(marker).expect("a link is shown") + marker.len();
    let url = &page[start..start + page[start..].find('"').expect("end of link")];
    url.strip_prefix(&app.url(""))
        .expect("the link points at this server")
        .to_owned()
}

async fn text(response: reqwest::Response) -> (StatusCode, String) {
    (response.status(), response.text().await.expect("body"))
}

/// Opens a link page with `client` and submits its form with `fields`.
async fn submit_link(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let page = client
        .get(app.url(path))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let token = hidden_field(&page, "csrf_token").expect("form token");
    let mut body = fields.to_vec();
    body.push(("csrf_token", &token));
    text(
        client
            .post(app.url(path))
            .form(&body)
            .send()
            .await
            .expect("request"),
    )
    .await
}

async fn sign_in_status(app: &TestApp, email: &str, password: &str) -> (StatusCode, String) {
    let response = app
        .post_form(
            &app.client(),
            "/sign-in",
            &[("email", email), ("password", password)],
        )
        .await;
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    (response.status(), location)
}

#[tokio::test]
async fn staff_invitation_works_once() {
    let app = app("staff_invitation").await;
    let admin = app.browser_session("program.admin").await;
    let north = app.demo.as_ref().expect("demo").sites[0].id.to_string();

    let (status, page) = text(
        app.post_form(
            &admin,
            "/staff/invitations",
            &[
                ("display_name", "Noor Haddad"),
                ("email", "noor@demo-clinic.example"),
                ("role", "facilitator"),
                ("site_id", &north),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let link = issued_path(&app, &page);
    assert!(link.starts_with("/invitations/"), "{link}");
    let (_, staff_page) = text(admin.get(app.url("/staff")).send().await.expect("request")).await;
    assert!(
        staff_page.contains("noor@demo-clinic.example"),
        "listed as waiting"
    );

    // Mismatched passwords and a common password are refused without using the link.
    let visitor = app.client();
    let (status, page) = submit_link(
        &app,
        &visitor,
        &link,
        &[
            ("display_name", "Noor Haddad"),
            ("password", "a quiet lake at dawn"),
            ("password_confirmation", "a quiet lake at dusk"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("the two passwords differ"), "{page}");
    let (status, _) = submit_link(
        &app,
        &visitor,
        &link,
        &[
            ("display_name", "Noor Haddad"),
            ("password", "password123"),
            ("password_confirmation", "password123"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, page) = submit_link(
        &app,
        &visitor,
        &link,
        &[
            ("display_name", "Noor Haddad"),
            ("password", "a quiet lake at dawn"),
            ("password_confirmation", "a quiet lake at dawn"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // A new staff member goes on to set up two-step verification.
    assert_eq!(
        sign_in_status(&app, "noor@demo-clinic.example", "a quiet lake at dawn").await,
        (StatusCode::SEE_OTHER, "/sign-in/verify".to_owned())
    );

    // The link is spent, and opening it again shows that.
    let again = app
        .client()
        .get(app.url(&link))
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.expect("body").contains("used already"));
    let unknown = app
        .client()
        .get(app.url("/invitations/not-a-real-token"))
        .send()
        .await
        .expect("request");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn expired_invitation_is_gone() {
    let app = app("expired_invitation").await;
    let admin = app.browser_session("admin").await;
    let (_, page) = text(
        app.post_form(
            &admin,
            "/staff/invitations",
            &[
                ("display_name", "Late Person"),
                ("email", "late@demo-clinic.example"),
                ("role", "system_administrator"),
            ],
        )
        .await,
    )
    .await;
    let link = issued_path(&app, &page);
    app.clock.advance(SignedDuration::from_hours(7 * 24));
    let response = app
        .client()
        .get(app.url(&link))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(response.text().await.expect("body").contains("expired"));
}

#[tokio::test]
async fn program_admin_invites_only_at_own_sites() {
    let app = app("invitation_scope").await;
    let north = app.demo.as_ref().expect("demo").sites[0].id;
    let (_, token) = app
        .account_with_roles(
            "north.admin",
            vec![
                stillpoint_domain::RoleAssignment::new(
                    stillpoint_domain::Role::ProgramAdministrator,
                    Some(north),
                )
                .expect("valid"),
            ],
        )
        .await;
    let south = app.demo.as_ref().expect("demo").sites[1].id.to_string();
    let invite = |role: &'static str, site: String| {
        app.client()
            .post(app.url("/staff/invitations"))
            .bearer_auth(&token)
            .form(&[
                ("display_name", "Someone New".to_owned()),
                ("email", "someone@demo-clinic.example".to_owned()),
                ("role", role.to_owned()),
                ("site_id", site),
            ])
            .send()
    };
    let other_site = invite("clinician", south).await.expect("request");
    assert_eq!(other_site.status(), StatusCode::FORBIDDEN);
    let system = invite("system_administrator", String::new())
        .await
        .expect("request");
    assert_eq!(system.status(), StatusCode::FORBIDDEN);
    let own_site = invite("clinician", north.to_string())
        .await
        .expect("request");
    assert_eq!(own_site.status(), StatusCode::OK);
}

#[tokio::test]
async fn patient_invitation_links_the_record() {
    let app = app("patient_invitation").await;
    let demo = app.demo.as_ref().expect("demo");
    let north = demo.sites[0].id;
    let patient = demo
        .patients
        .iter()
        .find(|patient| patient.site_id == north && patient.account_id.is_none())
        .expect("a NORTH patient without account");
    let clinician = app.browser_session("clinician").await;

    let (status, page) = text(
        app.post_form(
            &clinician,
            &format!("/patients/{}/invitation", patient.id),
            &[("email", "new.patient@demo-clinic.example")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let link = issued_path(&app, &page);

    let visitor = app.client();
    let (status, _) = submit_link(
        &app,
        &visitor,
        &link,
        &[
            ("display_name", &patient.given_name),
            ("password", "breathing in, breathing out"),
            ("password_confirmation", "breathing in, breathing out"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, location) = sign_in_status(
        &app,
        "new.patient@demo-clinic.example",
        "breathing in, breathing out",
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/home")
    );

    // The record now has its account, so a second invitation is refused with the reason.
    let (status, page) = text(
        app.post_form(
            &clinician,
            &format!("/patients/{}/invitation", patient.id),
            &[("email", "other@demo-clinic.example")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("has an account already"), "{page}");

    // Staff outside the patient's care cannot invite them.
    let south_clinician = app.browser_session("clinician.south").await;
    let other = demo
        .patients
        .iter()
        .find(|candidate| {
            candidate.site_id == north
                && candidate.id != patient.id
                && candidate.account_id.is_none()
        })
        .expect("another NORTH patient");
    let response = app
        .post_form(
            &south_clinician,
            &format!("/patients/{}/invitation", other.id),
            &[("email", "x@demo-clinic.example")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn caregiver_invitation_creates_the_grant() {
    let app = app("caregiver_invitation").await;
    let patient = app.browser_session("patient").await;
    let (status, page) = text(
        app.post_form(
            &patient,
            "/sharing",
            &[
                ("email", "daughter@demo-clinic.example"),
                ("scope", "schedule"),
                ("scope", "progress"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let link = issued_path(&app, &page);
    let (status, _) = submit_link(
        &app,
        &app.client(),
        &link,
        &[
            ("display_name", "Sofía Morales"),
            ("password", "a walk by the river"),
            ("password_confirmation", "a walk by the river"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (_, sharing) = text(
        patient
            .get(app.url("/sharing"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert!(sharing.contains("Sofía Morales"), "{sharing}");
    let own = app.demo.as_ref().expect("demo").patients[0].id;
    let caregiver = app.client();
    let signed_in = app
        .post_form(
            &caregiver,
            "/sign-in",
            &[
                ("email", "daughter@demo-clinic.example"),
                ("password", "a walk by the river"),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let record = caregiver
        .get(app.url(&format!("/api/v1/patients/{own}")))
        .send()
        .await
        .expect("request");
    assert_eq!(record.status(), StatusCode::OK);
    let body: serde_json::Value = record.json().await.expect("json");
    assert_eq!(
        body["shared_scopes"],
        serde_json::json!(["schedule", "progress"])
    );
}

#[tokio::test]
async fn password_reset_ends_old_sessions() {
    let app = app("password_reset").await;
    let caregiver = app.browser_session("caregiver").await;
    let admin = app.browser_session("admin").await;
    let caregiver_id = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.has_role(stillpoint_domain::Role::Caregiver))
        .expect("caregiver")
        .id;

    let (status, page) = text(
        app.post_form(
            &admin,
            &format!("/accounts/{caregiver_id}/password-reset"),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let link = issued_path(&app, &page);
    assert!(link.starts_with("/password-reset/"));

    let (status, _) = submit_link(
        &app,
        &app.client(),
        &link,
        &[
            ("password", "a new and longer phrase"),
            ("password_confirmation", "a new and longer phrase"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let home = caregiver
        .get(app.url("/home"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        home.status(),
        StatusCode::UNAUTHORIZED,
        "the old session ended"
    );
    assert_eq!(
        sign_in_status(&app, "caregiver@demo-clinic.example", DEMO_PASSWORD)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in_status(
            &app,
            "caregiver@demo-clinic.example",
            "a new and longer phrase"
        )
        .await,
        (StatusCode::SEE_OTHER, "/home".to_owned())
    );
    let reused = app
        .client()
        .get(app.url(&link))
        .send()
        .await
        .expect("request");
    assert_eq!(reused.status(), StatusCode::GONE);
}

#[tokio::test]
async fn administrator_lifts_lock_and_resets_two_step() {
    let app = app("admin_overrides").await;
    let email = "patient@demo-clinic.example";
    for _ in 0..6 {
        sign_in_status(&app, email, "wrong password!").await;
    }
    assert_eq!(
        sign_in_status(&app, email, DEMO_PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let admin = app.browser_session("program.admin").await;
    let patient_id = app.demo.as_ref().expect("demo").patients[0]
        .account_id
        .expect("patient account");
    let response = app
        .post_form(&admin, &format!("/accounts/{patient_id}/unlock"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        sign_in_status(&app, email, DEMO_PASSWORD).await,
        (StatusCode::SEE_OTHER, "/home".to_owned())
    );

    // A facilitator who lost their phone sets up a new authenticator at the next sign-in.
    let facilitator_id = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "facilitator@demo-clinic.example")
        .expect("facilitator")
        .id;
    let response = app
        .post_form(
            &admin,
            &format!("/accounts/{facilitator_id}/two-step-reset"),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let client = app.client();
    app.post_form(
        &client,
        "/sign-in",
        &[
            ("email", "facilitator@demo-clinic.example"),
            ("password", DEMO_PASSWORD),
        ],
    )
    .await;
    let verify = client
        .get(app.url("/sign-in/verify"))
        .send()
        .await
        .expect("request");
    assert_eq!(verify.headers()["location"], "/sign-in/authenticator");

    // A program administrator cannot reset a system administrator.
    let system_id = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.has_role(stillpoint_domain::Role::SystemAdministrator))
        .expect("system administrator")
        .id;
    let response = app
        .post_form(
            &admin,
            &format!("/accounts/{system_id}/password-reset"),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn departing_staff_lose_access_at_once() {
    let app = app("departing_staff").await;
    let admin = app.browser_session("program.admin").await;
    let demo = app.demo.as_ref().expect("demo");
    let account_of = |email: &str| {
        demo.accounts
            .iter()
            .find(|account| account.email.as_str() == email)
            .expect("demo account")
            .clone()
    };

    // Removing the clinician role takes effect on the clinician's next request.
    let clinician = account_of("clinician@demo-clinic.example");
    let clinician_session = app.api_token("clinician").await;
    let patients = |token: String| {
        app.client()
            .get(app.url("/api/v1/patients"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        patients(clinician_session.clone())
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );
    let site = clinician.roles[0].site_id.expect("site").to_string();
    let response = app
        .post_form(
            &admin,
            &format!("/accounts/{}/roles/remove", clinician.id),
            &[("role", "clinician"), ("site_id", &site)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        patients(clinician_session).await.expect("request").status(),
        StatusCode::FORBIDDEN
    );

    // Deactivating ends the facilitator's sessions and refuses new sign-ins until reactivated.
    let facilitator = account_of("facilitator@demo-clinic.example");
    let session = app.browser_session("facilitator").await;
    let response = app
        .post_form(
            &admin,
            &format!("/accounts/{}/deactivate", facilitator.id),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let home = session.get(app.url("/home")).send().await.expect("request");
    assert_eq!(home.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sign_in_status(&app, "facilitator@demo-clinic.example", DEMO_PASSWORD)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (_, staff_page) = text(admin.get(app.url("/staff")).send().await.expect("request")).await;
    assert!(staff_page.contains(&format!("/accounts/{}/reactivate", facilitator.id)));
    let response = app
        .post_form(
            &admin,
            &format!("/accounts/{}/reactivate", facilitator.id),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        sign_in_status(&app, "facilitator@demo-clinic.example", DEMO_PASSWORD).await,
        (StatusCode::SEE_OTHER, "/sign-in/verify".to_owned())
    );

    // A program administrator cannot remove a system administrator's role, nor their own.
    let system = account_of("admin@demo-clinic.example");
    let response = app
        .post_form(
            &admin,
            &format!("/accounts/{}/roles/remove", system.id),
            &[("role", "system_administrator"), ("site_id", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let own = account_of("program.admin@demo-clinic.example");
    let response = app
        .post_form(&admin, &format!("/accounts/{}/deactivate", own.id), &[])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_cannot_take_over_other_sites() {
    let app = app("no_takeover").await;
    let demo = app.demo.as_ref().expect("demo");
    let north = demo.sites[0].id;
    let (north_admin, token) = app
        .account_with_roles(
            "north.admin",
            vec![
                stillpoint_domain::RoleAssignment::new(
                    stillpoint_domain::Role::ProgramAdministrator,
                    Some(north),
                )
                .expect("valid"),
            ],
        )
        .await;
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        app.client()
            .post(app.url(&path))
            .bearer_auth(&token)
            .form(&fields)
            .send()
    };
    let invite = |email: &str| {
        post(
            "/staff/invitations".to_owned(),
            vec![
                ("display_name", "Someone".to_owned()),
                ("email", email.to_owned()),
                ("role", "clinician".to_owned()),
                ("site_id", north.to_string()),
            ],
        )
    };

    // Adding a North role to a South clinician, a patient, or oneself is refused.
    for email in [
        "clinician.south@demo-clinic.example",
        "patient@demo-clinic.example",
        "PATIENT@Demo-Clinic.example",
        north_admin.email.as_str(),
    ] {
        let response = invite(email).await.expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{email}");
    }

    // An account that also works at South is not managed by a North-only administrator.
    let both_sites = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == "facilitator.south@demo-clinic.example")
        .expect("facilitator.south");
    let response = post(
        format!("/accounts/{}/password-reset", both_sites.id),
        Vec::new(),
    )
    .await
    .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deactivated_issuer_links_stop_working() {
    let app = app("issuer_links").await;
    let north = app.demo.as_ref().expect("demo").sites[0].id;
    let (issuer, token) = app
        .account_with_roles(
            "leaving.admin",
            vec![
                stillpoint_domain::RoleAssignment::new(
                    stillpoint_domain::Role::ProgramAdministrator,
                    Some(north),
                )
                .expect("valid"),
            ],
        )
        .await;
    let page = app
        .client()
        .post(app.url("/staff/invitations"))
        .bearer_auth(&token)
        .form(&[
            ("display_name", "New Clinician".to_owned()),
            ("email", "new.clinician@demo-clinic.example".to_owned()),
            ("role", "clinician".to_owned()),
            ("site_id", north.to_string()),
        ])
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let link = issued_path(&app, &page);

    let system = app.browser_session("admin").await;
    let response = app
        .post_form(&system, &format!("/accounts/{}/deactivate", issuer.id), &[])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let opened = app
        .client()
        .get(app.url(&link))
        .send()
        .await
        .expect("request");
    assert_eq!(opened.status(), StatusCode::GONE);
}

#[tokio::test]
async fn second_step_replaces_session_token() {
    let app = app("token_rotation").await;
    let client = app.client();
    let email = "clinician@demo-clinic.example";
    let response = app
        .post_form(
            &client,
            "/sign-in",
            &[("email", email), ("password", DEMO_PASSWORD)],
        )
        .await;
    let session_cookie = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("stillpoint_session="))
            .and_then(|value| value.split(';').next())
            .expect("a session cookie")
            .to_owned()
    };
    let before = session_cookie(&response);
    let code = app.next_one_time_code(email).expect("code");
    let verified = app
        .post_form(&client, "/sign-in/verify", &[("code", &code)])
        .await;
    assert_eq!(verified.status(), StatusCode::SEE_OTHER);
    let after = session_cookie(&verified);
    assert_ne!(before, after, "a new token after the second step");

    let with = |cookie: String| {
        app.client()
            .get(app.url("/api/v1/me"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(with(after).await.expect("request").status(), StatusCode::OK);
    assert_eq!(
        with(before).await.expect("request").status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn mistyped_codes_do_not_lock_quickly() {
    let app = app("mistyped_codes").await;
    let email = "Facilitator@Demo-Clinic.example";
    let attempt = |code: String| {
        app.client()
            .post(app.url("/api/v1/sessions"))
            .json(&serde_json::json!({"email": email, "password": DEMO_PASSWORD, "one_time_code": code}))
            .send()
    };
    // A correct password is not a failure, so three mistyped codes leave room for the right one.
    for _ in 0..3 {
        assert_eq!(
            attempt("000000".to_owned())
                .await
                .expect("request")
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let code = app
        .next_one_time_code("facilitator@demo-clinic.example")
        .expect("code");
    assert_eq!(
        attempt(code).await.expect("request").status(),
        StatusCode::CREATED
    );
}
