//! Cohort pages: the list, the administrators' cohort builder, and one cohort with its schedule,
//! roster, attendance and changes.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::civil::{Date, DateTime, Time};
use stillpoint_app::cohort_view::{self, CohortView};
use stillpoint_app::cohorts::{self, BuilderChoices, CohortRequest};
use stillpoint_app::ports::{CohortDetails, SessionStatus};
use stillpoint_app::{AppError, StorageError};
use stillpoint_app::{accounts, curricula};
use stillpoint_domain::schedule::{DstResolution, SessionKind};
use stillpoint_domain::{CohortId, InvalidValue, Language};

use super::fields::Fields;
use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::viewer::SignedIn;

/// One line of the cohort list.
#[derive(Debug)]
pub struct CohortRow {
    pub id: String,
    pub name: String,
    pub curriculum: String,
    pub next_session: String,
}

#[derive(Template)]
#[template(path = "cohorts.html")]
struct CohortsTemplate {
    layout: Layout,
    cohorts: Vec<CohortRow>,
    can_create: bool,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let store = state.store.as_ref();
    let layout = Layout::new(&state, &signed_in.viewer, "/cohorts");
    if !signed_in.account.is_staff() {
        return Err(WebError::Forbidden);
    }
    let now = state.clock.now();
    let mut rows = Vec::new();
    for details in cohort_view::list_visible(store, &signed_in.account).await? {
        let sessions = store.list_cohort_sessions(details.cohort.id).await?;
        let zone = details.time_zone.time_zone();
        let next_session = sessions
            .iter()
            .find(|session| session.status == SessionStatus::Scheduled && session.planned.end > now)
            .map_or_else(
                || layout.tr.t("cohorts-finished"),
                |session| {
                    format!(
                        "{}: {}",
                        session_name(&layout.tr, session.planned.kind),
                        dates::long_date_time(&layout.tr, session.planned.start, &zone)
                    )
                },
            );
        rows.push(CohortRow {
            id: details.cohort.id.to_string(),
            name: details.cohort.name.clone(),
            curriculum: curriculum_label(&details),
            next_session,
        });
    }
    render(&CohortsTemplate {
        can_create: curricula::may_edit(&signed_in.account),
        layout,
        cohorts: rows,
    })
}

/// Returns the name of a session kind, such as "Week 3 class".
#[must_use]
pub fn session_name(tr: &Translator, kind: SessionKind) -> String {
    match kind {
        SessionKind::Orientation => tr.t("session-orientation"),
        SessionKind::Class { week } => tr.t_with("session-class", "week", &week.to_string()),
        SessionKind::Retreat => tr.t("session-retreat"),
    }
}

fn curriculum_label(details: &CohortDetails) -> String {
    details
        .curriculum
        .as_ref()
        .map_or_else(String::new, |(id, version)| format!("{id} v{version}"))
}

/// A choice in a select list.
#[derive(Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "cohort_new.html")]
struct CohortNewTemplate {
    layout: Layout,
    sites: Vec<Choice>,
    curricula: Vec<Choice>,
    facilitators: Vec<Choice>,
    co_facilitators: Vec<Choice>,
    languages: Vec<Choice>,
    providers: Vec<Choice>,
    fields: Fields,
    /// The rejected field's name, its label and the problem.
    error: Option<(String, String, String)>,
}

/// Returns the catalogue message of the builder's label for a field a use case names.
fn builder_label(field: &str) -> &'static str {
    match field {
        "name" => "cohort-name",
        "site_id" => "cohort-site",
        "curriculum" => "cohort-curriculum",
        "capacity" => "cohort-capacity",
        "language" => "cohort-language",
        "lead_facilitator_id" => "cohort-lead-facilitator",
        "co_facilitator_id" => "cohort-co-facilitator",
        "video_provider" => "cohort-video",
        "time_zone" => "cohort-time-zone",
        "orientation_date" => "cohort-orientation-date",
        "start_date" => "cohort-first-class-date",
        "class_time" => "cohort-class-time",
        "class_length" => "cohort-class-minutes",
        "retreat_date" => "cohort-retreat-date",
        "retreat_time" => "cohort-retreat-time",
        "retreat_length" => "cohort-retreat-minutes",
        "skip_dates" => "cohort-skip-dates",
        _ => "cohort-new-title",
    }
}

