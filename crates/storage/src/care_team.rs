//! Cohort membership, caregivers' grants and break-glass grants.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{CareTeamStore, PatientSummary};
use stillpoint_domain::care_team::{BreakGlassGrant, CaregiverGrant, CaregiverScope, Cohort};
use stillpoint_domain::{AccountId, CohortId, PatientId, SiteId};

use crate::Database;
use crate::error::map_error;
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

const SUMMARY_COLUMNS: &str = "p.id, p.given_name, p.family_name, p.site_id, p.birth_date";

#[async_trait]
impl CareTeamStore for Database {
    async fn insert_cohort(
        &self,
        cohort: &Cohort,
        created_at: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO cohorts (id, site_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(cohort.id.to_string())
            .bind(cohort.site_id.to_string())
            .bind(&cohort.name)
            .bind(to_millis(created_at))
            .execute(&self.pool)
            .await
            .map_err(|error| map_error(error, "cohort", &cohort.id.to_string()))?;
        Ok(())
    }

    async fn add_cohort_facilitator(
        &self,
        cohort: CohortId,
        account: AccountId,
        lead: bool,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO cohort_facilitators (cohort_id, account_id, is_lead) VALUES ($1, $2, $3)",
        )
        .bind(cohort.to_string())
        .bind(account.to_string())
        .bind(i64::from(lead))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        Ok(())
    }

    async fn add_cohort_member(
        &self,
        cohort: CohortId,
        patient: PatientId,
    ) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO cohort_members (cohort_id, patient_id) VALUES ($1, $2)")
            .bind(cohort.to_string())
            .bind(patient.to_string())
            .execute(&self.pool)
            .await
            .map_err(|error| map_error(error, "cohort", &cohort.to_string()))?;
        Ok(())
    }

    async fn cohorts_of_patient(&self, patient: PatientId) -> Result<Vec<Cohort>, StorageError> {
        let rows = sqlx::query(
            "SELECT c.id, c.site_id, c.name FROM cohorts c \
             JOIN cohort_members m ON m.cohort_id = c.id WHERE m.patient_id = $1 ORDER BY c.name",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "patient", &patient.to_string()))?;
        rows.iter()
            .map(|row| {
                Ok(Cohort {
                    id: parse_column("cohorts.id", &column::<String>(row, "id")?)?,
                    site_id: parse_column("cohorts.site_id", &column::<String>(row, "site_id")?)?,
                    name: column(row, "name")?,
                })
            })
            .collect()
    }

    async fn facilitates_patient(
        &self,
        account: AccountId,
        patient: PatientId,
    ) -> Result<bool, StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS links FROM cohort_facilitators f \
             JOIN cohort_members m ON m.cohort_id = f.cohort_id \
             WHERE f.account_id = $1 AND m.patient_id = $2",
        )
        .bind(account.to_string())
        .bind(patient.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, "patient", &patient.to_string()))?;
        Ok(column::<i64>(&row, "links")? > 0)
    }

    async fn list_care_team_patients(
        &self,
        sites: &[SiteId],
        facilitator: Option<AccountId>,
    ) -> Result<Vec<PatientSummary>, StorageError> {
        // Placeholders: $1 is the facilitator, then one per site.
        let site_placeholders: Vec<String> = (0..sites.len())
            .map(|index| format!("${}", index + 2))
            .collect();
        let by_site = if sites.is_empty() {
            String::new()
        } else {
            format!("p.site_id IN ({}) OR ", site_placeholders.join(", "))
        };
        let statement = format!(
            "SELECT {SUMMARY_COLUMNS} FROM patients p WHERE {by_site}p.id IN (\
             SELECT m.patient_id FROM cohort_members m \
             JOIN cohort_facilitators f ON f.cohort_id = m.cohort_id WHERE f.account_id = $1) \
             ORDER BY p.family_name, p.given_name, p.id"
        );
        // Without a facilitator, $1 is bound to a value no account id has.
        let facilitator = facilitator.map_or_else(String::new, |id| id.to_string());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(facilitator);
        for site in sites {
            query = query.bind(site.to_string());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|error| map_error(error, "patient", ""))?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn put_caregiver_grant(&self, grant: &CaregiverGrant) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO caregiver_grants (patient_id, caregiver_account_id, scopes, granted_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (patient_id, caregiver_account_id) DO UPDATE SET \
             scopes = excluded.scopes, granted_at = excluded.granted_at, revoked_at = excluded.revoked_at",
        )
        .bind(grant.patient_id.to_string())
        .bind(grant.caregiver.to_string())
        .bind(CaregiverScope::join(&grant.scopes))
        .bind(to_millis(grant.granted_at))
        .bind(grant.revoked_at.map(to_millis))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "caregiver grant", &grant.patient_id.to_string()))?;
        Ok(())
    }

    async fn revoke_caregiver_grant(
        &self,
        patient: PatientId,
        caregiver: AccountId,
        at: Timestamp,
    ) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE caregiver_grants SET revoked_at = $1 \
             WHERE patient_id = $2 AND caregiver_account_id = $3 AND revoked_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(patient.to_string())
        .bind(caregiver.to_string())
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "caregiver grant", &patient.to_string()))?;
        Ok(result.rows_affected() == 1)
    }

    async fn find_caregiver_grant(
        &self,
        patient: PatientId,
        caregiver: AccountId,
    ) -> Result<Option<CaregiverGrant>, StorageError> {
        let row = sqlx::query(
            "SELECT patient_id, caregiver_account_id, scopes, granted_at, revoked_at FROM caregiver_grants \
             WHERE patient_id = $1 AND caregiver_account_id = $2",
        )
        .bind(patient.to_string())
        .bind(caregiver.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| map_error(error, "caregiver grant", &patient.to_string()))?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn caregiver_grants_of_patient(
        &self,
        patient: PatientId,
    ) -> Result<Vec<CaregiverGrant>, StorageError> {
        let rows = sqlx::query(
            "SELECT patient_id, caregiver_account_id, scopes, granted_at, revoked_at FROM caregiver_grants \
             WHERE patient_id = $1 ORDER BY granted_at DESC",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, "caregiver grant", &patient.to_string()))?;
        rows.iter().map(grant_from_row).collect()
    }

    async fn patients_of_caregiver(
        &self,
        caregiver: AccountId,
    ) -> Result<Vec<(PatientSummary, CaregiverGrant)>, StorageError> {
        let statement = format!(
            "SELECT {SUMMARY_COLUMNS}, g.patient_id, g.caregiver_account_id, g.scopes, g.granted_at, g.revoked_at \
             FROM caregiver_grants g JOIN patients p ON p.id = g.patient_id \
             WHERE g.caregiver_account_id = $1 AND g.revoked_at IS NULL \
             ORDER BY p.family_name, p.given_name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(caregiver.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|error| map_error(error, "caregiver grant", &caregiver.to_string()))?;
        rows.iter()
            .map(|row| Ok((summary_from_row(row)?, grant_from_row(row)?)))
            .collect()
    }

    async fn insert_break_glass(&self, grant: &BreakGlassGrant) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO break_glass_grants (id, clinician_account_id, patient_id, reason, opened_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(grant.clinician.to_string())
        .bind(grant.patient_id.to_string())
        .bind(&grant.reason)
        .bind(to_millis(grant.opened_at))
        .bind(to_millis(grant.expires_at))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "break-glass grant", &grant.patient_id.to_string()))?;
        Ok(())
    }

    async fn active_break_glass(
        &self,
        clinician: AccountId,
        patient: PatientId,
        now: Timestamp,
    ) -> Result<Option<BreakGlassGrant>, StorageError> {
        let row = sqlx::query(
            "SELECT clinician_account_id, patient_id, reason, opened_at, expires_at FROM break_glass_grants \
             WHERE clinician_account_id = $1 AND patient_id = $2 AND opened_at <= $3 AND expires_at > $3 \
             ORDER BY expires_at DESC LIMIT 1",
        )
        .bind(clinician.to_string())
        .bind(patient.to_string())
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| map_error(error, "break-glass grant", &patient.to_string()))?;
        row.as_ref().map(break_glass_from_row).transpose()
    }

    async fn recent_break_glass(
        &self,
        sites: &[SiteId],
        since: Timestamp,
    ) -> Result<Vec<BreakGlassGrant>, StorageError> {
        if sites.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..sites.len())
            .map(|index| format!("${}", index + 2))
            .collect();
        let statement = format!(
            "SELECT g.clinician_account_id, g.patient_id, g.reason, g.opened_at, g.expires_at \
             FROM break_glass_grants g JOIN patients p ON p.id = g.patient_id \
             WHERE g.opened_at >= $1 AND p.site_id IN ({}) ORDER BY g.opened_at DESC LIMIT 100",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(to_millis(since));
        for site in sites {
            query = query.bind(site.to_string());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|error| map_error(error, "break-glass grant", ""))?;
        rows.iter().map(break_glass_from_row).collect()
    }
}

