//! The clinic's sites.

use serde::{Deserialize, Serialize};

use crate::{InvalidValue, SiteId, TimeZoneName};

/// A location or service line of the clinic, with its own staff, cohorts and time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    /// A short unique code such as `NORTH`, used in exports and reports.
    pub code: String,
    pub name: String,
    /// The zone the site's schedules are written in.
    pub time_zone: TimeZoneName,
}

impl Site {
    /// Checks a site code: 2 to 16 upper-case letters, digits or `-`.
    pub fn validate_code(code: &str) -> Result<String, InvalidValue> {
        let code = code.trim();
        let shape_ok = (2..=16).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if !shape_ok {
            return Err(InvalidValue::new(
                "code",
                format!(
                    "'{code}' is not a site code; use 2 to 16 capital letters, digits or '-', such as 'NORTH'"
                ),
            ));
        }

        Ok(code.to_owned())
    }

    /// Checks a site name: 1 to 200 characters after trimming.
    pub fn validate_name(name: &str) -> Result<String, InvalidValue> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(InvalidValue::new(
                "name",
                "enter a site name of 1 to 200 characters",
            ));
        }

        Ok(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_code_shape() {
        assert_eq!(Site::validate_code(" NORTH-2 "), Ok("NORTH-2".to_owned()));
        for bad in ["n", "north", "A", "TOO-LONG-FOR-A-CODE", "NO RTH"] {
            assert_eq!(
                Site::validate_code(bad).map_err(|e| e.field),
                Err("code"),
                "{bad}"
            );
        }
    }
}
