//! LiveKit access tokens and LiveKit's server API.
//!
//! Tokens are HS256 JSON Web Tokens signed with the API secret, whose `video` claim grants joining
//! one room. The claim names follow LiveKit's token format (`roomJoin`, `room`, `canPublish`,
//! `canPublishSources`, `canSubscribe`, `canPublishData`, `roomAdmin`, `roomCreate`), as
//! LiveKit's server SDKs read it.
//!
//! [`LiveKitRooms`] calls LiveKit's `RoomService` over Twirp, so that the LiveKit server itself
//! enforces the facilitators' controls. Each call is an HTTP POST of a JSON request to
//! `/twirp/livekit.RoomService/<Method>`, authorised by a token with `roomAdmin`. The calls
//! create and delete rooms, mute published microphone tracks, change which sources a participant
//! may publish, and remove participants.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use stillpoint_app::live::{Enforced, ManagedRooms, MediaServerError};
use stillpoint_domain::live::media::{MediaOrder, media_room_name};

/// How long a token lets its holder connect. The browser connects right after admission, and
/// LiveKit refreshes the token of a connected participant itself, so a short lifetime limits
/// what a removed or moved participant could do with a copied token.
// NOTE: a connected participant also keeps the fresh tokens LiveKit's server sends it (valid for
// ten minutes in livekit-server's `roommanager.go`), so someone removed from a room, or moved to a
// private room, could join the old room again with one for up to ten minutes.
pub const TOKEN_LIFETIME_SECONDS: i64 = 2 * 60;

/// How long a token for one server API request is valid.
const SERVER_TOKEN_SECONDS: i64 = 60;

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
    /// False while a facilitator has stopped the participant's video: the token then allows
    /// publishing the microphone only.
    pub camera_allowed: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_excessive_bools)] // The grant's fields as LiveKit names them.
struct VideoClaim<'a> {
    room: &'a str,
    room_join: bool,
    can_publish: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_publish_sources: Option<&'static [&'static str]>,
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

/// The claims of a token for one server API request.
#[derive(Serialize)]
struct ServerClaims<'a> {
    iss: &'a str,
    nbf: i64,
    exp: i64,
    video: ServerGrant<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerGrant<'a> {
    room: &'a str,
    room_admin: bool,
    room_create: bool,
}

/// Signs an access token for `grant`, valid from `now_unix_seconds` for two minutes.
#[must_use]
pub fn access_token(keys: &LiveKitKeys, grant: &Grant, now_unix_seconds: i64) -> String {
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
            can_publish_sources: (!grant.camera_allowed).then_some(&["microphone"][..]),
            can_subscribe: true,
            can_publish_data: true,
            room_admin: grant.room_admin,
        },
    };
    sign(keys, &claims)
}

/// Signs the token of one server API request about `room`.
fn server_token(keys: &LiveKitKeys, room: &str, now_unix_seconds: i64) -> String {
    let claims = ServerClaims {
        iss: &keys.api_key,
        nbf: now_unix_seconds,
        exp: now_unix_seconds + SERVER_TOKEN_SECONDS,
        video: ServerGrant {
            room,
            room_admin: true,
            room_create: true,
        },
    };
    sign(keys, &claims)
}

fn sign(keys: &LiveKitKeys, claims: &impl Serialize) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(keys.api_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The limits Stillpoint gives every LiveKit room it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// Seconds an empty room stays before LiveKit closes it.
    pub empty_timeout_seconds: u32,
    /// The maximum number of participants in a room: a class of about 15 with facilitators and
    /// caregivers, with room to spare.
    pub max_participants: u32,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            empty_timeout_seconds: 10 * 60,
            max_participants: 40,
        }
    }
}

/// How long one server API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// LiveKit's `RoomService`, which enforces the facilitators' controls on the LiveKit server.
#[derive(Clone)]
pub struct LiveKitRooms {
    client: HttpsClient,
    /// The server API's `https://` (or `http://`) address, without a trailing slash.
    api_url: String,
    keys: LiveKitKeys,
    limits: RoomLimits,
}

