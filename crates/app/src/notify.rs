//! Sending notifications. A `notify` job decides, when it runs, whether its message still
//! applies and on which channels it goes, and records one delivery per channel. A `deliver`
//! job sends one delivery through its provider and records the outcome.
//!
//! Each delivery is marked `sending` before the provider is called and `sent` (with the
//! provider's message id) before its job reports success, and a delivery already `sent` is
//! never sent again. A job interrupted between the two finds the delivery still `sending` and
//! sends it again with the same message id: the SMTP Message-ID, or the SMS request's
//! `Idempotency-Key` header. The copy is then recognisable, but neither SMTP servers nor
//! providers that ignore the header drop it, so a crash at that moment can deliver twice.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use stillpoint_domain::enrolment::EnrolmentState;
use stillpoint_domain::measures::safety::AlertState;
use stillpoint_domain::notify::{Channel, DeliveryState, MessageKind, NotificationSettings};
use stillpoint_domain::{
    Account, AccountId, AlertId, CohortSessionId, EmailAddress, Language, PatientId,
};

use crate::jobs::{JobFailure, JobHandler};
use crate::measures::MeasureLibrary;
use crate::ports::{
    Delivery, DeliveryRecorded, Job, NewDelivery, NewJob, NewNotification, SessionStatus, Store,
};
use crate::secrets::SecretSealer;
use crate::{AppError, Clock, StorageError};

/// The job kind that decides a message's channels and records its deliveries.
pub const NOTIFY: &str = "notify";
/// The job kind that sends one delivery.
pub const DELIVER: &str = "deliver";

/// The subject of a message: the ids and times from which the sender builds the text when it
/// runs, in the recipient's language and time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "about", rename_all = "snake_case")]
pub enum Subject {
    /// A reminder `lead_minutes` before a session planned to start at `start`.
    Session {
        session: CohortSessionId,
        start: Timestamp,
        lead_minutes: i64,
    },
    /// A session moved; `sequence` is the session's change count after the move.
    SessionRescheduled {
        session: CohortSessionId,
        previous_start: Timestamp,
        start: Timestamp,
        sequence: u32,
    },
    /// A session was cancelled; `sequence` is the session's change count after it.
    SessionCancelled {
        session: CohortSessionId,
        start: Timestamp,
        sequence: u32,
    },
    /// The daily practice reminder of one local date, at the local `time` the patient chose.
    Practice {
        patient: PatientId,
        date: jiff::civil::Date,
        time: jiff::civil::Time,
    },
    /// A questionnaire occasion that opened, or became overdue.
    Occasion {
        patient: PatientId,
        occasion: String,
        overdue: bool,
    },
    /// A patient marked lapsed at `since`.
    Lapse {
        patient: PatientId,
        since: Timestamp,
    },
    Alert {
        alert: AlertId,
        level: String,
    },
}

impl Subject {
    /// Returns the path of the page the message links to.
    #[must_use]
    pub fn link(&self) -> String {
        match self {
            Self::Session { .. }
            | Self::SessionRescheduled { .. }
            | Self::SessionCancelled { .. }
            | Self::Lapse { .. }
            | Self::Practice { .. } => "/program".to_owned(),
            Self::Occasion { .. } => "/measures".to_owned(),
            Self::Alert { .. } => "/alerts".to_owned(),
        }
    }

    fn patient(&self) -> Option<PatientId> {
        match self {
            Self::Practice { patient, .. }
            | Self::Occasion { patient, .. }
            | Self::Lapse { patient, .. } => Some(*patient),
            _ => None,
        }
    }
}

/// The input of a `notify` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyPayload {
    pub kind: MessageKind,
    pub account: AccountId,
    pub subject: Subject,
}

/// The input of a `deliver` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverPayload {
    pub delivery: String,
}

