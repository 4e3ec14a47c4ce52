//! Server-rendered pages. Each handler reads as: extract → call one use case → render.

mod audit;
mod calendar;
mod cohort_practice;
mod cohort_sessions;
mod cohorts;
mod consent;
mod curricula;
mod dates;
mod fields;
mod home;
mod language;
mod links;
mod live;
mod measure_admin;
mod measures;
mod notification_settings;
mod patients;
mod practice;
mod profile;
mod program;
mod recordings;
mod referrals;
mod second_factor;
mod sharing;
mod sign_in;
mod sites;
mod staff;
mod start;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use stillpoint_domain::Role;

use crate::AppState;
use crate::error::WebError;
use crate::i18n::{OfferedLanguage, Translator};
use crate::viewer::Viewer;

/// The page routes. Each is registered through [`DeclaredRoutes::declared`], so a route without
/// a policy in [`crate::policy::ROUTES`] stops the router from being built.
pub fn router() -> Router<AppState> {
    Router::new()
        .declared("/", get(start::show))
        .declared("/sign-in", get(sign_in::show).post(sign_in::submit))
        .declared("/sign-out", post(sign_in::sign_out))
        .declared(
            "/sign-in/verify",
            get(second_factor::show_verify).post(second_factor::submit_verify),
        )
        .declared(
            "/sign-in/authenticator",
            get(second_factor::show_enrolment).post(second_factor::submit_enrolment),
        )
        .declared(
            "/account/recovery-codes",
            post(second_factor::renew_recovery_codes),
        )
        .declared("/sign-out-everywhere", post(sign_in::sign_out_everywhere))
        .declared("/home", get(home::show))
        .declared("/sites", get(sites::show))
        .declared("/audit", get(audit::show))
        .declared("/audit.csv", get(audit::export_csv))
        .declared("/record-access", get(audit::record_access))
        .declared("/language", post(language::switch))
        .declared("/patients", get(patients::list))
        .declared("/sharing", get(sharing::show).post(sharing::share))
        .declared("/sharing/{caregiver_id}/revoke", post(sharing::revoke))
        .declared("/account", get(profile::show).post(profile::save))
        .declared(
            "/account/notifications",
            get(notification_settings::show).post(notification_settings::save),
        )
        .declared(
            "/unsubscribe",
            get(notification_settings::unsubscribe_page).post(notification_settings::unsubscribe),
        )
        .declared("/hooks/sms-status", post(notification_settings::sms_status))
        .declared("/consent", get(consent::list))
        .declared("/consent/{document_id}", get(consent::show))
        .declared("/consent/{document_id}/sign", post(consent::sign))
        .declared("/consent/{document_id}/withdraw", post(consent::withdraw))
        .declared("/staff", get(staff::show))
        .declared("/staff/invitations", post(staff::invite))
        .declared(
            "/accounts/{account_id}/password-reset",
            post(staff::password_reset),
        )
        .declared("/accounts/{account_id}/unlock", post(staff::unlock))
        .declared(
            "/accounts/{account_id}/roles/remove",
            post(staff::remove_role),
        )
        .declared("/accounts/{account_id}/deactivate", post(staff::deactivate))
        .declared("/accounts/{account_id}/reactivate", post(staff::reactivate))
        .declared(
            "/accounts/{account_id}/two-step-reset",
            post(staff::two_step_reset),
        )
        .declared("/patients/{patient_id}/invitation", post(patients::invite))
        .declared(
            "/invitations/{token}",
            get(links::show_invitation).post(links::accept_invitation),
        )
        .declared(
            "/password-reset/{token}",
            get(links::show_reset).post(links::submit_reset),
        )
        .merge(program_routes())
        .merge(practice_routes())
        .merge(live_routes())
}

/// Declares the routes of live sessions: the room and its signalling, caregiver invitations,
/// external meeting links and the technology check.
fn live_routes() -> Router<AppState> {
    Router::new()
        .declared("/sessions/{session_id}/room", get(live::room))
        .declared("/sessions/{session_id}/room/socket", get(live::room_socket))
        .declared(
            "/cohorts/{cohort_id}/sessions/{session_id}/guests",
            post(live::invite_guest),
        )
        .declared(
            "/cohorts/{cohort_id}/sessions/{session_id}/guests/withdraw",
            post(live::withdraw_guest),
        )
        .declared("/cohorts/{cohort_id}/video", post(live::set_video))
        .declared(
            "/tech-check",
            get(live::tech_check).post(live::save_tech_check),
        )
        .declared("/tech-check/socket", get(live::tech_check_socket))
}

