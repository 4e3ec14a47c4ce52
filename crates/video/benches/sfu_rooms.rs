//! Load benchmark of the embedded SFU, with Janus's videoroom plugin under the same load for
//! comparison. Each room has 12 simulated participants on 127.0.0.1, str0m clients that send
//! Opus-sized audio (80 bytes every 20 ms) and 360p-class VP8-sized video (2000 bytes every
//! 33 ms, about 480 kbit/s) and receive the other 11 participants' audio and video. For each
//! number of rooms it reports the frames lost on the way, the server's CPU time and the
//! datagrams the clients received per server CPU-second.
//!
//! Run with `cargo bench -p stillpoint-video --bench sfu_rooms -- stillpoint 1,2,4` or, with a
//! Janus 1.x server listening for its HTTP API on 127.0.0.1:8088,
//! `cargo bench -p stillpoint-video --bench sfu_rooms -- janus 1,2,4`. Janus's ICE library
//! (libnice) does not gather loopback candidates, so for Janus set `BENCH_IP` to this machine's
//! own interface address, and Janus's `ice_enforce_list` to that interface. The simulated clients run
//! in this process and compete with the server for the CPU, so the figures are a lower bound for
//! the server alone.

// Frame and packet counts become ratios and rates; 52 bits of mantissa hold any count here.
#![allow(clippy::cast_precision_loss)]

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stillpoint_video::Sfu;
use stillpoint_video::sfu::{PeerEvent, Route};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::PayloadParams;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const PARTICIPANTS: usize = 12;
const AUDIO_BYTES: usize = 80;
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
const VIDEO_BYTES: usize = 2000;
const VIDEO_INTERVAL: Duration = Duration::from_millis(33);
const WARM_UP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(20);
const JANUS: &str = "http://127.0.0.1:8088/janus";
/// Each client socket's receive buffer, capped by Linux at `net.core.rmem_max`.
const CLIENT_BUFFER_BYTES: usize = 4 << 20;

/// The local address the clients and the embedded SFU use: 127.0.0.1, or this machine's own
/// interface address from `BENCH_IP` for a Janus whose ICE library skips loopback.
fn client_ip() -> std::net::IpAddr {
    std::env::var("BENCH_IP")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))
}

/// Counts of all clients, sampled at the start and end of the measured window.
#[derive(Default)]
struct Tally {
    sent_audio: AtomicU64,
    sent_video: AtomicU64,
    received_audio: AtomicU64,
    received_video: AtomicU64,
    datagrams_received: AtomicU64,
    /// Clients that receive all 22 streams of the other participants.
    ready: AtomicU64,
}

/// One str0m connection with its own UDP socket.
struct Connection {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    incoming: HashMap<Mid, MediaKind>,
    streams_seen: HashSet<Mid>,
    connected: bool,
}

impl Connection {
    fn new() -> Self {
        let socket = UdpSocket::bind((client_ip(), 0)).expect("client socket");
        socket.set_nonblocking(true).expect("non-blocking");
        // The clients share the machine's two cores with the server, so a client thread may wait
        // tens of milliseconds for a core. A large receive buffer keeps those waits from counting
        // as the server's loss.
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(CLIENT_BUFFER_BYTES)
            .expect("receive buffer");
        let local = socket.local_addr().expect("address");
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
        Self {
            rtc,
            socket,
            local,
            incoming: HashMap::new(),
            streams_seen: HashSet::new(),
            connected: false,
        }
    }

