//! The curriculum library: every curriculum and version, a version's session plans, and the
//! administrators' editor for copies and drafts.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::curricula::{
    self, BlockEdit, CopyRequest, DetailsEdit, DraftRef, HomePracticeEdit, SessionEdit,
};
use stillpoint_app::ports::{CurriculumStatus, StoredCurriculum};
use stillpoint_domain::curriculum::{
    BlockKind, Curriculum, CurriculumId, MAX_BLOCKS, MAX_PROMPTS, Practice, SessionPlan,
};
use stillpoint_domain::schedule::SessionKind;
use stillpoint_domain::{InvalidValue, Language, Role, SiteId};

use super::cohorts::session_name;
use super::fields::Fields;
use super::{Layout, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::viewer::SignedIn;

/// Empty agenda rows the session editor adds for new blocks.
const NEW_BLOCK_ROWS: usize = 2;

/// One agenda block, ready to show.
#[derive(Debug, Clone)]
pub struct BlockView {
    pub kind: String,
    pub minutes: u32,
    pub title: String,
    pub guidance: String,
    pub practice: String,
}

/// A week's home practice, ready to show.
#[derive(Debug, Clone)]
pub struct HomeView {
    pub summary: String,
    pub practices: String,
    pub informal: String,
    pub prompts: Vec<String>,
}

/// The reader of a session plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Facilitators and administrators, who see the agenda with its guidance.
    Staff,
    /// Patients, who see the theme, what the session is for and the home practice.
    Patient,
}

/// A session plan, ready to show.
#[derive(Debug, Clone)]
pub struct PlanView {
    /// The level of the theme's heading (2 for `h2`); the plan's sections use the next level.
    pub level: u8,
    pub theme: String,
    pub intention: String,
    pub blocks: Vec<BlockView>,
    pub home: Option<HomeView>,
}

/// Returns the name of a practice in the reader's language.
#[must_use]
pub fn practice_name(tr: &Translator, practice: Practice) -> String {
    tr.t(&format!("practice-{}", practice.as_str().replace('_', "-")))
}

/// Builds the view of `plan` with text in `language` (or the curriculum's first language).
#[must_use]
pub fn plan_view(
    tr: &Translator,
    curriculum: &Curriculum,
    plan: &SessionPlan,
    language: &Language,
    audience: Audience,
) -> PlanView {
    let text = |value| curriculum.text(value, language).to_owned();
    let blocks: &[stillpoint_domain::curriculum::AgendaBlock] = match audience {
        Audience::Staff => &plan.blocks,
        Audience::Patient => &[],
    };
    PlanView {
        level: match audience {
            Audience::Staff => 2,
            Audience::Patient => 3,
        },
        theme: text(&plan.theme),
        intention: text(&plan.intention),
        blocks: blocks
            .iter()
            .map(|block| BlockView {
                kind: tr.t(&format!("block-{}", block.kind.as_str().replace('_', "-"))),
                minutes: block.minutes,
                title: text(&block.title),
                guidance: text(&block.guidance),
                practice: block
                    .practice
                    .map(|practice| practice_name(tr, practice))
                    .unwrap_or_default(),
            })
            .collect(),
        home: plan.home_practice.as_ref().map(|home| {
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("minutes", home.daily_minutes.to_string());
            args.set("days", home.days_per_week.to_string());
            HomeView {
                summary: tr.t_args("plan-daily", &args),
                practices: home
                    .practices
                    .iter()
                    .map(|practice| practice_name(tr, *practice))
                    .collect::<Vec<_>>()
                    .join(", "),
                informal: text(&home.informal),
                prompts: home.prompts.iter().map(text).collect(),
            }
        }),
    }
}

/// One curriculum of the library with its versions.
#[derive(Debug)]
pub struct LibraryRow {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub shipped: bool,
    /// (href, label) of each version.
    pub versions: Vec<(String, String)>,
    /// The latest published version, which a copy starts from.
    pub copy_from: Option<u32>,
    /// The copy form's values after a rejected copy of this curriculum, shown open: the id, the
    /// title and the rejected field.
    pub failed_copy: Option<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "curricula.html")]
