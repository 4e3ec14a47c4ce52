//! The durable job queue's table.

use std::fmt::Write as _;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{Enqueued, Job, JobStore, NewJob};
use stillpoint_domain::jobs::JobState;

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, to_millis};

const ENTITY: &str = "job";

/// The conflict clause of enqueueing: a key that exists is left alone, unless its job was
/// cancelled, which queues it again with the new payload and due time. A session moved away
/// and back, or a practice time changed and changed back, so gets its reminders again.
const REQUEUE_CANCELLED: &str = "ON CONFLICT (idempotency_key) DO UPDATE SET \
     kind = excluded.kind, payload = excluded.payload, state = 'queued', attempts = 0, \
     due_at = excluded.due_at, next_attempt_at = excluded.next_attempt_at, \
     created_at = excluded.created_at, finished_at = NULL, last_error = NULL, \
     lease_owner = NULL, lease_until = NULL \
     WHERE jobs.state = 'cancelled'";

/// Jobs per statement in a bulk insert: 4 values each stays far below both databases' limits
/// on bound values.
const ENQUEUE_BATCH: usize = 500;

const JOB_COLUMNS: &str = "SELECT id, kind, payload, idempotency_key, state, attempts, due_at, next_attempt_at, \
     last_error, finished_at FROM jobs";

fn job_from_row(row: &AnyRow) -> Result<Job, StorageError> {
    let attempts: i64 = column(row, "attempts")?;
    Ok(Job {
        id: column(row, "id")?,
        kind: column(row, "kind")?,
        payload: column(row, "payload")?,
        idempotency_key: column(row, "idempotency_key")?,
        state: JobState::parse(&column::<String>(row, "state")?)
            .map_err(|error| corrupt("jobs.state", &error))?,
        attempts: u32::try_from(attempts).map_err(|error| corrupt("jobs.attempts", &error))?,
        due_at: from_millis(column(row, "due_at")?)?,
        next_attempt_at: from_millis(column(row, "next_attempt_at")?)?,
        last_error: column(row, "last_error")?,
        finished_at: column::<Option<i64>>(row, "finished_at")?
            .map(from_millis)
            .transpose()?,
    })
}

/// Turns "no row changed" into a conflict naming what was expected.
fn changed(rows: u64, constraint: &str) -> Result<(), StorageError> {
    if rows == 0 {
        Err(StorageError::Conflict {
            constraint: constraint.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[async_trait]
impl JobStore for Database {
    async fn enqueue(&self, job: &NewJob, now: Timestamp) -> Result<Enqueued, StorageError> {
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO jobs (kind, payload, idempotency_key, state, attempts, due_at, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, 'queued', 0, $4, $4, $5) \
             {REQUEUE_CANCELLED} RETURNING id",
        )))
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(&job.idempotency_key)
        .bind(to_millis(job.due_at))
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_write_error)?;
        if let Some(row) = inserted {
            return Ok(Enqueued::Queued(column(&row, "id")?));
        }
        let existing = sqlx::query("SELECT id FROM jobs WHERE idempotency_key = $1")
            .bind(&job.idempotency_key)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, ENTITY, &job.idempotency_key))?;
        Ok(Enqueued::Exists(column(&existing, "id")?))
    }

    async fn enqueue_many(&self, jobs: &[NewJob], now: Timestamp) -> Result<u64, StorageError> {
        // PostgreSQL rejects a statement whose conflict clause would update one row twice, so
        // a key given twice is queued once.
        let mut seen = std::collections::HashSet::with_capacity(jobs.len());
        let jobs: Vec<&NewJob> = jobs
            .iter()
            .filter(|job| seen.insert(job.idempotency_key.as_str()))
            .collect();
        let mut added = 0;
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        for batch in jobs.chunks(ENQUEUE_BATCH) {
            let mut statement = String::from(
                "INSERT INTO jobs (kind, payload, idempotency_key, state, attempts, due_at, next_attempt_at, created_at) VALUES ",
            );
            for index in 0..batch.len() {
                let base = index * 4;
                if index > 0 {
                    statement.push_str(", ");
                }
                let _ = write!(
                    statement,
                    "(${}, ${}, ${}, 'queued', 0, ${}, ${}, ${})",
                    base + 1,
                    base + 2,
                    base + 3,
                    base + 4,
                    base + 4,
                    batch.len() * 4 + 1
                );
            }
            statement.push(' ');
            statement.push_str(REQUEUE_CANCELLED);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
            for job in batch {
                query = query
                    .bind(&job.kind)
                    .bind(&job.payload)
                    .bind(&job.idempotency_key)
                    .bind(to_millis(job.due_at));
            }
            let result = query
                .bind(to_millis(now))
                .execute(&mut *transaction)
                .await
                .map_err(map_write_error)?;
            added += result.rows_affected();
        }
        transaction.commit().await.map_err(map_write_error)?;
        Ok(added)
    }

    async fn cancel_queued_jobs_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> Result<u64, StorageError> {
        let pattern = format!(
            "{}%",
            prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let result = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1 \
             WHERE state = 'queued' AND idempotency_key LIKE $2 ESCAPE '\\'",
        )
        .bind(to_millis(now))
        .bind(pattern)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected())
    }

    async fn claim_next(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Job>, StorageError> {
        let row = sqlx::query(self.dialect().job_claim_statement())
            .bind(worker)
            .bind(to_millis(lease_until))
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_write_error)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn complete_job(
        &self,
        id: i64,
        worker: &str,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let result = sqlx::query(
            "UPDATE jobs SET state = 'done', finished_at = $1, lease_owner = NULL, lease_until = NULL \
             WHERE id = $2 AND state = 'running' AND lease_owner = $3",
        )
        .bind(to_millis(now))
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        changed(result.rows_affected(), "jobs_lease")
    }

    async fn fail_job(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        next_attempt: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let statement = match next_attempt {
            Some(_) => {
                "UPDATE jobs SET state = 'queued', next_attempt_at = $1, last_error = $2, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $3 AND state = 'running' AND lease_owner = $4"
            }
            None => {
                "UPDATE jobs SET state = 'failed', finished_at = $1, last_error = $2, \
                 lease_owner = NULL, lease_until = NULL \
                 WHERE id = $3 AND state = 'running' AND lease_owner = $4"
            }
        };
        let result = sqlx::query(statement)
            .bind(to_millis(next_attempt.unwrap_or(now)))
            .bind(error)
            .bind(id)
            .bind(worker)
            .execute(&self.pool)
            .await
            .map_err(map_write_error)?;
        changed(result.rows_affected(), "jobs_lease")
    }

    async fn cancel_job(
        &self,
        idempotency_key: &str,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1 \
             WHERE idempotency_key = $2 AND state = 'queued'",
        )
        .bind(to_millis(now))
        .bind(idempotency_key)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn retry_failed_job(&self, id: i64, now: Timestamp) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = $1, finished_at = NULL \
             WHERE id = $2 AND state = 'failed'",
        )
        .bind(to_millis(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn get_job(&self, id: i64) -> Result<Job, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{JOB_COLUMNS} WHERE id = $1")))
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, ENTITY, &id.to_string()))?;
        job_from_row(&row)
    }

    async fn list_jobs(&self, state: JobState, limit: i64) -> Result<Vec<Job>, StorageError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{JOB_COLUMNS} WHERE state = $1 ORDER BY next_attempt_at DESC, id DESC LIMIT $2"
        )))
        .bind(state.code())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter().map(job_from_row).collect()
    }
}
