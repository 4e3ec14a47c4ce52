//! Administration of outcome measures: the instrument library with each instrument's licence,
//! recording the organisation's licence for one that needs it, and each site's safety settings
//! (crisis texts, staffed hours, the acknowledgement deadline, the backup clinician and score
//! thresholds).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::measures::{self, LicenceRequest};
use stillpoint_app::safety::{self, SettingsRequest};
use stillpoint_domain::measures::instrument::LicenceStatus;
use stillpoint_domain::notify::DeliveryState;
use stillpoint_domain::{Language, Role, SiteId};

use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::SignedIn;

/// One instrument in the library table.
#[derive(Debug)]
struct InstrumentLine {
    id: String,
    short_name: String,
    title: String,
    /// Free, needs a licence, or licensed (with holder and date).
    status: String,
    needs_licence: bool,
    citation: String,
    unverified: bool,
    notice: String,
    items: usize,
}

#[derive(Template)]
#[template(path = "instruments.html")]
struct InstrumentsTemplate {
    layout: Layout,
    instruments: Vec<InstrumentLine>,
    may_record: bool,
    languages: Vec<(String, String)>,
    error: Option<String>,
    saved: bool,
}

#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<SavedQuery>,
) -> Result<Response, WebError> {
    render_list(&state, &signed_in, None, query.saved.is_some()).await
}

