//! Reading forms whose fields repeat or are numbered, such as roll calls and agenda editors,
//! with errors that name the field.

use std::str::FromStr;

use stillpoint_domain::InvalidValue;

/// The fields of a submitted form, in the order sent.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Returns the first value of `name`, trimmed, or "" when the form lacks it.
    #[must_use]
    pub fn text(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// Returns every value of `name`, in the order sent.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns whether a checkbox named `name` was ticked.
    #[must_use]
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// Parses the value of `name`, reporting a missing or malformed value under `field`.
    pub fn parse<T: FromStr>(
        &self,
        name: &str,
        field: &'static str,
        expected: &str,
    ) -> Result<T, InvalidValue> {
        let text = self.text(name);
        text.parse().map_err(|_| {
            let shown = if text.is_empty() { "nothing" } else { text };
            InvalidValue::new(field, format!("{shown} was entered; enter {expected}"))
        })
    }

    /// Parses `name` when it is filled in.
    pub fn parse_optional<T: FromStr>(
        &self,
        name: &str,
        field: &'static str,
        expected: &str,
    ) -> Result<Option<T>, InvalidValue> {
        if self.text(name).is_empty() {
            Ok(None)
        } else {
            self.parse(name, field, expected).map(Some)
        }
    }
}
