//! The durable job queue behaves the same on SQLite and PostgreSQL: enqueueing is idempotent,
//! two workers never claim one job, a crashed worker's job is taken over when its lease runs
//! out, failed attempts back off and end in the dead-letter list, and the worker steps one job
//! at a time on a manual clock.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use stillpoint_app::StorageError;
use stillpoint_app::jobs::{JobFailure, JobHandler, StepOutcome, Worker};
use stillpoint_app::ports::{Enqueued, Job, JobStore as _, NewJob};
use stillpoint_domain::jobs::{JobState, RetryPolicy};
use stillpoint_storage::{Database, Dialect};
use stillpoint_test_support::{ManualClock, TestDatabase};

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

fn job(key: &str, due: &str) -> NewJob {
    NewJob {
        kind: "test".to_owned(),
        payload: format!("{{\"key\":\"{key}\"}}"),
        idempotency_key: key.to_owned(),
        due_at: at(due),
    }
}

async fn enqueue_is_idempotent_and_ordered(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "jobs_enqueue").await else {
        return;
    };
    let db = &test_db.database;
    let now = at("2026-12-05T10:00:00Z");
    let first = db
        .enqueue(&job("b", "2026-12-05T10:05:00Z"), now)
        .await
        .expect("queued");
    let Enqueued::Queued(first_id) = first else {
        panic!("a new key is queued");
    };
    assert_eq!(
        db.enqueue(&job("b", "2026-12-05T11:00:00Z"), now)
            .await
            .expect("exists"),
        Enqueued::Exists(first_id)
    );
    db.enqueue(&job("a", "2026-12-05T10:01:00Z"), now)
        .await
        .expect("queued");

    // Nothing is due yet; then the earlier one comes first.
    let lease = at("2026-12-05T10:30:00Z");
    assert!(
        db.claim_next("w1", now, lease)
            .await
            .expect("claim")
            .is_none()
    );
    let claimed = db
        .claim_next("w1", at("2026-12-05T10:10:00Z"), lease)
        .await
        .expect("claim")
        .expect("a due job");
    assert_eq!(claimed.idempotency_key, "a");
    assert_eq!(claimed.state, JobState::Running);
    assert_eq!(claimed.attempts, 1);

    // A queued job can be cancelled; a running one cannot.
    assert!(db.cancel_job("b", now).await.expect("cancel"));
    assert!(!db.cancel_job("a", now).await.expect("cancel"));
    assert!(
        db.claim_next("w1", at("2026-12-05T10:10:00Z"), lease)
            .await
            .expect("claim")
            .is_none()
    );
}

async fn workers_never_share_a_job(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "jobs_claims").await else {
        return;
    };
    let now = at("2026-12-05T10:00:00Z");
    for index in 0..40 {
        test_db
            .database
            .enqueue(&job(&format!("job-{index}"), "2026-12-05T09:00:00Z"), now)
            .await
            .expect("queued");
    }
    // Two servers: two separate pools on the same database.
    let other = Database::connect(&test_db.url).await.expect("second pool");
    let claim_all = |db: Database, worker: &'static str| async move {
        let mut ids = Vec::new();
        while let Some(job) = db
            .claim_next(worker, now, at("2026-12-05T10:05:00Z"))
            .await
            .expect("claim")
        {
            ids.push(job.id);
        }
        ids
    };
    let (first, second) = tokio::join!(
        claim_all(test_db.database.clone(), "w1"),
        claim_all(other, "w2")
    );
    let all: BTreeSet<i64> = first.iter().chain(&second).copied().collect();
    assert_eq!(
        first.len() + second.len(),
        40,
        "{} + {}",
        first.len(),
        second.len()
    );
    assert_eq!(all.len(), 40, "no job was claimed twice");
}

async fn expired_lease_is_taken_over(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "jobs_lease").await else {
        return;
    };
    let db = &test_db.database;
    let now = at("2026-12-05T10:00:00Z");
    db.enqueue(&job("crash", "2026-12-05T10:00:00Z"), now)
        .await
        .expect("queued");
    let first = db
        .claim_next("w1", now, at("2026-12-05T10:05:00Z"))
        .await
        .expect("claim")
        .expect("due");
    // Before the lease ends nobody else gets it; after, w2 does, as a second attempt.
    assert!(
        db.claim_next("w2", at("2026-12-05T10:04:00Z"), at("2026-12-05T10:09:00Z"))
            .await
            .expect("claim")
            .is_none()
    );
    let second = db
        .claim_next("w2", at("2026-12-05T10:06:00Z"), at("2026-12-05T10:11:00Z"))
        .await
        .expect("claim")
        .expect("taken over");
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempts, 2);
    // The first worker can no longer record an outcome.
    let late = db
        .complete_job(first.id, "w1", at("2026-12-05T10:07:00Z"))
        .await;
    assert!(
        matches!(late, Err(StorageError::Conflict { .. })),
        "{late:?}"
    );
    db.complete_job(first.id, "w2", at("2026-12-05T10:07:00Z"))
        .await
        .expect("done");
    assert_eq!(
        db.get_job(first.id).await.expect("job").state,
        JobState::Done
    );
}