    /// Makes an offer to send audio and video, returning it with the two m-lines.
    fn offer_to_send(
        &mut self,
        label: &str,
    ) -> (SdpOffer, str0m::change::SdpPendingOffer, Mid, Mid) {
        let mut change = self.rtc.sdp_api();
        let audio = change.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(label.to_owned()),
            None,
            None,
        );
        let video = change.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(label.to_owned()),
            None,
            None,
        );
        let (offer, pending) = change.apply().expect("an offer");
        (offer, pending, audio, video)
    }

    fn receive(&mut self, buffer: &mut [u8], tally: &Tally) {
        loop {
            let (length, source) = match self.socket.recv_from(buffer) {
                Ok(received) => received,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            tally.datagrams_received.fetch_add(1, Ordering::Relaxed);
            let Ok(contents) = buffer[..length].try_into() else {
                continue;
            };
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents,
                },
            );
            let _ = self.rtc.handle_input(input);
        }
    }

    /// Polls str0m until it waits, sending its datagrams and counting received frames. Returns
    /// whether this poll completed the set of streams the connection expects.
    fn poll(&mut self, tally: &Tally, expected_streams: usize) -> bool {
        let mut completed = false;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => return completed,
                Ok(Output::Transmit(transmit)) => {
                    let _ = self
                        .socket
                        .send_to(&transmit.contents, transmit.destination);
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => self.connected = true,
                    Event::MediaAdded(added) if added.direction.is_receiving() => {
                        self.incoming.insert(added.mid, added.kind);
                    }
                    Event::MediaData(data) => {
                        match self.incoming.get(&data.mid) {
                            Some(MediaKind::Audio) => {
                                tally.received_audio.fetch_add(1, Ordering::Relaxed)
                            }
                            Some(MediaKind::Video) => {
                                tally.received_video.fetch_add(1, Ordering::Relaxed)
                            }
                            None => 0,
                        };
                        let before = self.streams_seen.len();
                        self.streams_seen.insert(data.mid);
                        completed |= before < expected_streams
                            && self.streams_seen.len() == expected_streams;
                    }
                    _ => {}
                },
            }
        }
    }
}

/// A simulated participant: a sending connection, and for Janus a second one that receives.
struct Client {
    sender: Connection,
    receiver: Option<Connection>,
    audio_mid: Mid,
    video_mid: Mid,
    /// Offers of new tracks from the embedded SFU, and where to send the answers.
    sfu: Option<(Sfu, u64, UnboundedReceiver<PeerEvent>)>,
    next_audio: Instant,
    next_video: Instant,
    started: Instant,
}

impl Client {
    fn new(sender: Connection, audio_mid: Mid, video_mid: Mid) -> Self {
        let now = Instant::now();
        Self {
            sender,
            receiver: None,
            audio_mid,
            video_mid,
            sfu: None,
            next_audio: now,
            next_video: now,
            started: now,
        }
    }

    /// Answers the embedded SFU's offers of the other participants' tracks.
    fn negotiate(&mut self, runtime: &Handle) {
        let Some((sfu, peer, events)) = &mut self.sfu else {
            return;
        };
        while let Ok(event) = events.try_recv() {
            if let PeerEvent::Offer(sdp) = event {
                let offer = SdpOffer::from_sdp_string(&sdp).expect("offer");
                let answer = self
                    .sender
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .expect("offer accepted");
                runtime
                    .block_on(sfu.answer(*peer, &answer.to_sdp_string()))
                    .expect("the SFU takes the answer");
            }
        }
    }

    fn send_media(&mut self, now: Instant, tally: &Tally) {
        if !self.sender.connected {
            return;
        }
        while self.next_audio <= now {
            let micros = self.next_audio.duration_since(self.started).as_micros();
            let ticks = u64::try_from(micros * 48 / 1000).expect("fits");
            write(
                &mut self.sender.rtc,
                self.audio_mid,
                "opus",
                MediaTime::new(ticks, Frequency::FORTY_EIGHT_KHZ),
                AUDIO_BYTES,
                now,
            );
            tally.sent_audio.fetch_add(1, Ordering::Relaxed);
            self.next_audio += AUDIO_INTERVAL;
        }
        while self.next_video <= now {
            let micros = self.next_video.duration_since(self.started).as_micros();
            let ticks = u64::try_from(micros * 90 / 1000).expect("fits");
            write(
                &mut self.sender.rtc,
                self.video_mid,
                "vp8",
                MediaTime::new(ticks, Frequency::NINETY_KHZ),
                VIDEO_BYTES,
                now,
            );
            tally.sent_video.fetch_add(1, Ordering::Relaxed);
            self.next_video += VIDEO_INTERVAL;
        }
    }

