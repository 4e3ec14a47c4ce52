//! The pages a single-use link opens: accepting an invitation, and setting a new password.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::invitations;
use stillpoint_app::ports::{AccountLink, LinkPurpose};

use super::staff::DoneTemplate;
use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::Viewer;

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordTemplate {
    layout: Layout,
    title: String,
    intro: String,
    action: String,
    email: String,
    ask_name: bool,
    display_name: String,
    submit: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

pub async fn show_invitation(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let link = invitations::open_link(state.store.as_ref(), state.clock.as_ref(), &token).await?;
    if !link.purpose.is_invitation() {
        return Err(AppError::LinkInvalid.into());
    }
    let name = link.display_name.clone();
    render_form(&state, &viewer, &token, &link, &name, None, StatusCode::OK)
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token): Path<String>,
    CheckedForm(form): CheckedForm<PasswordForm>,
) -> Result<Response, WebError> {
    let outcome = invitations::accept_invitation(
        state.store.as_ref(),
        state.clock.as_ref(),
        &viewer.audit_context(),
        &token,
        &form.display_name,
        &form.password,
        &form.password_confirmation,
    )
    .await;
    match outcome {
        Ok(account) => {
            let layout = Layout::new(&state, &viewer, "/sign-in");
            let message = layout
                .tr
                .t_with("invitation-done", "name", &account.display_name);
            finished(layout, "invitation-done-title", message)
        }
        Err(AppError::Invalid(invalid)) => {
            let link =
                invitations::open_link(state.store.as_ref(), state.clock.as_ref(), &token).await?;
            render_form(
                &state,
                &viewer,
                &token,
                &link,
                &form.display_name,
                Some(invalid.problem),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn show_reset(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let link = invitations::open_link(state.store.as_ref(), state.clock.as_ref(), &token).await?;
    if link.purpose != LinkPurpose::PasswordReset {
        return Err(AppError::LinkInvalid.into());
    }
    render_form(&state, &viewer, &token, &link, "", None, StatusCode::OK)
}

pub async fn submit_reset(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token): Path<String>,
    CheckedForm(form): CheckedForm<PasswordForm>,
) -> Result<Response, WebError> {
    let outcome = invitations::reset_password(
        state.store.as_ref(),
        state.clock.as_ref(),
        &viewer.audit_context(),
        &token,
        &form.password,
        &form.password_confirmation,
    )
    .await;
    match outcome {
        Ok(_) => {
            let layout = Layout::new(&state, &viewer, "/sign-in");
            let message = layout.tr.t("reset-done");
            finished(layout, "reset-done-title", message)
        }
        Err(AppError::Invalid(invalid)) => {
            let link =
                invitations::open_link(state.store.as_ref(), state.clock.as_ref(), &token).await?;
            render_form(
                &state,
                &viewer,
                &token,
                &link,
                "",
                Some(invalid.problem),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(error) => Err(error.into()),
    }
}

fn finished(layout: Layout, title_id: &str, message: String) -> Result<Response, WebError> {
    render(&DoneTemplate {
        title: layout.tr.t(title_id),
        message,
        link: None,
        back_href: "/sign-in".to_owned(),
        back_label: layout.tr.t("nav-sign-in"),
        layout,
    })
}

fn render_form(
    state: &AppState,
    viewer: &Viewer,
    token: &str,
    link: &AccountLink,
    display_name: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let invitation = link.purpose.is_invitation();
    let path = if invitation {
        format!("/invitations/{token}")
    } else {
        format!("/password-reset/{token}")
    };
    let layout = Layout::new(state, viewer, &path);
    let tr = &layout.tr;
    let (title, intro, action, submit) = if invitation {
        (
            tr.t("invitation-title"),
            tr.t("invitation-intro"),
            path.clone(),
            tr.t("invitation-submit"),
        )
    } else {
        (
            tr.t("reset-title"),
            tr.t("reset-intro"),
            path.clone(),
            tr.t("reset-submit"),
        )
    };
    let mut response = render(&SetPasswordTemplate {
        title,
        intro,
        action,
        email: link.email.to_string(),
        ask_name: invitation,
        display_name: display_name.to_owned(),
        submit,
        error,
        layout,
    })?;
    *response.status_mut() = status;
    Ok(response)
}
