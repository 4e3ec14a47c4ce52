//! The facilitator's practice overview of a cohort: each patient's minutes and days against
//! the week's assignment, who may need a check-in and why, diary entries patients shared, and
//! tailoring suggestions with the data that fired them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use fluent_bundle::FluentArgs;
use serde::Deserialize;
use stillpoint_app::ports::{StoredSuggestion, SuggestionState};
use stillpoint_app::practice_review::{self, CohortPractice, Decision, PatientPractice};
use stillpoint_domain::practice::adherence::CheckInReason;
use stillpoint_domain::practice::tailoring::{Evidence, Rule};
use stillpoint_domain::{CohortId, SuggestionId};

use super::practice::{WeekLine, distress_text, kind_name};
use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::viewer::SignedIn;
use stillpoint_domain::practice::adherence::Trend;

struct PatientLine {
    name: String,
    href: String,
    weeks: Vec<WeekLine>,
    trend: Option<String>,
    last_practice: String,
    assignment: String,
}

struct CheckInLine {
    name: String,
    reasons: Vec<String>,
}

struct SuggestionLine {
    name: String,
    title: String,
    proposal: String,
    evidence: Vec<String>,
    action: String,
    open: bool,
    decision: String,
}

struct SharedLine {
    name: String,
    day: String,
    practice: String,
    minutes: String,
    distress: Option<String>,
    noticed: String,
}

#[derive(Template)]
#[template(path = "cohort_practice.html")]
struct CohortPracticeTemplate {
    layout: Layout,
    cohort_name: String,
    cohort_href: String,
    patients: Vec<PatientLine>,
    check_ins: Vec<CheckInLine>,
    suggestions: Vec<SuggestionLine>,
    shared: Vec<SharedLine>,
    can_decide: bool,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    decided: Option<String>,
}

fn cohort_id(text: &str) -> Result<CohortId, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(cohort): Path<String>,
    Query(query): Query<OverviewQuery>,
) -> Result<Response, WebError> {
    let cohort = cohort_id(&cohort)?;
    let overview = practice_review::cohort_practice(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &state.practice_rules,
        &signed_in.account,
        cohort,
    )
    .await?;
    let tr = signed_in.viewer.translator(&state);
    let path = format!("/cohorts/{cohort}/practice");
    let notice = match query.decided.as_deref() {
        Some("accepted") => Some(tr.t("practice-review-accepted")),
        Some("dismissed") => Some(tr.t("practice-review-dismissed")),
        _ => None,
    };
    let template = CohortPracticeTemplate {
        layout: Layout::new(&state, &signed_in.viewer, &path),
        cohort_name: overview.details.cohort.name.clone(),
        cohort_href: format!("/cohorts/{cohort}"),
        patients: overview
            .patients
            .iter()
            .map(|patient| patient_line(&tr, patient))
            .collect(),
        check_ins: overview
            .patients
            .iter()
            .filter(|patient| !patient.check_in.is_empty())
            .map(|patient| CheckInLine {
                name: name_of(patient),
                reasons: patient
                    .check_in
                    .iter()
                    .map(|reason| reason_text(&tr, reason))
                    .collect(),
            })
            .collect(),
        suggestions: overview
            .suggestions
            .iter()
            .map(|suggestion| suggestion_line(&tr, &overview, suggestion, cohort))
            .collect(),
        shared: overview
            .shared
            .iter()
            .map(|entry| SharedLine {
                name: overview
                    .patient(entry.patient)
                    .map(name_of)
                    .unwrap_or_default(),
                day: dates::long_date(&tr, entry.practiced_on),
                practice: kind_name(&tr, entry.kind),
                minutes: tr.t_with("plan-minutes", "minutes", &(entry.seconds / 60).to_string()),
                distress: distress_text(&tr, entry.distress_before, entry.distress_after),
                noticed: entry.noticed.clone(),
            })
            .collect(),
        can_decide: overview.access.take_roll,
        notice,
    };
    render(&template)
}

fn name_of(patient: &PatientPractice) -> String {
    format!("{} {}", patient.entry.given_name, patient.entry.family_name)
}

/// The direction of a patient's practice, worded for staff.
fn staff_trend_text(tr: &Translator, trend: Trend) -> Option<String> {
    match trend {
        Trend::Rising => Some(tr.t("practice-review-trend-rising")),
        Trend::Steady => Some(tr.t("practice-review-trend-steady")),
        Trend::Falling => Some(tr.t("practice-review-trend-falling")),
        Trend::TooEarly => None,
    }
}

fn patient_line(tr: &Translator, patient: &PatientPractice) -> PatientLine {
    let weeks: Vec<WeekLine> = patient
        .weeks
        .iter()
        .map(|week| WeekLine::new(tr, week))
        .collect();
    let assignment = patient
        .assignment
        .as_ref()
        .map_or_else(String::new, |assignment| {
            let mut args = FluentArgs::new();
            args.set("minutes", assignment.daily_minutes);
            args.set("days", assignment.days_per_week);
            let mut text = tr.t_args("practice-review-assignment", &args);
            if let Some(cap) = assignment.max_recording_minutes {
                text.push(' ');
                text.push_str(&tr.t_with("practice-review-capped", "minutes", &cap.to_string()));
            }
            text
        });
    PatientLine {
        name: name_of(patient),
        href: format!("/patients/{}/measures", patient.entry.patient),
        weeks,
        trend: staff_trend_text(tr, patient.trend),
        last_practice: patient.last_practice.map_or_else(
            || tr.t("practice-review-never"),
            |day| dates::long_date(tr, day),
        ),
        assignment,
    }
}

