//! The rooms of one server: each session's room state, the signalling connections in it, and the
//! forwarding routes the embedded SFU applies.
//!
//! Access checks happen before a connection reaches the hub: the caller has already decided that
//! the account belongs to the session and that the join window is open.
//!
//! NOTE: rooms live in this process's memory. With several servers sharing one database, every
//! participant of a session must reach the same server, so the load balancer has to route room
//! sockets by session (README, "Several servers"). Nothing here detects a split room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stillpoint_domain::AccountId;
use stillpoint_domain::live::media::{MediaMembership, MediaOrder, media_orders};
use stillpoint_domain::live::room::{
    Arrival, ConnectionId, Group, Notice, Outcome, Participant, Presence, PresenceChange, Room,
    RoomError, RoomRole,
};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::sfu::{PeerEvent, Route, Sfu};
use crate::signalling::{ClientMessage, Roster, RosterEntry, ServerMessage};

/// The person behind a new connection, as the access check established.
#[derive(Debug, Clone)]
pub struct Member {
    pub account: AccountId,
    pub role: RoomRole,
    /// The name the others see.
    pub name: String,
}

/// The effects of a room change outside the hub: the presence changes that attendance records
/// and the orders for a media server that keeps its own rooms (LiveKit). The embedded SFU needs
/// no orders, because the hub sets its forwarding itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoomChanges {
    pub presence: Vec<PresenceChange>,
    pub media: Vec<MediaOrder>,
}

/// The group and video state of an admitted participant, for providers whose access tokens name
/// a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPlace {
    pub group: Group,
    /// True while a facilitator has stopped the participant's video.
    pub video_stopped: bool,
}

/// The maximum number of messages one connection may send in [`RATE_WINDOW`]; a person clicking controls
/// sends a few a second, so only a runaway or hostile page reaches it.
const RATE_LIMIT: u32 = 40;
const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Connection {
    account: AccountId,
    outbox: UnboundedSender<ServerMessage>,
    audio_only: bool,
    in_sfu: bool,
    window_started: Instant,
    messages_in_window: u32,
}

impl Connection {
    /// Counts a message and returns whether it is within the rate limit. The first message over
    /// the limit in a window gets an error, and later ones are dropped without one.
    fn admit_message(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_started) >= RATE_WINDOW {
            self.window_started = now;
            self.messages_in_window = 0;
        }
        self.messages_in_window += 1;
        if self.messages_in_window == RATE_LIMIT + 1 {
            let _ = self.outbox.send(ServerMessage::Error {
                code: "too_many",
                message: format!(
                    "more than {RATE_LIMIT} messages in {} seconds; wait a moment",
                    RATE_WINDOW.as_secs()
                ),
            });
        }
        self.messages_in_window <= RATE_LIMIT
    }
}

#[derive(Debug, Default)]
struct RoomEntry {
    room: Room,
    connections: HashMap<ConnectionId, Connection>,
}

/// The rooms of this server.
#[derive(Debug)]
pub struct Hub {
    sfu: Option<Sfu>,
    rooms: Mutex<HashMap<String, RoomEntry>>,
    next_connection: AtomicU64,
}

impl Hub {
    /// Makes an empty hub; without an SFU the rooms carry the lobby, controls and chat but no
    /// media.
    #[must_use]
    pub fn new(sfu: Option<Sfu>) -> Self {
        Self {
            sfu,
            rooms: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
        }
    }

    #[must_use]
    pub fn sfu(&self) -> Option<&Sfu> {
        self.sfu.as_ref()
    }

