//! Outcome measures: the instrument library, submitting a response (scored, checked against the
//! safety rules and stored with any alert in one transaction), the measures due for a patient
//! under their cohort's measurement plan, and each patient's progress with reliable change.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use stillpoint_domain::audit::{AuditAction, AuditOutcome, NewAuditEvent};
use stillpoint_domain::measures::change::{self, Change, ChangeParameters};
use stillpoint_domain::measures::instrument::{
    Answers, Instrument, InstrumentId, LicenceStatus, ScaleScore,
};
use stillpoint_domain::measures::plan::{MeasurementPlan, Occasion, OccasionStatus};
use stillpoint_domain::measures::safety::{self, AlertLevel, StaffedHours};
use stillpoint_domain::schedule::SessionKind;
use stillpoint_domain::{
    Account, AlertId, InvalidValue, Language, PatientId, ResponseId, Role, SiteId,
};

use crate::audit::AuditContext;
use crate::care;
use crate::ports::{
    InstrumentLicence, NewAlert, NewResponse, SafetySettings, SessionStatus, Store, StoredResponse,
    StoredScore, SubmitOutcome,
};
use crate::program;
use crate::{AppError, Clock};
use stillpoint_domain::care_team::RecordAccess;

/// The maximum length of a client-generated submission id.
pub const MAX_CLIENT_ID: usize = 64;

/// Every instrument and measurement plan, checked against each other when loaded.
#[derive(Debug, Clone, Default)]
pub struct MeasureLibrary {
    instruments: BTreeMap<InstrumentId, Instrument>,
    /// Plans by curriculum id.
    plans: BTreeMap<String, MeasurementPlan>,
}

