//! Every instrument in `content/instruments` loads, and each scores the published test vectors.

// Sums of whole item values are exact in f64, so comparing them exactly is correct.
#![allow(clippy::float_cmp)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use stillpoint_domain::measures::instrument::{Answers, Instrument, LicenceStatus};

fn instruments_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../content/instruments")
}

fn load_all() -> BTreeMap<String, Instrument> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(instruments_dir()).expect("content/instruments exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable file");
        let instrument = Instrument::from_toml(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert_eq!(
            instrument.id.as_str(),
            stem,
            "{}: id must match the file name",
            path.display()
        );
        all.insert(stem.to_owned(), instrument);
    }
    all
}

fn load(id: &str) -> Instrument {
    load_all()
        .remove(id)
        .unwrap_or_else(|| panic!("{id} is shipped"))
}

fn answers(pairs: &[(&str, u8)]) -> Answers {
    pairs
        .iter()
        .map(|(item, value)| ((*item).to_owned(), *value))
        .collect()
}

#[test]
fn every_instrument_loads() {
    let all = load_all();
    assert!(!all.is_empty());
}

#[test]
fn phq9_total_and_item_nine() {
    let phq9 = load("phq-9");
    let form = answers(&[
        ("1", 3),
        ("2", 3),
        ("3", 2),
        ("4", 2),
        ("5", 1),
        ("6", 1),
        ("7", 0),
        ("8", 0),
        ("9", 1),
    ]);
    phq9.check_answers(&form).expect("a complete form is valid");
    let scores = phq9.score(&form);
    let total = scores[0].outcome.as_ref().expect("scored");
    assert_eq!(total.reported, 13.0);
    assert_eq!(total.band.as_deref(), Some("moderate"));
    assert_eq!(phq9.licence.status, LicenceStatus::Free);
}

/// The Jacobson–Truax worked example: SD 6.0, r 0.85, norms M1 18 / SD1 6 and M0 8 / SD0 5,
/// hypothetical values chosen for testing (computed independently in Python).
#[test]
fn reliable_change_worked_example() {
    use stillpoint_domain::measures::change::{ChangeParameters, cutoff, reliable_change};
    use stillpoint_domain::measures::instrument::{Direction, Norms, Source};

    let norms = Norms {
        clinical_mean: 18.0,
        clinical_sd: 6.0,
        functional_mean: Some(8.0),
        functional_sd: Some(5.0),
        cutoff: None,
        source: Source {
            citation: "worked example".into(),
            verified: false,
            note: String::new(),
        },
    };
    let c = cutoff(&norms).expect("functional norms give c");
    assert!((c - 12.545).abs() < 0.001, "{c}");
    let parameters = ChangeParameters {
        sd_pre: 6.0,
        reliability: 0.85,
        cutoff: Some(c),
        direction: Direction::LowerIsBetter,
    };
    assert!((parameters.standard_error_of_difference() - 3.2863).abs() < 0.0001);
    assert!((parameters.minimum_reliable_change() - 6.441).abs() < 0.001);

    let cases = [
        (20.0, 12.0, -2.434, "recovered"),
        (20.0, 15.0, -1.521, "unchanged"),
        (20.0, 27.0, 2.130, "deteriorated"),
        (14.0, 8.0, -1.826, "unchanged"),
    ];
    for (pre, post, rci, category) in cases {
        let change = reliable_change(pre, post, &parameters).expect("valid parameters");
        assert!(
            (change.rci - rci).abs() < 0.001,
            "{pre}->{post}: {}",
            change.rci
        );
        assert_eq!(change.category.code(), category, "{pre}->{post}");
    }
    // 14 → 8 crossed the cut-off without reliable change.
    assert_eq!(
        reliable_change(14.0, 8.0, &parameters)
            .expect("valid")
            .crossed_cutoff,
        Some(true)
    );
    // A pre score already below the cut-off improves but does not recover.
    let below = reliable_change(12.0, 4.0, &parameters).expect("valid");
    assert_eq!(below.category.code(), "improved");
    assert_eq!(below.crossed_cutoff, Some(false));
    // Higher-is-better scales reverse the direction.
    let higher = ChangeParameters {
        direction: Direction::HigherIsBetter,
        cutoff: None,
        ..parameters.clone()
    };
    assert_eq!(
        reliable_change(12.0, 20.0, &higher)
            .expect("valid")
            .category
            .code(),
        "improved"
    );
    assert!(
        reliable_change(
            1.0,
            2.0,
            &ChangeParameters {
                reliability: 1.0,
                ..parameters
            }
        )
        .is_err()
    );
}

