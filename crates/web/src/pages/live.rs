//! Live sessions: the session room page with its WebSocket signalling, inviting caregivers to a
//! session, a cohort's external meeting link, and the technology check.
//!
//! The room needs JavaScript for camera, microphone and WebRTC; without it the page says so and
//! still shows when the session is and how to reach the clinic's other options.

use askama::Template;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use stillpoint_app::live::{self, CheckResults, Door, RoomPass};
use stillpoint_domain::live::VideoProvider;
use stillpoint_domain::live::media::{MediaOrder, media_room_name};
use stillpoint_domain::live::room::RoomRole;
use stillpoint_domain::{AccountId, CohortId, CohortSessionId};
use stillpoint_video::hub::error_code;
use stillpoint_video::livekit::{Grant, access_token};
use stillpoint_video::signalling::{self, MAX_MESSAGE_BYTES, ServerMessage};
use stillpoint_video::{Hub, Member, RoomChanges};
use tokio::sync::mpsc::unbounded_channel;

use super::cohorts::session_name;
use super::fields::Fields;
use super::{Layout, dates, render};
use crate::AppState;
use crate::csrf::CheckedForm;
use crate::error::WebError;
use crate::i18n::Translator;
use crate::live::LaneWork;
use crate::viewer::SignedIn;

/// The maximum length of a technology check connection; the test itself takes a few seconds.
const TECH_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_mins(2);

/// The codes the room's script shows messages for; each has a `live-msg-<code>` catalogue entry.
const MESSAGE_CODES: [&str; 34] = [
    "window_closed",
    "access_ended",
    "too_many",
    "removed",
    "locked",
    "not_facilitator",
    "unknown_participant",
    "in_lobby",
    "facilitator_protected",
    "video_stopped",
    "video_allowed",
    "no_co_facilitator",
    "chat_length",
    "captions_url",
    "muted",
    "moved_main",
    "moved_private",
    "replaced",
    "declined",
    "offer",
    "answer",
    "no_media",
    "closed",
    "invalid_message",
    "connection_lost",
    "no_camera",
    "camera_missing",
    "no_devices",
    "poor_connection",
    "connected",
    "left",
    "admitted",
    "in_room",
    "reconnecting",
];

/// The labels the room's script builds controls with; each is a `live-<key>` catalogue entry.
const LABEL_KEYS: [&str; 30] = [
    "lobby-waiting",
    "admit",
    "decline",
    "mute",
    "stop-video",
    "allow-video",
    "remove",
    "spotlight",
    "unspotlight",
    "lower-hand",
    "private-room",
    "main-room",
    "hand-raised",
    "muted",
    "camera-off",
    "in-private-room",
    "in-main-room",
    "you",
    "facilitator",
    "caregiver",
    "quality-good",
    "quality-fair",
    "quality-poor",
    "microphone-on",
    "microphone-off",
    "camera-on",
    "camera-off-button",
    "no-camera-option",
    "default-device",
    "remove-confirm",
];

#[derive(Template)]
#[template(path = "live_room.html")]
struct RoomTemplate {
    layout: Layout,
    title: String,
    cohort_name: String,
    when: String,
    /// `open`, `not_yet`, `over`, `cancelled` or `removed`.
    door: &'static str,
    door_text: String,
    provider: &'static str,
    facilitator: bool,
    external_link: Option<String>,
    staff_href: Option<String>,
}

fn session_id(text: &str) -> Result<CohortSessionId, WebError> {
    text.parse().map_err(|_| WebError::NotFound)
}

async fn pass_for(
    state: &AppState,
    signed_in: &SignedIn,
    session: CohortSessionId,
) -> Result<RoomPass, WebError> {
    Ok(live::room_pass(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        session,
        state.live.window,
    )
    .await?)
}

/// Adds a media page's scripts (the shared device helpers, then `script`) and what they read:
/// the ICE servers with this account's TURN credentials, and the translated messages.
fn add_media_script(state: &AppState, layout: &mut Layout, signed_in: &SignedIn, script: &str) {
    let now = state.clock.now().as_second();
    let ice = state
        .live
        .ice_servers_for(&signed_in.account.id.to_string(), now);
    for name in ["live-devices.js", script] {
        layout.scripts.push(state.assets.url(name).to_owned());
    }
    layout.body_data.push((
        "ice-servers",
        serde_json::to_string(&ice).unwrap_or_else(|_| "[]".to_owned()),
    ));
    layout
        .body_data
        .push(("room-text", catalogue_json(&layout.tr)));
}