impl MeasureLibrary {
    /// Builds the library from `(file name, text)` pairs. An instrument's file is named after
    /// its id (`phq-9.toml`); a plan's after its curriculum (`mbsr-online.toml`). Every plan may
    /// name only instruments in the library.
    pub fn from_files(
        instruments: impl IntoIterator<Item = (String, String)>,
        plans: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, InvalidValue> {
        let mut library = Self::default();
        for (name, text) in instruments {
            let instrument = Instrument::from_toml(&text).map_err(|error| {
                InvalidValue::new("instrument", format!("{name}: {}", error.problem))
            })?;
            if name != format!("{}.toml", instrument.id) {
                return Err(InvalidValue::new(
                    "instrument",
                    format!("{name}: name the file after the id, {}.toml", instrument.id),
                ));
            }
            library
                .instruments
                .insert(instrument.id.clone(), instrument);
        }
        for (name, text) in plans {
            let plan = MeasurementPlan::from_toml(&text)
                .map_err(|error| InvalidValue::new("plan", format!("{name}: {}", error.problem)))?;
            if name != format!("{}.toml", plan.curriculum) {
                return Err(InvalidValue::new(
                    "plan",
                    format!(
                        "{name}: name the file after the curriculum, {}.toml",
                        plan.curriculum
                    ),
                ));
            }
            let unknown = plan
                .waves
                .iter()
                .flat_map(|wave| &wave.instruments)
                .find(|id| !library.instruments.contains_key(*id));
            if let Some(unknown) = unknown {
                return Err(InvalidValue::new(
                    "plan",
                    format!("{name}: the instrument '{unknown}' is not in the library"),
                ));
            }
            library.plans.insert(plan.curriculum.clone(), plan);
        }
        Ok(library)
    }

    #[must_use]
    pub fn instrument(&self, id: &str) -> Option<&Instrument> {
        self.instruments
            .iter()
            .find(|(key, _)| key.as_str() == id)
            .map(|(_, instrument)| instrument)
    }

    pub fn instruments(&self) -> impl Iterator<Item = &Instrument> {
        self.instruments.values()
    }

    #[must_use]
    pub fn plan_for(&self, curriculum: &str) -> Option<&MeasurementPlan> {
        self.plans.get(curriculum)
    }
}

/// An instrument as the clinic may use it: free, or licensed with the clinic's item text.
#[derive(Debug, Clone)]
pub struct UsableInstrument {
    pub instrument: Instrument,
    pub licence: Option<InstrumentLicence>,
}

/// Returns the instrument with the clinic's item text when it is free or licensed, and `None`
/// when it needs a licence the organisation has not recorded.
pub async fn usable_instrument(
    store: &dyn Store,
    library: &MeasureLibrary,
    id: &str,
) -> Result<Option<UsableInstrument>, AppError> {
    let Some(instrument) = library.instrument(id) else {
        return Ok(None);
    };
    if instrument.licence.status == LicenceStatus::Free {
        return Ok(Some(UsableInstrument {
            instrument: instrument.clone(),
            licence: None,
        }));
    }
    let licence = store
        .list_licences()
        .await?
        .into_iter()
        .find(|licence| licence.instrument == id);
    Ok(licence.map(|licence| UsableInstrument {
        instrument: with_item_text(instrument, &licence),
        licence: Some(licence),
    }))
}

/// Fills in the item text the clinic supplied with its licence.
fn with_item_text(instrument: &Instrument, licence: &InstrumentLicence) -> Instrument {
    let mut instrument = instrument.clone();
    for item in &mut instrument.items {
        for (language, texts) in &licence.item_text {
            if let Some(text) = texts.get(&item.id) {
                item.text.insert(language.clone(), text.clone());
            }
        }
    }
    instrument
}

/// A submission from the web form or the JSON API.
#[derive(Debug, Clone)]
pub struct Submission {
    pub patient: PatientId,
    pub instrument: String,
    pub answers: Answers,
    /// The id the client generated for this submission. A repeat with the same id is stored
    /// once and returns the same result.
    pub client_id: String,
    pub occasion: Option<String>,
    pub language: Language,
}

/// The result of a submission.
#[derive(Debug, Clone)]
pub struct SubmitResult {
    pub response: StoredResponse,
    pub alert_level: Option<AlertLevel>,
    /// Whether the response was stored earlier under the same client id.
    pub duplicate: bool,
}

/// Scores a submission, evaluates the safety rules and stores the response, its scores, any
/// alert and the audit events in one transaction. The patient submits their own; a clinician
/// in the patient's care team may enter a paper form for them.
pub async fn submit(
    store: &dyn Store,
    clock: &dyn Clock,
    library: &MeasureLibrary,
    context: &AuditContext,
    account: &Account,
    submission: Submission,
) -> Result<SubmitResult, AppError> {
    check_client_id(&submission.client_id)?;
    let patient = store.get_patient(submission.patient).await?;
    check_submitter(store, clock, account, &patient).await?;

    let usable = usable_instrument(store, library, &submission.instrument)
        .await?
        .ok_or_else(|| unusable(library, &submission.instrument))?;
    let instrument = &usable.instrument;
    if let Err(problem) = instrument.check_answers(&submission.answers) {
        // A rejected form may still hold an answer that needs follow-up, such as PHQ-9 item 9
        // above 0 with another item left out; the care team is alerted even though nothing of
        // the form is stored.
        crate::safety::raise_for_unsaved_form(
            store,
            clock,
            context,
            &patient,
            instrument,
            &submission.answers,
        )
        .await;
        return Err(InvalidValue::new("answers", problem.to_string()).into());
    }
    if let Some(occasion) = &submission.occasion {
        check_occasion(store, library, clock.now(), &patient, instrument, occasion).await?;
    }

    let now = clock.now();
    let site = store.get_site(patient.site_id).await?;
    let settings = site_settings(store, site.id).await;
    let scores = instrument.score(&submission.answers);
    let trigger = safety::evaluate(
        instrument,
        &submission.answers,
        &scores,
        &settings.thresholds,
    );

    let response_id = ResponseId::from_uuid(uuid::Uuid::now_v7());
    let alert = match &trigger {
        Some(trigger) => Some(NewAlert {
            id: AlertId::from_uuid(uuid::Uuid::now_v7()),
            patient: patient.id,
            site: site.id,
            source: "response",
            level: trigger.level,
            rules: trigger.rules.clone(),
            raised_at: now,
            deadline: deadline_or_default(&settings, &site, now),
        }),
        None => None,
    };
    let response = StoredResponse {
        id: response_id,
        client_id: submission.client_id.clone(),
        patient: patient.id,
        instrument: instrument.id.to_string(),
        instrument_version: instrument.version,
        occasion: submission.occasion.clone(),
        answers: submission.answers.clone(),
        language: submission.language.clone(),
        submitted_by: account.id,
        submitted_at: now,
        scores: stored_scores(&scores),
        alert: alert.as_ref().map(|alert| alert.id),
    };

    let audit = submission_audit(context, now, patient.id, response_id, alert.as_ref());
    let outcome = store
        .submit_response(NewResponse {
            response,
            alert: alert.clone(),
            audit,
        })
        .await?;

    let duplicate = matches!(outcome, SubmitOutcome::Duplicate(_));
    let response = outcome.response().clone();
    if duplicate && !same_form(&response, instrument, &submission) {
        return Err(InvalidValue::new(
            "client_id",
            "this client id was already used for a different form; generate a new id for each new form",
        )
        .into());
    }
    if let Some(alert) = &alert
        && !duplicate
    {
        tracing::warn!(alert_id = %alert.id, patient_id = %patient.id, level = alert.level.code(), "safety alert raised by a response");
    }
    let alert_level = match (duplicate, response.alert) {
        (false, _) => alert.map(|alert| alert.level),
        // The stored alert decides; if it cannot be read, the patient still sees the crisis
        // resources as for the highest level.
        (true, Some(id)) => Some(match store.get_alert(id).await {
            Ok(stored) => stored.level,
            Err(error) => {
                tracing::error!(alert_id = %id, error = %error, "alert of a repeated submission could not be read");
                AlertLevel::High
            }
        }),
        (true, None) => None,
    };
    Ok(SubmitResult {
        response,
        alert_level,
        duplicate,
    })
}

/// Checks who may submit: the patient for their own forms, or a clinician in the patient's care
/// team entering a paper form. Anyone else is rejected.
async fn check_submitter(
    store: &dyn Store,
    clock: &dyn Clock,
    account: &Account,
    patient: &stillpoint_domain::Patient,
) -> Result<(), AppError> {
    let own = patient.account_id == Some(account.id) && account.has_role(Role::Patient);
    let entering_for_patient = !own
        && account.has_role(Role::Clinician)
        && care::access_to(store, clock, account, patient)
            .await?
            .sees_clinical_record();
    if !own && !entering_for_patient {
        tracing::info!(account_id = %account.id, patient_id = %patient.id, "response submission rejected: not the patient or their clinician");
        return Err(AppError::Forbidden);
    }
    Ok(())
}

/// Converts each scale's score, or the reason it has none, into its stored form.
fn stored_scores(scores: &[ScaleScore]) -> Vec<StoredScore> {
    scores
        .iter()
        .map(|score| match &score.outcome {
            Ok(value) => StoredScore {
                scale: score.scale.clone(),
                raw: Some(value.raw),
                reported: Some(value.reported),
                band: value.band.clone(),
                incomplete: value.incomplete,
                problem: None,
            },
            Err(problem) => StoredScore {
                scale: score.scale.clone(),
                raw: None,
                reported: None,
                band: None,
                incomplete: true,
                problem: Some(problem.to_string()),
            },
        })
        .collect()
}

/// Builds the audit events of a submission: the response's creation and, when it raised one,
/// the alert's.
fn submission_audit(
    context: &AuditContext,
    now: Timestamp,
    patient: PatientId,
    response: ResponseId,
    alert: Option<&NewAlert>,
) -> Vec<NewAuditEvent> {
    let mut audit = vec![event(
        context,
        now,
        patient,
        "measure_response",
        response.to_string(),
        AuditAction::Create,
    )];
    if let Some(alert) = alert {
        audit.push(event(
            context,
            now,
            patient,
            "safety_alert",
            alert.id.to_string(),
            AuditAction::Create,
        ));
    }
    audit
}

/// Returns whether a stored response contains the same form as a repeated submission.
fn same_form(stored: &StoredResponse, instrument: &Instrument, submission: &Submission) -> bool {
    stored.instrument == instrument.id.as_str()
        && stored.answers == submission.answers
        && stored.occasion == submission.occasion
}

/// Reads the site's safety settings, or returns the defaults when they cannot be read, so a
/// response that needs an alert is never rejected for want of them.
pub(crate) async fn site_settings(store: &dyn Store, site: SiteId) -> SafetySettings {
    match store.safety_settings(site).await {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(site_id = %site, error = %error, "safety settings could not be read; using the defaults");
            SafetySettings::default()
        }
    }
}

