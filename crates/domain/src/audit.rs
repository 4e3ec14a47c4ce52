//! The audit trail: an append-only, hash-chained record of every access to patient data.
//!
//! Each event stores the SHA-256 of its predecessor's hash and its own content, so editing,
//! deleting or reordering any stored event breaks the chain at that point. Cutting events off
//! the end leaves a valid but shorter chain. A [`Checkpoint`] of the head, signed with
//! HMAC-SHA256 and kept outside the database, detects that.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac as _};
use jiff::Timestamp;
use sha2::{Digest as _, Sha256};

use crate::{AccountId, InvalidValue, PatientId, Role};

/// The `previous_hash` of the first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The kind of access an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Read,
    Create,
    Update,
    Delete,
    SignIn,
    SignOut,
    /// The second sign-in step: a one-time code, or setting up or resetting the authenticator.
    SecondFactor,
}

/// The result of the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    Success,
    /// Access was refused (not signed in, not permitted, wrong password).
    Denied,
    /// The action failed for another reason.
    Failed,
}

macro_rules! coded_enum {
    ($name:ident, $field:literal, $($variant:ident => $code:literal),+ $(,)?) => {
        impl $name {
            #[must_use]
            pub const fn code(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;

            fn from_str(code: &str) -> Result<Self, Self::Err> {
                match code {
                    $($code => Ok(Self::$variant),)+
                    other => Err(InvalidValue::new($field, format!("'{other}' is not a known {}", $field))),
                }
            }
        }
    };
}

coded_enum!(AuditAction, "action", Read => "read", Create => "create", Update => "update", Delete => "delete", SignIn => "sign_in", SignOut => "sign_out", SecondFactor => "second_factor");
coded_enum!(AuditOutcome, "outcome", Success => "success", Denied => "denied", Failed => "failed");

/// An event to be appended; the store assigns its sequence number and chain hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// When it happened, in UTC, to the millisecond.
    pub recorded_at: Timestamp,
    /// The acting account, or `None` for an anonymous request (a failed sign-in for an unknown
    /// address).
    pub actor: Option<AccountId>,
    /// The role the actor acted in.
    pub actor_role: Option<Role>,
    /// Whose data was touched, if a patient's.
    pub patient: Option<PatientId>,
    /// The kind of record, named as the FHIR resource type where one fits (`Patient`).
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// The client's IP address as the server saw it.
    pub source_address: Option<String>,
    /// Whether the access used emergency ("break-glass") access outside the care team.
    pub break_glass: bool,
}

/// A stored event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Position in the chain, from 1 without gaps.
    pub sequence: i64,
    pub event: NewAuditEvent,
    /// Hex SHA-256 of the previous event ([`GENESIS_HASH`] for the first).
    pub previous_hash: String,
    /// Hex SHA-256 of `previous_hash` and this event's content.
    pub hash: String,
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;

    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// The content hash: SHA-256 over the previous hash and every field. A present field is written
/// as `S`, its byte length, a colon and its text, and an absent one as `N`, so no two different
/// events encode alike (an empty text and a missing value differ too).
#[must_use]
pub fn event_hash(sequence: i64, event: &NewAuditEvent, previous_hash: &str) -> String {
    let fields: [Option<String>; 12] = [
        Some(previous_hash.to_owned()),
        Some(sequence.to_string()),
        Some(event.recorded_at.as_millisecond().to_string()),
        event.actor.map(|id| id.to_string()),
        event.actor_role.map(|role| role.code().to_owned()),
        event.patient.map(|id| id.to_string()),
        Some(event.resource_type.clone()),
        event.resource_id.clone(),
        Some(event.action.code().to_owned()),
        Some(event.outcome.code().to_owned()),
        event.source_address.clone(),
        Some(if event.break_glass { "1" } else { "0" }.to_owned()),
    ];
    let mut hasher = Sha256::new();
    for field in fields {
        match field {
            Some(text) => {
                hasher.update(b"S");
                hasher.update(text.len().to_string().as_bytes());
                hasher.update(b":");
                hasher.update(text.as_bytes());
            }
            None => hasher.update(b"N"),
        }
    }
    hex(&hasher.finalize())
}

impl AuditEvent {
    /// Places `event` after the event whose hash is `previous_hash`, at `sequence`.
    #[must_use]
    pub fn chain(sequence: i64, event: NewAuditEvent, previous_hash: &str) -> Self {
        let hash = event_hash(sequence, &event, previous_hash);
        Self {
            sequence,
            event,
            previous_hash: previous_hash.to_owned(),
            hash,
        }
    }
}

/// The head of the chain at some moment, signed so that it cannot be forged without the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub sequence: i64,
    pub hash: String,
    /// Hex HMAC-SHA256 of `sequence` and `hash`.
    pub signature: String,
}

type HmacSha256 = Hmac<Sha256>;

fn checkpoint_mac(key: &[u8], sequence: i64, hash: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("stillpoint-audit-checkpoint:{sequence}:{hash}").as_bytes());
    mac
}

