//! Creating a cohort: its details, facilitators and planned sessions, checked and stored
//! together, and reading its sessions.

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime, Time};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::care_team::Cohort;
use stillpoint_domain::curriculum::CurriculumId;
use stillpoint_domain::schedule::{self, PlannedSession, ScheduleRequest};
use stillpoint_domain::{
    Account, AccountId, CohortId, InvalidValue, Language, Role, SiteId, TimeZoneName,
};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::ports::{CurriculumStatus, NewCohort, Store};
use crate::random::new_uuid;
use crate::{AppError, Clock, StorageError};

/// The largest cohort: MBSR groups are small so everyone can take part in inquiry.
pub const MAX_CAPACITY: u32 = 40;

/// The fields an administrator submits to create a cohort.
#[derive(Debug, Clone)]
pub struct CohortRequest {
    pub site: SiteId,
    pub name: String,
    pub capacity: u32,
    pub language: Language,
    pub time_zone: String,
    pub lead_facilitator: AccountId,
    pub co_facilitator: Option<AccountId>,
    /// `embedded`, `livekit` or `external`.
    pub video_provider: String,
    pub orientation_date: Date,
    pub first_class_date: Date,
    pub class_time: Time,
    pub class_minutes: i64,
    pub retreat_start: DateTime,
    pub retreat_minutes: i64,
    pub skip_dates: Vec<Date>,
    /// The published curriculum version the cohort follows.
    pub curriculum_id: String,
    pub curriculum_version: u32,
}

/// A created cohort with its planned sessions.
#[derive(Debug, Clone)]
pub struct CreatedCohort {
    pub cohort: Cohort,
    pub sessions: Vec<PlannedSession>,
}

/// Creates a cohort at a site the administrator manages. Nothing is stored unless every part is
/// valid.
pub async fn create(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    request: CohortRequest,
) -> Result<CreatedCohort, AppError> {
    let manages_site = admin.has_role(Role::SystemAdministrator)
        || admin.roles.iter().any(|held| {
            held.role == Role::ProgramAdministrator && held.site_id == Some(request.site)
        });
    if !manages_site {
        return Err(AppError::Forbidden);
    }
    store
        .get_site(request.site)
        .await
        .map_err(|error| match error {
            StorageError::NotFound { .. } => AppError::from(InvalidValue::new(
                "site_id",
                "no site has this id; choose a site",
            )),
            other => other.into(),
        })?;

    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(
            InvalidValue::new("name", "give the cohort a name of 1 to 120 characters").into(),
        );
    }
    if request.capacity == 0 || request.capacity > MAX_CAPACITY {
        return Err(InvalidValue::new(
            "capacity",
            format!(
                "{} is outside 1 to {MAX_CAPACITY}; choose a group size in that range",
                request.capacity
            ),
        )
        .into());
    }
    let video_provider = match request.video_provider.as_str() {
        "embedded" => "embedded",
        "livekit" => "livekit",
        "external" => "external",
        other => {
            return Err(InvalidValue::new(
                "video_provider",
                format!("'{other}' is not a video provider; use embedded, livekit or external"),
            )
            .into());
        }
    };
    let time_zone = TimeZoneName::parse(&request.time_zone)?;
    let facilitators = check_facilitators(store, &request).await?;
    let curriculum = check_curriculum(store, &request).await?;

    let today = clock.now().to_zoned_datetime(time_zone.time_zone()).date();
    let sessions = schedule::plan(
        &ScheduleRequest {
            time_zone: time_zone.clone(),
            orientation_date: request.orientation_date,
            first_class_date: request.first_class_date,
            class_time: request.class_time,
            class_length: SignedDuration::from_mins(request.class_minutes),
            retreat_start: request.retreat_start,
            retreat_length: SignedDuration::from_mins(request.retreat_minutes),
            skip_dates: request.skip_dates.clone(),
        },
        today,
    )?;

    let cohort = Cohort {
        id: CohortId::from_uuid(new_uuid()),
        site_id: request.site,
        name,
    };
    store
        .create_cohort(
            &NewCohort {
                cohort: cohort.clone(),
                capacity: request.capacity,
                language: request.language,
                time_zone,
                video_provider,
                facilitators,
                sessions: sessions.clone(),
                curriculum,
            },
            clock.now(),
        )
        .await?;
    let entry = AuditEntry {
        patient: None,
        resource_type: "Cohort",
        resource_id: Some(cohort.id.to_string()),
        action: AuditAction::Create,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    tracing::info!(cohort_id = %cohort.id, sessions = sessions.len(), "cohort created");
    Ok(CreatedCohort { cohort, sessions })
}

