//! Readiness checks.

use async_trait::async_trait;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{HealthStore, SchemaStatus};

use crate::Database;
use crate::error::map_write_error;

#[async_trait]
impl HealthStore for Database {
    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_write_error)?;
        Ok(())
    }

    async fn schema_status(&self) -> Result<SchemaStatus, StorageError> {
        self.read_schema_status().await.map_err(map_write_error)
    }
}
