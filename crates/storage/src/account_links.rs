//! Invitations and password reset links, redeemed in one transaction with what they create.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{AccountLink, AccountLinkStore, LinkPurpose};
use stillpoint_domain::care_team::{CaregiverGrant, CaregiverScope};
use stillpoint_domain::{Account, AccountId, EmailAddress, Language, RoleAssignment};

use crate::Database;
use crate::accounts::insert_account_in;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

const ENTITY: &str = "link";
const COLUMNS: &str = "token_digest, purpose, email, display_name, roles, patient_id, scopes, \
                       account_id, language, created_by, created_at, expires_at, used_at";

#[async_trait]
impl AccountLinkStore for Database {
    async fn insert_account_link(&self, link: &AccountLink) -> Result<(), StorageError> {
        let statement = format!(
            "INSERT INTO account_links ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(&link.token_digest)
            .bind(link.purpose.code())
            .bind(link.email.as_str())
            .bind(&link.display_name)
            .bind(encode_roles(&link.roles))
            .bind(link.patient_id.map(|id| id.to_string()))
            .bind(CaregiverScope::join(&link.scopes))
            .bind(link.account_id.map(|id| id.to_string()))
            .bind(link.language.as_str())
            .bind(link.created_by.map(|id| id.to_string()))
            .bind(to_millis(link.created_at))
            .bind(to_millis(link.expires_at))
            .bind(link.used_at.map(to_millis))
            .execute(&self.pool)
            .await
            .map_err(|error| map_error(error, ENTITY, ""))?;
        Ok(())
    }

    async fn find_account_link(
        &self,
        token_digest: &str,
    ) -> Result<Option<AccountLink>, StorageError> {
        let statement = format!("SELECT {COLUMNS} FROM account_links WHERE token_digest = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(token_digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| map_error(error, ENTITY, ""))?;
        row.as_ref().map(link_from_row).transpose()
    }

    async fn redeem_invitation(
        &self,
        token_digest: &str,
        now: Timestamp,
        account: &Account,
        password_hash: &str,
        grant: Option<&CaregiverGrant>,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        let link = claim(&mut transaction, token_digest, now).await?;

        insert_account_in(&mut transaction, account, password_hash).await?;
        if link.purpose == LinkPurpose::PatientInvitation {
            let patient = link.patient_id.ok_or_else(|| {
                corrupt(
                    "account_links.patient_id",
                    &"a patient invitation names no patient",
                )
            })?;
            let linked = sqlx::query(
                "UPDATE patients SET account_id = $1 WHERE id = $2 AND account_id IS NULL",
            )
            .bind(account.id.to_string())
            .bind(patient.to_string())
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "patient", &patient.to_string()))?;
            if linked.rows_affected() == 0 {
                return Err(StorageError::Conflict {
                    constraint: "patients_account_id_key".to_owned(),
                });
            }
        }
        if let Some(grant) = grant {
            sqlx::query(
                "INSERT INTO caregiver_grants (patient_id, caregiver_account_id, scopes, granted_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(grant.patient_id.to_string())
            .bind(grant.caregiver.to_string())
            .bind(CaregiverScope::join(&grant.scopes))
            .bind(to_millis(grant.granted_at))
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "caregiver grant", &grant.patient_id.to_string()))?;
        }
        transaction.commit().await.map_err(map_write_error)
    }

    async fn redeem_password_reset(
        &self,
        token_digest: &str,
        now: Timestamp,
        account: AccountId,
        password_hash: &str,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        claim(&mut transaction, token_digest, now).await?;
        let updated = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(account.to_string())
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "account", &account.to_string()))?;
        if updated.rows_affected() == 0 {
            return Err(StorageError::NotFound {
                entity: "account",
                id: account.to_string(),
            });
        }
        sqlx::query("DELETE FROM sign_in_sessions WHERE account_id = $1")
            .bind(account.to_string())
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "session", ""))?;
        transaction.commit().await.map_err(map_write_error)
    }

    async fn revoke_links_created_by(
        &self,
        issuer: AccountId,
        at: Timestamp,
    ) -> Result<u64, StorageError> {
        let result = sqlx::query(
            "UPDATE account_links SET used_at = $1 WHERE created_by = $2 AND used_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(issuer.to_string())
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, ""))?;
        Ok(result.rows_affected())
    }

    async fn open_invitations(&self, now: Timestamp) -> Result<Vec<AccountLink>, StorageError> {
        let statement = format!(
            "SELECT {COLUMNS} FROM account_links WHERE purpose <> 'password_reset' \
             AND used_at IS NULL AND expires_at > $1 ORDER BY created_at DESC LIMIT 200"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(to_millis(now))
            .fetch_all(&self.pool)
            .await
            .map_err(|error| map_error(error, ENTITY, ""))?;
        rows.iter().map(link_from_row).collect()
    }
}

