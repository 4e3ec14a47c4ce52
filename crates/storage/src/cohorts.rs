//! Cohorts with their details and planned sessions.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::DateTime;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{CohortStore, NewCohort};
use stillpoint_domain::schedule::{DstResolution, PlannedSession, SessionKind};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

#[async_trait]
impl CohortStore for Database {
    async fn create_cohort(
        &self,
        new: &NewCohort,
        created_at: Timestamp,
    ) -> Result<(), StorageError> {
        let id = new.cohort.id.to_string();
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        sqlx::query(
            "INSERT INTO cohorts (id, site_id, name, created_at, capacity, language, time_zone, video_provider, \
             curriculum_id, curriculum_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(new.cohort.site_id.to_string())
        .bind(&new.cohort.name)
        .bind(to_millis(created_at))
        .bind(i64::from(new.capacity))
        .bind(new.language.as_str())
        .bind(new.time_zone.as_str())
        .bind(new.video_provider)
        .bind(new.curriculum.0.as_str())
        .bind(i64::from(new.curriculum.1))
        .execute(&mut *transaction)
        .await
        .map_err(|error| map_error(error, "cohort", &id))?;

        for (account, lead) in &new.facilitators {
            sqlx::query(
                "INSERT INTO cohort_facilitators (cohort_id, account_id, is_lead) VALUES ($1, $2, $3)",
            )
            .bind(&id)
            .bind(account.to_string())
            .bind(i64::from(*lead))
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "cohort", &id))?;
        }
        for session in &new.sessions {
            let (kind, week) = kind_columns(session.kind);
            sqlx::query(
                "INSERT INTO cohort_sessions (id, cohort_id, kind, week, local_start, starts_at, ends_at, dst_resolution, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scheduled')",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&id)
            .bind(kind)
            .bind(week)
            .bind(session.local_start.to_string())
            .bind(to_millis(session.start))
            .bind(to_millis(session.end))
            .bind(dst_column(session.dst))
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "cohort", &id))?;
        }
        transaction.commit().await.map_err(map_write_error)
    }

    async fn count_cohorts(&self) -> Result<i64, StorageError> {
        let row = sqlx::query("SELECT COUNT(*) AS total FROM cohorts")
            .fetch_one(&self.pool)
            .await
            .map_err(map_write_error)?;
        column(&row, "total")
    }
}

pub(crate) fn kind_columns(kind: SessionKind) -> (&'static str, Option<i64>) {
    match kind {
        SessionKind::Orientation => ("orientation", None),
        SessionKind::Class { week } => ("class", Some(i64::from(week))),
        SessionKind::Retreat => ("retreat", None),
    }
}

pub(crate) fn dst_column(dst: Option<DstResolution>) -> Option<String> {
    dst.map(|resolution| match resolution {
        DstResolution::Gap { shifted_by } => format!("gap:{}", shifted_by.as_mins()),
        DstResolution::Overlap => "overlap".to_owned(),
    })
}

/// Reads the plan columns of a `cohort_sessions` row.
pub(crate) fn planned_session(row: &sqlx::any::AnyRow) -> Result<PlannedSession, StorageError> {
    let week = column::<Option<i64>>(row, "week")?;
    let kind = match (column::<String>(row, "kind")?.as_str(), week) {
        ("orientation", None) => SessionKind::Orientation,
        ("retreat", None) => SessionKind::Retreat,
        ("class", Some(week)) => SessionKind::Class {
            week: u8::try_from(week).map_err(|error| corrupt("cohort_sessions.week", &error))?,
        },
        (other, _) => return Err(corrupt("cohort_sessions.kind", &other)),
    };
    let dst = match column::<Option<String>>(row, "dst_resolution")?.as_deref() {
        None => None,
        Some("overlap") => Some(DstResolution::Overlap),
        Some(other) => {
            let minutes = other
                .strip_prefix("gap:")
                .and_then(|minutes| minutes.parse::<i64>().ok())
                .ok_or_else(|| corrupt("cohort_sessions.dst_resolution", &other))?;
            Some(DstResolution::Gap {
                shifted_by: jiff::SignedDuration::from_mins(minutes),
            })
        }
    };
    Ok(PlannedSession {
        kind,
        local_start: parse_column::<DateTime>(
            "cohort_sessions.local_start",
            &column::<String>(row, "local_start")?,
        )?,
        start: from_millis(column(row, "starts_at")?)?,
        end: from_millis(column(row, "ends_at")?)?,
        dst,
    })
}
