//! The administrators' list of sites.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use stillpoint_app::sites;

use super::{Layout, render};
use crate::AppState;
use crate::error::WebError;
use crate::viewer::SignedIn;

struct SiteRow {
    /// The safety settings page, for an administrator of the site.
    safety_link: Option<String>,
    code: String,
    name: String,
    time_zone: String,
    patient_count: i64,
}

#[derive(Template)]
#[template(path = "sites.html")]
struct SitesTemplate {
    layout: Layout,
    sites: Vec<SiteRow>,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    let summaries = sites::list_sites(state.store.as_ref(), &signed_in.account).await?;

    let sites = summaries
        .into_iter()
        .map(|summary| SiteRow {
            safety_link: may_administer(&signed_in.account, summary.site.id)
                .then(|| format!("/sites/{}/safety", summary.site.id)),
            code: summary.site.code,
            name: summary.site.name,
            time_zone: summary.site.time_zone.to_string(),
            patient_count: summary.patient_count,
        })
        .collect();
    let layout = Layout::new(&state, &signed_in.viewer, "/sites");
    render(&SitesTemplate { layout, sites })
}

/// Whether `account` administers the site: a system administrator, or the site's program
/// administrator.
fn may_administer(account: &stillpoint_domain::Account, site: stillpoint_domain::SiteId) -> bool {
    use stillpoint_domain::Role;

    account.has_role(Role::SystemAdministrator)
        || account.roles.iter().any(|assignment| {
            assignment.role == Role::ProgramAdministrator && assignment.site_id == Some(site)
        })
}
