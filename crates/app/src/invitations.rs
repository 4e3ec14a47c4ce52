//! Single-use links: staff, patient and caregiver invitations, and password resets.
//!
//! A link carries a random 256-bit token; only its SHA-256 is stored. It is shown once to the
//! person who issued it, to pass on.
// NOTE: links are shown to the issuer only; e-mailing them waits for the notifications service.

use jiff::{SignedDuration, Timestamp};
use stillpoint_domain::audit::{AuditAction, AuditOutcome};
use stillpoint_domain::care_team::{CaregiverGrant, CaregiverScope, RecordAccess};
use stillpoint_domain::{
    Account, AccountId, DisplayPreferences, EmailAddress, InvalidValue, PatientId, Role,
    RoleAssignment, SiteId, TimeZoneName,
};

use crate::audit::{self, AuditContext, AuditEntry};
use crate::auth::hash_password;
use crate::ports::{AccountLink, LinkPurpose, Store};
use crate::random::{new_token, new_uuid, token_digest};
use crate::{AppError, Clock, StorageError, care};

/// How long an invitation can be accepted.
pub const INVITATION_LIFETIME: SignedDuration = SignedDuration::from_hours(7 * 24);

/// How long a password reset link works.
pub const RESET_LIFETIME: SignedDuration = SignedDuration::from_hours(24);

/// A link just issued; `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub token: String,
    pub purpose: LinkPurpose,
    pub email: EmailAddress,
    pub expires_at: Timestamp,
}

/// The result of inviting a staff member.
#[derive(Debug, Clone)]
pub enum StaffInvitation {
    /// A new person: the link to pass on.
    Link(IssuedLink),
    /// The address already has an account, which now has the role too.
    RoleAdded(Account),
}

/// Invites a staff member, or gives an existing account the role. A system administrator may
/// assign any role; a program administrator only facilitator, clinician or program administrator
/// at their own sites.
#[allow(clippy::too_many_arguments)] // Each argument is one field of the invitation form.
pub async fn invite_staff(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    email: &str,
    display_name: &str,
    role: Role,
    site: Option<SiteId>,
) -> Result<StaffInvitation, AppError> {
    let email = EmailAddress::parse(email)?;
    let display_name = Account::validate_display_name(display_name)?;
    if !role.is_staff() {
        return Err(InvalidValue::new(
            "role",
            "patients and caregivers are invited from a patient's record or sharing page",
        )
        .into());
    }
    let assignment = RoleAssignment::new(role, site)?;
    if let Some(site) = site {
        store.get_site(site).await.map_err(|_| {
            InvalidValue::new(
                "site_id",
                "no site has this id; choose a site from the list",
            )
        })?;
    }
    if !may_assign(admin, assignment) {
        return Err(AppError::Forbidden);
    }

    match store.find_credentials(&email).await {
        Ok(existing) => {
            // Adding a role to an account the administrator does not fully manage, or to their
            // own, would let them take it over or raise their own access.
            let manageable = existing.account.id != admin.id
                && !existing.account.has_role(Role::Patient)
                && !existing.account.has_role(Role::Caregiver)
                && administers(store, admin, &existing.account).await?;
            if !manageable {
                return Err(AppError::Forbidden);
            }
            if existing.account.roles.contains(&assignment) {
                return Err(InvalidValue::new(
                    "email",
                    "this person already holds this role at this site",
                )
                .into());
            }
            store
                .add_role_assignment(existing.account.id, assignment)
                .await?;
            record(
                store,
                clock,
                context,
                AuditAction::Update,
                "Account",
                Some(existing.account.id.to_string()),
                None,
            )
            .await?;
            tracing::info!(account_id = %existing.account.id, role = %role, "role added to an existing account");
            let account = store.get_account(existing.account.id).await?;
            Ok(StaffInvitation::RoleAdded(account))
        }
        Err(StorageError::NotFound { .. }) => {
            let link = new_link(
                clock,
                LinkPurpose::StaffInvitation,
                email,
                display_name,
                admin,
                INVITATION_LIFETIME,
            );
            let link = AccountLink {
                roles: vec![assignment],
                ..link
            };
            issue(store, clock, context, link)
                .await
                .map(StaffInvitation::Link)
        }
        Err(other) => Err(other.into()),
    }
}

