//! Stillpoint's HTTP layer: server-rendered pages, the JSON API with its OpenAPI document,
//! health probes and metrics, static assets and translations.
//!
//! Handlers contain no SQL and no business rules: they extract the request, call one use case of
//! the app crate and render the result. Errors are mapped to HTTP once, in [`error`].

pub mod api;
pub mod assets;
pub mod audit_view;
pub mod consent_files;
pub mod csrf;
pub mod curriculum_files;
pub mod error;
pub mod i18n;
pub mod icalendar;
pub mod live;
pub mod measure_files;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod policy;
pub mod recording_files;
pub mod viewer;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use stillpoint_app::auth::SessionPolicy;
use stillpoint_app::secrets::SecretSealer;
use stillpoint_app::{Clock, Store};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::assets::Assets;
use crate::error::WebError;
use crate::i18n::Catalogs;
use crate::metrics::Metrics;
use crate::pages::DeclaredRoutes as _;
use stillpoint_domain::practice::tailoring::TailoringRules;

/// Settings the web layer needs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The clinic's name as shown on the start page.
    pub clinic_name: String,
    /// Mark cookies `Secure` (when the site is served over HTTPS, directly or by a proxy).
    pub secure_cookies: bool,
    /// Send `Strict-Transport-Security` (when Stillpoint itself terminates TLS).
    pub hsts: bool,
    pub session_policy: SessionPolicy,
    /// Time after which a request gets 408 Request Timeout.
    pub request_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted recording upload to the practice library, in bytes.
    pub max_upload_bytes: usize,
    /// Time after which a recording upload gets 408; longer than `request_timeout`, because a
    /// 100 MB file takes minutes on a slow connection.
    pub upload_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` header names the real client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The key that seals secrets stored in the database, such as TOTP secrets.
    pub secrets: SecretSealer,
    /// The address people reach this server at, such as `https://mbsr.clinic.example`, for the
    /// links that invitations and password resets hand out.
    pub public_url: String,
    /// Show demo aids, such as the current one-time code on the verification page. Only the
    /// `demo` command turns this on.
    pub demo_hints: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            clinic_name: "Stillpoint".to_owned(),
            secure_cookies: false,
            hsts: false,
            session_policy: SessionPolicy::default(),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_upload_bytes: 100 * 1_000_000,
            upload_timeout: Duration::from_mins(15),
            trusted_proxies: Vec::new(),
            // A key that lives as long as the process; the server loads a persistent one.
            secrets: SecretSealer::new(&random_key()),
            demo_hints: false,
            public_url: "http://127.0.0.1:8080".to_owned(),
        }
    }
}

/// Everything a handler can reach. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub catalogs: Arc<Catalogs>,
    pub assets: Arc<Assets>,
    pub consents: Arc<stillpoint_app::consent::ConsentLibrary>,
    pub measures: Arc<stillpoint_app::measures::MeasureLibrary>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<WebConfig>,
    /// The notification channels, set once the server built them; the SMS status callback
    /// needs them to fall back to another channel.
    pub notifier: Arc<std::sync::OnceLock<Arc<stillpoint_app::notify::Notifier>>>,
    /// The tailoring and check-in rules for home practice.
    pub practice_rules: Arc<TailoringRules>,
    /// Live session rooms and their settings.
    pub live: Arc<live::LiveState>,
}

