//! Home practice end to end: the diary and its checks, timer entries sent twice, honest
//! listening minutes, recordings served with range requests, the library's upload checks, the
//! facilitator's overview with tailoring suggestions, and practice minutes on the clinician's
//! timeline. Each scenario runs on SQLite and PostgreSQL with the demo clinic.

// Each scenario is one journey, read top to bottom.
#![allow(clippy::too_many_lines)]

use jiff::SignedDuration;
use reqwest::StatusCode;
use stillpoint_app::ports::{
    AccountStore as _, EnrolmentStore as _, PatientStore as _, PracticeStore as _, Recording,
};
use stillpoint_domain::curriculum::Practice;
use stillpoint_domain::practice::EntrySource;
use stillpoint_domain::{CohortId, PatientId};
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Seed, TestApp, spawn_app};

/// The demo patient Lucía (login `patient`), who reads Stillpoint in Spanish.
async fn lucia(app: &TestApp) -> (PatientId, CohortId) {
    let store = &app.database.database;
    let account = store
        .find_credentials(
            &stillpoint_domain::EmailAddress::parse(&TestApp::demo_email("patient"))
                .expect("address"),
        )
        .await
        .expect("Lucía's account")
        .account;
    let patient = store
        .find_patient_for_account(account.id)
        .await
        .expect("patient")
        .id;
    let cohort = store
        .find_enrolment(patient)
        .await
        .expect("pathway")
        .expect("a state")
        .cohort()
        .expect("in a cohort");
    (patient, cohort)
}

async fn entries_of(
    app: &TestApp,
    patient: PatientId,
) -> Vec<stillpoint_app::ports::PracticeEntry> {
    app.database
        .database
        .practice_entries_of(patient, jiff::civil::date(2000, 1, 1))
        .await
        .expect("entries")
}

fn today(app: &TestApp) -> String {
    use stillpoint_app::Clock as _;
    app.clock
        .now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("America/Chicago").expect("zone"))
        .date()
        .to_string()
}

