//! Live sessions through the embedded SFU: who may enter a session's room, and three headless
//! Chromium instances with Chromium's synthetic camera and microphone that meet in one room, go
//! through the lobby and mute-all, and each receive the others' audio and video.
#![allow(clippy::too_many_lines)] // End-to-end scenarios read best as one story.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;
use stillpoint_app::demo::DEMO_PASSWORD;
use stillpoint_app::ports::{LiveStore as _, ProgramStore as _, SessionStatus};
use stillpoint_domain::CohortSessionId;
use stillpoint_storage::Dialect;
use stillpoint_test_support::{Browser, Seed, TestApp, spawn_app};

/// Moves the app's clock to five minutes after the start of the demo cohort's next session and
/// returns that session.
async fn move_to_next_session(app: &TestApp) -> CohortSessionId {
    let demo = app.demo.as_ref().expect("demo clinic");
    let cohort = demo.cohorts[0].0.id;
    let now = stillpoint_app::Clock::now(app.clock.as_ref());
    let next = app
        .database
        .database
        .list_cohort_sessions(cohort)
        .await
        .expect("sessions")
        .into_iter()
        .find(|session| session.status == SessionStatus::Scheduled && session.planned.start > now)
        .expect("the running cohort has a session ahead");
    let to = next.planned.start.duration_since(now) + jiff::SignedDuration::from_mins(5);
    app.clock.advance(to);
    next.id
}

#[tokio::test]
async fn room_admits_only_session_members() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let test = "room_admits_only_session_members";
        let Some(app) = spawn_app(dialect, Seed::DemoClinic, test).await else {
            continue;
        };
        let session = move_to_next_session(&app).await;
        let room = format!("/sessions/{session}/room");

        let patient = app.browser_session("patient").await;
        let page = patient.get(app.url(&room)).send().await.expect("page");
        assert_eq!(
            page.status(),
            200,
            "{dialect:?}: the enrolled patient enters"
        );
        let html = page.text().await.expect("body");
        assert!(
            html.contains("data-room-socket"),
            "the room socket is given to the script"
        );
        assert!(
            html.contains("Entrar a la sesión"),
            "the page is in Lucía's Spanish"
        );

        let outsider = app.browser_session("clinician.south").await;
        let refused = outsider.get(app.url(&room)).send().await.expect("page");
        assert_eq!(
            refused.status(),
            403,
            "{dialect:?}: staff of another site is refused"
        );

        let caregiver = app.browser_session("caregiver").await;
        let uninvited = caregiver.get(app.url(&room)).send().await.expect("page");
        assert_eq!(
            uninvited.status(),
            403,
            "{dialect:?}: a caregiver needs an invitation"
        );
        let home_url = app.url("/home");
        let home = |client: reqwest::Client| {
            let url = home_url.clone();
            async move {
                let page = client.get(url).send().await.expect("home");
                page.text().await.expect("body")
            }
        };
        assert!(
            !home(caregiver.clone()).await.contains(&room),
            "{dialect:?}: no room link before the invitation"
        );

        let facilitator = app.browser_session("facilitator").await;
        let session_page = format!(
            "/cohorts/{}/sessions/{session}",
            app.demo.as_ref().expect("demo").cohorts[0].0.id
        );
        let caregiver_id = app.demo.as_ref().expect("demo").caregiver_grants[0].1;
        let listed = facilitator
            .get(app.url(&session_page))
            .send()
            .await
            .expect("session page")
            .text()
            .await
            .expect("body");
        assert!(
            listed.contains(&format!("name=\"caregiver\" value=\"{caregiver_id}\"")),
            "{dialect:?}: the session page offers to invite the patient's caregiver"
        );
        let invited = app
            .post_form(
                &facilitator,
                &format!("{session_page}/guests"),
                &[("caregiver", &caregiver_id.to_string())],
            )
            .await;
        assert_eq!(
            invited.status(),
            303,
            "{dialect:?}: the facilitator invites the caregiver"
        );
        let admitted = caregiver.get(app.url(&room)).send().await.expect("page");
        assert_eq!(
            admitted.status(),
            200,
            "{dialect:?}: the invited caregiver enters"
        );
        assert!(
            home(caregiver.clone()).await.contains(&room),
            "{dialect:?}: the caregiver's home page links the room of the session"
        );
        let listed = facilitator
            .get(app.url(&format!("{session_page}?invited=1")))
            .send()
            .await
            .expect("session page")
            .text()
            .await
            .expect("body");
        assert!(
            listed.contains("Invited"),
            "{dialect:?}: the caregiver is marked as invited"
        );
        assert!(
            listed.contains("The caregiver is invited"),
            "{dialect:?}: the notice says so"
        );

        let stranger = app
            .post_form(
                &facilitator,
                &format!("{session_page}/guests"),
                &[(
                    "caregiver",
                    &app.demo.as_ref().expect("demo").accounts[0].id.to_string(),
                )],
            )
            .await;
        assert_eq!(
            stranger.status(),
            422,
            "{dialect:?}: only a patient's caregiver can be invited"
        );

        // The facilitator withdraws the invitation: the room and the home page link are gone.
        let withdrawn = app
            .post_form(
                &facilitator,
                &format!("{session_page}/guests/withdraw"),
                &[("caregiver", &caregiver_id.to_string())],
            )
            .await;
        assert_eq!(withdrawn.status(), 303, "{dialect:?}");
        let refused = caregiver.get(app.url(&room)).send().await.expect("page");
        assert_eq!(
            refused.status(),
            403,
            "{dialect:?}: a withdrawn invitation no longer opens the room"
        );
        assert!(
            !home(caregiver.clone()).await.contains(&room),
            "{dialect:?}: the home page link is gone"
        );
        let again = app
            .post_form(
                &facilitator,
                &format!("{session_page}/guests/withdraw"),
                &[("caregiver", &caregiver_id.to_string())],
            )
            .await;
        assert_eq!(
            again.status(),
            422,
            "{dialect:?}: there is no invitation left to withdraw"
        );

        // The signalling socket refuses a page of another site, since browsers send cookies with
        // cross-site WebSocket requests.
        let forged = patient
            .get(app.url(&format!("{room}/socket")))
            .header("Origin", "https://elsewhere.example")
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .expect("response");
        assert_eq!(
            forged.status(),
            403,
            "{dialect:?}: a foreign origin is refused"
        );

        // Five hours later the room is closed, and the page explains that.
        app.clock.advance(jiff::SignedDuration::from_hours(5));
        let patient = app.browser_session("patient").await;
        let closed = patient.get(app.url(&room)).send().await.expect("page");
        assert_eq!(closed.status(), 200);
        let html = closed.text().await.expect("body");
        assert!(
            html.contains("Esta sesión terminó"),
            "{dialect:?}: the closed room says so"
        );
        assert!(
            !html.contains("data-room-socket"),
            "no room script once it closed"
        );
    }
}

