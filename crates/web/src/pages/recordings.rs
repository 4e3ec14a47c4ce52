//! Guided recordings: the player page with captions and an interactive transcript, the audio
//! served with HTTP range requests (RFC 9110 section 14), the caption file, the player's
//! listening reports, the practice service worker, and the library page where staff upload and
//! retire recordings.

use askama::Template;
use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::library::{self, RecordingUpload};
use stillpoint_app::ports::Recording;
use stillpoint_app::practice;
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::webvtt;
use stillpoint_domain::{InvalidValue, RecordingId};

use super::curricula::practice_name;
use super::practice::{RecordingLine, offline_layout};
use super::{Layout, render};
use crate::AppState;
use crate::csrf::{self, CheckedForm};
use crate::error::WebError;
use crate::viewer::SignedIn;

/// The maximum bytes one response reads from the database at a time when it streams audio.
const STREAM_PIECE: u64 = 1024 * 1024;

/// One caption cue in the interactive transcript.
struct CueLine {
    start: String,
    end: String,
    clock: String,
    text: String,
}

#[derive(Template)]
#[template(path = "practice_player.html")]
struct PlayerTemplate {
    layout: Layout,
    id: String,
    title: String,
    practice: String,
    minutes: String,
    media_type: &'static str,
    language: String,
    language_name: String,
    cues: Vec<CueLine>,
    transcript: Vec<String>,
    retired: bool,
    /// Whether the reader is a patient, whose listening counts in a diary.
    for_patient: bool,
}

fn parse_recording_id(text: &str) -> Result<RecordingId, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

async fn load(state: &AppState, text: &str) -> Result<Recording, WebError> {
    let id = parse_recording_id(text)?;
    Ok(library::recording(state.store.as_ref(), id).await?)
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(recording_id): Path<String>,
) -> Result<Response, WebError> {
    let recording = load(&state, &recording_id).await?;
    let tr = signed_in.viewer.translator(&state);
    // The captions were checked at upload, so a failure here means the stored copy changed.
    let cues = webvtt::parse(&recording.captions).map_err(|error| {
        WebError::Internal(format!(
            "stored captions of {} are invalid: {error}",
            recording.id
        ))
    })?;

    let path = format!("/practice/recordings/{}", recording.id);
    let mut layout = Layout::new(&state, &signed_in.viewer, &path);
    if signed_in.account.has_role(stillpoint_domain::Role::Patient) {
        offline_layout(&state, &mut layout, &signed_in.account, &[]);
    }
    layout
        .scripts
        .push(state.assets.url("practice-player.js").to_owned());
    let language_name = state
        .catalogs
        .offered()
        .into_iter()
        .find(|offered| offered.tag == recording.language.primary())
        .map_or_else(
            || recording.language.as_str().to_owned(),
            |offered| offered.name,
        );
    let template = PlayerTemplate {
        layout,
        id: recording.id.to_string(),
        title: recording.title.clone(),
        practice: practice_name(&tr, recording.practice),
        minutes: tr.t_with("plan-minutes", "minutes", &recording.minutes().to_string()),
        media_type: recording.format.media_type(),
        language: recording.language.as_str().to_owned(),
        language_name,
        cues: cues
            .iter()
            .map(|cue| CueLine {
                start: seconds_text(cue.start_ms),
                end: seconds_text(cue.end_ms),
                clock: library::clock_text(cue.start_ms),
                text: cue.text.clone(),
            })
            .collect(),
        transcript: recording
            .transcript
            .lines()
            .map(str::to_owned)
            .filter(|line| !line.trim().is_empty())
            .collect(),
        retired: recording.retired_at.is_some(),
        for_patient: signed_in.account.has_role(stillpoint_domain::Role::Patient),
    };
    render(&template)
}

fn seconds_text(milliseconds: u64) -> String {
    format!("{}.{:03}", milliseconds / 1000, milliseconds % 1000)
}

/// The entity tag of a recording: its content hash, which never changes for an id.
fn entity_tag(recording: &Recording) -> String {
    format!("\"{}\"", recording.sha256)
}

/// Headers every response about a recording's bytes carries. The content at an id never
/// changes, but it is only for signed-in people, so caches other than the browser's keep none.
fn media_headers(
    recording: &Recording,
    content_type: &'static str,
) -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=604800, immutable"),
        ),
        (
            header::ETAG,
            HeaderValue::from_str(&entity_tag(recording))
                .unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
        ),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ]
}

fn not_modified(headers: &HeaderMap, recording: &Recording) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',').any(|tag| {
                // If-None-Match compares weakly (RFC 9110 section 13.1.2), so `W/` is ignored.
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag == entity_tag(recording) || tag == "*"
            })
        })
}

