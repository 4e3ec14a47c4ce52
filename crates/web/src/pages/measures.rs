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
use stillpoint_domain::measures::safety::{AlertLevel, AlertOutcome, AlertState};
use stillpoint_domain::{AlertId, InvalidValue, Language};

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
    /// Instruments not yet answered: (link, name).
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
    /// Whether the item may be left out, whatever the other items hold.
    optional: bool,
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
    /// Crisis resources and their call buttons, when a rejected form's answers fired a safety
    /// rule.
    crisis: Option<(String, Vec<(&'static str, String)>)>,
    /// Shown when the items are not written in the reader's language.
    language_notice: Option<String>,
    /// The language of the item text when it differs from the page's, for screen readers.
    text_lang: Option<String>,
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
        crisis: None,
        language_notice: (!instrument.item_languages().contains(&language)
            && !instrument.item_languages().is_empty())
        .then(|| layout.tr.t("questionnaire-language-notice")),
        text_lang: (!instrument.item_languages().contains(&language)
            && instrument.item_languages().contains(&Language::english()))
        .then(|| "en".to_owned()),
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
        optional: !item.required,
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
    /// Call and text buttons for the numbers in the text.
    crisis_links: Vec<(&'static str, String)>,
    /// Whether the answers were saved, which decides what the crisis box says next.
    saved: bool,
}

/// The fields of a submitted questionnaire form.
struct FormAnswers {
    answers: BTreeMap<String, u8>,
    client_id: String,
    occasion: String,
}

fn parse_form(form: Vec<(String, String)>) -> Result<FormAnswers, WebError> {
    let mut parsed = FormAnswers {
        answers: BTreeMap::new(),
        client_id: String::new(),
        occasion: String::new(),
    };
    for (name, value) in form {
        if let Some(item) = name.strip_prefix("item_") {
            let value: u8 = value.parse().map_err(|_| WebError::Invalid {
                field: format!("item {item}"),
                message: "choose one of the answers".to_owned(),
            })?;
            parsed.answers.insert(item.to_owned(), value);
        } else if name == "client_id" {
            parsed.client_id = value;
        } else if name == "occasion" {
            parsed.occasion = value;
        }
    }
    Ok(parsed)
}

/// Builds the id the response is stored under: the form's id joined to a digest of the answers.
/// A reloaded page repeats both, so it is stored once. Going back and changing an answer makes a
/// new response instead of being mistaken for the first one.
fn response_client_id(form_id: &str, answers: &BTreeMap<String, u8>) -> String {
    use std::hash::{Hash as _, Hasher as _};

    // `DefaultHasher::new` uses fixed keys, so the digest is the same on every server.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    answers.hash(&mut hasher);
    let form_id: String = form_id.chars().take(40).collect();
    format!("{form_id}-{:016x}", hasher.finish())
}

/// Returns whether the answers that are valid options fire one of the instrument's safety rules.
fn fires_safety_rule(instrument: &Instrument, answers: &BTreeMap<String, u8>) -> bool {
    let valid = instrument.valid_answers(answers);
    stillpoint_domain::measures::safety::evaluate(instrument, &valid, &[], &[]).is_some()
}

pub async fn submit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(instrument): Path<String>,
    CheckedForm(form): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let usable = usable(&state, &instrument).await?;
    let FormAnswers {
        answers,
        client_id,
        occasion,
    } = parse_form(form)?;
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
            client_id: response_client_id(&client_id, &answers),
            occasion: (!occasion.is_empty()).then_some(occasion.clone()),
            language: language.clone(),
        },
    )
    .await;
    let result = match submitted {
        Ok(result) => result,
        Err(stillpoint_app::AppError::Invalid(invalid)) => {
            // The use case already raised an alert when the valid answers fired a rule; the
            // form shows the crisis resources beside the problem.
            let message = match usable.instrument.check_answers(&answers) {
                Err(problem) => answer_problem(&layout.tr, &usable.instrument, &problem),
                Ok(()) => invalid.problem.clone(),
            };
            let crisis = if fires_safety_rule(&usable.instrument, &answers) {
                let text = crisis_text(&state, patient, &language, &layout.tr).await;
                let links = crisis_links(&layout.tr, &text);
                Some((text, links))
            } else {
                None
            };
            let mut template = questionnaire(
                layout,
                &usable,
                occasion,
                client_id,
                &answers,
                Some(message),
            );
            template.crisis = crisis;
            let mut response = render(&template)?;
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(response);
        }
        Err(other) if fires_safety_rule(&usable.instrument, &answers) => {
            // Saving failed, but the answers call for help now: show the crisis resources
            // with the failure rather than a bare error page.
            tracing::error!(patient_id = %patient, error = %other, "response with a safety answer could not be saved");
            let crisis_text = crisis_text(&state, patient, &language, &layout.tr).await;
            let crisis_links = crisis_links(&layout.tr, &crisis_text);
            let mut response = render(&ResultTemplate {
                title: pick(&usable.instrument.title, &language),
                lines: vec![layout.tr.t("measure-result-not-saved")],
                alert: true,
                crisis_text,
                crisis_links,
                saved: false,
                layout,
            })?;
            *response.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
            return Ok(response);
        }
        Err(other) => return Err(other.into()),
    };

    render_result(&state, layout, &usable, &result, patient).await
}