impl std::fmt::Debug for LiveKitRooms {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LiveKitRooms")
            .field("api_url", &self.api_url)
            .field("keys", &self.keys)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A Twirp error body, such as `{"code":"not_found","msg":"participant not found"}`.
#[derive(Debug, Deserialize)]
struct TwirpError {
    code: Option<String>,
    msg: Option<String>,
}

/// The part of LiveKit's `ParticipantInfo` that muting needs.
#[derive(Debug, Default, Deserialize)]
struct ParticipantInfo {
    #[serde(default)]
    tracks: Vec<TrackInfo>,
}

/// One published track. Protobuf's JSON form leaves out fields that hold their default, so a
/// track without `type` is audio and one without `source` has an unknown source.
#[derive(Debug, Deserialize)]
struct TrackInfo {
    sid: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    source: Option<String>,
    #[serde(default)]
    muted: bool,
}

impl TrackInfo {
    fn is_microphone(&self) -> bool {
        match self.source.as_deref() {
            Some("MICROPHONE") => true,
            None | Some("UNKNOWN") => self.kind.as_deref().is_none_or(|kind| kind == "AUDIO"),
            Some(_) => false,
        }
    }
}

impl LiveKitRooms {
    /// Builds the client for the LiveKit server at `url`, the `wss://` address browsers connect
    /// to; the server API is at the same host over `https://`. TLS uses the ring provider and the
    /// Mozilla root certificates built into the binary.
    pub fn new(url: &str, keys: LiveKitKeys, limits: RoomLimits) -> Result<Self, String> {
        let api_url = api_url(url)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|error| format!("livekit: cannot set up TLS: {error}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Self {
            client,
            api_url,
            keys,
            limits,
        })
    }

    /// Calls one `RoomService` method about `room`. Returns `None` when LiveKit replies
    /// `not_found`, because the room or participant is not there, which the callers accept.
    async fn call(
        &self,
        method: &str,
        room: &str,
        request: &serde_json::Value,
    ) -> Result<Option<bytes::Bytes>, MediaServerError> {
        use http_body_util::BodyExt as _;

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            });
        let token = server_token(&self.keys, room, now);
        let body = serde_json::to_vec(request).expect("request serializes");
        let http_request = hyper::Request::post(format!(
            "{}/twirp/livekit.RoomService/{method}",
            self.api_url
        ))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|error| {
            failure(format!(
                "video.livekit_url does not make a valid request: {error}"
            ))
        })?;
        let exchange = async {
            let response = self
                .client
                .request(http_request)
                .await
                .map_err(|error| failure(format!("cannot reach LiveKit: {error}")))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| failure(format!("LiveKit's response broke off: {error}")))?
                .to_bytes();
            Ok::<_, MediaServerError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| failure(format!("LiveKit did not answer {method} within 5 s")))??;
        if status.is_success() {
            return Ok(Some(body));
        }
        let error: Option<TwirpError> = serde_json::from_slice(&body).ok();
        let code = error
            .as_ref()
            .and_then(|error| error.code.clone())
            .unwrap_or_default();
        if code == "not_found" {
            return Ok(None);
        }
        let message = error.and_then(|error| error.msg).unwrap_or_default();
        Err(failure(format!(
            "LiveKit refused {method} with {status} {code}: {message}"
        )))
    }

    async fn mute_microphone(
        &self,
        room: &str,
        identity: &str,
    ) -> Result<Enforced, MediaServerError> {
        let request = json!({ "room": room, "identity": identity });
        let Some(body) = self.call("GetParticipant", room, &request).await? else {
            return Ok(Enforced::NotInRoom);
        };
        let participant: ParticipantInfo = serde_json::from_slice(&body)
            .map_err(|error| failure(format!("LiveKit's participant is not readable: {error}")))?;
        let microphones = participant
            .tracks
            .iter()
            .filter(|track| track.is_microphone() && !track.muted);
        for track in microphones {
            let request = json!({
                "room": room,
                "identity": identity,
                "trackSid": track.sid,
                "muted": true,
            });
            self.call("MutePublishedTrack", room, &request).await?;
        }
        Ok(Enforced::Done)
    }

    /// Sets which sources the participant may publish: the microphone only, or every source as
    /// in a new token. LiveKit unpublishes a camera track that is no longer allowed.
    async fn set_camera_allowed(
        &self,
        room: &str,
        identity: &str,
        allowed: bool,
    ) -> Result<Enforced, MediaServerError> {
        // LiveKit reads an empty source list as "every source".
        let sources: &[&str] = if allowed { &[] } else { &["MICROPHONE"] };
        let request = json!({
            "room": room,
            "identity": identity,
            "permission": {
                "canSubscribe": true,
                "canPublish": true,
                "canPublishData": true,
                "canPublishSources": sources,
            },
        });
        let found = self.call("UpdateParticipant", room, &request).await?;
        Ok(found.map_or(Enforced::NotInRoom, |_| Enforced::Done))
    }
}

