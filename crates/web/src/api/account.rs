//! Signing in and out, the signed-in account, and the interface languages.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use stillpoint_app::audit::AuditContext;
use stillpoint_app::{AppError, accounts, auth, mfa};
use stillpoint_domain::Account;
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::error::{Problem, WebError};
use crate::pages::session_cookie;
use crate::viewer::{SignedIn, Viewer};

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignInRequest {
    email: String,
    password: String,
    /// The current code from the authenticator app, or a recovery code. Required for staff
    /// accounts; the authenticator is set up in the browser at the first sign-in.
    #[serde(default)]
    one_time_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleBody {
    /// One of `patient`, `caregiver`, `facilitator`, `clinician`, `program_administrator`,
    /// `system_administrator`.
    role: String,
    /// The site the role is held at, for site-scoped staff roles.
    site_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountBody {
    id: String,
    email: String,
    display_name: String,
    /// BCP 47 tag of the preferred interface language.
    language: String,
    /// IANA time zone name.
    time_zone: String,
    roles: Vec<RoleBody>,
    /// For a patient's account: the site responsible for the patient's care.
    #[serde(skip_serializing_if = "Option::is_none")]
    care_site_id: Option<String>,
    /// For a patient's account: the id of their own record, for submitting responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    patient_id: Option<String>,
}

impl From<&Account> for AccountBody {
    fn from(account: &Account) -> Self {
        Self {
            id: account.id.to_string(),
            email: account.email.to_string(),
            display_name: account.display_name.clone(),
            language: account.language.to_string(),
            time_zone: account.time_zone.to_string(),
            roles: account
                .roles
                .iter()
                .map(|assignment| RoleBody {
                    role: assignment.role.code().to_owned(),
                    site_id: assignment.site_id.map(|site| site.to_string()),
                })
                .collect(),
            care_site_id: None,
            patient_id: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignInResponse {
    /// The session token, for `Authorization: Bearer`. The same token is set as the session
    /// cookie.
    token: String,
    /// RFC 3339 instant at which the session ends at the latest.
    expires_at: String,
    account: AccountBody,
}

/// Signs in with an e-mail address and password.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions",
    request_body = SignInRequest,
    responses(
        (status = 201, description = "Signed in", body = SignInResponse),
        (status = 401, description = "Wrong e-mail address, password or one-time code (`second_factor_required` when a staff account sent no code)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed request, or a staff account without an authenticator app (set it up by signing in with a browser)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiJson(request): ApiJson<SignInRequest>,
) -> Result<Response, WebError> {
    let session = auth::sign_in(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.config.session_policy,
        &viewer.audit_context(),
        &request.email,
        &request.password,
    )
    .await?;
    let token = if session.awaiting_second_factor {
        pass_second_step(&state, &viewer, &session, request.one_time_code.as_deref()).await?
    } else {
        session.token.clone()
    };

    let cookie = session_cookie(
        Some(&token),
        state.config.secure_cookies,
        state.config.session_policy.absolute.as_secs(),
    );
    let body = SignInResponse {
        expires_at: session.expires_at.to_string(),
        account: AccountBody::from(&session.account),
        token,
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(body),
    )
        .into_response())
}

/// Completes the second sign-in step with the code the client sent and returns the token of the
/// fully signed-in session. Without a code, or with a wrong one, the new session is ended, so no
/// half-signed-in session is left behind.
async fn pass_second_step(
    state: &AppState,
    viewer: &Viewer,
    session: &auth::NewSession,
    code: Option<&str>,
) -> Result<String, WebError> {
    let context = AuditContext::for_account(&session.account, viewer.source_address.clone());
    let outcome = match code {
        None => Err(WebError::SecondFactorRequired),
        Some(code) => mfa::verify(
            crate::code_check(state),
            &context,
            &session.account,
            &session.token,
            code,
        )
        .await
        .map(|(_, token)| token)
        .map_err(|error| match error {
            AppError::Forbidden => WebError::Invalid {
                field: "one_time_code".to_owned(),
                message: "this account has no authenticator app yet; sign in with a browser once to set it up".to_owned(),
            },
            other => other.into(),
        }),
    };
    if outcome.is_err() {
        auth::sign_out(
            state.store.as_ref(),
            state.clock.as_ref(),
            &context,
            &session.token,
        )
        .await?;
    }
    outcome
}

/// Ends the current session.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "sessions",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    if let Some(token) = &signed_in.viewer.session_token {
        let context = signed_in.viewer.audit_context();
        auth::sign_out(state.store.as_ref(), state.clock.as_ref(), &context, token).await?;
    }

    let cookie = session_cookie(None, state.config.secure_cookies, 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Ends every session of the signed-in account, on every device.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "sessions",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "All sessions ended"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let context = signed_in.viewer.audit_context();
    auth::sign_out_everywhere(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &signed_in.account,
    )
    .await?;

    let cookie = session_cookie(None, state.config.secure_cookies, 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The account", body = AccountBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn me(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<AccountBody>, WebError> {
    let care_site = stillpoint_app::patients::care_site_of(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;

    let patient =
        stillpoint_app::patients::own_record_id(state.store.as_ref(), &signed_in.account).await?;

    let mut body = AccountBody::from(&signed_in.account);
    body.care_site_id = care_site.map(|site| site.to_string());
    body.patient_id = patient.map(|id| id.to_string());
    Ok(Json(body))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LanguageRequest {
    /// BCP 47 tag of an offered language, for example `es`. A regional tag such as `es-MX`
    /// selects the offered language with the same primary subtag.
    language: String,
}

/// Sets the signed-in account's interface language.
#[utoipa::path(put, path = "/api/v1/me/language", tag = "account",
    security(("bearer" = []), ("session_cookie" = [])),
    request_body = LanguageRequest,
    responses(
        (status = 200, description = "The updated account", body = AccountBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an offered language", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn set_language(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(request): ApiJson<LanguageRequest>,
) -> Result<Json<AccountBody>, WebError> {
    let language = state
        .catalogs
        .offered_language("language", &request.language)
        .map_err(stillpoint_app::AppError::from)?;

    let account = accounts::set_language(state.store.as_ref(), signed_in.account, language).await?;
    Ok(Json(AccountBody::from(&account)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocaleBody {
    /// BCP 47 tag.
    tag: String,
    /// The language's name in itself.
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocalesBody {
    /// The language of this response, chosen from the account, cookie or Accept-Language.
    current: String,
    offered: Vec<LocaleBody>,
}

/// The interface languages on offer.
#[utoipa::path(get, path = "/api/v1/locales", tag = "locales",
    responses((status = 200, description = "Offered languages", body = LocalesBody)))]
pub async fn locales(State(state): State<AppState>, viewer: Viewer) -> Json<LocalesBody> {
    Json(LocalesBody {
        current: viewer.language,
        offered: state
            .catalogs
            .offered()
            .into_iter()
            .map(|language| LocaleBody {
                tag: language.tag,
                name: language.name,
            })
            .collect(),
    })
}
