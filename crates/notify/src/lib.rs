//! Stillpoint's message channels: e-mail over SMTP ([`smtp`]), text messages through an HTTP
//! provider ([`sms`]), and the message text in each person's language ([`compose`]). They
//! implement the app layer's `Mailer`, `SmsSender` and `Composer` ports.

pub mod compose;
pub mod sms;
pub mod smtp;
pub mod tls;

pub use compose::CatalogComposer;
pub use sms::{HttpSmsSender, SmsSettings};
pub use smtp::{SmtpMailer, SmtpSecurity, SmtpSettings};
