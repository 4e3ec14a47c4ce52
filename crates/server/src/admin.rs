//! `stillpoint admin`: accounts created from the command line, such as the first system
//! administrator of a new installation, and two-step verification reset for a lost phone.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};
use stillpoint_app::audit::AuditContext;
use stillpoint_app::auth::hash_password;
use stillpoint_app::mfa;
use stillpoint_app::ports::AccountStore as _;
use stillpoint_app::random::new_uuid;
use stillpoint_app::{AppError, StorageError, SystemClock};
use stillpoint_domain::{
    Account, AccountId, EmailAddress, Language, Role, RoleAssignment, TimeZoneName,
};

use crate::commands::prepare_storage;
use crate::server;
use crate::settings::Settings;

/// The environment variable a script can pass the new password in, instead of standard input.
const PASSWORD_VARIABLE: &str = "STILLPOINT_ADMIN_PASSWORD";

/// The administrator account that the command line requests.
#[derive(Debug)]
pub struct NewAdministrator {
    pub email: String,
    pub name: String,
    pub language: String,
    pub time_zone: String,
}

/// Creates a system administrator account with a password read from the environment or from
/// standard input. Its first sign-in sets up two-step verification.
pub async fn create_user(mut settings: Settings, request: NewAdministrator) -> anyhow::Result<()> {
    let account = Account {
        id: AccountId::from_uuid(new_uuid()),
        email: EmailAddress::parse(&request.email)
            .map_err(|error| anyhow::anyhow!("--email: {}", error.problem))?,
        display_name: Account::validate_display_name(&request.name)
            .map_err(|error| anyhow::anyhow!("--name: {}", error.problem))?,
        language: Language::parse(&request.language)
            .map_err(|error| anyhow::anyhow!("--language: {}", error.problem))?,
        time_zone: TimeZoneName::parse(&request.time_zone)
            .map_err(|error| anyhow::anyhow!("--time-zone: {}", error.problem))?,
        preferences: stillpoint_domain::DisplayPreferences::default(),
        roles: vec![RoleAssignment {
            role: Role::SystemAdministrator,
            site_id: None,
        }],
    };
    let password = read_password()?;
    let password_hash = match hash_password(&password) {
        Ok(hash) => hash,
        Err(AppError::Invalid(error)) => bail!("the password cannot be used: {}", error.problem),
        Err(other) => return Err(other.into()),
    };

    prepare_storage(&mut settings)?;
    let database = server::open_database(&settings).await?;
    let outcome = database.insert_account(&account, &password_hash).await;
    database.close().await;
    match outcome {
        Ok(()) => {}
        Err(StorageError::Conflict { constraint }) if constraint == "accounts_email_key" => {
            bail!(
                "an account with the e-mail address {} already exists; choose another address",
                account.email
            )
        }
        Err(other) => return Err(other.into()),
    }

    tracing::info!(account_id = %account.id, "system administrator created");
    println!(
        "Created system administrator {} ({}).",
        account.display_name, account.email
    );
    Ok(())
}

/// Removes the authenticator and recovery codes of the account with `email` and ends its
/// sessions. The audit event names no actor, because the command line has no signed-in account.
pub async fn reset_two_step(mut settings: Settings, email: &str) -> anyhow::Result<()> {
    let email = EmailAddress::parse(email)
        .map_err(|error| anyhow::anyhow!("--email: {}", error.problem))?;
    prepare_storage(&mut settings)?;
    let database = server::open_database(&settings).await?;
    let outcome = async {
        let account = database.find_credentials(&email).await?.account;
        let context = AuditContext::anonymous(None);
        mfa::reset(&database, &SystemClock, &context, account.id).await?;
        Ok::<_, AppError>(account)
    }
    .await;
    database.close().await;

    match outcome {
        Ok(account) => {
            println!(
                "Two-step verification of {} ({}) was reset; their next sign-in sets up a new authenticator app.",
                account.display_name, account.email
            );
            Ok(())
        }
        Err(AppError::Storage(StorageError::NotFound { .. })) => {
            bail!("no account has the e-mail address {email}; check the address")
        }
        Err(other) => Err(other.into()),
    }
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_VARIABLE) {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Password for the new administrator (input is shown; end with Enter):");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given; pipe it to standard input or set {PASSWORD_VARIABLE}");
    }
    Ok(password)
}
