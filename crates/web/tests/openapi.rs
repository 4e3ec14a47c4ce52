//! The OpenAPI document at `/api/openapi.json` stays in step with the routes. It is OpenAPI 3.1,
//! every documented operation is routed, and each responds with one of its documented statuses.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stillpoint_app::demo::DEMO_PASSWORD;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, spawn_app};

/// A valid request body for each operation that takes one.
fn sample_body(method: &Method, path: &str) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/api/v1/sessions") => {
            Some(json!({"email": "admin@demo-clinic.example", "password": DEMO_PASSWORD}))
        }
        ("PUT", "/api/v1/me/language") => Some(json!({"language": "en"})),
        ("POST", "/api/v1/cohorts") => Some(json!({"name": "incomplete"})),
        ("POST", "/api/v1/patients/{patient_id}/enrolment") => {
            Some(json!({"action": "start_screening"}))
        }
        _ => None,
    }
}

/// Every path the API documents.
const EXPECTED_PATHS: [&str; 18] = [
    "/healthz",
    "/readyz",
    "/api/v1/sessions",
    "/api/v1/sessions/current",
    "/api/v1/me",
    "/api/v1/me/language",
    "/api/v1/locales",
    "/api/v1/sites",
    "/api/v1/sites/{site_id}",
    "/api/v1/audit-events",
    "/api/v1/me/record-access",
    "/api/v1/patients",
    "/api/v1/patients/{patient_id}",
    "/api/v1/patients/{patient_id}/enrolment",
    "/api/v1/cohorts",
    "/api/v1/patients/{patient_id}/responses",
    "/api/v1/alerts",
    "/api/v1/alerts/{alert_id}/steps",
];

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let app = spawn_app(Dialect::Sqlite, Seed::DemoClinic, "openapi")
        .await
        .expect("sqlite");
    let client = app.client();
    let document: Value = client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1."),
        "{}",
        document["openapi"]
    );

    let paths = document["paths"].as_object().expect("paths");
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented.sort_unstable();
    let mut expected = EXPECTED_PATHS.to_vec();
    expected.sort_unstable();
    assert_eq!(
        documented, expected,
        "a route was added or removed without its documentation"
    );

    let token = app.api_token("program.admin").await;
    let site_id = app.demo.as_ref().expect("demo").sites[0].id.to_string();
    let patient_id = app.demo.as_ref().expect("demo").patients[0].id.to_string();

    let mut checked = 0;
    for (path, operations) in paths {
        for (method_name, operation) in operations.as_object().expect("operations") {
            let method: Method = method_name.to_uppercase().parse().expect("HTTP method");
            // Signing out would end the token the other checks use; both are checked last.
            if method == Method::DELETE {
                continue;
            }
            let status = call(
                &client,
                &app.url(
                    &path
                        .replace("{site_id}", &site_id)
                        .replace("{patient_id}", &patient_id),
                ),
                &method,
                path,
                &token,
            )
            .await;
            assert_documented(operation, status, &method, path);
            checked += 1;
        }
    }

    let everywhere = &paths["/api/v1/sessions"]["delete"];
    let status = call(
        &client,
        &app.url("/api/v1/sessions"),
        &Method::DELETE,
        "/api/v1/sessions",
        &token,
    )
    .await;
    assert_documented(everywhere, status, &Method::DELETE, "/api/v1/sessions");
    let token = app.api_token("program.admin").await;

    let sign_out = &paths["/api/v1/sessions/current"]["delete"];
    let status = call(
        &client,
        &app.url("/api/v1/sessions/current"),
        &Method::DELETE,
        "/api/v1/sessions/current",
        &token,
    )
    .await;
    assert_documented(
        sign_out,
        status,
        &Method::DELETE,
        "/api/v1/sessions/current",
    );
    assert_eq!(checked + 2, 21, "every documented operation was called");
}

async fn call(
    client: &reqwest::Client,
    url: &str,
    method: &Method,
    path: &str,
    token: &str,
) -> StatusCode {
    let mut request = client.request(method.clone(), url).bearer_auth(token);
    if let Some(body) = sample_body(method, path) {
        request = request.json(&body);
    }
    request.send().await.expect("request").status()
}

fn assert_documented(operation: &Value, status: StatusCode, method: &Method, path: &str) {
    assert_ne!(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{method} {path} is documented but not routed"
    );
    let documented: Vec<&String> = operation["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .collect();
    assert!(
        documented
            .iter()
            .any(|code| code.as_str() == status.as_str()),
        "{method} {path} answered {status}, which its documentation ({documented:?}) does not list"
    );
}

#[tokio::test]
async fn openapi_document_declares_problem_and_security_schemes() {
    let document = serde_json::to_value(stillpoint_web::openapi()).expect("serialisable");
    assert!(document["components"]["schemas"]["Problem"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["securitySchemes"]["session_cookie"].is_object());
    assert_eq!(
        document["paths"]["/api/v1/sites"]["get"]["responses"]["403"]["content"]
            .as_object()
            .map(|content| content.contains_key("application/problem+json")),
        Some(true)
    );
}
