//! E-mail over SMTP with lettre. The connection uses STARTTLS, TLS from the first byte, or
//! plain SMTP for a relay on the same host only. Messages are multipart plain text and HTML,
//! keep one Message-ID over every attempt of a delivery, and carry the one-click unsubscribe
//! headers of RFC 8058.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use std::sync::Mutex;

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use stillpoint_app::notify::{Mailer, OutgoingEmail, SendError};

/// The protection of the connection to the SMTP server.
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

/// The SMTP server's address, security, credentials and sender.
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
    /// PEM certificates of a certificate authority to trust besides the built-in Mozilla
    /// roots, for a mail server whose certificate a clinic's own authority issued.
    pub extra_roots_pem: Option<String>,
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
    #[error("smtp.ca_file: {0}; give a file of PEM certificates (-----BEGIN CERTIFICATE-----)")]
    Roots(String),
}

/// Sends e-mail through one SMTP server, keeping a few connections open between messages.
///
/// It opens its own connections instead of using lettre's `AsyncSmtpTransport`, to set
/// `TCP_NODELAY` on them. lettre writes a message's closing `<CRLF>.<CRLF>` as a write of its
/// own, which Nagle's algorithm holds back until the server acknowledges the message body. A
/// server that delays its acknowledgements (Linux does, by up to 40 ms) then stalls every send.
pub struct SmtpMailer {
    settings: SmtpSettings,
    from: Mailbox,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// The extra trusted authorities, as DER, for TLS from the first byte.
    extra_roots: Vec<Vec<u8>>,
    /// Connections that sent a message and may send the next one.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .finish_non_exhaustive()
    }
}

/// Open connections kept between messages. A worker sends one message at a time, so a few
/// cover the workers of one server.
const MAX_IDLE_CONNECTIONS: usize = 8;

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpSetupError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| SmtpSetupError::From(settings.from.clone()))?;
        let extra_roots = match &settings.extra_roots_pem {
            Some(pem) => crate::tls::pem_certificates(pem).map_err(SmtpSetupError::Roots)?,
            None => Vec::new(),
        };
        let mailer_roots = extra_roots.clone();
        if settings.security != SmtpSecurity::None {
            // Checked now so a bad host name or certificate is reported at start, not at the
            // first send.
            starttls_parameters(&settings.host, settings.extra_roots_pem.as_deref()).map_err(
                |error| SmtpSetupError::Tls {
                    host: settings.host.clone(),
                    detail: error.to_string(),
                },
            )?;
        }
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            _ => None,
        };
        Ok(Self {
            settings: settings.clone(),
            from,
            hello: ClientId::default(),
            credentials,
            extra_roots: mailer_roots,
            idle: Mutex::new(Vec::new()),
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

    /// Takes an idle connection that still replies to NOOP in time, or opens a new one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(mut connection) = idle else {
                break;
            };
            let alive = tokio::time::timeout(self.settings.timeout, connection.test_connected());
            if alive.await.unwrap_or(false) {
                return Ok(connection);
            }
            // Dropping the connection closes the socket without waiting for a server that
            // may not reply.
        }
        tokio::time::timeout(self.settings.timeout, self.open())
            .await
            .map_err(|_| unreachable_server("connecting timed out"))?
    }

    /// Connects, greets the server, secures the connection and signs in, as the settings
    /// require. Every failure here is retried, even a 5xx reply: it concerns the server or
    /// the settings (a refused sign-in, no STARTTLS), not this message.
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let address = (self.settings.host.as_str(), self.settings.port);
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|error| unreachable_server(&error.to_string()))?;
        tcp.set_nodelay(true)
            .map_err(|error| unreachable_server(&error.to_string()))?;
        let mut connection = match self.settings.security {
            SmtpSecurity::Tls => {
                let stream = crate::tls::connect(&self.settings.host, tcp, &self.extra_roots)
                    .await
                    .map_err(|error| unreachable_server(&format!("TLS failed: {error}")))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                    .await
                    .map_err(|error| setup_failure(&error))?
            }
            SmtpSecurity::StartTls => {
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                        .await
                        .map_err(|error| setup_failure(&error))?;
                // Without STARTTLS nothing is sent, so a downgrade cannot expose the password
                // or the message.
                let parameters = starttls_parameters(
                    &self.settings.host,
                    self.settings.extra_roots_pem.as_deref(),
                )
                .map_err(|error| setup_failure(&error))?;
                connection
                    .starttls(parameters, &self.hello)
                    .await
                    .map_err(|error| setup_failure(&error))?;
                connection
            }
            SmtpSecurity::None => {
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(|error| setup_failure(&error))?
            }
        };
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|error| setup_failure(&error))?;
        }
        Ok(connection)
    }
}

/// Builds the TLS parameters of STARTTLS: the built-in roots, and the clinic's authority when
/// it gave one.
fn starttls_parameters(
    host: &str,
    extra_roots_pem: Option<&str>,
) -> Result<TlsParameters, lettre::transport::smtp::Error> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = extra_roots_pem {
        for block in crate::tls::pem_blocks(pem) {
            builder = builder.add_root_certificate(
                lettre::transport::smtp::client::Certificate::from_pem(block.as_bytes())?,
            );
        }
    }
    builder.build_rustls()
}

fn setup_failure(error: &lettre::transport::smtp::Error) -> SendError {
    SendError {
        retryable: true,
        ..classify(error)
    }
}

fn unreachable_server(detail: &str) -> SendError {
    SendError {
        message: format!("cannot reach the SMTP server: {detail}"),
        retryable: true,
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        let message = self.message(email)?;
        let mut connection = self.connection().await?;
        let sent = tokio::time::timeout(
            self.settings.timeout,
            connection.send(message.envelope(), &message.formatted()),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < MAX_IDLE_CONNECTIONS
                {
                    idle.push(connection);
                }
                Ok(email.message_id.clone())
            }
            Ok(Err(error)) => Err(classify(&error)),
            Err(_) => {
                // The connection is dropped, not closed with QUIT, because the server stopped
                // replying.
                Err(SendError {
                    message: "the SMTP server timed out".to_owned(),
                    retryable: true,
                })
            }
        }
    }
}

/// Marks a permanent reply (5yz) to a message as not retryable, because RFC 5321 section 4.2.1
/// directs a client not to repeat that request. Replies 4yz, timeouts and connection failures are
/// retried.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(|code| code.to_string());
    let message = match &code {
        Some(code) => format!("the SMTP server responded {code}: {error}"),
        None => format!("cannot reach the SMTP server: {error}"),
    };
    SendError {
        message,
        retryable: !error.is_permanent(),
    }
}

/// Waits at most this long for the SMTP server at each step, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
