//! Cohort details, session changes, rosters, attendance and calendar feeds.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    AttendanceEntry, CohortDetails, CohortSession, ProgramStore, RosterEntry, SessionChange,
    SessionChangeRecord, SessionStatus,
};
use stillpoint_domain::attendance::{AttendanceMark, AttendanceRecord, Makeup};
use stillpoint_domain::care_team::Cohort;
use stillpoint_domain::curriculum::CurriculumId;
use stillpoint_domain::enrolment::{EnrolmentState, ExclusionFlag};
use stillpoint_domain::{AccountId, CohortId, CohortSessionId, Language, PatientId, TimeZoneName};

use crate::Database;
use crate::cohorts::{dst_column, planned_session};
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

#[async_trait]
impl ProgramStore for Database {
    async fn get_cohort_details(&self, cohort: CohortId) -> Result<CohortDetails, StorageError> {
        let row = sqlx::query(
            "SELECT id, site_id, name, capacity, language, time_zone, video_provider, curriculum_id, \
             curriculum_version FROM cohorts WHERE id = $1",
        )
        .bind(cohort.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        let facilitators = self.facilitators_of(cohort).await?;
        details_from_row(&row, facilitators)
    }

    async fn set_cohort_capacity(
        &self,
        cohort: CohortId,
        capacity: u32,
    ) -> Result<bool, StorageError> {
        // NOTE: the count and the update are one statement. Under PostgreSQL's READ COMMITTED an
        // enrolment committing at the same moment is not counted, so the capacity can end one
        // below the places taken. The enrolment's own capacity check has the same race.
        let updated = sqlx::query(
            "UPDATE cohorts SET capacity = $1 WHERE id = $2 AND (SELECT COUNT(*) FROM enrolments \
             WHERE enrolments.cohort_id = $2 AND enrolments.state IN ('enrolled', 'active', 'lapsed', 'returned')) <= $1",
        )
        .bind(i64::from(capacity))
        .bind(cohort.to_string())
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        Ok(updated.rows_affected() > 0)
    }

    async fn list_cohort_details(&self) -> Result<Vec<CohortDetails>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, site_id, name, capacity, language, time_zone, video_provider, curriculum_id, \
             curriculum_version FROM cohorts ORDER BY name, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        let mut cohorts = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = parse_column("cohorts.id", &column::<String>(row, "id")?)?;
            let facilitators = self.facilitators_of(id).await?;
            cohorts.push(details_from_row(row, facilitators)?);
        }
        Ok(cohorts)
    }

    async fn list_cohort_sessions(
        &self,
        cohort: CohortId,
    ) -> Result<Vec<CohortSession>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, cohort_id, kind, week, local_start, starts_at, ends_at, dst_resolution, status, sequence \
             FROM cohort_sessions WHERE cohort_id = $1 ORDER BY starts_at, id",
        )
        .bind(cohort.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        rows.iter().map(cohort_session).collect()
    }

    async fn get_cohort_session(
        &self,
        session: CohortSessionId,
    ) -> Result<CohortSession, StorageError> {
        let row = sqlx::query(
            "SELECT id, cohort_id, kind, week, local_start, starts_at, ends_at, dst_resolution, status, sequence \
             FROM cohort_sessions WHERE id = $1",
        )
        .bind(session.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort session", &session.to_string()))?;
        cohort_session(&row)
    }

    async fn change_cohort_session(&self, change: &SessionChange) -> Result<(), StorageError> {
        let id = change.session.to_string();
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        let previous = sqlx::query(
            "SELECT starts_at FROM cohort_sessions WHERE id = $1 AND sequence = $2 AND status = 'scheduled'",
        )
        .bind(&id)
        .bind(i64::from(change.expected_sequence))
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| map_error(error, "cohort session", &id))?
        .ok_or_else(|| StorageError::Conflict {
            constraint: "cohort_sessions_changed".to_owned(),
        })?;
        let previous_start: i64 = column(&previous, "starts_at")?;

        let updated = match &change.new_plan {
            Some(plan) => sqlx::query(
                "UPDATE cohort_sessions SET local_start = $1, starts_at = $2, ends_at = $3, dst_resolution = $4, \
                 sequence = sequence + 1 WHERE id = $5 AND sequence = $6",
            )
            .bind(plan.local_start.to_string())
            .bind(to_millis(plan.start))
            .bind(to_millis(plan.end))
            .bind(dst_column(plan.dst))
            .bind(&id)
            .bind(i64::from(change.expected_sequence))
            .execute(&mut *transaction)
            .await,
            None => sqlx::query(
                "UPDATE cohort_sessions SET status = 'cancelled', sequence = sequence + 1 \
                 WHERE id = $1 AND sequence = $2",
            )
            .bind(&id)
            .bind(i64::from(change.expected_sequence))
            .execute(&mut *transaction)
            .await,
        }
        .map_err(|error| map_error(error, "cohort session", &id))?;
        if updated.rows_affected() == 0 {
            return Err(StorageError::Conflict {
                constraint: "cohort_sessions_changed".to_owned(),
            });
        }

        sqlx::query(
            "INSERT INTO cohort_session_changes (id, session_id, change, previous_starts_at, new_starts_at, reason, \
             actor_account_id, happened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&id)
        .bind(if change.new_plan.is_some() {
            "rescheduled"
        } else {
            "cancelled"
        })
        .bind(previous_start)
        .bind(change.new_plan.as_ref().map(|plan| to_millis(plan.start)))
        .bind(&change.reason)
        .bind(change.actor.to_string())
        .bind(to_millis(change.at))
        .execute(&mut *transaction)
        .await
        .map_err(|error| map_error(error, "cohort session", &id))?;
        transaction.commit().await.map_err(map_write_error)
    }

    async fn list_session_changes(
        &self,
        cohort: CohortId,
    ) -> Result<Vec<SessionChangeRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT changes.session_id, changes.change, changes.previous_starts_at, changes.new_starts_at, \
             changes.reason, changes.actor_account_id, changes.happened_at \
             FROM cohort_session_changes changes JOIN cohort_sessions sessions ON sessions.id = changes.session_id \
             WHERE sessions.cohort_id = $1 ORDER BY changes.happened_at DESC, changes.id DESC",
        )
        .bind(cohort.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        rows.iter()
            .map(|row| {
                Ok(SessionChangeRecord {
                    session: parse_column(
                        "cohort_session_changes.session_id",
                        &column::<String>(row, "session_id")?,
                    )?,
                    cancelled: column::<String>(row, "change")? == "cancelled",
                    previous_start: from_millis(column(row, "previous_starts_at")?)?,
                    new_start: column::<Option<i64>>(row, "new_starts_at")?
                        .map(from_millis)
                        .transpose()?,
                    reason: column(row, "reason")?,
                    actor: parse_column(
                        "cohort_session_changes.actor_account_id",
                        &column::<String>(row, "actor_account_id")?,
                    )?,
                    at: from_millis(column(row, "happened_at")?)?,
                })
            })
            .collect()
    }

    async fn cohort_roster(&self, cohort: CohortId) -> Result<Vec<RosterEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT patients.id, patients.given_name, patients.family_name, enrolments.state, enrolments.cohort_id, \
             enrolments.reason, enrolments.exclusion_flags, enrolments.updated_at \
             FROM enrolments JOIN patients ON patients.id = enrolments.patient_id \
             WHERE enrolments.cohort_id = $1 ORDER BY patients.family_name, patients.given_name, patients.id",
        )
        .bind(cohort.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        rows.iter()
            .map(|row| {
                Ok(RosterEntry {
                    patient: parse_column("patients.id", &column::<String>(row, "id")?)?,
                    given_name: column(row, "given_name")?,
                    family_name: column(row, "family_name")?,
                    state: enrolment_state(row)?,
                    since: from_millis(column(row, "updated_at")?)?,
                })
            })
            .collect()
    }

    async fn put_attendance(
        &self,
        entries: &[AttendanceEntry],
        recorded_by: AccountId,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        for entry in entries {
            let session = entry.session.to_string();
            sqlx::query(
                "INSERT INTO attendance (session_id, patient_id, mark, minutes_attended, makeup, recorded_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id, patient_id) DO UPDATE SET \
                 mark = excluded.mark, minutes_attended = excluded.minutes_attended, makeup = excluded.makeup, \
                 recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
            )
            .bind(&session)
            .bind(entry.patient.to_string())
            .bind(mark_code(entry.record.mark))
            .bind(i64::from(entry.record.minutes_attended))
            .bind(entry.record.makeup.map(makeup_code))
            .bind(recorded_by.to_string())
            .bind(to_millis(at))
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "cohort session", &session))?;
        }
        transaction.commit().await.map_err(map_write_error)
    }

    async fn cohort_attendance(
        &self,
        cohort: CohortId,
    ) -> Result<Vec<AttendanceEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT attendance.session_id, attendance.patient_id, attendance.mark, attendance.minutes_attended, \
             attendance.makeup FROM attendance JOIN cohort_sessions sessions ON sessions.id = attendance.session_id \
             WHERE sessions.cohort_id = $1 ORDER BY sessions.starts_at, attendance.patient_id",
        )
        .bind(cohort.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        rows.iter().map(attendance_entry).collect()
    }

    async fn patient_attendance(
        &self,
        patient: PatientId,
    ) -> Result<Vec<AttendanceEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT attendance.session_id, attendance.patient_id, attendance.mark, attendance.minutes_attended, \
             attendance.makeup FROM attendance JOIN cohort_sessions sessions ON sessions.id = attendance.session_id \
             WHERE attendance.patient_id = $1 ORDER BY sessions.starts_at",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "patient", &patient.to_string()))?;
        rows.iter().map(attendance_entry).collect()
    }

    async fn enrolments_in_states(
        &self,
        codes: &[&str],
    ) -> Result<Vec<(PatientId, EnrolmentState, Timestamp)>, StorageError> {
        let rows = sqlx::query(
            "SELECT patient_id, state, cohort_id, reason, exclusion_flags, updated_at FROM enrolments \
             ORDER BY patient_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        let mut found = Vec::new();
        for row in &rows {
            let state = enrolment_state(row)?;
            if codes.contains(&state.code()) {
                found.push((
                    parse_column(
                        "enrolments.patient_id",
                        &column::<String>(row, "patient_id")?,
                    )?,
                    state,
                    from_millis(column(row, "updated_at")?)?,
                ));
            }
        }
        Ok(found)
    }

    async fn put_calendar_feed(
        &self,
        account: AccountId,
        token_digest: &str,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO calendar_feeds (account_id, token_digest, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET token_digest = excluded.token_digest, created_at = excluded.created_at",
        )
        .bind(account.to_string())
        .bind(token_digest)
        .bind(to_millis(at))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "calendar feed", &account.to_string()))?;
        Ok(())
    }

    async fn delete_calendar_feed(&self, account: AccountId) -> Result<bool, StorageError> {
        let deleted = sqlx::query("DELETE FROM calendar_feeds WHERE account_id = $1")
            .bind(account.to_string())
            .execute(&self.pool)
            .await
            .map_err(|error| map_error(error, "calendar feed", &account.to_string()))?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn find_calendar_feed(&self, token_digest: &str) -> Result<AccountId, StorageError> {
        let row = sqlx::query("SELECT account_id FROM calendar_feeds WHERE token_digest = $1")
            .bind(token_digest)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, "calendar feed", "token"))?;
        parse_column(
            "calendar_feeds.account_id",
            &column::<String>(&row, "account_id")?,
        )
    }

    async fn calendar_feed_created_at(
        &self,
        account: AccountId,
    ) -> Result<Option<Timestamp>, StorageError> {
        let row = sqlx::query("SELECT created_at FROM calendar_feeds WHERE account_id = $1")
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| map_error(error, "calendar feed", &account.to_string()))?;
        row.map(|row| from_millis(column(&row, "created_at")?))
            .transpose()
    }
}

