//! Storage ports for questionnaire responses, their scores, safety alerts, instrument licences
//! and sites' safety settings.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::audit::NewAuditEvent;
use stillpoint_domain::measures::instrument::Answers;
use stillpoint_domain::measures::safety::{
    AlertLevel, AlertOutcome, AlertState, EscalationLevel, ScoreThreshold,
};
use stillpoint_domain::{AccountId, AlertId, Language, PatientId, ResponseId, SiteId};

use crate::StorageError;

/// One scale's stored score. A scale the missing-item rule could not score has no values and
/// names the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScore {
    pub scale: String,
    pub raw: Option<f64>,
    pub reported: Option<f64>,
    pub band: Option<String>,
    pub incomplete: bool,
    pub problem: Option<String>,
}

/// A questionnaire response with its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub id: ResponseId,
    /// The id the client generated, which makes a repeated submission idempotent.
    pub client_id: String,
    pub patient: PatientId,
    pub instrument: String,
    pub instrument_version: u32,
    /// The measurement-plan occasion, such as `baseline`, when the response belongs to one.
    pub occasion: Option<String>,
    pub answers: Answers,
    pub language: Language,
    pub submitted_by: AccountId,
    pub submitted_at: Timestamp,
    pub scores: Vec<StoredScore>,
    /// The alert the response raised, if any.
    pub alert: Option<AlertId>,
}

/// A new alert, raised by a response or by a patient's request for help.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub id: AlertId,
    pub patient: PatientId,
    pub site: SiteId,
    /// `response`, `help_request`, or `unsaved_form` for a rejected form whose answers fired a
    /// rule.
    pub source: &'static str,
    pub level: AlertLevel,
    /// The codes of the rules that fired.
    pub rules: Vec<String>,
    pub raised_at: Timestamp,
    pub deadline: Timestamp,
}

/// A response to store, with everything that must be written in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResponse {
    pub response: StoredResponse,
    pub alert: Option<NewAlert>,
    /// The audit events of the submission and of the alert.
    pub audit: Vec<NewAuditEvent>,
}

/// What happened to a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    Stored(StoredResponse),
    /// A response with the same client id was already stored; it is returned unchanged.
    Duplicate(StoredResponse),
}

impl SubmitOutcome {
    #[must_use]
    pub fn response(&self) -> &StoredResponse {
        match self {
            Self::Stored(response) | Self::Duplicate(response) => response,
        }
    }
}

/// One step in an alert's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvent {
    pub at: Timestamp,
    /// `None` for the system (raising from a rule, escalating).
    pub actor: Option<AccountId>,
    /// `raised`, `acknowledged`, `actioned`, `resolved` or `escalated`.
    pub step: String,
    pub detail: String,
}

/// A safety alert with its history.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyAlert {
    pub id: AlertId,
    pub patient: PatientId,
    pub site: SiteId,
    pub response: Option<ResponseId>,
    pub source: String,
    pub level: AlertLevel,
    pub rules: Vec<String>,
    pub state: AlertState,
    pub escalation: EscalationLevel,
    pub raised_at: Timestamp,
    /// When the current escalation level must have acknowledged it.
    pub deadline: Timestamp,
    pub outcome: Option<AlertOutcome>,
    pub events: Vec<AlertEvent>,
}

/// A lifecycle step to store: the alert must still be in `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTransition {
    pub alert: AlertId,
    pub from: AlertState,
    pub to: AlertState,
    pub outcome: Option<AlertOutcome>,
    pub event: AlertEvent,
    pub audit: NewAuditEvent,
}

/// An escalation to store: the alert must still be raised at `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEscalation {
    pub alert: AlertId,
    pub from: EscalationLevel,
    pub to: EscalationLevel,
    pub deadline: Timestamp,
    pub event: AlertEvent,
    pub audit: NewAuditEvent,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Alerts of patients at these sites; `None` for every site.
    pub sites: Option<Vec<SiteId>>,
    pub patient: Option<PatientId>,
    /// Only alerts not yet resolved.
    pub open_only: bool,
}

/// An organisation's licence for an instrument that needs the owner's permission, with the
/// item text the clinic supplies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentLicence {
    pub instrument: String,
    /// Who holds the licence, such as the clinic's legal name.
    pub holder: String,
    /// The licence or agreement reference.
    pub reference: String,
    pub recorded_by: AccountId,
    pub recorded_at: Timestamp,
    /// Item text by language, then by item id.
    pub item_text: BTreeMap<Language, BTreeMap<String, String>>,
}

