//! The patient's measures (what is due, the questionnaire, the result with crisis resources
//! when an alert was raised), their progress charts, the "I need help now" page, and the care
//! team's alert inbox.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::measures::{self, MeasureSeries, Submission, UsableInstrument};
use stillpoint_app::ports::SafetyAlert;
use stillpoint_app::safety;
use stillpoint_domain::measures::instrument::Instrument;
use stillpoint_domain::measures::safety::AlertOutcome;
use stillpoint_domain::{AlertId, Language};

use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::viewer::SignedIn;

fn language_of(layout: &Layout) -> Language {
    Language::parse(&layout.lang).unwrap_or_else(|_| Language::english())
}

/// Text in `language`, else English, else any.
fn pick(text: &BTreeMap<Language, String>, language: &Language) -> String {
    text.get(language)
        .or_else(|| text.get(&Language::english()))
        .or_else(|| text.values().next())
        .cloned()
        .unwrap_or_default()
}

/// A due occasion on the patient's list.
#[derive(Debug)]
struct DueLine {
    title: String,
    status: String,
    due: String,
    overdue: bool,
    /// Instruments still to answer: (link, name).
    open: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "measures.html")]
struct MeasuresTemplate {
    layout: Layout,
    due: Vec<DueLine>,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let due = measures::own_due(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.measures,
        &signed_in.account,
    )
    .await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/measures");
    let language = language_of(&layout);
    let zone = signed_in.account.time_zone.time_zone();
    let tr = &layout.tr;
    let due = due
        .into_iter()
        .map(|occasion| DueLine {
            title: tr.t_with(
                &format!("measures-wave-{}", occasion.occasion.wave.replace('_', "-")),
                "week",
                &occasion.occasion.week.to_string(),
            ),
            status: tr.t(&format!("measures-status-{}", occasion.status.code())),
            due: dates::long_date_time(tr, occasion.occasion.due, &zone),
            overdue: occasion.status.code() == "overdue",
            open: occasion
                .instruments
                .iter()
                .filter(|(_, answered)| !answered)
                .map(|(id, _)| {
                    let name = state.measures.instrument(id).map_or_else(
                        || id.clone(),
                        |instrument| pick(&instrument.title, &language),
                    );
                    (
                        format!("/measures/{id}?occasion={}", occasion.occasion.key),
                        name,
                    )
                })
                .collect(),
        })
        .collect();
    render(&MeasuresTemplate { layout, due })
}

/// One item of the questionnaire form.
#[derive(Debug)]
struct ItemView {
    id: String,
    number: usize,
    text: String,
    required: bool,
    /// Shown above an item that is asked only after a "yes".
    condition: Option<String>,
    /// Value, label and whether it is chosen.
    options: Vec<(u8, String, bool)>,
}

#[derive(Template)]
#[template(path = "questionnaire.html")]
struct QuestionnaireTemplate {
    layout: Layout,
    instrument_id: String,
    title: String,
    instructions: String,
    notice: String,
    items: Vec<ItemView>,
    occasion: String,
    client_id: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OccasionQuery {
    #[serde(default)]
    occasion: Option<String>,
}

pub async fn show_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(instrument): Path<String>,
    Query(query): Query<OccasionQuery>,
) -> Result<Response, WebError> {
    let usable = usable(&state, &instrument).await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/measures");
    let template = questionnaire(
        layout,
        &usable,
        query.occasion.unwrap_or_default(),
        uuid::Uuid::new_v4().to_string(),
        &BTreeMap::new(),
        None,
    );
    render(&template)
}

async fn usable(state: &AppState, id: &str) -> Result<UsableInstrument, WebError> {
    measures::usable_instrument(state.store.as_ref(), &state.measures, id)
        .await?
        .ok_or(WebError::NotFound)
}

fn questionnaire(
    layout: Layout,
    usable: &UsableInstrument,
    occasion: String,
    client_id: String,
    chosen: &BTreeMap<String, u8>,
    error: Option<String>,
) -> QuestionnaireTemplate {
    let language = language_of(&layout);
    let instrument = &usable.instrument;
    let items = instrument
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| item_view(&layout.tr, instrument, index, item, &language, chosen))
        .collect();
    QuestionnaireTemplate {
        instrument_id: instrument.id.to_string(),
        title: pick(&instrument.title, &language),
        instructions: pick(&instrument.instructions, &language),
        notice: instrument.licence.notice.clone(),
        items,
        occasion,
        client_id,
        error,
        layout,
    }
}

