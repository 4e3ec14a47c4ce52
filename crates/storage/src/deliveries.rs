//! Deliveries and notification settings.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{Delivery, DeliveryRecorded, DeliveryStore, NewDelivery};
use stillpoint_domain::AccountId;
use stillpoint_domain::notify::{Channel, DeliveryState, MessageKind, NotificationSettings};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, optional_instant, parse_column, to_millis};

const ENTITY: &str = "delivery";

const DELIVERY_COLUMNS: &str = "SELECT id, idempotency_key, account_id, kind, channel, subject, state, \
     provider_message_id, error, attempts, fallback_of, created_at, updated_at, sent_at, delivered_at \
     FROM deliveries";

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StorageError> {
    let attempts: i64 = column(row, "attempts")?;
    Ok(Delivery {
        id: column(row, "id")?,
        idempotency_key: column(row, "idempotency_key")?,
        account: parse_column(
            "deliveries.account_id",
            &column::<String>(row, "account_id")?,
        )?,
        kind: MessageKind::parse(&column::<String>(row, "kind")?)
            .map_err(|error| corrupt("deliveries.kind", &error))?,
        channel: Channel::parse(&column::<String>(row, "channel")?)
            .map_err(|error| corrupt("deliveries.channel", &error))?,
        subject: column(row, "subject")?,
        state: DeliveryState::parse(&column::<String>(row, "state")?)
            .map_err(|error| corrupt("deliveries.state", &error))?,
        provider_message_id: column(row, "provider_message_id")?,
        error: column(row, "error")?,
        attempts: u32::try_from(attempts)
            .map_err(|error| corrupt("deliveries.attempts", &error))?,
        fallback_of: column(row, "fallback_of")?,
        created_at: from_millis(column(row, "created_at")?)?,
        updated_at: from_millis(column(row, "updated_at")?)?,
        sent_at: optional_instant(row, "sent_at")?,
        delivered_at: optional_instant(row, "delivered_at")?,
    })
}

fn settings_from_json(text: &str) -> Result<NotificationSettings, StorageError> {
    serde_json::from_str(text).map_err(|error| corrupt("notification_settings.settings", &error))
}

