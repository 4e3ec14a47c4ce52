//! The embedded selective forwarding unit: each browser sends its camera and microphone once,
//! and the SFU forwards them to the other participants of the same room and group.
//!
//! str0m does ICE, DTLS-SRTP and RTP; it performs no I/O, so one thread owns a UDP socket that
//! every peer shares, feeds it datagrams and the time, and sends what str0m returns. The browser
//! makes the first offer with its own tracks; afterwards only the SFU makes offers, one per
//! change of the tracks it forwards to that browser, so offers never cross.

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

/// The largest UDP datagram read; WebRTC keeps packets under the path MTU, about 1200 bytes.
const DATAGRAM_BYTES: usize = 2000;
/// The maximum wait for a datagram before the loop handles commands and timers again.
const MAX_WAIT: Duration = Duration::from_millis(20);
/// The maximum number of datagrams read before the loop polls the peers.
const MAX_BATCH: usize = 256;
/// How long a connection may stay ICE-disconnected before it is closed; networks that change
/// (Wi-Fi to mobile data) recover within a few seconds.
const ICE_GRACE: Duration = Duration::from_secs(15);
/// The shortest gap between two keyframe requests to one sender.
const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);

/// One browser connection, the same number as the room's connection id.
pub type PeerId = u64;

/// A peer's room and group, and what the SFU forwards from and to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // Independent forwarding switches.
pub struct Route {
    /// The room, one per session.
    pub room: String,
    /// The part of the room whose members see and hear each other.
    pub group: String,
    /// The stream id of this peer's tracks in the other browsers: the account id.
    pub label: String,
    pub sends_audio: bool,
    pub sends_video: bool,
    /// False in audio-only mode: no video is forwarded to this peer.
    pub receives_video: bool,
}

/// A message from the SFU to one peer's signalling connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A new offer for the browser to answer, in SDP.
    Offer(String),
    /// ICE and DTLS completed.
    Connected,
    /// The connection failed or timed out; the browser should rejoin.
    Disconnected,
}

/// An error of the SFU about a browser's offer or answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfuError {
    #[error("the session description is not valid SDP: {0}")]
    InvalidSdp(String),
    #[error("the video server cannot use this offer: {0}")]
    OfferRejected(String),
    #[error("this connection has no offer waiting for an answer")]
    NoPendingOffer,
    #[error("the video server has stopped")]
    Stopped,
    #[error("this connection has already joined")]
    AlreadyJoined,
}

/// Counters since the SFU started, for diagnostics.
#[derive(Debug, Default)]
pub struct SfuCounters {
    pub datagrams_received: AtomicU64,
    pub datagrams_sent: AtomicU64,
    pub media_forwarded: AtomicU64,
    pub peers: AtomicU64,
}

enum Command {
    Join {
        peer: PeerId,
        route: Route,
        offer: SdpOffer,
        events: tokio_mpsc::UnboundedSender<PeerEvent>,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    Answer {
        peer: PeerId,
        answer: SdpAnswer,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Route {
        peer: PeerId,
        route: Route,
    },
    Leave {
        peer: PeerId,
    },
}

/// The kernel buffer requested for the SFU's UDP socket in each direction. Linux's default of
/// about 208 KiB fits about 0.2 s of what one 12-person room sends the server, so a short stall of the
/// forwarding thread would drop datagrams. Linux caps the size at `net.core.rmem_max` and
/// `net.core.wmem_max`.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Asks for [`SOCKET_BUFFER_BYTES`] in each direction and returns the receive and send buffer
/// sizes as Linux reports them: twice the granted size, counting its bookkeeping.
fn enlarge_buffers(socket: &UdpSocket) -> (usize, usize) {
    let socket = socket2::SockRef::from(socket);
    if let Err(error) = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES) {
        tracing::warn!(%error, "UDP receive buffer not enlarged");
    }
    if let Err(error) = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES) {
        tracing::warn!(%error, "UDP send buffer not enlarged");
    }
    (
        socket.recv_buffer_size().unwrap_or_default(),
        socket.send_buffer_size().unwrap_or_default(),
    )
}