/// Returns a JSON object of translated strings for the room's script.
fn catalogue_json(tr: &Translator) -> String {
    let mut messages = serde_json::Map::new();
    for code in MESSAGE_CODES {
        messages.insert(
            code.to_owned(),
            tr.t(&format!("live-msg-{}", code.replace('_', "-"))).into(),
        );
    }
    for key in LABEL_KEYS {
        messages.insert(format!("label:{key}"), tr.t(&format!("live-{key}")).into());
    }
    serde_json::Value::Object(messages).to_string()
}

pub async fn room(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(session_text): Path<String>,
) -> Result<Response, WebError> {
    let session = session_id(&session_text)?;
    let pass = pass_for(&state, &signed_in, session).await?;
    let path = format!("/sessions/{session}/room");
    let mut layout = Layout::new(&state, &signed_in.viewer, &path);
    let zone = signed_in.account.time_zone.time_zone();
    let tr = layout.tr.clone();
    let removed = state
        .live
        .hub
        .is_removed(&session.to_string(), signed_in.account.id);
    let (door, door_text) = match pass.door {
        // Someone removed from the session reads why at once, not after choosing devices.
        Door::Open if removed => ("removed", tr.t("live-msg-removed")),
        Door::Open => ("open", String::new()),
        Door::NotYetOpen { opens_at } => (
            "not_yet",
            tr.t_with(
                "live-not-yet-open",
                "time",
                &dates::long_date_time(&tr, opens_at, &zone),
            ),
        ),
        Door::Over { .. } => ("over", tr.t("live-over")),
        Door::Cancelled => ("cancelled", tr.t("live-cancelled")),
    };
    let facilitator = pass.role == RoomRole::Facilitator;
    let mut livekit_origin = None;

    if door == "open" && pass.provider != VideoProvider::External {
        add_media_script(&state, &mut layout, &signed_in, "live-room.js");
        layout
            .body_data
            .push(("room-socket", format!("{path}/socket")));
        layout
            .body_data
            .push(("room-role", pass.role.code().to_owned()));
        layout
            .body_data
            .push(("room-you", signed_in.account.id.to_string()));
        layout
            .body_data
            .push(("room-provider", pass.provider.code().to_owned()));
        if pass.provider == VideoProvider::LiveKit {
            let Some(livekit) = &state.live.livekit else {
                return Err(livekit_missing());
            };
            layout
                .scripts
                .insert(0, state.assets.url("livekit-client.umd.js").to_owned());
            livekit_origin = Some(livekit_connect_origin(&livekit.url));
        }
    }

    let staff_href = signed_in
        .account
        .is_staff()
        .then(|| format!("/cohorts/{}/sessions/{session}", pass.cohort.cohort.id));
    let template = RoomTemplate {
        title: session_name(&tr, pass.session.planned.kind),
        cohort_name: pass.cohort.cohort.name.clone(),
        when: dates::long_date_time(&tr, pass.session.planned.start, &zone),
        door,
        door_text,
        provider: pass.provider.code(),
        facilitator,
        external_link: pass.external_link.clone(),
        staff_href,
        layout,
    };
    let mut response = render(&template)?;
    if let Some(origin) = livekit_origin {
        // The LiveKit client connects to the LiveKit server, which the default policy forbids.
        let policy = crate::middleware::CONTENT_SECURITY_POLICY.replace(
            "connect-src 'self'",
            &format!("connect-src 'self' {origin}"),
        );
        if let Ok(value) = header::HeaderValue::from_str(&policy) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    Ok(response)
}

fn livekit_missing() -> WebError {
    WebError::Invalid {
        field: "video_provider".to_owned(),
        message: "this cohort uses LiveKit, but the server has no video.livekit_url, video.livekit_api_key and video.livekit_api_secret settings; an administrator adds them".to_owned(),
    }
}

/// Returns the `wss://` and `https://` origins of a LiveKit address for the page's policy.
fn livekit_connect_origin(url: &str) -> String {
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("https://"))
        .or_else(|| url.strip_prefix("ws://"))
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let host = rest.split('/').next().unwrap_or(rest);
    if url.starts_with("ws://") || url.starts_with("http://") {
        format!("ws://{host} http://{host}")
    } else {
        format!("wss://{host} https://{host}")
    }
}