    fn step(&mut self, now: Instant, buffer: &mut [u8], tally: &Tally, runtime: &Handle) {
        let expected = 2 * (PARTICIPANTS - 1);
        for connection in std::iter::once(&mut self.sender).chain(self.receiver.as_mut()) {
            connection.receive(buffer, tally);
            let _ = connection.rtc.handle_input(Input::Timeout(now));
        }
        self.negotiate(runtime);
        self.send_media(now, tally);
        let receiving = self.receiver.as_mut().unwrap_or(&mut self.sender);
        if receiving.poll(tally, expected) {
            tally.ready.fetch_add(1, Ordering::Relaxed);
        }
        if self.receiver.is_some() {
            self.sender.poll(tally, usize::MAX);
        }
    }
}

fn write(rtc: &mut Rtc, mid: Mid, codec: &str, time: MediaTime, bytes: usize, now: Instant) {
    let Some(writer) = rtc.writer(mid) else {
        return;
    };
    let Some(pt) = writer
        .payload_params()
        .find(|params| params.spec().codec.to_string().eq_ignore_ascii_case(codec))
        .map(PayloadParams::pt)
    else {
        return;
    };
    // A VP8 payload whose first byte marks a key frame; neither server decodes the media.
    let mut payload = vec![0x5a_u8; bytes];
    payload[0] = 0x10;
    let _ = writer.write(pt, now, time, payload);
}

/// Joins 12 clients to one room of the embedded SFU.
fn stillpoint_room(runtime: &Handle, sfu: &Sfu, room: usize) -> Vec<Client> {
    (0..PARTICIPANTS)
        .map(|index| {
            let peer = u64::try_from(room * 100 + index + 1).expect("small");
            let mut connection = Connection::new();
            let (offer, pending, audio_mid, video_mid) =
                connection.offer_to_send(&peer.to_string());
            let (sender, events) = unbounded_channel();
            let route = Route {
                room: format!("room-{room}"),
                group: "main".to_owned(),
                label: peer.to_string(),
                sends_audio: true,
                sends_video: true,
                receives_video: true,
            };
            let answer = runtime
                .block_on(sfu.join(peer, route, &offer.to_sdp_string(), sender))
                .expect("the SFU answers");
            connection
                .rtc
                .sdp_api()
                .accept_answer(
                    pending,
                    SdpAnswer::from_sdp_string(&answer).expect("answer"),
                )
                .expect("answer accepted");
            let mut client = Client::new(connection, audio_mid, video_mid);
            client.sfu = Some((sfu.clone(), peer, events));
            client
        })
        .collect()
}

/// A Janus session and its HTTP API, driven request by request.
struct Janus {
    http: reqwest::Client,
    session: u64,
    transaction: u64,
}

impl Janus {
    async fn connect() -> Self {
        let http = reqwest::Client::new();
        let mut janus = Self {
            http,
            session: 0,
            transaction: 0,
        };
        let created = janus
            .post(JANUS.to_owned(), json!({"janus": "create"}))
            .await;
        janus.session = created["data"]["id"].as_u64().expect("session id");
        janus
    }

    async fn post(&mut self, url: String, mut body: Value) -> Value {
        self.transaction += 1;
        body["transaction"] = json!(self.transaction.to_string());
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("Janus answers");
        response.json().await.expect("JSON")
    }

    async fn attach(&mut self) -> u64 {
        let url = format!("{JANUS}/{}", self.session);
        let attached = self
            .post(
                url,
                json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
            )
            .await;
        attached["data"]["id"].as_u64().expect("handle id")
    }

    /// Sends a plugin message and waits for the handle's event, which carries any JSEP.
    async fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> Value {
        let url = format!("{JANUS}/{}/{handle}", self.session);
        let mut request = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let reply = self.post(url, request).await;
        if reply["janus"] == "success" {
            return reply;
        }
        loop {
            let url = format!("{JANUS}/{}?maxev=1", self.session);
            let events: Value = self
                .http
                .get(url)
                .send()
                .await
                .expect("poll")
                .json()
                .await
                .expect("JSON");
            let events = if events.is_array() {
                events
            } else {
                json!([events])
            };
            for event in events.as_array().expect("events") {
                if event["sender"].as_u64() == Some(handle) && event["janus"] == "event" {
                    return event.clone();
                }
            }
        }
    }
}

