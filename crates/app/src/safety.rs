//! Safety alerts: a patient's request for help, the care team's inbox, the lifecycle steps
//! (acknowledge, action, resolve), escalation of alerts not acknowledged in time, and each
//! site's safety settings.
//!
//! Escalation runs from the patient's care team to the site's backup clinician and then to
//! the site's program administrators, each with a fresh deadline. Every step is audited.

use std::collections::BTreeMap;

use stillpoint_domain::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use stillpoint_domain::measures::safety::{
    self, AlertLevel, AlertState, AlertStep, EscalationLevel, ScoreThreshold, StaffedHours,
};
use stillpoint_domain::{Account, AlertId, InvalidValue, Language, PatientId, Role, SiteId};

use crate::audit::AuditContext;
use crate::measures::{alert_sites, deadline_or_default, event, site_settings};
use crate::ports::{
    AlertEscalation, AlertEvent, AlertFilter, AlertTransition, NewAlert, SafetyAlert,
    SafetySettings, Store,
};
use crate::{AppError, Clock, StorageError};

/// The rule code of a patient's "I need help now" request.
pub const HELP_REQUEST: &str = "help_request";

/// Raises a high-level alert for the signed-in patient who asked for help now.
pub async fn request_help(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<AlertId, AppError> {
    let patient_id = crate::patients::own_record_id(store, account)
        .await?
        .ok_or(AppError::Forbidden)?;
    let patient = store.get_patient(patient_id).await?;
    let now = clock.now();

    // A second press (or a reloaded page) within this time joins the open request.
    let recent = now - jiff::SignedDuration::from_mins(HELP_REQUEST_WINDOW_MINUTES);
    let open = open_alerts_of(store, patient.id).await?;
    if let Some(existing) = open.iter().find(|alert| {
        alert.source == "help_request"
            && alert.state == AlertState::Raised
            && alert.raised_at >= recent
    }) {
        tracing::info!(alert_id = %existing.id, "repeated request for help joins the open alert");
        return Ok(existing.id);
    }

    let site = store.get_site(patient.site_id).await?;
    let settings = site_settings(store, site.id).await;
    let alert = NewAlert {
        id: AlertId::from_uuid(uuid::Uuid::now_v7()),
        patient: patient.id,
        site: site.id,
        source: "help_request",
        level: AlertLevel::High,
        rules: vec![HELP_REQUEST.to_owned()],
        raised_at: now,
        deadline: deadline_or_default(&settings, &site, now),
    };
    let audit = event(
        context,
        now,
        patient.id,
        "safety_alert",
        alert.id.to_string(),
        AuditAction::Create,
    );
    store.raise_alert(&alert, &audit).await?;
    tracing::warn!(alert_id = %alert.id, patient_id = %patient.id, "safety alert raised by a request for help");
    Ok(alert.id)
}

/// Returns whether the signed-in patient has an unacknowledged request for help made in the
/// last [`HELP_REQUEST_WINDOW_MINUTES`].
pub async fn open_help_request(
    store: &dyn Store,
    clock: &dyn Clock,
    account: &Account,
) -> Result<bool, AppError> {
    let Some(patient) = crate::patients::own_record_id(store, account).await? else {
        return Ok(false);
    };
    let recent = clock.now() - jiff::SignedDuration::from_mins(HELP_REQUEST_WINDOW_MINUTES);
    let open = open_alerts_of(store, patient).await?;
    Ok(open.iter().any(|alert| {
        alert.source == "help_request"
            && alert.state == AlertState::Raised
            && alert.raised_at >= recent
    }))
}

/// The patient's alerts that are not resolved yet.
async fn open_alerts_of(
    store: &dyn Store,
    patient: PatientId,
) -> Result<Vec<SafetyAlert>, AppError> {
    Ok(store
        .list_alerts(&AlertFilter {
            sites: None,
            patient: Some(patient),
            open_only: true,
        })
        .await?)
}

/// Minutes within which another request for help joins the open one.
pub const HELP_REQUEST_WINDOW_MINUTES: i64 = 15;

/// Raises an alert for a rejected form whose valid answers fire a safety rule, unless the same
/// rules raised one for the patient in the last hour that is still unacknowledged. No answer is
/// stored, only the rule codes. Failures are logged: the caller is already reporting the
/// form's problem.
pub async fn raise_for_unsaved_form(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: &stillpoint_domain::Patient,
    instrument: &stillpoint_domain::measures::instrument::Instrument,
    answers: &stillpoint_domain::measures::instrument::Answers,
) {
    let valid = instrument.valid_answers(answers);
    let Some(trigger) = safety::evaluate(instrument, &valid, &[], &[]) else {
        return;
    };
    if let Err(error) = raise_unsaved(store, clock, context, patient, trigger).await {
        tracing::error!(patient_id = %patient.id, error = %error, "alert for a rejected form could not be raised");
    }
}

async fn raise_unsaved(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient: &stillpoint_domain::Patient,
    trigger: safety::Trigger,
) -> Result<(), AppError> {
    let now = clock.now();
    let recent = now - jiff::SignedDuration::from_hours(1);
    let open = open_alerts_of(store, patient.id).await?;
    let repeated = open.iter().any(|alert| {
        alert.source == "unsaved_form"
            && alert.state == AlertState::Raised
            && alert.raised_at >= recent
            && alert.rules == trigger.rules
    });
    if repeated {
        return Ok(());
    }
    let site = store.get_site(patient.site_id).await?;
    let settings = site_settings(store, site.id).await;
    let alert = NewAlert {
        id: AlertId::from_uuid(uuid::Uuid::now_v7()),
        patient: patient.id,
        site: site.id,
        source: "unsaved_form",
        level: trigger.level,
        rules: trigger.rules,
        raised_at: now,
        deadline: deadline_or_default(&settings, &site, now),
    };
    let audit = event(
        context,
        now,
        patient.id,
        "safety_alert",
        alert.id.to_string(),
        AuditAction::Create,
    );
    store.raise_alert(&alert, &audit).await?;
    tracing::warn!(alert_id = %alert.id, patient_id = %patient.id, "safety alert raised by a rejected form");
    Ok(())
}

/// Returns the crisis text a site configured for `language`, if any. The caller falls back to
/// the translation catalogue's default.
pub async fn crisis_text_for_patient(
    store: &dyn Store,
    patient: PatientId,
    language: &Language,
) -> Result<Option<String>, AppError> {
    let patient = store.get_patient(patient).await?;
    let settings = store.safety_settings(patient.site_id).await?;
    Ok(settings
        .crisis_text
        .get(language)
        .or_else(|| {
            settings
                .crisis_text
                .iter()
                .find(|(tag, _)| tag.primary() == language.primary())
                .map(|(_, text)| text)
        })
        .cloned())
}

/// Lists the alerts `account` reviews, in the inbox's order. A facilitator or patient gets
/// `Forbidden`.
pub async fn inbox(
    store: &dyn Store,
    account: &Account,
    open_only: bool,
) -> Result<Vec<SafetyAlert>, AppError> {
    let sites = reviewer_sites(account)?;
    let mut alerts = store
        .list_alerts(&AlertFilter {
            sites,
            patient: None,
            open_only,
        })
        .await?;
    alerts.retain(|alert| sees_alert(account, alert));
    Ok(alerts)
}

/// Counts the alerts waiting for `account` to acknowledge, for the navigation, and returns 0
/// for anyone who does not review alerts.
pub async fn open_count(store: &dyn Store, account: &Account) -> Result<usize, AppError> {
    let Ok(sites) = reviewer_sites(account) else {
        return Ok(0);
    };
    let clinician_everywhere = sites
        .as_ref()
        .is_none_or(|sites| sites.iter().all(|site| clinician_at(account, *site)));
    if clinician_everywhere {
        let count = store.count_unacknowledged_alerts(sites.as_deref()).await?;
        return Ok(usize::try_from(count).unwrap_or(0));
    }
    let alerts = inbox(store, account, true).await?;
    Ok(alerts
        .iter()
        .filter(|alert| alert.state == AlertState::Raised)
        .count())
}

fn clinician_at(account: &Account, site: SiteId) -> bool {
    account
        .roles
        .iter()
        .any(|assignment| assignment.role == Role::Clinician && assignment.site_id == Some(site))
}

/// Returns whether `account` may see an alert: clinicians (the backup clinician among them) see their
/// sites' alerts from the start, program administrators once an alert has escalated to them,
/// and system administrators every alert.
pub(crate) fn sees_alert(account: &Account, alert: &SafetyAlert) -> bool {
    account.has_role(Role::SystemAdministrator)
        || clinician_at(account, alert.site)
        || (alert.escalation == EscalationLevel::ProgramAdministrators
            && account.roles.iter().any(|assignment| {
                assignment.role == Role::ProgramAdministrator
                    && assignment.site_id == Some(alert.site)
            }))
}

fn reviewer_sites(account: &Account) -> Result<Option<Vec<SiteId>>, AppError> {
    let sites = alert_sites(account);
    match &sites {
        Some(list) if list.is_empty() => Err(AppError::Forbidden),
        _ => Ok(sites),
    }
}

/// Opens one alert for a reviewer at its site; the read is audited.
pub async fn open_alert(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    id: AlertId,
) -> Result<SafetyAlert, AppError> {
    let alert = store.get_alert(id).await?;
    check_reviewer(account, &alert)?;
    store
        .append_audit_event(&event(
            context,
            clock.now(),
            alert.patient,
            "safety_alert",
            id.to_string(),
            AuditAction::Read,
        ))
        .await?;
    Ok(alert)
}

fn check_reviewer(account: &Account, alert: &SafetyAlert) -> Result<(), AppError> {
    if sees_alert(account, alert) {
        Ok(())
    } else {
        tracing::info!(account_id = %account.id, alert_id = %alert.id, "safety alert access rejected: not a reviewer of this alert");
        Err(AppError::Forbidden)
    }
}

/// Takes a lifecycle step on an alert: acknowledge, action with an outcome, or resolve.
/// A step that does not follow from the stored state is rejected, including one a colleague
/// took first.
pub async fn take_step(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    id: AlertId,
    step: AlertStep,
) -> Result<SafetyAlert, AppError> {
    let alert = store.get_alert(id).await?;
    check_reviewer(account, &alert)?;
    let next = safety::advance(alert.state, &step).map_err(|error| match error {
        safety::LifecycleError::Invalid(invalid) => AppError::from(invalid),
        out_of_order @ safety::LifecycleError::OutOfOrder { .. } => {
            InvalidValue::new("step", out_of_order.to_string()).into()
        }
    })?;

    let now = clock.now();
    let (outcome, detail) = match &step {
        AlertStep::Acknowledge => (None, String::new()),
        AlertStep::Action { outcome, note } => (Some(*outcome), note.trim().to_owned()),
        AlertStep::Resolve { note } => (None, note.trim().to_owned()),
    };
    let transition = AlertTransition {
        alert: id,
        from: alert.state,
        to: next,
        outcome,
        event: AlertEvent {
            at: now,
            actor: Some(account.id),
            step: next.code().to_owned(),
            detail: outcome.map_or(detail.clone(), |outcome| {
                if detail.is_empty() {
                    outcome.code().to_owned()
                } else {
                    format!("{}: {detail}", outcome.code())
                }
            }),
        },
        audit: event(
            context,
            now,
            alert.patient,
            "safety_alert",
            id.to_string(),
            AuditAction::Update,
        ),
    };
    match store.record_alert_transition(&transition).await {
        Ok(()) => {}
        Err(StorageError::Conflict { .. }) => {
            return Err(InvalidValue::new(
                "step",
                "someone else changed this alert a moment ago; reload the page to see its state",
            )
            .into());
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(alert_id = %id, state = next.code(), "safety alert step recorded");
    Ok(store.get_alert(id).await?)
}

/// Escalates every alert still raised after its deadline to the next level, with a new
/// deadline from the site's settings. A site without a backup clinician escalates straight to
/// its program administrators. Returns the number escalated; a failure for one alert is
/// logged and the others go on.
pub async fn escalate_overdue(store: &dyn Store, clock: &dyn Clock) -> Result<usize, AppError> {
    let now = clock.now();
    let mut escalated = 0;
    for alert in store.overdue_alerts(now).await? {
        match escalate_one(store, now, &alert).await {
            Ok(true) => escalated += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(alert_id = %alert.id, error = %error, "safety alert could not be escalated");
            }
        }
    }
    Ok(escalated)
}

async fn escalate_one(
    store: &dyn Store,
    now: jiff::Timestamp,
    alert: &SafetyAlert,
) -> Result<bool, AppError> {
    let settings = site_settings(store, alert.site).await;
    let Some(mut to) = alert.escalation.next() else {
        return Ok(false);
    };
    if to == EscalationLevel::BackupClinician && settings.backup_clinician.is_none() {
        to = EscalationLevel::ProgramAdministrators;
    }
    let site = store.get_site(alert.site).await?;
    let escalation = AlertEscalation {
        alert: alert.id,
        from: alert.escalation,
        to,
        deadline: deadline_or_default(&settings, &site, now),
        event: AlertEvent {
            at: now,
            actor: None,
            step: "escalated".to_owned(),
            detail: to.code().to_owned(),
        },
        audit: NewAuditEvent {
            recorded_at: now,
            actor: None,
            actor_role: None,
            patient: Some(alert.patient),
            resource_type: "safety_alert".to_owned(),
            resource_id: Some(alert.id.to_string()),
            action: AuditAction::Update,
            outcome: AuditOutcome::Success,
            source_address: None,
            break_glass: false,
        },
    };
    let escalated = store.escalate_alert(&escalation).await;
    if escalated.is_ok() {
        // The message to the new level is a job, so it is sent once even if this server stops
        // now. NOTE: it is queued after the escalation commits, not in the same transaction, so
        // a crash between the two leaves the escalation in the inbox without a message.
        let job = crate::notifications::escalation_job(alert.id, to, now)?;
        if let Err(error) = store.enqueue(&job, now).await {
            tracing::error!(alert_id = %alert.id, error = %error, "escalation message could not be queued");
        }
    }
    match escalated {
        Ok(()) if to.next().is_none() => {
            // NOTE: the program administrators are the last level; an alert they leave
            // unacknowledged is shown as overdue in the inbox and escalates no further.
            tracing::error!(alert_id = %alert.id, "safety alert escalated to the last level: not acknowledged in time");
            Ok(true)
        }
        Ok(()) => {
            // TODO: send escalation messages by e-mail and SMS as well; so far they are in-app
            // notifications, shown in the navigation and on the notifications page.
            tracing::warn!(alert_id = %alert.id, to = to.code(), "safety alert escalated: not acknowledged in time");
            Ok(true)
        }
        // Acknowledged or escalated by another server in the meantime.
        Err(StorageError::Conflict { .. }) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// The settings form of a site.
#[derive(Debug, Clone, Default)]
pub struct SettingsRequest {
    pub crisis_text: BTreeMap<Language, String>,
    pub staffed_days: String,
    pub staffed_opens: String,
    pub staffed_closes: String,
    pub deadline_minutes: String,
    pub backup_clinician: Option<String>,
    /// Lines such as `phq-9 total 20 high`.
    pub thresholds: String,
}

/// The maximum number of characters of a site's crisis text in one language.
pub const MAX_CRISIS_TEXT: usize = 2_000;

/// Checks and stores a site's safety settings. Only the site's program administrators and
/// system administrators may.
pub async fn save_settings(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    site: SiteId,
    request: SettingsRequest,
    library: &crate::measures::MeasureLibrary,
) -> Result<(), AppError> {
    if !account.administers_site(site) {
        return Err(AppError::Forbidden);
    }
    let settings = check_settings(store, library, site, request).await?;
    let audit = NewAuditEvent {
        recorded_at: clock.now(),
        actor: context.actor,
        actor_role: context.actor_role,
        patient: None,
        resource_type: "site_safety_settings".to_owned(),
        resource_id: Some(site.to_string()),
        action: AuditAction::Update,
        outcome: AuditOutcome::Success,
        source_address: context.source_address.clone(),
        break_glass: false,
    };
    store.set_safety_settings(site, &settings, &audit).await?;
    tracing::info!(site_id = %site, "site safety settings saved");
    Ok(())
}

async fn check_settings(
    store: &dyn Store,
    library: &crate::measures::MeasureLibrary,
    site: SiteId,
    request: SettingsRequest,
) -> Result<SafetySettings, AppError> {
    let hours = StaffedHours::parse(
        &request.staffed_days,
        &request.staffed_opens,
        &request.staffed_closes,
    )?;
    let deadline_minutes: u32 = request
        .deadline_minutes
        .trim()
        .parse()
        .ok()
        .filter(|minutes| (1..=1440).contains(minutes))
        .ok_or_else(|| {
            InvalidValue::new(
                "deadline_minutes",
                "enter the minutes the care team has to acknowledge an alert, from 1 to 1440",
            )
        })?;

    let mut crisis_text = BTreeMap::new();
    for (language, text) in request.crisis_text {
        let text = text.trim();
        if text.chars().count() > MAX_CRISIS_TEXT {
            return Err(InvalidValue::new(
                "crisis_text",
                format!("a crisis text may have at most {MAX_CRISIS_TEXT} characters"),
            )
            .into());
        }
        if !text.is_empty() {
            crisis_text.insert(language, text.to_owned());
        }
    }

    let backup_clinician = match request.backup_clinician.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let id = text.parse().map_err(|_| {
                InvalidValue::new("backup_clinician", "choose a clinician from the list")
            })?;
            let account = store.get_account(id).await?;
            // The backup must see the site's alerts in their inbox and act on them.
            if !clinician_at(&account, site) {
                return Err(InvalidValue::new(
                    "backup_clinician",
                    "the backup must be a clinician at this site; choose one from the list",
                )
                .into());
            }
            Some(id)
        }
    };

    Ok(SafetySettings {
        crisis_text,
        staffed_days: hours.days_code(),
        staffed_opens: hours.opens.strftime("%H:%M").to_string(),
        staffed_closes: hours.closes.strftime("%H:%M").to_string(),
        deadline_minutes,
        backup_clinician,
        thresholds: parse_thresholds(library, &request.thresholds)?,
    })
}

/// Parses threshold lines such as `phq-9 total 20 high`: instrument, scale, the lowest score
/// that fires, and the alert level.
pub fn parse_thresholds(
    library: &crate::measures::MeasureLibrary,
    text: &str,
) -> Result<Vec<ScoreThreshold>, InvalidValue> {
    let mut thresholds = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let wrong = |problem: String| {
            InvalidValue::new("thresholds", format!("line {}: {problem}", index + 1))
        };
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [instrument, scale, at_least, level] = parts.as_slice() else {
            return Err(wrong(
                "write the instrument, scale, lowest score and level, such as 'phq-9 total 20 high'"
                    .to_owned(),
            ));
        };
        let known = library.instrument(instrument).ok_or_else(|| {
            wrong(format!(
                "'{instrument}' is not an instrument in the library"
            ))
        })?;
        let scale_definition = known
            .scale(scale)
            .ok_or_else(|| wrong(format!("{instrument} has no scale '{scale}'")))?;
        let at_least: f64 = at_least
            .parse()
            .ok()
            .filter(|value: &f64| {
                *value >= scale_definition.range[0] && *value <= scale_definition.range[1]
            })
            .ok_or_else(|| {
                wrong(format!(
                    "the score must be a number from {} to {}",
                    scale_definition.range[0], scale_definition.range[1]
                ))
            })?;
        let level = AlertLevel::parse(level).map_err(|error| wrong(error.problem))?;
        thresholds.push(ScoreThreshold {
            instrument: (*instrument).to_owned(),
            scale: (*scale).to_owned(),
            at_least,
            level,
        });
    }
    Ok(thresholds)
}

/// Returns whether an alert is past its deadline without acknowledgement.
#[must_use]
pub fn is_overdue(alert: &SafetyAlert, now: jiff::Timestamp) -> bool {
    alert.state == AlertState::Raised && alert.deadline <= now
}