/// Opens the LiveKit room of the group an admitted member is in and makes their access token for
/// it. The token allows the camera only while no facilitator has stopped the member's video; the
/// LiveKit server enforces the other controls through [`live::enforce_media_orders`].
async fn livekit_entry(
    state: &AppState,
    room_key: &str,
    member: &Member,
    closes_at: jiff::Timestamp,
) -> Option<ServerMessage> {
    let livekit = state.live.livekit.as_ref()?;
    // A move while the room closes would open its LiveKit room again.
    if state.clock.now() >= closes_at {
        return None;
    }
    let place = state.live.hub.media_place(room_key, member.account)?;
    let room = media_room_name(room_key, place.group);
    if let Err(error) = livekit.rooms.open_room(&room).await {
        // The token is still sent: a LiveKit server that creates rooms on first join, as it does
        // by default, lets the browser in, though without the participant limit.
        tracing::error!(%room, %error, "LiveKit room not opened");
    }
    let grant = Grant {
        room,
        identity: member.account.to_string(),
        name: member.name.clone(),
        room_admin: member.role == RoomRole::Facilitator,
        camera_allowed: !place.video_stopped,
    };
    // LiveKit checks the token against its own clock, so it is signed with the system time, not
    // the application clock that tests move.
    let now = jiff::Timestamp::now().as_second();
    Some(ServerMessage::LiveKit {
        url: livekit.url.clone(),
        token: access_token(&livekit.keys, &grant, now),
    })
}

/// Returns whether a message to a LiveKit browser calls for a new token: on admission, and on a
/// move to another group, whose media room is a different LiveKit room.
fn needs_livekit_token(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::Admitted
            | ServerMessage::Notice {
                code: "moved_main" | "moved_private"
            }
    )
}

/// Rejects a WebSocket opened from another site's page: browsers send cookies with cross-site
/// WebSocket requests, so the `Origin` must be this server's own.
fn check_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host))
            if origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                == Some(host) =>
        {
            Ok(())
        }
        _ => Err(WebError::Forbidden),
    }
}

pub async fn room_socket(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(session_text): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, WebError> {
    check_origin(&headers)?;
    let session = session_id(&session_text)?;
    let pass = pass_for(&state, &signed_in, session).await?;
    if !pass.is_open() {
        return Err(WebError::Conflict {
            constraint: "join_window".to_owned(),
        });
    }
    let member = Member {
        account: signed_in.account.id,
        role: pass.role,
        name: pass.name.clone(),
    };
    let room_key = session.to_string();
    // The connection ends when the join window closes, as the room page does.
    let closes_at = state.live.window.closes_at(pass.session.planned.end);
    let open_for = closes_at
        .duration_since(state.clock.now())
        .try_into()
        .unwrap_or(std::time::Duration::ZERO);
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let connection = Connection {
                room_key,
                session: Some(session),
                member,
                provider: pass.provider,
                open_for,
                closes_at,
            };
            run_connection(state, connection, socket)
        }))
}

/// The room, person and provider one signalling connection serves.
struct Connection {
    room_key: String,
    /// The session whose attendance the room records; `None` for the technology check.
    session: Option<CohortSessionId>,
    member: Member,
    provider: VideoProvider,
    /// How long until the room closes, and when.
    open_for: std::time::Duration,
    closes_at: jiff::Timestamp,
}

