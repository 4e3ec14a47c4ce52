//! Home practice storage behaves the same on SQLite and PostgreSQL: recordings kept in pieces
//! read back byte for byte over any range, diary entries added once per id and changed only
//! from the version the writer read, per-day sums, and tailoring suggestions made once per rule
//! and week and decided once, with the accepted change stored in the same transaction.

// Each scenario is one journey, read top to bottom.
#![allow(clippy::too_many_lines)]

use jiff::Timestamp;
use jiff::civil::date;
use stillpoint_app::StorageError;
use stillpoint_app::ports::{
    AccountStore as _, CHUNK_BYTES, EntryAdded, PatientStore as _, PracticeEntry,
    PracticeStore as _, Recording, SiteStore as _, StoredSuggestion, SuggestionState,
};
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::audio::AudioFormat;
use stillpoint_domain::practice::tailoring::{Evidence, Rule};
use stillpoint_domain::practice::{Adjustment, DistressRating, EntrySource, PracticeKind};
use stillpoint_domain::{
    Account, AccountId, EmailAddress, Language, Patient, PatientId, PracticeEntryId, RecordingId,
    Role, RoleAssignment, Site, SiteId, SuggestionId, TimeZoneName,
};
use stillpoint_storage::{Database, Dialect};
use stillpoint_test_support::TestDatabase;
use uuid::Uuid;

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

async fn fixture(db: &Database) -> (AccountId, PatientId, PatientId) {
    let zone = TimeZoneName::parse("America/Chicago").expect("zone");
    let site = Site {
        id: SiteId::from_uuid(Uuid::now_v7()),
        code: "NORTH".to_owned(),
        name: "North clinic".to_owned(),
        time_zone: zone.clone(),
    };
    db.insert_site(&site).await.expect("site");
    let facilitator = Account {
        id: AccountId::from_uuid(Uuid::now_v7()),
        email: EmailAddress::parse("facilitator@clinic.example").expect("address"),
        display_name: "Facilitator".to_owned(),
        language: Language::english(),
        time_zone: zone.clone(),
        roles: vec![RoleAssignment::new(Role::Facilitator, Some(site.id)).expect("role")],
        preferences: stillpoint_domain::DisplayPreferences::default(),
    };
    db.insert_account(&facilitator, "not-a-usable-hash")
        .await
        .expect("account");
    let mut patients = Vec::new();
    for name in ["Rosa", "Iván"] {
        let patient = Patient {
            id: PatientId::from_uuid(Uuid::now_v7()),
            account_id: None,
            site_id: site.id,
            given_name: name.to_owned(),
            family_name: "Díaz".to_owned(),
            birth_date: date(1961, 3, 9),
            language: Language::spanish(),
            time_zone: zone.clone(),
            conditions: Vec::new(),
        };
        db.insert_patient(&patient).await.expect("patient");
        patients.push(patient.id);
    }
    (facilitator.id, patients[0], patients[1])
}

fn entry(patient: PatientId, day: jiff::civil::Date, seconds: u32) -> PracticeEntry {
    PracticeEntry {
        id: PracticeEntryId::from_uuid(Uuid::now_v7()),
        patient,
        practiced_on: day,
        kind: PracticeKind::Formal(Practice::BodyScan),
        source: EntrySource::Manual,
        recording: None,
        seconds,
        segments: None,
        distress_before: Some(DistressRating::new(6).expect("rating")),
        distress_after: None,
        noticed: "Hombros sueltos".to_owned(),
        shared: false,
        created_at: at("2027-01-05T18:00:00Z"),
        updated_at: at("2027-01-05T18:00:00Z"),
    }
}

async fn recording_reads_back_over_any_range(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "practice_recording_ranges").await else {
        return;
    };
    let db = &test_db.database;
    let (facilitator, _, _) = fixture(db).await;
    let audio: Vec<u8> = (0..CHUNK_BYTES * 2 + 1_000)
        .map(|index| u8::try_from(index % 253).expect("byte"))
        .collect();
    let recording = Recording {
        id: RecordingId::from_uuid(Uuid::now_v7()),
        practice: Practice::BodyScan,
        language: Language::spanish(),
        title: "Escaneo corporal, 20 minutos".to_owned(),
        format: AudioFormat::Ogg,
        duration_ms: 1_200_000,
        byte_size: audio.len() as u64,
        sha256: "ab".repeat(32),
        captions: "WEBVTT\n\n00:01.000 --> 00:02.000\nHola\n".to_owned(),
        transcript: "Hola".to_owned(),
        uploaded_by: Some(facilitator),
        uploaded_at: at("2027-01-04T15:00:00Z"),
        retired_at: None,
    };
    db.insert_recording(&recording, &audio)
        .await
        .expect("stored");
    assert_eq!(
        db.get_recording(recording.id).await.expect("read"),
        recording
    );

    let size = audio.len() as u64;
    let chunk = CHUNK_BYTES as u64;
    for (start, end) in [
        (0, size),
        (0, 1),
        (chunk - 1, chunk + 1),
        (chunk, 2 * chunk),
        (size - 10, size),
        (10, 10),
    ] {
        let bytes = db
            .read_recording_audio(recording.id, start, end)
            .await
            .expect("range");
        let (from, to) = (
            usize::try_from(start).expect("fits"),
            usize::try_from(end).expect("fits"),
        );
        assert_eq!(bytes, audio[from..to], "{start}..{end}");
    }
    let past_end = db
        .read_recording_audio(recording.id, size - 10, size + 10)
        .await;
    assert!(
        matches!(past_end, Err(StorageError::Corrupt(_))),
        "{past_end:?}"
    );

    assert!(
        db.retire_recording(recording.id, at("2027-02-01T00:00:00Z"))
            .await
            .expect("retired")
    );
    assert!(
        !db.retire_recording(recording.id, at("2027-02-02T00:00:00Z"))
            .await
            .expect("again")
    );
    let listed = db.list_recordings().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].retired_at, Some(at("2027-02-01T00:00:00Z")));
}

