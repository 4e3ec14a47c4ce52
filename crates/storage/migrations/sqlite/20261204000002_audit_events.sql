-- The audit trail: append-only and hash-chained (see stillpoint_domain::audit). Accounts and
-- patients are referenced without foreign keys, because the trail must outlive the records it
-- describes. The triggers refuse updates and deletes, so only someone who drops them first (anyone
-- who can write the database file) can edit the table, and the hash chain shows where they did.

CREATE TABLE audit_events (
    sequence INTEGER NOT NULL CONSTRAINT audit_events_pkey PRIMARY KEY
        CONSTRAINT audit_events_sequence_check CHECK (sequence > 0),
    recorded_at INTEGER NOT NULL,
    actor_account_id TEXT,
    actor_role TEXT,
    patient_id TEXT,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    source_address TEXT,
    break_glass INTEGER NOT NULL,
    previous_hash TEXT NOT NULL,
    hash TEXT NOT NULL CONSTRAINT audit_events_hash_key UNIQUE
) STRICT;

CREATE INDEX audit_events_patient_id_idx ON audit_events (patient_id, sequence);
CREATE INDEX audit_events_actor_account_id_idx ON audit_events (actor_account_id, sequence);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events_append_only: audit events cannot be changed');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events_append_only: audit events cannot be deleted');
END;
