//! The route policy table: every route is declared, undeclared routes are refused, and each
//! declared access level is enforced for anonymous, patient and administrator requests.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use serde_json::json;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};
use stillpoint_web::policy::{Access, ROUTES, enforce_route_policy, policy_for};
use tower::ServiceExt as _;

async fn token_for(app: &TestApp, local: &str) -> String {
    app.api_token(local).await
}

#[test]
fn every_documented_operation_has_a_policy() {
    let document = serde_json::to_value(stillpoint_web::openapi()).expect("serialisable");
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            let method = method.to_uppercase().parse().expect("HTTP method");
            assert!(
                policy_for(&method, path).is_some(),
                "{method} {path} has no declared policy"
            );
        }
    }
}

#[tokio::test]
async fn undeclared_route_is_refused() {
    let app = spawn_app(Dialect::Sqlite, Seed::Empty, "undeclared_route")
        .await
        .expect("sqlite");
    let router = Router::new()
        .route("/undeclared", get(|| async { "should never be served" }))
        .layer(axum::middleware::from_fn_with_state(
            app.state.clone(),
            enforce_route_policy,
        ))
        .with_state(app.state.clone());

    let response = router
        .oneshot(
            Request::get("/undeclared")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn declared_access_is_enforced() {
    let app = spawn_app(Dialect::Sqlite, Seed::DemoClinic, "declared_access")
        .await
        .expect("sqlite");
    let patient = token_for(&app, "patient").await;
    let administrator = token_for(&app, "program.admin").await;
    let site_id = app.demo.as_ref().expect("demo").sites[0].id.to_string();

    for policy in ROUTES {
        // Signing out would end the sessions the other checks use, and the policy is the same
        // as for any signed-in route.
        let ends_sessions = policy.path.starts_with("/sign-out")
            || (policy.method == "DELETE" && policy.path.starts_with("/api/v1/sessions"));
        if ends_sessions {
            continue;
        }
        let url = app.url(
            &policy
                .path
                .replace("{site_id}", &site_id)
                .replace("{file}", "missing.css"),
        );
        let method: reqwest::Method = policy.method.parse().expect("method");
        let call = |token: Option<&String>| {
            let mut request = app.client().request(method.clone(), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if policy.method == "PUT" {
                request = request.json(&json!({"language": "en"}));
            }
            request.send()
        };

        let anonymous = call(None).await.expect("request").status();
        let as_patient = call(Some(&patient)).await.expect("request").status();
        let as_administrator = call(Some(&administrator)).await.expect("request").status();
        let label = format!("{} {}", policy.method, policy.path);
        for status in [anonymous, as_patient, as_administrator] {
            assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{label}");
        }
        match policy.access {
            Access::Public => {}
            Access::SignedIn => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{label}");
                assert_ne!(as_patient, StatusCode::UNAUTHORIZED, "{label}");
                assert!(
                    as_administrator.is_success() || as_administrator.is_redirection(),
                    "{label}: {as_administrator}"
                );
            }
            Access::SecondStep => {
                // Without a session the step's pages send the visitor to the sign-in form, and
                // with a finished sign-in they send them home.
                assert!(anonymous.is_redirection(), "{label}: {anonymous}");
                assert!(as_patient.is_redirection(), "{label}: {as_patient}");
            }
            Access::Administrators => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{label}");
                assert_eq!(as_patient, StatusCode::FORBIDDEN, "{label}");
                assert!(as_administrator.is_success(), "{label}: {as_administrator}");
            }
        }
    }
}