/// Computes the acknowledgement deadline, or the default grace from now when the settings are
/// unusable.
pub(crate) fn deadline_or_default(
    settings: &SafetySettings,
    site: &stillpoint_domain::Site,
    now: Timestamp,
) -> Timestamp {
    deadline(settings, site, now).unwrap_or_else(|error| {
        tracing::error!(site_id = %site.id, error = %error, "safety settings are invalid; the alert is due in 15 minutes");
        let grace = jiff::SignedDuration::from_mins(i64::from(SafetySettings::default().deadline_minutes));
        now.checked_add(grace).unwrap_or(now)
    })
}

/// Checks that `occasion` is one of the patient's plan occasions and includes the instrument.
async fn check_occasion(
    store: &dyn Store,
    library: &MeasureLibrary,
    now: Timestamp,
    patient: &stillpoint_domain::Patient,
    instrument: &Instrument,
    occasion: &str,
) -> Result<(), AppError> {
    let occasions = occasions_of(store, library, now, patient.id).await?;
    let known = occasions.iter().any(|due| {
        due.occasion.key == occasion
            && due
                .instruments
                .iter()
                .any(|(id, _)| id == instrument.id.as_str())
    });
    if known {
        Ok(())
    } else {
        Err(InvalidValue::new(
            "occasion",
            format!(
                "'{occasion:.40}' is not an occasion of this patient's measurement plan that asks for {}; leave it out or use one from the plan",
                instrument.short_name
            ),
        )
        .into())
    }
}