#[async_trait]
impl ManagedRooms for LiveKitRooms {
    async fn open_room(&self, room: &str) -> Result<(), MediaServerError> {
        let request = json!({
            "name": room,
            "emptyTimeout": self.limits.empty_timeout_seconds,
            "maxParticipants": self.limits.max_participants,
        });
        self.call("CreateRoom", room, &request).await?;
        Ok(())
    }

    async fn close_room(&self, room: &str) -> Result<(), MediaServerError> {
        self.call("DeleteRoom", room, &json!({ "room": room }))
            .await?;
        Ok(())
    }

    async fn enforce(
        &self,
        session_room: &str,
        order: &MediaOrder,
    ) -> Result<Enforced, MediaServerError> {
        let room = media_room_name(session_room, order.group());
        let identity = order.account().to_string();
        match order {
            MediaOrder::MuteMicrophone { .. } => self.mute_microphone(&room, &identity).await,
            MediaOrder::StopCamera { .. } => self.set_camera_allowed(&room, &identity, false).await,
            MediaOrder::AllowCamera { .. } => self.set_camera_allowed(&room, &identity, true).await,
            MediaOrder::Disconnect { .. } => {
                let request = json!({ "room": room, "identity": identity });
                // Someone who already left is where the order wants them.
                self.call("RemoveParticipant", &room, &request).await?;
                Ok(Enforced::Done)
            }
        }
    }
}

fn failure(message: String) -> MediaServerError {
    MediaServerError { message }
}

/// Returns the server API address for a LiveKit address browsers connect to: `wss://` becomes
/// `https://` and `ws://` becomes `http://`, as LiveKit's server SDKs do.
fn api_url(url: &str) -> Result<String, String> {
    let converted = if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if url.starts_with("https://") || url.starts_with("http://") {
        url.to_owned()
    } else {
        return Err(format!(
            "video.livekit_url must start with wss:// (or ws:// for a local test server), not {url:?}"
        ));
    };
    Ok(converted.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_api_address_follows_the_browser_address() {
        assert_eq!(
            api_url("wss://livekit.clinic.example/").as_deref(),
            Ok("https://livekit.clinic.example")
        );
        assert_eq!(
            api_url("ws://127.0.0.1:7880").as_deref(),
            Ok("http://127.0.0.1:7880")
        );
        assert!(
            api_url("livekit.clinic.example")
                .is_err_and(|error| error.contains("video.livekit_url"))
        );
    }

    #[test]
    fn default_tracks_are_audio_without_a_source() {
        let tracks: Vec<TrackInfo> = serde_json::from_str(
            r#"[{"sid":"TR_a"},{"sid":"TR_m","source":"MICROPHONE"},{"sid":"TR_c","type":"VIDEO","source":"CAMERA"},{"sid":"TR_s","type":"AUDIO","source":"SCREEN_SHARE_AUDIO"}]"#,
        )
        .expect("tracks");

        let microphones: Vec<&str> = tracks
            .iter()
            .filter(|track| track.is_microphone())
            .map(|track| track.sid.as_str())
            .collect();

        assert_eq!(microphones, ["TR_a", "TR_m"]);
    }
}
