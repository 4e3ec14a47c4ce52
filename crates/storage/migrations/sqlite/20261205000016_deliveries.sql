-- Deliveries: every message to one person on one channel (e-mail, SMS, in-app), with where it
-- stands, so the clinic can see that reminders went out. A delivery stores what the message is
-- about (ids and times), never its text, the address or patient details.

CREATE TABLE deliveries (
    id TEXT NOT NULL CONSTRAINT deliveries_pkey PRIMARY KEY,
    -- The message, recipient and channel; a retried job records the delivery once.
    idempotency_key TEXT NOT NULL CONSTRAINT deliveries_idempotency_key_key UNIQUE,
    account_id TEXT NOT NULL CONSTRAINT deliveries_account_id_fkey REFERENCES accounts (id),
    kind TEXT NOT NULL,
    channel TEXT NOT NULL CONSTRAINT deliveries_channel_check CHECK (channel IN ('email', 'sms', 'in_app')),
    -- What the message is about, as JSON, such as a session id and its start.
    subject TEXT NOT NULL,
    state TEXT NOT NULL CONSTRAINT deliveries_state_check CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'skipped')),
    provider_message_id TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    fallback_of TEXT CONSTRAINT deliveries_fallback_of_fkey REFERENCES deliveries (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sent_at INTEGER,
    delivered_at INTEGER
) STRICT;

CREATE INDEX deliveries_state_idx ON deliveries (state, updated_at);
CREATE INDEX deliveries_provider_idx ON deliveries (channel, provider_message_id);

-- How each person wants to be reached: channels per message kind, quiet hours, a phone
-- number, the daily practice reminder time. Stored as one JSON document per account; the
-- application checks it before it is written.
CREATE TABLE notification_settings (
    account_id TEXT NOT NULL CONSTRAINT notification_settings_pkey PRIMARY KEY
        CONSTRAINT notification_settings_account_id_fkey REFERENCES accounts (id),
    settings TEXT NOT NULL,
    -- Set when a daily practice reminder is chosen, so the planner finds those accounts fast.
    practice_time TEXT,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX notification_settings_practice_idx ON notification_settings (practice_time);
