//! The synthetic demo recordings bundled from `content/practice/recordings/`, read through the
//! manifest `recordings.toml`. Only the demo clinic and the tests load them: they are speech
//! synthesis, not a teacher's guidance.

use rust_embed::RustEmbed;
use serde::Deserialize;
use stillpoint_app::library::RecordingUpload;
use stillpoint_domain::InvalidValue;

#[derive(RustEmbed)]
#[folder = "../../content/practice/recordings/"]
#[include = "*.ogg"]
#[include = "*.vtt"]
#[include = "*.txt"]
#[include = "*.toml"]
struct Bundled;

#[derive(Debug, Deserialize)]
struct Manifest {
    recordings: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    practice: String,
    language: String,
    title: String,
    audio: String,
    captions: String,
    transcript: String,
}

fn file(name: &str) -> Result<Vec<u8>, InvalidValue> {
    Bundled::get(name)
        .map(|file| file.data.into_owned())
        .ok_or_else(|| {
            InvalidValue::new(
                "recordings",
                format!("{name} is named in recordings.toml but not bundled"),
            )
        })
}

/// Reads every bundled recording as an upload, for the library's checks to accept.
///
/// # Errors
/// Returns an error when the manifest does not parse or names a missing file.
pub fn load() -> Result<Vec<RecordingUpload>, InvalidValue> {
    let manifest = String::from_utf8(file("recordings.toml")?).map_err(|error| {
        InvalidValue::new(
            "recordings",
            format!("recordings.toml is not UTF-8: {error}"),
        )
    })?;
    let manifest: Manifest = toml::from_str(&manifest)
        .map_err(|error| InvalidValue::new("recordings", format!("recordings.toml: {error}")))?;
    manifest
        .recordings
        .into_iter()
        .map(|entry| {
            Ok(RecordingUpload {
                practice: entry.practice,
                language: entry.language,
                title: entry.title,
                audio: file(&entry.audio)?,
                captions: file(&entry.captions)?,
                transcript: String::from_utf8_lossy(&file(&entry.transcript)?).into_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use stillpoint_app::SystemClock;
    use stillpoint_app::library::check_upload;

    use super::*;

    #[test]
    fn bundled_recordings_pass_the_upload_checks() {
        let uploads = load().expect("manifest");
        assert_eq!(uploads.len(), 4);
        for upload in &uploads {
            let recording =
                check_upload(upload, 10_000_000, None, &SystemClock).expect(&upload.title);
            assert!(
                recording.duration_ms > 60_000,
                "{} is {} ms",
                upload.title,
                recording.duration_ms
            );
            assert!(!recording.transcript.is_empty());
        }
        let languages: Vec<&str> = uploads
            .iter()
            .map(|upload| upload.language.as_str())
            .collect();
        assert!(
            languages.contains(&"en") && languages.contains(&"es"),
            "{languages:?}"
        );
    }
}
