//! `stillpoint-bench submit`: PHQ-9 submissions through the JSON API under wrk load, and a bare
//! loop of single-row durable SQLite commits on the same disk for comparison.
//!
//! The server runs the full application on a database seeded with the demo clinic. Every
//! request is a new response (its own client id) from the demo patient, and every tenth one
//! answers item 9 above 0, so it also raises a safety alert. Each acknowledged (201) request has
//! committed its response, scores, any alert and the audit events with `synchronous=FULL`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use jiff::SignedDuration;
use sqlx::{Connection as _, Executor as _};
use stillpoint_app::ports::{
    AccountStore as _, MeasureStore as _, PatientStore as _, SessionStore as _, SignInSession,
};
use stillpoint_app::{Clock as _, SystemClock, demo};
use stillpoint_domain::EmailAddress;
use stillpoint_storage::{Database, DatabaseUrl};
use stillpoint_web::i18n::Catalogs;
use stillpoint_web::{AppState, WebConfig};

use super::{LoadResult, Options, run_wrk_script, serve};

/// Seconds of the bare commit loop.
const BARE_LOOP_SECONDS: u64 = 5;

pub fn run(options: &Options) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(options.log_level.as_str())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The data folder sits next to the build, on the disk the bare loop measures too.
    let data = tempfile::tempdir_in(".").context("cannot create a data folder here")?;
    let url = match &options.database_url {
        Some(text) => DatabaseUrl::parse(text)?,
        None => DatabaseUrl::sqlite_in(data.path()),
    };

    let (address, database, path, token) = runtime.block_on(prepare(&url))?;
    let script = data.path().join("submit.lua");
    std::fs::write(&script, lua_script(&path, &token))?;

    let url_text = format!("http://{address}{path}");
    run_wrk_script(&url_text, Some(&script), options, 2)?;
    let before = runtime.block_on(count(&database, &path))?;
    let batches_before = stillpoint_storage::response_batch_counts();
    let started = Instant::now();
    let result = run_wrk_script(&url_text, Some(&script), options, options.duration_seconds)?;
    let elapsed = started.elapsed();
    let after = runtime.block_on(count(&database, &path))?;
    let batches_after = stillpoint_storage::response_batch_counts();
    let batches = batches_after.0 - batches_before.0;
    let submissions = batches_after.1 - batches_before.1;

    let bare = runtime.block_on(bare_commit_loop(data.path()))?;
    print_report(options, &url, &result, after - before, elapsed, bare);
    #[allow(clippy::cast_precision_loss)]
    let average = submissions as f64 / batches.max(1) as f64;
    println!();
    println!(
        "{submissions} submissions committed in {batches} transactions: {average:.1} per commit on average."
    );
    Ok(())
}

/// Seeds the demo clinic, serves the application and opens a session for the demo patient.
/// Returns the address, the database, the responses path and the bearer token.
async fn prepare(
    url: &DatabaseUrl,
) -> anyhow::Result<(std::net::SocketAddr, Database, String, String)> {
    let database = Database::connect(url).await?;
    database.migrate().await?;
    let clock = SystemClock;
    let now = clock.now();
    let curricula = stillpoint_web::curriculum_files::load()?;
    stillpoint_app::curricula::install_bundled(&database, &clock, &curricula).await?;
    let config = WebConfig::default();
    let clinic = demo::generate(2026, now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date());
    let consents = stillpoint_web::consent_files::load(None)?;
    demo::seed(
        &database,
        &config.secrets,
        &consents,
        &curricula,
        &stillpoint_web::measure_files::load()?,
        &clinic,
        now,
    )
    .await?;

    let email = EmailAddress::parse("patient@demo-clinic.example")?;
    let account = database.find_credentials(&email).await?.account;
    let patient = database.find_patient_for_account(account.id).await?;
    let token = stillpoint_app::random::new_token();
    database
        .insert_session(&SignInSession {
            token_digest: stillpoint_app::random::token_digest(&token),
            account_id: account.id,
            created_at: now,
            last_seen_at: now,
            expires_at: now
                .checked_add(SignedDuration::from_hours(12))
                .map_err(|error| anyhow!("{error}"))?,
            second_factor_at: Some(now),
        })
        .await?;

    let state = AppState::new(
        Arc::new(database.clone()),
        Arc::new(SystemClock),
        Catalogs::load(None)?,
        config,
    );
    let address = serve(stillpoint_web::router(state)).await?;
    Ok((
        address,
        database,
        format!("/api/v1/patients/{}/responses", patient.id),
        token,
    ))
}

