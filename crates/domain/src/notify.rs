//! Notification rules: the kinds of message Stillpoint sends, the channels that carry them, a
//! person's preferences (channels per kind, quiet hours, phone number, daily practice time),
//! and the states a delivery moves through.
//!
//! Messages sent outside Stillpoint (e-mail and SMS) carry only what the person needs to act,
//! such as a session time. They never carry a diagnosis, score, questionnaire response or free
//! text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{EmailAddress, InvalidValue};

/// The kind of a message. Each kind has its own channel choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A group session starts soon (by default 24 hours and 1 hour before).
    SessionReminder,
    /// A session moved to another time.
    SessionRescheduled,
    /// A session will not take place.
    SessionCancelled,
    /// The daily home-practice reminder, at the time the patient chose.
    PracticeReminder,
    /// A check-in (questionnaire) is ready.
    MeasureDue,
    /// A check-in passed its due date unanswered.
    MeasureOverdue,
    /// A gentle message after a patient stopped coming.
    ReEngagement,
    /// A safety alert that was not acknowledged in time escalated to this staff member.
    AlertEscalated,
}

impl MessageKind {
    pub const ALL: [Self; 8] = [
        Self::SessionReminder,
        Self::SessionRescheduled,
        Self::SessionCancelled,
        Self::PracticeReminder,
        Self::MeasureDue,
        Self::MeasureOverdue,
        Self::ReEngagement,
        Self::AlertEscalated,
    ];

    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::SessionReminder => "session_reminder",
            Self::SessionRescheduled => "session_rescheduled",
            Self::SessionCancelled => "session_cancelled",
            Self::PracticeReminder => "practice_reminder",
            Self::MeasureDue => "measure_due",
            Self::MeasureOverdue => "measure_overdue",
            Self::ReEngagement => "re_engagement",
            Self::AlertEscalated => "alert_escalated",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
            .ok_or_else(|| {
                InvalidValue::new(
                    "kind",
                    format!("'{code}' is not a message kind; use one such as 'session_reminder'"),
                )
            })
    }

    /// Whether the message must reach the person whatever their preferences: it ignores quiet
    /// hours and opt-outs, and goes out on every channel the person can be reached by.
    #[must_use]
    pub const fn is_essential(self) -> bool {
        matches!(self, Self::AlertEscalated)
    }

    /// Returns the channels a person gets this kind on until they choose otherwise.
    #[must_use]
    pub fn default_channels(self) -> BTreeSet<Channel> {
        match self {
            Self::AlertEscalated => [Channel::Email, Channel::Sms, Channel::InApp].into(),
            Self::PracticeReminder => [Channel::InApp].into(),
            _ => [Channel::Email, Channel::InApp].into(),
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    InApp,
}

impl Channel {
    pub const ALL: [Self; 3] = [Self::Email, Self::Sms, Self::InApp];

    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::InApp => "in_app",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.code() == code)
            .ok_or_else(|| {
                InvalidValue::new(
                    "channel",
                    format!("'{code}' is not a channel; use 'email', 'sms' or 'in_app'"),
                )
            })
    }

    /// The channel to try when a delivery on this one failed for good: SMS after e-mail, and
    /// in-app after SMS. In-app delivery cannot fail for lack of an address.
    #[must_use]
    pub const fn fallback(self) -> Option<Self> {
        match self {
            Self::Email => Some(Self::Sms),
            Self::Sms => Some(Self::InApp),
            Self::InApp => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A mobile number in E.164 form, such as `+15555550123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads a number typed with spaces, dots, dashes or brackets, which are dropped. It must
    /// start with `+` and the country code, then hold 8 to 15 digits in all (ITU-T E.164).
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let invalid = || {
            InvalidValue::new(
                "phone",
                "enter a mobile number with its country code, such as +1 555 555 0123",
            )
        };
        let text = text.trim();
        let rest = text.strip_prefix('+').ok_or_else(invalid)?;
        let mut digits = String::with_capacity(rest.len());
        for character in rest.chars() {
            match character {
                '0'..='9' => digits.push(character),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(invalid()),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(invalid());
        }
        Ok(Self(format!("+{digits}")))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the number with all but its last 2 digits hidden, for logs and delivery lists.
    #[must_use]
    pub fn masked(&self) -> String {
        let visible = &self.0[self.0.len() - 2..];
        format!("+{}{visible}", "•".repeat(self.0.len() - 3))
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<PhoneNumber> for String {
    fn from(number: PhoneNumber) -> Self {
        number.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A nightly span in local time when only essential messages go out, such as 21:00 to 08:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: Time,
    pub end: Time,
}

impl QuietHours {
    pub fn new(start: Time, end: Time) -> Result<Self, InvalidValue> {
        if start == end {
            return Err(InvalidValue::new(
                "quiet_end",
                "quiet hours must end at another time than they start; clear both to have none",
            ));
        }
        Ok(Self { start, end })
    }

    /// Returns whether the local time of day falls inside. The start is inside and the end is not.
    #[must_use]
    pub fn contains(&self, time: Time) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// When a message due at `due` may go out: `due` itself outside quiet hours, otherwise the
    /// end of the quiet span. When that would be after `latest` (a session reminder must
    /// arrive before the session), the message goes out just before the quiet span began.
    #[must_use]
    pub fn adjust(&self, due: Timestamp, zone: &TimeZone, latest: Option<Timestamp>) -> Timestamp {
        let local = due.to_zoned_datetime(zone.clone());
        if !self.contains(local.time()) {
            return due;
        }
        let mut end_date = local.date();
        if self.start > self.end && local.time() >= self.start {
            end_date = end_date.tomorrow().unwrap_or(end_date);
        }
        let end = resolve_local(end_date.to_datetime(self.end), zone);
        if latest.is_none_or(|latest| end <= latest) {
            return end;
        }
        let mut start_date = local.date();
        if self.start > self.end && local.time() < self.end {
            start_date = start_date.yesterday().unwrap_or(start_date);
        }
        let start = resolve_local(start_date.to_datetime(self.start), zone);
        start
            .checked_sub(SignedDuration::from_mins(1))
            .unwrap_or(start)
    }
}

/// Returns the instant of a local date and time, resolved by the rule of RFC 5545 section 3.3.5.
/// A time inside a spring-forward gap is read with the offset before the gap, so it moves later
/// by the gap's length. A time that occurs twice in an autumn overlap means the first one.
#[must_use]
pub fn resolve_local(local: jiff::civil::DateTime, zone: &TimeZone) -> Timestamp {
    // jiff's "compatible" disambiguation is RFC 5545's rule. It fails only for a date near the
    // ends of jiff's range (years -9999 and 9999), which no reminder reaches.
    zone.to_ambiguous_timestamp(local)
        .compatible()
        .unwrap_or(Timestamp::MAX)
}

/// A person's notification preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// The address for e-mail, when it is not the sign-in address.
    pub contact_email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    /// The channels chosen per kind; a kind missing here uses its defaults.
    pub channels: BTreeMap<MessageKind, BTreeSet<Channel>>,
    pub quiet_hours: Option<QuietHours>,
    /// The local time of the daily practice reminder; `None` turns it off.
    pub practice_time: Option<Time>,
    /// Whether a message that cannot be delivered by e-mail may go by SMS instead.
    pub sms_fallback: bool,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            contact_email: None,
            phone: None,
            channels: BTreeMap::new(),
            quiet_hours: Some(QuietHours {
                start: Time::constant(21, 0, 0, 0),
                end: Time::constant(8, 0, 0, 0),
            }),
            practice_time: None,
            sms_fallback: false,
        }
    }
}

impl NotificationSettings {
    /// Returns the channels a message of `kind` goes out on, leaving out SMS without a phone number.
    /// Essential messages use every channel the person can be reached by.
    #[must_use]
    pub fn channels_for(&self, kind: MessageKind) -> BTreeSet<Channel> {
        let chosen = if kind.is_essential() {
            Channel::ALL.into()
        } else {
            self.channels
                .get(&kind)
                .cloned()
                .unwrap_or_else(|| kind.default_channels())
        };
        chosen
            .into_iter()
            .filter(|channel| *channel != Channel::Sms || self.phone.is_some())
            .collect()
    }

    /// Returns whether a failed delivery on `failed` may be tried again on `next`.
    #[must_use]
    pub fn allows_fallback(&self, kind: MessageKind, failed: Channel, next: Channel) -> bool {
        let already = self.channels_for(kind);
        if already.contains(&next) {
            // The message goes out on that channel anyway.
            return false;
        }
        match (failed, next) {
            (Channel::Email, Channel::Sms) => {
                self.phone.is_some() && (self.sms_fallback || kind.is_essential())
            }
            (_, Channel::InApp) => true,
            _ => false,
        }
    }

    /// Checks that every choice is usable.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.sms_fallback && self.phone.is_none() {
            return Err(InvalidValue::new(
                "phone",
                "add a mobile number, or untick 'send a text message when e-mail fails'",
            ));
        }
        let wants_sms = self
            .channels
            .iter()
            .any(|(kind, channels)| !kind.is_essential() && channels.contains(&Channel::Sms));
        if wants_sms && self.phone.is_none() {
            return Err(InvalidValue::new(
                "phone",
                "add a mobile number to get text messages, or untick the text-message boxes",
            ));
        }
        Ok(())
    }
}

/// The state of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its first attempt, or for a retry.
    Queued,
    /// Handed to the provider, with the outcome not recorded yet. A delivery found in this
    /// state after a restart was interrupted mid-send and is sent again with the same message
    /// id, so the copy is recognisable.
    Sending,
    /// The provider accepted it, with its message id.
    Sent,
    /// The provider reported it reached the person's device or mailbox.
    Delivered,
    /// It failed for good, with the error.
    Failed,
    /// It was not sent because it no longer applied (a cancelled session, a withdrawn patient)
    /// or the person opted out.
    Skipped,
}

impl DeliveryState {
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Skipped,
    ];

    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|state| state.code() == code)
            .ok_or_else(|| InvalidValue::new("state", format!("'{code}' is not a delivery state")))
    }

    /// Whether the message left Stillpoint, so it must not be sent again.
    #[must_use]
    pub const fn is_sent(self) -> bool {
        matches!(self, Self::Sent | Self::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;

    #[test]
    fn phone_numbers_are_read_as_e164() {
        let number = PhoneNumber::parse(" +1 (555) 555-0123 ").expect("valid");
        assert_eq!(number.as_str(), "+15555550123");
        assert_eq!(number.masked(), "+•••••••••23");
        for bad in [
            "5555550123",
            "+0 555 555",
            "+1 555",
            "+1 555 555 0123 x2",
            "+123456789012345678",
        ] {
            let error = PhoneNumber::parse(bad).expect_err(bad);
            assert_eq!(error.field, "phone");
        }
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let quiet = QuietHours::new(time(21, 0, 0, 0), time(8, 0, 0, 0)).expect("valid");
        assert!(quiet.contains(time(23, 0, 0, 0)));
        assert!(quiet.contains(time(2, 0, 0, 0)));
        assert!(quiet.contains(time(21, 0, 0, 0)));
        assert!(!quiet.contains(time(8, 0, 0, 0)));
        assert!(!quiet.contains(time(12, 0, 0, 0)));
        assert!(QuietHours::new(time(8, 0, 0, 0), time(8, 0, 0, 0)).is_err());
    }

    #[test]
    fn quiet_hours_adjust_due_time() {
        let zone = TimeZone::get("America/Chicago").expect("zone");
        let quiet = QuietHours::new(time(21, 0, 0, 0), time(8, 0, 0, 0)).expect("valid");
        let at = |hour, minute| {
            resolve_local(
                date(2027, 3, 2).to_datetime(time(hour, minute, 0, 0)),
                &zone,
            )
        };
        let next_morning = resolve_local(date(2027, 3, 3).to_datetime(time(8, 0, 0, 0)), &zone);

        // 23:00 moves to 08:00 the next day; 06:00 moves to 08:00 the same day; noon stays.
        assert_eq!(quiet.adjust(at(23, 0), &zone, None), next_morning);
        assert_eq!(quiet.adjust(at(6, 0), &zone, None), at(8, 0));
        assert_eq!(quiet.adjust(at(12, 0), &zone, None), at(12, 0));

        // A reminder at 06:30 for a 07:30 session cannot wait until 08:00: it goes out at
        // 20:59 the evening before.
        let evening_before = resolve_local(date(2027, 3, 1).to_datetime(time(20, 59, 0, 0)), &zone);
        assert_eq!(
            quiet.adjust(at(6, 30), &zone, Some(at(7, 30))),
            evening_before
        );
    }

    #[test]
    fn channels_follow_choices_and_essential_messages_ignore_them() {
        let mut settings = NotificationSettings::default();
        assert_eq!(
            settings.channels_for(MessageKind::SessionReminder),
            [Channel::Email, Channel::InApp].into()
        );
        settings
            .channels
            .insert(MessageKind::SessionReminder, BTreeSet::new());
        assert!(
            settings
                .channels_for(MessageKind::SessionReminder)
                .is_empty()
        );

        // No phone: SMS is left out even for essential messages.
        assert_eq!(
            settings.channels_for(MessageKind::AlertEscalated),
            [Channel::Email, Channel::InApp].into()
        );
        settings.phone = Some(PhoneNumber::parse("+34 600 000 000").expect("valid"));
        assert_eq!(
            settings.channels_for(MessageKind::AlertEscalated),
            Channel::ALL.into()
        );
    }

    #[test]
    fn fallback_needs_the_persons_leave() {
        let mut settings = NotificationSettings::default();
        let kind = MessageKind::SessionReminder;
        assert!(!settings.allows_fallback(kind, Channel::Email, Channel::Sms));
        settings.phone = Some(PhoneNumber::parse("+15555550123").expect("valid"));
        assert!(!settings.allows_fallback(kind, Channel::Email, Channel::Sms));
        settings.sms_fallback = true;
        assert!(settings.allows_fallback(kind, Channel::Email, Channel::Sms));

        // In-app is a fallback only when the message does not go there anyway.
        assert!(!settings.allows_fallback(kind, Channel::Sms, Channel::InApp));
        settings.channels.insert(kind, [Channel::Email].into());
        assert!(settings.allows_fallback(kind, Channel::Sms, Channel::InApp));
    }

    #[test]
    fn settings_that_need_a_phone_name_the_field() {
        let settings = NotificationSettings {
            sms_fallback: true,
            ..NotificationSettings::default()
        };
        assert_eq!(settings.validate().expect_err("no phone").field, "phone");
        let mut settings = NotificationSettings::default();
        settings
            .channels
            .insert(MessageKind::MeasureDue, [Channel::Sms].into());
        assert_eq!(settings.validate().expect_err("no phone").field, "phone");
    }
}
