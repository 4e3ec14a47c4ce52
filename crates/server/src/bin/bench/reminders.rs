//! `stillpoint-bench reminders`: the reminder pipeline at scale, in three parts.
//!
//! 1. Planning: daily practice reminders for 100,000 patients over 10 days (1,000,000
//!    reminders), each patient in one of several time zones with a chosen local time,
//!    resolved by the domain planner and written to the job queue in bulk.
//! 2. Sustained throughput: the job workers (a `notify` job that also writes the in-app
//!    notice, then a `deliver` job for the e-mail) sending session reminders to a local SMTP
//!    sink, with the 1,000,000 planned jobs still in the queue.
//! 3. Lateness: 10,000 reminders due within the same minute. Each e-mail's lateness is the
//!    time from its due time to the moment the sink accepted it, recorded as its send time.
//!
//! The e-mails go to the demo clinic's cohort members, whose sessions make the reminders
//! genuine, so every send runs the same checks as in production (the session is still
//! scheduled, the person still in the cohort, their settings and channels).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use jiff::{SignedDuration, Timestamp};
use stillpoint_app::jobs::Worker;
use stillpoint_app::notify::{Mailer, Notifier, Subject, notify_job};
use stillpoint_app::ports::{
    DeliveryStore as _, JobStore as _, NewJob, PatientStore as _, ProgramStore as _, SessionStatus,
};
use stillpoint_app::{Clock as _, SystemClock, demo};
use stillpoint_domain::jobs::RetryPolicy;
use stillpoint_domain::notify::{Channel, MessageKind};
use stillpoint_domain::{Account, AccountId, Language, PatientId, TimeZoneName};
use stillpoint_notify::{CatalogComposer, SmtpMailer, SmtpSecurity, SmtpSettings};
use stillpoint_storage::{Database, DatabaseUrl};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// The benchmark's sizes and database.
#[derive(Debug)]
struct Options {
    patients: usize,
    days: usize,
    /// E-mails for the throughput run.
    throughput: usize,
    /// Reminders due within one minute for the lateness run.
    burst: usize,
    /// Workers running at once, as several servers sharing one database would.
    workers: usize,
    database_url: Option<String>,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        patients: 100_000,
        days: 10,
        throughput: 5_000,
        burst: 10_000,
        workers: 4,
        database_url: None,
    };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        let number = || -> anyhow::Result<usize> {
            value
                .parse()
                .map_err(|_| anyhow!("{flag}: '{value}' is not a whole number"))
        };
        match flag.as_str() {
            "--patients" => options.patients = number()?,
            "--days" => options.days = number()?,
            "--throughput" => options.throughput = number()?,
            "--burst" => options.burst = number()?,
            "--workers" => options.workers = number()?.max(1),
            "--database-url" => options.database_url = Some(value.clone()),
            other => bail!(
                "unknown option {other}; use --patients N, --days N, --throughput N, --burst N, --workers N, --database-url URL"
            ),
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The data folder sits next to the build, on the disk a real server would use.
    let data = tempfile::tempdir_in(".").context("cannot create a data folder here")?;
    let url = match &options.database_url {
        Some(text) => DatabaseUrl::parse(text)?,
        None => DatabaseUrl::sqlite_in(data.path()),
    };
    runtime.block_on(measure(&options, &url))
}

async fn measure(options: &Options, url: &DatabaseUrl) -> anyhow::Result<()> {
    let database = Database::connect(url).await?;
    database.migrate().await?;
    let (session, recipients) = seed_demo(&database).await?;
    let sink = SmtpSink::start().await?;
    println!(
        "Database: {}; recipients of the e-mail runs: {}; workers: {}",
        database.dialect(),
        recipients.len(),
        options.workers
    );

    let planned = plan_practice(&database, options).await?;
    println!(
        "Planning: {} reminders for {} patients in {:.1} s ({:.0} reminders/s)",
        planned.count,
        options.patients,
        planned.elapsed.as_secs_f64(),
        rate(planned.count, planned.elapsed)
    );

    let notifier = notifier(&database, sink.port)?;
    let now = SystemClock.now();
    let jobs = session_jobs(
        &session,
        &recipients,
        "throughput",
        options.throughput,
        now,
        SignedDuration::ZERO,
    )?;
    database.enqueue_many(&jobs, now).await?;
    let started = Instant::now();
    run_workers(&notifier, options.workers, &sink, options.throughput).await?;
    let elapsed = started.elapsed();
    println!(
        "Throughput: {} e-mails (each a notify job, an in-app notice and a deliver job) in {:.1} s: {:.0} e-mails/s",
        options.throughput,
        elapsed.as_secs_f64(),
        rate(options.throughput, elapsed)
    );

    // The burst: due times spread over one minute starting 5 seconds from now.
    let start = SystemClock.now() + SignedDuration::from_secs(5);
    let jobs = session_jobs(
        &session,
        &recipients,
        "burst",
        options.burst,
        start,
        SignedDuration::from_mins(1),
    )?;
    database.enqueue_many(&jobs, SystemClock.now()).await?;
    let before = sink.count();
    run_workers(&notifier, options.workers, &sink, before + options.burst).await?;
    let mut lateness = burst_lateness(&database).await?;
    lateness.sort_unstable_by(f64::total_cmp);
    println!(
        "Lateness of {} e-mails due within one minute: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        lateness.len(),
        percentile(&lateness, 0.50),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or_default()
    );
    Ok(())
}

