//! Creating cohorts with their planned sessions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stillpoint_app::AppError;
use stillpoint_app::cohorts::{self, CohortRequest};
use stillpoint_domain::schedule::{DstResolution, SessionKind};
use stillpoint_domain::{InvalidValue, Language};
use utoipa::ToSchema;

use super::ApiJson;
use crate::AppState;
use crate::error::{Problem, WebError};
use crate::viewer::SignedIn;

fn default_capacity() -> u32 {
    15
}

fn default_provider() -> String {
    "embedded".to_owned()
}

fn default_language() -> String {
    "en".to_owned()
}

/// A new cohort.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CohortCreateRequest {
    site_id: String,
    name: String,
    /// Places in the group, 1 to 40 (default 15).
    #[serde(default = "default_capacity")]
    capacity: u32,
    /// BCP 47 tag of the language the group is taught in (default `en`).
    #[serde(default = "default_language")]
    language: String,
    /// IANA time zone of the class times, such as `America/Chicago`.
    time_zone: String,
    lead_facilitator_id: String,
    #[serde(default)]
    co_facilitator_id: Option<String>,
    /// `embedded` (default), `livekit` or `external`.
    #[serde(default = "default_provider")]
    video_provider: String,
    /// ISO 8601 date, before the first class.
    orientation_date: String,
    /// ISO 8601 date of the week-1 class; the later classes fall on the same weekday.
    first_class_date: String,
    /// Local start time, `HH:MM`.
    class_time: String,
    /// Class length in minutes, 30 to 240.
    class_minutes: i64,
    /// Local start of the all-day retreat, `YYYY-MM-DDTHH:MM`, between weeks 6 and 7.
    retreat_start: String,
    /// Retreat length in minutes, 60 to 480.
    retreat_minutes: i64,
    /// ISO 8601 dates without a class; a class on one moves a week later.
    #[serde(default)]
    skip_dates: Vec<String>,
    /// The curriculum the cohort follows, such as `mbsr-online`.
    curriculum_id: String,
    /// A published version of that curriculum, which the cohort keeps.
    curriculum_version: u32,
}

/// A planned session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    /// `orientation`, `class` or `retreat`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    week: Option<u8>,
    /// The agreed local start in the cohort's time zone.
    local_start: String,
    /// RFC 3339 instants in UTC.
    start: String,
    end: String,
    /// Set when the local start falls in a daylight-saving transition: how it was resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_warning: Option<String>,
}

/// A created cohort.
#[derive(Debug, Serialize, ToSchema)]
pub struct CohortBody {
    id: String,
    name: String,
    sessions: Vec<SessionBody>,
}

/// Creates a cohort at a site the administrator manages, with its orientation, eight classes and
/// retreat planned at a fixed local time.
#[utoipa::path(post, path = "/api/v1/cohorts", tag = "cohorts",
    security(("bearer" = []), ("session_cookie" = [])),
    request_body = CohortCreateRequest,
    responses(
        (status = 201, description = "The cohort with its sessions", body = CohortBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator of the site", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid field, which the problem names, such as a start date in the past or a retreat outside weeks 6 to 7", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn create_cohort(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<CohortCreateRequest>,
) -> Result<(StatusCode, Json<CohortBody>), WebError> {
    let request = request_from(body).map_err(AppError::from)?;
    let created = cohorts::create(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        request,
    )
    .await?;
    let sessions = created
        .sessions
        .iter()
        .map(|session| {
            let (kind, week) = match session.kind {
                SessionKind::Orientation => ("orientation", None),
                SessionKind::Class { week } => ("class", Some(week)),
                SessionKind::Retreat => ("retreat", None),
            };
            SessionBody {
                kind,
                week,
                local_start: session.local_start.to_string(),
                start: session.start.to_string(),
                end: session.end.to_string(),
                dst_warning: session.dst.map(|resolution| match resolution {
                    DstResolution::Gap { shifted_by } => format!(
                        "the local start does not exist on this date; the session starts {} minutes later",
                        shifted_by.as_mins()
                    ),
                    DstResolution::Overlap => {
                        "the local start occurs twice on this date; the session starts at the first".to_owned()
                    }
                }),
            }
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(CohortBody {
            id: created.cohort.id.to_string(),
            name: created.cohort.name,
            sessions,
        }),
    ))
}

fn request_from(body: CohortCreateRequest) -> Result<CohortRequest, InvalidValue> {
    let date = |field: &'static str, text: &str| {
        text.parse::<jiff::civil::Date>().map_err(|_| {
            InvalidValue::new(
                field,
                format!("'{text}' is not a date; write it as YYYY-MM-DD"),
            )
        })
    };
    let id = |field: &'static str, text: &str| {
        text.parse::<stillpoint_domain::AccountId>()
            .map_err(|_| InvalidValue::new(field, format!("'{text}' is not an account id")))
    };
    Ok(CohortRequest {
        site: body.site_id.parse().map_err(|_| {
            InvalidValue::new("site_id", format!("'{}' is not a site id", body.site_id))
        })?,
        name: body.name,
        capacity: body.capacity,
        language: Language::parse(&body.language)?,
        time_zone: body.time_zone,
        lead_facilitator: id("lead_facilitator_id", &body.lead_facilitator_id)?,
        co_facilitator: body
            .co_facilitator_id
            .as_deref()
            .map(|text| id("co_facilitator_id", text))
            .transpose()?,
        video_provider: body.video_provider,
        orientation_date: date("orientation_date", &body.orientation_date)?,
        first_class_date: date("first_class_date", &body.first_class_date)?,
        class_time: body.class_time.parse().map_err(|_| {
            InvalidValue::new(
                "class_time",
                format!("'{}' is not a time; write it as HH:MM", body.class_time),
            )
        })?,
        class_minutes: body.class_minutes,
        retreat_start: body.retreat_start.parse().map_err(|_| {
            InvalidValue::new(
                "retreat_start",
                format!(
                    "'{}' is not a date and time; write it as YYYY-MM-DDTHH:MM",
                    body.retreat_start
                ),
            )
        })?,
        retreat_minutes: body.retreat_minutes,
        skip_dates: body
            .skip_dates
            .iter()
            .map(|text| date("skip_dates", text))
            .collect::<Result<_, _>>()?,
        curriculum_id: body.curriculum_id,
        curriculum_version: body.curriculum_version,
    })
}