struct LibraryTemplate {
    layout: Layout,
    rows: Vec<LibraryRow>,
    can_edit: bool,
    /// The sites a copy can belong to.
    sites: Vec<super::cohorts::Choice>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    render_list(&state, &signed_in, None, StatusCode::OK).await
}

async fn render_list(
    state: &AppState,
    signed_in: &SignedIn,
    failed: Option<(&CopyForm, InvalidValue)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let versions = curricula::list(state.store.as_ref(), &signed_in.account).await?;
    let layout = Layout::new(state, &signed_in.viewer, "/curricula");
    let language = viewer_language(&layout);
    let mut rows: Vec<LibraryRow> = Vec::new();
    for stored in &versions {
        let curriculum = &stored.curriculum;
        let label = layout.tr.t_args("curricula-version", &{
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("version", curriculum.version.to_string());
            args.set(
                "status",
                layout
                    .tr
                    .t(&format!("curricula-status-{}", stored.status.as_str())),
            );
            args
        });
        let href = format!("/curricula/{}/{}", curriculum.id, curriculum.version);
        let published =
            (stored.status == CurriculumStatus::Published).then_some(curriculum.version);
        match rows.iter_mut().find(|row| row.id == curriculum.id.as_str()) {
            Some(row) => {
                row.versions.push((href, label));
                curriculum
                    .text(&curriculum.title, &language)
                    .clone_into(&mut row.title);
                curriculum
                    .text(&curriculum.summary, &language)
                    .clone_into(&mut row.summary);
                row.copy_from = published.or(row.copy_from);
            }
            None => rows.push(LibraryRow {
                id: curriculum.id.to_string(),
                title: curriculum.text(&curriculum.title, &language).to_owned(),
                summary: curriculum.text(&curriculum.summary, &language).to_owned(),
                shipped: stored.created_by.is_none(),
                versions: vec![(href, label)],
                copy_from: published,
                failed_copy: failed
                    .as_ref()
                    .filter(|(form, _)| form.from_id == curriculum.id.as_str())
                    .map(|(form, invalid)| {
                        (
                            form.new_id.clone(),
                            form.title.clone(),
                            invalid.field.to_owned(),
                        )
                    }),
            }),
        }
    }
    let can_edit = curricula::may_edit(&signed_in.account);
    let mut sites = Vec::new();
    if can_edit {
        if signed_in.account.has_role(Role::SystemAdministrator) {
            sites.push(super::cohorts::Choice {
                value: String::new(),
                label: layout.tr.t("curricula-every-site"),
                selected: false,
            });
        }
        for summary in
            stillpoint_app::sites::list_sites(state.store.as_ref(), &signed_in.account).await?
        {
            sites.push(super::cohorts::Choice {
                value: summary.site.id.to_string(),
                label: summary.site.name.clone(),
                selected: false,
            });
        }
    }
    let mut response = render(&LibraryTemplate {
        layout,
        rows,
        can_edit,
        sites,
        error: failed.map(|(_, invalid)| invalid.problem),
    })?;
    *response.status_mut() = status;
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CopyForm {
    from_id: String,
    from_version: u32,
    #[serde(default)]
    new_id: String,
    #[serde(default)]
    title: String,
    /// The site that owns the copy; empty for every site (system administrators only).
    #[serde(default)]
    site_id: String,
}

pub async fn copy(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(form): CheckedForm<CopyForm>,
) -> Result<Response, WebError> {
    let from = CurriculumId::parse(&form.from_id).map_err(|_| WebError::NotFound)?;
    let language =
        Language::parse(&signed_in.viewer.language).unwrap_or_else(|_| Language::english());
    let site = match form.site_id.trim() {
        "" => Ok(None),
        text => text.parse::<SiteId>().map(Some).map_err(|_| {
            AppError::from(InvalidValue::new(
                "site_id",
                "choose one of the listed sites",
            ))
        }),
    };
    let outcome = match site {
        Ok(site) => {
            curricula::copy(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                CopyRequest {
                    from: (&from, form.from_version),
                    new_id: &form.new_id,
                    title: (&language, &form.title),
                    site,
                },
            )
            .await
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(stored) => Ok(Redirect::to(&version_href(&stored)).into_response()),
        Err(AppError::Invalid(invalid)) => {
            render_list(
                &state,
                &signed_in,
                Some((&form, invalid)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn new_draft(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(curriculum_id): Path<String>,
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    let id = CurriculumId::parse(&curriculum_id).map_err(|_| WebError::NotFound)?;
    let stored = curricula::new_draft(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        &id,
    )
    .await?;
    Ok(Redirect::to(&version_href(&stored)).into_response())
}

fn version_href(stored: &StoredCurriculum) -> String {
    format!(
        "/curricula/{}/{}",
        stored.curriculum.id, stored.curriculum.version
    )
}

/// The query naming the language whose text an editor page edits.
#[derive(Debug, Default, Deserialize)]
pub struct LanguageQuery {
    #[serde(default)]
    language: Option<String>,
    /// The index of the session plan just saved, for a confirmation beside it.
    #[serde(default)]
    saved: Option<usize>,
}

/// One session of a version's page.
#[derive(Debug)]
pub struct SessionSection {
    pub index: usize,
    /// Whether this session plan was just saved.
    pub saved: bool,
    pub name: String,
    pub edit_href: String,
    pub plan: PlanView,
}

#[derive(Template)]
#[template(path = "curriculum.html")]
struct VersionTemplate {
    layout: Layout,
    id: String,
    version: u32,
    title: String,
    summary: String,
    facts: Vec<(String, String)>,
    sessions: Vec<SessionSection>,
    draft: bool,
    /// Whether the reader may change this curriculum: a system administrator, or a program
    /// administrator of the site that owns it.
    can_edit: bool,
    /// The draft's revision, which every edit form sends back.
    revision: u32,
    /// Whether a clinic's published version can start a new draft.
    can_start_draft: bool,
    /// The first rule the draft breaks, or `None` when it is ready to publish.
    problem: Option<String>,
    edit_language: String,
    languages: Vec<(String, bool)>,
    details: DetailsValues,
    error: Option<String>,
}

/// The values of the details form.
#[derive(Debug)]
pub struct DetailsValues {
    pub title: String,
    pub summary: String,
    pub orientation_minutes: String,
    pub class_minutes: String,
    pub retreat_minutes: String,
}

pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((curriculum_id, version)): Path<(String, String)>,
    Query(query): Query<LanguageQuery>,
) -> Result<Response, WebError> {
    let (id, version) = key(&curriculum_id, &version)?;
    render_version(
        &state,
        &signed_in,
        (&id, version),
        query,
        None,
        StatusCode::OK,
    )
    .await
}

/// The failed details form, shown again with its values.
#[derive(Debug)]
struct FailedDetails {
    fields: Fields,
    problem: String,
}

async fn render_version(
    state: &AppState,
    signed_in: &SignedIn,
    key: (&CurriculumId, u32),
    query: LanguageQuery,
    failed: Option<FailedDetails>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let stored = curricula::get(state.store.as_ref(), &signed_in.account, key.0, key.1).await?;
    let path = format!("/curricula/{}/{}", key.0, key.1);
    let layout = Layout::new(state, &signed_in.viewer, &path);
    let tr = &layout.tr;
    let curriculum = &stored.curriculum;
    let edit_language = edit_language_of(curriculum, &layout, query.language);
    let shown = Language::parse(&edit_language).unwrap_or_else(|_| Language::english());
    let draft = stored.status == CurriculumStatus::Draft;
    let can_edit = curricula::may_change(&signed_in.account, &stored);

    let facts = version_facts(tr, &stored, &shown);
    let sessions = curriculum
        .sessions
        .iter()
        .enumerate()
        .map(|(index, plan)| SessionSection {
            index,
            saved: query.saved == Some(index),
            name: session_name(tr, plan.kind),
            edit_href: format!("{path}/sessions/{index}?language={edit_language}"),
            plan: plan_view(tr, curriculum, plan, &shown, Audience::Staff),
        })
        .collect();
    let mut languages: Vec<(String, bool)> = curriculum
        .languages()
        .iter()
        .map(|language| language.as_str().to_owned())
        .chain(
            state
                .catalogs
                .offered()
                .into_iter()
                .map(|offered| offered.tag),
        )
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .map(|tag| {
            let current = tag == edit_language;
            (tag, current)
        })
        .collect();
    languages.sort();
    let details = match &failed {
        Some(failed) => DetailsValues {
            title: failed.fields.text("title").to_owned(),
            summary: failed.fields.text("summary").to_owned(),
            orientation_minutes: failed.fields.text("orientation_minutes").to_owned(),
            class_minutes: failed.fields.text("class_minutes").to_owned(),
            retreat_minutes: failed.fields.text("retreat_minutes").to_owned(),
        },
        None => DetailsValues {
            title: curriculum.title.get(&shown).cloned().unwrap_or_default(),
            summary: curriculum.summary.get(&shown).cloned().unwrap_or_default(),
            orientation_minutes: curriculum.orientation_minutes.to_string(),
            class_minutes: curriculum.class_minutes.to_string(),
            retreat_minutes: curriculum.retreat_minutes.to_string(),
        },
    };
    let template = VersionTemplate {
        id: curriculum.id.to_string(),
        version: curriculum.version,
        title: curriculum.text(&curriculum.title, &shown).to_owned(),
        summary: curriculum.text(&curriculum.summary, &shown).to_owned(),
        facts,
        sessions,
        draft,
        can_edit,
        revision: stored.revision,
        can_start_draft: can_edit && !draft,
        problem: curriculum.validate().err().map(|invalid| invalid.problem),
        edit_language,
        languages,
        details,
        error: failed.map(|failed| failed.problem),
        layout,
    };
    let mut response = render(&template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// Lists the facts at the top of a version's page.
fn version_facts(
    tr: &Translator,
    stored: &StoredCurriculum,
    shown: &Language,
) -> Vec<(String, String)> {
    let curriculum = &stored.curriculum;
    vec![
        (
            tr.t("curriculum-adaptation"),
            tr.t(&format!(
                "adaptation-{}",
                curriculum.adaptation.as_str().replace('_', "-")
            )),
        ),
        (
            tr.t("curriculum-status"),
            tr.t(&format!("curricula-status-{}", stored.status.as_str())),
        ),
        (
            tr.t("curriculum-languages"),
            curriculum
                .languages()
                .iter()
                .map(|language| language.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            tr.t("curriculum-lengths"),
            tr.t_args("curriculum-lengths-value", &{
                let mut args = fluent_bundle::FluentArgs::new();
                args.set("orientation", curriculum.orientation_minutes.to_string());
                args.set("class", curriculum.class_minutes.to_string());
                args.set("retreat", curriculum.retreat_minutes.to_string());
                args
            }),
        ),
        (
            tr.t("curriculum-sources"),
            curriculum.text(&curriculum.sources, shown).to_owned(),
        ),
        (
            tr.t("curriculum-based-on"),
            stored
                .based_on
                .clone()
                .unwrap_or_else(|| tr.t("curriculum-shipped")),
        ),
    ]
}

/// Returns the language an editor edits: the requested one, else the reader's when the
/// curriculum has it, else the curriculum's first.
fn edit_language_of(curriculum: &Curriculum, layout: &Layout, requested: Option<String>) -> String {
    if let Some(language) = requested.and_then(|tag| Language::parse(&tag).ok()) {
        return language.as_str().to_owned();
    }
    curriculum
        .shown_language(&viewer_language(layout))
        .as_str()
        .to_owned()
}

fn viewer_language(layout: &Layout) -> Language {
    Language::parse(&layout.lang).unwrap_or_else(|_| Language::english())
}

/// Reads the revision and the edited language that an edit form sent back.
async fn edit_context(
    state: &AppState,
    signed_in: &SignedIn,
    (id, version): (&CurriculumId, u32),
    fields: &Fields,
) -> Result<(u32, Language), AppError> {
    let stored = curricula::get(state.store.as_ref(), &signed_in.account, id, version).await?;
    let language = edit_language(state, &stored.curriculum, fields.text("language"))?;
    Ok((revision(fields)?, language))
}

/// Reads the draft's revision that an edit form sent back.
fn revision(fields: &Fields) -> Result<u32, InvalidValue> {
    fields.parse(
        "revision",
        "revision",
        "the draft's revision; reload the page and edit again",
    )
}

/// Checks that `tag` is a language the curriculum has or the interface offers, so a typing
/// mistake cannot add a language that every field would then need.
fn edit_language(
    state: &AppState,
    curriculum: &Curriculum,
    tag: &str,
) -> Result<Language, InvalidValue> {
    let language = Language::parse(tag)?;
    if curriculum.languages().contains(&language) || state.catalogs.supports(language.as_str()) {
        Ok(language)
    } else {
        Err(InvalidValue::new(
            "language",
            format!(
                "'{language}' is neither a language of this curriculum nor of the interface; choose one from the list"
            ),
        ))
    }
}

fn key(curriculum_id: &str, version: &str) -> Result<(CurriculumId, u32), WebError> {
    Ok((
        CurriculumId::parse(curriculum_id).map_err(|_| WebError::NotFound)?,
        version.parse().map_err(|_| WebError::NotFound)?,
    ))
}

pub async fn save_details(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((curriculum_id, version)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (id, version) = key(&curriculum_id, &version)?;
    let fields = Fields(fields);
    let mut language = fields.text("language").to_owned();
    let outcome: Result<(), AppError> = async {
        let (revision, parsed) = edit_context(&state, &signed_in, (&id, version), &fields).await?;
        parsed.as_str().clone_into(&mut language);
        let edit = details_edit(&fields, parsed)?;
        let draft = DraftRef {
            id: &id,
            version,
            revision,
        };
        curricula::save_details(
            state.store.as_ref(),
            state.clock.as_ref(),
            &signed_in.viewer.audit_context(),
            &signed_in.account,
            draft,
            edit,
        )
        .await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok(
            Redirect::to(&format!("/curricula/{id}/{version}?language={language}")).into_response(),
        ),
        Err(AppError::Invalid(invalid)) => {
            render_version(
                &state,
                &signed_in,
                (&id, version),
                LanguageQuery {
                    language: Some(language),
                    saved: None,
                },
                Some(FailedDetails {
                    fields,
                    problem: invalid.problem,
                }),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

fn details_edit(fields: &Fields, language: Language) -> Result<DetailsEdit, InvalidValue> {
    let minutes = |name: &str, field: &'static str| {
        fields.parse::<u32>(name, field, "a whole number of minutes")
    };
    Ok(DetailsEdit {
        language,
        title: fields.text("title").to_owned(),
        summary: fields.text("summary").to_owned(),
        orientation_minutes: minutes("orientation_minutes", "orientation_minutes")?,
        class_minutes: minutes("class_minutes", "class_minutes")?,
        retreat_minutes: minutes("retreat_minutes", "retreat_minutes")?,
    })
}

pub async fn publish(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((curriculum_id, version)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (id, version) = key(&curriculum_id, &version)?;
    let fields = Fields(fields);
    let outcome = match revision(&fields) {
        Ok(revision) => {
            curricula::publish(
                state.store.as_ref(),
                state.clock.as_ref(),
                &signed_in.viewer.audit_context(),
                &signed_in.account,
                DraftRef {
                    id: &id,
                    version,
                    revision,
                },
            )
            .await
        }
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/curricula/{id}/{version}")).into_response()),
        Err(AppError::Invalid(invalid)) => {
            render_version(
                &state,
                &signed_in,
                (&id, version),
                LanguageQuery::default(),
                Some(FailedDetails {
                    fields: Fields::default(),
                    problem: invalid.problem,
                }),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// One agenda row of the session editor.
#[derive(Debug)]
pub struct BlockRow {
    pub index: usize,
    pub origin: String,
    pub kind: String,
    pub minutes: String,
    pub practice: String,
    pub title: String,
    pub guidance: String,
}

#[derive(Template)]
#[template(path = "curriculum_session.html")]
struct SessionEditorTemplate {
    layout: Layout,
    back_href: String,
    action: String,
    name: String,
    language: String,
    theme: String,
    intention: String,
    rows: Vec<BlockRow>,
    block_kinds: Vec<(String, String)>,
    practices: Vec<(String, String)>,
    has_home_practice: bool,
    home_required: bool,
    daily_minutes: String,
    days_per_week: String,
    chosen_practices: Vec<String>,
    informal: String,
    prompts: Vec<PromptRow>,
    /// The draft's revision, which the form sends back.
    revision: u32,
    /// The agenda's total minutes beside the session's length.
    minutes_line: String,
    error: Option<String>,
}

pub async fn edit_session(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((curriculum_id, version, index)): Path<(String, String, usize)>,
    Query(query): Query<LanguageQuery>,
) -> Result<Response, WebError> {
    let (id, version) = key(&curriculum_id, &version)?;
    render_session_editor(
        &state,
        &signed_in,
        (&id, version),
        index,
        query.language,
        None,
    )
    .await
}

pub async fn save_session(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((curriculum_id, version, index)): Path<(String, String, usize)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (id, version) = key(&curriculum_id, &version)?;
    let fields = Fields(fields);
    let mut language = fields.text("language").to_owned();
    let outcome: Result<(), AppError> = async {
        let (revision, parsed) = edit_context(&state, &signed_in, (&id, version), &fields).await?;
        parsed.as_str().clone_into(&mut language);
        let edit = session_edit(&fields, parsed)?;
        let draft = DraftRef {
            id: &id,
            version,
            revision,
        };
        curricula::save_session(
            state.store.as_ref(),
            state.clock.as_ref(),
            &signed_in.viewer.audit_context(),
            &signed_in.account,
            draft,
            index,
            edit,
        )
        .await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!(
            "/curricula/{id}/{version}?language={language}&saved={index}#session-{index}"
        ))
        .into_response()),
        Err(AppError::Invalid(invalid)) => {
            let mut response = render_session_editor(
                &state,
                &signed_in,
                (&id, version),
                index,
                Some(language),
                Some((fields, invalid.problem)),
            )
            .await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads the session editor: numbered agenda rows (an empty new row is left out), and the home
/// practice with its numbered prompts when its daily minutes are filled in.
fn session_edit(fields: &Fields, language: Language) -> Result<SessionEdit, InvalidValue> {
    let count: usize = fields.parse("block_count", "blocks", "the number of agenda rows")?;
    if count > MAX_BLOCKS + NEW_BLOCK_ROWS {
        return Err(InvalidValue::new(
            "blocks",
            format!("keep 1 to {MAX_BLOCKS} agenda blocks"),
        ));
    }
    let mut blocks = Vec::new();
    for row in 0..count {
        let title = fields.text(&format!("block_title_{row}"));
        let existing = !fields.text(&format!("block_origin_{row}")).is_empty();
        if fields.checked(&format!("block_remove_{row}")) || (title.is_empty() && !existing) {
            continue;
        }
        // An existing block leaves only through its Remove box, never by an emptied title.
        if title.is_empty() {
            return Err(InvalidValue::new(
                "title",
                format!(
                    "block {}: the title is empty; write it, or tick Remove to delete the block",
                    row + 1
                ),
            ));
        }
        let place = |invalid: InvalidValue| {
            InvalidValue::new(
                invalid.field,
                format!("block {}: {}", row + 1, invalid.problem),
            )
        };
        let kind = BlockKind::parse(fields.text(&format!("block_kind_{row}"))).map_err(place)?;
        let practice = match fields.text(&format!("block_practice_{row}")) {
            "" => None,
            code => Some(Practice::parse(code).map_err(place)?),
        };
        blocks.push(BlockEdit {
            origin: fields.text(&format!("block_origin_{row}")).parse().ok(),
            kind,
            minutes: fields
                .parse(
                    &format!("block_minutes_{row}"),
                    "minutes",
                    "a whole number of minutes",
                )
                .map_err(place)?,
            practice,
            title: title.to_owned(),
            guidance: fields.text(&format!("block_guidance_{row}")).to_owned(),
        });
    }
    let home_practice = if fields.text("daily_minutes").is_empty() {
        None
    } else {
        Some(HomePracticeEdit {
            daily_minutes: fields.parse(
                "daily_minutes",
                "daily_minutes",
                "a whole number of minutes",
            )?,
            days_per_week: fields.parse(
                "days_per_week",
                "days_per_week",
                "a number of days from 1 to 7",
            )?,
            practices: fields
                .all("practice")
                .map(Practice::parse)
                .collect::<Result<Vec<_>, _>>()?,
            informal: fields.text("informal").to_owned(),
            prompts: prompt_rows(fields)?
                .into_iter()
                .map(|row| (row.origin.parse().ok(), row.text))
                .collect(),
        })
    };
    Ok(SessionEdit {
        language,
        theme: fields.text("theme").to_owned(),
        intention: fields.text("intention").to_owned(),
        blocks,
        home_practice,
    })
}

async fn render_session_editor(
    state: &AppState,
    signed_in: &SignedIn,
    key: (&CurriculumId, u32),
    index: usize,
    language: Option<String>,
    failed: Option<(Fields, String)>,
) -> Result<Response, WebError> {
    let stored = curricula::get(state.store.as_ref(), &signed_in.account, key.0, key.1).await?;
    if !curricula::may_change(&signed_in.account, &stored) {
        return Err(WebError::Forbidden);
    }
    if stored.status != CurriculumStatus::Draft {
        // A published version has no editor; its page offers a new version instead.
        return Ok(Redirect::to(&format!("/curricula/{}/{}", key.0, key.1)).into_response());
    }
    let curriculum = &stored.curriculum;
    let plan = curriculum.sessions.get(index).ok_or(WebError::NotFound)?;
    let path = format!("/curricula/{}/{}/sessions/{index}", key.0, key.1);
    let layout = Layout::new(state, &signed_in.viewer, &path);
    let language = edit_language_of(curriculum, &layout, language);
    let shown = Language::parse(&language).unwrap_or_else(|_| Language::english());
    let tr = &layout.tr;
    let own = |text: &stillpoint_domain::curriculum::LocalizedText| {
        text.get(&shown).cloned().unwrap_or_default()
    };

    let (theme, intention, rows, home) = match &failed {
        Some((fields, _)) => failed_session_values(fields),
        None => stored_session_values(plan, &own),
    };
    let expected_minutes = match plan.kind {
        SessionKind::Orientation => curriculum.orientation_minutes,
        SessionKind::Class { .. } => curriculum.class_minutes,
        SessionKind::Retreat => curriculum.retreat_minutes,
    };
    let template = SessionEditorTemplate {
        back_href: format!("/curricula/{}/{}?language={language}", key.0, key.1),
        action: path.clone(),
        name: session_name(tr, plan.kind),
        theme,
        intention,
        rows,
        block_kinds: BlockKind::ALL
            .iter()
            .map(|kind| {
                (
                    kind.as_str().to_owned(),
                    tr.t(&format!("block-{}", kind.as_str().replace('_', "-"))),
                )
            })
            .collect(),
        practices: Practice::ALL
            .iter()
            .map(|practice| (practice.as_str().to_owned(), practice_name(tr, *practice)))
            .collect(),
        has_home_practice: !matches!(plan.kind, SessionKind::Retreat),
        home_required: matches!(plan.kind, SessionKind::Class { .. }),
        daily_minutes: home.0,
        days_per_week: home.1,
        chosen_practices: home.2,
        informal: home.3,
        prompts: home.4,
        minutes_line: tr.t_args("curriculum-minutes-line", &{
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("total", plan.minutes().to_string());
            args.set("expected", expected_minutes.to_string());
            args
        }),
        error: failed.map(|(_, problem)| problem),
        revision: stored.revision,
        language,
        layout,
    };
    render(&template)
}

/// The editor's values: theme, intention, agenda rows, and the home practice as (daily minutes,
/// days, practices, informal, prompts).
type SessionValues = (
    String,
    String,
    Vec<BlockRow>,
    (String, String, Vec<String>, String, Vec<PromptRow>),
);

/// One reflective prompt of the session editor.
#[derive(Debug)]
pub struct PromptRow {
    pub index: usize,
    /// The prompt's position before the edit, or "" for a new one.
    pub origin: String,
    pub text: String,
}

/// Reads the numbered prompt fields; an empty one is left out.
fn prompt_rows(fields: &Fields) -> Result<Vec<PromptRow>, InvalidValue> {
    let count: usize = fields.parse("prompt_count", "prompts", "the number of prompt fields")?;
    if count > MAX_PROMPTS {
        return Err(InvalidValue::new(
            "prompts",
            format!("write 1 to {MAX_PROMPTS} reflective prompts"),
        ));
    }
    Ok((0..count)
        .map(|index| PromptRow {
            index,
            origin: fields.text(&format!("prompt_origin_{index}")).to_owned(),
            text: fields.text(&format!("prompt_{index}")).to_owned(),
        })
        .filter(|row| !row.text.is_empty())
        .collect())
}

/// Pads the prompts with empty fields up to the maximum, for new prompts.
fn with_empty_prompts(mut rows: Vec<PromptRow>) -> Vec<PromptRow> {
    for index in rows.len()..MAX_PROMPTS {
        rows.push(PromptRow {
            index,
            origin: String::new(),
            text: String::new(),
        });
    }
    rows
}

fn stored_session_values(
    plan: &SessionPlan,
    own: &dyn Fn(&stillpoint_domain::curriculum::LocalizedText) -> String,
) -> SessionValues {
    let mut rows: Vec<BlockRow> = plan
        .blocks
        .iter()
        .enumerate()
        .map(|(index, block)| BlockRow {
            index,
            origin: index.to_string(),
            kind: block.kind.as_str().to_owned(),
            minutes: block.minutes.to_string(),
            practice: block
                .practice
                .map(|practice| practice.as_str().to_owned())
                .unwrap_or_default(),
            title: own(&block.title),
            guidance: own(&block.guidance),
        })
        .collect();
    for extra in 0..NEW_BLOCK_ROWS {
        rows.push(empty_row(plan.blocks.len() + extra));
    }
    let home = plan.home_practice.as_ref().map_or_else(
        || {
            (
                String::new(),
                "6".to_owned(),
                Vec::new(),
                String::new(),
                with_empty_prompts(Vec::new()),
            )
        },
        |home| {
            (
                home.daily_minutes.to_string(),
                home.days_per_week.to_string(),
                home.practices
                    .iter()
                    .map(|practice| practice.as_str().to_owned())
                    .collect(),
                own(&home.informal),
                with_empty_prompts(
                    home.prompts
                        .iter()
                        .enumerate()
                        .map(|(index, prompt)| PromptRow {
                            index,
                            origin: index.to_string(),
                            text: own(prompt),
                        })
                        .collect(),
                ),
            )
        },
    );
    (own(&plan.theme), own(&plan.intention), rows, home)
}

fn failed_session_values(fields: &Fields) -> SessionValues {
    let count = fields
        .text("block_count")
        .parse::<usize>()
        .unwrap_or(0)
        .min(MAX_BLOCKS + NEW_BLOCK_ROWS);
    let prompt_count = fields
        .text("prompt_count")
        .parse::<usize>()
        .unwrap_or(0)
        .min(MAX_PROMPTS);
    let prompts = (0..prompt_count)
        .map(|index| PromptRow {
            index,
            origin: fields.text(&format!("prompt_origin_{index}")).to_owned(),
            text: fields.text(&format!("prompt_{index}")).to_owned(),
        })
        .collect();
    let rows = (0..count)
        .map(|index| BlockRow {
            index,
            origin: fields.text(&format!("block_origin_{index}")).to_owned(),
            kind: fields.text(&format!("block_kind_{index}")).to_owned(),
            minutes: fields.text(&format!("block_minutes_{index}")).to_owned(),
            practice: fields.text(&format!("block_practice_{index}")).to_owned(),
            title: fields.text(&format!("block_title_{index}")).to_owned(),
            guidance: fields.text(&format!("block_guidance_{index}")).to_owned(),
        })
        .collect();
    (
        fields.text("theme").to_owned(),
        fields.text("intention").to_owned(),
        rows,
        (
            fields.text("daily_minutes").to_owned(),
            fields.text("days_per_week").to_owned(),
            fields.all("practice").map(str::to_owned).collect(),
            fields.text("informal").to_owned(),
            with_empty_prompts(prompts),
        ),
    )
}

fn empty_row(index: usize) -> BlockRow {
    BlockRow {
        index,
        origin: String::new(),
        kind: "teaching".to_owned(),
        minutes: String::new(),
        practice: String::new(),
        title: String::new(),
        guidance: String::new(),
    }
}
