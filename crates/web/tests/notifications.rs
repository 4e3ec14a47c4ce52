//! Reminders end to end. They are planned on a manual clock and sent by the job worker through
//! a real SMTP server (Python's aiosmtpd on 127.0.0.1) and a local Twilio-compatible SMS mock,
//! with their deliveries recorded. The scenarios cover rescheduled sessions, withdrawn patients,
//! one-click unsubscribe, failing providers and the settings page.

// Each scenario is one journey, read top to bottom.
#![allow(clippy::too_many_lines)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use stillpoint_app::Clock as _;
use stillpoint_app::jobs::StepOutcome;
use stillpoint_app::notify::{Mailer, SmsSender};
use stillpoint_app::ports::{
    AccountStore as _, CohortSession, DeliveryStore as _, EnrolmentStore as _, JobStore as _,
    NotificationStore as _, PatientStore as _, ProgramStore as _, SessionStatus,
};
use stillpoint_domain::enrolment::EnrolmentState;
use stillpoint_domain::jobs::JobState;
use stillpoint_domain::notify::{Channel, DeliveryState, MessageKind, PhoneNumber};
use stillpoint_domain::{Account, CohortId, PatientId};
use stillpoint_notify::{HttpSmsSender, SmsSettings, SmtpMailer, SmtpSecurity, SmtpSettings};
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, SmtpSink, TestApp, spawn_app};

fn mailer(port: u16) -> Arc<dyn Mailer> {
    Arc::new(
        SmtpMailer::new(&SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "Stillpoint Test Clinic <reminders@clinic.example>".to_owned(),
            timeout: Duration::from_secs(5),
            extra_roots_pem: None,
        })
        .expect("mailer"),
    )
}

/// The demo patient Lucía (login `patient`), who reads Stillpoint in Spanish.
struct Lucia {
    account: Account,
    patient: PatientId,
    cohort: CohortId,
}

async fn lucia(app: &TestApp) -> Lucia {
    let store = &app.database.database;
    let email = TestApp::demo_email("patient");
    let account = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.email.as_str() == email)
        .expect("Lucía's account")
        .clone();
    let patient = store
        .find_patient_for_account(account.id)
        .await
        .expect("patient")
        .id;
    let state = store
        .find_enrolment(patient)
        .await
        .expect("pathway")
        .expect("a state");
    let cohort = state.cohort().expect("in a cohort");
    Lucia {
        account,
        patient,
        cohort,
    }
}

/// Finds the cohort's first scheduled session starting more than 25 hours from now.
async fn next_session(app: &TestApp, cohort: CohortId) -> CohortSession {
    let now = app.clock.now();
    app.database
        .database
        .list_cohort_sessions(cohort)
        .await
        .expect("sessions")
        .into_iter()
        .filter(|session| session.status == SessionStatus::Scheduled)
        .find(|session| session.planned.start > now + SignedDuration::from_hours(25))
        .expect("an upcoming session")
}

/// Moves the manual clock to `at`.
fn set_clock(app: &TestApp, at: Timestamp) {
    let now = app.clock.now();
    app.clock.advance(at.duration_since(now));
}

async fn plan(app: &TestApp) {
    stillpoint_app::reminders::plan(
        app.state.store.as_ref(),
        app.clock.as_ref(),
        &app.state.measures,
        stillpoint_app::reminders::PLANNING_HORIZON,
    )
    .await
    .expect("planning");
}

fn mail_to<'a>(
    sink: &'a [stillpoint_test_support::ReceivedMail],
    account: &Account,
) -> Vec<&'a stillpoint_test_support::ReceivedMail> {
    sink.iter()
        .filter(|mail| mail.to.contains(account.email.as_str()))
        .collect()
}

/// Filters the messages to `account` about group sessions, because check-in reminders may
/// arrive between them.
fn session_mail_to<'a>(
    sink: &'a [stillpoint_test_support::ReceivedMail],
    account: &Account,
) -> Vec<&'a stillpoint_test_support::ReceivedMail> {
    mail_to(sink, account)
        .into_iter()
        .filter(|mail| mail.subject.contains("sesión"))
        .collect()
}

/// Finds the delivery to `account` on `channel`, for a scenario that sends one.
async fn delivery_on(
    store: &stillpoint_storage::Database,
    account: &Account,
    channel: Channel,
) -> stillpoint_app::ports::Delivery {
    store
        .list_deliveries(None, 500)
        .await
        .expect("deliveries")
        .into_iter()
        .find(|delivery| delivery.account == account.id && delivery.channel == channel)
        .expect("a delivery on the channel")
}

/// "18:30" in the account's time zone.
fn local_time(account: &Account, instant: Timestamp) -> String {
    instant
        .to_zoned_datetime(account.time_zone.time_zone())
        .strftime("%H:%M")
        .to_string()
}

