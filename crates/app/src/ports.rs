//! Storage ports, split by capability. The storage crate implements them for SQLite and
//! PostgreSQL; a single `Store` bundles them for the web layer.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::audit::{AuditAction, AuditEvent, NewAuditEvent};
use stillpoint_domain::care_team::{BreakGlassGrant, CaregiverGrant, CaregiverScope, Cohort};
use stillpoint_domain::consent::ConsentRecord;
use stillpoint_domain::enrolment::{EnrolmentState, Screening};
use stillpoint_domain::{
    Account, AccountId, CohortId, EmailAddress, Language, Patient, PatientId, RoleAssignment, Site,
    SiteId,
};

use crate::StorageError;

mod jobs;
mod live;
mod measures;
mod notifications;
mod practice;
mod programs;

pub use jobs::{Enqueued, Job, JobStore, NewJob};
pub use live::{LiveStore, RoomEvent, SessionGuest, TechCheck};
pub use measures::{
    AlertEscalation, AlertEvent, AlertFilter, AlertTransition, InstrumentLicence, MeasureStore,
    NewAlert, NewResponse, SafetyAlert, SafetySettings, StoredResponse, StoredScore, SubmitOutcome,
};
pub use notifications::{
    Delivery, DeliveryRecorded, DeliveryStore, NewDelivery, NewNotification, Notification,
    NotificationStore,
};
pub use practice::{
    CHUNK_BYTES, EntryAdded, PracticeEntry, PracticeStore, Recording, StoredSuggestion,
    SuggestionState,
};
pub use programs::{
    AttendanceEntry, CohortDetails, CohortSession, CurriculumStatus, CurriculumStore, ProgramStore,
    RosterEntry, SessionChange, SessionChangeRecord, SessionStatus, StoredCurriculum,
};

/// Sites of the clinic.
#[async_trait]
pub trait SiteStore: Send + Sync {
    async fn insert_site(&self, site: &Site) -> Result<(), StorageError>;
    async fn get_site(&self, id: SiteId) -> Result<Site, StorageError>;
    /// All sites, ordered by code.
    async fn list_sites(&self) -> Result<Vec<Site>, StorageError>;
}

/// An account with the stored hash of its password.
#[derive(Debug, Clone)]
pub struct AccountCredentials {
    pub account: Account,
    /// A PHC-format Argon2id hash.
    pub password_hash: String,
    /// When an administrator deactivated the account; a deactivated account cannot sign in.
    pub deactivated_at: Option<Timestamp>,
}

/// Sign-in accounts and their role assignments.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Inserts the account and its role assignments in one transaction.
    async fn insert_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<(), StorageError>;
    async fn get_account(&self, id: AccountId) -> Result<Account, StorageError>;
    async fn find_credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<AccountCredentials, StorageError>;
    async fn count_accounts(&self) -> Result<i64, StorageError>;
    /// Gives an existing account one more role assignment.
    async fn add_role_assignment(
        &self,
        account: AccountId,
        assignment: RoleAssignment,
    ) -> Result<(), StorageError>;
    /// Lists every account with its roles, by display name.
    async fn list_accounts(&self) -> Result<Vec<Account>, StorageError>;
    /// Stores the display name, language, time zone and display preferences of `account`.
    async fn set_account_profile(&self, account: &Account) -> Result<(), StorageError>;
    /// Removes one role assignment; returns `false` when the account did not hold it.
    async fn remove_role_assignment(
        &self,
        account: AccountId,
        assignment: RoleAssignment,
    ) -> Result<bool, StorageError>;
    /// Deactivates the account at `at` and ends its sessions in one transaction, or reactivates
    /// it when `at` is `None`.
    async fn set_account_deactivated(
        &self,
        account: AccountId,
        at: Option<Timestamp>,
    ) -> Result<(), StorageError>;
    /// Lists the ids of deactivated accounts.
    async fn deactivated_accounts(&self) -> Result<Vec<AccountId>, StorageError>;
    /// Stores the account's preferred interface language.
    async fn set_account_language(
        &self,
        id: AccountId,
        language: &Language,
    ) -> Result<(), StorageError>;
}

