//! The storage port of in-app notifications.

use async_trait::async_trait;
use jiff::Timestamp;
use stillpoint_domain::AccountId;

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