/// Renders the page after a stored response: the scores in words and, when it raised an alert,
/// the crisis resources first.
async fn render_result(
    state: &AppState,
    layout: Layout,
    usable: &UsableInstrument,
    result: &measures::SubmitResult,
    patient: stillpoint_domain::PatientId,
) -> Result<Response, WebError> {
    let language = language_of(&layout);
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
    let crisis_text = crisis_text(state, patient, &language, tr).await;
    let crisis_links = crisis_links(tr, &crisis_text);
    let template = ResultTemplate {
        title: pick(&usable.instrument.title, &language),
        lines,
        alert,
        crisis_text,
        crisis_links,
        saved: true,
        layout,
    };
    render(&template)
}

/// Describes a problem with the answers by the question's number, in the reader's language.
fn answer_problem(
    tr: &Translator,
    instrument: &Instrument,
    problem: &stillpoint_domain::measures::instrument::AnswerError,
) -> String {
    use stillpoint_domain::measures::instrument::AnswerError;

    let number = instrument
        .items
        .iter()
        .position(|item| item.id == problem.item())
        .map_or_else(
            || problem.item().to_owned(),
            |index| (index + 1).to_string(),
        );
    match problem {
        AnswerError::Missing(_) => tr.t_with("questionnaire-missing", "number", &number),
        AnswerError::NotAnOption { .. } | AnswerError::UnknownItem(_) => {
            tr.t_with("questionnaire-invalid-answer", "number", &number)
        }
    }
}

