-- Sign-in attempts that have not succeeded, kept for 24 hours (longer than any throttling window)
-- and purged whenever a new one is recorded. `email` is the address as typed (after validation),
-- so attempts on addresses without an account are counted too.

CREATE TABLE sign_in_failures (
    email TEXT NOT NULL,
    source_address TEXT NOT NULL,
    failed_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sign_in_failures_email_idx ON sign_in_failures (email, failed_at);
CREATE INDEX sign_in_failures_source_address_idx ON sign_in_failures (source_address, failed_at);
CREATE INDEX sign_in_failures_failed_at_idx ON sign_in_failures (failed_at);
