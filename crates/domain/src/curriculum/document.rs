//! Reading a curriculum from its TOML documents, one per language, such as
//! `mbsr-online/en.toml` and `mbsr-online/es.toml`.

use serde::Deserialize;

use super::{
    Adaptation, AgendaBlock, BlockKind, Curriculum, CurriculumId, HomePractice, LocalizedText,
    Practice, SessionPlan,
};
use crate::Language;
use crate::schedule::SessionKind;

/// A curriculum document that cannot be read, with the document's name and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{document}: {problem}")]
pub struct DocumentError {
    /// The document's name, such as `mbsr-online/es.toml`.
    pub document: String,
    pub problem: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    id: String,
    version: u32,
    language: String,
    title: String,
    summary: String,
    adaptation: Adaptation,
    orientation_minutes: u32,
    class_minutes: u32,
    retreat_minutes: u32,
    sources: String,
    sessions: Vec<DocumentSession>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentSession {
    kind: String,
    week: Option<u8>,
    theme: String,
    intention: String,
    blocks: Vec<DocumentBlock>,
    home_practice: Option<DocumentHomePractice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentBlock {
    kind: BlockKind,
    minutes: u32,
    title: String,
    guidance: String,
    practice: Option<Practice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentHomePractice {
    daily_minutes: u32,
    days_per_week: u32,
    practices: Vec<Practice>,
    informal: String,
    prompts: Vec<String>,
}

/// Reads the documents of one curriculum, given as (name, TOML text), merges their text, and
/// checks that they agree on the structure and that the result is a valid curriculum.
pub fn parse_documents(documents: &[(String, String)]) -> Result<Curriculum, DocumentError> {
    let mut curriculum: Option<Curriculum> = None;
    for (name, text) in documents {
        let error = |problem: String| DocumentError {
            document: name.clone(),
            problem,
        };
        let document: Document = toml::from_str(text).map_err(|parse| error(parse.to_string()))?;
        let language =
            Language::parse(&document.language).map_err(|invalid| error(invalid.to_string()))?;
        let single = document_curriculum(document, &language).map_err(error)?;
        curriculum = Some(match curriculum {
            None => single,
            Some(mut merged) => {
                merge(&mut merged, single, &language).map_err(error)?;
                merged
            }
        });
    }

    let curriculum = curriculum.ok_or_else(|| DocumentError {
        document: "curriculum".to_owned(),
        problem: "no documents were given".to_owned(),
    })?;
    curriculum.validate().map_err(|invalid| DocumentError {
        document: documents
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        problem: invalid.to_string(),
    })?;
    Ok(curriculum)
}

fn document_curriculum(document: Document, language: &Language) -> Result<Curriculum, String> {
    let text = |value: String| LocalizedText::from([(language.clone(), value)]);
    let sessions = document
        .sessions
        .into_iter()
        .map(|session| document_session(session, language))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Curriculum {
        id: CurriculumId::parse(&document.id).map_err(|invalid| invalid.to_string())?,
        version: document.version,
        adaptation: document.adaptation,
        orientation_minutes: document.orientation_minutes,
        class_minutes: document.class_minutes,
        retreat_minutes: document.retreat_minutes,
        title: text(document.title),
        summary: text(document.summary),
        sources: text(document.sources),
        sessions,
    })
}

fn document_session(session: DocumentSession, language: &Language) -> Result<SessionPlan, String> {
    let text = |value: String| LocalizedText::from([(language.clone(), value)]);
    let kind = match (session.kind.as_str(), session.week) {
        ("orientation", None) => SessionKind::Orientation,
        ("retreat", None) => SessionKind::Retreat,
        ("class", Some(week)) => SessionKind::Class { week },
        ("class", None) => return Err("a class session has no week; add week = 1 to 8".to_owned()),
        (other, _) => {
            return Err(format!(
                "session kind '{other}' with week {:?} is not valid; use orientation or retreat without a week, or class with a week",
                session.week
            ));
        }
    };
    let blocks = session
        .blocks
        .into_iter()
        .map(|block| AgendaBlock {
            kind: block.kind,
            minutes: block.minutes,
            practice: block.practice,
            title: text(block.title),
            guidance: text(block.guidance),
        })
        .collect();
    let home_practice = session.home_practice.map(|home| HomePractice {
        daily_minutes: home.daily_minutes,
        days_per_week: home.days_per_week,
        practices: home.practices,
        informal: text(home.informal),
        prompts: home.prompts.into_iter().map(text).collect(),
    });
    Ok(SessionPlan {
        kind,
        theme: text(session.theme),
        intention: text(session.intention),
        blocks,
        home_practice,
    })
}

/// Adds the text of `other`, written in `language`, to `merged` after checking that both have
/// the same structure.
fn merge(merged: &mut Curriculum, other: Curriculum, language: &Language) -> Result<(), String> {
    if merged.title.contains_key(language) {
        return Err(format!("a second document is written in '{language}'"));
    }
    let same_header = merged.id == other.id
        && merged.version == other.version
        && merged.adaptation == other.adaptation
        && merged.orientation_minutes == other.orientation_minutes
        && merged.class_minutes == other.class_minutes
        && merged.retreat_minutes == other.retreat_minutes
        && merged.sessions.len() == other.sessions.len();
    if !same_header {
        return Err("the id, version, adaptation, session lengths or number of sessions differ from the other language; make them equal".to_owned());
    }
    add_text(&mut merged.title, other.title);
    add_text(&mut merged.summary, other.summary);
    add_text(&mut merged.sources, other.sources);

    for (plan, other_plan) in merged.sessions.iter_mut().zip(other.sessions) {
        let place = plan.label();
        let same_shape = plan.kind == other_plan.kind
            && plan.blocks.len() == other_plan.blocks.len()
            && plan.blocks.iter().zip(&other_plan.blocks).all(|(a, b)| {
                a.kind == b.kind && a.minutes == b.minutes && a.practice == b.practice
            });
        if !same_shape {
            return Err(format!(
                "{place}: the session kind or its blocks' kinds, minutes or practices differ from the other language; make them equal"
            ));
        }
        add_text(&mut plan.theme, other_plan.theme);
        add_text(&mut plan.intention, other_plan.intention);
        for (block, other_block) in plan.blocks.iter_mut().zip(other_plan.blocks) {
            add_text(&mut block.title, other_block.title);
            add_text(&mut block.guidance, other_block.guidance);
        }
        match (&mut plan.home_practice, other_plan.home_practice) {
            (None, None) => {}
            (Some(home), Some(other_home))
                if home.daily_minutes == other_home.daily_minutes
                    && home.days_per_week == other_home.days_per_week
                    && home.practices == other_home.practices
                    && home.prompts.len() == other_home.prompts.len() =>
            {
                add_text(&mut home.informal, other_home.informal);
                for (prompt, other_prompt) in home.prompts.iter_mut().zip(other_home.prompts) {
                    add_text(prompt, other_prompt);
                }
            }
            _ => {
                return Err(format!(
                    "{place}: the home practice differs from the other language in minutes, days, practices or number of prompts; make them equal"
                ));
            }
        }
    }
    Ok(())
}

fn add_text(text: &mut LocalizedText, other: LocalizedText) {
    text.extend(other);
}
