/* Offline support shared by the practice pages. Loaded before the other practice scripts.

   It registers the practice service worker and sends it the page's offline URLs to store. It
   also keeps a queue of form posts (timer diary entries and listening reports) in localStorage until
   the server accepts or rejects them, so practice done without a network is not lost.

   window.StillpointPractice:
   - queueEntry({url, fields}) stores a post, starts a flush and returns the item's id.
   - flushQueue() sends the queued posts in order and returns a promise of the flush result.
   - postForm(url, fields) posts the fields with the current CSRF token and returns the fetch
     promise.
   - newId() returns a random UUID.
   - csrfToken() returns the form token of the current page.

   After each flush, document receives a `stillpoint:queue` CustomEvent with detail
   {sent, kept, rejected: [{id, field, message}], sentIds, expired}. `sent` counts the accepted
   posts and `sentIds` lists their entry_id or listen_id. `kept` counts this person's posts still
   queued. `expired` is true when the server answered 401 or 403, or redirected (the person must
   sign in again). */
(() => {
  'use strict';

  const QUEUE_KEY = 'stillpoint-practice-queue';
  const SERVICE_WORKER_SCOPE = '/practice';

  // Set when localStorage cannot be read or written (storage disabled or full). The queue then
  // lives in memory and is lost when the page closes.
  let memoryQueue = null;

  let currentFlush = null;
  let flushRequested = false;

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') {
      return window.crypto.randomUUID();
    }

    // randomUUID exists only in secure contexts and newer browsers, so build a version 4 UUID.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
    return [
      hex.slice(0, 8),
      hex.slice(8, 12),
      hex.slice(12, 16),
      hex.slice(16, 20),
      hex.slice(20),
    ].join('-');
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : '';
  }

  // Redirects are not followed (redirect: 'manual'), because a sign-in page fetched after a
  // redirect would return 200 and look like success. A redirect arrives as status 0.
  function postForm(url, fields) {
    const body = new URLSearchParams(fields);
    body.set('csrf_token', csrfToken());

    return fetch(url, {
      method: 'POST',
      headers: {
        Accept: 'application/json',
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body,
      credentials: 'same-origin',
      redirect: 'manual',
    });
  }

  // An opaque value that the server may render as `data-queue-owner` on <body> for the signed-in
  // account. Posts queued under one owner are not sent from another owner's pages, so entries
  // made before a sign-out never land in the next person's diary on a shared device.
  function pageOwner() {
    return document.body.dataset.queueOwner || '';
  }

  function belongsToPage(item) {
    return !item.owner || item.owner === pageOwner();
  }

  function isQueueItem(value) {
    return Boolean(value)
      && typeof value.url === 'string'
      && Boolean(value.fields)
      && typeof value.fields === 'object';
  }

  function itemId(item) {
    return item.fields.entry_id || item.fields.listen_id || '';
  }

  // Identifies one version of an item. A newer listening report with the same listen_id has
  // other segments, so it gets another key.
  function itemKey(item) {
    return JSON.stringify([item.url, item.fields]);
  }

  function readQueue() {
    if (memoryQueue) {
      return memoryQueue.slice();
    }

    let stored;
    try {
      stored = window.localStorage.getItem(QUEUE_KEY);
    } catch (error) {
      console.warn('Stillpoint: localStorage is not available, so the practice queue is kept in memory', error);
      memoryQueue = [];
      return [];
    }

    try {
      const parsed = JSON.parse(stored || '[]');
      return Array.isArray(parsed) ? parsed.filter(isQueueItem) : [];
    } catch (error) {
      console.warn('Stillpoint: the stored practice queue is not valid JSON and is ignored', error);
      return [];
    }
  }

  function writeQueue(queue) {
    if (memoryQueue) {
      memoryQueue = queue.slice();
      return;
    }

    try {
      window.localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
    } catch (error) {
      console.warn('Stillpoint: the practice queue could not be saved to localStorage, so it is kept in memory', error);
      memoryQueue = queue.slice();
    }
  }

  function removeItem(item) {
    const key = itemKey(item);
    const queue = readQueue();
    const index = queue.findIndex((queued) => itemKey(queued) === key);
    if (index === -1) {
      return;
    }

    queue.splice(index, 1);
    writeQueue(queue);
  }

  // Listening reports carry listen_id and every report contains all segments of its page visit,
  // so only the newest report per listen_id is kept. Diary entries carry entry_id, and one
  // already queued is not queued again.
  function queueEntry(item) {
    const fields = { ...item.fields };
    delete fields.csrf_token;
    if (!fields.entry_id && !fields.listen_id) {
      fields.entry_id = newId();
    }

    const entry = { url: item.url, fields };
    if (pageOwner()) {
      entry.owner = pageOwner();
    }

    let queue = readQueue();
    const alreadyQueued = Boolean(fields.entry_id)
      && queue.some((queued) => queued.fields.entry_id === fields.entry_id);
    if (!alreadyQueued) {
      if (fields.listen_id) {
        queue = queue.filter((queued) => queued.fields.listen_id !== fields.listen_id);
      }
      queue.push(entry);
      writeQueue(queue);
    }

    flushQueue();
    return itemId(entry);
  }

  async function readRejection(response, item) {
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      // The body is not JSON, so the rejection has no field or message.
    }

    const details = body && typeof body === 'object' ? body : {};
    return {
      id: itemId(item),
      field: String(details.field || ''),
      // The practice endpoints send `message`. The RFC 9457 problem documents that the rest of
      // the server sends carry it in `detail`.
      message: String(details.message || details.detail || ''),
    };
  }

  // Returns 'sent', 'expired', 'retry' (keep it and stop this flush) or 'rejected'.
  function classifyResponse(response) {
    if (response.ok) {
      return 'sent';
    }

    const status = response.status;
    if (response.type === 'opaqueredirect' || status === 401 || status === 403) {
      return 'expired';
    }

    if (status === 408 || status === 429 || status >= 500) {
      return 'retry';
    }

    // 422 and the other 4xx statuses not handled above: the same post would fail again.
    return 'rejected';
  }

  function nextItem(attempted) {
    return readQueue().find((item) => belongsToPage(item) && !attempted.has(itemKey(item)));
  }

  // Sends one item and records its outcome in `result`. Returns false when the flush must stop.
  async function sendItem(item, result) {
    let response;
    try {
      response = await postForm(item.url, item.fields);
    } catch (error) {
      // Failures while the browser reports itself offline are expected and not logged.
      if (navigator.onLine !== false) {
        console.warn('Stillpoint: queued practice posts could not be sent and stay queued', error);
      }
      return false;
    }

    const outcome = classifyResponse(response);
    if (outcome === 'sent') {
      removeItem(item);
      result.sent += 1;
      result.sentIds.push(itemId(item));
      return true;
    }

    if (outcome === 'rejected') {
      removeItem(item);
      result.rejected.push(await readRejection(response, item));
      return true;
    }

    if (outcome === 'expired') {
      result.expired = true;
      return true;
    }

    return false;
  }

  // The queue is read again before each send, so items queued during the flush are sent too.
  async function runFlush() {
    const result = { sent: 0, kept: 0, rejected: [], sentIds: [], expired: false };
    const attempted = new Set();

    for (let item = nextItem(attempted); item; item = nextItem(attempted)) {
      attempted.add(itemKey(item));
      const keepGoing = await sendItem(item, result);
      if (!keepGoing) {
        break;
      }
    }

    result.kept = readQueue().filter(belongsToPage).length;
    document.dispatchEvent(new CustomEvent('stillpoint:queue', { detail: result }));
    return result;
  }

  // A call during a flush returns that flush's promise and starts one more flush after it, so
  // the post that caused the call is not left waiting for the next trigger.
  function flushQueue() {
    if (currentFlush) {
      flushRequested = true;
      return currentFlush;
    }

    currentFlush = runFlush().finally(() => {
      currentFlush = null;
      if (flushRequested) {
        flushRequested = false;
        flushQueue();
      }
    });
    return currentFlush;
  }

  function offlineUrls() {
    let urls = [];
    try {
      const parsed = JSON.parse(document.body.dataset.offlineUrls || '[]');
      urls = Array.isArray(parsed) ? parsed.filter((url) => typeof url === 'string') : [];
    } catch (error) {
      console.warn('Stillpoint: data-offline-urls is not a JSON array and is ignored', error);
    }

    urls.push(window.location.pathname);
    return Array.from(new Set(urls));
  }

  function registerServiceWorker() {
    const scriptUrl = document.body.dataset.serviceWorker;
    if (!scriptUrl || !('serviceWorker' in navigator)) {
      return;
    }

    navigator.serviceWorker
      .register(scriptUrl, { scope: SERVICE_WORKER_SCOPE })
      .then(() => navigator.serviceWorker.ready)
      .then((registration) => {
        if (registration.active) {
          registration.active.postMessage({ type: 'precache', urls: offlineUrls() });
        }
      })
      .catch((error) => console.warn('Stillpoint: the practice service worker could not be registered', error));
  }

  window.StillpointPractice = Object.freeze({
    queueEntry,
    flushQueue,
    postForm,
    newId,
    csrfToken,
  });

  registerServiceWorker();

  window.addEventListener('online', () => flushQueue());
  // The browser may count as online while the server cannot be reached, so waiting items are
  // also retried every 30 seconds while the page is open.
  window.setInterval(() => {
    if (readQueue().length > 0) {
      flushQueue();
    }
  }, 30000);
  flushQueue();
})();
