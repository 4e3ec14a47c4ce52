-- The durable job queue: reminders and notifications run from here, on every server, and
-- survive restarts.

CREATE TABLE jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT jobs_pkey PRIMARY KEY,
    kind TEXT NOT NULL,
    -- The handler's input, as JSON.
    payload TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CONSTRAINT jobs_idempotency_key_key UNIQUE,
    state TEXT NOT NULL CONSTRAINT jobs_state_check CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL DEFAULT 0,
    due_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    -- The worker holding a running job, and until when; a lease that runs out marks a worker
    -- that stopped mid-job, and another may claim the job.
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);

CREATE INDEX jobs_claim_idx ON jobs (state, next_attempt_at);
