//! Honest listening time: a recording counts as practice by the parts actually played.
//!
//! The player reports the media intervals it played during one visit to a recording's page as
//! `start-end` pairs in seconds. The time credited is the length of their union, capped at the
//! recording's length. So replaying a passage (by looping or seeking back) counts it once per
//! visit, seeking forward counts nothing for the skipped part, and a report sent twice, or a
//! newer report that repeats an older one, never adds time. A new visit is a new practice.

use crate::InvalidValue;

/// The most intervals one report may carry; a 45-minute recording paused every few seconds
/// stays well below it.
pub const MAX_SPANS: usize = 2_000;

/// How far past the recording's end a reported position may be, for players that report a
/// little beyond the last sample.
const END_TOLERANCE_SECONDS: f64 = 1.0;

const FIELD: &str = "segments";

/// Played intervals of one recording, in seconds from its start, merged and in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlayedSpans(Vec<(f64, f64)>);

impl PlayedSpans {
    /// Parses `"12.0-45.5,60-75.2"` for a recording of `duration_seconds`.
    ///
    /// # Errors
    /// Returns an error naming the first interval that is malformed, backwards, outside the
    /// recording, or beyond [`MAX_SPANS`].
    pub fn parse(text: &str, duration_seconds: f64) -> Result<Self, InvalidValue> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        let pieces: Vec<&str> = text.split(',').collect();
        if pieces.len() > MAX_SPANS {
            return Err(InvalidValue::new(
                FIELD,
                format!(
                    "a report may carry at most {MAX_SPANS} intervals; send the played time in fewer pieces"
                ),
            ));
        }

        let mut spans = Vec::with_capacity(pieces.len());
        for piece in pieces {
            spans.push(parse_span(piece.trim(), duration_seconds)?);
        }
        Ok(Self::from_spans(spans))
    }

    fn from_spans(mut spans: Vec<(f64, f64)>) -> Self {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Self(merged)
    }

    /// The union of this and `other`; merging is idempotent and order does not matter.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        Self::from_spans(self.0.iter().chain(other.0.iter()).copied().collect())
    }

    /// The seconds played, counting each part of the recording once.
    #[must_use]
    pub fn seconds(&self) -> f64 {
        self.0.iter().map(|(start, end)| end - start).sum()
    }

    /// The whole seconds to credit for a recording of `duration_seconds`.
    #[must_use]
    pub fn credited_seconds(&self, duration_seconds: f64) -> u32 {
        let seconds = self.seconds().min(duration_seconds.max(0.0)).floor();
        // The cast is exact: the value is a non-negative whole number, capped at `u32::MAX`.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = seconds.min(f64::from(u32::MAX)) as u32;
        whole
    }

    /// The stored form, `"start-end,…"` with one decimal.
    #[must_use]
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(start, end)| format!("{start:.1}-{end:.1}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_span(piece: &str, duration_seconds: f64) -> Result<(f64, f64), InvalidValue> {
    let invalid = || {
        InvalidValue::new(
            FIELD,
            format!(
                "'{piece}' is not an interval; write each as start-end in seconds, such as 12.0-45.5"
            ),
        )
    };
    let (start, end) = piece.split_once('-').ok_or_else(invalid)?;
    let start: f64 = start.trim().parse().map_err(|_| invalid())?;
    let end: f64 = end.trim().parse().map_err(|_| invalid())?;
    if !start.is_finite() || !end.is_finite() || start < 0.0 || end < start {
        return Err(invalid());
    }
    if end > duration_seconds + END_TOLERANCE_SECONDS {
        return Err(InvalidValue::new(
            FIELD,
            format!(
                "'{piece}' ends after the recording, which is {duration_seconds:.1} seconds long"
            ),
        ));
    }
    Ok((start, end.min(duration_seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_passage_counts_once() {
        // Played 0–60, sought back to 30 and played to 90: 90 seconds, not 120.
        let spans = PlayedSpans::parse("0-60,30-90", 600.0).expect("valid");
        assert_eq!(spans.credited_seconds(600.0), 90);
        assert_eq!(spans.to_text(), "0.0-90.0");
    }

    #[test]
    fn looping_never_exceeds_the_recording() {
        // A 120-second recording left looping reports the same span again and again.
        let spans = PlayedSpans::parse("0-120,0-120,0-120,0-120", 120.0).expect("valid");
        assert_eq!(spans.credited_seconds(120.0), 120);
    }

    #[test]
    fn skipped_part_counts_nothing() {
        // Played 0–10, then jumped to 500 and played to 560.
        let spans = PlayedSpans::parse("0-10,500-560", 600.0).expect("valid");
        assert_eq!(spans.credited_seconds(600.0), 70);
    }

    #[test]
    fn repeated_report_adds_nothing() {
        // A report sent while the tab was hidden, then a later one that includes it.
        let first = PlayedSpans::parse("0-200", 600.0).expect("valid");
        let later = PlayedSpans::parse("0-200,200-260.5", 600.0).expect("valid");
        let stored = first.union(&later).union(&first);
        assert_eq!(stored.credited_seconds(600.0), 260);
        assert_eq!(stored, later.union(&first));
    }

    #[test]
    fn malformed_spans_are_rejected() {
        for (text, expected) in [
            ("abc", "is not an interval"),
            ("10-5", "is not an interval"),
            ("-5-10", "is not an interval"),
            ("NaN-10", "is not an interval"),
            ("0-700", "ends after the recording"),
        ] {
            let error = PlayedSpans::parse(text, 600.0).expect_err(text);
            assert_eq!(error.field, "segments");
            assert!(
                error.problem.contains(expected),
                "{text}: {}",
                error.problem
            );
        }
        let many = vec!["0-1"; MAX_SPANS + 1].join(",");
        assert!(PlayedSpans::parse(&many, 600.0).is_err());
        assert_eq!(
            PlayedSpans::parse("  ", 600.0)
                .expect("empty")
                .credited_seconds(600.0),
            0
        );
    }
}