fn summary_from_row(row: &AnyRow) -> Result<PatientSummary, StorageError> {
    Ok(PatientSummary {
        id: parse_column("patients.id", &column::<String>(row, "id")?)?,
        given_name: column(row, "given_name")?,
        family_name: column(row, "family_name")?,
        site_id: parse_column("patients.site_id", &column::<String>(row, "site_id")?)?,
        birth_date: parse_column::<Date>(
            "patients.birth_date",
            &column::<String>(row, "birth_date")?,
        )?,
    })
}

fn grant_from_row(row: &AnyRow) -> Result<CaregiverGrant, StorageError> {
    Ok(CaregiverGrant {
        patient_id: parse_column(
            "caregiver_grants.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        caregiver: parse_column(
            "caregiver_grants.caregiver_account_id",
            &column::<String>(row, "caregiver_account_id")?,
        )?,
        scopes: CaregiverScope::parse_list(&column::<String>(row, "scopes")?)
            .map_err(|error| corrupt("caregiver_grants.scopes", &error))?,
        granted_at: from_millis(column(row, "granted_at")?)?,
        revoked_at: column::<Option<i64>>(row, "revoked_at")?
            .map(from_millis)
            .transpose()?,
    })
}

fn break_glass_from_row(row: &AnyRow) -> Result<BreakGlassGrant, StorageError> {
    Ok(BreakGlassGrant {
        clinician: parse_column(
            "break_glass_grants.clinician_account_id",
            &column::<String>(row, "clinician_account_id")?,
        )?,
        patient_id: parse_column(
            "break_glass_grants.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        reason: column(row, "reason")?,
        opened_at: from_millis(column(row, "opened_at")?)?,
        expires_at: from_millis(column(row, "expires_at")?)?,
    })
}
