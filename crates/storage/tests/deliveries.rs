//! Deliveries, notification settings and the bulk job operations reminders use behave the same
//! on SQLite and PostgreSQL.

use jiff::Timestamp;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    AccountStore as _, DeliveryRecorded, DeliveryStore as _, JobStore as _, NewDelivery, NewJob,
};
use stillpoint_domain::jobs::JobState;
use stillpoint_domain::notify::{
    Channel, DeliveryState, MessageKind, NotificationSettings, PhoneNumber,
};
use stillpoint_domain::{Account, AccountId, EmailAddress, Language, TimeZoneName};
use stillpoint_storage::{Database, Dialect};
use stillpoint_test_support::TestDatabase;

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

async fn account(db: &Database, local: &str) -> AccountId {
    let account = Account {
        id: AccountId::from_uuid(uuid::Uuid::now_v7()),
        email: EmailAddress::parse(&format!("{local}@clinic.example")).expect("address"),
        display_name: format!("Person {local}"),
        language: Language::spanish(),
        time_zone: TimeZoneName::parse("Europe/Madrid").expect("zone"),
        roles: Vec::new(),
        preferences: stillpoint_domain::DisplayPreferences::default(),
    };
    db.insert_account(&account, "$argon2id$stub")
        .await
        .expect("account");
    account.id
}

fn delivery(account: AccountId, key: &str, channel: Channel) -> NewDelivery {
    NewDelivery {
        id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: key.to_owned(),
        account,
        kind: MessageKind::SessionReminder,
        channel,
        subject: "{\"about\":\"practice\"}".to_owned(),
        fallback_of: None,
        created_at: at("2026-12-05T10:00:00Z"),
    }
}

async fn delivery_moves_through_its_states(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "deliveries_states").await else {
        return;
    };
    let db = &test_db.database;
    let ana = account(db, "ana").await;
    let DeliveryRecorded::Created(created) = db
        .record_delivery(&delivery(ana, "k1:email", Channel::Email))
        .await
        .expect("recorded")
    else {
        panic!("a new key creates a delivery");
    };
    assert_eq!(created.state, DeliveryState::Queued);

    // Recording the same key again returns the stored one.
    let DeliveryRecorded::Exists(same) = db
        .record_delivery(&delivery(ana, "k1:email", Channel::Email))
        .await
        .expect("recorded")
    else {
        panic!("the key exists");
    };
    assert_eq!(same.id, created.id);

    // An attempt, a retryable failure, a second attempt interrupted mid-send, and a third
    // that finds it `sending` and completes it.
    let before = db
        .begin_delivery_attempt(&created.id, at("2026-12-05T10:01:00Z"))
        .await
        .expect("attempt");
    assert_eq!(before.state, DeliveryState::Queued);
    db.record_delivery_failure(
        &created.id,
        "421 try later",
        false,
        at("2026-12-05T10:01:01Z"),
    )
    .await
    .expect("failure");
    db.begin_delivery_attempt(&created.id, at("2026-12-05T10:02:00Z"))
        .await
        .expect("attempt");
    let interrupted = db
        .begin_delivery_attempt(&created.id, at("2026-12-05T10:09:00Z"))
        .await
        .expect("attempt after a crash");
    assert_eq!(interrupted.state, DeliveryState::Sending);
    db.record_delivery_sent(
        &created.id,
        "msg-1@clinic.example",
        at("2026-12-05T10:09:01Z"),
    )
    .await
    .expect("sent");
    let sent = db.get_delivery(&created.id).await.expect("delivery");
    assert_eq!(sent.state, DeliveryState::Sent);
    assert_eq!(sent.attempts, 3);
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("msg-1@clinic.example")
    );
    assert_eq!(sent.error, None);

    // A sent delivery cannot be attempted again, nor skipped.
    assert!(matches!(
        db.begin_delivery_attempt(&created.id, at("2026-12-05T10:10:00Z"))
            .await,
        Err(StorageError::Conflict { .. })
    ));
    assert!(matches!(
        db.record_delivery_skipped(&created.id, "late", at("2026-12-05T10:10:00Z"))
            .await,
        Err(StorageError::Conflict { .. })
    ));

    // The provider's report confirms it by the delivery and its provider id.
    assert!(
        db.record_delivery_confirmed(
            &created.id,
            "msg-1@clinic.example",
            at("2026-12-05T10:11:00Z")
        )
        .await
        .expect("confirmed")
    );
    assert!(
        !db.record_delivery_confirmed(
            &created.id,
            "another-message@clinic.example",
            at("2026-12-05T10:11:00Z")
        )
        .await
        .expect("another provider id")
    );
    let delivered = db.get_delivery(&created.id).await.expect("delivery");
    assert_eq!(delivered.state, DeliveryState::Delivered);
    assert_eq!(delivered.delivered_at, Some(at("2026-12-05T10:11:00Z")));
}