/// Invites a patient to create the sign-in account of their record. Staff of the patient's care
/// team may do this while the record has no account yet.
pub async fn invite_patient(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    staff: &Account,
    patient_id: PatientId,
    email: &str,
) -> Result<IssuedLink, AppError> {
    let patient = store.get_patient(patient_id).await?;
    if care::access_to(store, clock, staff, &patient).await? != RecordAccess::CareTeam {
        return Err(AppError::Forbidden);
    }
    if patient.account_id.is_some() {
        return Err(InvalidValue::new(
            "email",
            "this patient has an account already; they can ask for a password reset instead",
        )
        .into());
    }
    let email = unused_address(store, email).await?;
    let link = new_link(
        clock,
        LinkPurpose::PatientInvitation,
        email,
        format!("{} {}", patient.given_name, patient.family_name),
        staff,
        INVITATION_LIFETIME,
    );
    let link = AccountLink {
        roles: vec![RoleAssignment::new(Role::Patient, None)?],
        patient_id: Some(patient.id),
        language: patient.language.clone(),
        ..link
    };
    issue(store, clock, context, link).await
}

/// Invites a caregiver who has no account yet; accepting the invitation creates the account and
/// the patient's grant to it.
pub async fn invite_caregiver(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    patient_account: &Account,
    email: &str,
    scopes: &[CaregiverScope],
) -> Result<IssuedLink, AppError> {
    if scopes.is_empty() {
        return Err(InvalidValue::new(
            "scopes",
            "choose at least one thing to share with your caregiver",
        )
        .into());
    }
    let patient = store
        .find_patient_for_account(patient_account.id)
        .await
        .map_err(|_| AppError::Forbidden)?;
    let email = unused_address(store, email).await?;
    let link = new_link(
        clock,
        LinkPurpose::CaregiverInvitation,
        email,
        String::new(),
        patient_account,
        INVITATION_LIFETIME,
    );
    let link = AccountLink {
        roles: vec![RoleAssignment::new(Role::Caregiver, None)?],
        patient_id: Some(patient.id),
        scopes: scopes.to_vec(),
        language: patient.language.clone(),
        ..link
    };
    issue(store, clock, context, link).await
}

/// Issues a password reset link for `target`. A system administrator may reset any account; a
/// program administrator the accounts of staff and patients at their sites, but not a system
/// administrator's.
pub async fn issue_password_reset(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    target: AccountId,
) -> Result<IssuedLink, AppError> {
    let account = managed_account(store, admin, target).await?;
    let link = new_link(
        clock,
        LinkPurpose::PasswordReset,
        account.email.clone(),
        String::new(),
        admin,
        RESET_LIFETIME,
    );
    let link = AccountLink {
        account_id: Some(account.id),
        language: account.language.clone(),
        ..link
    };
    issue(store, clock, context, link).await
}

/// Lifts the sign-in throttle of an account that failed too often, for an administrator who has
/// confirmed the person's identity.
pub async fn unlock_sign_in(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    target: AccountId,
) -> Result<Account, AppError> {
    let account = managed_account(store, admin, target).await?;
    store.clear_sign_in_failures(&account.email).await?;
    record(
        store,
        clock,
        context,
        AuditAction::Update,
        "Account",
        Some(account.id.to_string()),
        None,
    )
    .await?;
    tracing::info!(account_id = %account.id, "sign-in throttle lifted by an administrator");
    Ok(account)
}

/// Returns the link for `token` if it can still be used, for the page that opens it.
pub async fn open_link(
    store: &dyn Store,
    clock: &dyn Clock,
    token: &str,
) -> Result<AccountLink, AppError> {
    let Some(link) = store.find_account_link(&token_digest(token)).await? else {
        return Err(AppError::LinkInvalid);
    };
    if link.used_at.is_some() {
        return Err(AppError::LinkUsed);
    }
    if clock.now() >= link.expires_at {
        return Err(AppError::LinkExpired);
    }
    Ok(link)
}

