-- Single-use links: invitations to create an account, and password resets. Only the SHA-256 of
-- the token is stored; the link itself is shown once to the person who issued it.

CREATE TABLE account_links (
    token_digest TEXT NOT NULL CONSTRAINT account_links_pkey PRIMARY KEY,
    purpose TEXT NOT NULL CONSTRAINT account_links_purpose_check CHECK (
        purpose IN ('staff_invitation', 'patient_invitation', 'caregiver_invitation', 'password_reset')
    ),
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    -- Role assignments of an invitation, as "role" or "role@site_id" separated by ";".
    roles TEXT NOT NULL,
    -- Patient invitation: the record the new account signs in to. Caregiver invitation: the
    -- patient who shares with the new caregiver.
    patient_id TEXT CONSTRAINT account_links_patient_id_fkey REFERENCES patients (id),
    -- Caregiver invitation: the scopes the patient shares.
    scopes TEXT NOT NULL,
    -- Password reset: the account whose password is set.
    account_id TEXT CONSTRAINT account_links_account_id_fkey REFERENCES accounts (id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;

CREATE INDEX account_links_email_idx ON account_links (email);

-- Display preferences of each account.
ALTER TABLE accounts ADD COLUMN larger_text INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN reduced_motion INTEGER NOT NULL DEFAULT 0;