/// A byte range asked for in a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole file (also for several ranges, which RFC 9110 lets a
    /// server ignore).
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part { start: u64, end: u64 },
    /// The range lies outside the file: 416.
    Unsatisfiable,
}

/// Reads a `Range` header for a file of `size` bytes: `bytes=a-b`, `bytes=a-` or `bytes=-n`.
#[must_use]
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|text| text.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    // A range that does not parse is ignored, as RFC 9110 section 14.2 allows.
    if !last.trim().is_empty() && number(last).is_none() {
        return RangeRequest::Whole;
    }
    match (first.trim().is_empty(), number(first), number(last)) {
        // A suffix: the last n bytes.
        (true, _, Some(0)) => RangeRequest::Unsatisfiable,
        (true, _, Some(suffix)) => RangeRequest::Part {
            start: size.saturating_sub(suffix),
            end: size,
        },
        (false, Some(start), _) if start >= size => RangeRequest::Unsatisfiable,
        (false, Some(start), None) => RangeRequest::Part { start, end: size },
        (false, Some(start), Some(last)) if last >= start => RangeRequest::Part {
            start,
            end: size.min(last + 1),
        },
        _ => RangeRequest::Whole,
    }
}

/// Serves a recording's audio, whole or in part, streaming it from the database in pieces.
pub async fn audio(
    State(state): State<AppState>,
    _signed_in: SignedIn,
    headers: HeaderMap,
    Path(recording_id): Path<String>,
) -> Result<Response, WebError> {
    let recording = load(&state, &recording_id).await?;
    let size = recording.byte_size;
    let common = media_headers(&recording, recording.format.media_type());
    if not_modified(&headers, &recording) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }

    // A range made for another version of the file is ignored (If-Range, RFC 9110 13.1.5).
    let if_range_matches = headers
        .get(header::IF_RANGE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|tag| tag.trim() == entity_tag(&recording));
    let range = if if_range_matches {
        parse_range(
            headers
                .get(header::RANGE)
                .and_then(|value| value.to_str().ok()),
            size,
        )
    } else {
        RangeRequest::Whole
    };
    let (status, start, end) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeRequest::Unsatisfiable => {
            let content_range = HeaderValue::from_str(&format!("bytes */{size}"))
                .map_err(|error| WebError::Internal(error.to_string()))?;
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                common,
                [(header::CONTENT_RANGE, content_range)],
            )
                .into_response());
        }
    };

    let body = stream_audio(&state, recording.id, start, end);
    let mut response = (status, common, body).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        let content_range = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
            .map_err(|error| WebError::Internal(error.to_string()))?;
        response_headers.insert(header::CONTENT_RANGE, content_range);
    }
    Ok(response)
}

/// Streams bytes `start..end` in pieces of at most [`STREAM_PIECE`], so a long recording is never
/// held in memory whole.
fn stream_audio(state: &AppState, id: RecordingId, start: u64, end: u64) -> Body {
    let store = state.store.clone();
    let pieces = futures_util::stream::unfold(start, move |at| {
        let store = store.clone();
        async move {
            if at >= end {
                return None;
            }
            let until = end.min(at + STREAM_PIECE);
            let piece = store.read_recording_audio(id, at, until).await.map_err(|error| {
                tracing::error!(recording_id = %id, error = %error, "reading recording audio failed");
                std::io::Error::other(error.to_string())
            });
            Some((piece.map(axum::body::Bytes::from), until))
        }
    });
    Body::from_stream(pieces)
}

pub async fn captions(
    State(state): State<AppState>,
    _signed_in: SignedIn,
    headers: HeaderMap,
    Path(recording_id): Path<String>,
) -> Result<Response, WebError> {
    let recording = load(&state, &recording_id).await?;
    let common = media_headers(&recording, "text/vtt; charset=utf-8");
    if not_modified(&headers, &recording) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((StatusCode::OK, common, recording.captions.clone()).into_response())
}

/// The player's report of what it played.
#[derive(Debug, Deserialize)]
pub struct ListeningFields {
    #[serde(default)]
    listen_id: String,
    #[serde(default)]
    recording_id: String,
    #[serde(default)]
    segments: String,
    /// When the page visit began, in milliseconds since the Unix epoch.
    #[serde(default)]
    started_at: String,
}