impl Checkpoint {
    /// Signs the head `(sequence, hash)` with `key`.
    #[must_use]
    pub fn sign(key: &[u8], sequence: i64, hash: &str) -> Self {
        let signature = hex(&checkpoint_mac(key, sequence, hash).finalize().into_bytes());
        Self {
            sequence,
            hash: hash.to_owned(),
            signature,
        }
    }

    /// Whether the signature was made with `key`, compared in constant time.
    #[must_use]
    pub fn is_signed_by(&self, key: &[u8]) -> bool {
        let Some(bytes) = decode_hex(&self.signature) else {
            return false;
        };
        checkpoint_mac(key, self.sequence, &self.hash)
            .verify_slice(&bytes)
            .is_ok()
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

/// The first place where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "event {found} is where event {expected} should be: events are missing or out of order"
    )]
    SequenceGap { expected: i64, found: i64 },
    #[error("event {sequence} does not link to the event before it")]
    BrokenLink { sequence: i64 },
    #[error(
        "event {sequence} was changed after it was recorded: its hash does not match its content"
    )]
    AlteredEvent { sequence: i64 },
    #[error(
        "the chain ends at event {last} but a checkpoint recorded event {checkpoint}: events were removed from the end"
    )]
    MissingTail { last: i64, checkpoint: i64 },
    #[error("event {sequence} differs from the one the checkpoint recorded")]
    CheckpointMismatch { sequence: i64 },
    #[error(
        "the checkpoint's signature is invalid: the checkpoint was altered or made with another key"
    )]
    ForgedCheckpoint,
}

impl ChainBreak {
    /// The sequence number of the first broken event, where there is one.
    #[must_use]
    pub fn sequence(&self) -> Option<i64> {
        match self {
            Self::SequenceGap { expected, .. } => Some(*expected),
            Self::BrokenLink { sequence }
            | Self::AlteredEvent { sequence }
            | Self::CheckpointMismatch { sequence } => Some(*sequence),
            Self::MissingTail { last, .. } => Some(last + 1),
            Self::ForgedCheckpoint => None,
        }
    }
}

/// Incremental chain verification, so a long trail can be checked page by page.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_sequence: i64,
    previous_hash: String,
    checkpoint: Option<Checkpoint>,
    checkpoint_seen: bool,
}

impl ChainVerifier {
    /// Starts at the genesis event. A checkpoint is checked against `key` first.
    pub fn new(checkpoint: Option<Checkpoint>, key: &[u8]) -> Result<Self, ChainBreak> {
        if let Some(checkpoint) = &checkpoint
            && !checkpoint.is_signed_by(key)
        {
            return Err(ChainBreak::ForgedCheckpoint);
        }
        Ok(Self {
            next_sequence: 1,
            previous_hash: GENESIS_HASH.to_owned(),
            checkpoint,
            checkpoint_seen: false,
        })
    }

    /// Continues after a known-good event, to check only what was appended since a checkpoint.
    #[must_use]
    pub fn resume_after(sequence: i64, hash: &str) -> Self {
        Self {
            next_sequence: sequence + 1,
            previous_hash: hash.to_owned(),
            checkpoint: None,
            checkpoint_seen: false,
        }
    }

    /// Checks the next event in sequence order.
    pub fn check(&mut self, event: &AuditEvent) -> Result<(), ChainBreak> {
        if event.sequence != self.next_sequence {
            return Err(ChainBreak::SequenceGap {
                expected: self.next_sequence,
                found: event.sequence,
            });
        }
        if event.previous_hash != self.previous_hash {
            return Err(ChainBreak::BrokenLink {
                sequence: event.sequence,
            });
        }
        if event_hash(event.sequence, &event.event, &event.previous_hash) != event.hash {
            return Err(ChainBreak::AlteredEvent {
                sequence: event.sequence,
            });
        }
        if let Some(checkpoint) = &self.checkpoint
            && checkpoint.sequence == event.sequence
        {
            if checkpoint.hash != event.hash {
                return Err(ChainBreak::CheckpointMismatch {
                    sequence: event.sequence,
                });
            }
            self.checkpoint_seen = true;
        }

        self.next_sequence += 1;
        self.previous_hash.clone_from(&event.hash);
        Ok(())
    }

