//! Changing an account's own settings.

use stillpoint_domain::{Account, Language};

use crate::AppError;
use crate::ports::Store;

/// Stores `language` as the account's interface language and returns the updated account. The
/// caller has checked that the language is offered.
pub async fn set_language(
    store: &dyn Store,
    account: Account,
    language: Language,
) -> Result<Account, AppError> {
    store.set_account_language(account.id, &language).await?;
    tracing::info!(account_id = %account.id, language = %language, "interface language changed");

    Ok(Account {
        language,
        ..account
    })
}

/// Returns the display name of an account, for naming staff in lists.
pub async fn display_name(
    store: &dyn crate::ports::Store,
    account: stillpoint_domain::AccountId,
) -> Result<String, AppError> {
    Ok(store.get_account(account).await?.display_name)
}

/// The settings a person changes on their profile page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChange {
    pub display_name: String,
    pub language: Language,
    pub time_zone: stillpoint_domain::TimeZoneName,
    pub preferences: stillpoint_domain::DisplayPreferences,
}

/// Stores the account's own profile settings, audited, and returns the updated account. The
/// caller has checked that the language is offered.
pub async fn update_profile(
    store: &dyn Store,
    clock: &dyn crate::Clock,
    context: &crate::audit::AuditContext,
    account: &Account,
    change: ProfileChange,
) -> Result<Account, AppError> {
    let updated = Account {
        display_name: Account::validate_display_name(&change.display_name)?,
        language: change.language,
        time_zone: change.time_zone,
        preferences: change.preferences,
        ..account.clone()
    };
    store.set_account_profile(&updated).await?;
    record_own_change(store, clock, context, account.id).await?;
    tracing::info!(account_id = %account.id, "profile updated");
    Ok(updated)
}

/// Records in the audit trail that a person changed their own account's settings.
pub async fn record_own_change(
    store: &dyn Store,
    clock: &dyn crate::Clock,
    context: &crate::audit::AuditContext,
    account: stillpoint_domain::AccountId,
) -> Result<(), AppError> {
    let entry = crate::audit::AuditEntry {
        patient: None,
        resource_type: "Account",
        resource_id: Some(account.to_string()),
        action: stillpoint_domain::audit::AuditAction::Update,
        outcome: stillpoint_domain::audit::AuditOutcome::Success,
        break_glass: false,
    };
    crate::audit::record(store, clock, context, entry).await?;
    Ok(())
}

/// Finds the id of the account with `email`, for filters that accept an address.
pub async fn id_for_email(
    store: &dyn Store,
    email: &str,
) -> Result<Option<stillpoint_domain::AccountId>, AppError> {
    let email = stillpoint_domain::EmailAddress::parse(email)?;
    match store.find_credentials(&email).await {
        Ok(credentials) => Ok(Some(credentials.account.id)),
        Err(crate::StorageError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// Looks up the display names of `ids`; ids without an account (removed ones) are left out.
pub async fn display_names(
    store: &dyn Store,
    ids: &[stillpoint_domain::AccountId],
) -> Result<std::collections::HashMap<stillpoint_domain::AccountId, String>, AppError> {
    let mut names = std::collections::HashMap::new();
    for id in ids {
        if names.contains_key(id) {
            continue;
        }
        match store.get_account(*id).await {
            Ok(account) => {
                names.insert(*id, account.display_name);
            }
            Err(crate::StorageError::NotFound { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    Ok(names)
}
