-- In-app notifications: what a person is told in Stillpoint itself, with whether they read it.
-- The text comes from the translation catalogues in the reader's language; a notification
-- stores only the catalogue key and a link, never patient details.

CREATE TABLE notifications (
    id TEXT NOT NULL CONSTRAINT notifications_pkey PRIMARY KEY,
    account_id TEXT NOT NULL CONSTRAINT notifications_account_id_fkey REFERENCES accounts (id),
    kind TEXT NOT NULL,
    message_key TEXT NOT NULL,
    link TEXT NOT NULL,
    -- The job's idempotency key and the recipient, so a retried job notifies once.
    idempotency_key TEXT NOT NULL CONSTRAINT notifications_idempotency_key_key UNIQUE,
    created_at INTEGER NOT NULL,
    read_at INTEGER
) STRICT;

CREATE INDEX notifications_account_idx ON notifications (account_id, created_at);
