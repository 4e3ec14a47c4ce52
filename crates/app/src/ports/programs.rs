//! Storage ports of the MBSR programs: curriculum versions, cohorts' sessions and their changes,
//! rosters, attendance and calendar feeds.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::attendance::AttendanceRecord;
use stillpoint_domain::care_team::Cohort;
use stillpoint_domain::curriculum::{Curriculum, CurriculumId};
use stillpoint_domain::enrolment::EnrolmentState;
use stillpoint_domain::schedule::PlannedSession;
use stillpoint_domain::{
    AccountId, CohortId, CohortSessionId, Language, PatientId, SiteId, TimeZoneName,
};

use crate::StorageError;

/// Whether a curriculum version can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurriculumStatus {
    /// Being edited; no cohort can use it yet.
    Draft,
    /// Fixed for good; cohorts can start with it.
    Published,
}

impl CurriculumStatus {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }
}

/// A stored curriculum version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCurriculum {
    pub curriculum: Curriculum,
    pub status: CurriculumStatus,
    /// `curriculum-id@version` this curriculum was copied from.
    pub based_on: Option<String>,
    /// `None` for the curricula that ship with Stillpoint.
    pub created_by: Option<AccountId>,
    /// The site whose program administrators edit the curriculum; `None` for the shipped ones
    /// and for those a system administrator made for every site.
    pub site: Option<SiteId>,
    /// Raised by every saved edit, so an edit based on an older reading is rejected.
    pub revision: u32,
    pub created_at: Timestamp,
    pub published_at: Option<Timestamp>,
}

/// Versions of the curricula.
#[async_trait]
pub trait CurriculumStore: Send + Sync {
    /// Inserts a version; fails with `Conflict { constraint: "curriculum_versions_pkey" }` when
    /// the id and version exist already.
    async fn insert_curriculum_version(
        &self,
        stored: &StoredCurriculum,
    ) -> Result<(), StorageError>;
    async fn get_curriculum_version(
        &self,
        id: &CurriculumId,
        version: u32,
    ) -> Result<StoredCurriculum, StorageError>;
    /// Every version of every curriculum, by id and version.
    async fn list_curriculum_versions(&self) -> Result<Vec<StoredCurriculum>, StorageError>;
    /// Replaces a draft's content and raises its revision; fails with `Conflict { constraint:
    /// "curriculum_versions_changed" }` when the version is published or its revision is no
    /// longer `revision`.
    async fn update_curriculum_draft(
        &self,
        curriculum: &Curriculum,
        revision: u32,
    ) -> Result<(), StorageError>;
    /// Marks a draft published; fails like [`Self::update_curriculum_draft`].
    async fn publish_curriculum_version(
        &self,
        id: &CurriculumId,
        version: u32,
        revision: u32,
        at: Timestamp,
    ) -> Result<(), StorageError>;
}

/// A cohort with everything its pages show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortDetails {
    pub cohort: Cohort,
    pub capacity: u32,
    pub language: Language,
    pub time_zone: TimeZoneName,
    pub video_provider: String,
    /// The curriculum version the cohort started with; `None` for cohorts made before curricula.
    pub curriculum: Option<(CurriculumId, u32)>,
    /// Facilitators with whether each leads, the lead first.
    pub facilitators: Vec<(AccountId, bool)>,
}

/// Whether a session takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Scheduled,
    Cancelled,
}

/// One stored session of a cohort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortSession {
    pub id: CohortSessionId,
    pub cohort: CohortId,
    pub planned: PlannedSession,
    pub status: SessionStatus,
    /// The iCalendar SEQUENCE: 0 when created, raised by every change.
    pub sequence: u32,
}

/// A reschedule or a cancellation of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChange {
    pub session: CohortSessionId,
    /// The sequence the change was made from; the store refuses the change when another one
    /// came first.
    pub expected_sequence: u32,
    /// The new plan for a reschedule, `None` for a cancellation.
    pub new_plan: Option<PlannedSession>,
    pub reason: String,
    pub actor: AccountId,
    pub at: Timestamp,
}

