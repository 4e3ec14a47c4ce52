-- Care teams: cohorts with their facilitators and patients, caregivers' grants from patients,
-- and clinicians' break-glass access outside their care team.

CREATE TABLE cohorts (
    id TEXT NOT NULL CONSTRAINT cohorts_pkey PRIMARY KEY,
    site_id TEXT NOT NULL CONSTRAINT cohorts_site_id_fkey REFERENCES sites (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX cohorts_site_id_idx ON cohorts (site_id);

CREATE TABLE cohort_facilitators (
    cohort_id TEXT NOT NULL CONSTRAINT cohort_facilitators_cohort_id_fkey REFERENCES cohorts (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL CONSTRAINT cohort_facilitators_account_id_fkey REFERENCES accounts (id),
    -- 1 for the lead facilitator, 0 for a co-facilitator.
    is_lead BIGINT NOT NULL CONSTRAINT cohort_facilitators_is_lead_check CHECK (is_lead IN (0, 1)),
    CONSTRAINT cohort_facilitators_pkey PRIMARY KEY (cohort_id, account_id)
);

CREATE INDEX cohort_facilitators_account_id_idx ON cohort_facilitators (account_id);

CREATE TABLE cohort_members (
    cohort_id TEXT NOT NULL CONSTRAINT cohort_members_cohort_id_fkey REFERENCES cohorts (id) ON DELETE CASCADE,
    patient_id TEXT NOT NULL CONSTRAINT cohort_members_patient_id_fkey REFERENCES patients (id),
    CONSTRAINT cohort_members_pkey PRIMARY KEY (cohort_id, patient_id)
);

CREATE INDEX cohort_members_patient_id_idx ON cohort_members (patient_id);

CREATE TABLE caregiver_grants (
    patient_id TEXT NOT NULL CONSTRAINT caregiver_grants_patient_id_fkey REFERENCES patients (id),
    caregiver_account_id TEXT NOT NULL CONSTRAINT caregiver_grants_caregiver_account_id_fkey REFERENCES accounts (id),
    -- Comma-separated scope codes: schedule, practice, progress, sessions.
    scopes TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CONSTRAINT caregiver_grants_pkey PRIMARY KEY (patient_id, caregiver_account_id)
);

CREATE INDEX caregiver_grants_caregiver_account_id_idx ON caregiver_grants (caregiver_account_id);

CREATE TABLE break_glass_grants (
    id TEXT NOT NULL CONSTRAINT break_glass_grants_pkey PRIMARY KEY,
    clinician_account_id TEXT NOT NULL CONSTRAINT break_glass_grants_clinician_account_id_fkey REFERENCES accounts (id),
    patient_id TEXT NOT NULL CONSTRAINT break_glass_grants_patient_id_fkey REFERENCES patients (id),
    reason TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX break_glass_grants_lookup_idx ON break_glass_grants (clinician_account_id, patient_id, expires_at);
CREATE INDEX break_glass_grants_opened_at_idx ON break_glass_grants (opened_at);