fn format_score(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Returns the site's crisis text in the reader's language, or the catalogue's default (for the
/// USA). A failed lookup is logged and falls back to the default, so crisis resources always show.
async fn crisis_text(
    state: &AppState,
    patient: stillpoint_domain::PatientId,
    language: &Language,
    tr: &Translator,
) -> String {
    match safety::crisis_text_for_patient(state.store.as_ref(), patient, language).await {
        Ok(Some(text)) => text,
        Ok(None) => tr.t("crisis-default"),
        Err(error) => {
            tracing::error!(patient_id = %patient, error = %error, "site crisis text could not be read; showing the default");
            tr.t("crisis-default")
        }
    }
}

/// Builds call and text buttons for the US crisis numbers the text names (988, 911), so a phone
/// can dial them with one tap. A site whose text names other numbers gets none.
fn crisis_links(tr: &Translator, text: &str) -> Vec<(&'static str, String)> {
    let mut links = Vec::new();
    if text.contains("988") {
        links.push(("tel:988", tr.t("crisis-call-988")));
        links.push(("sms:988", tr.t("crisis-text-988")));
    }
    if text.contains("911") {
        links.push(("tel:911", tr.t("crisis-call-911")));
    }
    links
}

#[derive(Template)]
#[template(path = "help.html")]
struct HelpTemplate {
    layout: Layout,
    crisis_text: String,
    crisis_links: Vec<(&'static str, String)>,
    /// Whether the care team was just asked to contact the patient.
    sent: bool,
    /// Whether the request could not be recorded.
    failed: bool,
}

#[derive(Debug, Deserialize)]
pub struct HelpQuery {
    #[serde(default)]
    sent: Option<String>,
}

/// Shows crisis resources at once, with a button that requests a call from the care team.
pub async fn show_help(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<HelpQuery>,
) -> Result<Response, WebError> {
    // The confirmation shows only while a request made in the last minutes is open, so an old
    // address from the history does not claim that help was asked for.
    let sent = query.sent.is_some()
        && safety::open_help_request(
            state.store.as_ref(),
            state.clock.as_ref(),
            &signed_in.account,
        )
        .await?;
    render_help(&state, &signed_in, sent, false).await
}

async fn render_help(
    state: &AppState,
    signed_in: &SignedIn,
    sent: bool,
    failed: bool,
) -> Result<Response, WebError> {
    let layout = Layout::new(state, &signed_in.viewer, "/help");
    let language = language_of(&layout);
    let patient = stillpoint_app::patients::own_record_id(state.store.as_ref(), &signed_in.account)
        .await?
        .ok_or(WebError::Forbidden)?;
    let crisis_text = crisis_text(state, patient, &language, &layout.tr).await;
    let crisis_links = crisis_links(&layout.tr, &crisis_text);
    render(&HelpTemplate {
        layout,
        crisis_text,
        crisis_links,
        sent,
        failed,
    })
}

/// Asks the care team to contact the patient, then shows the help page again (a reload does
/// not send the request twice). A failure still shows the crisis resources.
pub async fn request_help(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    let requested = safety::request_help(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await;
    match requested {
        Ok(_) => Ok(Redirect::to("/help?sent=1").into_response()),
        Err(stillpoint_app::AppError::Forbidden) => Err(WebError::Forbidden),
        Err(error) => {
            tracing::error!(account_id = %signed_in.account.id, error = %error, "request for help could not be recorded");
            let mut response = render_help(&state, &signed_in, false, true).await?;
            *response.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
            Ok(response)
        }
    }
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
    let baselines =
        measures::baseline_scores(state.store.as_ref(), &state.measures, &responses).await?;
    let charts = measures::series(&state.measures, &responses, &baselines)
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
    let svg = line_chart(&heading, scale.range, &scale.bands, &series.points, zone);
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
    zone: &jiff::tz::TimeZone,
) -> String {
    const WIDTH: f64 = 400.0;
    const HEIGHT: f64 = 200.0;
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 15.0;
    const BOTTOM: f64 = 35.0;
    let [low, high] = range;
    let span = (high - low).max(1.0);
    let y = |value: f64| HEIGHT - BOTTOM - (value - low) / span * (HEIGHT - TOP - BOTTOM);

    // Points sit at their dates, so a long gap between two answers shows as one.
    let first = points.first().map_or(0, |point| point.at.as_second());
    let last = points.last().map_or(0, |point| point.at.as_second());
    #[allow(clippy::cast_precision_loss)]
    let seconds = (last - first).max(1) as f64;
    let x = |point: &measures::SeriesPoint| {
        if points.len() < 2 {
            return (LEFT + WIDTH - RIGHT) / 2.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let offset = (point.at.as_second() - first) as f64;
        LEFT + offset / seconds * (WIDTH - LEFT - RIGHT)
    };

    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" aria-hidden=\"true\" focusable=\"false\"><title>{}</title>",
        askama::filters::escape(title, askama::filters::Html)
            .map_or_else(|_| String::new(), |t| t.to_string())
    );
    for (index, band) in bands.iter().enumerate() {
        let top = y(band.to.min(high));
        let bottom = y(band.from.max(low));
        let _ = write!(
            svg,
            "<rect class=\"chart__band chart__band--{}\" x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            index % 5,
            WIDTH - LEFT - RIGHT,
            (bottom - top).max(0.0)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{:.1}\" class=\"chart__axis\">{low}</text><text x=\"4\" y=\"{:.1}\" class=\"chart__axis\">{high}</text>",
        y(low),
        y(high) + 14.0
    );
    let date = |point: &measures::SeriesPoint| {
        point
            .at
            .to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d")
            .to_string()
    };
    if let (Some(first_point), Some(last_point)) = (points.first(), points.last()) {
        let (label_x, anchor) = if points.len() > 1 {
            (LEFT, "start")
        } else {
            (x(first_point), "middle")
        };
        let _ = write!(
            svg,
            "<text x=\"{label_x:.1}\" y=\"{:.1}\" class=\"chart__axis\" text-anchor=\"{anchor}\">{}</text>",
            HEIGHT - 8.0,
            date(first_point)
        );
        if points.len() > 1 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"chart__axis\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                HEIGHT - 8.0,
                date(last_point)
            );
        }
    }
    let path: Vec<String> = points
        .iter()
        .map(|point| format!("{:.1},{:.1}", x(point), y(point.reported)))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"chart__line\" points=\"{}\"/>",
        path.join(" ")
    );
    for point in points {
        let _ = write!(
            svg,
            "<circle class=\"chart__point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"6\"/>",
            x(point),
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
    let mut reason = alert_reason(tr, &alert.rules);
    if alert.source == "unsaved_form" {
        reason = format!("{reason} ({})", tr.t("alert-source-unsaved-form"));
    }
    let mut history = Vec::with_capacity(alert.events.len());
    for event in &alert.events {
        history.push(history_line(state, tr, zone, &alert, event).await);
    }
    let next_step = match alert.state {
        AlertState::Raised => "acknowledge",
        AlertState::Acknowledged => "action",
        AlertState::Actioned => "resolve",
        AlertState::Resolved => "",
    };
    Ok(AlertView {
        id: alert.id.to_string(),
        patient_link: format!("/patients/{}", patient.id),
        patient_name: format!("{} {}", patient.given_name, patient.family_name),
        level: tr.t(&format!("alert-level-{}", alert.level.code())),
        high: alert.level == AlertLevel::High,
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

/// Formats one line of an alert's history: when, what, who, and the detail in words.
async fn history_line(
    state: &AppState,
    tr: &Translator,
    zone: &jiff::tz::TimeZone,
    alert: &SafetyAlert,
    event: &stillpoint_app::ports::AlertEvent,
) -> String {
    let actor = match event.actor {
        Some(id) => match state.store.get_account(id).await {
            Ok(account) => account.display_name,
            Err(error) => {
                tracing::warn!(account_id = %id, error = %error, "alert history actor could not be read");
                id.to_string()
            }
        },
        None => tr.t("alert-actor-system"),
    };
    let detail = match event.step.as_str() {
        "raised" => alert_reason(tr, &alert.rules),
        "escalated" => tr.t(&format!(
            "alert-escalation-{}",
            event.detail.replace('_', "-")
        )),
        "actioned" => {
            let (outcome, note) = event
                .detail
                .split_once(": ")
                .unwrap_or((event.detail.as_str(), ""));
            let outcome = tr.t(&format!("alert-outcome-{}", outcome.replace('_', "-")));
            if note.is_empty() {
                outcome
            } else {
                format!("{outcome}: {note}")
            }
        }
        _ => event.detail.clone(),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" · {detail}")
    };
    format!(
        "{} · {} · {actor}{detail}",
        dates::short_date_time(event.at, zone),
        tr.t(&format!("alert-step-{}", event.step)),
    )
}

/// The rules that raised an alert, in words.
fn alert_reason(tr: &Translator, rules: &[String]) -> String {
    rules
        .iter()
        .map(|rule| {
            // A site threshold's code reads `<instrument>_<scale>_at_least_<score>`.
            if let Some((measure, score)) = rule.split_once("_at_least_") {
                let measure = measure.replacen('_', " ", 1);
                return tr.t_with(
                    "alert-rule-threshold",
                    "measure",
                    &format!("{measure} ≥ {score}"),
                );
            }
            let key = format!("alert-rule-{}", rule.replace('_', "-"));
            let text = tr.t(&key);
            if text == key { rule.clone() } else { text }
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    let tr = signed_in.viewer.translator(&state);
    let step = match crate::api::parse_alert_step(&form.step, outcome, form.note) {
        Ok(step) => step,
        Err(invalid) => {
            let message = step_problem(&tr, &invalid);
            return render_inbox(&state, &signed_in, Some(message)).await;
        }
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
            let message = step_problem(&tr, &invalid);
            render_inbox(&state, &signed_in, Some(message)).await
        }
        Err(other) => Err(other.into()),
    }
}

/// Describes a rejected alert step in the reader's language.
fn step_problem(tr: &Translator, invalid: &InvalidValue) -> String {
    match invalid.field {
        "outcome" => tr.t("alerts-error-outcome"),
        "note" => tr.t("alerts-error-note"),
        _ => tr.t("alerts-error-step"),
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
    /// The measures' names, the columns beside practice minutes in the dose table.
    dose_measures: Vec<String>,
    dose_rows: Vec<DoseRow>,
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
            let latest = series
                .points
                .last()
                .map(|point| format_score(point.reported));
            chart.summary = tr.t_with("timeline-latest", "score", &latest.unwrap_or_default());
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
            status: tr.t(&format!("timeline-status-{}", occasion.status.code())),
            due: dates::short_date_time(occasion.occasion.due, &zone),
            answered: occasion
                .instruments
                .iter()
                .map(|(id, answered)| {
                    let name = state.measures.instrument(id).map_or_else(
                        || id.clone(),
                        |instrument| pick(&instrument.title, &language),
                    );
                    let mark = if *answered {
                        tr.t("timeline-answered")
                    } else {
                        tr.t("timeline-not-answered")
                    };
                    format!("{name} ({mark})")
                })
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
    let (dose_measures, dose_rows) = dose_table(&state, tr, &language, &timeline);
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
        dose_measures,
        dose_rows,
        patient_name: format!("{} {}", patient.given_name, patient.family_name),
        patient_link: format!("/patients/{}", patient.id),
        charts,
        occasions,
        attendance,
        alerts,
        layout,
    })
}

/// One program week: practice minutes against the suggestion, and the last score of each
/// measure recorded that week.
struct DoseRow {
    week: String,
    practice: String,
    scores: Vec<String>,
}

/// Builds the table that puts each week's practice beside the scores recorded that week, so
/// the care team can read dose and outcome together.
fn dose_table(
    state: &AppState,
    tr: &Translator,
    language: &Language,
    timeline: &measures::PatientTimeline,
) -> (Vec<String>, Vec<DoseRow>) {
    let dose = &timeline.practice;
    let series: Vec<(&MeasureSeries, String)> = timeline
        .series
        .iter()
        .filter_map(|series| {
            let scale = state
                .measures
                .instrument(&series.instrument)?
                .scale(&series.scale)?;
            Some((series, pick(&scale.label, language)))
        })
        .collect();
    let rows = dose
        .weeks
        .iter()
        .map(|week| {
            let scores = series
                .iter()
                .map(|(series, _)| {
                    series
                        .points
                        .iter()
                        .rfind(|point| {
                            let day = point.at.to_zoned_datetime(dose.zone.clone()).date();
                            day >= week.starts && day < week.ends
                        })
                        .map(|point| format_score(point.reported))
                        .unwrap_or_default()
                })
                .collect();
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("minutes", week.minutes);
            args.set("assigned", week.assigned_minutes);
            args.set("days", week.days_practised);
            DoseRow {
                week: tr.t_with("session-class", "week", &week.week.to_string()),
                practice: tr.t_args("timeline-dose-practice", &args),
                scores,
            }
        })
        .collect();
    (series.into_iter().map(|(_, name)| name).collect(), rows)
}

/// The change line staff see: the difference, the index, the smallest reliable change and the
/// category.
fn staff_change_line(tr: &Translator, series: &MeasureSeries) -> Option<String> {
    let change = series.change.as_ref()?;
    let minimum = series.minimum_reliable_change?;
    let category = tr.t(&format!("timeline-category-{}", change.category.code()));
    let source = match series.sd_source? {
        stillpoint_domain::measures::change::SdSource::Norms => tr.t("timeline-sd-norms"),
        stillpoint_domain::measures::change::SdSource::ClinicBaselines { count } => {
            tr.t_with("timeline-sd-clinic", "count", &count.to_string())
        }
    };
    Some(format!(
        "{}: {:+.1} · RCI {:+.2} · {} {:.1} · {category} ({source})",
        tr.t("timeline-change"),
        change.difference,
        change.rci,
        tr.t("timeline-minimum-reliable"),
        minimum
    ))
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsTemplate {
    layout: Layout,
    /// (text, link, when, unread)
    notifications: Vec<(String, String, String, bool)>,
}

/// The signed-in staff member's notifications; opening the page marks them read.
pub async fn notifications(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let notifications = stillpoint_app::notifications::open_own(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.account,
    )
    .await?;
    // Opening the page marked every notice read, so the navigation counts none.
    let mut viewer = signed_in.viewer.clone();
    viewer.unread_notifications = 0;
    let layout = Layout::new(&state, &viewer, "/notifications");
    let zone = signed_in.account.time_zone.time_zone();
    let notifications = notifications
        .into_iter()
        .map(|notification| {
            (
                layout.tr.t(&notification.message_key),
                notification.link,
                dates::short_date_time(notification.created_at, &zone),
                notification.read_at.is_none(),
            )
        })
        .collect();
    render(&NotificationsTemplate {
        layout,
        notifications,
    })
}