/// Declares the routes of the MBSR programs: referral and screening, cohorts, curricula, the patient's
/// program and calendar feeds.
fn program_routes() -> Router<AppState> {
    Router::new()
        .declared("/measures", get(measures::list))
        .declared(
            "/measures/{instrument_id}",
            get(measures::show_form).post(measures::submit),
        )
        .declared("/progress", get(measures::progress))
        .declared(
            "/help",
            get(measures::show_help).post(measures::request_help),
        )
        .declared("/alerts", get(measures::inbox))
        .declared("/notifications", get(measures::notifications))
        .declared("/instruments", get(measure_admin::list))
        .declared("/jobs", get(measure_admin::jobs))
        .declared("/jobs/{job_id}/retry", post(measure_admin::retry_job))
        .declared(
            "/instruments/{instrument_id}/licence",
            post(measure_admin::record_licence),
        )
        .declared(
            "/sites/{site_id}/safety",
            get(measure_admin::show_safety).post(measure_admin::save_safety),
        )
        .declared("/patients/{patient_id}/measures", get(measures::timeline))
        .declared("/alerts/{alert_id}/steps", post(measures::take_step))
        .declared(
            "/patients/new",
            get(referrals::show_referral).post(referrals::refer),
        )
        .declared(
            "/patients/{patient_id}/screening",
            get(referrals::show_screening).post(referrals::screen),
        )
        .declared(
            "/patients/{patient_id}/pathway",
            post(referrals::move_pathway),
        )
        .declared("/cohorts", get(cohorts::list))
        .declared("/cohorts/new", get(cohorts::show_new).post(cohorts::create))
        .declared("/cohorts/{cohort_id}", get(cohorts::show))
        .declared(
            "/cohorts/{cohort_id}/capacity",
            post(cohorts::change_capacity),
        )
        .declared(
            "/cohorts/{cohort_id}/sessions/{session_id}",
            get(cohort_sessions::show),
        )
        .declared(
            "/cohorts/{cohort_id}/sessions/{session_id}/attendance",
            post(cohort_sessions::take_roll),
        )
        .declared(
            "/cohorts/{cohort_id}/sessions/{session_id}/reschedule",
            post(cohort_sessions::reschedule),
        )
        .declared(
            "/cohorts/{cohort_id}/sessions/{session_id}/cancel",
            post(cohort_sessions::cancel),
        )
        .declared("/curricula", get(curricula::list))
        .declared("/curricula/copy", post(curricula::copy))
        .declared("/curricula/{curriculum_id}/{version}", get(curricula::show))
        .declared(
            "/curricula/{curriculum_id}/drafts",
            post(curricula::new_draft),
        )
        .declared(
            "/curricula/{curriculum_id}/{version}/details",
            post(curricula::save_details),
        )
        .declared(
            "/curricula/{curriculum_id}/{version}/publish",
            post(curricula::publish),
        )
        .declared(
            "/curricula/{curriculum_id}/{version}/sessions/{index}",
            get(curricula::edit_session).post(curricula::save_session),
        )
        .declared("/program", get(program::show))
        .declared("/program/rejoin", post(program::rejoin))
        .declared(
            "/account/calendar",
            get(calendar::show).post(calendar::create),
        )
        .declared("/account/calendar/revoke", post(calendar::revoke))
        .declared("/calendar/{file}", get(calendar::feed))
        .declared("/patients/{patient_id}", get(patients::show))
        .declared(
            "/patients/{patient_id}/break-glass",
            post(patients::open_break_glass),
        )
}

/// Declares the routes of home practice: the patient's practice pages and diary, recordings,
/// the library and the facilitator's practice overview.
fn practice_routes() -> Router<AppState> {
    Router::new()
        .declared("/practice", get(practice::show))
        .declared("/practice/timer", get(practice::timer))
        .declared("/practice/entries", post(practice::add_entry))
        .declared(
            "/practice/entries/{entry_id}",
            get(practice::show_entry).post(practice::save_entry),
        )
        .declared(
            "/practice/entries/{entry_id}/delete",
            post(practice::delete_entry),
        )
        .declared("/practice/listening", post(recordings::listening))
        .declared("/practice/sw.js", get(recordings::service_worker))
        .declared("/practice/recordings/{recording_id}", get(recordings::show))
        .declared(
            "/practice/recordings/{recording_id}/audio",
            get(recordings::audio),
        )
        .declared(
            "/practice/recordings/{recording_id}/captions.vtt",
            get(recordings::captions),
        )
        .declared("/library", get(recordings::library_page))
        .declared(
            "/library/recordings/{recording_id}/retire",
            post(recordings::retire),
        )
        .declared("/cohorts/{cohort_id}/practice", get(cohort_practice::show))
        .declared(
            "/cohorts/{cohort_id}/practice/suggestions/{suggestion_id}",
            post(cohort_practice::decide),
        )
}

