//! Authorization as a security team would test it: every route against every role, every
//! patient-record route against every relationship to the patient, a probe with other patients'
//! ids, caregivers' grants and their revocation, and break-glass access. Runs on SQLite, and on
//! PostgreSQL when it is configured.

use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::Value;
use stillpoint_app::ports::{AuditFilter, AuditStore as _, CareTeamStore as _};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::care_team::{CaregiverGrant, CaregiverScope};
use stillpoint_domain::{PatientId, Role, RoleAssignment, SiteId};
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};
use stillpoint_web::policy::{Access, ROUTES};

/// The people of the matrix: demo accounts, plus accounts each test run creates.
struct Subjects {
    tokens: Vec<(&'static str, Option<String>)>,
}

impl Subjects {
    fn token(&self, name: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(subject, _)| *subject == name)
            .and_then(|(_, token)| token.as_deref())
    }
}

/// The patients of the matrix, one for each relationship.
struct Targets {
    /// The demo patient: at NORTH, in the NORTH cohort, sharing with the demo caregiver.
    own: PatientId,
    /// Another patient in the NORTH cohort.
    cohort_mate: PatientId,
    /// A NORTH patient in no cohort.
    north_without_cohort: PatientId,
    /// A patient in the SOUTH cohort.
    south_in_cohort: PatientId,
}

async fn set_up(app: &TestApp) -> (Subjects, Targets) {
    let demo = app.demo.as_ref().expect("demo clinic");
    let north: SiteId = demo.sites[0].id;
    let (north_cohort, _, north_members) = &demo.cohorts[0];
    let (_, _, south_members) = &demo.cohorts[1];
    assert_eq!(north_cohort.site_id, north);
    let own = demo.patients[0].id;
    assert!(north_members.contains(&own));
    let cohort_mate = *north_members
        .iter()
        .find(|id| **id != own)
        .expect("a cohort mate");
    let north_without_cohort = demo
        .patients
        .iter()
        .find(|patient| patient.site_id == north && !north_members.contains(&patient.id))
        .expect("a NORTH patient outside the cohort")
        .id;
    let south_in_cohort = south_members[0];

    // A caregiver whose grant the patient revoked, and a program administrator of NORTH only.
    let (revoked, revoked_token) = app
        .account_with_roles(
            "revoked.caregiver",
            vec![RoleAssignment::new(Role::Caregiver, None).expect("valid")],
        )
        .await;
    let store = &app.database.database;
    let now = stillpoint_app::Clock::now(app.clock.as_ref());
    store
        .put_caregiver_grant(&CaregiverGrant {
            patient_id: own,
            caregiver: revoked.id,
            scopes: vec![CaregiverScope::Schedule],
            granted_at: now,
            revoked_at: None,
        })
        .await
        .expect("grant");
    assert!(
        store
            .revoke_caregiver_grant(own, revoked.id, now)
            .await
            .expect("revoke")
    );
    let (_, north_admin_token) = app
        .account_with_roles(
            "north.admin",
            vec![RoleAssignment::new(Role::ProgramAdministrator, Some(north)).expect("valid")],
        )
        .await;

    let mut tokens = vec![("anonymous", None)];
    for local in [
        "patient",
        "caregiver",
        "facilitator",
        "facilitator.south",
        "clinician",
        "clinician.south",
        "program.admin",
        "admin",
    ] {
        tokens.push((local, Some(app.api_token(local).await)));
    }
    tokens.push(("revoked.caregiver", Some(revoked_token)));
    tokens.push(("north.admin", Some(north_admin_token)));

    let targets = Targets {
        own,
        cohort_mate,
        north_without_cohort,
        south_in_cohort,
    };
    (Subjects { tokens }, targets)
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = app.client().get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    (response.status(), response.text().await.expect("body"))
}