/// Returns the facilitators as (account, lead), after checking that each has the facilitator
/// role at the cohort's site.
async fn check_facilitators(
    store: &dyn Store,
    request: &CohortRequest,
) -> Result<Vec<(AccountId, bool)>, AppError> {
    let mut facilitators = vec![(request.lead_facilitator, true)];
    if let Some(co) = request.co_facilitator {
        if co == request.lead_facilitator {
            return Err(InvalidValue::new(
                "co_facilitator_id",
                "the co-facilitator must be another person than the lead",
            )
            .into());
        }
        facilitators.push((co, false));
    }
    for (account, lead) in &facilitators {
        let field = if *lead {
            "lead_facilitator_id"
        } else {
            "co_facilitator_id"
        };
        let is_facilitator = match store.get_account(*account).await {
            Ok(account) => account
                .roles
                .iter()
                .any(|held| held.role == Role::Facilitator && held.site_id == Some(request.site)),
            Err(StorageError::NotFound { .. }) => false,
            Err(other) => return Err(other.into()),
        };
        if !is_facilitator {
            return Err(InvalidValue::new(
                field,
                "this person is not a facilitator at the cohort's site; choose a facilitator of that site",
            )
            .into());
        }
    }
    Ok(facilitators)
}

/// Returns the curriculum version after checking that it exists and is published.
async fn check_curriculum(
    store: &dyn Store,
    request: &CohortRequest,
) -> Result<(CurriculumId, u32), AppError> {
    let id = CurriculumId::parse(&request.curriculum_id)?;
    let stored = match store
        .get_curriculum_version(&id, request.curriculum_version)
        .await
    {
        Ok(stored) => stored,
        Err(StorageError::NotFound { .. }) => {
            return Err(InvalidValue::new(
                "curriculum",
                format!(
                    "no curriculum '{id}' version {} exists; choose one from the curriculum library",
                    request.curriculum_version
                ),
            )
            .into());
        }
        Err(other) => return Err(other.into()),
    };
    if stored.status != CurriculumStatus::Published {
        return Err(InvalidValue::new(
            "curriculum",
            format!(
                "'{id}' version {} is a draft; publish it first or choose a published version",
                request.curriculum_version
            ),
        )
        .into());
    }
    Ok((id, request.curriculum_version))
}

/// The choices the cohort builder offers an administrator.
#[derive(Debug, Clone)]
pub struct BuilderChoices {
    pub sites: Vec<stillpoint_domain::Site>,
    /// Facilitators at those sites, with the sites where each facilitates.
    pub facilitators: Vec<(Account, Vec<SiteId>)>,
    /// The latest published version of each curriculum.
    pub curricula: Vec<stillpoint_domain::curriculum::Curriculum>,
}

/// Loads the builder's choices for `admin`.
pub async fn builder_choices(
    store: &dyn Store,
    admin: &Account,
) -> Result<BuilderChoices, AppError> {
    let sites: Vec<stillpoint_domain::Site> = crate::sites::list_sites(store, admin)
        .await?
        .into_iter()
        .map(|summary| summary.site)
        .collect();
    let site_ids: Vec<SiteId> = sites.iter().map(|site| site.id).collect();
    let facilitators = store
        .list_accounts()
        .await?
        .into_iter()
        .filter_map(|account| {
            let at: Vec<SiteId> = account
                .roles
                .iter()
                .filter(|held| held.role == Role::Facilitator)
                .filter_map(|held| held.site_id)
                .filter(|site| site_ids.contains(site))
                .collect();
            (!at.is_empty()).then_some((account, at))
        })
        .collect();
    let mut curricula: Vec<stillpoint_domain::curriculum::Curriculum> = Vec::new();
    for stored in store.list_curriculum_versions().await? {
        if stored.status != CurriculumStatus::Published {
            continue;
        }
        curricula.retain(|kept| kept.id != stored.curriculum.id);
        curricula.push(stored.curriculum);
    }
    Ok(BuilderChoices {
        sites,
        facilitators,
        curricula,
    })
}