impl Database {
    async fn facilitators_of(
        &self,
        cohort: CohortId,
    ) -> Result<Vec<(AccountId, bool)>, StorageError> {
        let rows = sqlx::query(
            "SELECT account_id, is_lead FROM cohort_facilitators WHERE cohort_id = $1 \
             ORDER BY is_lead DESC, account_id",
        )
        .bind(cohort.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_column(
                        "cohort_facilitators.account_id",
                        &column::<String>(row, "account_id")?,
                    )?,
                    column::<i64>(row, "is_lead")? == 1,
                ))
            })
            .collect()
    }
}

fn details_from_row(
    row: &sqlx::any::AnyRow,
    facilitators: Vec<(AccountId, bool)>,
) -> Result<CohortDetails, StorageError> {
    let capacity: i64 = column(row, "capacity")?;
    let curriculum = match (
        column::<Option<String>>(row, "curriculum_id")?,
        column::<Option<i64>>(row, "curriculum_version")?,
    ) {
        (Some(id), Some(version)) => Some((
            CurriculumId::parse(&id).map_err(|error| corrupt("cohorts.curriculum_id", &error))?,
            u32::try_from(version)
                .map_err(|error| corrupt("cohorts.curriculum_version", &error))?,
        )),
        _ => None,
    };
    Ok(CohortDetails {
        cohort: Cohort {
            id: parse_column("cohorts.id", &column::<String>(row, "id")?)?,
            site_id: parse_column("cohorts.site_id", &column::<String>(row, "site_id")?)?,
            name: column(row, "name")?,
        },
        capacity: u32::try_from(capacity).map_err(|error| corrupt("cohorts.capacity", &error))?,
        language: Language::parse(&column::<String>(row, "language")?)
            .map_err(|error| corrupt("cohorts.language", &error))?,
        time_zone: TimeZoneName::parse(&column::<String>(row, "time_zone")?)
            .map_err(|error| corrupt("cohorts.time_zone", &error))?,
        video_provider: column(row, "video_provider")?,
        curriculum,
        facilitators,
    })
}