/// Builds the `notify` job of one message to one person. `key` names the message and the
/// person uniquely, so planning it again queues nothing new.
pub fn notify_job(
    kind: MessageKind,
    account: AccountId,
    subject: Subject,
    key: String,
    due_at: Timestamp,
) -> Result<NewJob, AppError> {
    let payload = NotifyPayload {
        kind,
        account,
        subject,
    };
    Ok(NewJob {
        kind: NOTIFY.to_owned(),
        payload: to_json(&payload)?,
        idempotency_key: key,
        due_at,
    })
}

fn to_json(value: &impl Serialize) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|error| AppError::Internal(error.to_string()))
}

/// A message ready for one person, in their language and time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeRequest<'a> {
    pub kind: MessageKind,
    pub language: &'a Language,
    pub zone: &'a jiff::tz::TimeZone,
    pub subject: &'a Subject,
    /// When the message goes out, for "today" and "tomorrow".
    pub now: Timestamp,
    /// The absolute address of the page the message points to.
    pub link: String,
    /// The one-click unsubscribe address, for messages a person may turn off.
    pub unsubscribe: Option<String>,
}

/// A composed message, for every channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedMessage {
    pub email_subject: String,
    pub email_text: String,
    pub email_html: String,
    pub sms: String,
}

/// Turns a message into text from the translation catalogues.
pub trait Composer: Send + Sync + std::fmt::Debug {
    fn compose(&self, request: &ComposeRequest<'_>) -> ComposedMessage;
}

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: EmailAddress,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The Message-ID without angle brackets; the same on every attempt of one delivery.
    pub message_id: String,
    pub list_unsubscribe: Option<String>,
}

/// A text message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    pub to: stillpoint_domain::notify::PhoneNumber,
    pub body: String,
    /// The same on every attempt of one delivery, so the provider can drop a repeat.
    pub idempotency_key: String,
    /// The address to which the provider reports whether the message arrived.
    pub status_callback: Option<String>,
}

/// A provider's rejection of a message, or a failure to reach the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// `false` when trying again cannot help, such as an address the server refuses.
    pub retryable: bool,
}

/// Sends e-mail; returns the message id the server accepted.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError>;
}

/// Sends text messages; returns the provider's message id.
#[async_trait]
pub trait SmsSender: Send + Sync + std::fmt::Debug {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError>;
}

/// Everything the notification jobs need.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub composer: Arc<dyn Composer>,
    /// `None` when no SMTP server is set up: e-mail is then left out of every message.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// `None` when no SMS provider is set up: text messages are then left out.
    pub sms: Option<Arc<dyn SmsSender>>,
    pub measures: Arc<MeasureLibrary>,
    pub sealer: Arc<SecretSealer>,
    /// The address people reach Stillpoint at, such as `https://mbsr.example.org`.
    pub public_url: String,
}