#[allow(clippy::cast_precision_loss)]
fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[index]
}

/// Seeds the demo clinic and returns an upcoming session with the accounts its reminders
/// go to.
async fn seed_demo(
    database: &Database,
) -> anyhow::Result<(stillpoint_app::ports::CohortSession, Vec<AccountId>)> {
    let now = SystemClock.now();
    let curricula = stillpoint_web::curriculum_files::load()?;
    stillpoint_app::curricula::install_bundled(database, &SystemClock, &curricula).await?;
    let clinic = demo::generate(2026, now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date());
    demo::seed(
        database,
        &stillpoint_web::WebConfig::default().secrets,
        &stillpoint_web::consent_files::load(None)?,
        &curricula,
        &stillpoint_web::measure_files::load()?,
        &clinic,
        now,
    )
    .await?;
    for details in database.list_cohort_details().await? {
        let Some(session) = database
            .list_cohort_sessions(details.cohort.id)
            .await?
            .into_iter()
            .find(|session| {
                session.status == SessionStatus::Scheduled
                    && session.planned.start > now + SignedDuration::from_hours(6)
            })
        else {
            continue;
        };
        let mut recipients: Vec<AccountId> =
            details.facilitators.iter().map(|(id, _)| *id).collect();
        for entry in database.cohort_roster(details.cohort.id).await? {
            if entry.state.holds_place()
                && let Some(account) = database.get_patient(entry.patient).await?.account_id
            {
                recipients.push(account);
            }
        }
        return Ok((session, recipients));
    }
    bail!("the demo clinic has no upcoming session")
}

struct Planned {
    count: usize,
    elapsed: Duration,
}

/// Plans the daily practice reminders of `options.patients` synthetic patients, from tomorrow
/// for `options.days` days, in batches of 5,000 patients.
async fn plan_practice(database: &Database, options: &Options) -> anyhow::Result<Planned> {
    const ZONES: [&str; 6] = [
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
        "Europe/Madrid",
        "America/Mexico_City",
    ];
    let zones: Vec<TimeZoneName> = ZONES
        .iter()
        .map(|zone| TimeZoneName::parse(zone))
        .collect::<Result<_, _>>()?;
    let from = SystemClock.now() + SignedDuration::from_hours(24);
    let until = from + SignedDuration::from_hours(24 * i64::try_from(options.days)?);
    let started = Instant::now();
    let mut count = 0;
    for batch in (0..options.patients).collect::<Vec<_>>().chunks(5_000) {
        let mut jobs: Vec<NewJob> = Vec::with_capacity(batch.len() * options.days);
        for index in batch {
            let account = synthetic_account(*index, &zones[index % zones.len()])?;
            // Times from 06:00 to 22:45 in quarter hours.
            let minutes = 360 + (index % 68) * 15;
            let time = jiff::civil::time(
                i8::try_from(minutes / 60)?,
                i8::try_from(minutes % 60)?,
                0,
                0,
            );
            let patient: PatientId = id_of(*index, 2)?;
            jobs.extend(stillpoint_app::reminders::practice_jobs_of(
                &account, patient, time, from, until,
            )?);
        }
        count += usize::try_from(database.enqueue_many(&jobs, SystemClock.now()).await?)?;
    }
    Ok(Planned {
        count,
        elapsed: started.elapsed(),
    })
}

/// Builds a synthetic id: `kind` separates accounts (1) from patients (2), and `index` names
/// the patient.
fn id_of<T: std::str::FromStr>(index: usize, kind: u8) -> anyhow::Result<T> {
    format!("0000000{kind}-0000-7000-8000-{index:012x}")
        .parse()
        .map_err(|_| anyhow!("synthetic id {index} does not parse"))
}

fn synthetic_account(index: usize, zone: &TimeZoneName) -> anyhow::Result<Account> {
    Ok(Account {
        id: id_of(index, 1)?,
        email: stillpoint_domain::EmailAddress::parse(&format!("patient{index}@bench.example"))?,
        display_name: format!("Patient {index}"),
        language: if index.is_multiple_of(3) {
            Language::spanish()
        } else {
            Language::english()
        },
        time_zone: zone.clone(),
        roles: Vec::new(),
        preferences: stillpoint_domain::DisplayPreferences::default(),
    })
}

