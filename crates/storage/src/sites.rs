//! Sites.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::SiteStore;
use stillpoint_domain::{Site, SiteId, TimeZoneName};

use crate::Database;
use crate::error::map_error;
use crate::values::{column, corrupt, parse_column, to_millis};

fn site_from_row(row: &AnyRow) -> Result<Site, StorageError> {
    let time_zone: String = column(row, "time_zone")?;
    Ok(Site {
        id: parse_column("sites.id", &column::<String>(row, "id")?)?,
        code: column(row, "code")?,
        name: column(row, "name")?,
        time_zone: TimeZoneName::parse(&time_zone)
            .map_err(|error| corrupt("sites.time_zone", &error))?,
    })
}

#[async_trait]
impl SiteStore for Database {
    async fn insert_site(&self, site: &Site) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sites (id, code, name, time_zone, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(site.id.to_string())
        .bind(&site.code)
        .bind(&site.name)
        .bind(site.time_zone.as_str())
        .bind(to_millis(Timestamp::now()))
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, "site", &site.id.to_string()))?;
        Ok(())
    }

    async fn get_site(&self, id: SiteId) -> Result<Site, StorageError> {
        let row = sqlx::query("SELECT id, code, name, time_zone FROM sites WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, "site", &id.to_string()))?;
        site_from_row(&row)
    }

    async fn list_sites(&self) -> Result<Vec<Site>, StorageError> {
        let rows = sqlx::query("SELECT id, code, name, time_zone FROM sites")
            .fetch_all(&self.pool)
            .await
            .map_err(|error| map_error(error, "site", ""))?;
        // Sorted here, not by ORDER BY, because PostgreSQL orders text by the database's
        // collation and SQLite by bytes, and both databases must list sites alike.
        let mut sites = rows
            .iter()
            .map(site_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        sites.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(sites)
    }
}