impl Notifier {
    fn configured(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.mailer.is_some(),
            Channel::Sms => self.sms.is_some(),
            Channel::InApp => true,
        }
    }

    /// Runs a `notify` job: checks the message still applies, then records a delivery per
    /// channel and queues its `deliver` job.
    async fn fan_out(&self, job: &Job) -> Result<(), JobFailure> {
        let payload: NotifyPayload = serde_json::from_str(&job.payload)
            .map_err(|error| JobFailure::permanent(format!("invalid payload: {error}")))?;
        let store = self.store.as_ref();
        let now = self.clock.now();
        let account = store.get_account(payload.account).await.map_err(retry)?;
        if let Some(reason) = self
            .why_not_applicable(&account, &payload.subject, now)
            .await
            .map_err(retry)?
        {
            tracing::info!(job_id = job.id, kind = %payload.kind, reason, "message no longer applies; nothing sent");
            return Ok(());
        }
        if let Some(reason) = too_late(&payload.subject, job.due_at, now) {
            tracing::info!(job_id = job.id, kind = %payload.kind, reason, "message too late; nothing sent");
            return Ok(());
        }
        let settings = settings_of(store, account.id).await.map_err(retry)?;
        let subject =
            to_json(&payload.subject).map_err(|error| JobFailure::permanent(error.to_string()))?;
        for channel in settings.channels_for(payload.kind) {
            let delivery = NewDelivery {
                id: uuid::Uuid::now_v7().to_string(),
                idempotency_key: format!("{}:{channel}", job.idempotency_key),
                account: account.id,
                kind: payload.kind,
                channel,
                subject: subject.clone(),
                fallback_of: None,
                created_at: now,
            };
            if self.configured(channel) {
                self.queue_delivery(&delivery, now, now)
                    .await
                    .map_err(retry)?;
            } else {
                // Recorded so the delivery log shows why the chosen channel got nothing.
                self.record_unconfigured(&delivery, now)
                    .await
                    .map_err(retry)?;
            }
        }
        Ok(())
    }

    /// Records a delivery, or returns the one recorded under its key already (a retried job).
    async fn record(&self, delivery: &NewDelivery) -> Result<Delivery, AppError> {
        match self.store.record_delivery(delivery).await? {
            DeliveryRecorded::Created(stored) | DeliveryRecorded::Exists(stored) => Ok(stored),
        }
    }

    async fn record_unconfigured(
        &self,
        delivery: &NewDelivery,
        now: Timestamp,
    ) -> Result<(), AppError> {
        let stored = self.record(delivery).await?;
        if stored.state == DeliveryState::Queued {
            let channel = match delivery.channel {
                Channel::Email => "e-mail",
                Channel::Sms => "text messaging",
                Channel::InApp => "in-app notices",
            };
            let reason = format!("{channel} is not set up on this server");
            self.store
                .record_delivery_skipped(&stored.id, &reason, now)
                .await?;
        }
        Ok(())
    }

    /// Records a delivery and queues its job for `due`, or sends it at once when it is in-app.
    async fn queue_delivery(
        &self,
        delivery: &NewDelivery,
        due: Timestamp,
        now: Timestamp,
    ) -> Result<(), AppError> {
        let stored = self.record(delivery).await?;
        if stored.channel == Channel::InApp {
            // In-app delivery is a write to this database, so it happens at once instead of
            // through a job of its own.
            // Boxed because sending may fall back to another channel, which queues again.
            return Box::pin(self.send_delivery(stored))
                .await
                .map_err(|failure| AppError::Internal(failure.message));
        }
        let job = NewJob {
            kind: DELIVER.to_owned(),
            payload: to_json(&DeliverPayload {
                delivery: stored.id.clone(),
            })?,
            idempotency_key: format!("deliver:{}", stored.idempotency_key),
            due_at: due,
        };
        self.store.enqueue(&job, now).await?;
        Ok(())
    }

    /// Runs a `deliver` job.
    async fn deliver(&self, job: &Job) -> Result<(), JobFailure> {
        let payload: DeliverPayload = serde_json::from_str(&job.payload)
            .map_err(|error| JobFailure::permanent(format!("invalid payload: {error}")))?;
        let delivery = self
            .store
            .get_delivery(&payload.delivery)
            .await
            .map_err(retry)?;
        self.send_delivery(delivery).await
    }

    /// Sends one delivery unless it went out already, no longer applies or was turned off,
    /// and records the outcome.
    async fn send_delivery(&self, delivery: Delivery) -> Result<(), JobFailure> {
        let store = self.store.as_ref();
        if !matches!(
            delivery.state,
            DeliveryState::Queued | DeliveryState::Sending
        ) {
            return Ok(());
        }
        let now = self.clock.now();
        let account = store.get_account(delivery.account).await.map_err(retry)?;
        let subject: Subject = serde_json::from_str(&delivery.subject)
            .map_err(|error| JobFailure::permanent(format!("invalid subject: {error}")))?;
        let settings = settings_of(store, account.id).await.map_err(retry)?;
        let skip = match self
            .why_not_applicable(&account, &subject, now)
            .await
            .map_err(retry)?
        {
            Some(reason) => Some(reason.to_owned()),
            None => opted_out(&settings, &delivery).map(str::to_owned),
        };
        if let Some(reason) = skip {
            store
                .record_delivery_skipped(&delivery.id, &reason, now)
                .await
                .map_err(retry)?;
            tracing::info!(delivery_id = %delivery.id, reason, "delivery skipped");
            return Ok(());
        }

        let before = store
            .begin_delivery_attempt(&delivery.id, now)
            .await
            .map_err(retry)?;
        if before.state == DeliveryState::Sending {
            tracing::warn!(delivery_id = %delivery.id, "delivery was interrupted mid-send; sending again with the same message id");
        }
        let result = self
            .send(&account, &settings, &delivery, &subject)
            .await
            .map_err(|error| without_addresses(error, &account, &settings));
        let finished = self.clock.now();
        match result {
            Ok(provider_id) => {
                store
                    .record_delivery_sent(&delivery.id, &provider_id, finished)
                    .await
                    .map_err(retry)?;
                if delivery.channel == Channel::InApp {
                    store
                        .record_delivery_confirmed(&delivery.id, &provider_id, finished)
                        .await
                        .map_err(retry)?;
                }
                tracing::info!(delivery_id = %delivery.id, channel = %delivery.channel, "delivery sent");
                Ok(())
            }
            Err(error) => {
                store
                    .record_delivery_failure(
                        &delivery.id,
                        &error.message,
                        !error.retryable,
                        finished,
                    )
                    .await
                    .map_err(retry)?;
                if !error.retryable {
                    self.fall_back(&delivery, finished).await.map_err(retry)?;
                }
                Err(JobFailure {
                    message: error.message,
                    retryable: error.retryable,
                })
            }
        }
    }

    async fn send(
        &self,
        account: &Account,
        settings: &NotificationSettings,
        delivery: &Delivery,
        subject: &Subject,
    ) -> Result<String, SendError> {
        let unsubscribe = (!delivery.kind.is_essential())
            .then(|| self.unsubscribe_url(account.id, delivery.kind));
        let zone = account.time_zone.time_zone();
        let request = ComposeRequest {
            kind: delivery.kind,
            language: &account.language,
            zone: &zone,
            subject,
            now: self.clock.now(),
            link: format!("{}{}", self.public_url, subject.link()),
            unsubscribe: unsubscribe.clone(),
        };
        match delivery.channel {
            Channel::InApp => {
                let notification = NewNotification {
                    account: account.id,
                    kind: delivery.kind.code().to_owned(),
                    message_key: format!("notification-{}", delivery.kind.code().replace('_', "-")),
                    link: subject.link(),
                    idempotency_key: delivery.idempotency_key.clone(),
                    created_at: self.clock.now(),
                };
                self.store
                    .add_notification(&notification)
                    .await
                    .map_err(|error| SendError {
                        message: error.to_string(),
                        retryable: true,
                    })?;
                Ok(format!("in-app:{}", delivery.id))
            }
            Channel::Email => {
                let mailer = self.mailer.as_ref().ok_or_else(|| unconfigured("e-mail"))?;
                let composed = self.composer.compose(&request);
                let to = settings
                    .contact_email
                    .clone()
                    .unwrap_or_else(|| account.email.clone());
                let host = url_host(&self.public_url);
                mailer
                    .send(&OutgoingEmail {
                        to,
                        subject: composed.email_subject,
                        text: composed.email_text,
                        html: composed.email_html,
                        message_id: format!("{}@{host}", delivery.id),
                        list_unsubscribe: unsubscribe,
                    })
                    .await
            }
            Channel::Sms => {
                let sender = self
                    .sms
                    .as_ref()
                    .ok_or_else(|| unconfigured("text messages"))?;
                let phone = settings.phone.clone().ok_or_else(|| SendError {
                    message: "the person has no mobile number".to_owned(),
                    retryable: false,
                })?;
                let composed = self.composer.compose(&request);
                let token = self.sealer.keyed_digest("sms-status", &delivery.id);
                sender
                    .send(&OutgoingSms {
                        to: phone,
                        body: composed.sms,
                        idempotency_key: delivery.id.clone(),
                        status_callback: Some(format!(
                            "{}/hooks/sms-status?delivery={}&token={token}",
                            self.public_url, delivery.id
                        )),
                    })
                    .await
            }
        }
    }

    /// Returns the one-click unsubscribe address for one kind of message.
    #[must_use]
    pub fn unsubscribe_url(&self, account: AccountId, kind: MessageKind) -> String {
        let token = unsubscribe_token(&self.sealer, account, kind);
        format!(
            "{}/unsubscribe?account={account}&kind={}&token={token}",
            self.public_url,
            kind.code()
        )
    }

    /// Records a delivery on the next channel the person allows after `failed` failed for
    /// good, and queues it.
    pub async fn fall_back(&self, failed: &Delivery, now: Timestamp) -> Result<(), AppError> {
        let settings = settings_of(self.store.as_ref(), failed.account).await?;
        let zone = self
            .store
            .get_account(failed.account)
            .await?
            .time_zone
            .time_zone();
        let due = send_time(&settings, failed.kind, &zone, now, None);
        let mut next = failed.channel.fallback();
        while let Some(channel) = next {
            if self.configured(channel)
                && settings.allows_fallback(failed.kind, failed.channel, channel)
            {
                let delivery = NewDelivery {
                    id: uuid::Uuid::now_v7().to_string(),
                    idempotency_key: format!("{}:fallback:{channel}", failed.idempotency_key),
                    account: failed.account,
                    kind: failed.kind,
                    channel,
                    subject: failed.subject.clone(),
                    fallback_of: Some(failed.id.clone()),
                    created_at: now,
                };
                tracing::info!(delivery_id = %failed.id, channel = %channel, "delivery failed; falling back");
                return self.queue_delivery(&delivery, due, now).await;
            }
            next = channel.fallback();
        }
        tracing::warn!(delivery_id = %failed.id, "delivery failed and the person allows no other channel");
        Ok(())
    }

    /// Returns why a message should no longer go out, or `None` when it still applies. The
    /// reasons are a cancelled or moved session, a withdrawn patient or one who left the
    /// cohort, a completed or closed check-in, an acknowledged alert, a deactivated account.
    async fn why_not_applicable(
        &self,
        account: &Account,
        subject: &Subject,
        now: Timestamp,
    ) -> Result<Option<&'static str>, AppError> {
        let store = self.store.as_ref();
        if store
            .find_credentials(&account.email)
            .await?
            .deactivated_at
            .is_some()
        {
            return Ok(Some("the account is deactivated"));
        }
        if let Some(patient) = subject.patient() {
            let state = crate::enrolment::current_state(store, patient).await?;
            if matches!(state, EnrolmentState::Withdrawn { .. }) {
                return Ok(Some("the patient withdrew"));
            }
        }
        let reason = match subject {
            Subject::Session { session, start, .. } => {
                let stored = store.get_cohort_session(*session).await?;
                if stored.status == SessionStatus::Cancelled {
                    Some("the session was cancelled")
                } else if stored.planned.start != *start {
                    Some("the session moved")
                } else if stored.planned.start <= now {
                    Some("the session has started")
                } else {
                    self.not_in_cohort(account, stored.cohort).await?
                }
            }
            Subject::SessionRescheduled {
                session, sequence, ..
            }
            | Subject::SessionCancelled {
                session, sequence, ..
            } => {
                let stored = store.get_cohort_session(*session).await?;
                if stored.sequence == *sequence {
                    self.not_in_cohort(account, stored.cohort).await?
                } else {
                    Some("the session changed again; a newer notice replaces this one")
                }
            }
            Subject::Practice { patient, time, .. } => {
                let state = crate::enrolment::current_state(store, *patient).await?;
                let practising = matches!(
                    state,
                    EnrolmentState::Enrolled { .. }
                        | EnrolmentState::Active { .. }
                        | EnrolmentState::Returned { .. }
                );
                let chosen = settings_of(store, account.id).await?.practice_time == Some(*time);
                (!practising || !chosen).then_some(
                    "the patient is not practising in a cohort now, or changed or turned off the reminder",
                )
            }
            Subject::Occasion {
                patient, occasion, ..
            } => {
                let occasions =
                    crate::measures::occasions_of(store, &self.measures, now, *patient).await?;
                let open = occasions
                    .iter()
                    .any(|due| due.occasion.key == *occasion && due.status.is_open());
                (!open).then_some("the check-in is answered or closed")
            }
            Subject::Lapse { patient, .. } => {
                let state = crate::enrolment::current_state(store, *patient).await?;
                (!matches!(state, EnrolmentState::Lapsed { .. })).then_some("the patient is back")
            }
            Subject::Alert { alert, .. } => {
                let stored = store.get_alert(*alert).await?;
                (stored.state != AlertState::Raised).then_some("the alert was acknowledged")
            }
        };
        Ok(reason)
    }

    /// `Some` when the account is neither a facilitator of the cohort nor a patient holding a
    /// place in it.
    async fn not_in_cohort(
        &self,
        account: &Account,
        cohort: stillpoint_domain::CohortId,
    ) -> Result<Option<&'static str>, AppError> {
        let store = self.store.as_ref();
        let details = store.get_cohort_details(cohort).await?;
        if details.facilitators.iter().any(|(id, _)| *id == account.id) {
            return Ok(None);
        }
        let patient = match store.find_patient_for_account(account.id).await {
            Ok(patient) => patient,
            Err(StorageError::NotFound { .. }) => {
                return Ok(Some("the person is not in the cohort"));
            }
            Err(other) => return Err(other.into()),
        };
        let state = crate::enrolment::current_state(store, patient.id).await?;
        let holds = state.holds_place() && state.cohort() == Some(cohort);
        Ok((!holds).then_some("the patient no longer holds a place in the cohort"))
    }
}