/// Publishes 12 clients in one Janus videoroom, returning the session, the room, the clients and
/// their feed ids.
async fn janus_publish(room: usize) -> (Janus, usize, Vec<Client>, Vec<u64>) {
    let mut janus = Janus::connect().await;
    let room_id = 5000 + room;
    let admin = janus.attach().await;
    janus
        .message(
            admin,
            json!({"request": "create", "room": room_id, "publishers": PARTICIPANTS + 4,
                   "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0, "fir_freq": 0}),
            None,
        )
        .await;

    let mut clients = Vec::new();
    let mut feeds = Vec::new();
    for index in 0..PARTICIPANTS {
        let handle = janus.attach().await;
        let mut connection = Connection::new();
        let (offer, pending, audio_mid, video_mid) = connection.offer_to_send(&format!("p{index}"));
        let event = janus
            .message(
                handle,
                json!({"request": "joinandconfigure", "room": room_id, "ptype": "publisher",
                       "display": format!("p{index}"), "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": offer.to_sdp_string(), "trickle": false})),
            )
            .await;
        let sdp = event["jsep"]["sdp"]
            .as_str()
            .expect("Janus answers the offer");
        connection
            .rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(sdp).expect("answer"))
            .expect("answer accepted");
        feeds.push(
            event["plugindata"]["data"]["id"]
                .as_u64()
                .expect("publisher id"),
        );
        clients.push(Client::new(connection, audio_mid, video_mid));
    }
    (janus, room_id, clients, feeds)
}

/// Subscribes each published client to the other 11 feeds of its Janus videoroom.
async fn janus_subscribe(mut janus: Janus, room_id: usize, clients: &mut [Client], feeds: &[u64]) {
    for (index, client) in clients.iter_mut().enumerate() {
        let handle = janus.attach().await;
        let streams: Vec<Value> = feeds
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, feed)| json!({"feed": feed}))
            .collect();
        let event = janus
            .message(
                handle,
                json!({"request": "join", "room": room_id, "ptype": "subscriber", "streams": streams}),
                None,
            )
            .await;
        let Some(sdp) = event["jsep"]["sdp"].as_str() else {
            panic!("Janus did not offer the streams: {event}");
        };
        let mut receiver = Connection::new();
        let answer = receiver
            .rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(sdp).expect("offer"))
            .expect("offer accepted");
        janus
            .message(
                handle,
                json!({"request": "start"}),
                Some(json!({"type": "answer", "sdp": answer.to_sdp_string(), "trickle": false})),
            )
            .await;
        client.receiver = Some(receiver);
    }
    // Janus ends sessions idle for 60 s; a keepalive every 20 s holds this one.
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(20)).await;
            let url = format!("{JANUS}/{}", janus.session);
            janus.post(url, json!({"janus": "keepalive"})).await;
        }
    });
}

