//! MBSR curricula: the plan of each session (theme, timed agenda blocks, formal practices, the
//! week's home-practice assignment and reflective prompts), versioned and in several languages.
//!
//! The structure (sessions, block kinds and minutes, practices, daily minutes) is shared by every
//! language; only the text differs. A curriculum is read from one TOML document per language, and
//! the documents of one curriculum must agree on the structure. A published version never changes:
//! a cohort keeps the version it started with, and an edit makes a new version.

mod document;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::schedule::{CLASS_COUNT, SessionKind};
use crate::{InvalidValue, Language};

pub use document::{DocumentError, parse_documents};

/// The maximum length of a title or theme, in characters, so it fits a heading on a phone.
pub const MAX_TITLE_CHARS: usize = 80;
/// The maximum length of a paragraph (summary, intention, guidance, prompt), in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// The maximum length of one session (the all-day retreat), in minutes.
pub const MAX_SESSION_MINUTES: u32 = 600;
/// The maximum formal practice a day that an assignment may ask for, in minutes.
pub const MAX_DAILY_MINUTES: u32 = 120;
/// The maximum number of reflective prompts in one week.
pub const MAX_PROMPTS: usize = 6;
/// The maximum number of agenda blocks in one session.
pub const MAX_BLOCKS: usize = 40;

/// A curriculum's stable identifier: lower-case letters, digits and hyphens, such as
/// `mbsr-online`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurriculumId(String);

impl CurriculumId {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let text = text.trim();
        let well_formed = (3..=60).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        if well_formed {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidValue::new(
                "curriculum_id",
                format!(
                    "'{text}' is not a curriculum id; use 3 to 60 lower-case letters, digits and hyphens, such as 'mbsr-online'"
                ),
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CurriculumId {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<CurriculumId> for String {
    fn from(id: CurriculumId) -> Self {
        id.0
    }
}

impl fmt::Display for CurriculumId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// The group a curriculum is adapted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adaptation {
    /// The standard 8-week format, delivered live online.
    Standard,
    /// Shorter classes and practices, with pain-aware movement options.
    ChronicPain,
    /// For limited energy or mobility: short practices, seated and lying movement only.
    LimitedEnergy,
}

impl Adaptation {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::ChronicPain => "chronic_pain",
            Self::LimitedEnergy => "limited_energy",
        }
    }
}

/// The kind of one timed part of a session's agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Practice,
    /// Facilitator-led dialogue about what participants noticed.
    Inquiry,
    Teaching,
    Break,
    HomePracticeReview,
}

impl BlockKind {
    pub const ALL: [Self; 5] = [
        Self::Practice,
        Self::Inquiry,
        Self::Teaching,
        Self::Break,
        Self::HomePracticeReview,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Practice => "practice",
            Self::Inquiry => "inquiry",
            Self::Teaching => "teaching",
            Self::Break => "break",
            Self::HomePracticeReview => "home_practice_review",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                InvalidValue::new(
                    "block_kind",
                    format!(
                        "'{text}' is not an agenda block kind; use practice, inquiry, teaching, break or home_practice_review"
                    ),
                )
            })
    }
}

/// A formal mindfulness practice, the unit of guided recordings and home-practice assignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Practice {
    EatingMeditation,
    BodyScan,
    BreathAwareness,
    SittingMeditation,
    MindfulMovementLying,
    MindfulMovementSeated,
    MindfulMovementStanding,
    WalkingMeditation,
    /// A short (about three-minute) pause to check in with the breath and body.
    BreathingSpace,
    LovingKindness,
    ChoicelessAwareness,
}

impl Practice {
    pub const ALL: [Self; 11] = [
        Self::EatingMeditation,
        Self::BodyScan,
        Self::BreathAwareness,
        Self::SittingMeditation,
        Self::MindfulMovementLying,
        Self::MindfulMovementSeated,
        Self::MindfulMovementStanding,
        Self::WalkingMeditation,
        Self::BreathingSpace,
        Self::LovingKindness,
        Self::ChoicelessAwareness,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EatingMeditation => "eating_meditation",
            Self::BodyScan => "body_scan",
            Self::BreathAwareness => "breath_awareness",
            Self::SittingMeditation => "sitting_meditation",
            Self::MindfulMovementLying => "mindful_movement_lying",
            Self::MindfulMovementSeated => "mindful_movement_seated",
            Self::MindfulMovementStanding => "mindful_movement_standing",
            Self::WalkingMeditation => "walking_meditation",
            Self::BreathingSpace => "breathing_space",
            Self::LovingKindness => "loving_kindness",
            Self::ChoicelessAwareness => "choiceless_awareness",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|practice| practice.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|practice| practice.as_str()).collect();
                InvalidValue::new(
                    "practice",
                    format!(
                        "'{text}' is not a practice; use one of {}",
                        known.join(", ")
                    ),
                )
            })
    }
}

