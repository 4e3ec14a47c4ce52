//! LiveKit access tokens: HS256 JSON Web Tokens signed with the API secret, whose `video` claim
//! grants joining one room. The claim names follow LiveKit's token format (`roomJoin`, `room`,
//! `canPublish`, `canSubscribe`, `canPublishData`, `roomAdmin`), as LiveKit's server SDKs read it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// How long a token lets its holder connect. The browser connects right after admission, and
/// LiveKit refreshes the token of a connected participant itself, so a short lifetime limits
/// what a removed participant could do with a copied token.
pub const TOKEN_LIFETIME_SECONDS: i64 = 10 * 60;

/// A clinic's LiveKit API key and secret.
#[derive(Clone)]
pub struct LiveKitKeys {
    pub api_key: String,
    pub api_secret: String,
}

impl std::fmt::Debug for LiveKitKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LiveKitKeys")
            .field("api_key", &self.api_key)
            .field("api_secret", &"[redacted]")
            .finish()
    }
}

/// The permissions a token grants in one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub room: String,
    /// The participant's identity in the room: the account id.
    pub identity: String,
    pub name: String,
    /// Facilitators administer the room: mute, remove and move participants.
    pub room_admin: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_excessive_bools)] // The grant's fields as LiveKit names them.
struct VideoClaim<'a> {
    room: &'a str,
    room_join: bool,
    can_publish: bool,
    can_subscribe: bool,
    can_publish_data: bool,
    room_admin: bool,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    name: &'a str,
    nbf: i64,
    exp: i64,
    jti: &'a str,
    video: VideoClaim<'a>,
}

/// Signs an access token for `grant`, valid from `now_unix_seconds` for ten minutes.
#[must_use]
pub fn access_token(keys: &LiveKitKeys, grant: &Grant, now_unix_seconds: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = Claims {
        iss: &keys.api_key,
        sub: &grant.identity,
        name: &grant.name,
        nbf: now_unix_seconds,
        exp: now_unix_seconds + TOKEN_LIFETIME_SECONDS,
        jti: &grant.identity,
        video: VideoClaim {
            room: &grant.room,
            room_join: true,
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            room_admin: grant.room_admin,
        },
    };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(keys.api_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}
