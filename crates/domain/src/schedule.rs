//! The session plan of an 8-week MBSR cohort: an orientation, eight weekly classes and an
//! all-day retreat between weeks 6 and 7, at a fixed local wall-clock time in the cohort's time
//! zone.
//!
//! A class keeps its local time across daylight-saving changes, so its UTC instant moves. Some
//! local times do not exist on a date (a DST gap) or exist twice (a DST overlap). They are
//! resolved as RFC 5545 (section 3.3.5) specifies for DATE-TIME values with a time zone. A
//! nonexistent time is read with the UTC offset before the gap, which moves it later by the gap,
//! and a repeated time means its first occurrence. Each such session carries a warning for the
//! administrator.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{InvalidValue, TimeZoneName};

/// The number of weekly classes in the standard MBSR format.
pub const CLASS_COUNT: u8 = 8;

/// How far ahead a cohort may start, in years.
pub const MAX_YEARS_AHEAD: i16 = 2;
/// The maximum number of dates without a class that a schedule may list.
pub const MAX_SKIP_DATES: usize = 20;

/// The kind of a planned session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionKind {
    Orientation,
    Class { week: u8 },
    Retreat,
}

/// The resolution of a local time that falls in a daylight-saving transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstResolution {
    /// The local time does not exist on that date; the session starts later by the gap.
    Gap { shifted_by: SignedDuration },
    /// The local time occurs twice on that date; the session starts at the first occurrence.
    Overlap,
}

/// One session of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSession {
    pub kind: SessionKind,
    /// The wall-clock start the cohort agreed on, in the cohort's time zone.
    pub local_start: DateTime,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Set when the local start falls in a daylight-saving transition.
    pub dst: Option<DstResolution>,
}

/// The inputs of a cohort's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRequest {
    pub time_zone: TimeZoneName,
    /// The date of the orientation, before the first class.
    pub orientation_date: Date,
    /// The date of the week-1 class; later classes fall on the same weekday.
    pub first_class_date: Date,
    /// The local start time of the orientation and the classes.
    pub class_time: Time,
    pub class_length: SignedDuration,
    /// The retreat's date and local start time, between the week-6 and week-7 classes.
    pub retreat_start: DateTime,
    pub retreat_length: SignedDuration,
    /// Dates without a class, such as holidays: a class that would fall on one moves a week
    /// later, and the later classes with it.
    pub skip_dates: Vec<Date>,
}

/// Expands `request` into its sessions in time order, after checking it against `today` (the
/// date in the cohort's time zone).
pub fn plan(request: &ScheduleRequest, today: Date) -> Result<Vec<PlannedSession>, InvalidValue> {
    check_lengths(request)?;
    let latest_start = today.saturating_add(jiff::Span::new().years(MAX_YEARS_AHEAD));
    if request.first_class_date > latest_start {
        return Err(InvalidValue::new(
            "start_date",
            format!(
                "the first class on {} is more than {MAX_YEARS_AHEAD} years ahead; choose a date up to {latest_start}",
                request.first_class_date
            ),
        ));
    }
    if request.skip_dates.len() > MAX_SKIP_DATES {
        return Err(InvalidValue::new(
            "skip_dates",
            format!("list at most {MAX_SKIP_DATES} dates without a class"),
        ));
    }
    if request.first_class_date < today {
        return Err(InvalidValue::new(
            "start_date",
            format!(
                "the first class on {} is in the past; choose today ({today}) or a later date",
                request.first_class_date
            ),
        ));
    }
    if request.orientation_date >= request.first_class_date || request.orientation_date < today {
        return Err(InvalidValue::new(
            "orientation_date",
            format!(
                "the orientation must be between today ({today}) and the day before the first class ({})",
                request.first_class_date
            ),
        ));
    }

    let zone = request.time_zone.time_zone();
    let class_dates = class_dates(request)?;
    let (week_six, week_seven) = (class_dates[5], class_dates[6]);
    let retreat_date = request.retreat_start.date();
    if retreat_date <= week_six || retreat_date >= week_seven {
        return Err(InvalidValue::new(
            "retreat_date",
            format!(
                "the all-day retreat belongs between the week-6 class ({week_six}) and the week-7 class ({week_seven}); choose a date in between"
            ),
        ));
    }

    let mut sessions = Vec::with_capacity(usize::from(CLASS_COUNT) + 2);
    let orientation = request.orientation_date.to_datetime(request.class_time);
    sessions.push(session(
        &zone,
        SessionKind::Orientation,
        orientation,
        request.class_length,
    )?);
    for (week, date) in (1..=CLASS_COUNT).zip(class_dates) {
        let local = date.to_datetime(request.class_time);
        sessions.push(session(
            &zone,
            SessionKind::Class { week },
            local,
            request.class_length,
        )?);
    }
    sessions.push(session(
        &zone,
        SessionKind::Retreat,
        request.retreat_start,
        request.retreat_length,
    )?);
    sessions.sort_by_key(|planned| planned.start);

    if let Some(pair) = sessions.windows(2).find(|pair| pair[0].end > pair[1].start) {
        return Err(InvalidValue::new(
            "retreat_date",
            format!(
                "two sessions overlap on {}; move the retreat or shorten it",
                pair[1].local_start.date()
            ),
        ));
    }
    Ok(sessions)
}

