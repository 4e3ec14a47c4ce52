//! The access policy of each route, declared in one table.
//!
//! A middleware looks every matched route up here before its handler runs. A route missing from
//! the table is refused with 500 on every request (fail closed), so a new route cannot go live
//! without a declared policy. The route tests check that every route is declared.

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stillpoint_app::audit::{self, AuditEntry};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::{Account, PatientId, Role};

use crate::AppState;
use crate::error::WebError;
use crate::viewer::{ViewerInputs, client_address};

/// The group of callers a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Callers holding the secret token in the path, such as a calendar client fetching a feed;
    /// the handler looks the token up and returns 404 for an unknown one.
    PathToken,
    /// Any signed-in account.
    SignedIn,
    /// A session that passed the password step and still needs its one-time code, or a signed-in
    /// account (which the handler sends on).
    SecondStep,
    /// Facilitators, clinicians and program administrators, whose use cases narrow the patients
    /// to their care (see `stillpoint_domain::care_team`).
    CareTeam,
    /// Every staff role: facilitators, clinicians, program and system administrators, whose use
    /// cases narrow the data to their cohorts and sites.
    Staff,
    /// Clinicians.
    Clinicians,
    /// Patients.
    Patients,
    /// System administrators, and program administrators (whose use cases narrow the data to
    /// their sites).
    Administrators,
}

impl Access {
    /// Whether `account` may call a route with this access.
    #[must_use]
    pub fn allows(self, account: Option<&Account>) -> bool {
        match self {
            Self::Public | Self::PathToken => true,
            Self::SignedIn | Self::SecondStep => account.is_some(),
            Self::CareTeam => account.is_some_and(|account| {
                account.has_role(Role::Facilitator)
                    || account.has_role(Role::Clinician)
                    || account.has_role(Role::ProgramAdministrator)
            }),
            Self::Staff => account.is_some_and(Account::is_staff),
            Self::Clinicians => account.is_some_and(|account| account.has_role(Role::Clinician)),
            Self::Patients => account.is_some_and(|account| account.has_role(Role::Patient)),
            Self::Administrators => account.is_some_and(|account| {
                account.has_role(Role::SystemAdministrator)
                    || account.has_role(Role::ProgramAdministrator)
            }),
        }
    }
}

/// The declared policy of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePolicy {
    pub method: &'static str,
    /// The route template as registered, for example `/api/v1/sites/{site_id}`.
    pub path: &'static str,
    pub access: Access,
    /// Whether the route reads or writes patient data, which its use case must audit.
    pub patient_data: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    patient_data: bool,
) -> RoutePolicy {
    RoutePolicy {
        method,
        path,
        access,
        patient_data,
    }
}

