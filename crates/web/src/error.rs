//! The web layer's one error type. It becomes an RFC 9457 problem document for the JSON API and
//! an error page in the visitor's language for pages. The detail of a server fault is logged
//! once, with the request id; the request log line adds only the status.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use stillpoint_app::{AppError, StorageError};
use utoipa::ToSchema;

use crate::AppState;
use crate::viewer::ViewerInputs;

/// Every way a request can fail, as the web layer reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("sign-in required")]
    SignInRequired,
    /// The session passed the password step but not the one-time code.
    #[error("second sign-in step required")]
    SecondFactorRequired,
    #[error("one-time code invalid")]
    InvalidOneTimeCode,
    /// A move along the enrolment pathway that the patient's state does not allow.
    #[error("enrolment transition not allowed")]
    TransitionNotAllowed { message: String },
    /// A single-use link that is unknown, used or expired.
    #[error("link not usable")]
    LinkUnusable { used: bool, expired: bool },
    #[error("forbidden")]
    Forbidden,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed sign-in attempts")]
    Throttled { retry_after_seconds: i64 },
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    #[error("cross-origin request rejected")]
    CrossOrigin,
    /// A form arrived without the hidden token of a page this browser was shown.
    #[error("form token missing or wrong")]
    FormExpired,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("the request timed out")]
    TimedOut,
    /// An error response made by the framework or a layer (405, 413, 415…), not by a handler.
    #[error("HTTP {0}")]
    Http(StatusCode),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for WebError {
    fn from(error: StorageError) -> Self {
        AppError::Storage(error).into()
    }
}

impl From<stillpoint_domain::InvalidValue> for WebError {
    fn from(invalid: stillpoint_domain::InvalidValue) -> Self {
        AppError::Invalid(invalid).into()
    }
}

impl From<AppError> for WebError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(invalid) => Self::Invalid {
                field: invalid.field.to_owned(),
                message: invalid.problem,
            },
            AppError::InvalidCredentials => Self::InvalidCredentials,
            AppError::InvalidOneTimeCode => Self::InvalidOneTimeCode,
            error @ AppError::TransitionNotAllowed { .. } => Self::TransitionNotAllowed {
                message: error.to_string(),
            },
            AppError::LinkInvalid => Self::LinkUnusable {
                used: false,
                expired: false,
            },
            AppError::LinkUsed => Self::LinkUnusable {
                used: true,
                expired: false,
            },
            AppError::LinkExpired => Self::LinkUnusable {
                used: false,
                expired: true,
            },
            AppError::Throttled { retry_after } => Self::Throttled {
                retry_after_seconds: retry_after.as_secs().max(1),
            },
            AppError::SessionEnded => Self::SignInRequired,
            AppError::Forbidden => Self::Forbidden,
            AppError::Storage(StorageError::NotFound { .. }) => Self::NotFound,
            AppError::Storage(StorageError::Conflict { constraint }) => {
                Self::Conflict { constraint }
            }
            AppError::Storage(StorageError::Unavailable(detail)) => Self::Unavailable(detail),
            AppError::Storage(StorageError::Corrupt(detail)) | AppError::Internal(detail) => {
                Self::Internal(detail)
            }
        }
    }
}

