//! Patients: the clinical record of a person in an MBSR program.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::{AccountId, ChronicCondition, InvalidValue, Language, PatientId, SiteId, TimeZoneName};

/// A patient's record. The record is separate from the sign-in account because a clinic
/// registers a referred patient before the patient has accepted an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub id: PatientId,
    /// The account the patient signs in with, once they have one.
    pub account_id: Option<AccountId>,
    /// The site that holds the patient's care.
    pub site_id: SiteId,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Date,
    pub language: Language,
    pub time_zone: TimeZoneName,
    pub conditions: Vec<ChronicCondition>,
}

impl Patient {
    /// Checks a birth date: not after `today` and not more than 120 years before it.
    pub fn validate_birth_date(birth_date: Date, today: Date) -> Result<Date, InvalidValue> {
        if birth_date > today {
            return Err(InvalidValue::new(
                "birth_date",
                "the birth date is in the future; enter the date the patient was born",
            ));
        }
        let oldest = today.saturating_sub(jiff::Span::new().years(120));
        if birth_date < oldest {
            return Err(InvalidValue::new(
                "birth_date",
                "the birth date is more than 120 years ago; check the year",
            ));
        }

        Ok(birth_date)
    }

    /// Age in whole years on `today`.
    #[must_use]
    pub fn age_on(&self, today: Date) -> i16 {
        let mut age = today.year() - self.birth_date.year();
        if (today.month(), today.day()) < (self.birth_date.month(), self.birth_date.day()) {
            age -= 1;
        }
        age
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn birth_date_bounds() {
        let today = date(2026, 12, 4);
        assert!(Patient::validate_birth_date(date(1960, 5, 1), today).is_ok());
        assert!(Patient::validate_birth_date(date(2026, 12, 5), today).is_err());
        assert!(Patient::validate_birth_date(date(1890, 1, 1), today).is_err());
    }
}
