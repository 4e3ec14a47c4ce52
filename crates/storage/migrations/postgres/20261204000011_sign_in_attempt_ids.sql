-- An id for each recorded attempt, so that one attempt can be forgotten on its own (a staff
-- member's correct password, which still waits for its one-time code).

ALTER TABLE sign_in_failures ADD COLUMN attempt_id TEXT;

CREATE INDEX sign_in_failures_attempt_id_idx ON sign_in_failures (attempt_id);
