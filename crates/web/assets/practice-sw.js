/* Service worker for the practice pages, served at /practice/sw.js with scope /practice/.

   It keeps copies of practice pages, content-hashed assets, recordings and captions, so that the
   timer and recordings already stored work without a network:
   - Practice pages: network first, the stored copy when offline.
   - /assets/: stored copy first, because the names are content-hashed and never change.
   - Recording audio and .vtt captions: the stored copy if there is one (with Range support for
     the audio element), otherwise the network.
   Posts and other origins are not handled. Pages ask for URLs to store with a
   {type: 'precache', urls} message.

   Only pages without diary content are stored: the timer and the recording players. The
   practice page and diary entries, which show a patient's notes, are never stored, so nothing
   private stays on a shared device. Precache requests for other pages are ignored. */
'use strict';

// Raise the version to drop every stored copy when the stored format or strategy changes.
const CACHE_PREFIX = 'stillpoint-practice-';
const CACHE_NAME = `${CACHE_PREFIX}v1`;
// Stored responses are matched by URL alone, whatever the request's Accept or other headers.
const MATCH_OPTIONS = { ignoreVary: true };

// Pages that hold no diary content and may be kept for offline use.
function isStorablePage(pathname) {
  return pathname === '/practice/timer' || /^\/practice\/recordings\/[^/]+$/.test(pathname);
}

function isRecordingMedia(pathname) {
  if (!pathname.startsWith('/practice/recordings/')) {
    return false;
  }
  return /^\/practice\/recordings\/[^/]+\/audio$/.test(pathname) || pathname.endsWith('.vtt');
}

async function deleteOldCaches() {
  const names = await caches.keys();
  const old = names.filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE_NAME);
  await Promise.all(old.map((name) => caches.delete(name)));
}

/* Precaching. */

// Stores one URL unless it is stored already. Audio is fetched whole, without a Range header,
// so the stored 200 response can serve any later range request.
async function precacheUrl(cache, rawUrl) {
  let url;
  try {
    url = new URL(rawUrl, self.location.origin);
  } catch (error) {
    return;
  }
  if (url.origin !== self.location.origin) {
    return;
  }

  url.hash = '';
  const storable = url.pathname.startsWith('/assets/') || isStorablePage(url.pathname) || isRecordingMedia(url.pathname);
  if (!storable) {
    return;
  }
  if (await cache.match(url.href, MATCH_OPTIONS)) {
    return;
  }

  try {
    const response = await fetch(url.href, { credentials: 'same-origin' });
    if (response.status === 200 && !response.redirected) {
      await cache.put(url.href, response);
    }
  } catch (error) {
    console.warn(`Stillpoint: ${url.href} could not be stored for offline use`, error);
  }
}

// One URL at a time, so that recordings do not compete with the page for bandwidth.
async function precache(urls) {
  const cache = await caches.open(CACHE_NAME);
  for (const url of urls) {
    if (typeof url === 'string') {
      await precacheUrl(cache, url);
    }
  }
}

/* Range requests. */

// Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range against a body of `size` bytes.
// Returns {start, end} (inclusive), 'unsatisfiable', or null for a header to ignore (invalid or
// several ranges). HTTP lets a server ignore a Range header, so the whole body is sent then.
function parseRange(header, size) {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) {
    return null;
  }

  let start;
  let end;
  if (match[1] === '') {
    const suffixLength = Number(match[2]);
    if (suffixLength === 0) {
      return 'unsatisfiable';
    }
    start = Math.max(size - suffixLength, 0);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Number(match[2]);
    if (match[2] !== '' && end < start) {
      return null;
    }
    end = Math.min(end, size - 1);
  }

  if (start >= size) {
    return 'unsatisfiable';
  }
  return { start, end };
}

// Serves a request from a stored full response, as 206 Partial Content when the request has a
// Range header.
async function answerFromCache(request, cached) {
  const rangeHeader = request.headers.get('Range');
  if (!rangeHeader) {
    return cached;
  }

  const body = await cached.clone().blob();
  const range = parseRange(rangeHeader, body.size);
  if (range === null) {
    return cached;
  }

  if (range === 'unsatisfiable') {
    return new Response(null, {
      status: 416,
      statusText: 'Range Not Satisfiable',
      headers: { 'Content-Range': `bytes */${body.size}` },
    });
  }

  const part = body.slice(range.start, range.end + 1);
  return new Response(part, {
    status: 206,
    statusText: 'Partial Content',
    headers: {
      'Content-Type': cached.headers.get('Content-Type') || 'application/octet-stream',
      'Content-Length': String(part.size),
      'Content-Range': `bytes ${range.start}-${range.end}/${body.size}`,
      'Accept-Ranges': 'bytes',
    },
  });
}

/* Fetch strategies. */

async function networkFirst(event) {
  const request = event.request;
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected && isStorablePage(new URL(request.url).pathname)) {
      const copy = response.clone();
      event.waitUntil(caches.open(CACHE_NAME).then((cache) => cache.put(request.url, copy)));
    }
    return response;
  } catch (error) {
    const cache = await caches.open(CACHE_NAME);
    const cached = await cache.match(request.url, { ...MATCH_OPTIONS, ignoreSearch: true });
    if (cached) {
      return cached;
    }
    throw error;
  }
}

// Only a full 200 response is stored, because Cache.put() rejects a 206 response. Without a
// stored copy, later range requests go to the network.
async function cacheFirst(event) {
  const request = event.request;
  const cache = await caches.open(CACHE_NAME);
  const cached = await cache.match(request.url, MATCH_OPTIONS);
  if (cached) {
    return answerFromCache(request, cached);
  }

  const response = await fetch(request);
  if (response.status === 200 && !response.redirected) {
    event.waitUntil(cache.put(request.url, response.clone()));
  }
  return response;
}

async function cachedOrNetwork(request) {
  const cache = await caches.open(CACHE_NAME);
  const cached = await cache.match(request.url, MATCH_OPTIONS);
  if (cached) {
    return answerFromCache(request, cached);
  }
  return fetch(request);
}

function handleFetch(event) {
  const request = event.request;
  if (request.method !== 'GET') {
    return;
  }

  const url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    return;
  }

  if (request.mode === 'navigate') {
    if (url.pathname === '/practice' || url.pathname.startsWith('/practice/')) {
      event.respondWith(networkFirst(event));
    }
    return;
  }

  if (url.pathname.startsWith('/assets/')) {
    event.respondWith(cacheFirst(event));
    return;
  }

  if (isRecordingMedia(url.pathname)) {
    event.respondWith(cachedOrNetwork(request));
  }
}

self.addEventListener('install', () => self.skipWaiting());

self.addEventListener('activate', (event) => {
  event.waitUntil(deleteOldCaches().then(() => self.clients.claim()));
});

self.addEventListener('message', (event) => {
  const message = event.data;
  if (message && message.type === 'precache' && Array.isArray(message.urls)) {
    event.waitUntil(precache(message.urls));
  }
});

self.addEventListener('fetch', handleFetch);
