//! Curriculum versions, each stored whole as a JSON document.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{CurriculumStatus, CurriculumStore, StoredCurriculum};
use stillpoint_domain::curriculum::{Curriculum, CurriculumId};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

const ENTITY: &str = "curriculum version";

#[async_trait]
impl CurriculumStore for Database {
    async fn insert_curriculum_version(
        &self,
        stored: &StoredCurriculum,
    ) -> Result<(), StorageError> {
        let curriculum = &stored.curriculum;
        let key = format!("{}@{}", curriculum.id, curriculum.version);
        sqlx::query(
            "INSERT INTO curriculum_versions (curriculum_id, version, status, document, based_on, created_by, \
             created_at, published_at, site_id, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(curriculum.id.as_str())
        .bind(i64::from(curriculum.version))
        .bind(stored.status.as_str())
        .bind(document(curriculum)?)
        .bind(stored.based_on.clone())
        .bind(stored.created_by.map(|account| account.to_string()))
        .bind(to_millis(stored.created_at))
        .bind(stored.published_at.map(to_millis))
        .bind(stored.site.map(|site| site.to_string()))
        .bind(i64::from(stored.revision))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &key))?;
        Ok(())
    }

    async fn get_curriculum_version(
        &self,
        id: &CurriculumId,
        version: u32,
    ) -> Result<StoredCurriculum, StorageError> {
        let row = sqlx::query(
            "SELECT status, document, based_on, created_by, created_at, published_at, site_id, revision FROM curriculum_versions \
             WHERE curriculum_id = $1 AND version = $2",
        )
        .bind(id.as_str())
        .bind(i64::from(version))
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &format!("{id}@{version}")))?;
        stored_curriculum(&row)
    }

    async fn list_curriculum_versions(&self) -> Result<Vec<StoredCurriculum>, StorageError> {
        let rows = sqlx::query(
            "SELECT status, document, based_on, created_by, created_at, published_at, site_id, revision FROM curriculum_versions \
             ORDER BY curriculum_id, version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter().map(stored_curriculum).collect()
    }

    async fn update_curriculum_draft(
        &self,
        curriculum: &Curriculum,
        revision: u32,
    ) -> Result<(), StorageError> {
        let key = format!("{}@{}", curriculum.id, curriculum.version);
        let updated = sqlx::query(
            "UPDATE curriculum_versions SET document = $1, revision = revision + 1 \
             WHERE curriculum_id = $2 AND version = $3 AND status = 'draft' AND revision = $4",
        )
        .bind(document(curriculum)?)
        .bind(curriculum.id.as_str())
        .bind(i64::from(curriculum.version))
        .bind(i64::from(revision))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &key))?;
        changed_unless_one(updated.rows_affected())
    }

    async fn publish_curriculum_version(
        &self,
        id: &CurriculumId,
        version: u32,
        revision: u32,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let key = format!("{id}@{version}");
        let updated = sqlx::query(
            "UPDATE curriculum_versions SET status = 'published', published_at = $1 \
             WHERE curriculum_id = $2 AND version = $3 AND status = 'draft' AND revision = $4",
        )
        .bind(to_millis(at))
        .bind(id.as_str())
        .bind(i64::from(version))
        .bind(i64::from(revision))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, ENTITY, &key))?;
        changed_unless_one(updated.rows_affected())
    }
}

/// Reports a conditional update that matched no row: the draft was published or edited since
/// the caller read it.
fn changed_unless_one(rows: u64) -> Result<(), StorageError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StorageError::Conflict {
            constraint: "curriculum_versions_changed".to_owned(),
        })
    }
}

fn document(curriculum: &Curriculum) -> Result<String, StorageError> {
    serde_json::to_string(curriculum)
        .map_err(|error| StorageError::Corrupt(format!("curriculum cannot be serialised: {error}")))
}

fn stored_curriculum(row: &sqlx::any::AnyRow) -> Result<StoredCurriculum, StorageError> {
    let curriculum: Curriculum = serde_json::from_str(&column::<String>(row, "document")?)
        .map_err(|error| corrupt("curriculum_versions.document", &error))?;
    let status = match column::<String>(row, "status")?.as_str() {
        "draft" => CurriculumStatus::Draft,
        "published" => CurriculumStatus::Published,
        other => return Err(corrupt("curriculum_versions.status", &other)),
    };
    Ok(StoredCurriculum {
        curriculum,
        status,
        based_on: column(row, "based_on")?,
        created_by: column::<Option<String>>(row, "created_by")?
            .map(|text| parse_column("curriculum_versions.created_by", &text))
            .transpose()?,
        site: column::<Option<String>>(row, "site_id")?
            .map(|text| parse_column("curriculum_versions.site_id", &text))
            .transpose()?,
        revision: u32::try_from(column::<i64>(row, "revision")?)
            .map_err(|error| corrupt("curriculum_versions.revision", &error))?,
        created_at: from_millis(column(row, "created_at")?)?,
        published_at: column::<Option<i64>>(row, "published_at")?
            .map(from_millis)
            .transpose()?,
    })
}