/// Every route of the application.
pub const ROUTES: &[RoutePolicy] = &[
    route("GET", "/cohorts", Access::Staff, false),
    route("GET", "/cohorts/new", Access::Administrators, false),
    route("POST", "/cohorts/new", Access::Administrators, false),
    route("GET", "/cohorts/{cohort_id}", Access::Staff, true),
    route(
        "POST",
        "/cohorts/{cohort_id}/capacity",
        Access::Administrators,
        true,
    ),
    route(
        "GET",
        "/cohorts/{cohort_id}/sessions/{session_id}",
        Access::Staff,
        true,
    ),
    route(
        "POST",
        "/cohorts/{cohort_id}/sessions/{session_id}/attendance",
        Access::CareTeam,
        true,
    ),
    route(
        "POST",
        "/cohorts/{cohort_id}/sessions/{session_id}/reschedule",
        Access::Staff,
        true,
    ),
    route(
        "POST",
        "/cohorts/{cohort_id}/sessions/{session_id}/cancel",
        Access::Staff,
        true,
    ),
    route("GET", "/curricula", Access::Staff, false),
    route("POST", "/curricula/copy", Access::Administrators, false),
    route(
        "GET",
        "/curricula/{curriculum_id}/{version}",
        Access::Staff,
        false,
    ),
    route(
        "POST",
        "/curricula/{curriculum_id}/drafts",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/curricula/{curriculum_id}/{version}/details",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/curricula/{curriculum_id}/{version}/publish",
        Access::Administrators,
        false,
    ),
    route(
        "GET",
        "/curricula/{curriculum_id}/{version}/sessions/{index}",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/curricula/{curriculum_id}/{version}/sessions/{index}",
        Access::Administrators,
        false,
    ),
    route("GET", "/practice", Access::Patients, true),
    route("GET", "/practice/timer", Access::Patients, false),
    route("POST", "/practice/entries", Access::Patients, true),
    route(
        "GET",
        "/practice/entries/{entry_id}",
        Access::Patients,
        true,
    ),
    route(
        "POST",
        "/practice/entries/{entry_id}",
        Access::Patients,
        true,
    ),
    route(
        "POST",
        "/practice/entries/{entry_id}/delete",
        Access::Patients,
        true,
    ),
    route("POST", "/practice/listening", Access::Patients, true),
    // The practice service worker script contains no data; browsers fetch it to check for updates.
    route("GET", "/practice/sw.js", Access::Public, false),
    route(
        "GET",
        "/practice/recordings/{recording_id}",
        Access::SignedIn,
        false,
    ),
    route(
        "GET",
        "/practice/recordings/{recording_id}/audio",
        Access::SignedIn,
        false,
    ),
    route(
        "GET",
        "/practice/recordings/{recording_id}/captions.vtt",
        Access::SignedIn,
        false,
    ),
    route("GET", "/library", Access::Staff, false),
    route("POST", "/library/recordings", Access::Staff, false),
    route(
        "POST",
        "/library/recordings/{recording_id}/retire",
        Access::Staff,
        false,
    ),
    route("GET", "/cohorts/{cohort_id}/practice", Access::Staff, true),
    route(
        "POST",
        "/cohorts/{cohort_id}/practice/suggestions/{suggestion_id}",
        Access::CareTeam,
        true,
    ),
    // The use case admits the cohort's facilitators, its enrolled patients and caregivers
    // invited to the session, and audits the visit.
    route("GET", "/sessions/{session_id}/room", Access::SignedIn, true),
    route(
        "GET",
        "/sessions/{session_id}/room/socket",
        Access::SignedIn,
        true,
    ),
    route(
        "POST",
        "/cohorts/{cohort_id}/sessions/{session_id}/guests",
        Access::Staff,
        true,
    ),
    route(
        "POST",
        "/cohorts/{cohort_id}/sessions/{session_id}/guests/withdraw",
        Access::Staff,
        true,
    ),
    route("POST", "/cohorts/{cohort_id}/video", Access::Staff, false),
    route("GET", "/tech-check", Access::SignedIn, false),
    route("POST", "/tech-check", Access::SignedIn, true),
    route("GET", "/tech-check/socket", Access::SignedIn, false),
    route("GET", "/program", Access::Patients, true),
    route("GET", "/measures", Access::Patients, true),
    route("GET", "/measures/{instrument_id}", Access::Patients, false),
    route("POST", "/measures/{instrument_id}", Access::Patients, true),
    route("GET", "/progress", Access::Patients, true),
    route("GET", "/help", Access::Patients, true),
    route("POST", "/help", Access::Patients, true),
    route("GET", "/alerts", Access::CareTeam, true),
    route("GET", "/notifications", Access::SignedIn, false),
    route("GET", "/account/notifications", Access::SignedIn, false),
    route("POST", "/account/notifications", Access::SignedIn, false),
    // The link's keyed token replaces signing in, and the handler checks it.
    route("GET", "/unsubscribe", Access::PathToken, false),
    route("POST", "/unsubscribe", Access::PathToken, false),
    // The SMS provider's delivery reports; the handler checks the keyed token in the query.
    route("POST", "/hooks/sms-status", Access::PathToken, false),
    route("GET", "/instruments", Access::Administrators, false),
    route("GET", "/jobs", Access::Administrators, false),
    route(
        "POST",
        "/jobs/{job_id}/retry",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/instruments/{instrument_id}/licence",
        Access::Administrators,
        false,
    ),
    route(
        "GET",
        "/sites/{site_id}/safety",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/sites/{site_id}/safety",
        Access::Administrators,
        false,
    ),
    route(
        "GET",
        "/patients/{patient_id}/measures",
        Access::CareTeam,
        true,
    ),
    route("POST", "/alerts/{alert_id}/steps", Access::CareTeam, true),
    route("POST", "/program/rejoin", Access::Patients, true),
    route("GET", "/account/calendar", Access::SignedIn, false),
    route("POST", "/account/calendar", Access::SignedIn, false),
    route("POST", "/account/calendar/revoke", Access::SignedIn, false),
    // Calendar clients cannot sign in, so the feed's secret token is the credential.
    route("GET", "/calendar/{file}", Access::PathToken, true),
    route("GET", "/patients/new", Access::CareTeam, false),
    route("POST", "/patients/new", Access::CareTeam, true),
    route(
        "GET",
        "/patients/{patient_id}/screening",
        Access::CareTeam,
        true,
    ),
    route(
        "POST",
        "/patients/{patient_id}/screening",
        Access::CareTeam,
        true,
    ),
    route(
        "POST",
        "/patients/{patient_id}/pathway",
        Access::CareTeam,
        true,
    ),
    route("GET", "/", Access::Public, false),
    route("GET", "/sign-in", Access::Public, false),
    route("POST", "/sign-in", Access::Public, false),
    // Signing out without a session does nothing, so it needs no session.
    route("POST", "/sign-out", Access::Public, false),
    route("POST", "/language", Access::Public, false),
    route("GET", "/home", Access::SignedIn, true),
    route("GET", "/sites", Access::Administrators, false),
    route("GET", "/healthz", Access::Public, false),
    route("GET", "/readyz", Access::Public, false),
    route("GET", "/metrics", Access::Public, false),
    route("GET", "/api/openapi.json", Access::Public, false),
    route("GET", "/assets/{file}", Access::Public, false),
    route("POST", "/api/v1/sessions", Access::Public, false),
    route(
        "DELETE",
        "/api/v1/sessions/current",
        Access::SignedIn,
        false,
    ),
    route("GET", "/api/v1/me", Access::SignedIn, true),
    route("PUT", "/api/v1/me/language", Access::SignedIn, false),
    route("GET", "/api/v1/locales", Access::Public, false),
    route("GET", "/api/v1/sites", Access::Administrators, false),
    route(
        "GET",
        "/api/v1/sites/{site_id}",
        Access::Administrators,
        false,
    ),
    route("POST", "/sign-out-everywhere", Access::SignedIn, false),
    route("GET", "/sign-in/verify", Access::SecondStep, false),
    route("POST", "/sign-in/verify", Access::SecondStep, false),
    route("GET", "/sign-in/authenticator", Access::SecondStep, false),
    route("POST", "/sign-in/authenticator", Access::SecondStep, false),
    route("POST", "/account/recovery-codes", Access::SignedIn, false),
    route("GET", "/patients", Access::CareTeam, true),
    route("GET", "/patients/{patient_id}", Access::SignedIn, true),
    route(
        "POST",
        "/patients/{patient_id}/break-glass",
        Access::Clinicians,
        true,
    ),
    route("GET", "/sharing", Access::Patients, true),
    route("POST", "/sharing", Access::Patients, true),
    route(
        "POST",
        "/sharing/{caregiver_id}/revoke",
        Access::Patients,
        true,
    ),
    route("GET", "/account", Access::SignedIn, false),
    route("POST", "/account", Access::SignedIn, false),
    route("GET", "/consent", Access::Patients, true),
    route("GET", "/consent/{document_id}", Access::Patients, true),
    route(
        "POST",
        "/consent/{document_id}/sign",
        Access::Patients,
        true,
    ),
    route(
        "POST",
        "/consent/{document_id}/withdraw",
        Access::Patients,
        true,
    ),
    route("GET", "/staff", Access::Administrators, false),
    route("POST", "/staff/invitations", Access::Administrators, false),
    route(
        "POST",
        "/accounts/{account_id}/password-reset",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/accounts/{account_id}/unlock",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/accounts/{account_id}/roles/remove",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/accounts/{account_id}/deactivate",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/accounts/{account_id}/reactivate",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/accounts/{account_id}/two-step-reset",
        Access::Administrators,
        false,
    ),
    route(
        "POST",
        "/patients/{patient_id}/invitation",
        Access::CareTeam,
        true,
    ),
    // The token in the path is the credential: a single-use link.
    route("GET", "/invitations/{token}", Access::Public, false),
    route("POST", "/invitations/{token}", Access::Public, false),
    route("GET", "/password-reset/{token}", Access::Public, false),
    route("POST", "/password-reset/{token}", Access::Public, false),
    route("GET", "/api/v1/patients", Access::CareTeam, true),
    route("POST", "/api/v1/cohorts", Access::Administrators, false),
    route(
        "POST",
        "/api/v1/patients/{patient_id}/responses",
        Access::SignedIn,
        true,
    ),
    route(
        "GET",
        "/api/v1/patients/{patient_id}/responses",
        Access::SignedIn,
        true,
    ),
    route("GET", "/api/v1/alerts", Access::CareTeam, true),
    route(
        "POST",
        "/api/v1/alerts/{alert_id}/steps",
        Access::CareTeam,
        true,
    ),
    route(
        "GET",
        "/api/v1/patients/{patient_id}",
        Access::SignedIn,
        true,
    ),
    route(
        "GET",
        "/api/v1/patients/{patient_id}/enrolment",
        Access::CareTeam,
        true,
    ),
    route(
        "POST",
        "/api/v1/patients/{patient_id}/enrolment",
        Access::CareTeam,
        true,
    ),
    route("DELETE", "/api/v1/sessions", Access::SignedIn, false),
    route("GET", "/audit", Access::Administrators, true),
    route("GET", "/audit.csv", Access::Administrators, true),
    route("GET", "/record-access", Access::SignedIn, true),
    route("GET", "/api/v1/audit-events", Access::Administrators, true),
    route("GET", "/api/v1/me/record-access", Access::SignedIn, true),
];