    /// Adds a connection to a room's lobby, or to the room itself for facilitators and people
    /// admitted earlier. Returns the connection id and the changes to act on.
    pub fn connect(
        &self,
        room_key: &str,
        member: Member,
        outbox: UnboundedSender<ServerMessage>,
    ) -> Result<(ConnectionId, RoomChanges), RoomError> {
        let connection = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed));
        let mut rooms = self.rooms.lock().expect("room lock");
        let entry = rooms.entry(room_key.to_owned()).or_default();
        let before = MediaMembership::of(&entry.room);
        let outcome = entry.room.arrive(Arrival {
            account: member.account,
            role: member.role,
            name: member.name,
            connection,
            microphone_on: true,
            camera_on: true,
        })?;

        let _ = outbox.send(ServerMessage::Welcome {
            you: member.account,
            role: member.role.code(),
            connection: connection.0,
        });
        let in_lobby = entry
            .room
            .participant(member.account)
            .is_some_and(|participant| participant.presence == Presence::Lobby);
        if in_lobby {
            let _ = outbox.send(ServerMessage::Lobby);
        }
        entry.connections.insert(
            connection,
            Connection {
                account: member.account,
                outbox,
                audio_only: false,
                in_sfu: false,
                window_started: Instant::now(),
                messages_in_window: 0,
            },
        );
        let changes = self.settle(room_key, entry, &before, outcome);
        tracing::info!(
            room = room_key,
            connection = connection.0,
            role = member.role.code(),
            "room connection opened"
        );
        Ok((connection, changes))
    }

    /// Acts on one message of a connection and returns the changes to act on.
    pub async fn receive(
        &self,
        room_key: &str,
        connection: ConnectionId,
        message: ClientMessage,
    ) -> RoomChanges {
        if !self.within_rate(room_key, connection) {
            return RoomChanges::default();
        }
        match message {
            ClientMessage::Offer { sdp } => {
                self.join_media(room_key, connection, &sdp).await;
                RoomChanges::default()
            }
            ClientMessage::Answer { sdp } => {
                self.answer_media(room_key, connection, &sdp).await;
                RoomChanges::default()
            }
            ClientMessage::Leave => self.disconnect(room_key, connection),
            other => self.command(room_key, connection, other),
        }
    }

    fn within_rate(&self, room_key: &str, connection: ConnectionId) -> bool {
        let mut rooms = self.rooms.lock().expect("room lock");
        rooms
            .get_mut(room_key)
            .and_then(|entry| entry.connections.get_mut(&connection))
            .is_some_and(|found| found.admit_message(Instant::now()))
    }

    /// Removes a connection whose socket closed.
    pub fn disconnect(&self, room_key: &str, connection: ConnectionId) -> RoomChanges {
        let mut rooms = self.rooms.lock().expect("room lock");
        let Some(entry) = rooms.get_mut(room_key) else {
            return RoomChanges::default();
        };
        let Some(gone) = entry.connections.remove(&connection) else {
            return RoomChanges::default();
        };
        let before = MediaMembership::of(&entry.room);
        if gone.in_sfu
            && let Some(sfu) = &self.sfu
        {
            sfu.leave(connection.0);
        }
        let outcome = entry.room.leave(gone.account, connection);
        tracing::info!(
            room = room_key,
            connection = connection.0,
            "room connection closed"
        );
        self.settle(room_key, entry, &before, outcome)
    }

    /// Forgets that `account` was admitted earlier in a room, for someone who lost their place.
    pub fn forget_admission(&self, room_key: &str, account: AccountId) {
        let mut rooms = self.rooms.lock().expect("room lock");
        if let Some(entry) = rooms.get_mut(room_key) {
            entry.room.forget_admission(account);
        }
    }

    /// Returns whether a facilitator removed `account` from the room for the rest of the session.
    #[must_use]
    pub fn is_removed(&self, room_key: &str, account: AccountId) -> bool {
        let rooms = self.rooms.lock().expect("room lock");
        rooms
            .get(room_key)
            .is_some_and(|entry| entry.room.is_removed(account))
    }

    /// Returns the group an admitted participant's media belongs to, and whether their video is
    /// stopped. Returns `None` for someone in the lobby or not in the room.
    #[must_use]
    pub fn media_place(&self, room_key: &str, account: AccountId) -> Option<MediaPlace> {
        let rooms = self.rooms.lock().expect("room lock");
        let participant = rooms.get(room_key)?.room.participant(account)?;
        (participant.presence == Presence::Admitted).then_some(MediaPlace {
            group: participant.group,
            video_stopped: participant.video_stopped,
        })
    }

    /// Forgets a room nobody is connected to, such as a technology check's own room.
    pub fn forget_if_empty(&self, room_key: &str) {
        let mut rooms = self.rooms.lock().expect("room lock");
        if rooms
            .get(room_key)
            .is_some_and(|entry| entry.connections.is_empty())
        {
            rooms.remove(room_key);
        }
    }

    fn command(
        &self,
        room_key: &str,
        connection: ConnectionId,
        message: ClientMessage,
    ) -> RoomChanges {
        let mut rooms = self.rooms.lock().expect("room lock");
        let Some(entry) = rooms.get_mut(room_key) else {
            return RoomChanges::default();
        };
        let Some(actor) = entry
            .connections
            .get(&connection)
            .map(|found| found.account)
        else {
            return RoomChanges::default();
        };
        let before = MediaMembership::of(&entry.room);

        let result = match message {
            ClientMessage::Chat { text } => match entry.room.chat(actor, &text) {
                // A chat message changes nobody's state, so no roster or route goes out.
                Ok(chat) => {
                    deliver_chat(entry, &chat);
                    return RoomChanges::default();
                }
                Err(error) => Err(error),
            },
            ClientMessage::AudioOnly { on } => {
                if let Some(found) = entry.connections.get_mut(&connection) {
                    found.audio_only = on;
                }
                Ok(Outcome::default())
            }
            ClientMessage::Captions { url } => {
                match stillpoint_domain::live::check_https_link("captions_url", &url) {
                    Ok(url) => entry.room.set_captions_url(actor, url),
                    Err(invalid) => {
                        send_error(entry, connection, "captions_url", invalid.problem);
                        return RoomChanges::default();
                    }
                }
            }
            other => apply(&mut entry.room, actor, &other),
        };
        match result {
            Ok(outcome) => self.settle(room_key, entry, &before, outcome),
            Err(error) => {
                tracing::debug!(
                    room = room_key,
                    connection = connection.0,
                    code = error_code(&error),
                    "room request refused"
                );
                send_error(entry, connection, error_code(&error), error.to_string());
                RoomChanges::default()
            }
        }
    }

    async fn join_media(&self, room_key: &str, connection: ConnectionId, sdp: &str) {
        let Some(sfu) = self.sfu.clone() else {
            self.reply_error(
                room_key,
                connection,
                "no_media",
                "this server has no embedded video; the clinic uses another video service"
                    .to_owned(),
            );
            return;
        };
        let prepared = {
            let mut rooms = self.rooms.lock().expect("room lock");
            let Some(entry) = rooms.get_mut(room_key) else {
                return;
            };
            prepare_join(room_key, entry, connection)
        };
        let (route, restart) = match prepared {
            Ok(prepared) => prepared,
            Err((code, message)) => {
                self.reply_error(room_key, connection, code, message);
                return;
            }
        };
        // A second offer on one connection restarts its media, as after a network change;
        // the SFU handles the leave before the new join.
        if restart {
            sfu.leave(connection.0);
        }

        let (events, peer_events) = unbounded_channel();
        match sfu.join(connection.0, route, sdp, events).await {
            Ok(answer) => {
                let outbox = self.media_started(room_key, connection, &sfu);
                let Some(outbox) = outbox else {
                    // The connection closed while the SFU was answering.
                    sfu.leave(connection.0);
                    return;
                };
                let _ = outbox.send(ServerMessage::Answer { sdp: answer });
                tokio::spawn(forward_peer_events(peer_events, outbox));
            }
            Err(error) => {
                tracing::info!(room = room_key, connection = connection.0, %error, "offer rejected");
                self.reply_error(room_key, connection, "offer", error.to_string());
            }
        }
    }

    /// Marks a connection's media as started and sends the SFU its route, worked out again
    /// under the lock because the room may have changed while the SFU answered.
    fn media_started(
        &self,
        room_key: &str,
        connection: ConnectionId,
        sfu: &Sfu,
    ) -> Option<UnboundedSender<ServerMessage>> {
        let mut rooms = self.rooms.lock().expect("room lock");
        let entry = rooms.get_mut(room_key)?;
        let found = entry.connections.get_mut(&connection)?;
        found.in_sfu = true;
        let participant = entry.room.participant(found.account)?;
        sfu.route(
            connection.0,
            route_of(room_key, participant, found.audio_only),
        );
        Some(found.outbox.clone())
    }

    async fn answer_media(&self, room_key: &str, connection: ConnectionId, sdp: &str) {
        let Some(sfu) = self.sfu.clone() else {
            return;
        };
        if let Err(error) = sfu.answer(connection.0, sdp).await {
            tracing::info!(room = room_key, connection = connection.0, %error, "answer rejected");
            self.reply_error(room_key, connection, "answer", error.to_string());
        }
    }

    fn reply_error(
        &self,
        room_key: &str,
        connection: ConnectionId,
        code: &'static str,
        message: String,
    ) {
        let rooms = self.rooms.lock().expect("room lock");
        if let Some(entry) = rooms.get(room_key) {
            send_error(entry, connection, code, message);
        }
    }

    /// Delivers an outcome's notices, closes the connections it ends, sends everyone the new
    /// roster and updates the forwarding routes. `before` is who was in which group before the
    /// change, from which the media orders follow.
    fn settle(
        &self,
        room_key: &str,
        entry: &mut RoomEntry,
        before: &MediaMembership,
        outcome: Outcome,
    ) -> RoomChanges {
        let media = media_orders(before, &entry.room, &outcome);
        for (account, notice) in &outcome.notices {
            self.deliver(entry, *account, notice);
        }
        broadcast_roster(entry);
        if let Some(sfu) = &self.sfu {
            for (connection, found) in &entry.connections {
                if found.in_sfu
                    && let Some(participant) = entry.room.participant(found.account)
                {
                    sfu.route(
                        connection.0,
                        route_of(room_key, participant, found.audio_only),
                    );
                }
            }
        }
        RoomChanges {
            presence: outcome.presence,
            media,
        }
    }

    fn deliver(&self, entry: &mut RoomEntry, account: AccountId, notice: &Notice) {
        let closing = match *notice {
            Notice::Replaced { old } => Some((old, "replaced")),
            Notice::Removed { connection } => Some((connection, "removed")),
            Notice::Declined { connection } => Some((connection, "declined")),
            _ => None,
        };
        if let Some((connection, code)) = closing {
            if let Some(closed) = entry.connections.remove(&connection) {
                let _ = closed.outbox.send(ServerMessage::Closed { code });
                if closed.in_sfu
                    && let Some(sfu) = &self.sfu
                {
                    sfu.leave(connection.0);
                }
            }
            return;
        }
        let message = match *notice {
            Notice::Admitted => ServerMessage::Admitted,
            Notice::MutedByFacilitator => ServerMessage::Notice { code: "muted" },
            Notice::VideoStoppedByFacilitator => ServerMessage::Notice {
                code: "video_stopped",
            },
            Notice::VideoAllowed => ServerMessage::Notice {
                code: "video_allowed",
            },
            Notice::MovedToGroup(Group::Main) => ServerMessage::Notice { code: "moved_main" },
            Notice::MovedToGroup(Group::Private(_)) => ServerMessage::Notice {
                code: "moved_private",
            },
            Notice::Replaced { .. } | Notice::Removed { .. } | Notice::Declined { .. } => return,
        };
        let current = entry
            .room
            .participant(account)
            .map(|participant| participant.connection);
        if let Some(found) = current.and_then(|connection| entry.connections.get(&connection)) {
            let _ = found.outbox.send(message);
        }
    }
}

