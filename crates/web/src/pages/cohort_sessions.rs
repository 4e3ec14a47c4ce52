//! One session of a cohort: its plan from the curriculum, the roll call, and rescheduling or
//! cancelling it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::civil::{Date, DateTime, Time};
use stillpoint_app::AppError;
use stillpoint_app::cohort_view::{self, RollCallInput};
use stillpoint_app::ports::SessionStatus;
use stillpoint_domain::attendance::AttendanceMark;
use stillpoint_domain::{CohortId, CohortSessionId, Language, PatientId};

use super::cohorts::session_name;
use super::curricula::{Audience, PlanView, plan_view};
use super::fields::Fields;
use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::viewer::SignedIn;

/// The forms the page offers.
#[derive(Debug, Clone, Copy)]
pub struct SessionActions {
    /// The roll call: for those who take roll, once the session has started.
    pub take_roll: bool,
    /// Rescheduling and cancelling: for those who change sessions, before the session starts.
    pub change: bool,
}

/// One patient's line of the roll call form.
#[derive(Debug)]
pub struct RollCallRow {
    pub patient_id: String,
    pub name: String,
    /// The stored or submitted mark code, or "" when none.
    pub mark: String,
    pub minutes: String,
    pub makeup: String,
    /// Whether the mark and minutes were filled in from the session room's join and leave events.
    pub from_room: bool,
}

#[derive(Template)]
#[template(path = "cohort_session.html")]
#[allow(clippy::struct_excessive_bools)] // Independent parts of the page, each shown or not.
struct SessionTemplate {
    layout: Layout,
    cohort_name: String,
    cohort_href: String,
    action_base: String,
    session_id: String,
    title: String,
    when: String,
    cancelled: bool,
    plan: Option<PlanView>,
    roll_call: Vec<RollCallRow>,
    actions: SessionActions,
    session_minutes: u32,
    marks: Vec<(String, String)>,
    makeups: Vec<(String, String)>,
    local_date: String,
    local_time: String,
    /// The reasons typed into the reschedule and cancel forms, kept after an error.
    reason: String,
    cancel_reason: String,
    error: Option<String>,
    /// The form field the error concerns, marked invalid: `reason` of the reschedule form,
    /// `cancel_reason` of the cancel form, or the field the use case names.
    error_field: String,
    /// The cohort's time zone, which the reschedule form's times are in.
    time_zone: String,
    saved: bool,
    /// Whether the room can still be entered: the session is not cancelled and its window has
    /// not closed.
    room_open_or_ahead: bool,
    /// Whether the page offers caregiver invitations: to those who take roll, while the room can
    /// still be entered.
    can_invite: bool,
    /// The caregivers of the cohort's patients, for the facilitator's invitations.
    guests: Vec<GuestRow>,
    invited: bool,
    withdrawn: bool,
}

/// One caregiver who may be invited to the session.
#[derive(Debug)]
pub struct GuestRow {
    pub caregiver_id: String,
    pub name: String,
    pub patient_name: String,
    pub invited: bool,
    /// Whether a facilitator removed the caregiver from this session's room.
    pub removed: bool,
}

/// The query of the session page: `saved=1` after a stored roll call, `invited=1` and
/// `withdrawn=1` after an invitation changed.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SessionQuery {
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    invited: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((cohort_id, session_id)): Path<(String, String)>,
    Query(query): Query<SessionQuery>,
) -> Result<Response, WebError> {
    let (cohort, session) = ids(&cohort_id, &session_id)?;
    let saved = if query.invited.is_some() {
        Some(Outcome::Invited)
    } else if query.withdrawn.is_some() {
        Some(Outcome::Withdrawn)
    } else {
        query.saved.is_some().then_some(Outcome::Saved)
    };
    render_page(
        &state,
        &signed_in,
        cohort,
        session,
        None,
        saved,
        StatusCode::OK,
    )
    .await
}

/// The page's report on the last submitted form.
#[derive(Debug)]
enum Outcome {
    Saved,
    /// A caregiver was invited to the session.
    Invited,
    /// A caregiver's invitation was withdrawn.
    Withdrawn,
    Invalid(stillpoint_domain::InvalidValue),
}

