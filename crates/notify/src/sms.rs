//! Text messages through an HTTP provider, in the request format of Twilio's Messages API
//! (which several other providers accept): a form POST to
//! `{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json` with `To`, `From`, `Body` and
//! `StatusCallback`, HTTP Basic authentication with the account id and token, and a JSON
//! answer whose `sid` is the message id.
//!
//! Every attempt of one delivery carries the same `Idempotency-Key` header, so a provider that
//! honours it sends a repeated request once.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use stillpoint_app::notify::{OutgoingSms, SendError, SmsSender};

/// Where and how to send text messages.
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

/// Sends text messages through a Twilio-compatible HTTP API.
#[derive(Clone)]
pub struct HttpSmsSender {
    client: reqwest::Client,
    settings: SmsSettings,
}

impl std::fmt::Debug for HttpSmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSmsSender")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The provider's answer, success or error.
#[derive(Debug, Deserialize)]
struct ProviderAnswer {
    sid: Option<String>,
    code: Option<i64>,
    message: Option<String>,
}

impl HttpSmsSender {
    pub fn new(settings: SmsSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|error| format!("sms: cannot set up the HTTP client: {error}"))?;
        Ok(Self { client, settings })
    }

    fn endpoint(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.account_sid
        )
    }
}

#[async_trait]
impl SmsSender for HttpSmsSender {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        let mut form = vec![
            ("To", sms.to.as_str().to_owned()),
            ("From", self.settings.from.clone()),
            ("Body", sms.body.clone()),
        ];
        if let Some(callback) = &sms.status_callback {
            form.push(("StatusCallback", callback.clone()));
        }
        let response = self
            .client
            .post(self.endpoint())
            .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
            .header("Idempotency-Key", &sms.idempotency_key)
            .form(&form)
            .send()
            .await
            .map_err(|error| SendError {
                message: if error.is_timeout() {
                    "the SMS provider did not answer in time".to_owned()
                } else {
                    format!("cannot reach the SMS provider: {error}")
                },
                retryable: true,
            })?;
        let status = response.status();
        let answer: Option<ProviderAnswer> = response.json().await.ok();
        if status.is_success() {
            return answer
                .and_then(|answer| answer.sid)
                .ok_or_else(|| SendError {
                    message: format!("the SMS provider answered {status} without a message id"),
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
            message: format!("the SMS provider answered {status}{detail}"),
            retryable,
        })
    }
}
