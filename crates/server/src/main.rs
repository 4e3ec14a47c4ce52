//! The `stillpoint` command: serve the web application, run the demo clinic, apply migrations,
//! print the default settings file.

mod admin;
mod audit_trail;
mod commands;
mod demo;
mod jobs;
mod programs;
mod score;
mod server;
mod settings;
mod telemetry;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::settings::{FileSettings, Overrides, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "stillpoint",
    version,
    about = "Virtual Mindfulness-Based Stress Reduction programs for clinics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server.
    Serve(ServeArgs),
    /// Run the server on a fresh demo clinic with synthetic patients, and print demo sign-ins.
    Demo(DemoArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print a commented settings file with every default.
    PrintConfig,
    /// Administer accounts from the command line.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Score a CSV of questionnaire responses (one row per response, one column per item).
    #[command(
        long_about = "Score a CSV of questionnaire responses, as exported from REDCap or a spreadsheet: \
                      one row per response, each item in a column named by its id (such as 9) or ending \
                      in _ and the id (such as phq9_9). Writes every other column unchanged, then each \
                      scale's raw score, score, band and incomplete flag, the safety rules the row fired, \
                      and the problems found. Exits with status 1 when a row has a problem."
    )]
    Score(ScoreArgs),
}

#[derive(Debug, clap::Args)]
struct ScoreArgs {
    /// The instrument's id, such as phq-9 or gad-7.
    #[arg(long)]
    instrument: String,
    /// The CSV file of responses.
    #[arg(long)]
    csv: std::path::PathBuf,
    /// Where to write the scored CSV; standard output when left out.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the whole audit trail, check every hash link and the signed checkpoint, and report
    /// the first broken event. Exits with status 1 when the trail is broken.
    Verify(DatabaseArgs),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a system administrator account, such as the first one of a new installation.
    #[command(
        long_about = "Create a system administrator account, such as the first one of a new installation. \
                      The password is read from one line of standard input, or from the environment \
                      variable STILLPOINT_ADMIN_PASSWORD when it is set."
    )]
    CreateUser(CreateUserArgs),
    /// Remove a staff member's authenticator app and recovery codes, for someone who lost both.
    #[command(
        long_about = "Remove a staff member's authenticator app and recovery codes, for someone who lost both. \
                      Their sessions end, and their next sign-in sets up a new authenticator. \
                      Check the person's identity before running this; the reset is recorded in the audit trail."
    )]
    ResetTwoStep(ResetTwoStepArgs),
}

#[derive(Debug, Args)]
struct ResetTwoStepArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The e-mail address of the account to reset.
    #[arg(long, value_name = "ADDRESS")]
    email: String,
}

#[derive(Debug, Args)]
struct CreateUserArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The administrator's e-mail address, used to sign in.
    #[arg(long, value_name = "ADDRESS")]
    email: String,
    /// The name shown in the interface.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Preferred interface language (BCP 47 tag).
    #[arg(long, value_name = "TAG", default_value = "en")]
    language: String,
    /// IANA time zone in which times are shown.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    time_zone: String,
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// Settings file in TOML (see `stillpoint print-config`).
    #[arg(long, env = "STILLPOINT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder for the SQLite database and files [default: stillpoint-data].
    #[arg(long, env = "STILLPOINT_DATA_DIR", value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE); SQLite in the data folder when unset.
    #[arg(
        long,
        env = "STILLPOINT_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Debug, Args)]