/// Types `text` into the field with id `id`.
async fn type_into(browser: &Browser, id: &str, text: &str) {
    browser
        .client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|error| panic!("field {id}: {error}"))
        .send_keys(text)
        .await
        .expect("typed");
}

/// Signs a browser in, entering the one-time code for staff.
async fn sign_in(browser: &Browser, app: &TestApp, local: &str) {
    browser.goto(&app.url("/sign-in")).await;
    let email = TestApp::demo_email(local);
    type_into(browser, "email", &email).await;
    type_into(browser, "password", DEMO_PASSWORD).await;
    click(browser, "main button[type=submit]").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    if let Some(code) = app.next_one_time_code(&email) {
        type_into(browser, "code", &code).await;
        click(browser, "main button[type=submit]").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits up to `seconds` for `expression` to be true in the browser.
async fn wait_until(browser: &Browser, expression: &str, seconds: u64, what: &str) {
    for _ in 0..seconds * 4 {
        if browser.eval(expression).await == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what}: `{expression}` stayed false");
}

/// Returns, from the peer connection's statistics, the bytes received per media kind and the
/// number of inbound streams of each kind that received any.
async fn inbound(browser: &Browser) -> Value {
    browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             window.stillpointRoom.pc.getStats().then(report => {\
               const result = {audio: 0, video: 0, audioStreams: 0, videoStreams: 0};\
               report.forEach(entry => {\
                 if (entry.type === 'inbound-rtp' && entry.bytesReceived > 0) {\
                   result[entry.kind] += entry.bytesReceived;\
                   result[entry.kind + 'Streams'] += 1;\
                 }\
               });\
               done(result);\
             });",
            vec![],
        )
        .await
        .expect("statistics")
}

/// Clicks the first element matching `css`, finding it again when a roster update replaced it
/// between finding and clicking.
async fn click(browser: &Browser, css: &str) {
    let mut last_error = String::new();
    for _ in 0..10 {
        let found = browser.client.find(Locator::Css(css)).await;
        match found {
            Ok(element) => match element.click().await {
                Ok(()) => return,
                Err(error) => last_error = error.to_string(),
            },
            Err(error) => last_error = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{css} could not be clicked: {last_error}");
}

#[tokio::test]
async fn three_browsers_meet_through_sfu() {
    let test = "three_browsers_meet_through_sfu";
    let Some(app) = spawn_app(Dialect::Sqlite, Seed::DemoClinic, test).await else {
        return;
    };
    let session = move_to_next_session(&app).await;
    let demo = app.demo.as_ref().expect("demo clinic");
    let cohort = demo.cohorts[0].0.id;
    let caregiver_id = demo.caregiver_grants[0].1;
    let facilitator_client = app.browser_session("facilitator").await;
    let invited = app
        .post_form(
            &facilitator_client,
            &format!("/cohorts/{cohort}/sessions/{session}/guests"),
            &[("caregiver", &caregiver_id.to_string())],
        )
        .await;
    assert_eq!(invited.status(), 303);

    let room = app.url(&format!("/sessions/{session}/room"));
    let mut browsers = Vec::new();
    for local in ["facilitator", "patient", "caregiver"] {
        // The caregiver's computer has no camera: the caregiver joins with sound only.
        let started = if local == "caregiver" {
            Browser::start_without_camera(test).await
        } else {
            Browser::start(test).await
        };
        let Some(browser) = started else {
            return;
        };
        sign_in(&browser, &app, local).await;
        browser.goto(&room).await;
        wait_until(
            &browser,
            "document.getElementById('preview').srcObject !== null",
            10,
            local,
        )
        .await;
        click(&browser, "#join-button").await;
        browsers.push(browser);
    }
    let [facilitator, patient, caregiver] = &browsers[..] else {
        unreachable!("three browsers");
    };

    // The facilitator is in the room at once; the others wait in the lobby.
    wait_until(
        facilitator,
        "!document.getElementById('room').hidden",
        10,
        "facilitator in the room",
    )
    .await;
    for (browser, who) in [(patient, "patient"), (caregiver, "caregiver")] {
        wait_until(browser, "!document.getElementById('lobby').hidden", 10, who).await;
    }
    wait_until(
        facilitator,
        "document.querySelectorAll('#lobby-list li').length === 2",
        10,
        "two in the lobby",
    )
    .await;

    // The facilitator admits both, by the buttons named after each person.
    for _ in 0..2 {
        click(facilitator, "#lobby-list li button").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for (browser, who) in [(patient, "patient"), (caregiver, "caregiver")] {
        wait_until(browser, "!document.getElementById('room').hidden", 10, who).await;
    }

    // After admission the room starts at the top of the window, below the site's header.
    wait_until(
        patient,
        "Math.abs(document.getElementById('room').getBoundingClientRect().top) < 2",
        5,
        "the patient's room scrolled to the top of the window",
    )
    .await;

    // The caregiver's page names the missing camera: the caregiver takes part by sound.
    let problem = caregiver
        .eval("document.getElementById('device-problem').textContent")
        .await;
    assert!(
        problem
            .as_str()
            .is_some_and(|text| text.contains("cámara") || text.contains("camera")),
        "the camera-less browser names the missing camera: {problem}"
    );

    // Each browser receives the two others' audio and the video of those with a camera, and the
    // byte counts keep rising.
    for (browser, who, videos) in [
        (facilitator, "facilitator", 1),
        (patient, "patient", 1),
        (caregiver, "caregiver", 2),
    ] {
        let check =
            "window.stillpointRoom.pc && window.stillpointRoom.pc.connectionState === 'connected'";
        wait_until(browser, check, 20, who).await;
        let mut first = Value::Null;
        for _ in 0..80 {
            first = inbound(browser).await;
            if first["audioStreams"] == 2 && first["videoStreams"] == videos {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            first["audioStreams"], 2,
            "{who} receives two audio streams: {first}"
        );
        assert_eq!(
            first["videoStreams"], videos,
            "{who} receives {videos} video streams: {first}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let second = inbound(browser).await;
        for kind in ["audio", "video"] {
            let before = first[kind].as_u64().expect("bytes");
            let after = second[kind].as_u64().expect("bytes");
            assert!(
                after > before,
                "{who}'s {kind} bytes rise: {before} then {after}"
            );
        }
    }

    // The open room, with its tiles and the facilitator's controls, passes the accessibility
    // checks at phone and desktop widths.
    for (browser, who, width) in [
        (
            facilitator,
            "facilitator",
            stillpoint_test_support::browser::DESKTOP_WIDTH,
        ),
        (
            patient,
            "patient",
            stillpoint_test_support::browser::PHONE_WIDTH,
        ),
    ] {
        browser.set_width(width).await;
        let violations = browser.serious_axe_violations().await;
        assert!(
            violations.is_empty(),
            "{who}'s room at {width} px: {violations:?}"
        );
        let sideways = browser
            .eval("document.documentElement.scrollWidth > document.documentElement.clientWidth")
            .await;
        assert_eq!(
            sideways,
            Value::Bool(false),
            "{who}'s room scrolls sideways at {width} px"
        );
    }

    // Mute-all turns off the patient's and caregiver's microphones, not the facilitator's.
    click(facilitator, "#mute-all-button").await;
    for (browser, who) in [(patient, "patient"), (caregiver, "caregiver")] {
        wait_until(
            browser,
            "document.getElementById('microphone-button').classList.contains('is-off')",
            10,
            who,
        )
        .await;
        let track_on = browser
            .eval("window.stillpointRoom.stream.getAudioTracks()[0].enabled")
            .await;
        assert_eq!(
            track_on,
            Value::Bool(false),
            "{who}'s microphone track is off"
        );
    }
    let facilitator_off = facilitator
        .eval("document.getElementById('microphone-button').classList.contains('is-off')")
        .await;
    assert_eq!(
        facilitator_off,
        Value::Bool(false),
        "the facilitator keeps the microphone on"
    );
    let status = patient
        .eval("document.getElementById('room-status').textContent")
        .await;
    assert!(
        status
            .as_str()
            .is_some_and(|text| text.contains("silenció su micrófono")),
        "the patient is told in Spanish: {status}"
    );

    // The patient raises a hand and the facilitator lowers it: the patient's button follows.
    click(patient, "#hand-button").await;
    wait_until(
        facilitator,
        "document.querySelector('[data-key^=\"lower_hand:\"]') !== null",
        10,
        "the facilitator sees the raised hand",
    )
    .await;
    click(facilitator, "[data-key^='lower_hand:']").await;
    wait_until(
        patient,
        "document.getElementById('hand-button').getAttribute('aria-pressed') === 'false'",
        10,
        "the patient's hand button shows the lowered hand",
    )
    .await;

    // A chat message scrolls the chat log, not the patient's page.
    let scrolled_before = patient.eval("window.scrollY").await;
    type_into(facilitator, "chat-text", "Bienvenidos").await;
    click(facilitator, "#chat-form button[type='submit']").await;
    wait_until(
        patient,
        "document.getElementById('chat-log').textContent.includes('Bienvenidos')",
        10,
        "the patient reads the chat message",
    )
    .await;
    assert_eq!(
        patient.eval("window.scrollY").await,
        scrolled_before,
        "the chat message leaves the page where it was"
    );

    // The facilitator leaves; the others stay connected and still hear each other.
    click(facilitator, "#leave-button").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = patient
        .eval("window.stillpointRoom.pc.connectionState")
        .await;
    assert_eq!(
        still, "connected",
        "the room does not close when a facilitator leaves"
    );

    // Joining attendance: the facilitator's roll call is prefilled from the room.
    let page = facilitator_client
        .get(app.url(&format!("/cohorts/{cohort}/sessions/{session}")))
        .send()
        .await
        .expect("session page")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("from-room-"),
        "the roll call is filled in from the room"
    );

    for browser in browsers {
        browser.close().await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a signalling socket as the demo account `local`, with this server's own origin.
async fn open_socket(app: &TestApp, local: &str, path: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let demo = app.demo.as_ref().expect("demo clinic");
    let email = TestApp::demo_email(local);
    let account = demo
        .accounts
        .iter()
        .find(|account| account.email.as_str() == email)
        .expect("demo account")
        .id;
    let token = app.session_token_for(account).await;
    let url = app.url(path).replace("http://", "ws://");
    let mut request = url.into_client_request().expect("request");
    let host = request.uri().authority().expect("host").to_string();
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    headers.insert("Origin", format!("http://{host}").parse().expect("header"));
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the socket opens");
    socket
}

async fn send_text(socket: &mut Socket, text: &str) {
    use futures_util::SinkExt as _;

    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
        .await
        .expect("sent");
}

/// Reads messages until one of type `wanted` arrives, within five seconds.
async fn expect_message(socket: &mut Socket, wanted: &str) -> Value {
    use futures_util::StreamExt as _;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {wanted} message; saw {seen:?}"));
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = next else {
            panic!("the socket ended before a {wanted} message; saw {seen:?}");
        };
        let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
        if message["type"] == wanted {
            return message;
        }
        seen.push(message["type"].clone());
    }
}

#[tokio::test]
async fn signalling_survives_bad_input() {
    let test = "signalling_survives_bad_input";
    let Some(app) = spawn_app(Dialect::Sqlite, Seed::DemoClinic, test).await else {
        return;
    };
    let session = move_to_next_session(&app).await;
    let path = format!("/sessions/{session}/room/socket");

    let mut facilitator = open_socket(&app, "facilitator", &path).await;
    let welcome = expect_message(&mut facilitator, "welcome").await;
    assert_eq!(welcome["role"], "facilitator");

    // Malformed messages get an error naming the problem, and the connection stays usable.
    send_text(&mut facilitator, "hello").await;
    let error = expect_message(&mut facilitator, "error").await;
    assert_eq!(error["code"], "invalid_message");
    send_text(&mut facilitator, r#"{"type":"mute","participant":"bob"}"#).await;
    let error = expect_message(&mut facilitator, "error").await;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|text| text.contains("UUID")),
        "{error}"
    );
    send_text(&mut facilitator, r#"{"type":"offer","sdp":"v=0 nonsense"}"#).await;
    let error = expect_message(&mut facilitator, "error").await;
    assert_eq!(error["code"], "offer");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|text| text.contains("not valid SDP")),
        "{error}"
    );
    // Well-formed SDP without ICE credentials or a DTLS fingerprint cannot start media.
    let no_credentials = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n";
    send_text(
        &mut facilitator,
        &serde_json::json!({"type": "offer", "sdp": no_credentials}).to_string(),
    )
    .await;
    let error = expect_message(&mut facilitator, "error").await;
    assert_eq!(error["code"], "offer", "{error}");
    send_text(&mut facilitator, r#"{"type":"answer","sdp":"v=0"}"#).await;
    let error = expect_message(&mut facilitator, "error").await;
    assert_eq!(
        error["code"], "answer",
        "an answer with no offer pending is refused"
    );
    send_text(
        &mut facilitator,
        r#"{"type":"captions","url":"javascript:alert(1)"}"#,
    )
    .await;
    let error = expect_message(&mut facilitator, "error").await;
    assert_eq!(error["code"], "captions_url");
    send_text(
        &mut facilitator,
        r#"{"type":"chat","text":"Welcome, everyone"}"#,
    )
    .await;
    let chat = expect_message(&mut facilitator, "chat").await;
    assert_eq!(chat["text"], "Welcome, everyone");

    // The patient waits in the lobby and cannot use the facilitator's controls.
    let mut patient = open_socket(&app, "patient", &path).await;
    expect_message(&mut patient, "lobby").await;
    send_text(&mut patient, r#"{"type":"offer","sdp":"v=0"}"#).await;
    let error = expect_message(&mut patient, "error").await;
    assert_eq!(error["code"], "in_lobby", "no media before admission");
    send_text(&mut patient, r#"{"type":"mute_all"}"#).await;
    let error = expect_message(&mut patient, "error").await;
    assert_eq!(error["code"], "not_facilitator");

    // Rosters sent before the patient arrived are skipped.
    let waiting = loop {
        let roster = expect_message(&mut facilitator, "roster").await;
        let lobby = roster["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .find(|participant| participant["presence"] == "lobby")
            .cloned();
        if let Some(waiting) = lobby {
            break waiting;
        }
    };
    send_text(
        &mut facilitator,
        &format!(
            r#"{{"type":"admit","participant":"{}"}}"#,
            waiting["id"].as_str().expect("id")
        ),
    )
    .await;
    expect_message(&mut patient, "admitted").await;

    // A second window of the same patient takes over; the first is told why it closed.
    let mut second = open_socket(&app, "patient", &path).await;
    expect_message(&mut second, "admitted").await;
    let closed = expect_message(&mut patient, "closed").await;
    assert_eq!(closed["code"], "replaced");

    // The facilitator drops out; the room stays open for the patient.
    drop(facilitator);
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_text(&mut second, r#"{"type":"chat","text":"Still here"}"#).await;
    let chat = expect_message(&mut second, "chat").await;
    assert_eq!(chat["text"], "Still here");

    // Join and leave events were stored for attendance.
    let events = stillpoint_app::ports::LiveStore::room_events(&app.database.database, session)
        .await
        .expect("events");
    let entered = events.iter().filter(|event| event.entered).count();
    let left = events.iter().filter(|event| !event.entered).count();
    assert_eq!(
        entered, 2,
        "the facilitator and the patient entered: {events:?}"
    );
    assert_eq!(
        left, 1,
        "the facilitator left; the patient's second window kept her in"
    );
}

#[test]
fn livekit_token_verifies_with_livekit_sdk() {
    use stillpoint_video::livekit::{Grant, LiveKitKeys, access_token};

    let test = "livekit_token_verifies_with_livekit_sdk";
    let keys = LiveKitKeys {
        api_key: "APIdemo".to_owned(),
        api_secret: "a-synthetic-secret-for-tests-only-0123456789".to_owned(),
    };
    let now = jiff::Timestamp::now().as_second();
    let facilitator = Grant {
        room: "session-7".to_owned(),
        identity: "account-1".to_owned(),
        name: "Maya Chen".to_owned(),
        room_admin: true,
        camera_allowed: true,
    };
    let Some(claims) = stillpoint_test_support::verify_livekit_token(
        test,
        &access_token(&keys, &facilitator, now),
        &keys.api_key,
        &keys.api_secret,
    ) else {
        return;
    };
    assert_eq!(claims["identity"], "account-1");
    assert_eq!(claims["name"], "Maya Chen");
    assert_eq!(claims["room"], "session-7");
    assert_eq!(claims["room_join"], true);
    assert_eq!(claims["room_admin"], true);
    assert_eq!(claims["can_publish"], true);
    assert_eq!(
        claims["can_publish_sources"],
        serde_json::json!([]),
        "no source list: every source may be published"
    );
    let payload = access_token(&keys, &facilitator, now)
        .split('.')
        .nth(1)
        .map(|part| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .expect("base64url")
        })
        .expect("a payload");
    let payload: Value = serde_json::from_slice(&payload).expect("JSON claims");
    assert_eq!(payload["nbf"], now);
    assert_eq!(payload["exp"], now + 120, "a token lasts two minutes");
    assert_eq!(claims["can_subscribe"], true);

    let patient = Grant {
        room_admin: false,
        identity: "account-2".to_owned(),
        camera_allowed: false,
        ..facilitator
    };
    let claims = stillpoint_test_support::verify_livekit_token(
        test,
        &access_token(&keys, &patient, now),
        &keys.api_key,
        &keys.api_secret,
    )
    .expect("verified");
    assert_eq!(
        claims["room_admin"], false,
        "a patient cannot administer the room"
    );
    assert_eq!(
        claims["can_publish_sources"],
        serde_json::json!(["microphone"]),
        "a patient whose video a facilitator stopped may publish the microphone only"
    );

    let forged = access_token(
        &LiveKitKeys {
            api_secret: "another-secret-of-the-same-length-0123456789".to_owned(),
            ..keys.clone()
        },
        &patient,
        now,
    );
    let refused = stillpoint_test_support::verify_livekit_token(
        test,
        &forged,
        &keys.api_key,
        &keys.api_secret,
    )
    .expect("checked");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|error| error.contains("Signature")),
        "{refused}"
    );
}

#[tokio::test]
async fn external_link_shown_only_in_window() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let test = "external_link_shown_only_in_window";
        let Some(app) = spawn_app(dialect, Seed::DemoClinic, test).await else {
            continue;
        };
        let cohort = app.demo.as_ref().expect("demo").cohorts[0].0.id;
        let settings = format!("/cohorts/{cohort}/video");
        let link = "https://meet.example.org/north-group";
        let facilitator = app.browser_session("facilitator").await;

        for (provider, bad_link, problem) in [
            ("external", "", "needs the meeting"),
            ("external", "http://meet.example.org/north", "https://"),
            ("zoom", link, "not a video provider"),
        ] {
            let response = app
                .post_form(
                    &facilitator,
                    &settings,
                    &[("video_provider", provider), ("video_link", bad_link)],
                )
                .await;
            assert_eq!(response.status(), 422, "{dialect:?} {provider} {bad_link}");
            let page = response.text().await.expect("body");
            assert!(page.contains(problem), "{dialect:?}: {problem} in {page}");
        }
        let patient = app.browser_session("patient").await;
        let refused = app
            .post_form(
                &patient,
                &settings,
                &[("video_provider", "embedded"), ("video_link", "")],
            )
            .await;
        assert_eq!(
            refused.status(),
            403,
            "{dialect:?}: a patient cannot change the video"
        );

        let saved = app
            .post_form(
                &facilitator,
                &settings,
                &[("video_provider", "external"), ("video_link", link)],
            )
            .await;
        assert_eq!(saved.status(), 303, "{dialect:?}");
        let details = app
            .database
            .database
            .get_cohort_details(cohort)
            .await
            .expect("cohort");
        assert_eq!(details.video_provider, "external");

        // Before the window opens the patient sees when it does, not the link.
        let now = stillpoint_app::Clock::now(app.clock.as_ref());
        let next = app
            .database
            .database
            .list_cohort_sessions(cohort)
            .await
            .expect("sessions")
            .into_iter()
            .find(|session| {
                session.status == SessionStatus::Scheduled && session.planned.start > now
            })
            .expect("a session ahead");
        let room = app.url(&format!("/sessions/{}/room", next.id));
        let early = patient
            .get(&room)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        assert!(
            !early.contains(link),
            "{dialect:?}: no link before the window"
        );
        assert!(
            early.contains("La sala abre"),
            "{dialect:?}: the opening time is given"
        );

        move_to_next_session(&app).await;
        let patient = app.browser_session("patient").await;
        let open = patient
            .get(&room)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        assert!(
            open.contains(link),
            "{dialect:?}: the link is shown in the window"
        );
        assert!(
            !open.contains("data-room-socket"),
            "{dialect:?}: no embedded room for an external cohort"
        );
    }
}

/// Builds a client signed in with `token` as a browser would be, and returns it with its cookies
/// (session and form seed) and the form token of `path`'s page.
async fn cookie_session(
    app: &TestApp,
    token: &str,
    path: &str,
) -> (reqwest::Client, String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let session_cookie = format!("stillpoint_session={token}");
    let first = client
        .get(app.url(path))
        .header("cookie", &session_cookie)
        .send()
        .await
        .expect("page");
    let seed = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| !value.starts_with("stillpoint_session"))
        .and_then(|value| value.split(';').next())
        .expect("a form seed cookie")
        .to_owned();
    let cookies = format!("{session_cookie}; {seed}");
    let page = client
        .get(app.url(path))
        .header("cookie", &cookies)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    let form_token =
        stillpoint_test_support::hidden_field(&page, "csrf_token").expect("form token");
    (client, cookies, form_token)
}

#[tokio::test]
async fn tech_check_completes_orientation() {
    use stillpoint_app::ports::{EnrolmentStore as _, PatientStore as _};
    use stillpoint_domain::enrolment::EnrolmentState;

    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let test = "tech_check_completes_orientation";
        let Some(app) = spawn_app(dialect, Seed::DemoClinic, test).await else {
            continue;
        };
        let demo = app.demo.as_ref().expect("demo clinic");
        let site = demo.sites[0].id;
        let (account, token) = app
            .account_with_roles(
                "new.patient",
                vec![stillpoint_domain::RoleAssignment {
                    role: stillpoint_domain::Role::Patient,
                    site_id: Some(site),
                }],
            )
            .await;
        let patient = stillpoint_domain::Patient {
            id: stillpoint_domain::PatientId::from_uuid(uuid::Uuid::now_v7()),
            account_id: Some(account.id),
            site_id: site,
            given_name: "Inés".to_owned(),
            family_name: "Prueba".to_owned(),
            birth_date: jiff::civil::date(1958, 4, 2),
            language: stillpoint_domain::Language::english(),
            time_zone: account.time_zone.clone(),
            conditions: Vec::new(),
        };
        let store = &app.database.database;
        store.insert_patient(&patient).await.expect("patient");
        let now = stillpoint_app::Clock::now(app.clock.as_ref());
        store
            .record_transition(
                patient.id,
                None,
                &EnrolmentState::Consented,
                None,
                None,
                None,
                now,
            )
            .await
            .expect("consented");
        let clinician = demo
            .accounts
            .iter()
            .find(|account| account.email.as_str() == TestApp::demo_email("clinician"))
            .expect("clinician")
            .id;
        app.record_paper_consents(patient.id, clinician).await;

        let (client, cookies, form_token) = cookie_session(&app, &token, "/tech-check").await;
        let page = client
            .get(app.url("/tech-check"))
            .header("cookie", &cookies)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        for data in [
            "data-camera-ok=\"Your camera works.\"",
            "data-microphone-ok=\"Your microphone picks up sound.\"",
        ] {
            assert!(
                page.contains(data),
                "{dialect:?}: the check's script gets {data}"
            );
        }
        let post = |fields: Vec<(&'static str, &'static str)>| {
            let mut body: Vec<(&str, &str)> = fields;
            body.push(("csrf_token", form_token.as_str()));
            client
                .post(app.url("/tech-check"))
                .header("cookie", &cookies)
                .form(&body)
                .send()
        };

        let bad = post(vec![("round_trip_ms", "fast")])
            .await
            .expect("response");
        assert_eq!(bad.status(), 422, "{dialect:?}");
        assert!(
            bad.text().await.expect("body").contains("round trip"),
            "{dialect:?}"
        );

        // The speaker was not heard: the results are kept, and the step waits.
        let unheard = post(vec![
            ("camera_ok", "yes"),
            ("microphone_ok", "yes"),
            ("speaker_ok", "no"),
            ("connection_ok", "yes"),
            ("round_trip_ms", "40"),
        ])
        .await
        .expect("response");
        assert_eq!(
            unheard.headers()["location"],
            "/tech-check?saved=stored",
            "{dialect:?}"
        );
        assert_eq!(
            store.find_enrolment(patient.id).await.expect("state"),
            Some(EnrolmentState::Consented)
        );

        let passed = post(vec![
            ("camera_ok", "no"),
            ("microphone_ok", "yes"),
            ("speaker_ok", "yes"),
            ("connection_ok", "yes"),
            ("round_trip_ms", "40"),
        ])
        .await
        .expect("response");
        assert_eq!(
            passed.headers()["location"],
            "/tech-check?saved=oriented",
            "{dialect:?}"
        );
        assert_eq!(
            store.find_enrolment(patient.id).await.expect("state"),
            Some(EnrolmentState::Oriented),
            "{dialect:?}: a check without a camera still completes orientation"
        );
        let page = client
            .get(app.url("/tech-check?saved=oriented"))
            .header("cookie", &cookies)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        assert!(page.contains("technology check is complete"), "{dialect:?}");
        assert!(
            page.contains("did not work"),
            "{dialect:?}: the last check lists the camera"
        );
    }
}

/// The requests a LiveKit test endpoint received: method, `Authorization` header and body.
type LiveKitCalls = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// Starts an HTTP endpoint on 127.0.0.1 that records LiveKit `RoomService` requests over Twirp.
/// It returns `participant` (LiveKit's JSON form of a participant) from `GetParticipant`,
/// LiveKit's `not_found` error from the first `UpdateParticipant`, and an empty message from
/// every other request. Returns its `ws://` address.
async fn livekit_endpoint(participant: String, calls: LiveKitCalls) -> String {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;

    async fn twirp(
        State((participant, calls)): State<(String, LiveKitCalls)>,
        Path(method): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> (axum::http::StatusCode, String) {
        let authorization = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut calls = calls.lock().expect("calls");
        // The first permission change finds no participant, as before a browser has joined.
        let first_update =
            method == "UpdateParticipant" && !calls.iter().any(|call| call["method"] == method);
        calls.push(serde_json::json!({
            "method": method,
            "authorization": authorization,
            "body": body,
        }));
        if first_update {
            let missing = r#"{"code":"not_found","msg":"participant not found"}"#;
            return (axum::http::StatusCode::NOT_FOUND, missing.to_owned());
        }
        let body = if method == "GetParticipant" {
            participant
        } else {
            "{}".to_owned()
        };
        (axum::http::StatusCode::OK, body)
    }

    let router = axum::Router::new()
        .route(
            "/twirp/livekit.RoomService/{method}",
            axum::routing::post(twirp),
        )
        .with_state((participant, calls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port 0 binds");
    let address = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("ws://{address}")
}

/// Waits until the endpoint has received `count` requests, for up to ten seconds, then half a
/// second more for any request beyond them.
async fn wait_for_calls(calls: &LiveKitCalls, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while calls.lock().expect("calls").len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    calls.lock().expect("calls").clone()
}

#[tokio::test]
async fn livekit_server_enforces_facilitator_controls() {
    use stillpoint_video::livekit::{LiveKitKeys, LiveKitRooms, RoomLimits};

    let test = "livekit_server_enforces_facilitator_controls";
    let keys = LiveKitKeys {
        api_key: "APIdemo".to_owned(),
        api_secret: "a-synthetic-secret-for-tests-only-0123456789".to_owned(),
    };
    let calls = LiveKitCalls::default();
    let Some(participant) = stillpoint_test_support::livekit_participant_json(test, "patient")
    else {
        return;
    };
    let url = livekit_endpoint(participant, calls.clone()).await;
    let rooms = LiveKitRooms::new(&url, keys.clone(), RoomLimits::default()).expect("client");
    let live = stillpoint_web::live::LiveState {
        livekit: Some(stillpoint_web::live::LiveKitSettings::new(
            url.clone(),
            keys.clone(),
            std::sync::Arc::new(rooms),
        )),
        ..stillpoint_test_support::test_live_state()
    };
    let Some(app) =
        stillpoint_test_support::spawn_app_with_live(Dialect::Sqlite, Seed::DemoClinic, test, live)
            .await
    else {
        return;
    };
    let demo = app.demo.as_ref().expect("demo clinic");
    let cohort = demo.cohorts[0].0.id;
    app.database
        .database
        .set_cohort_video(cohort, "livekit", None)
        .await
        .expect("the cohort uses LiveKit");
    let session = move_to_next_session(&app).await;
    let path = format!("/sessions/{session}/room/socket");
    let account_of = |local: &str| {
        let email = TestApp::demo_email(local);
        demo.accounts
            .iter()
            .find(|account| account.email.as_str() == email)
            .expect("demo account")
            .id
    };
    let (patient_id, co_id) = (account_of("patient"), account_of("facilitator.south"));

    // The facilitator enters and gets a token for the session's room, which Stillpoint creates.
    let mut facilitator = open_socket(&app, "facilitator", &path).await;
    let entry = expect_message(&mut facilitator, "livekit").await;
    assert_eq!(entry["url"], url.as_str());
    let mut co = open_socket(&app, "facilitator.south", &path).await;
    expect_message(&mut co, "livekit").await;

    // No token reaches the patient in the lobby; admission brings one without room_admin.
    let mut patient = open_socket(&app, "patient", &path).await;
    expect_message(&mut patient, "lobby").await;
    let admit = |id: stillpoint_domain::AccountId, kind: &str| {
        format!(r#"{{"type":"{kind}","participant":"{id}"}}"#)
    };
    send_text(&mut facilitator, &admit(patient_id, "admit")).await;
    let entry = expect_message(&mut patient, "livekit").await;
    let claims = stillpoint_test_support::verify_livekit_token(
        test,
        entry["token"].as_str().expect("token"),
        &keys.api_key,
        &keys.api_secret,
    )
    .expect("verified");
    assert_eq!(claims["room"], session.to_string());
    assert_eq!(claims["room_admin"], false);
    let before_controls = wait_for_calls(&calls, 3).await.len();
    assert_eq!(before_controls, 3, "one CreateRoom per admitted person");

    // Each control becomes a request to LiveKit's server API.
    send_text(&mut facilitator, r#"{"type":"mute_all"}"#).await;
    expect_message(&mut patient, "notice").await;
    send_text(&mut facilitator, &admit(patient_id, "stop_video")).await;
    expect_message(&mut patient, "notice").await;
    // LiveKit does not find the patient at first; the order goes out again five seconds later.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let move_text = format!(
        r#"{{"type":"private_room","participant":"{patient_id}","co_facilitator":"{co_id}"}}"#
    );
    send_text(&mut facilitator, &move_text).await;
    let private = expect_message(&mut patient, "livekit").await;
    let private_claims = stillpoint_test_support::verify_livekit_token(
        test,
        private["token"].as_str().expect("token"),
        &keys.api_key,
        &keys.api_secret,
    )
    .expect("verified");
    assert_eq!(
        private_claims["room"],
        format!("{session}.private.{patient_id}"),
        "the private room is a LiveKit room of its own"
    );
    assert_eq!(
        private_claims["can_publish_sources"],
        serde_json::json!(["microphone"]),
        "the stopped video stays stopped in the private room"
    );
    send_text(&mut facilitator, &admit(patient_id, "remove")).await;
    expect_message(&mut patient, "closed").await;

    // The removed patient's room page states the removal at once and offers no way in.
    let removed_page = app
        .browser_session("patient")
        .await
        .get(app.url(&format!("/sessions/{session}/room")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(
        removed_page.contains("Un facilitador le sacó de esta sesión"),
        "the room page names the removal"
    );
    assert!(
        !removed_page.contains("data-room-socket"),
        "no room script for a removed person"
    );

    let recorded = wait_for_calls(&calls, before_controls + 11).await;
    let Some(checked) = stillpoint_test_support::check_livekit_requests(
        test,
        &Value::Array(recorded),
        &keys.api_key,
        &keys.api_secret,
    ) else {
        return;
    };
    let checked = checked.as_array().expect("list");
    for call in checked {
        let request_room = call["request"]["room"]
            .as_str()
            .or_else(|| call["request"]["name"].as_str());
        assert_eq!(
            call["token_room"].as_str(),
            request_room,
            "each token grants the room it concerns: {call}"
        );
        assert_eq!(call["room_admin"], true, "{call}");
    }
    let summary: Vec<String> = checked
        .iter()
        .map(|call| {
            let request = &call["request"];
            let identity = request["identity"].as_str().unwrap_or_default();
            let who = if identity == patient_id.to_string() {
                "patient"
            } else if identity == co_id.to_string() {
                "co"
            } else {
                ""
            };
            let room = request["room"]
                .as_str()
                .or_else(|| request["name"].as_str())
                .unwrap_or_default()
                .replace(&session.to_string(), "S")
                .replace(&patient_id.to_string(), "patient");
            format!(
                "{} {room} {who}",
                call["method"].as_str().unwrap_or_default()
            )
            .trim_end()
            .to_owned()
        })
        .collect();
    // Browsers fetch their tokens while the facilitator's controls go out, so the order of
    // requests from different connections varies; the set of requests does not.
    let mut controls = summary[before_controls..].to_vec();
    controls.sort();
    assert_eq!(
        controls,
        [
            "CreateRoom S",
            "CreateRoom S.private.patient",
            "CreateRoom S.private.patient",
            "GetParticipant S patient",
            "MutePublishedTrack S patient",
            "RemoveParticipant S co",
            "RemoveParticipant S patient",
            "RemoveParticipant S.private.patient co",
            "RemoveParticipant S.private.patient patient",
            "UpdateParticipant S patient",
            "UpdateParticipant S patient",
        ],
        "all requests: {summary:?}"
    );
    let request_of = |method: &str| {
        &checked
            .iter()
            .find(|call| call["method"] == method)
            .expect("the method was called")["request"]
    };
    let mute = request_of("MutePublishedTrack");
    assert_eq!(
        mute["track_sid"], "TR_microphone",
        "the camera is not muted"
    );
    assert_eq!(mute["muted"], true);
    let permission = &request_of("UpdateParticipant")["permission"];
    assert_eq!(
        permission["can_publish_sources"],
        serde_json::json!(["MICROPHONE"]),
        "{permission}"
    );
    assert_eq!(permission["can_subscribe"], true);
    let create = &checked[0]["request"];
    assert_eq!(create["max_participants"], 40);
    assert_eq!(create["empty_timeout"], 600);
}

#[tokio::test]
async fn revoked_sharing_closes_caregiver_room() {
    use stillpoint_app::ports::CareTeamStore as _;

    let test = "revoked_sharing_closes_caregiver_room";
    let live = stillpoint_web::live::LiveState {
        access_recheck: Duration::from_millis(200),
        ..stillpoint_test_support::test_live_state()
    };
    let Some(app) =
        stillpoint_test_support::spawn_app_with_live(Dialect::Sqlite, Seed::DemoClinic, test, live)
            .await
    else {
        return;
    };
    let session = move_to_next_session(&app).await;
    let demo = app.demo.as_ref().expect("demo clinic");
    let cohort = demo.cohorts[0].0.id;
    let (patient_id, caregiver_id) = (demo.caregiver_grants[0].0, demo.caregiver_grants[0].1);
    let facilitator_client = app.browser_session("facilitator").await;
    let invited = app
        .post_form(
            &facilitator_client,
            &format!("/cohorts/{cohort}/sessions/{session}/guests"),
            &[("caregiver", &caregiver_id.to_string())],
        )
        .await;
    assert_eq!(invited.status(), 303);
    let path = format!("/sessions/{session}/room/socket");

    let mut facilitator = open_socket(&app, "facilitator", &path).await;
    expect_message(&mut facilitator, "welcome").await;
    let mut caregiver = open_socket(&app, "caregiver", &path).await;
    expect_message(&mut caregiver, "lobby").await;
    send_text(
        &mut facilitator,
        &format!(r#"{{"type":"admit","participant":"{caregiver_id}"}}"#),
    )
    .await;
    expect_message(&mut caregiver, "admitted").await;

    // The patient stops sharing with the caregiver during the session: the caregiver's open
    // connection closes at the next membership check, and the facilitator's stays open.
    let now = stillpoint_app::Clock::now(app.clock.as_ref());
    let revoked = app
        .database
        .database
        .revoke_caregiver_grant(patient_id, caregiver_id, now)
        .await
        .expect("revoked");
    assert!(revoked, "the demo grant was active");
    let closed = expect_message(&mut caregiver, "closed").await;
    assert_eq!(closed["code"], "access_ended");
    send_text(&mut facilitator, r#"{"type":"chat","text":"Still here"}"#).await;
    let chat = expect_message(&mut facilitator, "chat").await;
    assert_eq!(chat["text"], "Still here");

    // The room page now refuses the caregiver.
    let caregiver_client = app.browser_session("caregiver").await;
    let page = caregiver_client
        .get(app.url(&format!("/sessions/{session}/room")))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 403);

    // Sharing again lets the caregiver back, but through the lobby, as a newcomer.
    let grant = app
        .database
        .database
        .find_caregiver_grant(patient_id, caregiver_id)
        .await
        .expect("grant read")
        .expect("the revoked grant is kept");
    app.database
        .database
        .put_caregiver_grant(&stillpoint_domain::care_team::CaregiverGrant {
            revoked_at: None,
            granted_at: now,
            ..grant
        })
        .await
        .expect("shared again");
    let mut caregiver = open_socket(&app, "caregiver", &path).await;
    expect_message(&mut caregiver, "lobby").await;
}