impl AppState {
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        catalogs: Catalogs,
        config: WebConfig,
    ) -> Self {
        Self {
            store,
            clock,
            catalogs: Arc::new(catalogs),
            assets: Arc::new(Assets::load()),
            // The bundled documents are checked by a unit test of `consent_files`; a clinic's
            // own folder is loaded by the server with `with_consents`.
            consents: Arc::new(consent_files::load(None).unwrap_or_else(|error| {
                tracing::error!(error = %error, "bundled consent documents are invalid");
                stillpoint_app::consent::ConsentLibrary::default()
            })),
            // The bundled instruments and plans are checked by a unit test of `measure_files`.
            measures: Arc::new(measure_files::load().unwrap_or_else(|error| {
                tracing::error!(error = %error, "bundled instruments or measurement plans are invalid");
                stillpoint_app::measures::MeasureLibrary::default()
            })),
            metrics: Arc::new(Metrics::default()),
            config: Arc::new(config),
            notifier: Arc::default(),
            // The bundled rules are checked by a unit test of the domain crate.
            practice_rules: Arc::new(toml::from_str(BUNDLED_PRACTICE_RULES).unwrap_or_else(|error| {
                tracing::error!(error = %error, "bundled practice rules are invalid");
                TailoringRules::default()
            })),
            live: Arc::new(live::LiveState::default()),
        }
    }
}

/// The practice rules shipped in `content/practice/tailoring.toml`.
pub const BUNDLED_PRACTICE_RULES: &str = include_str!("../../../content/practice/tailoring.toml");

/// Collects what the one-time code use cases need from the state.
#[must_use]
pub fn code_check(state: &AppState) -> stillpoint_app::mfa::CodeCheck<'_> {
    stillpoint_app::mfa::CodeCheck {
        store: state.store.as_ref(),
        sealer: &state.config.secrets,
        clock: state.clock.as_ref(),
        policy: &state.config.session_policy,
    }
}

impl AppState {
    /// Replaces the tailoring and check-in rules, for a clinic's own rules file.
    #[must_use]
    pub fn with_practice_rules(mut self, rules: TailoringRules) -> Self {
        self.practice_rules = Arc::new(rules);
        self
    }

    /// Replaces the live session settings, with the server's embedded SFU.
    #[must_use]
    pub fn with_live(mut self, live: live::LiveState) -> Self {
        self.live = Arc::new(live);
        self
    }

    /// Replaces the consent documents, for a clinic's own consent folder.
    #[must_use]
    pub fn with_consents(mut self, library: stillpoint_app::consent::ConsentLibrary) -> Self {
        self.consents = Arc::new(library);
        self
    }
}

/// The OpenAPI document of every API route.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().into_openapi()
}

/// Builds the whole application: pages, API, probes, metrics and assets behind the middleware.
pub fn router(state: AppState) -> Router {
    let (api_routes, openapi) = api::router().split_for_parts();
    let openapi_json = Arc::new(openapi.to_pretty_json().unwrap_or_else(|error| {
        tracing::error!(error = %error, "OpenAPI document could not be serialised");
        "{}".to_owned()
    }));

    // Only the library upload takes large bodies; every other route keeps the small limit.
    let upload_limit = state.config.max_upload_bytes.saturating_add(64 * 1024);
    let uploads = pages::upload_router().layer(axum::extract::DefaultBodyLimit::max(upload_limit));
    Router::new()
        .merge(pages::router())
        .merge(api_routes)
        .declared(
            "/api/openapi.json",
            get(move || {
                let document = openapi_json.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        document.to_string(),
                    )
                }
            }),
        )
        .declared("/metrics", get(metrics::metrics_endpoint))
        .declared("/assets/{file}", get(assets::serve_asset))
        .fallback(|| async { WebError::NotFound })
        .layer(RequestBodyLimitLayer::new(state.config.max_body_bytes))
        .merge(uploads)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::guard_route,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(
                    middleware::drop_invalid_request_id,
                ))
                .layer(SetRequestIdLayer::x_request_id(
                    middleware::SequentialRequestId::new(),
                ))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(middleware::request_span)
                        .on_request(())
                        .on_response(middleware::log_response)
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::finish_response,
                ))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(axum::middleware::from_fn(middleware::reject_cross_origin)),
        )
        .with_state(state)
}

/// Turns a handler panic into a 500 error. The panic hook of the binary logs where it happened;
/// the message is dropped because it may contain patient data.
fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    WebError::Internal("a request handler panicked".to_owned()).into_response()
}

fn random_key() -> [u8; 32] {
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source failed");
    key
}
