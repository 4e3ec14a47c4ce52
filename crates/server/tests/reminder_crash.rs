//! A server killed while it sends reminders sends every due reminder after it restarts, each
//! recorded once and sent once. The exception is a message a worker had handed to the SMTP
//! server but not yet recorded when the kill came, which is sent again with the same
//! Message-ID. The test runs the real `stillpoint serve` binary with a SQLite data folder and a
//! real SMTP server (Python's aiosmtpd on 127.0.0.1).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use stillpoint_app::notify::{Subject, notify_job};
use stillpoint_app::ports::{
    DeliveryStore as _, JobStore as _, PatientStore as _, ProgramStore as _, SessionStatus,
};
use stillpoint_domain::jobs::JobState;
use stillpoint_domain::notify::{Channel, DeliveryState, MessageKind};
use stillpoint_domain::{AccountId, CohortId};
use stillpoint_storage::{Database, DatabaseUrl};
use stillpoint_test_support::{SmtpSink, free_port};

const BINARY: &str = env!("CARGO_BIN_EXE_stillpoint");

/// How many reminders each recipient gets in the test.
const REMINDERS_EACH: i64 = 40;

/// Jobs the server runs at once, each of which may be mid-send when it is killed.
const WORKERS: usize = 4;

/// A `stillpoint serve` process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn start(config: &std::path::Path, data: &std::path::Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .env("STILLPOINT_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_mins(1);
        while !line.contains("listening on") {
            line.clear();
            let read = reader.read_line(&mut line).expect("stdout");
            assert!(
                read > 0 && Instant::now() < deadline,
                "the server stopped at start"
            );
        }
        Self(child)
    }

    /// Kills the process at once, as a power cut or an out-of-memory kill would.
    fn kill_now(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Seeds the demo clinic into the data folder's SQLite database, with the secrets key the
/// server will read.
async fn seed(data: &std::path::Path) {
    let key = stillpoint_app::secrets::SecretSealer::new_key_text();
    std::fs::write(data.join("secrets.key"), &key).expect("key");
    let sealer = stillpoint_app::secrets::SecretSealer::from_key_text(&key).expect("key");
    let database = Database::connect(&DatabaseUrl::sqlite_in(data))
        .await
        .expect("database");
    database.migrate().await.expect("migrations");
    let now = Timestamp::now();
    let curricula = stillpoint_web::curriculum_files::load().expect("curricula");
    stillpoint_app::curricula::install_bundled(&database, &stillpoint_app::SystemClock, &curricula)
        .await
        .expect("curricula");
    let clinic =
        stillpoint_app::demo::generate(7, now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date());
    stillpoint_app::demo::seed(
        &database,
        &sealer,
        &stillpoint_web::consent_files::load(None).expect("consents"),
        &curricula,
        &stillpoint_web::measure_files::load().expect("instruments"),
        &clinic,
        now,
    )
    .await
    .expect("demo clinic");
    database.close().await;
}

/// Finds a cohort session starting more than 3 hours from now, and the accounts its reminders
/// go to: the facilitators and the patients holding a place.
async fn session_and_recipients(
    database: &Database,
) -> (stillpoint_app::ports::CohortSession, Vec<AccountId>) {
    let now = Timestamp::now();
    for details in database.list_cohort_details().await.expect("cohorts") {
        let cohort: CohortId = details.cohort.id;
        let Some(session) = database
            .list_cohort_sessions(cohort)
            .await
            .expect("sessions")
            .into_iter()
            .find(|session| {
                session.status == SessionStatus::Scheduled
                    && session.planned.start > now + jiff::SignedDuration::from_hours(3)
            })
        else {
            continue;
        };
        let mut recipients: Vec<AccountId> =
            details.facilitators.iter().map(|(id, _)| *id).collect();
        for entry in database.cohort_roster(cohort).await.expect("roster") {
            if entry.state.holds_place()
                && let Some(account) = database
                    .get_patient(entry.patient)
                    .await
                    .expect("patient")
                    .account_id
            {
                recipients.push(account);
            }
        }
        return (session, recipients);
    }
    panic!("the demo clinic has no upcoming session");
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // One journey, read top to bottom.
async fn killed_server_sends_reminders_after_restart() {
    let Some(sink) = SmtpSink::start("killed_server_sends_reminders_after_restart") else {
        return;
    };
    let folder = tempfile::tempdir().expect("folder");
    let data = folder.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    seed(&data).await;
    let config = folder.path().join("stillpoint.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{}\"\n[http]\npublic_url = \"http://127.0.0.1\"\n[jobs]\nlease_seconds = 5\nworkers = {WORKERS}\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\ntimeout_seconds = 2\nfrom = \"Stillpoint <reminders@clinic.example>\"\n",
            free_port(),
            sink.port
        ),
    )
    .expect("settings");

    let server = Server::start(&config, &data);
    let database = Database::connect(&DatabaseUrl::sqlite_in(&data))
        .await
        .expect("database");

    // Queue the reminders, all due now, as the planner would.
    let (session, recipients) = session_and_recipients(&database).await;
    let mut jobs = Vec::new();
    for account in &recipients {
        for lead in 1..=REMINDERS_EACH {
            jobs.push(
                notify_job(
                    MessageKind::SessionReminder,
                    *account,
                    Subject::Session {
                        session: session.id,
                        start: session.planned.start,
                        lead_minutes: lead,
                    },
                    format!("crash-test:{}:{lead}:{account}", session.id),
                    Timestamp::now(),
                )
                .expect("job"),
            );
        }
    }
    // Every account has an e-mail address, so each reminder is one e-mail.
    let expected = jobs.len();
    database
        .enqueue_many(&jobs, Timestamp::now())
        .await
        .expect("queued");

    // Kill the server once a third of the e-mails arrived, then start it again.
    let arrived = sink.wait_for(expected / 3, Duration::from_mins(1)).await;
    assert!(
        arrived >= expected / 3,
        "only {arrived} of {expected} e-mails arrived"
    );
    server.kill_now();
    let at_kill = sink.count();
    assert!(
        at_kill < expected,
        "the server finished before it was killed"
    );
    let _restarted = Server::start(&config, &data);

    // Every reminder job finishes, and every e-mail delivery is recorded as sent.
    let deadline = Instant::now() + Duration::from_mins(2);
    let ours = |key: &str| key.starts_with("crash-test:") || key.starts_with("deliver:crash-test:");
    loop {
        let pending = database
            .list_jobs(JobState::Queued, 100_000)
            .await
            .expect("jobs")
            .into_iter()
            .chain(
                database
                    .list_jobs(JobState::Running, 100_000)
                    .await
                    .expect("jobs"),
            )
            .filter(|job| ours(&job.idempotency_key))
            .count();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} reminder jobs never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failed: Vec<_> = database
        .list_jobs(JobState::Failed, 100_000)
        .await
        .expect("jobs")
        .into_iter()
        .filter(|job| ours(&job.idempotency_key))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let emails: Vec<_> = database
        .list_deliveries(None, 100_000)
        .await
        .expect("deliveries")
        .into_iter()
        .filter(|delivery| {
            delivery.idempotency_key.starts_with("crash-test:")
                && delivery.channel == Channel::Email
        })
        .collect();
    assert_eq!(emails.len(), expected);
    assert!(
        emails
            .iter()
            .all(|delivery| delivery.state == DeliveryState::Sent)
    );

    // Each delivery's Message-ID arrived. A second copy is possible only for a message that a
    // worker had sent when the kill came but not yet recorded as sent, so at most one per
    // worker, and it carries the same Message-ID.
    sink.wait_for(expected, Duration::from_secs(10)).await;
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for mail in sink.messages() {
        *copies.entry(mail.message_id).or_default() += 1;
    }
    let mut repeated = 0;
    for delivery in &emails {
        let id = format!("<{}>", delivery.provider_message_id.as_deref().expect("id"));
        let count = copies.get(&id).copied().unwrap_or_default();
        assert!(count >= 1, "{id} never arrived");
        repeated += count - 1;
    }
    eprintln!(
        "{expected} reminders; {at_kill} e-mails had arrived when the server was killed; {repeated} arrived twice"
    );
    assert!(repeated <= WORKERS, "{repeated} e-mails arrived twice");
}
