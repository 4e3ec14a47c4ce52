//! The patient's consent pages: the documents with their state, reading and signing one by typed
//! name, withdrawing, and the history of each.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::consent::{self, ConsentItem};
use stillpoint_domain::Language;
use stillpoint_domain::consent::{Block, ConsentState};

use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::viewer::SignedIn;

/// One document on the list page.
#[derive(Debug)]
pub struct ItemRow {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "consent_list.html")]
struct ListTemplate {
    layout: Layout,
    items: Vec<ItemRow>,
}

#[derive(Template)]
#[template(path = "consent_document.html")]
struct DocumentTemplate {
    layout: Layout,
    document_id: String,
    document_lang: String,
    title: String,
    state: String,
    blocks: Vec<Block>,
    version_line: String,
    can_sign: bool,
    can_withdraw: bool,
    history: Vec<String>,
    error: Option<String>,
    /// The name typed in a signature that was rejected, shown again for correction.
    typed_name: String,
}

#[derive(Debug, Deserialize)]
pub struct SignForm {
    #[serde(default)]
    signed_name: String,
    #[serde(default)]
    language: String,
}

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    reason: String,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let items = load(&state, &signed_in).await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/consent");
    let rows = items
        .iter()
        .map(|item| ItemRow {
            id: item.document.id.clone(),
            title: item.document.title.clone(),
            summary: item.document.summary.clone(),
            state: state_label(&layout.tr, item),
        })
        .collect();
    render(&ListTemplate {
        layout,
        items: rows,
    })
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(document_id): Path<String>,
) -> Result<Response, WebError> {
    render_document(&state, &signed_in, &document_id, "", None, StatusCode::OK).await
}

pub async fn sign(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(document_id): Path<String>,
    CheckedForm(form): CheckedForm<SignForm>,
) -> Result<Response, WebError> {
    let language = Language::parse(&form.language).unwrap_or_else(|_| {
        Language::parse(&signed_in.viewer.language).unwrap_or_else(|_| Language::english())
    });
    let outcome = consent::sign(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &state.consents,
        &signed_in.account,
        consent::Signature {
            document_id: &document_id,
            language: &language,
            typed_name: &form.signed_name,
        },
    )
    .await;
    finish(
        &state,
        &signed_in,
        &document_id,
        &form.signed_name,
        outcome.map(|_| ()),
    )
    .await
}

pub async fn withdraw(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(document_id): Path<String>,
    CheckedForm(form): CheckedForm<WithdrawForm>,
) -> Result<Response, WebError> {
    let outcome = consent::withdraw(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        &document_id,
        &form.reason,
    )
    .await;
    finish(&state, &signed_in, &document_id, "", outcome).await
}

async fn finish(
    state: &AppState,
    signed_in: &SignedIn,
    document_id: &str,
    typed_name: &str,
    outcome: Result<(), AppError>,
) -> Result<Response, WebError> {
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/consent/{document_id}")).into_response()),
        Err(AppError::Invalid(invalid)) => {
            render_document(
                state,
                signed_in,
                document_id,
                typed_name,
                Some(invalid.problem),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

async fn load(state: &AppState, signed_in: &SignedIn) -> Result<Vec<ConsentItem>, WebError> {
    let language =
        Language::parse(&signed_in.viewer.language).unwrap_or_else(|_| Language::english());
    Ok(consent::own_overview(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &state.consents,
        &signed_in.account,
        &language,
    )
    .await?)
}

async fn render_document(
    state: &AppState,
    signed_in: &SignedIn,
    document_id: &str,
    typed_name: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let items = load(state, signed_in).await?;
    let item = items
        .into_iter()
        .find(|item| item.document.id == document_id)
        .ok_or(WebError::NotFound)?;
    let layout = Layout::new(state, &signed_in.viewer, &format!("/consent/{document_id}"));
    let tr = &layout.tr;
    let zone = signed_in.account.time_zone.time_zone();
    let history = item
        .history
        .iter()
        .map(|record| {
            let when = |instant: jiff::Timestamp| {
                instant
                    .to_zoned_datetime(zone.clone())
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            };
            let mut line = format!(
                "{} · {} {} · {}",
                when(record.signed_at),
                tr.t("consent-version"),
                record.version,
                tr.t_with("consent-signed-as", "name", &record.signed_name)
            );
            if let Some(withdrawn) = record.withdrawn_at {
                line.push_str(" · ");
                line.push_str(&tr.t_with("consent-withdrawn-on", "when", &when(withdrawn)));
            }
            line
        })
        .collect();

    let mut response = render(&DocumentTemplate {
        document_id: item.document.id.clone(),
        document_lang: item.document.language.to_string(),
        title: item.document.title.clone(),
        state: state_label(tr, &item),
        blocks: item.document.body.clone(),
        version_line: format!(
            "{} {} · SHA-256 {}",
            tr.t("consent-version"),
            item.document.version,
            &item.document.content_hash[..16]
        ),
        can_sign: item.state != ConsentState::Current,
        can_withdraw: item.state == ConsentState::Current,
        history,
        error,
        typed_name: typed_name.to_owned(),
        layout,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

fn state_label(tr: &Translator, item: &ConsentItem) -> String {
    let id = match item.state {
        ConsentState::NotSigned if item.document.required => "consent-state-needed",
        ConsentState::NotSigned => "consent-state-optional",
        ConsentState::Current => "consent-state-current",
        ConsentState::Outdated => "consent-state-outdated",
        ConsentState::Withdrawn => "consent-state-withdrawn",
    };
    tr.t(id)
}
