-- Each patient's position on the enrolment pathway, its history, and screening findings.

ALTER TABLE cohorts ADD COLUMN capacity BIGINT NOT NULL DEFAULT 15;

CREATE TABLE enrolments (
    patient_id TEXT NOT NULL CONSTRAINT enrolments_pkey PRIMARY KEY
        CONSTRAINT enrolments_patient_id_fkey REFERENCES patients (id),
    state TEXT NOT NULL CONSTRAINT enrolments_state_check CHECK (state IN (
        'referred', 'screening', 'eligible', 'not_eligible', 'higher_level_of_care', 'consented',
        'oriented', 'enrolled', 'waitlisted', 'active', 'completed', 'withdrawn', 'lapsed', 'returned'
    )),
    cohort_id TEXT CONSTRAINT enrolments_cohort_id_fkey REFERENCES cohorts (id),
    -- The reason of a not-eligible or withdrawn state.
    reason TEXT,
    -- Exclusion flags that routed the patient to a higher level of care, comma-separated.
    exclusion_flags TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX enrolments_cohort_id_idx ON enrolments (cohort_id, state);

CREATE TABLE enrolment_transitions (
    id TEXT NOT NULL CONSTRAINT enrolment_transitions_pkey PRIMARY KEY,
    patient_id TEXT NOT NULL CONSTRAINT enrolment_transitions_patient_id_fkey REFERENCES patients (id),
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    actor_account_id TEXT NOT NULL CONSTRAINT enrolment_transitions_actor_account_id_fkey REFERENCES accounts (id),
    reason TEXT,
    happened_at BIGINT NOT NULL
);

CREATE INDEX enrolment_transitions_patient_idx ON enrolment_transitions (patient_id, happened_at);

CREATE TABLE screenings (
    id TEXT NOT NULL CONSTRAINT screenings_pkey PRIMARY KEY,
    patient_id TEXT NOT NULL CONSTRAINT screenings_patient_id_fkey REFERENCES patients (id),
    -- ICD-10-CM codes, comma-separated.
    conditions TEXT NOT NULL,
    symptom_burden BIGINT NOT NULL CONSTRAINT screenings_symptom_burden_check CHECK (symptom_burden BETWEEN 0 AND 10),
    interested_in_non_drug_coping BIGINT NOT NULL,
    exclusion_flags TEXT NOT NULL,
    screened_by TEXT NOT NULL CONSTRAINT screenings_screened_by_fkey REFERENCES accounts (id),
    screened_at BIGINT NOT NULL
);
