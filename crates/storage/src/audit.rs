//! The audit trail's table: append-only, each row chained to the one before.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{AuditFilter, AuditStore};
use stillpoint_domain::audit::{AuditEvent, GENESIS_HASH, NewAuditEvent};

use crate::Database;
use crate::error::map_write_error;
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

/// A value bound to a search statement.
enum SearchValue {
    Text(String),
    Integer(i64),
}

/// Attempts at appending when another writer took the same sequence number first.
const APPEND_ATTEMPTS: u32 = 8;

fn event_from_row(row: &AnyRow) -> Result<AuditEvent, StorageError> {
    let optional_id = |name: &'static str| -> Result<Option<String>, StorageError> {
        column::<Option<String>>(row, name)
    };
    Ok(AuditEvent {
        sequence: column(row, "sequence")?,
        event: NewAuditEvent {
            recorded_at: from_millis(column(row, "recorded_at")?)?,
            actor: optional_id("actor_account_id")?
                .map(|text| parse_column("audit_events.actor_account_id", &text))
                .transpose()?,
            actor_role: optional_id("actor_role")?
                .map(|text| parse_column("audit_events.actor_role", &text))
                .transpose()?,
            patient: optional_id("patient_id")?
                .map(|text| parse_column("audit_events.patient_id", &text))
                .transpose()?,
            resource_type: column(row, "resource_type")?,
            resource_id: column(row, "resource_id")?,
            action: parse_column("audit_events.action", &column::<String>(row, "action")?)?,
            outcome: parse_column("audit_events.outcome", &column::<String>(row, "outcome")?)?,
            source_address: column(row, "source_address")?,
            break_glass: match column::<i64>(row, "break_glass")? {
                0 => false,
                1 => true,
                other => return Err(corrupt("audit_events.break_glass", &other)),
            },
        },
        previous_hash: column(row, "previous_hash")?,
        hash: column(row, "hash")?,
    })
}

impl Database {
    async fn try_append(&self, event: &NewAuditEvent) -> Result<AuditEvent, sqlx::Error> {
        let mut transaction = self.pool.begin().await?;
        let chained = self.append_in(&mut transaction, event).await?;
        transaction.commit().await?;
        Ok(chained)
    }

    /// Appends `event` inside the caller's transaction, so it commits or rolls back with the
    /// change it records. Callers hold `audit_append` and retry on a conflict, like
    /// [`AuditStore::append_audit_event`].
    pub(crate) async fn append_in(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
        event: &NewAuditEvent,
    ) -> Result<AuditEvent, sqlx::Error> {
        if let Some(lock) = self.dialect().audit_append_lock() {
            sqlx::query(lock).execute(&mut **transaction).await?;
        }
        let head =
            sqlx::query("SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1")
                .fetch_optional(&mut **transaction)
                .await?;
        let (sequence, previous_hash) = match head {
            Some(row) => {
                use sqlx::Row as _;
                (
                    row.try_get::<i64, _>("sequence")? + 1,
                    row.try_get::<String, _>("hash")?,
                )
            }
            None => (1, GENESIS_HASH.to_owned()),
        };
        let chained = AuditEvent::chain(sequence, event.clone(), &previous_hash);

        sqlx::query(
            "INSERT INTO audit_events (sequence, recorded_at, actor_account_id, actor_role, patient_id, \
             resource_type, resource_id, action, outcome, source_address, break_glass, previous_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(chained.sequence)
        .bind(to_millis(event.recorded_at))
        .bind(event.actor.map(|id| id.to_string()))
        .bind(event.actor_role.map(|role| role.code().to_owned()))
        .bind(event.patient.map(|id| id.to_string()))
        .bind(&event.resource_type)
        .bind(event.resource_id.clone())
        .bind(event.action.code())
        .bind(event.outcome.code())
        .bind(event.source_address.clone())
        .bind(i32::from(event.break_glass))
        .bind(&chained.previous_hash)
        .bind(&chained.hash)
        .execute(&mut **transaction)
        .await?;
        Ok(chained)
    }
}

#[async_trait]
impl AuditStore for Database {
    async fn append_audit_event(&self, event: &NewAuditEvent) -> Result<AuditEvent, StorageError> {
        let _serialised = self.audit_append.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_append(event).await.map_err(map_write_error) {
                Ok(chained) => return Ok(chained),
                // Another process appended between our read of the head and our insert (the
                // sequence is taken), or SQLite reported the file busy: try again shortly.
                Err(StorageError::Conflict { .. } | StorageError::Unavailable(_))
                    if attempt < APPEND_ATTEMPTS =>
                {
                    tracing::debug!(attempt, "audit append raced another writer; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 5))
                        .await;
                }
                // An exhausted retry is an outage (503), not a conflict with the caller's data.
                Err(StorageError::Conflict { constraint }) => {
                    return Err(StorageError::Unavailable(format!(
                        "audit append kept conflicting on {constraint}"
                    )));
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn list_audit_events(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StorageError> {
        let rows = sqlx::query(
            "SELECT sequence, recorded_at, actor_account_id, actor_role, patient_id, resource_type, resource_id, \
             action, outcome, source_address, break_glass, previous_hash, hash \
             FROM audit_events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn search_audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StorageError> {
        // The statement is assembled from fixed fragments only; every value is bound.
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<SearchValue> = Vec::new();
        let next = |value: SearchValue, values: &mut Vec<SearchValue>| {
            values.push(value);
            format!("${}", values.len())
        };
        if let Some(patient) = filter.patient {
            conditions.push(format!(
                "patient_id = {}",
                next(SearchValue::Text(patient.to_string()), &mut values)
            ));
        }
        if let Some(actor) = filter.actor {
            conditions.push(format!(
                "actor_account_id = {}",
                next(SearchValue::Text(actor.to_string()), &mut values)
            ));
        }
        if let Some(action) = filter.action {
            conditions.push(format!(
                "action = {}",
                next(SearchValue::Text(action.code().to_owned()), &mut values)
            ));
        }
        if let Some(from) = filter.from {
            conditions.push(format!(
                "recorded_at >= {}",
                next(SearchValue::Integer(to_millis(from)), &mut values)
            ));
        }
        if let Some(until) = filter.until {
            conditions.push(format!(
                "recorded_at < {}",
                next(SearchValue::Integer(to_millis(until)), &mut values)
            ));
        }
        if let Some(sites) = &filter.patient_sites {
            if sites.is_empty() {
                return Ok(Vec::new());
            }
            let placeholders: Vec<String> = sites
                .iter()
                .map(|site| next(SearchValue::Text(site.to_string()), &mut values))
                .collect();
            conditions.push(format!(
                "patient_id IN (SELECT id FROM patients WHERE site_id IN ({}))",
                placeholders.join(", ")
            ));
        }
        let limit_placeholder = next(SearchValue::Integer(limit), &mut values);
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let statement = format!(
            "SELECT sequence, recorded_at, actor_account_id, actor_role, patient_id, resource_type, resource_id, \
             action, outcome, source_address, break_glass, previous_hash, hash \
             FROM audit_events {where_clause} ORDER BY sequence DESC LIMIT {limit_placeholder}"
        );

        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        for value in values {
            query = match value {
                SearchValue::Text(text) => query.bind(text),
                SearchValue::Integer(number) => query.bind(number),
            };
        }
        let rows = query.fetch_all(&self.pool).await.map_err(map_write_error)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>, StorageError> {
        let row =
            sqlx::query("SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(map_write_error)?;
        row.map(|row| Ok((column(&row, "sequence")?, column(&row, "hash")?)))
            .transpose()
    }
}
