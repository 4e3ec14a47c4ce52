//! Minutes present in a session's room, from the room's join and leave events, and the roll call
//! mark they suggest to the facilitator.

use jiff::{SignedDuration, Timestamp};

use crate::attendance::AttendanceMark;

/// One stretch in the room: from entering to leaving, or to now while still inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    pub entered: Timestamp,
    pub left: Option<Timestamp>,
}

/// The rules that prefill the roll call from the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollCallRules {
    /// Arriving later than this after the start counts as late, and leaving earlier than this
    /// before the end as leaving early. A local starting point, not a published standard.
    pub grace: SignedDuration,
}

impl Default for RollCallRules {
    fn default() -> Self {
        Self {
            grace: SignedDuration::from_mins(10),
        }
    }
}

/// The room's account of one participant in one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomAttendance {
    /// Whole minutes inside the session's planned time, overlapping stays counted once.
    pub minutes: u32,
    pub mark: AttendanceMark,
}

/// Sums the stays that fall inside `start..end`, counting overlaps once, and suggests a mark.
/// A stay still open counts up to `now`.
#[must_use]
pub fn room_attendance(
    stays: &[Stay],
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
    rules: RollCallRules,
) -> RoomAttendance {
    let mut spans: Vec<(Timestamp, Timestamp)> = stays
        .iter()
        .map(|stay| {
            let left = stay.left.unwrap_or(now);
            (stay.entered.max(start), left.min(end))
        })
        .filter(|(from, to)| from < to)
        .collect();
    spans.sort();

    let mut total = SignedDuration::ZERO;
    let mut merged_end: Option<Timestamp> = None;
    for (from, to) in &spans {
        let from = merged_end.map_or(*from, |merged| (*from).max(merged));
        if from < *to {
            total += to.duration_since(from);
        }
        merged_end = Some(merged_end.map_or(*to, |merged| merged.max(*to)));
    }
    let minutes = u32::try_from(total.as_secs() / 60).unwrap_or(u32::MAX);

    let mark = match (spans.first(), merged_end) {
        (Some((first, _)), Some(last)) if minutes > 0 => {
            if first.duration_since(start) > rules.grace {
                AttendanceMark::Late
            } else if end.duration_since(last) > rules.grace {
                AttendanceMark::LeftEarly
            } else {
                AttendanceMark::Present
            }
        }
        _ => AttendanceMark::Absent,
    };
    RoomAttendance { minutes, mark }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(clock: &str) -> Timestamp {
        format!("2026-12-08T{clock}:00Z")
            .parse()
            .expect("timestamp")
    }

    fn stay(from: &str, to: Option<&str>) -> Stay {
        Stay {
            entered: at(from),
            left: to.map(at),
        }
    }

    fn attendance(stays: &[Stay], now: &str) -> RoomAttendance {
        room_attendance(
            stays,
            at("18:00"),
            at("20:30"),
            at(now),
            RollCallRules::default(),
        )
    }

    #[test]
    fn whole_session_is_present() {
        let result = attendance(&[stay("17:50", Some("20:40"))], "21:00");
        assert_eq!(
            result.minutes, 150,
            "the minutes before the start and after the end are left out"
        );
        assert_eq!(result.mark, AttendanceMark::Present);
    }

    #[test]
    fn dropped_connection_counts_once() {
        let stays = [
            stay("18:02", Some("19:00")),
            stay("18:59", Some("19:10")),
            stay("19:12", Some("20:30")),
        ];
        let result = attendance(&stays, "21:00");
        assert_eq!(result.minutes, 58 + 10 + 78);
        assert_eq!(result.mark, AttendanceMark::Present);
    }

    #[test]
    fn late_early_and_absent() {
        assert_eq!(
            attendance(&[stay("18:25", Some("20:30"))], "21:00"),
            RoomAttendance {
                minutes: 125,
                mark: AttendanceMark::Late
            }
        );
        assert_eq!(
            attendance(&[stay("18:00", Some("19:30"))], "21:00").mark,
            AttendanceMark::LeftEarly
        );
        assert_eq!(
            attendance(&[stay("17:30", Some("17:55"))], "21:00"),
            RoomAttendance {
                minutes: 0,
                mark: AttendanceMark::Absent
            }
        );
        assert_eq!(attendance(&[], "21:00").mark, AttendanceMark::Absent);
    }

    #[test]
    fn open_stay_counts_to_now() {
        let result = attendance(&[stay("18:00", None)], "18:45");
        assert_eq!(result.minutes, 45);
    }
}
