//! The route policy table: every route is declared and undeclared routes are refused. The
//! authorization tests check each declared access level against every role.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, spawn_app};
use stillpoint_web::policy::{enforce_route_policy, policy_for};
use tower::ServiceExt as _;

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

#[test]
fn every_page_route_is_declared() {
    // Building the router checks each registered route against the policy table and panics on
    // the first one that has none.
    let _router = stillpoint_web::pages::router();
}

#[test]
#[should_panic(expected = "has no access policy")]
fn undeclared_page_route_stops_the_router() {
    use stillpoint_web::pages::DeclaredRoutes as _;

    let _router: Router<stillpoint_web::AppState> =
        Router::new().declared("/not-in-the-table", get(|| async { "never" }));
}
