-- An administrator deactivates the account of someone who left: it can no longer sign in, and the
-- account and its history stay for the audit trail.

ALTER TABLE accounts ADD COLUMN deactivated_at INTEGER;
