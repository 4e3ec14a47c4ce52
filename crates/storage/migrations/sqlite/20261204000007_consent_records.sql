-- Patients' signatures of consent documents. A record is never deleted: withdrawal is recorded
-- on it, and a new signature (after a new version or a withdrawal) adds a record.

CREATE TABLE consent_records (
    id TEXT NOT NULL CONSTRAINT consent_records_pkey PRIMARY KEY,
    patient_id TEXT NOT NULL CONSTRAINT consent_records_patient_id_fkey REFERENCES patients (id),
    document_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    language TEXT NOT NULL,
    -- SHA-256 of the exact document text the patient was shown.
    content_hash TEXT NOT NULL,
    signed_name TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    signer_account_id TEXT NOT NULL CONSTRAINT consent_records_signer_account_id_fkey REFERENCES accounts (id),
    withdrawn_at INTEGER,
    withdrawal_reason TEXT
) STRICT;

CREATE INDEX consent_records_patient_idx ON consent_records (patient_id, document_id, signed_at);
