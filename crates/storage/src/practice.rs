//! The recording library, practice diaries, assignment adjustments and tailoring suggestions.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::any::AnyRow;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    CHUNK_BYTES, EntryAdded, PracticeEntry, PracticeStore, Recording, StoredSuggestion,
    SuggestionState,
};
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::audio::AudioFormat;
use stillpoint_domain::practice::tailoring::Rule;
use stillpoint_domain::practice::{Adjustment, DistressRating, EntrySource, PracticeKind};
use stillpoint_domain::{
    AccountId, Language, PatientId, PracticeEntryId, RecordingId, SuggestionId,
};

use crate::Database;
use crate::error::{map_error, map_write_error};
use crate::values::{column, corrupt, from_millis, optional_instant, parse_column, to_millis};

const RECORDING_COLUMNS: &str = "SELECT id, practice, language, title, media_type, duration_ms, \
     byte_size, sha256, captions, transcript, uploaded_by, uploaded_at, retired_at FROM recordings";

const ENTRY_COLUMNS: &str = "SELECT id, patient_id, practiced_on, kind, source, recording_id, \
     seconds, segments, distress_before, distress_after, noticed, shared, created_at, updated_at \
     FROM practice_entries";

const SUGGESTION_COLUMNS: &str = "SELECT id, patient_id, rule, week, evidence, adjustment, state, \
     created_at, decided_by, decided_at FROM tailoring_suggestions";

fn unsigned(row: &AnyRow, name: &'static str) -> Result<u64, StorageError> {
    let value: i64 = column(row, name)?;
    u64::try_from(value).map_err(|error| corrupt(name, &error))
}

fn optional_id<T>(row: &AnyRow, name: &'static str) -> Result<Option<T>, StorageError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    column::<Option<String>>(row, name)?
        .map(|text| parse_column(name, &text))
        .transpose()
}

fn recording_from_row(row: &AnyRow) -> Result<Recording, StorageError> {
    let invalid =
        |name: &'static str| move |error: stillpoint_domain::InvalidValue| corrupt(name, &error);
    Ok(Recording {
        id: parse_column("recordings.id", &column::<String>(row, "id")?)?,
        practice: Practice::parse(&column::<String>(row, "practice")?)
            .map_err(invalid("recordings.practice"))?,
        language: Language::parse(&column::<String>(row, "language")?)
            .map_err(invalid("recordings.language"))?,
        title: column(row, "title")?,
        format: AudioFormat::from_media_type(&column::<String>(row, "media_type")?)
            .map_err(invalid("recordings.media_type"))?,
        duration_ms: unsigned(row, "duration_ms")?,
        byte_size: unsigned(row, "byte_size")?,
        sha256: column(row, "sha256")?,
        captions: column(row, "captions")?,
        transcript: column(row, "transcript")?,
        uploaded_by: optional_id(row, "uploaded_by")?,
        uploaded_at: from_millis(column(row, "uploaded_at")?)?,
        retired_at: optional_instant(row, "retired_at")?,
    })
}

fn rating(row: &AnyRow, name: &'static str) -> Result<Option<DistressRating>, StorageError> {
    column::<Option<i64>>(row, name)?
        .map(|value| {
            u8::try_from(value)
                .map_err(|error| corrupt(name, &error))
                .and_then(|value| DistressRating::new(value).map_err(|error| corrupt(name, &error)))
        })
        .transpose()
}

fn entry_from_row(row: &AnyRow) -> Result<PracticeEntry, StorageError> {
    let seconds: i64 = column(row, "seconds")?;
    Ok(PracticeEntry {
        id: parse_column("practice_entries.id", &column::<String>(row, "id")?)?,
        patient: parse_column(
            "practice_entries.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        practiced_on: parse_column(
            "practice_entries.practiced_on",
            &column::<String>(row, "practiced_on")?,
        )?,
        kind: PracticeKind::parse(&column::<String>(row, "kind")?)
            .map_err(|error| corrupt("practice_entries.kind", &error))?,
        source: EntrySource::parse(&column::<String>(row, "source")?)
            .map_err(|error| corrupt("practice_entries.source", &error))?,
        recording: optional_id(row, "recording_id")?,
        seconds: u32::try_from(seconds)
            .map_err(|error| corrupt("practice_entries.seconds", &error))?,
        segments: column(row, "segments")?,
        distress_before: rating(row, "distress_before")?,
        distress_after: rating(row, "distress_after")?,
        noticed: column(row, "noticed")?,
        shared: column::<i64>(row, "shared")? == 1,
        created_at: from_millis(column(row, "created_at")?)?,
        updated_at: from_millis(column(row, "updated_at")?)?,
    })
}

