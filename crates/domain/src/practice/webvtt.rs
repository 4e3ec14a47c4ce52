//! A WebVTT reader for caption files, after the W3C "WebVTT: The Web Video Text Tracks Format"
//! recommendation: the `WEBVTT` signature, blocks separated by blank lines, cue timings as
//! `[hh:]mm:ss.ttt --> [hh:]mm:ss.ttt` with optional settings, and `NOTE`, `STYLE` and `REGION`
//! blocks, which carry no caption text.
//!
//! The reader is strict where a browser would silently drop a cue, so a facilitator learns at
//! upload time that the captions are broken instead of a patient finding out while listening.

use crate::InvalidValue;

/// One caption cue, with times in milliseconds from the start of the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The cue text with markup such as `<v Speaker>` or `<i>` removed and character
    /// references decoded, lines joined by a space.
    pub text: String,
}

const FIELD: &str = "captions";

/// Parses a WebVTT file into its cues, in order.
///
/// # Errors
/// Returns the first problem with its line number: a missing signature, a malformed timestamp,
/// a cue that ends before it starts or starts before the previous cue, or a file without cues.
pub fn parse(text: &str) -> Result<Vec<Cue>, InvalidValue> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    check_signature(lines.first().copied().unwrap_or_default())?;

    // Header lines such as `Kind: captions` may follow the signature up to the first blank
    // line; they carry no cues.
    let mut index = lines
        .iter()
        .position(|line| line.trim().is_empty())
        .unwrap_or(lines.len());
    let mut cues: Vec<Cue> = Vec::new();
    while index < lines.len() {
        if lines[index].trim().is_empty() {
            index += 1;
            continue;
        }
        let block_end = lines[index..]
            .iter()
            .position(|line| line.trim().is_empty())
            .map_or(lines.len(), |offset| index + offset);
        if let Some(cue) = parse_block(&lines[index..block_end], index + 1)? {
            if let Some(previous) = cues.last()
                && cue.start_ms < previous.start_ms
            {
                return Err(problem(
                    index + 1,
                    "this cue starts before the cue above it; put the cues in time order",
                ));
            }
            cues.push(cue);
        }
        index = block_end;
    }

    if cues.is_empty() {
        return Err(InvalidValue::new(
            FIELD,
            "the file has no caption cues; add cues such as '00:00:01.000 --> 00:00:04.000' followed by their text",
        ));
    }
    Ok(cues)
}

fn check_signature(first: &str) -> Result<(), InvalidValue> {
    let rest = first.strip_prefix("WEBVTT");
    let valid = rest.is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    if valid {
        Ok(())
    } else {
        Err(InvalidValue::new(
            FIELD,
            "the file is not WebVTT: its first line must be 'WEBVTT'; export the captions as .vtt, not .srt or text",
        ))
    }
}

/// Parses one block; returns `None` for blocks that are not cues.
fn parse_block(block: &[&str], first_line: usize) -> Result<Option<Cue>, InvalidValue> {
    let head = block[0];
    if ["NOTE", "STYLE", "REGION"].iter().any(|keyword| {
        head == *keyword
            || head.starts_with(&format!("{keyword} "))
            || head.starts_with(&format!("{keyword}\t"))
    }) {
        return Ok(None);
    }

    // A cue may start with an identifier line; its timing line is then the second.
    let (timing_offset, timing) = if head.contains("-->") {
        (0, head)
    } else {
        match block.get(1) {
            Some(line) if line.contains("-->") => (1, *line),
            _ => {
                return Err(problem(
                    first_line,
                    "expected a cue timing such as '00:00:01.000 --> 00:00:04.000'",
                ));
            }
        }
    };
    let line_number = first_line + timing_offset;
    let (start_ms, end_ms) = parse_timing(timing, line_number)?;
    let text = block[timing_offset + 1..]
        .iter()
        .map(|line| plain_text(line))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Some(Cue {
        start_ms,
        end_ms,
        text,
    }))
}