/// The policy declared for `method` on the route template `path`.
#[must_use]
pub fn policy_for(method: &Method, path: &str) -> Option<&'static RoutePolicy> {
    ROUTES
        .iter()
        .find(|policy| policy.path == path && policy.method == method.as_str())
}

/// Records a refused request to a route that serves patient data, naming the patient when the
/// path carries a patient id. A failure to record is logged, and the request is refused anyway.
async fn audit_refusal(
    state: &AppState,
    policy: &RoutePolicy,
    path: &str,
    viewer: &crate::viewer::Viewer,
) {
    if !policy.patient_data {
        return;
    }
    let patient = patient_in_path(policy.path, path);
    let entry = AuditEntry {
        patient,
        resource_type: "Route",
        resource_id: Some(format!("{} {}", policy.method, policy.path)),
        action: AuditAction::Read,
        outcome: AuditOutcome::Denied,
        break_glass: false,
    };
    if let Err(error) = audit::record(
        state.store.as_ref(),
        state.clock.as_ref(),
        &viewer.audit_context(),
        entry,
    )
    .await
    {
        tracing::error!(error = %error, route = policy.path, "audit event of a rejected request failed to record");
    }
}

/// Extracts the patient id in `path` at the place of `{patient_id}` in the route `template`.
fn patient_in_path(template: &str, path: &str) -> Option<PatientId> {
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(pattern, _)| *pattern == "{patient_id}")
        .and_then(|(_, value)| value.parse().ok())
}

