//! Patients and their chronic conditions.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use stillpoint_app::StorageError;
use stillpoint_app::ports::PatientStore;
use stillpoint_domain::{
    AccountId, ChronicCondition, Icd10Code, Language, Patient, PatientId, SiteId, TimeZoneName,
};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, parse_column, to_millis};

#[async_trait]
impl PatientStore for Database {
    async fn insert_patient(&self, patient: &Patient) -> Result<(), StorageError> {
        let id = patient.id.to_string();
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;

        sqlx::query(
            "INSERT INTO patients (id, account_id, site_id, given_name, family_name, birth_date, language, time_zone, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(patient.account_id.map(|account| account.to_string()))
        .bind(patient.site_id.to_string())
        .bind(&patient.given_name)
        .bind(&patient.family_name)
        .bind(patient.birth_date.to_string())
        .bind(patient.language.as_str())
        .bind(patient.time_zone.as_str())
        .bind(to_millis(Timestamp::now()))
        .execute(&mut *transaction)
        .await
        .map_err(|error| map_error(error, "patient", &id))?;

        for (position, condition) in patient.conditions.iter().enumerate() {
            sqlx::query(
                "INSERT INTO patient_conditions (patient_id, icd10_code, display, position) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(condition.code.as_str())
            .bind(&condition.display)
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
            .execute(&mut *transaction)
            .await
            .map_err(|error| map_error(error, "patient", &id))?;
        }

        transaction.commit().await.map_err(map_write_error)
    }

    async fn get_patient(&self, id: PatientId) -> Result<Patient, StorageError> {
        let key = id.to_string();
        let row = sqlx::query(
            "SELECT id, account_id, site_id, given_name, family_name, birth_date, language, time_zone \
             FROM patients WHERE id = $1",
        )
        .bind(&key)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, "patient", &key))?;

        let condition_rows = sqlx::query(
            "SELECT icd10_code, display FROM patient_conditions WHERE patient_id = $1 ORDER BY position",
        )
        .bind(&key)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "patient", &key))?;
        let conditions = condition_rows
            .iter()
            .map(|condition| {
                Ok(ChronicCondition {
                    code: Icd10Code::parse(&column::<String>(condition, "icd10_code")?)
                        .map_err(|error| corrupt("patient_conditions.icd10_code", &error))?,
                    display: column(condition, "display")?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;

        Ok(Patient {
            id,
            account_id: column::<Option<String>>(&row, "account_id")?
                .map(|text| parse_column("patients.account_id", &text))
                .transpose()?,
            site_id: parse_column("patients.site_id", &column::<String>(&row, "site_id")?)?,
            given_name: column(&row, "given_name")?,
            family_name: column(&row, "family_name")?,
            birth_date: parse_column::<Date>(
                "patients.birth_date",
                &column::<String>(&row, "birth_date")?,
            )?,
            language: Language::parse(&column::<String>(&row, "language")?)
                .map_err(|error| corrupt("patients.language", &error))?,
            time_zone: TimeZoneName::parse(&column::<String>(&row, "time_zone")?)
                .map_err(|error| corrupt("patients.time_zone", &error))?,
            conditions,
        })
    }

    async fn find_patient_for_account(&self, account: AccountId) -> Result<Patient, StorageError> {
        let key = account.to_string();
        let row = sqlx::query("SELECT id FROM patients WHERE account_id = $1")
            .bind(&key)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, "patient of account", &key))?;
        let id = parse_column("patients.id", &column::<String>(&row, "id")?)?;
        self.get_patient(id).await
    }

    async fn count_patients_by_site(&self) -> Result<Vec<(SiteId, i64)>, StorageError> {
        let rows = sqlx::query(
            "SELECT site_id, COUNT(*) AS total FROM patients GROUP BY site_id ORDER BY site_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter()
            .map(|row| {
                let site = parse_column("patients.site_id", &column::<String>(row, "site_id")?)?;
                Ok((site, column(row, "total")?))
            })
            .collect()
    }
}
