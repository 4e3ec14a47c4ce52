-- Two-step verification: one TOTP (RFC 6238) credential per account, its one-time recovery codes,
-- and whether a sign-in session has passed the second step.

CREATE TABLE totp_credentials (
    account_id TEXT NOT NULL CONSTRAINT totp_credentials_pkey PRIMARY KEY
        CONSTRAINT totp_credentials_account_id_fkey REFERENCES accounts (id) ON DELETE CASCADE,
    -- The shared secret, encrypted with AES-256-GCM under the server's secrets key.
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Null until the person has entered a first correct code from their authenticator app.
    confirmed_at BIGINT,
    -- The 30-second time step of the last accepted code; a code is accepted once (RFC 6238, 5.2).
    last_used_step BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL CONSTRAINT recovery_codes_account_id_fkey REFERENCES accounts (id) ON DELETE CASCADE,
    -- SHA-256 of the normalised code; the code itself is shown once and never stored.
    code_digest TEXT NOT NULL,
    used_at BIGINT,
    CONSTRAINT recovery_codes_pkey PRIMARY KEY (account_id, code_digest)
);

ALTER TABLE sign_in_sessions ADD COLUMN second_factor_at BIGINT;