/// Returns why a reminder that waited too long (servers down, or the queue behind) should not
/// go out. A session reminder other than the last one before the session is dropped, and so is
/// a practice reminder more than an hour late. Other messages still matter when late.
fn too_late(subject: &Subject, due: Timestamp, now: Timestamp) -> Option<&'static str> {
    let lateness = now.duration_since(due);
    match subject {
        Subject::Session { lead_minutes, .. }
            if lateness > stillpoint_domain::reminders::LATE_GRACE
                && *lead_minutes > SHORTEST_LEAD_MINUTES =>
        {
            Some("a later reminder for the same session follows")
        }
        Subject::Practice { .. } if lateness > jiff::SignedDuration::from_hours(1) => {
            Some("the practice reminder is more than an hour late")
        }
        _ => None,
    }
}

/// The lead of the last reminder before a session, in minutes.
const SHORTEST_LEAD_MINUTES: i64 = 60;

/// Returns the reason a delivery must not go out under the person's current settings: they
/// turned the channel off for this kind since it was planned. Essential messages and
/// fallbacks (which the person allowed separately) always go.
fn opted_out(settings: &NotificationSettings, delivery: &Delivery) -> Option<&'static str> {
    if delivery.kind.is_essential()
        || delivery.fallback_of.is_some()
        || delivery.channel == Channel::InApp
    {
        return None;
    }
    (!settings
        .channels_for(delivery.kind)
        .contains(&delivery.channel))
    .then_some("the person turned this channel off for these messages")
}