/// Redirects a session that still needs its one-time code to the code page, or returns 401 to
/// an API client so it completes the step.
fn second_step_refusal(policy: &RoutePolicy) -> Response {
    if policy.path.starts_with("/api/") {
        WebError::SecondFactorRequired.into_response()
    } else {
        axum::response::Redirect::to("/sign-in/verify").into_response()
    }
}

/// Router middleware that applies the declared policy (see [`admit`]).
pub async fn enforce_route_policy(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match admit(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

/// Applies the declared policy of the matched route: returns the request to run, or the refusal.
/// A signed-in viewer resolved here is passed on to the handler's extractors, so the session is
/// looked up once per request.
pub async fn admit(state: &AppState, mut request: Request) -> Result<Request, Response> {
    let Some(path) = request.extensions().get::<MatchedPath>().cloned() else {
        return Ok(request);
    };
    let Some(policy) = policy_for(request.method(), path.as_str()) else {
        // Another method of a declared route: the router responds 405 Method Not Allowed.
        if ROUTES.iter().any(|policy| policy.path == path.as_str()) {
            return Ok(request);
        }
        tracing::error!(route = path.as_str(), method = %request.method(), "route has no declared access policy; refusing it");
        return Err(
            WebError::Internal("route without a declared access policy".to_owned()).into_response(),
        );
    };
    if matches!(policy.access, Access::Public | Access::PathToken) {
        return Ok(request);
    }

    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let source = client_address(peer, request.headers(), &state.config.trusted_proxies);
    let viewer = ViewerInputs::from_headers(request.headers(), state.config.secure_cookies)
        .with_source_address(source)
        .resolve(state)
        .await;
    match &viewer.account {
        None if viewer.awaiting_second_factor.is_some() => {
            if policy.access != Access::SecondStep {
                return Err(second_step_refusal(policy));
            }
        }
        None => {
            audit_refusal(state, policy, request.uri().path(), &viewer).await;
            return Err(WebError::SignInRequired.into_response());
        }
        Some(account) if !policy.access.allows(Some(account)) => {
            tracing::info!(account_id = %account.id, route = policy.path, "access rejected by route policy");
            audit_refusal(state, policy, request.uri().path(), &viewer).await;
            return Err(WebError::Forbidden.into_response());
        }
        Some(_) => {}
    }
    request.extensions_mut().insert(viewer);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_declared_once() {
        for (index, policy) in ROUTES.iter().enumerate() {
            let duplicates = ROUTES[index + 1..]
                .iter()
                .filter(|other| other.method == policy.method && other.path == policy.path)
                .count();
            assert_eq!(
                duplicates, 0,
                "{} {} is declared twice",
                policy.method, policy.path
            );
        }
    }

    #[test]
    fn patient_id_is_read_from_path() {
        let id = "0190b6a0-0000-7000-8000-000000000001";
        assert_eq!(
            patient_in_path(
                "/patients/{patient_id}/break-glass",
                &format!("/patients/{id}/break-glass")
            )
            .map(|patient| patient.to_string())
            .as_deref(),
            Some(id)
        );
        assert_eq!(
            patient_in_path("/patients/{patient_id}", "/patients/not-a-uuid"),
            None
        );
        assert_eq!(patient_in_path("/audit", "/audit"), None);
    }

    #[test]
    fn patient_data_routes_require_sign_in() {
        for policy in ROUTES.iter().filter(|policy| policy.patient_data) {
            assert_ne!(
                policy.access,
                Access::Public,
                "{} {}",
                policy.method,
                policy.path
            );
        }
    }
}
