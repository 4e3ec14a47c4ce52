//! The curriculum library: every curriculum and version, a version's session plans, and the
//! administrators' editor for copies and drafts.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use stillpoint_app::AppError;
use stillpoint_app::curricula::{self, BlockEdit, DetailsEdit, HomePracticeEdit, SessionEdit};
use stillpoint_app::ports::{CurriculumStatus, StoredCurriculum};
use stillpoint_domain::curriculum::{BlockKind, Curriculum, CurriculumId, Practice, SessionPlan};
use stillpoint_domain::schedule::SessionKind;
use stillpoint_domain::{InvalidValue, Language};

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

/// A session plan, ready to show.
#[derive(Debug, Clone)]
pub struct PlanView {
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
) -> PlanView {
    let text = |value| curriculum.text(value, language).to_owned();
    PlanView {
        theme: text(&plan.theme),
        intention: text(&plan.intention),
        blocks: plan
            .blocks
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
}

#[derive(Template)]
#[template(path = "curricula.html")]
struct LibraryTemplate {
    layout: Layout,
    rows: Vec<LibraryRow>,
    can_edit: bool,
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
    error: Option<String>,
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
            }),
        }
    }
    let mut response = render(&LibraryTemplate {
        can_edit: curricula::may_edit(&signed_in.account),
        layout,
        rows,
        error,
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
}

pub async fn copy(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(form): CheckedForm<CopyForm>,
) -> Result<Response, WebError> {
    let from = CurriculumId::parse(&form.from_id).map_err(|_| WebError::NotFound)?;
    let language =
        Language::parse(&signed_in.viewer.language).unwrap_or_else(|_| Language::english());
    let outcome = curricula::copy(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        (&from, form.from_version),
        &form.new_id,
        (&language, &form.title),
    )
    .await;
    match outcome {
        Ok(stored) => Ok(Redirect::to(&version_href(&stored)).into_response()),
        Err(AppError::Invalid(invalid)) => {
            render_list(
                &state,
                &signed_in,
                Some(format!("{}: {}", invalid.field, invalid.problem)),
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
}

/// One session of a version's page.
#[derive(Debug)]
pub struct SessionSection {
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
    can_edit: bool,
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
        query.language,
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
    edit_language: Option<String>,
    failed: Option<FailedDetails>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let stored = curricula::get(state.store.as_ref(), &signed_in.account, key.0, key.1).await?;
    let path = format!("/curricula/{}/{}", key.0, key.1);
    let layout = Layout::new(state, &signed_in.viewer, &path);
    let tr = &layout.tr;
    let curriculum = &stored.curriculum;
    let edit_language = edit_language_of(curriculum, &layout, edit_language);
    let shown = Language::parse(&edit_language).unwrap_or_else(|_| Language::english());
    let draft = stored.status == CurriculumStatus::Draft;
    let can_edit = curricula::may_edit(&signed_in.account);

    let facts = version_facts(tr, &stored, &shown);
    let sessions = curriculum
        .sessions
        .iter()
        .enumerate()
        .map(|(index, plan)| SessionSection {
            name: session_name(tr, plan.kind),
            edit_href: format!("{path}/sessions/{index}?language={edit_language}"),
            plan: plan_view(tr, curriculum, plan, &shown),
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
        can_start_draft: can_edit && !draft && stored.created_by.is_some(),
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
    let language = fields.text("language").to_owned();
    let edit = details_edit(&fields);
    let outcome = match edit {
        Ok(edit) => curricula::save_details(
            state.store.as_ref(),
            state.clock.as_ref(),
            &signed_in.viewer.audit_context(),
            &signed_in.account,
            (&id, version),
            edit,
        )
        .await
        .map(|_| ()),
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(()) => Ok(
            Redirect::to(&format!("/curricula/{id}/{version}?language={language}")).into_response(),
        ),
        Err(AppError::Invalid(invalid)) => {
            render_version(
                &state,
                &signed_in,
                (&id, version),
                Some(language),
                Some(FailedDetails {
                    fields,
                    problem: format!("{}: {}", invalid.field, invalid.problem),
                }),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

fn details_edit(fields: &Fields) -> Result<DetailsEdit, InvalidValue> {
    let minutes = |name: &str, field: &'static str| {
        fields.parse::<u32>(name, field, "a whole number of minutes")
    };
    Ok(DetailsEdit {
        language: Language::parse(fields.text("language"))?,
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
    CheckedForm(_form): CheckedForm<super::sign_in::EmptyForm>,
) -> Result<Response, WebError> {
    let (id, version) = key(&curriculum_id, &version)?;
    let outcome = curricula::publish(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        (&id, version),
    )
    .await;
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/curricula/{id}/{version}")).into_response()),
        Err(AppError::Invalid(invalid)) => {
            render_version(
                &state,
                &signed_in,
                (&id, version),
                None,
                Some(FailedDetails {
                    fields: Fields::default(),
                    problem: format!("{}: {}", invalid.field, invalid.problem),
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
    prompts: String,
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
    let language = fields.text("language").to_owned();
    let outcome = match session_edit(&fields) {
        Ok(edit) => curricula::save_session(
            state.store.as_ref(),
            state.clock.as_ref(),
            &signed_in.viewer.audit_context(),
            &signed_in.account,
            (&id, version),
            index,
            edit,
        )
        .await
        .map(|_| ()),
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(()) => Ok(
            Redirect::to(&format!("/curricula/{id}/{version}?language={language}")).into_response(),
        ),
        Err(AppError::Invalid(invalid)) => {
            let mut response = render_session_editor(
                &state,
                &signed_in,
                (&id, version),
                index,
                Some(language),
                Some((fields, format!("{}: {}", invalid.field, invalid.problem))),
            )
            .await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads the session editor: numbered agenda rows (a row without a title is left out), the home
/// practice when its daily minutes are filled in, and the prompts one per line.
fn session_edit(fields: &Fields) -> Result<SessionEdit, InvalidValue> {
    let count: usize = fields.parse("block_count", "blocks", "the number of agenda rows")?;
    let mut blocks = Vec::new();
    for row in 0..count {
        let title = fields.text(&format!("block_title_{row}"));
        if title.is_empty() || fields.checked(&format!("block_remove_{row}")) {
            continue;
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
            prompts: fields.text("prompts").lines().map(str::to_owned).collect(),
        })
    };
    Ok(SessionEdit {
        language: Language::parse(fields.text("language"))?,
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
    if !curricula::may_edit(&signed_in.account) {
        return Err(WebError::Forbidden);
    }
    let stored = curricula::get(state.store.as_ref(), &signed_in.account, key.0, key.1).await?;
    if stored.status != CurriculumStatus::Draft {
        return Err(WebError::Invalid {
            field: "version".to_owned(),
            message: "this version is published and cannot change; start a new version to edit it"
                .to_owned(),
        });
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
    (String, String, Vec<String>, String, String),
);

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
                String::new(),
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
                home.prompts.iter().map(own).collect::<Vec<_>>().join("\n"),
            )
        },
    );
    (own(&plan.theme), own(&plan.intention), rows, home)
}

fn failed_session_values(fields: &Fields) -> SessionValues {
    let count: usize = fields.text("block_count").parse().unwrap_or(0);
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
            fields.text("prompts").to_owned(),
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
