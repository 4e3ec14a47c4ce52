//! Reminder planning: when each reminder is due, as pure functions of the schedule, the
//! person's time zone and quiet hours, and `now`.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::notify::{QuietHours, resolve_local};

/// How long before a session its reminders go out, by default.
pub const SESSION_REMINDER_OFFSETS: [SignedDuration; 2] = [
    SignedDuration::from_hours(24),
    SignedDuration::from_hours(1),
];

/// How late a reminder may still go out. A reminder planned after this (the server was down,
/// or the session was moved closer) is dropped unless it is the last one before its session.
pub const LATE_GRACE: SignedDuration = SignedDuration::from_mins(15);

/// A session reminder must arrive at least this long before the session starts.
pub const SESSION_REMINDER_MARGIN: SignedDuration = SignedDuration::from_mins(10);

/// One reminder of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionReminder {
    /// How long before the start it was meant to go out, such as 24 hours.
    pub lead: SignedDuration,
    pub due: Timestamp,
}

/// Plans the reminders of a session starting at `start` that still make sense at `now`, with
/// quiet hours applied in the person's zone. A reminder whose time passed more than [`LATE_GRACE`]
/// ago is dropped, except the last one, which goes out at once if the session has not begun.
#[must_use]
pub fn session_reminders(
    start: Timestamp,
    leads: &[SignedDuration],
    now: Timestamp,
    zone: &TimeZone,
    quiet: Option<&QuietHours>,
) -> Vec<SessionReminder> {
    let latest = start.checked_sub(SESSION_REMINDER_MARGIN).unwrap_or(start);
    if latest <= now {
        return Vec::new();
    }
    let shortest = leads.iter().min().copied();
    let mut reminders = Vec::new();
    for lead in leads {
        let Ok(planned) = start.checked_sub(*lead) else {
            continue;
        };
        let due = quiet.map_or(planned, |quiet| quiet.adjust(planned, zone, Some(latest)));
        let too_late = due.checked_add(LATE_GRACE).is_ok_and(|limit| limit < now);
        if too_late && Some(*lead) != shortest {
            continue;
        }
        reminders.push(SessionReminder {
            lead: *lead,
            due: due.max(now.min(latest)),
        });
    }
    reminders
}

/// Lists the instants of a daily reminder at local `time` in `zone`, from `from` (inclusive) to
/// `until` (exclusive). Each day's time is resolved by RFC 5545. On a spring-forward day a
/// time inside the gap moves later by the gap's length. On an autumn day a time that occurs
/// twice means the first one. On every other day it stays at the same wall-clock time.
#[must_use]
pub fn daily_times(
    time: Time,
    zone: &TimeZone,
    from: Timestamp,
    until: Timestamp,
) -> Vec<Timestamp> {
    let mut day = from.to_zoned_datetime(zone.clone()).date();
    let last = until.to_zoned_datetime(zone.clone()).date();
    let mut times = Vec::new();
    while day <= last {
        let instant = resolve_local(day.to_datetime(time), zone);
        if instant >= from && instant < until {
            times.push(instant);
        }
        let Ok(next) = day.tomorrow() else {
            break;
        };
        day = next;
    }
    times
}