async fn render_list(
    state: &AppState,
    signed_in: &SignedIn,
    error: Option<String>,
    saved: bool,
) -> Result<Response, WebError> {
    let licences = state.store.list_licences().await?;
    let layout = Layout::new(state, &signed_in.viewer, "/instruments");
    let language = Language::parse(&layout.lang).unwrap_or_else(|_| Language::english());
    let tr = &layout.tr;
    let instruments = state
        .measures
        .instruments()
        .map(|instrument| {
            let licence = licences
                .iter()
                .find(|licence| licence.instrument == instrument.id.as_str());
            let needs_licence = instrument.licence.status == LicenceStatus::PermissionRequired;
            let status = match (needs_licence, licence) {
                (false, _) => tr.t("instruments-free"),
                (true, None) => tr.t("instruments-needs-licence"),
                (true, Some(licence)) => tr.t_with(
                    "instruments-licensed",
                    "holder",
                    &format!(
                        "{} ({})",
                        licence.holder,
                        licence.recorded_at.strftime("%Y-%m-%d")
                    ),
                ),
            };
            InstrumentLine {
                id: instrument.id.to_string(),
                short_name: instrument.short_name.clone(),
                title: instrument
                    .title
                    .get(&language)
                    .or_else(|| instrument.title.get(&Language::english()))
                    .cloned()
                    .unwrap_or_default(),
                status,
                needs_licence,
                citation: instrument.citation.citation.clone(),
                unverified: !instrument.citation.verified,
                notice: instrument.licence.notice.clone(),
                items: instrument.items.len(),
            }
        })
        .collect();
    let languages = state
        .catalogs
        .offered()
        .into_iter()
        .map(|language| (language.tag.clone(), language.name.clone()))
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = render(&InstrumentsTemplate {
        may_record: signed_in.account.has_role(Role::SystemAdministrator),
        layout,
        instruments,
        languages,
        error,
        saved,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

pub async fn record_licence(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(instrument): Path<String>,
    CheckedForm(form): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let mut request = LicenceRequest {
        instrument,
        ..LicenceRequest::default()
    };
    for (name, value) in form {
        match name.as_str() {
            "holder" => request.holder = value,
            "reference" => request.reference = value,
            other => {
                if let Some(tag) = other.strip_prefix("item_text_") {
                    let language = Language::parse(tag)?;
                    request.item_text.insert(language, value);
                }
            }
        }
    }
    let recorded = measures::record_licence(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.measures,
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        request,
    )
    .await;
    match recorded {
        Ok(()) => Ok(Redirect::to("/instruments?saved=1").into_response()),
        Err(stillpoint_app::AppError::Invalid(invalid)) => {
            render_list(
                &state,
                &signed_in,
                Some(format!("{}: {}", invalid.field, invalid.problem)),
                false,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "site_safety.html")]
struct SafetyTemplate {
    layout: Layout,
    site_id: String,
    site_name: String,
    /// (tag, language name, configured text, default text)
    crisis: Vec<(String, String, String, String)>,
    /// (code, day name, staffed)
    days: Vec<(&'static str, String, bool)>,
    staffed_opens: String,
    staffed_closes: String,
    deadline_minutes: String,
    /// (account id, name, selected)
    clinicians: Vec<(String, String, bool)>,
    thresholds: String,
    error: Option<String>,
    saved: bool,
}

pub async fn show_safety(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(site): Path<String>,
    Query(query): Query<SavedQuery>,
) -> Result<Response, WebError> {
    let site: SiteId = site.parse().map_err(|_| WebError::NotFound)?;
    check_site_administrator(&signed_in, site)?;
    let settings = state.store.safety_settings(site).await?;
    let request = SettingsRequest {
        crisis_text: settings.crisis_text.clone(),
        staffed_days: settings.staffed_days.clone(),
        staffed_opens: settings.staffed_opens.clone(),
        staffed_closes: settings.staffed_closes.clone(),
        deadline_minutes: settings.deadline_minutes.to_string(),
        backup_clinician: settings.backup_clinician.map(|id| id.to_string()),
        thresholds: settings
            .thresholds
            .iter()
            .map(|threshold| {
                format!(
                    "{} {} {} {}",
                    threshold.instrument,
                    threshold.scale,
                    threshold.at_least,
                    threshold.level.code()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    render_safety(
        &state,
        &signed_in,
        site,
        &request,
        None,
        query.saved.is_some(),
    )
    .await
}

fn check_site_administrator(signed_in: &SignedIn, site: SiteId) -> Result<(), WebError> {
    if signed_in.account.administers_site(site) {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

async fn render_safety(
    state: &AppState,
    signed_in: &SignedIn,
    site: SiteId,
    request: &SettingsRequest,
    error: Option<String>,
    saved: bool,
) -> Result<Response, WebError> {
    let site_record = state.store.get_site(site).await?;
    let layout = Layout::new(state, &signed_in.viewer, "/sites");
    let crisis = state
        .catalogs
        .offered()
        .into_iter()
        .map(|offered| {
            let configured = Language::parse(&offered.tag)
                .ok()
                .and_then(|language| request.crisis_text.get(&language).cloned())
                .unwrap_or_default();
            let default = state.catalogs.format(&offered.tag, "crisis-default", None);
            (
                offered.tag.clone(),
                offered.name.clone(),
                configured,
                default,
            )
        })
        .collect();
    let selected = request.backup_clinician.clone().unwrap_or_default();
    let clinicians = state
        .store
        .list_accounts()
        .await?
        .into_iter()
        .filter(|account| {
            account.roles.iter().any(|assignment| {
                assignment.role == Role::Clinician && assignment.site_id == Some(site)
            })
        })
        .map(|account| {
            let id = account.id.to_string();
            let chosen = id == selected;
            (id, account.display_name, chosen)
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = render(&SafetyTemplate {
        site_id: site.to_string(),
        site_name: site_record.name,
        crisis,
        days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .into_iter()
            .map(|code| {
                let staffed = request
                    .staffed_days
                    .split(',')
                    .any(|day| day.trim() == code);
                (code, layout.tr.t(weekday_key(code)), staffed)
            })
            .collect(),
        staffed_opens: request.staffed_opens.clone(),
        staffed_closes: request.staffed_closes.clone(),
        deadline_minutes: request.deadline_minutes.clone(),
        clinicians,
        thresholds: request.thresholds.clone(),
        error,
        saved,
        layout,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

pub async fn save_safety(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(site): Path<String>,
    CheckedForm(form): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let site: SiteId = site.parse().map_err(|_| WebError::NotFound)?;
    check_site_administrator(&signed_in, site)?;
    let mut request = SettingsRequest::default();
    let mut days = Vec::new();
    let mut crisis_text = BTreeMap::new();
    for (name, value) in form {
        match name.as_str() {
            "staffed_day" => days.push(value),
            "staffed_opens" => request.staffed_opens = value,
            "staffed_closes" => request.staffed_closes = value,
            "deadline_minutes" => request.deadline_minutes = value,
            "backup_clinician" => request.backup_clinician = Some(value),
            "thresholds" => request.thresholds = value,
            other => {
                if let Some(tag) = other.strip_prefix("crisis_text_") {
                    crisis_text.insert(Language::parse(tag)?, value);
                }
            }
        }
    }
    request.staffed_days = days.join(",");
    request.crisis_text = crisis_text;
    let saved = safety::save_settings(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        site,
        request.clone(),
        &state.measures,
    )
    .await;
    match saved {
        Ok(()) => Ok(Redirect::to(&format!("/sites/{site}/safety?saved=1")).into_response()),
        Err(stillpoint_app::AppError::Invalid(invalid)) => {
            let message = format!("{}: {}", invalid.field, invalid.problem);
            render_safety(&state, &signed_in, site, &request, Some(message), false).await
        }
        Err(other) => Err(other.into()),
    }
}

/// The catalogue key of a day's name.
fn weekday_key(code: &str) -> &'static str {
    match code {
        "mon" => "weekday-monday",
        "tue" => "weekday-tuesday",
        "wed" => "weekday-wednesday",
        "thu" => "weekday-thursday",
        "fri" => "weekday-friday",
        "sat" => "weekday-saturday",
        _ => "weekday-sunday",
    }
}

/// One job in the delivery log.
#[derive(Debug)]
struct JobLine {
    id: i64,
    kind: String,
    state: String,
    attempts: u32,
    next: String,
    error: String,
    failed: bool,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsTemplate {
    layout: Layout,
    jobs: Vec<JobLine>,
    notice: Option<String>,
    deliveries: Vec<DeliveryRow>,
    /// Whether the deliveries shown are of one state only.
    filtered: bool,
    /// The reader's time zone, in which the times are shown.
    zone_name: String,
    /// (state code, label, selected)
    delivery_states: Vec<(&'static str, String, bool)>,
}

/// One line of the delivery log, as text.
struct DeliveryRow {
    recipient: String,
    kind: String,
    channel: String,
    state: String,
    failed: bool,
    attempts: u32,
    updated: String,
    detail: String,
}

#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    #[serde(default)]
    saved: Option<String>,
    /// Shows deliveries of one state only.
    #[serde(default)]
    state: Option<String>,
}

/// The delivery log: failed jobs (the dead-letter list) first, with a retry button each.
pub async fn jobs(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<JobsQuery>,
) -> Result<Response, WebError> {
    let jobs = stillpoint_app::jobs::job_log(state.store.as_ref(), &signed_in.account).await?;
    let filter = query
        .state
        .as_deref()
        .filter(|code| !code.is_empty())
        .map(DeliveryState::parse)
        .transpose()
        .map_err(AppError::from)?;
    let deliveries =
        stillpoint_app::notify::delivery_log(state.store.as_ref(), &signed_in.account, filter)
            .await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/jobs");
    let zone = signed_in.account.time_zone.time_zone();
    let mut lines: Vec<JobLine> = jobs
        .into_iter()
        .map(|job| JobLine {
            id: job.id,
            kind: job.kind,
            state: layout.tr.t(&format!("jobs-state-{}", job.state.code())),
            attempts: job.attempts,
            next: super::dates::short_date_time(job.next_attempt_at, &zone),
            error: job.last_error.unwrap_or_default(),
            failed: job.state == stillpoint_domain::jobs::JobState::Failed,
        })
        .collect();
    lines.sort_by_key(|line| !line.failed);
    let notice = query.saved.map(|_| layout.tr.t("jobs-retried"));
    let deliveries = deliveries
        .into_iter()
        .map(|line| delivery_row(&layout, &zone, line))
        .collect();
    let delivery_states = DeliveryState::ALL
        .into_iter()
        .map(|option| {
            (
                option.code(),
                layout.tr.t(&format!("deliveries-state-{}", option.code())),
                Some(option) == filter,
            )
        })
        .collect();
    render(&JobsTemplate {
        layout,
        jobs: lines,
        notice,
        deliveries,
        filtered: filter.is_some(),
        zone_name: signed_in.account.time_zone.to_string(),
        delivery_states,
    })
}

fn delivery_row(
    layout: &Layout,
    zone: &jiff::tz::TimeZone,
    line: stillpoint_app::notify::DeliveryLine,
) -> DeliveryRow {
    let delivery = line.delivery;
    let dashed = |code: &str| code.replace('_', "-");
    DeliveryRow {
        recipient: line.recipient,
        kind: layout
            .tr
            .t(&format!("deliveries-kind-{}", dashed(delivery.kind.code()))),
        channel: layout.tr.t(&format!(
            "notify-channel-{}",
            dashed(delivery.channel.code())
        )),
        state: layout
            .tr
            .t(&format!("deliveries-state-{}", delivery.state.code())),
        failed: delivery.state == DeliveryState::Failed,
        attempts: delivery.attempts,
        updated: super::dates::short_date_time(delivery.updated_at, zone),
        detail: delivery
            .error
            .or(delivery.provider_message_id)
            .unwrap_or_default(),
    }
}

pub async fn retry_job(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    stillpoint_app::jobs::retry_failed(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.account,
        id,
    )
    .await?;
    Ok(Redirect::to("/jobs?saved=1").into_response())
}
