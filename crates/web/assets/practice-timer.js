/* The meditation timer. It needs no network: the remaining time comes from Date.now() and the
   planned end, never from counting ticks, so a throttled background tab stays accurate. Only
   the finished practice is sent, through the shared offline queue of practice-offline.js. */
(() => {
  'use strict';

  const MINIMUM_RECORDED_SECONDS = 60;

  const form = document.getElementById('timer-form');
  if (!form) {
    return;
  }

  const running = document.getElementById('timer-running');
  const visual = document.getElementById('timer-visual');
  const remainingText = document.getElementById('timer-remaining');
  const announcer = document.getElementById('timer-announce');
  const stopButton = document.getElementById('timer-stop');
  const done = document.getElementById('timer-done');
  const result = document.getElementById('timer-result');
  const bell = document.getElementById('timer-bell');
  const practice = window.StillpointPractice;

  // The current run, or null when the timer is not running.
  let run = null;
  let wakeLock = null;
  let pendingEntryId = '';

  function fillTemplate(template, values) {
    return (template || '').replace(/\{(\w+)\}/g, (placeholder, name) => (
      Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : placeholder
    ));
  }

  // Returns the local calendar date of `time` (milliseconds since the epoch) as YYYY-MM-DD.
  function localDate(time) {
    const date = new Date(time);
    const month = String(date.getMonth() + 1).padStart(2, '0');
    const day = String(date.getDate()).padStart(2, '0');
    return `${date.getFullYear()}-${month}-${day}`;
  }

  /* Bells. */

  function playOriginalBell() {
    bell.currentTime = 0;
    bell.play().catch((error) => console.warn('Stillpoint: the bell could not play', error));
  }

  // A clone lets bells overlap. If the browser blocks a clone that starts without a user
  // gesture, the original element, which first played during the Start click, rings instead.
  function ringBell() {
    if (!bell) {
      return;
    }

    const clone = bell.cloneNode(true);
    clone.play().catch(() => playOriginalBell());
  }

  // Plays the original bell silently during the Start click when no start bell is wanted.
  // NOTE: developers report that WebKit on iOS lets an element play without a user gesture
  // only if it already played during one. This has not been tested on such a device.
  function unlockBell() {
    if (!bell) {
      return;
    }

    bell.muted = true;
    bell.play()
      .then(() => {
        bell.pause();
        bell.currentTime = 0;
      })
      .catch(() => {})
      .finally(() => {
        bell.muted = false;
      });
  }

  function ringDueIntervalBells(elapsedSeconds) {
    if (!run.intervalSeconds) {
      return;
    }

    // A throttled tab may wake after several intervals, and then one bell rings for all of
    // them. A bell that falls on the end is skipped, because the end bell rings there.
    let due = false;
    while (run.nextIntervalBell < run.durationSeconds && elapsedSeconds >= run.nextIntervalBell) {
      due = true;
      run.nextIntervalBell += run.intervalSeconds;
    }

    if (due) {
      ringBell();
    }
  }

  /* Wake lock. */

  async function requestWakeLock() {
    if (!('wakeLock' in navigator) || wakeLock) {
      return;
    }

    try {
      const sentinel = await navigator.wakeLock.request('screen');
      // The run may have ended, or another request may have won, while this one waited.
      if (run && !wakeLock) {
        wakeLock = sentinel;
        sentinel.addEventListener('release', () => {
          if (wakeLock === sentinel) {
            wakeLock = null;
          }
        });
      } else {
        sentinel.release().catch(() => {});
      }
    } catch (error) {
      // No wake lock (denied, or a hidden page): the timer works without it.
    }
  }

  function releaseWakeLock() {
    if (wakeLock) {
      wakeLock.release().catch(() => {});
      wakeLock = null;
    }
  }

  /* Display. */

  function showRemaining(remainingSeconds) {
    remainingText.textContent = fillTemplate(form.dataset.textRemaining, {
      minutes: Math.floor(remainingSeconds / 60),
      seconds: remainingSeconds % 60,
    });
  }

  // Announces the remaining minutes once when each whole minute is reached, such as "9 min
  // left" at 9:00. The visible text changes every second but is not a live region.
  function announceMinute(remainingSeconds) {
    const minutes = Math.ceil(remainingSeconds / 60);
    if (minutes === run.announcedMinutes) {
      return;
    }

    run.announcedMinutes = minutes;
    const text = minutes === 1 && form.dataset.textOneMinuteLeft
      ? form.dataset.textOneMinuteLeft
      : form.dataset.textMinuteLeft;
    announcer.textContent = fillTemplate(text, { minutes });
  }

  // Shows the result. Focus moves to it only if it was on the hidden timer controls.
  function showDone(text) {
    const active = document.activeElement;
    const focusWasLost = !active || active === document.body || running.contains(active);

    result.textContent = text;
    running.hidden = true;
    done.hidden = false;

    if (focusWasLost) {
      result.tabIndex = -1;
      result.focus();
    }
  }

  /* Recording the practice. */

  function onQueueFlushed(event) {
    const detail = event.detail || {};

    if ((detail.sentIds || []).includes(pendingEntryId)) {
      result.textContent = form.dataset.textSent || '';
      document.removeEventListener('stillpoint:queue', onQueueFlushed);
      return;
    }

    const rejection = (detail.rejected || []).find((rejected) => rejected.id === pendingEntryId);
    if (rejection) {
      // NOTE: data-text-rejected is an optional fallback for a rejection without a message.
      result.textContent = rejection.message || form.dataset.textRejected || '';
      document.removeEventListener('stillpoint:queue', onQueueFlushed);
      return;
    }

    // The entry is still queued. A later flush on this page may still send it.
    if (detail.expired) {
      result.textContent = form.dataset.textExpired || '';
    }
  }

  function recordPractice(startTime, seconds) {
    if (!practice) {
      console.warn('Stillpoint: practice-offline.js is not loaded, so the practice was not recorded');
      return;
    }

    pendingEntryId = practice.newId();
    document.addEventListener('stillpoint:queue', onQueueFlushed);
    practice.queueEntry({
      url: form.dataset.entryUrl,
      fields: {
        entry_id: pendingEntryId,
        practiced_on: localDate(startTime),
        // The server dates the entry from this instant in the patient's own time zone, so a
        // device set to another zone cannot move it to another day.
        started_at: String(startTime),
        practice: form.dataset.practice || '',
        source: 'timer',
        seconds: String(seconds),
      },
    });
  }

  /* Running. */

  function scheduleTick() {
    // The next tick comes just after the next whole second since the start, so the display
    // changes on the second.
    const sinceLastSecond = (Date.now() - run.startTime) % 1000;
    run.tickTimer = window.setTimeout(tick, 1000 - Math.max(sinceLastSecond, 0) + 20);
  }

  function tick() {
    const now = Date.now();
    if (now >= run.endTime) {
      finishTimer(true);
      return;
    }

    ringDueIntervalBells((now - run.startTime) / 1000);
    const remainingSeconds = Math.ceil((run.endTime - now) / 1000);
    showRemaining(remainingSeconds);
    announceMinute(remainingSeconds);
    scheduleTick();
  }

  // Ends the run. At the natural end the planned duration is recorded, otherwise the whole
  // seconds elapsed, and nothing under a minute.
  function finishTimer(reachedEnd) {
    const startTime = run.startTime;
    const elapsedSeconds = reachedEnd
      ? run.durationSeconds
      : Math.min(Math.floor((Date.now() - startTime) / 1000), run.durationSeconds);
    const ringEndBell = reachedEnd && run.endBell;

    window.clearTimeout(run.tickTimer);
    run = null;
    visual.classList.remove('breathing');
    releaseWakeLock();

    if (ringEndBell) {
      ringBell();
    }

    if (elapsedSeconds < MINIMUM_RECORDED_SECONDS) {
      showDone(form.dataset.textTooShort || '');
      return;
    }

    showDone(form.dataset.textQueued || '');
    recordPractice(startTime, elapsedSeconds);
  }

  function readSettings() {
    const minutes = Number.parseInt(document.getElementById('timer-minutes').value, 10);
    const intervalMinutes = Number.parseInt(document.getElementById('timer-interval').value, 10);
    return {
      durationSeconds: minutes * 60,
      intervalSeconds: Number.isFinite(intervalMinutes) && intervalMinutes > 0 ? intervalMinutes * 60 : 0,
      startBell: document.getElementById('timer-start-bell').checked,
      endBell: document.getElementById('timer-end-bell').checked,
    };
  }

  // NOTE: a running session lives only in this page, so if the browser closes the tab during
  // it (as phones do with background tabs), nothing reaches the diary.
  function startTimer(event) {
    event.preventDefault();
    if (run) {
      return;
    }

    const settings = readSettings();
    if (!Number.isFinite(settings.durationSeconds) || settings.durationSeconds <= 0) {
      return;
    }

    // The bell plays here, inside the click, because browsers allow audio after a user gesture.
    if (settings.startBell) {
      playOriginalBell();
    } else {
      unlockBell();
    }

    const startTime = Date.now();
    run = {
      ...settings,
      startTime,
      endTime: startTime + settings.durationSeconds * 1000,
      nextIntervalBell: settings.intervalSeconds,
      announcedMinutes: settings.durationSeconds / 60,
      tickTimer: 0,
    };

    const focusWasInForm = form.contains(document.activeElement);
    form.hidden = true;
    running.hidden = false;
    if (focusWasInForm) {
      stopButton.focus();
    }

    visual.classList.add('breathing');
    showRemaining(settings.durationSeconds);
    requestWakeLock();
    scheduleTick();
  }

  function stopTimer() {
    if (!run) {
      return;
    }

    finishTimer(Date.now() >= run.endTime);
  }

  // Browsers release the wake lock when the page is hidden, and may delay ticks in a hidden
  // tab. On return the lock is requested again and the display catches up at once.
  function onVisibilityChange() {
    if (document.visibilityState !== 'visible' || !run) {
      return;
    }

    requestWakeLock();
    window.clearTimeout(run.tickTimer);
    tick();
  }

  form.addEventListener('submit', startTimer);
  stopButton.addEventListener('click', stopTimer);
  document.addEventListener('visibilitychange', onVisibilityChange);
})();