/// When a reminder about a questionnaire occasion goes out: as it opens, and as it becomes
/// overdue, each moved out of quiet hours. Both go only while the occasion is unanswered,
/// which the sender checks at the time.
#[must_use]
pub fn occasion_reminder(at: Timestamp, zone: &TimeZone, quiet: Option<&QuietHours>) -> Timestamp {
    quiet.map_or(at, |quiet| quiet.adjust(at, zone, None))
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;

    fn chicago() -> TimeZone {
        TimeZone::get("America/Chicago").expect("zone")
    }

    fn local(zone: &TimeZone, y: i16, m: i8, d: i8, hour: i8, minute: i8) -> Timestamp {
        resolve_local(date(y, m, d).to_datetime(time(hour, minute, 0, 0)), zone)
    }

    #[test]
    fn daily_time_stays_local_across_dst() {
        // In 2027 the United States moves clocks forward on 14 March and back on 7 November.
        let zone = chicago();
        for (month, day) in [(3, 13), (11, 6)] {
            let from = local(&zone, 2027, month, day, 0, 0);
            let until = local(&zone, 2027, month, day + 3, 0, 0);
            let times = daily_times(time(7, 30, 0, 0), &zone, from, until);
            assert_eq!(times.len(), 3);
            for instant in &times {
                let wall = instant.to_zoned_datetime(zone.clone());
                assert_eq!(wall.time(), time(7, 30, 0, 0), "{wall}");
            }
            // The UTC instants are 23 or 25 hours apart across the change, not 24.
            let gap = times[1].duration_since(times[0]);
            let expected = if month == 3 { 23 } else { 25 };
            assert_eq!(gap, SignedDuration::from_hours(expected));
        }
    }

    #[test]
    fn daily_time_in_gap_or_overlap() {
        let zone = chicago();
        // 02:30 does not exist on 14 March 2027: it is read with the offset before the gap
        // (CST, UTC-6), which is 08:30 UTC, shown as 03:30 CDT.
        let from = local(&zone, 2027, 3, 14, 0, 0);
        let until = local(&zone, 2027, 3, 15, 0, 0);
        let gap = daily_times(time(2, 30, 0, 0), &zone, from, until);
        assert_eq!(gap, vec!["2027-03-14T08:30:00Z".parse().expect("instant")]);
        assert_eq!(
            gap[0].to_zoned_datetime(zone.clone()).time(),
            time(3, 30, 0, 0)
        );

        // 01:30 occurs twice on 7 November 2027: the first one (CDT, UTC-5) is 06:30 UTC.
        let from = local(&zone, 2027, 11, 7, 0, 0);
        let until = local(&zone, 2027, 11, 8, 0, 0);
        let overlap = daily_times(time(1, 30, 0, 0), &zone, from, until);
        assert_eq!(
            overlap,
            vec!["2027-11-07T06:30:00Z".parse().expect("instant")]
        );
    }

    #[test]
    fn session_reminders_default_leads() {
        let zone = chicago();
        let start = local(&zone, 2027, 3, 9, 18, 30);
        let now = local(&zone, 2027, 3, 1, 12, 0);
        let reminders = session_reminders(start, &SESSION_REMINDER_OFFSETS, now, &zone, None);
        let dues: Vec<_> = reminders.iter().map(|reminder| reminder.due).collect();
        assert_eq!(
            dues,
            vec![
                local(&zone, 2027, 3, 8, 18, 30),
                local(&zone, 2027, 3, 9, 17, 30)
            ]
        );
    }

    #[test]
    fn late_plan_keeps_last_reminder() {
        let zone = chicago();
        let start = local(&zone, 2027, 3, 9, 18, 30);
        // Planned 30 minutes before the start: the 24-hour reminder is stale, the 1-hour one
        // goes out at once.
        let now = local(&zone, 2027, 3, 9, 18, 0);
        let reminders = session_reminders(start, &SESSION_REMINDER_OFFSETS, now, &zone, None);
        assert_eq!(reminders.len(), 1);
        assert_eq!(reminders[0].lead, SignedDuration::from_hours(1));
        assert_eq!(reminders[0].due, now);

        // Five minutes before the start nothing goes out.
        let now = local(&zone, 2027, 3, 9, 18, 25);
        assert!(session_reminders(start, &SESSION_REMINDER_OFFSETS, now, &zone, None).is_empty());
    }

    #[test]
    fn quiet_hours_keep_reminder_before_session() {
        let zone = chicago();
        let quiet = QuietHours::new(time(21, 0, 0, 0), time(8, 0, 0, 0)).expect("valid");
        // An 08:05 session. The 24-hour reminder (08:05 the day before) is outside quiet
        // hours. The 1-hour one (07:05) would wait until 08:00, less than 10 minutes before
        // the start, so it goes out at 20:59 the evening before.
        let start = local(&zone, 2027, 3, 9, 8, 5);
        let now = local(&zone, 2027, 3, 1, 12, 0);
        let reminders =
            session_reminders(start, &SESSION_REMINDER_OFFSETS, now, &zone, Some(&quiet));
        assert_eq!(reminders[0].due, local(&zone, 2027, 3, 8, 8, 5));
        assert_eq!(reminders[1].due, local(&zone, 2027, 3, 8, 20, 59));
    }
}