/// `count` session reminders spread over the demo recipients, due evenly from `first` over
/// `spread` (all at `first` when it is zero).
fn session_jobs(
    session: &stillpoint_app::ports::CohortSession,
    recipients: &[AccountId],
    run: &str,
    count: usize,
    first: Timestamp,
    spread: SignedDuration,
) -> anyhow::Result<Vec<NewJob>> {
    let step = spread / i32::try_from(count.max(1))?;
    let mut jobs = Vec::with_capacity(count);
    for index in 0..count {
        let account = recipients[index % recipients.len()];
        jobs.push(notify_job(
            MessageKind::SessionReminder,
            account,
            Subject::Session {
                session: session.id,
                start: session.planned.start,
                lead_minutes: i64::try_from(index)?,
            },
            format!("bench-{run}:{index}:{account}"),
            first + step * i32::try_from(index)?,
        )?);
    }
    Ok(jobs)
}

fn notifier(database: &Database, port: u16) -> anyhow::Result<Arc<Notifier>> {
    let mailer: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(&SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Stillpoint <reminders@bench.example>".to_owned(),
        timeout: Duration::from_secs(30),
        extra_roots_pem: None,
    })?);
    let catalogs = Arc::new(stillpoint_i18n::Catalogs::load(None)?);
    Ok(Arc::new(Notifier {
        store: Arc::new(database.clone()),
        clock: Arc::new(SystemClock),
        composer: Arc::new(CatalogComposer::new(catalogs, "Stillpoint")),
        mailer: Some(mailer),
        sms: None,
        measures: Arc::new(stillpoint_web::measure_files::load()?),
        sealer: Arc::new(stillpoint_web::WebConfig::default().secrets),
        public_url: "http://127.0.0.1".to_owned(),
    }))
}

/// Runs `workers` workers until the sink has received `target` e-mails.
async fn run_workers(
    notifier: &Arc<Notifier>,
    workers: usize,
    sink: &SmtpSink,
    target: usize,
) -> anyhow::Result<()> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for number in 0..workers {
        let worker: Worker = stillpoint_app::notify::worker(
            format!("bench-{number}"),
            notifier,
            RetryPolicy::default(),
            stillpoint_app::jobs::DEFAULT_LEASE,
        );
        let store = notifier.store.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match worker.step(store.as_ref(), &SystemClock, 0.5).await {
                    Ok(Some(_)) => {}
                    Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(error) => return Err(anyhow!("worker step failed: {error}")),
                }
            }
            Ok(())
        }));
    }
    let deadline = Instant::now() + Duration::from_mins(30);
    while sink.count() < target {
        if Instant::now() > deadline {
            bail!(
                "only {} of {target} e-mails arrived in 30 minutes",
                sink.count()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.await??;
    }
    Ok(())
}

/// Seconds from each burst e-mail's due time to its recorded send.
async fn burst_lateness(database: &Database) -> anyhow::Result<Vec<f64>> {
    let jobs = database
        .list_jobs(stillpoint_domain::jobs::JobState::Done, 1_000_000)
        .await?;
    let due: std::collections::HashMap<String, Timestamp> = jobs
        .into_iter()
        .filter(|job| job.idempotency_key.starts_with("bench-burst:"))
        .map(|job| (job.idempotency_key, job.due_at))
        .collect();
    let mut lateness = Vec::new();
    for delivery in database.list_deliveries(None, 1_000_000).await? {
        if delivery.channel != Channel::Email {
            continue;
        }
        let Some(key) = delivery.idempotency_key.strip_suffix(":email") else {
            continue;
        };
        let (Some(due_at), Some(sent_at)) = (due.get(key), delivery.sent_at) else {
            continue;
        };
        lateness.push(sent_at.duration_since(*due_at).as_secs_f64().max(0.0));
    }
    Ok(lateness)
}

/// An SMTP server on 127.0.0.1 that accepts every message and counts it.
struct SmtpSink {
    port: u16,
    received: Arc<AtomicUsize>,
}

impl SmtpSink {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(AtomicUsize::new(0));
        let counter = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_smtp(socket, counter.clone()));
            }
        });
        Ok(Self { port, received })
    }

    fn count(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

/// Speaks just enough SMTP (RFC 5321) for lettre: greeting, EHLO, MAIL, RCPT, DATA, RSET,
/// NOOP and QUIT.
async fn serve_smtp(socket: tokio::net::TcpStream, received: Arc<AtomicUsize>) {
    let (reader, mut writer) = socket.into_split();
    let mut lines = BufReader::new(reader).lines();
    if writer.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        let reply: &[u8] = if in_data {
            if line == "." {
                in_data = false;
                received.fetch_add(1, Ordering::Relaxed);
                b"250 accepted\r\n"
            } else {
                continue;
            }
        } else {
            let command = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            match command.as_str() {
                "EHLO" | "HELO" => b"250 sink\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    let _ = writer.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 OK\r\n",
            }
        };
        if writer.write_all(reply).await.is_err() {
            return;
        }
    }
}