async fn undelivered_text_turns_failed(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "deliveries_undelivered").await else {
        return;
    };
    let db = &test_db.database;
    let ana = account(db, "ana").await;
    let DeliveryRecorded::Created(email) = db
        .record_delivery(&delivery(ana, "k1:email", Channel::Email))
        .await
        .expect("recorded")
    else {
        panic!("new");
    };
    // An SMS the provider later reports undelivered turns failed, with the reason.
    let DeliveryRecorded::Created(text) = db
        .record_delivery(&delivery(ana, "k1:sms", Channel::Sms))
        .await
        .expect("recorded")
    else {
        panic!("new");
    };
    db.begin_delivery_attempt(&text.id, at("2026-12-05T10:01:00Z"))
        .await
        .expect("attempt");
    db.record_delivery_sent(&text.id, "SM123", at("2026-12-05T10:01:01Z"))
        .await
        .expect("sent");
    let failed = db
        .record_delivery_undelivered(
            &text.id,
            "SM123",
            "the provider reported it undelivered",
            at("2026-12-05T10:05:00Z"),
        )
        .await
        .expect("undelivered")
        .expect("the delivery");
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("the provider reported it undelivered")
    );

    let listed = db.list_deliveries(None, 10).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|listed| listed.id == email.id));
    let only_failed = db
        .list_deliveries(Some(DeliveryState::Failed), 10)
        .await
        .expect("list");
    assert_eq!(only_failed.len(), 1);
    assert_eq!(only_failed[0].id, text.id);
}

async fn settings_round_trip(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "deliveries_settings").await else {
        return;
    };
    let db = &test_db.database;
    let ana = account(db, "ana").await;
    let ben = account(db, "ben").await;
    assert_eq!(db.get_notification_settings(ana).await.expect("read"), None);

    let mut settings = NotificationSettings {
        phone: Some(PhoneNumber::parse("+34 600 000 001").expect("phone")),
        practice_time: Some(jiff::civil::time(7, 30, 0, 0)),
        sms_fallback: true,
        ..NotificationSettings::default()
    };
    settings
        .channels
        .insert(MessageKind::SessionReminder, [Channel::Sms].into());
    db.put_notification_settings(ana, &settings, at("2026-12-05T10:00:00Z"))
        .await
        .expect("saved");
    db.put_notification_settings(
        ben,
        &NotificationSettings::default(),
        at("2026-12-05T10:00:00Z"),
    )
    .await
    .expect("saved");
    assert_eq!(
        db.get_notification_settings(ana).await.expect("read"),
        Some(settings.clone())
    );

    // Only the account with a practice time is listed for the practice reminders; turning
    // it off removes it.
    let chosen = db.practice_reminder_settings().await.expect("list");
    assert_eq!(chosen, vec![(ana, settings.clone())]);
    settings.practice_time = None;
    db.put_notification_settings(ana, &settings, at("2026-12-05T11:00:00Z"))
        .await
        .expect("saved");
    assert!(
        db.practice_reminder_settings()
            .await
            .expect("list")
            .is_empty()
    );
}

async fn bulk_enqueue_and_prefix_cancel(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "deliveries_bulk").await else {
        return;
    };
    let db = &test_db.database;
    let now = at("2026-12-05T10:00:00Z");
    let jobs: Vec<NewJob> = (0..1_203)
        .map(|index| NewJob {
            kind: "notify".to_owned(),
            payload: "{}".to_owned(),
            idempotency_key: format!("session_reminder:s{}:{index}", index % 3),
            due_at: now,
        })
        .collect();
    assert_eq!(db.enqueue_many(&jobs, now).await.expect("queued"), 1_203);
    // Planning again adds nothing.
    assert_eq!(db.enqueue_many(&jobs, now).await.expect("queued"), 0);

    // `_` in the prefix is a literal, not a LIKE wildcard: `session_reminder:s1:` must not
    // match `sessionXreminder:s1:`.
    db.enqueue(
        &NewJob {
            kind: "notify".to_owned(),
            payload: "{}".to_owned(),
            idempotency_key: "sessionXreminder:s1:0".to_owned(),
            due_at: now,
        },
        now,
    )
    .await
    .expect("queued");
    let cancelled = db
        .cancel_queued_jobs_with_prefix("session_reminder:s1:", now)
        .await
        .expect("cancelled");
    assert_eq!(cancelled, 401);
    let queued = db.list_jobs(JobState::Queued, 2_000).await.expect("jobs");
    assert_eq!(queued.len(), 1_203 - 401 + 1);
    assert!(
        queued
            .iter()
            .any(|job| job.idempotency_key == "sessionXreminder:s1:0")
    );

    // Planning the cancelled ones again queues them again (a session moved back), and a key
    // given twice in one batch is queued once.
    let mut again = jobs.clone();
    again.push(jobs[1].clone());
    assert_eq!(db.enqueue_many(&again, now).await.expect("queued"), 401);
    let queued = db.list_jobs(JobState::Queued, 2_000).await.expect("jobs");
    assert_eq!(queued.len(), 1_203 + 1);
}

stillpoint_test_support::on_both_databases!(
    delivery_moves_through_its_states,
    undelivered_text_turns_failed,
    settings_round_trip,
    bulk_enqueue_and_prefix_cancel,
);
