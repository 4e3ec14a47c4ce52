//! The person making a request, and the language of the response.
//!
//! The session token comes from the session cookie (browsers) or an `Authorization: Bearer`
//! header (API clients). The language is the signed-in account's preference, else the language
//! cookie set by the switcher, else the best match for `Accept-Language`, else English.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header;
use axum::http::request::Parts;
use stillpoint_app::audit::AuditContext;
use stillpoint_app::{AppError, auth};
use stillpoint_domain::{Account, Language};

use crate::AppState;
use crate::error::WebError;
use crate::i18n::{FALLBACK_LANGUAGE, Translator};

/// Name of the session cookie on plain HTTP (development and the demo).
pub const SESSION_COOKIE: &str = "stillpoint_session";
/// Name of the session cookie when cookies are `Secure`. Browsers accept a `__Host-` cookie only
/// from a secure origin, without a `Domain` and with `Path=/`, so a network attacker cannot plant
/// one over plain HTTP.
pub const SECURE_SESSION_COOKIE: &str = "__Host-stillpoint_session";

/// The session cookie's name under the given cookie policy.
#[must_use]
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}
/// Name of the cookie that remembers a signed-out visitor's language choice.
pub const LANGUAGE_COOKIE: &str = "stillpoint_lang";

/// The raw request data the viewer is resolved from; cheap to copy before a handler runs.
#[derive(Debug, Clone, Default)]
pub struct ViewerInputs {
    session_token: Option<String>,
    language_cookie: Option<String>,
    accept_language: Option<String>,
    source_address: Option<String>,
    form_seed: Option<String>,
}

/// The resolved visitor.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The signed-in account, once every sign-in step is passed.
    pub account: Option<Account>,
    /// The account of a session that passed the password but still needs its one-time code.
    pub awaiting_second_factor: Option<Account>,
    pub session_token: Option<String>,
    /// The tag of an offered language.
    pub language: String,
    /// The client's IP address as this server saw it, for the audit trail.
    pub source_address: Option<String>,
    /// The value this browser's forms must carry in their hidden `csrf_token` field.
    pub form_token: String,
    /// The browser's form seed cookie, for computing the form token of a new session.
    pub form_seed: Option<String>,
    /// Open safety alerts the account reviews, for the navigation.
    pub open_alerts: usize,
    /// Unread in-app notifications of a staff account, for the navigation.
    pub unread_notifications: usize,
}

/// Counts an account's unread notifications; a failure shows no count and is logged.
async fn unread_notifications(state: &AppState, account: Option<&Account>) -> usize {
    let Some(account) = account else {
        return 0;
    };
    match state.store.count_unread_notifications(account.id).await {
        Ok(count) => usize::try_from(count).unwrap_or(0),
        Err(error) => {
            tracing::error!(account_id = %account.id, error = %error, "unread notifications could not be counted");
            0
        }
    }
}

/// Counts the open alerts an account reviews; a failure shows no count rather than failing the
/// page, and is logged.
async fn open_alerts(state: &AppState, account: Option<&Account>) -> usize {
    let Some(account) = account else {
        return 0;
    };
    match stillpoint_app::safety::open_count(state.store.as_ref(), account).await {
        Ok(count) => count,
        Err(error) => {
            tracing::error!(account_id = %account.id, error = %error, "open safety alerts could not be counted");
            0
        }
    }
}

impl Viewer {
    #[must_use]
    pub fn translator(&self, state: &AppState) -> Translator {
        Translator::new(state.catalogs.clone(), self.language.clone())
    }

    /// Who acts and from where, for audit events.
    #[must_use]
    pub fn audit_context(&self) -> AuditContext {
        match &self.account {
            Some(account) => AuditContext::for_account(account, self.source_address.clone()),
            None => AuditContext::anonymous(self.source_address.clone()),
        }
    }
}

/// Returns the client's IP address. A connection from a trusted proxy is attributed to the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy, because entries
/// further left can be forged by the client. Any other connection is attributed to its peer.
#[must_use]
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpAddr],
) -> Option<String> {
    let peer = peer?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .filter_map(|entry| entry.parse::<IpAddr>().ok())
        .find(|address| !trusted_proxies.contains(address))
        .or(Some(peer))
        .map(|address| address.to_string())
}

/// Reads one cookie from the `Cookie` headers.
#[must_use]
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