#[test]
fn band_boundaries_from_the_published_tables() {
    let cases: [(&str, &[(u8, &str)]); 2] = [
        (
            "phq-9",
            &[
                (0, "minimal"),
                (4, "minimal"),
                (5, "mild"),
                (9, "mild"),
                (10, "moderate"),
                (14, "moderate"),
                (15, "moderately_severe"),
                (19, "moderately_severe"),
                (20, "severe"),
                (27, "severe"),
            ],
        ),
        (
            "gad-7",
            &[
                (0, "minimal"),
                (4, "minimal"),
                (5, "mild"),
                (9, "mild"),
                (10, "moderate"),
                (14, "moderate"),
                (15, "severe"),
                (21, "severe"),
            ],
        ),
    ];
    for (id, boundaries) in cases {
        let instrument = load(id);
        let items: Vec<String> = instrument.scale("total").expect("total").items.clone();
        for (total, band) in boundaries {
            let mut left = *total;
            let form: Answers = items
                .iter()
                .map(|item| {
                    let value = left.min(3);
                    left -= value;
                    (item.clone(), value)
                })
                .collect();
            let score = instrument.score(&form)[0].outcome.clone().expect("scored");
            assert_eq!(score.reported, f64::from(*total), "{id} {total}");
            assert_eq!(score.band.as_deref(), Some(*band), "{id} {total}");
        }
    }
}

#[test]
fn promis_and_global_test_vectors() {
    // PROMIS-29 4-item tables: Sleep 4a raw 12 → 54.3, Fatigue 4a raw 16 → 64.6, Depression 4a
    // raw 4 → 41.0.
    for (id, raw, t_score) in [
        ("promis-sleep-disturbance-4a", 12_u8, 54.3),
        ("promis-fatigue-4a", 16, 64.6),
        ("promis-depression-4a", 4, 41.0),
    ] {
        let instrument = load(id);
        let scale = &instrument.scales[0];
        let rule = instrument.scoring_rule(scale).expect("rule");
        let table = rule.t_scores.as_ref().expect("a T-score table");
        let index = usize::from(raw - 4);
        assert!((table[index] - t_score).abs() < 1e-9, "{id} raw {raw}");
    }

    // Global-10: Q3 3, Q6 4, Q7 pain 5 (recoded 3), Q8 3 → GPH raw 13 → 42.3; Q2 4, Q4 4, Q5 3,
    // Q10 4 → GMH raw 15 → 50.8 (AWELL's PROMIS Global-10 tables).
    let global = load("promis-global-10");
    let ids: Vec<String> = global.items.iter().map(|item| item.id.clone()).collect();
    let values = [3_u8, 4, 3, 4, 3, 4, 5, 3, 3, 4];
    let form: Answers = ids.iter().cloned().zip(values).collect();
    let scores = global.score(&form);
    let reported = |code: &str| {
        scores
            .iter()
            .find(|score| score.scale == code)
            .and_then(|score| score.outcome.as_ref().ok())
            .map(|score| (score.raw, score.reported))
    };
    assert_eq!(reported("global_physical_health"), Some((13.0, 42.3)));
    assert_eq!(reported("global_mental_health"), Some((15.0, 50.8)));

    // A missing item in a summary gives no score, never a partial sum.
    let mut partial = form.clone();
    partial.remove(&ids[2]);
    let partial_scores = global.score(&partial);
    assert!(
        partial_scores
            .iter()
            .any(|score| score.scale == "global_physical_health" && score.outcome.is_err())
    );
}

