//! Live sessions: who may enter a session's room and when, caregivers invited to a session,
//! attendance from the room's join and leave events, the technology check, a cohort's external
//! meeting link, and the port to media servers that keep rooms of their own (LiveKit).

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::enrolment::{self, EnrolmentState, Transition};
use stillpoint_domain::live::media::{MediaOrder, media_room_name};
use stillpoint_domain::live::presence::{RollCallRules, RoomAttendance, Stay, room_attendance};
use stillpoint_domain::live::room::{PresenceChange, RoomRole};
use stillpoint_domain::live::{self, JoinWindow, VideoProvider, WindowClosed};
use stillpoint_domain::{
    Account, AccountId, CohortId, CohortSessionId, InvalidValue, PatientId, Role,
};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{
    CohortDetails, CohortSession, RoomEvent, SessionGuest, SessionStatus, Store, TechCheck,
};
use crate::{AppError, Clock, StorageError, cohort_view, patients};

/// Whether the room can be entered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Open,
    NotYetOpen { opens_at: Timestamp },
    Over { closed_at: Timestamp },
    Cancelled,
}

/// An account's way into one session's room.
#[derive(Debug, Clone)]
pub struct RoomPass {
    pub session: CohortSession,
    pub cohort: CohortDetails,
    pub provider: VideoProvider,
    pub role: RoomRole,
    /// The name the others see: the account's display name.
    pub name: String,
    pub door: Door,
    /// The cohort's meeting link for the external provider, given only while the door is open.
    pub external_link: Option<String>,
}

impl RoomPass {
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.door == Door::Open
    }
}

/// Checks that `account` belongs to the session (a facilitator of the cohort, a patient enrolled
/// in it, or a caregiver invited to this session) and reports whether the join window is open.
/// Anyone else gets `Forbidden`. Opening the room page is audited.
pub async fn room_pass(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session_id: CohortSessionId,
    window: JoinWindow,
) -> Result<RoomPass, AppError> {
    let session = store.get_cohort_session(session_id).await?;
    let cohort = store.get_cohort_details(session.cohort).await?;
    let (role, patient) = room_role(store, account, &cohort, session_id).await?;

    let now = clock.now();
    let door = if session.status == SessionStatus::Cancelled {
        Door::Cancelled
    } else {
        match window.check(now, session.planned.start, session.planned.end) {
            Ok(()) => Door::Open,
            Err(WindowClosed::NotYetOpen { opens_at }) => Door::NotYetOpen { opens_at },
            Err(WindowClosed::Over { closed_at }) => Door::Over { closed_at },
        }
    };
    let provider = VideoProvider::parse(&cohort.video_provider)?;
    let external_link = if provider == VideoProvider::External && door == Door::Open {
        store.cohort_video_link(cohort.cohort.id).await?
    } else {
        None
    };

    record(
        store,
        clock,
        context,
        patient,
        ("Encounter", session_id.to_string()),
        AuditAction::Read,
    )
    .await?;
    Ok(RoomPass {
        session,
        cohort,
        provider,
        role,
        name: account.display_name.clone(),
        door,
        external_link,
    })
}

