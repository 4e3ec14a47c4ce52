//! iCalendar (RFC 5545) feeds: one VEVENT per session, with instants in UTC so every calendar
//! client places them correctly without time zone data.

use std::fmt::Write as _;

use jiff::Timestamp;

/// One event of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    /// Stable across every version of the event, so clients update it instead of adding another.
    pub uid: String,
    /// Raised on every change, so clients replace their copy (RFC 5545 section 3.8.7.4).
    pub sequence: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    pub summary: String,
    pub description: String,
    pub url: String,
    pub cancelled: bool,
}

/// Renders a VCALENDAR named `name` with `events`, stamped at `now`.
#[must_use]
pub fn render(name: &str, events: &[CalendarEvent], now: Timestamp) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Stillpoint//MBSR programs//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        format!("X-WR-CALNAME:{}", escape_text(name)),
    ];
    for event in events {
        lines.push("BEGIN:VEVENT".to_owned());
        lines.push(format!("UID:{}", escape_text(&event.uid)));
        lines.push(format!("SEQUENCE:{}", event.sequence));
        lines.push(format!("DTSTAMP:{}", utc(now)));
        lines.push(format!("DTSTART:{}", utc(event.start)));
        lines.push(format!("DTEND:{}", utc(event.end)));
        lines.push(format!("SUMMARY:{}", escape_text(&event.summary)));
        lines.push(format!("DESCRIPTION:{}", escape_text(&event.description)));
        lines.push(format!("URL:{}", event.url));
        lines.push(format!(
            "STATUS:{}",
            if event.cancelled {
                "CANCELLED"
            } else {
                "CONFIRMED"
            }
        ));
        lines.push("END:VEVENT".to_owned());
    }
    lines.push("END:VCALENDAR".to_owned());

    let mut output = String::new();
    for line in &lines {
        output.push_str(&fold(line));
    }
    output
}

/// Formats a DATE-TIME in UTC form, such as `20270314T083000Z`.
fn utc(instant: Timestamp) -> String {
    instant.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value (RFC 5545 section 3.3.11).
fn escape_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\;"),
            ',' => escaped.push_str("\\,"),
            '\n' => escaped.push_str("\\n"),
            '\r' => {}
            other => escaped.push(other),
        }
    }
    escaped
}

/// Folds a content line into lines of at most 75 octets, each ending in CRLF, continuation lines
/// starting with a space (RFC 5545 section 3.1). Folds never split a UTF-8 character.
fn fold(line: &str) -> String {
    let mut folded = String::with_capacity(line.len() + 8);
    let mut octets = 0;
    for character in line.chars() {
        let width = character.len_utf8();
        if octets + width > 75 {
            folded.push_str("\r\n ");
            octets = 1;
        }
        folded.push(character);
        octets += width;
    }
    let _ = write!(folded, "\r\n");
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets() {
        let line = format!("SUMMARY:{}", "ñ".repeat(60));
        let folded = fold(&line);
        for physical in folded.split("\r\n").filter(|part| !part.is_empty()) {
            assert!(physical.len() <= 75, "{} octets", physical.len());
        }
        let unfolded = folded.replace("\r\n ", "");
        assert_eq!(unfolded, format!("{line}\r\n"));
    }

    #[test]
    fn text_values_are_escaped() {
        assert_eq!(
            escape_text("Week 1; body scan, breath\nnotes\\"),
            "Week 1\\; body scan\\, breath\\nnotes\\\\"
        );
    }

    #[test]
    fn cancelled_event_has_status_and_sequence() {
        let start: Timestamp = "2027-03-14T08:30:00Z".parse().expect("instant");
        let event = CalendarEvent {
            uid: "0191e3a4-0000-7000-8000-000000000001".to_owned(),
            sequence: 2,
            start,
            end: start + jiff::SignedDuration::from_mins(150),
            summary: "Week 3".to_owned(),
            description: "Sign in to join.".to_owned(),
            url: "http://127.0.0.1:8080/program".to_owned(),
            cancelled: true,
        };
        let text = render("Stillpoint", &[event], start);
        assert!(text.contains("\r\nDTSTART:20270314T083000Z\r\n"), "{text}");
        assert!(text.contains("\r\nDTEND:20270314T110000Z\r\n"), "{text}");
        assert!(text.contains("\r\nSEQUENCE:2\r\n"), "{text}");
        assert!(text.contains("\r\nSTATUS:CANCELLED\r\n"), "{text}");
        assert!(text.ends_with("END:VCALENDAR\r\n"));
    }
}