/// A site's safety settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetySettings {
    /// The crisis resources shown to patients, per language; a language without text here uses
    /// the translation catalogue's default.
    pub crisis_text: BTreeMap<Language, String>,
    /// Staffed days such as `mon,tue,wed,thu,fri`.
    pub staffed_days: String,
    /// `HH:MM` in the site's time zone.
    pub staffed_opens: String,
    pub staffed_closes: String,
    /// Minutes the care team has to acknowledge an alert.
    pub deadline_minutes: u32,
    pub backup_clinician: Option<AccountId>,
    pub thresholds: Vec<ScoreThreshold>,
}

impl Default for SafetySettings {
    /// Weekdays 08:00–18:00, 15 minutes to acknowledge, no backup clinician and no score
    /// thresholds beyond the instruments' own rules.
    fn default() -> Self {
        Self {
            crisis_text: BTreeMap::new(),
            staffed_days: "mon,tue,wed,thu,fri".to_owned(),
            staffed_opens: "08:00".to_owned(),
            staffed_closes: "18:00".to_owned(),
            deadline_minutes: 15,
            backup_clinician: None,
            thresholds: Vec::new(),
        }
    }
}

/// Responses, scores and alerts.
#[async_trait]
pub trait MeasureStore: Send + Sync {
    /// Stores the response, its scores, its alert and the audit events in one durable
    /// transaction, or returns the response already stored under the same patient and client
    /// id.
    async fn submit_response(&self, submission: NewResponse)
    -> Result<SubmitOutcome, StorageError>;
    /// A patient's responses, oldest first.
    async fn responses_of_patient(
        &self,
        patient: PatientId,
    ) -> Result<Vec<StoredResponse>, StorageError>;
    async fn get_response(&self, id: ResponseId) -> Result<StoredResponse, StorageError>;
    /// Every complete score of a scale answered at a `baseline` occasion, across patients.
    async fn baseline_scores(
        &self,
        instrument: &str,
        scale: &str,
    ) -> Result<Vec<f64>, StorageError>;

    /// Raises an alert that no response caused (a request for help), with its audit event.
    async fn raise_alert(
        &self,
        alert: &NewAlert,
        audit: &NewAuditEvent,
    ) -> Result<(), StorageError>;
    async fn get_alert(&self, id: AlertId) -> Result<SafetyAlert, StorageError>;
    /// Alerts matching the filter: waiting for acknowledgement first, then acknowledged,
    /// actioned and resolved; within each, high level first; open ones oldest first and
    /// resolved ones newest first.
    async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<SafetyAlert>, StorageError>;
    /// The number of alerts waiting for acknowledgement at these sites, or at every site for
    /// `None`.
    async fn count_unacknowledged_alerts(
        &self,
        sites: Option<&[SiteId]>,
    ) -> Result<i64, StorageError>;
    /// Applies a lifecycle step; `Conflict` when the alert is no longer in `from`.
    async fn record_alert_transition(
        &self,
        transition: &AlertTransition,
    ) -> Result<(), StorageError>;
    /// Alerts still raised whose deadline passed before `now` and that have a level left to
    /// escalate to.
    async fn overdue_alerts(&self, now: Timestamp) -> Result<Vec<SafetyAlert>, StorageError>;
    /// Moves an alert to the next escalation level; `Conflict` when someone acknowledged or
    /// escalated it first.
    async fn escalate_alert(&self, escalation: &AlertEscalation) -> Result<(), StorageError>;

    async fn list_licences(&self) -> Result<Vec<InstrumentLicence>, StorageError>;
    /// Records or replaces an instrument's licence.
    async fn record_licence(
        &self,
        licence: &InstrumentLicence,
        audit: &NewAuditEvent,
    ) -> Result<(), StorageError>;

    /// The site's settings, or the defaults when none are stored.
    async fn safety_settings(&self, site: SiteId) -> Result<SafetySettings, StorageError>;
    async fn set_safety_settings(
        &self,
        site: SiteId,
        settings: &SafetySettings,
        audit: &NewAuditEvent,
    ) -> Result<(), StorageError>;
}
