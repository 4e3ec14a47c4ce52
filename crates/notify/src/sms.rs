//! Text messages through an HTTP provider, in the request format of Twilio's Messages API
//! (which several other providers accept): a form POST to
//! `{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json` with `To`, `From`, `Body` and
//! `StatusCallback`, HTTP Basic authentication with the account id and token, and a JSON
//! response whose `sid` is the message id.
//!
//! Every attempt of one delivery carries the same `Idempotency-Key` header, so a provider that
//! honours it sends a repeated request once.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use stillpoint_app::notify::{OutgoingSms, SendError, SmsSender};

/// The SMS provider's address, credentials and sender.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsSettings {
    /// The provider's API address, such as `https://sms-provider.example`, without a trailing
    /// slash.
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The sending number in E.164 form, or a messaging service id.
    pub from: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettings")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Waits at most this long for the provider, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Sends text messages through a Twilio-compatible HTTP API.
#[derive(Clone)]
pub struct HttpSmsSender {
    client: HttpsClient,
    settings: SmsSettings,
}

impl std::fmt::Debug for HttpSmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSmsSender")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The provider's response body, on success or error.
#[derive(Debug, Deserialize)]
struct ProviderAnswer {
    sid: Option<String>,
    code: Option<i64>,
    message: Option<String>,
}

impl HttpSmsSender {
    /// Builds the sender. TLS uses the ring provider and the Mozilla root certificates built
    /// into the binary, so it works in containers without a system certificate store.
    pub fn new(settings: SmsSettings) -> Result<Self, String> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .map_err(|error| format!("sms: cannot set up TLS: {error}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Self { client, settings })
    }

    fn endpoint(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.account_sid
        )
    }

    fn request(
        &self,
        sms: &OutgoingSms,
    ) -> Result<hyper::Request<http_body_util::Full<bytes::Bytes>>, SendError> {
        use base64::Engine as _;

        let mut form = vec![
            ("To", sms.to.as_str().to_owned()),
            ("From", self.settings.from.clone()),
            ("Body", sms.body.clone()),
        ];
        if let Some(callback) = &sms.status_callback {
            form.push(("StatusCallback", callback.clone()));
        }
        let body = serde_urlencoded::to_string(&form).map_err(|error| SendError {
            message: format!("cannot encode the text message: {error}"),
            retryable: false,
        })?;
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.settings.account_sid, self.settings.auth_token
        ));
        hyper::Request::post(self.endpoint())
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("idempotency-key", &sms.idempotency_key)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|error| SendError {
                message: format!("sms.base_url does not make a valid request: {error}"),
                retryable: false,
            })
    }
}

#[async_trait]
impl SmsSender for HttpSmsSender {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        use http_body_util::BodyExt as _;

        let request = self.request(sms)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| SendError {
                    message: format!("cannot reach the SMS provider: {error}"),
                    retryable: true,
                })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| SendError {
                    message: format!("the SMS provider's response broke off: {error}"),
                    retryable: true,
                })?
                .to_bytes();
            Ok::<_, SendError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.settings.timeout, exchange)
            .await
            .map_err(|_| SendError {
                message: "the SMS provider timed out".to_owned(),
                retryable: true,
            })??;
        let answer: Option<ProviderAnswer> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return answer
                .and_then(|answer| answer.sid)
                .ok_or_else(|| SendError {
                    message: format!("the SMS provider responded {status} without a message id"),
                    retryable: true,
                });
        }
        let detail = answer
            .map(|answer| {
                format!(
                    " (code {}: {})",
                    answer.code.unwrap_or_default(),
                    answer.message.unwrap_or_default()
                )
            })
            .unwrap_or_default();
        // A refused request (4xx other than 408 and 429) will be refused again; a busy or
        // failing provider may take it later.
        let retryable =
            status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
        Err(SendError {
            message: format!("the SMS provider responded {status}{detail}"),
            retryable,
        })
    }
}