/// Passes the SFU's offers and connection changes for one connection to its browser.
async fn forward_peer_events(
    mut peer_events: tokio::sync::mpsc::UnboundedReceiver<PeerEvent>,
    outbox: UnboundedSender<ServerMessage>,
) {
    while let Some(event) = peer_events.recv().await {
        let message = match event {
            PeerEvent::Offer(sdp) => ServerMessage::Offer { sdp },
            PeerEvent::Connected => ServerMessage::Media { state: "connected" },
            PeerEvent::Disconnected => ServerMessage::Media {
                state: "disconnected",
            },
        };
        if outbox.send(message).is_err() {
            break;
        }
    }
}

fn apply(room: &mut Room, actor: AccountId, message: &ClientMessage) -> Result<Outcome, RoomError> {
    match *message {
        ClientMessage::Microphone { on } => room.set_microphone(actor, on),
        ClientMessage::Camera { on } => room.set_camera(actor, on),
        ClientMessage::Hand { raised } => room.set_hand(actor, actor, raised),
        ClientMessage::Admit { participant } => room.admit(actor, participant),
        ClientMessage::Decline { participant } => room.decline(actor, participant),
        ClientMessage::Mute { participant } => room.mute(actor, participant),
        ClientMessage::MuteAll => room.mute_all(actor),
        ClientMessage::StopVideo { participant } => room.stop_video(actor, participant),
        ClientMessage::AllowVideo { participant } => room.allow_video(actor, participant),
        ClientMessage::Remove { participant } => room.remove(actor, participant),
        ClientMessage::LowerHand { participant } => room.set_hand(actor, participant, false),
        ClientMessage::Lock { locked } => room.set_locked(actor, locked),
        ClientMessage::Spotlight { participant } => room.set_spotlight(actor, participant),
        ClientMessage::PrivateRoom {
            participant,
            co_facilitator,
        } => room.move_to_private(actor, participant, co_facilitator),
        ClientMessage::MainRoom { participant } => room.return_to_main(actor, participant),
        ClientMessage::Offer { .. }
        | ClientMessage::Answer { .. }
        | ClientMessage::Leave
        | ClientMessage::Chat { .. }
        | ClientMessage::AudioOnly { .. }
        | ClientMessage::Captions { .. } => Ok(Outcome::default()),
    }
}

