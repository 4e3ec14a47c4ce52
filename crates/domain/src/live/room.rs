//! One live session's room: who is in the lobby and who is in the room, what each participant
//! sends, and the facilitators' controls.
//!
//! Facilitators enter directly. Patients and invited caregivers wait in the lobby until a
//! facilitator admits them, except that someone admitted earlier in the session comes straight
//! back after a dropped connection. The room never closes while people are in it: when one
//! facilitator drops out, any other facilitator present keeps the controls.

use std::collections::{BTreeMap, BTreeSet};

use crate::AccountId;

/// The maximum length of a chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 1000;

/// A participant's part in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoomRole {
    Facilitator,
    Patient,
    Caregiver,
}

impl RoomRole {
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Facilitator => "facilitator",
            Self::Patient => "patient",
            Self::Caregiver => "caregiver",
        }
    }
}

/// One browser connection to the room; a second window of the same person gets a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

/// The part of the room whose members see and hear each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Main,
    /// A private room for one participant and a co-facilitator, named by the participant.
    Private(AccountId),
}

/// Whether a participant waits in the lobby or is in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Lobby,
    Admitted,
}

/// One person in the lobby or the room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // Independent switches of one participant.
pub struct Participant {
    pub account: AccountId,
    pub role: RoomRole,
    pub name: String,
    pub connection: ConnectionId,
    pub presence: Presence,
    pub group: Group,
    pub microphone_on: bool,
    pub camera_on: bool,
    /// Set when a facilitator stopped the participant's video; only a facilitator lifts it.
    pub video_stopped: bool,
    pub hand_raised: bool,
}

impl Participant {
    /// Returns whether the server forwards this participant's audio.
    #[must_use]
    pub fn sends_audio(&self) -> bool {
        self.presence == Presence::Admitted && self.microphone_on
    }

    /// Returns whether the server forwards this participant's video.
    #[must_use]
    pub fn sends_video(&self) -> bool {
        self.presence == Presence::Admitted && self.camera_on && !self.video_stopped
    }
}

/// A request that the room refused, with the reason a participant reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error(
        "a facilitator removed you from this session; ask the clinic if you think this was a mistake"
    )]
    Removed,
    #[error("the facilitator has locked the room; contact the clinic to be let in")]
    Locked,
    #[error("only a facilitator in the room can do this")]
    NotFacilitator,
    #[error("that person is not in this session any more")]
    UnknownParticipant,
    #[error("you are still in the lobby; a facilitator will let you in")]
    InLobby,
    #[error("this control applies to patients and caregivers, not to facilitators")]
    FacilitatorProtected,
    #[error("the facilitator turned off your camera; ask them to allow it again")]
    VideoStopped,
    #[error("the chosen co-facilitator is not a facilitator in the room")]
    NoCoFacilitator,
    #[error("a chat message needs 1 to {MAX_CHAT_CHARS} characters")]
    ChatLength,
}

/// A message to one participant about a change that concerns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Admitted,
    /// Another window of the same person took this connection's place.
    Replaced {
        old: ConnectionId,
    },
    MutedByFacilitator,
    VideoStoppedByFacilitator,
    VideoAllowed,
    Removed {
        connection: ConnectionId,
    },
    /// The lobby request was turned down.
    Declined {
        connection: ConnectionId,
    },
    MovedToGroup(Group),
}

/// A change to the room's membership that attendance records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceChange {
    Entered(AccountId),
    Left(AccountId),
}

/// The effects of a command beyond the room state itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub notices: Vec<(AccountId, Notice)>,
    pub presence: Vec<PresenceChange>,
}

impl Outcome {
    fn notice(mut self, to: AccountId, notice: Notice) -> Self {
        self.notices.push((to, notice));
        self
    }

    fn presence(mut self, change: PresenceChange) -> Self {
        self.presence.push(change);
        self
    }
}

/// A chat message, delivered to the members of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub from: AccountId,
    pub group: Group,
    pub text: String,
}

