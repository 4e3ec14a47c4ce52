//! Accounts and their role assignments.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{AccountCredentials, AccountStore};
use stillpoint_domain::{
    Account, AccountId, DisplayPreferences, EmailAddress, Language, Role, RoleAssignment, SiteId,
    TimeZoneName,
};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, parse_column, to_millis};

impl Database {
    async fn load_roles(&self, id: AccountId) -> Result<Vec<RoleAssignment>, StorageError> {
        let rows = sqlx::query(
            "SELECT role, site_id FROM role_assignments WHERE account_id = $1 ORDER BY role, site_key",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "account", &id.to_string()))?;

        rows.iter()
            .map(|row| {
                let role: Role =
                    parse_column("role_assignments.role", &column::<String>(row, "role")?)?;
                let site_id = column::<Option<String>>(row, "site_id")?
                    .map(|text| parse_column::<SiteId>("role_assignments.site_id", &text))
                    .transpose()?;
                Ok(RoleAssignment { role, site_id })
            })
            .collect()
    }

    async fn account_from_row(&self, row: &AnyRow) -> Result<AccountCredentials, StorageError> {
        let id: AccountId = parse_column("accounts.id", &column::<String>(row, "id")?)?;
        let email = EmailAddress::parse(&column::<String>(row, "email")?)
            .map_err(|error| corrupt("accounts.email", &error))?;
        let language = Language::parse(&column::<String>(row, "language")?)
            .map_err(|error| corrupt("accounts.language", &error))?;
        let time_zone = TimeZoneName::parse(&column::<String>(row, "time_zone")?)
            .map_err(|error| corrupt("accounts.time_zone", &error))?;

        Ok(AccountCredentials {
            account: Account {
                id,
                email,
                display_name: column(row, "display_name")?,
                language,
                time_zone,
                roles: self.load_roles(id).await?,
                preferences: DisplayPreferences {
                    larger_text: column::<i64>(row, "larger_text")? != 0,
                    reduced_motion: column::<i64>(row, "reduced_motion")? != 0,
                },
            },
            password_hash: column(row, "password_hash")?,
            deactivated_at: column::<Option<i64>>(row, "deactivated_at")?
                .map(crate::values::from_millis)
                .transpose()?,
        })
    }
}

