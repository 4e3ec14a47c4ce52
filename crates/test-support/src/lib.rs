//! Test harness shared by the crates' integration tests: fresh databases of both dialects, the
//! application spawned on 127.0.0.1 port 0, and headless Chromium with axe-core.
//!
//! PostgreSQL tests run when `STILLPOINT_TEST_POSTGRES_URL` names a server the tests may create
//! databases on. Browser tests run when Chromium and ChromeDriver are installed. Under `CI=true`
//! a missing prerequisite fails the test instead of skipping it.

pub mod browser;
pub mod database;
pub mod smtp;
pub mod spawn;

pub use browser::Browser;
pub use database::{RawDatabase, TestDatabase, postgres_admin_url};
pub use smtp::{ReceivedMail, SmtpSink, free_port};
pub use spawn::{
    ManualClock, Seed, TestApp, hidden_field, spawn_app, spawn_app_with_live, test_live_state,
};

/// Whether the tests run in continuous integration, where nothing may be skipped.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// Skips a test outside CI, or fails it in CI, because `prerequisite` is missing.
///
/// # Panics
/// Panics under `CI=true`.
pub fn skip_or_fail(test: &str, prerequisite: &str) {
    assert!(
        !in_ci(),
        "{test}: {prerequisite} is missing and CI=true forbids skipping"
    );
    eprintln!("SKIPPED {test}: {prerequisite} is missing (set CI=true to make this a failure)");
}

/// Defines a `sqlite` and a `postgres` module with one `#[tokio::test]` per scenario; each test
/// calls `scenario(Dialect)`. A scenario returns early where its database is not available (see
/// [`TestDatabase::of`]), which fails in CI.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $scenario() { super::$scenario(stillpoint_storage::Dialect::Sqlite).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $scenario() { super::$scenario(stillpoint_storage::Dialect::Postgres).await; } )*
        }
    };
}

/// The variable naming a Python interpreter with the `icalendar` package, which `.ci/run` sets.
pub const PYTHON_VARIABLE: &str = "STILLPOINT_TEST_PYTHON";