pub async fn listening(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(fields): CheckedForm<ListeningFields>,
) -> Result<Response, WebError> {
    let recording: RecordingId =
        fields
            .recording_id
            .trim()
            .parse()
            .map_err(|_| WebError::Invalid {
                field: "recording_id".to_owned(),
                message: "send the id of the recording being played".to_owned(),
            })?;
    let seconds = practice::record_listening(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        &fields.listen_id,
        recording,
        (&fields.segments, &fields.started_at),
    )
    .await?;
    Ok(Json(serde_json::json!({ "counted_seconds": seconds })).into_response())
}

/// Serves the practice service worker at a fixed address, so its scope covers the practice pages. It
/// is checked for updates on every visit, and may control `/practice` itself as well as the
/// pages below it.
pub async fn service_worker(State(state): State<AppState>) -> Response {
    let Some(script) = state.assets.source("practice-sw.js") else {
        return WebError::NotFound.into_response();
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                HeaderValue::from_static("/practice"),
            ),
        ],
        script,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "library.html")]
struct LibraryTemplate {
    layout: Layout,
    recordings: Vec<(RecordingLine, String, bool)>,
    practices: Vec<(String, String, bool)>,
    languages: Vec<(String, String, bool)>,
    form: UploadForm,
    max_megabytes: u64,
    saved: bool,
    error: Option<(String, String)>,
}

/// The upload form's text values, shown again after an error.
#[derive(Default)]
struct UploadForm {
    title: String,
    practice: String,
    language: String,
    transcript: String,
}

#[derive(Debug, Deserialize)]
pub struct LibraryQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn library_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<LibraryQuery>,
) -> Result<Response, WebError> {
    if !library::manages_library(&signed_in.account) {
        return Err(WebError::Forbidden);
    }
    let form = UploadForm {
        language: signed_in.viewer.language.clone(),
        ..UploadForm::default()
    };
    render_library(
        &state,
        &signed_in,
        form,
        query.saved.is_some(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn render_library(
    state: &AppState,
    signed_in: &SignedIn,
    form: UploadForm,
    saved: bool,
    error: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let tr = signed_in.viewer.translator(state);
    let offered = state.catalogs.offered();
    let recordings = state
        .store
        .list_recordings()
        .await
        .map_err(AppError::from)?
        .iter()
        .map(|recording| {
            (
                RecordingLine::new(&tr, recording, &offered),
                format!("/library/recordings/{}/retire", recording.id),
                recording.retired_at.is_some(),
            )
        })
        .collect();
    let template = LibraryTemplate {
        layout: Layout::new(state, &signed_in.viewer, "/library"),
        recordings,
        practices: Practice::ALL
            .iter()
            .map(|practice| {
                (
                    practice.as_str().to_owned(),
                    practice_name(&tr, *practice),
                    practice.as_str() == form.practice,
                )
            })
            .collect(),
        languages: state
            .catalogs
            .offered()
            .into_iter()
            .map(|offered| {
                let selected = offered.tag == form.language;
                (offered.tag, offered.name, selected)
            })
            .collect(),
        form,
        max_megabytes: state.config.max_upload_bytes as u64 / 1_000_000,
        saved,
        error,
    };
    let mut response = render(&template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// Reads the upload form's parts. Text parts are UTF-8; the two files are kept as bytes.
async fn read_upload(mut multipart: Multipart) -> Result<(RecordingUpload, String), WebError> {
    let mut upload = RecordingUpload::default();
    let mut token = String::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| upload_error(&error))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "audio" => {
                upload.audio = field
                    .bytes()
                    .await
                    .map_err(|error| upload_error(&error))?
                    .to_vec();
            }
            "captions" => {
                upload.captions = field
                    .bytes()
                    .await
                    .map_err(|error| upload_error(&error))?
                    .to_vec();
            }
            "csrf_token" | "title" | "practice" | "language" | "transcript" => {
                let text = field.text().await.map_err(|error| upload_error(&error))?;
                match name.as_str() {
                    "csrf_token" => token = text,
                    "title" => upload.title = text,
                    "practice" => upload.practice = text,
                    "language" => upload.language = text,
                    _ => upload.transcript = text,
                }
            }
            _ => {}
        }
    }
    Ok((upload, token))
}

fn upload_error(error: &axum::extract::multipart::MultipartError) -> WebError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return WebError::Http(StatusCode::PAYLOAD_TOO_LARGE);
    }
    WebError::Invalid {
        field: "audio".to_owned(),
        message: format!(
            "the upload could not be read ({}); choose the files and send the form again",
            error.body_text()
        ),
    }
}