fn check_client_id(client_id: &str) -> Result<(), InvalidValue> {
    let valid = !client_id.is_empty()
        && client_id.len() <= MAX_CLIENT_ID
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(InvalidValue::new(
            "client_id",
            format!(
                "give a client id of 1 to {MAX_CLIENT_ID} letters, digits, '-' or '_', such as a UUID"
            ),
        ))
    }
}

fn unusable(library: &MeasureLibrary, id: &str) -> AppError {
    if library.instrument(id).is_some() {
        InvalidValue::new(
            "instrument",
            format!(
                "'{id}' needs the owner's permission; an administrator must record the organisation's licence before it can be used"
            ),
        )
        .into()
    } else {
        InvalidValue::new(
            "instrument",
            format!("'{id}' is not an instrument in the library"),
        )
        .into()
    }
}

/// Computes the acknowledgement deadline of an alert raised now at `site`.
pub(crate) fn deadline(
    settings: &crate::ports::SafetySettings,
    site: &stillpoint_domain::Site,
    now: Timestamp,
) -> Result<Timestamp, AppError> {
    let hours = StaffedHours::parse(
        &settings.staffed_days,
        &settings.staffed_opens,
        &settings.staffed_closes,
    )?;
    let zone = site.time_zone.time_zone();
    Ok(safety::acknowledgement_deadline(
        now,
        &hours,
        &zone,
        settings.deadline_minutes,
    ))
}

pub(crate) fn event(
    context: &AuditContext,
    at: Timestamp,
    patient: PatientId,
    resource_type: &str,
    resource_id: String,
    action: AuditAction,
) -> NewAuditEvent {
    NewAuditEvent {
        recorded_at: at,
        actor: context.actor,
        actor_role: context.actor_role,
        patient: Some(patient),
        resource_type: resource_type.to_owned(),
        resource_id: Some(resource_id),
        action,
        outcome: AuditOutcome::Success,
        source_address: context.source_address.clone(),
        break_glass: false,
    }
}

/// One occasion of the patient's plan, with its status and which instruments are answered.
#[derive(Debug, Clone)]
pub struct DueOccasion {
    pub occasion: Occasion,
    pub status: OccasionStatus,
    /// The occasion's instruments the clinic can use, with whether each is answered.
    pub instruments: Vec<(String, bool)>,
}

