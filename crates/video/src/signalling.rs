//! The messages of the room's WebSocket, as JSON objects with a `type` field.

use serde::{Deserialize, Serialize};
use stillpoint_domain::AccountId;

/// The maximum size of a signalling message, in bytes; an SDP offer with audio, video and a data
/// channel is about 6 KB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A message from the browser.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The browser's first offer, sent once it is admitted.
    Offer {
        sdp: String,
    },
    /// The answer to the server's latest offer.
    Answer {
        sdp: String,
    },
    Microphone {
        on: bool,
    },
    Camera {
        on: bool,
    },
    Hand {
        raised: bool,
    },
    /// Audio-only mode: no video is sent to this browser.
    AudioOnly {
        on: bool,
    },
    Chat {
        text: String,
    },
    Admit {
        participant: AccountId,
    },
    Decline {
        participant: AccountId,
    },
    Mute {
        participant: AccountId,
    },
    MuteAll,
    StopVideo {
        participant: AccountId,
    },
    AllowVideo {
        participant: AccountId,
    },
    Remove {
        participant: AccountId,
    },
    LowerHand {
        participant: AccountId,
    },
    Lock {
        locked: bool,
    },
    Spotlight {
        participant: Option<AccountId>,
    },
    PrivateRoom {
        participant: AccountId,
        co_facilitator: AccountId,
    },
    MainRoom {
        participant: AccountId,
    },
    /// The live captioning (CART) address, or an empty string to remove it.
    Captions {
        url: String,
    },
    Leave,
}

/// A message to the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first message: who this connection is.
    Welcome {
        you: AccountId,
        role: &'static str,
        connection: u64,
    },
    /// The connection waits in the lobby.
    Lobby,
    /// The connection is in the room and may send its offer.
    Admitted,
    /// For cohorts on LiveKit: where to connect and the access token, sent on admission so the
    /// lobby cannot be bypassed.
    #[serde(rename = "livekit")]
    LiveKit {
        url: String,
        token: String,
    },
    Answer {
        sdp: String,
    },
    Offer {
        sdp: String,
    },
    /// The media connection's state: `connected` or `disconnected`.
    Media {
        state: &'static str,
    },
    Roster(Roster),
    Chat {
        from: AccountId,
        name: String,
        text: String,
    },
    /// A change that concerns this participant, such as being muted by the facilitator.
    Notice {
        code: &'static str,
    },
    /// A message the room could not act on; the connection stays open.
    Error {
        code: &'static str,
        message: String,
    },
    /// The room closed this connection; `code` says why.
    Closed {
        code: &'static str,
    },
}

/// Everyone in the room and the lobby, as each browser shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Roster {
    pub participants: Vec<RosterEntry>,
    pub locked: bool,
    pub spotlight: Option<AccountId>,
    pub captions_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(clippy::struct_excessive_bools)] // Independent switches of one participant.
pub struct RosterEntry {
    pub id: AccountId,
    pub name: String,
    pub role: &'static str,
    /// `lobby` or `room`.
    pub presence: &'static str,
    /// `main`, or `private` for a private room.
    pub group: String,
    pub microphone_on: bool,
    pub camera_on: bool,
    pub video_stopped: bool,
    pub hand_raised: bool,
}

/// Parses one text frame, with a message that names what is wrong.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "the message is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
            text.len()
        ));
    }
    serde_json::from_str(text).map_err(|error| format!("the message is not understood: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_problem() {
        assert_eq!(
            parse(r#"{"type":"microphone","on":false}"#),
            Ok(ClientMessage::Microphone { on: false })
        );
        assert_eq!(parse(r#"{"type":"mute_all"}"#), Ok(ClientMessage::MuteAll));

        let unknown = parse(r#"{"type":"shout"}"#).expect_err("unknown type");
        assert!(unknown.contains("unknown variant `shout`"), "{unknown}");
        let missing = parse(r#"{"type":"chat"}"#).expect_err("missing field");
        assert!(missing.contains("missing field `text`"), "{missing}");
        let bad_id = parse(r#"{"type":"mute","participant":"bob"}"#).expect_err("bad id");
        assert!(bad_id.contains("UUID"), "{bad_id}");
        let not_json = parse("hello").expect_err("not JSON");
        assert!(
            not_json.starts_with("the message is not understood"),
            "{not_json}"
        );
        let huge = parse(&"x".repeat(MAX_MESSAGE_BYTES + 1)).expect_err("too long");
        assert!(huge.contains("the limit is 65536"), "{huge}");
    }
}
