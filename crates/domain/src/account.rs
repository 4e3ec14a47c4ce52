//! Sign-in accounts: the person's contact address, display name, preferences and roles.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AccountId, InvalidValue, Language, Role, RoleAssignment, TimeZoneName};

/// An e-mail address, trimmed and with its domain lower-cased.
///
/// The check is deliberately loose (one `@`, a non-empty local part, a dotted domain, no spaces):
/// the only real test of an address is a message that arrives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let text = text.trim();
        let invalid = || {
            InvalidValue::new(
                "email",
                "enter an e-mail address such as name@example.org".to_owned(),
            )
        };
        let (local, domain) = text.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty()
            || text.len() > 254
            || text.chars().any(char::is_whitespace)
            || !domain_ok
        {
            return Err(invalid());
        }

        // RFC 5321 lets a mail server treat the local part case-sensitively, but people type
        // addresses in any case and expect one account per mailbox, so the whole address is
        // lower-cased: "Ana@Example.org" and "ana@example.org" are the same person.
        Ok(Self(text.to_lowercase()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<EmailAddress> for String {
    fn from(email: EmailAddress) -> Self {
        email.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person who can sign in: staff, patient or caregiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub email: EmailAddress,
    /// The name shown in the interface, for example "Dr. Ana Ruiz".
    pub display_name: String,
    pub language: Language,
    pub time_zone: TimeZoneName,
    pub roles: Vec<RoleAssignment>,
    pub preferences: DisplayPreferences,
}

/// A person's display settings (WCAG 2.2 success criteria 1.4.4 resize text and 2.3.3
/// animation from interactions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayPreferences {
    /// Text one step larger than the default on every page.
    pub larger_text: bool,
    /// No animations or transitions, whatever the device's own setting.
    pub reduced_motion: bool,
}

impl Account {
    /// Whether the account holds `role` anywhere.
    #[must_use]
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|assignment| assignment.role == role)
    }

    /// Whether the account holds any staff role.
    #[must_use]
    pub fn is_staff(&self) -> bool {
        self.roles
            .iter()
            .any(|assignment| assignment.role.is_staff())
    }

    /// Whether the account administers `site`: a system administrator, or a program
    /// administrator of that site.
    #[must_use]
    pub fn administers_site(&self, site: crate::SiteId) -> bool {
        self.has_role(Role::SystemAdministrator)
            || self.roles.iter().any(|assignment| {
                assignment.role == Role::ProgramAdministrator && assignment.site_id == Some(site)
            })
    }

    /// Checks a display name: 1 to 200 characters after trimming.
    pub fn validate_display_name(name: &str) -> Result<String, InvalidValue> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(InvalidValue::new(
                "display_name",
                "enter a name of 1 to 200 characters",
            ));
        }

        Ok(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_lower_cased() {
        let email = EmailAddress::parse("  Ana.Ruiz@Example.ORG ").expect("valid");
        assert_eq!(email.as_str(), "ana.ruiz@example.org");
    }

    #[test]
    fn email_rejects_malformed_addresses() {
        for input in [
            "",
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "ana @example.org",
            "ana@.org",
            "ana@example..org",
        ] {
            let error = EmailAddress::parse(input).expect_err(input);
            assert_eq!(error.field, "email", "{input}");
        }
    }

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(
            Account::validate_display_name("  Ana  "),
            Ok("Ana".to_owned())
        );
        assert!(Account::validate_display_name("   ").is_err());
        assert!(Account::validate_display_name(&"x".repeat(201)).is_err());
    }
}