#[test]
fn safety_rules_fire_by_level() {
    use stillpoint_domain::measures::safety::{AlertLevel, ScoreThreshold, evaluate};

    let phq9 = load("phq-9");
    let quiet = answers(&[
        ("1", 3),
        ("2", 3),
        ("3", 3),
        ("4", 3),
        ("5", 3),
        ("6", 3),
        ("7", 3),
        ("8", 3),
        ("9", 0),
    ]);
    let scores = phq9.score(&quiet);
    assert_eq!(
        evaluate(&phq9, &quiet, &scores, &[]),
        None,
        "item 9 at 0 fires nothing"
    );

    // A site threshold on a very high total fires on its own.
    let threshold = ScoreThreshold {
        instrument: "phq-9".into(),
        scale: "total".into(),
        at_least: 20.0,
        level: AlertLevel::Moderate,
    };
    let trigger =
        evaluate(&phq9, &quiet, &scores, std::slice::from_ref(&threshold)).expect("fires");
    assert_eq!(trigger.level, AlertLevel::Moderate);

    let mut item9 = quiet.clone();
    item9.insert("9".into(), 1);
    let trigger = evaluate(&phq9, &item9, &phq9.score(&item9), &[threshold]).expect("fires");
    assert_eq!(trigger.level, AlertLevel::High);
    assert!(trigger.rules.contains(&"phq9_item9".to_owned()));

    // C-SSRS screener: intent (Q4) or recent behaviour is high risk (Columbia triage).
    let cssrs = load("cssrs-screener");
    let yes_to = |items: &[&str]| -> Answers {
        cssrs
            .items
            .iter()
            .filter(|item| item.asked_if.is_none() || items.contains(&item.id.as_str()))
            .map(|item| (item.id.clone(), u8::from(items.contains(&item.id.as_str()))))
            .collect()
    };
    let level = |form: &Answers| evaluate(&cssrs, form, &[], &[]).map(|trigger| trigger.level);
    assert_eq!(level(&yes_to(&[])), None);
    assert_eq!(level(&yes_to(&["1"])), Some(AlertLevel::Low));
    assert_eq!(level(&yes_to(&["1", "2", "4"])), Some(AlertLevel::High));
    assert_eq!(level(&yes_to(&["6", "6_recent"])), Some(AlertLevel::High));
}

#[test]
fn shipped_licence_status() {
    let all = load_all();
    let free = [
        "phq-9",
        "phq-8",
        "phq-2",
        "gad-7",
        "gad-2",
        "peg-3",
        "pain-rating",
        "fatigue-rating",
        "sleep-quality-rating",
        "semcd-6",
        "cssrs-screener",
        "daily-mood",
    ];
    let licensed = [
        "pss-10",
        "who-5",
        "promis-sleep-disturbance-4a",
        "promis-fatigue-4a",
        "promis-pain-interference-4a",
        "promis-anxiety-4a",
        "promis-depression-4a",
        "promis-global-10",
        "ffmq-15",
    ];
    for id in free {
        assert_eq!(
            all.get(id).map(|i| i.licence.status),
            Some(LicenceStatus::Free),
            "{id}"
        );
    }
    for id in licensed {
        let instrument = all.get(id).unwrap_or_else(|| panic!("{id} ships"));
        assert_eq!(
            instrument.licence.status,
            LicenceStatus::PermissionRequired,
            "{id}"
        );
        assert!(
            instrument.item_languages().is_empty(),
            "{id} ships no item text"
        );
    }
    for id in ["phq-9", "phq-8", "phq-2", "gad-7", "gad-2"] {
        let languages: Vec<String> = all[id]
            .item_languages()
            .iter()
            .map(|l| l.as_str().to_owned())
            .collect();
        assert_eq!(languages, ["en", "es"], "{id}");
    }
}

