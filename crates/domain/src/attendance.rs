//! Attendance at a cohort's sessions, attendance rates, and when a patient counts as lapsed.
//!
//! The facilitator takes roll for each session. A makeup (a recording, or another cohort's
//! session) is counted separately from live attendance, so the live rate stays honest while the
//! patient still gets credit for catching up. A lapse is never a penalty: it only offers the
//! patient a way back.

use jiff::civil::Date;

use crate::InvalidValue;

/// The roll call mark for one patient at one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttendanceMark {
    Present,
    Late,
    LeftEarly,
    Absent,
    /// Absent with notice, for example for a medical appointment.
    Excused,
}

impl AttendanceMark {
    pub const ALL: [Self; 5] = [
        Self::Present,
        Self::Late,
        Self::LeftEarly,
        Self::Absent,
        Self::Excused,
    ];

    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Present => "present",
            Self::Late => "late",
            Self::LeftEarly => "left_early",
            Self::Absent => "absent",
            Self::Excused => "excused",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|mark| mark.code() == code)
            .ok_or_else(|| {
                InvalidValue::new(
                    "mark",
                    format!("'{code}' is not a roll call mark; use present, late, left_early, absent or excused"),
                )
            })
    }

    /// Returns whether the patient took part in the live session at all.
    #[must_use]
    pub const fn attended(self) -> bool {
        matches!(self, Self::Present | Self::Late | Self::LeftEarly)
    }
}

/// The way a missed session was made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Makeup {
    /// Watched or listened to the session's recording.
    Recording,
    /// Joined another cohort's session of the same week.
    OtherCohort,
}

impl Makeup {
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::OtherCohort => "other_cohort",
        }
    }

    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        match code {
            "recording" => Ok(Self::Recording),
            "other_cohort" => Ok(Self::OtherCohort),
            other => Err(InvalidValue::new(
                "makeup",
                format!("'{other}' is not a makeup; use recording or other_cohort"),
            )),
        }
    }
}

/// One patient's record for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRecord {
    pub mark: AttendanceMark,
    /// Minutes in the live session.
    pub minutes_attended: u32,
    pub makeup: Option<Makeup>,
}

impl AttendanceRecord {
    /// Checks that the minutes fit the mark and the session's length.
    pub fn new(
        mark: AttendanceMark,
        minutes_attended: u32,
        session_minutes: u32,
        makeup: Option<Makeup>,
    ) -> Result<Self, InvalidValue> {
        if minutes_attended > session_minutes {
            return Err(InvalidValue::new(
                "minutes_attended",
                format!(
                    "{minutes_attended} minutes is longer than the {session_minutes}-minute session; enter the minutes the patient was there"
                ),
            ));
        }
        if !mark.attended() && minutes_attended > 0 {
            return Err(InvalidValue::new(
                "minutes_attended",
                "an absent patient has 0 minutes; mark them late or left early instead",
            ));
        }
        if mark.attended() && minutes_attended == 0 {
            return Err(InvalidValue::new(
                "minutes_attended",
                "enter the minutes the patient was there, or mark them absent",
            ));
        }
        if mark.attended() && makeup.is_some() {
            return Err(InvalidValue::new(
                "makeup",
                "a makeup is recorded only for a missed session",
            ));
        }
        Ok(Self {
            mark,
            minutes_attended,
            makeup,
        })
    }
}

/// Attendance over a set of held sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttendanceSummary {
    /// Sessions held so far.
    pub sessions: u32,
    /// Sessions attended live.
    pub attended: u32,
    /// Missed sessions that were made up.
    pub made_up: u32,
    pub excused: u32,
}

impl AttendanceSummary {
    /// Summarises the records of held sessions; a held session without a record counts as missed.
    #[must_use]
    pub fn of(sessions_held: u32, records: &[AttendanceRecord]) -> Self {
        let count = |keep: &dyn Fn(&AttendanceRecord) -> bool| {
            u32::try_from(records.iter().filter(|record| keep(record)).count()).unwrap_or(u32::MAX)
        };
        Self {
            sessions: sessions_held,
            attended: count(&|record| record.mark.attended()),
            made_up: count(&|record| !record.mark.attended() && record.makeup.is_some()),
            excused: count(&|record| record.mark == AttendanceMark::Excused),
        }
    }