fn reason_text(tr: &Translator, reason: &CheckInReason) -> String {
    match reason {
        CheckInReason::NoPracticeFor { days } => {
            tr.t_with("practice-review-quiet", "days", &days.to_string())
        }
        CheckInReason::LowPractice { weeks } => {
            let figures: Vec<String> = weeks
                .iter()
                .map(|week| {
                    let mut args = FluentArgs::new();
                    args.set("week", week.week);
                    args.set("minutes", week.minutes);
                    args.set("assigned", week.assigned_minutes);
                    tr.t_args("practice-review-week-figures", &args)
                })
                .collect();
            tr.t_with("practice-review-low", "weeks", &figures.join("; "))
        }
    }
}

fn suggestion_line(
    tr: &Translator,
    overview: &CohortPractice,
    suggestion: &StoredSuggestion,
    cohort: CohortId,
) -> SuggestionLine {
    let title = tr.t(&format!(
        "practice-rule-{}",
        suggestion.rule.code().replace('_', "-")
    ));
    let proposal = match (suggestion.rule, suggestion.adjustment) {
        (Rule::DistressAfterPractice, _) | (_, None) => tr.t("practice-proposal-check-in"),
        (_, Some(adjustment)) => {
            let mut parts = Vec::new();
            if adjustment.seated_or_lying_movement {
                parts.push(tr.t("practice-proposal-seated"));
            }
            if let Some(minutes) = adjustment.max_minutes {
                parts.push(tr.t_with("practice-proposal-shorter", "minutes", &minutes.to_string()));
            }
            parts.join(" ")
        }
    };
    let evidence = match &suggestion.evidence {
        Evidence::PainRatings { ratings, high_from } => {
            let mut lines =
                vec![tr.t_with("practice-evidence-pain", "from", &high_from.to_string())];
            lines.extend(
                ratings
                    .iter()
                    .map(|(day, rating)| format!("{}: {rating}/10", dates::long_date(tr, *day))),
            );
            lines
        }
        Evidence::WeeklyMinutes {
            weeks,
            daily_minutes,
        } => {
            let mut lines = vec![tr.t_with(
                "practice-evidence-minutes",
                "minutes",
                &daily_minutes.to_string(),
            )];
            lines.extend(weeks.iter().map(|week| {
                let mut args = FluentArgs::new();
                args.set("week", week.week);
                args.set("minutes", week.minutes);
                args.set("assigned", week.assigned);
                tr.t_args("practice-review-week-figures", &args)
            }));
            lines
        }
        Evidence::DistressRatings { entries } => {
            // Only ratings the patient still shares are shown; unsharing or deleting an entry
            // takes its ratings off this page.
            let shown: Vec<_> = entries
                .iter()
                .filter(|rated| overview.shared.iter().any(|entry| entry.id == rated.entry))
                .collect();
            let mut lines = vec![tr.t("practice-evidence-distress")];
            lines.extend(shown.iter().map(|rated| {
                let mut args = FluentArgs::new();
                args.set("before", rated.before);
                args.set("after", rated.after);
                format!(
                    "{}: {}",
                    dates::long_date(tr, rated.day),
                    tr.t_args("practice-distress-summary", &args)
                )
            }));
            let hidden = entries.len() - shown.len();
            if hidden > 0 {
                lines.push(tr.t_with("practice-evidence-not-shared", "count", &hidden.to_string()));
            }
            lines
        }
    };
    let decision = match suggestion.state {
        SuggestionState::Open => String::new(),
        SuggestionState::Accepted => tr.t("practice-suggestion-accepted"),
        SuggestionState::Dismissed => tr.t("practice-suggestion-dismissed"),
    };
    SuggestionLine {
        name: overview
            .patient(suggestion.patient)
            .map(name_of)
            .unwrap_or_default(),
        title,
        proposal,
        evidence,
        action: format!("/cohorts/{cohort}/practice/suggestions/{}", suggestion.id),
        open: suggestion.state == SuggestionState::Open,
        decision,
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionFields {
    #[serde(default)]
    decision: String,
}

pub async fn decide(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((cohort, suggestion)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<DecisionFields>,
) -> Result<Response, WebError> {
    let cohort = cohort_id(&cohort)?;
    let suggestion: SuggestionId = suggestion.parse().map_err(|_| WebError::NotFound)?;
    let decision = match fields.decision.as_str() {
        "accept" => Decision::Accept,
        "dismiss" => Decision::Dismiss,
        _ => {
            return Err(WebError::Invalid {
                field: "decision".to_owned(),
                message: "choose accept or dismiss".to_owned(),
            });
        }
    };
    practice_review::decide(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        cohort,
        suggestion,
        decision,
    )
    .await?;
    let outcome = if decision == Decision::Accept {
        "accepted"
    } else {
        "dismissed"
    };
    Ok(Redirect::to(&format!("/cohorts/{cohort}/practice?decided={outcome}")).into_response())
}
