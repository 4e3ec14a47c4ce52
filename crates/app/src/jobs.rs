//! The worker of the durable job queue. Every server runs one; each step claims one due job,
//! runs its handler and records the outcome, retrying a failed job with backoff (see
//! [`stillpoint_domain::jobs::RetryPolicy`]).
//!
//! A handler that sends something must record the send before it returns success, keyed by
//! the job's idempotency key, so that a job retried after a crash between sending and
//! completing does not send twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use stillpoint_domain::jobs::RetryPolicy;

use crate::ports::{Job, Store};
use crate::{AppError, Clock, StorageError};

/// The reason an attempt failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    pub message: String,
    /// `false` for a failure retrying cannot fix, such as an invalid payload.
    pub retryable: bool,
}

impl JobFailure {
    #[must_use]
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    #[must_use]
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Runs the jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &Job) -> Result<(), JobFailure>;

    /// Called once when the job failed for good, after the failure is recorded, for
    /// handlers that must act on it (such as trying another channel).
    async fn gave_up(&self, _job: &Job, _error: &str) {}
}

/// What one step of the worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Done {
        id: i64,
    },
    /// The attempt failed and the job is queued again.
    Retry {
        id: i64,
        at: Timestamp,
    },
    /// The job failed for good and waits in the dead-letter list.
    Failed {
        id: i64,
        error: String,
    },
    /// Another worker took the job over after this one's lease ran out.
    LeaseLost {
        id: i64,
    },
}

/// A job worker with its handlers.
pub struct Worker {
    /// This worker's name in leases, such as the host and process id.
    id: String,
    handlers: BTreeMap<String, Arc<dyn JobHandler>>,
    policy: RetryPolicy,
    /// How long a claimed job is this worker's before another may take it over.
    lease: SignedDuration,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The default lease: long enough for any one send, short enough that a crashed worker's job
/// runs again within minutes.
pub const DEFAULT_LEASE: SignedDuration = SignedDuration::from_mins(5);

impl Worker {
    #[must_use]
    pub fn new(id: impl Into<String>, policy: RetryPolicy, lease: SignedDuration) -> Self {
        Self {
            id: id.into(),
            handlers: BTreeMap::new(),
            policy,
            lease,
        }
    }

    /// Adds the handler of `kind`.
    #[must_use]
    pub fn with_handler(mut self, kind: impl Into<String>, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.insert(kind.into(), handler);
        self
    }

    /// Claims and runs one due job. Returns `None` when no job is due. `jitter` is a random
    /// number in `0.0..1.0` for the retry delay.
    pub async fn step(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        jitter: f64,
    ) -> Result<Option<StepOutcome>, AppError> {
        let now = clock.now();
        let lease_until = now.checked_add(self.lease).unwrap_or(now);
        let Some(job) = store.claim_next(&self.id, now, lease_until).await? else {
            return Ok(None);
        };
        tracing::info!(job_id = job.id, kind = %job.kind, attempt = job.attempts, "job started");

        let result = match self.handlers.get(&job.kind) {
            Some(handler) => handler.run(&job).await,
            None => Err(JobFailure::permanent(format!(
                "no handler for jobs of kind '{}'",
                job.kind
            ))),
        };
        let finished = clock.now();
        let outcome = match result {
            Ok(()) => store
                .complete_job(job.id, &self.id, finished)
                .await
                .map(|()| StepOutcome::Done { id: job.id }),
            Err(failure) => {
                self.record_failure(store, &job, &failure, finished, jitter)
                    .await
            }
        };
        match outcome {
            Ok(outcome) => {
                tracing::info!(job_id = job.id, outcome = ?outcome, "job finished");
                Ok(Some(outcome))
            }
            Err(StorageError::Conflict { .. }) => {
                tracing::warn!(
                    job_id = job.id,
                    "job lease ran out before the outcome was recorded; another worker has it"
                );
                Ok(Some(StepOutcome::LeaseLost { id: job.id }))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn record_failure(
        &self,
        store: &dyn Store,
        job: &Job,
        failure: &JobFailure,
        now: Timestamp,
        jitter: f64,
    ) -> Result<StepOutcome, StorageError> {
        let next = if failure.retryable {
            self.policy.next_attempt(job.attempts, now, jitter)
        } else {
            None
        };
        store
            .fail_job(job.id, &self.id, &failure.message, next, now)
            .await?;
        if let Some(at) = next {
            tracing::warn!(job_id = job.id, error = %failure.message, retry_at = %at, "job attempt failed; retrying later");
            return Ok(StepOutcome::Retry { id: job.id, at });
        }
        tracing::error!(job_id = job.id, error = %failure.message, "job failed for good");
        if let Some(handler) = self.handlers.get(&job.kind) {
            handler.gave_up(job, &failure.message).await;
        }
        Ok(StepOutcome::Failed {
            id: job.id,
            error: failure.message.clone(),
        })
    }
}

/// The jobs an administrator reviews: failed ones (the dead-letter list) and recent ones of
/// the other states. Only system administrators may, because job payloads name records.
pub async fn job_log(
    store: &dyn Store,
    account: &stillpoint_domain::Account,
) -> Result<Vec<Job>, AppError> {
    if !account.has_role(stillpoint_domain::Role::SystemAdministrator) {
        return Err(AppError::Forbidden);
    }
    let mut jobs = Vec::new();
    for state in stillpoint_domain::jobs::JobState::ALL {
        jobs.extend(store.list_jobs(state, 50).await?);
    }
    Ok(jobs)
}

/// Queues a failed job again from its first attempt, for the dead-letter list's retry button.
pub async fn retry_failed(
    store: &dyn Store,
    clock: &dyn Clock,
    account: &stillpoint_domain::Account,
    id: i64,
) -> Result<(), AppError> {
    if !account.has_role(stillpoint_domain::Role::SystemAdministrator) {
        return Err(AppError::Forbidden);
    }
    if store.retry_failed_job(id, clock.now()).await? {
        tracing::info!(job_id = id, account_id = %account.id, "failed job queued again by an administrator");
        // A delivery that failed for good is queued again with its job, or the job would find
        // it failed and send nothing.
        let job = store.get_job(id).await?;
        if job.kind == crate::notify::DELIVER
            && let Ok(payload) = serde_json::from_str::<crate::notify::DeliverPayload>(&job.payload)
        {
            store
                .requeue_failed_delivery(&payload.delivery, clock.now())
                .await?;
        }
        Ok(())
    } else {
        Err(stillpoint_domain::InvalidValue::new(
            "job",
            format!("job {id} has not failed, so there is nothing to retry; reload the list"),
        )
        .into())
    }
}
