//! Live session video for Stillpoint: the embedded selective forwarding unit built on str0m, the
//! hub that runs each session's room (lobby, facilitator controls, chat) over WebSocket
//! signalling, LiveKit access tokens and server API calls for clinics that use LiveKit, and short-lived TURN
//! credentials.

pub mod hub;
pub mod ice;
pub mod livekit;
pub mod sfu;
pub mod signalling;

pub use hub::{Hub, MediaPlace, Member, RoomChanges};
pub use sfu::Sfu;