struct LogArgs {
    /// Log format: text or json.
    #[arg(long, env = "STILLPOINT_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Log filter: error, warn, info, debug or trace.
    #[arg(long, env = "STILLPOINT_LOG_LEVEL", value_name = "LEVEL")]
    log_level: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "STILLPOINT_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<String>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "STILLPOINT_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Folder for the demo's database, kept after the demo stops; a temporary folder, deleted
    /// at exit, when unset.
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

/// Exit status for invalid flags or settings (as clap uses for usage errors).
const EXIT_USAGE: u8 = 2;
/// Exit status for failures while running.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return report_usage_error(&error),
    };

    match cli.command {
        Command::PrintConfig => {
            print!("{}", settings::DEFAULT_FILE);
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let overrides = Overrides {
                listen: args.listen,
                data_dir: args.database.data_dir,
                database_url: args.database.database_url,
                log_format: args.database.log.log_format,
                log_level: args.database.log.log_level,
            };
            with_settings(args.database.config.as_deref(), overrides, |settings| {
                run(async move { commands::serve(settings).await })
            })
        }
        Command::Migrate(args) => {
            let overrides = Overrides {
                data_dir: args.data_dir,
                database_url: args.database_url,
                log_format: args.log.log_format,
                log_level: args.log.log_level,
                ..Overrides::default()
            };
            with_settings(args.config.as_deref(), overrides, |settings| {
                run(async move { commands::migrate(settings).await })
            })
        }
        Command::Admin(AdminCommand::CreateUser(args)) => {
            let overrides = Overrides {
                data_dir: args.database.data_dir.clone(),
                database_url: args.database.database_url.clone(),
                log_format: args.database.log.log_format.clone(),
                log_level: args.database.log.log_level.clone(),
                ..Overrides::default()
            };
            let request = admin::NewAdministrator {
                email: args.email,
                name: args.name,
                language: args.language,
                time_zone: args.time_zone,
            };
            with_settings(args.database.config.as_deref(), overrides, |settings| {
                run(async move { admin::create_user(settings, request).await })
            })
        }
        Command::Admin(AdminCommand::ResetTwoStep(args)) => {
            let overrides = Overrides {
                data_dir: args.database.data_dir.clone(),
                database_url: args.database.database_url.clone(),
                log_format: args.database.log.log_format.clone(),
                log_level: args.database.log.log_level.clone(),
                ..Overrides::default()
            };
            let email = args.email;
            with_settings(args.database.config.as_deref(), overrides, |settings| {
                run(async move { admin::reset_two_step(settings, &email).await })
            })
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            let overrides = Overrides {
                data_dir: args.data_dir,
                database_url: args.database_url,
                log_format: args.log.log_format,
                log_level: args.log.log_level,
                ..Overrides::default()
            };
            with_settings(args.config.as_deref(), overrides, |settings| {
                run(async move { audit_trail::verify(settings).await })
            })
        }
        Command::Score(args) => score_command(&args),
        Command::Demo(args) => {
            let overrides = Overrides {
                listen: args.listen,
                data_dir: args.data_dir.clone(),
                log_format: args.log.log_format,
                log_level: args.log.log_level,
                ..Overrides::default()
            };
            with_settings(None, overrides, |settings| {
                run(async move { demo::run(settings, args.data_dir.is_some()).await })
            })
        }
    }
}

/// Prints clap's help and version in full, and any other error as one line.
fn report_usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;

    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = error.render().to_string();
    let first_line = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments");
    eprintln!(
        "{first_line}; run 'stillpoint --help' or 'stillpoint COMMAND --help' for the options"
    );
    ExitCode::from(EXIT_USAGE)
}

fn with_settings(
    config: Option<&Path>,
    overrides: Overrides,
    action: impl FnOnce(Settings) -> ExitCode,
) -> ExitCode {
    let file = match config.map(FileSettings::read).transpose() {
        Ok(file) => file.unwrap_or_default(),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match Settings::resolve(file, overrides) {
        Ok(settings) => {
            telemetry::init(settings.log_format, &settings.log_level);
            action(settings)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(task: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line on standard error, which service managers also collect as the log.
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn score_command(args: &ScoreArgs) -> ExitCode {
    let result = match &args.output {
        Some(path) => std::fs::File::create(path)
            .map_err(anyhow::Error::from)
            .and_then(|file| {
                let mut writer = std::io::BufWriter::new(file);
                score::run(&args.instrument, &args.csv, &mut writer)
            }),
        None => score::run(&args.instrument, &args.csv, &mut std::io::stdout().lock()),
    };
    match result {
        Ok(summary) if summary.rows_with_problems == 0 => {
            eprintln!("{} rows scored", summary.rows);
            ExitCode::SUCCESS
        }
        Ok(summary) => {
            eprintln!(
                "{} rows scored; {} have problems, listed in their problems column",
                summary.rows, summary.rows_with_problems
            );
            ExitCode::from(EXIT_FAILURE)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