/// Removes the person's e-mail addresses and phone number from a provider's error, which may
/// quote them, before it is stored in the delivery log and the job's error.
fn without_addresses(
    mut error: SendError,
    account: &Account,
    settings: &NotificationSettings,
) -> SendError {
    let mut addresses = vec![account.email.as_str().to_owned()];
    addresses.extend(
        settings
            .contact_email
            .iter()
            .map(|email| email.as_str().to_owned()),
    );
    for address in addresses {
        error.message = error.message.replace(&address, "<recipient>");
    }
    if let Some(phone) = &settings.phone {
        error.message = error.message.replace(phone.as_str(), &phone.masked());
    }
    error
}

fn unconfigured(what: &str) -> SendError {
    SendError {
        message: format!("{what} is not set up on this server"),
        retryable: false,
    }
}

fn retry(error: impl std::fmt::Display) -> JobFailure {
    JobFailure::retryable(error.to_string())
}

fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or(rest);
    if host.is_empty() {
        "stillpoint.invalid"
    } else {
        host
    }
}

/// Returns the person's settings, or the defaults when they never saved any.
pub async fn settings_of(
    store: &dyn Store,
    account: AccountId,
) -> Result<NotificationSettings, StorageError> {
    Ok(store
        .get_notification_settings(account)
        .await?
        .unwrap_or_default())
}