/// Patients' records with their chronic conditions.
#[async_trait]
pub trait PatientStore: Send + Sync {
    /// Inserts the patient and their conditions in one transaction.
    async fn insert_patient(&self, patient: &Patient) -> Result<(), StorageError>;
    async fn get_patient(&self, id: PatientId) -> Result<Patient, StorageError>;
    /// The patient record an account signs in to.
    async fn find_patient_for_account(&self, account: AccountId) -> Result<Patient, StorageError>;
    /// Number of patients whose care is held at each site, as `(site, count)` pairs; sites
    /// without patients are absent.
    async fn count_patients_by_site(&self) -> Result<Vec<(SiteId, i64)>, StorageError>;
}

/// A signed-in browser or API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInSession {
    /// SHA-256 of the session token; the token itself is never stored.
    pub token_digest: String,
    pub account_id: AccountId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute end of the session, whatever the activity.
    pub expires_at: Timestamp,
    /// When the second sign-in step (a one-time code) was passed; `None` until then.
    pub second_factor_at: Option<Timestamp>,
}

/// Sign-in sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SignInSession) -> Result<(), StorageError>;
    async fn find_session(&self, token_digest: &str) -> Result<SignInSession, StorageError>;
    async fn touch_session(
        &self,
        token_digest: &str,
        seen_at: Timestamp,
    ) -> Result<(), StorageError>;
    async fn delete_session(&self, token_digest: &str) -> Result<(), StorageError>;
    /// Ends every session of an account; returns how many there were.
    async fn delete_account_sessions(&self, account: AccountId) -> Result<u64, StorageError>;
}

/// A TOTP (RFC 6238) credential as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCredential {
    /// The shared secret, encrypted with [`crate::secrets::SecretSealer`].
    pub sealed_secret: String,
    pub created_at: Timestamp,
    /// When the first correct code was entered; `None` while enrolment is unfinished.
    pub confirmed_at: Option<Timestamp>,
    /// The time step of the last accepted code.
    pub last_used_step: i64,
}

/// Two-step verification: TOTP credentials, recovery codes and verified sessions.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    async fn find_totp_credential(
        &self,
        account: AccountId,
    ) -> Result<Option<TotpCredential>, StorageError>;
    /// Stores a new unconfirmed secret, replacing an earlier unconfirmed one. Fails with
    /// `Conflict` when the account has a confirmed credential.
    async fn put_unconfirmed_totp(
        &self,
        account: AccountId,
        sealed_secret: &str,
        created_at: Timestamp,
    ) -> Result<(), StorageError>;
    /// Confirms the credential, records the step of its first code and replaces the recovery
    /// codes, in one transaction.
    async fn confirm_totp(
        &self,
        account: AccountId,
        step: i64,
        at: Timestamp,
        recovery_code_digests: &[String],
    ) -> Result<(), StorageError>;
    /// Records `step` as the last used one if it is later than the stored one. Returns `false`
    /// when the step was used already, so a code is accepted at most once.
    async fn claim_totp_step(&self, account: AccountId, step: i64) -> Result<bool, StorageError>;
    /// Marks an unused recovery code used; returns `false` when there is no such unused code.
    async fn use_recovery_code(
        &self,
        account: AccountId,
        code_digest: &str,
        at: Timestamp,
    ) -> Result<bool, StorageError>;
    /// Replaces every recovery code of the account.
    async fn replace_recovery_codes(
        &self,
        account: AccountId,
        code_digests: &[String],
    ) -> Result<(), StorageError>;
    async fn count_unused_recovery_codes(&self, account: AccountId) -> Result<i64, StorageError>;
    /// Removes the credential and recovery codes, so the next sign-in enrols again.
    async fn remove_second_factor(&self, account: AccountId) -> Result<(), StorageError>;
}

/// A line of a patient list: who the patient is, without their clinical details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    pub id: PatientId,
    pub given_name: String,
    pub family_name: String,
    pub site_id: SiteId,
    pub birth_date: jiff::civil::Date,
}

