//! Interface languages, as BCP 47 tags.
//!
//! A language is data, not an enum: a clinic adds one by adding a translation catalogue, so this
//! type only checks the shape of the tag.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// A BCP 47 language tag such as `en` or `es-MX`, stored in its canonical case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Parses a tag made of a 2–3 letter primary language and optional subtags of 1–8
    /// letters or digits, separated by `-` (the RFC 5646 syntax without extensions).
    pub fn parse(tag: &str) -> Result<Self, InvalidValue> {
        let tag = tag.trim();
        let mut parts = tag.split('-');
        let primary = parts.next().unwrap_or_default();
        let primary_ok =
            (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
        let subtags_ok = parts.all(|part| {
            (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !primary_ok || !subtags_ok {
            return Err(InvalidValue::new(
                "language",
                format!("'{tag}' is not a language tag; use a BCP 47 tag such as 'en' or 'es'"),
            ));
        }

        Ok(Self(canonical_case(tag)))
    }

    #[must_use]
    pub fn english() -> Self {
        Self("en".to_owned())
    }

    #[must_use]
    pub fn spanish() -> Self {
        Self("es".to_owned())
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language subtag, for example `es` for `es-MX`.
    #[must_use]
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

/// Lower-cases the primary subtag and upper-cases two-letter region subtags, as RFC 5646
/// section 2.1.1 recommends (`es-mx` becomes `es-MX`).
fn canonical_case(tag: &str) -> String {
    tag.split('-')
        .enumerate()
        .map(|(index, part)| {
            if index > 0 && part.len() == 2 && part.bytes().all(|b| b.is_ascii_alphabetic()) {
                part.to_ascii_uppercase()
            } else {
                part.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

impl TryFrom<String> for Language {
    type Error = InvalidValue;

    fn try_from(tag: String) -> Result<Self, Self::Error> {
        Self::parse(&tag)
    }
}

impl From<Language> for String {
    fn from(language: Language) -> Self {
        language.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_accepts_common_tags() {
        for (input, expected) in [
            ("en", "en"),
            ("ES", "es"),
            ("es-mx", "es-MX"),
            ("zh-Hant", "zh-hant"),
        ] {
            assert_eq!(
                Language::parse(input).map(|l| l.0),
                Ok(expected.to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn language_rejects_malformed_tags() {
        for input in ["", "e", "english", "en_US", "en--US", "12"] {
            let error = Language::parse(input).expect_err(input);
            assert_eq!(error.field, "language");
        }
    }

    #[test]
    fn language_primary_subtag() {
        assert_eq!(
            Language::parse("es-MX").map(|l| l.primary().to_owned()),
            Ok("es".to_owned())
        );
    }
}
