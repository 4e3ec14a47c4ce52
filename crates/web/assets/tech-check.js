// The technology check: camera preview, microphone level, a sound to test the speaker, and a
// WebRTC connection to the server's video service with its round-trip time. The results go into
// the form's hidden fields, which the patient then saves.
"use strict";

(function () {
  const body = document.body;
  const form = document.getElementById("check-form");
  if (!form || !body.dataset.checkSocket) {
    return;
  }
  const text = JSON.parse(body.dataset.roomText || "{}");
  const label = (key) => text["label:" + key] || key;
  const $ = (id) => document.getElementById(id);
  let stream = null;
  let heardLevel = 0;

  async function openDevices() {
    if (stream) {
      stream.getTracks().forEach((track) => track.stop());
    }
    const camera = $("camera-select").value;
    const microphone = $("microphone-select").value;
    let video = true;
    if (camera === "none") {
      video = false;
    } else if (camera) {
      video = { deviceId: { exact: camera } };
    }
    const audio = microphone ? { deviceId: { exact: microphone } } : true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: audio, video: video });
    } catch (error) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: audio });
      } catch (second) {
        stream = null;
      }
    }
    const hasVideo = Boolean(stream && stream.getVideoTracks().length);
    const hasAudio = Boolean(stream && stream.getAudioTracks().length);
    $("check-preview").srcObject = stream;
    $("camera-ok").value = hasVideo ? "yes" : "no";
    $("camera-result").textContent = hasVideo ? body.dataset.cameraOk : text.no_camera;
    $("microphone-result").textContent = hasAudio ? "" : text.no_devices;
    watchLevel();
    await window.StillpointDevices.list($("camera-select"), $("microphone-select"), label("default-device"), label("no-camera-option"));
  }

  function watchLevel() {
    const watching = window.StillpointDevices.watchLevel(stream, (level) => {
      $("check-level").value = level;
      heardLevel = Math.max(heardLevel, level);
      // Any sound above the noise floor shows the microphone picks up.
      if (heardLevel > 5) {
        $("microphone-ok").value = "yes";
        $("microphone-result").textContent = body.dataset.microphoneOk;
      }
    });
    if (!watching) {
      $("microphone-ok").value = "no";
    }
  }

  $("play-sound").addEventListener("click", () => {
    new Audio(body.dataset.bell).play();
  });

  $("connection-test").addEventListener("click", () => {
    const result = $("connection-result");
    result.textContent = text.reconnecting;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + body.dataset.checkSocket);
    const pc = new RTCPeerConnection({ iceServers: JSON.parse(body.dataset.iceServers || "[]") });
    pc.createDataChannel("control");
    const fail = () => {
      $("connection-ok").value = "no";
      result.textContent = text.connection_lost;
      socket.close();
      pc.close();
    };
    const timeout = setTimeout(fail, 15000);
    socket.addEventListener("message", async (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "admitted") {
        await pc.setLocalDescription(await pc.createOffer());
        socket.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }));
      } else if (message.type === "answer") {
        await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      } else if (message.type === "media" && message.state === "connected") {
        clearTimeout(timeout);
        setTimeout(async () => {
          let roundTrip = null;
          (await pc.getStats()).forEach((entry) => {
            if (entry.type === "candidate-pair" && entry.nominated && entry.currentRoundTripTime !== undefined) {
              roundTrip = Math.round(entry.currentRoundTripTime * 1000);
            }
          });
          $("connection-ok").value = "yes";
          $("round-trip").value = roundTrip === null ? "" : String(roundTrip);
          // "Connected." becomes "Connected (40 ms)." when the round trip is known.
          const connected = text.connected.replace(/\.$/, "");
          result.textContent = roundTrip === null ? text.connected : connected + " (" + roundTrip + " ms).";
          socket.close();
          pc.close();
        }, 1000);
      } else if (message.type === "error" || message.type === "closed") {
        clearTimeout(timeout);
        fail();
      }
    });
    socket.addEventListener("error", () => {
      clearTimeout(timeout);
      fail();
    });
  });

  $("camera-select").addEventListener("change", openDevices);
  $("microphone-select").addEventListener("change", openDevices);
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    openDevices();
  }
})();
