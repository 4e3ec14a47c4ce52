//! Consent through the pages: signing by typed name, what a record keeps, withdrawal taking
//! effect at once, and a new document version asking for consent again. Runs on SQLite, and on
//! PostgreSQL when it is configured.

use reqwest::StatusCode;
use stillpoint_app::consent::{ConsentLibrary, missing_consents};
use stillpoint_app::ports::ConsentStore as _;
use stillpoint_domain::{Language, PatientId};
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};

/// Invites a new patient with the clinician, accepts the invitation and returns the patient's
/// record id and a signed-in client, so the patient starts without any consent.
async fn new_patient(app: &TestApp) -> (PatientId, reqwest::Client) {
    let demo = app.demo.as_ref().expect("demo");
    let patient = demo
        .patients
        .iter()
        .find(|patient| {
            patient.site_id == demo.sites[0].id
                && patient.account_id.is_none()
                && !demo.is_cohort_member(patient.id)
        })
        .expect("a NORTH patient without account or cohort");
    let clinician = app.browser_session("clinician").await;
    let page = app
        .post_form(
            &clinician,
            &format!("/patients/{}/invitation", patient.id),
            &[("email", "consenting@demo-clinic.example")],
        )
        .await
        .text()
        .await
        .expect("body");
    let marker = "id=\"issued-link\" type=\"text\" readonly value=\"";
    let start = page.find(marker).expect("link") + marker.len();
    let link = page[start..start + page[start..].find('"').expect("end")]
        .strip_prefix(&app.url(""))
        .expect("local link")
        .to_owned();
    let visitor = app.client();
    let form_page = visitor
        .get(app.url(&link))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let token = stillpoint_test_support::hidden_field(&form_page, "csrf_token").expect("token");
    let accepted = visitor
        .post(app.url(&link))
        .form(&[
            ("display_name", patient.given_name.as_str()),
            ("password", "one breath at a time"),
            ("password_confirmation", "one breath at a time"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(accepted.status(), StatusCode::OK);

    let client = app.client();
    let signed_in = app
        .post_form(
            &client,
            "/sign-in",
            &[
                ("email", "consenting@demo-clinic.example"),
                ("password", "one breath at a time"),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    (patient.id, client)
}

#[allow(clippy::too_many_lines)] // One journey, read top to bottom.
async fn consent_is_signed_withdrawn_and_renewed(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "consent").await else {
        return;
    };
    let (patient, client) = new_patient(&app).await;
    let store = &app.database.database;
    let library = app.state.consents.clone();
    let required = missing_consents(store, &library, patient)
        .await
        .expect("missing");
    assert_eq!(required.len(), 4, "{required:?}");
    let home = client
        .get(app.url("/home"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        home.contains("href=\"/consent\""),
        "the home page asks for consent"
    );

    // A signature must name the patient.
    let family_name = app
        .demo
        .as_ref()
        .expect("demo")
        .patients
        .iter()
        .find(|candidate| candidate.id == patient)
        .expect("patient")
        .family_name
        .clone();
    let wrong = app
        .post_form(
            &client,
            "/consent/practice-risks/sign",
            &[("signed_name", "Someone Else"), ("language", "en")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);

    for id in &required {
        let response = app
            .post_form(
                &client,
                &format!("/consent/{id}/sign"),
                &[
                    ("signed_name", &format!("A. {family_name}")),
                    ("language", "es"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{id}");
    }
    assert!(
        missing_consents(store, &library, patient)
            .await
            .expect("missing")
            .is_empty()
    );

    // The record keeps the document, version, language, content hash, signer and time.
    let records = store
        .consent_records_of_patient(patient)
        .await
        .expect("records");
    let record = records
        .iter()
        .find(|record| record.document_id == "practice-risks")
        .expect("record");
    let spanish = Language::parse("es").expect("valid");
    let document = library
        .document("practice-risks", &spanish)
        .expect("document");
    assert_eq!(record.version, document.version);
    assert_eq!(record.language, spanish);
    assert_eq!(record.content_hash, document.content_hash);
    assert_eq!(record.signed_name, format!("A. {family_name}"));
    assert_eq!(
        record.signed_at,
        stillpoint_app::Clock::now(app.clock.as_ref())
    );

    // Withdrawal takes effect at once.
    let withdrawn = app
        .post_form(
            &client,
            "/consent/telehealth-video/withdraw",
            &[("reason", "I prefer not to be on video")],
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        missing_consents(store, &library, patient)
            .await
            .expect("missing"),
        vec!["telehealth-video".to_owned()]
    );
    let page = client
        .get(app.url("/consent/telehealth-video"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("name=\"signed_name\""),
        "the patient can agree again"
    );

    // A new version of a document requires consent again.
    let mut files = Vec::new();
    for id in library.ids() {
        for language in ["en", "es"] {
            let language = Language::parse(language).expect("valid");
            let document = library.document(id, &language).expect("document");
            let version = if id == "data-use-privacy" {
                2
            } else {
                document.version
            };
            files.push((
                format!("{id}/{}.md", document.language),
                format!(
                    "+++\nid = \"{id}\"\nversion = {version}\nlanguage = \"{}\"\ntitle = \"T\"\nsummary = \"S\"\nrequired = {}\n+++\nText.\n",
                    document.language, document.required
                ),
            ));
        }
    }
    let revised = ConsentLibrary::from_files(files).expect("valid");
    let mut missing = missing_consents(store, &revised, patient)
        .await
        .expect("missing");
    missing.sort();
    assert_eq!(
        missing,
        vec!["data-use-privacy".to_owned(), "telehealth-video".to_owned()]
    );
}

async fn staff_cannot_sign_for_patients(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "consent_staff").await else {
        return;
    };
    let token = app.api_token("clinician").await;
    let response = app
        .client()
        .post(app.url("/consent/practice-risks/sign"))
        .bearer_auth(&token)
        .form(&[("signed_name", "Dr. Elena Vargas")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn withdrawing_sharing_consent_ends_sharing(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "sharing_consent").await else {
        return;
    };
    let own = app.demo.as_ref().expect("demo").patients[0].id;
    let caregiver = app.api_token("caregiver").await;
    let record = |token: String| {
        app.client()
            .get(app.url(&format!("/api/v1/patients/{own}")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        record(caregiver.clone()).await.expect("request").status(),
        StatusCode::OK
    );

    let patient = app.browser_session("patient").await;
    let withdrawn = app
        .post_form(
            &patient,
            "/consent/caregiver-sharing/withdraw",
            &[("reason", "")],
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        record(caregiver.clone()).await.expect("request").status(),
        StatusCode::FORBIDDEN,
        "withdrawing the consent ends the sharing"
    );

    // Sharing again needs the consent first.
    let share = || {
        app.post_form(
            &patient,
            "/sharing",
            &[
                ("email", "caregiver@demo-clinic.example"),
                ("scope", "schedule"),
            ],
        )
    };
    let refused = share().await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("caregiver sharing")
    );
    let signed = app
        .post_form(
            &patient,
            "/consent/caregiver-sharing/sign",
            &[("signed_name", "Lucía Morales"), ("language", "es")],
        )
        .await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(share().await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        record(caregiver).await.expect("request").status(),
        StatusCode::OK
    );
}

stillpoint_test_support::on_both_databases!(
    withdrawing_sharing_consent_ends_sharing,
    consent_is_signed_withdrawn_and_renewed,
    staff_cannot_sign_for_patients,
);