/// Checks that a connection may start media and returns its route, and whether it already had
/// media to restart.
fn prepare_join(
    room_key: &str,
    entry: &RoomEntry,
    connection: ConnectionId,
) -> Result<(Route, bool), (&'static str, String)> {
    let found = entry
        .connections
        .get(&connection)
        .ok_or_else(|| ("closed", "this connection has left the room".to_owned()))?;
    let participant = entry
        .room
        .participant(found.account)
        .filter(|participant| participant.presence == Presence::Admitted)
        .ok_or_else(|| ("in_lobby", RoomError::InLobby.to_string()))?;
    Ok((
        route_of(room_key, participant, found.audio_only),
        found.in_sfu,
    ))
}

fn route_of(room_key: &str, participant: &Participant, audio_only: bool) -> Route {
    Route {
        room: room_key.to_owned(),
        group: group_key(participant.group),
        label: participant.account.to_string(),
        sends_audio: participant.sends_audio(),
        sends_video: participant.sends_video(),
        receives_video: !audio_only,
    }
}

fn group_key(group: Group) -> String {
    match group {
        Group::Main => "main".to_owned(),
        Group::Private(account) => format!("private-{account}"),
    }
}

/// Sends a chat message to the admitted members of its group.
fn deliver_chat(entry: &RoomEntry, chat: &stillpoint_domain::live::room::ChatMessage) {
    let name = entry
        .room
        .participant(chat.from)
        .map(|participant| participant.name.clone())
        .unwrap_or_default();
    for found in entry.connections.values() {
        let same_group = entry
            .room
            .participant(found.account)
            .is_some_and(|participant| {
                participant.group == chat.group && participant.presence == Presence::Admitted
            });
        if same_group {
            let _ = found.outbox.send(ServerMessage::Chat {
                from: chat.from,
                name: name.clone(),
                text: chat.text.clone(),
            });
        }
    }
}