/// A running SFU; cloning shares it.
#[derive(Debug, Clone)]
pub struct Sfu {
    commands: mpsc::Sender<Command>,
    address: SocketAddr,
    counters: Arc<SfuCounters>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, peer) = match self {
            Self::Join { peer, .. } => ("join", peer),
            Self::Answer { peer, .. } => ("answer", peer),
            Self::Route { peer, .. } => ("route", peer),
            Self::Leave { peer } => ("leave", peer),
        };
        write!(formatter, "{name} {peer}")
    }
}

impl Sfu {
    /// Binds the UDP socket and starts the forwarding thread. `public_ip`, when set, is the
    /// address browsers are told to reach, for a server behind NAT or bound to 0.0.0.0.
    pub fn start(bind: SocketAddr, public_ip: Option<IpAddr>) -> std::io::Result<Self> {
        // Installing the provider a second time, as a second SFU in tests does, changes nothing.
        str0m::crypto::from_feature_flags().install_process_default();
        let socket = UdpSocket::bind(bind)?;
        let buffers = enlarge_buffers(&socket);
        let local = socket.local_addr()?;
        let advertised_ip = public_ip.unwrap_or(local.ip());
        if advertised_ip.is_unspecified() {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "the video UDP address is 0.0.0.0 or ::, so set [video] public_ip to the address browsers reach",
            ));
        }
        let address = SocketAddr::new(advertised_ip, local.port());
        socket.set_read_timeout(Some(MAX_WAIT))?;

        let (commands, receiver) = mpsc::channel();
        let counters = Arc::new(SfuCounters::default());
        let forwarder = Forwarder {
            socket,
            local,
            advertised: address,
            peers: HashMap::new(),
            sources: HashMap::new(),
            renegotiate: false,
            counters: Arc::clone(&counters),
        };
        thread::Builder::new()
            .name("sfu".to_owned())
            .spawn(move || forwarder.run(&receiver))?;
        tracing::info!(
            %address,
            receive_buffer_bytes = buffers.0,
            send_buffer_bytes = buffers.1,
            "embedded video server started"
        );
        Ok(Self {
            commands,
            address,
            counters,
        })
    }

    /// Returns the UDP address browsers connect to.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    #[must_use]
    pub fn counters(&self) -> &SfuCounters {
        &self.counters
    }

    /// Takes a browser's first offer and returns the SDP answer.
    pub async fn join(
        &self,
        peer: PeerId,
        route: Route,
        offer_sdp: &str,
        events: tokio_mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<String, SfuError> {
        let offer = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|error| SfuError::InvalidSdp(error.to_string()))?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Join {
            peer,
            route,
            offer,
            events,
            reply,
        })?;
        answer.await.map_err(|_| SfuError::Stopped)?
    }

    /// Takes the browser's answer to the SFU's latest offer.
    pub async fn answer(&self, peer: PeerId, answer_sdp: &str) -> Result<(), SfuError> {
        let answer = SdpAnswer::from_sdp_string(answer_sdp)
            .map_err(|error| SfuError::InvalidSdp(error.to_string()))?;
        let (reply, done) = oneshot::channel();
        self.send(Command::Answer {
            peer,
            answer,
            reply,
        })?;
        done.await.map_err(|_| SfuError::Stopped)?
    }

    /// Changes what is forwarded from and to a peer.
    pub fn route(&self, peer: PeerId, route: Route) {
        let _ = self.send(Command::Route { peer, route });
    }

    /// Closes a peer's connection.
    pub fn leave(&self, peer: PeerId) {
        let _ = self.send(Command::Leave { peer });
    }

    fn send(&self, command: Command) -> Result<(), SfuError> {
        self.commands.send(command).map_err(|_| SfuError::Stopped)
    }
}

/// A track a browser sends.
#[derive(Debug, Clone, Copy)]
struct TrackIn {
    mid: Mid,
    kind: MediaKind,
    last_keyframe_request: Option<Instant>,
}

/// A track the SFU sends to a browser: another peer's incoming track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TrackOut {
    source: (PeerId, Mid),
    kind: MediaKind,
    state: OutState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    /// In an offer the browser has not answered yet.
    Offered(Mid),
    Open(Mid),
    /// Its source left; the m-line is stopped in an offer the browser has not answered yet.
    Stopping(Mid),
}

