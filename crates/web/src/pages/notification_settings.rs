//! The notification settings page sets where e-mail and text messages go, which messages come
//! on which channel, quiet hours and the daily practice reminder time. This module also serves
//! the one-click unsubscribe page that e-mails link to, and the SMS provider's status reports.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::civil::Time;
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::notify;
use stillpoint_domain::notify::{
    Channel, MessageKind, NotificationSettings, PhoneNumber, QuietHours,
};
use stillpoint_domain::{Account, EmailAddress, InvalidValue, Role};

use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::{SignedIn, Viewer};

/// One message kind's row of channel boxes.
struct KindRow {
    code: &'static str,
    label: String,
    /// (channel code, label, checked)
    channels: Vec<(&'static str, String, bool)>,
}

#[derive(Template)]
#[template(path = "notification_settings.html")]
struct SettingsTemplate {
    layout: Layout,
    sign_in_email: String,
    contact_email: String,
    phone: String,
    kinds: Vec<KindRow>,
    quiet_start: String,
    quiet_end: String,
    practice_time: Option<String>,
    sms_fallback: bool,
    receives_alerts: bool,
    /// Notes on the channels this server cannot send on yet.
    unavailable: Vec<String>,
    time_zone: String,
    saved: bool,
    error: Option<(String, String)>,
}

/// Lists the kinds a person may choose channels for. Patients get every reminder, and
/// facilitators the session messages of their cohorts. Safety alert messages are essential and
/// not listed.
fn kinds_for(account: &Account) -> Vec<MessageKind> {
    let sessions = [
        MessageKind::SessionReminder,
        MessageKind::SessionRescheduled,
        MessageKind::SessionCancelled,
    ];
    if account.has_role(Role::Patient) {
        MessageKind::ALL
            .into_iter()
            .filter(|kind| !kind.is_essential())
            .collect()
    } else if account.has_role(Role::Facilitator) {
        sessions.to_vec()
    } else {
        Vec::new()
    }
}

fn time_text(time: Option<Time>) -> String {
    time.map(|time| time.strftime("%H:%M").to_string())
        .unwrap_or_default()
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
    let settings = notify::settings_of(state.store.as_ref(), signed_in.account.id)
        .await
        .map_err(AppError::from)?;
    let form = FormValues::from_settings(&settings);
    render_page(
        &state,
        &signed_in,
        &form,
        query.saved.is_some(),
        None,
        StatusCode::OK,
    )
}

pub async fn save(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(fields): CheckedForm<BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    let form = FormValues::from_fields(&fields, &kinds_for(&signed_in.account));
    let outcome = match form.to_settings(&signed_in.account) {
        Ok(settings) => {
            notify::save_settings(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                &settings,
            )
            .await
        }
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to("/account/notifications?saved=1").into_response()),
        Err(AppError::Invalid(invalid)) => {
            // The page shows what was submitted, so one invalid field loses no other choice.
            let tr = signed_in.viewer.translator(&state);
            let message = (invalid.field.to_owned(), field_error(&tr, &invalid));
            render_page(
                &state,
                &signed_in,
                &form,
                false,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(error) => Err(error.into()),
    }
}

/// The form's values as text, from the stored settings or as submitted.
struct FormValues {
    contact_email: String,
    phone: String,
    channels: BTreeMap<MessageKind, BTreeSet<Channel>>,
    quiet_start: String,
    quiet_end: String,
    practice_time: String,
    sms_fallback: bool,
}

impl FormValues {
    fn from_settings(settings: &NotificationSettings) -> Self {
        Self {
            contact_email: settings
                .contact_email
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            phone: settings
                .phone
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            channels: MessageKind::ALL
                .into_iter()
                .map(|kind| {
                    let chosen = settings
                        .channels
                        .get(&kind)
                        .cloned()
                        .unwrap_or_else(|| kind.default_channels());
                    (kind, chosen)
                })
                .collect(),
            quiet_start: time_text(settings.quiet_hours.map(|quiet| quiet.start)),
            quiet_end: time_text(settings.quiet_hours.map(|quiet| quiet.end)),
            practice_time: time_text(settings.practice_time),
            sms_fallback: settings.sms_fallback,
        }
    }

    fn from_fields(fields: &BTreeMap<String, String>, kinds: &[MessageKind]) -> Self {
        let text = |name: &str| {
            fields
                .get(name)
                .map(|value| value.trim().to_owned())
                .unwrap_or_default()
        };
        let channels = kinds
            .iter()
            .map(|kind| {
                let chosen = Channel::ALL
                    .into_iter()
                    .filter(|channel| {
                        fields.contains_key(&format!("{}.{}", kind.code(), channel.code()))
                    })
                    .collect();
                (*kind, chosen)
            })
            .collect();
        Self {
            contact_email: text("contact_email"),
            phone: text("phone"),
            channels,
            quiet_start: text("quiet_start"),
            quiet_end: text("quiet_end"),
            practice_time: text("practice_time"),
            sms_fallback: fields.contains_key("sms_fallback"),
        }
    }

    fn to_settings(&self, account: &Account) -> Result<NotificationSettings, InvalidValue> {
        let contact_email = if self.contact_email.is_empty() {
            None
        } else {
            Some(
                EmailAddress::parse(&self.contact_email)
                    .map_err(|error| InvalidValue::new("contact_email", error.problem))?,
            )
        };
        let phone = if self.phone.is_empty() {
            None
        } else {
            Some(PhoneNumber::parse(&self.phone)?)
        };
        let quiet_hours = match (
            parse_time("quiet_start", &self.quiet_start)?,
            parse_time("quiet_end", &self.quiet_end)?,
        ) {
            (Some(start), Some(end)) => Some(QuietHours::new(start, end)?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(InvalidValue::new(
                    "quiet_end",
                    "give the time quiet hours end, or clear both times",
                ));
            }
            (None, Some(_)) => {
                return Err(InvalidValue::new(
                    "quiet_start",
                    "give the time quiet hours start, or clear both times",
                ));
            }
        };
        let practice_time = if account.has_role(Role::Patient) {
            parse_time("practice_time", &self.practice_time)?
        } else {
            None
        };
        let settings = NotificationSettings {
            contact_email,
            phone,
            channels: self.channels.clone(),
            quiet_hours,
            practice_time,
            sms_fallback: self.sms_fallback,
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// Builds the message for an invalid field in the reader's language: the field's label, then
/// what to enter. A field without a translated message keeps the checker's own text.
fn field_error(tr: &crate::i18n::Translator, invalid: &InvalidValue) -> String {
    let (label, fix) = match invalid.field {
        "phone" if invalid.problem.contains("country code") => {
            ("notify-phone", "notify-error-phone")
        }
        "phone" => ("notify-phone", "notify-error-phone-needed"),
        "contact_email" => ("notify-contact-email", "notify-error-email"),
        "quiet_start" => ("notify-quiet-start", "notify-error-quiet-start"),
        "quiet_end" if invalid.problem.contains("another time") => {
            ("notify-quiet-end", "notify-error-quiet-same")
        }
        "quiet_end" => ("notify-quiet-end", "notify-error-quiet-end"),
        "practice_time" => ("notify-practice-time", "notify-error-time"),
        _ => return format!("{}: {}", invalid.field, invalid.problem),
    };
    format!("{}: {}", tr.t(label), tr.t(fix))
}

/// Reads an `HH:MM` time from a time field; empty means none.
fn parse_time(field: &'static str, text: &str) -> Result<Option<Time>, InvalidValue> {
    if text.is_empty() {
        return Ok(None);
    }
    Time::strptime("%H:%M", text).map(Some).map_err(|_| {
        InvalidValue::new(
            field,
            format!("'{text}' is not a time; enter it as 07:30 or 21:00"),
        )
    })
}

fn render_page(
    state: &AppState,
    signed_in: &SignedIn,
    form: &FormValues,
    saved: bool,
    error: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let layout = Layout::new(state, &signed_in.viewer, "/account/notifications");
    let account = &signed_in.account;
    let kinds = kinds_for(account)
        .into_iter()
        .map(|kind| KindRow {
            code: kind.code(),
            label: layout
                .tr
                .t(&format!("notify-kind-{}", kind.code().replace('_', "-"))),
            channels: Channel::ALL
                .into_iter()
                .map(|channel| {
                    let checked = form
                        .channels
                        .get(&kind)
                        .is_some_and(|chosen| chosen.contains(&channel));
                    (
                        channel.code(),
                        layout.tr.t(&format!(
                            "notify-channel-{}",
                            channel.code().replace('_', "-")
                        )),
                        checked,
                    )
                })
                .collect(),
        })
        .collect();
    let unavailable = match state.notifier.get() {
        Some(notifier) => [
            (notifier.mailer.is_none(), "notify-email-unavailable"),
            (notifier.sms.is_none(), "notify-sms-unavailable"),
        ]
        .into_iter()
        .filter(|(missing, _)| *missing)
        .map(|(_, id)| layout.tr.t(id))
        .collect(),
        None => Vec::new(),
    };
    let receives_alerts =
        account.has_role(Role::Clinician) || account.has_role(Role::ProgramAdministrator);
    let mut response = render(&SettingsTemplate {
        layout,
        sign_in_email: account.email.to_string(),
        contact_email: form.contact_email.clone(),
        phone: form.phone.clone(),
        kinds,
        quiet_start: form.quiet_start.clone(),
        quiet_end: form.quiet_end.clone(),
        practice_time: account
            .has_role(Role::Patient)
            .then(|| form.practice_time.clone()),
        sms_fallback: form.sms_fallback,
        receives_alerts,
        unavailable,
        time_zone: account.time_zone.to_string(),
        saved,
        error,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

#[derive(Template)]
#[template(path = "unsubscribe.html")]
struct UnsubscribeTemplate {
    layout: Layout,
    kind: String,
    action: String,
    done: bool,
}

#[derive(Debug, Deserialize)]
pub struct UnsubscribeQuery {
    #[serde(default)]
    account: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    token: String,
}

/// Shows what the link turns off, with one button. A plain visit changes nothing, because
/// mail scanners open links.
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<UnsubscribeQuery>,
) -> Result<Response, WebError> {
    let (_, kind) = checked_link(&state, &query).await?;
    unsubscribe_response(&state, &viewer, &query, kind, false)
}

/// Turns the messages off: the page's button, or a mail client's one-click POST (RFC 8058),
/// which carries the link's query and no form token.
pub async fn unsubscribe(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<UnsubscribeQuery>,
) -> Result<Response, WebError> {
    let (account, kind) = checked_link(&state, &query).await?;
    notify::unsubscribe(state.store.as_ref(), state.clock.as_ref(), account, kind).await?;
    unsubscribe_response(&state, &viewer, &query, kind, true)
}

async fn checked_link(
    state: &AppState,
    query: &UnsubscribeQuery,
) -> Result<(stillpoint_domain::AccountId, MessageKind), AppError> {
    notify::check_unsubscribe(
        state.store.as_ref(),
        &state.config.secrets,
        &query.account,
        &query.kind,
        &query.token,
    )
    .await
}

fn unsubscribe_response(
    state: &AppState,
    viewer: &Viewer,
    query: &UnsubscribeQuery,
    kind: MessageKind,
    done: bool,
) -> Result<Response, WebError> {
    let layout = Layout::new(state, viewer, "/unsubscribe");
    let kind = layout
        .tr
        .t(&format!("notify-kind-{}", kind.code().replace('_', "-")));
    render(&UnsubscribeTemplate {
        layout,
        kind,
        action: format!(
            "/unsubscribe?account={}&kind={}&token={}",
            query.account, query.kind, query.token
        ),
        done,
    })
}

#[derive(Debug, Deserialize)]
pub struct SmsStatusQuery {
    #[serde(default)]
    delivery: String,
    #[serde(default)]
    token: String,
}

/// The fields of a provider's status report that Stillpoint reads.
#[derive(Debug, Deserialize)]
pub struct SmsStatusForm {
    #[serde(rename = "MessageSid", default)]
    message_sid: String,
    #[serde(rename = "MessageStatus", default)]
    message_status: String,
}

/// Receives the SMS provider's report on a message: delivered, or undelivered (which falls
/// back to the next channel).
pub async fn sms_status(
    State(state): State<AppState>,
    Query(query): Query<SmsStatusQuery>,
    axum::Form(form): axum::Form<SmsStatusForm>,
) -> Result<Response, WebError> {
    let Some(notifier) = state.notifier.get() else {
        return Err(WebError::NotFound);
    };
    notify::sms_status(
        notifier,
        &query.delivery,
        &query.token,
        &form.message_sid,
        &form.message_status,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