fn suggestion_from_row(row: &AnyRow) -> Result<StoredSuggestion, StorageError> {
    let week: i64 = column(row, "week")?;
    let state = match column::<String>(row, "state")?.as_str() {
        "open" => SuggestionState::Open,
        "accepted" => SuggestionState::Accepted,
        "dismissed" => SuggestionState::Dismissed,
        other => return Err(corrupt("tailoring_suggestions.state", &other)),
    };
    let adjustment = column::<Option<String>>(row, "adjustment")?
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|error| corrupt("tailoring_suggestions.adjustment", &error))?;
    Ok(StoredSuggestion {
        id: parse_column("tailoring_suggestions.id", &column::<String>(row, "id")?)?,
        patient: parse_column(
            "tailoring_suggestions.patient_id",
            &column::<String>(row, "patient_id")?,
        )?,
        rule: Rule::parse(&column::<String>(row, "rule")?)
            .map_err(|error| corrupt("tailoring_suggestions.rule", &error))?,
        week: u8::try_from(week).map_err(|error| corrupt("tailoring_suggestions.week", &error))?,
        evidence: serde_json::from_str(&column::<String>(row, "evidence")?)
            .map_err(|error| corrupt("tailoring_suggestions.evidence", &error))?,
        adjustment,
        state,
        created_at: from_millis(column(row, "created_at")?)?,
        decided_by: optional_id(row, "decided_by")?,
        decided_at: optional_instant(row, "decided_at")?,
    })
}

fn to_i64(value: u64, name: &'static str) -> Result<i64, StorageError> {
    i64::try_from(value).map_err(|error| corrupt(name, &error))
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json(value: &impl serde::Serialize, name: &'static str) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|error| corrupt(name, &error))
}

impl Database {
    /// Reads the one row of `columns` (a `SELECT … FROM table`) whose id is `id`.
    async fn fetch_by_id<T>(
        &self,
        columns: &str,
        (entity, id): (&'static str, String),
        from_row: fn(&AnyRow) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{columns} WHERE id = $1")))
            .bind(&id)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, entity, &id))?;
        from_row(&row)
    }

    /// Runs `statement` with `leading` bound first, when given, and then each patient's id.
    async fn fetch_for_patients(
        &self,
        statement: String,
        leading: Option<String>,
        patients: &[PatientId],
    ) -> Result<Vec<AnyRow>, StorageError> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        if let Some(value) = leading {
            query = query.bind(value);
        }
        for patient in patients {
            query = query.bind(patient.to_string());
        }
        query.fetch_all(&self.pool).await.map_err(map_write_error)
    }

    async fn fetch_entries(
        &self,
        filter: &str,
        patients: &[PatientId],
        from: Date,
    ) -> Result<Vec<PracticeEntry>, StorageError> {
        if patients.is_empty() {
            return Ok(Vec::new());
        }
        let statement = format!(
            "{ENTRY_COLUMNS} WHERE patient_id IN ({}) AND practiced_on >= $1{filter} \
             ORDER BY practiced_on DESC, created_at DESC",
            placeholders(2, patients.len())
        );
        let rows = self
            .fetch_for_patients(statement, Some(from.to_string()), patients)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }
}

