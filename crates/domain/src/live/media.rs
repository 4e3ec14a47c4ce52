//! What a media server that keeps rooms of its own, such as LiveKit, must do so that it enforces
//! the facilitators' controls itself instead of trusting each browser.
//!
//! Each group of a session's room (the main room and every private room) is a separate media
//! room there, so people in different groups share no media room at all. After each change to the
//! room, the orders name whom to mute, whose camera to stop or allow, and whom to take out of a
//! media room: someone moved to another group, removed, or gone.

use std::collections::BTreeMap;

use crate::AccountId;

use super::room::{Group, Notice, Outcome, Presence, Room};

/// One thing the media server must do for one participant in one group's media room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOrder {
    /// Mute the participant's microphone. They can unmute it themselves to speak.
    MuteMicrophone {
        account: AccountId,
        group: Group,
    },
    /// Stop the participant's camera and refuse it until a facilitator allows it again.
    StopCamera {
        account: AccountId,
        group: Group,
    },
    AllowCamera {
        account: AccountId,
        group: Group,
    },
    /// Take the participant out of the group's media room.
    Disconnect {
        account: AccountId,
        group: Group,
    },
}

impl MediaOrder {
    /// Returns a short name for logs.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MuteMicrophone { .. } => "mute_microphone",
            Self::StopCamera { .. } => "stop_camera",
            Self::AllowCamera { .. } => "allow_camera",
            Self::Disconnect { .. } => "disconnect",
        }
    }

    #[must_use]
    pub const fn account(&self) -> AccountId {
        match *self {
            Self::MuteMicrophone { account, .. }
            | Self::StopCamera { account, .. }
            | Self::AllowCamera { account, .. }
            | Self::Disconnect { account, .. } => account,
        }
    }

    #[must_use]
    pub const fn group(&self) -> Group {
        match *self {
            Self::MuteMicrophone { group, .. }
            | Self::StopCamera { group, .. }
            | Self::AllowCamera { group, .. }
            | Self::Disconnect { group, .. } => group,
        }
    }
}

/// The group of every admitted participant at one moment, to compare with the room after a
/// change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaMembership(BTreeMap<AccountId, Group>);

impl MediaMembership {
    #[must_use]
    pub fn of(room: &Room) -> Self {
        Self(
            room.participants()
                .filter(|participant| participant.presence == Presence::Admitted)
                .map(|participant| (participant.account, participant.group))
                .collect(),
        )
    }
}

/// Returns the orders that bring the media rooms in line with `room` after a change whose
/// effects are `outcome`, given who was in which group before it. Disconnections come first, so
/// that a media server carrying them out in order takes people out of a room before anything
/// else.
#[must_use]
pub fn media_orders(before: &MediaMembership, room: &Room, outcome: &Outcome) -> Vec<MediaOrder> {
    let after = MediaMembership::of(room);
    let mut orders: Vec<MediaOrder> = before
        .0
        .iter()
        .filter(|(account, group)| after.0.get(account) != Some(group))
        .map(|(&account, &group)| MediaOrder::Disconnect { account, group })
        .collect();

    for (account, notice) in &outcome.notices {
        let Some(&group) = after.0.get(account) else {
            continue;
        };
        let account = *account;
        let order = match notice {
            Notice::MutedByFacilitator => MediaOrder::MuteMicrophone { account, group },
            Notice::VideoStoppedByFacilitator => MediaOrder::StopCamera { account, group },
            Notice::VideoAllowed => MediaOrder::AllowCamera { account, group },
            _ => continue,
        };
        orders.push(order);
    }
    orders
}

