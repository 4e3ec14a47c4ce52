//! Identifiers and secrets from the operating system's random source.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// A new time-ordered UUID (version 7), so ids sort by creation time in indexes.
#[must_use]
pub fn new_uuid() -> Uuid {
    Uuid::now_v7()
}

/// A secret token of 32 random bytes, URL-safe base64 without padding (43 characters).
#[must_use]
pub fn new_token() -> String {
    let mut bytes = [0_u8; 32];
    // NOTE: the operating system's random source failing is unrecoverable for a server that
    // issues sessions; panicking here is deliberate and happens before anything is stored.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a token, hex-encoded. Only this digest is stored, so a copy of the database
/// does not contain usable session tokens.
#[must_use]
pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// A random number in `0.0..1.0`, for spreading retries (jitter); not for secrets.
#[must_use]
pub fn unit_interval() -> f64 {
    let mut bytes = [0_u8; 4];
    // A failed random source only makes the jitter zero, which is still a valid delay.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_url_safe() {
        let first = new_token();
        let second = new_token();
        assert_ne!(first, second);
        assert_eq!(first.len(), 43);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn token_digest_is_sha256_hex() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