    /// Ends verification; returns the number of events checked.
    pub fn finish(self) -> Result<i64, ChainBreak> {
        let last = self.next_sequence - 1;
        match self.checkpoint {
            Some(checkpoint) if !self.checkpoint_seen && checkpoint.sequence > 0 => {
                Err(ChainBreak::MissingTail {
                    last,
                    checkpoint: checkpoint.sequence,
                })
            }
            _ => Ok(last),
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn event(n: i64) -> NewAuditEvent {
        NewAuditEvent {
            recorded_at: Timestamp::from_millisecond(1_796_000_000_000 + n).expect("valid"),
            actor: Some(AccountId::from_uuid(Uuid::from_u128(7))),
            actor_role: Some(Role::Clinician),
            patient: Some(PatientId::from_uuid(Uuid::from_u128(
                u128::try_from(n).expect("positive"),
            ))),
            resource_type: "Patient".to_owned(),
            resource_id: Some(format!("p{n}")),
            action: AuditAction::Read,
            outcome: AuditOutcome::Success,
            source_address: Some("127.0.0.1".to_owned()),
            break_glass: false,
        }
    }

    fn chain(length: i64) -> Vec<AuditEvent> {
        let mut events: Vec<AuditEvent> = Vec::new();
        for n in 1..=length {
            let previous = events
                .last()
                .map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
            events.push(AuditEvent::chain(n, event(n), &previous));
        }
        events
    }

    fn verify(events: &[AuditEvent], checkpoint: Option<Checkpoint>) -> Result<i64, ChainBreak> {
        let mut verifier = ChainVerifier::new(checkpoint, b"key")?;
        for event in events {
            verifier.check(event)?;
        }
        verifier.finish()
    }

    #[test]
    fn intact_chain_verifies() {
        let events = chain(5);
        let checkpoint = Checkpoint::sign(b"key", 5, &events[4].hash);
        assert_eq!(verify(&events, Some(checkpoint)), Ok(5));
        assert_eq!(verify(&[], None), Ok(0));
    }

    #[test]
    fn altered_field_is_detected() {
        let mut events = chain(5);
        events[2].event.break_glass = true;
        assert_eq!(
            verify(&events, None),
            Err(ChainBreak::AlteredEvent { sequence: 3 })
        );
    }

    #[test]
    fn deleted_event_is_detected() {
        let mut events = chain(5);
        events.remove(1);
        assert_eq!(
            verify(&events, None),
            Err(ChainBreak::SequenceGap {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn cut_tail_needs_the_checkpoint() {
        let events = chain(5);
        let checkpoint = Checkpoint::sign(b"key", 5, &events[4].hash);
        assert_eq!(
            verify(&events[..3], None),
            Ok(3),
            "without a checkpoint a shorter chain looks valid"
        );
        assert_eq!(
            verify(&events[..3], Some(checkpoint)),
            Err(ChainBreak::MissingTail {
                last: 3,
                checkpoint: 5
            })
        );
    }

    #[test]
    fn forged_checkpoint_is_rejected() {
        let events = chain(3);
        let mut checkpoint = Checkpoint::sign(b"key", 3, &events[2].hash);
        checkpoint.sequence = 2;
        assert_eq!(
            verify(&events, Some(checkpoint)),
            Err(ChainBreak::ForgedCheckpoint)
        );
        let other_key = Checkpoint::sign(b"other", 3, &events[2].hash);
        assert_eq!(
            verify(&events, Some(other_key)),
            Err(ChainBreak::ForgedCheckpoint)
        );
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut first = event(1);
        first.resource_type = "Pat".to_owned();
        first.resource_id = Some("ientX".to_owned());
        let mut second = event(1);
        second.resource_type = "Patient".to_owned();
        second.resource_id = Some("X".to_owned());
        assert_ne!(
            event_hash(1, &first, GENESIS_HASH),
            event_hash(1, &second, GENESIS_HASH)
        );
    }

    #[test]
    fn rewrite_with_recomputed_hashes_fails_the_checkpoint() {
        let events = chain(5);
        let checkpoint = Checkpoint::sign(b"key", 5, &events[4].hash);
        let mut forged = events.clone();
        forged[1].event.outcome = AuditOutcome::Denied;
        for index in 1..forged.len() {
            let previous = if index == 0 {
                GENESIS_HASH.to_owned()
            } else {
                forged[index - 1].hash.clone()
            };
            forged[index] = AuditEvent::chain(
                forged[index].sequence,
                forged[index].event.clone(),
                &previous,
            );
        }
        assert_eq!(
            verify(&forged, None),
            Ok(5),
            "a rewritten chain is consistent in itself"
        );
        assert_eq!(
            verify(&forged, Some(checkpoint)),
            Err(ChainBreak::CheckpointMismatch { sequence: 5 })
        );
    }

    #[test]
    fn missing_and_empty_values_hash_differently() {
        let mut with_empty = event(1);
        with_empty.source_address = Some(String::new());
        let mut without = event(1);
        without.source_address = None;
        assert_ne!(
            event_hash(1, &with_empty, GENESIS_HASH),
            event_hash(1, &without, GENESIS_HASH)
        );
    }

    #[test]
    fn resumed_verification_checks_only_new_events() {
        let events = chain(5);
        let mut verifier = ChainVerifier::resume_after(3, &events[2].hash);
        verifier
            .check(&events[3])
            .expect("event 4 links to event 3");
        verifier
            .check(&events[4])
            .expect("event 5 links to event 4");
        assert_eq!(verifier.finish(), Ok(5));
    }

    #[test]
    fn action_and_outcome_codes_round_trip() {
        for action in [
            AuditAction::Read,
            AuditAction::Create,
            AuditAction::Update,
            AuditAction::Delete,
            AuditAction::SignIn,
            AuditAction::SignOut,
        ] {
            assert_eq!(action.code().parse::<AuditAction>(), Ok(action));
        }
        for outcome in [
            AuditOutcome::Success,
            AuditOutcome::Denied,
            AuditOutcome::Failed,
        ] {
            assert_eq!(outcome.code().parse::<AuditOutcome>(), Ok(outcome));
        }
    }
}