/// The state of one session's room.
#[derive(Debug, Clone, Default)]
pub struct Room {
    participants: BTreeMap<AccountId, Participant>,
    /// Everyone admitted at some point in this session, who may come back after a dropped
    /// connection without waiting in the lobby again.
    admitted_before: BTreeSet<AccountId>,
    removed: BTreeSet<AccountId>,
    /// Everyone whose video a facilitator stopped, which stays stopped across reconnections.
    video_stopped: BTreeSet<AccountId>,
    locked: bool,
    spotlight: Option<AccountId>,
    /// The address of the live captioning (CART) service, shown to everyone in the room.
    captions_url: Option<String>,
}

/// Someone arriving at the room.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub account: AccountId,
    pub role: RoomRole,
    pub name: String,
    pub connection: ConnectionId,
    pub microphone_on: bool,
    pub camera_on: bool,
}

impl Room {
    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.values()
    }

    #[must_use]
    pub fn participant(&self, account: AccountId) -> Option<&Participant> {
        self.participants.get(&account)
    }

    /// Forgets that `account` was admitted earlier, so that after losing their place and getting
    /// it back they wait in the lobby again.
    pub fn forget_admission(&mut self, account: AccountId) {
        self.admitted_before.remove(&account);
    }

    /// Returns whether a facilitator removed `account` for the rest of the session.
    #[must_use]
    pub fn is_removed(&self, account: AccountId) -> bool {
        self.removed.contains(&account)
    }

    #[must_use]
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    #[must_use]
    pub fn spotlight(&self) -> Option<AccountId> {
        self.spotlight
    }

    #[must_use]
    pub fn captions_url(&self) -> Option<&str> {
        self.captions_url.as_deref()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Lets someone into the lobby, or straight into the room for facilitators and people
    /// admitted earlier. A second window of the same person replaces the first.
    pub fn arrive(&mut self, arrival: Arrival) -> Result<Outcome, RoomError> {
        let account = arrival.account;
        let facilitator = arrival.role == RoomRole::Facilitator;
        if self.removed.contains(&account) && !facilitator {
            return Err(RoomError::Removed);
        }
        let returning = self.admitted_before.contains(&account);
        if self.locked && !facilitator && !returning {
            return Err(RoomError::Locked);
        }

        let mut outcome = Outcome::default();
        let previous = self.participants.remove(&account);
        if let Some(previous) = &previous {
            outcome = outcome.notice(
                account,
                Notice::Replaced {
                    old: previous.connection,
                },
            );
        }
        let admitted = facilitator || returning;
        let participant = Participant {
            account,
            role: arrival.role,
            name: arrival.name,
            connection: arrival.connection,
            presence: if admitted {
                Presence::Admitted
            } else {
                Presence::Lobby
            },
            group: previous
                .as_ref()
                .map_or(Group::Main, |previous| previous.group),
            microphone_on: arrival.microphone_on,
            camera_on: arrival.camera_on,
            video_stopped: self.video_stopped.contains(&account),
            hand_raised: false,
        };
        self.participants.insert(account, participant);
        if admitted {
            self.admitted_before.insert(account);
            outcome = outcome.notice(account, Notice::Admitted);
            let was_in = previous.is_some_and(|previous| previous.presence == Presence::Admitted);
            if !was_in {
                outcome = outcome.presence(PresenceChange::Entered(account));
            }
        }
        Ok(outcome)
    }

    /// Removes the connection's participant, unless a newer window already replaced it.
    pub fn leave(&mut self, account: AccountId, connection: ConnectionId) -> Outcome {
        let Some(participant) = self.participants.get(&account) else {
            return Outcome::default();
        };
        if participant.connection != connection {
            return Outcome::default();
        }
        let participant = self.participants.remove(&account).expect("present above");
        if self.spotlight == Some(account) {
            self.spotlight = None;
        }
        let mut outcome = Outcome::default();
        if participant.presence == Presence::Admitted {
            outcome = outcome.presence(PresenceChange::Left(account));
        }
        // A private room whose facilitator left returns its patient to the main room, so nobody
        // is left alone out of sight of every facilitator.
        if let Group::Private(_) = participant.group {
            outcome = self.close_group_without_facilitator(participant.group, outcome);
        }
        outcome
    }

    /// Returns everyone in a private room to the main room once its facilitator or the
    /// participant it was opened for has gone, so nobody waits alone out of the group's sight.
    fn close_group_without_facilitator(&mut self, group: Group, outcome: Outcome) -> Outcome {
        let Group::Private(named) = group else {
            return outcome;
        };
        let facilitator_left = self
            .participants
            .values()
            .any(|other| other.group == group && other.role == RoomRole::Facilitator);
        let named_left = self
            .participants
            .get(&named)
            .is_some_and(|participant| participant.group == group);
        if facilitator_left && named_left {
            return outcome;
        }
        self.close_group(group, outcome)
    }

    fn close_group(&mut self, group: Group, mut outcome: Outcome) -> Outcome {
        for other in self.participants.values_mut() {
            if other.group == group {
                other.group = Group::Main;
                outcome = outcome.notice(other.account, Notice::MovedToGroup(Group::Main));
            }
        }
        outcome
    }

    fn check_facilitator(&self, actor: AccountId) -> Result<(), RoomError> {
        match self.participants.get(&actor) {
            Some(participant)
                if participant.role == RoomRole::Facilitator
                    && participant.presence == Presence::Admitted =>
            {
                Ok(())
            }
            _ => Err(RoomError::NotFacilitator),
        }
    }

    fn target(&mut self, account: AccountId) -> Result<&mut Participant, RoomError> {
        self.participants
            .get_mut(&account)
            .ok_or(RoomError::UnknownParticipant)
    }

    fn admitted(&mut self, account: AccountId) -> Result<&mut Participant, RoomError> {
        let participant = self.target(account)?;
        if participant.presence == Presence::Lobby {
            return Err(RoomError::InLobby);
        }
        Ok(participant)
    }

    fn non_facilitator(&mut self, account: AccountId) -> Result<&mut Participant, RoomError> {
        let participant = self.target(account)?;
        if participant.role == RoomRole::Facilitator {
            return Err(RoomError::FacilitatorProtected);
        }
        Ok(participant)
    }

    /// Admits a participant from the lobby.
    pub fn admit(&mut self, actor: AccountId, account: AccountId) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let participant = self.target(account)?;
        if participant.presence == Presence::Admitted {
            return Ok(Outcome::default());
        }
        participant.presence = Presence::Admitted;
        self.admitted_before.insert(account);
        Ok(Outcome::default()
            .notice(account, Notice::Admitted)
            .presence(PresenceChange::Entered(account)))
    }

    /// Turns down a lobby request; the person may knock again.
    pub fn decline(&mut self, actor: AccountId, account: AccountId) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let participant = self.target(account)?;
        if participant.presence != Presence::Lobby {
            return Err(RoomError::UnknownParticipant);
        }
        let connection = participant.connection;
        self.participants.remove(&account);
        Ok(Outcome::default().notice(account, Notice::Declined { connection }))
    }

    /// Mutes one participant, who can unmute themselves when they want to speak.
    pub fn mute(&mut self, actor: AccountId, account: AccountId) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let participant = self.non_facilitator(account)?;
        participant.microphone_on = false;
        Ok(Outcome::default().notice(account, Notice::MutedByFacilitator))
    }

    /// Mutes everyone in the actor's group except the facilitators.
    pub fn mute_all(&mut self, actor: AccountId) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let group = self.participants[&actor].group;
        let mut outcome = Outcome::default();
        for participant in self.participants.values_mut() {
            let listed = participant.group == group
                && participant.role != RoomRole::Facilitator
                && participant.presence == Presence::Admitted;
            if listed && participant.microphone_on {
                participant.microphone_on = false;
                outcome = outcome.notice(participant.account, Notice::MutedByFacilitator);
            }
        }
        Ok(outcome)
    }

    /// Stops a participant's video until a facilitator allows it again.
    pub fn stop_video(
        &mut self,
        actor: AccountId,
        account: AccountId,
    ) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let participant = self.non_facilitator(account)?;
        participant.video_stopped = true;
        participant.camera_on = false;
        self.video_stopped.insert(account);
        Ok(Outcome::default().notice(account, Notice::VideoStoppedByFacilitator))
    }

    pub fn allow_video(
        &mut self,
        actor: AccountId,
        account: AccountId,
    ) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let participant = self.target(account)?;
        participant.video_stopped = false;
        self.video_stopped.remove(&account);
        Ok(Outcome::default().notice(account, Notice::VideoAllowed))
    }

    /// Removes a participant for the rest of the session.
    pub fn remove(&mut self, actor: AccountId, account: AccountId) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let participant = self.non_facilitator(account)?;
        let connection = participant.connection;
        let was_admitted = participant.presence == Presence::Admitted;
        let group = participant.group;
        self.participants.remove(&account);
        self.removed.insert(account);
        self.admitted_before.remove(&account);
        if self.spotlight == Some(account) {
            self.spotlight = None;
        }
        let mut outcome = Outcome::default().notice(account, Notice::Removed { connection });
        if was_admitted {
            outcome = outcome.presence(PresenceChange::Left(account));
        }
        if group != Group::Main {
            outcome = self.close_group_without_facilitator(group, outcome);
        }
        Ok(outcome)
    }

    /// Locks or unlocks the room: a locked room takes no new arrivals, but people admitted
    /// earlier can still come back after a dropped connection.
    pub fn set_locked(&mut self, actor: AccountId, locked: bool) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        self.locked = locked;
        Ok(Outcome::default())
    }

    /// Shows one admitted participant large to everyone, or nobody with `None`.
    pub fn set_spotlight(
        &mut self,
        actor: AccountId,
        account: Option<AccountId>,
    ) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        if let Some(account) = account {
            self.admitted(account)?;
        }
        self.spotlight = account;
        Ok(Outcome::default())
    }

    /// Sets the live captioning address; the caller has checked it is an https URL.
    pub fn set_captions_url(
        &mut self,
        actor: AccountId,
        url: Option<String>,
    ) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        self.captions_url = url;
        Ok(Outcome::default())
    }

    /// Moves a participant and a co-facilitator to a private room of their own.
    pub fn move_to_private(
        &mut self,
        actor: AccountId,
        account: AccountId,
        co_facilitator: AccountId,
    ) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        self.check_facilitator(co_facilitator)
            .map_err(|_| RoomError::NoCoFacilitator)?;
        self.non_facilitator(account)?;
        self.admitted(account)?;
        let group = Group::Private(account);
        let mut outcome = Outcome::default();
        // A private room the co-facilitator or the participant is in now ends first, so its
        // other member returns to the group instead of staying there alone.
        for member in [account, co_facilitator] {
            let current = self.target(member)?.group;
            if current != Group::Main && current != group {
                outcome = self.close_group(current, outcome);
            }
        }
        for member in [account, co_facilitator] {
            self.target(member)?.group = group;
            outcome = outcome.notice(member, Notice::MovedToGroup(group));
        }
        if self.spotlight == Some(account) {
            self.spotlight = None;
        }
        Ok(outcome)
    }

    /// Brings everyone in a participant's private room back to the main room.
    pub fn return_to_main(
        &mut self,
        actor: AccountId,
        account: AccountId,
    ) -> Result<Outcome, RoomError> {
        self.check_facilitator(actor)?;
        let group = self.target(account)?.group;
        let mut outcome = Outcome::default();
        if group == Group::Main {
            return Ok(outcome);
        }
        for participant in self.participants.values_mut() {
            if participant.group == group {
                participant.group = Group::Main;
                outcome = outcome.notice(participant.account, Notice::MovedToGroup(Group::Main));
            }
        }
        Ok(outcome)
    }

    pub fn set_microphone(&mut self, account: AccountId, on: bool) -> Result<Outcome, RoomError> {
        self.target(account)?.microphone_on = on;
        Ok(Outcome::default())
    }

    pub fn set_camera(&mut self, account: AccountId, on: bool) -> Result<Outcome, RoomError> {
        let participant = self.target(account)?;
        if on && participant.video_stopped {
            return Err(RoomError::VideoStopped);
        }
        participant.camera_on = on;
        Ok(Outcome::default())
    }

    /// Raises or lowers one's own hand; a facilitator may lower anyone's.
    pub fn set_hand(
        &mut self,
        actor: AccountId,
        account: AccountId,
        raised: bool,
    ) -> Result<Outcome, RoomError> {
        if actor != account {
            self.check_facilitator(actor)?;
            if raised {
                return Err(RoomError::NotFacilitator);
            }
        }
        self.admitted(account)?.hand_raised = raised;
        Ok(Outcome::default())
    }

    /// Checks a chat message and returns it addressed to the sender's group.
    pub fn chat(&mut self, account: AccountId, text: &str) -> Result<ChatMessage, RoomError> {
        let text = text.trim();
        let length = text.chars().count();
        if length == 0 || length > MAX_CHAT_CHARS {
            return Err(RoomError::ChatLength);
        }
        let group = self.admitted(account)?.group;
        Ok(ChatMessage {
            from: account,
            group,
            text: text.to_owned(),
        })
    }

    /// Returns whether `from`'s media reaches `to`: both admitted and in the same group.
    #[must_use]
    pub fn connects(&self, from: AccountId, to: AccountId) -> bool {
        match (self.participants.get(&from), self.participants.get(&to)) {
            (Some(from), Some(to)) => {
                from.account != to.account
                    && from.presence == Presence::Admitted
                    && to.presence == Presence::Admitted
                    && from.group == to.group
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u128) -> AccountId {
        AccountId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn arrival(n: u128, role: RoomRole) -> Arrival {
        Arrival {
            account: account(n),
            role,
            name: format!("Person {n}"),
            connection: ConnectionId(u64::try_from(n).expect("small")),
            microphone_on: true,
            camera_on: true,
        }
    }

    const LEAD: u128 = 1;
    const CO: u128 = 2;
    const ANA: u128 = 10;
    const BEN: u128 = 11;

    fn room_with_everyone_in() -> Room {
        let mut room = Room::default();
        room.arrive(arrival(LEAD, RoomRole::Facilitator))
            .expect("lead");
        room.arrive(arrival(CO, RoomRole::Facilitator)).expect("co");
        for patient in [ANA, BEN] {
            room.arrive(arrival(patient, RoomRole::Patient))
                .expect("patient");
            room.admit(account(LEAD), account(patient)).expect("admit");
        }
        room
    }

    #[test]
    fn patients_wait_in_lobby_until_admitted() {
        let mut room = Room::default();
        let outcome = room
            .arrive(arrival(ANA, RoomRole::Patient))
            .expect("arrive");
        assert!(outcome.presence.is_empty());
        assert_eq!(
            room.participant(account(ANA)).map(|p| p.presence),
            Some(Presence::Lobby)
        );
        assert_eq!(room.chat(account(ANA), "hello"), Err(RoomError::InLobby));

        assert_eq!(
            room.admit(account(ANA), account(ANA)),
            Err(RoomError::NotFacilitator),
            "nobody admits themselves"
        );

        let outcome = room
            .arrive(arrival(LEAD, RoomRole::Facilitator))
            .expect("lead");
        assert_eq!(
            outcome.presence,
            vec![PresenceChange::Entered(account(LEAD))]
        );
        let outcome = room.admit(account(LEAD), account(ANA)).expect("admit");
        assert_eq!(
            outcome.presence,
            vec![PresenceChange::Entered(account(ANA))]
        );
        assert!(room.connects(account(LEAD), account(ANA)));
    }

    #[test]
    fn locked_room_takes_back_only_earlier_members() {
        let mut room = room_with_everyone_in();
        room.set_locked(account(LEAD), true).expect("lock");
        assert_eq!(
            room.arrive(arrival(20, RoomRole::Caregiver)).map(|_| ()),
            Err(RoomError::Locked)
        );
        room.leave(account(ANA), ConnectionId(10));
        let mut again = arrival(ANA, RoomRole::Patient);
        again.connection = ConnectionId(99);
        let outcome = room.arrive(again).expect("comes back");
        assert_eq!(
            outcome.presence,
            vec![PresenceChange::Entered(account(ANA))]
        );
    }

    #[test]
    fn forgotten_admission_waits_in_lobby() {
        let mut room = room_with_everyone_in();
        room.leave(account(ANA), ConnectionId(10));
        room.forget_admission(account(ANA));

        let mut again = arrival(ANA, RoomRole::Patient);
        again.connection = ConnectionId(99);
        let outcome = room.arrive(again).expect("arrives");

        assert!(outcome.presence.is_empty(), "{outcome:?}");
        assert_eq!(
            room.participant(account(ANA)).map(|p| p.presence),
            Some(Presence::Lobby)
        );
    }

    #[test]
    fn second_window_replaces_first() {
        let mut room = room_with_everyone_in();
        let mut second = arrival(ANA, RoomRole::Patient);
        second.connection = ConnectionId(77);
        let outcome = room.arrive(second).expect("second window");
        assert!(outcome.notices.contains(&(
            account(ANA),
            Notice::Replaced {
                old: ConnectionId(10)
            }
        )));
        assert!(
            outcome.presence.is_empty(),
            "still in the room, no new entry"
        );

        let stale = room.leave(account(ANA), ConnectionId(10));
        assert_eq!(
            stale,
            Outcome::default(),
            "the old window's leaving changes nothing"
        );
        assert!(room.participant(account(ANA)).is_some());
    }

    #[test]
    fn mute_all_spares_facilitators_and_lobby() {
        let mut room = room_with_everyone_in();
        room.arrive(arrival(30, RoomRole::Patient)).expect("lobby");
        let outcome = room.mute_all(account(CO)).expect("mute all");

        let muted: Vec<AccountId> = outcome.notices.iter().map(|(to, _)| *to).collect();
        assert_eq!(muted, vec![account(ANA), account(BEN)]);
        assert!(
            room.participant(account(LEAD))
                .is_some_and(Participant::sends_audio)
        );
        assert!(
            !room
                .participant(account(ANA))
                .is_some_and(Participant::sends_audio)
        );

        room.set_microphone(account(ANA), true)
            .expect("unmute self");
        assert!(
            room.participant(account(ANA))
                .is_some_and(Participant::sends_audio)
        );
        assert_eq!(
            room.mute_all(account(ANA)).map(|_| ()),
            Err(RoomError::NotFacilitator)
        );
    }

    #[test]
    fn stopped_video_stays_off_until_allowed() {
        let mut room = room_with_everyone_in();
        room.stop_video(account(LEAD), account(BEN)).expect("stop");
        assert_eq!(
            room.set_camera(account(BEN), true).map(|_| ()),
            Err(RoomError::VideoStopped)
        );
        room.allow_video(account(LEAD), account(BEN))
            .expect("allow");
        room.set_camera(account(BEN), true).expect("camera on");
        assert!(
            room.participant(account(BEN))
                .is_some_and(Participant::sends_video)
        );
        assert_eq!(
            room.stop_video(account(LEAD), account(CO)).map(|_| ()),
            Err(RoomError::FacilitatorProtected)
        );
    }

    #[test]
    fn removed_participant_cannot_return() {
        let mut room = room_with_everyone_in();
        room.set_spotlight(account(LEAD), Some(account(BEN)))
            .expect("spotlight");
        let outcome = room.remove(account(LEAD), account(BEN)).expect("remove");
        assert_eq!(outcome.presence, vec![PresenceChange::Left(account(BEN))]);
        assert_eq!(room.spotlight(), None);
        assert_eq!(
            room.arrive(arrival(BEN, RoomRole::Patient)).map(|_| ()),
            Err(RoomError::Removed)
        );
    }

    #[test]
    fn private_room_separates_media() {
        let mut room = room_with_everyone_in();
        assert_eq!(
            room.move_to_private(account(LEAD), account(ANA), account(BEN))
                .map(|_| ()),
            Err(RoomError::NoCoFacilitator)
        );
        room.move_to_private(account(LEAD), account(ANA), account(CO))
            .expect("move");
        assert!(room.connects(account(ANA), account(CO)));
        assert!(!room.connects(account(ANA), account(BEN)));
        assert!(!room.connects(account(LEAD), account(ANA)));
        let message = room.chat(account(ANA), " I need a moment ").expect("chat");
        assert_eq!(message.group, Group::Private(account(ANA)));
        assert_eq!(message.text, "I need a moment");

        room.return_to_main(account(LEAD), account(ANA))
            .expect("return");
        assert!(room.connects(account(ANA), account(BEN)));
    }

    #[test]
    fn facilitator_leaving_keeps_room_open() {
        let mut room = room_with_everyone_in();
        room.move_to_private(account(LEAD), account(ANA), account(CO))
            .expect("move");
        let outcome = room.leave(account(CO), ConnectionId(2));
        assert_eq!(outcome.presence, vec![PresenceChange::Left(account(CO))]);
        assert!(
            outcome
                .notices
                .contains(&(account(ANA), Notice::MovedToGroup(Group::Main))),
            "the patient is not left alone in the private room"
        );
        assert!(room.connects(account(ANA), account(LEAD)));
        room.leave(account(LEAD), ConnectionId(1));
        assert!(
            room.connects(account(ANA), account(BEN)),
            "patients stay together"
        );
        assert_eq!(
            room.mute_all(account(ANA)).map(|_| ()),
            Err(RoomError::NotFacilitator)
        );
    }

    #[test]
    fn private_room_never_leaves_anyone_alone() {
        let mut room = room_with_everyone_in();
        room.move_to_private(account(LEAD), account(ANA), account(CO))
            .expect("first private room");
        let outcome = room
            .move_to_private(account(LEAD), account(BEN), account(CO))
            .expect("second private room");
        assert!(
            outcome
                .notices
                .contains(&(account(ANA), Notice::MovedToGroup(Group::Main))),
            "Ana returns to the group when her co-facilitator leaves for Ben"
        );
        assert!(room.connects(account(ANA), account(LEAD)));
        assert!(room.connects(account(BEN), account(CO)));

        room.leave(account(BEN), ConnectionId(11));
        assert!(
            room.connects(account(CO), account(LEAD)),
            "the co-facilitator returns when the participant leaves"
        );
    }

    #[test]
    fn stopped_video_survives_reconnection() {
        let mut room = room_with_everyone_in();
        room.stop_video(account(LEAD), account(BEN)).expect("stop");
        room.leave(account(BEN), ConnectionId(11));
        let mut again = arrival(BEN, RoomRole::Patient);
        again.connection = ConnectionId(50);
        room.arrive(again).expect("back");
        assert!(
            room.participant(account(BEN))
                .is_some_and(|p| p.video_stopped)
        );
        assert!(
            !room
                .participant(account(BEN))
                .is_some_and(Participant::sends_video)
        );
    }

    #[test]
    fn chat_length_is_checked() {
        let mut room = room_with_everyone_in();
        assert_eq!(room.chat(account(ANA), "   "), Err(RoomError::ChatLength));
        let long = "a".repeat(MAX_CHAT_CHARS + 1);
        assert_eq!(room.chat(account(ANA), &long), Err(RoomError::ChatLength));
    }
}