/// Text in each of a curriculum's languages.
pub type LocalizedText = BTreeMap<Language, String>;

/// One timed part of a session's agenda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaBlock {
    pub kind: BlockKind,
    pub minutes: u32,
    /// The practice led in this block; set exactly when `kind` is `Practice`.
    pub practice: Option<Practice>,
    pub title: LocalizedText,
    /// Plain guidance for the facilitator.
    pub guidance: LocalizedText,
}

/// The home practice assigned after a session, until the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomePractice {
    pub daily_minutes: u32,
    pub days_per_week: u32,
    pub practices: Vec<Practice>,
    /// One informal practice for the week, such as eating one meal mindfully.
    pub informal: LocalizedText,
    /// Reflective prompts for the practice diary.
    pub prompts: Vec<LocalizedText>,
}

/// The plan of one session: what it is for, its agenda and what follows it at home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPlan {
    pub kind: SessionKind,
    pub theme: LocalizedText,
    pub intention: LocalizedText,
    pub blocks: Vec<AgendaBlock>,
    pub home_practice: Option<HomePractice>,
}

impl SessionPlan {
    #[must_use]
    pub fn minutes(&self) -> u32 {
        self.blocks.iter().map(|block| block.minutes).sum()
    }

    /// Returns the session's place for error messages, such as `week 3` or `orientation`.
    #[must_use]
    pub fn label(&self) -> String {
        match self.kind {
            SessionKind::Orientation => "orientation".to_owned(),
            SessionKind::Class { week } => format!("week {week}"),
            SessionKind::Retreat => "retreat".to_owned(),
        }
    }
}

/// One version of a curriculum, with the text of every language it is written in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Curriculum {
    pub id: CurriculumId,
    pub version: u32,
    pub adaptation: Adaptation,
    pub orientation_minutes: u32,
    pub class_minutes: u32,
    pub retreat_minutes: u32,
    pub title: LocalizedText,
    pub summary: LocalizedText,
    /// The public sources the structure follows, in each language.
    pub sources: LocalizedText,
    /// The orientation, the eight classes and the retreat, in program order.
    pub sessions: Vec<SessionPlan>,
}

impl Curriculum {
    /// Returns the languages the curriculum is written in.
    #[must_use]
    pub fn languages(&self) -> Vec<Language> {
        self.title.keys().cloned().collect()
    }

