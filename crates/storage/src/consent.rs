//! Patients' consent records.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::ConsentStore;
use stillpoint_domain::consent::ConsentRecord;
use stillpoint_domain::{Language, PatientId};

use crate::Database;
use crate::error::map_error;
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

const ENTITY: &str = "consent record";

#[async_trait]
impl ConsentStore for Database {
    async fn insert_consent_record(&self, record: &ConsentRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO consent_records (id, patient_id, document_id, version, language, content_hash, \
             signed_name, signed_at, signer_account_id, withdrawn_at, withdrawal_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(record.patient_id.to_string())
        .bind(&record.document_id)
        .bind(i64::from(record.version))
        .bind(record.language.as_str())
        .bind(&record.content_hash)
        .bind(&record.signed_name)
        .bind(to_millis(record.signed_at))
        .bind(record.signer.to_string())
        .bind(record.withdrawn_at.map(to_millis))
        .bind(record.withdrawal_reason.clone())
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &record.patient_id.to_string()))?;
        Ok(())
    }

    async fn consent_records_of_patient(
        &self,
        patient: PatientId,
    ) -> Result<Vec<ConsentRecord>, StorageError> {
        let rows = sqlx::query(
            "SELECT patient_id, document_id, version, language, content_hash, signed_name, signed_at, \
             signer_account_id, withdrawn_at, withdrawal_reason FROM consent_records \
             WHERE patient_id = $1 ORDER BY signed_at DESC, id DESC",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &patient.to_string()))?;
        rows.iter().map(record_from_row).collect()
    }

    async fn withdraw_consent(
        &self,
        patient: PatientId,
        document_id: &str,
        at: Timestamp,
        reason: Option<&str>,
    ) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE consent_records SET withdrawn_at = $1, withdrawal_reason = $2 \
             WHERE patient_id = $3 AND document_id = $4 AND withdrawn_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(reason.map(str::to_owned))
        .bind(patient.to_string())
        .bind(document_id)
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &patient.to_string()))?;
        Ok(result.rows_affected() > 0)
    }
}

fn record_from_row(row: &AnyRow) -> Result<ConsentRecord, StorageError> {
    let version: i64 = column(row, "version")?;
    Ok(ConsentRecord {
        patient_id: parse_column(
            "consent_records.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        document_id: column(row, "document_id")?,
        version: u32::try_from(version)
            .map_err(|error| corrupt("consent_records.version", &error))?,
        language: Language::parse(&column::<String>(row, "language")?)
            .map_err(|error| corrupt("consent_records.language", &error))?,
        content_hash: column(row, "content_hash")?,
        signed_name: column(row, "signed_name")?,
        signed_at: from_millis(column(row, "signed_at")?)?,
        signer: parse_column(
            "consent_records.signer_account_id",
            &column::<String>(row, "signer_account_id")?,
        )?,
        withdrawn_at: column::<Option<i64>>(row, "withdrawn_at")?
            .map(from_millis)
            .transpose()?,
        withdrawal_reason: column(row, "withdrawal_reason")?,
    })
}
