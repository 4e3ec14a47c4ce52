//! IANA time zone names, checked against the tz database compiled into the binary.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// An IANA time zone name such as `America/Chicago`, known to the bundled tz database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn parse(name: &str) -> Result<Self, InvalidValue> {
        let name = name.trim();
        match jiff::tz::TimeZone::get(name) {
            Ok(_) => Ok(Self(name.to_owned())),
            Err(_) => Err(InvalidValue::new(
                "time_zone",
                format!(
                    "'{name}' is not a known IANA time zone; use a name such as 'America/New_York' or 'Europe/Madrid'"
                ),
            )),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The zone's rules, for converting instants to local time.
    #[must_use]
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        // NOTE: `parse` already looked the name up in the same bundled database, so this lookup
        // cannot fail; UTC is a defensive fallback only.
        jiff::tz::TimeZone::get(&self.0).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

impl TryFrom<String> for TimeZoneName {
    type Error = InvalidValue;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::parse(&name)
    }
}

impl From<TimeZoneName> for String {
    fn from(zone: TimeZoneName) -> Self {
        zone.0
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_accepts_iana_names() {
        for name in [
            "America/Chicago",
            "Europe/Madrid",
            "America/Mexico_City",
            "UTC",
        ] {
            assert!(TimeZoneName::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn time_zone_rejects_unknown_names() {
        let error = TimeZoneName::parse("Mars/Olympus_Mons").expect_err("unknown zone");
        assert_eq!(error.field, "time_zone");
        assert!(error.problem.contains("Mars/Olympus_Mons"));
    }
}