fn cohort_session(row: &sqlx::any::AnyRow) -> Result<CohortSession, StorageError> {
    let status = match column::<String>(row, "status")?.as_str() {
        "scheduled" => SessionStatus::Scheduled,
        "cancelled" => SessionStatus::Cancelled,
        other => return Err(corrupt("cohort_sessions.status", &other)),
    };
    let sequence: i64 = column(row, "sequence")?;
    Ok(CohortSession {
        id: parse_column("cohort_sessions.id", &column::<String>(row, "id")?)?,
        cohort: parse_column(
            "cohort_sessions.cohort_id",
            &column::<String>(row, "cohort_id")?,
        )?,
        planned: planned_session(row)?,
        status,
        sequence: u32::try_from(sequence)
            .map_err(|error| corrupt("cohort_sessions.sequence", &error))?,
    })
}

fn enrolment_state(row: &sqlx::any::AnyRow) -> Result<EnrolmentState, StorageError> {
    let code: String = column(row, "state")?;
    let cohort = column::<Option<String>>(row, "cohort_id")?
        .map(|text| parse_column::<CohortId>("enrolments.cohort_id", &text))
        .transpose()?;
    let flags = ExclusionFlag::parse_list(&column::<String>(row, "exclusion_flags")?)
        .map_err(|error| corrupt("enrolments.exclusion_flags", &error))?;
    EnrolmentState::from_parts(&code, cohort, column(row, "reason")?, flags)
        .ok_or_else(|| corrupt("enrolments.state", &code))
}

