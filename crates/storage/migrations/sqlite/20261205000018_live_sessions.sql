-- Live sessions: caregivers invited to a session, the room's join and leave events for
-- attendance, technology checks, and the meeting link of cohorts that use an external service.

ALTER TABLE cohorts ADD COLUMN video_link TEXT;

CREATE TABLE session_guests (
    session_id TEXT NOT NULL CONSTRAINT session_guests_session_id_fkey REFERENCES cohort_sessions (id) ON DELETE CASCADE,
    caregiver_account_id TEXT NOT NULL CONSTRAINT session_guests_caregiver_account_id_fkey REFERENCES accounts (id),
    patient_id TEXT NOT NULL CONSTRAINT session_guests_patient_id_fkey REFERENCES patients (id),
    invited_by TEXT NOT NULL CONSTRAINT session_guests_invited_by_fkey REFERENCES accounts (id),
    invited_at INTEGER NOT NULL,
    CONSTRAINT session_guests_pkey PRIMARY KEY (session_id, caregiver_account_id)
) STRICT;

CREATE TABLE room_events (
    id INTEGER NOT NULL CONSTRAINT room_events_pkey PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL CONSTRAINT room_events_session_id_fkey REFERENCES cohort_sessions (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL CONSTRAINT room_events_account_id_fkey REFERENCES accounts (id),
    -- 'entered' when admitted to the room, 'left' when leaving or removed.
    event TEXT NOT NULL CONSTRAINT room_events_event_check CHECK (event IN ('entered', 'left')),
    happened_at INTEGER NOT NULL
) STRICT;

CREATE INDEX room_events_session_idx ON room_events (session_id, happened_at);

CREATE TABLE tech_checks (
    id INTEGER NOT NULL CONSTRAINT tech_checks_pkey PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL CONSTRAINT tech_checks_account_id_fkey REFERENCES accounts (id),
    camera_ok INTEGER NOT NULL CONSTRAINT tech_checks_camera_ok_check CHECK (camera_ok IN (0, 1)),
    microphone_ok INTEGER NOT NULL CONSTRAINT tech_checks_microphone_ok_check CHECK (microphone_ok IN (0, 1)),
    speaker_ok INTEGER NOT NULL CONSTRAINT tech_checks_speaker_ok_check CHECK (speaker_ok IN (0, 1)),
    connection_ok INTEGER NOT NULL CONSTRAINT tech_checks_connection_ok_check CHECK (connection_ok IN (0, 1)),
    round_trip_ms INTEGER CONSTRAINT tech_checks_round_trip_ms_check CHECK (round_trip_ms >= 0),
    checked_at INTEGER NOT NULL
) STRICT;

CREATE INDEX tech_checks_account_idx ON tech_checks (account_id, checked_at);
