// The live session room: camera and microphone preview, the WebSocket signalling with the
// server, one WebRTC connection to the embedded SFU, the participants' tiles, chat, the
// facilitator's controls and the connection quality display.
"use strict";

(function () {
  const body = document.body;
  const socketPath = body.dataset.roomSocket;
  if (!socketPath) {
    return;
  }
  const text = JSON.parse(body.dataset.roomText || "{}");
  const iceServers = JSON.parse(body.dataset.iceServers || "[]");
  const you = body.dataset.roomYou;
  const facilitator = body.dataset.roomRole === "facilitator";
  const onLiveKit = body.dataset.roomProvider === "livekit";
  const $ = (id) => document.getElementById(id);
  const label = (key) => text["label:" + key] || key;

  const state = {
    socket: null,
    pc: null,
    stream: null,
    roster: { participants: [], locked: false, spotlight: null, captions_url: null },
    microphoneOn: true,
    cameraOn: true,
    handRaised: false,
    audioOnly: false,
    view: "gallery",
    remoteStreams: new Map(),
    videoStopped: false,
    poorSamples: 0,
    lastStats: new Map(),
    speaking: null,
    ended: false,
  };
  // Read by the browser tests: the peer connection and the room's state.
  window.stillpointRoom = state;

  // Devices and preview.

  async function openDevices() {
    const camera = $("camera-select").value;
    const microphone = $("microphone-select").value;
    if (state.stream) {
      state.stream.getTracks().forEach((track) => track.stop());
    }
    const audio = microphone ? { deviceId: { exact: microphone } } : true;
    const wantVideo = camera !== "none" && !$("join-audio-only").checked;
    let video = false;
    if (wantVideo && camera) {
      video = { deviceId: { exact: camera } };
    } else if (wantVideo) {
      video = { width: 640, height: 360 };
    }
    let stream = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: audio, video: video });
    } catch (error) {
      if (video) {
        try {
          stream = await navigator.mediaDevices.getUserMedia({ audio: audio, video: false });
          showProblem(text.no_camera);
        } catch (second) {
          stream = null;
        }
      }
      if (!stream) {
        showProblem(text.no_devices);
      }
    }
    state.stream = stream;
    state.cameraOn = Boolean(stream && stream.getVideoTracks().length);
    state.microphoneOn = Boolean(stream && stream.getAudioTracks().length);
    $("preview").srcObject = stream;
    watchLevel(stream, $("preview-level"));
    await listDevices();
  }

  function showProblem(message) {
    const problem = $("device-problem");
    problem.textContent = message;
    problem.hidden = false;
  }

  function listDevices() {
    return window.StillpointDevices.list($("camera-select"), $("microphone-select"), label("default-device"), label("no-camera-option"));
  }

  function watchLevel(stream, meter) {
    window.StillpointDevices.watchLevel(stream, (level) => {
      meter.value = level;
    });
  }

  // Signalling.

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + socketPath);
    state.socket = socket;
    socket.addEventListener("open", () => {
      send({ type: "microphone", on: state.microphoneOn });
      send({ type: "camera", on: state.cameraOn });
      if (state.audioOnly) {
        send({ type: "audio_only", on: true });
      }
    });
    socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      if (!state.ended) {
        end(text.connection_lost);
      }
    });
  }

  function send(message) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(message));
    }
  }

  async function handle(message) {
    switch (message.type) {
      case "lobby":
        $("prejoin").hidden = true;
        $("lobby").hidden = false;
        break;
      case "livekit":
        state.livekit = message;
        if (state.livekitRoom) {
          // A move to or from a private room: each group meets in a LiveKit room of its own.
          // The page's own camera and microphone tracks stay open for the next room.
          const previous = state.livekitRoom;
          state.livekitRoom = null;
          state.remoteStreams.clear();
          await previous.disconnect(false);
          await startLiveKit();
        }
        break;
      case "admitted":
        $("prejoin").hidden = true;
        $("lobby").hidden = true;
        $("room").hidden = false;
        $("room-title").focus();
        // Once the first tiles are drawn (the roster follows admission at once), the room
        // starts at the top of the window so that the videos and controls fit below it.
        setTimeout(() => $("room").scrollIntoView({ block: "start" }), 500);
        watchBarHeight();
        status(text.in_room);
        if (onLiveKit) {
          await startLiveKit();
        } else {
          await startMedia();
        }
        break;
      case "answer":
        await state.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        break;
      case "offer":
        await state.pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
        await state.pc.setLocalDescription(await state.pc.createAnswer());
        send({ type: "answer", sdp: state.pc.localDescription.sdp });
        break;
      case "media":
        if (message.state === "connected") {
          state.restarts = 0;
          status(text.connected);
        } else {
          restartMedia();
        }
        break;
      case "roster":
        state.roster = message;
        render();
        break;
      case "chat":
        addChat(message.name, message.text);
        break;
      case "notice":
        notice(message.code);
        break;
      case "error":
        status(text[message.code] || message.message);
        break;
      case "closed":
        end(text[message.code] || text.closed, ["removed", "declined", "access_ended"].includes(message.code));
        break;
      default:
        break;
    }
  }

  function notice(code) {
    if (code === "muted") {
      setMicrophone(false, false);
    } else if (code === "video_stopped") {
      state.videoStopped = true;
      setCamera(false, false);
    } else if (code === "video_allowed") {
      state.videoStopped = false;
    }
    status(text[code] || code);
  }

  // Keeps --live-bar-height equal to the bar's height, which the page's spacing below the room
  // and the scrolling of focused controls use on a phone.
  function watchBarHeight() {
    const bar = document.querySelector(".live-bar");
    if (!bar || !window.ResizeObserver) {
      return;
    }
    new ResizeObserver(() => {
      document.documentElement.style.setProperty("--live-bar-height", bar.offsetHeight + "px");
    }).observe(bar);
  }

  // Shows a message in the status line. The same message again is cleared first, so that a
  // screen reader announces it again.
  function status(message) {
    const line = $("room-status");
    if (message && line.textContent === message) {
      line.textContent = "";
      setTimeout(() => {
        line.textContent = message;
      }, 100);
      return;
    }
    line.textContent = message || "";
  }

  // Media.

  async function startMedia() {
    const pc = new RTCPeerConnection({ iceServers: iceServers });
    state.pc = pc;
    // The data channel lets the connection start even without camera and microphone.
    pc.createDataChannel("control");
    if (state.stream) {
      state.stream.getTracks().forEach((track) => {
        pc.addTransceiver(track, { direction: "sendonly", streams: [state.stream] });
      });
    }
    pc.addEventListener("track", (event) => {
      const stream = event.streams[0];
      if (stream) {
        state.remoteStreams.set(stream.id, stream);
        render();
      }
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && state.pc === pc) {
        restartMedia();
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: "offer", sdp: pc.localDescription.sdp });
    if (!state.measuring) {
      state.measuring = setInterval(measure, 2000);
    }
  }

  // After a network change the page makes the media connection again with a new offer, which
  // the server takes in place of the old one. After three tries the page offers to join again.
  async function restartMedia() {
    if (state.ended || onLiveKit) {
      return;
    }
    state.restarts = (state.restarts || 0) + 1;
    if (state.restarts > 3) {
      end(text.connection_lost);
      return;
    }
    status(text.reconnecting);
    if (state.pc) {
      state.pc.close();
    }
    state.remoteStreams.clear();
    await startMedia();
  }

  // Media through LiveKit, for cohorts that use it: the lobby, controls and chat stay on
  // Stillpoint's socket, and the access token arrives only on admission.
  async function startLiveKit() {
    const LK = window.LivekitClient;
    if (!LK || !state.livekit) {
      status(text.no_media);
      return;
    }
    // LiveKit unpublishes a camera a facilitator stopped; the track stays open for when the
    // facilitator allows it again.
    const room = new LK.Room({ adaptiveStream: true, dynacast: true, stopLocalTrackOnUnpublish: false });
    state.livekitRoom = room;
    room.on(LK.RoomEvent.TrackSubscribed, (track, publication, participant) => {
      let stream = state.remoteStreams.get(participant.identity);
      if (!stream) {
        stream = new MediaStream();
        state.remoteStreams.set(participant.identity, stream);
      }
      stream.addTrack(track.mediaStreamTrack);
      render();
    });
    room.on(LK.RoomEvent.TrackUnsubscribed, (track, publication, participant) => {
      const stream = state.remoteStreams.get(participant.identity);
      if (stream) {
        stream.removeTrack(track.mediaStreamTrack);
      }
    });
    room.on(LK.RoomEvent.ConnectionQualityChanged, (quality, participant) => {
      if (participant.isLocal) {
        // LiveKit's levels are excellent, good, poor and lost; the page shows good, fair and poor.
        const levels = { excellent: "good", good: "fair", poor: "poor", lost: "poor" };
        const level = levels[quality] || "good";
        $("quality").textContent = label("quality-" + level);
        $("quality-suggestion").hidden = level !== "poor" || state.audioOnly;
      }
    });
    room.on(LK.RoomEvent.TrackPublished, () => render());
    room.on(LK.RoomEvent.ParticipantConnected, () => render());
    room.on(LK.RoomEvent.ActiveSpeakersChanged, (speakers) => {
      state.speaking = speakers.length ? speakers[0].identity : null;
      render();
    });
    room.on(LK.RoomEvent.Disconnected, () => {
      // Leaving a room for another group's room is not a lost connection.
      if (!state.ended && state.livekitRoom === room) {
        status(text.connection_lost);
      }
    });
    try {
      await room.connect(state.livekit.url, state.livekit.token, { autoSubscribe: false });
    } catch (error) {
      status(text.connection_lost);
      return;
    }
    status(text.connected);
    await publishLiveKit();
    render();
  }

  // Brings the LiveKit publications in line with the page's microphone and camera buttons.
  // Unmuting a publication signals the LiveKit server, so someone a facilitator muted can speak
  // again. A camera the facilitator stopped is not published until allowed.
  async function publishLiveKit() {
    const LK = window.LivekitClient;
    const room = state.livekitRoom;
    if (!LK || !room || !state.stream) {
      return;
    }
    const publications = [
      [LK.Track.Source.Microphone, state.stream.getAudioTracks()[0], state.microphoneOn],
      [LK.Track.Source.Camera, state.stream.getVideoTracks()[0], state.cameraOn && !state.videoStopped],
    ];
    for (const [source, track, on] of publications) {
      if (!track) {
        continue;
      }
      const publication = room.localParticipant.getTrackPublication(source);
      try {
        if (!publication && on) {
          await room.localParticipant.publishTrack(track, { source: source });
        } else if (publication && on && publication.isMuted) {
          await publication.unmute();
        } else if (publication && !on && !publication.isMuted) {
          await publication.mute();
        }
      } catch (error) {
        status(text.no_media);
      }
    }
  }

  // On LiveKit the browser chooses what it receives: no video in audio-only mode. Private rooms
  // are LiveKit rooms of their own, so only the own group's tracks are there to receive.
  function subscribeLiveKit(group) {
    if (!state.livekitRoom) {
      return;
    }
    const groups = new Map(state.roster.participants.map((participant) => [participant.id, participant.group]));
    state.livekitRoom.remoteParticipants.forEach((participant) => {
      const sameGroup = groups.get(participant.identity) === group;
      participant.trackPublications.forEach((publication) => {
        const wanted = sameGroup && (publication.kind !== "video" || !state.audioOnly);
        if (publication.isSubscribed !== wanted) {
          publication.setSubscribed(wanted);
        }
      });
    });
  }

  function setMicrophone(on, tell) {
    state.microphoneOn = on;
    if (state.stream) {
      state.stream.getAudioTracks().forEach((track) => {
        track.enabled = on;
      });
    }
    const button = $("microphone-button");
    button.classList.toggle("is-off", !on);
    button.textContent = on ? label("microphone-on") : label("microphone-off");
    if (tell) {
      send({ type: "microphone", on: on });
    }
    publishLiveKit();
  }

  function setCamera(on, tell) {
    const hasVideo = state.stream && state.stream.getVideoTracks().length > 0;
    state.cameraOn = on && hasVideo;
    if (state.stream) {
      state.stream.getVideoTracks().forEach((track) => {
        track.enabled = state.cameraOn;
      });
    }
    const button = $("camera-button");
    button.classList.toggle("is-off", !state.cameraOn);
    button.textContent = state.cameraOn ? label("camera-on") : label("camera-off-button");
    if (tell) {
      send({ type: "camera", on: state.cameraOn });
    }
    publishLiveKit();
  }

  function setAudioOnly(on) {
    state.audioOnly = on;
    $("audio-only-button").setAttribute("aria-pressed", String(on));
    $("quality-suggestion").hidden = true;
    send({ type: "audio_only", on: on });
    if (on) {
      setCamera(false, true);
    }
    render();
  }

  // Connection quality from the peer connection's statistics.

  async function measure() {
    if (!state.pc) {
      return;
    }
    const report = await state.pc.getStats();
    let roundTrip = null;
    let received = 0;
    let lost = 0;
    const levels = new Map();
    report.forEach((entry) => {
      if (entry.type === "candidate-pair" && entry.nominated && entry.currentRoundTripTime !== undefined) {
        roundTrip = entry.currentRoundTripTime;
      }
      if (entry.type === "inbound-rtp") {
        const previous = state.lastStats.get(entry.id) || { packetsReceived: 0, packetsLost: 0 };
        received += (entry.packetsReceived || 0) - previous.packetsReceived;
        lost += Math.max(0, (entry.packetsLost || 0) - previous.packetsLost);
        state.lastStats.set(entry.id, { packetsReceived: entry.packetsReceived || 0, packetsLost: entry.packetsLost || 0 });
        if (entry.kind === "audio" && entry.audioLevel !== undefined && entry.trackIdentifier) {
          levels.set(entry.trackIdentifier, entry.audioLevel);
        }
      }
    });
    const loss = received + lost > 0 ? lost / (received + lost) : 0;
    let quality = "good";
    if (loss > 0.08 || (roundTrip !== null && roundTrip > 0.8)) {
      quality = "poor";
    } else if (loss > 0.02 || (roundTrip !== null && roundTrip > 0.3)) {
      quality = "fair";
    }
    $("quality").textContent = label("quality-" + quality);
    $("quality").dataset.quality = quality;
    state.poorSamples = quality === "poor" ? state.poorSamples + 1 : 0;
    if (state.poorSamples >= 3 && !state.audioOnly) {
      $("quality-suggestion").hidden = false;
    }
    markSpeaker(levels);
  }

  function markSpeaker(levels) {
    let loudest = null;
    let loudestLevel = 0.05;
    state.remoteStreams.forEach((stream, id) => {
      stream.getAudioTracks().forEach((track) => {
        const level = levels.get(track.id) || 0;
        if (level > loudestLevel) {
          loudest = id;
          loudestLevel = level;
        }
      });
    });
    if (loudest !== state.speaking) {
      state.speaking = loudest;
      render();
    }
  }

  // Rendering the room.

  function me() {
    return state.roster.participants.find((participant) => participant.id === you);
  }

  function render() {
    const self = me();
    const group = self ? self.group : "main";
    const inRoom = state.roster.participants.filter((participant) => participant.presence === "room");
    subscribeLiveKit(group);
    renderStage(inRoom.filter((participant) => participant.group === group));
    rebuildIfChanged("people", [inRoom, group, state.roster.spotlight], () => renderPeople(inRoom, group));
    if (facilitator) {
      const waiting = state.roster.participants.filter((participant) => participant.presence === "lobby");
      announceArrivals(waiting);
      rebuildIfChanged("lobby", waiting, () => renderLobby(waiting));
      const lock = $("lock-button");
      lock.setAttribute("aria-pressed", String(state.roster.locked));
      const field = $("captions-url");
      if (!field.value && document.activeElement !== field && state.roster.captions_url) {
        field.value = state.roster.captions_url;
      }
    }
    // A facilitator may lower the hand, so the button follows the roster.
    if (self) {
      state.handRaised = self.hand_raised;
      $("hand-button").setAttribute("aria-pressed", String(self.hand_raised));
    }
    const captions = $("captions");
    captions.hidden = !state.roster.captions_url;
    if (state.roster.captions_url) {
      $("captions-link").href = state.roster.captions_url;
    }
  }

  function renderStage(visible) {
    const stage = $("stage");
    stage.dataset.view = state.view;
    const shown = (id) => visible.some((participant) => participant.id === id);
    const firstFacilitator = visible.find((participant) => participant.role === "facilitator");
    const featured = [state.roster.spotlight, state.speaking, firstFacilitator && firstFacilitator.id, visible.length && visible[0].id]
      .find((id) => id && shown(id));
    const wanted = new Set(visible.map((participant) => participant.id));
    [...stage.children].forEach((tile) => {
      if (!wanted.has(tile.dataset.participant)) {
        tile.remove();
      }
    });
    visible.forEach((participant) => {
      let tile = stage.querySelector('[data-participant="' + participant.id + '"]');
      if (!tile) {
        tile = document.createElement("figure");
        tile.className = "live-tile";
        tile.dataset.participant = participant.id;
        const video = document.createElement("video");
        video.autoplay = true;
        video.playsInline = true;
        video.muted = participant.id === you;
        tile.append(video, document.createElement("figcaption"));
        stage.append(tile);
      }
      const video = tile.querySelector("video");
      const stream = participant.id === you ? state.stream : state.remoteStreams.get(participant.id);
      if (stream && video.srcObject !== stream) {
        video.srcObject = stream;
      }
      video.hidden = state.audioOnly && participant.id !== you;
      tile.classList.toggle("live-tile--featured", participant.id === featured);
      tile.classList.toggle("live-tile--speaking", participant.id === state.speaking);
      const notes = [];
      if (participant.id === you) notes.push(label("you"));
      if (participant.role === "facilitator") notes.push(label("facilitator"));
      if (!participant.microphone_on) notes.push(label("muted"));
      if (!participant.camera_on) notes.push(label("camera-off"));
      if (participant.hand_raised) notes.push(label("hand-raised"));
      tile.querySelector("figcaption").textContent = participant.name + (notes.length ? " (" + notes.join(", ") + ")" : "");
    });
  }

  // Lists are rebuilt only when what they show changed, and the focused control is then found
  // again by its key, so keyboard and screen reader users keep their place.
  const shownLists = new Map();
  function rebuildIfChanged(name, content, rebuild) {
    const signature = JSON.stringify(content);
    if (shownLists.get(name) === signature) {
      return;
    }
    shownLists.set(name, signature);
    keepFocus(rebuild);
  }

  function keepFocus(rebuild) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    rebuild();
    if (focused) {
      const again = document.querySelector('[data-key="' + focused + '"]');
      if (again) {
        again.focus();
      }
    }
  }

  function renderPeople(inRoom, group) {
    const list = $("people-list");
    list.textContent = "";
    inRoom.forEach((participant) => {
      const item = document.createElement("li");
      const notes = [];
      if (participant.role === "facilitator") notes.push(label("facilitator"));
      if (participant.role === "caregiver") notes.push(label("caregiver"));
      if (participant.hand_raised) notes.push(label("hand-raised"));
      if (!participant.microphone_on) notes.push(label("muted"));
      if (participant.group !== group && participant.group !== "main") notes.push(label("in-private-room"));
      if (participant.group !== group && participant.group === "main") notes.push(label("in-main-room"));
      item.textContent = participant.name + (notes.length ? " (" + notes.join(", ") + ")" : "");
      if (facilitator && participant.id !== you) {
        item.append(personActions(participant));
      }
      list.append(item);
    });
  }

  function action(key, name, message, confirmText) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--quiet";
    button.textContent = label(key);
    button.setAttribute("aria-label", label(key) + ": " + name);
    button.dataset.key = message.type + ":" + (message.participant || "");
    button.addEventListener("click", () => {
      if (!confirmText || window.confirm(confirmText)) {
        send(message);
      }
    });
    return button;
  }

  function personActions(participant) {
    const box = document.createElement("p");
    box.className = "live-actions";
    const id = participant.id;
    const name = participant.name;
    if (participant.role !== "facilitator") {
      if (participant.microphone_on) box.append(action("mute", name, { type: "mute", participant: id }));
      box.append(participant.video_stopped
        ? action("allow-video", name, { type: "allow_video", participant: id })
        : action("stop-video", name, { type: "stop_video", participant: id }));
      if (participant.group === "main") {
        const partner = state.roster.participants.find((other) => other.role === "facilitator" && other.id !== you && other.presence === "room");
        if (partner) {
          box.append(action("private-room", name, { type: "private_room", participant: id, co_facilitator: partner.id }));
        }
      } else {
        box.append(action("main-room", name, { type: "main_room", participant: id }));
      }
      box.append(action("remove", name, { type: "remove", participant: id }, label("remove-confirm")));
    }
    if (participant.hand_raised) box.append(action("lower-hand", name, { type: "lower_hand", participant: id }));
    box.append(state.roster.spotlight === id
      ? action("unspotlight", name, { type: "spotlight", participant: null })
      : action("spotlight", name, { type: "spotlight", participant: id }));
    return box;
  }

  // Tells the facilitator, through a polite live region, who has just arrived in the lobby.
  const announced = new Set();
  function announceArrivals(waiting) {
    const arrived = waiting.filter((participant) => !announced.has(participant.id));
    waiting.forEach((participant) => announced.add(participant.id));
    [...announced].forEach((id) => {
      if (!waiting.some((participant) => participant.id === id)) {
        announced.delete(id);
      }
    });
    if (arrived.length) {
      $("lobby-announce").textContent = label("lobby-waiting") + " " + arrived.map((participant) => participant.name).join(", ");
    }
  }

  function renderLobby(waiting) {
    const list = $("lobby-list");
    list.textContent = "";
    $("lobby-empty").hidden = waiting.length > 0;
    waiting.forEach((participant) => {
      const item = document.createElement("li");
      item.textContent = participant.name + (participant.role === "caregiver" ? " (" + label("caregiver") + ")" : "");
      const box = document.createElement("p");
      box.className = "live-actions";
      box.append(action("admit", participant.name, { type: "admit", participant: participant.id }));
      box.append(action("decline", participant.name, { type: "decline", participant: participant.id }));
      item.append(box);
      list.append(item);
    });
  }

  function addChat(name, message) {
    const item = document.createElement("li");
    const who = document.createElement("strong");
    who.textContent = name + ": ";
    item.append(who, document.createTextNode(message));
    // The log follows new messages unless the reader has scrolled back in it.
    const log = $("chat-log");
    const following = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(item);
    if (following) {
      log.scrollTop = log.scrollHeight;
    }
    // A growing log pushes the message form down; someone typing keeps all of it in view.
    if ($("chat-form").contains(document.activeElement)) {
      $("chat-form").scrollIntoView({ block: "nearest" });
    }
  }

  // Ends the room on this page. `final` is for someone removed or turned away, who cannot come
  // back, so the page offers no way in.
  function end(message, final) {
    state.ended = true;
    if (state.livekitRoom) {
      state.livekitRoom.disconnect();
    }
    if (state.pc) {
      state.pc.close();
    }
    if (state.stream) {
      state.stream.getTracks().forEach((track) => track.stop());
    }
    ["prejoin", "lobby", "room"].forEach((id) => {
      $(id).hidden = true;
    });
    $("ended").hidden = false;
    $("rejoin-link").hidden = final;
    $("ended-text").textContent = message;
    $("ended-text").focus();
  }

  // Controls.

  $("join-button").addEventListener("click", () => {
    $("join-button").disabled = true;
    state.audioOnly = $("join-audio-only").checked;
    setMicrophone(state.microphoneOn, false);
    setCamera(state.cameraOn, false);
    connect();
  });
  $("camera-select").addEventListener("change", openDevices);
  $("microphone-select").addEventListener("change", openDevices);
  $("join-audio-only").addEventListener("change", openDevices);
  $("microphone-button").addEventListener("click", () => {
    status("");
    setMicrophone(!state.microphoneOn, true);
  });
  $("camera-button").addEventListener("click", () => {
    if (state.videoStopped) {
      status(text.video_stopped);
    } else if (!state.stream || state.stream.getVideoTracks().length === 0) {
      status(text.camera_missing);
    } else {
      status("");
      setCamera(!state.cameraOn, true);
    }
  });
  $("hand-button").addEventListener("click", () => {
    state.handRaised = !state.handRaised;
    $("hand-button").setAttribute("aria-pressed", String(state.handRaised));
    send({ type: "hand", raised: state.handRaised });
  });
  $("view-button").addEventListener("click", () => {
    state.view = state.view === "gallery" ? "speaker" : "gallery";
    $("view-button").setAttribute("aria-pressed", String(state.view === "speaker"));
    render();
  });
  $("audio-only-button").addEventListener("click", () => setAudioOnly(!state.audioOnly));
  $("suggest-audio-only").addEventListener("click", () => setAudioOnly(true));
  $("leave-button").addEventListener("click", () => {
    send({ type: "leave" });
    end(text.left);
  });
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("chat-text");
    if (input.value.trim()) {
      send({ type: "chat", text: input.value });
      input.value = "";
    }
  });
  if (facilitator) {
    $("mute-all-button").addEventListener("click", () => send({ type: "mute_all" }));
    $("lock-button").addEventListener("click", () => send({ type: "lock", locked: !state.roster.locked }));
    $("captions-form").addEventListener("submit", (event) => {
      event.preventDefault();
      status("");
      send({ type: "captions", url: $("captions-url").value });
    });
  }
  window.addEventListener("pagehide", () => send({ type: "leave" }));

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    openDevices();
  } else {
    showProblem(text.no_devices);
  }
})();
