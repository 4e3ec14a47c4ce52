-- Cohort details and the planned sessions of each cohort.

ALTER TABLE cohorts ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
ALTER TABLE cohorts ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE cohorts ADD COLUMN video_provider TEXT NOT NULL DEFAULT 'embedded'
    CONSTRAINT cohorts_video_provider_check CHECK (video_provider IN ('embedded', 'livekit', 'external'));

CREATE TABLE cohort_sessions (
    id TEXT NOT NULL CONSTRAINT cohort_sessions_pkey PRIMARY KEY,
    cohort_id TEXT NOT NULL CONSTRAINT cohort_sessions_cohort_id_fkey REFERENCES cohorts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CONSTRAINT cohort_sessions_kind_check CHECK (kind IN ('orientation', 'class', 'retreat')),
    -- The class week, 1 to 8; null for the orientation and the retreat.
    week BIGINT,
    -- The agreed local start in the cohort's time zone, ISO 8601 without offset.
    local_start TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    -- 'gap:<minutes moved later>' or 'overlap' when the local start falls in a daylight-saving
    -- transition.
    dst_resolution TEXT,
    status TEXT NOT NULL CONSTRAINT cohort_sessions_status_check CHECK (status IN ('scheduled', 'cancelled'))
);

CREATE INDEX cohort_sessions_cohort_idx ON cohort_sessions (cohort_id, starts_at);
