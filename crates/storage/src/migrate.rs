//! Applying the embedded migrations, and refusing a database that a newer release migrated.

use sqlx::Row as _;
use stillpoint_app::ports::SchemaStatus;

use crate::Database;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the database was migrated by a newer Stillpoint (unknown migration versions {versions:?}); \
         run the newer release or restore a backup taken before the upgrade"
    )]
    NewerDatabase { versions: Vec<i64> },

    #[error("migration failed: {0}")]
    Failed(String),
}

impl Database {
    /// Reads which migrations the database has and which this binary carries.
    pub async fn read_schema_status(&self) -> Result<SchemaStatus, sqlx::Error> {
        let known: Vec<i64> = self
            .dialect()
            .migrator()
            .iter()
            .map(|migration| migration.version)
            .collect();

        let table_exists = sqlx::query(self.dialect().migrations_table_query())
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        let applied = if table_exists {
            // A failed migration leaves a row with success = false; it does not count as applied.
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| row.try_get::<i64, _>(0))
                .collect::<Result<Vec<i64>, _>>()?
        } else {
            Vec::new()
        };

        Ok(SchemaStatus { applied, known })
    }

    /// Applies every pending migration, each in its own transaction. Checks first that the
    /// database holds no migration this binary does not know, and then writes nothing.
    ///
    /// Returns the versions applied by this call.
    pub async fn migrate(&self) -> Result<Vec<i64>, MigrateError> {
        let before = self
            .read_schema_status()
            .await
            .map_err(|error| MigrateError::Failed(error.to_string()))?;
        let unknown = before.unknown_applied();
        if !unknown.is_empty() {
            return Err(MigrateError::NewerDatabase { versions: unknown });
        }

        self.dialect()
            .migrator()
            .run(&self.pool)
            .await
            .map_err(|error| MigrateError::Failed(error.to_string()))?;

        let applied: Vec<i64> = before
            .known
            .iter()
            .copied()
            .filter(|version| !before.applied.contains(version))
            .collect();
        for version in &applied {
            tracing::info!(version, dialect = %self.dialect(), "migration applied");
        }
        Ok(applied)
    }
}