/// Runs the clients' connections for `duration` or until all senders are connected.
fn drive(clients: &mut [Client], runtime: &Handle, duration: Duration, until_connected: bool) {
    let idle = Tally::default();
    let mut buffer = vec![0_u8; 2000];
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if until_connected && clients.iter().all(|client| client.sender.connected) {
            return;
        }
        let now = Instant::now();
        for client in clients.iter_mut() {
            client.step(now, &mut buffer, &idle, runtime);
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Joins 12 clients to one Janus videoroom: each publishes, and once every publisher's media
/// flows (Janus offers only such feeds), subscribes to the other 11.
fn janus_room(runtime: &Handle, room: usize) -> Vec<Client> {
    let (janus, room_id, mut clients, feeds) = runtime.block_on(janus_publish(room));
    drive(&mut clients, runtime, Duration::from_secs(20), true);
    drive(&mut clients, runtime, Duration::from_secs(2), false);
    runtime.block_on(janus_subscribe(janus, room_id, &mut clients, &feeds));
    clients
}

fn run_room(mut clients: Vec<Client>, runtime: &Handle, tally: &Tally, stop: &AtomicBool) {
    let mut buffer = vec![0_u8; 2000];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        for client in &mut clients {
            client.step(now, &mut buffer, tally, runtime);
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// CPU seconds of `pid`'s threads named `name` (all threads when `None`), from `/proc` (Linux).
fn cpu_seconds(pid: &str, name: Option<&str>) -> f64 {
    let ticks_per_second = 100.0;
    let mut total = 0.0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc is mounted");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.is_some_and(|name| comm.trim() != name) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let user: f64 = fields
            .get(11)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0);
        let system: f64 = fields
            .get(12)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0);
        total += (user + system) / ticks_per_second;
    }
    total
}

fn janus_pid() -> String {
    let output = std::process::Command::new("pgrep")
        .args(["-x", "janus"])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .expect("a janus process is running")
        .to_owned()
}

fn measure(runtime: &tokio::runtime::Runtime, target: &str, rooms: usize) {
    let sfu = (target == "stillpoint")
        .then(|| Sfu::start(SocketAddr::new(client_ip(), 0), None).expect("SFU starts"));
    let server_cpu = || match &sfu {
        Some(_) => cpu_seconds("self", Some("sfu")),
        None => cpu_seconds(&janus_pid(), None),
    };
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for room in 0..rooms {
        let clients = match &sfu {
            Some(sfu) => stillpoint_room(runtime.handle(), sfu, room),
            None => janus_room(runtime.handle(), room),
        };
        let (handle, tally, stop) = (
            runtime.handle().clone(),
            Arc::clone(&tally),
            Arc::clone(&stop),
        );
        threads.push(
            thread::Builder::new()
                .name("clients".to_owned())
                .spawn(move || run_room(clients, &handle, &tally, &stop))
                .expect("thread"),
        );
    }

    let clients = u64::try_from(rooms * PARTICIPANTS).expect("small");
    let deadline = Instant::now() + Duration::from_mins(1);
    while tally.ready.load(Ordering::Relaxed) < clients && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let ready = tally.ready.load(Ordering::Relaxed);
    thread::sleep(WARM_UP);

    let snapshot = |tally: &Tally| {
        [
            tally.sent_audio.load(Ordering::Relaxed),
            tally.sent_video.load(Ordering::Relaxed),
            tally.received_audio.load(Ordering::Relaxed),
            tally.received_video.load(Ordering::Relaxed),
            tally.datagrams_received.load(Ordering::Relaxed),
        ]
    };
    let before = snapshot(&tally);
    let cpu_before = server_cpu();
    thread::sleep(MEASURE);
    let after = snapshot(&tally);
    let cpu = server_cpu() - cpu_before;
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }

    let fanout = (PARTICIPANTS - 1) as f64;
    let delta = |index: usize| (after[index] - before[index]) as f64;
    let audio_loss = 1.0 - delta(2) / (delta(0) * fanout);
    let video_loss = 1.0 - delta(3) / (delta(1) * fanout);
    let per_cpu_second = if cpu > 0.0 { delta(4) / cpu } else { 0.0 };
    println!(
        "| {target} | {rooms} | {ready}/{clients} | {:.2} % | {:.2} % | {:.0} | {:.2} | {:.0} |",
        audio_loss.max(0.0) * 100.0,
        video_loss.max(0.0) * 100.0,
        delta(4) / MEASURE.as_secs_f64(),
        cpu / MEASURE.as_secs_f64(),
        per_cpu_second,
    );
}

fn main() {
    let arguments: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with('-'))
        .collect();
    let target = arguments
        .first()
        .cloned()
        .unwrap_or_else(|| "stillpoint".to_owned());
    assert!(
        target == "stillpoint" || target == "janus",
        "the first argument is stillpoint or janus, not {target}"
    );
    let rooms: Vec<usize> = arguments
        .get(1)
        .map_or("1,2,4", String::as_str)
        .split(',')
        .filter_map(|count| count.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| server | rooms | clients receiving all 22 streams | audio frames lost | video frames lost | datagrams to clients per second | server CPU (cores) | datagrams to clients per server CPU-second |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for count in rooms {
        measure(&runtime, &target, count);
    }
}