/// Cohorts, caregivers' grants and break-glass access: the facts care-team access depends on.
#[async_trait]
pub trait CareTeamStore: Send + Sync {
    async fn insert_cohort(
        &self,
        cohort: &Cohort,
        created_at: Timestamp,
    ) -> Result<(), StorageError>;
    async fn add_cohort_facilitator(
        &self,
        cohort: CohortId,
        account: AccountId,
        lead: bool,
    ) -> Result<(), StorageError>;
    async fn add_cohort_member(
        &self,
        cohort: CohortId,
        patient: PatientId,
    ) -> Result<(), StorageError>;
    /// Lists the cohorts the patient belongs to, by name.
    async fn cohorts_of_patient(&self, patient: PatientId) -> Result<Vec<Cohort>, StorageError>;
    /// Returns whether `account` facilitates a cohort that `patient` belongs to.
    async fn facilitates_patient(
        &self,
        account: AccountId,
        patient: PatientId,
    ) -> Result<bool, StorageError>;
    /// Lists the patients whose care is at one of `sites`, and those in a cohort that
    /// `facilitator` (when given) facilitates. The list is ordered by family and given name.
    async fn list_care_team_patients(
        &self,
        sites: &[SiteId],
        facilitator: Option<AccountId>,
    ) -> Result<Vec<PatientSummary>, StorageError>;

    /// Creates or replaces the grant of `grant.patient_id` to `grant.caregiver`.
    async fn put_caregiver_grant(&self, grant: &CaregiverGrant) -> Result<(), StorageError>;
    /// Revokes an active grant; returns `false` when there was none.
    async fn revoke_caregiver_grant(
        &self,
        patient: PatientId,
        caregiver: AccountId,
        at: Timestamp,
    ) -> Result<bool, StorageError>;
    async fn find_caregiver_grant(
        &self,
        patient: PatientId,
        caregiver: AccountId,
    ) -> Result<Option<CaregiverGrant>, StorageError>;
    /// Lists every grant the patient made, revoked ones included, newest first.
    async fn caregiver_grants_of_patient(
        &self,
        patient: PatientId,
    ) -> Result<Vec<CaregiverGrant>, StorageError>;
    /// Lists the patients with an active grant to `caregiver`, with the grant.
    async fn patients_of_caregiver(
        &self,
        caregiver: AccountId,
    ) -> Result<Vec<(PatientSummary, CaregiverGrant)>, StorageError>;

    async fn insert_break_glass(&self, grant: &BreakGlassGrant) -> Result<(), StorageError>;
    /// Returns the latest unexpired break-glass grant of `clinician` to `patient` at `now`.
    async fn active_break_glass(
        &self,
        clinician: AccountId,
        patient: PatientId,
        now: Timestamp,
    ) -> Result<Option<BreakGlassGrant>, StorageError>;
    /// Break-glass grants opened since `since` to patients at one of `sites`, newest first.
    async fn recent_break_glass(
        &self,
        sites: &[SiteId],
        since: Timestamp,
    ) -> Result<Vec<BreakGlassGrant>, StorageError>;
}

/// What a single-use link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    StaffInvitation,
    /// Creates the sign-in account of an existing patient record.
    PatientInvitation,
    /// Creates a caregiver account that a patient shares with.
    CaregiverInvitation,
    PasswordReset,
}

impl LinkPurpose {
    /// Returns the stable code used in storage.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::StaffInvitation => "staff_invitation",
            Self::PatientInvitation => "patient_invitation",
            Self::CaregiverInvitation => "caregiver_invitation",
            Self::PasswordReset => "password_reset",
        }
    }

    /// Parses a stored code.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::StaffInvitation,
            Self::PatientInvitation,
            Self::CaregiverInvitation,
            Self::PasswordReset,
        ]
        .into_iter()
        .find(|purpose| purpose.code() == code)
    }

    #[must_use]
    pub const fn is_invitation(self) -> bool {
        !matches!(self, Self::PasswordReset)
    }
}

/// A single-use link: an invitation or a password reset. Only the token's digest is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLink {
    pub token_digest: String,
    pub purpose: LinkPurpose,
    pub email: EmailAddress,
    /// The name proposed for the new account; empty for a password reset.
    pub display_name: String,
    /// The roles the new account gets.
    pub roles: Vec<RoleAssignment>,
    /// Patient invitation: the record the account signs in to. Caregiver invitation: the patient
    /// who shares with the caregiver.
    pub patient_id: Option<PatientId>,
    /// Caregiver invitation: what the patient shares.
    pub scopes: Vec<CaregiverScope>,
    /// Password reset: the account whose password is set.
    pub account_id: Option<AccountId>,
    /// The language of the page the link opens.
    pub language: Language,
    pub created_by: Option<AccountId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// Invitations and password reset links.