    /// Text in `language`, or in the first language the curriculum has when it lacks that one.
    #[must_use]
    pub fn text<'a>(&self, text: &'a LocalizedText, language: &Language) -> &'a str {
        text.get(language)
            .or_else(|| {
                text.iter()
                    .find(|(candidate, _)| candidate.primary() == language.primary())
                    .map(|(_, value)| value)
            })
            .or_else(|| text.values().next())
            .map_or("", String::as_str)
    }

    /// Returns the language whose text [`Self::text`] shows for `language`.
    #[must_use]
    pub fn shown_language(&self, language: &Language) -> Language {
        let languages = self.languages();
        languages
            .iter()
            .find(|candidate| *candidate == language)
            .or_else(|| {
                languages
                    .iter()
                    .find(|candidate| candidate.primary() == language.primary())
            })
            .or_else(|| languages.first())
            .cloned()
            .unwrap_or_else(Language::english)
    }

    /// Returns the plan of a session of the schedule.
    #[must_use]
    pub fn session(&self, kind: SessionKind) -> Option<&SessionPlan> {
        self.sessions.iter().find(|plan| plan.kind == kind)
    }

    /// Returns the home practice that applies in `week` (1 to 8): the assignment of that week's
    /// class.
    #[must_use]
    pub fn home_practice(&self, week: u8) -> Option<&HomePractice> {
        self.session(SessionKind::Class { week })
            .and_then(|plan| plan.home_practice.as_ref())
    }

    /// Checks every rule a curriculum must meet before a cohort can use it.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let languages = self.languages();
        if languages.is_empty() {
            return Err(InvalidValue::new(
                "language",
                "the curriculum has no language; write its text in at least one language",
            ));
        }
        if self.version == 0 {
            return Err(InvalidValue::new(
                "version",
                "the version is 0; versions start at 1",
            ));
        }
        for (field, minutes) in [
            ("orientation_minutes", self.orientation_minutes),
            ("class_minutes", self.class_minutes),
            ("retreat_minutes", self.retreat_minutes),
        ] {
            if minutes == 0 || minutes > MAX_SESSION_MINUTES {
                return Err(InvalidValue::new(
                    field,
                    format!(
                        "{minutes} minutes is outside 1 to {MAX_SESSION_MINUTES}; enter the session's length"
                    ),
                ));
            }
        }
        check_text(
            &languages,
            "title",
            "curriculum",
            &self.title,
            MAX_TITLE_CHARS,
        )?;
        check_text(
            &languages,
            "summary",
            "curriculum",
            &self.summary,
            MAX_TEXT_CHARS,
        )?;
        check_text(
            &languages,
            "sources",
            "curriculum",
            &self.sources,
            MAX_TEXT_CHARS,
        )?;
        check_session_order(&self.sessions)?;
        for plan in &self.sessions {
            self.check_session(&languages, plan)?;
        }
        Ok(())
    }

    fn check_session(
        &self,
        languages: &[Language],
        plan: &SessionPlan,
    ) -> Result<(), InvalidValue> {
        let place = plan.label();
        check_text(languages, "theme", &place, &plan.theme, MAX_TITLE_CHARS)?;
        check_text(
            languages,
            "intention",
            &place,
            &plan.intention,
            MAX_TEXT_CHARS,
        )?;
        if plan.blocks.is_empty() || plan.blocks.len() > MAX_BLOCKS {
            return Err(InvalidValue::new(
                "blocks",
                format!(
                    "{place} has {} agenda blocks; keep 1 to {MAX_BLOCKS}",
                    plan.blocks.len()
                ),
            ));
        }
        for (index, block) in plan.blocks.iter().enumerate() {
            check_block(languages, &format!("{place}, block {}", index + 1), block)?;
        }

        let expected = match plan.kind {
            SessionKind::Orientation => ("orientation_minutes", self.orientation_minutes),
            SessionKind::Class { .. } => ("class_minutes", self.class_minutes),
            SessionKind::Retreat => ("retreat_minutes", self.retreat_minutes),
        };
        if plan.minutes() != expected.1 {
            return Err(InvalidValue::new(
                "minutes",
                format!(
                    "the blocks of {place} add up to {} minutes but {} is {}; change the blocks' minutes so they add up",
                    plan.minutes(),
                    expected.0,
                    expected.1
                ),
            ));
        }

        self.check_agenda_shape(plan)?;
        match (plan.kind, &plan.home_practice) {
            (SessionKind::Class { .. }, None) => Err(InvalidValue::new(
                "home_practice",
                format!("{place} has no home practice; every class assigns practice for the week"),
            )),
            (SessionKind::Retreat, Some(_)) => Err(InvalidValue::new(
                "home_practice",
                "the retreat assigns no home practice; the week's class does",
            )),
            (_, Some(home)) => check_home_practice(languages, &place, home),
            (_, None) => Ok(()),
        }
    }
}

