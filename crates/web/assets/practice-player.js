/* The recording page: captions drawn under the <audio> element, the transcript that follows the
   audio, and reports of the parts of the recording that were actually played.

   Listening is tracked as intervals of media time [start, end] in seconds. Time is counted only
   while the audio plays and advances about as fast as the wall clock. Seeks, jumps, pauses and
   buffering end an interval, so skipping ahead does not count as listening. Each report sends
   all intervals of this page visit under one listen_id, and the server counts their union. */
(() => {
  'use strict';

  const REPORT_INTERVAL_MS = 30000;
  // Slack in seconds for the time between timeupdate events and for timer jitter. A larger
  // advance than the wall clock allows is treated as a seek.
  const ADVANCE_TOLERANCE_SECONDS = 1.5;

  const audio = document.getElementById('practice-audio');
  if (!audio) {
    return;
  }

  const captionLine = document.getElementById('caption-line');
  const statusLine = document.getElementById('listen-status');
  const transcript = document.getElementById('transcript');
  const practice = window.StillpointPractice;

  /* Captions. */

  function cueText(cue) {
    // getCueAsHTML() parses the cue's WebVTT tags into a detached fragment. Only its text is
    // used, so no markup from the file reaches the page.
    if (typeof cue.getCueAsHTML === 'function') {
      return cue.getCueAsHTML().textContent;
    }
    return cue.text || '';
  }

  function showActiveCues(track) {
    const cues = Array.from(track.activeCues || []);
    captionLine.textContent = cues.map(cueText).join('\n');
  }

  // Browsers draw no captions for <audio>, so the track is loaded hidden and its active cues
  // are written into #caption-line.
  function setUpCaptions() {
    const trackElement = audio.querySelector('track[kind="captions"], track[kind="subtitles"]');
    if (!captionLine || !trackElement || !trackElement.track) {
      return;
    }

    const track = trackElement.track;
    track.mode = 'hidden';
    track.addEventListener('cuechange', () => showActiveCues(track));
    trackElement.addEventListener('error', () => {
      captionLine.textContent = '';
    });
  }

  /* Transcript. */

  const transcriptItems = transcript
    ? Array.from(transcript.querySelectorAll('li[data-start]'), (element) => ({
      element,
      start: Number.parseFloat(element.dataset.start),
      end: Number.parseFloat(element.dataset.end),
    })).filter((item) => Number.isFinite(item.start))
    : [];
  let currentItem = null;

  // Returns the last item that started at or before `time` and has not ended. An item without
  // data-end lasts until the next one starts.
  function transcriptItemAt(time) {
    let found = null;
    for (const item of transcriptItems) {
      const notEnded = !Number.isFinite(item.end) || time < item.end;
      if (item.start <= time && notEnded) {
        found = item;
      }
    }
    return found;
  }

  function prefersReducedMotion() {
    return window.matchMedia('(prefers-reduced-motion: reduce)').matches
      || document.documentElement.classList.contains('motion-reduced');
  }

  function isFullyInView(element) {
    const rect = element.getBoundingClientRect();
    const viewportHeight = window.innerHeight || document.documentElement.clientHeight;
    return rect.top >= 0 && rect.bottom <= viewportHeight;
  }

  function markCurrent(item) {
    if (currentItem) {
      currentItem.element.classList.remove('current');
      currentItem.element.removeAttribute('aria-current');
    }

    currentItem = item;
    if (!item) {
      return;
    }

    item.element.classList.add('current');
    item.element.setAttribute('aria-current', 'true');
  }

  // Scrolls only while the audio plays and the item is out of view, so a person reading
  // elsewhere on a paused page keeps their place. Keyboard focus never moves.
  function highlightTranscript() {
    const item = transcriptItemAt(audio.currentTime);
    if (item === currentItem) {
      return;
    }

    markCurrent(item);
    if (item && !audio.paused && !isFullyInView(item.element)) {
      item.element.scrollIntoView({
        block: 'nearest',
        behavior: prefersReducedMotion() ? 'auto' : 'smooth',
      });
    }
  }

  function seekToCue(event) {
    const button = event.target.closest('.cue-seek');
    if (!button || !transcript.contains(button)) {
      return;
    }

    const start = Number.parseFloat(button.dataset.start);
    if (!Number.isFinite(start)) {
      return;
    }

    audio.currentTime = start;
    audio.play().catch((error) => console.warn('Stillpoint: the recording could not play', error));
  }

  /* Listening intervals. */

  const closedIntervals = [];
  let openInterval = null;
  let lastUpdateWallTime = 0;

  function openIntervalAt(time) {
    openInterval = { start: time, end: time };
    lastUpdateWallTime = performance.now();
  }

  function closeOpenInterval() {
    if (openInterval && openInterval.end > openInterval.start) {
      closedIntervals.push(openInterval);
    }
    openInterval = null;
  }

  // True when the media moved forward from the open interval's end by no more than the wall
  // clock allows at normal speed, so playing faster than normal never credits more time than
  // was spent listening.
  function isPlausibleAdvance(time) {
    const advance = time - openInterval.end;
    const elapsedSeconds = (performance.now() - lastUpdateWallTime) / 1000;
    const allowed = elapsedSeconds * Math.min(audio.playbackRate, 1) + ADVANCE_TOLERANCE_SECONDS;
    return advance >= 0 && advance <= allowed;
  }

  function trackProgress() {
    if (audio.paused || audio.seeking) {
      return;
    }

    const time = audio.currentTime;
    if (!openInterval) {
      // After a seek during playback, or a stall that did not stop playback, no `playing` event
      // may follow, so counting restarts here once enough data is buffered.
      if (audio.readyState >= HTMLMediaElement.HAVE_FUTURE_DATA) {
        openIntervalAt(time);
      }
      return;
    }

    if (isPlausibleAdvance(time)) {
      openInterval.end = time;
      lastUpdateWallTime = performance.now();
      return;
    }

    closeOpenInterval();
    openIntervalAt(time);
  }

  // Closes the open interval at the last good time. With `extendToNow`, the current time counts
  // as good when the advance to it is plausible (pause, end, buffering). On `seeking` the
  // current time is already the seek target, so it must not be used.
  function closeInterval(extendToNow) {
    if (!openInterval) {
      return;
    }

    if (extendToNow && isPlausibleAdvance(audio.currentTime)) {
      openInterval.end = audio.currentTime;
    }
    closeOpenInterval();
  }

  function mergeIntervals(intervals) {
    const sorted = intervals
      .map((interval) => ({ start: interval.start, end: interval.end }))
      .sort((left, right) => left.start - right.start);

    const merged = [];
    for (const interval of sorted) {
      const last = merged[merged.length - 1];
      if (last && interval.start <= last.end) {
        last.end = Math.max(last.end, interval.end);
      } else {
        merged.push(interval);
      }
    }
    return merged;
  }

  // Formats all intervals, the open one up to the current time, as "12.0-45.5,60.0-75.2".
  // Overlapping intervals are merged first, which keeps the union the server computes.
  function segmentsText() {
    const intervals = closedIntervals.slice();
    if (openInterval) {
      const canExtend = !audio.seeking && isPlausibleAdvance(audio.currentTime);
      const end = canExtend ? audio.currentTime : openInterval.end;
      intervals.push({ start: openInterval.start, end });
    }

    return mergeIntervals(intervals)
      .map((interval) => [interval.start.toFixed(1), interval.end.toFixed(1)])
      .filter(([start, end]) => start !== end)
      .map(([start, end]) => `${start}-${end}`)
      .join(',');
  }

  /* Listening reports. */

  const reportUrl = audio.dataset.reportUrl;
  const listenId = practice ? practice.newId() : '';
  // When this visit began; the server dates the visit's practice from it, so a report sent
  // late (after the device was offline) still lands on the day the patient listened.
  const visitStartedAt = String(Date.now());
  // Segments the server received, or that wait in the offline queue or in a sent beacon.
  let deliveredSegments = '';
  // Segments of the report fetch in progress, if any.
  let pendingSegments = '';
  let reportSequence = 0;
  let appliedSequence = 0;
  let shownMinutes = null;
  let reportTimer = null;

  function reportFields(segments) {
    return {
      listen_id: listenId,
      recording_id: audio.dataset.recordingId || '',
      started_at: visitStartedAt,
      segments,
    };
  }

  function queueReport(fields) {
    practice.queueEntry({ url: reportUrl, fields });
    deliveredSegments = fields.segments;
  }

  // Shows the counted minutes. The text changes only when the minute count does, because
  // screen readers announce every change of a role=status element. A response older than one
  // already shown is ignored.
  function showCountedSeconds(countedSeconds, sequence) {
    if (!statusLine || !Number.isFinite(countedSeconds) || sequence < appliedSequence) {
      return;
    }

    appliedSequence = sequence;
    const minutes = Math.floor(countedSeconds / 60);
    if (minutes === shownMinutes) {
      return;
    }

    shownMinutes = minutes;
    const template = audio.dataset.countedText || '';
    statusLine.textContent = template.replace(/\{minutes\}/g, String(minutes));
  }

  async function readCountedSeconds(response) {
    try {
      const body = await response.json();
      return Number(body && body.counted_seconds);
    } catch (error) {
      console.warn('Stillpoint: the listening report response is not JSON', error);
      return Number.NaN;
    }
  }

  function isRetryable(response) {
    const status = response.status;
    return response.type === 'opaqueredirect'
      || status === 401
      || status === 403
      || status === 408
      || status === 429
      || status >= 500;
  }

  async function handleReportResponse(response, fields, sequence) {
    if (response.ok) {
      deliveredSegments = fields.segments;
      showCountedSeconds(await readCountedSeconds(response), sequence);
      return;
    }

    // The person may sign in again and a server fault may pass, so the report waits in the queue.
    if (isRetryable(response)) {
      queueReport(fields);
      return;
    }

    // 422 and other client errors: the same report would be rejected again.
    console.warn(`Stillpoint: listening report ${listenId} for recording ${fields.recording_id} was rejected with HTTP ${response.status}`);
    deliveredSegments = fields.segments;
  }

  async function sendReport() {
    const segments = segmentsText();
    if (!practice || !reportUrl || !segments) {
      return;
    }
    if (segments === deliveredSegments || segments === pendingSegments) {
      return;
    }

    const fields = reportFields(segments);
    reportSequence += 1;
    const sequence = reportSequence;
    pendingSegments = segments;

    let response = null;
    try {
      response = await practice.postForm(reportUrl, fields);
    } catch (error) {
      // Offline or the connection dropped: the shared queue sends it later.
      queueReport(fields);
    }

    if (response) {
      await handleReportResponse(response, fields, sequence);
    }
    if (pendingSegments === segments) {
      pendingSegments = '';
    }
  }

  // A fetch may not finish while the page is hidden or closed, so a beacon carries the report.
  // Without a network the report goes to the queue instead.
  function sendBeaconReport() {
    const segments = segmentsText();
    if (!practice || !reportUrl || !segments || segments === deliveredSegments) {
      return;
    }

    const fields = reportFields(segments);
    const body = new URLSearchParams(fields);
    body.set('csrf_token', practice.csrfToken());

    const canBeacon = typeof navigator.sendBeacon === 'function' && navigator.onLine !== false;
    if (canBeacon && navigator.sendBeacon(reportUrl, body)) {
      deliveredSegments = segments;
      return;
    }

    queueReport(fields);
  }

  function startPeriodicReports() {
    if (reportTimer === null) {
      reportTimer = window.setInterval(sendReport, REPORT_INTERVAL_MS);
    }
  }

  function stopPeriodicReports() {
    window.clearInterval(reportTimer);
    reportTimer = null;
  }

  /* Wiring. */

  function onPlaying() {
    closeOpenInterval();
    openIntervalAt(audio.currentTime);
    startPeriodicReports();
  }

  function onPlaybackStopped() {
    closeInterval(true);
    stopPeriodicReports();
    sendReport();
  }

  setUpCaptions();

  if (transcript) {
    transcript.addEventListener('click', seekToCue);
  }

  audio.addEventListener('playing', onPlaying);
  audio.addEventListener('timeupdate', () => {
    trackProgress();
    highlightTranscript();
  });
  audio.addEventListener('seeking', () => closeInterval(false));
  // A seek during playback restarts counting at the target.
  audio.addEventListener('seeked', () => {
    trackProgress();
    highlightTranscript();
  });
  audio.addEventListener('pause', onPlaybackStopped);
  // Guided practice is timed by the voice, and minutes count as time spent listening, so the
  // player may go slower than normal but not faster.
  audio.addEventListener('ratechange', () => {
    if (audio.playbackRate > 1) {
      audio.playbackRate = 1;
    }
  });
  audio.addEventListener('ended', onPlaybackStopped);
  audio.addEventListener('waiting', () => closeInterval(true));
  audio.addEventListener('stalled', () => closeInterval(true));

  window.addEventListener('pagehide', sendBeaconReport);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') {
      sendBeaconReport();
    }
  });
})();