/// Computes the token of a one-click unsubscribe link: a keyed digest of the account and kind.
/// The link works without signing in, and without the key it cannot be forged.
#[must_use]
pub fn unsubscribe_token(sealer: &SecretSealer, account: AccountId, kind: MessageKind) -> String {
    sealer.keyed_digest("unsubscribe", &format!("{account}:{}", kind.code()))
}

/// Runs `notify` jobs.
#[derive(Debug)]
pub struct NotifyHandler(pub Arc<Notifier>);

#[async_trait]
impl JobHandler for NotifyHandler {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        self.0.fan_out(job).await
    }
}

/// Runs `deliver` jobs, and falls back to another channel when one fails for good.
#[derive(Debug)]
pub struct DeliverHandler(pub Arc<Notifier>);

#[async_trait]
impl JobHandler for DeliverHandler {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        self.0.deliver(job).await
    }

    async fn gave_up(&self, job: &Job, error: &str) {
        let Ok(payload) = serde_json::from_str::<DeliverPayload>(&job.payload) else {
            return;
        };
        let notifier = &self.0;
        let now = notifier.clock.now();
        let result = async {
            let delivery = notifier.store.get_delivery(&payload.delivery).await?;
            if matches!(
                delivery.state,
                DeliveryState::Queued | DeliveryState::Sending
            ) {
                notifier
                    .store
                    .record_delivery_failure(&delivery.id, error, true, now)
                    .await?;
                notifier.fall_back(&delivery, now).await?;
            }
            Ok::<(), AppError>(())
        }
        .await;
        if let Err(failure) = result {
            tracing::error!(job_id = job.id, error = %failure, "cannot record a failed delivery or fall back");
        }
    }
}