/// Parses an iCalendar feed with Python's `icalendar` package, an implementation independent of
/// Stillpoint's, and returns one line per VEVENT: `UID|SEQUENCE|DTSTART in UTC|STATUS`. Returns
/// `None` (skipping outside CI, failing under `CI=true`) when no such interpreter is available.
pub fn parse_icalendar(test: &str, feed: &str) -> Option<Vec<String>> {
    const SCRIPT: &str = r#"
import sys
from datetime import timezone
import icalendar

calendar = icalendar.Calendar.from_ical(sys.stdin.read())
for event in calendar.walk("VEVENT"):
    start = event.decoded("DTSTART").astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print("|".join([str(event["UID"]), str(event.get("SEQUENCE", 0)), start, str(event.get("STATUS", ""))]))
"#;
    let python = python_with(test, "icalendar", "icalendar")?;
    let output = run_python(&python, &[SCRIPT], feed);
    assert!(
        output.status.success(),
        "icalendar rejected the feed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// Verifies a LiveKit access token with LiveKit's own Python server SDK (`livekit-api`) and
/// returns its claims as JSON (`identity`, `name`, `room`, `room_join`, `room_admin`,
/// `can_publish`, `can_publish_sources`, `can_subscribe`), or `{"error": …}` when the SDK
/// rejects it. Returns `None`
/// (skipping outside CI, failing under `CI=true`) when no such interpreter is available.
#[must_use]
pub fn verify_livekit_token(
    test: &str,
    token: &str,
    api_key: &str,
    api_secret: &str,
) -> Option<serde_json::Value> {
    const SCRIPT: &str = r#"
import json, sys
from livekit import api

key, secret, token = sys.argv[1], sys.argv[2], sys.stdin.read().strip()
try:
    claims = api.TokenVerifier(key, secret).verify(token)
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
    sys.exit(0)
print(json.dumps({
    "identity": claims.identity,
    "name": claims.name,
    "room": claims.video.room,
    "room_join": claims.video.room_join,
    "room_admin": claims.video.room_admin,
    "can_publish": claims.video.can_publish,
    "can_publish_sources": list(claims.video.can_publish_sources or []),
    "can_subscribe": claims.video.can_subscribe,
}))
"#;
    let python = python_with(test, "livekit.api", "livekit-api")?;
    let output = run_python(&python, &[SCRIPT, api_key, api_secret], token);
    assert!(
        output.status.success(),
        "the LiveKit SDK failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("JSON claims"))
}

/// LiveKit's `RoomService` methods Stillpoint calls, with the protobuf message each takes, as
/// LiveKit's Python server SDK (`livekit-api`) names them.
const LIVEKIT_CHECK: &str = r#"
import json, sys
from google.protobuf import json_format
from livekit import api
from livekit.protocol import models, room

REQUESTS = {
    "CreateRoom": room.CreateRoomRequest,
    "DeleteRoom": room.DeleteRoomRequest,
    "GetParticipant": room.RoomParticipantIdentity,
    "RemoveParticipant": room.RoomParticipantIdentity,
    "MutePublishedTrack": room.MuteRoomTrackRequest,
    "UpdateParticipant": room.UpdateParticipantRequest,
}

def participant():
    info = models.ParticipantInfo(identity=sys.argv[2], name="Synthetic participant")
    info.tracks.add(sid="TR_microphone", type=models.AUDIO, source=models.TrackSource.MICROPHONE)
    info.tracks.add(sid="TR_camera", type=models.VIDEO, source=models.TrackSource.CAMERA)
    return json_format.MessageToJson(info)

def check(key, secret, calls):
    checked = []
    for call in calls:
        message = json_format.Parse(call["body"], REQUESTS[call["method"]]())
        claims = api.TokenVerifier(key, secret).verify(call["authorization"].removeprefix("Bearer "))
        checked.append({
            "method": call["method"],
            "token_room": claims.video.room,
            "room_admin": claims.video.room_admin,
            "request": json_format.MessageToDict(message, preserving_proto_field_name=True),
        })
    return json.dumps(checked)

if sys.argv[1] == "participant":
    print(participant())
else:
    print(check(sys.argv[2], sys.argv[3], json.load(sys.stdin)))
"#;

/// Returns LiveKit's JSON form of a participant with identity `identity` who publishes a
/// microphone and a camera track, made by LiveKit's own protobuf definitions, for a test
/// LiveKit endpoint to return from `GetParticipant`. Returns `None` as [`verify_livekit_token`]
/// does.
#[must_use]
pub fn livekit_participant_json(test: &str, identity: &str) -> Option<String> {
    let python = python_with(test, "livekit.api", "livekit-api")?;
    let output = run_python(&python, &[LIVEKIT_CHECK, "participant", identity], "");
    assert!(
        output.status.success(),
        "the LiveKit SDK failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).expect("utf-8"))
}

/// Checks `RoomService` requests, a JSON list of `{method, authorization, body}`, with LiveKit's
/// Python server SDK: each body must parse as the method's protobuf request (unknown fields
/// fail) and each bearer token must verify with the key and secret. Returns, for each, the
/// method, the token's room and `room_admin` grant, and the request with protobuf's field
/// names. Returns `None` as [`verify_livekit_token`] does.
#[must_use]
pub fn check_livekit_requests(
    test: &str,
    calls: &serde_json::Value,
    api_key: &str,
    api_secret: &str,
) -> Option<serde_json::Value> {
    let python = python_with(test, "livekit.api", "livekit-api")?;
    let output = run_python(
        &python,
        &[LIVEKIT_CHECK, "check", api_key, api_secret],
        &calls.to_string(),
    );
    assert!(
        output.status.success(),
        "LiveKit's SDK refused a request: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("JSON requests"))
}

/// Returns the test Python interpreter when it can import `module`, or `None` (skipping outside
/// CI, failing under `CI=true`) when it cannot.
fn python_with(test: &str, module: &str, package: &str) -> Option<String> {
    let python = std::env::var(PYTHON_VARIABLE).unwrap_or_else(|_| "python3".to_owned());
    let available = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|output| output.status.success());
    if !available {
        skip_or_fail(
            test,
            &format!("Python with the {package} package (set {PYTHON_VARIABLE})"),
        );
        return None;
    }
    Some(python)
}

/// Runs `python -c SCRIPT ARGS…` with `input` on its standard input.
fn run_python(python: &str, script_and_args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write as _;

    let mut child = std::process::Command::new(python)
        .arg("-c")
        .args(script_and_args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("the input is written");
    child.wait_with_output().expect("python finishes")
}
