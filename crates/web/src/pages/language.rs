//! The language switcher: a plain form, so it works without JavaScript.

use axum::Form;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_domain::Language;

use crate::AppState;
use crate::error::WebError;
use crate::viewer::{LANGUAGE_COOKIE, Viewer};

#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    next: String,
}

/// Only a local path may be a redirect target, so the switcher cannot send people elsewhere.
fn local_path(next: &str) -> &str {
    let is_local = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if is_local { next } else { "/" }
}

/// Stores the chosen language (on the account when signed in, in a cookie in any case) and
/// returns to the page the visitor came from.
pub async fn switch(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<SwitchForm>,
) -> Result<Response, WebError> {
    let language = Language::parse(&form.lang).map_err(stillpoint_app::AppError::from)?;
    let Some(tag) = state.catalogs.closest(&language) else {
        return Err(WebError::Invalid {
            field: "lang".to_owned(),
            message: format!("'{language}' is not offered; choose one of the listed languages"),
        });
    };

    if let Some(account) = &viewer.account {
        let offered = Language::parse(&tag).map_err(stillpoint_app::AppError::from)?;
        state
            .store
            .set_account_language(account.id, &offered)
            .await
            .map_err(stillpoint_app::AppError::from)?;
    }

    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{LANGUAGE_COOKIE}={tag}; Path=/; Max-Age=31536000; SameSite=Lax{secure}");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(local_path(&form.next)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn switcher_redirects_only_to_local_paths() {
        for (next, expected) in [
            ("/home", "/home"),
            ("//evil.example/", "/"),
            ("https://evil.example", "/"),
            ("/\\evil", "/"),
            ("", "/"),
        ] {
            assert_eq!(local_path(next), expected, "{next}");
        }
    }
}
