//! The patient's "My program" page: this week's theme and practice, the next session in their
//! own time zone, how to join, the schedule, and a gentle way back after a lapse.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use stillpoint_app::ports::SessionStatus;
use stillpoint_app::program::{self, ProgramView};
use stillpoint_domain::Language;
use stillpoint_domain::enrolment::EnrolmentState;
use stillpoint_domain::schedule::SessionKind;

use super::cohorts::session_name;
use super::curricula::{Audience, PlanView, plan_view};
use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::SignedIn;

/// One session of the patient's schedule.
#[derive(Debug)]
pub struct ScheduleLine {
    pub name: String,
    pub when: String,
    pub theme: String,
    pub cancelled: bool,
    pub past: bool,
}

#[derive(Template)]
#[template(path = "program.html")]
struct ProgramTemplate {
    layout: Layout,
    /// A sentence about where the patient is on the pathway, when they have no cohort yet.
    status_line: Option<String>,
    cohort_name: Option<String>,
    lapsed: bool,
    /// The week a lapsed patient rejoins at.
    rejoin_week: String,
    /// Themes of the weeks held so far, for the catch-up.
    catch_up: Vec<String>,
    week_heading: Option<String>,
    this_week: Option<PlanView>,
    /// Whether a facilitator adjusted the patient's home practice, which the plan above does not
    /// show.
    practice_adjusted: bool,
    next_session: Option<String>,
    /// The next session in the cohort's time zone, when it differs from the patient's.
    next_session_cohort_time: Option<String>,
    /// The next session's room page.
    room_href: Option<String>,
    join_text: String,
    attendance: Option<String>,
    schedule: Vec<ScheduleLine>,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let view = program::own_program(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
    )
    .await?;
    let layout = Layout::new(&state, &signed_in.viewer, "/program");
    let mut template = program_template(&state, &signed_in, layout, &view);
    template.practice_adjusted = state
        .store
        .practice_adjustment(view.patient)
        .await
        .map_err(stillpoint_app::AppError::from)?
        != stillpoint_domain::practice::Adjustment::default();
    render(&template)
}

pub async fn rejoin(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    program::rejoin(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &state.consents,
        &signed_in.account,
    )
    .await?;
    Ok(Redirect::to("/program").into_response())
}

fn program_template(
    state: &AppState,
    signed_in: &SignedIn,
    layout: Layout,
    view: &ProgramView,
) -> ProgramTemplate {
    let tr = &layout.tr;
    let now = state.clock.now();
    let language = Language::parse(&layout.lang).unwrap_or_else(|_| Language::english());
    let own_zone = signed_in.account.time_zone.time_zone();

    let (Some(cohort), Some(curriculum)) = (&view.cohort, &view.curriculum) else {
        return not_started(layout, &view.state);
    };

    let week = view.current_week.unwrap_or(1);
    let this_week = curriculum
        .session(SessionKind::Class { week })
        .map(|plan| plan_view(tr, curriculum, plan, &language, Audience::Patient));
    let week_heading = Some(if view.current_week.is_some() {
        tr.t("program-this-week")
    } else {
        tr.t("program-first-week")
    });
    let catch_up = (1..week)
        .filter_map(|earlier| {
            curriculum
                .session(SessionKind::Class { week: earlier })
                .map(|plan| {
                    format!(
                        "{}: {}",
                        session_name(tr, plan.kind),
                        curriculum.text(&plan.theme, &language)
                    )
                })
        })
        .collect();
    let cohort_zone = cohort.time_zone.time_zone();
    let zones_differ = cohort.time_zone.as_str() != signed_in.account.time_zone.as_str();
    let next_session = view.next_session.as_ref().map(|session| {
        format!(
            "{}: {}",
            session_name(tr, session.planned.kind),
            dates::long_date_time(tr, session.planned.start, &own_zone)
        )
    });
    let next_session_cohort_time =
        view.next_session
            .as_ref()
            .filter(|_| zones_differ)
            .map(|session| {
                tr.t_args("program-cohort-time", &{
                    let mut args = fluent_bundle::FluentArgs::new();
                    args.set(
                        "time",
                        dates::long_date_time(tr, session.planned.start, &cohort_zone),
                    );
                    args.set("zone", cohort.time_zone.to_string());
                    args
                })
            });
    let schedule = schedule_lines(tr, view, curriculum, &language, &own_zone, now);
    let attendance = view.attendance.live_rate().map(|_| {
        let mut args = fluent_bundle::FluentArgs::new();
        args.set("attended", view.attendance.attended.to_string());
        args.set("held", view.attendance.sessions.to_string());
        args.set("made_up", view.attendance.made_up.to_string());
        if view.attendance.made_up > 0 {
            tr.t_args("program-attendance-with-makeups", &args)
        } else {
            tr.t_args("program-attendance", &args)
        }
    });

    ProgramTemplate {
        status_line: None,
        cohort_name: Some(cohort.cohort.name.clone()),
        lapsed: view.state.code() == "lapsed",
        rejoin_week: week.to_string(),
        catch_up,
        week_heading,
        this_week,
        practice_adjusted: false,
        next_session,
        next_session_cohort_time,
        room_href: view
            .next_session
            .as_ref()
            .map(|session| format!("/sessions/{}/room", session.id)),
        join_text: tr.t("program-join"),
        attendance,
        schedule,
        layout,
    }
}

/// Builds the page of a patient who has no cohort yet, or waits for a place.
fn not_started(layout: Layout, state: &EnrolmentState) -> ProgramTemplate {
    let status_line = match state {
        EnrolmentState::Waitlisted { .. } => layout.tr.t("program-waitlisted"),
        other => layout.tr.t_with(
            "program-not-started",
            "state",
            &layout.tr.t(&format!("enrolment-state-{}", other.code())),
        ),
    };
    ProgramTemplate {
        status_line: Some(status_line),
        cohort_name: None,
        lapsed: false,
        rejoin_week: String::new(),
        catch_up: Vec::new(),
        week_heading: None,
        this_week: None,
        practice_adjusted: false,
        next_session: None,
        next_session_cohort_time: None,
        room_href: None,
        join_text: String::new(),
        attendance: None,
        schedule: Vec::new(),
        layout,
    }
}

/// Lists every session of the patient's cohort, in the patient's own time zone.
fn schedule_lines(
    tr: &crate::i18n::Translator,
    view: &ProgramView,
    curriculum: &stillpoint_domain::curriculum::Curriculum,
    language: &Language,
    own_zone: &jiff::tz::TimeZone,
    now: jiff::Timestamp,
) -> Vec<ScheduleLine> {
    view.sessions
        .iter()
        .map(|session| ScheduleLine {
            name: session_name(tr, session.planned.kind),
            when: dates::long_date_time(tr, session.planned.start, own_zone),
            theme: curriculum
                .session(session.planned.kind)
                .map(|plan| curriculum.text(&plan.theme, language).to_owned())
                .unwrap_or_default(),
            cancelled: session.status == SessionStatus::Cancelled,
            past: session.planned.end <= now,
        })
        .collect()
}