impl TrackOut {
    fn mid(&self) -> Mid {
        match self.state {
            OutState::Offered(mid) | OutState::Open(mid) | OutState::Stopping(mid) => mid,
        }
    }
}

struct Peer {
    rtc: Rtc,
    route: Route,
    events: tokio_mpsc::UnboundedSender<PeerEvent>,
    tracks_in: Vec<TrackIn>,
    tracks_out: Vec<TrackOut>,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    /// When str0m next wants the time, from its last poll.
    deadline: Instant,
    /// Set when the peer got input or media to send since its last poll.
    needs_poll: bool,
    /// Since when ICE has reported the connection as disconnected; it often recovers.
    disconnected_since: Option<Instant>,
}

/// Work that one peer's output creates for the others.
#[allow(clippy::large_enum_variant)] // Short-lived in one loop turn; boxing each frame costs more.
enum Relay {
    Media(PeerId, MediaData),
    /// A browser asked for a keyframe of a track forwarded to it.
    Keyframe((PeerId, Mid), KeyframeRequestKind),
}

struct Forwarder {
    socket: UdpSocket,
    local: SocketAddr,
    advertised: SocketAddr,
    peers: HashMap<PeerId, Peer>,
    /// The peer each remote address last belonged to, so a datagram finds its peer without
    /// asking every peer.
    sources: HashMap<SocketAddr, PeerId>,
    /// Set when peers joined, answered or left, so the offers need another look.
    renegotiate: bool,
    counters: Arc<SfuCounters>,
}

impl Forwarder {
    fn run(mut self, commands: &mpsc::Receiver<Command>) {
        let mut buffer = vec![0; DATAGRAM_BYTES];
        loop {
            loop {
                match commands.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        tracing::info!("embedded video server stopped");
                        return;
                    }
                }
            }
            self.drop_dead_peers();
            if self.renegotiate {
                self.renegotiate = false;
                self.negotiate();
            }
            self.poll_until_settled();