/// Moves one session to `new_local_start` in the cohort's time zone, keeping its kind and
/// length. The new start must be after `now`, and the session must not overlap `others` (the
/// cohort's other sessions that still take place).
pub fn reschedule(
    session_to_move: &PlannedSession,
    time_zone: &TimeZoneName,
    new_local_start: DateTime,
    others: &[PlannedSession],
    now: Timestamp,
) -> Result<PlannedSession, InvalidValue> {
    let length = session_to_move.end.duration_since(session_to_move.start);
    let moved = session(
        &time_zone.time_zone(),
        session_to_move.kind,
        new_local_start,
        length,
    )?;
    if moved.start <= now {
        return Err(InvalidValue::new(
            "new_start",
            format!(
                "{} has passed; choose a later date and time",
                new_local_start.strftime("%Y-%m-%d %H:%M")
            ),
        ));
    }
    // A session may not jump over one that comes before or after it in the program.
    let jumped = others.iter().find(|other| {
        if program_position(other.kind) < program_position(moved.kind) {
            other.start >= moved.end
        } else {
            other.end <= moved.start
        }
    });
    if let Some(other) = jumped {
        return Err(InvalidValue::new(
            "new_start",
            format!(
                "the session would move past the one starting {}, so the program would be out of order; choose a time between its neighbours",
                other.local_start.strftime("%Y-%m-%d %H:%M")
            ),
        ));
    }
    if let Some(other) = others
        .iter()
        .find(|other| moved.start < other.end && other.start < moved.end)
    {
        return Err(InvalidValue::new(
            "new_start",
            format!(
                "the session would overlap the one starting {}; choose another time",
                other.local_start.strftime("%Y-%m-%d %H:%M")
            ),
        ));
    }
    Ok(moved)
}

/// Returns where a session comes in the program: the orientation, the classes by week, and the
/// retreat between weeks 6 and 7.
fn program_position(kind: SessionKind) -> u8 {
    match kind {
        SessionKind::Orientation => 0,
        SessionKind::Class { week } => week.saturating_mul(2),
        SessionKind::Retreat => 13,
    }
}

/// Lists the dates of the eight classes: weekly from the first, a week later for each skipped
/// date.
fn class_dates(request: &ScheduleRequest) -> Result<Vec<Date>, InvalidValue> {
    let mut dates = Vec::with_capacity(usize::from(CLASS_COUNT));
    let mut date = request.first_class_date;
    while dates.len() < usize::from(CLASS_COUNT) {
        if !request.skip_dates.contains(&date) {
            dates.push(date);
        }
        date = date.checked_add(jiff::Span::new().weeks(1)).map_err(|_| {
            InvalidValue::new(
                "start_date",
                "the classes would run past the last supported date; choose an earlier start",
            )
        })?;
    }
    Ok(dates)
}

fn check_lengths(request: &ScheduleRequest) -> Result<(), InvalidValue> {
    let class_minutes = request.class_length.as_mins();
    if !(30..=240).contains(&class_minutes) {
        return Err(InvalidValue::new(
            "class_length",
            format!(
                "a class of {class_minutes} minutes is outside 30 to 240 minutes; choose a length in that range"
            ),
        ));
    }
    let retreat_minutes = request.retreat_length.as_mins();
    if !(60..=480).contains(&retreat_minutes) {
        return Err(InvalidValue::new(
            "retreat_length",
            format!(
                "a retreat of {retreat_minutes} minutes is outside 60 to 480 minutes; choose a length in that range"
            ),
        ));
    }
    Ok(())
}