/// A recorded change, for the cohort page's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChangeRecord {
    pub session: CohortSessionId,
    pub cancelled: bool,
    pub previous_start: Timestamp,
    pub new_start: Option<Timestamp>,
    pub reason: String,
    pub actor: AccountId,
    pub at: Timestamp,
}

/// A patient on a cohort's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub patient: PatientId,
    pub given_name: String,
    pub family_name: String,
    pub state: EnrolmentState,
    /// When the patient last moved on the pathway.
    pub since: Timestamp,
}

/// One roll call mark as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceEntry {
    pub session: CohortSessionId,
    pub patient: PatientId,
    pub record: AttendanceRecord,
}

/// Cohorts' sessions, rosters, attendance and calendar feeds.
#[async_trait]
pub trait ProgramStore: Send + Sync {
    async fn get_cohort_details(&self, cohort: CohortId) -> Result<CohortDetails, StorageError>;
    /// Sets the cohort's capacity unless fewer places than are taken; returns `false` (changing
    /// nothing) when more patients hold a place than `capacity`.
    async fn set_cohort_capacity(
        &self,
        cohort: CohortId,
        capacity: u32,
    ) -> Result<bool, StorageError>;
    /// Lists every cohort, by name.
    async fn list_cohort_details(&self) -> Result<Vec<CohortDetails>, StorageError>;
    /// Lists the cohort's sessions in time order, cancelled ones included.
    async fn list_cohort_sessions(
        &self,
        cohort: CohortId,
    ) -> Result<Vec<CohortSession>, StorageError>;
    async fn get_cohort_session(
        &self,
        session: CohortSessionId,
    ) -> Result<CohortSession, StorageError>;
    /// In one transaction: applies the change, raises the sequence and records who and why.
    /// Fails with `Conflict { constraint: "cohort_sessions_changed" }` when the session's
    /// sequence is no longer `expected_sequence` or it was cancelled.
    async fn change_cohort_session(&self, change: &SessionChange) -> Result<(), StorageError>;
    /// Lists the changes to the cohort's sessions, newest first.
    async fn list_session_changes(
        &self,
        cohort: CohortId,
    ) -> Result<Vec<SessionChangeRecord>, StorageError>;
    /// Patients whose pathway names the cohort (waitlisted, enrolled and later states), by name.
    async fn cohort_roster(&self, cohort: CohortId) -> Result<Vec<RosterEntry>, StorageError>;
    /// Creates or replaces the marks of one session's roll call in one transaction.
    async fn put_attendance(
        &self,
        entries: &[AttendanceEntry],
        recorded_by: AccountId,
        at: Timestamp,
    ) -> Result<(), StorageError>;
    async fn cohort_attendance(
        &self,
        cohort: CohortId,
    ) -> Result<Vec<AttendanceEntry>, StorageError>;
    async fn patient_attendance(
        &self,
        patient: PatientId,
    ) -> Result<Vec<AttendanceEntry>, StorageError>;
    /// Patients in one of the states `codes`, with the time of their last move.
    async fn enrolments_in_states(
        &self,
        codes: &[&str],
    ) -> Result<Vec<(PatientId, EnrolmentState, Timestamp)>, StorageError>;

    /// Creates or replaces the account's calendar feed token.
    async fn put_calendar_feed(
        &self,
        account: AccountId,
        token_digest: &str,
        at: Timestamp,
    ) -> Result<(), StorageError>;
    /// Deletes the account's feed; returns `false` when it had none.
    async fn delete_calendar_feed(&self, account: AccountId) -> Result<bool, StorageError>;
    async fn find_calendar_feed(&self, token_digest: &str) -> Result<AccountId, StorageError>;
    /// When the account's current feed was created, if it has one.
    async fn calendar_feed_created_at(
        &self,
        account: AccountId,
    ) -> Result<Option<Timestamp>, StorageError>;
}
