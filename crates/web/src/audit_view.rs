//! Reading the audit trail over HTTP: the administrators' search (page, CSV export and API) and
//! the patient's report of who accessed their record.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use stillpoint_app::audit;
use stillpoint_app::ports::AuditFilter;
use stillpoint_domain::audit::{AuditAction, AuditEvent};
use stillpoint_domain::{AccountId, PatientId, TimeZoneName};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::WebError;
use crate::viewer::SignedIn;

/// The search form's fields, as text so that a wrong value gets a message naming the field.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct AuditQuery {
    /// A patient's id.
    pub patient_id: String,
    /// The acting account's id.
    pub account_id: String,
    /// One of `read`, `create`, `update`, `delete`, `sign_in`, `sign_out`.
    pub action: String,
    /// First day to include (YYYY-MM-DD, in the viewer's time zone).
    pub from: String,
    /// Last day to include (YYYY-MM-DD, in the viewer's time zone).
    pub until: String,
}

fn invalid(field: &str, message: String) -> WebError {
    WebError::Invalid {
        field: field.to_owned(),
        message,
    }
}

fn optional(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

fn day_start(field: &str, text: &str, zone: &TimeZoneName) -> Result<Timestamp, WebError> {
    let date: Date = text.parse().map_err(|_| {
        invalid(
            field,
            format!("'{text}' is not a date; use the form 2026-12-31"),
        )
    })?;
    date.to_zoned_datetime(zone.time_zone())
        .map(|start| start.timestamp())
        .map_err(|error| invalid(field, format!("'{text}' cannot be used: {error}")))
}

impl AuditQuery {
    /// Checks the fields and turns them into a storage filter; dates are whole days in `zone`.
    pub fn to_filter(&self, zone: &TimeZoneName) -> Result<AuditFilter, WebError> {
        let patient = optional(&self.patient_id)
            .map(|text| {
                text.parse::<PatientId>().map_err(|_| {
                    invalid(
                        "patient_id",
                        format!("'{text}' is not a patient id (a UUID)"),
                    )
                })
            })
            .transpose()?;
        let actor = optional(&self.account_id)
            .map(|text| {
                text.parse::<AccountId>().map_err(|_| {
                    invalid(
                        "account_id",
                        format!("'{text}' is neither an e-mail address nor an account id"),
                    )
                })
            })
            .transpose()?;
        let action = optional(&self.action)
            .map(|text| {
                text.parse::<AuditAction>().map_err(|error| {
                    invalid(
                        "action",
                        format!(
                            "{}; use read, create, update, delete, sign_in or sign_out",
                            error.problem
                        ),
                    )
                })
            })
            .transpose()?;
        let from = optional(&self.from)
            .map(|text| day_start("from", text, zone))
            .transpose()?;
        let until = optional(&self.until)
            .map(|text| {
                let date: Date = text.parse().map_err(|_| {
                    invalid(
                        "until",
                        format!("'{text}' is not a date; use the form 2026-12-31"),
                    )
                })?;
                let next_day = date
                    .tomorrow()
                    .map_err(|error| invalid("until", error.to_string()))?;
                day_start("until", &next_day.to_string(), zone)
            })
            .transpose()?;
        if let (Some(from), Some(until)) = (from, until)
            && from >= until
        {
            return Err(invalid(
                "until",
                "the last day is before the first day; swap them".to_owned(),
            ));
        }
        Ok(AuditFilter {
            patient,
            actor,
            action,
            from,
            until,
            patient_sites: None,
        })
    }
}

/// Runs an administrator's audit search from the form or query-string fields.
pub async fn search_events(
    state: &AppState,
    signed_in: &SignedIn,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>, WebError> {
    // The account filter takes an e-mail address as well as an account id.
    let mut query = query.clone();
    if query.account_id.contains('@') {
        let id =
            stillpoint_app::accounts::id_for_email(state.store.as_ref(), query.account_id.trim())
                .await?
                .ok_or_else(|| WebError::Invalid {
                    field: "account_id".to_owned(),
                    message: format!(
                        "no account has the e-mail address '{}'; check the address",
                        query.account_id.trim()
                    ),
                })?;
        query.account_id = id.to_string();
    }
    let filter = query.to_filter(&signed_in.account.time_zone)?;

    let context = signed_in.viewer.audit_context();
    Ok(audit::search(
        state.store.as_ref(),
        state.clock.as_ref(),
        &context,
        &signed_in.account,
        filter,
    )
    .await?)
}

/// An audit event as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventBody {
    pub sequence: i64,
    /// RFC 3339 instant in UTC.
    pub recorded_at: String,
    pub account_id: Option<String>,
    pub role: Option<String>,
    pub patient_id: Option<String>,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub source_address: Option<String>,
    pub break_glass: bool,
    /// The event's chain hash (hex SHA-256).
    pub hash: String,
}

impl From<&AuditEvent> for AuditEventBody {
    fn from(stored: &AuditEvent) -> Self {
        let event = &stored.event;
        Self {
            sequence: stored.sequence,
            recorded_at: event.recorded_at.to_string(),
            account_id: event.actor.map(|id| id.to_string()),
            role: event.actor_role.map(|role| role.code().to_owned()),
            patient_id: event.patient.map(|id| id.to_string()),
            resource_type: event.resource_type.clone(),
            resource_id: event.resource_id.clone(),
            action: event.action.code().to_owned(),
            outcome: event.outcome.code().to_owned(),
            source_address: event.source_address.clone(),
            break_glass: event.break_glass,
            hash: stored.hash.clone(),
        }
    }
}

/// The CSV export: a header row and one row per event (RFC 4180, CRLF line ends).
#[must_use]
pub fn to_csv(events: &[AuditEvent]) -> String {
    let mut out = String::from(
        "sequence,recorded_at,account_id,role,patient_id,resource_type,resource_id,action,outcome,source_address,break_glass,hash\r\n",
    );
    for stored in events {
        let body = AuditEventBody::from(stored);
        let fields = [
            body.sequence.to_string(),
            body.recorded_at,
            body.account_id.unwrap_or_default(),
            body.role.unwrap_or_default(),
            body.patient_id.unwrap_or_default(),
            body.resource_type,
            body.resource_id.unwrap_or_default(),
            body.action,
            body.outcome,
            body.source_address.unwrap_or_default(),
            body.break_glass.to_string(),
            body.hash,
        ];
        let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Quotes a field when RFC 4180 requires it, and defuses text a spreadsheet would run as a
/// formula (a leading `=`, `+`, `-` or `@` gets a `'` in front).
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn query_errors_name_the_field() {
        let zone = TimeZoneName::parse("America/Chicago").expect("zone");
        let cases = [
            (
                AuditQuery {
                    patient_id: "x".to_owned(),
                    ..AuditQuery::default()
                },
                "patient_id",
            ),
            (
                AuditQuery {
                    account_id: "x".to_owned(),
                    ..AuditQuery::default()
                },
                "account_id",
            ),
            (
                AuditQuery {
                    action: "peek".to_owned(),
                    ..AuditQuery::default()
                },
                "action",
            ),
            (
                AuditQuery {
                    from: "31/12/2026".to_owned(),
                    ..AuditQuery::default()
                },
                "from",
            ),
            (
                AuditQuery {
                    from: "2026-12-05".to_owned(),
                    until: "2026-12-04".to_owned(),
                    ..AuditQuery::default()
                },
                "until",
            ),
        ];
        for (query, field) in cases {
            match query.to_filter(&zone) {
                Err(WebError::Invalid { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn dates_are_whole_days_in_the_viewers_zone() {
        let zone = TimeZoneName::parse("America/Chicago").expect("zone");
        let query = AuditQuery {
            from: "2026-12-04".to_owned(),
            until: "2026-12-04".to_owned(),
            ..AuditQuery::default()
        };
        let filter = query.to_filter(&zone).expect("valid");
        assert_eq!(
            filter.from.map(|t| t.to_string()),
            Some("2026-12-04T06:00:00Z".to_owned())
        );
        assert_eq!(
            filter.until.map(|t| t.to_string()),
            Some("2026-12-05T06:00:00Z".to_owned())
        );
    }
}