#[async_trait]
pub trait AccountLinkStore: Send + Sync {
    async fn insert_account_link(&self, link: &AccountLink) -> Result<(), StorageError>;
    async fn find_account_link(
        &self,
        token_digest: &str,
    ) -> Result<Option<AccountLink>, StorageError>;
    /// In one transaction: marks the invitation used, creates `account`, links the patient record
    /// of a patient invitation, and stores `grant` for a caregiver invitation. Fails with
    /// `Conflict { constraint: "account_links_used" }` when the link was used or expired at `now`.
    async fn redeem_invitation(
        &self,
        token_digest: &str,
        now: Timestamp,
        account: &Account,
        password_hash: &str,
        grant: Option<&CaregiverGrant>,
    ) -> Result<(), StorageError>;
    /// In one transaction: marks the reset link used, sets the password hash and ends every
    /// session of the account. Fails like [`AccountLinkStore::redeem_invitation`].
    async fn redeem_password_reset(
        &self,
        token_digest: &str,
        now: Timestamp,
        account: AccountId,
        password_hash: &str,
    ) -> Result<(), StorageError>;
    /// Unused, unexpired invitations at `now`, newest first.
    async fn open_invitations(&self, now: Timestamp) -> Result<Vec<AccountLink>, StorageError>;
    /// Spends every unused link `issuer` created, so none works after the issuer leaves;
    /// returns how many there were.
    async fn revoke_links_created_by(
        &self,
        issuer: AccountId,
        at: Timestamp,
    ) -> Result<u64, StorageError>;
}

/// Patients' consent records.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn insert_consent_record(&self, record: &ConsentRecord) -> Result<(), StorageError>;
    /// Lists every record of the patient, newest first.
    async fn consent_records_of_patient(
        &self,
        patient: PatientId,
    ) -> Result<Vec<ConsentRecord>, StorageError>;
    /// Records the withdrawal on the patient's signed, not yet withdrawn records of the
    /// document; returns `false` when there was none.
    async fn withdraw_consent(
        &self,
        patient: PatientId,
        document_id: &str,
        at: Timestamp,
        reason: Option<&str>,
    ) -> Result<bool, StorageError>;
}

/// One move along a patient's enrolment pathway, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentHistoryEntry {
    pub from_state: String,
    pub to_state: String,
    /// `None` for a move the system made, such as a detected lapse.
    pub actor: Option<AccountId>,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// Patients' positions on the enrolment pathway.
#[async_trait]
pub trait EnrolmentStore: Send + Sync {
    /// Returns the patient's state, or `None` while no transition was recorded.
    async fn find_enrolment(
        &self,
        patient: PatientId,
    ) -> Result<Option<EnrolmentState>, StorageError>;
    /// In one transaction: stores `next` if the stored state is still `current` (`None` when
    /// nothing is stored yet), appends the history entry, and stores `screening` when given.
    /// Fails with `Conflict { constraint: "enrolments_changed" }` when another request moved the
    /// patient first.
    #[allow(clippy::too_many_arguments)] // One argument per part of the recorded move.
    async fn record_transition(
        &self,
        patient: PatientId,
        current: Option<&EnrolmentState>,
        next: &EnrolmentState,
        actor: Option<AccountId>,
        reason: Option<&str>,
        screening: Option<&Screening>,
        at: Timestamp,
    ) -> Result<(), StorageError>;
    /// The patient's moves, oldest first.
    async fn enrolment_history(
        &self,
        patient: PatientId,
    ) -> Result<Vec<EnrolmentHistoryEntry>, StorageError>;
    /// The cohort with its capacity.
    async fn get_cohort(&self, cohort: CohortId) -> Result<(Cohort, u32), StorageError>;
    /// Patients holding a place in the cohort: enrolled, active, lapsed or returned.
    async fn count_places_taken(&self, cohort: CohortId) -> Result<u32, StorageError>;
}

/// A new cohort with its details, facilitators and planned sessions, stored together.
#[derive(Debug, Clone)]
pub struct NewCohort {
    pub cohort: Cohort,
    pub capacity: u32,
    pub language: Language,
    pub time_zone: stillpoint_domain::TimeZoneName,
    /// `embedded`, `livekit` or `external`.
    pub video_provider: &'static str,
    /// Facilitators with whether each leads.
    pub facilitators: Vec<(AccountId, bool)>,
    pub sessions: Vec<stillpoint_domain::schedule::PlannedSession>,
    /// The published curriculum version the cohort follows.
    pub curriculum: (stillpoint_domain::curriculum::CurriculumId, u32),
}