fn send_error(entry: &RoomEntry, connection: ConnectionId, code: &'static str, message: String) {
    if let Some(found) = entry.connections.get(&connection) {
        let _ = found.outbox.send(ServerMessage::Error { code, message });
    }
}

/// Sends each connection the roster it may see: facilitators see everyone, people in the room
/// see their group, and people in the lobby see nobody.
fn broadcast_roster(entry: &RoomEntry) {
    let everyone: Vec<&Participant> = entry.room.participants().collect();
    for found in entry.connections.values() {
        let Some(viewer) = entry.room.participant(found.account) else {
            continue;
        };
        if viewer.presence == Presence::Lobby {
            continue;
        }
        // Only facilitators see the lobby and who is in a private room; the others see the
        // people of their own group, so nobody learns that someone was taken aside.
        let facilitator = viewer.role == RoomRole::Facilitator;
        let participants = everyone
            .iter()
            .filter(|participant| {
                facilitator
                    || (participant.presence == Presence::Admitted
                        && participant.group == viewer.group)
            })
            .map(|participant| roster_entry(participant))
            .collect();
        let _ = found.outbox.send(ServerMessage::Roster(Roster {
            participants,
            locked: entry.room.is_locked(),
            spotlight: entry.room.spotlight(),
            captions_url: entry.room.captions_url().map(str::to_owned),
        }));
    }
}

fn roster_entry(participant: &Participant) -> RosterEntry {
    RosterEntry {
        id: participant.account,
        name: participant.name.clone(),
        role: participant.role.code(),
        presence: match participant.presence {
            Presence::Lobby => "lobby",
            Presence::Admitted => "room",
        },
        group: group_key(participant.group),
        microphone_on: participant.microphone_on,
        camera_on: participant.camera_on,
        video_stopped: participant.video_stopped,
        hand_raised: participant.hand_raised,
    }
}

/// Returns the stable code of a room error, which the browser translates.
#[must_use]
pub fn error_code(error: &RoomError) -> &'static str {
    match error {
        RoomError::Removed => "removed",
        RoomError::Locked => "locked",
        RoomError::NotFacilitator => "not_facilitator",
        RoomError::UnknownParticipant => "unknown_participant",
        RoomError::InLobby => "in_lobby",
        RoomError::FacilitatorProtected => "facilitator_protected",
        RoomError::VideoStopped => "video_stopped",
        RoomError::NoCoFacilitator => "no_co_facilitator",
        RoomError::ChatLength => "chat_length",
    }
}