/// Returns whether `account` still belongs to the session's room. Connections repeat this check,
/// so that a withdrawal or a caregiver's revoked sharing ends a connection already open. Unlike
/// [`room_pass`], it is not audited, because it reads no more than the open room already showed.
pub async fn still_belongs(
    store: &dyn Store,
    account: AccountId,
    session: CohortSessionId,
) -> Result<bool, AppError> {
    let account = store.get_account(account).await?;
    let stored = store.get_cohort_session(session).await?;
    let cohort = store.get_cohort_details(stored.cohort).await?;
    match room_role(store, &account, &cohort, session).await {
        Ok(_) => Ok(stored.status != SessionStatus::Cancelled),
        Err(AppError::Forbidden) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Decides the account's part in the session, with the patient record it concerns.
async fn room_role(
    store: &dyn Store,
    account: &Account,
    cohort: &CohortDetails,
    session: CohortSessionId,
) -> Result<(RoomRole, Option<PatientId>), AppError> {
    let site = cohort.cohort.site_id;
    let facilitator = account
        .roles
        .iter()
        .any(|held| held.role == Role::Facilitator && held.site_id == Some(site))
        && cohort
            .facilitators
            .iter()
            .any(|(facilitator, _)| *facilitator == account.id);
    if facilitator {
        return Ok((RoomRole::Facilitator, None));
    }

    if let Some(patient) = patients::own_record_id(store, account).await? {
        // A waitlisted patient has no place in the sessions yet.
        let member = match store.find_enrolment(patient).await? {
            Some(EnrolmentState::Waitlisted { .. }) | None => None,
            Some(state) => state.cohort(),
        };
        if member == Some(cohort.cohort.id) {
            return Ok((RoomRole::Patient, Some(patient)));
        }
    }

    if account.has_role(Role::Caregiver) {
        let guests = store.session_guests(session).await?;
        if let Some(guest) = guests.iter().find(|guest| guest.caregiver == account.id) {
            // The invitation lasts only while the patient still shares with the caregiver.
            let shared = store.patients_of_caregiver(account.id).await?;
            if shared
                .iter()
                .any(|(patient, _)| patient.id == guest.patient)
            {
                return Ok((RoomRole::Caregiver, Some(guest.patient)));
            }
        }
    }
    Err(AppError::Forbidden)
}

/// Stores the room's join and leave events for attendance. A failure is logged, not returned:
/// the room goes on, and the facilitator's roll call still works by hand.
pub async fn record_room_changes(
    store: &dyn Store,
    clock: &dyn Clock,
    session: CohortSessionId,
    changes: &[PresenceChange],
) {
    for change in changes {
        let (account, entered) = match *change {
            PresenceChange::Entered(account) => (account, true),
            PresenceChange::Left(account) => (account, false),
        };
        let event = RoomEvent {
            session,
            account,
            entered,
            at: clock.now(),
        };
        if let Err(error) = store.insert_room_event(&event).await {
            tracing::error!(session_id = %session, account_id = %account, %error, "room event not stored");
        }
    }
}

/// Returns, for each patient of the roster who was in the room, the minutes present and the
/// suggested roll call mark.
// NOTE: a server that stops during a session stores no leave for the people then in the room,
// so their stays count to the end of the session. The facilitator checks the roll call.
pub async fn attendance_from_room(
    store: &dyn Store,
    clock: &dyn Clock,
    session: &CohortSession,
    patients: &[PatientId],
) -> Result<HashMap<PatientId, RoomAttendance>, AppError> {
    let events = store.room_events(session.id).await?;
    if events.is_empty() {
        return Ok(HashMap::new());
    }
    let mut stays: HashMap<AccountId, Vec<Stay>> = HashMap::new();
    for event in &events {
        let list = stays.entry(event.account).or_default();
        if event.entered {
            list.push(Stay {
                entered: event.at,
                left: None,
            });
        } else if let Some(open) = list.iter_mut().rev().find(|stay| stay.left.is_none()) {
            open.left = Some(event.at);
        }
    }

    let mut result = HashMap::new();
    for patient_id in patients {
        let patient = store.get_patient(*patient_id).await?;
        let Some(account) = patient.account_id else {
            continue;
        };
        let Some(list) = stays.get(&account) else {
            continue;
        };
        let attendance = room_attendance(
            list,
            session.planned.start,
            session.planned.end,
            clock.now(),
            RollCallRules::default(),
        );
        result.insert(*patient_id, attendance);
    }
    Ok(result)
}

/// A failed request to a media server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MediaServerError {
    pub message: String,
}

/// The outcome of an order a media server received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforced {
    Done,
    /// The participant was not in the media room, for example because their browser had not
    /// joined it yet.
    NotInRoom,
}

/// A media server that keeps rooms of its own and enforces the facilitators' controls there,
/// such as LiveKit. Each group of a session's room is one media room, named by
/// [`media_room_name`]. The embedded SFU needs no such port, because the room hub sets its
/// forwarding directly.
#[async_trait]
pub trait ManagedRooms: Send + Sync + std::fmt::Debug {
    /// Makes sure the media room exists with the clinic's limits; an existing room is kept.
    async fn open_room(&self, room: &str) -> Result<(), MediaServerError>;

    /// Closes a media room and disconnects everyone still in it. A room that is already gone is
    /// not an error.
    async fn close_room(&self, room: &str) -> Result<(), MediaServerError>;

    /// Carries out one order in the media room of `session_room`'s group.
    async fn enforce(
        &self,
        session_room: &str,
        order: &MediaOrder,
    ) -> Result<Enforced, MediaServerError>;
}

/// Carries out a room change's orders one after another, skipping those that `still_applies`
/// rejects because the room changed again since. Returns the orders whose participant was not in
/// the media room yet, for the caller to try again. A failure is logged with the room and
/// account, not returned: the room goes on, and the facilitator can repeat the control.
pub async fn enforce_media_orders(
    rooms: &dyn ManagedRooms,
    session_room: &str,
    orders: &[MediaOrder],
    still_applies: &(dyn Fn(&MediaOrder) -> bool + Sync),
) -> Vec<MediaOrder> {
    let mut not_in_room = Vec::new();
    for order in orders {
        if !still_applies(order) {
            continue;
        }
        match rooms.enforce(session_room, order).await {
            Ok(Enforced::Done) => {}
            Ok(Enforced::NotInRoom) => not_in_room.push(order.clone()),
            Err(error) => {
                tracing::error!(
                    room = %media_room_name(session_room, order.group()),
                    account_id = %order.account(),
                    order = order.code(),
                    %error,
                    "media server did not carry out a room control"
                );
            }
        }
    }
    not_in_room
}

