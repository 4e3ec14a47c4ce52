//! Tampering with a copy of a stored audit trail, in many random ways, is always detected:
//! edited fields, deleted events, reordered events and a cut tail (the last only with the signed
//! checkpoint, which is kept outside the database).

use jiff::Timestamp;
use stillpoint_app::audit::{VerifyError, verify_trail};
use stillpoint_app::ports::AuditStore;
use stillpoint_domain::audit::{AuditAction, AuditOutcome, Checkpoint, NewAuditEvent};
use stillpoint_domain::{AccountId, PatientId, Role};
use stillpoint_storage::{Database, DatabaseUrl};
use stillpoint_test_support::TestDatabase;
use uuid::Uuid;

const EVENTS: i64 = 40;
const TRIALS: u64 = 200;
const KEY: &[u8] = b"test checkpoint key";

fn event(n: i64) -> NewAuditEvent {
    let number = u128::try_from(n).expect("positive");
    NewAuditEvent {
        recorded_at: Timestamp::from_millisecond(1_796_000_000_000 + n * 1000).expect("valid"),
        actor: Some(AccountId::from_uuid(Uuid::from_u128(1000 + number % 3))),
        actor_role: Some(if n % 2 == 0 {
            Role::Clinician
        } else {
            Role::Facilitator
        }),
        patient: Some(PatientId::from_uuid(Uuid::from_u128(number))),
        resource_type: "Patient".to_owned(),
        resource_id: Some(Uuid::from_u128(number).to_string()),
        action: if n % 5 == 0 {
            AuditAction::Update
        } else {
            AuditAction::Read
        },
        outcome: AuditOutcome::Success,
        source_address: Some("127.0.0.1".to_owned()),
        break_glass: n % 11 == 0,
    }
}

/// A tiny deterministic generator (xorshift64*), so a failing trial can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: i64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        i64::try_from(value % u64::try_from(bound).expect("positive")).expect("small")
    }
}

/// SQL that damages the trail in one random way; every statement changes something.
fn random_tampering(random: &mut Random) -> (String, Vec<String>) {
    let row = 1 + random.below(EVENTS);
    let edits = [
        "recorded_at = recorded_at + 1",
        "actor_account_id = '00000000-0000-0000-0000-0000000000fe'",
        "actor_role = CASE actor_role WHEN 'clinician' THEN 'facilitator' ELSE 'clinician' END",
        "patient_id = '00000000-0000-0000-0000-0000000000ff'",
        "resource_type = 'Observation'",
        "resource_id = resource_id || 'x'",
        "action = CASE action WHEN 'read' THEN 'delete' ELSE 'read' END",
        "outcome = 'denied'",
        "source_address = '127.0.0.2'",
        "break_glass = 1 - break_glass",
        "previous_hash = CASE substr(previous_hash, 1, 1) WHEN '1' THEN '2' ELSE '1' END || substr(previous_hash, 2)",
        "hash = CASE substr(hash, 1, 1) WHEN 'f' THEN 'e' ELSE 'f' END || substr(hash, 2)",
    ];
    match random.below(5) {
        0 => {
            let edit = edits[usize::try_from(random.below(12)).expect("index")];
            (
                format!("edit of event {row}: {edit}"),
                vec![format!(
                    "UPDATE audit_events SET {edit} WHERE sequence = {row}"
                )],
            )
        }
        1 => (
            format!("deletion of event {row}"),
            vec![format!("DELETE FROM audit_events WHERE sequence = {row}")],
        ),
        2 => {
            let other = 1 + (row + random.below(EVENTS - 1)) % EVENTS;
            (
                format!("swap of events {row} and {other}"),
                vec![
                    format!("UPDATE audit_events SET sequence = 1000000 WHERE sequence = {row}"),
                    format!("UPDATE audit_events SET sequence = {row} WHERE sequence = {other}"),
                    format!("UPDATE audit_events SET sequence = {other} WHERE sequence = 1000000"),
                ],
            )
        }
        3 => {
            let keep = random.below(EVENTS);
            (
                format!("cut after event {keep}"),
                vec![format!("DELETE FROM audit_events WHERE sequence > {keep}")],
            )
        }
        _ => {
            let first = 1 + random.below(EVENTS);
            let count = 1 + random.below(3);
            (
                format!("deletion of events {first} to {}", first + count - 1),
                vec![format!(
                    "DELETE FROM audit_events WHERE sequence >= {first} AND sequence < {}",
                    first + count
                )],
            )
        }
    }
}

async fn verify_copy(
    template: &std::path::Path,
    statements: &[String],
) -> Result<i64, VerifyError> {
    let folder = tempfile::tempdir().expect("temp");
    let copy = folder.path().join("stillpoint.db");
    std::fs::copy(template, &copy).expect("copy");

    let tampering = TestDatabase::from_url(DatabaseUrl::Sqlite(copy.clone()));
    // Someone editing the file directly is not stopped by the append-only triggers.
    tampering
        .execute_raw("DROP TRIGGER audit_events_no_update")
        .await;
    tampering
        .execute_raw("DROP TRIGGER audit_events_no_delete")
        .await;
    for statement in statements {
        tampering.execute_raw(statement).await;
    }

    let database = Database::connect(&DatabaseUrl::Sqlite(copy))
        .await
        .expect("opens");
    let checkpoint = Checkpoint::sign(KEY, EVENTS, &original_head_hash());
    let outcome = verify_trail(&database, Some(checkpoint), KEY)
        .await
        .map(|report| report.events);
    database.close().await;
    outcome
}

static HEAD_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn original_head_hash() -> String {
    HEAD_HASH.get().expect("the trail was built").clone()
}

#[tokio::test]
async fn every_random_tampering_is_detected() {
    let original = TestDatabase::sqlite().await;
    for n in 1..=EVENTS {
        original
            .database
            .append_audit_event(&event(n))
            .await
            .expect("append");
    }
    let (sequence, hash) = original
        .database
        .audit_head()
        .await
        .expect("head")
        .expect("not empty");
    assert_eq!(sequence, EVENTS);
    HEAD_HASH.set(hash).expect("set once");
    original
        .execute_raw("PRAGMA wal_checkpoint(TRUNCATE)")
        .await;
    let template = original.sqlite_path().expect("sqlite");

    assert_eq!(
        verify_copy(&template, &[])
            .await
            .expect("the untouched copy verifies"),
        EVENTS
    );

    let mut random = Random(0x5EED_5EED_5EED_5EED);
    let mut undetected = Vec::new();
    for trial in 0..TRIALS {
        let (description, statements) = random_tampering(&mut random);
        match verify_copy(&template, &statements).await {
            Err(VerifyError::Broken(_)) => {}
            other => undetected.push(format!("trial {trial}, {description}: {other:?}")),
        }
    }
    assert!(
        undetected.is_empty(),
        "undetected tamperings:\n{}",
        undetected.join("\n")
    );
}