/// Runs one signalling connection until either side closes it or the room's window closes.
async fn run_connection(state: AppState, connection: Connection, mut socket: WebSocket) {
    let Connection {
        room_key,
        session,
        member,
        provider,
        open_for,
        closes_at,
    } = connection;
    let hub: &Hub = &state.live.hub;
    let window_closes = tokio::time::sleep(open_for);
    tokio::pin!(window_closes);
    let mut recheck = tokio::time::interval_at(
        tokio::time::Instant::now() + state.live.access_recheck,
        state.live.access_recheck,
    );
    let (outbox, mut inbox) = unbounded_channel();
    let on_livekit = provider == VideoProvider::LiveKit;
    let mut access_ended = false;
    let (connection, changes) = match hub.connect(&room_key, member.clone(), outbox.clone()) {
        Ok(connected) => connected,
        Err(error) => {
            let code = error_code(&error);
            let _ = send(&mut socket, &ServerMessage::Closed { code }).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    act_on(&state, session, &room_key, provider, &changes).await;

    loop {
        tokio::select! {
            () = &mut window_closes => {
                let _ = send(&mut socket, &ServerMessage::Closed { code: "window_closed" }).await;
                if on_livekit {
                    queue_media_work(&state, &room_key, LaneWork::Close);
                }
                break;
            }
            _ = recheck.tick(), if session.is_some() => {
                if !still_belongs(&state, session, member.account).await {
                    let _ = send(&mut socket, &ServerMessage::Closed { code: "access_ended" }).await;
                    access_ended = true;
                    break;
                }
            }
            outgoing = inbox.recv() => {
                let Some(message) = outgoing else { break };
                if on_livekit
                    && needs_livekit_token(&message)
                    && let Some(entry) = livekit_entry(&state, &room_key, &member, closes_at).await
                    && send(&mut socket, &entry).await.is_err()
                {
                    break;
                }
                let closing = matches!(message, ServerMessage::Closed { .. });
                if send(&mut socket, &message).await.is_err() || closing {
                    break;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = outbox.send(ServerMessage::Error {
                            code: "invalid_message",
                            message: "send JSON text messages, not binary ones".to_owned(),
                        });
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                match signalling::parse(text.as_str()) {
                    Ok(message) => {
                        let changes = hub.receive(&room_key, connection, message).await;
                        act_on(&state, session, &room_key, provider, &changes).await;
                    }
                    Err(problem) => {
                        tracing::debug!(room = %room_key, connection = connection.0, "invalid signalling message rejected");
                        let _ = outbox.send(ServerMessage::Error { code: "invalid_message", message: problem });
                    }
                }
            }
        }
    }
    let changes = hub.disconnect(&room_key, connection);
    act_on(&state, session, &room_key, provider, &changes).await;
    if access_ended {
        hub.forget_admission(&room_key, member.account);
    }
    if session.is_none() {
        hub.forget_if_empty(&room_key);
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Returns whether the connection's person still belongs to the session. A storage failure keeps
/// the connection open: it is logged, and the next check tries again.
async fn still_belongs(
    state: &AppState,
    session: Option<CohortSessionId>,
    account: AccountId,
) -> bool {
    let Some(session) = session else {
        return true;
    };
    match live::still_belongs(state.store.as_ref(), account, session).await {
        Ok(belongs) => {
            if !belongs {
                tracing::info!(session_id = %session, account_id = %account, "room connection closed: no longer a member");
            }
            belongs
        }
        Err(error) => {
            tracing::error!(session_id = %session, account_id = %account, %error, "room membership not checked");
            true
        }
    }
}

/// Records a room change's joins and leaves for attendance and, in LiveKit rooms, queues its
/// orders for the LiveKit server.
async fn act_on(
    state: &AppState,
    session: Option<CohortSessionId>,
    room_key: &str,
    provider: VideoProvider,
    changes: &RoomChanges,
) {
    if let Some(session) = session
        && !changes.presence.is_empty()
    {
        live::record_room_changes(
            state.store.as_ref(),
            state.clock.as_ref(),
            session,
            &changes.presence,
        )
        .await;
    }
    if provider == VideoProvider::LiveKit && !changes.media.is_empty() {
        let work = LaneWork::Orders {
            orders: changes.media.clone(),
            tries: 0,
        };
        queue_media_work(state, room_key, work);
    }
}

/// The delay between tries, and the number of tries, of an order for someone not yet in the
/// LiveKit room. A browser joins a moment after its token arrives, within the token's lifetime.
const ORDER_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(5);
const ORDER_RETRIES: u32 = 30;

/// Adds work to the session room's queue of LiveKit requests.
fn queue_media_work(state: &AppState, room_key: &str, work: LaneWork) {
    let Some(livekit) = &state.live.livekit else {
        return;
    };
    let (lane_state, lane_key) = (state.clone(), room_key.to_owned());
    let sender = livekit.lanes.sender(room_key, move |receiver| {
        run_media_lane(lane_state, lane_key, receiver)
    });
    let _ = sender.send(work);
}

/// Works through one session room's queue of LiveKit requests in order. An order whose person
/// was not in the LiveKit room yet goes back into the queue a little later.
async fn run_media_lane(
    state: AppState,
    room_key: String,
    mut work: tokio::sync::mpsc::UnboundedReceiver<LaneWork>,
) {
    let Some(livekit) = state.live.livekit.clone() else {
        return;
    };
    let mut closed = false;
    while let Some(item) = work.recv().await {
        match item {
            LaneWork::Orders { orders, tries } => {
                let still_applies = |order: &MediaOrder| order_applies(&state, &room_key, order);
                let waiting = live::enforce_media_orders(
                    livekit.rooms.as_ref(),
                    &room_key,
                    &orders,
                    &still_applies,
                )
                .await;
                if !waiting.is_empty() && tries < ORDER_RETRIES {
                    let (retry_state, retry_key) = (state.clone(), room_key.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(ORDER_RETRY_DELAY).await;
                        let work = LaneWork::Orders {
                            orders: waiting,
                            tries: tries + 1,
                        };
                        queue_media_work(&retry_state, &retry_key, work);
                    });
                }
            }
            // Every connection of the room sends `Close` when the window ends; the first closes it.
            LaneWork::Close if !closed => {
                closed = true;
                if let Err(error) = livekit.rooms.close_room(&room_key).await {
                    tracing::error!(room = %room_key, %error, "LiveKit room not closed");
                }
            }
            LaneWork::Close => {}
        }
    }
}

/// Returns whether an order still matches the room when its turn comes: someone moved back to a
/// group is not taken out of it again, and a control lifted since is not applied.
fn order_applies(state: &AppState, room_key: &str, order: &MediaOrder) -> bool {
    let place = state.live.hub.media_place(room_key, order.account());
    let in_group = place.is_some_and(|place| place.group == order.group());
    match order {
        MediaOrder::Disconnect { .. } => !in_group,
        MediaOrder::MuteMicrophone { .. } => in_group,
        MediaOrder::StopCamera { .. } => in_group && place.is_some_and(|place| place.video_stopped),
        MediaOrder::AllowCamera { .. } => {
            in_group && place.is_some_and(|place| !place.video_stopped)
        }
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).unwrap_or_else(|_| "{}".to_owned());
    socket.send(Message::Text(text.into())).await
}

/// Invites a caregiver to a session, from the session page.
pub async fn invite_guest(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((cohort_text, session_text)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (cohort, session, caregiver) =
        guest_form(&state, &cohort_text, &session_text, &Fields(fields)).await?;
    live::invite_guest(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        session,
        caregiver,
    )
    .await?;
    Ok(Redirect::to(&format!("/cohorts/{cohort}/sessions/{session}?invited=1")).into_response())
}

/// Withdraws a caregiver's invitation to a session, from the session page.
pub async fn withdraw_guest(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((cohort_text, session_text)): Path<(String, String)>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let (cohort, session, caregiver) =
        guest_form(&state, &cohort_text, &session_text, &Fields(fields)).await?;
    live::withdraw_guest(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        session,
        caregiver,
    )
    .await?;
    Ok(Redirect::to(&format!("/cohorts/{cohort}/sessions/{session}?withdrawn=1")).into_response())
}

/// Reads the cohort, session and caregiver of an invitation form, checking that the session
/// belongs to the cohort.
async fn guest_form(
    state: &AppState,
    cohort_text: &str,
    session_text: &str,
    fields: &Fields,
) -> Result<(CohortId, CohortSessionId, AccountId), WebError> {
    let cohort: CohortId = cohort_text.parse().map_err(|_| WebError::NotFound)?;
    let session = session_id(session_text)?;
    let caregiver: AccountId = fields
        .text("caregiver")
        .parse()
        .map_err(|_| WebError::Invalid {
            field: "caregiver".to_owned(),
            message: "choose a caregiver from the list".to_owned(),
        })?;
    let stored = state.store.get_cohort_session(session).await?;
    if stored.cohort != cohort {
        return Err(WebError::NotFound);
    }
    Ok((cohort, session, caregiver))
}

/// Sets a cohort's video provider and meeting link, from the cohort page. A rejected form
/// returns to the cohort page with what was typed and the problem.
pub async fn set_video(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(cohort_text): Path<String>,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let cohort: CohortId = cohort_text.parse().map_err(|_| WebError::NotFound)?;
    let fields = Fields(fields);
    let provider = fields.text("video_provider").to_owned();
    let link = fields.text("video_link").to_owned();
    let outcome = if provider == VideoProvider::LiveKit.code() && state.live.livekit.is_none() {
        Err(stillpoint_domain::InvalidValue::new(
            "video_provider",
            "this server has no LiveKit settings (video.livekit_url, video.livekit_api_key and the API secret); an administrator adds them before a cohort can use LiveKit",
        )
        .into())
    } else {
        live::set_video(
            state.store.as_ref(),
            state.clock.as_ref(),
            &signed_in.viewer.audit_context(),
            &signed_in.account,
            cohort,
            &provider,
            &link,
        )
        .await
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/cohorts/{cohort}?notice=video")).into_response()),
        Err(stillpoint_app::AppError::Invalid(invalid)) => {
            let rejected = super::cohorts::PageOutcome::RejectedVideo {
                provider,
                link,
                field: invalid.field,
                problem: invalid.problem,
            };
            super::cohorts::render_cohort(&state, &signed_in, cohort, rejected).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "tech_check.html")]
struct TechCheckTemplate {
    layout: Layout,
    /// The last check's date and results, when there was one.
    last: Option<LastCheck>,
    saved: Option<bool>,
}

struct LastCheck {
    when: String,
    lines: Vec<(String, bool)>,
}

pub async fn tech_check(
    State(state): State<AppState>,
    signed_in: SignedIn,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    let mut layout = Layout::new(&state, &signed_in.viewer, "/tech-check");
    let tr = layout.tr.clone();
    add_media_script(&state, &mut layout, &signed_in, "tech-check.js");
    layout
        .body_data
        .push(("check-socket", "/tech-check/socket".to_owned()));
    layout
        .body_data
        .push(("bell", state.assets.url("bell.ogg").to_owned()));
    layout
        .body_data
        .push(("camera-ok", tr.t("check-camera-ok")));
    layout
        .body_data
        .push(("microphone-ok", tr.t("check-microphone-ok")));

    let last = state
        .store
        .latest_tech_check(signed_in.account.id)
        .await?
        .map(|check| LastCheck {
            when: dates::long_date_time(
                &tr,
                check.checked_at,
                &signed_in.account.time_zone.time_zone(),
            ),
            lines: vec![
                (tr.t("check-camera"), check.camera_ok),
                (tr.t("check-microphone"), check.microphone_ok),
                (tr.t("check-speaker"), check.speaker_ok),
                (tr.t("check-connection"), check.connection_ok),
            ],
        });
    let saved = query.get("saved").map(|value| value == "oriented");
    render(&TechCheckTemplate {
        layout,
        last,
        saved,
    })
}

/// Stores the technology check's results, which the page's script fills in.
pub async fn save_tech_check(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let fields = Fields(fields);
    let yes = |name: &str| fields.text(name) == "yes";
    let round_trip = match fields.text("round_trip_ms").trim() {
        "" => None,
        text => Some(text.parse::<u32>().map_err(|_| WebError::Invalid {
            field: "round_trip_ms".to_owned(),
            message: "the round trip must be whole milliseconds, such as 40".to_owned(),
        })?),
    };
    let oriented = live::complete_tech_check(
        state.store.as_ref(),
        state.clock.as_ref(),
        &signed_in.viewer.audit_context(),
        &signed_in.account,
        CheckResults {
            camera_ok: yes("camera_ok"),
            microphone_ok: yes("microphone_ok"),
            speaker_ok: yes("speaker_ok"),
            connection_ok: yes("connection_ok"),
            round_trip_ms: round_trip,
        },
    )
    .await?;
    let outcome = if oriented { "oriented" } else { "stored" };
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/tech-check?saved={outcome}"))],
    )
        .into_response())
}

/// Opens the technology check's connection test: a media connection to the embedded SFU in a
/// room of its own.
pub async fn tech_check_socket(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, WebError> {
    check_origin(&headers)?;
    let member = Member {
        account: signed_in.account.id,
        // Alone in its own room, the check enters directly, as a facilitator does.
        role: RoomRole::Facilitator,
        name: signed_in.account.display_name.clone(),
    };
    let room_key = format!("tech-check-{}", uuid::Uuid::now_v7());
    let closes_at = state.clock.now() + TECH_CHECK_LIMIT;
    Ok(upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let connection = Connection {
                room_key,
                session: None,
                member,
                provider: VideoProvider::Embedded,
                open_for: TECH_CHECK_LIMIT,
                closes_at,
            };
            run_connection(state, connection, socket)
        }))
}
