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
            safety_link: signed_in
                .account
                .administers_site(summary.site.id)
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