/// Whether each subject may open each target's record, written out by hand from the care-team
/// rules: columns are own, cohort mate, NORTH without cohort, SOUTH in cohort.
const RECORD_MATRIX: &[(&str, [bool; 4])] = &[
    ("patient", [true, false, false, false]),
    ("caregiver", [true, false, false, false]),
    ("revoked.caregiver", [false, false, false, false]),
    // Leads the NORTH cohort.
    ("facilitator", [true, true, false, false]),
    // Leads the SOUTH cohort and co-facilitates the NORTH one.
    ("facilitator.south", [true, true, false, true]),
    ("clinician", [true, true, true, false]),
    ("clinician.south", [false, false, false, true]),
    ("program.admin", [true, true, true, true]),
    ("north.admin", [true, true, true, false]),
    ("admin", [false, false, false, false]),
];

async fn record_routes_follow_relationship(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "record_matrix").await else {
        return;
    };
    let (subjects, targets) = set_up(&app).await;
    let columns = [
        targets.own,
        targets.cohort_mate,
        targets.north_without_cohort,
        targets.south_in_cohort,
    ];

    for (subject, row) in RECORD_MATRIX {
        let token = subjects.token(subject);
        for (column, patient) in columns.iter().enumerate() {
            for path in [
                format!("/api/v1/patients/{patient}"),
                format!("/patients/{patient}"),
            ] {
                let (status, body) = get(&app, &path, token).await;
                let label = format!("{subject} → {path} (column {column})");
                if row[column] {
                    assert_eq!(status, StatusCode::OK, "{label}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{label}");
                    assert!(
                        !body.contains(&patient.to_string()) || path.starts_with("/patients"),
                        "{label}: the refusal names no data"
                    );
                }
            }
        }
    }

    // Anonymous requests get 401 everywhere.
    for patient in columns {
        for path in [
            format!("/api/v1/patients/{patient}"),
            format!("/patients/{patient}"),
        ] {
            assert_eq!(
                get(&app, &path, None).await.0,
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
    }

    // A caregiver gets the shared parts only, never the clinical record.
    let (_, body) = get(
        &app,
        &format!("/api/v1/patients/{}", targets.own),
        subjects.token("caregiver"),
    )
    .await;
    let record: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(record["access"], "caregiver");
    assert_eq!(
        record["shared_scopes"],
        serde_json::json!(["schedule", "practice"])
    );
    assert!(record.get("birth_date").is_none(), "{record}");
    assert!(record.get("conditions").is_none(), "{record}");

    // Lists that name patients are audited too: the caregiver's home page names the patient.
    let caregiver_id = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.has_role(Role::Caregiver))
        .expect("caregiver")
        .id;
    let (status, _) = get(&app, "/home", subjects.token("caregiver")).await;
    assert_eq!(status, StatusCode::OK);
    let listed = app
        .database
        .database
        .search_audit_events(
            &AuditFilter {
                patient: Some(targets.own),
                actor: Some(caregiver_id),
                ..AuditFilter::default()
            },
            100,
        )
        .await
        .expect("search")
        .into_iter()
        .any(|event| event.event.resource_type == "CaregiverGrant");
    assert!(listed, "the caregiver's list of shared patients is audited");
}

async fn every_route_follows_role(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "route_matrix").await else {
        return;
    };
    let (subjects, targets) = set_up(&app).await;
    let site_id = app.demo.as_ref().expect("demo").sites[0].id.to_string();
    let caregiver_id = app.demo.as_ref().expect("demo").accounts[0].id.to_string();
    let cohort = app.demo.as_ref().expect("demo").cohorts[0].0.id;
    let session_id = {
        use stillpoint_app::ports::ProgramStore as _;
        app.database
            .database
            .list_cohort_sessions(cohort)
            .await
            .expect("sessions")[0]
            .id
            .to_string()
    };

    for policy in ROUTES {
        // Signing out would end the sessions the other checks use; the policy table test covers
        // those routes.
        let ends_sessions = policy.path.starts_with("/sign-out")
            || (policy.method == "DELETE" && policy.path.starts_with("/api/v1/sessions"))
            || policy.path.contains("/revoke");
        let without_session = matches!(
            policy.access,
            Access::Public | Access::PathToken | Access::SecondStep
        );
        if ends_sessions || without_session {
            continue;
        }
        let path = policy
            .path
            .replace("{site_id}", &site_id)
            .replace("{patient_id}", &targets.own.to_string())
            .replace("{caregiver_id}", &caregiver_id)
            .replace("{cohort_id}", &cohort.to_string())
            .replace("{session_id}", &session_id)
            .replace("{curriculum_id}", "mbsr-online")
            .replace("{version}", "1")
            .replace("{index}", "0");
        let method: reqwest::Method = policy.method.parse().expect("method");

        for (subject, token) in &subjects.tokens {
            let mut request = app.client().request(method.clone(), app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if policy.method == "PUT" {
                request = request.json(&serde_json::json!({"language": "en"}));
            }
            let status = request.send().await.expect("request").status();
            let label = format!("{subject}: {} {}", policy.method, policy.path);
            assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{label}");
            if token.is_none() {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{label}");
            } else if !role_allows(policy.access, subject) {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label}");
            } else {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{label}");
            }
        }
    }
}