/// The routes that accept large bodies, served under their own body limit and timeout.
pub const UPLOAD_ROUTES: [&str; 1] = ["/library/recordings"];

/// Builds the router of [`UPLOAD_ROUTES`].
pub fn upload_router() -> Router<AppState> {
    Router::new().declared(UPLOAD_ROUTES[0], post(recordings::upload))
}

/// Registers routes only when the route table declares their access policy.
pub trait DeclaredRoutes {
    /// Adds `path` like `Router::route`, after checking that [`crate::policy::ROUTES`] declares
    /// it.
    ///
    /// # Panics
    ///
    /// When the path has no declared policy: a programming error that every test building the
    /// router reports, before the route could be served.
    #[must_use]
    fn declared(self, path: &str, method_router: axum::routing::MethodRouter<AppState>) -> Self;
}

impl DeclaredRoutes for Router<AppState> {
    fn declared(self, path: &str, method_router: axum::routing::MethodRouter<AppState>) -> Self {
        assert!(
            crate::policy::ROUTES
                .iter()
                .any(|policy| policy.path == path),
            "the route {path} has no access policy; declare it in policy::ROUTES"
        );
        self.route(path, method_router)
    }
}

/// One entry of the main navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// What the base layout needs: language, navigation and asset URLs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub lang: String,
    pub tr: Translator,
    pub nav: Vec<NavItem>,
    pub signed_in: bool,
    /// The current path, so the language switcher returns to the same page.
    pub path: String,
    /// The clinic's name, which patients know, in the header and page titles.
    pub clinic_name: String,
    pub stylesheet: String,
    pub favicon: String,
    pub languages: Vec<OfferedLanguage>,
    /// Classes on `<html>` for the person's display preferences.
    pub html_class: String,
    /// The hidden token every form on the page carries.
    pub form_token: String,
    /// Whether to show the "I need help now" button: on every page a patient sees.
    pub help_button: bool,
    /// Scripts the page needs, as asset URLs, loaded with `defer`.
    pub scripts: Vec<String>,
    /// `data-*` attributes of `<body>` that the page's scripts read, without the prefix.
    pub body_data: Vec<(&'static str, String)>,
}

impl Layout {
    #[must_use]
    pub fn new(state: &AppState, viewer: &Viewer, path: &str) -> Self {
        let tr = viewer.translator(state);
        let mut entries: Vec<(&'static str, &'static str)> = Vec::new();
        match &viewer.account {
            None => {
                entries.push(("/", "nav-start"));
                entries.push(("/sign-in", "nav-sign-in"));
            }
            Some(account) => {
                entries.push(("/home", "nav-home"));
                entries.push(("/account", "nav-account"));
                entries.push(("/notifications", "nav-notifications"));
                if account.has_role(Role::Facilitator)
                    || account.has_role(Role::Clinician)
                    || account.has_role(Role::ProgramAdministrator)
                {
                    entries.push(("/patients", "nav-patients"));
                }
                if account.is_staff() {
                    entries.push(("/cohorts", "nav-cohorts"));
                }
                if account.has_role(Role::SystemAdministrator)
                    || account.has_role(Role::ProgramAdministrator)
                {
                    entries.push(("/sites", "nav-sites"));
                    entries.push(("/staff", "nav-staff"));
                    entries.push(("/audit", "nav-audit"));
                    entries.push(("/instruments", "nav-instruments"));
                }
                if account.has_role(Role::SystemAdministrator) {
                    entries.push(("/jobs", "nav-jobs"));
                }
                if account.has_role(Role::Clinician) || account.has_role(Role::ProgramAdministrator)
                {
                    entries.push(("/alerts", "nav-alerts"));
                }
                if stillpoint_app::library::manages_library(account) {
                    entries.push(("/library", "nav-library"));
                }
                if account.has_role(Role::Patient) {
                    entries.push(("/program", "nav-program"));
                    entries.push(("/practice", "nav-practice"));
                    entries.push(("/measures", "nav-measures"));
                    entries.push(("/consent", "nav-consent"));
                    entries.push(("/sharing", "nav-sharing"));
                    entries.push(("/record-access", "nav-record-access"));
                }
            }
        }
        let nav = entries
            .into_iter()
            .map(|(href, id)| NavItem {
                href,
                label: match id {
                    "nav-alerts" => {
                        tr.t_with("nav-alerts", "count", &viewer.open_alerts.to_string())
                    }
                    "nav-notifications" => tr.t_with(
                        "nav-notifications",
                        "count",
                        &viewer.unread_notifications.to_string(),
                    ),
                    _ => tr.t(id),
                },
                current: href == path,
            })
            .collect();

        Self {
            lang: viewer.language.clone(),
            tr,
            nav,
            signed_in: viewer.account.is_some(),
            path: path.to_owned(),
            clinic_name: state.config.clinic_name.clone(),
            stylesheet: state.assets.url("stillpoint.css").to_owned(),
            favicon: state.assets.url("favicon.svg").to_owned(),
            languages: state.catalogs.offered(),
            html_class: viewer
                .account
                .as_ref()
                .map(|account| {
                    let mut classes = Vec::new();
                    if account.preferences.larger_text {
                        classes.push("text-larger");
                    }
                    if account.preferences.reduced_motion {
                        classes.push("motion-reduced");
                    }
                    classes.join(" ")
                })
                .unwrap_or_default(),
            form_token: viewer.form_token.clone(),
            help_button: viewer
                .account
                .as_ref()
                .is_some_and(|account| account.has_role(Role::Patient)),
            scripts: Vec::new(),
            body_data: Vec::new(),
        }
    }
}

