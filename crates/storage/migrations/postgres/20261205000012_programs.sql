-- Curriculum versions, the curriculum each cohort follows, session changes, attendance,
-- calendar feeds, and transitions made by the system itself (a detected lapse).

CREATE TABLE curriculum_versions (
    curriculum_id TEXT NOT NULL,
    version BIGINT NOT NULL CONSTRAINT curriculum_versions_version_check CHECK (version >= 1),
    status TEXT NOT NULL CONSTRAINT curriculum_versions_status_check CHECK (status IN ('draft', 'published')),
    -- The whole curriculum as JSON: sessions, agenda blocks, home practice and text per language.
    document TEXT NOT NULL,
    -- 'curriculum-id@version' that this curriculum was copied from, if any.
    based_on TEXT,
    -- The site whose program administrators edit this curriculum; null for the curricula that
    -- ship with Stillpoint and for those a system administrator made for every site.
    site_id TEXT CONSTRAINT curriculum_versions_site_id_fkey REFERENCES sites (id),
    -- Raised by every saved edit of a draft, so an edit or a publish based on an older reading
    -- is rejected instead of overwriting a colleague's change.
    revision BIGINT NOT NULL DEFAULT 0,
    -- Null for the curricula that ship with Stillpoint.
    created_by TEXT CONSTRAINT curriculum_versions_created_by_fkey REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    published_at BIGINT,
    CONSTRAINT curriculum_versions_pkey PRIMARY KEY (curriculum_id, version)
);

-- The curriculum version each cohort follows. SQLite cannot add a two-column foreign key to an
-- existing table, so the application checks that the version exists when it creates a cohort.
ALTER TABLE cohorts ADD COLUMN curriculum_id TEXT;
ALTER TABLE cohorts ADD COLUMN curriculum_version BIGINT;

-- Raised on every reschedule or cancellation, for the iCalendar SEQUENCE property.
ALTER TABLE cohort_sessions ADD COLUMN sequence BIGINT NOT NULL DEFAULT 0;

CREATE TABLE cohort_session_changes (
    id TEXT NOT NULL CONSTRAINT cohort_session_changes_pkey PRIMARY KEY,
    session_id TEXT NOT NULL CONSTRAINT cohort_session_changes_session_id_fkey REFERENCES cohort_sessions (id) ON DELETE CASCADE,
    change TEXT NOT NULL CONSTRAINT cohort_session_changes_change_check CHECK (change IN ('rescheduled', 'cancelled')),
    previous_starts_at BIGINT NOT NULL,
    new_starts_at BIGINT,
    reason TEXT NOT NULL,
    actor_account_id TEXT NOT NULL CONSTRAINT cohort_session_changes_actor_account_id_fkey REFERENCES accounts (id),
    happened_at BIGINT NOT NULL
);

CREATE INDEX cohort_session_changes_session_idx ON cohort_session_changes (session_id, happened_at);

CREATE TABLE attendance (
    session_id TEXT NOT NULL CONSTRAINT attendance_session_id_fkey REFERENCES cohort_sessions (id) ON DELETE CASCADE,
    patient_id TEXT NOT NULL CONSTRAINT attendance_patient_id_fkey REFERENCES patients (id),
    mark TEXT NOT NULL CONSTRAINT attendance_mark_check CHECK (mark IN ('present', 'late', 'left_early', 'absent', 'excused')),
    minutes_attended BIGINT NOT NULL CONSTRAINT attendance_minutes_attended_check CHECK (minutes_attended >= 0),
    makeup TEXT CONSTRAINT attendance_makeup_check CHECK (makeup IN ('recording', 'other_cohort')),
    recorded_by TEXT NOT NULL CONSTRAINT attendance_recorded_by_fkey REFERENCES accounts (id),
    recorded_at BIGINT NOT NULL,
    CONSTRAINT attendance_pkey PRIMARY KEY (session_id, patient_id)
);

CREATE INDEX attendance_patient_idx ON attendance (patient_id);

CREATE TABLE calendar_feeds (
    account_id TEXT NOT NULL CONSTRAINT calendar_feeds_pkey PRIMARY KEY
        CONSTRAINT calendar_feeds_account_id_fkey REFERENCES accounts (id),
    -- SHA-256 of the token in the feed's URL; the token itself is shown once.
    token_digest TEXT NOT NULL CONSTRAINT calendar_feeds_token_digest_key UNIQUE,
    created_at BIGINT NOT NULL
);

-- A transition the system makes (a detected lapse) has no actor.
ALTER TABLE enrolment_transitions ALTER COLUMN actor_account_id DROP NOT NULL;

-- Patients who hold a place join the care team of their cohort's facilitators.
INSERT INTO cohort_members (cohort_id, patient_id)
    SELECT cohort_id, patient_id FROM enrolments
    WHERE cohort_id IS NOT NULL AND state IN ('enrolled', 'active', 'lapsed', 'returned')
    ON CONFLICT (cohort_id, patient_id) DO NOTHING;