impl Database {
    async fn delivery_by_key(&self, key: &str) -> Result<Delivery, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DELIVERY_COLUMNS} WHERE idempotency_key = $1"
        )))
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, key))?;
        delivery_from_row(&row)
    }

    /// Runs an update of one delivery that expects a state; a row that is not in it is a
    /// conflict.
    async fn update_delivery(
        &self,
        statement: &'static str,
        binds: (&str, Option<&str>, i64),
        constraint: &str,
    ) -> Result<(), StorageError> {
        let (id, text, at) = binds;
        let result = sqlx::query(statement)
            .bind(text)
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_write_error)?;
        if result.rows_affected() == 0 {
            return Err(StorageError::Conflict {
                constraint: constraint.to_owned(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl DeliveryStore for Database {
    async fn record_delivery(
        &self,
        delivery: &NewDelivery,
    ) -> Result<DeliveryRecorded, StorageError> {
        let at = to_millis(delivery.created_at);
        let result = sqlx::query(
            "INSERT INTO deliveries (id, idempotency_key, account_id, kind, channel, subject, state, \
             attempts, fallback_of, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $8, $8) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&delivery.id)
        .bind(&delivery.idempotency_key)
        .bind(delivery.account.to_string())
        .bind(delivery.kind.code())
        .bind(delivery.channel.code())
        .bind(&delivery.subject)
        .bind(delivery.fallback_of.as_deref())
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        let stored = self.delivery_by_key(&delivery.idempotency_key).await?;
        if result.rows_affected() > 0 {
            Ok(DeliveryRecorded::Created(stored))
        } else {
            Ok(DeliveryRecorded::Exists(stored))
        }
    }

    async fn get_delivery(&self, id: &str) -> Result<Delivery, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DELIVERY_COLUMNS} WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, id))?;
        delivery_from_row(&row)
    }

    async fn begin_delivery_attempt(
        &self,
        id: &str,
        at: Timestamp,
    ) -> Result<Delivery, StorageError> {
        let before = self.get_delivery(id).await?;
        self.update_delivery(
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, error = COALESCE($1, error), \
             updated_at = $2 WHERE id = $3 AND state IN ('queued', 'sending')",
            (id, None, to_millis(at)),
            "deliveries_state",
        )
        .await?;
        Ok(before)
    }

    async fn record_delivery_sent(
        &self,
        id: &str,
        provider_message_id: &str,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        self.update_delivery(
            "UPDATE deliveries SET state = 'sent', provider_message_id = $1, error = NULL, \
             sent_at = $2, updated_at = $2 WHERE id = $3 AND state = 'sending'",
            (id, Some(provider_message_id), to_millis(at)),
            "deliveries_state",
        )
        .await
    }

    async fn record_delivery_failure(
        &self,
        id: &str,
        error: &str,
        final_failure: bool,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let statement = if final_failure {
            "UPDATE deliveries SET state = 'failed', error = $1, updated_at = $2 \
             WHERE id = $3 AND state IN ('queued', 'sending')"
        } else {
            "UPDATE deliveries SET state = 'queued', error = $1, updated_at = $2 \
             WHERE id = $3 AND state IN ('queued', 'sending')"
        };
        self.update_delivery(
            statement,
            (id, Some(error), to_millis(at)),
            "deliveries_state",
        )
        .await
    }

    async fn record_delivery_skipped(
        &self,
        id: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        self.update_delivery(
            "UPDATE deliveries SET state = 'skipped', error = $1, updated_at = $2 \
             WHERE id = $3 AND state IN ('queued', 'sending')",
            (id, Some(reason), to_millis(at)),
            "deliveries_state",
        )
        .await
    }

    async fn record_delivery_confirmed(
        &self,
        id: &str,
        provider_message_id: &str,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE deliveries SET state = 'delivered', delivered_at = $1, updated_at = $1 \
             WHERE id = $2 AND provider_message_id = $3 AND state IN ('sent', 'delivered')",
        )
        .bind(to_millis(at))
        .bind(id)
        .bind(provider_message_id)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn record_delivery_undelivered(
        &self,
        id: &str,
        provider_message_id: &str,
        error: &str,
        at: Timestamp,
    ) -> Result<Option<Delivery>, StorageError> {
        let row = sqlx::query(
            "UPDATE deliveries SET state = 'failed', error = $1, updated_at = $2 \
             WHERE id = $3 AND provider_message_id = $4 AND state = 'sent' RETURNING id",
        )
        .bind(error)
        .bind(to_millis(at))
        .bind(id)
        .bind(provider_message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_write_error)?;
        match row {
            Some(row) => Ok(Some(
                self.get_delivery(&column::<String>(&row, "id")?).await?,
            )),
            None => Ok(None),
        }
    }

    async fn requeue_failed_delivery(&self, id: &str, at: Timestamp) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE deliveries SET state = 'queued', updated_at = $1 WHERE id = $2 AND state = 'failed'",
        )
        .bind(to_millis(at))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn list_deliveries(
        &self,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StorageError> {
        let rows =
            match state {
                Some(state) => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{DELIVERY_COLUMNS} WHERE state = $1 ORDER BY updated_at DESC, id DESC LIMIT $2"
                )))
                .bind(state.code())
                .bind(limit)
                .fetch_all(&self.pool)
                .await,
                None => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "{DELIVERY_COLUMNS} ORDER BY updated_at DESC, id DESC LIMIT $1"
                    )))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                }
            }
            .map_err(map_write_error)?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn get_notification_settings(
        &self,
        account: AccountId,
    ) -> Result<Option<NotificationSettings>, StorageError> {
        let row = sqlx::query("SELECT settings FROM notification_settings WHERE account_id = $1")
            .bind(account.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_write_error)?;
        row.map(|row| settings_from_json(&column::<String>(&row, "settings")?))
            .transpose()
    }

    async fn put_notification_settings(
        &self,
        account: AccountId,
        settings: &NotificationSettings,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let json = serde_json::to_string(settings)
            .map_err(|error| corrupt("notification_settings.settings", &error))?;
        let practice_time = settings.practice_time.map(|time| time.to_string());
        sqlx::query(
            "INSERT INTO notification_settings (account_id, settings, practice_time, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id) DO UPDATE SET \
             settings = excluded.settings, practice_time = excluded.practice_time, \
             updated_at = excluded.updated_at",
        )
        .bind(account.to_string())
        .bind(json)
        .bind(practice_time)
        .bind(to_millis(at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(())
    }

    async fn practice_reminder_settings(
        &self,
    ) -> Result<Vec<(AccountId, NotificationSettings)>, StorageError> {
        let rows = sqlx::query(
            "SELECT account_id, settings FROM notification_settings WHERE practice_time IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_column(
                        "notification_settings.account_id",
                        &column::<String>(row, "account_id")?,
                    )?,
                    settings_from_json(&column::<String>(row, "settings")?)?,
                ))
            })
            .collect()
    }
}