/// Marks the link used inside `transaction`, or fails when it was used or has expired.
async fn claim(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    token_digest: &str,
    now: Timestamp,
) -> Result<AccountLink, StorageError> {
    let claimed = sqlx::query(
        "UPDATE account_links SET used_at = $1 WHERE token_digest = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(to_millis(now))
    .bind(token_digest)
    .execute(&mut **transaction)
    .await
    .map_err(|error| map_error(error, ENTITY, ""))?;
    if claimed.rows_affected() == 0 {
        return Err(StorageError::Conflict {
            constraint: "account_links_used".to_owned(),
        });
    }
    let statement = format!("SELECT {COLUMNS} FROM account_links WHERE token_digest = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(token_digest)
        .fetch_one(&mut **transaction)
        .await
        .map_err(|error| map_error(error, ENTITY, ""))?;
    link_from_row(&row)
}

fn encode_roles(roles: &[RoleAssignment]) -> String {
    roles
        .iter()
        .map(|assignment| match assignment.site_id {
            Some(site) => format!("{}@{site}", assignment.role.code()),
            None => assignment.role.code().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn decode_roles(text: &str) -> Result<Vec<RoleAssignment>, StorageError> {
    text.split(';')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (role, site) = match entry.split_once('@') {
                Some((role, site)) => (role, Some(site)),
                None => (entry, None),
            };
            let role = parse_column("account_links.roles", role)?;
            let site = site
                .map(|site| parse_column("account_links.roles", site))
                .transpose()?;
            RoleAssignment::new(role, site).map_err(|error| corrupt("account_links.roles", &error))
        })
        .collect()
}

fn link_from_row(row: &AnyRow) -> Result<AccountLink, StorageError> {
    let purpose_code: String = column(row, "purpose")?;
    let optional_id =
        |name: &'static str| -> Result<Option<String>, StorageError> { column(row, name) };
    Ok(AccountLink {
        token_digest: column(row, "token_digest")?,
        purpose: LinkPurpose::from_code(&purpose_code)
            .ok_or_else(|| corrupt("account_links.purpose", &purpose_code))?,
        email: EmailAddress::parse(&column::<String>(row, "email")?)
            .map_err(|error| corrupt("account_links.email", &error))?,
        display_name: column(row, "display_name")?,
        roles: decode_roles(&column::<String>(row, "roles")?)?,
        patient_id: optional_id("patient_id")?
            .map(|text| parse_column("account_links.patient_id", &text))
            .transpose()?,
        scopes: CaregiverScope::parse_list(&column::<String>(row, "scopes")?)
            .map_err(|error| corrupt("account_links.scopes", &error))?,
        account_id: optional_id("account_id")?
            .map(|text| parse_column("account_links.account_id", &text))
            .transpose()?,
        language: Language::parse(&column::<String>(row, "language")?)
            .map_err(|error| corrupt("account_links.language", &error))?,
        created_by: optional_id("created_by")?
            .map(|text| parse_column("account_links.created_by", &text))
            .transpose()?,
        created_at: from_millis(column(row, "created_at")?)?,
        expires_at: from_millis(column(row, "expires_at")?)?,
        used_at: column::<Option<i64>>(row, "used_at")?
            .map(from_millis)
            .transpose()?,
    })
}
