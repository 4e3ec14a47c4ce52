//! The audit viewer for administrators, its CSV export, and the patient's record access report.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use jiff::tz::TimeZone;
use stillpoint_app::audit::{self, RecordAccess};
use stillpoint_domain::AccountId;
use stillpoint_domain::audit::{AuditAction, AuditEvent, AuditOutcome};

use super::{Layout, render};
use crate::AppState;
use crate::audit_view::{AuditQuery, search_events, to_csv};
use crate::error::WebError;
use crate::i18n::Translator;
use crate::viewer::SignedIn;

const ACTIONS: [AuditAction; 7] = [
    AuditAction::Read,
    AuditAction::Create,
    AuditAction::Update,
    AuditAction::Delete,
    AuditAction::SignIn,
    AuditAction::SignOut,
    AuditAction::SecondFactor,
];

struct AuditRow {
    instant: String,
    when: String,
    who: String,
    action: String,
    record: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditTemplate {
    layout: Layout,
    query: AuditQuery,
    actions: Vec<(&'static str, String)>,
    rows: Vec<AuditRow>,
    caption: String,
    csv_link: String,
}

fn local_time(instant: jiff::Timestamp, zone: &TimeZone) -> String {
    instant
        .to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn audit_row(
    stored: &AuditEvent,
    names: &HashMap<AccountId, String>,
    tr: &Translator,
    zone: &TimeZone,
) -> AuditRow {
    let event = &stored.event;
    let actor = event
        .actor
        .map(|id| names.get(&id).cloned().unwrap_or_else(|| id.to_string()));
    let who = match (actor, event.actor_role) {
        (Some(actor), Some(role)) => {
            format!("{actor} ({})", tr.t(&format!("role-{}", role.code())))
        }
        (Some(actor), None) => actor,
        (None, _) => tr.t("audit-anonymous"),
    };
    let record = match (&event.resource_id, event.patient) {
        (Some(id), _) => format!("{} {id}", event.resource_type),
        (None, Some(patient)) => format!("{} ({patient})", event.resource_type),
        (None, None) => event.resource_type.clone(),
    };
    let mut action = tr.t(&format!("audit-action-{}", event.action.code()));
    if event.break_glass {
        action = format!("{action} ({})", tr.t("audit-break-glass"));
    }
    AuditRow {
        instant: event.recorded_at.to_string(),
        when: local_time(event.recorded_at, zone),
        who,
        action,
        record,
        outcome: tr.t(&format!("audit-outcome-{}", event.outcome.code())),
    }
}

/// The query string of the current search, for the CSV link.
fn query_string(query: &AuditQuery) -> String {
    let pairs = [
        ("patient_id", &query.patient_id),
        ("account_id", &query.account_id),
        ("action", &query.action),
        ("from", &query.from),
        ("until", &query.until),
    ];
    pairs
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| {
            let encoded: String = value
                .trim()
                .bytes()
                .map(|byte| {
                    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
                        (byte as char).to_string()
                    } else {
                        format!("%{byte:02X}")
                    }
                })
                .collect();
            format!("{name}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let events = search_events(&state, &signed_in, &query).await?;

    let layout = Layout::new(&state, &signed_in.viewer, "/audit");
    let zone = signed_in.account.time_zone.time_zone();
    let actors: Vec<AccountId> = events
        .iter()
        .filter_map(|event| event.event.actor)
        .collect();
    let names = stillpoint_app::accounts::display_names(state.store.as_ref(), &actors).await?;
    let rows: Vec<AuditRow> = events
        .iter()
        .map(|event| audit_row(event, &names, &layout.tr, &zone))
        .collect();
    let caption = layout
        .tr
        .t_with("audit-caption", "count", &rows.len().to_string());
    let actions = ACTIONS
        .iter()
        .map(|action| {
            (
                action.code(),
                layout.tr.t(&format!("audit-action-{}", action.code())),
            )
        })
        .collect();
    let parameters = query_string(&query);
    let csv_link = if parameters.is_empty() {
        "/audit.csv".to_owned()
    } else {
        format!("/audit.csv?{parameters}")
    };
    render(&AuditTemplate {
        layout,
        query,
        actions,
        rows,
        caption,
        csv_link,
    })
}

pub async fn export_csv(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let events = search_events(&state, &signed_in, &query).await?;

    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"stillpoint-audit.csv\""),
            ),
        ],
        to_csv(&events),
    )
        .into_response())
}

struct AccessRow {
    instant: String,
    when: String,
    who: String,
    action: String,
}

#[derive(Template)]
#[template(path = "record_access.html")]
struct RecordAccessTemplate {
    layout: Layout,
    rows: Vec<AccessRow>,
}

fn access_row(access: &RecordAccess, tr: &Translator, zone: &TimeZone) -> AccessRow {
    let event = &access.event.event;
    let role = event
        .actor_role
        .map(|role| tr.t(&format!("role-{}", role.code())));
    let who = match (&access.actor_name, role) {
        (Some(name), Some(role)) => format!("{name} ({role})"),
        (Some(name), None) => name.clone(),
        (None, Some(role)) => role,
        (None, None) => tr.t("audit-anonymous"),
    };
    let mut action = tr.t(&format!("audit-action-{}", event.action.code()));
    if event.outcome != AuditOutcome::Success {
        action = tr.t_with("record-access-refused", "action", &action);
    }
    if event.break_glass {
        action.push_str(" · ");
        action.push_str(&tr.t("record-access-break-glass"));
    }
    AccessRow {
        instant: event.recorded_at.to_string(),
        when: local_time(event.recorded_at, zone),
        who,
        action,
    }
}

pub async fn record_access(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let context = signed_in.viewer.audit_context();
    let report = audit::record_access_report(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &signed_in.account,
    )
    .await?;

    let layout = Layout::new(&state, &signed_in.viewer, "/record-access");
    let zone = signed_in.account.time_zone.time_zone();
    let rows = report
        .iter()
        .map(|access| access_row(access, &layout.tr, &zone))
        .collect();
    render(&RecordAccessTemplate { layout, rows })
}