/// Fails its first `failures` attempts, then succeeds.
struct Flaky {
    failures: u32,
    calls: AtomicU32,
}

#[async_trait]
impl JobHandler for Flaky {
    async fn run(&self, _job: &Job) -> Result<(), JobFailure> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call <= self.failures {
            Err(JobFailure::retryable(format!(
                "provider timed out (call {call})"
            )))
        } else {
            Ok(())
        }
    }
}

async fn worker_backs_off_then_succeeds(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "jobs_worker").await else {
        return;
    };
    let db = &test_db.database;
    let clock = ManualClock::new(at("2026-12-05T10:00:00Z"));
    db.enqueue(
        &job("flaky", "2026-12-05T10:00:00Z"),
        at("2026-12-05T10:00:00Z"),
    )
    .await
    .expect("queued");
    let handler = Arc::new(Flaky {
        failures: 2,
        calls: AtomicU32::new(0),
    });
    let worker = Worker::new("w1", RetryPolicy::default(), SignedDuration::from_mins(5))
        .with_handler("test", handler.clone());

    // Attempt 1 fails: retried 30 s later at zero jitter.
    let outcome = worker.step(db, &clock, 0.0).await.expect("step");
    let Some(StepOutcome::Retry { id, at: retry_at }) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(retry_at, at("2026-12-05T10:00:30Z"));
    assert_eq!(
        worker.step(db, &clock, 0.0).await.expect("step"),
        None,
        "not due yet"
    );

    // Attempt 2 fails: 60 s later. Attempt 3 succeeds.
    clock.advance(SignedDuration::from_secs(30));
    let outcome = worker.step(db, &clock, 0.0).await.expect("step");
    assert_eq!(
        outcome,
        Some(StepOutcome::Retry {
            id,
            at: at("2026-12-05T10:01:30Z")
        })
    );
    clock.advance(SignedDuration::from_secs(60));
    assert_eq!(
        worker.step(db, &clock, 0.0).await.expect("step"),
        Some(StepOutcome::Done { id })
    );
    let stored = db.get_job(id).await.expect("job");
    assert_eq!(stored.state, JobState::Done);
    assert_eq!(stored.attempts, 3);
    assert_eq!(
        stored.last_error.as_deref(),
        Some("provider timed out (call 2)")
    );
}

async fn exhausted_job_waits_for_a_person(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "jobs_dead_letter").await else {
        return;
    };
    let db = &test_db.database;
    let clock = ManualClock::new(at("2026-12-05T10:00:00Z"));
    db.enqueue(
        &job("always", "2026-12-05T10:00:00Z"),
        at("2026-12-05T10:00:00Z"),
    )
    .await
    .expect("queued");
    db.enqueue(
        &NewJob {
            kind: "unknown".to_owned(),
            ..job("nobody", "2026-12-05T10:00:00Z")
        },
        at("2026-12-05T10:00:00Z"),
    )
    .await
    .expect("queued");
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let worker = Worker::new("w1", policy, SignedDuration::from_mins(5)).with_handler(
        "test",
        Arc::new(Flaky {
            failures: u32::MAX,
            calls: AtomicU32::new(0),
        }),
    );

    let mut failed = Vec::new();
    for _ in 0..10 {
        match worker.step(db, &clock, 1.0).await.expect("step") {
            Some(StepOutcome::Failed { id, error }) => failed.push((id, error)),
            Some(_) => {}
            None => clock.advance(SignedDuration::from_mins(5)),
        }
    }
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .any(|(_, error)| error.contains("no handler for jobs of kind 'unknown'"))
    );
    let dead = db.list_jobs(JobState::Failed, 10).await.expect("list");
    assert_eq!(dead.len(), 2);
    let always = dead
        .iter()
        .find(|job| job.idempotency_key == "always")
        .expect("dead");
    assert_eq!(always.attempts, 3);

    // The retry button queues it again from its first attempt.
    assert!(
        db.retry_failed_job(always.id, clock_now(&clock))
            .await
            .expect("retry")
    );
    let again = db.get_job(always.id).await.expect("job");
    assert_eq!(again.state, JobState::Queued);
    assert_eq!(again.attempts, 0);
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    stillpoint_app::Clock::now(clock)
}

stillpoint_test_support::on_both_databases!(
    enqueue_is_idempotent_and_ordered,
    workers_never_share_a_job,
    expired_lease_is_taken_over,
    worker_backs_off_then_succeeds,
    exhausted_job_waits_for_a_person,
);
