//! The practice library: guided recordings with captions and transcripts, uploaded by
//! facilitators and administrators and played by patients.

use sha2::{Digest as _, Sha256};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::{audio, webvtt};
use stillpoint_domain::{Account, InvalidValue, Language, RecordingId, Role};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{Recording, Store};
use crate::{AppError, Clock};

/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// The longest transcript, in characters; by estimate a 45-minute talk runs to about 40,000.
pub const MAX_TRANSCRIPT_CHARS: usize = 200_000;

/// How far the last caption may run past the end of the audio, in milliseconds.
const CAPTION_OVERRUN_MS: u64 = 1_000;

/// Whether `account` may add recordings to the library or take them out.
#[must_use]
pub fn manages_library(account: &Account) -> bool {
    account.has_role(Role::Facilitator)
        || account.has_role(Role::ProgramAdministrator)
        || account.has_role(Role::SystemAdministrator)
}

/// A recording as uploaded through the library form.
#[derive(Debug, Clone, Default)]
pub struct RecordingUpload {
    pub practice: String,
    pub language: String,
    pub title: String,
    pub audio: Vec<u8>,
    pub captions: Vec<u8>,
    /// May be empty, and is then made from the captions' text.
    pub transcript: String,
}

/// Checks an upload and adds it to the library; `max_bytes` is the largest audio file allowed.
pub async fn add_recording(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    upload: &RecordingUpload,
    max_bytes: u64,
) -> Result<Recording, AppError> {
    if !manages_library(account) {
        return Err(AppError::Forbidden);
    }
    let recording = check_upload(upload, max_bytes, Some(account), clock)?;
    store.insert_recording(&recording, &upload.audio).await?;
    audit_library(store, clock, context, recording.id, AuditAction::Create).await?;
    tracing::info!(recording_id = %recording.id, bytes = recording.byte_size, "recording added to the library");
    Ok(recording)
}

/// Adds recordings that ship with Stillpoint, such as the demo clinic's, unless the library has
/// the same audio already; returns how many were added.
pub async fn add_bundled(
    store: &dyn Store,
    clock: &dyn Clock,
    uploads: &[RecordingUpload],
) -> Result<usize, AppError> {
    let existing: Vec<String> = store
        .list_recordings()
        .await?
        .into_iter()
        .map(|recording| recording.sha256)
        .collect();
    let mut added = 0;
    for upload in uploads {
        let recording = check_upload(upload, u64::MAX, None, clock)?;
        if existing.contains(&recording.sha256) {
            continue;
        }
        store.insert_recording(&recording, &upload.audio).await?;
        added += 1;
    }
    Ok(added)
}

/// The error for an audio file over `max_bytes`, naming its size when known.
#[must_use]
pub fn too_large(max_bytes: u64, size: Option<u64>) -> InvalidValue {
    let size = size.map_or_else(String::new, |size| {
        format!(" ({} MB)", size.div_ceil(1_000_000))
    });
    InvalidValue::new(
        "audio",
        format!(
            "the file{size} is larger than the {} MB limit; export it at a lower bit rate, such as Opus at 48 kbit/s",
            max_bytes / 1_000_000
        ),
    )
}

/// Checks every part of an upload and builds the recording's description.
///
/// # Errors
/// Names the field and the fix for: an unknown practice or language, a missing or long title,
/// audio that is missing, too large or not Ogg, MP3 or M4A, captions that are not UTF-8
/// WebVTT or run past the end of the audio, and a transcript that is too long.
pub fn check_upload(
    upload: &RecordingUpload,
    max_bytes: u64,
    uploader: Option<&Account>,
    clock: &dyn Clock,
) -> Result<Recording, InvalidValue> {
    let practice = Practice::parse(upload.practice.trim())?;
    let language = Language::parse(&upload.language)?;
    let title = upload.title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(InvalidValue::new(
            "title",
            format!(
                "give the recording a title of 1 to {MAX_TITLE_CHARS} characters, such as 'Body scan, 20 minutes'"
            ),
        ));
    }
    let size = upload.audio.len() as u64;
    if size == 0 {
        return Err(InvalidValue::new("audio", "choose an audio file to upload"));
    }
    if size > max_bytes {
        return Err(too_large(max_bytes, Some(size)));
    }
    let info = audio::inspect(&upload.audio)?;

    if upload.captions.is_empty() {
        return Err(InvalidValue::new(
            "captions",
            "choose the recording's WebVTT caption file (.vtt); every recording needs captions",
        ));
    }
    let captions = String::from_utf8(upload.captions.clone()).map_err(|_| {
        InvalidValue::new(
            "captions",
            "the caption file is not UTF-8 text; save it as UTF-8 WebVTT (.vtt)",
        )
    })?;
    let cues = webvtt::parse(&captions)?;
    // The cast is exact: a recording is far shorter than 2^52 milliseconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration_ms = (info.duration_seconds * 1000.0).round() as u64;
    if let Some(last) = cues.iter().map(|cue| cue.end_ms).max()
        && last > duration_ms + CAPTION_OVERRUN_MS
    {
        return Err(InvalidValue::new(
            "captions",
            format!(
                "the captions run to {} but the recording is {} long; check that they belong to this recording",
                clock_text(last),
                clock_text(duration_ms)
            ),
        ));
    }

    let transcript = if upload.transcript.trim().is_empty() {
        cues.iter()
            .map(|cue| cue.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        upload.transcript.trim().replace("\r\n", "\n")
    };
    if transcript.chars().count() > MAX_TRANSCRIPT_CHARS {
        return Err(InvalidValue::new(
            "transcript",
            format!(
                "the transcript is longer than {MAX_TRANSCRIPT_CHARS} characters; check that the right file was chosen"
            ),
        ));
    }

    Ok(Recording {
        id: RecordingId::from_uuid(crate::random::new_uuid()),
        practice,
        language,
        title: title.to_owned(),
        format: info.format,
        duration_ms,
        byte_size: size,
        sha256: hex(&Sha256::digest(&upload.audio)),
        captions,
        transcript,
        uploaded_by: uploader.map(|account| account.id),
        uploaded_at: clock.now(),
        retired_at: None,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// `m:ss`, or `h:mm:ss` from an hour on.
#[must_use]
pub fn clock_text(milliseconds: u64) -> String {
    let seconds = milliseconds / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// Takes a recording out of the library. Diary entries that name it keep it.
pub async fn retire_recording(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    account: &Account,
    id: RecordingId,
) -> Result<(), AppError> {
    if !manages_library(account) {
        return Err(AppError::Forbidden);
    }
    if !store.retire_recording(id, clock.now()).await? {
        // Unknown, or retired already: either way there is nothing to do.
        store.get_recording(id).await?;
        return Ok(());
    }
    audit_library(store, clock, context, id, AuditAction::Delete).await
}

async fn audit_library(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    id: RecordingId,
    action: AuditAction,
) -> Result<(), AppError> {
    audit::record(
        store,
        clock,
        context,
        AuditEntry {
            patient: None,
            resource_type: "Media",
            resource_id: Some(id.to_string()),
            action,
            outcome: AuditOutcome::Success,
            break_glass: false,
        },
    )
    .await?;
    Ok(())
}

/// Loads a recording for playing; a retired one is still served to diaries that name it.
pub async fn recording(store: &dyn Store, id: RecordingId) -> Result<Recording, AppError> {
    Ok(store.get_recording(id).await?)
}
