//! The embedded SFU forwards media only within a room's group: a participant moved to a private
//! room stops hearing and seeing the main room, and a stopped sender's video reaches nobody.
//! Three str0m clients on 127.0.0.1 send real RTP through the SFU.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use stillpoint_video::Sfu;
use stillpoint_video::sfu::{PeerEvent, Route};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::PayloadParams;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

struct Client {
    peer: u64,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    events: UnboundedReceiver<PeerEvent>,
    audio: Mid,
    video: Mid,
    /// Received frames per sending peer (the stream label) and kind.
    received: HashMap<(String, MediaKind), u64>,
    labels: HashMap<Mid, (String, MediaKind)>,
    /// The stream label of each m-line the SFU offered, from its `a=msid` line.
    offered: HashMap<String, String>,
    connected: bool,
    sent: u64,
}

fn route(peer: u64, group: &str, sends_video: bool) -> Route {
    Route {
        room: "session".to_owned(),
        group: group.to_owned(),
        label: peer.to_string(),
        sends_audio: true,
        sends_video,
        receives_video: true,
    }
}

async fn join(sfu: &Sfu, peer: u64, group: &str) -> Client {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    socket.set_nonblocking(true).expect("non-blocking");
    let local = socket.local_addr().expect("address");
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
    let mut change = rtc.sdp_api();
    let label = Some(peer.to_string());
    let audio = change.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        label.clone(),
        None,
        None,
    );
    let video = change.add_media(MediaKind::Video, Direction::SendOnly, label, None, None);
    let (offer, pending) = change.apply().expect("offer");
    let (sender, events) = unbounded_channel();
    let answer = sfu
        .join(
            peer,
            route(peer, group, true),
            &offer.to_sdp_string(),
            sender,
        )
        .await
        .expect("the SFU answers");
    rtc.sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer).expect("answer"),
        )
        .expect("accepted");
    Client {
        peer,
        rtc,
        socket,
        local,
        events,
        audio,
        video,
        received: HashMap::new(),
        labels: HashMap::new(),
        offered: HashMap::new(),
        connected: false,
        sent: 0,
    }
}