/// Handles a provider's report on a sent text message: `delivered`, or `undelivered` and
/// `failed`, which fall back to the next channel.
pub async fn sms_status(
    notifier: &Notifier,
    delivery_id: &str,
    token: &str,
    message_sid: &str,
    status: &str,
) -> Result<(), AppError> {
    let expected = notifier.sealer.keyed_digest("sms-status", delivery_id);
    if !crate::secrets::same_digest(&expected, token) {
        return Err(AppError::Forbidden);
    }
    let store = notifier.store.as_ref();
    let now = notifier.clock.now();
    match status {
        "delivered" => {
            let confirmed = store
                .record_delivery_confirmed(delivery_id, message_sid, now)
                .await?;
            if !confirmed {
                // NOTE: a report that overtakes the record of the send (it can only come after
                // the provider accepted the message) finds no sent delivery and is dropped.
                tracing::warn!(
                    delivery_id,
                    "SMS delivery report for a delivery not recorded as sent under that id"
                );
            }
        }
        "undelivered" | "failed" => {
            if let Some(delivery) = store
                .record_delivery_undelivered(
                    delivery_id,
                    message_sid,
                    &format!("the provider reported it {status}"),
                    now,
                )
                .await?
            {
                notifier.fall_back(&delivery, now).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// When a one-off message may go out: at `at`, or after the person's quiet hours unless it
/// is essential.
#[must_use]
pub fn send_time(
    settings: &NotificationSettings,
    kind: MessageKind,
    zone: &jiff::tz::TimeZone,
    at: Timestamp,
    latest: Option<Timestamp>,
) -> Timestamp {
    match (&settings.quiet_hours, kind.is_essential()) {
        (Some(quiet), false) => quiet.adjust(at, zone, latest),
        _ => at,
    }
}

/// Builds a worker that runs every job kind Stillpoint queues: escalation messages, `notify`
/// and `deliver`.
#[must_use]
pub fn worker(
    name: impl Into<String>,
    notifier: &Arc<Notifier>,
    policy: stillpoint_domain::jobs::RetryPolicy,
    lease: jiff::SignedDuration,
) -> crate::jobs::Worker {
    crate::jobs::Worker::new(name, policy, lease)
        .with_handler(
            crate::notifications::ALERT_ESCALATED,
            Arc::new(crate::notifications::EscalationNotifier {
                store: notifier.store.clone(),
                clock: notifier.clock.clone(),
            }),
        )
        .with_handler(NOTIFY, Arc::new(NotifyHandler(notifier.clone())))
        .with_handler(DELIVER, Arc::new(DeliverHandler(notifier.clone())))
}

/// Stores a person's own notification settings after checking them, audited.
pub async fn save_settings(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &crate::audit::AuditContext,
    account: &Account,
    settings: &NotificationSettings,
) -> Result<(), AppError> {
    settings.validate()?;
    let before = settings_of(store, account.id).await?;
    store
        .put_notification_settings(account.id, settings, clock.now())
        .await?;
    if before.practice_time != settings.practice_time {
        // The planner queues the reminders of the new time on its next pass.
        store
            .cancel_queued_jobs_with_prefix(
                &format!("practice_reminder:{}:", account.id),
                clock.now(),
            )
            .await?;
    }
    crate::accounts::record_own_change(store, clock, context, account.id).await?;
    tracing::info!(account_id = %account.id, "notification settings saved");
    Ok(())
}

/// Checks an unsubscribe link's token and returns the account and the kind it turns off. A
/// forged link gets `NotFound`, so it reveals nothing about the account.
pub async fn check_unsubscribe(
    store: &dyn Store,
    sealer: &SecretSealer,
    account: &str,
    kind: &str,
    token: &str,
) -> Result<(AccountId, MessageKind), AppError> {
    let not_found = || {
        AppError::Storage(StorageError::NotFound {
            entity: "unsubscribe link",
            id: String::new(),
        })
    };
    let account: AccountId = account.parse().map_err(|_| not_found())?;
    let kind = MessageKind::parse(kind).map_err(|_| not_found())?;
    if kind.is_essential()
        || !crate::secrets::same_digest(&unsubscribe_token(sealer, account, kind), token)
    {
        return Err(not_found());
    }
    store.get_account(account).await?;
    Ok((account, kind))
}

/// Turns e-mail and SMS off for one kind of message, as a one-click unsubscribe link requests.
/// In-app notices stay, and doing it twice changes nothing.
pub async fn unsubscribe(
    store: &dyn Store,
    clock: &dyn Clock,
    account: AccountId,
    kind: MessageKind,
) -> Result<(), AppError> {
    let mut settings = settings_of(store, account).await?;
    settings
        .channels
        .insert(kind, [Channel::InApp].into_iter().collect());
    store
        .put_notification_settings(account, &settings, clock.now())
        .await?;
    tracing::info!(account_id = %account, kind = %kind, "unsubscribed from e-mail and text messages");
    Ok(())
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryLine {
    pub delivery: Delivery,
    /// The recipient's display name.
    pub recipient: String,
}

/// Lists the newest deliveries with their recipients, for system administrators. It shows
/// that reminders went out, and why one did not.
pub async fn delivery_log(
    store: &dyn Store,
    account: &Account,
    state: Option<DeliveryState>,
) -> Result<Vec<DeliveryLine>, AppError> {
    if !account.has_role(stillpoint_domain::Role::SystemAdministrator) {
        return Err(AppError::Forbidden);
    }
    let accounts = store.list_accounts().await?;
    let deliveries = store.list_deliveries(state, 200).await?;
    Ok(deliveries
        .into_iter()
        .map(|delivery| {
            let recipient = accounts
                .iter()
                .find(|known| known.id == delivery.account)
                .map(|known| known.display_name.clone())
                .unwrap_or_default();
            DeliveryLine {
                delivery,
                recipient,
            }
        })
        .collect())
}
