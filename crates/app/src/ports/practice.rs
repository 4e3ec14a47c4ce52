//! The storage port of home practice: the recording library, practice diaries, accepted
//! assignment changes and tailoring suggestions.

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::audio::AudioFormat;
use stillpoint_domain::practice::tailoring::{Evidence, Rule};
use stillpoint_domain::practice::{Adjustment, DistressRating, EntrySource, PracticeKind};
use stillpoint_domain::{
    AccountId, Language, PatientId, PracticeEntryId, RecordingId, SuggestionId,
};

use crate::StorageError;

/// The size of the pieces a recording's audio is stored in.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// A recording's description, without its audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub id: RecordingId,
    pub practice: Practice,
    pub language: Language,
    pub title: String,
    pub format: AudioFormat,
    pub duration_ms: u64,
    pub byte_size: u64,
    /// Hex SHA-256 of the audio.
    pub sha256: String,
    /// The WebVTT captions.
    pub captions: String,
    pub transcript: String,
    pub uploaded_by: Option<AccountId>,
    pub uploaded_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl Recording {
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // Milliseconds of one recording, far below 2^52.
    pub fn duration_seconds(&self) -> f64 {
        self.duration_ms as f64 / 1000.0
    }

    /// Returns the length rounded to whole minutes, at least one, as the library lists it.
    #[must_use]
    pub fn minutes(&self) -> u32 {
        u32::try_from(((self.duration_ms + 30_000) / 60_000).max(1)).unwrap_or(u32::MAX)
    }
}

/// One diary entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeEntry {
    pub id: PracticeEntryId,
    pub patient: PatientId,
    pub practiced_on: Date,
    pub kind: PracticeKind,
    pub source: EntrySource,
    pub recording: Option<RecordingId>,
    pub seconds: u32,
    /// For recordings, the played intervals (see `stillpoint_domain::practice::listening`).
    pub segments: Option<String>,
    pub distress_before: Option<DistressRating>,
    pub distress_after: Option<DistressRating>,
    pub noticed: String,
    pub shared: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The outcome of adding an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryAdded {
    Added,
    /// An entry with this id was there already and is returned unchanged.
    AlreadyThere(Box<PracticeEntry>),
}

/// A stored tailoring suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSuggestion {
    pub id: SuggestionId,
    pub patient: PatientId,
    pub rule: Rule,
    pub week: u8,
    pub evidence: Evidence,
    pub adjustment: Option<Adjustment>,
    pub state: SuggestionState,
    pub created_at: Timestamp,
    pub decided_by: Option<AccountId>,
    pub decided_at: Option<Timestamp>,
}

/// The state of a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestionState {
    Open,
    Accepted,
    Dismissed,
}

impl SuggestionState {
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Dismissed => "dismissed",
        }
    }
}

/// Home practice storage.
#[async_trait]
pub trait PracticeStore: Send + Sync {
    /// Stores a recording and its audio in one transaction.
    async fn insert_recording(
        &self,
        recording: &Recording,
        audio: &[u8],
    ) -> Result<(), StorageError>;
    /// Every recording, retired ones included, by practice, language and length.
    async fn list_recordings(&self) -> Result<Vec<Recording>, StorageError>;
    async fn get_recording(&self, id: RecordingId) -> Result<Recording, StorageError>;
    /// The audio bytes from `start` up to but not including `end`.
    async fn read_recording_audio(
        &self,
        id: RecordingId,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, StorageError>;
    /// Takes a recording out of the library; returns `false` when it was out already.
    async fn retire_recording(&self, id: RecordingId, at: Timestamp) -> Result<bool, StorageError>;

    /// Adds an entry unless one with its id exists.
    async fn add_practice_entry(&self, entry: &PracticeEntry) -> Result<EntryAdded, StorageError>;
    async fn get_practice_entry(&self, id: PracticeEntryId) -> Result<PracticeEntry, StorageError>;
    /// Replaces the diary fields and time of an entry of `entry.patient`. `expected_updated_at`
    /// guards against a concurrent change: the store returns a conflict when the row moved on.
    async fn update_practice_entry(
        &self,
        entry: &PracticeEntry,
        expected_updated_at: Timestamp,
    ) -> Result<(), StorageError>;
    /// Deletes an entry of `patient`; returns `false` when there was none.
    async fn delete_practice_entry(
        &self,
        patient: PatientId,
        id: PracticeEntryId,
    ) -> Result<bool, StorageError>;
    /// The patient's entries dated `from` or later, newest first.
    async fn practice_entries_of(
        &self,
        patient: PatientId,
        from: Date,
    ) -> Result<Vec<PracticeEntry>, StorageError>;
    /// The seconds practised per patient and day, dated `from` or later, for many patients.
    async fn practice_days_of(
        &self,
        patients: &[PatientId],
        from: Date,
    ) -> Result<Vec<(PatientId, Date, u32)>, StorageError>;
    /// Entries the patients shared with their facilitator, dated `from` or later, newest first.
    async fn shared_entries_of(
        &self,
        patients: &[PatientId],
        from: Date,
    ) -> Result<Vec<PracticeEntry>, StorageError>;

    /// The adjustment in force for a patient; the default when none was accepted.
    async fn practice_adjustment(&self, patient: PatientId) -> Result<Adjustment, StorageError>;
    /// When the patient's adjustment last changed; `None` when none was accepted.
    async fn practice_adjustment_since(
        &self,
        patient: PatientId,
    ) -> Result<Option<Timestamp>, StorageError>;
    /// Adds a suggestion unless the same rule already made one for the patient that week;
    /// returns whether it was added.
    async fn add_suggestion(&self, suggestion: &StoredSuggestion) -> Result<bool, StorageError>;
    /// Suggestions for the patients, newest first.
    async fn suggestions_of(
        &self,
        patients: &[PatientId],
    ) -> Result<Vec<StoredSuggestion>, StorageError>;
    async fn get_suggestion(&self, id: SuggestionId) -> Result<StoredSuggestion, StorageError>;
    /// Records the decision on an open suggestion and, when it is accepted with a change,
    /// combines the change with the patient's adjustment (see [`Adjustment::and`]), in one
    /// transaction. A suggestion decided already is a conflict.
    async fn decide_suggestion(
        &self,
        id: SuggestionId,
        state: SuggestionState,
        change: Option<Adjustment>,
        by: AccountId,
        at: Timestamp,
    ) -> Result<(), StorageError>;
}
