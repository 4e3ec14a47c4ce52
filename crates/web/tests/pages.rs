//! Server-rendered pages over HTTP, without a browser: languages, the sign-in journey, role-aware
//! navigation and error pages.

use reqwest::StatusCode;
use stillpoint_app::demo::DEMO_PASSWORD;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};
use stillpoint_web::policy::Access;

async fn app() -> TestApp {
    spawn_app(Dialect::Sqlite, Seed::DemoClinic, "pages")
        .await
        .expect("sqlite")
}

async fn page(client: &reqwest::Client, url: String) -> (StatusCode, String) {
    let response = client.get(url).send().await.expect("request");
    (response.status(), response.text().await.expect("body"))
}

/// Signs in with the form and returns a client that keeps the session cookie.
async fn signed_in_client(app: &TestApp, local: &str) -> reqwest::Client {
    app.browser_session(local).await
}

#[tokio::test]
async fn start_page_follows_accept_language() {
    let app = app().await;
    for (header, lang, heading) in [
        (
            "es-MX,es;q=0.9",
            "es",
            "Atención plena para vivir con una enfermedad crónica",
        ),
        (
            "en-US,en;q=0.9",
            "en",
            "Mindfulness for living with chronic illness",
        ),
        ("de-DE", "en", "Mindfulness for living with chronic illness"),
    ] {
        let response = app
            .client()
            .get(app.url("/"))
            .header("accept-language", header)
            .send()
            .await
            .expect("request");
        let body = response.text().await.expect("body");
        assert!(
            body.contains(&format!("<html lang=\"{lang}\">")),
            "{header}"
        );
        assert!(body.contains(heading), "{header}");
    }
}

