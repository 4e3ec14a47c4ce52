//! The clinic's sites, for administrators.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use stillpoint_app::sites;
use stillpoint_domain::{Site, SiteId};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{Problem, WebError};
use crate::viewer::SignedIn;

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteBody {
    id: String,
    code: String,
    name: String,
    /// IANA time zone the site's schedules are written in.
    time_zone: String,
    /// Patients whose care the site holds (present in lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    patient_count: Option<i64>,
}

impl SiteBody {
    fn new(site: Site, patient_count: Option<i64>) -> Self {
        Self {
            id: site.id.to_string(),
            code: site.code,
            name: site.name,
            time_zone: site.time_zone.to_string(),
            patient_count,
        }
    }
}

/// Lists the sites the signed-in administrator administers, with patient counts.
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Sites, ordered by code", body = [SiteBody]),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn list_sites(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<SiteBody>>, WebError> {
    let summaries = sites::list_sites(state.store.as_ref(), &signed_in.account).await?;

    Ok(Json(
        summaries
            .into_iter()
            .map(|summary| SiteBody::new(summary.site, Some(summary.patient_count)))
            .collect(),
    ))
}

/// One site the signed-in administrator administers.
#[utoipa::path(get, path = "/api/v1/sites/{site_id}", tag = "sites",
    security(("bearer" = []), ("session_cookie" = [])),
    params(("site_id" = String, Path, description = "The site's UUID")),
    responses(
        (status = 200, description = "The site", body = SiteBody),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such site among those the account administers", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn get_site(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(site_id): Path<String>,
) -> Result<Json<SiteBody>, WebError> {
    let id: SiteId = site_id.parse().map_err(|_| WebError::Invalid {
        field: "site_id".to_owned(),
        message: format!("'{site_id}' is not a UUID; use the id from the site list"),
    })?;

    let site = sites::get_site(state.store.as_ref(), &signed_in.account, id).await?;
    Ok(Json(SiteBody::new(site, None)))
}
