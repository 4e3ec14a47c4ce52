//! Protection of HTML forms against cross-site request forgery.
//!
//! Each browser gets a random "form seed" cookie on its first page. Every form carries a hidden
//! `csrf_token` field derived from that seed and, once signed in, from the session token too.
//! A form submitted without the matching value is rejected with 403. Both cookies are `HttpOnly`
//! and a forging site cannot read them, so it cannot compute the field (the signed double-submit
//! pattern of the OWASP Cross-Site Request Forgery Prevention Cheat Sheet). The `Origin` and
//! `Sec-Fetch-Site` check in the middleware is a second, independent defence.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::AppState;
use crate::error::WebError;
use crate::viewer::{ViewerInputs, cookie};

/// Name of the form seed cookie on plain HTTP.
pub const SEED_COOKIE: &str = "stillpoint_form";
/// Name of the form seed cookie when cookies are `Secure`; the `__Host-` prefix stops a network
/// attacker from planting one over plain HTTP.
pub const SECURE_SEED_COOKIE: &str = "__Host-stillpoint_form";

/// The name of the hidden field every form carries.
pub const FIELD: &str = "csrf_token";

/// Returns the seed cookie's name under the given cookie policy.
#[must_use]
pub fn seed_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SEED_COOKIE
    } else {
        SEED_COOKIE
    }
}

/// Computes the value of the hidden form field for a browser with `seed` and, when signed in, `session`.
#[must_use]
pub fn form_token(seed: &str, session: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"stillpoint form token v1\0");
    hasher.update(seed.as_bytes());
    hasher.update(b"\0");
    hasher.update(session.unwrap_or_default().as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Creates a seed for a browser without one. The seed is added to the request's `Cookie` header,
/// so the page rendered now carries matching tokens, and is returned as the response's
/// `Set-Cookie` value. Requests to the API, assets and probes are left alone.
pub fn ensure_seed(request: &mut Request, secure: bool) -> Option<HeaderValue> {
    let path = request.uri().path();
    let exempt = ["/api/", "/assets/", "/healthz", "/readyz", "/metrics"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    let name = seed_cookie_name(secure);
    if exempt || cookie(request.headers(), name).is_some_and(|seed| !seed.is_empty()) {
        return None;
    }

    let seed = stillpoint_app::random::new_token();
    let pair = format!("{name}={seed}");
    // HTTP/2 clients may send each cookie in a header field of its own, so all are joined.
    let mut cookies: Vec<&str> = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    cookies.push(&pair);
    let joined = cookies.join("; ");
    let headers = request.headers_mut();
    headers.remove(header::COOKIE);
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert(header::COOKIE, value);
    }
    let secure_attribute = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={seed}; Path=/; HttpOnly; SameSite=Lax{secure_attribute}"
    ))
    .ok()
}

/// The token the browser that sent `headers` must return in its forms, if it has a seed.
#[must_use]
pub fn expected_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    let seed = cookie(headers, seed_cookie_name(secure)).filter(|seed| !seed.is_empty())?;
    let session = ViewerInputs::from_headers(headers, secure).session_token();
    Some(form_token(&seed, session.as_deref()))
}

/// Checks a form token sent in a body that [`CheckedForm`] cannot read, such as a multipart
/// upload.
///
/// # Errors
/// Returns [`WebError::FormExpired`] when the token is missing or does not match.
pub fn check_token(headers: &HeaderMap, secure: bool, sent: &str) -> Result<(), WebError> {
    let expected = expected_token(headers, secure);
    if expected.is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(sent.as_bytes()))) {
        Ok(())
    } else {
        tracing::warn!("upload rejected: missing or invalid form token");
        Err(WebError::FormExpired)
    }
}

#[derive(Deserialize)]
struct TokenField {
    #[serde(default)]
    csrf_token: String,
}

/// A URL-encoded form whose `csrf_token` field was checked before the handler runs.
#[derive(Debug, Clone)]
pub struct CheckedForm<T>(pub T);

impl<T> FromRequest<AppState> for CheckedForm<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // A bearer token is never sent by a browser on its own, so such a request cannot be
        // forged by another site and needs no form token.
        if crate::middleware::has_bearer_token(request.headers()) {
            return parse_form(request, state).await.map(Self);
        }
        let secure = state.config.secure_cookies;
        let expected = expected_token(request.headers(), secure);
        let (parts, body) = request.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| WebError::Invalid {
                field: "form".to_owned(),
                message: "the form could not be read; submit it again".to_owned(),
            })?;

        let sent = axum::Form::<TokenField>::from_request(
            Request::from_parts(parts.clone(), Body::from(bytes.clone())),
            state,
        )
        .await
        .map(|axum::Form(field)| field.csrf_token)
        .unwrap_or_default();
        let matches =
            expected.is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(sent.as_bytes())));
        if !matches {
            tracing::warn!(
                route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", axum::extract::MatchedPath::as_str),
                "form rejected: missing or invalid form token"
            );
            return Err(WebError::FormExpired);
        }

        parse_form(Request::from_parts(parts, Body::from(bytes)), state)
            .await
            .map(Self)
    }
}

async fn parse_form<T: DeserializeOwned + Send>(
    request: Request,
    state: &AppState,
) -> Result<T, WebError> {
    let axum::Form(form) = axum::Form::<T>::from_request(request, state)
        .await
        .map_err(|rejection| WebError::Invalid {
            field: "form".to_owned(),
            message: format!("the form could not be read ({rejection}); submit it again"),
        })?;
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_depends_on_seed_and_session() {
        let anonymous = form_token("seed-a", None);
        assert_eq!(anonymous, form_token("seed-a", None));
        assert_ne!(anonymous, form_token("seed-b", None));
        assert_ne!(anonymous, form_token("seed-a", Some("session")));
        assert_eq!(anonymous.len(), 43);
    }

    #[test]
    fn missing_seed_is_added_to_the_request() {
        let mut request = Request::builder()
            .uri("/sign-in")
            .header(header::COOKIE, "stillpoint_lang=es")
            .body(Body::empty())
            .expect("request");
        let set_cookie = ensure_seed(&mut request, false).expect("a new seed");
        let seed = cookie(request.headers(), SEED_COOKIE).expect("seed in the request");
        assert!(
            set_cookie
                .to_str()
                .expect("ascii")
                .starts_with(&format!("stillpoint_form={seed}; Path=/; HttpOnly"))
        );
        assert_eq!(
            cookie(request.headers(), "stillpoint_lang").as_deref(),
            Some("es")
        );
        assert!(ensure_seed(&mut request, false).is_none(), "kept once set");

        let mut api = Request::builder()
            .uri("/api/v1/me")
            .body(Body::empty())
            .expect("request");
        assert!(ensure_seed(&mut api, false).is_none());
    }
}