#[tokio::test]
async fn language_switcher_sets_cookie_and_returns() {
    let app = app().await;
    let client = app.client();
    let response = app
        .post_form(
            &client,
            "/language",
            &[("lang", "es"), ("next", "/sign-in")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/sign-in");

    let (_, body) = page(&client, app.url("/sign-in")).await;
    assert!(body.contains("<html lang=\"es\">"));
    assert!(body.contains("Correo electrónico"));

    let rejected = app
        .post_form(&client, "/language", &[("lang", "klingon!")])
        .await;
    assert_eq!(rejected.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn sign_in_failure_keeps_email_and_explains() {
    let app = app().await;
    let response = app
        .post_form(
            &app.client(),
            "/sign-in",
            &[
                ("email", "clinician@demo-clinic.example"),
                ("password", "wrong-password"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("The e-mail address or password is incorrect"),
        "{body}"
    );
    assert!(body.contains("value=\"clinician@demo-clinic.example\""));
    assert!(body.contains("aria-invalid=\"true\""));

    let empty = app
        .post_form(&app.client(), "/sign-in", &[("email", "")])
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .text()
            .await
            .expect("body")
            .contains("Enter an e-mail address")
    );
}

#[tokio::test]
async fn home_greets_in_the_account_language() {
    let app = app().await;
    let clinician = signed_in_client(&app, "clinician").await;
    let (status, body) = page(&clinician, app.url("/home")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Hola, Dr. Elena Vargas"),
        "the clinician prefers Spanish"
    );
    assert!(
        body.contains("Profesional clínico en Riverbend Health, North Campus"),
        "{body}"
    );
    assert!(body.contains("America/Chicago"));

    let patient = signed_in_client(&app, "patient").await;
    let (_, body) = page(&patient, app.url("/home")).await;
    assert!(
        body.contains("Su atención está a cargo de Riverbend Health, North Campus."),
        "{body}"
    );
}

#[tokio::test]
async fn navigation_follows_role() {
    let app = app().await;
    let (_, anonymous) = page(&app.client(), app.url("/")).await;
    assert!(anonymous.contains("href=\"/sign-in\""));
    assert!(!anonymous.contains("href=\"/sites\""));

    let admin = signed_in_client(&app, "program.admin").await;
    let (_, body) = page(&admin, app.url("/home")).await;
    assert!(body.contains("href=\"/sites\""));
    assert!(body.contains("action=\"/sign-out\""));

    let facilitator = signed_in_client(&app, "facilitator").await;
    let (_, body) = page(&facilitator, app.url("/home")).await;
    assert!(!body.contains("href=\"/sites\""));
}

#[tokio::test]
async fn sites_page_is_for_administrators() {
    let app = app().await;
    let admin = signed_in_client(&app, "admin").await;
    let (status, body) = page(&admin, app.url("/sites")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Riverbend Health, South Valley Clinic"));
    assert!(body.contains("<caption id=\"sites-caption\">"));

    let patient = signed_in_client(&app, "patient").await;
    let (status, body) = page(&patient, app.url("/sites")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body.contains("No disponible"),
        "the error page is in the patient's language"
    );

    let (status, body) = page(&app.client(), app.url("/sites")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("href=\"/sign-in\""));
}

#[tokio::test]
async fn sign_out_clears_the_session() {
    let app = app().await;
    let client = signed_in_client(&app, "facilitator").await;
    let response = app.post_form(&client, "/sign-out", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert_eq!(
        page(&client, app.url("/home")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tampered_session_cookie_is_signed_out() {
    let app = app().await;
    let response = app
        .client()
        .get(app.url("/home"))
        .header("cookie", "stillpoint_session=forged-token-value")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn throttled_sign_in_explains_the_wait() {
    let app = app().await;
    let client = app.client();
    let token = app.form_token(&client).await;
    let attempt = || {
        client
            .post(app.url("/sign-in"))
            .header("accept-language", "es")
            .form(&[
                ("email", "clinician@demo-clinic.example"),
                ("password", "wrong-password"),
                ("csrf_token", &token),
            ])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(
            attempt().await.expect("request").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = attempt().await.expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body = response.text().await.expect("body");
    assert!(body.contains("espere 15 minutos"), "{body}");
    assert!(body.contains("value=\"clinician@demo-clinic.example\""));
}

#[tokio::test]
async fn audit_page_and_csv_export() {
    let app = app().await;
    let admin = signed_in_client(&app, "admin").await;
    let (status, body) = page(&admin, app.url("/audit?action=sign_in")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Signed in"), "{body}");
    assert!(
        body.contains("href=\"/audit.csv?action=sign_in\""),
        "{body}"
    );

    let csv = admin
        .get(app.url("/audit.csv?action=sign_in"))
        .send()
        .await
        .expect("request");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );
    let text = csv.text().await.expect("body");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "sequence,recorded_at,account_id,role,patient_id,resource_type,resource_id,action,outcome,source_address,break_glass,hash"
        )
    );
    assert!(lines.all(|line| line.contains(",sign_in,")), "{text}");

    let (status, body) = page(&admin, app.url("/audit?patient_id=nonsense")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("patient_id"), "{body}");

    // The account filter takes an e-mail address, and rows name the account.
    signed_in_client(&app, "facilitator").await;
    let (status, body) = page(
        &admin,
        app.url("/audit?account_id=facilitator%40demo-clinic.example"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Maya Lindqvist (Facilitator)"), "{body}");
    let (status, body) = page(
        &admin,
        app.url("/audit?account_id=nobody%40demo-clinic.example"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("no account has the e-mail address"), "{body}");

    let patient = signed_in_client(&app, "patient").await;
    assert_eq!(
        page(&patient, app.url("/audit")).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = page(&patient, app.url("/record-access")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Quién vio mi expediente"), "{body}");
}

#[tokio::test]
async fn forms_without_their_token_are_refused() {
    let app = app().await;
    let client = signed_in_client(&app, "admin").await;
    let token = app.form_token(&client).await;

    // Every form route of the policy table, posted without a token by a signed-in browser whose
    // role the route admits.
    let demo = app.demo.as_ref().expect("demo");
    let patient = &demo.patients[0];
    let patient_account = patient.account_id.expect("patient account").to_string();
    let clients = [
        ("admin", client.clone()),
        (
            "program.admin",
            signed_in_client(&app, "program.admin").await,
        ),
        ("clinician", signed_in_client(&app, "clinician").await),
        ("patient", signed_in_client(&app, "patient").await),
    ];
    // A one-click unsubscribe (RFC 8058) and an SMS provider's delivery report come from a
    // mail client or a provider, without a session or a form. The keyed token in their query
    // authenticates them instead, and without it they are rejected.
    let keyed = ["/unsubscribe", "/hooks/sms-status"];
    for path in keyed {
        let response = client
            .post(app.url(path))
            .form(&[("lang", "es")])
            .send()
            .await
            .expect("request");
        assert!(
            matches!(
                response.status(),
                StatusCode::NOT_FOUND | StatusCode::FORBIDDEN
            ),
            "{path} accepted a post without its token: {}",
            response.status()
        );
    }
    let form_routes = stillpoint_web::policy::ROUTES.iter().filter(|route| {
        route.method == "POST" && !route.path.starts_with("/api/") && !keyed.contains(&route.path)
    });
    for route in form_routes {
        let subject = match route.access {
            Access::Administrators => "program.admin",
            Access::CareTeam | Access::Clinicians => "clinician",
            Access::Patients => "patient",
            Access::Public
            | Access::PathToken
            | Access::SignedIn
            | Access::SecondStep
            | Access::Staff => "admin",
        };
        let (_, browser) = clients
            .iter()
            .find(|(name, _)| *name == subject)
            .expect("a client for the role");
        let path = route
            .path
            .replace("{patient_id}", &patient.id.to_string())
            .replace("{account_id}", &patient_account)
            .replace("{caregiver_id}", &patient_account)
            .replace("{token}", "a-token")
            .replace("{cohort_id}", &uuid::Uuid::nil().to_string())
            .replace("{session_id}", &uuid::Uuid::nil().to_string())
            .replace("{curriculum_id}", "mbsr-online")
            .replace("{version}", "1")
            .replace("{index}", "0");
        let response = browser
            .post(app.url(&path))
            .form(&[("lang", "es")])
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{} accepted a form without a token",
            route.path
        );
        let body = response.text().await.expect("body");
        // The clinician's interface is in Spanish.
        assert!(
            body.contains("This form has expired") || body.contains("Este formulario caducó"),
            "{}: {body}",
            route.path
        );
    }

    // A forged token, and another browser's token, are refused too.
    let other_token = app.form_token(&app.client()).await;
    for forged in ["forged", other_token.as_str()] {
        let response = client
            .post(app.url("/language"))
            .form(&[("lang", "es"), ("csrf_token", forged)])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    // The page's own token works, and the session is still open after the refusals.
    let response = client
        .post(app.url("/language"))
        .form(&[("lang", "es"), ("next", "/home"), ("csrf_token", &token)])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(page(&client, app.url("/home")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn form_token_changes_when_signing_in() {
    let app = app().await;
    let client = app.client();
    let before = app.form_token(&client).await;
    let email = "patient@demo-clinic.example";
    let response = app
        .post_form(
            &client,
            "/sign-in",
            &[("email", email), ("password", DEMO_PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let stale = client
        .post(app.url("/sign-out"))
        .form(&[("csrf_token", before.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    assert_eq!(page(&client, app.url("/home")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn staff_sign_in_asks_for_code() {
    let app = app().await;
    let client = app.client();
    let email = "clinician@demo-clinic.example";
    let response = app
        .post_form(
            &client,
            "/sign-in",
            &[("email", email), ("password", DEMO_PASSWORD)],
        )
        .await;
    assert_eq!(response.headers()["location"], "/sign-in/verify");

    // Until the code is entered, every other page sends the visitor back to the code page.
    let home = client.get(app.url("/home")).send().await.expect("request");
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(home.headers()["location"], "/sign-in/verify");
    let (status, body) = page(&client, app.url("/sign-in/verify")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("autocomplete=\"one-time-code\""), "{body}");
    assert!(
        !body.contains("Demo clinic: the current code"),
        "hints are off"
    );

    let wrong = app
        .post_form(&client, "/sign-in/verify", &[("code", "000000")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_body = wrong.text().await.expect("body");
    assert!(wrong_body.contains("id=\"code-error\""), "{wrong_body}");
    assert!(wrong_body.contains("aria-invalid=\"true\""), "{wrong_body}");

    let code = app.next_one_time_code(email).expect("code");
    let right = app
        .post_form(&client, "/sign-in/verify", &[("code", &code)])
        .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()["location"], "/home");
    assert_eq!(page(&client, app.url("/home")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn new_staff_sets_up_authenticator() {
    use stillpoint_domain::{
        Account, AccountId, EmailAddress, Language, Role, RoleAssignment, TimeZoneName,
    };

    let app = app().await;
    let site = app.demo.as_ref().expect("demo").sites[0].id;
    let password = "a calm new facilitator";
    let account = Account {
        id: AccountId::from_uuid(uuid::Uuid::now_v7()),
        email: EmailAddress::parse("new.facilitator@demo-clinic.example").expect("valid"),
        display_name: "New Facilitator".to_owned(),
        language: Language::english(),
        time_zone: TimeZoneName::parse("America/Chicago").expect("valid"),
        preferences: stillpoint_domain::DisplayPreferences::default(),
        roles: vec![RoleAssignment::new(Role::Facilitator, Some(site)).expect("valid")],
    };
    let hash = stillpoint_app::auth::hash_password(password).expect("hash");
    app.state
        .store
        .insert_account(&account, &hash)
        .await
        .expect("insert");

    let sign_in = async || {
        let client = app.client();
        let response = app
            .post_form(
                &client,
                "/sign-in",
                &[("email", account.email.as_str()), ("password", password)],
            )
            .await;
        assert_eq!(response.headers()["location"], "/sign-in/verify");
        client
    };
    let client = sign_in().await;
    let verify = client
        .get(app.url("/sign-in/verify"))
        .send()
        .await
        .expect("request");
    assert_eq!(verify.headers()["location"], "/sign-in/authenticator");

    let (status, body) = page(&client, app.url("/sign-in/authenticator")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<svg"), "a QR code is drawn");
    let key_start = body.find("class=\"secret-key\"").expect("the key is shown");
    let key: String = body[key_start..]
        .split('>')
        .nth(1)
        .expect("key text")
        .split('<')
        .next()
        .expect("key text")
        .replace(' ', "");
    // The page shows the same secret again until set-up is finished.
    let (_, again) = page(&client, app.url("/sign-in/authenticator")).await;
    assert!(again.contains(&body[key_start..key_start + 60]));

    let now = stillpoint_app::Clock::now(app.clock.as_ref());
    let code = stillpoint_app::mfa::code_at(&key, now).expect("code");
    let confirmed = app
        .post_form(&client, "/sign-in/authenticator", &[("code", &code)])
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let codes_page = confirmed.text().await.expect("body");
    let recovery: Vec<String> = codes_page
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest.split('<').next().expect("code").to_owned())
        .collect();
    assert_eq!(recovery.len(), 10, "{codes_page}");
    assert_eq!(page(&client, app.url("/home")).await.0, StatusCode::OK);

    // A recovery code signs in once; the set-up page is gone.
    let client = sign_in().await;
    let setup = client
        .get(app.url("/sign-in/authenticator"))
        .send()
        .await
        .expect("request");
    assert_eq!(setup.headers()["location"], "/sign-in/verify");
    let used = app
        .post_form(
            &client,
            "/sign-in/verify",
            &[("code", &recovery[0].to_uppercase())],
        )
        .await;
    assert_eq!(used.headers()["location"], "/home");
    let client = sign_in().await;
    let reused = app
        .post_form(&client, "/sign-in/verify", &[("code", &recovery[0])])
        .await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn profile_saves_preferences() {
    let app = app().await;
    let client = signed_in_client(&app, "patient").await;
    let (status, profile) = page(&client, app.url("/account")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(profile.contains("value=\"America/Chicago\""), "{profile}");
    assert!(
        !profile.contains("/account/recovery-codes"),
        "patients have no recovery codes"
    );

    let bad_zone = app
        .post_form(
            &client,
            "/account",
            &[
                ("display_name", "Lucía Morales"),
                ("language", "es"),
                ("time_zone", "Mars/Olympus"),
                ("larger_text", "on"),
            ],
        )
        .await;
    assert_eq!(bad_zone.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = bad_zone.text().await.expect("body");
    assert!(body.contains("time_zone"));
    // The other changes are still on the form.
    assert!(body.contains("value=\"Mars/Olympus\""), "{body}");
    assert!(body.contains("id=\"larger-text\" name=\"larger_text\" value=\"on\" checked"));

    let saved = app
        .post_form(
            &client,
            "/account",
            &[
                ("display_name", "Lucía M."),
                ("language", "en"),
                ("time_zone", "America/Denver"),
                ("larger_text", "on"),
                ("reduced_motion", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, profile) = page(&client, app.url("/account?saved=1")).await;
    assert!(
        profile.contains("<html lang=\"en\" class=\"text-larger motion-reduced\">"),
        "{profile}"
    );
    assert!(profile.contains("value=\"America/Denver\""));
    assert!(profile.contains("value=\"Lucía M.\""));
}

#[tokio::test]
async fn staff_renew_recovery_codes() {
    let app = app().await;
    let client = signed_in_client(&app, "facilitator").await;
    let (_, profile) = page(&client, app.url("/account")).await;
    assert!(profile.contains("/account/recovery-codes"), "{profile}");
    let renewed = app.post_form(&client, "/account/recovery-codes", &[]).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let body = renewed.text().await.expect("body");
    assert_eq!(body.matches("<li><code>").count(), 10, "{body}");
}
