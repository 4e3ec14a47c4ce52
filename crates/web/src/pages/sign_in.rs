//! Signing in and out with the HTML forms.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::{AppError, auth};

use super::{Layout, render, session_cookie};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::{WebError, minutes_rounded_up};
use crate::viewer::{SignedIn, Viewer};

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInTemplate {
    layout: Layout,
    email: String,
    error: Option<String>,
    /// Whether the error concerns the password too (wrong credentials), not only the address.
    password_invalid: bool,
}

/// The fields of the sign-in form. Missing fields arrive as empty strings so that they get the
/// same plain message as wrong ones.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    if viewer.account.is_some() {
        return Ok(Redirect::to("/home").into_response());
    }

    let layout = Layout::new(&state, &viewer, "/sign-in");
    render(&SignInTemplate {
        layout,
        email: String::new(),
        error: None,
        password_invalid: false,
    })
}

pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(form): CheckedForm<SignInForm>,
) -> Result<Response, WebError> {
    let outcome = auth::sign_in(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.config.session_policy,
        &viewer.audit_context(),
        &form.email,
        &form.password,
    )
    .await;

    let layout = Layout::new(&state, &viewer, "/sign-in");
    let (error, status, retry_after) = match outcome {
        Ok(session) => {
            let cookie = session_cookie(
                Some(&session.token),
                state.config.secure_cookies,
                state.config.session_policy.absolute.as_secs(),
            );
            let next = if session.awaiting_second_factor {
                "/sign-in/verify"
            } else {
                "/home"
            };
            return Ok(([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response());
        }
        Err(AppError::InvalidCredentials) => (
            layout.tr.t("sign-in-failed"),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        Err(AppError::Invalid(_)) => (
            layout.tr.t("sign-in-invalid-email"),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        Err(AppError::Throttled { retry_after }) => {
            let seconds = retry_after.as_secs().max(1);
            let minutes = minutes_rounded_up(seconds).to_string();
            let message = layout.tr.t_with("sign-in-throttled", "minutes", &minutes);
            (message, StatusCode::TOO_MANY_REQUESTS, Some(seconds))
        }
        Err(other) => return Err(other.into()),
    };

    let mut response = render(&SignInTemplate {
        layout,
        email: form.email.trim().to_owned(),
        error: Some(error),
        password_invalid: status == StatusCode::UNAUTHORIZED,
    })?;
    *response.status_mut() = status;
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

/// The body of forms that carry nothing but their token.
#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

pub async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(_form): CheckedForm<EmptyForm>,
) -> Result<Response, WebError> {
    if let Some(token) = &viewer.session_token {
        auth::sign_out(
            state.store.as_ref(),
            state.clock.as_ref(),
            &viewer.audit_context(),
            token,
        )
        .await?;
    }

    Ok(signed_out(&state))
}

/// Clears the session cookie and the browser's HTTP cache for this site (the `Clear-Site-Data`
/// header of the W3C specification of that name), then returns to the start page.
fn signed_out(state: &AppState) -> Response {
    let cookie = session_cookie(None, state.config.secure_cookies, 0);
    (
        [
            (header::SET_COOKIE, cookie),
            (
                header::HeaderName::from_static("clear-site-data"),
                "\"cache\"".to_owned(),
            ),
        ],
        Redirect::to("/"),
    )
        .into_response()
}

/// Ends every session of the account, including this one, and returns to the start page.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(_form): CheckedForm<EmptyForm>,
) -> Result<Response, WebError> {
    let context = signed_in.viewer.audit_context();
    auth::sign_out_everywhere(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &signed_in.account,
    )
    .await?;

    Ok(signed_out(&state))
}