/// Posts a form, asking for JSON as the timer's script does.
async fn post_json(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let token = app.form_token(client).await;
    let mut body: Vec<(&str, &str)> = fields.to_vec();
    body.push(("csrf_token", &token));
    let response = client
        .post(app.url(path))
        .header("accept", "application/json")
        .form(&body)
        .send()
        .await
        .expect("the request completes");
    let status = response.status();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// A form's fields as name and value.
type Fields<'a> = &'a [(&'a str, &'a str)];

async fn diary_checks_every_field(dialect: Dialect) {
    let test = format!("diary_checks_every_field ({dialect})");
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, &test).await else {
        return;
    };
    let (patient, _) = lucia(&app).await;
    let client = app.browser_session("patient").await;
    let before = entries_of(&app, patient).await.len();

    let page = client.get(app.url("/practice")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("body");
    assert!(
        page.contains("Práctica en casa"),
        "the page is in Lucía's language"
    );
    assert!(
        page.contains("Esta semana (semana"),
        "the week's assignment is shown"
    );
    assert!(
        page.contains("Escaneo corporal") || page.contains("Espacio de respiración"),
        "{page}"
    );
    assert!(!page.contains("racha"), "no streak counting");

    let day = today(&app);
    let future = jiff::civil::date(2030, 1, 1).to_string();
    let cases: [(Fields, &str, &str); 7] = [
        (
            &[
                ("practiced_on", &future),
                ("practice", "body_scan"),
                ("minutes", "20"),
            ],
            "practiced_on",
            "ese día aún no ha llegado",
        ),
        (
            &[
                ("practiced_on", "2019-01-01"),
                ("practice", "body_scan"),
                ("minutes", "20"),
            ],
            "practiced_on",
            "dentro del último año",
        ),
        (
            &[
                ("practiced_on", &day),
                ("practice", "body_scan"),
                ("minutes", "0"),
            ],
            "minutes",
            "de 1 a 1440",
        ),
        (
            &[
                ("practiced_on", &day),
                ("practice", "body_scan"),
                ("minutes", "-5"),
            ],
            "minutes",
            "de 1 a 1440",
        ),
        (
            &[
                ("practiced_on", &day),
                ("practice", "body_scan"),
                ("minutes", "1500"),
            ],
            "minutes",
            "de 1 a 1440",
        ),
        (
            &[
                ("practiced_on", &day),
                ("practice", "body_scan"),
                ("minutes", "20"),
                ("distress_after", "11"),
            ],
            "distress_after",
            "de 0 a 10",
        ),
        (
            &[
                ("practiced_on", &day),
                ("practice", "juggling"),
                ("minutes", "20"),
            ],
            "practice",
            "elija una práctica",
        ),
    ];
    for (fields, field, message) in cases {
        let response = app.post_form(&client, "/practice/entries", fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        let page = response.text().await.expect("body");
        assert!(page.contains(message), "{fields:?}: {page}");
        assert!(
            page.contains(&format!("href=\"#{field}\"")),
            "the error links to {field}"
        );
        assert!(page.contains("aria-invalid=\"true\""), "{fields:?}");
    }
    assert_eq!(
        entries_of(&app, patient).await.len(),
        before,
        "nothing was stored"
    );

    // A whole day's minutes in two entries: the second one would make the day longer than 24 h.
    let response = app
        .post_form(
            &client,
            "/practice/entries",
            &[
                ("practiced_on", &day),
                ("practice", "sitting_meditation"),
                ("minutes", "1400"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = app
        .post_form(
            &client,
            "/practice/entries",
            &[
                ("practiced_on", &day),
                ("practice", "body_scan"),
                ("minutes", "60"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("más de sus 1440 minutos")
    );

    // A full entry with ratings, a note and sharing.
    let response = app
        .post_form(
            &client,
            "/practice/entries",
            &[
                ("practiced_on", &day),
                ("practice", "body_scan"),
                ("minutes", "25"),
                ("distress_before", "6"),
                ("distress_after", "3"),
                ("noticed", "Noté los hombros más sueltos"),
                ("shared", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let entries = entries_of(&app, patient).await;
    assert_eq!(entries.len(), before + 2);
    let entry = entries
        .iter()
        .find(|entry| entry.seconds == 25 * 60)
        .expect("the 25-minute entry");
    assert_eq!(entry.source, EntrySource::Manual);
    assert_eq!(
        entry
            .distress_before
            .map(stillpoint_domain::practice::DistressRating::value),
        Some(6)
    );
    assert_eq!(
        entry
            .distress_after
            .map(stillpoint_domain::practice::DistressRating::value),
        Some(3)
    );
    assert!(entry.shared);
    let page = client
        .get(app.url("/practice?saved=1"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("Noté los hombros más sueltos"),
        "the diary lists the note"
    );
    assert!(page.contains("Estrés antes 6, después 3"), "{page}");

    // Editing: the note changes and sharing is turned off; a bad date keeps the stored entry.
    let path = format!("/practice/entries/{}", entry.id);
    let response = app
        .post_form(
            &client,
            &path,
            &[
                ("practiced_on", &future),
                ("practice", "body_scan"),
                ("minutes", "25"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.database
            .database
            .get_practice_entry(entry.id)
            .await
            .expect("entry"),
        entry.clone()
    );
    let response = app
        .post_form(
            &client,
            &path,
            &[
                ("practiced_on", &day),
                ("practice", "body_scan"),
                ("minutes", "30"),
                ("noticed", "Otra nota"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let changed = app
        .database
        .database
        .get_practice_entry(entry.id)
        .await
        .expect("entry");
    assert_eq!(
        (changed.seconds, changed.noticed.as_str(), changed.shared),
        (30 * 60, "Otra nota", false)
    );

    // Another patient's entry cannot be read, changed or deleted through its id.
    let caregiver = app.browser_session("caregiver").await;
    let response = caregiver
        .get(app.url(&path))
        .send()
        .await
        .expect("response");
    assert_ne!(response.status(), StatusCode::OK);

    let response = app.post_form(&client, &format!("{path}/delete"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(entries_of(&app, patient).await.len(), before + 1);
}

async fn timer_entry_sent_twice_is_stored_once(dialect: Dialect) {
    let test = format!("timer_entry_sent_twice_is_stored_once ({dialect})");
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, &test).await else {
        return;
    };
    let (patient, _) = lucia(&app).await;
    let client = app.browser_session("patient").await;
    let before = entries_of(&app, patient).await.len();
    let id = uuid::Uuid::new_v4().to_string();
    let day = today(&app);
    let fields = [
        ("entry_id", id.as_str()),
        ("practiced_on", day.as_str()),
        ("practice", "unguided"),
        ("source", "timer"),
        ("seconds", "600"),
    ];

    let (status, body) = post_json(&app, &client, "/practice/entries", &fields).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "recorded");
    let (status, body) = post_json(&app, &client, "/practice/entries", &fields).await;
    assert_eq!(status, StatusCode::OK, "a resend is accepted");
    assert_eq!(body["status"], "duplicate");
    let entries = entries_of(&app, patient).await;
    assert_eq!(entries.len(), before + 1, "stored once");
    let entry = entries
        .iter()
        .find(|entry| entry.id.to_string() == id)
        .expect("the timer entry");
    assert_eq!((entry.source, entry.seconds), (EntrySource::Timer, 600));

    // Bad timer input gets JSON naming the field, in Lucía's language.
    let other = uuid::Uuid::new_v4().to_string();
    let (status, body) = post_json(
        &app,
        &client,
        "/practice/entries",
        &[
            ("entry_id", &other),
            ("practiced_on", &day),
            ("practice", "unguided"),
            ("source", "timer"),
            ("seconds", "90000"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "minutes");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|text| text.contains("1440")),
        "{body}"
    );
    let (status, body) = post_json(
        &app,
        &client,
        "/practice/entries",
        &[
            ("entry_id", "not-a-uuid"),
            ("practiced_on", &day),
            ("practice", "unguided"),
            ("source", "timer"),
            ("seconds", "60"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "entry_id");
    assert_eq!(entries_of(&app, patient).await.len(), before + 1);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|text| text.contains("UUID")),
        "{body}"
    );

    // The timer's start time dates the entry in Lucía's zone, whatever day the device sent.
    let yesterday = {
        use stillpoint_app::Clock as _;
        app.clock.now() - SignedDuration::from_hours(24)
    };
    let dated = uuid::Uuid::new_v4().to_string();
    let started = yesterday.as_millisecond().to_string();
    let (status, body) = post_json(
        &app,
        &client,
        "/practice/entries",
        &[
            ("entry_id", &dated),
            ("practiced_on", "2030-01-01"),
            ("started_at", &started),
            ("practice", "unguided"),
            ("source", "timer"),
            ("seconds", "300"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stored = entries_of(&app, patient)
        .await
        .into_iter()
        .find(|entry| entry.id.to_string() == dated)
        .expect("stored");
    let chicago = jiff::tz::TimeZone::get("America/Chicago").expect("zone");
    assert_eq!(
        stored.practiced_on,
        yesterday.to_zoned_datetime(chicago).date()
    );
    let future = {
        use stillpoint_app::Clock as _;
        (app.clock.now() + SignedDuration::from_hours(3))
            .as_millisecond()
            .to_string()
    };
    let other = uuid::Uuid::new_v4().to_string();
    let (status, body) = post_json(
        &app,
        &client,
        "/practice/entries",
        &[
            ("entry_id", &other),
            ("practiced_on", &day),
            ("started_at", &future),
            ("practice", "unguided"),
            ("source", "timer"),
            ("seconds", "300"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "started_at");

    // Without the form token the entry is refused, as a forged request would be.
    let response = client
        .post(app.url("/practice/entries"))
        .header("accept", "application/json")
        .form(&fields)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn demo_recording(app: &TestApp, language: &str) -> Recording {
    app.database
        .database
        .list_recordings()
        .await
        .expect("recordings")
        .into_iter()
        .find(|recording| {
            recording.language.as_str() == language && recording.practice == Practice::BodyScan
        })
        .expect("a bundled body scan")
}

async fn listening_counts_played_minutes(dialect: Dialect) {
    let test = format!("listening_counts_played_minutes ({dialect})");
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, &test).await else {
        return;
    };
    let (patient, _) = lucia(&app).await;
    let client = app.browser_session("patient").await;
    let recording = demo_recording(&app, "es").await;
    let page = client
        .get(app.url(&format!("/practice/recordings/{}", recording.id)))
        .send()
        .await
        .expect("player")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("kind=\"captions\""),
        "the player has a caption track"
    );
    assert!(
        page.contains("class=\"cue-seek\""),
        "the transcript can start playback"
    );
    assert!(page.contains("Transcripción"), "{page}");

    let listen = uuid::Uuid::new_v4().to_string();
    let recording_id = recording.id.to_string();
    let report = |segments: &'static str| {
        let listen = listen.clone();
        let recording_id = recording_id.clone();
        let client = client.clone();
        let app = &app;
        async move {
            post_json(
                app,
                &client,
                "/practice/listening",
                &[
                    ("listen_id", &listen),
                    ("recording_id", &recording_id),
                    ("segments", segments),
                ],
            )
            .await
        }
    };
    let (status, body) = report("0-30").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counted_seconds"], 30);
    // Seeking back to 20 s and playing on to 90 s counts 90, not 100.
    let (_, body) = report("0-30,20-90").await;
    assert_eq!(body["counted_seconds"], 90);
    // A report repeated after the tab came back adds nothing.
    let (_, body) = report("0-30").await;
    assert_eq!(body["counted_seconds"], 90);
    // Jumping ahead: only the played part counts.
    let (_, body) = report("0-90,100-101").await;
    assert_eq!(body["counted_seconds"], 91);
    let (status, body) = report("0-5000").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let entries = entries_of(&app, patient).await;
    let entry = entries
        .iter()
        .find(|entry| entry.id.to_string() == listen)
        .expect("one entry for the visit");
    assert_eq!((entry.source, entry.seconds), (EntrySource::Recording, 91));
    assert_eq!(entry.recording, Some(recording.id));
    assert_eq!(
        entries
            .iter()
            .filter(|entry| entry.source == EntrySource::Recording)
            .count(),
        1
    );

    // The same listening id cannot be moved to another recording.
    let other = demo_recording(&app, "en").await.id.to_string();
    let (status, _) = post_json(
        &app,
        &client,
        "/practice/listening",
        &[
            ("listen_id", &listen),
            ("recording_id", &other),
            ("segments", "0-10"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("body").to_vec(),
    )
}

/// An Ogg Opus file of about 700 KB whose last page gives 200 seconds, so its bytes span three
/// storage pieces of 256 KiB.
fn large_ogg() -> Vec<u8> {
    fn page(granule: u64, packet: &[u8]) -> Vec<u8> {
        let mut page = b"OggS\0\0".to_vec();
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&[0; 12]);
        page.push(1);
        page.push(u8::try_from(packet.len()).expect("short"));
        page.extend_from_slice(packet);
        page
    }
    let mut head = b"OpusHead\x01\x01".to_vec();
    head.extend_from_slice(&312u16.to_le_bytes());
    head.extend_from_slice(&[0; 7]);
    let mut file = page(0, &head);
    file.extend((0..700_000u32).map(|index| u8::try_from(index % 251).expect("byte")));
    file.extend(page(48_000 * 200 + 312, b"end"));
    file
}

/// A multipart body as a browser sends the library's upload form.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----stillpoint-test-boundary";
    let mut body = Vec::new();
    for (name, file_name, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file_name) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const CAPTIONS: &[u8] = b"WEBVTT\n\n00:00:01.000 --> 00:00:05.000\nSettle in.\n\n00:03:10.000 --> 00:03:15.000\nRest.\n";

async fn upload(
    app: &TestApp,
    client: &reqwest::Client,
    audio: &[u8],
    captions: &[u8],
    title: &str,
) -> (StatusCode, String) {
    let token = app.form_token(client).await;
    let (content_type, body) = multipart(&[
        ("csrf_token", None, token.as_bytes()),
        ("title", None, title.as_bytes()),
        ("practice", None, b"body_scan"),
        ("language", None, b"en"),
        ("audio", Some("scan.ogg"), audio),
        ("captions", Some("scan.vtt"), captions),
        ("transcript", None, b""),
    ]);
    let response = client
        .post(app.url("/library/recordings"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload completes");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

async fn library_checks_uploads(dialect: Dialect) {
    let test = format!("library_checks_uploads ({dialect})");
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, &test).await else {
        return;
    };
    let facilitator = app.browser_session("facilitator").await;
    let count = || async {
        app.database
            .database
            .list_recordings()
            .await
            .expect("list")
            .len()
    };
    let before = count().await;
    let page = facilitator
        .get(app.url("/library"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    assert!(
        page.contains(">Español</span>"),
        "languages are named, not coded"
    );

    let audio = large_ogg();
    let cases: [(&[u8], &[u8], &str); 5] = [
        (
            b"%PDF-1.7 not audio at all",
            CAPTIONS,
            "not audio in a supported format",
        ),
        (
            &audio,
            b"1\n00:00:01,000 --> 00:00:02,000\nSRT\n",
            "its first line must be",
        ),
        (
            &audio,
            b"WEBVTT\n\n00:00:01.000 --> 00:04:00.000\nToo long\n",
            "the captions run to 4:00 but the recording is 3:20 long",
        ),
        (
            &audio,
            b"WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nBad arrow\n",
            "line 3: expected a cue timing",
        ),
        (
            &audio,
            b"",
            "caption file (.vtt); every recording needs captions",
        ),
    ];
    for (bytes, captions, message) in cases {
        let (status, page) = upload(&app, &facilitator, bytes, captions, "Body scan, test").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert!(page.contains(message), "{message}: {page}");
        assert!(
            page.contains("Body scan, test"),
            "the title is kept for the next try"
        );
    }
    assert_eq!(count().await, before, "no rejected upload was stored");

    // A body over the limit is refused before it is read.
    let token = app.form_token(&facilitator).await;
    let oversized = vec![0u8; app.state.config.max_upload_bytes + 128 * 1024];
    let (content_type, body) = multipart(&[
        ("csrf_token", None, token.as_bytes()),
        ("audio", Some("big.ogg"), &oversized),
    ]);
    let response = facilitator
        .post(app.url("/library/recordings"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let page = response.text().await.expect("body");
    assert!(page.contains("larger than the 100 MB limit"), "{page}");
    assert!(
        page.contains("href=\"#audio\""),
        "the error links to the file field"
    );
    assert_eq!(count().await, before);

    let (status, page) = upload(&app, &facilitator, &audio, CAPTIONS, "Body scan, 3 minutes").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let recordings = app.database.database.list_recordings().await.expect("list");
    assert_eq!(recordings.len(), before + 1);
    let stored = recordings
        .iter()
        .find(|recording| recording.title == "Body scan, 3 minutes")
        .expect("stored");
    assert_eq!(stored.duration_ms, 200_000);
    assert_eq!(stored.byte_size, audio.len() as u64);
    assert_eq!(
        stored.transcript, "Settle in.\nRest.",
        "the transcript defaults to the captions' text"
    );

    // Range requests over a file stored in three pieces.
    let patient = app.browser_session("patient").await;
    let url = app.url(&format!("/practice/recordings/{}/audio", stored.id));
    let size = audio.len();
    let (status, headers, body) = fetch(&patient, &url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, audio, "the whole file streams back unchanged");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["content-type"], "audio/ogg");
    assert!(
        headers["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("private")
    );
    let etag = headers["etag"].to_str().expect("ascii").to_owned();

    for (range, start, end) in [
        ("bytes=0-99", 0, 100),
        ("bytes=262000-262300", 262_000, 262_301),
        ("bytes=262143-524289", 262_143, 524_290),
        (&format!("bytes={}-", size - 10) as &str, size - 10, size),
        ("bytes=-100", size - 100, size),
    ] {
        let (status, headers, body) = fetch(&patient, &url, &[("range", range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {start}-{}/{size}", end - 1),
            "{range}"
        );
        assert_eq!(body, audio[start..end], "{range}");
    }
    let (status, headers, _) = fetch(&patient, &url, &[("range", &format!("bytes={size}-"))]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], format!("bytes */{size}"));
    let (status, _, body) = fetch(
        &patient,
        &url,
        &[("range", "bytes=0-9"), ("if-range", "\"another\"")],
    )
    .await;
    assert_eq!(
        (status, body.len()),
        (StatusCode::OK, size),
        "a stale If-Range gets the whole file"
    );
    let (status, _, _) = fetch(&patient, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, headers, body) = fetch(
        &patient,
        &app.url(&format!("/practice/recordings/{}/captions.vtt", stored.id)),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/vtt; charset=utf-8");
    assert!(body.starts_with(b"WEBVTT"));

    // Signed out, nothing is served; patients cannot upload.
    let (status, _, _) = fetch(&app.client(), &url, &[]).await;
    assert_ne!(status, StatusCode::OK);
    let (status, _) = upload(&app, &patient, &audio, CAPTIONS, "From a patient").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Retiring takes it off the patients' list but keeps it playable.
    let response = app
        .post_form(
            &facilitator,
            &format!("/library/recordings/{}/retire", stored.id),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let retired = app
        .database
        .database
        .get_recording(stored.id)
        .await
        .expect("recording");
    assert!(retired.retired_at.is_some());
    let page = patient
        .get(app.url("/practice"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        !page.contains("Body scan, 3 minutes"),
        "retired recordings are not offered"
    );
    let (status, _, _) = fetch(&patient, &url, &[("range", "bytes=0-9")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
}

/// Submits Lucía's 0–10 pain rating of `rating`.
async fn rate_pain(app: &TestApp, client: &reqwest::Client, rating: &str) {
    let client_id = uuid::Uuid::new_v4().to_string();
    let response = app
        .post_form(
            client,
            "/measures/pain-rating",
            &[("client_id", &client_id), ("item_1", rating)],
        )
        .await;
    assert!(
        response.status().is_success() || response.status().is_redirection(),
        "{}",
        response.status()
    );
}

async fn facilitator_tailors_practice(dialect: Dialect) {
    let test = format!("facilitator_tailors_practice ({dialect})");
    let Some(app) = spawn_app(dialect, Seed::DemoClinic, &test).await else {
        return;
    };
    let (patient, cohort) = lucia(&app).await;
    // Three high pain ratings over four days, one private entry and one shared entry. Moving the
    // clock ends sessions, so Lucía signs in each time.
    for rating in ["8", "9", "8"] {
        let lucia_client = app.browser_session("patient").await;
        rate_pain(&app, &lucia_client, rating).await;
        app.clock.advance(SignedDuration::from_hours(48));
    }
    let lucia_client = app.browser_session("patient").await;
    let day_after = today(&app);
    for (note, shared) in [
        ("secreto privado de Lucía", false),
        ("nota compartida de Lucía", true),
    ] {
        let mut fields = vec![
            ("practiced_on", day_after.as_str()),
            ("practice", "body_scan"),
            ("minutes", "15"),
            ("noticed", note),
        ];
        if shared {
            fields.push(("shared", "on"));
        }
        let response = app
            .post_form(&lucia_client, "/practice/entries", &fields)
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }

    let facilitator = app.browser_session("facilitator").await;
    let path = format!("/cohorts/{cohort}/practice");
    let cohort_page = facilitator
        .get(app.url(&format!("/cohorts/{cohort}")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        cohort_page.contains(&format!("href=\"{path}\"")),
        "the cohort page links to its practice overview"
    );
    let page = facilitator.get(app.url(&path)).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("body");
    assert!(
        page.contains("nota compartida de Lucía"),
        "shared entries are listed"
    );
    assert!(
        !page.contains("secreto privado de Lucía"),
        "private entries stay private"
    );
    assert!(page.contains("pain ratings stay high"), "{page}");
    assert!(
        page.contains("8/10") && page.contains("9/10"),
        "the ratings that fired the rule are shown"
    );
    assert!(page.contains("May need a check-in"), "{page}");
    assert!(page.contains("Tailoring suggestions"), "{page}");

    let suggestions = app
        .database
        .database
        .suggestions_of(&[patient])
        .await
        .expect("suggestions");
    let pain = suggestions
        .iter()
        .find(|suggestion| {
            suggestion.rule == stillpoint_domain::practice::tailoring::Rule::HighPain
        })
        .expect("a pain suggestion for Lucía");
    let action = format!("/cohorts/{cohort}/practice/suggestions/{}", pain.id);

    // Loading the page again makes no second suggestion for the same rule and week.
    facilitator.get(app.url(&path)).send().await.expect("page");
    let again = app
        .database
        .database
        .suggestions_of(&[patient])
        .await
        .expect("suggestions");
    assert_eq!(again.len(), suggestions.len());

    // A clinician of the other site can neither see nor decide.
    let south = app.browser_session("clinician.south").await;
    assert_eq!(
        south
            .get(app.url(&path))
            .send()
            .await
            .expect("page")
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_form(&south, &action, &[("decision", "accept")])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let response = app
        .post_form(&facilitator, &action, &[("decision", "accept")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let adjustment = app
        .database
        .database
        .practice_adjustment(patient)
        .await
        .expect("adjustment");
    assert_eq!(adjustment.max_minutes, Some(20));
    assert!(adjustment.seated_or_lying_movement);
    let response = app
        .post_form(&facilitator, &action, &[("decision", "dismiss")])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a decided suggestion stays decided"
    );

    // Lucía's assignment changed: 20 minutes a day, and no standing movement offered.
    let page = lucia_client
        .get(app.url("/practice"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("unos 20 minutos al día"), "{page}");
    assert!(
        page.contains("de unos 120 sugeridos"),
        "the current week asks 20 × 6 minutes"
    );
    assert!(
        page.contains("de unos 270 sugeridos"),
        "weeks already over keep 45 × 6 minutes"
    );
    let program = lucia_client
        .get(app.url("/program"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        program.contains("adaptó su práctica en casa"),
        "the program page points to the change"
    );
    assert!(!page.contains("Movimiento consciente de pie"), "{page}");

    // Shared entries whose stress rises after practice suggest a check-in; the ratings show
    // only while Lucía shares them.
    for (before, after) in [("1", "9"), ("0", "9"), ("1", "8")] {
        let fields = [
            ("practiced_on", day_after.as_str()),
            ("practice", "breathing_space"),
            ("minutes", "5"),
            ("distress_before", before),
            ("distress_after", after),
            ("shared", "on"),
        ];
        let response = app
            .post_form(&lucia_client, "/practice/entries", &fields)
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let page = facilitator
        .get(app.url(&path))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(page.contains("stress rises after practice"), "{page}");
    assert!(page.contains("Stress before 1, after 9"), "{page}");
    let unshared = entries_of(&app, patient)
        .await
        .into_iter()
        .find(|entry| {
            entry
                .distress_before
                .map(stillpoint_domain::practice::DistressRating::value)
                == Some(1)
                && entry
                    .distress_after
                    .map(stillpoint_domain::practice::DistressRating::value)
                    == Some(9)
        })
        .expect("the 1-to-9 entry");
    let response = app
        .post_form(
            &lucia_client,
            &format!("/practice/entries/{}", unshared.id),
            &[
                ("practiced_on", &day_after),
                ("practice", "breathing_space"),
                ("minutes", "5"),
                ("distress_before", "1"),
                ("distress_after", "9"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "unshared");
    let page = facilitator
        .get(app.url(&path))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        !page.contains("Stress before 1, after 9"),
        "an unshared rating leaves the page"
    );
    assert!(
        page.contains("Stress before 0, after 9"),
        "the ratings still shared stay"
    );
    assert!(
        page.contains("1 more ratings are no longer shared"),
        "{page}"
    );

    // The clinician's timeline shows practice beside the scores.
    let clinician = app.browser_session("clinician").await;
    let page = clinician
        .get(app.url(&format!("/patients/{patient}/measures")))
        .send()
        .await
        .expect("timeline")
        .text()
        .await
        .expect("body");
    assert!(page.contains("id=\"dose-table\""), "{page}");
    assert!(
        page.contains("Práctica en casa y puntuaciones por semana")
            || page.contains("Home practice and scores by week")
    );
    assert!(page.contains(" min, "), "weekly minutes are listed: {page}");
}

stillpoint_test_support::on_both_databases!(
    diary_checks_every_field,
    timer_entry_sent_twice_is_stored_once,
    listening_counts_played_minutes,
    library_checks_uploads,
    facilitator_tailors_practice,
);
