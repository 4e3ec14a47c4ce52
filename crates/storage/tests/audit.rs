//! The audit table on both databases: appends form one valid chain, also when many writers
//! append at once, and the database itself refuses updates and deletes.

use std::sync::Arc;

use jiff::Timestamp;
use stillpoint_app::ports::AuditStore;
use stillpoint_domain::audit::{AuditAction, AuditOutcome, ChainVerifier, NewAuditEvent};
use stillpoint_domain::{AccountId, PatientId, Role};
use stillpoint_storage::Dialect;
use stillpoint_test_support::TestDatabase;
use uuid::Uuid;

fn read_event(n: u128) -> NewAuditEvent {
    NewAuditEvent {
        recorded_at: Timestamp::from_millisecond(1_796_000_000_000).expect("valid"),
        actor: Some(AccountId::from_uuid(Uuid::from_u128(1))),
        actor_role: Some(Role::Clinician),
        patient: Some(PatientId::from_uuid(Uuid::from_u128(n))),
        resource_type: "Patient".to_owned(),
        resource_id: Some(Uuid::from_u128(n).to_string()),
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        source_address: Some("127.0.0.1".to_owned()),
        break_glass: n.is_multiple_of(7),
    }
}

async fn verify_all(database: &TestDatabase) -> i64 {
    let events = database
        .database
        .list_audit_events(0, 10_000)
        .await
        .expect("list");
    let mut verifier = ChainVerifier::new(None, b"unused").expect("no checkpoint");
    for event in &events {
        verifier.check(event).expect("the chain is intact");
    }
    verifier.finish().expect("complete")
}

async fn appends_form_a_chain(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "appends_form_a_chain").await else {
        return;
    };
    for n in 1..=20 {
        let stored = database
            .database
            .append_audit_event(&read_event(n))
            .await
            .expect("append");
        assert_eq!(stored.sequence, i64::try_from(n).expect("small"));
    }
    assert_eq!(verify_all(&database).await, 20);

    let page = database
        .database
        .list_audit_events(5, 3)
        .await
        .expect("page");
    let sequences: Vec<i64> = page.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, [6, 7, 8]);
    assert_eq!(page[0].event, read_event(6));
}

async fn concurrent_appends_stay_chained(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "concurrent_appends_stay_chained").await else {
        return;
    };
    let database = Arc::new(database);
    let writers: Vec<_> = (0..8_u128)
        .map(|writer| {
            let database = Arc::clone(&database);
            tokio::spawn(async move {
                for n in 0..10 {
                    database
                        .database
                        .append_audit_event(&read_event(writer * 100 + n))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer finished");
    }
    assert_eq!(verify_all(&database).await, 80);
}

async fn database_refuses_changes(dialect: Dialect) {
    let Some(database) = TestDatabase::of(dialect, "database_refuses_changes").await else {
        return;
    };
    database
        .database
        .append_audit_event(&read_event(1))
        .await
        .expect("append");

    let update = database
        .try_execute_raw("UPDATE audit_events SET outcome = 'denied'")
        .await;
    assert!(update.is_err_and(|error| error.contains("audit_events_append_only")));
    let delete = database.try_execute_raw("DELETE FROM audit_events").await;
    assert!(delete.is_err_and(|error| error.contains("audit_events_append_only")));
    assert_eq!(verify_all(&database).await, 1);
}

stillpoint_test_support::on_both_databases!(
    appends_form_a_chain,
    concurrent_appends_stay_chained,
    database_refuses_changes
);
