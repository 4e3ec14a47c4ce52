//! Static assets compiled into the binary and served under content-hashed names, so browsers can
//! cache them for a year and still get a new file after an upgrade.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest as _, Sha256};

use crate::AppState;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct BundledAssets;

#[derive(Debug, Clone)]
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
}

/// The asset table: logical name → URL, and hashed file name → content.
#[derive(Debug, Default)]
pub struct Assets {
    urls: HashMap<String, String>,
    files: HashMap<String, Asset>,
}

impl Assets {
    #[must_use]
    pub fn load() -> Self {
        let mut assets = Self::default();
        for name in BundledAssets::iter() {
            let Some(file) = BundledAssets::get(&name) else {
                continue;
            };
            let bytes: &'static [u8] = match file.data {
                std::borrow::Cow::Borrowed(bytes) => bytes,
                // NOTE: debug builds of rust-embed read files from disk; leaking them once at start
                // keeps one code path for both build kinds.
                std::borrow::Cow::Owned(bytes) => Vec::leak(bytes),
            };
            let hashed = hashed_name(&name, bytes);
            assets
                .urls
                .insert(name.to_string(), format!("/assets/{hashed}"));
            assets.files.insert(
                hashed,
                Asset {
                    bytes,
                    content_type: content_type(&name),
                },
            );
        }
        assets
    }

    /// The bytes of a logical asset name, for a file that must be served at a fixed address
    /// rather than a hashed one, such as a service worker.
    #[must_use]
    pub fn source(&self, name: &str) -> Option<&'static [u8]> {
        let hashed = self.urls.get(name)?.strip_prefix("/assets/")?;
        self.files.get(hashed).map(|asset| asset.bytes)
    }

    /// The URL of a logical asset name such as `stillpoint.css`.
    ///
    /// # Panics
    /// Panics when the asset does not exist, which is a programming error caught by the page tests.
    #[must_use]
    pub fn url(&self, name: &str) -> &str {
        self.urls
            .get(name)
            .map_or_else(|| panic!("asset {name} is not bundled"), String::as_str)
    }
}

/// `stillpoint.css` with content hash `ab12…` becomes `stillpoint.ab12cd34ef56.css`.
fn hashed_name(name: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let short = digest
        .iter()
        .take(6)
        .fold(String::with_capacity(12), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        });
    match name.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}.{short}.{extension}"),
        None => format!("{name}.{short}"),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("ogg") => "audio/ogg",
        Some("mp3") => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

/// Serves one hashed asset with a year-long immutable cache lifetime.
pub async fn serve_asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(asset) = state.assets.files.get(&file) else {
        return crate::error::WebError::NotFound.into_response();
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_name_keeps_the_extension() {
        let name = hashed_name("stillpoint.css", b"body{}");
        assert!(name.starts_with("stillpoint."), "{name}");
        assert!(
            std::path::Path::new(&name)
                .extension()
                .is_some_and(|e| e == "css"),
            "{name}"
        );
        assert_eq!(name.len(), "stillpoint..css".len() + 12);
        assert_ne!(name, hashed_name("stillpoint.css", b"body{ }"));
    }

    #[test]
    fn stylesheet_is_bundled() {
        let assets = Assets::load();
        assert!(
            assets
                .url("stillpoint.css")
                .starts_with("/assets/stillpoint.")
        );
    }
}