/// Renders a template, reporting a rendering failure as an internal error.
pub fn render(template: &impl Template) -> Result<Response, WebError> {
    let html = template
        .render()
        .map_err(|error| WebError::Internal(format!("template rendering failed: {error}")))?;
    Ok(Html(html).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    layout: Layout,
    title: String,
    detail: String,
    /// The language of `detail` when it differs from the page's: validation messages are
    /// English until the domain's messages are translated.
    detail_lang: Option<String>,
    show_sign_in: bool,
}

/// The HTML page for an error, with the error's status code.
pub fn error_page(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    error: &WebError,
    request_id: &str,
) -> Response {
    let layout = Layout::new(state, viewer, path);
    let tr = &layout.tr;
    let english_detail = |error: &WebError| {
        (
            error.public_detail(),
            (layout.lang != "en").then(|| "en".to_owned()),
        )
    };
    let (title, (detail, detail_lang)) = match error {
        WebError::NotFound => (
            tr.t("error-not-found-title"),
            (tr.t("error-not-found-text"), None),
        ),
        WebError::SignInRequired | WebError::SecondFactorRequired => (
            tr.t("error-sign-in-required-title"),
            (tr.t("error-sign-in-required-text"), None),
        ),
        WebError::LinkUnusable { used, expired } => (
            tr.t("error-link-title"),
            (
                tr.t(if *used {
                    "error-link-used"
                } else if *expired {
                    "error-link-expired"
                } else {
                    "error-link-invalid"
                }),
                None,
            ),
        ),
        WebError::FormExpired => (
            tr.t("error-form-expired-title"),
            (tr.t("error-form-expired-text"), None),
        ),
        WebError::Forbidden | WebError::CrossOrigin => (
            tr.t("error-forbidden-title"),
            (tr.t("error-forbidden-text"), None),
        ),
        WebError::Invalid { .. }
        | WebError::InvalidCredentials
        | WebError::InvalidOneTimeCode
        | WebError::Conflict { .. }
        | WebError::TransitionNotAllowed { .. }
        | WebError::Http(_)
        | WebError::Throttled { .. } => (tr.t("error-bad-request-title"), english_detail(error)),
        WebError::Unavailable(_) | WebError::TimedOut => (
            tr.t("error-unavailable-title"),
            (tr.t("error-unavailable-text"), None),
        ),
        WebError::Internal(_) => (
            tr.t("error-server-title"),
            (
                tr.t_with("error-server-text", "reference", request_id),
                None,
            ),
        ),
    };
    let template = ErrorTemplate {
        show_sign_in: matches!(error, WebError::SignInRequired),
        layout,
        title,
        detail,
        detail_lang,
    };

    let mut response = match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(render_error) => {
            tracing::error!(error = %render_error, "error page rendering failed");
            error.public_detail().into_response()
        }
    };
    *response.status_mut() = error.status();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `Set-Cookie` value for the session cookie; `None` clears it.
#[must_use]
pub fn session_cookie(token: Option<&str>, secure: bool, max_age_seconds: i64) -> String {
    let name = crate::viewer::session_cookie_name(secure);
    let secure_attribute = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => format!(
            "{name}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure_attribute}"
        ),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure_attribute}"),
    }
}
