//! The second sign-in step for staff: setting up an authenticator app, entering its one-time
//! code (or a recovery code), and renewing recovery codes.

use std::fmt::Write as _;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use qrcodegen::{QrCode, QrCodeEcc};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::audit::AuditContext;
use stillpoint_app::mfa::{self, SecondFactorStatus, Verified};
use stillpoint_domain::Account;

use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::{WebError, minutes_rounded_up};
use crate::viewer::{SignedIn, Viewer};

/// The QR code and key the set-up page shows for adding the account to an app.
#[derive(Debug)]
pub struct EnrolmentView {
    /// An inline SVG of the `otpauth://` URI.
    pub qr_svg: String,
    /// The secret in groups of four characters, for typing.
    pub grouped_key: String,
    /// The secret with spaces between characters, so screen readers spell it out.
    pub spelled_key: String,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorTemplate {
    layout: Layout,
    title: String,
    action: &'static str,
    code_hint: String,
    enrolment: Option<EnrolmentView>,
    error: Option<String>,
    /// The current code, shown only by the demo so visitors need no authenticator app.
    demo_code: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesTemplate {
    layout: Layout,
    codes: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Returns the account whose session awaits its second step, or the page to send a visitor who
/// has none.
fn awaiting(viewer: &Viewer) -> Result<Account, &'static str> {
    if let Some(account) = &viewer.awaiting_second_factor {
        return Ok(account.clone());
    }
    if viewer.account.is_some() {
        Err("/home")
    } else {
        Err("/sign-in")
    }
}

pub async fn show_verify(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let account = match awaiting(&viewer) {
        Ok(account) => account,
        Err(target) => return Ok(Redirect::to(target).into_response()),
    };
    if mfa::status(state.store.as_ref(), account.id).await? == SecondFactorStatus::NotEnrolled {
        return Ok(Redirect::to("/sign-in/authenticator").into_response());
    }
    render_verify(&state, &viewer, &account, None, StatusCode::OK).await
}

pub async fn submit_verify(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(form): CheckedForm<CodeForm>,
) -> Result<Response, WebError> {
    let account = match awaiting(&viewer) {
        Ok(account) => account,
        Err(target) => return Ok(Redirect::to(target).into_response()),
    };
    let token = viewer.session_token.clone().unwrap_or_default();
    let outcome = mfa::verify(
        crate::code_check(&state),
        &AuditContext::for_account(&account, viewer.source_address.clone()),
        &account,
        &token,
        &form.code,
    )
    .await;

    match outcome {
        Ok((Verified::AuthenticatorCode | Verified::RecoveryCode { .. }, token)) => {
            let cookie = signed_in_cookie(&state, &token);
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/home")).into_response())
        }
        Err(error) => {
            let (message, status, retry_after) = code_error(&viewer.translator(&state), error)?;
            let mut response =
                render_verify(&state, &viewer, &account, Some(message), status).await?;
            add_retry_after(&mut response, retry_after);
            Ok(response)
        }
    }
}

pub async fn show_enrolment(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let account = match awaiting(&viewer) {
        Ok(account) => account,
        Err(target) => return Ok(Redirect::to(target).into_response()),
    };
    if mfa::status(state.store.as_ref(), account.id).await? != SecondFactorStatus::NotEnrolled {
        return Ok(Redirect::to("/sign-in/verify").into_response());
    }
    render_enrolment(&state, &viewer, &account, None, StatusCode::OK).await
}

pub async fn submit_enrolment(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(form): CheckedForm<CodeForm>,
) -> Result<Response, WebError> {
    let account = match awaiting(&viewer) {
        Ok(account) => account,
        Err(target) => return Ok(Redirect::to(target).into_response()),
    };
    let token = viewer.session_token.clone().unwrap_or_default();
    let outcome = mfa::confirm_enrolment(
        crate::code_check(&state),
        &AuditContext::for_account(&account, viewer.source_address.clone()),
        &account,
        &token,
        &form.code,
    )
    .await;

    match outcome {
        Ok((codes, token)) => {
            // The session is fully signed in from here, under its new token, so the page is laid
            // out for it and its forms carry the new session's form token.
            let mut signed_in = viewer.clone();
            signed_in.account = Some(account);
            signed_in.awaiting_second_factor = None;
            signed_in.form_token = crate::csrf::form_token(
                viewer.form_seed.as_deref().unwrap_or_default(),
                Some(&token),
            );
            let mut response = render(&RecoveryCodesTemplate {
                layout: Layout::new(&state, &signed_in, "/sign-in/authenticator"),
                codes,
            })?;
            if let Ok(value) = HeaderValue::from_str(&signed_in_cookie(&state, &token)) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        Err(error) => {
            let (message, status, retry_after) = code_error(&viewer.translator(&state), error)?;
            let mut response =
                render_enrolment(&state, &viewer, &account, Some(message), status).await?;
            add_retry_after(&mut response, retry_after);
            Ok(response)
        }
    }
}

/// Replaces the signed-in account's recovery codes and shows the new ones once.
pub async fn renew_recovery_codes(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    let codes = mfa::renew_recovery_codes(
        state.store.as_ref(),
        &state.config.secrets,
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    render(&RecoveryCodesTemplate {
        layout: Layout::new(&state, &signed_in.viewer, "/account"),
        codes,
    })
}

async fn render_verify(
    state: &AppState,
    viewer: &Viewer,
    account: &Account,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let layout = Layout::new(state, viewer, "/sign-in/verify");
    let demo_code = demo_code(state, account).await?;
    let mut response = render(&SecondFactorTemplate {
        title: layout.tr.t("mfa-verify-title"),
        code_hint: layout.tr.t("mfa-verify-hint"),
        action: "/sign-in/verify",
        enrolment: None,
        error,
        demo_code,
        layout,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

async fn render_enrolment(
    state: &AppState,
    viewer: &Viewer,
    account: &Account,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let enrolment = mfa::enrolment(
        state.store.as_ref(),
        &state.config.secrets,
        state.clock.as_ref(),
        account,
        &state.config.clinic_name,
    )
    .await?;
    let demo_code = if state.config.demo_hints {
        Some(mfa::code_at(&enrolment.secret_base32, state.clock.now())?)
    } else {
        None
    };

    let layout = Layout::new(state, viewer, "/sign-in/authenticator");
    let mut response = render(&SecondFactorTemplate {
        title: layout.tr.t("mfa-setup-title"),
        code_hint: layout.tr.t("mfa-setup-hint"),
        action: "/sign-in/authenticator",
        enrolment: Some(EnrolmentView {
            qr_svg: qr_svg(&enrolment.otpauth_uri)?,
            grouped_key: group(&enrolment.secret_base32, 4, " "),
            spelled_key: group(&enrolment.secret_base32, 1, " "),
        }),
        error,
        demo_code,
        layout,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

/// Returns the current code of a demo account's authenticator, when the demo hints are on.
async fn demo_code(state: &AppState, account: &Account) -> Result<Option<String>, WebError> {
    if !state.config.demo_hints {
        return Ok(None);
    }
    let code = mfa::current_code(
        state.store.as_ref(),
        &state.config.secrets,
        account,
        state.clock.now(),
    )
    .await?;
    Ok(code)
}

/// Builds the session cookie for a session that passed the second step.
fn signed_in_cookie(state: &AppState, token: &str) -> String {
    super::session_cookie(
        Some(token),
        state.config.secure_cookies,
        state.config.session_policy.absolute.as_secs(),
    )
}

/// Returns the message, status and wait in seconds for a failed code.
fn code_error(
    tr: &crate::i18n::Translator,
    error: AppError,
) -> Result<(String, StatusCode, Option<i64>), WebError> {
    match error {
        AppError::InvalidOneTimeCode => {
            Ok((tr.t("mfa-code-invalid"), StatusCode::UNAUTHORIZED, None))
        }
        AppError::Throttled { retry_after } => {
            let seconds = retry_after.as_secs().max(1);
            let minutes = minutes_rounded_up(seconds).to_string();
            Ok((
                tr.t_with("sign-in-throttled", "minutes", &minutes),
                StatusCode::TOO_MANY_REQUESTS,
                Some(seconds),
            ))
        }
        other => Err(other.into()),
    }
}

fn add_retry_after(response: &mut Response, seconds: Option<i64>) {
    if let Some(seconds) = seconds
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// Splits `text` into groups of `size` characters joined by `separator`.
fn group(text: &str, size: usize, separator: &str) -> String {
    text.chars()
        .collect::<Vec<_>>()
        .chunks(size)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(separator)
}

/// Draws `text` as a QR code in SVG, one unit per module with a four-module quiet zone.
fn qr_svg(text: &str) -> Result<String, WebError> {
    let code = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|error| WebError::Internal(format!("QR code failed: {error:?}")))?;
    let size = code.size();
    let border = 4;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if code.get_module(x, y) {
                let _ = write!(path, "M{},{}h1v1h-1z", x + border, y + border);
            }
        }
    }
    let full = size + 2 * border;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {full} {full}\" width=\"220\" height=\"220\" aria-hidden=\"true\" focusable=\"false\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}
