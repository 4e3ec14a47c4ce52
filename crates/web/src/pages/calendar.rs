//! Private calendar feeds: the page that turns a feed on, replaces or turns it off, and the feed
//! itself, which calendar clients fetch with the secret token in its URL.

use askama::Template;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use stillpoint_app::calendar;
use stillpoint_app::ports::SessionStatus;
use stillpoint_domain::Language;

use super::cohorts::session_name;
use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::icalendar::{self, CalendarEvent};
use crate::viewer::{SignedIn, client_address};

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarTemplate {
    layout: Layout,
    /// When the current feed was created, if there is one.
    active_since: Option<String>,
    /// The feed's address, shown only right after it was created.
    new_url: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render_page(&state, &signed_in, None).await
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    let token = calendar::create_feed(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    let url = format!(
        "{}/calendar/{token}.ics",
        state.config.public_url.trim_end_matches('/')
    );
    render_page(&state, &signed_in, Some(url)).await
}

pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    calendar::revoke_feed(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    Ok(Redirect::to("/account/calendar").into_response())
}

async fn render_page(
    state: &AppState,
    signed_in: &SignedIn,
    new_url: Option<String>,
) -> Result<Response, WebError> {
    let layout = Layout::new(state, &signed_in.viewer, "/account/calendar");
    let zone = signed_in.account.time_zone.time_zone();
    let active_since = calendar::feed_created_at(state.store.as_ref(), &signed_in.account)
        .await?
        .map(|created| dates::long_date_time(&layout.tr, created, &zone));
    let mut response = render(&CalendarTemplate {
        layout,
        active_since,
        new_url,
    })?;
    // The page may show the secret address, which must not stay in caches.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Serves the feed for the token in the path (`<token>.ics`). Unknown or revoked tokens get 404.
pub async fn feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    let token = file.strip_suffix(".ics").ok_or(WebError::NotFound)?;
    let source = client_address(Some(peer.ip()), &headers, &state.config.trusted_proxies);
    let feed = calendar::feed(state.store.as_ref(), state.clock.as_ref(), source, token).await?;
    let tag = state
        .catalogs
        .closest(&feed.account.language)
        .unwrap_or_else(|| "en".to_owned());
    let tr = Translator::new(state.catalogs.clone(), tag.clone());
    let language = Language::parse(&tag).unwrap_or_else(|_| Language::english());
    let program_url = format!("{}/program", state.config.public_url.trim_end_matches('/'));

    let mut events = Vec::new();
    for cohort in &feed.cohorts {
        for session in &cohort.sessions {
            let theme = cohort
                .curriculum
                .as_ref()
                .and_then(|curriculum| {
                    curriculum
                        .session(session.planned.kind)
                        .map(|plan| curriculum.text(&plan.theme, &language).to_owned())
                })
                .unwrap_or_default();
            let name = session_name(&tr, session.planned.kind);
            events.push(CalendarEvent {
                uid: format!("{}@stillpoint", session.id),
                sequence: session.sequence,
                start: session.planned.start,
                end: session.planned.end,
                summary: if theme.is_empty() {
                    format!("{} · {name}", cohort.details.cohort.name)
                } else {
                    format!("{} · {name}: {theme}", cohort.details.cohort.name)
                },
                description: tr.t_with(
                    "calendar-event-description",
                    "clinic",
                    &state.config.clinic_name,
                ),
                url: program_url.clone(),
                cancelled: session.status == SessionStatus::Cancelled,
            });
        }
    }
    let body = icalendar::render(
        &format!("{} · {}", state.config.clinic_name, tr.t("calendar-name")),
        &events,
        state.clock.now(),
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}
