//! In-app notifications.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{NewNotification, Notification, NotificationStore};
use stillpoint_domain::AccountId;

use crate::Database;
use crate::error::map_write_error;
use crate::values::{column, from_millis, to_millis};

#[async_trait]
impl NotificationStore for Database {
    async fn add_notification(&self, notification: &NewNotification) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "INSERT INTO notifications (id, account_id, kind, message_key, link, idempotency_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(notification.account.to_string())
        .bind(&notification.kind)
        .bind(&notification.message_key)
        .bind(&notification.link)
        .bind(&notification.idempotency_key)
        .bind(to_millis(notification.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn notifications_of(
        &self,
        account: AccountId,
        limit: i64,
    ) -> Result<Vec<Notification>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, kind, message_key, link, created_at, read_at FROM notifications \
             WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(account.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter()
            .map(|row| {
                Ok(Notification {
                    id: column(row, "id")?,
                    kind: column(row, "kind")?,
                    message_key: column(row, "message_key")?,
                    link: column(row, "link")?,
                    created_at: from_millis(column(row, "created_at")?)?,
                    read_at: column::<Option<i64>>(row, "read_at")?
                        .map(from_millis)
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn count_unread_notifications(&self, account: AccountId) -> Result<i64, StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS unread FROM notifications WHERE account_id = $1 AND read_at IS NULL",
        )
        .bind(account.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(map_write_error)?;
        column(&row, "unread")
    }

    async fn mark_notifications_read(
        &self,
        account: AccountId,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE notifications SET read_at = $1 WHERE account_id = $2 AND read_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(account.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(())
    }
}
