//! The patient's home practice pages: this week's assignment with its recordings, prompts and
//! informal practice, the meditation timer, the practice diary, and adherence by week.
//!
//! The diary form works without JavaScript. The timer needs it, and sends its entry through the
//! same endpoint as the form, asking for JSON.

use std::collections::BTreeMap;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use fluent_bundle::FluentArgs;
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::ports::{PracticeEntry, Recording};
use stillpoint_app::practice::{self, EntryInput, EntryRecorded, PracticeHome};
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::adherence::{Trend, WeekAdherence};
use stillpoint_domain::practice::{DistressRating, EntrySource, PracticeKind};
use stillpoint_domain::{InvalidValue, PracticeEntryId};

use super::curricula::practice_name;
use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::viewer::SignedIn;

/// The timer lengths offered, in minutes.
pub const TIMER_MINUTES: [u32; 7] = [3, 5, 10, 15, 20, 30, 45];

/// One recording in a list.
pub struct RecordingLine {
    pub href: String,
    pub title: String,
    pub practice: String,
    pub minutes: String,
    /// The recording's language tag, and its name in that language.
    pub language: String,
    pub language_name: String,
}

impl RecordingLine {
    /// Describes `recording`, naming its language as the `offered` catalogues do.
    pub fn new(
        tr: &Translator,
        recording: &Recording,
        offered: &[crate::i18n::OfferedLanguage],
    ) -> Self {
        Self {
            href: format!("/practice/recordings/{}", recording.id),
            title: recording.title.clone(),
            practice: practice_name(tr, recording.practice),
            minutes: tr.t_with("plan-minutes", "minutes", &recording.minutes().to_string()),
            language: recording.language.as_str().to_owned(),
            language_name: offered
                .iter()
                .find(|language| language.tag == recording.language.primary())
                .map_or_else(
                    || recording.language.as_str().to_owned(),
                    |language| language.name.clone(),
                ),
        }
    }
}

/// One diary entry in the list.
struct EntryLine {
    href: String,
    day: String,
    practice: String,
    minutes: String,
    source: String,
    distress: Option<String>,
    noticed: String,
    shared: bool,
}

/// One week's adherence, in words and figures.
pub struct WeekLine {
    pub label: String,
    pub minutes: u32,
    pub assigned: u32,
    pub days: u32,
    /// The bar's width in percent of the assignment, capped at 100.
    pub percent: u32,
    pub current: bool,
}

impl WeekLine {
    pub fn new(tr: &Translator, week: &WeekAdherence) -> Self {
        Self {
            label: tr.t_with("session-class", "week", &week.week.to_string()),
            minutes: week.minutes,
            assigned: week.assigned_minutes,
            days: week.days_practised,
            percent: week.percent().unwrap_or_default().min(100),
            current: !week.complete,
        }
    }
}

/// A choice in the practice select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// The diary form's values as text, as stored or as submitted.
#[derive(Default, Clone)]
struct EntryForm {
    practiced_on: String,
    practice: String,
    minutes: String,
    distress_before: String,
    distress_after: String,
    noticed: String,
    shared: bool,
}

#[derive(Template)]
#[template(path = "practice.html")]
struct PracticeTemplate {
    layout: Layout,
    /// Always false: new entries have typed minutes.
    measured_entry: bool,
    week_heading: Option<String>,
    assignment_text: Option<String>,
    informal: Option<String>,
    prompts: Vec<String>,
    recordings: Vec<RecordingLine>,
    other_recordings: Vec<RecordingLine>,
    weeks: Vec<WeekLine>,
    trend: Option<String>,
    entries: Vec<EntryLine>,
    form: EntryForm,
    choices: Vec<Choice>,
    today: String,
    saved: bool,
    error: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "practice_timer.html")]
struct TimerTemplate {
    layout: Layout,
    minutes: Vec<(u32, bool)>,
    bell_ogg: String,
    bell_mp3: String,
}