/// The patient's measurement-plan occasions, from their cohort's curriculum plan. Instruments
/// that need a licence the organisation has not recorded are left out.
pub async fn occasions_of(
    store: &dyn Store,
    library: &MeasureLibrary,
    now: Timestamp,
    patient: PatientId,
) -> Result<Vec<DueOccasion>, AppError> {
    let view = program::program_of(store, now, patient).await?;
    if !view.state.takes_part() && !view.state.holds_place() {
        return Ok(Vec::new());
    }
    let Some((curriculum, _)) = view
        .cohort
        .as_ref()
        .and_then(|cohort| cohort.curriculum.clone())
    else {
        return Ok(Vec::new());
    };
    let Some(plan) = library.plan_for(curriculum.as_str()) else {
        return Ok(Vec::new());
    };
    let sessions: Vec<(SessionKind, Timestamp)> = view
        .sessions
        .iter()
        .filter(|session| session.status == SessionStatus::Scheduled)
        .map(|session| (session.planned.kind, session.planned.start))
        .collect();

    let licensed: BTreeSet<String> = store
        .list_licences()
        .await?
        .into_iter()
        .map(|licence| licence.instrument)
        .collect();
    let usable = |id: &InstrumentId| {
        library.instrument(id.as_str()).is_some_and(|instrument| {
            instrument.licence.status == LicenceStatus::Free || licensed.contains(id.as_str())
        })
    };

    let responses = store.responses_of_patient(patient).await?;
    let mut occasions = Vec::new();
    for mut occasion in plan.occasions(&sessions) {
        occasion.instruments.retain(|id| usable(id));
        if occasion.instruments.is_empty() {
            continue;
        }
        let answered: BTreeSet<InstrumentId> = responses
            .iter()
            .filter(|response| response.occasion.as_deref() == Some(occasion.key.as_str()))
            .filter_map(|response| InstrumentId::parse(&response.instrument).ok())
            .collect();
        let status = occasion.status(now, &answered);
        let instruments = occasion
            .instruments
            .iter()
            .map(|id| (id.to_string(), answered.contains(id)))
            .collect();
        occasions.push(DueOccasion {
            occasion,
            status,
            instruments,
        });
    }
    Ok(occasions)
}

/// The signed-in patient's occasions that can be answered now.
pub async fn own_due(
    store: &dyn Store,
    clock: &dyn Clock,
    library: &MeasureLibrary,
    account: &Account,
) -> Result<Vec<DueOccasion>, AppError> {
    let Some(patient) = crate::patients::own_record_id(store, account).await? else {
        return Ok(Vec::new());
    };
    let occasions = occasions_of(store, library, clock.now(), patient).await?;
    Ok(occasions
        .into_iter()
        .filter(|occasion| occasion.status.is_open())
        .collect())
}

/// One point of a measure over time.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    pub response: ResponseId,
    pub at: Timestamp,
    pub reported: f64,
    pub band: Option<String>,
    pub incomplete: bool,
}

/// A scale's scores over time, with the change from the first (baseline) score to the latest.
#[derive(Debug, Clone)]
pub struct MeasureSeries {
    pub instrument: String,
    pub scale: String,
    pub points: Vec<SeriesPoint>,
    /// `None` with fewer than two scores or without the scale's reliability and norms.
    pub change: Option<Change>,
    pub minimum_reliable_change: Option<f64>,
    /// Where the standard deviation behind the change came from.
    pub sd_source: Option<change::SdSource>,
}

/// The clinic's complete baseline scores per (instrument, scale), for the standard deviation
/// the Reliable Change Index needs when an instrument stores no published norms.
pub type BaselineScores = BTreeMap<(String, String), Vec<f64>>;

/// Reads the baseline scores of every scale that has a reliability but no norms, for the
/// scales a patient's responses touch.
pub async fn baseline_scores(
    store: &dyn Store,
    library: &MeasureLibrary,
    responses: &[StoredResponse],
) -> Result<BaselineScores, AppError> {
    let mut scores = BaselineScores::new();
    for instrument in library.instruments() {
        if !responses
            .iter()
            .any(|response| response.instrument == instrument.id.as_str())
        {
            continue;
        }
        for scale in &instrument.scales {
            if scale.reliability.is_none() || scale.norms.is_some() {
                continue;
            }
            let values = store
                .baseline_scores(instrument.id.as_str(), &scale.code)
                .await?;
            scores.insert((instrument.id.to_string(), scale.code.clone()), values);
        }
    }
    Ok(scores)
}