async fn diary_entries_keep_their_versions(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "practice_diary").await else {
        return;
    };
    let db = &test_db.database;
    let (_, rosa, ivan) = fixture(db).await;

    let first = entry(rosa, date(2027, 1, 5), 1_200);
    assert_eq!(
        db.add_practice_entry(&first).await.expect("added"),
        EntryAdded::Added
    );
    let mut resend = first.clone();
    resend.seconds = 9;
    let EntryAdded::AlreadyThere(stored) = db.add_practice_entry(&resend).await.expect("resend")
    else {
        panic!("a resend must not add a second entry");
    };
    assert_eq!(*stored, first, "the stored entry is unchanged by a resend");

    let mut second = entry(rosa, date(2027, 1, 5), 600);
    second.shared = true;
    db.add_practice_entry(&second).await.expect("added");
    db.add_practice_entry(&entry(rosa, date(2027, 1, 7), 300))
        .await
        .expect("added");
    db.add_practice_entry(&entry(ivan, date(2027, 1, 5), 900))
        .await
        .expect("added");

    let days = db
        .practice_days_of(&[rosa, ivan], date(2027, 1, 1))
        .await
        .expect("days");
    let mut sorted = days.clone();
    sorted.sort_by_key(|(patient, day, _)| (patient.to_string(), *day));
    let expected = {
        let mut rows = vec![
            (rosa, date(2027, 1, 5), 1_800),
            (rosa, date(2027, 1, 7), 300),
            (ivan, date(2027, 1, 5), 900),
        ];
        rows.sort_by_key(|(patient, day, _)| (patient.to_string(), *day));
        rows
    };
    assert_eq!(sorted, expected);
    assert_eq!(
        db.practice_days_of(&[rosa], date(2027, 1, 6))
            .await
            .expect("days")
            .len(),
        1,
        "from a day on"
    );
    assert!(
        db.practice_days_of(&[], date(2027, 1, 1))
            .await
            .expect("none")
            .is_empty()
    );

    let shared = db
        .shared_entries_of(&[rosa, ivan], date(2027, 1, 1))
        .await
        .expect("shared");
    assert_eq!(
        shared.iter().map(|entry| entry.id).collect::<Vec<_>>(),
        vec![second.id]
    );
    let newest_first = db
        .practice_entries_of(rosa, date(2027, 1, 1))
        .await
        .expect("entries");
    assert_eq!(
        newest_first.first().map(|entry| entry.practiced_on),
        Some(date(2027, 1, 7))
    );

    // A change from the version read goes through; a second change from the same version is a
    // conflict, so a slower writer cannot overwrite a newer one.
    let mut changed = first.clone();
    "Nota nueva".clone_into(&mut changed.noticed);
    changed.updated_at = at("2027-01-05T19:00:00Z");
    db.update_practice_entry(&changed, first.updated_at)
        .await
        .expect("updated");
    let mut stale = first.clone();
    "Nota vieja".clone_into(&mut stale.noticed);
    stale.updated_at = at("2027-01-05T19:30:00Z");
    let conflict = db.update_practice_entry(&stale, first.updated_at).await;
    assert!(
        matches!(conflict, Err(StorageError::Conflict { .. })),
        "{conflict:?}"
    );
    assert_eq!(
        db.get_practice_entry(first.id)
            .await
            .expect("entry")
            .noticed,
        "Nota nueva"
    );

    // Another patient's entry is neither changed nor deleted through a wrong patient id.
    let mut foreign = changed.clone();
    foreign.patient = ivan;
    foreign.updated_at = at("2027-01-05T20:00:00Z");
    assert!(
        db.update_practice_entry(&foreign, changed.updated_at)
            .await
            .is_err()
    );
    assert!(
        !db.delete_practice_entry(ivan, first.id)
            .await
            .expect("delete")
    );
    assert!(
        db.delete_practice_entry(rosa, first.id)
            .await
            .expect("delete")
    );
    assert!(matches!(
        db.get_practice_entry(first.id).await,
        Err(StorageError::NotFound { .. })
    ));

    // The database refuses impossible minutes even when a caller skips the checks.
    let impossible = entry(rosa, date(2027, 1, 8), 90_000);
    assert!(matches!(
        db.add_practice_entry(&impossible).await,
        Err(StorageError::Conflict { .. })
    ));
}