#[derive(Template)]
#[template(path = "practice_entry.html")]
struct EntryTemplate {
    layout: Layout,
    /// Whether the minutes were counted by the player or the timer and cannot be typed over.
    measured_entry: bool,
    action: String,
    delete_action: String,
    day: String,
    measured: Option<String>,
    form: EntryForm,
    choices: Vec<Choice>,
    today: String,
    error: Option<(String, String)>,
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    saved: Option<String>,
}

/// The diary form's fields, and the timer's.
#[derive(Debug, Deserialize, Default)]
pub struct EntryFields {
    #[serde(default)]
    entry_id: Option<String>,
    #[serde(default)]
    practiced_on: String,
    #[serde(default)]
    practice: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    seconds: String,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    distress_before: String,
    #[serde(default)]
    distress_after: String,
    #[serde(default)]
    noticed: String,
    #[serde(default)]
    shared: Option<String>,
}

impl EntryFields {
    fn input(&self) -> EntryInput {
        EntryInput {
            id: self.entry_id.clone(),
            practiced_on: self.practiced_on.clone(),
            practice: self.practice.clone(),
            minutes: self.minutes.clone(),
            seconds: self.seconds.clone(),
            started_at: if self.source == EntrySource::Timer.code() {
                self.started_at.clone()
            } else {
                String::new()
            },
            timer: self.source == EntrySource::Timer.code(),
            distress_before: self.distress_before.clone(),
            distress_after: self.distress_after.clone(),
            noticed: self.noticed.clone(),
            shared: self.shared.is_some(),
        }
    }

    fn form(&self) -> EntryForm {
        EntryForm {
            practiced_on: self.practiced_on.trim().to_owned(),
            practice: self.practice.trim().to_owned(),
            minutes: self.minutes.trim().to_owned(),
            distress_before: self.distress_before.trim().to_owned(),
            distress_after: self.distress_after.trim().to_owned(),
            noticed: self.noticed.clone(),
            shared: self.shared.is_some(),
        }
    }
}

/// Adds the scripts and `<body>` data every practice page carries: the offline queue, the service
/// worker and the pages it keeps for offline use.
pub fn offline_layout(
    state: &AppState,
    layout: &mut Layout,
    account: &stillpoint_domain::Account,
    offline_urls: &[String],
) {
    layout
        .scripts
        .push(state.assets.url("practice-offline.js").to_owned());
    layout
        .body_data
        .push(("service-worker", "/practice/sw.js".to_owned()));
    // The practice page itself shows diary notes, so it is not kept on the device.
    let mut urls: Vec<String> = vec![
        "/practice/timer".to_owned(),
        state.assets.url("stillpoint.css").to_owned(),
        state.assets.url("practice-offline.js").to_owned(),
        state.assets.url("practice-timer.js").to_owned(),
        state.assets.url("practice-player.js").to_owned(),
        state.assets.url("bell.ogg").to_owned(),
        state.assets.url("bell.mp3").to_owned(),
    ];
    urls.extend(offline_urls.iter().cloned());
    layout.body_data.push((
        "offline-urls",
        serde_json::to_string(&urls).unwrap_or_else(|_| "[]".to_owned()),
    ));
    // An opaque per-account value, so entries queued on a shared device are only sent from
    // the pages of the account that made them.
    layout.body_data.push((
        "queue-owner",
        stillpoint_app::random::token_digest(&account.id.to_string())[..16].to_owned(),
    ));
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<ShowQuery>,
) -> Result<Response, WebError> {
    let home = load_home(&state, &signed_in).await?;
    let form = EntryForm {
        practiced_on: home.today.to_string(),
        practice: home
            .assignment
            .as_ref()
            .and_then(|assignment| assignment.practices.first())
            .map(|practice| practice.as_str().to_owned())
            .unwrap_or_default(),
        ..EntryForm::default()
    };
    render_home(
        &state,
        &signed_in,
        &home,
        form,
        query.saved.is_some(),
        None,
        StatusCode::OK,
    )
}