impl Client {
    async fn step(&mut self, sfu: &Sfu, send: bool) {
        while let Ok(event) = self.events.try_recv() {
            if let PeerEvent::Offer(sdp) = event {
                // The SFU names each forwarded stream by its sender in the msid line.
                let mut mid = String::new();
                for line in sdp.lines() {
                    if let Some(value) = line.strip_prefix("a=mid:") {
                        value.trim().clone_into(&mut mid);
                    } else if let Some(value) = line.strip_prefix("a=msid:") {
                        let stream = value.split_whitespace().next().unwrap_or("").to_owned();
                        self.offered.insert(mid.clone(), stream);
                    }
                }
                let offer = SdpOffer::from_sdp_string(&sdp).expect("offer");
                let answer = self.rtc.sdp_api().accept_offer(offer).expect("accepted");
                sfu.answer(self.peer, &answer.to_sdp_string())
                    .await
                    .expect("answer taken");
            }
        }
        let mut buffer = [0_u8; 2000];
        while let Ok((length, source)) = self.socket.recv_from(&mut buffer) {
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents: buffer[..length].try_into().expect("datagram"),
                },
            );
            let _ = self.rtc.handle_input(input);
        }
        let now = Instant::now();
        let _ = self.rtc.handle_input(Input::Timeout(now));
        if send && self.connected {
            self.sent += 1;
            let ticks = self.sent * 1_800;
            for (mid, codec, frequency, bytes) in [
                (self.audio, "opus", Frequency::NINETY_KHZ, 80),
                (self.video, "vp8", Frequency::NINETY_KHZ, 1_000),
            ] {
                let Some(writer) = self.rtc.writer(mid) else {
                    continue;
                };
                let Some(pt) = writer
                    .payload_params()
                    .find(|params| params.spec().codec.to_string().eq_ignore_ascii_case(codec))
                    .map(PayloadParams::pt)
                else {
                    continue;
                };
                let mut payload = vec![0x5a_u8; bytes];
                payload[0] = 0x10;
                let _ = writer.write(pt, now, MediaTime::new(ticks, frequency), payload);
            }
        }
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => break,
                Ok(Output::Transmit(transmit)) => {
                    let _ = self
                        .socket
                        .send_to(&transmit.contents, transmit.destination);
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => self.connected = true,
                    Event::MediaAdded(added) if added.direction.is_receiving() => {
                        let label = self
                            .offered
                            .get(&added.mid.to_string())
                            .cloned()
                            .unwrap_or_default();
                        self.labels.insert(added.mid, (label, added.kind));
                    }
                    Event::MediaData(data) => {
                        if let Some(key) = self.labels.get(&data.mid) {
                            *self.received.entry(key.clone()).or_default() += 1;
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    fn frames_from(&self, peer: u64, kind: MediaKind) -> u64 {
        self.received
            .get(&(peer.to_string(), kind))
            .copied()
            .unwrap_or(0)
    }
}

/// Runs all clients, each sending a frame every 20 ms, for `duration`.
async fn run(sfu: &Sfu, clients: &mut [Client], duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        for client in clients.iter_mut() {
            client.step(sfu, true).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn snapshot(clients: &[Client]) -> Vec<HashMap<(String, MediaKind), u64>> {
    clients
        .iter()
        .map(|client| client.received.clone())
        .collect()
}

fn gained(
    before: &[HashMap<(String, MediaKind), u64>],
    clients: &[Client],
    to: usize,
    from: u64,
    kind: MediaKind,
) -> u64 {
    let earlier = before[to]
        .get(&(from.to_string(), kind))
        .copied()
        .unwrap_or(0);
    clients[to].frames_from(from, kind) - earlier
}

#[tokio::test]
async fn media_stays_within_groups() {
    let sfu = Sfu::start("127.0.0.1:0".parse().expect("address"), None).expect("SFU starts");
    let mut clients = vec![
        join(&sfu, 1, "main").await,
        join(&sfu, 2, "main").await,
        join(&sfu, 3, "main").await,
    ];
    run(&sfu, &mut clients, Duration::from_secs(3)).await;
    for (to, from) in [(0, 2), (0, 3), (1, 1), (1, 3), (2, 1), (2, 2)] {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            assert!(
                clients[to].frames_from(from, kind) > 10,
                "peer {} receives {kind:?} of peer {from}: {:?}",
                to + 1,
                clients[to].received
            );
        }
    }

    // Peer 3 moves to a private room: nothing of it reaches the main room any more, and
    // nothing of the main room reaches it.
    sfu.route(3, route(3, "private-3", true));
    run(&sfu, &mut clients, Duration::from_millis(500)).await;
    let before = snapshot(&clients);
    run(&sfu, &mut clients, Duration::from_secs(2)).await;
    for kind in [MediaKind::Audio, MediaKind::Video] {
        assert!(
            gained(&before, &clients, 0, 2, kind) > 20,
            "the main room still flows"
        );
        assert_eq!(
            gained(&before, &clients, 0, 3, kind),
            0,
            "no {kind:?} leaves the private room"
        );
        assert_eq!(
            gained(&before, &clients, 2, 1, kind),
            0,
            "no {kind:?} enters the private room"
        );
    }

    // Peer 2's video is stopped: its audio still reaches peer 1, its video does not.
    sfu.route(2, route(2, "main", false));
    run(&sfu, &mut clients, Duration::from_millis(500)).await;
    let before = snapshot(&clients);
    run(&sfu, &mut clients, Duration::from_secs(2)).await;
    assert!(gained(&before, &clients, 0, 2, MediaKind::Audio) > 20);
    assert_eq!(
        gained(&before, &clients, 0, 2, MediaKind::Video),
        0,
        "stopped video reaches nobody"
    );
}