fn item_view(
    tr: &Translator,
    instrument: &Instrument,
    index: usize,
    item: &stillpoint_domain::measures::instrument::Item,
    language: &Language,
    chosen: &BTreeMap<String, u8>,
) -> ItemView {
    let set = instrument.option_set(&item.options);
    let options = set
        .map(|set| {
            set.options
                .iter()
                .map(|option| {
                    let label = pick(&option.label, language);
                    let label = if label.is_empty() {
                        let anchor = set.anchors.as_ref().and_then(|anchors| {
                            let last = set.options.last().map(|o| o.value);
                            let first = set.options.first().map(|o| o.value);
                            if Some(option.value) == first {
                                Some(pick(&anchors[0], language))
                            } else if Some(option.value) == last {
                                Some(pick(&anchors[1], language))
                            } else {
                                None
                            }
                        });
                        match anchor {
                            Some(anchor) => format!("{} – {anchor}", option.value),
                            None => option.value.to_string(),
                        }
                    } else {
                        label
                    };
                    (
                        option.value,
                        label,
                        chosen.get(&item.id) == Some(&option.value),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let condition = item.asked_if.as_ref().map(|condition| {
        let number = instrument
            .items
            .iter()
            .position(|other| other.id == condition.item)
            .map_or(0, |position| position + 1);
        tr.t_with("questionnaire-asked-if", "number", &number.to_string())
    });
    ItemView {
        id: item.id.clone(),
        number: index + 1,
        text: pick(&item.text, language),
        required: item.required && item.asked_if.is_none(),
        condition,
        options,
    }
}

#[derive(Template)]
#[template(path = "measure_result.html")]
struct ResultTemplate {
    layout: Layout,
    title: String,
    /// Plain-language score lines.
    lines: Vec<String>,
    alert: bool,
    crisis_text: String,
    help_request: bool,
}

pub async fn submit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(instrument): Path<String>,
    CheckedForm(form): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let usable = usable(&state, &instrument).await?;
    let mut answers = BTreeMap::new();
    let mut client_id = String::new();
    let mut occasion = String::new();
    for (name, value) in form {
        if let Some(item) = name.strip_prefix("item_") {
            let value: u8 = value.parse().map_err(|_| WebError::Invalid {
                field: format!("item {item}"),
                message: "choose one of the answers".to_owned(),
            })?;
            answers.insert(item.to_owned(), value);
        } else if name == "client_id" {
            client_id = value;
        } else if name == "occasion" {
            occasion = value;
        }
    }
    let layout = Layout::new(&state, &signed_in.viewer, "/measures");
    let language = language_of(&layout);
    let patient = stillpoint_app::patients::own_record_id(state.store.as_ref(), &signed_in.account)
        .await?
        .ok_or(WebError::Forbidden)?;

    let submitted = measures::submit(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.measures,
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        Submission {
            patient,
            instrument: instrument.clone(),
            answers: answers.clone(),
            client_id: client_id.clone(),
            occasion: (!occasion.is_empty()).then_some(occasion.clone()),
            language: language.clone(),
        },
    )
    .await;
    let result = match submitted {
        Ok(result) => result,
        Err(stillpoint_app::AppError::Invalid(invalid)) => {
            let message = invalid.problem.clone();
            let template = questionnaire(
                layout,
                &usable,
                occasion,
                client_id,
                &answers,
                Some(message),
            );
            let mut response = render(&template)?;
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(response);
        }
        Err(other) => return Err(other.into()),
    };

    let tr = &layout.tr;
    let lines = result
        .response
        .scores
        .iter()
        .filter_map(|score| {
            let scale = usable.instrument.scale(&score.scale)?;
            let label = pick(&scale.label, &language);
            Some(match (score.reported, &score.band) {
                (Some(value), Some(band)) => tr.t_with(
                    "measure-result-band",
                    "line",
                    &format!(
                        "{label}: {} ({})",
                        format_score(value),
                        tr.t(&format!("band-{}", band.replace('_', "-")))
                    ),
                ),
                (Some(value), None) => format!("{label}: {}", format_score(value)),
                (None, _) => tr.t_with("measure-result-unscored", "scale", &label),
            })
        })
        .collect();
    let alert = result.alert_level.is_some();
    let crisis_text = crisis_text(&state, patient, &language, tr).await?;
    let template = ResultTemplate {
        title: pick(&usable.instrument.title, &language),
        lines,
        alert,
        crisis_text,
        help_request: false,
        layout,
    };
    render(&template)
}

fn format_score(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

async fn crisis_text(
    state: &AppState,
    patient: stillpoint_domain::PatientId,
    language: &Language,
    tr: &Translator,
) -> Result<String, WebError> {
    Ok(
        safety::crisis_text_for_patient(state.store.as_ref(), patient, language)
            .await?
            .unwrap_or_else(|| tr.t("crisis-default")),
    )
}

#[derive(Template)]
#[template(path = "help.html")]
struct HelpTemplate {
    layout: Layout,
    crisis_text: String,
}

/// Shows crisis resources at once, with a button that asks the care team to contact the
/// patient.
pub async fn show_help(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let layout = Layout::new(&state, &signed_in.viewer, "/help");
    let language = language_of(&layout);
    let patient = stillpoint_app::patients::own_record_id(state.store.as_ref(), &signed_in.account)
        .await?
        .ok_or(WebError::Forbidden)?;
    let crisis_text = crisis_text(&state, patient, &language, &layout.tr).await?;
    render(&HelpTemplate {
        layout,
        crisis_text,
    })
}

pub async fn request_help(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    safety::request_help(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/help");
    let language = language_of(&layout);
    let patient = stillpoint_app::patients::own_record_id(state.store.as_ref(), &signed_in.account)
        .await?
        .ok_or(WebError::Forbidden)?;
    let crisis_text = crisis_text(&state, patient, &language, &layout.tr).await?;
    render(&ResultTemplate {
        title: layout.tr.t("help-title"),
        lines: Vec::new(),
        alert: true,
        crisis_text,
        help_request: true,
        layout,
    })
}

/// One measure's chart and table on the progress page.
#[derive(Debug)]
struct ChartView {
    heading: String,
    svg: String,
    summary: String,
    rows: Vec<(String, String, String)>,
    change: Option<String>,
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressTemplate {
    layout: Layout,
    charts: Vec<ChartView>,
}

pub async fn progress(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let (_, responses) = measures::own_responses(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/progress");
    let language = language_of(&layout);
    let zone = signed_in.account.time_zone.time_zone();
    let charts = measures::series(&state.measures, &responses)
        .iter()
        .filter_map(|series| chart_view(&state, &layout.tr, &language, &zone, series))
        .collect();
    render(&ProgressTemplate { layout, charts })
}

fn chart_view(
    state: &AppState,
    tr: &Translator,
    language: &Language,
    zone: &jiff::tz::TimeZone,
    series: &MeasureSeries,
) -> Option<ChartView> {
    let instrument = state.measures.instrument(&series.instrument)?;
    let scale = instrument.scale(&series.scale)?;
    let heading = pick(&scale.label, language);
    let band_name = |band: &Option<String>| {
        band.as_ref()
            .map(|band| tr.t(&format!("band-{}", band.replace('_', "-"))))
            .unwrap_or_default()
    };
    let rows: Vec<(String, String, String)> = series
        .points
        .iter()
        .map(|point| {
            (
                dates::long_date(tr, point.at.to_zoned_datetime(zone.clone()).date()),
                format_score(point.reported),
                band_name(&point.band),
            )
        })
        .collect();
    let direction = match scale.direction {
        stillpoint_domain::measures::instrument::Direction::LowerIsBetter => {
            tr.t("progress-lower-is-better")
        }
        stillpoint_domain::measures::instrument::Direction::HigherIsBetter => {
            tr.t("progress-higher-is-better")
        }
    };
    let latest = series.points.last()?;
    let summary = format!(
        "{} {}",
        tr.t_with("progress-latest", "score", &format_score(latest.reported)),
        direction
    );
    let change = series
        .change
        .as_ref()
        .map(|change| tr.t(&format!("progress-change-{}", change.category.code())));
    let svg = line_chart(&heading, scale.range, &scale.bands, &series.points);
    Some(ChartView {
        heading,
        svg,
        summary,
        rows,
        change,
    })
}

/// Draws the scores as an inline SVG line chart with the bands as shaded stripes. The chart is
/// `aria-hidden`, because the table beside it carries the same data for screen readers.
fn line_chart(
    title: &str,
    range: [f64; 2],
    bands: &[stillpoint_domain::measures::Band],
    points: &[measures::SeriesPoint],
) -> String {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 200.0;
    const PAD: f64 = 30.0;
    let [low, high] = range;
    let span = (high - low).max(1.0);
    let y = |value: f64| HEIGHT - PAD - (value - low) / span * (HEIGHT - 2.0 * PAD);
    let count = points.len().max(2) - 1;
    let x = |index: usize| {
        PAD + f64::from(u32::try_from(index).unwrap_or(0)) * (WIDTH - 2.0 * PAD)
            / f64::from(u32::try_from(count).unwrap_or(1))
    };

    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-hidden=\"true\" focusable=\"false\"><title>{}</title>",
        askama::filters::escape(title, askama::filters::Html)
            .map_or_else(|_| String::new(), |t| t.to_string())
    );
    for (index, band) in bands.iter().enumerate() {
        let top = y(band.to.min(high));
        let bottom = y(band.from.max(low));
        let _ = write!(
            svg,
            "<rect class=\"chart__band chart__band--{}\" x=\"{PAD}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            index % 5,
            WIDTH - 2.0 * PAD,
            (bottom - top).max(0.0)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"2\" y=\"{:.1}\" class=\"chart__axis\">{low}</text><text x=\"2\" y=\"{:.1}\" class=\"chart__axis\">{high}</text>",
        y(low),
        y(high) + 10.0
    );
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(index, point)| format!("{:.1},{:.1}", x(index), y(point.reported)))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"chart__line\" points=\"{}\"/>",
        path.join(" ")
    );
    for (index, point) in points.iter().enumerate() {
        let _ = write!(
            svg,
            "<circle class=\"chart__point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\"/>",
            x(index),
            y(point.reported)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// An alert as the inbox shows it.
#[derive(Debug)]
struct AlertView {
    id: String,
    patient_link: String,
    patient_name: String,
    level: String,
    high: bool,
    reason: String,
    state: String,
    raised: String,
    deadline: String,
    overdue: bool,
    escalation: String,
    /// The step this alert takes next: acknowledge, action or resolve; empty when resolved.
    next_step: &'static str,
    history: Vec<String>,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsTemplate {
    layout: Layout,
    alerts: Vec<AlertView>,
    outcomes: Vec<(&'static str, String)>,
    error: Option<String>,
}

pub async fn inbox(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render_inbox(&state, &signed_in, None).await
}

async fn render_inbox(
    state: &AppState,
    signed_in: &SignedIn,
    error: Option<String>,
) -> Result<Response, WebError> {
    let alerts = safety::inbox(state.store.as_ref(), &signed_in.account, false).await?;
    let layout = Layout::new(state, &signed_in.viewer, "/alerts");
    let zone = signed_in.account.time_zone.time_zone();
    let now = state.clock.now();
    let mut views = Vec::with_capacity(alerts.len());
    for alert in alerts {
        views.push(alert_view(state, &layout.tr, &zone, now, alert).await?);
    }
    let outcomes = AlertOutcome::ALL
        .iter()
        .map(|outcome| {
            (
                outcome.code(),
                layout.tr.t(&format!(
                    "alert-outcome-{}",
                    outcome.code().replace('_', "-")
                )),
            )
        })
        .collect();
    let status = if error.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let mut response = render(&AlertsTemplate {
        layout,
        alerts: views,
        outcomes,
        error,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

async fn alert_view(
    state: &AppState,
    tr: &Translator,
    zone: &jiff::tz::TimeZone,
    now: jiff::Timestamp,
    alert: SafetyAlert,
) -> Result<AlertView, WebError> {
    let patient = state.store.get_patient(alert.patient).await?;
    let reason = alert
        .rules
        .iter()
        .map(|rule| {
            let key = format!("alert-rule-{}", rule.replace('_', "-"));
            let text = tr.t(&key);
            if text == key { rule.clone() } else { text }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let history = alert
        .events
        .iter()
        .map(|event| {
            let detail = if event.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", event.detail)
            };
            format!(
                "{} · {}{detail}",
                dates::short_date_time(event.at, zone),
                tr.t(&format!("alert-step-{}", event.step))
            )
        })
        .collect();
    let next_step = match alert.state.code() {
        "raised" => "acknowledge",
        "acknowledged" => "action",
        "actioned" => "resolve",
        _ => "",
    };
    Ok(AlertView {
        id: alert.id.to_string(),
        patient_link: format!("/patients/{}", patient.id),
        patient_name: format!("{} {}", patient.given_name, patient.family_name),
        level: tr.t(&format!("alert-level-{}", alert.level.code())),
        high: alert.level.code() == "high",
        reason,
        state: tr.t(&format!("alert-state-{}", alert.state.code())),
        raised: dates::short_date_time(alert.raised_at, zone),
        deadline: dates::short_date_time(alert.deadline, zone),
        overdue: safety::is_overdue(&alert, now),
        escalation: tr.t(&format!(
            "alert-escalation-{}",
            alert.escalation.code().replace('_', "-")
        )),
        next_step,
        history,
    })
}

#[derive(Debug, Deserialize)]
pub struct StepForm {
    step: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    note: String,
}

pub async fn take_step(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(alert): Path<String>,
    CheckedForm(form): CheckedForm<StepForm>,
) -> Result<Response, WebError> {
    let alert: AlertId = alert.parse().map_err(|_| WebError::NotFound)?;
    let outcome = form.outcome.as_deref().filter(|value| !value.is_empty());
    let step = match crate::api::parse_alert_step(&form.step, outcome, form.note) {
        Ok(step) => step,
        Err(invalid) => return render_inbox(&state, &signed_in, Some(invalid.problem)).await,
    };
    let taken = safety::take_step(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        alert,
        step,
    )
    .await;
    match taken {
        Ok(_) => Ok(Redirect::to("/alerts").into_response()),
        Err(stillpoint_app::AppError::Invalid(invalid)) => {
            render_inbox(&state, &signed_in, Some(invalid.problem)).await
        }
        Err(other) => Err(other.into()),
    }
}

/// A plan occasion on the clinician's timeline.
#[derive(Debug)]
struct OccasionLine {
    title: String,
    status: String,
    due: String,
    answered: String,
}

#[derive(Template)]
#[template(path = "patient_measures.html")]
struct TimelineTemplate {
    layout: Layout,
    patient_name: String,
    patient_link: String,
    charts: Vec<ChartView>,
    occasions: Vec<OccasionLine>,
    attendance: String,
    alerts: Option<Vec<AlertView>>,
}

pub async fn timeline(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(patient): Path<String>,
) -> Result<Response, WebError> {
    let patient = patient.parse().map_err(|_| WebError::NotFound)?;
    let timeline = measures::timeline(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.measures,
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        patient,
    )
    .await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/patients");
    let language = language_of(&layout);
    let zone = signed_in.account.time_zone.time_zone();
    let tr = &layout.tr;

    let charts = timeline
        .series
        .iter()
        .filter_map(|series| {
            let mut chart = chart_view(&state, tr, &language, &zone, series)?;
            chart.change = staff_change_line(tr, series).or(chart.change);
            Some(chart)
        })
        .collect();
    let occasions = timeline
        .occasions
        .iter()
        .map(|occasion| OccasionLine {
            title: tr.t_with(
                &format!("measures-wave-{}", occasion.occasion.wave.replace('_', "-")),
                "week",
                &occasion.occasion.week.to_string(),
            ),
            status: tr.t(&format!("measures-status-{}", occasion.status.code())),
            due: dates::short_date_time(occasion.occasion.due, &zone),
            answered: occasion
                .instruments
                .iter()
                .map(|(id, answered)| format!("{id} {}", if *answered { "✓" } else { "–" }))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let summary = timeline.attendance;
    let attendance = tr.t_with(
        "timeline-attendance",
        "line",
        &format!(
            "{}/{} ({} {})",
            summary.attended,
            summary.sessions,
            summary.made_up,
            tr.t("timeline-made-up")
        ),
    );
    let now = state.clock.now();
    let alerts = match timeline.alerts {
        Some(alerts) => {
            let mut views = Vec::with_capacity(alerts.len());
            for alert in alerts {
                views.push(alert_view(&state, tr, &zone, now, alert).await?);
            }
            Some(views)
        }
        None => None,
    };
    let patient = &timeline.patient;
    render(&TimelineTemplate {
        patient_name: format!("{} {}", patient.given_name, patient.family_name),
        patient_link: format!("/patients/{}", patient.id),
        charts,
        occasions,
        attendance,
        alerts,
        layout,
    })
}

/// The change line staff see: the difference, the index, the smallest reliable change and the
/// category.
fn staff_change_line(tr: &Translator, series: &MeasureSeries) -> Option<String> {
    let change = series.change.as_ref()?;
    let minimum = series.minimum_reliable_change?;
    let category = tr.t(&format!("timeline-category-{}", change.category.code()));
    Some(format!(
        "{}: {:+.1} · RCI {:+.2} · {} {:.1} · {category}",
        tr.t("timeline-change"),
        change.difference,
        change.rci,
        tr.t("timeline-minimum-reliable"),
        minimum
    ))
}