async fn load_home(state: &AppState, signed_in: &SignedIn) -> Result<PracticeHome, WebError> {
    Ok(practice::own_practice(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?)
}

async fn practice_patient(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<stillpoint_domain::PatientId, WebError> {
    stillpoint_app::patients::own_record_id(state.store.as_ref(), &signed_in.account)
        .await?
        .ok_or(WebError::Forbidden)
}

#[allow(clippy::too_many_lines)] // One page's view model, built top to bottom.
fn render_home(
    state: &AppState,
    signed_in: &SignedIn,
    home: &PracticeHome,
    form: EntryForm,
    saved: bool,
    error: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let tr = signed_in.viewer.translator(state);
    let language = &signed_in.account.language;
    let text = |value: &stillpoint_domain::curriculum::LocalizedText| {
        home.curriculum
            .as_ref()
            .map(|curriculum| curriculum.text(value, language).to_owned())
            .unwrap_or_default()
    };

    let week_heading = home.assignment.as_ref().map(|assignment| {
        tr.t_with(
            "practice-week-heading",
            "week",
            &assignment.week.to_string(),
        )
    });
    let assignment_text = home.assignment.as_ref().map(|assignment| {
        let mut args = FluentArgs::new();
        args.set("minutes", assignment.daily_minutes);
        args.set("days", assignment.days_per_week);
        let practices: Vec<String> = assignment
            .practices
            .iter()
            .map(|practice| practice_name(&tr, *practice))
            .collect();
        args.set("practices", practices.join(", "));
        tr.t_args("practice-assignment", &args)
    });
    let informal = home
        .home
        .as_ref()
        .map(|home| text(&home.informal))
        .filter(|text| !text.is_empty());
    let prompts = home
        .home
        .as_ref()
        .map(|home| {
            home.prompts
                .iter()
                .map(&text)
                .filter(|prompt| !prompt.is_empty())
                .collect()
        })
        .unwrap_or_default();

    let offline: Vec<String> = home
        .recordings
        .iter()
        .flat_map(|recording| {
            [
                format!("/practice/recordings/{}", recording.id),
                format!("/practice/recordings/{}/audio", recording.id),
                format!("/practice/recordings/{}/captions.vtt", recording.id),
            ]
        })
        .collect();
    let offered = state.catalogs.offered();
    let mut layout = Layout::new(state, &signed_in.viewer, "/practice");
    offline_layout(state, &mut layout, &signed_in.account, &offline);

    let template = PracticeTemplate {
        measured_entry: false,
        week_heading,
        assignment_text,
        informal,
        prompts,
        recordings: home
            .recordings
            .iter()
            .map(|recording| RecordingLine::new(&tr, recording, &offered))
            .collect(),
        other_recordings: home
            .other_recordings
            .iter()
            .map(|recording| RecordingLine::new(&tr, recording, &offered))
            .collect(),
        weeks: home
            .weeks
            .iter()
            .map(|week| WeekLine::new(&tr, week))
            .collect(),
        trend: trend_text(&tr, home.trend),
        entries: home
            .entries
            .iter()
            .map(|entry| entry_line(&tr, entry))
            .collect(),
        choices: choices(&tr, &form.practice),
        form,
        today: home.today.to_string(),
        saved,
        error,
        layout,
    };
    let mut response = render(&template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// A kind sentence about the direction of practice; nothing when it is too early to say.
pub fn trend_text(tr: &Translator, trend: Trend) -> Option<String> {
    match trend {
        Trend::Rising => Some(tr.t("practice-trend-rising")),
        Trend::Steady => Some(tr.t("practice-trend-steady")),
        Trend::Falling => Some(tr.t("practice-trend-falling")),
        Trend::TooEarly => None,
    }
}

/// The name of what was practised.
pub fn kind_name(tr: &Translator, kind: PracticeKind) -> String {
    match kind {
        PracticeKind::Formal(practice) => practice_name(tr, practice),
        PracticeKind::Unguided => tr.t("practice-kind-unguided"),
        PracticeKind::Informal => tr.t("practice-kind-informal"),
    }
}

fn minutes_text(tr: &Translator, seconds: u32) -> String {
    if seconds < 60 {
        return tr.t("practice-under-a-minute");
    }
    tr.t_with("plan-minutes", "minutes", &(seconds / 60).to_string())
}

/// The stress ratings of an entry in words; nothing when it has neither.
pub fn distress_text(
    tr: &Translator,
    before: Option<DistressRating>,
    after: Option<DistressRating>,
) -> Option<String> {
    if before.is_none() && after.is_none() {
        return None;
    }
    let show = |rating: Option<DistressRating>| {
        rating.map_or_else(|| "–".to_owned(), |rating| rating.value().to_string())
    };
    let mut args = FluentArgs::new();
    args.set("before", show(before));
    args.set("after", show(after));
    Some(tr.t_args("practice-distress-summary", &args))
}

fn entry_line(tr: &Translator, entry: &PracticeEntry) -> EntryLine {
    let distress = distress_text(tr, entry.distress_before, entry.distress_after);
    EntryLine {
        href: format!("/practice/entries/{}", entry.id),
        day: dates::long_date(tr, entry.practiced_on),
        practice: kind_name(tr, entry.kind),
        minutes: minutes_text(tr, entry.seconds),
        source: tr.t(&format!("practice-source-{}", entry.source.code())),
        distress,
        noticed: entry.noticed.clone(),
        shared: entry.shared,
    }
}

fn choices(tr: &Translator, selected: &str) -> Vec<Choice> {
    let mut kinds: Vec<PracticeKind> = Practice::ALL
        .into_iter()
        .map(PracticeKind::Formal)
        .collect();
    kinds.push(PracticeKind::Unguided);
    kinds.push(PracticeKind::Informal);
    kinds
        .into_iter()
        .map(|kind| Choice {
            value: kind.code().to_owned(),
            label: kind_name(tr, kind),
            selected: kind.code() == selected,
        })
        .collect()
}

/// The field's label and the fix, in the reader's language.
fn field_error(tr: &Translator, invalid: &InvalidValue) -> (String, String) {
    let key = match invalid.field {
        "practiced_on" if invalid.problem.contains("future") => "practice-error-future",
        "practiced_on" if invalid.problem.contains("year ago") => "practice-error-too-old",
        "practiced_on" => "practice-error-date",
        "minutes" | "seconds" if invalid.problem.contains("already has") => {
            "practice-error-day-full"
        }
        "minutes" | "seconds" => "practice-error-minutes",
        "distress_before" | "distress_after" => "practice-error-rating",
        "noticed" => "practice-error-noticed",
        "practice" => "practice-error-practice",
        _ => return (invalid.field.to_owned(), invalid.problem.clone()),
    };
    let label = match invalid.field {
        "practiced_on" => "practice-field-date",
        "minutes" | "seconds" => "practice-field-minutes",
        "distress_before" => "practice-field-before",
        "distress_after" => "practice-field-after",
        "noticed" => "practice-field-noticed",
        _ => "practice-field-practice",
    };
    // The timer's seconds are typed as minutes in the form, so the message links there.
    let field = if invalid.field == "seconds" {
        "minutes"
    } else {
        invalid.field
    };
    (field.to_owned(), format!("{}: {}", tr.t(label), tr.t(key)))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

/// Adds a diary entry from the form or the timer. The timer asks for JSON: 201 when the entry
/// was added, 200 when it was there already, 422 with the field and the fix.
pub async fn add_entry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    CheckedForm(fields): CheckedForm<EntryFields>,
) -> Result<Response, WebError> {
    let outcome = practice::record_entry(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        &fields.input(),
    )
    .await;
    let json = wants_json(&headers);
    match outcome {
        Ok(recorded) if json => {
            let (status, text) = match recorded {
                EntryRecorded::Added(_) => (StatusCode::CREATED, "recorded"),
                EntryRecorded::AlreadyThere(_) => (StatusCode::OK, "duplicate"),
            };
            Ok((status, Json(serde_json::json!({ "status": text }))).into_response())
        }
        Ok(_) => Ok(Redirect::to("/practice?saved=1").into_response()),
        Err(AppError::Invalid(invalid)) if json => {
            let tr = signed_in.viewer.translator(&state);
            let (field, message) = field_error(&tr, &invalid);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({ "field": field, "message": message })),
            )
                .into_response())
        }
        Err(AppError::Invalid(invalid)) => {
            let tr = signed_in.viewer.translator(&state);
            let home = load_home(&state, &signed_in).await?;
            render_home(
                &state,
                &signed_in,
                &home,
                fields.form(),
                false,
                Some(field_error(&tr, &invalid)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(error) => Err(error.into()),
    }
}

fn parse_entry_id(text: &str) -> Result<PracticeEntryId, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

pub async fn show_entry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_entry_id(&entry_id)?;
    let entry = practice::open_own_entry(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        id,
    )
    .await?;
    let form = EntryForm {
        practiced_on: entry.practiced_on.to_string(),
        practice: entry.kind.code().to_owned(),
        minutes: (entry.seconds / 60).to_string(),
        distress_before: entry
            .distress_before
            .map(|rating| rating.value().to_string())
            .unwrap_or_default(),
        distress_after: entry
            .distress_after
            .map(|rating| rating.value().to_string())
            .unwrap_or_default(),
        noticed: entry.noticed.clone(),
        shared: entry.shared,
    };
    render_entry(&state, &signed_in, &entry, form, None, StatusCode::OK)
}

fn render_entry(
    state: &AppState,
    signed_in: &SignedIn,
    entry: &PracticeEntry,
    form: EntryForm,
    error: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let tr = signed_in.viewer.translator(state);
    let today = state
        .clock
        .now()
        .to_zoned_datetime(signed_in.account.time_zone.time_zone())
        .date();
    let measured = (entry.source != EntrySource::Manual).then(|| {
        let mut args = FluentArgs::new();
        args.set("minutes", entry.seconds / 60);
        args.set(
            "source",
            tr.t(&format!("practice-source-{}", entry.source.code())),
        );
        args.set("practice", kind_name(&tr, entry.kind));
        tr.t_args("practice-entry-measured", &args)
    });
    let path = format!("/practice/entries/{}", entry.id);
    let template = EntryTemplate {
        measured_entry: measured.is_some(),
        layout: Layout::new(state, &signed_in.viewer, &path),
        delete_action: format!("{path}/delete"),
        action: path,
        day: dates::long_date(&tr, entry.practiced_on),
        measured,
        choices: choices(&tr, &form.practice),
        form,
        today: today.to_string(),
        error,
    };
    let mut response = render(&template)?;
    *response.status_mut() = status;
    Ok(response)
}

pub async fn save_entry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_id): Path<String>,
    CheckedForm(fields): CheckedForm<EntryFields>,
) -> Result<Response, WebError> {
    let id = parse_entry_id(&entry_id)?;
    let outcome = practice::update_entry(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        id,
        &fields.input(),
    )
    .await;
    match outcome {
        Ok(()) => Ok(Redirect::to("/practice?saved=1").into_response()),
        Err(AppError::Invalid(invalid)) => {
            let tr = signed_in.viewer.translator(&state);
            let entry = practice::own_entry(state.store.as_ref(), &signed_in.account, id).await?;
            render_entry(
                &state,
                &signed_in,
                &entry,
                fields.form(),
                Some(field_error(&tr, &invalid)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn delete_entry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(entry_id): Path<String>,
    CheckedForm(_form): CheckedForm<BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    let id = parse_entry_id(&entry_id)?;
    practice::delete_entry(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        id,
    )
    .await?;
    Ok(Redirect::to("/practice?saved=1").into_response())
}

pub async fn timer(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    practice_patient(&state, &signed_in).await?;
    let mut layout = Layout::new(&state, &signed_in.viewer, "/practice/timer");
    offline_layout(&state, &mut layout, &signed_in.account, &[]);
    layout
        .scripts
        .push(state.assets.url("practice-timer.js").to_owned());
    let template = TimerTemplate {
        layout,
        minutes: TIMER_MINUTES
            .iter()
            .map(|minutes| (*minutes, *minutes == 10))
            .collect(),
        bell_ogg: state.assets.url("bell.ogg").to_owned(),
        bell_mp3: state.assets.url("bell.mp3").to_owned(),
    };
    render(&template)
}