async fn suggestion_decided_once(dialect: Dialect) {
    let Some(test_db) = TestDatabase::of(dialect, "practice_suggestions").await else {
        return;
    };
    let db = &test_db.database;
    let (facilitator, rosa, _) = fixture(db).await;
    assert_eq!(
        db.practice_adjustment(rosa).await.expect("none yet"),
        Adjustment::default()
    );

    let suggestion = StoredSuggestion {
        id: SuggestionId::from_uuid(Uuid::now_v7()),
        patient: rosa,
        rule: Rule::HighPain,
        week: 3,
        evidence: Evidence::PainRatings {
            ratings: vec![(date(2027, 1, 14), 8), (date(2027, 1, 19), 7)],
            high_from: 7,
        },
        adjustment: Some(Adjustment {
            max_minutes: Some(20),
            seated_or_lying_movement: true,
        }),
        state: SuggestionState::Open,
        created_at: at("2027-01-20T10:00:00Z"),
        decided_by: None,
        decided_at: None,
    };
    assert!(db.add_suggestion(&suggestion).await.expect("added"));
    let same_week = StoredSuggestion {
        id: SuggestionId::from_uuid(Uuid::now_v7()),
        ..suggestion.clone()
    };
    assert!(
        !db.add_suggestion(&same_week).await.expect("not added"),
        "one per rule and week"
    );
    let next_week = StoredSuggestion {
        id: SuggestionId::from_uuid(Uuid::now_v7()),
        week: 4,
        created_at: at("2027-01-27T10:00:00Z"),
        ..suggestion.clone()
    };
    assert!(db.add_suggestion(&next_week).await.expect("added"));
    assert_eq!(
        db.get_suggestion(suggestion.id).await.expect("read"),
        suggestion
    );

    let accepted = Adjustment {
        max_minutes: Some(20),
        seated_or_lying_movement: true,
    };
    db.decide_suggestion(
        suggestion.id,
        SuggestionState::Accepted,
        Some(accepted),
        facilitator,
        at("2027-01-20T11:00:00Z"),
    )
    .await
    .expect("decided");
    assert_eq!(
        db.practice_adjustment(rosa).await.expect("adjustment"),
        accepted
    );
    let again = db
        .decide_suggestion(
            suggestion.id,
            SuggestionState::Dismissed,
            None,
            facilitator,
            at("2027-01-20T11:01:00Z"),
        )
        .await;
    assert!(
        matches!(again, Err(StorageError::Conflict { .. })),
        "{again:?}"
    );
    let stored = db.get_suggestion(suggestion.id).await.expect("read");
    assert_eq!(stored.state, SuggestionState::Accepted);
    assert_eq!(stored.decided_by, Some(facilitator));

    // Dismissing leaves the adjustment as it was.
    db.decide_suggestion(
        next_week.id,
        SuggestionState::Dismissed,
        None,
        facilitator,
        at("2027-01-27T11:00:00Z"),
    )
    .await
    .expect("dismissed");
    assert_eq!(
        db.practice_adjustment(rosa).await.expect("adjustment"),
        accepted
    );

    // A second accepted change combines with the first: the shorter limit, and seated
    // movement stays.
    let shorter = StoredSuggestion {
        id: SuggestionId::from_uuid(Uuid::now_v7()),
        rule: Rule::LowAdherence,
        week: 4,
        adjustment: Some(Adjustment {
            max_minutes: Some(10),
            seated_or_lying_movement: false,
        }),
        created_at: at("2027-01-27T10:00:00Z"),
        ..suggestion.clone()
    };
    assert!(db.add_suggestion(&shorter).await.expect("added"));
    db.decide_suggestion(
        shorter.id,
        SuggestionState::Accepted,
        shorter.adjustment,
        facilitator,
        at("2027-01-27T12:00:00Z"),
    )
    .await
    .expect("accepted");
    assert_eq!(
        db.practice_adjustment(rosa).await.expect("adjustment"),
        Adjustment {
            max_minutes: Some(10),
            seated_or_lying_movement: true
        }
    );
    let listed = db.suggestions_of(&[rosa]).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed.last().map(|listed| listed.id),
        Some(suggestion.id),
        "newest first"
    );
}

stillpoint_test_support::on_both_databases!(
    recording_reads_back_over_any_range,
    diary_entries_keep_their_versions,
    suggestion_decided_once,
);
