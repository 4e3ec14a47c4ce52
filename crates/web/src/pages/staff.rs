//! Administrators' staff page: invitations, reset links, lifting a sign-in lock and resetting
//! two-step verification.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::invitations::{self, IssuedLink, StaffInvitation};
use stillpoint_domain::{Account, AccountId, Role, RoleAssignment, Site, SiteId};

use super::sign_in::EmptyForm;
use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::SignedIn;

/// One account on the staff page.
#[derive(Debug)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub held_roles: Vec<HeldRole>,
    pub staff: bool,
    pub active: bool,
}

/// One role an account holds, with whether the viewing administrator may remove it.
#[derive(Debug)]
pub struct HeldRole {
    pub label: String,
    pub role: &'static str,
    pub site_id: String,
    pub removable: bool,
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    site_id: String,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffTemplate {
    layout: Layout,
    roles: Vec<(&'static str, String)>,
    sites: Vec<(String, String)>,
    invitations: Vec<String>,
    accounts: Vec<AccountRow>,
    form_name: String,
    form_email: String,
    error: Option<String>,
}

/// A page confirming an action, with the link to pass on when one was issued.
#[derive(Template)]
#[template(path = "done.html")]
pub struct DoneTemplate {
    pub layout: Layout,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    pub back_href: String,
    pub back_label: String,
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    site_id: String,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render_page(&state, &signed_in, "", "", None, StatusCode::OK).await
}

pub async fn invite(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(form): CheckedForm<InviteForm>,
) -> Result<Response, WebError> {
    let outcome = invite_from_form(&state, &signed_in, &form).await;
    let layout = Layout::new(&state, &signed_in.viewer, "/staff");
    match outcome {
        Ok(StaffInvitation::Link(link)) => {
            let message = layout
                .tr
                .t_with("staff-invited", "email", link.email.as_str());
            done(&state, layout, "staff-invited-title", message, Some(&link))
        }
        Ok(StaffInvitation::RoleAdded(account)) => {
            let message = layout
                .tr
                .t_with("staff-role-added", "name", &account.display_name);
            done(&state, layout, "staff-invited-title", message, None)
        }
        Err(AppError::Invalid(invalid)) => {
            render_page(
                &state,
                &signed_in,
                &form.display_name,
                &form.email,
                Some(format!("{}: {}", invalid.field, invalid.problem)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn password_reset(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(account_id): Path<String>,
    CheckedForm(_form): CheckedForm<EmptyForm>,
) -> Result<Response, WebError> {
    let target = parse_account_id(&account_id)?;
    let link = invitations::issue_password_reset(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        target,
    )
    .await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/staff");
    let message = layout
        .tr
        .t_with("staff-reset-issued", "email", link.email.as_str());
    done(&state, layout, "staff-reset-title", message, Some(&link))
}

pub async fn unlock(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(account_id): Path<String>,
    CheckedForm(_form): CheckedForm<EmptyForm>,
) -> Result<Response, WebError> {
    let target = parse_account_id(&account_id)?;
    let account = invitations::unlock_sign_in(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        target,
    )
    .await?;
    confirm(
        &state,
        &signed_in,
        &account,
        "staff-unlocked-title",
        "staff-unlocked",
    )
}

pub async fn two_step_reset(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(account_id): Path<String>,
    CheckedForm(_form): CheckedForm<EmptyForm>,
) -> Result<Response, WebError> {
    let target = parse_account_id(&account_id)?;
    let account = invitations::reset_two_step(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        target,
    )
    .await?;
    confirm(
        &state,
        &signed_in,
        &account,
        "staff-two-step-reset-title",
        "staff-two-step-reset",
    )
}

pub async fn remove_role(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(account_id): Path<String>,
    CheckedForm(form): CheckedForm<RoleForm>,
) -> Result<Response, WebError> {
    let target = parse_account_id(&account_id)?;
    let role: Role = form.role.parse().map_err(AppError::from)?;
    let site = if form.site_id.is_empty() {
        None
    } else {
        Some(
            form.site_id
                .parse::<SiteId>()
                .map_err(|_| WebError::Invalid {
                    field: "site_id".to_owned(),
                    message: "choose a site from the list".to_owned(),
                })?,
        )
    };
    let assignment = RoleAssignment::new(role, site).map_err(AppError::from)?;
    let account = invitations::remove_role(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        target,
        assignment,
    )
    .await?;
    confirm(
        &state,
        &signed_in,
        &account,
        "staff-role-removed-title",
        "staff-role-removed",
    )
}

pub async fn deactivate(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(account_id): Path<String>,
    CheckedForm(_form): CheckedForm<EmptyForm>,
) -> Result<Response, WebError> {
    change_activation(&state, &signed_in, &account_id, false).await
}

pub async fn reactivate(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(account_id): Path<String>,
    CheckedForm(_form): CheckedForm<EmptyForm>,
) -> Result<Response, WebError> {
    change_activation(&state, &signed_in, &account_id, true).await
}

async fn change_activation(
    state: &AppState,
    signed_in: &SignedIn,
    account_id: &str,
    active: bool,
) -> Result<Response, WebError> {
    let target = parse_account_id(account_id)?;
    let account = invitations::set_active(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        target,
        active,
    )
    .await?;
    let (title, message) = if active {
        ("staff-reactivated-title", "staff-reactivated")
    } else {
        ("staff-deactivated-title", "staff-deactivated-text")
    };
    confirm(state, signed_in, &account, title, message)
}

/// Renders the confirmation of a change to `account`, naming it in the `message_id` text.
fn confirm(
    state: &AppState,
    signed_in: &SignedIn,
    account: &Account,
    title_id: &str,
    message_id: &str,
) -> Result<Response, WebError> {
    let layout = Layout::new(state, &signed_in.viewer, "/staff");
    let message = layout.tr.t_with(message_id, "name", &account.display_name);
    done(state, layout, title_id, message, None)
}

/// Renders the confirmation page; `link` is shown as a full URL to copy.
pub fn done(
    state: &AppState,
    layout: Layout,
    title_id: &str,
    message: String,
    link: Option<&IssuedLink>,
) -> Result<Response, WebError> {
    let link = link.map(|link| link_url(state, link));
    let back_href = if layout.path.starts_with("/patients") || layout.path == "/sharing" {
        layout.path.clone()
    } else {
        "/staff".to_owned()
    };
    render(&DoneTemplate {
        title: layout.tr.t(title_id),
        message,
        link,
        back_label: layout.tr.t("done-back"),
        back_href,
        layout,
    })
}

/// Builds the full address of an issued link.
#[must_use]
pub fn link_url(state: &AppState, link: &IssuedLink) -> String {
    let path = if link.purpose.is_invitation() {
        "invitations"
    } else {
        "password-reset"
    };
    format!(
        "{}/{path}/{}",
        state.config.public_url.trim_end_matches('/'),
        link.token
    )
}

async fn invite_from_form(
    state: &AppState,
    signed_in: &SignedIn,
    form: &InviteForm,
) -> Result<StaffInvitation, AppError> {
    let role: Role = form.role.parse()?;
    let site: Option<SiteId> = if role.is_site_scoped() {
        Some(form.site_id.parse().map_err(|_| {
            stillpoint_domain::InvalidValue::new("site_id", "choose a site from the list")
        })?)
    } else {
        None
    };
    invitations::invite_staff(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        &form.email,
        &form.display_name,
        role,
        site,
    )
    .await
}

fn parse_account_id(text: &str) -> Result<AccountId, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

async fn render_page(
    state: &AppState,
    signed_in: &SignedIn,
    form_name: &str,
    form_email: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let admin = &signed_in.account;
    let all_sites = stillpoint_app::sites::all_sites(state.store.as_ref()).await?;
    let accounts = invitations::managed_accounts(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        admin,
    )
    .await?;
    let open =
        invitations::open_staff_invitations(state.store.as_ref(), state.clock.as_ref(), admin)
            .await?;

    let layout = Layout::new(state, &signed_in.viewer, "/staff");
    let tr = &layout.tr;
    let system = admin.has_role(Role::SystemAdministrator);
    let roles = Role::ALL
        .into_iter()
        .filter(|role| role.is_staff())
        .filter(|role| system || role.is_site_scoped())
        .map(|role| (role.code(), tr.t(&format!("role-{}", role.code()))))
        .collect();
    let sites = all_sites
        .iter()
        .filter(|site| {
            system
                || admin.roles.iter().any(|held| {
                    held.role == Role::ProgramAdministrator && held.site_id == Some(site.id)
                })
        })
        .map(|site| (site.id.to_string(), site.name.clone()))
        .collect();
    let describe_roles = |roles: &[RoleAssignment]| describe(tr, &all_sites, roles);
    let invitations = open
        .iter()
        .map(|link| {
            let expires = link
                .expires_at
                .to_zoned_datetime(admin.time_zone.time_zone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string();
            format!(
                "{} · {} · {}",
                link.email,
                describe_roles(&link.roles),
                tr.t_with("staff-invitation-expires", "when", &expires)
            )
        })
        .collect();
    let deactivated = invitations::deactivated_accounts(state.store.as_ref()).await?;
    let accounts = accounts
        .iter()
        .map(|account| account_row(tr, &all_sites, admin, account, &deactivated))
        .collect();

    let mut response = render(&StaffTemplate {
        layout,
        roles,
        sites,
        invitations,
        accounts,
        form_name: form_name.to_owned(),
        form_email: form_email.to_owned(),
        error,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

/// Describes role assignments as "Role (Site)", separated by commas.
fn describe(tr: &crate::i18n::Translator, sites: &[Site], roles: &[RoleAssignment]) -> String {
    roles
        .iter()
        .map(|held| {
            let role = tr.t(&format!("role-{}", held.role.code()));
            let site = held
                .site_id
                .and_then(|id| sites.iter().find(|site| site.id == id));
            match site {
                Some(site) => format!("{role} ({})", site.name),
                None => role,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn account_row(
    tr: &crate::i18n::Translator,
    sites: &[Site],
    admin: &Account,
    account: &Account,
    deactivated: &[AccountId],
) -> AccountRow {
    AccountRow {
        id: account.id.to_string(),
        name: account.display_name.clone(),
        email: account.email.to_string(),
        held_roles: account
            .roles
            .iter()
            .map(|held| HeldRole {
                label: describe(tr, sites, std::slice::from_ref(held)),
                role: held.role.code(),
                site_id: held
                    .site_id
                    .map(|site| site.to_string())
                    .unwrap_or_default(),
                removable: account.id != admin.id && invitations::may_assign(admin, *held),
            })
            .collect(),
        staff: account.is_staff(),
        active: !deactivated.contains(&account.id),
    }
}