pub async fn take_roll(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((cohort_id, session_id)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (cohort, session) = ids(&cohort_id, &session_id)?;
    check_session_of(&state, cohort, session).await?;
    let fields = Fields(fields);
    // Each `mark_<patient id>` field with a value is one line of the roll call.
    let lines = fields
        .0
        .iter()
        .filter_map(|(name, value)| {
            let patient = name.strip_prefix("mark_")?.parse::<PatientId>().ok()?;
            (!value.trim().is_empty()).then(|| RollCallInput {
                patient,
                mark: value.clone(),
                minutes: fields.text(&format!("minutes_{patient}")).to_owned(),
                makeup: fields.text(&format!("makeup_{patient}")).to_owned(),
            })
        })
        .collect();
    let outcome = cohort_view::take_roll(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        session,
        lines,
    )
    .await;
    let saved = format!("/cohorts/{cohort}/sessions/{session}?saved=1");
    after_form(
        &state,
        &signed_in,
        (cohort, session),
        fields,
        outcome,
        &saved,
    )
    .await
}

pub async fn reschedule(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((cohort_id, session_id)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (cohort, session) = ids(&cohort_id, &session_id)?;
    check_session_of(&state, cohort, session).await?;
    let fields = Fields(fields);
    let new_start = fields
        .parse::<Date>("new_date", "new_start", "a date such as 2027-03-16")
        .and_then(|date| {
            fields
                .parse::<Time>("new_time", "new_start", "a time such as 18:00")
                .map(|time| DateTime::from_parts(date, time))
        });
    let outcome = match new_start {
        Ok(new_start) => cohort_view::reschedule(
            state.store.as_ref(),
            state.clock.as_ref(),
            &signed_in.viewer.audit_context(),
            &signed_in.account,
            session,
            new_start,
            fields.text("reason"),
        )
        .await
        .map(|_| ()),
        Err(invalid) => Err(invalid.into()),
    };
    let cohort_page = format!("/cohorts/{cohort}?notice=changed");
    after_form(
        &state,
        &signed_in,
        (cohort, session),
        fields,
        outcome,
        &cohort_page,
    )
    .await
}

pub async fn cancel(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((cohort_id, session_id)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (cohort, session) = ids(&cohort_id, &session_id)?;
    check_session_of(&state, cohort, session).await?;
    let fields = Fields(fields);
    let outcome = cohort_view::cancel(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        session,
        fields.text("cancel_reason"),
    )
    .await;
    let cohort_page = format!("/cohorts/{cohort}?notice=changed");
    after_form(
        &state,
        &signed_in,
        (cohort, session),
        fields,
        outcome,
        &cohort_page,
    )
    .await
}

/// Redirects to `success_path` after a stored form, or shows the session page again with the
/// submitted values and the problem.
async fn after_form(
    state: &AppState,
    signed_in: &SignedIn,
    (cohort, session): (CohortId, CohortSessionId),
    fields: Fields,
    outcome: Result<(), AppError>,
    success_path: &str,
) -> Result<Response, WebError> {
    match outcome {
        Ok(()) => Ok(Redirect::to(success_path).into_response()),
        Err(AppError::Invalid(invalid)) => {
            render_page(
                state,
                signed_in,
                cohort,
                session,
                Some(fields),
                Some(Outcome::Invalid(invalid)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

fn ids(cohort_id: &str, session_id: &str) -> Result<(CohortId, CohortSessionId), WebError> {
    Ok((
        cohort_id.parse().map_err(|_| WebError::NotFound)?,
        session_id.parse().map_err(|_| WebError::NotFound)?,
    ))
}

/// Checks that the session belongs to the cohort in the path, so a form cannot act on another
/// cohort's session through this cohort's address.
async fn check_session_of(
    state: &AppState,
    cohort: CohortId,
    session: CohortSessionId,
) -> Result<(), WebError> {
    let stored = state.store.get_cohort_session(session).await?;
    if stored.cohort == cohort {
        Ok(())
    } else {
        Err(WebError::NotFound)
    }
}

#[allow(clippy::too_many_lines)] // One page with three forms, each read in its own block.
async fn render_page(
    state: &AppState,
    signed_in: &SignedIn,
    cohort: CohortId,
    session_id: CohortSessionId,
    submitted: Option<Fields>,
    outcome: Option<Outcome>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let view = cohort_view::view(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        cohort,
    )
    .await?;
    let session = view
        .sessions
        .iter()
        .find(|session| session.id == session_id)
        .ok_or(WebError::NotFound)?;
    let path = format!("/cohorts/{cohort}/sessions/{session_id}");
    let layout = Layout::new(state, &signed_in.viewer, &path);
    let tr = &layout.tr;
    let language = Language::parse(&layout.lang).unwrap_or_else(|_| Language::english());
    let zone = view.details.time_zone.time_zone();
    let now = state.clock.now();
    let minutes = u32::try_from(
        session
            .planned
            .end
            .duration_since(session.planned.start)
            .as_mins(),
    )
    .unwrap_or(0);
    let scheduled = session.status == SessionStatus::Scheduled;

    let stored_marks = if view.access.take_roll {
        state.store.cohort_attendance(cohort).await?
    } else {
        Vec::new()
    };
    let from_room = if view.access.take_roll {
        let patients: Vec<PatientId> = view.roster.iter().map(|line| line.entry.patient).collect();
        stillpoint_app::live::attendance_from_room(
            state.store.as_ref(),
            state.clock.as_ref(),
            session,
            &patients,
        )
        .await?
    } else {
        std::collections::HashMap::new()
    };
    let roll_call = view
        .roster
        .iter()
        .filter(|line| line.entry.state.takes_part())
        .map(|line| {
            let patient = line.entry.patient;
            let stored = stored_marks
                .iter()
                .find(|mark| mark.session == session_id && mark.patient == patient);
            let (mark, minutes, makeup) = match (&submitted, stored) {
                (Some(fields), _) => (
                    fields.text(&format!("mark_{patient}")).to_owned(),
                    fields.text(&format!("minutes_{patient}")).to_owned(),
                    fields.text(&format!("makeup_{patient}")).to_owned(),
                ),
                (None, Some(stored)) => (
                    stored.record.mark.code().to_owned(),
                    stored.record.minutes_attended.to_string(),
                    stored
                        .record
                        .makeup
                        .map(|makeup| makeup.code().to_owned())
                        .unwrap_or_default(),
                ),
                (None, None) => match from_room.get(&patient) {
                    Some(room) => (
                        room.mark.code().to_owned(),
                        room.minutes.to_string(),
                        String::new(),
                    ),
                    None => (String::new(), String::new(), String::new()),
                },
            };
            let filled_from_room =
                submitted.is_none() && stored.is_none() && from_room.contains_key(&patient);
            RollCallRow {
                patient_id: patient.to_string(),
                name: format!("{} {}", line.entry.given_name, line.entry.family_name),
                mark,
                minutes,
                makeup,
                from_room: filled_from_room,
            }
        })
        .collect();

    let room_open_or_ahead = scheduled && state.live.window.closes_at(session.planned.end) > now;
    let can_invite = view.access.take_roll && room_open_or_ahead;
    let guests = if can_invite {
        stillpoint_app::live::guest_candidates(state.store.as_ref(), &signed_in.account, session_id)
            .await?
            .into_iter()
            .map(|candidate| GuestRow {
                removed: state
                    .live
                    .hub
                    .is_removed(&session_id.to_string(), candidate.caregiver.id),
                caregiver_id: candidate.caregiver.id.to_string(),
                name: candidate.caregiver.display_name,
                patient_name: candidate.patient_name,
                invited: candidate.invited,
            })
            .collect()
    } else {
        Vec::new()
    };
    let local = session.planned.start.to_zoned_datetime(zone.clone());
    let submitted_text = |name: &str, default: String| {
        submitted
            .as_ref()
            .map(|fields| fields.text(name).to_owned())
            .filter(|text| !text.is_empty())
            .unwrap_or(default)
    };
    let template = SessionTemplate {
        cohort_name: view.details.cohort.name.clone(),
        cohort_href: format!("/cohorts/{cohort}"),
        action_base: path.clone(),
        session_id: session_id.to_string(),
        title: session_name(tr, session.planned.kind),
        when: dates::long_date_time(tr, session.planned.start, &zone),
        cancelled: !scheduled,
        plan: view.curriculum.as_ref().and_then(|curriculum| {
            curriculum
                .session(session.planned.kind)
                .map(|plan| plan_view(tr, curriculum, plan, &language, Audience::Staff))
        }),
        roll_call,
        actions: SessionActions {
            take_roll: view.access.take_roll && scheduled && session.planned.start <= now,
            change: view.access.change_sessions && scheduled && session.planned.start > now,
        },
        session_minutes: minutes,
        marks: AttendanceMark::ALL
            .iter()
            .map(|mark| {
                (
                    mark.code().to_owned(),
                    tr.t(&format!("attendance-{}", mark.code())),
                )
            })
            .collect(),
        makeups: ["recording", "other_cohort"]
            .into_iter()
            .map(|code| (code.to_owned(), tr.t(&format!("makeup-{code}"))))
            .collect(),
        local_date: submitted_text("new_date", local.date().to_string()),
        local_time: submitted_text("new_time", local.strftime("%H:%M").to_string()),
        reason: submitted_text("reason", String::new()),
        cancel_reason: submitted_text("cancel_reason", String::new()),
        saved: matches!(outcome, Some(Outcome::Saved)),
        invited: matches!(outcome, Some(Outcome::Invited)),
        withdrawn: matches!(outcome, Some(Outcome::Withdrawn)),
        room_open_or_ahead,
        can_invite,
        guests,
        error_field: match (&outcome, &submitted) {
            (Some(Outcome::Invalid(invalid)), Some(fields))
                if invalid.field == "reason"
                    && fields.0.iter().any(|(key, _)| key == "cancel_reason") =>
            {
                "cancel_reason".to_owned()
            }
            (Some(Outcome::Invalid(invalid)), _) => invalid.field.to_owned(),
            _ => String::new(),
        },
        time_zone: view.details.time_zone.to_string(),
        error: match outcome {
            Some(Outcome::Invalid(invalid)) => Some(invalid.problem),
            _ => None,
        },
        layout,
    };
    let mut response = render(&template)?;
    *response.status_mut() = status;
    Ok(response)
}
