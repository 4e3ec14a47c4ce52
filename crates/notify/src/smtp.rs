//! E-mail over SMTP with lettre: STARTTLS, TLS from the first byte, or (for a relay on the
//! same host only) plain SMTP; multipart plain text and HTML; a Message-ID that stays the same
//! on every attempt of one delivery; and the one-click unsubscribe headers of RFC 8058.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use stillpoint_app::notify::{Mailer, OutgoingEmail, SendError};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host, such as a local mail daemon.
    None,
}

impl SmtpSecurity {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            other => Err(format!(
                "'{other}' is not a connection security; use 'starttls', 'tls' or 'none'"
            )),
        }
    }

    #[must_use]
    pub const fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// Where and how to send e-mail.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, such as `Lakeside Clinic <mbsr@example.org>`.
    pub from: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// A problem with the SMTP settings, found at start.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error(
        "smtp.from: '{0}' is not a sender address; use a form such as 'Lakeside Clinic <mbsr@example.org>'"
    )]
    From(String),
    #[error("smtp.host: cannot set up TLS for '{host}': {detail}")]
    Tls { host: String, detail: String },
}

/// Sends e-mail through one SMTP server, keeping a small pool of connections open.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpSetupError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| SmtpSetupError::From(settings.from.clone()))?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|error| SmtpSetupError::Tls {
                host: host.to_owned(),
                detail: error.to_string(),
            })
        };
        let security = match settings.security {
            SmtpSecurity::StartTls => Tls::Required(tls(&settings.host)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls(&settings.host)?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(security)
            .timeout(Some(settings.timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            host: settings.host.clone(),
        })
    }

    fn message(&self, email: &OutgoingEmail) -> Result<Message, SendError> {
        let to: Mailbox = email.to.as_str().parse().map_err(|_| SendError {
            message: "the recipient's e-mail address cannot be used".to_owned(),
            retryable: false,
        })?;
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(format!("<{}>", email.message_id)))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|error| SendError {
                message: format!("cannot build the message: {error}"),
                retryable: false,
            })?;
        if let Some(link) = &email.list_unsubscribe {
            // RFC 8058: a mail client offering "unsubscribe" POSTs this body to the link.
            let headers = message.headers_mut();
            headers.insert_raw(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{link}>"),
            ));
            headers.insert_raw(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
        }
        Ok(message)
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let message = self.message(email)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(email.message_id.clone()),
            Err(error) => Err(classify(&error)),
        }
    }
}

/// A permanent reply (5yz) is not retried, as RFC 5321 section 4.2.1 says a client should not
/// repeat the request; replies 4yz, timeouts and connection failures are retried.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(|code| code.to_string());
    let message = match &code {
        Some(code) => format!("the SMTP server answered {code}: {error}"),
        None => format!("cannot reach the SMTP server: {error}"),
    };
    SendError {
        message,
        retryable: !error.is_permanent(),
    }
}

/// Waits at most this long for the SMTP server at each step, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