/// An RFC 9457 problem details document. `type` is `about:blank` throughout, so `title` is the
/// HTTP status phrase; `code` is a stable machine-readable reason and `field` names the input
/// that failed validation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl WebError {
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound
            | Self::LinkUnusable {
                used: false,
                expired: false,
            } => StatusCode::NOT_FOUND,
            Self::LinkUnusable { .. } => StatusCode::GONE,
            Self::SignInRequired
            | Self::SecondFactorRequired
            | Self::InvalidCredentials
            | Self::InvalidOneTimeCode => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::CrossOrigin | Self::FormExpired => StatusCode::FORBIDDEN,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict { .. } | Self::TransitionNotAllowed { .. } => StatusCode::CONFLICT,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::TimedOut => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Http(status) => *status,
        }
    }

    /// A stable code for API clients.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::SignInRequired => "sign_in_required",
            Self::SecondFactorRequired => "second_factor_required",
            Self::InvalidOneTimeCode => "invalid_one_time_code",
            Self::LinkUnusable { used: true, .. } => "link_used",
            Self::LinkUnusable { expired: true, .. } => "link_expired",
            Self::LinkUnusable { .. } => "link_invalid",
            Self::Forbidden => "forbidden",
            Self::Invalid { .. } => "invalid_value",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Throttled { .. } => "too_many_attempts",
            Self::Conflict { .. } => "conflict",
            Self::TransitionNotAllowed { .. } => "transition_not_allowed",
            Self::CrossOrigin => "cross_origin",
            Self::FormExpired => "form_expired",
            Self::Unavailable(_) => "unavailable",
            Self::TimedOut => "timed_out",
            Self::Internal(_) => "internal",
            Self::Http(_) => "http",
        }
    }

    /// The message shown to the user. Server faults get a generic text: their detail is for
    /// the log, not the browser.
    #[must_use]
    pub fn public_detail(&self) -> String {
        match self {
            Self::NotFound => "No resource exists at this address.".to_owned(),
            Self::SignInRequired => "Sign in to continue.".to_owned(),
            Self::LinkUnusable { used: true, .. } => {
                "This link was used already. Ask the clinic for a new one.".to_owned()
            }
            Self::LinkUnusable { expired: true, .. } => {
                "This link has expired. Ask the clinic for a new one.".to_owned()
            }
            Self::LinkUnusable { .. } => {
                "This link is not valid. Check that it was copied whole, or ask the clinic for a new one.".to_owned()
            }
            Self::SecondFactorRequired => {
                "Enter the one-time code from your authenticator app to finish signing in.".to_owned()
            }
            Self::InvalidOneTimeCode => {
                "The code is incorrect or was used already. Enter the current code from your authenticator app, or a recovery code.".to_owned()
            }
            Self::Forbidden => "Your account may not do this.".to_owned(),
            Self::Invalid { field, message } => format!("{field}: {message}"),
            Self::InvalidCredentials => "The e-mail address or password is incorrect.".to_owned(),
            Self::Throttled { retry_after_seconds } => format!(
                "Too many failed sign-in attempts. Wait {} minute(s) before trying again; if the password is forgotten, contact the clinic.",
                minutes_rounded_up(*retry_after_seconds)
            ),
            Self::TransitionNotAllowed { message } => format!("{message}."),
            Self::Conflict { constraint } => {
                format!("The change conflicts with existing data ({constraint}).")
            }
            Self::FormExpired => {
                "This form has expired or did not come from this site. Go back, reload the page and submit it again."
                    .to_owned()
            }
            Self::CrossOrigin => {
                "The request came from another site and was rejected; submit the form from Stillpoint itself."
                    .to_owned()
            }
            Self::Unavailable(_) => "The service is temporarily unavailable; try again shortly.".to_owned(),
            Self::TimedOut => "The request took too long and was stopped; try again shortly.".to_owned(),
            Self::Internal(_) => "An internal error occurred; it has been logged.".to_owned(),
            Self::Http(status) => format!(
                "The request could not be handled ({}).",
                status.canonical_reason().unwrap_or("error")
            ),
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.public_detail(),
            code: self.code(),
            field: match self {
                Self::Invalid { field, .. } => Some(field.clone()),
                _ => None,
            },
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::Throttled {
            retry_after_seconds,
        } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            // RFC 9110 section 11.6.1: a 401 names the authentication scheme to use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stillpoint\""),
            );
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Logs a server fault once and turns the error response of a page route into an HTML page; API
/// routes (`/api/…`) keep their problem documents. `kept_headers` and `uri` are the request's,
/// copied before the handler ran.
pub async fn render_error_response(
    state: &AppState,
    kept_headers: &HeaderMap,
    uri: &Uri,
    response: Response,
) -> Response {
    let Some(error) = error_of(&response) else {
        return response;
    };
    let path = uri.path();
    let request_id = kept_headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();

    match &error {
        WebError::Internal(detail) => {
            tracing::error!(request_id, error = %detail, "request failed");
        }
        WebError::Unavailable(detail) => {
            tracing::warn!(request_id, error = %detail, "database unavailable");
        }
        WebError::TimedOut => tracing::warn!(request_id, "request timed out"),
        _ => {}
    }
    let made_by_layer = response.extensions().get::<WebError>().is_none();
    if path.starts_with("/api/") || wants_json(path) {
        return if made_by_layer {
            error.into_response()
        } else {
            response
        };
    }

    // With the database unreachable, looking the session up again would only wait for it.
    let inputs = ViewerInputs::from_headers(kept_headers, state.config.secure_cookies);
    let inputs = match error {
        WebError::Unavailable(_) | WebError::TimedOut => inputs.without_session(),
        _ => inputs,
    };
    let viewer = inputs.resolve(state).await;
    crate::pages::error_page(state, &viewer, path, &error, &request_id)
}

/// The error a response carries: the one a handler returned, or, for an error status that a
/// layer or the framework produced as plain text or an empty body (405, 413, 415…), a generic
/// one. Responses that already have a designed body, such as the sign-in form after a wrong
/// password or the readiness report, are left alone.
fn error_of(response: &Response) -> Option<WebError> {
    if let Some(error) = response.extensions().get::<WebError>() {
        return Some(error.clone());
    }
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.starts_with("text/plain"));
    ((status.is_client_error() || status.is_server_error()) && plain)
        .then_some(WebError::Http(status))
}

/// Whole minutes, rounded up, for telling people how long to wait.
#[must_use]
pub fn minutes_rounded_up(seconds: i64) -> i64 {
    (seconds + 59) / 60
}

fn wants_json(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}
