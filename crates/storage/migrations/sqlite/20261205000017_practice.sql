-- Home practice: the guided recording library, each patient's practice diary, accepted
-- changes to a patient's assignment, and tailoring suggestions for facilitators.

CREATE TABLE recordings (
    id TEXT NOT NULL CONSTRAINT recordings_pkey PRIMARY KEY,
    practice TEXT NOT NULL,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    -- audio/ogg, audio/mpeg or audio/mp4, from the file's bytes, not its name.
    media_type TEXT NOT NULL,
    duration_ms INTEGER NOT NULL CONSTRAINT recordings_duration_ms_check CHECK (duration_ms > 0),
    byte_size INTEGER NOT NULL CONSTRAINT recordings_byte_size_check CHECK (byte_size > 0),
    -- Hex SHA-256 of the audio, which is also its HTTP entity tag.
    sha256 TEXT NOT NULL,
    -- The WebVTT caption file as uploaded, checked before it was stored.
    captions TEXT NOT NULL,
    transcript TEXT NOT NULL,
    uploaded_by TEXT CONSTRAINT recordings_uploaded_by_fkey REFERENCES accounts (id),
    uploaded_at INTEGER NOT NULL,
    -- Set when the recording is taken out of the library; diary entries keep pointing to it.
    retired_at INTEGER
) STRICT;

CREATE INDEX recordings_practice_idx ON recordings (practice, language);

-- The audio in fixed-size pieces, so a range request reads only the pieces it needs.
CREATE TABLE recording_chunks (
    recording_id TEXT NOT NULL CONSTRAINT recording_chunks_recording_id_fkey REFERENCES recordings (id),
    chunk_index INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    CONSTRAINT recording_chunks_pkey PRIMARY KEY (recording_id, chunk_index)
) STRICT;

CREATE TABLE practice_entries (
    -- Made by the browser for timer entries and listening visits, so a resend is stored once.
    id TEXT NOT NULL CONSTRAINT practice_entries_pkey PRIMARY KEY,
    patient_id TEXT NOT NULL CONSTRAINT practice_entries_patient_id_fkey REFERENCES patients (id),
    -- The day in the patient's own calendar, as YYYY-MM-DD.
    practiced_on TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL CONSTRAINT practice_entries_source_check CHECK (source IN ('recording', 'timer', 'manual')),
    recording_id TEXT CONSTRAINT practice_entries_recording_id_fkey REFERENCES recordings (id),
    seconds INTEGER NOT NULL CONSTRAINT practice_entries_seconds_check CHECK (seconds >= 0 AND seconds <= 86400),
    -- For recordings: the media intervals played, "start-end,…" in seconds.
    segments TEXT,
    distress_before INTEGER CONSTRAINT practice_entries_distress_before_check CHECK (distress_before BETWEEN 0 AND 10),
    distress_after INTEGER CONSTRAINT practice_entries_distress_after_check CHECK (distress_after BETWEEN 0 AND 10),
    noticed TEXT NOT NULL,
    -- 1 when the patient shares the entry with the facilitator.
    shared INTEGER NOT NULL CONSTRAINT practice_entries_shared_check CHECK (shared IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX practice_entries_patient_idx ON practice_entries (patient_id, practiced_on);

-- The changes to a patient's home practice that facilitators accepted, combined: the longest
-- recording and daily minutes to assign, and whether movement is offered seated or lying only.
CREATE TABLE practice_adjustments (
    patient_id TEXT NOT NULL CONSTRAINT practice_adjustments_pkey PRIMARY KEY
        CONSTRAINT practice_adjustments_patient_id_fkey REFERENCES patients (id),
    max_minutes INTEGER CONSTRAINT practice_adjustments_max_minutes_check CHECK (max_minutes > 0),
    seated_or_lying INTEGER NOT NULL CONSTRAINT practice_adjustments_seated_or_lying_check CHECK (seated_or_lying IN (0, 1)),
    updated_by TEXT NOT NULL CONSTRAINT practice_adjustments_updated_by_fkey REFERENCES accounts (id),
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tailoring_suggestions (
    id TEXT NOT NULL CONSTRAINT tailoring_suggestions_pkey PRIMARY KEY,
    patient_id TEXT NOT NULL CONSTRAINT tailoring_suggestions_patient_id_fkey REFERENCES patients (id),
    rule TEXT NOT NULL,
    -- The program week it was made in; a rule fires at most once a week for a patient.
    week INTEGER NOT NULL,
    -- The data that fired the rule and the proposed change, as JSON.
    evidence TEXT NOT NULL,
    adjustment TEXT,
    state TEXT NOT NULL CONSTRAINT tailoring_suggestions_state_check CHECK (state IN ('open', 'accepted', 'dismissed')),
    created_at INTEGER NOT NULL,
    decided_by TEXT CONSTRAINT tailoring_suggestions_decided_by_fkey REFERENCES accounts (id),
    decided_at INTEGER,
    CONSTRAINT tailoring_suggestions_once_key UNIQUE (patient_id, rule, week)
) STRICT;

CREATE INDEX tailoring_suggestions_open_idx ON tailoring_suggestions (state, patient_id);