impl ViewerInputs {
    /// The headers a viewer (and an error page) is resolved from, copied out of a request.
    #[must_use]
    pub fn relevant_headers(headers: &HeaderMap) -> HeaderMap {
        let mut kept = HeaderMap::new();
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::ACCEPT_LANGUAGE,
        ] {
            for value in headers.get_all(&name) {
                kept.append(name.clone(), value.clone());
            }
        }
        if let Some(value) = headers.get("x-request-id") {
            kept.insert("x-request-id", value.clone());
        }
        kept
    }

    #[must_use]
    pub fn from_headers(headers: &HeaderMap, secure_cookies: bool) -> Self {
        let bearer = crate::middleware::has_bearer_token(headers)
            .then(|| {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok())
            })
            .flatten()
            .and_then(|value| value.get(7..))
            .map(|token| token.trim().to_owned());
        Self {
            session_token: bearer
                .or_else(|| cookie(headers, session_cookie_name(secure_cookies)))
                .filter(|t| !t.is_empty()),
            language_cookie: cookie(headers, LANGUAGE_COOKIE),
            accept_language: headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            source_address: None,
            form_seed: cookie(headers, crate::csrf::seed_cookie_name(secure_cookies)),
        }
    }

    /// Returns the session token the request carries, whether or not the session is still open.
    #[must_use]
    pub fn session_token(&self) -> Option<String> {
        self.session_token.clone()
    }

    /// Computes the form token for these inputs (see [`crate::csrf`]).
    fn form_token(&self) -> String {
        crate::csrf::form_token(
            self.form_seed.as_deref().unwrap_or_default(),
            self.session_token.as_deref(),
        )
    }

    /// Adds the client address, from the connection or, behind a trusted proxy, from the
    /// proxy's `X-Forwarded-For` header.
    #[must_use]
    pub fn with_source(self, parts: &Parts, trusted_proxies: &[IpAddr]) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        self.with_source_address(client_address(peer, &parts.headers, trusted_proxies))
    }

    /// Sets the client address.
    #[must_use]
    pub fn with_source_address(mut self, address: Option<String>) -> Self {
        self.source_address = address;
        self
    }

    /// The same inputs without the session, for responses while the database cannot be reached.
    #[must_use]
    pub fn without_session(mut self) -> Self {
        self.session_token = None;
        self
    }

    /// Resolves the session (an ended or unknown session counts as signed out) and the language.
    pub async fn resolve(self, state: &AppState) -> Viewer {
        let resolved = match self.resolve_account(state).await {
            Ok(resolved) => resolved,
            Err(error) => {
                tracing::warn!(error = %error, "session could not be resolved; treating the request as signed out");
                None
            }
        };
        let (account, awaiting_second_factor) = match resolved {
            Some(session) if session.awaiting_second_factor => (None, Some(session.account)),
            Some(session) => (Some(session.account), None),
            None => (None, None),
        };
        let language =
            self.language_for(state, account.as_ref().or(awaiting_second_factor.as_ref()));
        let open_alerts = open_alerts(state, account.as_ref()).await;
        let unread_notifications = unread_notifications(state, account.as_ref()).await;
        Viewer {
            unread_notifications,
            form_token: self.form_token(),
            form_seed: self.form_seed.clone(),
            open_alerts,
            awaiting_second_factor,
            account,
            session_token: self.session_token,
            language,
            source_address: self.source_address,
        }
    }

    async fn resolve_account(
        &self,
        state: &AppState,
    ) -> Result<Option<auth::ResolvedSession>, AppError> {
        let Some(token) = &self.session_token else {
            return Ok(None);
        };
        match auth::resolve_session(
            state.store.as_ref(),
            state.clock.as_ref(),
            &state.config.session_policy,
            token,
        )
        .await
        {
            Ok(account) => Ok(Some(account)),
            Err(AppError::SessionEnded) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn language_for(&self, state: &AppState, account: Option<&Account>) -> String {
        let catalogs = &state.catalogs;
        account
            .and_then(|account| catalogs.closest(&account.language))
            .or_else(|| {
                self.language_cookie
                    .as_deref()
                    .and_then(|tag| Language::parse(tag).ok())
                    .and_then(|language| catalogs.closest(&language))
            })
            .or_else(|| {
                self.accept_language
                    .as_deref()
                    .and_then(|header| catalogs.negotiate(header))
            })
            .unwrap_or_else(|| FALLBACK_LANGUAGE.to_owned())
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The route policy middleware has resolved the viewer already on protected routes.
        if let Some(viewer) = parts.extensions.get::<Viewer>() {
            return Ok(viewer.clone());
        }
        Ok(
            ViewerInputs::from_headers(&parts.headers, state.config.secure_cookies)
                .with_source(parts, &state.config.trusted_proxies)
                .resolve(state)
                .await,
        )
    }
}

/// A viewer who must be signed in; other requests are rejected with 401.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: Account,
    pub viewer: Viewer,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(viewer) = parts.extensions.get::<Viewer>()
            && let Some(account) = &viewer.account
        {
            return Ok(Self {
                account: account.clone(),
                viewer: viewer.clone(),
            });
        }
        let inputs = ViewerInputs::from_headers(&parts.headers, state.config.secure_cookies)
            .with_source(parts, &state.config.trusted_proxies);
        let resolved = inputs
            .resolve_account(state)
            .await?
            .ok_or(WebError::SignInRequired)?;
        if resolved.awaiting_second_factor {
            return Err(WebError::SecondFactorRequired);
        }
        let account = resolved.account;
        let language = inputs.language_for(state, Some(&account));
        let open_alerts = open_alerts(state, Some(&account)).await;
        let unread_notifications = unread_notifications(state, Some(&account)).await;
        Ok(Self {
            viewer: Viewer {
                unread_notifications,
                open_alerts,
                form_token: inputs.form_token(),
                form_seed: inputs.form_seed.clone(),
                awaiting_second_factor: None,
                account: Some(account.clone()),
                session_token: inputs.session_token,
                language,
                source_address: inputs.source_address,
            },
            account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("header"));
        headers
    }

    #[test]
    fn client_address_trusts_only_listed_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let client: IpAddr = "127.0.0.9".parse().expect("ip");
        let trusted = [proxy];
        // A direct client cannot name another address.
        assert_eq!(
            client_address(Some(client), &forwarded("127.0.0.5"), &trusted).as_deref(),
            Some("127.0.0.9")
        );
        // Behind the proxy, the right-most untrusted entry is the client; the left one is forged.
        assert_eq!(
            client_address(Some(proxy), &forwarded("127.0.0.5, 127.0.0.9"), &trusted).as_deref(),
            Some("127.0.0.9")
        );
        // A chain of trusted proxies is skipped.
        assert_eq!(
            client_address(Some(proxy), &forwarded("127.0.0.9, 127.0.0.1"), &trusted).as_deref(),
            Some("127.0.0.9")
        );
        // Without the header the proxy itself is all that is known.
        assert_eq!(
            client_address(Some(proxy), &HeaderMap::new(), &trusted).as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(client_address(None, &HeaderMap::new(), &trusted), None);
    }
}
