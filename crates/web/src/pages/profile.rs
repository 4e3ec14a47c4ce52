//! The profile page: name, interface language, time zone, display preferences, and recovery codes
//! for staff.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::accounts::{self, ProfileChange};
use stillpoint_app::mfa::{self, SecondFactorStatus};
use stillpoint_domain::{DisplayPreferences, TimeZoneName};

use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::{LANGUAGE_COOKIE, SignedIn};

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfileTemplate {
    layout: Layout,
    display_name: String,
    current_language: String,
    time_zone: String,
    zones: Vec<String>,
    larger_text: bool,
    reduced_motion: bool,
    recovery_codes_left: Option<String>,
    saved: bool,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    time_zone: String,
    /// A checked checkbox sends its value; an unchecked one sends nothing.
    #[serde(default)]
    larger_text: Option<String>,
    #[serde(default)]
    reduced_motion: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<ShowQuery>,
) -> Result<Response, WebError> {
    let account = &signed_in.account;
    let current = Submitted {
        display_name: account.display_name.clone(),
        language: signed_in.viewer.language.clone(),
        time_zone: account.time_zone.to_string(),
        preferences: account.preferences,
    };
    render_page(
        &state,
        &signed_in,
        &current,
        query.saved.is_some(),
        None,
        StatusCode::OK,
    )
    .await
}

pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(form): CheckedForm<ProfileForm>,
) -> Result<Response, WebError> {
    let outcome = change_from(&state, &form);
    let outcome = match outcome {
        Ok(change) => {
            accounts::update_profile(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                change,
            )
            .await
        }
        Err(error) => Err(error),
    };

    match outcome {
        Ok(account) => {
            let secure = if state.config.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{LANGUAGE_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax{secure}",
                account.language
            );
            Ok((
                [(header::SET_COOKIE, cookie)],
                Redirect::to("/account?saved=1"),
            )
                .into_response())
        }
        Err(AppError::Invalid(invalid)) => {
            // The page shows what was submitted, so one invalid field loses no other change.
            let submitted = Submitted {
                display_name: form.display_name.clone(),
                language: form.language.clone(),
                time_zone: form.time_zone.clone(),
                preferences: DisplayPreferences {
                    larger_text: form.larger_text.is_some(),
                    reduced_motion: form.reduced_motion.is_some(),
                },
            };
            render_page(
                &state,
                &signed_in,
                &submitted,
                false,
                Some(format!("{}: {}", invalid.field, invalid.problem)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

fn change_from(state: &AppState, form: &ProfileForm) -> Result<ProfileChange, AppError> {
    Ok(ProfileChange {
        display_name: form.display_name.clone(),
        language: state
            .catalogs
            .offered_language("language", &form.language)?,
        time_zone: TimeZoneName::parse(&form.time_zone)?,
        preferences: DisplayPreferences {
            larger_text: form.larger_text.is_some(),
            reduced_motion: form.reduced_motion.is_some(),
        },
    })
}

/// The values the form shows: the stored ones, or the ones just submitted.
struct Submitted {
    display_name: String,
    language: String,
    time_zone: String,
    preferences: DisplayPreferences,
}

async fn render_page(
    state: &AppState,
    signed_in: &SignedIn,
    form_values: &Submitted,
    saved: bool,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let recovery_codes_left = match mfa::status(state.store.as_ref(), signed_in.account.id).await? {
        SecondFactorStatus::Enrolled {
            recovery_codes_left,
        } => Some(recovery_codes_left.to_string()),
        SecondFactorStatus::NotEnrolled => None,
    };
    let zones = jiff::tz::db()
        .available()
        .map(|name| name.to_string())
        .filter(|name| name.contains('/') && !name.starts_with("Etc/"))
        .collect();

    let mut response = render(&ProfileTemplate {
        layout: Layout::new(state, &signed_in.viewer, "/account"),
        display_name: form_values.display_name.clone(),
        current_language: form_values.language.clone(),
        time_zone: form_values.time_zone.clone(),
        zones,
        larger_text: form_values.preferences.larger_text,
        reduced_motion: form_values.preferences.reduced_motion,
        recovery_codes_left,
        saved,
        error,
    })?;
    *response.status_mut() = status;
    Ok(response)
}