/// A small deterministic generator (SplitMix64) so the property test needs no extra crate.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every scale of every shipped instrument stays within its declared range for 2,000 random
/// forms each, complete or with gaps, and a scored form's band is one of the scale's bands.
#[test]
fn every_score_stays_in_range() {
    let mut state = 2026_u64;
    for instrument in load_all().values() {
        for _ in 0..2_000 {
            let mut form = Answers::new();
            for item in &instrument.items {
                let options = &instrument
                    .option_set(&item.options)
                    .expect("options")
                    .options;
                // About one item in eight is left unanswered.
                if next(&mut state).is_multiple_of(8) {
                    continue;
                }
                let pick = usize::try_from(next(&mut state) % options.len() as u64).expect("index");
                form.insert(item.id.clone(), options[pick].value);
            }
            instrument
                .check_values(&form)
                .expect("generated answers are options");
            for score in instrument.score(&form) {
                let Ok(value) = score.outcome else {
                    continue;
                };
                let scale = instrument.scale(&score.scale).expect("scale");
                let [low, high] = scale.range;
                assert!(
                    value.reported >= low && value.reported <= high,
                    "{} {}: {} outside {low}..{high}",
                    instrument.id,
                    scale.code,
                    value.reported
                );
                if let Some(band) = &value.band {
                    assert!(scale.bands.iter().any(|b| &b.code == band), "{band}");
                } else {
                    assert!(
                        scale.bands.is_empty(),
                        "{} {}: {} fell between bands",
                        instrument.id,
                        scale.code,
                        value.reported
                    );
                }
            }
        }
    }
}

/// Sleep Disturbance 4a through the scoring rule: two positively worded items are reverse-keyed
/// by PROMIS item id, so answering 5 on every item gives 5 + 5 + 1 + 1 = 12, whose T-score in
/// the PROMIS-29 table is 54.3.
#[test]
fn promis_sleep_reverse_keying_scores() {
    let sleep = load("promis-sleep-disturbance-4a");
    let scale = &sleep.scales[0];
    assert_eq!(scale.reverse_keyed.len(), 2, "{:?}", scale.reverse_keyed);
    let form: Answers = sleep
        .items
        .iter()
        .map(|item| (item.id.clone(), 5))
        .collect();
    let score = sleep.score(&form)[0].outcome.clone().expect("scored");
    assert_eq!(score.raw, 12.0);
    assert!((score.reported - 54.3).abs() < 1e-9, "{}", score.reported);
}

/// Without norms, the PHQ-9's change uses the clinic's baseline SD once 15 baselines exist, and
/// the published cut-off of 10 decides recovery.
#[test]
fn clinic_baselines_stand_in_for_norms() {
    use stillpoint_domain::measures::change::{ChangeParameters, SdSource, reliable_change};

    let phq9 = load("phq-9");
    let scale = phq9.scale("total").expect("total");
    let few: Vec<f64> = (0..14).map(|n| f64::from(8 + n % 10)).collect();
    assert!(ChangeParameters::for_scale(scale, &few).is_none());

    let enough: Vec<f64> = (0..24).map(|n| f64::from(8 + n % 10)).collect();
    let (parameters, source) = ChangeParameters::for_scale(scale, &enough).expect("parameters");
    assert_eq!(source, SdSource::ClinicBaselines { count: 24 });
    assert_eq!(parameters.cutoff, Some(10.0));
    // The sample SD of 8..17 repeated is about 2.9; with alpha 0.89 a drop from 16 to 6 is
    // reliable and ends below the cut-off.
    assert!(
        (parameters.sd_pre - 2.9).abs() < 0.1,
        "{}",
        parameters.sd_pre
    );
    let change = reliable_change(16.0, 6.0, &parameters).expect("valid");
    assert_eq!(change.category.code(), "recovered");
}