fn parse_timing(line: &str, line_number: usize) -> Result<(u64, u64), InvalidValue> {
    let (start, rest) = line.split_once("-->").ok_or_else(|| {
        problem(
            line_number,
            "expected '-->' between the start and end times",
        )
    })?;
    let end = rest.split_whitespace().next().unwrap_or_default();
    let start_ms = parse_timestamp(start.trim()).ok_or_else(|| {
        problem(
            line_number,
            &format!(
                "'{}' is not a WebVTT time; write it as 00:01:02.500",
                start.trim()
            ),
        )
    })?;
    let end_ms = parse_timestamp(end).ok_or_else(|| {
        problem(
            line_number,
            &format!("'{end}' is not a WebVTT time; write it as 00:01:02.500"),
        )
    })?;
    if end_ms <= start_ms {
        return Err(problem(
            line_number,
            "the cue ends before it starts; its end time must be later than its start time",
        ));
    }
    Ok((start_ms, end_ms))
}

/// Parses `[hh:]mm:ss.ttt`, where minutes and seconds are two digits below 60 and the fraction
/// is exactly three digits.
fn parse_timestamp(text: &str) -> Option<u64> {
    let (clock, millis) = text.split_once('.')?;
    if millis.len() != 3 {
        return None;
    }
    let millis = digits(millis)?;
    let parts: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [minutes, seconds] => (0, *minutes, *seconds),
        [hours, minutes, seconds] if hours.len() >= 2 => (digits(hours)?, *minutes, *seconds),
        _ => return None,
    };
    if minutes.len() != 2 || seconds.len() != 2 {
        return None;
    }
    let (minutes, seconds) = (digits(minutes)?, digits(seconds)?);
    if minutes > 59 || seconds > 59 {
        return None;
    }
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Removes cue markup (`<v Name>`, `<i>`, timestamps) and decodes the character references
/// WebVTT allows.
fn plain_text(line: &str) -> String {
    let mut text = String::with_capacity(line.len());
    let mut in_tag = false;
    for character in line.chars() {
        match character {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&lrm;", "\u{200e}")
        .replace("&rlm;", "\u{200f}")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

fn problem(line: usize, message: &str) -> InvalidValue {
    InvalidValue::new(FIELD, format!("line {line}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_with_ids_notes_and_markup() {
        let file = "\u{feff}WEBVTT - demo\n\nNOTE made by hand\nover two lines\n\nintro\n00:01.000 --> 00:04.500 align:start\n<v Guide>Settle into</v> a\ncomfortable position &amp; rest.\n\n01:00:00.000 --> 01:00:02.000\nLast\n";
        let cues = parse(file).expect("valid file");
        assert_eq!(cues.len(), 2);
        let with_header = "WEBVTT\nKind: captions\nLanguage: es\n\n00:01.000 --> 00:02.000\nHola\n";
        assert_eq!(parse(with_header).expect("header lines").len(), 1);
        assert_eq!(cues[0].start_ms, 1_000);
        assert_eq!(cues[0].end_ms, 4_500);
        assert_eq!(cues[0].text, "Settle into a comfortable position & rest.");
        assert_eq!(cues[1].start_ms, 3_600_000);
    }

    #[test]
    fn rejects_what_a_browser_would_drop() {
        let cases = [
            (
                "1\n00:00:01,000 --> 00:00:02,000\nSRT\n",
                "first line must be 'WEBVTT'",
            ),
            (
                "WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n",
                "first line must be 'WEBVTT'",
            ),
            (
                "WEBVTT\n\n00:01,000 --> 00:02.000\nx\n",
                "line 3: '00:01,000' is not a WebVTT time",
            ),
            (
                "WEBVTT\n\n00:61.000 --> 00:62.000\nx\n",
                "is not a WebVTT time",
            ),
            (
                "WEBVTT\n\n00:03.000 --> 00:02.000\nx\n",
                "ends before it starts",
            ),
            (
                "WEBVTT\n\n00:05.000 --> 00:06.000\na\n\n00:01.000 --> 00:02.000\nb\n",
                "line 6: this cue starts before",
            ),
            ("WEBVTT\n\nhello\nworld\n", "line 3: expected a cue timing"),
            ("WEBVTT\n\nNOTE only a note\n", "no caption cues"),
        ];
        for (file, expected) in cases {
            let error = parse(file).expect_err(file);
            assert_eq!(error.field, "captions");
            assert!(
                error.problem.contains(expected),
                "{file:?}: {}",
                error.problem
            );
        }
    }
}
