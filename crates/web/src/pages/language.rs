//! The language switcher: a plain form, so it works without JavaScript.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::{AppError, accounts};

use crate::AppState;
use crate::csrf::CheckedForm;
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
/// Backslashes, whitespace and control characters are rejected too, because browsers drop or
/// rewrite them in `Location` (`/\t/evil.example` becomes `//evil.example`).
fn local_path(next: &str) -> &str {
    let is_local = next.starts_with('/')
        && !next.starts_with("//")
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    if is_local { next } else { "/" }
}

/// Stores the chosen language (on the account when signed in, in a cookie in any case) and
/// returns to the page the visitor came from.
pub async fn switch(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(form): CheckedForm<SwitchForm>,
) -> Result<Response, WebError> {
    let language = state
        .catalogs
        .offered_language("lang", &form.lang)
        .map_err(AppError::from)?;

    if let Some(account) = viewer.account {
        accounts::set_language(state.store.as_ref(), account, language.clone()).await?;
    }
    let tag = language.as_str();

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
            ("/\t/evil.example", "/"),
            ("/\n/evil.example", "/"),
            ("", "/"),
        ] {
            assert_eq!(local_path(next), expected, "{next}");
        }
    }
}