/// Returns whether `subject` may call a route of `access`, written out by hand for the matrix.
fn role_allows(access: Access, subject: &str) -> bool {
    let care_team = [
        "facilitator",
        "facilitator.south",
        "clinician",
        "clinician.south",
        "program.admin",
        "north.admin",
    ];
    match access {
        Access::Public | Access::PathToken | Access::SignedIn | Access::SecondStep => true,
        Access::Staff => care_team.contains(&subject) || subject == "admin",
        Access::CareTeam => care_team.contains(&subject),
        Access::Clinicians => subject.starts_with("clinician"),
        Access::Patients => subject == "patient",
        Access::Administrators => ["program.admin", "north.admin", "admin"].contains(&subject),
    }
}

async fn other_patients_ids_leak_nothing(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "id_probe").await else {
        return;
    };
    let (subjects, targets) = set_up(&app).await;
    let demo = app.demo.as_ref().expect("demo");
    let patient_token = subjects.token("patient");

    // Every demo patient but the patient's own, and random ids that belong to no one.
    let mut probed = 0;
    for other in demo
        .patients
        .iter()
        .filter(|patient| patient.id != targets.own)
    {
        for path in [
            format!("/api/v1/patients/{}", other.id),
            format!("/patients/{}", other.id),
        ] {
            let (status, body) = get(&app, &path, patient_token).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert!(!body.contains(&other.family_name), "{path} leaks a name");
            assert!(
                !body.contains(&other.birth_date.to_string()),
                "{path} leaks a birth date"
            );
            probed += 1;
        }
    }
    for _ in 0..50 {
        let unknown = uuid::Uuid::new_v4();
        let (status, _) = get(&app, &format!("/api/v1/patients/{unknown}"), patient_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        probed += 1;
    }
    for malformed in ["not-a-uuid", "1%27%20OR%201%3D1", "..%2F..%2Fetc"] {
        let (status, _) = get(
            &app,
            &format!("/api/v1/patients/{malformed}"),
            patient_token,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{malformed}");
    }
    assert!(probed > 140, "{probed} requests");

    // Every refused read of a real patient is in the audit trail as denied, naming the patient.
    let store = &app.database.database;
    let denied = store
        .search_audit_events(
            &AuditFilter {
                action: Some(AuditAction::Read),
                ..AuditFilter::default()
            },
            1000,
        )
        .await
        .expect("search")
        .into_iter()
        .filter(|event| {
            event.event.outcome == AuditOutcome::Denied && event.event.patient.is_some()
        })
        .count();
    assert!(
        denied >= 2 * (demo.patients.len() - 1),
        "{denied} denied reads recorded"
    );

    // The patient list shows each care team member exactly their patients.
    let (_, body) = get(&app, "/api/v1/patients", subjects.token("facilitator")).await;
    let list: Vec<Value> = serde_json::from_str(&body).expect("json");
    assert_eq!(list.len(), demo.cohorts[0].2.len(), "the NORTH cohort");
    let (_, body) = get(&app, "/api/v1/patients", subjects.token("clinician.south")).await;
    let list: Vec<Value> = serde_json::from_str(&body).expect("json");
    let south = demo.sites[1].id.to_string();
    assert!(!list.is_empty());
    assert!(
        list.iter()
            .all(|patient| patient["site_id"] == south.as_str())
    );
}

async fn revoked_grant_ends_access_at_once(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "revoke_grant").await else {
        return;
    };
    let own = app.demo.as_ref().expect("demo").patients[0].id;
    let caregiver = app.api_token("caregiver").await;
    let path = format!("/api/v1/patients/{own}");
    assert_eq!(get(&app, &path, Some(&caregiver)).await.0, StatusCode::OK);

    // The patient stops sharing on the sharing page.
    let patient = app.browser_session("patient").await;
    let (_, page) = {
        let response = patient
            .get(app.url("/sharing"))
            .send()
            .await
            .expect("request");
        (response.status(), response.text().await.expect("body"))
    };
    let caregiver_id = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.has_role(Role::Caregiver))
        .expect("caregiver")
        .id;
    assert!(
        page.contains(&format!("/sharing/{caregiver_id}/revoke")),
        "{page}"
    );
    let response = app
        .post_form(&patient, &format!("/sharing/{caregiver_id}/revoke"), &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get(&app, &path, Some(&caregiver)).await.0,
        StatusCode::FORBIDDEN
    );

    // Sharing again with chosen parts restores just those parts.
    let response = app
        .post_form(
            &patient,
            "/sharing",
            &[
                ("email", "caregiver@demo-clinic.example"),
                ("scope", "progress"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, body) = get(&app, &path, Some(&caregiver)).await;
    let record: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(record["shared_scopes"], serde_json::json!(["progress"]));

    // A bad request names the field and changes nothing.
    let response = app
        .post_form(
            &patient,
            "/sharing",
            &[
                ("email", "caregiver@demo-clinic.example"),
                ("scope", "diary"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, body) = get(&app, &path, Some(&caregiver)).await;
    let record: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(record["shared_scopes"], serde_json::json!(["progress"]));
}

async fn break_glass_is_limited_and_flagged(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "break_glass").await else {
        return;
    };
    let own = app.demo.as_ref().expect("demo").patients[0].id;
    let clinician = app.browser_session("clinician.south").await;
    let path = format!("/patients/{own}");

    let response = clinician.get(app.url(&path)).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("name=\"reason\"")
    );

    let glass = format!("/patients/{own}/break-glass");
    let short = app
        .post_form(&clinician, &glass, &[("reason", "urgent")])
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let opened = app
        .post_form(
            &clinician,
            &glass,
            &[(
                "reason",
                "Patient called the crisis line; her clinician is away",
            )],
        )
        .await;
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    let response = clinician.get(app.url(&path)).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("alert--warning")
    );

    // The access is flagged in the audit trail and shown to the program administrators.
    let flagged = app
        .database
        .database
        .search_audit_events(
            &AuditFilter {
                patient: Some(own),
                ..AuditFilter::default()
            },
            100,
        )
        .await
        .expect("search")
        .into_iter()
        .filter(|event| event.event.break_glass)
        .count();
    assert!(
        flagged >= 2,
        "the grant and the read are flagged: {flagged}"
    );
    let admin = app.browser_session("program.admin").await;
    let home = admin
        .get(app.url("/home"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(home.contains("her clinician is away"), "{home}");

    // Facilitators cannot break the glass, and the access ends after 60 minutes.
    let facilitator = app.api_token("facilitator").await;
    let response = app
        .client()
        .post(app.url(&glass))
        .bearer_auth(&facilitator)
        .form(&[("reason", "I would like to see this record please")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    app.clock.advance(SignedDuration::from_mins(61));
    let clinician = app.api_token("clinician.south").await;
    assert_eq!(
        get(&app, &format!("/api/v1/patients/{own}"), Some(&clinician))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

stillpoint_test_support::on_both_databases!(
    record_routes_follow_relationship,
    every_route_follows_role,
    other_patients_ids_leak_nothing,
    revoked_grant_ends_access_at_once,
    break_glass_is_limited_and_flagged,
);
