//! Sign-in sessions, keyed by the SHA-256 digest of their token.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{SessionStore, SignInSession};
use stillpoint_domain::AccountId;

use crate::Database;
use crate::error::map_error;
use crate::values::{column, from_millis, parse_column, to_millis};

/// The entity name used in errors. The token digest is never put in an error, because error
/// messages can reach logs.
const ENTITY: &str = "session";

#[async_trait]
impl SessionStore for Database {
    async fn insert_session(&self, session: &SignInSession) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sign_in_sessions (token_digest, account_id, created_at, last_seen_at, expires_at, second_factor_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.token_digest)
        .bind(session.account_id.to_string())
        .bind(to_millis(session.created_at))
        .bind(to_millis(session.last_seen_at))
        .bind(to_millis(session.expires_at))
        .bind(session.second_factor_at.map(to_millis))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, ""))?;
        Ok(())
    }

    async fn find_session(&self, token_digest: &str) -> Result<SignInSession, StorageError> {
        let row = sqlx::query(
            "SELECT account_id, created_at, last_seen_at, expires_at, second_factor_at FROM sign_in_sessions WHERE token_digest = $1",
        )
        .bind(token_digest)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, ""))?;

        Ok(SignInSession {
            token_digest: token_digest.to_owned(),
            account_id: parse_column(
                "sign_in_sessions.account_id",
                &column::<String>(&row, "account_id")?,
            )?,
            created_at: from_millis(column(&row, "created_at")?)?,
            last_seen_at: from_millis(column(&row, "last_seen_at")?)?,
            expires_at: from_millis(column(&row, "expires_at")?)?,
            second_factor_at: column::<Option<i64>>(&row, "second_factor_at")?
                .map(from_millis)
                .transpose()?,
        })
    }

    async fn touch_session(
        &self,
        token_digest: &str,
        seen_at: Timestamp,
    ) -> Result<(), StorageError> {
        let result =
            sqlx::query("UPDATE sign_in_sessions SET last_seen_at = $1 WHERE token_digest = $2")
                .bind(to_millis(seen_at))
                .bind(token_digest)
                .execute(&self.pool)
                .await
                .map_err(|error| map_error(error, ENTITY, ""))?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                entity: ENTITY,
                id: String::new(),
            });
        }
        Ok(())
    }

    async fn delete_account_sessions(&self, account: AccountId) -> Result<u64, StorageError> {
        let result = sqlx::query("DELETE FROM sign_in_sessions WHERE account_id = $1")
            .bind(account.to_string())
            .execute(&self.pool)
            .await
            .map_err(|error| map_error(error, ENTITY, ""))?;
        Ok(result.rows_affected())
    }

    async fn delete_session(&self, token_digest: &str) -> Result<(), StorageError> {
        let result = sqlx::query("DELETE FROM sign_in_sessions WHERE token_digest = $1")
            .bind(token_digest)
            .execute(&self.pool)
            .await
            .map_err(|error| map_error(error, ENTITY, ""))?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                entity: ENTITY,
                id: String::new(),
            });
        }
        Ok(())
    }
}