/// A live session a caregiver is invited to.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub session: CohortSession,
    /// The patient the caregiver accompanies, by name.
    pub patient_name: String,
}

/// Lists the caregiver's invitations to sessions whose room has not closed yet, soonest first.
/// An invitation counts only while its patient still shares their program with the caregiver,
/// as it does for entering the room.
pub async fn caregiver_invitations(
    store: &dyn Store,
    clock: &dyn Clock,
    account: &Account,
    window: JoinWindow,
) -> Result<Vec<Invitation>, AppError> {
    if !account.has_role(Role::Caregiver) {
        return Ok(Vec::new());
    }
    let invitations = store.invitations_of_caregiver(account.id).await?;
    if invitations.is_empty() {
        return Ok(Vec::new());
    }
    let shared = store.patients_of_caregiver(account.id).await?;
    let now = clock.now();
    let mut listed = Vec::new();
    for guest in invitations {
        let Some((patient, _)) = shared
            .iter()
            .find(|(patient, _)| patient.id == guest.patient)
        else {
            continue;
        };
        let session = store.get_cohort_session(guest.session).await?;
        let closed = window.closes_at(session.planned.end) <= now;
        if closed || session.status == SessionStatus::Cancelled {
            continue;
        }
        listed.push(Invitation {
            session,
            patient_name: format!("{} {}", patient.given_name, patient.family_name),
        });
    }
    listed.sort_by_key(|invitation| invitation.session.planned.start);
    Ok(listed)
}

/// A caregiver a facilitator may invite to a session: one with whom a patient of the cohort
/// shares their program.
#[derive(Debug, Clone)]
pub struct GuestCandidate {
    pub caregiver: Account,
    pub patient: PatientId,
    pub patient_name: String,
    pub invited: bool,
}

/// Lists the caregivers of the cohort's patients, with whether each is invited to the session.
/// For the cohort's facilitators and the site's program administrators.
pub async fn guest_candidates(
    store: &dyn Store,
    account: &Account,
    session_id: CohortSessionId,
) -> Result<Vec<GuestCandidate>, AppError> {
    let session = roll_takers_session(store, account, session_id).await?;
    let invited = store.session_guests(session_id).await?;
    let mut candidates = Vec::new();
    for entry in store.cohort_roster(session.cohort).await? {
        if matches!(entry.state, EnrolmentState::Waitlisted { .. })
            || entry.state.cohort() != Some(session.cohort)
        {
            continue;
        }
        for grant in store.caregiver_grants_of_patient(entry.patient).await? {
            if grant.active_scopes().is_empty() {
                continue;
            }
            let caregiver = store.get_account(grant.caregiver).await?;
            candidates.push(GuestCandidate {
                invited: invited.iter().any(|guest| guest.caregiver == caregiver.id),
                caregiver,
                patient: entry.patient,
                patient_name: format!("{} {}", entry.given_name, entry.family_name),
            });
        }
    }
    Ok(candidates)
}

/// Returns the session when `account` takes its roll: the cohort's facilitators and the site's
/// program administrators, who also manage its invitations. Anyone else gets `Forbidden`.
async fn roll_takers_session(
    store: &dyn Store,
    account: &Account,
    session_id: CohortSessionId,
) -> Result<CohortSession, AppError> {
    let session = store.get_cohort_session(session_id).await?;
    let details = store.get_cohort_details(session.cohort).await?;
    let access = cohort_view::access(account, &details).ok_or(AppError::Forbidden)?;
    if !access.take_roll {
        return Err(AppError::Forbidden);
    }
    Ok(session)
}

/// Invites a caregiver of one of the cohort's patients to a session.
pub async fn invite_guest(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session_id: CohortSessionId,
    caregiver: AccountId,
) -> Result<(), AppError> {
    let candidates = guest_candidates(store, account, session_id).await?;
    let candidate = candidates
        .iter()
        .find(|candidate| candidate.caregiver.id == caregiver)
        .ok_or_else(|| {
            InvalidValue::new(
                "caregiver",
                "this person is not a caregiver with whom a patient of the cohort shares their program",
            )
        })?;
    store
        .put_session_guest(&SessionGuest {
            session: session_id,
            caregiver,
            patient: candidate.patient,
            invited_by: account.id,
            invited_at: clock.now(),
        })
        .await?;
    record(
        store,
        clock,
        context,
        Some(candidate.patient),
        ("Encounter", session_id.to_string()),
        AuditAction::Update,
    )
    .await?;
    tracing::info!(session_id = %session_id, caregiver_id = %caregiver, "caregiver invited to a session");
    Ok(())
}

