//! The storage ports of notifications: in-app notifications, deliveries on every channel, and
//! each person's notification settings.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::AccountId;
use stillpoint_domain::notify::{Channel, DeliveryState, MessageKind, NotificationSettings};

use crate::StorageError;

/// A notification to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub account: AccountId,
    /// What it is about, such as `alert_escalated`.
    pub kind: String,
    /// The translation catalogue key of its text.
    pub message_key: String,
    /// Where it leads, such as `/alerts`.
    pub link: String,
    /// Unique per recipient and cause, so a retried job adds it once.
    pub idempotency_key: String,
    pub created_at: Timestamp,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub message_key: String,
    pub link: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

/// In-app notifications.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Adds a notification; returns `false` when one with the same key exists already.
    async fn add_notification(&self, notification: &NewNotification) -> Result<bool, StorageError>;
    /// The account's notifications, newest first, up to `limit`.
    async fn notifications_of(
        &self,
        account: AccountId,
        limit: i64,
    ) -> Result<Vec<Notification>, StorageError>;
    async fn count_unread_notifications(&self, account: AccountId) -> Result<i64, StorageError>;
    /// Marks every notification of the account read at `at`.
    async fn mark_notifications_read(
        &self,
        account: AccountId,
        at: Timestamp,
    ) -> Result<(), StorageError>;
}

/// A delivery to record before its first attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: String,
    /// Unique per message, recipient and channel, so a retried job records it once.
    pub idempotency_key: String,
    pub account: AccountId,
    pub kind: MessageKind,
    pub channel: Channel,
    /// The message's subject as JSON, from which the sender builds the text.
    pub subject: String,
    /// The delivery this one replaces, when it is a fallback.
    pub fallback_of: Option<String>,
    pub created_at: Timestamp,
}

/// A stored delivery: one message to one person on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub idempotency_key: String,
    pub account: AccountId,
    pub kind: MessageKind,
    pub channel: Channel,
    pub subject: String,
    pub state: DeliveryState,
    /// The provider's id for the message once it accepted it (SMTP Message-ID, SMS id).
    pub provider_message_id: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    pub fallback_of: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
}

/// The outcome of recording a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryRecorded {
    Created(Delivery),
    /// A delivery with the same key exists already, as returned.
    Exists(Delivery),
}

/// Deliveries and the preferences that decide them.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    async fn record_delivery(
        &self,
        delivery: &NewDelivery,
    ) -> Result<DeliveryRecorded, StorageError>;
    async fn get_delivery(&self, id: &str) -> Result<Delivery, StorageError>;
    /// Marks a queued or interrupted delivery as being sent and counts the attempt; returns
    /// the delivery as it was before, or a conflict when it is sent, failed or skipped.
    async fn begin_delivery_attempt(
        &self,
        id: &str,
        at: Timestamp,
    ) -> Result<Delivery, StorageError>;
    async fn record_delivery_sent(
        &self,
        id: &str,
        provider_message_id: &str,
        at: Timestamp,
    ) -> Result<(), StorageError>;
    /// Records a failed attempt: back to queued for a retry, or failed for good.
    async fn record_delivery_failure(
        &self,
        id: &str,
        error: &str,
        final_failure: bool,
        at: Timestamp,
    ) -> Result<(), StorageError>;
    async fn record_delivery_skipped(
        &self,
        id: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StorageError>;
    /// Records the provider's report that a sent message arrived; returns `false` when the
    /// delivery was not sent under that provider id.
    async fn record_delivery_confirmed(
        &self,
        id: &str,
        provider_message_id: &str,
        at: Timestamp,
    ) -> Result<bool, StorageError>;
    /// Records the provider's later report that a sent message did not arrive; returns the
    /// delivery, or `None` when it was not sent under that provider id.
    async fn record_delivery_undelivered(
        &self,
        id: &str,
        provider_message_id: &str,
        error: &str,
        at: Timestamp,
    ) -> Result<Option<Delivery>, StorageError>;
    /// Queues a failed delivery again, for the dead-letter list's retry button; returns
    /// whether it had failed.
    async fn requeue_failed_delivery(&self, id: &str, at: Timestamp) -> Result<bool, StorageError>;
    /// Lists the newest deliveries, optionally of one state only.
    async fn list_deliveries(
        &self,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StorageError>;

    async fn get_notification_settings(
        &self,
        account: AccountId,
    ) -> Result<Option<NotificationSettings>, StorageError>;
    async fn put_notification_settings(
        &self,
        account: AccountId,
        settings: &NotificationSettings,
        at: Timestamp,
    ) -> Result<(), StorageError>;
    /// Lists every account that chose a daily practice reminder, with its settings.
    async fn practice_reminder_settings(
        &self,
    ) -> Result<Vec<(AccountId, NotificationSettings)>, StorageError>;
}
