//! The differences between SQLite and PostgreSQL, kept in one place.

use std::fmt;

use sqlx::migrate::Migrator;

/// The database engine behind a [`crate::Database`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

impl Dialect {
    /// The migrations embedded in the binary for this dialect.
    #[must_use]
    pub fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Statements run on every new connection.
    ///
    /// For SQLite, write-ahead logging lets readers go on while one connection writes.
    /// `synchronous = FULL` makes a committed transaction survive power loss, not only a process
    /// crash, because in WAL mode `NORMAL` may lose the last commits. Foreign keys are switched
    /// on because SQLite leaves them off by default. The busy timeout makes a writer wait for the
    /// lock instead of failing at once.
    #[must_use]
    pub fn connection_setup(self) -> &'static [&'static str] {
        match self {
            Self::Sqlite => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA busy_timeout = 5000",
            ],
            Self::Postgres => &["SET TIME ZONE 'UTC'"],
        }
    }

    /// A statement that makes audit appends from several servers wait for each other inside their
    /// transactions, so they queue instead of racing for the same sequence number. Within one
    /// process, [`crate::Database`] serialises appends itself, which is all SQLite needs, because
    /// several servers sharing one SQLite file is not a supported deployment.
    /// The statement that claims the next job for a worker: $1 the worker, $2 the lease end,
    /// $3 now. PostgreSQL skips rows another server has locked, so servers never wait on or
    /// take each other's job; SQLite runs one writer at a time, so the statement alone is
    /// atomic.
    #[must_use]
    pub fn job_claim_statement(self) -> &'static str {
        match self {
            // Each branch takes its first row from the index in order, so a claim costs the same
            // with one job due or thousands. With the two conditions joined by OR, SQLite reads
            // every due row and sorts them on each claim.
            Self::Sqlite => {
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2 \
                 WHERE id = (SELECT id FROM ( \
                   SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM jobs \
                     WHERE state = 'queued' AND next_attempt_at <= $3 ORDER BY next_attempt_at, id LIMIT 1) \
                   UNION ALL \
                   SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM jobs \
                     WHERE state = 'running' AND lease_until <= $3 ORDER BY next_attempt_at, id LIMIT 1)) \
                 ORDER BY next_attempt_at, id LIMIT 1) \
                 RETURNING id, kind, payload, idempotency_key, state, attempts, due_at, next_attempt_at, last_error, finished_at"
            }
            Self::Postgres => {
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2 \
                 WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND next_attempt_at <= $3) \
                 OR (state = 'running' AND lease_until <= $3) ORDER BY next_attempt_at, id LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, payload, idempotency_key, state, attempts, due_at, next_attempt_at, last_error, finished_at"
            }
        }
    }

    #[must_use]
    pub fn audit_append_lock(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => None,
            // An arbitrary constant key, held until the transaction ends.
            Self::Postgres => Some("SELECT pg_advisory_xact_lock(7366253501)"),
        }
    }

    /// Returns a query that yields one row when the migrations table exists and none otherwise.
    #[must_use]
    pub fn migrations_table_query(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Self::Postgres => {
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        }
    }
}

/// Tables whose primary key spans several columns and which have no other unique key, so any
/// unique violation on them is a primary-key violation. Keep in step with the migrations.
const COMPOSITE_PRIMARY_KEYS: &[&str] = &[
    "role_assignments",
    "patient_conditions",
    "recovery_codes",
    "cohort_facilitators",
    "cohort_members",
    "caregiver_grants",
    "curriculum_versions",
    "attendance",
];

/// Tables whose primary key is one column other than `id`, with that column.
const SINGLE_COLUMN_PRIMARY_KEYS: &[(&str, &str)] = &[
    ("sign_in_sessions", "token_digest"),
    ("audit_events", "sequence"),
    ("totp_credentials", "account_id"),
    ("account_links", "token_digest"),
    ("calendar_feeds", "account_id"),
];

/// Derives the name of the constraint a SQLite error message reports.
///
/// SQLite names the columns, not the constraint (`UNIQUE constraint failed: accounts.email`), so
/// the name is rebuilt with PostgreSQL's default convention, which the migrations also use for
/// their explicit names: `<table>_pkey` for the id, `<table>_<columns>_key` for other unique
/// keys. CHECK failures and unique indexes carry their name in the message. A failed foreign key
/// does not say which one failed, so it maps to `foreign_key`.
#[must_use]
pub fn sqlite_constraint_name(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("UNIQUE constraint failed: ") {
        if let Some(index) = rest.strip_prefix("index '") {
            return index.trim_end_matches('\'').to_owned();
        }
        let columns: Vec<(&str, &str)> = rest
            .split(", ")
            .filter_map(|qualified| qualified.split_once('.'))
            .collect();
        let Some((table, _)) = columns.first() else {
            return "unique".to_owned();
        };
        let names: Vec<&str> = columns.iter().map(|(_, column)| *column).collect();
        let is_primary_key = names == ["id"]
            || COMPOSITE_PRIMARY_KEYS.contains(table)
            || SINGLE_COLUMN_PRIMARY_KEYS.contains(&(*table, names[0]));
        return if is_primary_key {
            format!("{table}_pkey")
        } else {
            format!("{table}_{}_key", names.join("_"))
        };
    }
    if let Some(name) = message.strip_prefix("CHECK constraint failed: ") {
        return name.trim().to_owned();
    }
    if message.starts_with("FOREIGN KEY constraint failed") {
        return "foreign_key".to_owned();
    }
    if let Some(rest) = message.strip_prefix("NOT NULL constraint failed: ") {
        return format!("{}_not_null", rest.replace('.', "_"));
    }

    "unknown".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_constraint_names_follow_postgres_convention() {
        let cases = [
            (
                "UNIQUE constraint failed: accounts.email",
                "accounts_email_key",
            ),
            ("UNIQUE constraint failed: sites.id", "sites_pkey"),
            (
                "UNIQUE constraint failed: account_links.token_digest",
                "account_links_pkey",
            ),
            (
                "UNIQUE constraint failed: caregiver_grants.patient_id, caregiver_grants.caregiver_account_id",
                "caregiver_grants_pkey",
            ),
            (
                "UNIQUE constraint failed: role_assignments.account_id, role_assignments.role, role_assignments.site_key",
                "role_assignments_pkey",
            ),
            ("UNIQUE constraint failed: index 'some_idx'", "some_idx"),
            (
                "CHECK constraint failed: role_assignments_role_check",
                "role_assignments_role_check",
            ),
            ("FOREIGN KEY constraint failed", "foreign_key"),
        ];
        for (message, expected) in cases {
            assert_eq!(sqlite_constraint_name(message), expected, "{message}");
        }
    }
}
