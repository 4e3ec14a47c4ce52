//! The storage port of the durable job queue.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::jobs::JobState;

use crate::StorageError;

/// A job to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The kind, which picks the handler, such as `session_reminder`.
    pub kind: String,
    /// The handler's input, as JSON.
    pub payload: String,
    /// A job with the same key is queued once, however often it is enqueued, so a reminder
    /// planned twice is sent once.
    pub idempotency_key: String,
    pub due_at: Timestamp,
}

/// The result of enqueueing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued(i64),
    /// A job with the same idempotency key exists already; nothing was added.
    Exists(i64),
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub idempotency_key: String,
    pub state: JobState,
    /// Attempts started so far, the current one included.
    pub attempts: u32,
    pub due_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub finished_at: Option<Timestamp>,
}

/// The durable job queue.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn enqueue(&self, job: &NewJob, now: Timestamp) -> Result<Enqueued, StorageError>;
    /// Queues many jobs in one transaction, skipping keys that exist; returns how many were
    /// added. For planning reminders in bulk.
    async fn enqueue_many(&self, jobs: &[NewJob], now: Timestamp) -> Result<u64, StorageError>;
    /// Cancels every queued job whose idempotency key starts with `prefix`, such as the
    /// pending reminders of a session that moved; returns how many.
    async fn cancel_queued_jobs_with_prefix(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> Result<u64, StorageError>;
    /// Claims the earliest job that is due, or whose worker's lease ran out (a worker that
    /// crashed), for `worker` until `lease_until`, and counts the attempt. Two workers never
    /// claim the same job at once.
    async fn claim_next(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Job>, StorageError>;
    /// Marks a claimed job done; `Conflict` when the job's lease is no longer `worker`'s.
    async fn complete_job(&self, id: i64, worker: &str, now: Timestamp)
    -> Result<(), StorageError>;
    /// Records a failed attempt: queued again for `next_attempt`, or failed for good when it
    /// is `None`. `Conflict` when the job's lease is no longer `worker`'s.
    async fn fail_job(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        next_attempt: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StorageError>;
    /// Cancels a job that has not finished; returns whether one was cancelled.
    async fn cancel_job(&self, idempotency_key: &str, now: Timestamp)
    -> Result<bool, StorageError>;
    /// Queues a failed job again from its first attempt, for the dead-letter list's retry
    /// button; returns whether it was failed.
    async fn retry_failed_job(&self, id: i64, now: Timestamp) -> Result<bool, StorageError>;
    async fn get_job(&self, id: i64) -> Result<Job, StorageError>;
    /// Up to `limit` jobs in `state`, the most recent first.
    async fn list_jobs(&self, state: JobState, limit: i64) -> Result<Vec<Job>, StorageError>;
}
