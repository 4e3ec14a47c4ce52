//! Questionnaire responses, scores, safety alerts, instrument licences and safety settings.
//!
//! Submissions go through one writer task per process, which commits every submission waiting
//! at that moment in one transaction (group commit): with `synchronous=FULL` each commit costs
//! an fsync, so batching lets a burst of submissions share one. Each caller still gets its
//! answer only after the commit that contains its response. When a batch fails, its
//! submissions are retried one transaction each, so one bad submission cannot fail the others.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    AlertEscalation, AlertEvent, AlertFilter, AlertTransition, InstrumentLicence, MeasureStore,
    NewAlert, NewResponse, SafetyAlert, SafetySettings, StoredResponse, StoredScore, SubmitOutcome,
};
use stillpoint_domain::audit::NewAuditEvent;
use stillpoint_domain::measures::safety::{AlertLevel, AlertOutcome, AlertState, EscalationLevel};
use stillpoint_domain::{AlertId, PatientId, ResponseId, SiteId};
use tokio::sync::{mpsc, oneshot};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, parse_column, to_millis};

const RESPONSE: &str = "response";
const ALERT: &str = "safety alert";

/// The maximum number of submissions committed in one transaction.
const MAX_BATCH: usize = 256;
/// Submissions waiting for the writer; a full queue makes callers wait, not fail.
const QUEUE_DEPTH: usize = 4_096;
/// Attempts at a single submission while another writer has the database locked.
const SINGLE_ATTEMPTS: u32 = 8;

type Reply = oneshot::Sender<Result<SubmitOutcome, StorageError>>;

/// Committed batches and the submissions in them, in this process, for benchmarks and metrics.
static BATCHES: AtomicU64 = AtomicU64::new(0);
static BATCHED_SUBMISSIONS: AtomicU64 = AtomicU64::new(0);

/// Returns the number of batches the response writers of this process committed, and the
/// submissions in them.
#[must_use]
pub fn response_batch_counts() -> (u64, u64) {
    (
        BATCHES.load(Ordering::Relaxed),
        BATCHED_SUBMISSIONS.load(Ordering::Relaxed),
    )
}

/// The sending end of the process's submission writer, replaced when the writer has stopped.
pub(crate) type SubmissionQueue = Arc<Mutex<Option<mpsc::Sender<(NewResponse, Reply)>>>>;

impl Database {
    /// The queue of the writer task, started on first use. The task holds a copy of the
    /// database without the queue, so it ends when the last copy with the queue is dropped.
    fn submission_queue(&self) -> mpsc::Sender<(NewResponse, Reply)> {
        let mut queue = self
            .submissions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = queue.as_ref().filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        if queue.is_some() {
            tracing::error!("response writer had stopped; starting a new one");
        }
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let writer = Self {
            submissions: Arc::default(),
            ..self.clone()
        };
        tokio::spawn(writer.write_submissions(receiver));
        tracing::info!("response writer started");
        *queue = Some(sender.clone());
        sender
    }