fn session(
    zone: &TimeZone,
    kind: SessionKind,
    local_start: DateTime,
    length: SignedDuration,
) -> Result<PlannedSession, InvalidValue> {
    let ambiguous = zone.to_ambiguous_timestamp(local_start);
    let dst = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } => None,
        AmbiguousOffset::Gap { before, after } => Some(DstResolution::Gap {
            shifted_by: after.duration_since(before),
        }),
        AmbiguousOffset::Fold { .. } => Some(DstResolution::Overlap),
    };
    // `compatible` applies RFC 5545: the offset before a gap, the first occurrence in a fold.
    let start = ambiguous.compatible().map_err(|error| {
        InvalidValue::new("start_date", format!("the date is out of range: {error}"))
    })?;
    let end = start
        .checked_add(length)
        .map_err(|error| InvalidValue::new("class_length", format!("out of range: {error}")))?;
    Ok(PlannedSession {
        kind,
        local_start,
        start,
        end,
        dst,
    })
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;

    fn request(zone: &str, first_class: Date, at: Time) -> ScheduleRequest {
        let week = jiff::Span::new().weeks(1);
        let retreat = first_class
            .saturating_add(week.checked_mul(5).expect("span"))
            .saturating_add(jiff::Span::new().days(3));
        ScheduleRequest {
            time_zone: TimeZoneName::parse(zone).expect("zone"),
            orientation_date: first_class.saturating_sub(week),
            first_class_date: first_class,
            class_time: at,
            class_length: SignedDuration::from_mins(150),
            retreat_start: retreat.to_datetime(time(9, 30, 0, 0)),
            retreat_length: SignedDuration::from_hours(6),
            skip_dates: Vec::new(),
        }
    }

    fn class_starts(sessions: &[PlannedSession]) -> Vec<String> {
        sessions
            .iter()
            .filter(|planned| matches!(planned.kind, SessionKind::Class { .. }))
            .map(|planned| planned.start.strftime("%Y-%m-%dT%H:%MZ").to_string())
            .collect()
    }

    /// Weekly classes across daylight-saving changes. The expected UTC instants were computed
    /// independently of Stillpoint from the IANA time zone database with Python 3.11's `zoneinfo`.
    #[test]
    fn weekly_classes_keep_local_time_across_dst() {
        let cases: [(&str, Date, Time, [&str; 8]); 4] = [
            (
                "America/Chicago",
                date(2027, 10, 26),
                time(17, 0, 0, 0),
                [
                    "2027-10-26T22:00Z",
                    "2027-11-02T22:00Z",
                    "2027-11-09T23:00Z",
                    "2027-11-16T23:00Z",
                    "2027-11-23T23:00Z",
                    "2027-11-30T23:00Z",
                    "2027-12-07T23:00Z",
                    "2027-12-14T23:00Z",
                ],
            ),
            (
                "Europe/Berlin",
                date(2027, 10, 13),
                time(19, 30, 0, 0),
                [
                    "2027-10-13T17:30Z",
                    "2027-10-20T17:30Z",
                    "2027-10-27T17:30Z",
                    "2027-11-03T18:30Z",
                    "2027-11-10T18:30Z",
                    "2027-11-17T18:30Z",
                    "2027-11-24T18:30Z",
                    "2027-12-01T18:30Z",
                ],
            ),
            (
                "America/Los_Angeles",
                date(2028, 2, 29),
                time(12, 0, 0, 0),
                [
                    "2028-02-29T20:00Z",
                    "2028-03-07T20:00Z",
                    "2028-03-14T19:00Z",
                    "2028-03-21T19:00Z",
                    "2028-03-28T19:00Z",
                    "2028-04-04T19:00Z",
                    "2028-04-11T19:00Z",
                    "2028-04-18T19:00Z",
                ],
            ),
            (
                "Pacific/Auckland",
                date(2027, 9, 14),
                time(18, 0, 0, 0),
                [
                    "2027-09-14T06:00Z",
                    "2027-09-21T06:00Z",
                    "2027-09-28T05:00Z",
                    "2027-10-05T05:00Z",
                    "2027-10-12T05:00Z",
                    "2027-10-19T05:00Z",
                    "2027-10-26T05:00Z",
                    "2027-11-02T05:00Z",
                ],
            ),
        ];
        for (zone, first, at, expected) in cases {
            let sessions = plan(&request(zone, first, at), date(2027, 1, 1)).expect(zone);
            assert_eq!(class_starts(&sessions), expected, "{zone}");
            assert!(
                sessions.iter().all(|planned| planned.dst.is_none()),
                "{zone}"
            );
        }
    }

    #[test]
    fn gap_and_overlap_are_resolved_and_flagged() {
        // 2027-03-14 02:30 does not exist in Chicago (clocks jump from 02:00 to 03:00): the
        // class starts at 03:30 CDT, 08:30 UTC.
        let gap = request("America/Chicago", date(2027, 2, 14), time(2, 30, 0, 0));
        let sessions = plan(&gap, date(2027, 1, 1)).expect("valid");
        let week5 = sessions
            .iter()
            .find(|planned| planned.kind == SessionKind::Class { week: 5 })
            .expect("week 5");
        assert_eq!(week5.local_start.date(), date(2027, 3, 14));
        assert_eq!(week5.start.to_string(), "2027-03-14T08:30:00Z");
        assert_eq!(
            week5.dst,
            Some(DstResolution::Gap {
                shifted_by: SignedDuration::from_hours(1)
            })
        );

        // 2027-11-07 01:30 occurs twice in Chicago: the first occurrence is 01:30 CDT, 06:30 UTC.
        let overlap = request("America/Chicago", date(2027, 10, 10), time(1, 30, 0, 0));
        let sessions = plan(&overlap, date(2027, 1, 1)).expect("valid");
        let week5 = sessions
            .iter()
            .find(|planned| planned.kind == SessionKind::Class { week: 5 })
            .expect("week 5");
        assert_eq!(week5.local_start.date(), date(2027, 11, 7));
        assert_eq!(week5.start.to_string(), "2027-11-07T06:30:00Z");
        assert_eq!(week5.dst, Some(DstResolution::Overlap));
        assert_eq!(
            sessions
                .iter()
                .filter(|planned| planned.dst.is_some())
                .count(),
            1
        );
    }

    #[test]
    fn skip_dates_shift_later_classes() {
        let mut skipping = request("America/Denver", date(2027, 11, 4), time(18, 0, 0, 0));
        skipping.skip_dates = vec![date(2027, 11, 25)];
        skipping.retreat_start = date(2027, 12, 18).to_datetime(time(9, 0, 0, 0));
        let sessions = plan(&skipping, date(2027, 1, 1)).expect("valid");
        let dates: Vec<Date> = sessions
            .iter()
            .filter(|planned| matches!(planned.kind, SessionKind::Class { .. }))
            .map(|planned| planned.local_start.date())
            .collect();
        assert_eq!(dates[2], date(2027, 11, 18));
        assert_eq!(dates[3], date(2027, 12, 2), "Thanksgiving is skipped");
        assert_eq!(dates[7], date(2027, 12, 30));
        assert!(!dates.contains(&date(2027, 11, 25)));
    }

    #[test]
    fn bad_requests_name_the_field() {
        let today = date(2027, 6, 1);
        let good = request("Europe/Madrid", date(2027, 6, 8), time(18, 0, 0, 0));
        assert!(plan(&good, today).is_ok());

        let mut past = good.clone();
        past.first_class_date = date(2027, 5, 25);
        past.orientation_date = date(2027, 5, 18);
        assert_eq!(plan(&past, today).expect_err("past").field, "start_date");

        let mut retreat = good.clone();
        retreat.retreat_start = date(2027, 6, 9).to_datetime(time(9, 0, 0, 0));
        let error = plan(&retreat, today).expect_err("retreat in week 1");
        assert_eq!(error.field, "retreat_date");
        assert!(
            error.problem.contains("between the week-6 class"),
            "{}",
            error.problem
        );

        let mut orientation = good.clone();
        orientation.orientation_date = good.first_class_date;
        assert_eq!(
            plan(&orientation, today).expect_err("same day").field,
            "orientation_date"
        );

        let mut long = good;
        long.class_length = SignedDuration::from_mins(300);
        assert_eq!(
            plan(&long, today).expect_err("too long").field,
            "class_length"
        );
    }

    /// Many generated schedules in several zones: every class keeps its wall-clock time (or is
    /// flagged as a gap), classes stay a whole number of days apart locally, and no two sessions
    /// overlap.
    #[test]
    fn generated_schedules_keep_wall_time_without_overlaps() {
        let zones = [
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Phoenix",
            "America/Los_Angeles",
            "America/Sao_Paulo",
            "Europe/London",
            "Europe/Berlin",
            "Australia/Sydney",
            "Pacific/Auckland",
            "Asia/Kolkata",
        ];
        let mut state: u64 = 0x5eed;
        let mut next = |bound: u64| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut mixed = state;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (mixed ^ (mixed >> 31)) % bound
        };
        let today = date(2027, 1, 1);
        for round in 0..2_000 {
            let zone = zones[usize::try_from(next(zones.len() as u64)).expect("index")];
            let offset_days = i64::try_from(next(700)).expect("days") + 7;
            let first = today.saturating_add(jiff::Span::new().days(offset_days));
            let hour = i8::try_from(next(24)).expect("hour");
            let minute = i8::try_from(next(4) * 15).expect("minute");
            let at = time(hour, minute, 0, 0);
            let sessions = plan(&request(zone, first, at), today)
                .unwrap_or_else(|error| panic!("round {round} {zone} {first} {at}: {error}"));
            let tz = TimeZone::get(zone).expect("zone");
            for planned in &sessions {
                let wall = planned.start.to_zoned_datetime(tz.clone()).datetime();
                match planned.dst {
                    None => assert_eq!(wall, planned.local_start, "round {round} {zone}"),
                    Some(DstResolution::Overlap) => assert_eq!(wall, planned.local_start),
                    Some(DstResolution::Gap { shifted_by }) => {
                        let shifted = planned.local_start.checked_add(shifted_by).expect("shift");
                        assert_eq!(wall, shifted, "round {round} {zone}");
                    }
                }
            }
            for pair in sessions.windows(2) {
                assert!(
                    pair[0].end <= pair[1].start,
                    "round {round} {zone}: overlap"
                );
            }
        }
    }

    /// A moved class keeps its length and is resolved like a planned one: 02:30 on the Sunday
    /// the Chicago clocks go forward (2027-03-14) starts at 03:30 CDT, 08:30 UTC.
    #[test]
    fn reschedule_keeps_length_and_resolves_gaps() {
        let sessions = plan(
            &request("America/Chicago", date(2027, 3, 2), time(18, 0, 0, 0)),
            date(2027, 1, 1),
        )
        .expect("plan");
        let week_two = &sessions[2];
        let zone = TimeZoneName::parse("America/Chicago").expect("zone");
        let now: Timestamp = "2027-01-01T00:00:00Z".parse().expect("instant");
        let others: Vec<PlannedSession> = sessions
            .iter()
            .filter(|other| other.start != week_two.start)
            .cloned()
            .collect();

        let moved = reschedule(
            week_two,
            &zone,
            date(2027, 3, 14).at(2, 30, 0, 0),
            &others,
            now,
        )
        .expect("moved");
        assert_eq!(moved.kind, SessionKind::Class { week: 2 });
        assert_eq!(moved.start.to_string(), "2027-03-14T08:30:00Z");
        assert_eq!(
            moved.end.duration_since(moved.start),
            SignedDuration::from_mins(150)
        );
        assert_eq!(
            moved.dst,
            Some(DstResolution::Gap {
                shifted_by: SignedDuration::from_hours(1)
            })
        );

        let past = reschedule(
            week_two,
            &zone,
            date(2026, 12, 1).at(18, 0, 0, 0),
            &others,
            now,
        )
        .expect_err("past");
        assert_eq!(past.field, "new_start");
        assert!(past.problem.contains("has passed"), "{}", past.problem);

        // The week-3 class starts 2027-03-16 18:00; a move to 17:00 that day would overlap it.
        let clash = reschedule(
            week_two,
            &zone,
            date(2027, 3, 16).at(17, 0, 0, 0),
            &others,
            now,
        )
        .expect_err("overlap");
        assert_eq!(clash.field, "new_start");
        assert!(clash.problem.contains("overlap"), "{}", clash.problem);

        // Week 2 cannot move after week 3, and a far-future start is refused.
        let jump = reschedule(
            week_two,
            &zone,
            date(2027, 3, 19).at(18, 0, 0, 0),
            &others,
            now,
        )
        .expect_err("out of order");
        assert!(jump.problem.contains("out of order"), "{}", jump.problem);
        let mut far = request("America/Chicago", date(9999, 12, 21), time(18, 0, 0, 0));
        far.skip_dates = vec![date(9999, 12, 28)];
        assert_eq!(
            plan(&far, date(2027, 1, 1)).expect_err("far").field,
            "start_date"
        );
    }
}
