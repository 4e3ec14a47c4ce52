//! Storage of live sessions: caregivers invited to a session, the room's join and leave events,
//! technology checks, and a cohort's external meeting link.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::{AccountId, CohortId, CohortSessionId, PatientId};

use crate::StorageError;

/// A caregiver invited to one session by a facilitator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGuest {
    pub session: CohortSessionId,
    pub caregiver: AccountId,
    /// The patient the caregiver accompanies.
    pub patient: PatientId,
    pub invited_by: AccountId,
    pub invited_at: Timestamp,
}

/// One join or leave in a session's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomEvent {
    pub session: CohortSessionId,
    pub account: AccountId,
    /// True for entering the room, false for leaving it.
    pub entered: bool,
    pub at: Timestamp,
}

/// The outcome of one technology check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // Independent results of one check.
pub struct TechCheck {
    pub account: AccountId,
    pub camera_ok: bool,
    pub microphone_ok: bool,
    pub speaker_ok: bool,
    pub connection_ok: bool,
    /// The round trip to the video server, when the connection test reached it.
    pub round_trip_ms: Option<u32>,
    pub checked_at: Timestamp,
}

#[async_trait]
pub trait LiveStore: Send + Sync {
    /// Stores an invitation; inviting the same caregiver again changes nothing.
    async fn put_session_guest(&self, guest: &SessionGuest) -> Result<(), StorageError>;
    async fn session_guests(
        &self,
        session: CohortSessionId,
    ) -> Result<Vec<SessionGuest>, StorageError>;
    /// Withdraws an invitation; returns `false` when there was none.
    async fn delete_session_guest(
        &self,
        session: CohortSessionId,
        caregiver: AccountId,
    ) -> Result<bool, StorageError>;
    /// Lists the sessions a caregiver was invited to, oldest invitation first.
    async fn invitations_of_caregiver(
        &self,
        caregiver: AccountId,
    ) -> Result<Vec<SessionGuest>, StorageError>;
    async fn insert_room_event(&self, event: &RoomEvent) -> Result<(), StorageError>;
    /// Lists a session's room events in time order.
    async fn room_events(&self, session: CohortSessionId) -> Result<Vec<RoomEvent>, StorageError>;
    async fn insert_tech_check(&self, check: &TechCheck) -> Result<(), StorageError>;
    async fn latest_tech_check(
        &self,
        account: AccountId,
    ) -> Result<Option<TechCheck>, StorageError>;
    /// Sets a cohort's video provider and its external meeting link (`None` clears it).
    async fn set_cohort_video(
        &self,
        cohort: CohortId,
        provider: &str,
        link: Option<&str>,
    ) -> Result<(), StorageError>;
    async fn cohort_video_link(&self, cohort: CohortId) -> Result<Option<String>, StorageError>;
}