    async fn write_submissions(self, mut receiver: mpsc::Receiver<(NewResponse, Reply)>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let jobs = std::mem::take(&mut batch);
            self.write_batch(jobs).await;
        }
        tracing::info!("response writer stopped");
    }

    async fn write_batch(&self, jobs: Vec<(NewResponse, Reply)>) {
        let submissions: Vec<&NewResponse> =
            jobs.iter().map(|(submission, _)| submission).collect();
        let outcome = {
            let _serialised = self.audit_append.lock().await;
            self.try_batch(&submissions).await
        };
        match outcome {
            Ok(outcomes) => {
                BATCHES.fetch_add(1, Ordering::Relaxed);
                BATCHED_SUBMISSIONS.fetch_add(outcomes.len() as u64, Ordering::Relaxed);
                for ((_, reply), outcome) in jobs.into_iter().zip(outcomes) {
                    // The caller may have gone away; the response is stored all the same.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, submissions = jobs.len(), "batched response commit failed; retrying one at a time");
                for (submission, reply) in jobs {
                    let outcome = self.write_single(&submission).await;
                    let _ = reply.send(outcome);
                }
            }
        }
    }

    async fn write_single(&self, submission: &NewResponse) -> Result<SubmitOutcome, StorageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = {
                let _serialised = self.audit_append.lock().await;
                self.try_batch(&[submission]).await
            };
            match result {
                Ok(mut outcomes) => {
                    return outcomes.pop().ok_or_else(|| {
                        StorageError::Unavailable("the response writer returned no outcome".into())
                    });
                }
                // A conflict is retried once: another server may have stored the same client id
                // or taken the next audit sequence, and the retry reads what it wrote. A second
                // conflict is a real one, such as an unknown site.
                Err(StorageError::Conflict { .. }) if attempt < 2 => {
                    tracing::debug!(attempt, "response write raced another writer; retrying");
                }
                Err(StorageError::Unavailable(_)) if attempt < SINGLE_ATTEMPTS => {
                    tracing::debug!(attempt, "database busy while writing a response; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 5))
                        .await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Writes the submissions in one transaction. A duplicate within the batch or already
    /// stored gets the stored response back.
    async fn try_batch(
        &self,
        submissions: &[&NewResponse],
    ) -> Result<Vec<SubmitOutcome>, StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        self.lock_audit_chain(&mut transaction).await?;
        let mut outcomes = Vec::with_capacity(submissions.len());
        let mut written: BTreeMap<(String, String), StoredResponse> = BTreeMap::new();
        for submission in submissions {
            let response = &submission.response;
            let key = (response.patient.to_string(), response.client_id.clone());
            if let Some(stored) = written.get(&key) {
                outcomes.push(SubmitOutcome::Duplicate(stored.clone()));
                continue;
            }
            if let Some(stored) = find_by_client_id(&mut transaction, response).await? {
                outcomes.push(SubmitOutcome::Duplicate(stored));
                continue;
            }
            self.insert_submission(&mut transaction, submission).await?;
            written.insert(key, response.clone());
            outcomes.push(SubmitOutcome::Stored(response.clone()));
        }
        transaction.commit().await.map_err(map_write_error)?;
        Ok(outcomes)
    }

    async fn insert_submission(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
        submission: &NewResponse,
    ) -> Result<(), StorageError> {
        let response = &submission.response;
        let answers = serde_json::to_string(&response.answers)
            .map_err(|error| StorageError::Corrupt(error.to_string()))?;
        sqlx::query(
            "INSERT INTO measure_responses (id, patient_id, client_id, instrument_id, instrument_version, \
             occasion, answers, language, submitted_by, submitted_at, alert_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(response.id.to_string())
        .bind(response.patient.to_string())
        .bind(&response.client_id)
        .bind(&response.instrument)
        .bind(i64::from(response.instrument_version))
        .bind(response.occasion.clone())
        .bind(answers)
        .bind(response.language.as_str())
        .bind(response.submitted_by.to_string())
        .bind(to_millis(response.submitted_at))
        .bind(response.alert.map(|id| id.to_string()))
        .execute(&mut **transaction)
        .await
        .map_err(map_write_error)?;

        for score in &response.scores {
            sqlx::query(
                "INSERT INTO measure_scores (response_id, scale, raw, reported, band, incomplete, problem) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(response.id.to_string())
            .bind(&score.scale)
            .bind(score.raw)
            .bind(score.reported)
            .bind(score.band.clone())
            .bind(i64::from(score.incomplete))
            .bind(score.problem.clone())
            .execute(&mut **transaction)
            .await
            .map_err(map_write_error)?;
        }

        if let Some(alert) = &submission.alert {
            insert_alert(transaction, alert, Some(response.id)).await?;
        }
        for event in &submission.audit {
            self.append_in(transaction, event)
                .await
                .map_err(map_write_error)?;
        }
        Ok(())
    }

    /// Runs `write` and appends `audit` in one transaction, holding the audit lock and retrying
    /// when another writer came first.
    async fn write_with_audit<F>(
        &self,
        audit: &[&NewAuditEvent],
        write: F,
    ) -> Result<(), StorageError>
    where
        F: for<'t> Fn(
                &'t mut sqlx::Transaction<'static, sqlx::Any>,
            ) -> futures_util::future::BoxFuture<'t, Result<(), StorageError>>
            + Send
            + Sync,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let _serialised = self.audit_append.lock().await;
                let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
                self.lock_audit_chain(&mut transaction).await?;
                write(&mut transaction).await?;
                for event in audit {
                    self.append_in(&mut transaction, event)
                        .await
                        .map_err(map_write_error)?;
                }
                transaction.commit().await.map_err(map_write_error)
            }
            .await;
            match result {
                Err(StorageError::Unavailable(_)) if attempt < SINGLE_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 5))
                        .await;
                }
                other => return other,
            }
        }
    }
}

