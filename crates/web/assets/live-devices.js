// Camera and microphone helpers shared by the session room and the technology check: filling
// the device lists and measuring the microphone level.
"use strict";

window.StillpointDevices = (function () {
  // Fills a <select> with `devices`, keeping the current choice; `noneLabel`, when given, adds a
  // "no camera" choice with the value "none".
  function fill(select, devices, unnamedLabel, noneLabel) {
    const current = select.value;
    select.textContent = "";
    devices.forEach((device, index) => {
      select.append(new Option(device.label || unnamedLabel + " " + (index + 1), device.deviceId));
    });
    if (noneLabel) {
      select.append(new Option(noneLabel, "none"));
    }
    if ([...select.options].some((option) => option.value === current)) {
      select.value = current;
    }
  }

  // Lists the cameras and microphones into the two selects.
  async function list(cameraSelect, microphoneSelect, unnamedLabel, noneLabel) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
      return;
    }
    const devices = await navigator.mediaDevices.enumerateDevices();
    fill(cameraSelect, devices.filter((device) => device.kind === "videoinput"), unnamedLabel, noneLabel);
    fill(microphoneSelect, devices.filter((device) => device.kind === "audioinput"), unnamedLabel, null);
  }

  // Calls `report` five times a second with the stream's peak level from 0 to 100. Each call
  // replaces the previous measurement and closes its audio context.
  let timer = null;
  let context = null;
  function watchLevel(stream, report) {
    clearInterval(timer);
    if (context) {
      context.close();
      context = null;
    }
    if (!stream || !stream.getAudioTracks().length || !window.AudioContext) {
      return false;
    }
    context = new AudioContext();
    const analyser = context.createAnalyser();
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    timer = setInterval(() => {
      analyser.getByteTimeDomainData(samples);
      let peak = 0;
      samples.forEach((sample) => {
        peak = Math.max(peak, Math.abs(sample - 128));
      });
      report(Math.min(100, Math.round((peak / 128) * 200)));
    }, 200);
    return true;
  }

  return { list: list, watchLevel: watchLevel };
})();