fn attendance_entry(row: &sqlx::any::AnyRow) -> Result<AttendanceEntry, StorageError> {
    let mark = match column::<String>(row, "mark")?.as_str() {
        "present" => AttendanceMark::Present,
        "late" => AttendanceMark::Late,
        "left_early" => AttendanceMark::LeftEarly,
        "absent" => AttendanceMark::Absent,
        "excused" => AttendanceMark::Excused,
        other => return Err(corrupt("attendance.mark", &other)),
    };
    let makeup = match column::<Option<String>>(row, "makeup")?.as_deref() {
        None => None,
        Some("recording") => Some(Makeup::Recording),
        Some("other_cohort") => Some(Makeup::OtherCohort),
        Some(other) => return Err(corrupt("attendance.makeup", &other)),
    };
    let minutes: i64 = column(row, "minutes_attended")?;
    Ok(AttendanceEntry {
        session: parse_column(
            "attendance.session_id",
            &column::<String>(row, "session_id")?,
        )?,
        patient: parse_column(
            "attendance.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        // Stored marks passed the domain's checks when written, so they are read back as they are.
        record: AttendanceRecord {
            mark,
            minutes_attended: u32::try_from(minutes)
                .map_err(|error| corrupt("attendance.minutes_attended", &error))?,
            makeup,
        },
    })
}

fn mark_code(mark: AttendanceMark) -> &'static str {
    match mark {
        AttendanceMark::Present => "present",
        AttendanceMark::Late => "late",
        AttendanceMark::LeftEarly => "left_early",
        AttendanceMark::Absent => "absent",
        AttendanceMark::Excused => "excused",
    }
}

fn makeup_code(makeup: Makeup) -> &'static str {
    match makeup {
        Makeup::Recording => "recording",
        Makeup::OtherCohort => "other_cohort",
    }
}