/// Returns the media room name of one group of a session's room: the session's own name for the
/// main room, and a name of its own for each private room.
#[must_use]
pub fn media_room_name(session_room: &str, group: Group) -> String {
    match group {
        Group::Main => session_room.to_owned(),
        Group::Private(account) => format!("{session_room}.private.{account}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::room::{Arrival, ConnectionId, RoomRole};

    fn account(n: u128) -> AccountId {
        AccountId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn arrive(room: &mut Room, n: u128, role: RoomRole) {
        room.arrive(Arrival {
            account: account(n),
            role,
            name: format!("Person {n}"),
            connection: ConnectionId(u64::try_from(n).expect("small")),
            microphone_on: true,
            camera_on: true,
        })
        .expect("arrives");
        if role != RoomRole::Facilitator {
            room.admit(account(LEAD), account(n)).expect("admitted");
        }
    }

    const LEAD: u128 = 1;
    const CO: u128 = 2;
    const ANA: u128 = 10;
    const BEN: u128 = 11;

    fn full_room() -> Room {
        let mut room = Room::default();
        arrive(&mut room, LEAD, RoomRole::Facilitator);
        arrive(&mut room, CO, RoomRole::Facilitator);
        arrive(&mut room, ANA, RoomRole::Patient);
        arrive(&mut room, BEN, RoomRole::Caregiver);
        room
    }

    /// Runs one change and returns its media orders.
    fn orders_of(room: &mut Room, change: impl FnOnce(&mut Room) -> Outcome) -> Vec<MediaOrder> {
        let before = MediaMembership::of(room);
        let outcome = change(room);
        media_orders(&before, room, &outcome)
    }

    #[test]
    fn mute_all_orders_each_muted_microphone() {
        let mut room = full_room();

        let orders = orders_of(&mut room, |room| {
            room.mute_all(account(LEAD)).expect("muted")
        });

        assert_eq!(
            orders,
            vec![
                MediaOrder::MuteMicrophone {
                    account: account(ANA),
                    group: Group::Main
                },
                MediaOrder::MuteMicrophone {
                    account: account(BEN),
                    group: Group::Main
                },
            ]
        );
    }

    #[test]
    fn private_room_moves_both_out_and_back() {
        let mut room = full_room();

        let orders = orders_of(&mut room, |room| {
            room.move_to_private(account(LEAD), account(ANA), account(CO))
                .expect("moved")
        });
        assert_eq!(
            orders,
            vec![
                MediaOrder::Disconnect {
                    account: account(CO),
                    group: Group::Main
                },
                MediaOrder::Disconnect {
                    account: account(ANA),
                    group: Group::Main
                },
            ]
        );

        // The co-facilitator leaving closes the private room: the patient leaves its media room
        // for the main one, and the co-facilitator leaves the private one.
        let private = Group::Private(account(ANA));
        let orders = orders_of(&mut room, |room| room.leave(account(CO), ConnectionId(2)));
        assert_eq!(
            orders,
            vec![
                MediaOrder::Disconnect {
                    account: account(CO),
                    group: private
                },
                MediaOrder::Disconnect {
                    account: account(ANA),
                    group: private
                },
            ]
        );
    }

    #[test]
    fn stopped_video_and_removal_are_ordered() {
        let mut room = full_room();

        let stop = orders_of(&mut room, |room| {
            room.stop_video(account(LEAD), account(BEN))
                .expect("stopped")
        });
        let allow = orders_of(&mut room, |room| {
            room.allow_video(account(LEAD), account(BEN))
                .expect("allowed")
        });
        let remove = orders_of(&mut room, |room| {
            room.remove(account(LEAD), account(BEN)).expect("removed")
        });

        let ben = account(BEN);
        assert_eq!(
            stop,
            vec![MediaOrder::StopCamera {
                account: ben,
                group: Group::Main
            }]
        );
        assert_eq!(
            allow,
            vec![MediaOrder::AllowCamera {
                account: ben,
                group: Group::Main
            }]
        );
        assert_eq!(
            remove,
            vec![MediaOrder::Disconnect {
                account: ben,
                group: Group::Main
            }]
        );
    }

    #[test]
    fn lobby_changes_order_nothing() {
        let mut room = Room::default();
        arrive(&mut room, LEAD, RoomRole::Facilitator);
        let waiting = orders_of(&mut room, |room| {
            room.arrive(Arrival {
                account: account(ANA),
                role: RoomRole::Patient,
                name: "Ana".to_owned(),
                connection: ConnectionId(10),
                microphone_on: true,
                camera_on: true,
            })
            .expect("arrives")
        });
        let declined = orders_of(&mut room, |room| {
            room.decline(account(LEAD), account(ANA)).expect("declined")
        });

        assert!(waiting.is_empty(), "{waiting:?}");
        assert!(declined.is_empty(), "{declined:?}");
    }

    #[test]
    fn private_rooms_get_names_of_their_own() {
        let ana = account(ANA);

        assert_eq!(media_room_name("session-1", Group::Main), "session-1");
        assert_eq!(
            media_room_name("session-1", Group::Private(ana)),
            format!("session-1.private.{ana}")
        );
    }
}