impl Database {
    /// Takes the audit chain's lock before any other write, so two servers' transactions wait
    /// for each other instead of each holding rows the other needs (a deadlock on PostgreSQL).
    async fn lock_audit_chain(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<(), StorageError> {
        if let Some(lock) = self.dialect().audit_append_lock() {
            sqlx::query(lock)
                .execute(&mut **transaction)
                .await
                .map_err(map_write_error)?;
        }
        Ok(())
    }
}

async fn find_by_client_id(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    response: &StoredResponse,
) -> Result<Option<StoredResponse>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{RESPONSE_COLUMNS} WHERE patient_id = $1 AND client_id = $2"
    )))
    .bind(response.patient.to_string())
    .bind(&response.client_id)
    .fetch_optional(&mut **transaction)
    .await
    .map_err(map_write_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut stored = response_from_row(&row)?;
    let scores = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SCORE_COLUMNS} WHERE response_id = $1"
    )))
    .bind(stored.id.to_string())
    .fetch_all(&mut **transaction)
    .await
    .map_err(map_write_error)?;
    stored.scores = scores
        .iter()
        .map(|row| score_from_row(row).map(|(_, score)| score))
        .collect::<Result<_, _>>()?;
    Ok(Some(stored))
}

async fn insert_alert(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    alert: &NewAlert,
    response: Option<ResponseId>,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO safety_alerts (id, patient_id, site_id, response_id, source, level, rules, state, \
         escalation, raised_at, deadline_at, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'raised', 'care_team', $8, $9, NULL)",
    )
    .bind(alert.id.to_string())
    .bind(alert.patient.to_string())
    .bind(alert.site.to_string())
    .bind(response.map(|id| id.to_string()))
    .bind(alert.source)
    .bind(alert.level.code())
    .bind(alert.rules.join(","))
    .bind(to_millis(alert.raised_at))
    .bind(to_millis(alert.deadline))
    .execute(&mut **transaction)
    .await
    .map_err(map_write_error)?;
    let event = AlertEvent {
        at: alert.raised_at,
        actor: None,
        step: "raised".to_owned(),
        detail: alert.rules.join(","),
    };
    insert_alert_event(transaction, alert.id, &event).await
}

async fn insert_alert_event(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    alert: AlertId,
    event: &AlertEvent,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO safety_alert_events (alert_id, position, at, actor_account_id, step, detail) \
         VALUES ($1, (SELECT COALESCE(MAX(position), 0) + 1 FROM safety_alert_events WHERE alert_id = $1), \
         $2, $3, $4, $5)",
    )
    .bind(alert.to_string())
    .bind(to_millis(event.at))
    .bind(event.actor.map(|id| id.to_string()))
    .bind(&event.step)
    .bind(&event.detail)
    .execute(&mut **transaction)
    .await
    .map_err(map_write_error)?;
    Ok(())
}

const RESPONSE_COLUMNS: &str = "SELECT id, patient_id, client_id, instrument_id, instrument_version, occasion, \
     answers, language, submitted_by, submitted_at, alert_id FROM measure_responses";

const SCORE_COLUMNS: &str =
    "SELECT response_id, scale, raw, reported, band, incomplete, problem FROM measure_scores";

