//! TOTP credentials and recovery codes.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{SecondFactorStore, TotpCredential};
use stillpoint_domain::AccountId;

use crate::Database;
use crate::error::map_error;
use crate::values::{column, from_millis, to_millis};

const ENTITY: &str = "TOTP credential";

#[async_trait]
impl SecondFactorStore for Database {
    async fn find_totp_credential(
        &self,
        account: AccountId,
    ) -> Result<Option<TotpCredential>, StorageError> {
        let row = sqlx::query(
            "SELECT sealed_secret, created_at, confirmed_at, last_used_step FROM totp_credentials WHERE account_id = $1",
        )
        .bind(account.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &account.to_string()))?;
        let Some(row) = row else {
            return Ok(None);
        };

        Ok(Some(TotpCredential {
            sealed_secret: column(&row, "sealed_secret")?,
            created_at: from_millis(column(&row, "created_at")?)?,
            confirmed_at: column::<Option<i64>>(&row, "confirmed_at")?
                .map(from_millis)
                .transpose()?,
            last_used_step: column(&row, "last_used_step")?,
        }))
    }

    async fn put_unconfirmed_totp(
        &self,
        account: AccountId,
        sealed_secret: &str,
        created_at: Timestamp,
    ) -> Result<(), StorageError> {
        let result = sqlx::query(
            "INSERT INTO totp_credentials (account_id, sealed_secret, created_at, confirmed_at, last_used_step) \
             VALUES ($1, $2, $3, NULL, 0) \
             ON CONFLICT (account_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, created_at = excluded.created_at \
             WHERE totp_credentials.confirmed_at IS NULL",
        )
        .bind(account.to_string())
        .bind(sealed_secret)
        .bind(to_millis(created_at))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &account.to_string()))?;
        if result.rows_affected() == 0 {
            return Err(StorageError::Conflict {
                constraint: "totp_credentials_pkey".to_owned(),
            });
        }
        Ok(())
    }

    async fn confirm_totp(
        &self,
        account: AccountId,
        step: i64,
        at: Timestamp,
        recovery_code_digests: &[String],
    ) -> Result<(), StorageError> {
        let id = account.to_string();
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|error| map_error(error, ENTITY, &id))?;
        let result = sqlx::query(
            "UPDATE totp_credentials SET confirmed_at = $1, last_used_step = $2 \
             WHERE account_id = $3 AND confirmed_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(step)
        .bind(&id)
        .execute(&mut *transaction)
        .await
        .map_err(|error| map_error(error, ENTITY, &id))?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound { entity: ENTITY, id });
        }
        replace_codes(&mut transaction, &id, recovery_code_digests).await?;
        transaction
            .commit()
            .await
            .map_err(|error| map_error(error, ENTITY, &id))
    }

    async fn claim_totp_step(&self, account: AccountId, step: i64) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE totp_credentials SET last_used_step = $1 \
             WHERE account_id = $2 AND confirmed_at IS NOT NULL AND last_used_step < $1",
        )
        .bind(step)
        .bind(account.to_string())
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &account.to_string()))?;
        Ok(result.rows_affected() == 1)
    }

    async fn use_recovery_code(
        &self,
        account: AccountId,
        code_digest: &str,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE account_id = $2 AND code_digest = $3 AND used_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(account.to_string())
        .bind(code_digest)
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "recovery code", &account.to_string()))?;
        Ok(result.rows_affected() == 1)
    }

    async fn replace_recovery_codes(
        &self,
        account: AccountId,
        code_digests: &[String],
    ) -> Result<(), StorageError> {
        let id = account.to_string();
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|error| map_error(error, "recovery code", &id))?;
        replace_codes(&mut transaction, &id, code_digests).await?;
        transaction
            .commit()
            .await
            .map_err(|error| map_error(error, "recovery code", &id))
    }

    async fn count_unused_recovery_codes(&self, account: AccountId) -> Result<i64, StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS unused FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL",
        )
        .bind(account.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, "recovery code", &account.to_string()))?;
        column(&row, "unused")
    }

    async fn remove_second_factor(&self, account: AccountId) -> Result<(), StorageError> {
        let id = account.to_string();
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|error| map_error(error, ENTITY, &id))?;
        for statement in [
            "DELETE FROM recovery_codes WHERE account_id = $1",
            "DELETE FROM totp_credentials WHERE account_id = $1",
        ] {
            sqlx::query(statement)
                .bind(&id)
                .execute(&mut *transaction)
                .await
                .map_err(|error| map_error(error, ENTITY, &id))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| map_error(error, ENTITY, &id))
    }
}

async fn replace_codes(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &str,
    code_digests: &[String],
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut **transaction)
        .await
        .map_err(|error| map_error(error, "recovery code", account_id))?;
    for digest in code_digests {
        sqlx::query(
            "INSERT INTO recovery_codes (account_id, code_digest, used_at) VALUES ($1, $2, NULL)",
        )
        .bind(account_id)
        .bind(digest)
        .execute(&mut **transaction)
        .await
        .map_err(|error| map_error(error, "recovery code", account_id))?;
    }
    Ok(())
}
