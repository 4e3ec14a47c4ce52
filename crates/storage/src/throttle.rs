//! Failed sign-in attempts.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::ThrottleStore;
use stillpoint_domain::EmailAddress;

use crate::Database;
use crate::error::map_write_error;
use crate::values::{column, from_millis, to_millis};

#[async_trait]
impl ThrottleStore for Database {
    async fn record_sign_in_failure(
        &self,
        email: &EmailAddress,
        source_address: &str,
        at: Timestamp,
        forget_before: Timestamp,
        attempt_id: &str,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        sqlx::query("DELETE FROM sign_in_failures WHERE failed_at < $1")
            .bind(to_millis(forget_before))
            .execute(&mut *transaction)
            .await
            .map_err(map_write_error)?;
        sqlx::query(
            "INSERT INTO sign_in_failures (email, source_address, failed_at, attempt_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(email.as_str())
        .bind(source_address)
        .bind(to_millis(at))
        .bind(attempt_id)
        .execute(&mut *transaction)
        .await
        .map_err(map_write_error)?;
        transaction.commit().await.map_err(map_write_error)
    }

    async fn recent_sign_in_failures(
        &self,
        email: &EmailAddress,
        source_address: &str,
        since: Timestamp,
    ) -> Result<(Vec<Timestamp>, Vec<Timestamp>), StorageError> {
        let rows = sqlx::query(
            "SELECT email, source_address, failed_at FROM sign_in_failures \
             WHERE failed_at >= $1 AND (email = $2 OR source_address = $3)",
        )
        .bind(to_millis(since))
        .bind(email.as_str())
        .bind(source_address)
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;

        let mut by_email = Vec::new();
        let mut by_address = Vec::new();
        for row in &rows {
            let at = from_millis(column(row, "failed_at")?)?;
            if column::<String>(row, "email")? == email.as_str() {
                by_email.push(at);
            }
            if column::<String>(row, "source_address")? == source_address {
                by_address.push(at);
            }
        }
        Ok((by_email, by_address))
    }

    async fn clear_sign_in_failures(&self, email: &EmailAddress) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM sign_in_failures WHERE email = $1")
            .bind(email.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_write_error)?;
        Ok(())
    }

    async fn forget_sign_in_attempt(&self, attempt_id: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM sign_in_failures WHERE attempt_id = $1")
            .bind(attempt_id)
            .execute(&self.pool)
            .await
            .map_err(map_write_error)?;
        Ok(())
    }
}
