//! Translation catalogues and language negotiation, shared with the messages sent by e-mail
//! and SMS; see [`stillpoint_i18n`].

pub use stillpoint_i18n::*;
