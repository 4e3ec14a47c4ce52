//! A patient's page for sharing parts of their program with caregivers, and stopping it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use stillpoint_app::AppError;
use stillpoint_app::care;
use stillpoint_domain::AccountId;
use stillpoint_domain::care_team::CaregiverScope;

use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::SignedIn;

/// One caregiver the patient shares with, or used to.
#[derive(Debug)]
pub struct GrantRow {
    pub caregiver: String,
    pub caregiver_id: String,
    pub email: String,
    pub scopes: String,
    pub active: bool,
}

/// A checkbox of the sharing form.
#[derive(Debug)]
pub struct ScopeOption {
    pub code: &'static str,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "sharing.html")]
struct SharingTemplate {
    layout: Layout,
    grants: Vec<GrantRow>,
    scopes: Vec<ScopeOption>,
    email: String,
    error: Option<String>,
}

/// The sharing form's fields as pairs, because the checkboxes repeat the `scope` field.
type ShareForm = Vec<(String, String)>;

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render_page(&state, &signed_in, "", &[], None, StatusCode::OK).await
}

pub async fn share(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(fields): CheckedForm<ShareForm>,
) -> Result<Response, WebError> {
    let email = field_values(&fields, "email")
        .next()
        .unwrap_or_default()
        .to_owned();
    let scopes: Result<Vec<CaregiverScope>, _> =
        field_values(&fields, "scope").map(str::parse).collect();
    let outcome = match scopes {
        Ok(scopes) => {
            care::grant_caregiver(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                &email,
                &scopes,
            )
            .await
        }
        Err(invalid) => Err(AppError::Invalid(invalid)),
    };

    match outcome {
        Ok(care::Sharing::Granted(_)) => Ok(Redirect::to("/sharing").into_response()),
        Ok(care::Sharing::Invited(link)) => {
            let layout = Layout::new(&state, &signed_in.viewer, "/sharing");
            let message = layout
                .tr
                .t_with("sharing-invited", "email", link.email.as_str());
            super::staff::done(
                &state,
                layout,
                "sharing-invited-title",
                message,
                Some(&link),
            )
        }
        Err(AppError::Invalid(invalid)) => {
            let checked: Vec<&str> = field_values(&fields, "scope").collect();
            render_page(
                &state,
                &signed_in,
                &email,
                &checked,
                Some(invalid.problem),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(caregiver_id): Path<String>,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    let caregiver: AccountId = caregiver_id.parse().map_err(|_| WebError::NotFound)?;
    care::revoke_caregiver(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        caregiver,
    )
    .await?;
    Ok(Redirect::to("/sharing").into_response())
}

fn field_values<'a>(
    fields: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    fields
        .iter()
        .filter(move |(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

async fn render_page(
    state: &AppState,
    signed_in: &SignedIn,
    email: &str,
    checked: &[&str],
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let grants = care::caregiver_grants(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    let layout = Layout::new(state, &signed_in.viewer, "/sharing");
    let tr = &layout.tr;
    let scope_label = |scope: CaregiverScope| tr.t(&format!("caregiver-scope-{}", scope.code()));

    let rows = grants
        .into_iter()
        .map(|view| GrantRow {
            caregiver: view.caregiver.display_name.clone(),
            caregiver_id: view.caregiver.id.to_string(),
            email: view.caregiver.email.to_string(),
            scopes: view
                .grant
                .scopes
                .iter()
                .map(|scope| scope_label(*scope))
                .collect::<Vec<_>>()
                .join(", "),
            active: view.grant.revoked_at.is_none(),
        })
        .collect();
    let scopes = CaregiverScope::ALL
        .into_iter()
        .map(|scope| ScopeOption {
            code: scope.code(),
            label: scope_label(scope),
            checked: checked.contains(&scope.code()),
        })
        .collect();

    let mut response = render(&SharingTemplate {
        layout,
        grants: rows,
        scopes,
        email: email.to_owned(),
        error,
    })?;
    *response.status_mut() = status;
    Ok(response)
}