pub async fn upload(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, WebError> {
    if !library::manages_library(&signed_in.account) {
        return Err(WebError::Forbidden);
    }
    // A body that is not multipart cannot come from the library's form, whose token is inside
    // the body, so it is treated like a form without its token.
    let Ok(multipart) = multipart else {
        tracing::warn!("upload rejected: the body is not a multipart form");
        return Err(WebError::FormExpired);
    };
    let limit = state.config.max_upload_bytes as u64;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    // The form's other fields add a few kilobytes to the file itself.
    if declared.is_some_and(|length| length > limit + 64 * 1024) {
        return too_large(&state, &signed_in).await;
    }
    let (upload, token) = match read_upload(multipart).await {
        Ok(read) => read,
        Err(WebError::Http(StatusCode::PAYLOAD_TOO_LARGE)) => {
            return too_large(&state, &signed_in).await;
        }
        Err(other) => return Err(other),
    };
    csrf::check_token(&headers, state.config.secure_cookies, &token)?;
    let outcome = library::add_recording(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        &upload,
        state.config.max_upload_bytes as u64,
    )
    .await;
    match outcome {
        Ok(_) => Ok(Redirect::to("/library?saved=1").into_response()),
        Err(AppError::Invalid(invalid)) => {
            let tr = signed_in.viewer.translator(&state);
            let form = UploadForm {
                title: upload.title,
                practice: upload.practice,
                language: upload.language,
                transcript: upload.transcript,
            };
            let message = upload_message(&tr, &invalid);
            render_library(
                &state,
                &signed_in,
                form,
                false,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => Err(error.into()),
    }
}

/// Renders the library page with the size limit named on the audio field, for an upload over
/// the limit; nothing of it was stored.
async fn too_large(state: &AppState, signed_in: &SignedIn) -> Result<Response, WebError> {
    tracing::warn!(
        limit_bytes = state.config.max_upload_bytes,
        "upload rejected: larger than the limit"
    );
    let tr = signed_in.viewer.translator(state);
    let invalid = library::too_large(state.config.max_upload_bytes as u64, None);
    let message = upload_message(&tr, &invalid);
    render_library(
        state,
        signed_in,
        UploadForm::default(),
        false,
        Some(message),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await
}

/// The field's label in the reader's language, then the problem. The problem text names the
/// fix in English; library staff work in the clinic's working language.
fn upload_message(tr: &crate::i18n::Translator, invalid: &InvalidValue) -> (String, String) {
    let label = match invalid.field {
        "audio" => "library-field-audio",
        "captions" => "library-field-captions",
        "transcript" => "library-field-transcript",
        "title" => "library-field-title",
        "language" => "library-field-language",
        _ => "library-field-practice",
    };
    // NOTE: the problem itself comes from the domain checks in English; a Spanish page shows the
    // translated label with the English explanation.
    (
        invalid.field.to_owned(),
        format!("{}: {}", tr.t(label), invalid.problem),
    )
}

pub async fn retire(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(recording_id): Path<String>,
    CheckedForm(_form): CheckedForm<std::collections::BTreeMap<String, String>>,
) -> Result<Response, WebError> {
    let id = parse_recording_id(&recording_id)?;
    library::retire_recording(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        id,
    )
    .await?;
    Ok(Redirect::to("/library?saved=1").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms_from_rfc_9110() {
        let size = 1_000;
        let cases = [
            (None, RangeRequest::Whole),
            (
                Some("bytes=0-99"),
                RangeRequest::Part { start: 0, end: 100 },
            ),
            (
                Some("bytes=900-"),
                RangeRequest::Part {
                    start: 900,
                    end: 1_000,
                },
            ),
            (
                Some("bytes=-100"),
                RangeRequest::Part {
                    start: 900,
                    end: 1_000,
                },
            ),
            (
                Some("bytes=-5000"),
                RangeRequest::Part {
                    start: 0,
                    end: 1_000,
                },
            ),
            (
                Some("bytes=990-5000"),
                RangeRequest::Part {
                    start: 990,
                    end: 1_000,
                },
            ),
            (Some("bytes=1000-"), RangeRequest::Unsatisfiable),
            (Some("bytes=-0"), RangeRequest::Unsatisfiable),
            (Some("bytes=50-10"), RangeRequest::Whole),
            (Some("bytes=0-1,5-6"), RangeRequest::Whole),
            (Some("items=0-10"), RangeRequest::Whole),
            (Some("bytes=abc"), RangeRequest::Whole),
            (Some("bytes=-"), RangeRequest::Whole),
            (Some("bytes=5-x"), RangeRequest::Whole),
            (Some("bytes=2000-x"), RangeRequest::Whole),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_range(header, size), expected, "{header:?}");
        }
    }
}