/// Groups a patient's scored responses into one series per instrument scale, in the library's
/// order, and computes reliable change from the baseline score (the response to the
/// `baseline` occasion, else the first complete score) to the latest.
#[must_use]
pub fn series(
    library: &MeasureLibrary,
    responses: &[StoredResponse],
    baselines: &BaselineScores,
) -> Vec<MeasureSeries> {
    let mut all = Vec::new();
    for instrument in library.instruments() {
        for scale in &instrument.scales {
            let scored: Vec<(&StoredResponse, SeriesPoint)> = responses
                .iter()
                .filter(|response| response.instrument == instrument.id.as_str())
                .filter_map(|response| {
                    let score = response.scores.iter().find(|s| s.scale == scale.code)?;
                    Some((
                        response,
                        SeriesPoint {
                            response: response.id,
                            at: response.submitted_at,
                            reported: score.reported?,
                            band: score.band.clone(),
                            incomplete: score.incomplete,
                        },
                    ))
                })
                .collect();
            if scored.is_empty() {
                continue;
            }
            let baseline = scored
                .iter()
                .find(|(response, point)| {
                    response.occasion.as_deref() == Some("baseline") && !point.incomplete
                })
                .or_else(|| scored.iter().find(|(_, point)| !point.incomplete))
                .map(|(_, point)| point.clone());
            let points: Vec<SeriesPoint> = scored.into_iter().map(|(_, point)| point).collect();
            let sample = baselines
                .get(&(instrument.id.to_string(), scale.code.clone()))
                .map_or(&[][..], Vec::as_slice);
            let parameters = ChangeParameters::for_scale(scale, sample);
            let change = match (&baseline, points.last(), &parameters) {
                (Some(first), Some(last), Some((parameters, _)))
                    if first.response != last.response =>
                {
                    change::reliable_change(first.reported, last.reported, parameters).ok()
                }
                _ => None,
            };
            all.push(MeasureSeries {
                instrument: instrument.id.to_string(),
                scale: scale.code.clone(),
                minimum_reliable_change: parameters
                    .as_ref()
                    .map(|(parameters, _)| parameters.minimum_reliable_change()),
                sd_source: parameters.map(|(_, source)| source),
                points,
                change,
            });
        }
    }
    all
}

/// The signed-in patient's own responses; the read is audited.
pub async fn own_responses(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
) -> Result<(PatientId, Vec<StoredResponse>), AppError> {
    let patient = crate::patients::own_record_id(store, account)
        .await?
        .ok_or(AppError::Forbidden)?;
    let responses = store.responses_of_patient(patient).await?;
    store
        .append_audit_event(&event(
            context,
            clock.now(),
            patient,
            "measure_response",
            patient.to_string(),
            AuditAction::Read,
        ))
        .await?;
    Ok((patient, responses))
}

/// A patient's responses for a member of their care team (or the patient); opening the record
/// audits the read.
pub async fn responses_of(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    patient: PatientId,
) -> Result<Vec<StoredResponse>, AppError> {
    let record = care::open_record(store, clock, context, account, patient).await?;
    if !record.access.sees_clinical_record() {
        return Err(AppError::Forbidden);
    }
    Ok(store.responses_of_patient(patient).await?)
}

/// Records the organisation's licence for an instrument that needs one, with the item text
/// the clinic supplies. Only a system administrator may.
pub async fn record_licence(
    store: &dyn Store,
    clock: &dyn Clock,
    library: &MeasureLibrary,
    context: &AuditContext,
    account: &Account,
    request: LicenceRequest,
) -> Result<(), AppError> {
    if !account.has_role(Role::SystemAdministrator) {
        return Err(AppError::Forbidden);
    }
    let instrument = library
        .instrument(&request.instrument)
        .ok_or_else(|| InvalidValue::new("instrument", "choose an instrument from the library"))?;
    if instrument.licence.status == LicenceStatus::Free {
        return Err(InvalidValue::new(
            "instrument",
            format!(
                "{} is free to use and needs no licence",
                instrument.short_name
            ),
        )
        .into());
    }
    let holder = required_text("holder", &request.holder, 200)?;
    let reference = required_text("reference", &request.reference, 200)?;
    let mut item_text = BTreeMap::new();
    for (language, lines) in &request.item_text {
        let texts: Vec<&str> = lines
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        if texts.is_empty() {
            continue;
        }
        if texts.len() != instrument.items.len() {
            return Err(InvalidValue::new(
                "item_text",
                format!(
                    "the {} text has {} lines; give one line for each of the {} items, in order",
                    language.as_str(),
                    texts.len(),
                    instrument.items.len()
                ),
            )
            .into());
        }
        if let Some(long) = texts.iter().find(|text| text.chars().count() > 1_000) {
            return Err(InvalidValue::new(
                "item_text",
                format!("an item text may have at most 1,000 characters: '{long:.40}…'"),
            )
            .into());
        }
        let by_item = instrument
            .items
            .iter()
            .zip(texts)
            .map(|(item, text)| (item.id.clone(), text.to_owned()))
            .collect();
        item_text.insert(language.clone(), by_item);
    }
    if !item_text.contains_key(&Language::english()) {
        return Err(InvalidValue::new(
            "item_text",
            "give the English text of every item, one per line",
        )
        .into());
    }
    let now = clock.now();
    let licence = InstrumentLicence {
        instrument: instrument.id.to_string(),
        holder,
        reference,
        recorded_by: account.id,
        recorded_at: now,
        item_text,
    };
    let audit = NewAuditEvent {
        recorded_at: now,
        actor: context.actor,
        actor_role: context.actor_role,
        patient: None,
        resource_type: "instrument_licence".to_owned(),
        resource_id: Some(instrument.id.to_string()),
        action: AuditAction::Update,
        outcome: AuditOutcome::Success,
        source_address: context.source_address.clone(),
        break_glass: false,
    };
    store.record_licence(&licence, &audit).await?;
    tracing::info!(instrument = %instrument.id, "instrument licence recorded");
    Ok(())
}

