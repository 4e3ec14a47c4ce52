//! Informed consent: versioned consent documents per language, patients' signatures by typed
//! name, withdrawal, and whether a patient's consent is current for the next program step.
//!
//! A document is a text file with a small front matter between `+++` lines (`id`, `version`,
//! `language`, `title`, `summary`, `required`) and a body of paragraphs, `## ` headings and
//! `- ` lists. Raising `version` changes the meaning, so earlier signatures stop counting and
//! the patient is asked to consent again.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use sha2::{Digest as _, Sha256};

use crate::{AccountId, InvalidValue, Language, PatientId};

/// The id of the optional document that covers sharing with caregivers: sharing needs it, and
/// withdrawing it ends every caregiver's access.
pub const CAREGIVER_SHARING: &str = "caregiver-sharing";

/// One block of a document's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Heading(String),
    Paragraph(String),
    List(Vec<String>),
}

/// One language version of a consent document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDocument {
    /// The stable identifier, such as `telehealth-video`.
    pub id: String,
    pub version: u32,
    pub language: Language,
    pub title: String,
    pub summary: String,
    /// Whether enrolment needs this consent; optional documents (caregiver sharing) do not.
    pub required: bool,
    pub body: Vec<Block>,
    /// SHA-256 of the file's exact text, hex-encoded, kept with each signature.
    pub content_hash: String,
}

impl ConsentDocument {
    /// Parses a document file; `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self, InvalidValue> {
        let invalid =
            |problem: String| InvalidValue::new("consent document", format!("{source}: {problem}"));
        let rest = text
            .strip_prefix("+++\n")
            .ok_or_else(|| invalid("the file must start with a '+++' line".to_owned()))?;
        let (front, body) = rest
            .split_once("\n+++\n")
            .ok_or_else(|| invalid("the front matter has no closing '+++' line".to_owned()))?;
        let fields = front_matter(front).map_err(invalid)?;

        let text_field = |name: &str| -> Result<String, InvalidValue> {
            fields
                .get(name)
                .and_then(|value| value.strip_prefix('"'))
                .and_then(|value| value.strip_suffix('"'))
                .map(str::to_owned)
                .ok_or_else(|| invalid(format!("'{name}' is missing or not a quoted string")))
        };
        let version = fields
            .get("version")
            .and_then(|value| value.parse::<u32>().ok())
            .filter(|version| *version > 0)
            .ok_or_else(|| {
                invalid("'version' is missing or not a positive whole number".to_owned())
            })?;
        let required = match fields.get("required").map(String::as_str) {
            Some("true") => true,
            Some("false") => false,
            _ => return Err(invalid("'required' must be true or false".to_owned())),
        };
        let language =
            Language::parse(&text_field("language")?).map_err(|error| invalid(error.problem))?;
        let body = parse_body(body);
        if body.is_empty() {
            return Err(invalid("the document has no text".to_owned()));
        }

        Ok(Self {
            id: text_field("id")?,
            version,
            language,
            title: text_field("title")?,
            summary: text_field("summary")?,
            required,
            body,
            content_hash: hex_sha256(text),
        })
    }
}

fn front_matter(front: &str) -> Result<BTreeMap<String, String>, String> {
    front
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split_once('=')
                .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
                .ok_or_else(|| format!("the front matter line '{line}' is not 'key = value'"))
        })
        .collect()
}

fn parse_body(body: &str) -> Vec<Block> {
    body.split("\n\n")
        .map(str::trim)
        .filter(|block| !block.is_empty())
        .map(|block| {
            if let Some(heading) = block.strip_prefix("## ") {
                Block::Heading(heading.trim().to_owned())
            } else if block.lines().all(|line| line.starts_with("- ")) {
                Block::List(
                    block
                        .lines()
                        .map(|line| line[2..].trim().to_owned())
                        .collect(),
                )
            } else {
                Block::Paragraph(block.lines().map(str::trim).collect::<Vec<_>>().join(" "))
            }
        })
        .collect()
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// A patient's signature of one document version, and its withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub patient_id: PatientId,
    pub document_id: String,
    pub version: u32,
    pub language: Language,
    pub content_hash: String,
    /// The name the signer typed.
    pub signed_name: String,
    pub signed_at: Timestamp,
    pub signer: AccountId,
    pub withdrawn_at: Option<Timestamp>,
    pub withdrawal_reason: Option<String>,
}

/// The state of a patient's consent to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentState {
    NotSigned,
    /// Signed at the current version and not withdrawn.
    Current,
    /// Signed at an earlier version: the patient is asked again.
    Outdated,
    Withdrawn,
}

