//! Patients' positions on the enrolment pathway, their history and screening findings.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{EnrolmentHistoryEntry, EnrolmentStore};
use stillpoint_domain::care_team::Cohort;
use stillpoint_domain::enrolment::{EnrolmentState, ExclusionFlag, Screening};
use stillpoint_domain::{AccountId, CohortId, PatientId};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

const ENTITY: &str = "enrolment";

#[async_trait]
impl EnrolmentStore for Database {
    async fn find_enrolment(
        &self,
        patient: PatientId,
    ) -> Result<Option<EnrolmentState>, StorageError> {
        let row = sqlx::query(
            "SELECT state, cohort_id, reason, exclusion_flags FROM enrolments WHERE patient_id = $1",
        )
        .bind(patient.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &patient.to_string()))?;
        let Some(row) = row else {
            return Ok(None);
        };

        let code: String = column(&row, "state")?;
        let cohort = column::<Option<String>>(&row, "cohort_id")?
            .map(|text| parse_column::<CohortId>("enrolments.cohort_id", &text))
            .transpose()?;
        let flags = ExclusionFlag::parse_list(&column::<String>(&row, "exclusion_flags")?)
            .map_err(|error| corrupt("enrolments.exclusion_flags", &error))?;
        EnrolmentState::from_parts(&code, cohort, column(&row, "reason")?, flags)
            .map(Some)
            .ok_or_else(|| corrupt("enrolments.state", &code))
    }

    async fn record_transition(
        &self,
        patient: PatientId,
        current: Option<&EnrolmentState>,
        next: &EnrolmentState,
        actor: Option<AccountId>,
        reason: Option<&str>,
        screening: Option<&Screening>,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let id = patient.to_string();
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        let cohort = next.cohort().map(|cohort| cohort.to_string());
        let flags = ExclusionFlag::join(next.exclusion_flags());
        let changed = match current {
            None => sqlx::query(
                "INSERT INTO enrolments (patient_id, state, cohort_id, reason, exclusion_flags, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (patient_id) DO NOTHING",
            )
            .bind(&id)
            .bind(next.code())
            .bind(cohort)
            .bind(next.reason().map(str::to_owned))
            .bind(flags)
            .bind(to_millis(at))
            .execute(&mut *transaction)
            .await,
            Some(current) => sqlx::query(
                "UPDATE enrolments SET state = $1, cohort_id = $2, reason = $3, exclusion_flags = $4, updated_at = $5 \
                 WHERE patient_id = $6 AND state = $7",
            )
            .bind(next.code())
            .bind(cohort)
            .bind(next.reason().map(str::to_owned))
            .bind(flags)
            .bind(to_millis(at))
            .bind(&id)
            .bind(current.code())
            .execute(&mut *transaction)
            .await,
        }
        .map_err(|error| map_error(error, ENTITY, &id))?;
        if changed.rows_affected() == 0 {
            return Err(StorageError::Conflict {
                constraint: "enrolments_changed".to_owned(),
            });
        }

        sqlx::query(
            "INSERT INTO enrolment_transitions (id, patient_id, from_state, to_state, actor_account_id, reason, happened_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&id)
        .bind(current.map_or("referred", EnrolmentState::code))
        .bind(next.code())
        .bind(actor.map(|actor| actor.to_string()))
        .bind(reason.map(str::to_owned))
        .bind(to_millis(at))
        .execute(&mut *transaction)
        .await
        .map_err(|error| map_error(error, ENTITY, &id))?;

        if let Some(screening) = screening {
            let conditions: Vec<String> = screening
                .conditions
                .iter()
                .map(ToString::to_string)
                .collect();
            sqlx::query(
                "INSERT INTO screenings (id, patient_id, conditions, symptom_burden, interested_in_non_drug_coping, \
                 exclusion_flags, screened_by, screened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&id)
            .bind(conditions.join(","))
            .bind(i64::from(screening.symptom_burden))
            .bind(i64::from(screening.interested_in_non_drug_coping))
            .bind(ExclusionFlag::join(&screening.exclusion_flags))
            .bind(actor.map(|actor| actor.to_string()))
            .bind(to_millis(at))
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, ENTITY, &id))?;
        }
        // A patient holding a place joins the cohort's care team, so its facilitators see them.
        if let (Some(cohort), true) = (next.cohort(), next.holds_place()) {
            sqlx::query(
                "INSERT INTO cohort_members (cohort_id, patient_id) VALUES ($1, $2) \
                 ON CONFLICT (cohort_id, patient_id) DO NOTHING",
            )
            .bind(cohort.to_string())
            .bind(&id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, ENTITY, &id))?;
        }
        // A patient who leaves the cohort (withdrawn, or moved elsewhere) leaves its care team.
        // A completed patient stays, for the follow-up after the program.
        let left = current
            .and_then(EnrolmentState::cohort)
            .filter(|previous| !(next.takes_part() && next.cohort() == Some(*previous)));
        if let Some(previous) = left {
            sqlx::query("DELETE FROM cohort_members WHERE cohort_id = $1 AND patient_id = $2")
                .bind(previous.to_string())
                .bind(&id)
                .execute(&mut *transaction)
                .await
                .map_err(|error| map_error(error, ENTITY, &id))?;
        }
        transaction.commit().await.map_err(map_write_error)
    }

    async fn enrolment_history(
        &self,
        patient: PatientId,
    ) -> Result<Vec<EnrolmentHistoryEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT from_state, to_state, actor_account_id, reason, happened_at FROM enrolment_transitions \
             WHERE patient_id = $1 ORDER BY happened_at, id",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &patient.to_string()))?;
        rows.iter()
            .map(|row| {
                Ok(EnrolmentHistoryEntry {
                    from_state: column(row, "from_state")?,
                    to_state: column(row, "to_state")?,
                    actor: column::<Option<String>>(row, "actor_account_id")?
                        .map(|text| parse_column("enrolment_transitions.actor_account_id", &text))
                        .transpose()?,
                    reason: column(row, "reason")?,
                    at: from_millis(column(row, "happened_at")?)?,
                })
            })
            .collect()
    }

    async fn get_cohort(&self, cohort: CohortId) -> Result<(Cohort, u32), StorageError> {
        let row = sqlx::query("SELECT site_id, name, capacity FROM cohorts WHERE id = $1")
            .bind(cohort.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        let capacity: i64 = column(&row, "capacity")?;
        Ok((
            Cohort {
                id: cohort,
                site_id: parse_column("cohorts.site_id", &column::<String>(&row, "site_id")?)?,
                name: column(&row, "name")?,
            },
            u32::try_from(capacity).map_err(|error| corrupt("cohorts.capacity", &error))?,
        ))
    }

    async fn count_places_taken(&self, cohort: CohortId) -> Result<u32, StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS places_taken FROM enrolments WHERE cohort_id = $1 \
             AND state IN ('enrolled', 'active', 'lapsed', 'returned')",
        )
        .bind(cohort.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        let places_taken: i64 = column(&row, "places_taken")?;
        u32::try_from(places_taken).map_err(|error| corrupt("enrolments", &error))
    }
}