/// An administrator's licence form.
#[derive(Debug, Clone, Default)]
pub struct LicenceRequest {
    pub instrument: String,
    pub holder: String,
    pub reference: String,
    /// Item text per language, one item per line in the instrument's order.
    pub item_text: BTreeMap<Language, String>,
}

fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, InvalidValue> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(InvalidValue::new(
            field,
            format!("enter 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The sites where `account` reviews safety alerts: those where it is a clinician or a program
/// administrator. `None` for a system administrator, who sees every site.
#[must_use]
pub fn alert_sites(account: &Account) -> Option<Vec<SiteId>> {
    if account.has_role(Role::SystemAdministrator) {
        return None;
    }
    Some(
        account
            .roles
            .iter()
            .filter(|assignment| {
                matches!(
                    assignment.role,
                    Role::Clinician | Role::ProgramAdministrator
                )
            })
            .filter_map(|assignment| assignment.site_id)
            .collect(),
    )
}

/// What a member of the care team sees of one patient's outcomes: each measure over time with
/// its change category, the plan's occasions, attendance, and (for alert reviewers) the alerts.
#[derive(Debug, Clone)]
pub struct PatientTimeline {
    pub patient: stillpoint_domain::Patient,
    pub series: Vec<MeasureSeries>,
    pub occasions: Vec<DueOccasion>,
    pub attendance: stillpoint_domain::attendance::AttendanceSummary,
    /// `None` when the viewer does not review alerts at the patient's site.
    pub alerts: Option<Vec<crate::ports::SafetyAlert>>,
    /// Home practice minutes per program week, to read beside the scores.
    pub practice: crate::practice::PracticeDose,
}

/// Opens a patient's outcome timeline for a member of their care team; the read is audited
/// by opening the record.
pub async fn timeline(
    store: &dyn Store,
    clock: &dyn Clock,
    library: &MeasureLibrary,
    context: &AuditContext,
    account: &Account,
    patient: PatientId,
) -> Result<PatientTimeline, AppError> {
    let record = care::open_record(store, clock, context, account, patient).await?;
    if !record.access.sees_clinical_record() || record.access == RecordAccess::Own {
        return Err(AppError::Forbidden);
    }
    let now = clock.now();
    let responses = store.responses_of_patient(patient).await?;
    let reviews_alerts =
        alert_sites(account).is_none_or(|sites| sites.contains(&record.patient.site_id));
    let alerts = if reviews_alerts {
        let mut alerts = store
            .list_alerts(&crate::ports::AlertFilter {
                sites: None,
                patient: Some(patient),
                open_only: false,
            })
            .await?;
        alerts.retain(|alert| crate::safety::sees_alert(account, alert));
        Some(alerts)
    } else {
        None
    };
    let view = program::program_of(store, now, patient).await?;
    let baselines = baseline_scores(store, library, &responses).await?;
    let practice = crate::practice::dose_of(store, now, &view).await?;
    Ok(PatientTimeline {
        practice,
        series: series(library, &responses, &baselines),
        occasions: occasions_of(store, library, now, patient).await?,
        attendance: view.attendance,
        alerts,
        patient: record.patient,
    })
}