async fn session_reminder_arrives_once_in_spanish(dialect: Dialect) {
    let Some(sink) = SmtpSink::start("session_reminder_arrives_once_in_spanish") else {
        return;
    };
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_email").await else {
        return;
    };
    let store = &app.database.database;
    let notifier = app.notifier(Some(mailer(sink.port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let session = next_session(&app, lucia.cohort).await;
    let start = session.planned.start;

    // A minute before the 24-hour reminder is due nothing goes out; a minute after, it does.
    set_clock(
        &app,
        start - SignedDuration::from_hours(24) - SignedDuration::from_mins(1),
    );
    plan(&app).await;
    app.run_due_jobs(&worker).await;
    assert!(mail_to(&sink.messages(), &lucia.account).is_empty());
    app.clock.advance(SignedDuration::from_mins(2));
    app.run_due_jobs(&worker).await;
    sink.wait_for(1, Duration::from_secs(5)).await;
    let messages = sink.messages();
    let to_lucia = mail_to(&messages, &lucia.account);
    assert_eq!(to_lucia.len(), 1, "{to_lucia:?}");
    let mail = to_lucia[0];

    // In her language and time zone, multipart, with the one-click unsubscribe headers and
    // nothing about her health.
    let time = local_time(&lucia.account, start);
    assert_eq!(
        mail.subject,
        format!("Recordatorio: su sesión de grupo mañana a las {time}")
    );
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(
        mail.text
            .starts_with(&format!("Su sesión de grupo empieza mañana a las {time}.")),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("<html lang=\"es\">"), "{}", mail.html);
    assert!(mail.from.contains("reminders@clinic.example"));
    let unsubscribe = mail
        .list_unsubscribe
        .as_deref()
        .expect("List-Unsubscribe")
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(
        unsubscribe.starts_with(&app.url("/unsubscribe?")),
        "{unsubscribe}"
    );
    assert_eq!(
        mail.list_unsubscribe_post.as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    for clinical in ["PHQ", "GAD", "dolor", "depres", "ansiedad", "Lucía"] {
        assert!(!mail.text.contains(clinical), "{clinical} in {}", mail.text);
    }

    // The deliveries record it: e-mail sent with its Message-ID, in-app delivered.
    let deliveries: Vec<_> = store
        .list_deliveries(None, 500)
        .await
        .expect("deliveries")
        .into_iter()
        .filter(|delivery| delivery.account == lucia.account.id)
        .collect();
    let email = deliveries
        .iter()
        .find(|delivery| delivery.channel == Channel::Email)
        .expect("e-mail delivery");
    assert_eq!(email.state, DeliveryState::Sent);
    assert_eq!(email.kind, MessageKind::SessionReminder);
    assert_eq!(
        format!("<{}>", email.provider_message_id.as_deref().expect("id")),
        mail.message_id
    );
    let in_app = deliveries
        .iter()
        .find(|delivery| delivery.channel == Channel::InApp)
        .expect("in-app delivery");
    assert_eq!(in_app.state, DeliveryState::Delivered);
    assert!(
        store
            .count_unread_notifications(lucia.account.id)
            .await
            .expect("count")
            >= 1
    );
    let patient = app.browser_session("patient").await;
    let page = patient
        .get(app.url("/notifications"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("Su sesión de grupo empieza pronto"), "{page}");

    // Planning and running again sends nothing new.
    plan(&app).await;
    app.run_due_jobs(&worker).await;
    assert_eq!(mail_to(&sink.messages(), &lucia.account).len(), 1);

    // A forged link is rejected. The genuine one-click POST, sent as a mail client sends it
    // with no session and no form token, turns e-mail off for session reminders.
    let forged = unsubscribe.replace("token=", "token=0");
    let anonymous = reqwest::Client::new();
    let refused = anonymous.get(&forged).send().await.expect("request");
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let confirm = anonymous.get(&unsubscribe).send().await.expect("request");
    assert_eq!(confirm.status(), StatusCode::OK);
    let one_click = anonymous
        .post(&unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("request");
    assert_eq!(one_click.status(), StatusCode::OK);
    let settings = store
        .get_notification_settings(lucia.account.id)
        .await
        .expect("settings")
        .expect("saved");
    assert_eq!(
        settings.channels_for(MessageKind::SessionReminder),
        [Channel::InApp].into()
    );

    // The 1-hour reminder then comes in-app only.
    set_clock(&app, start - SignedDuration::from_mins(59));
    plan(&app).await;
    app.run_due_jobs(&worker).await;
    assert_eq!(mail_to(&sink.messages(), &lucia.account).len(), 1);
    let in_app_count = store
        .list_deliveries(None, 500)
        .await
        .expect("deliveries")
        .iter()
        .filter(|delivery| {
            delivery.account == lucia.account.id && delivery.channel == Channel::InApp
        })
        .count();
    assert_eq!(in_app_count, 2);
}

async fn rescheduled_session_replaces_pending_reminders(dialect: Dialect) {
    let Some(sink) = SmtpSink::start("rescheduled_session_replaces_pending_reminders") else {
        return;
    };
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_reschedule").await else {
        return;
    };
    let store = &app.database.database;
    let notifier = app.notifier(Some(mailer(sink.port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let session = next_session(&app, lucia.cohort).await;
    let start = session.planned.start;

    // 90 minutes before the session, its 1-hour reminder is queued.
    set_clock(&app, start - SignedDuration::from_mins(90));
    plan(&app).await;
    let old_key = format!(
        "session_reminder:{}:{}:60:{}",
        session.id,
        start.as_millisecond(),
        lucia.account.id
    );
    let queued = store
        .list_jobs(JobState::Queued, 1_000)
        .await
        .expect("jobs");
    assert!(queued.iter().any(|job| job.idempotency_key == old_key));

    // The program administrator moves the session one hour later.
    let admin = app.browser_session("program.admin").await;
    let moved_local = session.planned.local_start + SignedDuration::from_hours(1);
    let response = app
        .post_form(
            &admin,
            &format!(
                "/cohorts/{}/sessions/{}/reschedule",
                lucia.cohort, session.id
            ),
            &[
                ("new_date", moved_local.date().to_string().as_str()),
                (
                    "new_time",
                    moved_local.time().strftime("%H:%M").to_string().as_str(),
                ),
                ("reason", "The facilitator is delayed by a hospital meeting"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let new_start = store
        .get_cohort_session(session.id)
        .await
        .expect("session")
        .planned
        .start;
    assert_eq!(new_start, start + SignedDuration::from_hours(1));

    // The stale reminder is cancelled, and everyone hears of the move at once.
    let cancelled = store
        .list_jobs(JobState::Cancelled, 1_000)
        .await
        .expect("jobs");
    assert!(cancelled.iter().any(|job| job.idempotency_key == old_key));
    app.run_due_jobs(&worker).await;
    sink.wait_for(1, Duration::from_secs(5)).await;
    let messages = sink.messages();
    let to_lucia = session_mail_to(&messages, &lucia.account);
    assert_eq!(to_lucia.len(), 1, "{to_lucia:?}");
    assert_eq!(
        to_lucia[0].subject,
        "Su sesión de grupo ha cambiado de hora"
    );
    let (old_time, new_time) = (
        local_time(&lucia.account, start),
        local_time(&lucia.account, new_start),
    );
    assert!(
        to_lucia[0].text.contains(&format!(
            "hoy a las {old_time} ha cambiado. Ahora empieza hoy a las {new_time}"
        )),
        "{}",
        to_lucia[0].text
    );

    // At the old reminder time nothing is sent; the new one goes an hour before the new start.
    set_clock(&app, start - SignedDuration::from_mins(59));
    plan(&app).await;
    app.run_due_jobs(&worker).await;
    assert_eq!(session_mail_to(&sink.messages(), &lucia.account).len(), 1);
    set_clock(&app, new_start - SignedDuration::from_mins(59));
    plan(&app).await;
    app.run_due_jobs(&worker).await;
    sink.wait_for(2, Duration::from_secs(5)).await;
    let messages = sink.messages();
    let to_lucia = session_mail_to(&messages, &lucia.account);
    assert_eq!(to_lucia.len(), 2, "{to_lucia:#?}");
    assert_eq!(
        to_lucia[1].subject,
        format!("Recordatorio: su sesión de grupo hoy a las {new_time}")
    );

    // Cancelling the following session sends her a notice too, and its reminders stop.
    let following = next_session(&app, lucia.cohort).await;
    // Hours passed on the clock, so the administrator signs in again.
    let admin = app.browser_session("program.admin").await;
    let response = app
        .post_form(
            &admin,
            &format!("/cohorts/{}/sessions/{}/cancel", lucia.cohort, following.id),
            &[("cancel_reason", "The clinic is closed for the holiday")],
        )
        .await;
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    app.run_due_jobs(&worker).await;
    sink.wait_for(3, Duration::from_secs(5)).await;
    let messages = sink.messages();
    let to_lucia = session_mail_to(&messages, &lucia.account);
    assert_eq!(to_lucia.len(), 3);
    assert_eq!(to_lucia[2].subject, "Se ha cancelado una sesión de grupo");
    set_clock(
        &app,
        following.planned.start - SignedDuration::from_mins(59),
    );
    plan(&app).await;
    app.run_due_jobs(&worker).await;
    assert_eq!(session_mail_to(&sink.messages(), &lucia.account).len(), 3);
}

async fn withdrawn_patient_gets_nothing_further(dialect: Dialect) {
    let Some(sink) = SmtpSink::start("withdrawn_patient_gets_nothing_further") else {
        return;
    };
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_withdrawn").await else {
        return;
    };
    let store = &app.database.database;
    let notifier = app.notifier(Some(mailer(sink.port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let session = next_session(&app, lucia.cohort).await;

    // Her reminder is queued, then she withdraws before it is due.
    set_clock(&app, session.planned.start - SignedDuration::from_hours(25));
    plan(&app).await;
    let her_key = format!(
        "session_reminder:{}:{}:1440:{}",
        session.id,
        session.planned.start.as_millisecond(),
        lucia.account.id
    );
    assert!(
        store
            .list_jobs(JobState::Queued, 10_000)
            .await
            .expect("jobs")
            .iter()
            .any(|job| job.idempotency_key == her_key),
        "her reminder was queued"
    );
    let state = store
        .find_enrolment(lucia.patient)
        .await
        .expect("pathway")
        .expect("state");
    let withdrawn = EnrolmentState::Withdrawn {
        reason: "Moving to another city".to_owned(),
    };
    store
        .record_transition(
            lucia.patient,
            Some(&state),
            &withdrawn,
            None,
            Some("Moving to another city"),
            None,
            app.clock.now(),
        )
        .await
        .expect("withdrawn");
    set_clock(&app, session.planned.start - SignedDuration::from_mins(59));
    plan(&app).await;
    let outcomes = app.run_due_jobs(&worker).await;
    assert!(!outcomes.is_empty());
    assert!(mail_to(&sink.messages(), &lucia.account).is_empty());
    let hers = store
        .list_deliveries(None, 500)
        .await
        .expect("deliveries")
        .into_iter()
        .filter(|delivery| delivery.account == lucia.account.id)
        .count();
    assert_eq!(hers, 0);
}

/// Starts a minimal SMTP server that accepts the connection and replies to every RCPT TO with
/// `rcpt`, such as a 550 for a mailbox that does not exist.
async fn refusing_smtp_server(rcpt: &'static str) -> u16 {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (reader, mut writer) = socket.into_split();
                let mut lines = BufReader::new(reader).lines();
                let _ = writer.write_all(b"220 refusing.test ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let command = line.to_ascii_uppercase();
                    let reply = if command.starts_with("EHLO") || command.starts_with("HELO") {
                        "250 refusing.test\r\n".to_owned()
                    } else if command.starts_with("RCPT") {
                        format!("{rcpt}\r\n")
                    } else if command.starts_with("QUIT") {
                        let _ = writer.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        "250 OK\r\n".to_owned()
                    };
                    if writer.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A Twilio-compatible SMS provider on 127.0.0.1 that records each request. It replies
/// with `status`, after `delay`.
#[derive(Clone, Default)]
struct SmsMock {
    requests: Arc<Mutex<Vec<SmsRequest>>>,
}

/// One request the SMS mock received: its Authorization and Idempotency-Key headers and its
/// form fields.
type SmsRequest = (Option<String>, Option<String>, Vec<(String, String)>);

async fn start_sms_mock(status: u16, delay: Duration) -> (SmsMock, String) {
    use axum::extract::{Form, Path, State};
    use axum::http::HeaderMap;

    let mock = SmsMock::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(
                move |State(mock): State<SmsMock>,
                      Path(sid): Path<String>,
                      headers: HeaderMap,
                      Form(form): Form<Vec<(String, String)>>| async move {
                    tokio::time::sleep(delay).await;
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned)
                    };
                    let count = {
                        let mut requests = mock.requests.lock().expect("lock");
                        requests.push((header("authorization"), header("idempotency-key"), form));
                        requests.len()
                    };
                    let body = if status == 201 {
                        serde_json::json!({"sid": format!("SM{count:032}"), "status": "queued", "account_sid": sid})
                    } else {
                        serde_json::json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": status})
                    };
                    (
                        axum::http::StatusCode::from_u16(status).expect("status"),
                        axum::Json(body),
                    )
                },
            ),
        )
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (mock, format!("http://{address}"))
}

fn sms_sender(base_url: String, timeout: Duration) -> Arc<dyn SmsSender> {
    Arc::new(
        HttpSmsSender::new(SmsSettings {
            base_url,
            account_sid: "AC0000000000000000000000000000test".to_owned(),
            auth_token: "test-token".to_owned(),
            from: "+15555550100".to_owned(),
            timeout,
        })
        .expect("sender"),
    )
}

/// Gives Lucía a phone number and the channels for session reminders.
async fn choose(app: &TestApp, lucia: &Lucia, channels: &[Channel], sms_fallback: bool) {
    let store = &app.database.database;
    let mut settings = stillpoint_app::notify::settings_of(store, lucia.account.id)
        .await
        .expect("settings");
    settings.phone = Some(PhoneNumber::parse("+34 600 000 001").expect("phone"));
    settings.sms_fallback = sms_fallback;
    settings.channels.insert(
        MessageKind::SessionReminder,
        channels.iter().copied().collect(),
    );
    store
        .put_notification_settings(lucia.account.id, &settings, app.clock.now())
        .await
        .expect("saved");
}

async fn failed_email_retries_then_falls_back_to_sms(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_fallback").await else {
        return;
    };
    let store = &app.database.database;
    let (sms, sms_url) = start_sms_mock(201, Duration::ZERO).await;
    // Nothing listens on this port: the SMTP server is down.
    let down = stillpoint_test_support::free_port();
    let notifier = app.notifier(
        Some(mailer(down)),
        Some(sms_sender(sms_url, Duration::from_secs(5))),
    );
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    choose(&app, &lucia, &[Channel::Email], true).await;
    let session = next_session(&app, lucia.cohort).await;
    set_clock(&app, session.planned.start - SignedDuration::from_hours(24));
    plan(&app).await;

    // Each attempt fails and is retried later with the error recorded; nothing is lost.
    let outcomes = app.run_due_jobs(&worker).await;
    assert!(
        outcomes
            .iter()
            .any(|outcome| matches!(outcome, StepOutcome::Retry { .. })),
        "{outcomes:?}"
    );
    let email = |deliveries: &[stillpoint_app::ports::Delivery]| {
        deliveries
            .iter()
            .find(|delivery| {
                delivery.account == lucia.account.id && delivery.channel == Channel::Email
            })
            .cloned()
            .expect("e-mail delivery")
    };
    let first = email(&store.list_deliveries(None, 500).await.expect("list"));
    assert_eq!(first.state, DeliveryState::Queued);
    assert!(
        first
            .error
            .as_deref()
            .is_some_and(|error| error.contains("cannot reach the SMTP server")),
        "{first:?}"
    );

    // After the last of 8 attempts it fails for good, and the text message goes instead.
    for _ in 0..8 {
        app.clock.advance(SignedDuration::from_hours(2));
        app.run_due_jobs(&worker).await;
    }
    let deliveries = store.list_deliveries(None, 500).await.expect("list");
    let failed = email(&deliveries);
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(failed.attempts, 8);
    let text = deliveries
        .iter()
        .find(|delivery| delivery.fallback_of.as_deref() == Some(failed.id.as_str()))
        .expect("a fallback");
    assert_eq!(text.channel, Channel::Sms);
    assert_eq!(text.state, DeliveryState::Sent);
    let requests = sms.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let (authorization, key, form) = &requests[0];
    assert_eq!(
        authorization.as_deref(),
        Some("Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwdGVzdDp0ZXN0LXRva2Vu")
    );
    assert_eq!(key.as_deref(), Some(text.id.as_str()));
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("To"), "+34600000001");
    assert_eq!(field("From"), "+15555550100");
    assert!(
        // The e-mail's 8 attempts took 16 hours, so the text reads "today".
        field("Body").starts_with("Stillpoint Test Clinic: Su sesión de grupo empieza hoy a las"),
        "{}",
        field("Body")
    );

    // The administrator's log shows both.
    let admin = app.browser_session("admin").await;
    let page = admin
        .get(app.url("/jobs?state=failed"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("cannot reach the SMTP server"), "{page}");
    assert!(
        page.contains("Session reminder"),
        "the log names what each message was"
    );
    let title = &page[page.find("<title>").expect("title")..page.find("</title>").expect("end")];
    assert!(!title.contains("<table"), "{title}");
}

async fn refused_recipient_falls_back_at_once(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_refused").await else {
        return;
    };
    let store = &app.database.database;
    let port = refusing_smtp_server("550 5.1.1 mailbox unavailable").await;
    let (sms, sms_url) = start_sms_mock(201, Duration::ZERO).await;
    let notifier = app.notifier(
        Some(mailer(port)),
        Some(sms_sender(sms_url, Duration::from_secs(5))),
    );
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    choose(&app, &lucia, &[Channel::Email], true).await;
    let session = next_session(&app, lucia.cohort).await;
    set_clock(&app, session.planned.start - SignedDuration::from_hours(24));
    plan(&app).await;

    // A 5xx reply is permanent (RFC 5321 section 4.2.1): no retry, the text goes at once.
    let outcomes = app.run_due_jobs(&worker).await;
    assert!(
        outcomes.iter().any(
            |outcome| matches!(outcome, StepOutcome::Failed { error, .. } if error.contains("550"))
        ),
        "{outcomes:?}"
    );
    let deliveries = store.list_deliveries(None, 500).await.expect("list");
    let failed = deliveries
        .iter()
        .find(|delivery| delivery.account == lucia.account.id && delivery.channel == Channel::Email)
        .expect("e-mail");
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(failed.attempts, 1);
    assert_eq!(sms.requests.lock().expect("lock").len(), 1);
}

async fn sms_reports_delivery_and_failures(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_sms").await else {
        return;
    };
    let store = &app.database.database;
    let (sms, sms_url) = start_sms_mock(201, Duration::ZERO).await;
    let notifier = app.notifier(None, Some(sms_sender(sms_url, Duration::from_secs(5))));
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    choose(&app, &lucia, &[Channel::Sms], false).await;
    let session = next_session(&app, lucia.cohort).await;
    set_clock(&app, session.planned.start - SignedDuration::from_hours(24));
    plan(&app).await;
    app.run_due_jobs(&worker).await;

    let requests = sms.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let callback = requests[0]
        .2
        .iter()
        .find(|(key, _)| key == "StatusCallback")
        .map(|(_, value)| value.clone())
        .expect("a status callback");
    let text = delivery_on(store, &lucia.account, Channel::Sms).await;
    assert_eq!(text.state, DeliveryState::Sent);
    let sid = text.provider_message_id.clone().expect("provider id");
    assert!(sid.starts_with("SM"));

    // The provider's report with a wrong token is refused; the genuine one marks it delivered.
    let client = reqwest::Client::new();
    let forged = client
        .post(callback.replace("token=", "token=f"))
        .form(&[("MessageSid", sid.as_str()), ("MessageStatus", "delivered")])
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let report = client
        .post(&callback)
        .form(&[("MessageSid", sid.as_str()), ("MessageStatus", "delivered")])
        .send()
        .await
        .expect("request");
    assert_eq!(report.status(), StatusCode::NO_CONTENT);
    let delivered = store.get_delivery(&text.id).await.expect("delivery");
    assert_eq!(delivered.state, DeliveryState::Delivered);
    assert!(delivered.delivered_at.is_some());

    // The 1-hour reminder's text is reported undelivered: it fails with the report as its
    // error, and the notice goes in-app instead.
    set_clock(&app, session.planned.start - SignedDuration::from_mins(59));
    plan(&app).await;
    app.run_due_jobs(&worker).await;
    let requests = sms.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 2);
    let callback = requests[1]
        .2
        .iter()
        .find(|(key, _)| key == "StatusCallback")
        .map(|(_, value)| value.clone())
        .expect("a status callback");
    let second = store
        .list_deliveries(None, 500)
        .await
        .expect("list")
        .into_iter()
        .find(|delivery| {
            delivery.account == lucia.account.id
                && delivery.channel == Channel::Sms
                && delivery.id != text.id
        })
        .expect("second sms delivery");
    let second_sid = second.provider_message_id.clone().expect("provider id");
    // A report naming another delivery's message changes nothing.
    let crossed = client
        .post(&callback)
        .form(&[
            ("MessageSid", sid.as_str()),
            ("MessageStatus", "undelivered"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(crossed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        store.get_delivery(&text.id).await.expect("delivery").state,
        DeliveryState::Delivered
    );
    let report = client
        .post(&callback)
        .form(&[
            ("MessageSid", second_sid.as_str()),
            ("MessageStatus", "undelivered"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(report.status(), StatusCode::NO_CONTENT);
    let failed = store.get_delivery(&second.id).await.expect("delivery");
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("the provider reported it undelivered")
    );
    let fallback = store
        .list_deliveries(None, 500)
        .await
        .expect("list")
        .into_iter()
        .find(|delivery| delivery.fallback_of.as_deref() == Some(second.id.as_str()))
        .expect("a fallback");
    assert_eq!(fallback.channel, Channel::InApp);
    assert_eq!(fallback.state, DeliveryState::Delivered);
}

async fn sms_provider_timeout_and_refusal(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_sms_errors").await else {
        return;
    };
    let store = &app.database.database;
    // The provider takes 3 seconds; the sender waits 1.
    let (_slow, slow_url) = start_sms_mock(201, Duration::from_secs(3)).await;
    let notifier = app.notifier(None, Some(sms_sender(slow_url, Duration::from_secs(1))));
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    choose(&app, &lucia, &[Channel::Sms], false).await;
    let session = next_session(&app, lucia.cohort).await;
    set_clock(&app, session.planned.start - SignedDuration::from_hours(24));
    plan(&app).await;
    let outcomes = app.run_due_jobs(&worker).await;
    assert!(
        outcomes
            .iter()
            .any(|outcome| matches!(outcome, StepOutcome::Retry { .. })),
        "{outcomes:?}"
    );
    let text = delivery_on(store, &lucia.account, Channel::Sms).await;
    assert_eq!(text.state, DeliveryState::Queued);
    assert_eq!(text.error.as_deref(), Some("the SMS provider timed out"));

    // A provider that refuses the number fails the text for good, and it falls back in-app.
    let Some(other) = spawn_app(dialect, Seed::DemoClinic, "reminder_sms_refused").await else {
        return;
    };
    let store = &other.database.database;
    let (_refusing, refusing_url) = start_sms_mock(400, Duration::ZERO).await;
    let notifier = other.notifier(None, Some(sms_sender(refusing_url, Duration::from_secs(5))));
    let worker = other.worker(&notifier);
    let lucia = self::lucia(&other).await;
    choose(&other, &lucia, &[Channel::Sms], false).await;
    let session = next_session(&other, lucia.cohort).await;
    set_clock(
        &other,
        session.planned.start - SignedDuration::from_hours(24),
    );
    plan(&other).await;
    other.run_due_jobs(&worker).await;
    let deliveries = store.list_deliveries(None, 500).await.expect("list");
    let failed = deliveries
        .iter()
        .find(|delivery| delivery.account == lucia.account.id && delivery.channel == Channel::Sms)
        .expect("sms delivery");
    assert_eq!(failed.state, DeliveryState::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|error| error.contains("21211")),
        "{failed:?}"
    );
    let fallback = deliveries
        .iter()
        .find(|delivery| delivery.fallback_of.as_deref() == Some(failed.id.as_str()))
        .expect("fallback");
    assert_eq!(fallback.channel, Channel::InApp);
    assert_eq!(fallback.state, DeliveryState::Delivered);
}

async fn settings_page_checks_each_field(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "notification_settings").await else {
        return;
    };
    let store = &app.database.database;
    let lucia = lucia(&app).await;
    let patient = app.browser_session("patient").await;
    let page = patient
        .get(app.url("/account/notifications"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("Recordatorios y mensajes"), "{page}");
    assert!(page.contains("name=\"practice_time\""));

    let valid = [
        ("contact_email", "lucia.reminders@example.org"),
        ("phone", "+34 600 000 002"),
        ("session_reminder.email", "on"),
        ("session_reminder.sms", "on"),
        ("practice_reminder.in_app", "on"),
        ("quiet_start", "22:00"),
        ("quiet_end", "07:00"),
        ("practice_time", "07:30"),
    ];
    // Lucía reads Spanish: each message names the field's label and what to enter.
    for (field, bad, fragment) in [
        (
            "phone",
            "555-0123",
            "Número de móvil para SMS (opcional): escriba el número con el prefijo del país",
        ),
        (
            "contact_email",
            "lucia-at-example",
            "Correo electrónico para mensajes (opcional): escriba un correo como nombre@ejemplo.org",
        ),
        (
            "quiet_end",
            "",
            "Silencio hasta: indique a qué hora terminan las horas de silencio",
        ),
        (
            "practice_time",
            "7.30am",
            "Hora del recordatorio diario de práctica (opcional): escriba una hora como 07:30",
        ),
    ] {
        let fields: Vec<(&str, &str)> = valid
            .iter()
            .map(|(name, value)| (*name, if *name == field { bad } else { *value }))
            .collect();
        let response = app
            .post_form(&patient, "/account/notifications", &fields)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
        let body = response.text().await.expect("body");
        assert!(body.contains(fragment), "{field}: {body}");
        let input = body
            .find(&format!("id=\"{field}\""))
            .map(|start| &body[start..start + body[start..].find('>').expect("tag end")])
            .expect("the field");
        assert!(input.contains("aria-invalid=\"true\""), "{field}: {input}");
        // What was submitted is shown again, and nothing was stored.
        assert!(body.contains("lucia.reminders@example.org") || field == "contact_email");
        assert_eq!(
            store
                .get_notification_settings(lucia.account.id)
                .await
                .expect("read"),
            None
        );
    }

    let response = app
        .post_form(&patient, "/account/notifications", &valid)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let saved = store
        .get_notification_settings(lucia.account.id)
        .await
        .expect("read")
        .expect("saved");
    assert_eq!(
        saved.phone.as_ref().map(PhoneNumber::as_str),
        Some("+34600000002")
    );
    assert_eq!(
        saved
            .contact_email
            .as_ref()
            .map(stillpoint_domain::EmailAddress::as_str),
        Some("lucia.reminders@example.org")
    );
    assert_eq!(
        saved.channels_for(MessageKind::SessionReminder),
        [Channel::Email, Channel::Sms].into()
    );
    assert_eq!(
        saved.channels_for(MessageKind::MeasureDue),
        std::collections::BTreeSet::new()
    );
    assert_eq!(saved.practice_time, Some(jiff::civil::time(7, 30, 0, 0)));
    let quiet = saved.quiet_hours.expect("quiet hours");
    assert_eq!(
        (quiet.start, quiet.end),
        (
            jiff::civil::time(22, 0, 0, 0),
            jiff::civil::time(7, 0, 0, 0)
        )
    );
}

async fn daily_practice_reminders_follow_local_time(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "practice_reminders").await else {
        return;
    };
    let store = &app.database.database;
    let lucia = lucia(&app).await;
    let mut account = lucia.account.clone();
    account.time_zone = stillpoint_domain::TimeZoneName::parse("America/Chicago").expect("zone");
    store.set_account_profile(&account).await.expect("profile");
    let zone = account.time_zone.time_zone();

    let practice_jobs = |jobs: Vec<stillpoint_app::ports::Job>| {
        jobs.into_iter()
            .filter(|job| {
                job.idempotency_key
                    .starts_with(&format!("practice_reminder:{}:", account.id))
            })
            .map(|job| job.due_at)
            .collect::<std::collections::BTreeSet<Timestamp>>()
    };
    for (time, day, expected) in [
        // 07:30 stays 07:30 local on the day before, of, and after each clock change of 2027
        // (14 March and 7 November in the United States).
        ((7, 30), (3, 13), "2027-03-13T13:30:00Z"),
        ((7, 30), (3, 14), "2027-03-14T12:30:00Z"),
        ((7, 30), (3, 15), "2027-03-15T12:30:00Z"),
        ((7, 30), (11, 6), "2027-11-06T12:30:00Z"),
        ((7, 30), (11, 7), "2027-11-07T13:30:00Z"),
        ((7, 30), (11, 8), "2027-11-08T13:30:00Z"),
        // 02:30 does not exist on 14 March: RFC 5545 reads it with the offset before the gap,
        // 03:30 CDT. 01:30 occurs twice on 7 November: the first, 01:30 CDT.
        ((2, 30), (3, 14), "2027-03-14T08:30:00Z"),
        ((1, 30), (11, 7), "2027-11-07T06:30:00Z"),
    ] {
        let mut settings = stillpoint_app::notify::settings_of(store, account.id)
            .await
            .expect("settings");
        settings.practice_time = Some(jiff::civil::time(time.0, time.1, 0, 0));
        settings.quiet_hours = None;
        store
            .put_notification_settings(account.id, &settings, app.clock.now())
            .await
            .expect("saved");
        // Planning runs every minute; here it runs just before the reminder is due.
        let expected: Timestamp = expected.parse().expect("instant");
        set_clock(&app, expected - SignedDuration::from_mins(30));
        plan(&app).await;
        let queued = practice_jobs(
            store
                .list_jobs(JobState::Queued, 10_000)
                .await
                .expect("jobs"),
        );
        assert!(
            queued.contains(&expected),
            "{time:?} on {day:?}: {queued:?}"
        );
        let local = expected.to_zoned_datetime(zone.clone());
        assert_eq!(local.date(), jiff::civil::date(2027, day.0, day.1));
    }
}

async fn temporary_smtp_refusal_is_retried(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_smtp_4xx").await else {
        return;
    };
    let store = &app.database.database;
    let port = refusing_smtp_server("451 4.3.0 try again later").await;
    let notifier = app.notifier(Some(mailer(port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let session = next_session(&app, lucia.cohort).await;
    set_clock(&app, session.planned.start - SignedDuration::from_hours(24));
    plan(&app).await;

    // A 4xx reply is temporary: the attempt is retried later, with the reply recorded.
    let outcomes = app.run_due_jobs(&worker).await;
    assert!(
        outcomes
            .iter()
            .any(|outcome| matches!(outcome, StepOutcome::Retry { .. })),
        "{outcomes:?}"
    );
    let email = delivery_on(store, &lucia.account, Channel::Email).await;
    assert_eq!(email.state, DeliveryState::Queued);
    assert!(
        email
            .error
            .as_deref()
            .is_some_and(|error| error.contains("451")),
        "{email:?}"
    );
}

async fn quiet_hours_delay_a_reminder(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_quiet_hours").await else {
        return;
    };
    let store = &app.database.database;
    let lucia = lucia(&app).await;
    let session = next_session(&app, lucia.cohort).await;
    let zone = lucia.account.time_zone.time_zone();
    let reminder_at = session.planned.start - SignedDuration::from_hours(24);
    let local = reminder_at.to_zoned_datetime(zone.clone());

    // Quiet hours from an hour before the 24-hour reminder to an hour after it.
    let mut settings = stillpoint_app::notify::settings_of(store, lucia.account.id)
        .await
        .expect("settings");
    let quiet_start = local.time() - SignedDuration::from_hours(1);
    let quiet_end = local.time() + SignedDuration::from_hours(1);
    settings.quiet_hours = Some(
        stillpoint_domain::notify::QuietHours::new(quiet_start, quiet_end).expect("quiet hours"),
    );
    store
        .put_notification_settings(lucia.account.id, &settings, app.clock.now())
        .await
        .expect("saved");
    set_clock(&app, reminder_at - SignedDuration::from_mins(5));
    plan(&app).await;
    let key = format!(
        "session_reminder:{}:{}:1440:{}",
        session.id,
        session.planned.start.as_millisecond(),
        lucia.account.id
    );
    let job = store
        .list_jobs(JobState::Queued, 10_000)
        .await
        .expect("jobs")
        .into_iter()
        .find(|job| job.idempotency_key == key)
        .expect("the 24-hour reminder");
    assert_eq!(
        job.due_at,
        reminder_at + SignedDuration::from_hours(1),
        "the reminder waits for the end of quiet hours"
    );
}

async fn check_in_reminders_follow_the_plan(dialect: Dialect) {
    let Some(sink) = SmtpSink::start("check_in_reminders_follow_the_plan") else {
        return;
    };
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_check_in").await else {
        return;
    };
    let notifier = app.notifier(Some(mailer(sink.port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let mut settings =
        stillpoint_app::notify::settings_of(&app.database.database, lucia.account.id)
            .await
            .expect("settings");
    settings.quiet_hours = None;
    app.database
        .database
        .put_notification_settings(lucia.account.id, &settings, app.clock.now())
        .await
        .expect("saved");
    let occasion = stillpoint_app::measures::occasions_of(
        app.state.store.as_ref(),
        &app.state.measures,
        app.clock.now(),
        lucia.patient,
    )
    .await
    .expect("occasions")
    .into_iter()
    .find(|due| due.occasion.opens > app.clock.now())
    .expect("an upcoming check-in")
    .occasion;

    // As the occasion opens, a check-in message; once it is due and unanswered, another.
    for (at, subject) in [
        (occasion.opens, "Un breve cuestionario le espera"),
        (occasion.due, "Su cuestionario sigue abierto"),
    ] {
        set_clock(&app, at - SignedDuration::from_mins(1));
        plan(&app).await;
        app.clock.advance(SignedDuration::from_mins(2));
        app.run_due_jobs(&worker).await;
        sink.wait_for(1, Duration::from_secs(5)).await;
        let messages = sink.messages();
        let received: Vec<_> = mail_to(&messages, &lucia.account)
            .into_iter()
            .filter(|mail| mail.subject == subject)
            .collect();
        assert_eq!(received.len(), 1, "{subject}: {messages:#?}");
        assert!(
            !received[0].text.contains("PHQ") && !received[0].text.contains("GAD"),
            "no instrument names in e-mail"
        );
    }
}

async fn lapsed_patient_is_invited_back_once(dialect: Dialect) {
    let Some(sink) = SmtpSink::start("lapsed_patient_is_invited_back_once") else {
        return;
    };
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_lapse").await else {
        return;
    };
    let store = &app.database.database;
    let notifier = app.notifier(Some(mailer(sink.port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let mut settings = stillpoint_app::notify::settings_of(store, lucia.account.id)
        .await
        .expect("settings");
    settings.quiet_hours = None;
    store
        .put_notification_settings(lucia.account.id, &settings, app.clock.now())
        .await
        .expect("saved");

    // She is marked lapsed; the message inviting her back goes once.
    let state = store
        .find_enrolment(lucia.patient)
        .await
        .expect("pathway")
        .expect("state");
    let lapsed = EnrolmentState::Lapsed {
        cohort: lucia.cohort,
    };
    let now = app.clock.now();
    store
        .record_transition(
            lucia.patient,
            Some(&state),
            &lapsed,
            None,
            Some("no attended session for 14 days"),
            None,
            now,
        )
        .await
        .expect("lapsed");
    stillpoint_app::reminders::patient_lapsed(store, now, lucia.patient, now)
        .await
        .expect("queued");
    stillpoint_app::reminders::patient_lapsed(store, now, lucia.patient, now)
        .await
        .expect("queued once");
    app.run_due_jobs(&worker).await;
    sink.wait_for(1, Duration::from_secs(5)).await;
    let messages = sink.messages();
    let invitations: Vec<_> = mail_to(&messages, &lucia.account)
        .into_iter()
        .filter(|mail| mail.subject == "Puede volver cuando quiera")
        .collect();
    assert_eq!(invitations.len(), 1, "{messages:#?}");
    assert!(
        invitations[0]
            .text
            .contains("Le hemos echado de menos en el grupo.")
    );
}

/// Starts an SMTP server that accepts the connection and every command, then never replies
/// once a message's data is sent, as a server that hangs would.
async fn stalling_smtp_server() -> u16 {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (reader, mut writer) = socket.into_split();
                let mut lines = BufReader::new(reader).lines();
                let _ = writer.write_all(b"220 stalling.test ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if in_data {
                        // The end of the data gets no reply, ever.
                        continue;
                    } else if line.to_ascii_uppercase().starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else {
                        b"250 OK\r\n"
                    };
                    if writer.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

async fn stalled_smtp_server_times_out(dialect: Dialect) {
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_smtp_stall").await else {
        return;
    };
    let store = &app.database.database;
    let port = stalling_smtp_server().await;
    let mailer: Arc<dyn Mailer> = Arc::new(
        SmtpMailer::new(&SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "Stillpoint Test Clinic <reminders@clinic.example>".to_owned(),
            timeout: Duration::from_secs(1),
            extra_roots_pem: None,
        })
        .expect("mailer"),
    );
    let notifier = app.notifier(Some(mailer), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let session = next_session(&app, lucia.cohort).await;
    set_clock(&app, session.planned.start - SignedDuration::from_hours(24));
    plan(&app).await;

    // The send gives up after the timeout; the worker goes on and the attempt is retried.
    let outcomes = tokio::time::timeout(Duration::from_secs(30), app.run_due_jobs(&worker))
        .await
        .expect("the worker does not hang");
    assert!(
        outcomes
            .iter()
            .any(|outcome| matches!(outcome, StepOutcome::Retry { .. })),
        "{outcomes:?}"
    );
    let email = delivery_on(store, &lucia.account, Channel::Email).await;
    assert_eq!(email.state, DeliveryState::Queued);
    assert_eq!(email.error.as_deref(), Some("the SMTP server timed out"));
}

/// Writes a certificate authority and a certificate it issued for 127.0.0.1 as PEM files in
/// `folder`. Returns the paths of the authority, the server certificate and its key.
fn clinic_authority(
    folder: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

    let mut authority = CertificateParams::new(Vec::<String>::new()).expect("params");
    authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    authority.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    authority
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test Clinic Authority");
    let authority_key = KeyPair::generate().expect("key");
    let authority_certificate = authority.self_signed(&authority_key).expect("authority");
    let issuer = Issuer::new(authority, authority_key);
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    server.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().expect("key");
    let server_certificate = server.signed_by(&server_key, &issuer).expect("certificate");

    let paths = (
        folder.join("authority.pem"),
        folder.join("server.pem"),
        folder.join("server-key.pem"),
    );
    std::fs::write(&paths.0, authority_certificate.pem()).expect("write");
    std::fs::write(&paths.1, server_certificate.pem()).expect("write");
    std::fs::write(&paths.2, server_key.serialize_pem()).expect("write");
    paths
}

async fn email_goes_over_starttls_and_tls(dialect: Dialect) {
    let folder = tempfile::tempdir().expect("folder");
    let (authority, certificate, key) = clinic_authority(folder.path());
    let authority_pem = std::fs::read_to_string(&authority).expect("read");
    for (implicit, security) in [(false, SmtpSecurity::StartTls), (true, SmtpSecurity::Tls)] {
        let Some(sink) = SmtpSink::start_tls(
            "email_goes_over_starttls_and_tls",
            &certificate,
            &key,
            implicit,
        ) else {
            return;
        };
        let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_tls").await else {
            return;
        };
        let settings = SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port: sink.port,
            security,
            username: None,
            password: None,
            from: "Stillpoint Test Clinic <reminders@clinic.example>".to_owned(),
            timeout: Duration::from_secs(5),
            extra_roots_pem: Some(authority_pem.clone()),
        };
        let mailer: Arc<dyn Mailer> = Arc::new(SmtpMailer::new(&settings).expect("mailer"));
        let notifier = app.notifier(Some(mailer), None);
        let worker = app.worker(&notifier);
        let lucia = lucia(&app).await;
        let session = next_session(&app, lucia.cohort).await;
        set_clock(&app, session.planned.start - SignedDuration::from_hours(24));
        plan(&app).await;
        app.run_due_jobs(&worker).await;
        sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(
            mail_to(&sink.messages(), &lucia.account).len(),
            1,
            "{security:?}: the reminder arrives over TLS"
        );

        // Without the clinic's authority the certificate is not trusted, and nothing is sent.
        let untrusted = SmtpSettings {
            extra_roots_pem: None,
            ..settings
        };
        let mailer = SmtpMailer::new(&untrusted).expect("mailer");
        let email = stillpoint_app::notify::OutgoingEmail {
            to: lucia.account.email.clone(),
            subject: "test".to_owned(),
            text: "test".to_owned(),
            html: "<p>test</p>".to_owned(),
            message_id: "untrusted@clinic.example".to_owned(),
            list_unsubscribe: None,
        };
        let error = mailer
            .send(&email)
            .await
            .expect_err("untrusted certificate");
        assert!(error.retryable, "{error:?}");
        assert_eq!(mail_to(&sink.messages(), &lucia.account).len(), 1);
    }
}

async fn escalation_reaches_staff_despite_quiet_hours(dialect: Dialect) {
    use stillpoint_app::ports::MeasureStore as _;

    let Some(sink) = SmtpSink::start("escalation_reaches_staff_despite_quiet_hours") else {
        return;
    };
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_escalation").await else {
        return;
    };
    let store = &app.database.database;
    let notifier = app.notifier(Some(mailer(sink.port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let site = store
        .get_patient(lucia.patient)
        .await
        .expect("patient")
        .site_id;

    // The site's backup clinician has quiet hours all day and ticked no channel for alerts.
    let backup = app
        .demo
        .as_ref()
        .expect("demo")
        .accounts
        .iter()
        .find(|account| account.has_role(stillpoint_domain::Role::Clinician))
        .expect("a clinician")
        .clone();
    let safety = stillpoint_app::ports::SafetySettings {
        backup_clinician: Some(backup.id),
        ..stillpoint_app::ports::SafetySettings::default()
    };
    let audit = stillpoint_domain::audit::NewAuditEvent {
        recorded_at: app.clock.now(),
        actor: None,
        actor_role: None,
        patient: None,
        resource_type: "site_safety_settings".to_owned(),
        resource_id: None,
        action: stillpoint_domain::audit::AuditAction::Update,
        outcome: stillpoint_domain::audit::AuditOutcome::Success,
        source_address: None,
        break_glass: false,
    };
    store
        .set_safety_settings(site, &safety, &audit)
        .await
        .expect("safety settings");
    let mut settings = stillpoint_app::notify::settings_of(store, backup.id)
        .await
        .expect("settings");
    settings.quiet_hours = Some(
        stillpoint_domain::notify::QuietHours::new(
            jiff::civil::time(0, 0, 0, 0),
            jiff::civil::time(23, 59, 0, 0),
        )
        .expect("quiet hours"),
    );
    settings.channels.insert(
        MessageKind::AlertEscalated,
        std::collections::BTreeSet::new(),
    );
    store
        .put_notification_settings(backup.id, &settings, app.clock.now())
        .await
        .expect("saved");

    // Lucía scores PHQ-9 item 9 above 0, and the alert stays unacknowledged for 16 minutes.
    let token = app.api_token("patient").await;
    let answers: serde_json::Map<String, serde_json::Value> = (1..=9)
        .map(|item| (item.to_string(), serde_json::json!(2)))
        .collect();
    let response = app
        .client()
        .post(app.url(&format!("/api/v1/patients/{}/responses", lucia.patient)))
        .bearer_auth(&token)
        .json(&serde_json::json!({"instrument": "phq-9", "client_id": "escalation-mail", "answers": answers}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.expect("json");
    let alert_id = body["alert_id"].as_str().expect("an alert").to_owned();
    app.clock.advance(SignedDuration::from_mins(16));
    stillpoint_app::safety::escalate_overdue(store, app.clock.as_ref())
        .await
        .expect("escalation");
    app.run_due_jobs(&worker).await;

    // The e-mail goes at once, names nothing about the patient, and links to the inbox. The
    // sweep also escalates the demo clinic's own open alerts, so this alert's e-mail is found
    // through its delivery.
    let delivery = store
        .list_deliveries(None, 500)
        .await
        .expect("deliveries")
        .into_iter()
        .find(|delivery| {
            delivery.account == backup.id
                && delivery.channel == Channel::Email
                && delivery.subject.contains(&alert_id)
        })
        .expect("the alert's e-mail delivery");
    assert_eq!(delivery.kind, MessageKind::AlertEscalated);
    assert_eq!(delivery.state, DeliveryState::Sent);
    sink.wait_for(1, Duration::from_secs(5)).await;
    let messages = sink.messages();
    let message_id = format!("<{}>", delivery.provider_message_id.as_deref().expect("id"));
    let mail = messages
        .iter()
        .find(|mail| mail.message_id == message_id)
        .expect("the e-mail arrived");
    assert!(mail.to.contains(backup.email.as_str()));
    assert!(
        mail.subject == "Una alerta de seguridad necesita su atención"
            || mail.subject == "A safety alert needs your attention",
        "{}",
        mail.subject
    );
    assert!(mail.text.contains(&app.url("/alerts")), "{}", mail.text);
    for private in ["Lucía", "PHQ", "suicid", "item"] {
        assert!(!mail.text.contains(private), "{private} in {}", mail.text);
    }
    assert_eq!(
        mail.list_unsubscribe, None,
        "essential messages cannot be turned off"
    );
}

async fn lapse_check_invites_patient_back(dialect: Dialect) {
    let Some(sink) = SmtpSink::start("lapse_check_invites_patient_back") else {
        return;
    };
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, "reminder_lapse_check").await else {
        return;
    };
    let store = &app.database.database;
    let notifier = app.notifier(Some(mailer(sink.port)), None);
    let worker = app.worker(&notifier);
    let lucia = lucia(&app).await;
    let mut settings = stillpoint_app::notify::settings_of(store, lucia.account.id)
        .await
        .expect("settings");
    settings.quiet_hours = None;
    settings.channels.insert(
        MessageKind::SessionReminder,
        std::collections::BTreeSet::new(),
    );
    store
        .put_notification_settings(lucia.account.id, &settings, app.clock.now())
        .await
        .expect("saved");

    // She misses the next session, its roll call is taken, and 15 days pass.
    let missed = next_session(&app, lucia.cohort).await;
    let facilitator = store
        .get_cohort_details(lucia.cohort)
        .await
        .expect("cohort")
        .facilitators[0]
        .0;
    set_clock(&app, missed.planned.start + SignedDuration::from_hours(2));
    let absent = stillpoint_domain::attendance::AttendanceRecord::new(
        stillpoint_domain::attendance::AttendanceMark::Absent,
        0,
        120,
        None,
    )
    .expect("record");
    store
        .put_attendance(
            &[stillpoint_app::ports::AttendanceEntry {
                session: missed.id,
                patient: lucia.patient,
                record: absent,
            }],
            facilitator,
            app.clock.now(),
        )
        .await
        .expect("roll call");
    app.clock.advance(SignedDuration::from_hours(15 * 24));

    // The hourly lapse check marks her lapsed and queues one invitation; a second check
    // changes nothing.
    let marked = stillpoint_app::program::mark_lapses(store, app.clock.as_ref(), 14)
        .await
        .expect("lapse check");
    assert!(marked.contains(&lucia.patient), "{marked:?}");
    stillpoint_app::program::mark_lapses(store, app.clock.as_ref(), 14)
        .await
        .expect("lapse check");
    app.run_due_jobs(&worker).await;
    sink.wait_for(1, Duration::from_secs(5)).await;
    let messages = sink.messages();
    let invitations: Vec<_> = mail_to(&messages, &lucia.account)
        .into_iter()
        .filter(|mail| mail.subject == "Puede volver cuando quiera")
        .collect();
    assert_eq!(invitations.len(), 1, "{messages:#?}");
}

stillpoint_test_support::on_both_databases!(
    session_reminder_arrives_once_in_spanish,
    rescheduled_session_replaces_pending_reminders,
    withdrawn_patient_gets_nothing_further,
    failed_email_retries_then_falls_back_to_sms,
    refused_recipient_falls_back_at_once,
    sms_reports_delivery_and_failures,
    sms_provider_timeout_and_refusal,
    settings_page_checks_each_field,
    daily_practice_reminders_follow_local_time,
    temporary_smtp_refusal_is_retried,
    quiet_hours_delay_a_reminder,
    check_in_reminders_follow_the_plan,
    lapsed_patient_is_invited_back_once,
    stalled_smtp_server_times_out,
    email_goes_over_starttls_and_tls,
    escalation_reaches_staff_despite_quiet_hours,
    lapse_check_invites_patient_back,
);