impl CohortNewTemplate {
    fn value<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        let value = self.fields.text(name);
        if value.is_empty() && !self.fields.0.iter().any(|(key, _)| key == name) {
            default
        } else {
            value
        }
    }

    fn invalid(&self, field: &str) -> bool {
        self.error
            .as_ref()
            .is_some_and(|(name, _, _)| name == field)
    }
}

pub async fn show_new(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render_new(&state, &signed_in, Fields::default(), None, StatusCode::OK).await
}

pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let fields = Fields(fields);
    let outcome = match cohort_request(&state, &fields).await {
        Ok(request) => {
            cohorts::create(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                request,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(created) => Ok(
            Redirect::to(&format!("/cohorts/{}?notice=created", created.cohort.id)).into_response(),
        ),
        Err(AppError::Invalid(invalid)) => {
            render_new(
                &state,
                &signed_in,
                fields,
                Some(invalid),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads the builder form. Class and retreat lengths left empty take the curriculum's lengths.
async fn cohort_request(state: &AppState, fields: &Fields) -> Result<CohortRequest, AppError> {
    let (curriculum_id, curriculum_version) = fields
        .text("curriculum")
        .split_once('@')
        .and_then(|(id, version)| Some((id.to_owned(), version.parse::<u32>().ok()?)))
        .ok_or_else(|| InvalidValue::new("curriculum", "choose a curriculum"))?;
    let curriculum = stillpoint_domain::curriculum::CurriculumId::parse(&curriculum_id)?;
    // An unknown version is reported by the use case; its lengths here only fill empty fields.
    let lengths = match state
        .store
        .get_curriculum_version(&curriculum, curriculum_version)
        .await
    {
        Ok(stored) => (
            stored.curriculum.class_minutes,
            stored.curriculum.retreat_minutes,
        ),
        Err(StorageError::NotFound { .. }) => (150, 420),
        Err(other) => return Err(other.into()),
    };
    let date = |name: &str, field: &'static str| {
        fields.parse::<Date>(name, field, "a date such as 2027-03-09")
    };
    let time =
        |name: &str, field: &'static str| fields.parse::<Time>(name, field, "a time such as 18:00");
    let skip_dates = fields
        .text("skip_dates")
        .split([',', ' ', '\n'])
        .filter(|text| !text.trim().is_empty())
        .map(|text| {
            text.trim().parse::<Date>().map_err(|_| {
                InvalidValue::new(
                    "skip_dates",
                    format!(
                        "'{}' is not a date; list dates such as 2027-03-16, separated by commas",
                        text.trim()
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let retreat_date = date("retreat_date", "retreat_date")?;
    let retreat_time = time("retreat_time", "retreat_time")?;
    Ok(CohortRequest {
        site: fields.parse("site_id", "site_id", "one of the listed sites")?,
        name: fields.text("name").to_owned(),
        capacity: fields.parse("capacity", "capacity", "a whole number such as 15")?,
        language: Language::parse(fields.text("language"))?,
        time_zone: fields.text("time_zone").to_owned(),
        lead_facilitator: fields.parse(
            "lead_facilitator_id",
            "lead_facilitator_id",
            "one of the listed facilitators",
        )?,
        co_facilitator: fields.parse_optional(
            "co_facilitator_id",
            "co_facilitator_id",
            "one of the listed facilitators",
        )?,
        video_provider: fields.text("video_provider").to_owned(),
        orientation_date: date("orientation_date", "orientation_date")?,
        first_class_date: date("first_class_date", "start_date")?,
        class_time: time("class_time", "class_time")?,
        class_minutes: fields
            .parse_optional("class_minutes", "class_length", "minutes such as 150")?
            .unwrap_or(i64::from(lengths.0)),
        retreat_start: DateTime::from_parts(retreat_date, retreat_time),
        retreat_minutes: fields
            .parse_optional("retreat_minutes", "retreat_length", "minutes such as 420")?
            .unwrap_or(i64::from(lengths.1)),
        skip_dates,
        curriculum_id,
        curriculum_version,
    })
}

async fn render_new(
    state: &AppState,
    signed_in: &SignedIn,
    fields: Fields,
    error: Option<InvalidValue>,
    status: StatusCode,
) -> Result<Response, WebError> {
    if !curricula::may_edit(&signed_in.account) {
        return Err(WebError::Forbidden);
    }
    let layout = Layout::new(state, &signed_in.viewer, "/cohorts/new");
    let choices = cohorts::builder_choices(state.store.as_ref(), &signed_in.account).await?;
    let tr = &layout.tr;
    let selected = |name: &str, value: &str| fields.text(name) == value;
    let BuilderChoices {
        sites,
        facilitators,
        curricula,
    } = choices;
    let site_choices = sites
        .iter()
        .map(|site| Choice {
            value: site.id.to_string(),
            label: format!("{} ({})", site.name, site.time_zone),
            selected: selected("site_id", &site.id.to_string()),
        })
        .collect();
    let curriculum_choices = curricula
        .iter()
        .map(|curriculum| {
            let value = format!("{}@{}", curriculum.id, curriculum.version);
            Choice {
                label: format!(
                    "{} (v{}, {} min)",
                    curriculum.text(
                        &curriculum.title,
                        &Language::parse(&layout.lang).unwrap_or_else(|_| Language::english())
                    ),
                    curriculum.version,
                    curriculum.class_minutes
                ),
                selected: selected("curriculum", &value),
                value,
            }
        })
        .collect();
    let site_names = |at: &[stillpoint_domain::SiteId]| {
        at.iter()
            .filter_map(|id| sites.iter().find(|site| site.id == *id))
            .map(|site| site.code.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let facilitator_choices = |name: &str| -> Vec<Choice> {
        facilitators
            .iter()
            .map(|(account, at)| Choice {
                value: account.id.to_string(),
                label: format!("{} ({})", account.display_name, site_names(at)),
                selected: selected(name, &account.id.to_string()),
            })
            .collect()
    };
    let languages = ["en", "es"]
        .into_iter()
        .map(|tag| Choice {
            value: tag.to_owned(),
            label: tr.t(&format!("language-name-{tag}")),
            selected: selected("language", tag),
        })
        .collect();
    let providers = ["embedded", "livekit", "external"]
        .into_iter()
        .map(|code| Choice {
            value: code.to_owned(),
            label: tr.t(&format!("video-provider-{code}")),
            selected: selected("video_provider", code),
        })
        .collect();
    let template = CohortNewTemplate {
        sites: site_choices,
        curricula: curriculum_choices,
        facilitators: facilitator_choices("lead_facilitator_id"),
        co_facilitators: facilitator_choices("co_facilitator_id"),
        languages,
        providers,
        fields,
        error: error.map(|invalid| {
            let label = tr.t(builder_label(invalid.field));
            (invalid.field.to_owned(), label, invalid.problem)
        }),
        layout,
    };
    let mut response = render(&template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// One session line of the cohort page.
#[derive(Debug)]
pub struct SessionRow {
    pub href: String,
    pub name: String,
    pub theme: String,
    pub when: String,
    pub cancelled: bool,
    pub dst_warning: Option<String>,
}

/// One patient line of the roster.
#[derive(Debug)]
pub struct RosterRow {
    pub href: String,
    pub name: String,
    pub state: String,
    pub lapsed: bool,
    pub attendance: String,
}

#[derive(Template)]
#[template(path = "cohort.html")]
struct CohortTemplate {
    layout: Layout,
    name: String,
    facts: Vec<(String, String)>,
    sessions: Vec<SessionRow>,
    show_roster: bool,
    roster: Vec<RosterRow>,
    cohort_rate: String,
    changes: Vec<String>,
    /// Whether to offer the capacity form: the site's program administrators.
    can_change_capacity: bool,
    capacity: String,
    form_action: String,
    error: Option<String>,
    /// The confirmation of what was just saved, shown at the top.
    notice: Option<String>,
    /// The video form, for those who change the cohort's sessions: the address it posts to,
    /// the providers with whether each is chosen, and the stored meeting link.
    video_form: Option<VideoForm>,
}

struct VideoForm {
    action: String,
    providers: Vec<(String, String, bool)>,
    link: String,
    /// The problem with the last submission, and the field it concerns: `video_provider` or
    /// `video_link`.
    error: Option<String>,
    error_field: &'static str,
}

/// The query of the cohort page: `notice` names what was just saved.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CohortQuery {
    #[serde(default)]
    notice: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(cohort_id): Path<String>,
    Query(query): Query<CohortQuery>,
) -> Result<Response, WebError> {
    let cohort: CohortId = cohort_id.parse().map_err(|_| WebError::NotFound)?;
    let notice = match query.notice.as_deref() {
        Some("created") => Some("cohort-notice-created"),
        Some("changed") => Some("cohort-notice-changed"),
        Some("capacity") => Some("cohort-notice-capacity"),
        Some("video") => Some("cohort-notice-video"),
        _ => None,
    };
    render_cohort(&state, &signed_in, cohort, PageOutcome::Notice(notice)).await
}

/// Renders the cohort page, with the capacity form's rejected value and problem when given.
/// What the cohort page reports at its top.
#[derive(Debug)]
pub(super) enum PageOutcome {
    /// A confirmation of what was just saved, as a catalogue message id.
    Notice(Option<&'static str>),
    /// The capacity form's rejected value and the problem.
    RejectedCapacity { value: String, problem: String },
    /// The video form's rejected values, the field at fault and the problem.
    RejectedVideo {
        provider: String,
        link: String,
        field: &'static str,
        problem: String,
    },
}

/// Renders the cohort page with `outcome` at its top.
pub(super) async fn render_cohort(
    state: &AppState,
    signed_in: &SignedIn,
    cohort: CohortId,
    outcome: PageOutcome,
) -> Result<Response, WebError> {
    let view = cohort_view::view(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        cohort,
    )
    .await?;
    let path = format!("/cohorts/{cohort}");
    let layout = Layout::new(state, &signed_in.viewer, &path);
    let mut template = cohort_template(state, layout, &view, &path).await?;
    template.can_change_capacity = curricula::may_edit(&signed_in.account);
    if view.access.change_sessions {
        let link = state
            .store
            .cohort_video_link(cohort)
            .await?
            .unwrap_or_default();
        let tr = &template.layout.tr;
        template.video_form = Some(VideoForm {
            action: format!("{path}/video"),
            providers: stillpoint_domain::live::VideoProvider::ALL
                .iter()
                .map(|provider| {
                    (
                        provider.code().to_owned(),
                        tr.t(&format!("video-provider-{}", provider.code())),
                        provider.code() == view.details.video_provider,
                    )
                })
                .collect(),
            link,
            error: None,
            error_field: "",
        });
    }
    let status = match outcome {
        PageOutcome::RejectedCapacity { value, problem } => {
            template.capacity = value;
            template.error = Some(problem);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        PageOutcome::Notice(notice) => {
            template.notice = notice.map(|id| template.layout.tr.t(id));
            StatusCode::OK
        }
        PageOutcome::RejectedVideo {
            provider,
            link,
            field,
            problem,
        } => {
            if let Some(form) = template.video_form.as_mut() {
                for (code, _, chosen) in &mut form.providers {
                    *chosen = *code == provider;
                }
                form.link = link;
                form.error = Some(problem);
                form.error_field = field;
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    let mut response = render(&template)?;
    *response.status_mut() = status;
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
pub struct CapacityForm {
    #[serde(default)]
    capacity: String,
}

pub async fn change_capacity(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(cohort_id): Path<String>,
    CheckedForm(form): CheckedForm<CapacityForm>,
) -> Result<Response, WebError> {
    let cohort: CohortId = cohort_id.parse().map_err(|_| WebError::NotFound)?;
    let outcome = match form.capacity.trim().parse::<u32>() {
        Ok(capacity) => {
            cohort_view::change_capacity(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                cohort,
                capacity,
            )
            .await
        }
        Err(_) => Err(InvalidValue::new(
            "capacity",
            format!(
                "'{}' is not a whole number; enter the number of places",
                form.capacity.trim()
            ),
        )
        .into()),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/cohorts/{cohort}?notice=capacity")).into_response()),
        Err(AppError::Invalid(invalid)) => {
            render_cohort(
                &state,
                &signed_in,
                cohort,
                PageOutcome::RejectedCapacity {
                    value: form.capacity,
                    problem: invalid.problem,
                },
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

async fn cohort_template(
    state: &AppState,
    layout: Layout,
    view: &CohortView,
    path: &str,
) -> Result<CohortTemplate, WebError> {
    let tr = &layout.tr;
    let language = Language::parse(&layout.lang).unwrap_or_else(|_| Language::english());
    let facilitator_ids: Vec<_> = view
        .details
        .facilitators
        .iter()
        .map(|(id, _)| *id)
        .chain(view.changes.iter().map(|change| change.actor))
        .collect();
    let names = accounts::display_names(state.store.as_ref(), &facilitator_ids).await?;
    let facts = cohort_facts(tr, view, &names, &language);

    let sessions = session_rows(tr, view, path, &language);
    let roster = view
        .roster
        .iter()
        .map(|line| RosterRow {
            href: format!("/patients/{}", line.entry.patient),
            name: format!("{} {}", line.entry.given_name, line.entry.family_name),
            state: tr.t(&format!("enrolment-state-{}", line.entry.state.code())),
            lapsed: line.entry.state.code() == "lapsed",
            attendance: attendance_text(tr, &line.attendance),
        })
        .collect();
    let changes = change_lines(tr, view, &names);
    Ok(CohortTemplate {
        name: view.details.cohort.name.clone(),
        facts,
        sessions,
        show_roster: view.access.roster,
        roster,
        cohort_rate: attendance_text(tr, &view.cohort_attendance),
        changes,
        can_change_capacity: false,
        capacity: view.details.capacity.to_string(),
        form_action: format!("{path}/capacity"),
        error: None,
        notice: None,
        video_form: None,
        layout,
    })
}

/// Lists the facts at the top of the cohort page. Only those who see the roster see the places.
fn cohort_facts(
    tr: &Translator,
    view: &CohortView,
    names: &std::collections::HashMap<stillpoint_domain::AccountId, String>,
    language: &Language,
) -> Vec<(String, String)> {
    let facilitators = view
        .details
        .facilitators
        .iter()
        .map(|(id, lead)| {
            let name = names.get(id).cloned().unwrap_or_default();
            if *lead {
                tr.t_with("cohort-lead", "name", &name)
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let places = view
        .roster
        .iter()
        .filter(|line| line.entry.state.holds_place())
        .count();

    let mut facts = vec![
        (tr.t("cohort-facilitators"), facilitators),
        (
            tr.t("cohort-curriculum"),
            view.curriculum
                .as_ref()
                .map_or_else(String::new, |curriculum| {
                    format!(
                        "{} (v{})",
                        curriculum.text(&curriculum.title, language),
                        curriculum.version
                    )
                }),
        ),
        (tr.t("cohort-time-zone"), view.details.time_zone.to_string()),
        (
            tr.t("cohort-language"),
            tr.t(&format!(
                "language-name-{}",
                view.details.language.primary()
            )),
        ),
        (
            tr.t("cohort-video"),
            tr.t(&format!("video-provider-{}", view.details.video_provider)),
        ),
    ];
    if view.access.roster {
        facts.push((
            tr.t("cohort-places"),
            tr.t_args("cohort-places-value", &{
                let mut args = fluent_bundle::FluentArgs::new();
                args.set("taken", places.to_string());
                args.set("capacity", view.details.capacity.to_string());
                args
            }),
        ));
    }
    facts
}

/// Builds the session lines of the cohort page, with times in the cohort's zone.
fn session_rows(
    tr: &Translator,
    view: &CohortView,
    path: &str,
    language: &Language,
) -> Vec<SessionRow> {
    let zone = view.details.time_zone.time_zone();
    view.sessions
        .iter()
        .map(|session| SessionRow {
            href: format!("{path}/sessions/{}", session.id),
            name: session_name(tr, session.planned.kind),
            theme: view
                .curriculum
                .as_ref()
                .and_then(|curriculum| {
                    curriculum
                        .session(session.planned.kind)
                        .map(|plan| curriculum.text(&plan.theme, language).to_owned())
                })
                .unwrap_or_default(),
            when: dates::long_date_time(tr, session.planned.start, &zone),
            cancelled: session.status == SessionStatus::Cancelled,
            dst_warning: session.planned.dst.map(|resolution| match resolution {
                DstResolution::Gap { shifted_by } => tr.t_with(
                    "cohort-dst-gap",
                    "minutes",
                    &shifted_by.as_mins().to_string(),
                ),
                DstResolution::Overlap => tr.t("cohort-dst-overlap"),
            }),
        })
        .collect()
}

/// Builds the lines of the session change history, newest first.
fn change_lines(
    tr: &Translator,
    view: &CohortView,
    names: &std::collections::HashMap<stillpoint_domain::AccountId, String>,
) -> Vec<String> {
    let zone = view.details.time_zone.time_zone();
    view.changes
        .iter()
        .map(|change| {
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("who", names.get(&change.actor).cloned().unwrap_or_default());
            args.set("when", dates::short_date_time(change.at, &zone));
            args.set("from", dates::short_date_time(change.previous_start, &zone));
            args.set("reason", change.reason.clone());
            args.set(
                "session",
                view.sessions
                    .iter()
                    .find(|session| session.id == change.session)
                    .map(|session| session_name(tr, session.planned.kind))
                    .unwrap_or_default(),
            );
            match change.new_start {
                Some(new_start) => {
                    args.set("to", dates::short_date_time(new_start, &zone));
                    tr.t_args("cohort-change-rescheduled", &args)
                }
                None => tr.t_args("cohort-change-cancelled", &args),
            }
        })
        .collect()
}

/// "4 of 5 sessions (80%), 1 more made up", or "no sessions held yet".
#[must_use]
pub fn attendance_text(
    tr: &Translator,
    summary: &stillpoint_domain::attendance::AttendanceSummary,
) -> String {
    let Some(rate) = summary.live_rate() else {
        return tr.t("attendance-none-yet");
    };
    let mut args = fluent_bundle::FluentArgs::new();
    args.set("attended", summary.attended.to_string());
    args.set("held", summary.sessions.to_string());
    args.set("percent", percent(rate));
    // A number, so the catalogue can choose the plural form.
    args.set("made_up", f64::from(summary.made_up));
    if summary.made_up > 0 {
        tr.t_args("attendance-rate-with-makeups", &args)
    } else {
        tr.t_args("attendance-rate", &args)
    }
}

fn percent(rate: f64) -> String {
    format!("{:.0}", rate * 100.0)
}
