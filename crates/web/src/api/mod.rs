//! The JSON API under `/api/v1/`, described by an OpenAPI 3.1 document.
//!
//! Every API route is registered through `utoipa_axum::routes!`, which adds the route and its
//! documentation together, so the document at `/api/openapi.json` cannot miss a route.

mod account;
mod audit;
mod cohorts;
mod health;
mod measures;
mod patients;
mod sites;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{Problem, WebError};

pub use health::{healthz, readyz};
pub use measures::parse_step as parse_alert_step;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stillpoint API",
        description = "The JSON API of Stillpoint, a platform for virtual Mindfulness-Based Stress Reduction programs. Errors are RFC 9457 problem documents (application/problem+json).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(Problem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operations", description = "Health and readiness probes"),
        (name = "sessions", description = "Signing in and out"),
        (name = "account", description = "The signed-in account"),
        (name = "sites", description = "The clinic's sites"),
        (name = "patients", description = "Patients' records under the care-team rules"),
        (name = "cohorts", description = "Cohorts and their planned sessions"),
        (name = "measures", description = "Questionnaire responses, scores and safety alerts"),
        (name = "audit", description = "The audit trail of access to patient data"),
        (name = "locales", description = "Interface languages")
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::viewer::SESSION_COOKIE,
            ))),
        );
    }
}

/// The API routes with their documentation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(account::sign_in))
        .routes(routes!(account::sign_out))
        .routes(routes!(account::sign_out_everywhere))
        .routes(routes!(account::me))
        .routes(routes!(account::set_language))
        .routes(routes!(account::locales))
        .routes(routes!(sites::list_sites))
        .routes(routes!(sites::get_site))
        .routes(routes!(audit::search_audit_events))
        .routes(routes!(audit::record_access))
        .routes(routes!(patients::list_patients))
        .routes(routes!(patients::get_patient))
        .routes(routes!(cohorts::create_cohort))
        .routes(routes!(patients::get_enrolment, patients::move_enrolment))
        .routes(routes!(measures::submit_response, measures::list_responses))
        .routes(routes!(measures::list_alerts))
        .routes(routes!(measures::take_alert_step))
}

/// A JSON request body whose parse errors become problem documents naming what is wrong.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(WebError::Invalid {
                field: "body".to_owned(),
                message: match rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        "send the body as JSON with Content-Type: application/json".to_owned()
                    }
                    other => format!(
                        "{}; send a JSON object as the schema describes",
                        other.body_text()
                    ),
                },
            }),
        }
    }
}