/// Counts the stored responses of the patient in `path`.
async fn count(database: &Database, path: &str) -> anyhow::Result<usize> {
    let id = path
        .split('/')
        .nth(4)
        .ok_or_else(|| anyhow!("no patient in {path}"))?
        .parse()
        .map_err(|error| anyhow!("{error}"))?;
    Ok(database.responses_of_patient(id).await?.len())
}

/// A wrk script that posts a new PHQ-9 response per request. Each wrk thread numbers its own
/// requests, and the thread's address in memory keeps client ids apart across threads.
fn lua_script(path: &str, token: &str) -> String {
    let mut script = String::new();
    let _ = write!(
        script,
        r#"local counter = 0
local prefix = tostring({{}}):gsub("table: ", "")
local headers = {{ ["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}" }}
request = function()
  counter = counter + 1
  local item9 = 0
  if counter % 10 == 0 then item9 = 1 end
  local body = string.format('{{"instrument":"phq-9","client_id":"b%s-%d","answers":{{"1":1,"2":1,"3":2,"4":0,"5":1,"6":0,"7":1,"8":0,"9":%d}}}}', prefix, counter, item9)
  return wrk.format("POST", "{path}", headers, body)
end
"#
    );
    script
}

/// Commits one small row per transaction into a SQLite file with the same settings Stillpoint
/// uses (WAL, `synchronous=FULL`), for `BARE_LOOP_SECONDS`. Returns commits per second: the
/// rate one fsync per submission would allow on this disk.
async fn bare_commit_loop(folder: &std::path::Path) -> anyhow::Result<f64> {
    let path = folder.join("bare.sqlite");
    let mut connection =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    connection.execute("PRAGMA journal_mode = WAL").await?;
    connection.execute("PRAGMA synchronous = FULL").await?;
    connection
        .execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .await?;
    let started = Instant::now();
    let mut commits = 0_u32;
    while started.elapsed() < Duration::from_secs(BARE_LOOP_SECONDS) {
        let mut transaction = connection.begin().await?;
        sqlx::query("INSERT INTO rows (body) VALUES ($1)")
            .bind("a PHQ-9 response")
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        commits += 1;
    }
    Ok(f64::from(commits) / started.elapsed().as_secs_f64())
}

fn print_report(
    options: &Options,
    url: &DatabaseUrl,
    result: &LoadResult,
    stored: usize,
    elapsed: Duration,
    bare: f64,
) {
    let database = match url {
        DatabaseUrl::Sqlite(_) => "SQLite (WAL, synchronous=FULL)",
        DatabaseUrl::Postgres(_) => "PostgreSQL",
    };
    println!(
        "wrk -t{} -c{} -d{}s --latency, POST PHQ-9 responses on 127.0.0.1, {database}, log filter {}",
        options.threads, options.connections, options.duration_seconds, options.log_level
    );
    println!();
    println!("| what | per second | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| acknowledged submissions (wrk) | {:.0} | {} | {} |",
        result.requests_per_second, result.p50, result.p99
    );
    println!(
        "| responses stored during the run | {:.0} | | |",
        f64::from(u32::try_from(stored).unwrap_or(u32::MAX)) / elapsed.as_secs_f64()
    );
    println!("| bare single-row durable SQLite commits, same disk | {bare:.0} | | |");
}
