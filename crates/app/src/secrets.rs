//! Encryption of secrets kept in the database, such as TOTP shared secrets, so that a copy of the
//! database alone does not let anyone generate sign-in codes.
//!
//! Values are sealed with AES-256-GCM under a key kept outside the database (a file in the data
//! folder by default). Each value gets a fresh random 96-bit nonce and is bound to a context
//! string, such as the account id, as associated data, so a sealed value copied to another
//! account's row does not open.

use aes_gcm::aead::Aead as _;
use aes_gcm::aead::Payload;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

/// Prefix of the sealed format, so a later format can be recognised.
const FORMAT: &str = "v1:";
const NONCE_LENGTH: usize = 12;

/// A key file's content that is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secrets key must be 32 bytes, written as base64 (44 characters); found {found}")]
pub struct InvalidSecretsKey {
    pub found: String,
}

/// A sealed value that does not open: a wrong key, another context, or changed bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed secret could not be opened: {0}")]
pub struct UnsealError(&'static str);

/// Seals and opens secrets with one AES-256-GCM key, and computes keyed digests with a key
/// derived from it.
#[derive(Clone)]
pub struct SecretSealer {
    cipher: Aes256Gcm,
    digest_key: [u8; 32],
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer(..)")
    }
}

impl SecretSealer {
    /// Builds a sealer from a 32-byte key.
    #[must_use]
    pub fn new(key: &[u8; 32]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"stillpoint keyed digest v1\0");
        hasher.update(key);
        Self {
            cipher: Aes256Gcm::new(&(*key).into()),
            digest_key: hasher.finalize().into(),
        }
    }

    /// Computes HMAC-SHA256 of `value` for `purpose` under a key derived from the secrets key,
    /// hex-encoded. Unlike a plain hash, it cannot be reversed by trying every short value
    /// without the key, so it suits short secrets such as recovery codes.
    #[must_use]
    pub fn keyed_digest(&self, purpose: &str, value: &str) -> String {
        // HMAC (RFC 2104) accepts keys of any length, so creating it cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.digest_key)
            .expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .fold(String::with_capacity(64), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }

    /// Reads a key written by [`SecretSealer::new_key_text`] (base64, surrounding whitespace
    /// ignored).
    pub fn from_key_text(text: &str) -> Result<Self, InvalidSecretsKey> {
        let invalid = || InvalidSecretsKey {
            found: format!("{} characters", text.trim().len()),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| invalid())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| invalid())?;
        Ok(Self::new(&key))
    }

    /// Generates a random key as base64 text, for a key file.
    #[must_use]
    pub fn new_key_text() -> String {
        base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
    }

    /// Encrypts `secret`, bound to `context`.
    #[must_use]
    pub fn seal(&self, context: &str, secret: &[u8]) -> String {
        let nonce_bytes = random_bytes::<NONCE_LENGTH>();
        let payload = Payload {
            msg: secret,
            aad: context.as_bytes(),
        };
        // AES-GCM encryption fails only for messages longer than about 64 GiB (NIST SP 800-38D,
        // section 5.2.1.1), far above a sign-in secret.
        let ciphertext = self
            .cipher
            .encrypt(&nonce_bytes.into(), payload)
            .expect("a short secret always encrypts");
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{FORMAT}{}", STANDARD_NO_PAD.encode(sealed))
    }

    /// Decrypts a value sealed with the same key and `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, UnsealError> {
        let encoded = sealed
            .strip_prefix(FORMAT)
            .ok_or(UnsealError("unknown format"))?;
        let bytes = STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| UnsealError("not base64"))?;
        if bytes.len() <= NONCE_LENGTH {
            return Err(UnsealError("too short"));
        }

        let (nonce, ciphertext) = bytes.split_at(NONCE_LENGTH);
        let nonce: [u8; NONCE_LENGTH] = nonce.try_into().map_err(|_| UnsealError("too short"))?;
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        self.cipher
            .decrypt(&nonce.into(), payload)
            .map_err(|_| UnsealError("wrong key, context or content"))
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0_u8; N];
    // NOTE: without the operating system's random source no secret can be made; panicking is
    // deliberate and happens before anything is stored.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Compares two digests in time that does not depend on where they differ, so a caller
/// guessing a token learns nothing from how long a refusal takes.
#[must_use]
pub fn same_digest(expected: &str, given: &str) -> bool {
    let (expected, given) = (expected.as_bytes(), given.as_bytes());
    if expected.len() != given.len() {
        return false;
    }
    expected
        .iter()
        .zip(given)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_with_same_context() {
        let sealer = SecretSealer::from_key_text(&SecretSealer::new_key_text()).expect("key");
        let ciphertext = sealer.seal("account-1", b"shared secret");
        assert!(ciphertext.starts_with("v1:"));
        assert_eq!(
            sealer.open("account-1", &ciphertext).expect("opens"),
            b"shared secret"
        );
    }

    #[test]
    fn sealed_secret_rejects_other_context_and_key() {
        let sealer = SecretSealer::new(&[7; 32]);
        let ciphertext = sealer.seal("account-1", b"shared secret");
        assert!(sealer.open("account-2", &ciphertext).is_err());
        assert!(
            SecretSealer::new(&[8; 32])
                .open("account-1", &ciphertext)
                .is_err()
        );
    }

    #[test]
    fn changed_ciphertext_is_rejected() {
        let sealer = SecretSealer::new(&[7; 32]);
        let ciphertext = sealer.seal("account-1", b"shared secret");
        let mut bytes = ciphertext.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).expect("ascii");
        assert!(sealer.open("account-1", &changed).is_err());
    }

    #[test]
    fn seals_differ_for_same_secret() {
        let sealer = SecretSealer::new(&[7; 32]);
        assert_ne!(sealer.seal("a", b"s"), sealer.seal("a", b"s"));
    }

    #[test]
    fn keyed_digest_depends_on_key_and_purpose() {
        let sealer = SecretSealer::new(&[7; 32]);
        let digest = sealer.keyed_digest("recovery code", "abcde");
        assert_eq!(digest.len(), 64);
        assert_eq!(digest, sealer.keyed_digest("recovery code", "abcde"));
        assert_ne!(digest, sealer.keyed_digest("other", "abcde"));
        assert_ne!(
            digest,
            SecretSealer::new(&[8; 32]).keyed_digest("recovery code", "abcde")
        );
    }

    #[test]
    fn malformed_key_text_is_rejected() {
        assert!(SecretSealer::from_key_text("short").is_err());
        assert!(SecretSealer::from_key_text("not base64!").is_err());
    }
}