/// Creates the account of an invitation with the name and password the person chose.
pub async fn accept_invitation(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    token: &str,
    display_name: &str,
    password: &str,
    password_confirmation: &str,
) -> Result<Account, AppError> {
    let link = open_link(store, clock, token).await?;
    if !link.purpose.is_invitation() {
        return Err(AppError::LinkInvalid);
    }
    let display_name = Account::validate_display_name(display_name)?;
    let password_hash = new_password_hash(password, password_confirmation)?;
    let time_zone = time_zone_for(store, &link).await?;

    let account = Account {
        id: AccountId::from_uuid(new_uuid()),
        email: link.email.clone(),
        display_name,
        language: link.language.clone(),
        time_zone,
        roles: link.roles.clone(),
        preferences: DisplayPreferences::default(),
    };
    let now = clock.now();
    let grant = match (link.purpose, link.patient_id) {
        (LinkPurpose::CaregiverInvitation, Some(patient_id)) => Some(CaregiverGrant {
            patient_id,
            caregiver: account.id,
            scopes: link.scopes.clone(),
            granted_at: now,
            revoked_at: None,
        }),
        _ => None,
    };
    store
        .redeem_invitation(
            &link.token_digest,
            now,
            &account,
            &password_hash,
            grant.as_ref(),
        )
        .await
        .map_err(redeem_error)?;

    let context = AuditContext::for_account(&account, context.source_address.clone());
    record(
        store,
        clock,
        &context,
        AuditAction::Create,
        "Account",
        Some(account.id.to_string()),
        link.patient_id,
    )
    .await?;
    tracing::info!(account_id = %account.id, purpose = link.purpose.code(), "invitation accepted");
    Ok(account)
}

/// Sets a new password with a reset link, ending every session of the account.
pub async fn reset_password(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    token: &str,
    password: &str,
    password_confirmation: &str,
) -> Result<Account, AppError> {
    let link = open_link(store, clock, token).await?;
    let (LinkPurpose::PasswordReset, Some(account_id)) = (link.purpose, link.account_id) else {
        return Err(AppError::LinkInvalid);
    };
    let password_hash = new_password_hash(password, password_confirmation)?;
    store
        .redeem_password_reset(&link.token_digest, clock.now(), account_id, &password_hash)
        .await
        .map_err(redeem_error)?;

    let account = store.get_account(account_id).await?;
    let context = AuditContext::for_account(&account, context.source_address.clone());
    record(
        store,
        clock,
        &context,
        AuditAction::Update,
        "Account",
        Some(account.id.to_string()),
        None,
    )
    .await?;
    tracing::info!(account_id = %account.id, "password reset with a link");
    Ok(account)
}

/// Lists the accounts `admin` manages, for the staff page. The list names patients' accounts
/// too, so the read is audited.
pub async fn managed_accounts(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
) -> Result<Vec<Account>, AppError> {
    let mut managed = Vec::new();
    for account in store.list_accounts().await? {
        if administers(store, admin, &account).await? {
            managed.push(account);
        }
    }
    record(
        store,
        clock,
        context,
        AuditAction::Read,
        "AccountList",
        None,
        None,
    )
    .await?;
    Ok(managed)
}

/// Removes one role from an account `admin` manages, effective on the account's next request. An
/// administrator may remove only roles they may also assign.
pub async fn remove_role(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    target: AccountId,
    assignment: RoleAssignment,
) -> Result<Account, AppError> {
    let account = managed_account(store, admin, target).await?;
    if !may_assign(admin, assignment) {
        return Err(AppError::Forbidden);
    }
    if admin.id == account.id {
        return Err(InvalidValue::new(
            "role",
            "you cannot remove your own role; ask another administrator",
        )
        .into());
    }
    if !store.remove_role_assignment(account.id, assignment).await? {
        return Err(InvalidValue::new("role", "the account does not hold this role").into());
    }
    record(
        store,
        clock,
        context,
        AuditAction::Update,
        "Account",
        Some(account.id.to_string()),
        None,
    )
    .await?;
    tracing::info!(account_id = %account.id, role = %assignment.role, "role removed");
    Ok(account)
}

