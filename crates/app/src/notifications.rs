//! In-app notifications, and the job that notifies staff when an unacknowledged safety alert
//! escalates to them.
//!
//! A notification carries a catalogue key and a link, never patient details, so it can be
//! shown in any language and later be sent by e-mail or SMS without revealing anything.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stillpoint_domain::measures::safety::EscalationLevel;
use stillpoint_domain::notify::MessageKind;
use stillpoint_domain::{Account, AlertId, Role};

use crate::jobs::{JobFailure, JobHandler};
use crate::ports::{Job, NewJob, Notification, Store};
use crate::{AppError, Clock};

/// The job kind of an escalation message.
pub const ALERT_ESCALATED: &str = "alert_escalated";

/// The input of an escalation job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPayload {
    pub alert: AlertId,
    /// The level the alert reached: `backup_clinician` or `program_administrators`.
    pub level: String,
}

/// Builds the job that notifies the people of an escalation level about an alert.
pub fn escalation_job(
    alert: AlertId,
    level: EscalationLevel,
    now: jiff::Timestamp,
) -> Result<NewJob, AppError> {
    let payload = EscalationPayload {
        alert,
        level: level.code().to_owned(),
    };
    Ok(NewJob {
        kind: ALERT_ESCALATED.to_owned(),
        payload: serde_json::to_string(&payload)
            .map_err(|error| AppError::Internal(error.to_string()))?,
        idempotency_key: format!("{ALERT_ESCALATED}:{alert}:{}", level.code()),
        due_at: now,
    })
}

/// Runs escalation jobs: one message per recipient, queued once however often the job runs.
/// The message is essential: it goes on every channel the person can be reached by,
/// whatever their quiet hours and choices.
#[derive(Debug)]
pub struct EscalationNotifier {
    pub store: std::sync::Arc<dyn Store>,
    pub clock: std::sync::Arc<dyn Clock>,
}

#[async_trait]
impl JobHandler for EscalationNotifier {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let payload: EscalationPayload = serde_json::from_str(&job.payload)
            .map_err(|error| JobFailure::permanent(format!("invalid payload: {error}")))?;
        let level = EscalationLevel::parse(&payload.level)
            .map_err(|error| JobFailure::permanent(error.to_string()))?;
        let store = self.store.as_ref();
        let alert = store
            .get_alert(payload.alert)
            .await
            .map_err(|error| JobFailure::retryable(error.to_string()))?;
        let recipients = recipients(store, alert.site, level)
            .await
            .map_err(|error| JobFailure::retryable(error.to_string()))?;
        if recipients.is_empty() {
            tracing::error!(alert_id = %alert.id, level = level.code(), "escalated safety alert has no recipient at its site; check the backup clinician and program administrators");
        }
        let now = self.clock.now();
        for account in recipients {
            let job = crate::notify::notify_job(
                MessageKind::AlertEscalated,
                account.id,
                crate::notify::Subject::Alert {
                    alert: alert.id,
                    level: level.code().to_owned(),
                },
                format!("{}:{}", job.idempotency_key, account.id),
                now,
            )
            .map_err(|error| JobFailure::permanent(error.to_string()))?;
            store
                .enqueue(&job, now)
                .await
                .map_err(|error| JobFailure::retryable(error.to_string()))?;
        }
        Ok(())
    }
}

/// Lists the people an escalation level reaches at a site: the backup clinician named in the
/// site's settings, or the site's program administrators.
async fn recipients(
    store: &dyn Store,
    site: stillpoint_domain::SiteId,
    level: EscalationLevel,
) -> Result<Vec<Account>, AppError> {
    let accounts = store.list_accounts().await?;
    let chosen = match level {
        EscalationLevel::BackupClinician => {
            let settings = crate::measures::site_settings(store, site).await;
            accounts
                .into_iter()
                .filter(|account| Some(account.id) == settings.backup_clinician)
                .collect()
        }
        EscalationLevel::ProgramAdministrators => accounts
            .into_iter()
            .filter(|account| {
                account.roles.iter().any(|assignment| {
                    assignment.role == Role::ProgramAdministrator
                        && assignment.site_id == Some(site)
                })
            })
            .collect(),
        EscalationLevel::CareTeam => Vec::new(),
    };
    Ok(chosen)
}

/// Returns the signed-in account's notifications, newest first, and marks them read.
pub async fn open_own(
    store: &dyn Store,
    clock: &dyn Clock,
    account: &Account,
) -> Result<Vec<Notification>, AppError> {
    let notifications = store.notifications_of(account.id, 100).await?;
    store
        .mark_notifications_read(account.id, clock.now())
        .await?;
    Ok(notifications)
}