            let now = Instant::now();
            let deadline = self
                .peers
                .values()
                .map(|peer| peer.deadline)
                .min()
                .unwrap_or(now + MAX_WAIT);
            let wait = deadline
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), MAX_WAIT);
            let _ = self.socket.set_read_timeout(Some(wait));
            self.receive_batch(&mut buffer);
            self.feed_timers(Instant::now());
        }
    }

    /// Hands the current time to every peer whose timer is due.
    fn feed_timers(&mut self, now: Instant) {
        for (id, peer) in &mut self.peers {
            if peer.deadline > now || !peer.rtc.is_alive() {
                continue;
            }
            peer.needs_poll = true;
            if let Err(error) = peer.rtc.handle_input(Input::Timeout(now)) {
                tracing::warn!(peer = id, %error, "video connection failed on a timer");
                peer.rtc.disconnect();
            }
            if peer
                .disconnected_since
                .is_some_and(|since| now.duration_since(since) > ICE_GRACE)
            {
                tracing::info!(
                    peer = id,
                    "video connection stayed disconnected; closing it"
                );
                peer.rtc.disconnect();
            }
        }
    }

    /// Polls every peer that has work until none has, relaying media between them.
    fn poll_until_settled(&mut self) {
        let mut relays = VecDeque::new();
        loop {
            let due: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, peer)| peer.needs_poll)
                .map(|(id, _)| *id)
                .collect();
            if due.is_empty() {
                return;
            }
            for id in due {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.needs_poll = false;
                }
                let deadline = self.poll(id, &mut relays);
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.deadline = deadline;
                }
            }
            while let Some(relay) = relays.pop_front() {
                self.relay(relay);
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Join {
                peer,
                route,
                offer,
                events,
                reply,
            } => {
                let _ = reply.send(self.join(peer, route, offer, events));
                self.renegotiate = true;
            }
            Command::Answer {
                peer,
                answer,
                reply,
            } => {
                let _ = reply.send(self.accept_answer(peer, answer));
                if let Some(found) = self.peers.get_mut(&peer) {
                    found.needs_poll = true;
                }
                self.renegotiate = true;
            }
            Command::Route { peer, route } => {
                let newly_sending = self.peers.get_mut(&peer).map(|found| {
                    let video_resumed = route.sends_video && !found.route.sends_video;
                    let group_changed = route.group != found.route.group;
                    found.route = route;
                    video_resumed || group_changed
                });
                // A receiver only sees a picture after a keyframe, so ask the room's senders for
                // one whenever video starts flowing on a new path.
                if newly_sending == Some(true)
                    && let Some(room) = self.peers.get(&peer).map(|found| found.route.room.clone())
                {
                    self.request_room_keyframes(&room);
                }
            }
            Command::Leave { peer } => {
                if let Some(mut gone) = self.peers.remove(&peer) {
                    gone.rtc.disconnect();
                    self.counters.peers.fetch_sub(1, Ordering::Relaxed);
                    self.stop_tracks_from(peer);
                    self.renegotiate = true;
                }
            }
        }
    }

    fn join(
        &mut self,
        id: PeerId,
        route: Route,
        offer: SdpOffer,
        events: tokio_mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<String, SfuError> {
        if self.peers.contains_key(&id) {
            return Err(SfuError::AlreadyJoined);
        }
        let mut rtc = Rtc::builder().enable_bwe(None).build(Instant::now());
        let candidate = Candidate::host(self.advertised, "udp")
            .map_err(|error| SfuError::OfferRejected(error.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|error| SfuError::OfferRejected(error.to_string()))?;
        self.peers.insert(
            id,
            Peer {
                rtc,
                route,
                events,
                tracks_in: Vec::new(),
                tracks_out: Vec::new(),
                pending: None,
                connected: false,
                deadline: Instant::now(),
                needs_poll: true,
                disconnected_since: None,
            },
        );
        self.counters.peers.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = id, "video peer joined");
        Ok(answer.to_sdp_string())
    }

    fn accept_answer(&mut self, id: PeerId, answer: SdpAnswer) -> Result<(), SfuError> {
        let peer = self.peers.get_mut(&id).ok_or(SfuError::NoPendingOffer)?;
        let pending = peer.pending.take().ok_or(SfuError::NoPendingOffer)?;
        if let Err(error) = peer.rtc.sdp_api().accept_answer(pending, answer) {
            // The m-lines offered are unusable, so the connection cannot go on.
            peer.rtc.disconnect();
            return Err(SfuError::OfferRejected(error.to_string()));
        }
        peer.tracks_out
            .retain(|track| !matches!(track.state, OutState::Stopping(_)));
        let mut opened = Vec::new();
        for track in &mut peer.tracks_out {
            if let OutState::Offered(mid) = track.state {
                track.state = OutState::Open(mid);
                opened.push(track.source);
            }
        }
        for source in opened {
            self.request_keyframe(source, KeyframeRequestKind::Pli);
        }
        Ok(())
    }

    fn drop_dead_peers(&mut self) {
        let dead: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, peer)| !peer.rtc.is_alive())
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            if let Some(peer) = self.peers.remove(&id) {
                let _ = peer.events.send(PeerEvent::Disconnected);
                self.counters.peers.fetch_sub(1, Ordering::Relaxed);
                tracing::info!(peer = id, "video peer disconnected");
            }
            self.stop_tracks_from(id);
            self.renegotiate = true;
        }
        self.sources.retain(|_, id| self.peers.contains_key(id));
    }

    fn stop_tracks_from(&mut self, source: PeerId) {
        for peer in self.peers.values_mut() {
            for track in &mut peer.tracks_out {
                if track.source.0 == source
                    && let OutState::Open(mid) | OutState::Offered(mid) = track.state
                {
                    track.state = OutState::Stopping(mid);
                }
            }
        }
    }

    /// Offers each connected browser the tracks of its room that it does not receive yet, and
    /// stops those whose sender left.
    fn negotiate(&mut self) {
        let available: Vec<(PeerId, String, Mid, MediaKind, String)> = self
            .peers
            .iter()
            .flat_map(|(id, peer)| {
                peer.tracks_in.iter().map(move |track| {
                    (
                        *id,
                        peer.route.room.clone(),
                        track.mid,
                        track.kind,
                        peer.route.label.clone(),
                    )
                })
            })
            .collect();

        for (id, peer) in &mut self.peers {
            if !peer.connected || peer.pending.is_some() {
                continue;
            }
            let mut change = peer.rtc.sdp_api();
            let mut added = Vec::new();
            for (source, room, mid, kind, label) in &available {
                let known = peer
                    .tracks_out
                    .iter()
                    .any(|track| track.source == (*source, *mid));
                if *source == *id || *room != peer.route.room || known {
                    continue;
                }
                let out_mid =
                    change.add_media(*kind, Direction::SendOnly, Some(label.clone()), None, None);
                added.push(TrackOut {
                    source: (*source, *mid),
                    kind: *kind,
                    state: OutState::Offered(out_mid),
                });
            }
            for track in &peer.tracks_out {
                if let OutState::Stopping(mid) = track.state {
                    change.stop_media(mid);
                }
            }
            if !change.has_changes() {
                continue;
            }
            let Some((offer, pending)) = change.apply() else {
                continue;
            };
            peer.tracks_out.extend(added);
            peer.pending = Some(pending);
            peer.needs_poll = true;
            let _ = peer.events.send(PeerEvent::Offer(offer.to_sdp_string()));
        }
    }

    /// Polls one peer until str0m waits for time to pass, and returns the instant it waits for.
    fn poll(&mut self, id: PeerId, relays: &mut VecDeque<Relay>) -> Instant {
        let Some(peer) = self.peers.get_mut(&id) else {
            return Instant::now() + MAX_WAIT;
        };
        loop {
            if !peer.rtc.is_alive() {
                return Instant::now();
            }
            let output = match peer.rtc.poll_output() {
                Ok(output) => output,
                Err(error) => {
                    tracing::warn!(peer = id, %error, "video connection failed");
                    peer.rtc.disconnect();
                    return Instant::now();
                }
            };
            match output {
                Output::Timeout(at) => return at,
                Output::Transmit(transmit) => {
                    match self
                        .socket
                        .send_to(&transmit.contents, transmit.destination)
                    {
                        Ok(_) => {
                            self.counters.datagrams_sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => tracing::debug!(peer = id, %error, "UDP send failed"),
                    }
                }
                Output::Event(event) => {
                    self.renegotiate |= Self::on_event(id, peer, event, relays);
                }
            }
        }
    }

    /// Acts on one event of a peer; returns whether the offers need another look.
    fn on_event(id: PeerId, peer: &mut Peer, event: Event, relays: &mut VecDeque<Relay>) -> bool {
        match event {
            Event::Connected => {
                peer.connected = true;
                let _ = peer.events.send(PeerEvent::Connected);
                tracing::debug!(peer = id, "video peer connected");
                return true;
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                peer.disconnected_since.get_or_insert_with(Instant::now);
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) => {
                peer.disconnected_since = None;
            }
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                peer.tracks_in.push(TrackIn {
                    mid: added.mid,
                    kind: added.kind,
                    last_keyframe_request: None,
                });
                return true;
            }
            Event::MediaData(data) => {
                if !data.contiguous {
                    request_keyframe_throttled(peer, data.mid, KeyframeRequestKind::Fir);
                }
                relays.push_back(Relay::Media(id, data));
            }
            Event::KeyframeRequest(request) => {
                if let Some(track) = peer
                    .tracks_out
                    .iter()
                    .find(|track| track.mid() == request.mid)
                {
                    relays.push_back(Relay::Keyframe(track.source, request.kind));
                }
            }
            _ => {}
        }
        false
    }

    fn relay(&mut self, relay: Relay) {
        match relay {
            Relay::Media(source, data) => self.forward(source, &data),
            Relay::Keyframe(source, kind) => self.request_keyframe(source, kind),
        }
    }

    fn forward(&mut self, source: PeerId, data: &MediaData) {
        let Some(sender) = self.peers.get(&source) else {
            return;
        };
        let Some(track) = sender.tracks_in.iter().find(|track| track.mid == data.mid) else {
            return;
        };
        let kind = track.kind;
        let allowed = match kind {
            MediaKind::Audio => sender.route.sends_audio,
            MediaKind::Video => sender.route.sends_video,
        };
        if !allowed {
            return;
        }
        let (room, group) = (sender.route.room.clone(), sender.route.group.clone());

        for (id, peer) in &mut self.peers {
            let wanted = *id != source
                && peer.route.room == room
                && peer.route.group == group
                && (kind == MediaKind::Audio || peer.route.receives_video);
            if !wanted {
                continue;
            }
            let Some(OutState::Open(mid)) = peer
                .tracks_out
                .iter()
                .find(|track| track.source == (source, data.mid))
                .map(|track| track.state)
            else {
                continue;
            };
            let Some(writer) = peer.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            peer.needs_poll = true;
            match writer.write(pt, data.network_time, data.time, data.data.clone()) {
                Ok(()) => {
                    self.counters
                        .media_forwarded
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::warn!(peer = id, %error, "forwarding media failed; closing the connection");
                    peer.rtc.disconnect();
                }
            }
        }
    }

    fn request_keyframe(&mut self, (source, mid): (PeerId, Mid), kind: KeyframeRequestKind) {
        if let Some(peer) = self.peers.get_mut(&source) {
            request_keyframe_throttled(peer, mid, kind);
        }
    }

    fn request_room_keyframes(&mut self, room: &str) {
        for peer in self
            .peers
            .values_mut()
            .filter(|peer| peer.route.room == room)
        {
            let video: Vec<Mid> = peer
                .tracks_in
                .iter()
                .filter(|track| track.kind == MediaKind::Video)
                .map(|track| track.mid)
                .collect();
            for mid in video {
                request_keyframe_throttled(peer, mid, KeyframeRequestKind::Pli);
            }
        }
    }

    /// Waits for a datagram up to the read timeout, then takes whatever else has arrived, up to
    /// [`MAX_BATCH`] datagrams.
    fn receive_batch(&mut self, buffer: &mut [u8]) {
        for index in 0..MAX_BATCH {
            if index == 1 && self.socket.set_nonblocking(true).is_err() {
                break;
            }
            let (length, source) = match self.socket.recv_from(buffer) {
                Ok(received) => received,
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "UDP receive failed");
                    break;
                }
            };
            self.counters
                .datagrams_received
                .fetch_add(1, Ordering::Relaxed);
            self.deliver(&buffer[..length], source);
        }
        let _ = self.socket.set_nonblocking(false);
    }

    fn deliver(&mut self, datagram: &[u8], source: SocketAddr) {
        let Ok(contents) = datagram.try_into() else {
            return;
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
        let cached = self.sources.get(&source).copied().filter(|id| {
            self.peers
                .get(id)
                .is_some_and(|peer| peer.rtc.accepts(&input))
        });
        let found = cached.or_else(|| {
            self.peers
                .iter()
                .find(|(_, peer)| peer.rtc.accepts(&input))
                .map(|(id, _)| *id)
        });
        let Some(id) = found else {
            return;
        };
        self.sources.insert(source, id);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.needs_poll = true;
        if let Err(error) = peer.rtc.handle_input(input) {
            tracing::warn!(peer = id, %error, "video connection rejected a datagram; closing it");
            peer.rtc.disconnect();
        }
    }
}

fn request_keyframe_throttled(peer: &mut Peer, mid: Mid, kind: KeyframeRequestKind) {
    let Some(track) = peer.tracks_in.iter_mut().find(|track| track.mid == mid) else {
        return;
    };
    if track.kind != MediaKind::Video {
        return;
    }
    let now = Instant::now();
    if track
        .last_keyframe_request
        .is_some_and(|last| now.duration_since(last) < KEYFRAME_INTERVAL)
    {
        return;
    }
    track.last_keyframe_request = Some(now);
    peer.needs_poll = true;
    if let Some(mut writer) = peer.rtc.writer(mid) {
        let _ = writer.request_keyframe(None, kind);
    }
}