    /// Returns the share of held sessions attended live, from 0 to 1, or `None` before the first
    /// session.
    #[must_use]
    pub fn live_rate(&self) -> Option<f64> {
        (self.sessions > 0).then(|| f64::from(self.attended) / f64::from(self.sessions))
    }

    /// Returns the share of held sessions attended live or made up.
    #[must_use]
    pub fn rate_with_makeups(&self) -> Option<f64> {
        (self.sessions > 0)
            .then(|| f64::from(self.attended + self.made_up) / f64::from(self.sessions))
    }
}

/// Returns whether a patient with no attendance and no practice since `last_activity` counts as
/// lapsed on `today`, after `lapse_days` quiet days (a clinic setting).
#[must_use]
pub fn is_lapsed(last_activity: Date, today: Date, lapse_days: u16) -> bool {
    // `Date::until` measures in days by default, so the span contains the whole count in days.
    let quiet_days = last_activity.until(today).map_or(0, |span| span.get_days());
    quiet_days >= i32::from(lapse_days)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn record(mark: AttendanceMark, minutes: u32, makeup: Option<Makeup>) -> AttendanceRecord {
        AttendanceRecord::new(mark, minutes, 150, makeup).expect("valid")
    }

    #[test]
    fn marks_and_minutes_must_agree() {
        assert!(AttendanceRecord::new(AttendanceMark::Present, 150, 150, None).is_ok());
        assert!(AttendanceRecord::new(AttendanceMark::Late, 120, 150, None).is_ok());
        assert!(
            AttendanceRecord::new(AttendanceMark::Absent, 0, 150, Some(Makeup::Recording)).is_ok()
        );

        let too_long = AttendanceRecord::new(AttendanceMark::Present, 151, 150, None);
        assert_eq!(too_long.expect_err("too long").field, "minutes_attended");
        let absent_with_minutes = AttendanceRecord::new(AttendanceMark::Absent, 10, 150, None);
        assert_eq!(
            absent_with_minutes.expect_err("absent").field,
            "minutes_attended"
        );
        let present_without = AttendanceRecord::new(AttendanceMark::Present, 0, 150, None);
        assert_eq!(
            present_without.expect_err("no minutes").field,
            "minutes_attended"
        );
        let makeup_when_present =
            AttendanceRecord::new(AttendanceMark::Present, 150, 150, Some(Makeup::Recording));
        assert_eq!(makeup_when_present.expect_err("makeup").field, "makeup");
    }

    #[test]
    fn rates_count_makeups_separately() {
        let records = [
            record(AttendanceMark::Present, 150, None),
            record(AttendanceMark::Late, 130, None),
            record(AttendanceMark::LeftEarly, 90, None),
            record(AttendanceMark::Absent, 0, Some(Makeup::Recording)),
            record(AttendanceMark::Excused, 0, Some(Makeup::OtherCohort)),
        ];
        // Six sessions held: one had no record at all and counts as missed.
        let summary = AttendanceSummary::of(6, &records);
        assert_eq!(summary.attended, 3);
        assert_eq!(summary.made_up, 2);
        assert_eq!(summary.excused, 1);
        assert_eq!(summary.live_rate(), Some(0.5));
        let with_makeups = summary.rate_with_makeups().expect("rate");
        assert!((with_makeups - 5.0 / 6.0).abs() < 1e-12, "{with_makeups}");
        assert_eq!(AttendanceSummary::of(0, &[]).live_rate(), None);
    }

    #[test]
    fn lapse_needs_the_quiet_days() {
        let last = date(2027, 3, 1);
        assert!(!is_lapsed(last, date(2027, 3, 14), 14));
        assert!(is_lapsed(last, date(2027, 3, 15), 14));
        assert!(!is_lapsed(last, last, 1));
    }
}
