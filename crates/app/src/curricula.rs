//! The curriculum library: the curricula that ship with Stillpoint, clinics' copies, drafts,
//! edits and publishing.
//!
//! A published version never changes, so a cohort keeps the plan it started with. A clinic
//! copies a curriculum into a draft, edits it, and publishes it; a later edit starts a new draft
//! version. The shipped curricula are read-only: the next release may ship their next version.

use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::curriculum::{
    AgendaBlock, BlockKind, Curriculum, CurriculumId, HomePractice, LocalizedText, MAX_BLOCKS,
    MAX_DAILY_MINUTES, MAX_PROMPTS, MAX_SESSION_MINUTES, MAX_TEXT_CHARS, MAX_TITLE_CHARS, Practice,
};
use stillpoint_domain::{Account, InvalidValue, Language, Role, SiteId};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{CurriculumStatus, Store, StoredCurriculum};
use crate::{AppError, Clock, StorageError};

/// Stores each shipped curriculum version that the database lacks, as published. Versions
/// already stored are left as they are. Returns how many were added.
pub async fn install_bundled(
    store: &dyn Store,
    clock: &dyn Clock,
    bundled: &[Curriculum],
) -> Result<usize, AppError> {
    let mut added = 0;
    for curriculum in bundled {
        let stored = StoredCurriculum {
            curriculum: curriculum.clone(),
            status: CurriculumStatus::Published,
            based_on: None,
            created_by: None,
            site: None,
            revision: 0,
            created_at: clock.now(),
            published_at: Some(clock.now()),
        };
        match store.insert_curriculum_version(&stored).await {
            Ok(()) => added += 1,
            // Another server, or an earlier start, stored this version already.
            Err(StorageError::Conflict { .. }) => {
                let existing = store
                    .get_curriculum_version(&curriculum.id, curriculum.version)
                    .await?;
                if existing.curriculum != *curriculum {
                    tracing::warn!(
                        curriculum = %curriculum.id,
                        version = curriculum.version,
                        "a shipped curriculum changed without a new version; the stored version is kept, so raise the version in its files"
                    );
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    if added > 0 {
        tracing::info!(added, "shipped curriculum versions stored");
    }
    Ok(added)
}

/// Returns whether `account` may copy, edit and publish curricula.
#[must_use]
pub fn may_edit(account: &Account) -> bool {
    account.has_role(Role::ProgramAdministrator) || account.has_role(Role::SystemAdministrator)
}

/// Returns whether `account` may change `stored`: a system administrator, or a program
/// administrator of the site that owns it. Shipped curricula change only with a release.
#[must_use]
pub fn may_change(account: &Account, stored: &StoredCurriculum) -> bool {
    if stored.created_by.is_none() {
        return false;
    }
    account.has_role(Role::SystemAdministrator)
        || account.roles.iter().any(|held| {
            held.role == Role::ProgramAdministrator
                && stored.site.is_some()
                && held.site_id == stored.site
        })
}

/// Returns whether `account` may read session plans: staff who run or manage programs.
#[must_use]
pub fn may_read(account: &Account) -> bool {
    may_edit(account) || account.has_role(Role::Facilitator) || account.has_role(Role::Clinician)
}

/// Every version of every curriculum, for staff.
pub async fn list(store: &dyn Store, account: &Account) -> Result<Vec<StoredCurriculum>, AppError> {
    if !may_read(account) {
        return Err(AppError::Forbidden);
    }
    Ok(store.list_curriculum_versions().await?)
}

/// One version, for staff.
pub async fn get(
    store: &dyn Store,
    account: &Account,
    id: &CurriculumId,
    version: u32,
) -> Result<StoredCurriculum, AppError> {
    if !may_read(account) {
        return Err(AppError::Forbidden);
    }
    Ok(store.get_curriculum_version(id, version).await?)
}

/// An administrator's request to copy a curriculum.
#[derive(Debug, Clone, Copy)]
pub struct CopyRequest<'a> {
    /// The curriculum and version to copy.
    pub from: (&'a CurriculumId, u32),
    pub new_id: &'a str,
    /// The copy's title, in the given language.
    pub title: (&'a Language, &'a str),
    /// The site that owns the copy; `None` for every site (system administrators only).
    pub site: Option<SiteId>,
}

/// Copies a version into a new curriculum's first draft.
pub async fn copy(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    request: CopyRequest<'_>,
) -> Result<StoredCurriculum, AppError> {
    let CopyRequest {
        from,
        new_id,
        title,
        site,
    } = request;
    let owns_site = match site {
        Some(site) => {
            admin.has_role(Role::SystemAdministrator)
                || admin.roles.iter().any(|held| {
                    held.role == Role::ProgramAdministrator && held.site_id == Some(site)
                })
        }
        None => admin.has_role(Role::SystemAdministrator),
    };
    if !owns_site {
        return Err(if may_edit(admin) {
            InvalidValue::new("site_id", "choose one of the sites you administer").into()
        } else {
            AppError::Forbidden
        });
    }
    let source = store.get_curriculum_version(from.0, from.1).await?;
    let new_id = CurriculumId::parse(new_id)
        .map_err(|invalid| InvalidValue::new("new_id", invalid.problem))?;
    let title_text = checked_text("title", title.1, MAX_TITLE_CHARS)?;

    let mut curriculum = source.curriculum;
    curriculum.id = new_id.clone();
    curriculum.version = 1;
    curriculum.title.insert(title.0.clone(), title_text);
    let stored = StoredCurriculum {
        curriculum,
        status: CurriculumStatus::Draft,
        based_on: Some(format!("{}@{}", from.0, from.1)),
        created_by: Some(admin.id),
        site,
        revision: 0,
        created_at: clock.now(),
        published_at: None,
    };
    let taken = store
        .list_curriculum_versions()
        .await?
        .iter()
        .any(|existing| existing.curriculum.id == new_id);
    if taken {
        return Err(id_taken(&new_id));
    }
    store
        .insert_curriculum_version(&stored)
        .await
        .map_err(|error| match error {
            StorageError::Conflict { .. } => id_taken(&new_id),
            other => other.into(),
        })?;
    record(
        store,
        clock,
        context,
        &stored.curriculum,
        AuditAction::Create,
    )
    .await?;
    tracing::info!(curriculum = %new_id, from = %from.0, from_version = from.1, "curriculum copied");
    Ok(stored)
}

/// Starts the next draft version of a clinic's curriculum from its latest version, or returns
/// the draft that is already open.
pub async fn new_draft(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    id: &CurriculumId,
) -> Result<StoredCurriculum, AppError> {
    if !may_edit(admin) {
        return Err(AppError::Forbidden);
    }
    let versions: Vec<StoredCurriculum> = store
        .list_curriculum_versions()
        .await?
        .into_iter()
        .filter(|stored| stored.curriculum.id == *id)
        .collect();
    let latest = versions
        .iter()
        .max_by_key(|stored| stored.curriculum.version)
        .ok_or_else(|| StorageError::NotFound {
            entity: "curriculum",
            id: id.to_string(),
        })?;
    if latest.created_by.is_none() {
        return Err(InvalidValue::new(
            "curriculum_id",
            "a curriculum that ships with Stillpoint cannot be edited; copy it and edit the copy",
        )
        .into());
    }
    if !may_change(admin, latest) {
        return Err(AppError::Forbidden);
    }
    if latest.status == CurriculumStatus::Draft {
        return Ok(latest.clone());
    }

    let mut curriculum = latest.curriculum.clone();
    curriculum.version += 1;
    let stored = StoredCurriculum {
        curriculum,
        status: CurriculumStatus::Draft,
        based_on: Some(format!("{}@{}", id, latest.curriculum.version)),
        created_by: Some(admin.id),
        site: latest.site,
        revision: 0,
        created_at: clock.now(),
        published_at: None,
    };
    store.insert_curriculum_version(&stored).await?;
    record(
        store,
        clock,
        context,
        &stored.curriculum,
        AuditAction::Create,
    )
    .await?;
    Ok(stored)
}

/// A draft as the editor read it: the edit applies only while the draft is still at `revision`.
#[derive(Debug, Clone, Copy)]
pub struct DraftRef<'a> {
    pub id: &'a CurriculumId,
    pub version: u32,
    pub revision: u32,
}

/// The curriculum-wide fields an administrator edits, with text in one language.
#[derive(Debug, Clone)]
pub struct DetailsEdit {
    pub language: Language,
    pub title: String,
    pub summary: String,
    pub orientation_minutes: u32,
    pub class_minutes: u32,
    pub retreat_minutes: u32,
}

/// Saves the curriculum-wide fields of a draft.
pub async fn save_details(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    key: DraftRef<'_>,
    edit: DetailsEdit,
) -> Result<Curriculum, AppError> {
    let mut curriculum = editable_draft(store, admin, key).await?;
    for (field, minutes) in [
        ("orientation_minutes", edit.orientation_minutes),
        ("class_minutes", edit.class_minutes),
        ("retreat_minutes", edit.retreat_minutes),
    ] {
        check_minutes(field, minutes, MAX_SESSION_MINUTES)?;
    }
    let title = checked_text("title", &edit.title, MAX_TITLE_CHARS)?;
    let summary = checked_text("summary", &edit.summary, MAX_TEXT_CHARS)?;

    curriculum.title.insert(edit.language.clone(), title);
    curriculum.summary.insert(edit.language.clone(), summary);
    curriculum.orientation_minutes = edit.orientation_minutes;
    curriculum.class_minutes = edit.class_minutes;
    curriculum.retreat_minutes = edit.retreat_minutes;
    save(store, clock, context, &curriculum, key.revision).await?;
    Ok(curriculum)
}

/// One agenda block as edited, with its text in the edited language.
#[derive(Debug, Clone)]
pub struct BlockEdit {
    /// The position the block had before the edit, so its text in other languages stays with it;
    /// `None` for a new block.
    pub origin: Option<usize>,
    pub kind: BlockKind,
    pub minutes: u32,
    pub practice: Option<Practice>,
    pub title: String,
    pub guidance: String,
}

/// The home practice as edited.
#[derive(Debug, Clone)]
pub struct HomePracticeEdit {
    pub daily_minutes: u32,
    pub days_per_week: u32,
    pub practices: Vec<Practice>,
    pub informal: String,
    /// The prompts in order, each with the position it had before the edit (`None` for a new
    /// one), so its text in other languages stays with it.
    pub prompts: Vec<(Option<usize>, String)>,
}

/// A session plan as edited, with text in one language.
#[derive(Debug, Clone)]
pub struct SessionEdit {
    pub language: Language,
    pub theme: String,
    pub intention: String,
    pub blocks: Vec<BlockEdit>,
    pub home_practice: Option<HomePracticeEdit>,
}

/// Saves one session plan of a draft; `index` is its position in program order.
pub async fn save_session(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    key: DraftRef<'_>,
    index: usize,
    edit: SessionEdit,
) -> Result<Curriculum, AppError> {
    let mut curriculum = editable_draft(store, admin, key).await?;
    let Some(plan) = curriculum.sessions.get_mut(index) else {
        return Err(StorageError::NotFound {
            entity: "session plan",
            id: index.to_string(),
        }
        .into());
    };
    let language = edit.language;
    let theme = checked_text("theme", &edit.theme, MAX_TITLE_CHARS)?;
    let intention = checked_text("intention", &edit.intention, MAX_TEXT_CHARS)?;
    if edit.blocks.is_empty() || edit.blocks.len() > MAX_BLOCKS {
        return Err(
            InvalidValue::new("blocks", format!("keep 1 to {MAX_BLOCKS} agenda blocks")).into(),
        );
    }

    let mut blocks = Vec::with_capacity(edit.blocks.len());
    for (position, block) in edit.blocks.into_iter().enumerate() {
        blocks.push(edited_block(&plan.blocks, &language, position + 1, &block)?);
    }
    let home_practice = match (edit.home_practice, plan.home_practice.take()) {
        (Some(home), previous) => Some(edited_home_practice(previous, &language, home)?),
        (None, _) => None,
    };

    plan.theme.insert(language.clone(), theme);
    plan.intention.insert(language, intention);
    plan.blocks = blocks;
    plan.home_practice = home_practice;
    save(store, clock, context, &curriculum, key.revision).await?;
    Ok(curriculum)
}

/// Publishes a draft after checking every rule; from then on cohorts can start with it.
pub async fn publish(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    key: DraftRef<'_>,
) -> Result<(), AppError> {
    let curriculum = editable_draft(store, admin, key).await?;
    curriculum.validate()?;
    store
        .publish_curriculum_version(key.id, key.version, key.revision, clock.now())
        .await
        .map_err(map_changed)?;
    record(store, clock, context, &curriculum, AuditAction::Update).await?;
    tracing::info!(curriculum = %key.id, version = key.version, "curriculum published");
    Ok(())
}

async fn editable_draft(
    store: &dyn Store,
    admin: &Account,
    key: DraftRef<'_>,
) -> Result<Curriculum, AppError> {
    if !may_edit(admin) {
        return Err(AppError::Forbidden);
    }
    let stored = store.get_curriculum_version(key.id, key.version).await?;
    if !may_change(admin, &stored) {
        return Err(AppError::Forbidden);
    }
    if stored.status == CurriculumStatus::Published {
        return Err(published_error());
    }
    if stored.revision != key.revision {
        return Err(changed_error());
    }
    Ok(stored.curriculum)
}

async fn save(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    curriculum: &Curriculum,
    revision: u32,
) -> Result<(), AppError> {
    store
        .update_curriculum_draft(curriculum, revision)
        .await
        .map_err(map_changed)?;
    record(store, clock, context, curriculum, AuditAction::Update).await
}

fn edited_block(
    previous: &[AgendaBlock],
    language: &Language,
    position: usize,
    edit: &BlockEdit,
) -> Result<AgendaBlock, AppError> {
    let place = |problem: &str| format!("block {position}: {problem}");
    check_minutes("minutes", edit.minutes, MAX_SESSION_MINUTES)
        .map_err(|invalid| InvalidValue::new("minutes", place(&invalid.problem)))?;
    let practice = match (edit.kind, edit.practice) {
        (BlockKind::Practice, None) => {
            return Err(InvalidValue::new(
                "practice",
                place("a practice block needs its practice; choose one"),
            )
            .into());
        }
        (BlockKind::Practice, Some(practice)) => Some(practice),
        (_, _) => None,
    };
    let title = checked_text("title", &edit.title, MAX_TITLE_CHARS)
        .map_err(|invalid| InvalidValue::new("title", place(&invalid.problem)))?;
    let guidance = checked_text("guidance", &edit.guidance, MAX_TEXT_CHARS)
        .map_err(|invalid| InvalidValue::new("guidance", place(&invalid.problem)))?;

    let origin = edit.origin.and_then(|index| previous.get(index));
    let mut block = AgendaBlock {
        kind: edit.kind,
        minutes: edit.minutes,
        practice,
        title: origin.map(|block| block.title.clone()).unwrap_or_default(),
        guidance: origin
            .map(|block| block.guidance.clone())
            .unwrap_or_default(),
    };
    block.title.insert(language.clone(), title);
    block.guidance.insert(language.clone(), guidance);
    Ok(block)
}

fn edited_home_practice(
    previous: Option<HomePractice>,
    language: &Language,
    edit: HomePracticeEdit,
) -> Result<HomePractice, AppError> {
    check_minutes("daily_minutes", edit.daily_minutes, MAX_DAILY_MINUTES)?;
    if !(1..=7).contains(&edit.days_per_week) {
        return Err(InvalidValue::new(
            "days_per_week",
            format!("{} days is outside 1 to 7", edit.days_per_week),
        )
        .into());
    }
    if edit.practices.is_empty() {
        return Err(
            InvalidValue::new("practices", "choose at least one practice for the week").into(),
        );
    }
    let prompts: Vec<&(Option<usize>, String)> = edit
        .prompts
        .iter()
        .filter(|(_, prompt)| !prompt.trim().is_empty())
        .collect();
    if prompts.is_empty() || prompts.len() > MAX_PROMPTS {
        return Err(InvalidValue::new(
            "prompts",
            format!("write 1 to {MAX_PROMPTS} reflective prompts"),
        )
        .into());
    }
    let informal = checked_text("informal", &edit.informal, MAX_TEXT_CHARS)?;

    let previous_prompts = previous
        .as_ref()
        .map(|home| home.prompts.clone())
        .unwrap_or_default();
    let mut informal_text = previous.map(|home| home.informal).unwrap_or_default();
    informal_text.insert(language.clone(), informal);
    let mut edited_prompts = Vec::with_capacity(prompts.len());
    for (origin, prompt) in prompts {
        let mut text: LocalizedText = origin
            .and_then(|index| previous_prompts.get(index).cloned())
            .unwrap_or_default();
        text.insert(
            language.clone(),
            checked_text("prompts", prompt, MAX_TEXT_CHARS)?,
        );
        edited_prompts.push(text);
    }
    Ok(HomePractice {
        daily_minutes: edit.daily_minutes,
        days_per_week: edit.days_per_week,
        practices: edit.practices,
        informal: informal_text,
        prompts: edited_prompts,
    })
}

fn check_minutes(field: &'static str, minutes: u32, max: u32) -> Result<(), InvalidValue> {
    if minutes == 0 || minutes > max {
        return Err(InvalidValue::new(
            field,
            format!("{minutes} minutes is outside 1 to {max}; enter a length in that range"),
        ));
    }
    Ok(())
}

fn checked_text(field: &'static str, text: &str, max_chars: usize) -> Result<String, InvalidValue> {
    let text = text.trim();
    if text.is_empty() {
        return Err(InvalidValue::new(field, "this is empty; write it"));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(InvalidValue::new(
            field,
            format!("{chars} characters is too long; shorten it to {max_chars}"),
        ));
    }
    Ok(text.to_owned())
}

fn id_taken(id: &CurriculumId) -> AppError {
    InvalidValue::new(
        "new_id",
        format!("a curriculum with the id '{id}' exists already; choose another id"),
    )
    .into()
}

fn published_error() -> AppError {
    InvalidValue::new(
        "version",
        "this version is published and cannot change; start a new version to edit it",
    )
    .into()
}

fn changed_error() -> AppError {
    InvalidValue::new(
        "revision",
        "someone saved or published this draft since you opened it; reload the page to see their changes, then edit again",
    )
    .into()
}

/// Maps a rejected conditional update to the reason the editor can act on.
fn map_changed(error: StorageError) -> AppError {
    match error {
        StorageError::Conflict { constraint } if constraint == "curriculum_versions_changed" => {
            changed_error()
        }
        other => other.into(),
    }
}

async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    curriculum: &Curriculum,
    action: AuditAction,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient: None,
        resource_type: "PlanDefinition",
        resource_id: Some(format!("{}@{}", curriculum.id, curriculum.version)),
        action,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
