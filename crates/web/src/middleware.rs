//! Cross-cutting request handling: request ids, tracing spans, security headers and the
//! cross-origin check for state-changing requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;

use crate::AppState;
use crate::error::WebError;
use crate::viewer::ViewerInputs;

/// Content Security Policy: everything from our own origin, no inline script or style, no
/// framing, forms only to ourselves.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// HSTS for two years, sent only when Stillpoint itself terminates TLS.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// Headers every response gets unless the handler set them already.
const SECURITY_HEADERS: [(HeaderName, &str); 7] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("permissions-policy"),
        "camera=(self), microphone=(self), geolocation=(), payment=()",
    ),
    // Pages carry health information, so nothing is cached unless a handler sets its own policy.
    (header::CACHE_CONTROL, "no-store"),
];

/// The outer middleware, one function to keep the per-request cost down. After the handler it
/// turns error responses into problem documents or pages (logging server faults once), counts
/// the request in the metrics, and adds the security headers, and HSTS when Stillpoint
/// terminates TLS itself.
pub async fn finish_response(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = crate::metrics::method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    // Only the few headers an error page needs are kept (cloning a header value is a reference
    // count increment), and they are parsed only when the response is an error.
    let kept_headers = ViewerInputs::relevant_headers(request.headers());
    let uri = request.uri().clone();

    let response = next.run(request).await;
    let mut response =
        crate::error::render_error_response(&state, &kept_headers, &uri, response).await;

    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state
        .metrics
        .record(method, route, response.status().as_u16(), started.elapsed());

    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if state.config.hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    response
}

/// Rejects state-changing requests that a browser sent from another site.
///
/// Browsers label every request with `Sec-Fetch-Site` and send `Origin` on POST, so a form
/// posted from another site is recognised and rejected. Requests with neither header come from
/// non-browser clients, which carry no ambient cookies to abuse. API clients that authenticate
/// with `Authorization: Bearer` are exempt, because a browser never adds that header on its own.
pub async fn reject_cross_origin(request: Request, next: Next) -> axum::response::Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || has_bearer_token(request.headers()) {
        return next.run(request).await;
    }

    let headers = request.headers();
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    // HTTP/2 requests name the host in the URI authority instead of a Host header.
    let host = headers.get(header::HOST).cloned().or_else(|| {
        request
            .uri()
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
    });
    let cross_site = match fetch_site {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => match (headers.get(header::ORIGIN), host) {
            (Some(origin), Some(host)) => !origin_matches_host(origin, &host),
            (Some(_), None) => true,
            (None, _) => false,
        },
    };
    if cross_site {
        tracing::warn!(method = %request.method(), "cross-origin state-changing request rejected");
        return WebError::CrossOrigin.into_response();
    }
    next.run(request).await
}

/// Whether the request authenticates with `Authorization: Bearer`, which browsers never add on
/// their own (unlike `Basic` or `Negotiate` credentials, which they can replay automatically).
pub fn has_bearer_token(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
}

// NOTE: the scheme of `Origin` is not compared, because behind a TLS-terminating proxy the
// server cannot tell which scheme the browser used.
fn origin_matches_host(origin: &HeaderValue, host: &HeaderValue) -> bool {
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    authority.eq_ignore_ascii_case(host)
}

/// Request ids made of a per-process random prefix and a counter: unique across servers and
/// restarts without reading the operating system's random source on every request, as a UUID v4
/// would. Request ids only correlate log lines; they are not secrets.
#[derive(Debug, Clone)]
pub struct SequentialRequestId {
    prefix: Arc<str>,
    counter: Arc<AtomicU64>,
}

impl SequentialRequestId {
    #[must_use]
    pub fn new() -> Self {
        let prefix = uuid::Uuid::now_v7().simple().to_string();
        Self {
            prefix: prefix[prefix.len() - 12..].into(),
            counter: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl Default for SequentialRequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let sequence = self.counter.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{sequence:08x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Middleware that drops a client-sent `x-request-id` that is longer than 64 characters or
/// contains anything but letters, digits and `-_.:`, so a fresh id replaces it. Request ids go
/// into logs and error pages, where arbitrary client text does not belong.
pub async fn drop_invalid_request_id(mut request: Request, next: Next) -> axum::response::Response {
    let valid = request.headers().get("x-request-id").is_none_or(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 64
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if !valid {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// The span of one request: method, request id and, once routing has matched, the route
/// template (never the raw path, so ids stay out of the log).
pub fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), route = tracing::field::Empty, request_id)
}

/// The inner middleware, one function to keep the per-request cost down. It records the matched
/// route template in the request span, applies the route's access policy, and ends a request that
/// runs longer than the configured timeout with a 503 problem.
pub async fn guard_route(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> axum::response::Response {
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        Span::current().record("route", route.as_str());
    }
    let new_form_seed = crate::csrf::ensure_seed(&mut request, state.config.secure_cookies);
    let request_is_upload = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|route| crate::pages::UPLOAD_ROUTES.contains(&route.as_str()));

    let handled = async {
        match crate::policy::admit(&state, request).await {
            Ok(request) => next.run(request).await,
            Err(refusal) => refusal,
        }
    };
    // A recording upload may take minutes on a slow connection, so it gets its own limit.
    let timeout = if request_is_upload {
        state.config.upload_timeout
    } else {
        state.config.request_timeout
    };
    let mut response = match tokio::time::timeout(timeout, handled).await {
        Ok(response) => response,
        Err(_) => WebError::TimedOut.into_response(),
    };
    if let Some(set_cookie) = new_form_seed {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie);
    }
    response
}

/// Logs the end of a request with its status and latency.
pub fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::warn!(status, latency_ms, "response");
    } else if response.status().is_client_error() {
        tracing::info!(status, latency_ms, "response");
    } else {
        tracing::debug!(status, latency_ms, "response");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host() {
        let host = HeaderValue::from_static("127.0.0.1:8080");
        assert!(origin_matches_host(
            &HeaderValue::from_static("http://127.0.0.1:8080"),
            &host
        ));
        assert!(origin_matches_host(
            &HeaderValue::from_static("https://127.0.0.1:8080"),
            &host
        ));
        assert!(!origin_matches_host(
            &HeaderValue::from_static("http://evil.example"),
            &host
        ));
        assert!(!origin_matches_host(
            &HeaderValue::from_static("null"),
            &host
        ));
    }
}
