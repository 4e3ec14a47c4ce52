//! Live group sessions: the video provider a cohort uses, the join window around each session,
//! the room with its lobby and facilitator controls, the orders a media server that keeps its own
//! rooms must carry out, and minutes present from join and leave events.

pub mod media;
pub mod presence;
pub mod room;

use jiff::{SignedDuration, Timestamp};

use crate::InvalidValue;

/// The video service that carries a cohort's live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoProvider {
    /// The selective forwarding unit inside the Stillpoint server.
    Embedded,
    /// A LiveKit deployment: Stillpoint issues access tokens and manages rooms.
    LiveKit,
    /// The clinic's own meeting link, shown to the session's participants in the join window.
    External,
}

impl VideoProvider {
    pub const ALL: [Self; 3] = [Self::Embedded, Self::LiveKit, Self::External];

    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::LiveKit => "livekit",
            Self::External => "external",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|provider| provider.code() == code)
            .ok_or_else(|| {
                InvalidValue::new(
                    "video_provider",
                    format!("'{code}' is not a video provider; use embedded, livekit or external"),
                )
            })
    }
}

/// The time around a session in which its room can be entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    /// How long before the start the room opens.
    pub before_start: SignedDuration,
    /// How long after the planned end the room stays open.
    pub after_end: SignedDuration,
}

impl Default for JoinWindow {
    /// Opens 15 minutes before the start, for the tech check and greetings, and closes 30 minutes
    /// after the end, so a class that runs over is not cut off.
    fn default() -> Self {
        Self {
            before_start: SignedDuration::from_mins(15),
            after_end: SignedDuration::from_mins(30),
        }
    }
}

/// The reason a room cannot be entered at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowClosed {
    NotYetOpen { opens_at: Timestamp },
    Over { closed_at: Timestamp },
}

impl JoinWindow {
    /// Builds a window from minutes, as the settings give them.
    pub fn from_minutes(before_start: u32, after_end: u32) -> Result<Self, InvalidValue> {
        const MAX_MINUTES: u32 = 7 * 24 * 60;
        for (field, minutes) in [
            ("join_before_minutes", before_start),
            ("join_after_minutes", after_end),
        ] {
            if minutes > MAX_MINUTES {
                return Err(InvalidValue::new(
                    field,
                    format!("{minutes} minutes is more than a week; use 0 to {MAX_MINUTES}"),
                ));
            }
        }
        Ok(Self {
            before_start: SignedDuration::from_mins(i64::from(before_start)),
            after_end: SignedDuration::from_mins(i64::from(after_end)),
        })
    }

    #[must_use]
    pub fn opens_at(&self, start: Timestamp) -> Timestamp {
        start.saturating_sub(self.before_start).unwrap_or(start)
    }

    #[must_use]
    pub fn closes_at(&self, end: Timestamp) -> Timestamp {
        end.saturating_add(self.after_end).unwrap_or(end)
    }

    /// Checks that `now` falls inside the window of a session from `start` to `end`.
    pub fn check(
        &self,
        now: Timestamp,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<(), WindowClosed> {
        let opens_at = self.opens_at(start);
        if now < opens_at {
            return Err(WindowClosed::NotYetOpen { opens_at });
        }
        let closed_at = self.closes_at(end);
        if now >= closed_at {
            return Err(WindowClosed::Over { closed_at });
        }
        Ok(())
    }
}

/// The maximum length of a meeting or captioning link, in characters.
pub const MAX_LINK_CHARS: usize = 500;

/// Checks a link to another service (a meeting or a live captioning page): empty means none,
/// otherwise an `https://` address with a host and no spaces.
pub fn check_https_link(field: &'static str, text: &str) -> Result<Option<String>, InvalidValue> {
    let link = text.trim();
    if link.is_empty() {
        return Ok(None);
    }
    let has_host = link
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !has_host || link.chars().any(char::is_whitespace) {
        return Err(InvalidValue::new(
            field,
            "enter the https:// address, without spaces, as the service gave it",
        ));
    }
    if link.chars().count() > MAX_LINK_CHARS {
        return Err(InvalidValue::new(
            field,
            format!(
                "the link is longer than {MAX_LINK_CHARS} characters; use the service's short link"
            ),
        ));
    }
    Ok(Some(link.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn window_opens_before_and_closes_after() {
        let window = JoinWindow::default();
        let start = at("2026-12-08T18:00:00Z");
        let end = at("2026-12-08T20:30:00Z");

        assert_eq!(
            window.check(at("2026-12-08T17:44:59Z"), start, end),
            Err(WindowClosed::NotYetOpen {
                opens_at: at("2026-12-08T17:45:00Z")
            })
        );
        assert_eq!(window.check(at("2026-12-08T17:45:00Z"), start, end), Ok(()));
        assert_eq!(window.check(at("2026-12-08T20:59:59Z"), start, end), Ok(()));
        assert_eq!(
            window.check(at("2026-12-08T21:00:00Z"), start, end),
            Err(WindowClosed::Over {
                closed_at: at("2026-12-08T21:00:00Z")
            })
        );
    }

    #[test]
    fn window_minutes_are_checked() {
        let window = JoinWindow::from_minutes(5, 0).expect("valid");
        assert_eq!(window.before_start, SignedDuration::from_mins(5));
        let error = JoinWindow::from_minutes(20_000, 0).expect_err("too long");
        assert_eq!(error.field, "join_before_minutes");
    }

    #[test]
    fn links_must_be_https_with_a_host() {
        assert_eq!(check_https_link("video_link", "  "), Ok(None));
        assert_eq!(
            check_https_link("video_link", " https://meet.example.org/a "),
            Ok(Some("https://meet.example.org/a".to_owned()))
        );
        for bad in [
            "https://",
            "http://meet.example.org",
            "javascript:alert(1)",
            "https://a b",
        ] {
            let error = check_https_link("video_link", bad).expect_err(bad);
            assert_eq!(error.field, "video_link", "{bad}");
        }
        let long = format!("https://example.org/{}", "a".repeat(MAX_LINK_CHARS));
        assert!(check_https_link("captions_url", &long).is_err());
    }

    #[test]
    fn providers_parse_from_codes() {
        for provider in VideoProvider::ALL {
            assert_eq!(VideoProvider::parse(provider.code()), Ok(provider));
        }
        assert_eq!(
            VideoProvider::parse("zoom").expect_err("unknown").field,
            "video_provider"
        );
    }
}