/// Inserts an account and its role assignments inside `transaction`.
pub(crate) async fn insert_account_in(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &Account,
    password_hash: &str,
) -> Result<(), StorageError> {
    let id = account.id.to_string();
    sqlx::query(
        "INSERT INTO accounts (id, email, display_name, language, time_zone, password_hash, created_at, larger_text, reduced_motion) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(account.email.as_str())
    .bind(&account.display_name)
    .bind(account.language.as_str())
    .bind(account.time_zone.as_str())
    .bind(password_hash)
    .bind(to_millis(Timestamp::now()))
    .bind(i64::from(account.preferences.larger_text))
    .bind(i64::from(account.preferences.reduced_motion))
    .execute(&mut **transaction)
    .await
    .map_err(|error| map_error(error, "account", &id))?;

    for assignment in &account.roles {
        insert_role_in(transaction, &id, *assignment).await?;
    }
    Ok(())
}

async fn insert_role_in(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &str,
    assignment: RoleAssignment,
) -> Result<(), StorageError> {
    let site = assignment.site_id.map(|site| site.to_string());
    sqlx::query(
        "INSERT INTO role_assignments (account_id, role, site_id, site_key) VALUES ($1, $2, $3, $4)",
    )
    .bind(account_id)
    .bind(assignment.role.code())
    .bind(site.clone())
    .bind(site.unwrap_or_default())
    .execute(&mut **transaction)
    .await
    .map_err(|error| map_error(error, "account", account_id))?;
    Ok(())
}

#[async_trait]
impl AccountStore for Database {
    async fn insert_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        insert_account_in(&mut transaction, account, password_hash).await?;
        transaction.commit().await.map_err(map_write_error)
    }

    async fn add_role_assignment(
        &self,
        account: AccountId,
        assignment: RoleAssignment,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        insert_role_in(&mut transaction, &account.to_string(), assignment).await?;
        transaction.commit().await.map_err(map_write_error)
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, email, display_name, language, time_zone, password_hash, larger_text, reduced_motion, \
             deactivated_at FROM accounts ORDER BY display_name, email",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in &rows {
            accounts.push(self.account_from_row(row).await?.account);
        }
        Ok(accounts)
    }

    async fn remove_role_assignment(
        &self,
        account: AccountId,
        assignment: RoleAssignment,
    ) -> Result<bool, StorageError> {
        let site = assignment
            .site_id
            .map(|site| site.to_string())
            .unwrap_or_default();
        let result = sqlx::query(
            "DELETE FROM role_assignments WHERE account_id = $1 AND role = $2 AND site_key = $3",
        )
        .bind(account.to_string())
        .bind(assignment.role.code())
        .bind(site)
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "account", &account.to_string()))?;
        Ok(result.rows_affected() == 1)
    }

    async fn set_account_deactivated(
        &self,
        account: AccountId,
        at: Option<Timestamp>,
    ) -> Result<(), StorageError> {
        let id = account.to_string();
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        let updated = sqlx::query("UPDATE accounts SET deactivated_at = $1 WHERE id = $2")
            .bind(at.map(to_millis))
            .bind(&id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "account", &id))?;
        if updated.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                entity: "account",
                id,
            });
        }
        if at.is_some() {
            sqlx::query("DELETE FROM sign_in_sessions WHERE account_id = $1")
                .bind(&id)
                .execute(&mut *transaction)
                .await
                .map_err(|error| map_error(error, "session", ""))?;
        }
        transaction.commit().await.map_err(map_write_error)
    }

    async fn deactivated_accounts(&self) -> Result<Vec<AccountId>, StorageError> {
        let rows = sqlx::query("SELECT id FROM accounts WHERE deactivated_at IS NOT NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(map_write_error)?;
        rows.iter()
            .map(|row| parse_column("accounts.id", &column::<String>(row, "id")?))
            .collect()
    }

    async fn set_account_profile(&self, account: &Account) -> Result<(), StorageError> {
        let result = sqlx::query(
            "UPDATE accounts SET display_name = $1, language = $2, time_zone = $3, larger_text = $4, reduced_motion = $5 \
             WHERE id = $6",
        )
        .bind(&account.display_name)
        .bind(account.language.as_str())
        .bind(account.time_zone.as_str())
        .bind(i64::from(account.preferences.larger_text))
        .bind(i64::from(account.preferences.reduced_motion))
        .bind(account.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "account", &account.id.to_string()))?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                entity: "account",
                id: account.id.to_string(),
            });
        }
        Ok(())
    }

    async fn get_account(&self, id: AccountId) -> Result<Account, StorageError> {
        let row = sqlx::query(
            "SELECT id, email, display_name, language, time_zone, password_hash, larger_text, reduced_motion, deactivated_at FROM accounts WHERE id = $1",
        )
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, "account", &id.to_string()))?;
        Ok(self.account_from_row(&row).await?.account)
    }

    async fn find_credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<AccountCredentials, StorageError> {
        // Addresses are compared exactly; `EmailAddress` lower-cases the whole address.
        let row = sqlx::query(
            "SELECT id, email, display_name, language, time_zone, password_hash, larger_text, reduced_motion, deactivated_at FROM accounts WHERE email = $1",
        )
            .bind(email.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, "account", "by e-mail address"))?;
        self.account_from_row(&row).await
    }

    async fn set_account_language(
        &self,
        id: AccountId,
        language: &Language,
    ) -> Result<(), StorageError> {
        let result = sqlx::query("UPDATE accounts SET language = $1 WHERE id = $2")
            .bind(language.as_str())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|error| map_error(error, "account", &id.to_string()))?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                entity: "account",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    async fn count_accounts(&self) -> Result<i64, StorageError> {
        let row = sqlx::query("SELECT COUNT(*) AS total FROM accounts")
            .fetch_one(&self.pool)
            .await
            .map_err(map_write_error)?;
        column(&row, "total")
    }
}
