//! The signed-in home page.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use fluent_bundle::FluentArgs;
use stillpoint_app::care;
use stillpoint_domain::Account;

use super::{Layout, render};
use crate::AppState;
use crate::error::WebError;
use crate::viewer::SignedIn;

#[derive(Template)]
#[template(path = "home.html")]
struct HomeTemplate {
    layout: Layout,
    greeting: String,
    roles: Vec<String>,
    /// Whether to list the roles: a patient's only role says nothing the patient needs.
    show_roles: bool,
    patient_site: Option<String>,
    language_name: String,
    time_zone: String,
    local_time: String,
    local_time_iso: String,
    /// For a caregiver: the patients who share with them, as (link, name).
    shared_with_you: Vec<(String, String)>,
    /// For a caregiver: the live sessions they are invited to, as (description, room link).
    invitations: Vec<(String, String)>,
    /// For a program administrator: recent break-glass access at their sites.
    break_glass: Vec<String>,
    /// For a patient: whether a required consent is missing or outdated.
    consent_needed: bool,
    /// For a patient: the check-ins they can answer now, as (title, due line, overdue).
    due_measures: Vec<(String, String, bool)>,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let account = &signed_in.account;
    let sites = stillpoint_app::sites::all_sites(state.store.as_ref()).await?;
    let site_name = |id| {
        sites
            .iter()
            .find(|site| site.id == id)
            .map(|site| site.name.clone())
    };

    let layout = Layout::new(&state, &signed_in.viewer, "/home");
    let tr = &layout.tr;
    let roles = account
        .roles
        .iter()
        .map(|assignment| {
            let role = tr.t(&format!("role-{}", assignment.role.code()));
            match assignment.site_id.and_then(site_name) {
                Some(site) => format!("{role} {}", tr.t_with("home-site-at", "site", &site)),
                None => role,
            }
        })
        .collect();
    let context = signed_in.viewer.audit_context();
    let patient_site = stillpoint_app::patients::care_site_of(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        account,
    )
    .await?
    .and_then(site_name)
    .map(|site| tr.t_with("home-patient-site", "site", &site));
    let now = state
        .clock
        .now()
        .to_zoned_datetime(account.time_zone.time_zone());
    let shared_with_you = shared_lines(&state, &context, account).await?;
    let invitations = invitation_lines(&state, account, tr).await?;
    let break_glass = break_glass_lines(&state, &context, account, tr).await?;
    let consent_needed = stillpoint_app::consent::own_consent_needed(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &state.consents,
        account,
    )
    .await?;

    let zone = account.time_zone.time_zone();
    let due_measures = stillpoint_app::measures::own_due(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.measures,
        account,
    )
    .await?
    .into_iter()
    .map(|occasion| {
        let title = tr.t_with(
            &format!("measures-wave-{}", occasion.occasion.wave.replace('_', "-")),
            "week",
            &occasion.occasion.week.to_string(),
        );
        let due = tr.t_with(
            "measures-due-by",
            "when",
            &super::dates::long_date_time(tr, occasion.occasion.due, &zone),
        );
        (title, due, occasion.status.code() == "overdue")
    })
    .collect();

    let template = HomeTemplate {
        due_measures,
        greeting: tr.t_with("home-greeting", "name", &account.display_name),
        show_roles: account.is_staff() || account.roles.is_empty(),
        roles,
        patient_site,
        language_name: state.catalogs.format(&layout.lang, "language-name", None),
        time_zone: account.time_zone.to_string(),
        local_time: now.strftime("%Y-%m-%d %H:%M %Z").to_string(),
        local_time_iso: now.timestamp().to_string(),
        shared_with_you,
        invitations,
        break_glass,
        consent_needed,
        layout,
    };
    render(&template)
}

/// Describes recent break-glass access at a program administrator's sites, newest first.
async fn break_glass_lines(
    state: &AppState,
    context: &stillpoint_app::audit::AuditContext,
    account: &Account,
    tr: &crate::i18n::Translator,
) -> Result<Vec<String>, WebError> {
    let grants =
        care::recent_break_glass(state.store.as_ref(), state.clock.as_ref(), context, account)
            .await?;
    let mut lines = Vec::with_capacity(grants.len());
    for grant in grants {
        let clinician =
            stillpoint_app::accounts::display_name(state.store.as_ref(), grant.clinician).await?;
        let patient =
            stillpoint_app::patients::display_name(state.store.as_ref(), grant.patient_id).await?;
        let when = grant
            .opened_at
            .to_zoned_datetime(account.time_zone.time_zone())
            .strftime("%Y-%m-%d %H:%M")
            .to_string();
        let mut args = fluent_bundle::FluentArgs::new();
        args.set("clinician", clinician);
        args.set("patient", patient);
        args.set("when", when);
        args.set("reason", grant.reason);
        lines.push(tr.t_args("home-break-glass-row", &args));
    }
    Ok(lines)
}

/// Describes a caregiver's invitations to live sessions, each with the link to its room.
async fn invitation_lines(
    state: &AppState,
    account: &Account,
    tr: &crate::i18n::Translator,
) -> Result<Vec<(String, String)>, WebError> {
    let invitations = stillpoint_app::live::caregiver_invitations(
        state.store.as_ref(),
        state.clock.as_ref(),
        account,
        state.live.window,
    )
    .await?;
    let zone = account.time_zone.time_zone();
    Ok(invitations
        .into_iter()
        .filter(|invitation| {
            !state
                .live
                .hub
                .is_removed(&invitation.session.id.to_string(), account.id)
        })
        .map(|invitation| {
            let planned = &invitation.session.planned;
            let mut args = FluentArgs::new();
            args.set("session", super::cohorts::session_name(tr, planned.kind));
            args.set(
                "when",
                super::dates::long_date_time(tr, planned.start, &zone),
            );
            args.set("patient", invitation.patient_name);
            (
                tr.t_args("home-invitation-line", &args),
                format!("/sessions/{}/room", invitation.session.id),
            )
        })
        .collect())
}

/// Lists the patients who share their program with a caregiver, as (link, name).
async fn shared_lines(
    state: &AppState,
    context: &stillpoint_app::audit::AuditContext,
    account: &Account,
) -> Result<Vec<(String, String)>, WebError> {
    Ok(
        care::shared_with_caregiver(state.store.as_ref(), state.clock.as_ref(), context, account)
            .await?
            .into_iter()
            .map(|(patient, _)| {
                (
                    format!("/patients/{}", patient.id),
                    format!("{} {}", patient.given_name, patient.family_name),
                )
            })
            .collect(),
    )
}
