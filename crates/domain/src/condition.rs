//! Chronic conditions, coded in ICD-10-CM.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// An ICD-10-CM code such as `G89.29` (other chronic pain).
///
/// The shape follows the ICD-10-CM tabular list: a letter, two characters (digits, or a digit
/// and a letter in a few chapters), then optionally a dot and one to four more letters or digits.
/// Whether the code exists in the current code set is not checked here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Icd10Code(String);

impl Icd10Code {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let code = text.trim().to_ascii_uppercase();
        let (category, subcategory) = code.split_once('.').unwrap_or((&code, ""));
        let bytes = category.as_bytes();
        let category_ok = bytes.len() == 3
            && bytes[0].is_ascii_uppercase()
            && bytes[1].is_ascii_digit()
            && bytes[2].is_ascii_alphanumeric();
        let subcategory_ok = (code.contains('.') && (1..=4).contains(&subcategory.len())
            || !code.contains('.'))
            && subcategory.bytes().all(|b| b.is_ascii_alphanumeric());
        if !category_ok || !subcategory_ok {
            return Err(InvalidValue::new(
                "icd10_code",
                format!(
                    "'{}' is not an ICD-10-CM code; use a code such as 'G89.29' or 'E11.9'",
                    text.trim()
                ),
            ));
        }

        Ok(Self(code))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Icd10Code {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Icd10Code> for String {
    fn from(code: Icd10Code) -> Self {
        code.0
    }
}

impl fmt::Display for Icd10Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A chronic condition on a patient's record: its code and the code's title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChronicCondition {
    pub code: Icd10Code,
    /// The ICD-10-CM title of the code, in English, as the code set publishes it.
    pub display: String,
}

/// Chronic conditions common among people referred to MBSR, with their ICD-10-CM (FY2025) code
/// titles, offered as choices on the referral form.
pub const COMMON_CHRONIC_CONDITIONS: &[(&str, &str)] = &[
    ("G89.29", "Other chronic pain"),
    ("M79.7", "Fibromyalgia"),
    ("M54.50", "Low back pain, unspecified"),
    ("M17.0", "Bilateral primary osteoarthritis of knee"),
    ("M06.9", "Rheumatoid arthritis, unspecified"),
    (
        "G43.909",
        "Migraine, unspecified, not intractable, without status migrainosus",
    ),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    (
        "I25.10",
        "Atherosclerotic heart disease of native coronary artery without angina pectoris",
    ),
    ("I50.9", "Heart failure, unspecified"),
    (
        "J44.9",
        "Chronic obstructive pulmonary disease, unspecified",
    ),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    (
        "C50.919",
        "Malignant neoplasm of unspecified site of unspecified female breast",
    ),
    ("Z85.3", "Personal history of malignant neoplasm of breast"),
    ("K58.9", "Irritable bowel syndrome without diarrhea"),
    ("R53.82", "Chronic fatigue, unspecified"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd10_accepts_published_shapes() {
        for (input, expected) in [
            ("g89.29", "G89.29"),
            ("E11.9", "E11.9"),
            ("G35", "G35"),
            ("C50.919", "C50.919"),
            ("M54.50", "M54.50"),
            ("S32.01XA", "S32.01XA"),
        ] {
            assert_eq!(
                Icd10Code::parse(input).map(|c| c.0),
                Ok(expected.to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn icd10_rejects_malformed_codes() {
        for input in [
            "",
            "G8",
            "89.29",
            "G89.",
            "G89.12345",
            "G89-29",
            "chronic pain",
        ] {
            let error = Icd10Code::parse(input).expect_err(input);
            assert_eq!(error.field, "icd10_code", "{input}");
        }
    }
}