/// The state of the latest record of a document, given the document's current version.
#[must_use]
pub fn consent_state(current_version: u32, latest: Option<&ConsentRecord>) -> ConsentState {
    match latest {
        None => ConsentState::NotSigned,
        Some(record) if record.withdrawn_at.is_some() => ConsentState::Withdrawn,
        Some(record) if record.version < current_version => ConsentState::Outdated,
        Some(_) => ConsentState::Current,
    }
}

/// Checks a typed signature: the patient's family name must appear in it, ignoring case and
/// extra spaces, so that a signature is deliberate and names the patient.
pub fn validate_signature(typed: &str, family_name: &str) -> Result<String, InvalidValue> {
    let typed = typed.split_whitespace().collect::<Vec<_>>().join(" ");
    if typed.chars().count() > 200 {
        return Err(InvalidValue::new(
            "signed_name",
            "type at most 200 characters",
        ));
    }
    let family = family_name.split_whitespace().collect::<Vec<_>>().join(" ");
    if typed.is_empty() || !typed.to_lowercase().contains(&family.to_lowercase()) {
        return Err(InvalidValue::new(
            "signed_name",
            "type your full name, including your family name, to sign",
        ));
    }
    Ok(typed)
}

/// Checks a withdrawal reason: optional, at most 500 characters.
pub fn validate_withdrawal_reason(reason: &str) -> Result<Option<String>, InvalidValue> {
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(InvalidValue::new(
            "reason",
            "keep the reason under 500 characters",
        ));
    }
    Ok((!reason.is_empty()).then(|| reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "+++\nid = \"practice-risks\"\nversion = 2\nlanguage = \"es\"\ntitle = \"Riesgos\"\nsummary = \"Resumen.\"\nrequired = true\n+++\nPrimer párrafo\nque sigue.\n\n## Título\n\n- uno\n- dos\n";

    #[test]
    fn document_parses_front_matter_and_blocks() {
        let document = ConsentDocument::parse("sample", SAMPLE).expect("valid");
        assert_eq!(document.id, "practice-risks");
        assert_eq!(document.version, 2);
        assert_eq!(document.language.as_str(), "es");
        assert!(document.required);
        assert_eq!(
            document.body,
            vec![
                Block::Paragraph("Primer párrafo que sigue.".to_owned()),
                Block::Heading("Título".to_owned()),
                Block::List(vec!["uno".to_owned(), "dos".to_owned()]),
            ]
        );
        assert_eq!(document.content_hash.len(), 64);
        let changed =
            ConsentDocument::parse("sample", &SAMPLE.replace("uno", "one")).expect("valid");
        assert_ne!(changed.content_hash, document.content_hash);
    }

    #[test]
    fn malformed_documents_name_the_problem() {
        for (text, expected) in [
            ("no front matter", "must start"),
            ("+++\nid = \"x\"\n", "closing"),
            (&SAMPLE.replace("version = 2", "version = zero"), "version"),
            (
                &SAMPLE.replace("required = true", "required = yes"),
                "required",
            ),
            (
                &SAMPLE.replace("title = \"Riesgos\"", "title = Riesgos"),
                "title",
            ),
        ] {
            let error = ConsentDocument::parse("sample", text).expect_err(expected);
            assert!(error.problem.contains(expected), "{}", error.problem);
            assert!(error.problem.starts_with("sample:"), "{}", error.problem);
        }
    }

    #[test]
    fn state_follows_version_and_withdrawal() {
        let record = ConsentRecord {
            patient_id: PatientId::from_uuid(uuid::Uuid::nil()),
            document_id: "x".to_owned(),
            version: 1,
            language: Language::english(),
            content_hash: String::new(),
            signed_name: "Ana Ruiz".to_owned(),
            signed_at: Timestamp::UNIX_EPOCH,
            signer: AccountId::from_uuid(uuid::Uuid::nil()),
            withdrawn_at: None,
            withdrawal_reason: None,
        };
        assert_eq!(consent_state(1, None), ConsentState::NotSigned);
        assert_eq!(consent_state(1, Some(&record)), ConsentState::Current);
        assert_eq!(consent_state(2, Some(&record)), ConsentState::Outdated);
        let withdrawn = ConsentRecord {
            withdrawn_at: Some(Timestamp::UNIX_EPOCH),
            ..record
        };
        assert_eq!(consent_state(1, Some(&withdrawn)), ConsentState::Withdrawn);
    }

    #[test]
    fn signature_must_name_the_patient() {
        assert_eq!(
            validate_signature("  lucía   MORALES ", "Morales").expect("valid"),
            "lucía MORALES"
        );
        assert!(validate_signature("", "Morales").is_err());
        assert!(validate_signature("Lucía", "Morales").is_err());
    }
}