fn response_from_row(row: &AnyRow) -> Result<StoredResponse, StorageError> {
    let answers: String = column(row, "answers")?;
    let version: i64 = column(row, "instrument_version")?;
    Ok(StoredResponse {
        id: parse_column("measure_responses.id", &column::<String>(row, "id")?)?,
        client_id: column(row, "client_id")?,
        patient: parse_column(
            "measure_responses.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        instrument: column(row, "instrument_id")?,
        instrument_version: u32::try_from(version)
            .map_err(|error| corrupt("measure_responses.instrument_version", &error))?,
        occasion: column(row, "occasion")?,
        answers: serde_json::from_str(&answers)
            .map_err(|error| corrupt("measure_responses.answers", &error))?,
        language: stillpoint_domain::Language::parse(&column::<String>(row, "language")?)
            .map_err(|error| corrupt("measure_responses.language", &error))?,
        submitted_by: parse_column(
            "measure_responses.submitted_by",
            &column::<String>(row, "submitted_by")?,
        )?,
        submitted_at: from_millis(column(row, "submitted_at")?)?,
        scores: Vec::new(),
        alert: column::<Option<String>>(row, "alert_id")?
            .map(|id| parse_column("measure_responses.alert_id", &id))
            .transpose()?,
    })
}

fn score_from_row(row: &AnyRow) -> Result<(String, StoredScore), StorageError> {
    Ok((
        column(row, "response_id")?,
        StoredScore {
            scale: column(row, "scale")?,
            raw: column(row, "raw")?,
            reported: column(row, "reported")?,
            band: column(row, "band")?,
            incomplete: column::<i64>(row, "incomplete")? != 0,
            problem: column(row, "problem")?,
        },
    ))
}

const ALERT_COLUMNS: &str = "SELECT id, patient_id, site_id, response_id, source, level, rules, state, escalation, \
     raised_at, deadline_at, outcome FROM safety_alerts";

fn alert_from_row(row: &AnyRow) -> Result<SafetyAlert, StorageError> {
    let rules: String = column(row, "rules")?;
    let invalid =
        |name: &'static str| move |error: stillpoint_domain::InvalidValue| corrupt(name, &error);
    Ok(SafetyAlert {
        id: parse_column("safety_alerts.id", &column::<String>(row, "id")?)?,
        patient: parse_column(
            "safety_alerts.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        site: parse_column("safety_alerts.site_id", &column::<String>(row, "site_id")?)?,
        response: column::<Option<String>>(row, "response_id")?
            .map(|id| parse_column("safety_alerts.response_id", &id))
            .transpose()?,
        source: column(row, "source")?,
        level: AlertLevel::parse(&column::<String>(row, "level")?)
            .map_err(invalid("safety_alerts.level"))?,
        rules: rules
            .split(',')
            .filter(|rule| !rule.is_empty())
            .map(str::to_owned)
            .collect(),
        state: AlertState::parse(&column::<String>(row, "state")?)
            .map_err(invalid("safety_alerts.state"))?,
        escalation: EscalationLevel::parse(&column::<String>(row, "escalation")?)
            .map_err(invalid("safety_alerts.escalation"))?,
        raised_at: from_millis(column(row, "raised_at")?)?,
        deadline: from_millis(column(row, "deadline_at")?)?,
        outcome: column::<Option<String>>(row, "outcome")?
            .map(|code| AlertOutcome::parse(&code))
            .transpose()
            .map_err(invalid("safety_alerts.outcome"))?,
        events: Vec::new(),
    })
}

fn alert_event_from_row(row: &AnyRow) -> Result<(String, AlertEvent), StorageError> {
    Ok((
        column(row, "alert_id")?,
        AlertEvent {
            at: from_millis(column(row, "at")?)?,
            actor: column::<Option<String>>(row, "actor_account_id")?
                .map(|id| parse_column("safety_alert_events.actor_account_id", &id))
                .transpose()?,
            step: column(row, "step")?,
            detail: column(row, "detail")?,
        },
    ))
}

impl Database {
    /// Loads each alert's history in one query.
    async fn with_events(
        &self,
        mut alerts: Vec<SafetyAlert>,
    ) -> Result<Vec<SafetyAlert>, StorageError> {
        if alerts.is_empty() {
            return Ok(alerts);
        }
        let placeholders: Vec<String> = (1..=alerts.len()).map(|n| format!("${n}")).collect();
        let statement = format!(
            "SELECT alert_id, at, actor_account_id, step, detail FROM safety_alert_events \
             WHERE alert_id IN ({}) ORDER BY alert_id, position",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        for alert in &alerts {
            query = query.bind(alert.id.to_string());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(map_write_error)?;
        let mut events: BTreeMap<String, Vec<AlertEvent>> = BTreeMap::new();
        for row in &rows {
            let (alert, event) = alert_event_from_row(row)?;
            events.entry(alert).or_default().push(event);
        }
        for alert in &mut alerts {
            alert.events = events.remove(&alert.id.to_string()).unwrap_or_default();
        }
        Ok(alerts)
    }
}

#[async_trait]
impl MeasureStore for Database {
    async fn submit_response(
        &self,
        submission: NewResponse,
    ) -> Result<SubmitOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.submission_queue()
            .send((submission, reply))
            .await
            .map_err(|_| StorageError::Unavailable("the response writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StorageError::Unavailable("the response writer has stopped".into()))?
    }

    async fn responses_of_patient(
        &self,
        patient: PatientId,
    ) -> Result<Vec<StoredResponse>, StorageError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RESPONSE_COLUMNS} WHERE patient_id = $1 ORDER BY submitted_at, id"
        )))
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, RESPONSE, &patient.to_string()))?;
        let mut responses: Vec<StoredResponse> = rows
            .iter()
            .map(response_from_row)
            .collect::<Result<_, _>>()?;

        let score_rows = sqlx::query(
            "SELECT s.response_id, s.scale, s.raw, s.reported, s.band, s.incomplete, s.problem \
             FROM measure_scores s JOIN measure_responses r ON r.id = s.response_id \
             WHERE r.patient_id = $1 ORDER BY s.response_id, s.scale",
        )
        .bind(patient.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, RESPONSE, &patient.to_string()))?;
        let mut scores: BTreeMap<String, Vec<StoredScore>> = BTreeMap::new();
        for row in &score_rows {
            let (response, score) = score_from_row(row)?;
            scores.entry(response).or_default().push(score);
        }
        for response in &mut responses {
            response.scores = scores.remove(&response.id.to_string()).unwrap_or_default();
        }
        Ok(responses)
    }

    async fn get_response(&self, id: ResponseId) -> Result<StoredResponse, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RESPONSE_COLUMNS} WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, RESPONSE, &id.to_string()))?;
        let mut response = response_from_row(&row)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SCORE_COLUMNS} WHERE response_id = $1 ORDER BY scale"
        )))
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|error| map_error(error, RESPONSE, &id.to_string()))?;
        response.scores = rows
            .iter()
            .map(|row| score_from_row(row).map(|(_, score)| score))
            .collect::<Result<_, _>>()?;
        Ok(response)
    }

    async fn baseline_scores(
        &self,
        instrument: &str,
        scale: &str,
    ) -> Result<Vec<f64>, StorageError> {
        let rows = sqlx::query(
            "SELECT s.reported FROM measure_scores s JOIN measure_responses r ON r.id = s.response_id \
             WHERE r.instrument_id = $1 AND s.scale = $2 AND r.occasion = 'baseline' \
             AND s.reported IS NOT NULL AND s.incomplete = 0",
        )
        .bind(instrument)
        .bind(scale)
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter()
            .map(|row| column::<f64>(row, "reported"))
            .collect()
    }

    async fn raise_alert(
        &self,
        alert: &NewAlert,
        audit: &NewAuditEvent,
    ) -> Result<(), StorageError> {
        let alert = alert.clone();
        self.write_with_audit(&[audit], move |transaction| {
            let alert = alert.clone();
            Box::pin(async move { insert_alert(transaction, &alert, None).await })
        })
        .await
    }

    async fn get_alert(&self, id: AlertId) -> Result<SafetyAlert, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{ALERT_COLUMNS} WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| map_error(error, ALERT, &id.to_string()))?;
        let alert = alert_from_row(&row)?;
        let mut alerts = self.with_events(vec![alert]).await?;
        alerts.pop().ok_or(StorageError::NotFound {
            entity: ALERT,
            id: id.to_string(),
        })
    }

    async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<SafetyAlert>, StorageError> {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        if let Some(patient) = filter.patient {
            values.push(patient.to_string());
            conditions.push(format!("patient_id = ${}", values.len()));
        }
        if let Some(sites) = &filter.sites {
            if sites.is_empty() {
                return Ok(Vec::new());
            }
            let mut placeholders = Vec::new();
            for site in sites {
                values.push(site.to_string());
                placeholders.push(format!("${}", values.len()));
            }
            conditions.push(format!("site_id IN ({})", placeholders.join(", ")));
        }
        if filter.open_only {
            conditions.push("state <> 'resolved'".to_owned());
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let statement = format!(
            "{ALERT_COLUMNS}{clause} ORDER BY \
             CASE state WHEN 'raised' THEN 0 WHEN 'acknowledged' THEN 1 WHEN 'actioned' THEN 2 ELSE 3 END, \
             CASE level WHEN 'high' THEN 0 WHEN 'moderate' THEN 1 ELSE 2 END, \
             CASE WHEN state = 'resolved' THEN -raised_at ELSE raised_at END, id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        for value in values {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(map_write_error)?;
        let alerts = rows
            .iter()
            .map(alert_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_events(alerts).await
    }

    async fn count_unacknowledged_alerts(
        &self,
        sites: Option<&[SiteId]>,
    ) -> Result<i64, StorageError> {
        let mut statement =
            "SELECT COUNT(*) AS open FROM safety_alerts WHERE state = 'raised'".to_owned();
        if let Some(sites) = sites {
            if sites.is_empty() {
                return Ok(0);
            }
            let placeholders: Vec<String> = (1..=sites.len()).map(|n| format!("${n}")).collect();
            statement = format!("{statement} AND site_id IN ({})", placeholders.join(", "));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        for site in sites.unwrap_or_default() {
            query = query.bind(site.to_string());
        }
        let row = query.fetch_one(&self.pool).await.map_err(map_write_error)?;
        column(&row, "open")
    }

    async fn record_alert_transition(
        &self,
        transition: &AlertTransition,
    ) -> Result<(), StorageError> {
        let transition = transition.clone();
        let audit = transition.audit.clone();
        self.write_with_audit(&[&audit], move |transaction| {
            let transition = transition.clone();
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE safety_alerts SET state = $1, outcome = COALESCE($2, outcome) \
                     WHERE id = $3 AND state = $4",
                )
                .bind(transition.to.code())
                .bind(transition.outcome.map(AlertOutcome::code))
                .bind(transition.alert.to_string())
                .bind(transition.from.code())
                .execute(&mut **transaction)
                .await
                .map_err(map_write_error)?;
                if updated.rows_affected() == 0 {
                    return Err(StorageError::Conflict {
                        constraint: "safety_alerts_state".to_owned(),
                    });
                }
                insert_alert_event(transaction, transition.alert, &transition.event).await
            })
        })
        .await
    }

    async fn overdue_alerts(&self, now: Timestamp) -> Result<Vec<SafetyAlert>, StorageError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{ALERT_COLUMNS} WHERE state = 'raised' AND deadline_at <= $1 \
             AND escalation <> 'program_administrators' ORDER BY deadline_at"
        )))
        .bind(to_millis(now))
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        let alerts = rows
            .iter()
            .map(alert_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_events(alerts).await
    }

    async fn escalate_alert(&self, escalation: &AlertEscalation) -> Result<(), StorageError> {
        let escalation = escalation.clone();
        let audit = escalation.audit.clone();
        self.write_with_audit(&[&audit], move |transaction| {
            let escalation = escalation.clone();
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE safety_alerts SET escalation = $1, deadline_at = $2 \
                     WHERE id = $3 AND state = 'raised' AND escalation = $4",
                )
                .bind(escalation.to.code())
                .bind(to_millis(escalation.deadline))
                .bind(escalation.alert.to_string())
                .bind(escalation.from.code())
                .execute(&mut **transaction)
                .await
                .map_err(map_write_error)?;
                if updated.rows_affected() == 0 {
                    return Err(StorageError::Conflict {
                        constraint: "safety_alerts_escalation".to_owned(),
                    });
                }
                insert_alert_event(transaction, escalation.alert, &escalation.event).await
            })
        })
        .await
    }

    async fn list_licences(&self) -> Result<Vec<InstrumentLicence>, StorageError> {
        let rows = sqlx::query(
            "SELECT instrument_id, holder, reference, recorded_by, recorded_at, item_text \
             FROM instrument_licences ORDER BY instrument_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter()
            .map(|row| {
                let text: String = column(row, "item_text")?;
                Ok(InstrumentLicence {
                    instrument: column(row, "instrument_id")?,
                    holder: column(row, "holder")?,
                    reference: column(row, "reference")?,
                    recorded_by: parse_column(
                        "instrument_licences.recorded_by",
                        &column::<String>(row, "recorded_by")?,
                    )?,
                    recorded_at: from_millis(column(row, "recorded_at")?)?,
                    item_text: serde_json::from_str(&text)
                        .map_err(|error| corrupt("instrument_licences.item_text", &error))?,
                })
            })
            .collect()
    }

    async fn record_licence(
        &self,
        licence: &InstrumentLicence,
        audit: &NewAuditEvent,
    ) -> Result<(), StorageError> {
        let licence = licence.clone();
        let item_text = serde_json::to_string(&licence.item_text)
            .map_err(|error| StorageError::Corrupt(error.to_string()))?;
        self.write_with_audit(&[audit], move |transaction| {
            let licence = licence.clone();
            let item_text = item_text.clone();
            Box::pin(async move {
                sqlx::query("DELETE FROM instrument_licences WHERE instrument_id = $1")
                    .bind(&licence.instrument)
                    .execute(&mut **transaction)
                    .await
                    .map_err(map_write_error)?;
                sqlx::query(
                    "INSERT INTO instrument_licences (instrument_id, holder, reference, recorded_by, \
                     recorded_at, item_text) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&licence.instrument)
                .bind(&licence.holder)
                .bind(&licence.reference)
                .bind(licence.recorded_by.to_string())
                .bind(to_millis(licence.recorded_at))
                .bind(item_text)
                .execute(&mut **transaction)
                .await
                .map_err(map_write_error)?;
                Ok(())
            })
        })
        .await
    }

    async fn safety_settings(&self, site: SiteId) -> Result<SafetySettings, StorageError> {
        let row = sqlx::query(
            "SELECT crisis_text, staffed_days, staffed_opens, staffed_closes, deadline_minutes, \
             backup_clinician, thresholds FROM site_safety_settings WHERE site_id = $1",
        )
        .bind(site.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| map_error(error, "safety settings", &site.to_string()))?;
        let Some(row) = row else {
            return Ok(SafetySettings::default());
        };
        let crisis_text: String = column(&row, "crisis_text")?;
        let thresholds: String = column(&row, "thresholds")?;
        let minutes: i64 = column(&row, "deadline_minutes")?;
        Ok(SafetySettings {
            crisis_text: serde_json::from_str(&crisis_text)
                .map_err(|error| corrupt("site_safety_settings.crisis_text", &error))?,
            staffed_days: column(&row, "staffed_days")?,
            staffed_opens: column(&row, "staffed_opens")?,
            staffed_closes: column(&row, "staffed_closes")?,
            deadline_minutes: u32::try_from(minutes)
                .map_err(|error| corrupt("site_safety_settings.deadline_minutes", &error))?,
            backup_clinician: column::<Option<String>>(&row, "backup_clinician")?
                .map(|id| parse_column("site_safety_settings.backup_clinician", &id))
                .transpose()?,
            thresholds: serde_json::from_str(&thresholds)
                .map_err(|error| corrupt("site_safety_settings.thresholds", &error))?,
        })
    }

    async fn set_safety_settings(
        &self,
        site: SiteId,
        settings: &SafetySettings,
        audit: &NewAuditEvent,
    ) -> Result<(), StorageError> {
        let settings = settings.clone();
        let crisis_text = serde_json::to_string(&settings.crisis_text)
            .map_err(|error| StorageError::Corrupt(error.to_string()))?;
        let thresholds = serde_json::to_string(&settings.thresholds)
            .map_err(|error| StorageError::Corrupt(error.to_string()))?;
        self.write_with_audit(&[audit], move |transaction| {
            let settings = settings.clone();
            let crisis_text = crisis_text.clone();
            let thresholds = thresholds.clone();
            Box::pin(async move {
                sqlx::query("DELETE FROM site_safety_settings WHERE site_id = $1")
                    .bind(site.to_string())
                    .execute(&mut **transaction)
                    .await
                    .map_err(map_write_error)?;
                sqlx::query(
                    "INSERT INTO site_safety_settings (site_id, crisis_text, staffed_days, staffed_opens, \
                     staffed_closes, deadline_minutes, backup_clinician, thresholds) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(site.to_string())
                .bind(crisis_text)
                .bind(settings.staffed_days.clone())
                .bind(settings.staffed_opens.clone())
                .bind(settings.staffed_closes.clone())
                .bind(i64::from(settings.deadline_minutes))
                .bind(settings.backup_clinician.map(|id| id.to_string()))
                .bind(thresholds)
                .execute(&mut **transaction)
                .await
                .map_err(map_write_error)?;
                Ok(())
            })
        })
        .await
    }
}
