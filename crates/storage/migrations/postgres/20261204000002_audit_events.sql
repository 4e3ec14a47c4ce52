-- The audit trail: append-only and hash-chained (see stillpoint_domain::audit). Accounts and
-- patients are referenced without foreign keys, because the trail must outlive the records it
-- describes. The triggers refuse updates, deletes and TRUNCATE, so only a role that may drop them
-- (the table's owner) can edit the table, and the hash chain shows where it did. Run the server as
-- a role that only has INSERT and SELECT on this table where that separation matters.

CREATE TABLE audit_events (
    sequence BIGINT NOT NULL CONSTRAINT audit_events_pkey PRIMARY KEY
        CONSTRAINT audit_events_sequence_check CHECK (sequence > 0),
    recorded_at BIGINT NOT NULL,
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
);

CREATE INDEX audit_events_patient_id_idx ON audit_events (patient_id, sequence);
CREATE INDEX audit_events_actor_account_id_idx ON audit_events (actor_account_id, sequence);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events_append_only: audit events cannot be changed or deleted';
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

-- Row triggers do not fire on TRUNCATE, so it gets a statement trigger of its own.
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