/// Deactivates an account `admin` manages, ending its sessions at once, or reactivates it. A
/// deactivated account cannot sign in; its records and audit history stay.
pub async fn set_active(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    target: AccountId,
    active: bool,
) -> Result<Account, AppError> {
    let account = managed_account(store, admin, target).await?;
    if admin.id == account.id {
        return Err(InvalidValue::new(
            "account",
            "you cannot deactivate your own account; ask another administrator",
        )
        .into());
    }
    let at = (!active).then(|| clock.now());
    store.set_account_deactivated(account.id, at).await?;
    if let Some(at) = at {
        let revoked = store.revoke_links_created_by(account.id, at).await?;
        tracing::info!(account_id = %account.id, revoked, "links issued by a deactivated account revoked");
    }
    record(
        store,
        clock,
        context,
        AuditAction::Update,
        "Account",
        Some(account.id.to_string()),
        None,
    )
    .await?;
    tracing::info!(account_id = %account.id, active, "account activation changed");
    Ok(account)
}

/// Lists the ids of deactivated accounts, for the staff page.
pub async fn deactivated_accounts(store: &dyn Store) -> Result<Vec<AccountId>, AppError> {
    Ok(store.deactivated_accounts().await?)
}

/// Removes the authenticator of an account `admin` manages, for someone who lost their phone
/// and recovery codes.
pub async fn reset_two_step(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    admin: &Account,
    target: AccountId,
) -> Result<Account, AppError> {
    let account = managed_account(store, admin, target).await?;
    crate::mfa::reset(store, clock, context, account.id).await?;
    Ok(account)
}

/// Lists unused, unexpired invitations to staff roles at the sites `admin` administers.
pub async fn open_staff_invitations(
    store: &dyn Store,
    clock: &dyn Clock,
    admin: &Account,
) -> Result<Vec<AccountLink>, AppError> {
    let links = store.open_invitations(clock.now()).await?;
    Ok(links
        .into_iter()
        .filter(|link| link.purpose == LinkPurpose::StaffInvitation)
        .filter(|link| link.roles.iter().all(|held| may_assign(admin, *held)))
        .collect())
}

/// Loads the account `target`, or fails with `Forbidden` when `admin` does not manage it.
async fn managed_account(
    store: &dyn Store,
    admin: &Account,
    target: AccountId,
) -> Result<Account, AppError> {
    let account = store.get_account(target).await?;
    if !administers(store, admin, &account).await? {
        return Err(AppError::Forbidden);
    }
    Ok(account)
}

/// Returns whether `admin` may manage `account`: issue a reset link or lift its throttle.
async fn administers(
    store: &dyn Store,
    admin: &Account,
    account: &Account,
) -> Result<bool, AppError> {
    if admin.has_role(Role::SystemAdministrator) {
        return Ok(true);
    }
    if account.has_role(Role::SystemAdministrator) || admin.id == account.id {
        return Ok(false);
    }
    let admin_sites: Vec<SiteId> = admin
        .roles
        .iter()
        .filter(|held| held.role == Role::ProgramAdministrator)
        .filter_map(|held| held.site_id)
        .collect();

    // Every site the account is tied to must be one of the administrator's, so a role at one
    // shared site does not hand over an account that also works elsewhere.
    let mut tied_sites: Vec<SiteId> = account
        .roles
        .iter()
        .filter_map(|held| held.site_id)
        .collect();
    if account.has_role(Role::Patient) {
        match store.find_patient_for_account(account.id).await {
            Ok(patient) => tied_sites.push(patient.site_id),
            Err(StorageError::NotFound { .. }) => return Ok(false),
            Err(other) => return Err(other.into()),
        }
    }
    if account.has_role(Role::Caregiver) {
        for (patient, _) in store.patients_of_caregiver(account.id).await? {
            tied_sites.push(patient.site_id);
        }
    }
    Ok(!tied_sites.is_empty() && tied_sites.iter().all(|site| admin_sites.contains(site)))
}

