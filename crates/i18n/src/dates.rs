//! Dates and times in the reader's language and time zone, with weekday and month names from
//! the translation catalogue.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use crate::Translator;

/// Formats a long date such as "Tuesday 9 March 2027" in the catalogue's word order.
#[must_use]
pub fn long_date(tr: &Translator, date: Date) -> String {
    let mut args = fluent_bundle::FluentArgs::new();
    args.set("weekday", tr.t(weekday_id(date.weekday())));
    args.set("day", date.day().to_string());
    args.set("month", tr.t(&format!("month-{}", date.month())));
    args.set("year", date.year().to_string());
    tr.t_args("date-long", &args)
}

/// Formats a long date with the 24-hour local time, such as "Tuesday 9 March 2027, 18:00".
#[must_use]
pub fn long_date_time(tr: &Translator, instant: Timestamp, zone: &TimeZone) -> String {
    let local = instant.to_zoned_datetime(zone.clone());
    let mut args = fluent_bundle::FluentArgs::new();
    args.set("date", long_date(tr, local.date()));
    args.set("time", local.strftime("%H:%M").to_string());
    tr.t_args("date-time-long", &args)
}

/// Formats a short date and time for tables, such as "2027-03-09 18:00".
#[must_use]
pub fn short_date_time(instant: Timestamp, zone: &TimeZone) -> String {
    instant
        .to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

fn weekday_id(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "weekday-monday",
        Weekday::Tuesday => "weekday-tuesday",
        Weekday::Wednesday => "weekday-wednesday",
        Weekday::Thursday => "weekday-thursday",
        Weekday::Friday => "weekday-friday",
        Weekday::Saturday => "weekday-saturday",
        Weekday::Sunday => "weekday-sunday",
    }
}