/// Cohorts with their schedules.
#[async_trait]
pub trait CohortStore: Send + Sync {
    /// Stores the cohort, its facilitators and its sessions in one transaction.
    async fn create_cohort(
        &self,
        cohort: &NewCohort,
        created_at: Timestamp,
    ) -> Result<(), StorageError>;
    async fn count_cohorts(&self) -> Result<i64, StorageError>;
}

/// The state of the database schema compared with the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions applied to the database, in order.
    pub applied: Vec<i64>,
    /// Versions this binary carries, in order.
    pub known: Vec<i64>,
}

impl SchemaStatus {
    /// Whether every known migration is applied and nothing unknown is.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.applied == self.known
    }

    /// Applied versions this binary does not know: the database was migrated by a newer release.
    #[must_use]
    pub fn unknown_applied(&self) -> Vec<i64> {
        self.applied
            .iter()
            .copied()
            .filter(|version| !self.known.contains(version))
            .collect()
    }
}

/// Liveness of the database, for the readiness probe.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Runs a trivial query.
    async fn ping(&self) -> Result<(), StorageError>;
    async fn schema_status(&self) -> Result<SchemaStatus, StorageError>;
}

/// Which audit events to list. Every set field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub patient: Option<PatientId>,
    pub actor: Option<AccountId>,
    pub action: Option<AuditAction>,
    /// Events at or after this instant.
    pub from: Option<Timestamp>,
    /// Events before this instant.
    pub until: Option<Timestamp>,
    /// Only events about patients whose care is held at one of these sites; `None` for all.
    pub patient_sites: Option<Vec<SiteId>>,
}

/// The audit trail. Events are only ever appended; there is no way to change or remove one.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `event` at the end of the chain and returns it with its sequence and hashes.
    async fn append_audit_event(&self, event: &NewAuditEvent) -> Result<AuditEvent, StorageError>;
    /// Up to `limit` events with a sequence above `after`, in sequence order.
    async fn list_audit_events(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StorageError>;
    /// Up to `limit` events matching `filter`, newest first.
    async fn search_audit_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StorageError>;
    /// The last event's sequence and hash, or `None` while the trail is empty.
    async fn audit_head(&self) -> Result<Option<(i64, String)>, StorageError>;
}

/// Recent failed sign-in attempts, for throttling.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Records a failure under `attempt_id` and deletes failures older than `forget_before`.
    async fn record_sign_in_failure(
        &self,
        email: &EmailAddress,
        source_address: &str,
        at: Timestamp,
        forget_before: Timestamp,
        attempt_id: &str,
    ) -> Result<(), StorageError>;
    /// Failures since `since` for the address typed and for the client address.
    async fn recent_sign_in_failures(
        &self,
        email: &EmailAddress,
        source_address: &str,
        since: Timestamp,
    ) -> Result<(Vec<Timestamp>, Vec<Timestamp>), StorageError>;
    /// Forgets the failures for an address after a successful sign-in.
    async fn clear_sign_in_failures(&self, email: &EmailAddress) -> Result<(), StorageError>;
    /// Forgets the one attempt recorded under `attempt_id`, such as a correct password that still
    /// waits for its one-time code.
    async fn forget_sign_in_attempt(&self, attempt_id: &str) -> Result<(), StorageError>;
}

/// Every storage port, as one object the web layer can hold.
pub trait Store:
    SiteStore
    + AccountStore
    + PatientStore
    + SessionStore
    + HealthStore
    + AuditStore
    + ThrottleStore
    + SecondFactorStore
    + CareTeamStore
    + AccountLinkStore
    + ConsentStore
    + EnrolmentStore
    + CohortStore
    + CurriculumStore
    + ProgramStore
    + MeasureStore
    + JobStore
    + NotificationStore
    + DeliveryStore
    + PracticeStore
    + LiveStore
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: SiteStore
        + AccountStore
        + PatientStore
        + SessionStore
        + HealthStore
        + AuditStore
        + ThrottleStore
        + SecondFactorStore
        + CareTeamStore
        + AccountLinkStore
        + ConsentStore
        + EnrolmentStore
        + CohortStore
        + CurriculumStore
        + ProgramStore
        + MeasureStore
        + JobStore
        + NotificationStore
        + DeliveryStore
        + PracticeStore
        + LiveStore
        + std::fmt::Debug
{
}