/// Returns whether `admin` may give someone `assignment`, or remove it.
#[must_use]
pub fn may_assign(admin: &Account, assignment: RoleAssignment) -> bool {
    if admin.has_role(Role::SystemAdministrator) {
        return true;
    }
    let site_scoped_staff = matches!(
        assignment.role,
        Role::Facilitator | Role::Clinician | Role::ProgramAdministrator
    );
    site_scoped_staff
        && admin.roles.iter().any(|held| {
            held.role == Role::ProgramAdministrator && held.site_id == assignment.site_id
        })
}

async fn unused_address(store: &dyn Store, email: &str) -> Result<EmailAddress, AppError> {
    let email = EmailAddress::parse(email)?;
    match store.find_credentials(&email).await {
        Ok(_) => Err(InvalidValue::new(
            "email",
            "an account with this address exists already; use another address",
        )
        .into()),
        Err(StorageError::NotFound { .. }) => Ok(email),
        Err(other) => Err(other.into()),
    }
}

fn new_password_hash(password: &str, confirmation: &str) -> Result<String, AppError> {
    if password != confirmation {
        return Err(InvalidValue::new(
            "password_confirmation",
            "the two passwords differ; type the same password twice",
        )
        .into());
    }
    hash_password(password)
}

/// Chooses the new account's time zone: its patient's, or its first site's, else UTC.
async fn time_zone_for(store: &dyn Store, link: &AccountLink) -> Result<TimeZoneName, AppError> {
    if let Some(patient) = link.patient_id {
        return Ok(store.get_patient(patient).await?.time_zone);
    }
    if let Some(site) = link.roles.iter().find_map(|held| held.site_id) {
        return Ok(store.get_site(site).await?.time_zone);
    }
    Ok(TimeZoneName::parse("UTC")?)
}

fn new_link(
    clock: &dyn Clock,
    purpose: LinkPurpose,
    email: EmailAddress,
    display_name: String,
    issuer: &Account,
    lifetime: SignedDuration,
) -> AccountLink {
    let now = clock.now();
    AccountLink {
        token_digest: String::new(),
        purpose,
        email,
        display_name,
        roles: Vec::new(),
        patient_id: None,
        scopes: Vec::new(),
        account_id: None,
        language: issuer.language.clone(),
        created_by: Some(issuer.id),
        created_at: now,
        expires_at: now.saturating_add(lifetime).unwrap_or(now),
        used_at: None,
    }
}

async fn issue(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    link: AccountLink,
) -> Result<IssuedLink, AppError> {
    let token = new_token();
    let link = AccountLink {
        token_digest: token_digest(&token),
        ..link
    };
    store.insert_account_link(&link).await?;
    let resource = if link.purpose.is_invitation() {
        "Invitation"
    } else {
        "PasswordReset"
    };
    record(
        store,
        clock,
        context,
        AuditAction::Create,
        resource,
        None,
        link.patient_id,
    )
    .await?;
    tracing::info!(purpose = link.purpose.code(), "single-use link issued");
    Ok(IssuedLink {
        token,
        purpose: link.purpose,
        email: link.email,
        expires_at: link.expires_at,
    })
}

fn redeem_error(error: StorageError) -> AppError {
    match error {
        StorageError::Conflict { constraint } if constraint == "account_links_used" => {
            AppError::LinkUsed
        }
        StorageError::Conflict { constraint } if constraint == "accounts_email_key" => {
            InvalidValue::new(
                "email",
                "an account with this address exists already; sign in instead",
            )
            .into()
        }
        other => other.into(),
    }
}

async fn record(
    store: &dyn Store,
    clock: &dyn Clock,
    context: &AuditContext,
    action: AuditAction,
    resource_type: &'static str,
    resource_id: Option<String>,
    patient: Option<PatientId>,
) -> Result<(), AppError> {
    let entry = AuditEntry {
        patient,
        resource_type,
        resource_id,
        action,
        outcome: AuditOutcome::Success,
        break_glass: false,
    };
    audit::record(store, clock, context, entry).await?;
    Ok(())
}