/// Withdraws a caregiver's invitation to a session. An open room connection of the caregiver
/// closes at its next membership check.
pub async fn withdraw_guest(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    session_id: CohortSessionId,
    caregiver: AccountId,
) -> Result<(), AppError> {
    roll_takers_session(store, account, session_id).await?;
    let guest = store
        .session_guests(session_id)
        .await?
        .into_iter()
        .find(|guest| guest.caregiver == caregiver)
        .ok_or_else(|| {
            InvalidValue::new("caregiver", "this caregiver is not invited to this session")
        })?;
    store.delete_session_guest(session_id, caregiver).await?;
    record(
        store,
        clock,
        context,
        Some(guest.patient),
        ("Encounter", session_id.to_string()),
        AuditAction::Update,
    )
    .await?;
    tracing::info!(session_id = %session_id, caregiver_id = %caregiver, "caregiver invitation withdrawn");
    Ok(())
}

/// The result of a technology check as the browser reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // Independent results of one check.
pub struct CheckResults {
    pub camera_ok: bool,
    pub microphone_ok: bool,
    pub speaker_ok: bool,
    pub connection_ok: bool,
    pub round_trip_ms: Option<u32>,
}

/// Stores a technology check. When the microphone, speaker and connection work and the patient
/// has consented, the check completes the "oriented" step of enrolment; returns whether it did.
/// A camera is not required, since a participant can take part by audio.
pub async fn complete_tech_check(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    results: CheckResults,
) -> Result<bool, AppError> {
    if results.round_trip_ms.is_some_and(|ms| ms > 60_000) {
        return Err(InvalidValue::new("round_trip_ms", "a round trip of more than 60 000 ms is not a measurement; run the connection test again").into());
    }
    store
        .insert_tech_check(&TechCheck {
            account: account.id,
            camera_ok: results.camera_ok,
            microphone_ok: results.microphone_ok,
            speaker_ok: results.speaker_ok,
            connection_ok: results.connection_ok,
            round_trip_ms: results.round_trip_ms,
            checked_at: clock.now(),
        })
        .await?;
    let passed = results.microphone_ok && results.speaker_ok && results.connection_ok;
    let Some(patient) = patients::own_record_id(store, account).await? else {
        return Ok(false);
    };
    let stored = store.find_enrolment(patient).await?;
    if !passed || stored != Some(EnrolmentState::Consented) {
        return Ok(false);
    }
    let current = EnrolmentState::Consented;
    let next = enrolment::apply(&current, Transition::CompleteOrientation).map_err(|_| {
        AppError::TransitionNotAllowed {
            current: current.code(),
            requested: "oriented",
        }
    })?;
    match store
        .record_transition(
            patient,
            stored.as_ref(),
            &next,
            Some(account.id),
            next.reason(),
            None,
            clock.now(),
        )
        .await
    {
        Ok(()) => {}
        // Staff moved the patient on in the meantime; the check is stored all the same.
        Err(StorageError::Conflict { .. }) => return Ok(false),
        Err(other) => return Err(other.into()),
    }
    record(
        store,
        clock,
        context,
        Some(patient),
        ("EpisodeOfCare", patient.to_string()),
        AuditAction::Update,
    )
    .await?;
    tracing::info!(patient_id = %patient, "technology check completed orientation");
    Ok(true)
}

/// Sets where a cohort's sessions take place: the video provider and, for the external one, the
/// meeting link, which it requires. For those who change the cohort's sessions.
pub async fn set_video(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    cohort: CohortId,
    provider: &str,
    link: &str,
) -> Result<(), AppError> {
    let details = store.get_cohort_details(cohort).await?;
    let access = cohort_view::access(account, &details).ok_or(AppError::Forbidden)?;
    if !access.change_sessions {
        return Err(AppError::Forbidden);
    }
    let provider = VideoProvider::parse(provider)?;
    let link = live::check_https_link("video_link", link)?;
    if provider == VideoProvider::External && link.is_none() {
        return Err(InvalidValue::new(
            "video_link",
            "a cohort that meets in another video service needs the meeting's https:// address",
        )
        .into());
    }
    store
        .set_cohort_video(cohort, provider.code(), link.as_deref())
        .await?;
    record(
        store,
        clock,
        context,
        None,
        ("Group", cohort.to_string()),
        AuditAction::Update,
    )
    .await?;
    tracing::info!(cohort_id = %cohort, provider = provider.code(), "cohort video provider set");
    Ok(())
}

/// Records a successful access to a live session resource, `(type, id)`, in the audit trail.
async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: Option<PatientId>,
    (resource_type, resource_id): (&'static str, String),
    action: AuditAction,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient,
        resource_type,
        resource_id: Some(resource_id),
        action,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
