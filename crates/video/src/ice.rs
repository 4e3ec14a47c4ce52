//! The ICE servers (STUN and TURN) browsers use to reach the video server from behind NAT.
//!
//! TURN credentials follow the "REST API" scheme that coturn's `use-auth-secret` option reads:
//! the user name is the expiry time in Unix seconds, a colon and an id, and the password is the
//! Base64 HMAC-SHA1 of that user name under the secret the TURN server shares with Stillpoint.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

/// One entry of `RTCPeerConnection`'s `iceServers`, as the browser reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Makes a TURN user name and password valid until `expires_unix_seconds`.
#[must_use]
pub fn turn_credentials(secret: &str, expires_unix_seconds: i64, id: &str) -> (String, String) {
    let username = format!("{expires_unix_seconds}:{id}");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_password_is_hmac_sha1_of_username() {
        // Computed independently with Python: base64(hmac.new(b"north-secret",
        // b"1765000000:room-7", hashlib.sha1).digest()).
        let (username, password) = turn_credentials("north-secret", 1_765_000_000, "room-7");
        assert_eq!(username, "1765000000:room-7");
        assert_eq!(password, EXPECTED_PASSWORD);
    }

    const EXPECTED_PASSWORD: &str = "TW9GrsR4sQHUj+fqVS0XDATLUIs=";
}
