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

/// The display name of an account, for naming staff in lists.
pub async fn display_name(
    store: &dyn crate::ports::Store,
    account: stillpoint_domain::AccountId,
) -> Result<String, AppError> {
    Ok(store.get_account(account).await?.display_name)
}
