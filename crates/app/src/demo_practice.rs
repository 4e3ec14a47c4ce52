//! Synthetic home-practice histories for the demo clinic's running cohort, so the practice pages,
//! the facilitator's overview and the tailoring suggestions have something real to show.
//!
//! Patients follow one of four patterns: regular practice most days, an uneven week-to-week
//! rhythm with gaps, a lapse of ten days followed by a return, and brief occasional practice.
//! One patient shares entries whose stress ratings rise after practice.

use jiff::Timestamp;
use jiff::civil::Date;
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::{DistressRating, EntrySource, PracticeKind};
use stillpoint_domain::{PatientId, PracticeEntryId};

use crate::demo::DemoClinic;
use crate::ports::{PracticeEntry, Store};
use crate::practice::{PracticePlan, plan_of};
use crate::{AppError, program};

/// Synthetic notes on what a patient noticed, in English and in Spanish.
const NOTES: [(&str, &str); 6] = [
    (
        "My shoulders were tight at the start and softer by the end.",
        "Tenía los hombros tensos al principio y más sueltos al final.",
    ),
    (
        "Hard to sit still today; I came back to the breath many times.",
        "Hoy me costó quedarme quieta; volví a la respiración muchas veces.",
    ),
    (
        "Fell asleep halfway through, which I probably needed.",
        "Me quedé dormida a mitad, y seguramente lo necesitaba.",
    ),
    (
        "Pain in my lower back was loud; I practised lying down.",
        "El dolor de espalda era fuerte; practiqué tumbada.",
    ),
    (
        "Noticed the birds outside for the first time in weeks.",
        "Por primera vez en semanas me fijé en los pájaros.",
    ),
    (
        "Felt restless and worried afterwards.",
        "Después me sentí inquieta y preocupada.",
    ),
];

/// A small deterministic generator, so every demo clinic gets the same histories.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

/// One patient's practice pattern.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    Regular,
    Uneven,
    LapseAndReturn,
    Occasional,
}

pub(crate) async fn seed(
    store: &dyn Store,
    clinic: &DemoClinic,
    now: Timestamp,
) -> Result<(), AppError> {
    let Some((_, _, members)) = clinic.cohorts.first() else {
        return Ok(());
    };
    for (index, patient) in members.iter().enumerate() {
        let view = program::program_of(store, now, *patient).await?;
        let plan = plan_of(store, &view).await?;
        let pattern = match index % 4 {
            0 => Pattern::Regular,
            1 => Pattern::Uneven,
            2 => Pattern::LapseAndReturn,
            _ => Pattern::Occasional,
        };
        let spanish = store.get_patient(*patient).await?.language.primary() == "es";
        for entry in history(&plan, *patient, pattern, index, now, spanish) {
            store.add_practice_entry(&entry).await?;
        }
    }
    Ok(())
}

fn history(
    plan: &PracticePlan,
    patient: PatientId,
    pattern: Pattern,
    index: usize,
    now: Timestamp,
    spanish: bool,
) -> Vec<PracticeEntry> {
    let today = now.to_zoned_datetime(plan.zone.clone()).date();
    let Some(first) = plan.first_day() else {
        return Vec::new();
    };
    let mut sequence = Sequence(0x5eed_0000 + index as u64);
    let rising_distress = index == 1;
    let mut entries = Vec::new();
    let mut day = first;
    while day < today {
        let offset = (day - first).get_days();
        if practises(pattern, offset, &mut sequence) {
            let week = plan.week_on(day);
            let daily = week.map_or(20, |week| week.assignment.daily_minutes);
            let practice = week
                .and_then(|week| {
                    let practices = &week.assignment.practices;
                    practices.get(
                        usize::try_from(sequence.next(practices.len() as u64)).unwrap_or_default(),
                    )
                })
                .copied()
                .unwrap_or(Practice::BodyScan);
            let minutes = minutes_for(pattern, daily, &mut sequence);
            entries.push(entry(
                patient,
                day,
                practice,
                minutes,
                &mut sequence,
                rising_distress,
                spanish,
                now,
            ));
        }
        day = day.saturating_add(jiff::Span::new().days(1));
    }
    entries
}

/// Whether the patient practised on the day `offset` days after their first class.
fn practises(pattern: Pattern, offset: i32, sequence: &mut Sequence) -> bool {
    match pattern {
        Pattern::Regular => sequence.next(7) < 6,
        Pattern::Uneven => (offset / 7) % 2 == 0 && sequence.next(3) < 2 || sequence.next(5) == 0,
        Pattern::LapseAndReturn => !(10..20).contains(&offset) && sequence.next(4) < 3,
        Pattern::Occasional => sequence.next(7) < 2,
    }
}

fn minutes_for(pattern: Pattern, daily: u32, sequence: &mut Sequence) -> u32 {
    let daily = u64::from(daily.max(5));
    let minutes = match pattern {
        Pattern::Regular => daily - daily / 5 + sequence.next(daily / 5 + 1),
        Pattern::Uneven | Pattern::LapseAndReturn => daily / 3 + sequence.next(daily / 2 + 1),
        Pattern::Occasional => 5 + sequence.next(10),
    };
    u32::try_from(minutes).unwrap_or(20)
}

#[allow(clippy::too_many_arguments)] // One synthetic entry's facts.
fn entry(
    patient: PatientId,
    day: Date,
    practice: Practice,
    minutes: u32,
    sequence: &mut Sequence,
    rising_distress: bool,
    spanish: bool,
    now: Timestamp,
) -> PracticeEntry {
    let rated = rising_distress || sequence.next(3) == 0;
    let before = u8::try_from(2 + sequence.next(5)).unwrap_or(4);
    let after = if rising_distress {
        before + 2
    } else {
        before.saturating_sub(u8::try_from(sequence.next(3)).unwrap_or(1))
    };
    // The last note is about worry after practice, so only the patient whose stress rises has it.
    let ordinary = NOTES.len() as u64 - 1;
    let note = NOTES[usize::try_from(sequence.next(ordinary)).unwrap_or_default()];
    let noticed = if rising_distress { NOTES[5] } else { note };
    let with_note = rising_distress || sequence.next(4) == 0;
    let source = if sequence.next(3) == 0 {
        EntrySource::Timer
    } else {
        EntrySource::Manual
    };
    PracticeEntry {
        id: PracticeEntryId::from_uuid(crate::random::new_uuid()),
        patient,
        practiced_on: day,
        kind: if source == EntrySource::Timer {
            PracticeKind::Unguided
        } else {
            PracticeKind::Formal(practice)
        },
        source,
        recording: None,
        seconds: minutes * 60,
        segments: None,
        distress_before: rated.then(|| DistressRating::new(before).ok()).flatten(),
        distress_after: rated
            .then(|| DistressRating::new(after.min(10)).ok())
            .flatten(),
        noticed: if with_note {
            (if spanish { noticed.1 } else { noticed.0 }).to_owned()
        } else {
            String::new()
        },
        shared: rising_distress || (with_note && sequence.next(2) == 0),
        created_at: now,
        updated_at: now,
    }
}