impl Curriculum {
    /// Checks what every class's agenda must contain: a formal practice and an inquiry, and from
    /// week 2 on a review of the week's home practice. A curriculum for limited energy or mobility
    /// uses no standing or walking practice.
    fn check_agenda_shape(&self, plan: &SessionPlan) -> Result<(), InvalidValue> {
        let place = plan.label();
        let has = |kind: BlockKind| plan.blocks.iter().any(|block| block.kind == kind);
        if let SessionKind::Class { week } = plan.kind {
            if !has(BlockKind::Practice) || !has(BlockKind::Inquiry) {
                return Err(InvalidValue::new(
                    "blocks",
                    format!("{place} needs at least one practice block and one inquiry block"),
                ));
            }
            if week >= 2 && !has(BlockKind::HomePracticeReview) {
                return Err(InvalidValue::new(
                    "blocks",
                    format!(
                        "{place} needs a home practice review block, because the group practised at home since the last class"
                    ),
                ));
            }
        }
        if self.adaptation == Adaptation::LimitedEnergy {
            let standing = [
                Practice::MindfulMovementStanding,
                Practice::WalkingMeditation,
            ];
            let in_blocks = plan.blocks.iter().any(|block| {
                block
                    .practice
                    .is_some_and(|practice| standing.contains(&practice))
            });
            let at_home = plan.home_practice.as_ref().is_some_and(|home| {
                home.practices
                    .iter()
                    .any(|practice| standing.contains(practice))
            });
            if in_blocks || at_home {
                return Err(InvalidValue::new(
                    "practice",
                    format!(
                        "{place} uses a standing or walking practice, which a curriculum for limited energy or mobility leaves out; choose a seated or lying practice"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checks that the sessions are the orientation, the classes of weeks 1 to 8 in order, and one
/// retreat after week 5 or week 6 and before week 7.
fn check_session_order(sessions: &[SessionPlan]) -> Result<(), InvalidValue> {
    let kinds: Vec<SessionKind> = sessions.iter().map(|plan| plan.kind).collect();
    let classes: Vec<u8> = kinds
        .iter()
        .filter_map(|kind| match kind {
            SessionKind::Class { week } => Some(*week),
            _ => None,
        })
        .collect();
    let retreat_at = kinds.iter().position(|kind| *kind == SessionKind::Retreat);
    let week = |week: u8| {
        kinds
            .iter()
            .position(|kind| *kind == SessionKind::Class { week })
    };
    let retreat_placed = match (retreat_at, week(5), week(7)) {
        (Some(retreat), Some(five), Some(seven)) => retreat > five && retreat < seven,
        _ => false,
    };
    let in_order = kinds.first() == Some(&SessionKind::Orientation)
        && classes == (1..=CLASS_COUNT).collect::<Vec<u8>>()
        && kinds.len() == usize::from(CLASS_COUNT) + 2
        && retreat_placed;
    if in_order {
        Ok(())
    } else {
        Err(InvalidValue::new(
            "sessions",
            "the sessions must be the orientation, the classes of weeks 1 to 8 in order, and one retreat after week 5 or 6 and before week 7",
        ))
    }
}

fn check_block(
    languages: &[Language],
    place: &str,
    block: &AgendaBlock,
) -> Result<(), InvalidValue> {
    if block.minutes == 0 || block.minutes > MAX_SESSION_MINUTES {
        return Err(InvalidValue::new(
            "minutes",
            format!(
                "{place} lasts {} minutes; enter 1 to {MAX_SESSION_MINUTES}",
                block.minutes
            ),
        ));
    }
    match (block.kind, block.practice) {
        (BlockKind::Practice, None) => {
            return Err(InvalidValue::new(
                "practice",
                format!("{place} is a practice block without a practice; choose the practice"),
            ));
        }
        (kind, Some(_)) if kind != BlockKind::Practice => {
            return Err(InvalidValue::new(
                "practice",
                format!(
                    "{place} is not a practice block, so it names no practice; remove it or make the block a practice"
                ),
            ));
        }
        _ => {}
    }
    check_text(languages, "title", place, &block.title, MAX_TITLE_CHARS)?;
    check_text(
        languages,
        "guidance",
        place,
        &block.guidance,
        MAX_TEXT_CHARS,
    )
}

fn check_home_practice(
    languages: &[Language],
    place: &str,
    home: &HomePractice,
) -> Result<(), InvalidValue> {
    if home.daily_minutes == 0 || home.daily_minutes > MAX_DAILY_MINUTES {
        return Err(InvalidValue::new(
            "daily_minutes",
            format!(
                "{place}: {} daily minutes is outside 1 to {MAX_DAILY_MINUTES}; enter the formal practice minutes a day",
                home.daily_minutes
            ),
        ));
    }
    if !(1..=7).contains(&home.days_per_week) {
        return Err(InvalidValue::new(
            "days_per_week",
            format!(
                "{place}: {} days a week is outside 1 to 7",
                home.days_per_week
            ),
        ));
    }
    if home.practices.is_empty() {
        return Err(InvalidValue::new(
            "practices",
            format!("{place}: the home practice names no practice; choose at least one"),
        ));
    }
    if home.prompts.is_empty() || home.prompts.len() > MAX_PROMPTS {
        return Err(InvalidValue::new(
            "prompts",
            format!(
                "{place} has {} reflective prompts; write 1 to {MAX_PROMPTS}",
                home.prompts.len()
            ),
        ));
    }
    check_text(languages, "informal", place, &home.informal, MAX_TEXT_CHARS)?;
    for (index, prompt) in home.prompts.iter().enumerate() {
        check_text(
            languages,
            "prompts",
            &format!("{place}, prompt {}", index + 1),
            prompt,
            MAX_TEXT_CHARS,
        )?;
    }
    Ok(())
}

/// Checks that `text` is written, within `max_chars`, in exactly the curriculum's languages.
fn check_text(
    languages: &[Language],
    field: &'static str,
    place: &str,
    text: &LocalizedText,
    max_chars: usize,
) -> Result<(), InvalidValue> {
    for language in languages {
        let value = text.get(language).map_or("", |value| value.trim());
        if value.is_empty() {
            return Err(InvalidValue::new(
                field,
                format!("{place}: the {field} in '{language}' is empty; write it"),
            ));
        }
        let chars = value.chars().count();
        if chars > max_chars {
            return Err(InvalidValue::new(
                field,
                format!(
                    "{place}: the {field} in '{language}' has {chars} characters; shorten it to {max_chars}"
                ),
            ));
        }
    }
    if let Some(extra) = text.keys().find(|language| !languages.contains(language)) {
        return Err(InvalidValue::new(
            field,
            format!(
                "{place}: the {field} has text in '{extra}', which the curriculum's title lacks; add the title in '{extra}' or remove the text"
            ),
        ));
    }
    Ok(())
}