#[async_trait]
impl PracticeStore for Database {
    async fn insert_recording(
        &self,
        recording: &Recording,
        audio: &[u8],
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        sqlx::query(
            "INSERT INTO recordings (id, practice, language, title, media_type, duration_ms, byte_size, \
             sha256, captions, transcript, uploaded_by, uploaded_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(recording.id.to_string())
        .bind(recording.practice.as_str())
        .bind(recording.language.as_str())
        .bind(&recording.title)
        .bind(recording.format.media_type())
        .bind(to_i64(recording.duration_ms, "duration_ms")?)
        .bind(to_i64(recording.byte_size, "byte_size")?)
        .bind(&recording.sha256)
        .bind(&recording.captions)
        .bind(&recording.transcript)
        .bind(recording.uploaded_by.map(|account| account.to_string()))
        .bind(to_millis(recording.uploaded_at))
        .bind(recording.retired_at.map(to_millis))
        .execute(&mut *transaction)
        .await
        .map_err(map_write_error)?;

        for (index, chunk) in audio.chunks(CHUNK_BYTES).enumerate() {
            sqlx::query("INSERT INTO recording_chunks (recording_id, chunk_index, bytes) VALUES ($1, $2, $3)")
                .bind(recording.id.to_string())
                .bind(to_i64(index as u64, "chunk_index")?)
                .bind(chunk.to_vec())
                .execute(&mut *transaction)
                .await
                .map_err(map_write_error)?;
        }
        transaction.commit().await.map_err(map_write_error)
    }

    async fn list_recordings(&self) -> Result<Vec<Recording>, StorageError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RECORDING_COLUMNS} ORDER BY practice, language, duration_ms, title"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;
        rows.iter().map(recording_from_row).collect()
    }

    async fn get_recording(&self, id: RecordingId) -> Result<Recording, StorageError> {
        self.fetch_by_id(
            RECORDING_COLUMNS,
            ("recording", id.to_string()),
            recording_from_row,
        )
        .await
    }

    async fn read_recording_audio(
        &self,
        id: RecordingId,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, StorageError> {
        if end <= start {
            return Ok(Vec::new());
        }
        let chunk = CHUNK_BYTES as u64;
        let (first, last) = (start / chunk, (end - 1) / chunk);
        let rows = sqlx::query(
            "SELECT chunk_index, bytes FROM recording_chunks \
             WHERE recording_id = $1 AND chunk_index >= $2 AND chunk_index <= $3 ORDER BY chunk_index",
        )
        .bind(id.to_string())
        .bind(to_i64(first, "chunk_index")?)
        .bind(to_i64(last, "chunk_index")?)
        .fetch_all(&self.pool)
        .await
        .map_err(map_write_error)?;

        let mut audio = Vec::with_capacity(usize::try_from(end - start).unwrap_or_default());
        for (expected, row) in (first..=last).zip(&rows) {
            if unsigned(row, "chunk_index")? != expected {
                return Err(corrupt(
                    "recording_chunks.chunk_index",
                    &format!("piece {expected} of {id} is missing"),
                ));
            }
            let bytes: Vec<u8> = column(row, "bytes")?;
            let offset = expected * chunk;
            let from = usize::try_from(start.saturating_sub(offset)).unwrap_or_default();
            let to = usize::try_from((end - offset).min(bytes.len() as u64)).unwrap_or_default();
            audio.extend_from_slice(bytes.get(from..to).unwrap_or_default());
        }
        if audio.len() as u64 != end - start {
            return Err(corrupt(
                "recording_chunks.bytes",
                &format!("the audio of {id} is shorter than its stored size"),
            ));
        }
        Ok(audio)
    }

    async fn retire_recording(&self, id: RecordingId, at: Timestamp) -> Result<bool, StorageError> {
        let result = sqlx::query(
            "UPDATE recordings SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn add_practice_entry(&self, entry: &PracticeEntry) -> Result<EntryAdded, StorageError> {
        let result = sqlx::query(
            "INSERT INTO practice_entries (id, patient_id, practiced_on, kind, source, recording_id, seconds, \
             segments, distress_before, distress_after, noticed, shared, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(entry.id.to_string())
        .bind(entry.patient.to_string())
        .bind(entry.practiced_on.to_string())
        .bind(entry.kind.code())
        .bind(entry.source.code())
        .bind(entry.recording.map(|id| id.to_string()))
        .bind(i64::from(entry.seconds))
        .bind(entry.segments.as_deref())
        .bind(entry.distress_before.map(|rating| i64::from(rating.value())))
        .bind(entry.distress_after.map(|rating| i64::from(rating.value())))
        .bind(&entry.noticed)
        .bind(i64::from(entry.shared))
        .bind(to_millis(entry.created_at))
        .bind(to_millis(entry.updated_at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        if result.rows_affected() == 1 {
            return Ok(EntryAdded::Added);
        }
        let existing = self.get_practice_entry(entry.id).await?;
        Ok(EntryAdded::AlreadyThere(Box::new(existing)))
    }

    async fn get_practice_entry(&self, id: PracticeEntryId) -> Result<PracticeEntry, StorageError> {
        self.fetch_by_id(
            ENTRY_COLUMNS,
            ("practice entry", id.to_string()),
            entry_from_row,
        )
        .await
    }

    async fn update_practice_entry(
        &self,
        entry: &PracticeEntry,
        expected_updated_at: Timestamp,
    ) -> Result<(), StorageError> {
        let result = sqlx::query(
            "UPDATE practice_entries SET practiced_on = $1, kind = $2, seconds = $3, segments = $4, \
             distress_before = $5, distress_after = $6, noticed = $7, shared = $8, updated_at = $9 \
             WHERE id = $10 AND patient_id = $11 AND updated_at = $12",
        )
        .bind(entry.practiced_on.to_string())
        .bind(entry.kind.code())
        .bind(i64::from(entry.seconds))
        .bind(entry.segments.as_deref())
        .bind(entry.distress_before.map(|rating| i64::from(rating.value())))
        .bind(entry.distress_after.map(|rating| i64::from(rating.value())))
        .bind(&entry.noticed)
        .bind(i64::from(entry.shared))
        .bind(to_millis(entry.updated_at))
        .bind(entry.id.to_string())
        .bind(entry.patient.to_string())
        .bind(to_millis(expected_updated_at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        if result.rows_affected() == 0 {
            return Err(StorageError::Conflict {
                constraint: "practice_entries_updated_at".to_owned(),
            });
        }
        Ok(())
    }

    async fn delete_practice_entry(
        &self,
        patient: PatientId,
        id: PracticeEntryId,
    ) -> Result<bool, StorageError> {
        let result = sqlx::query("DELETE FROM practice_entries WHERE id = $1 AND patient_id = $2")
            .bind(id.to_string())
            .bind(patient.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_write_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn practice_entries_of(
        &self,
        patient: PatientId,
        from: Date,
    ) -> Result<Vec<PracticeEntry>, StorageError> {
        self.fetch_entries("", &[patient], from).await
    }

    async fn practice_days_of(
        &self,
        patients: &[PatientId],
        from: Date,
    ) -> Result<Vec<(PatientId, Date, u32)>, StorageError> {
        if patients.is_empty() {
            return Ok(Vec::new());
        }
        let statement = format!(
            "SELECT patient_id, practiced_on, CAST(SUM(seconds) AS BIGINT) AS seconds FROM practice_entries \
             WHERE patient_id IN ({}) AND practiced_on >= $1 \
             GROUP BY patient_id, practiced_on ORDER BY patient_id, practiced_on",
            placeholders(2, patients.len())
        );
        let rows = self
            .fetch_for_patients(statement, Some(from.to_string()), patients)
            .await?;
        rows.iter()
            .map(|row| {
                let seconds: i64 = column(row, "seconds")?;
                Ok((
                    parse_column(
                        "practice_entries.patient_id",
                        &column::<String>(row, "patient_id")?,
                    )?,
                    parse_column(
                        "practice_entries.practiced_on",
                        &column::<String>(row, "practiced_on")?,
                    )?,
                    u32::try_from(seconds)
                        .map_err(|error| corrupt("practice_entries.seconds", &error))?,
                ))
            })
            .collect()
    }

    async fn shared_entries_of(
        &self,
        patients: &[PatientId],
        from: Date,
    ) -> Result<Vec<PracticeEntry>, StorageError> {
        self.fetch_entries(" AND shared = 1", patients, from).await
    }

    async fn practice_adjustment(&self, patient: PatientId) -> Result<Adjustment, StorageError> {
        let row = sqlx::query(
            "SELECT max_minutes, seated_or_lying FROM practice_adjustments WHERE patient_id = $1",
        )
        .bind(patient.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_write_error)?;
        let Some(row) = row else {
            return Ok(Adjustment::default());
        };
        let max_minutes = column::<Option<i64>>(&row, "max_minutes")?
            .map(|minutes| {
                u32::try_from(minutes)
                    .map_err(|error| corrupt("practice_adjustments.max_minutes", &error))
            })
            .transpose()?;
        Ok(Adjustment {
            max_minutes,
            seated_or_lying_movement: column::<i64>(&row, "seated_or_lying")? == 1,
        })
    }

    async fn practice_adjustment_since(
        &self,
        patient: PatientId,
    ) -> Result<Option<Timestamp>, StorageError> {
        let millis: Option<i64> =
            sqlx::query_scalar("SELECT updated_at FROM practice_adjustments WHERE patient_id = $1")
                .bind(patient.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_write_error)?;
        millis.map(from_millis).transpose()
    }

    async fn add_suggestion(&self, suggestion: &StoredSuggestion) -> Result<bool, StorageError> {
        let adjustment = suggestion
            .adjustment
            .map(|adjustment| json(&adjustment, "adjustment"))
            .transpose()?;
        let result = sqlx::query(
            "INSERT INTO tailoring_suggestions (id, patient_id, rule, week, evidence, adjustment, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (patient_id, rule, week) DO NOTHING",
        )
        .bind(suggestion.id.to_string())
        .bind(suggestion.patient.to_string())
        .bind(suggestion.rule.code())
        .bind(i64::from(suggestion.week))
        .bind(json(&suggestion.evidence, "evidence")?)
        .bind(adjustment)
        .bind(suggestion.state.code())
        .bind(to_millis(suggestion.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_write_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn suggestions_of(
        &self,
        patients: &[PatientId],
    ) -> Result<Vec<StoredSuggestion>, StorageError> {
        if patients.is_empty() {
            return Ok(Vec::new());
        }
        let statement = format!(
            "{SUGGESTION_COLUMNS} WHERE patient_id IN ({}) ORDER BY created_at DESC, id",
            placeholders(1, patients.len())
        );
        let rows = self.fetch_for_patients(statement, None, patients).await?;
        rows.iter().map(suggestion_from_row).collect()
    }

    async fn get_suggestion(&self, id: SuggestionId) -> Result<StoredSuggestion, StorageError> {
        self.fetch_by_id(
            SUGGESTION_COLUMNS,
            ("tailoring suggestion", id.to_string()),
            suggestion_from_row,
        )
        .await
    }

    async fn decide_suggestion(
        &self,
        id: SuggestionId,
        state: SuggestionState,
        change: Option<Adjustment>,
        by: AccountId,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_write_error)?;
        let patient: Option<String> = sqlx::query_scalar(
            "UPDATE tailoring_suggestions SET state = $1, decided_by = $2, decided_at = $3 \
             WHERE id = $4 AND state = 'open' RETURNING patient_id",
        )
        .bind(state.code())
        .bind(by.to_string())
        .bind(to_millis(at))
        .bind(id.to_string())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(map_write_error)?;
        let Some(patient) = patient else {
            return Err(StorageError::Conflict {
                constraint: "tailoring_suggestions_state".to_owned(),
            });
        };

        // The change is combined with the stored adjustment in one statement (the shorter limit,
        // either movement choice), so two acceptances at once both take effect.
        if let Some(change) = change {
            sqlx::query(
                "INSERT INTO practice_adjustments (patient_id, max_minutes, seated_or_lying, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (patient_id) DO UPDATE SET \
                 max_minutes = CASE \
                     WHEN excluded.max_minutes IS NULL THEN practice_adjustments.max_minutes \
                     WHEN practice_adjustments.max_minutes IS NULL THEN excluded.max_minutes \
                     WHEN excluded.max_minutes < practice_adjustments.max_minutes THEN excluded.max_minutes \
                     ELSE practice_adjustments.max_minutes END, \
                 seated_or_lying = CASE WHEN excluded.seated_or_lying = 1 THEN 1 ELSE practice_adjustments.seated_or_lying END, \
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            )
            .bind(patient)
            .bind(change.max_minutes.map(i64::from))
            .bind(i64::from(change.seated_or_lying_movement))
            .bind(by.to_string())
            .bind(to_millis(at))
            .execute(&mut *transaction)
            .await
            .map_err(map_write_error)?;
        }
        transaction.commit().await.map_err(map_write_error)
    }
}
