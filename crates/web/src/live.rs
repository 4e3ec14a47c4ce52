//! The live session settings the pages read: the room hub with its embedded
//! SFU, the join window, the ICE servers given to browsers and the LiveKit deployment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use stillpoint_app::live::ManagedRooms;
use stillpoint_domain::live::JoinWindow;
use stillpoint_domain::live::media::MediaOrder;
use stillpoint_video::Hub;
use stillpoint_video::ice::{IceServer, turn_credentials};
use stillpoint_video::livekit::LiveKitKeys;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How long TURN credentials stay valid, in seconds: long enough for a whole class.
const TURN_CREDENTIAL_SECONDS: i64 = 6 * 60 * 60;

/// A clinic's LiveKit deployment.
#[derive(Debug, Clone)]
pub struct LiveKitSettings {
    /// The `wss://` address browsers connect to.
    pub url: String,
    pub keys: LiveKitKeys,
    /// LiveKit's server API, which enforces the facilitators' controls.
    pub rooms: Arc<dyn ManagedRooms>,
    /// One queue of media orders per session room.
    pub lanes: Arc<OrderLanes>,
}

impl LiveKitSettings {
    #[must_use]
    pub fn new(url: String, keys: LiveKitKeys, rooms: Arc<dyn ManagedRooms>) -> Self {
        Self {
            url,
            keys,
            rooms,
            lanes: Arc::new(OrderLanes::default()),
        }
    }
}

/// Work for one session room's queue.
#[derive(Debug)]
pub enum LaneWork {
    /// A room change's orders, with how many times they were tried before.
    Orders { orders: Vec<MediaOrder>, tries: u32 },
    /// Close the room's main LiveKit room, once its join window has ended.
    Close,
}

/// The queues that carry each session room's media orders to LiveKit in the order the room
/// changed, without holding up the connection whose message caused them. A task per room works
/// through its queue.
#[derive(Debug, Default)]
pub struct OrderLanes {
    senders: Mutex<HashMap<String, UnboundedSender<LaneWork>>>,
}

impl OrderLanes {
    /// Returns the queue of `room_key`, starting its task with `run` on first use.
    pub fn sender<F, Fut>(&self, room_key: &str, run: F) -> UnboundedSender<LaneWork>
    where
        F: FnOnce(UnboundedReceiver<LaneWork>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut senders = self.senders.lock().expect("lane lock");
        if let Some(sender) = senders.get(room_key).filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        let (sender, receiver) = unbounded_channel();
        tokio::spawn(run(receiver));
        senders.insert(room_key.to_owned(), sender.clone());
        sender
    }

    /// Forgets the queue of a room whose task ended.
    pub fn forget(&self, room_key: &str) {
        self.senders.lock().expect("lane lock").remove(room_key);
    }
}

/// Live session settings and the rooms of this server.
#[derive(Debug, Clone)]
pub struct LiveState {
    pub hub: Arc<Hub>,
    pub window: JoinWindow,
    /// STUN and TURN servers with fixed credentials, as configured.
    pub ice_servers: Vec<IceServer>,
    /// TURN servers that take short-lived credentials made with `turn_secret`.
    pub turn_urls: Vec<String>,
    pub turn_secret: Option<String>,
    pub livekit: Option<LiveKitSettings>,
    /// How often an open room connection checks that its person still belongs to the session.
    pub access_recheck: std::time::Duration,
}

/// How often room connections check membership by default.
pub const ACCESS_RECHECK: std::time::Duration = std::time::Duration::from_mins(1);

impl Default for LiveState {
    /// Rooms without media, for servers and tests that do not start the embedded SFU.
    fn default() -> Self {
        Self {
            hub: Arc::new(Hub::new(None)),
            window: JoinWindow::default(),
            ice_servers: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            livekit: None,
            access_recheck: ACCESS_RECHECK,
        }
    }
}

impl LiveState {
    /// Returns the ICE servers for one browser, with TURN credentials valid from `now_unix_seconds`.
    #[must_use]
    pub fn ice_servers_for(&self, id: &str, now_unix_seconds: i64) -> Vec<IceServer> {
        let mut servers = self.ice_servers.clone();
        if let Some(secret) = &self.turn_secret
            && !self.turn_urls.is_empty()
        {
            let (username, credential) =
                turn_credentials(secret, now_unix_seconds + TURN_CREDENTIAL_SECONDS, id);
            servers.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}
