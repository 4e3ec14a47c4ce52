//! The public start page: what the program is and how to join.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{Layout, render};
use crate::AppState;
use crate::error::WebError;
use crate::viewer::Viewer;

#[derive(Template)]
#[template(path = "start.html")]
struct StartTemplate {
    layout: Layout,
    lead: String,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, WebError> {
    let layout = Layout::new(&state, &viewer, "/");
    let lead = layout
        .tr
        .t_with("start-lead", "clinic", &state.config.clinic_name);

    render(&StartTemplate { layout, lead })
}
