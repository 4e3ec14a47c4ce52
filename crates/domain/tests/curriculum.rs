//! The curriculum rules, checked on generated TOML documents: a valid one parses, and each broken
//! rule is rejected with the field and place it concerns.

use std::fmt::Write as _;

use stillpoint_domain::curriculum::{BlockKind, DocumentError, Practice, parse_documents};
use stillpoint_domain::schedule::SessionKind;

/// Writes a valid curriculum document in `language`: a 60-minute orientation, 90-minute classes and a
/// 180-minute retreat after week 6.
fn document(language: &str, adaptation: &str) -> String {
    let mut text = format!(
        "id = \"test-plan\"\nversion = 1\nlanguage = \"{language}\"\ntitle = \"Plan {language}\"\n\
         summary = \"Summary\"\nadaptation = \"{adaptation}\"\norientation_minutes = 60\n\
         class_minutes = 90\nretreat_minutes = 180\nsources = \"Invented for a test\"\n"
    );
    let block = |kind: &str, minutes: u32, practice: Option<&str>| {
        let practice = practice.map_or(String::new(), |practice| {
            format!("practice = \"{practice}\"\n")
        });
        format!(
            "[[sessions.blocks]]\nkind = \"{kind}\"\nminutes = {minutes}\ntitle = \"{kind} {language}\"\nguidance = \"Guide\"\n{practice}"
        )
    };
    text.push_str(
        "[[sessions]]\nkind = \"orientation\"\ntheme = \"Welcome\"\nintention = \"Meet\"\n",
    );
    text.push_str(&block("teaching", 60, None));
    let mut weeks: Vec<Option<u8>> = (1..=6).map(Some).collect();
    weeks.push(None);
    weeks.extend([Some(7), Some(8)]);
    for week in weeks {
        if let Some(week) = week {
            let _ = write!(
                text,
                "[[sessions]]\nkind = \"class\"\nweek = {week}\ntheme = \"Week {week}\"\nintention = \"Practise\"\n"
            );
            text.push_str(&block("practice", 40, Some("body_scan")));
            text.push_str(&block("inquiry", 20, None));
            text.push_str(&block("break", 10, None));
            text.push_str(&block("home_practice_review", 20, None));
            text.push_str(
                "[sessions.home_practice]\ndaily_minutes = 20\ndays_per_week = 6\npractices = [\"body_scan\"]\n\
                 informal = \"Eat one meal slowly\"\nprompts = [\"What did you notice?\", \"What helped?\"]\n",
            );
        } else {
            text.push_str(
                "[[sessions]]\nkind = \"retreat\"\ntheme = \"Day\"\nintention = \"Rest\"\n",
            );
            text.push_str(&block("practice", 150, Some("sitting_meditation")));
            text.push_str(&block("inquiry", 30, None));
        }
    }
    text
}

fn parse(
    documents: &[(&str, String)],
) -> Result<stillpoint_domain::curriculum::Curriculum, DocumentError> {
    let owned: Vec<(String, String)> = documents
        .iter()
        .map(|(name, text)| ((*name).to_owned(), text.clone()))
        .collect();
    parse_documents(&owned)
}

#[test]
fn valid_documents_merge_their_languages() {
    let curriculum = parse(&[
        ("test-plan/en.toml", document("en", "standard")),
        ("test-plan/es.toml", document("es", "standard")),
    ])
    .expect("valid");
    assert_eq!(curriculum.sessions.len(), 10);
    assert_eq!(curriculum.languages().len(), 2);
    let week_three = curriculum
        .session(SessionKind::Class { week: 3 })
        .expect("week 3");
    assert_eq!(week_three.minutes(), 90);
    assert_eq!(week_three.blocks[0].kind, BlockKind::Practice);
    assert_eq!(week_three.blocks[0].practice, Some(Practice::BodyScan));
    let es = stillpoint_domain::Language::spanish();
    assert_eq!(
        curriculum.text(&week_three.blocks[1].title, &es),
        "inquiry es"
    );
    assert_eq!(curriculum.home_practice(3).expect("home").daily_minutes, 20);
}

/// Each case breaks one rule of an otherwise valid English document.
#[test]
fn broken_rules_are_rejected() {
    let valid = document("en", "standard");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "blocks that do not add up",
            valid.replacen("minutes = 40", "minutes = 45", 1),
            "add up to 95 minutes but class_minutes is 90",
        ),
        (
            "a practice block without a practice",
            valid.replacen("practice = \"body_scan\"\n", "", 1),
            "practice block without a practice",
        ),
        (
            "a class without home practice",
            {
                let start = valid.find("[sessions.home_practice]").expect("home");
                let end = valid[start..].find("[[sessions]]").expect("next") + start;
                format!("{}{}", &valid[..start], &valid[end..])
            },
            "week 1 has no home practice",
        ),
        (
            "a week out of order",
            valid.replacen("week = 2", "week = 9", 1),
            "weeks 1 to 8 in order",
        ),
        (
            "an unknown practice",
            valid.replacen("\"body_scan\"", "\"yoga_nidra\"", 1),
            "yoga_nidra",
        ),
        (
            "an unknown field",
            valid.replacen("sources =", "notes = \"x\"\nsources =", 1),
            "notes",
        ),
        (
            "a class without inquiry",
            valid.replacen(
                "kind = \"inquiry\"\nminutes = 20",
                "kind = \"teaching\"\nminutes = 20",
                1,
            ),
            "one inquiry block",
        ),
        (
            "version 0",
            valid.replacen("version = 1", "version = 0", 1),
            "versions start at 1",
        ),
    ];
    for (case, text, expected) in cases {
        let error = parse(&[("test-plan/en.toml", text)]).expect_err(case);
        assert!(
            error.to_string().contains(expected),
            "{case}: {error} does not mention '{expected}'"
        );
    }
}

#[test]
fn limited_energy_plans_avoid_standing_practice() {
    let text = document("en", "limited_energy").replacen(
        "\"sitting_meditation\"",
        "\"walking_meditation\"",
        1,
    );
    let error = parse(&[("test-plan/en.toml", text)]).expect_err("walking");
    assert!(error.to_string().contains("standing or walking"), "{error}");
    assert!(parse(&[("test-plan/en.toml", document("en", "limited_energy"))]).is_ok());
}

#[test]
fn languages_must_share_the_structure() {
    let spanish = document("es", "standard").replacen("minutes = 20", "minutes = 25", 1);
    let error = parse(&[
        ("test-plan/en.toml", document("en", "standard")),
        ("test-plan/es.toml", spanish),
    ])
    .expect_err("mismatch");
    assert_eq!(error.document, "test-plan/es.toml");
    assert!(error.problem.contains("week 1"), "{error}");

    let twice = parse(&[
        ("test-plan/en.toml", document("en", "standard")),
        ("test-plan/en-copy.toml", document("en", "standard")),
    ])
    .expect_err("same language twice");
    assert!(twice.problem.contains("second document"), "{twice}");
}

#[test]
fn missing_translation_is_rejected_after_merge() {
    let spanish = document("es", "standard").replacen("theme = \"Week 4\"", "theme = \" \"", 1);
    let error = parse(&[
        ("test-plan/en.toml", document("en", "standard")),
        ("test-plan/es.toml", spanish),
    ])
    .expect_err("empty theme");
    assert!(
        error.problem.contains("week 4: the theme in 'es' is empty"),
        "{error}"
    );
}
