// The field app's attachments (SPEC.md, "Attachments"): photos of signed forms and minutes.
// A photo is shrunk on the phone (longest side 1600 px, JPEG quality 0.8, turned upright by its
// EXIF orientation), hashed (SHA-256, its name on the server), and kept on the device before
// its reference is written into the record; the record then syncs at once, on its own, and
// the bytes follow through a queue of their own, never holding a record back.
//
// Where the bytes live: IndexedDB (one database per enrolled device), not the origin-private
// file system the replica uses. The bytes and their place in the upload queue are written in
// one transaction (durability "strict": on disk before it completes), so a photo is never
// kept without its upload, nor an upload without its photo; the page reaches it directly,
// without a message to the replica's worker, which runs one call at a time and may be in the
// middle of a long sync (a photo must not wait behind it); and Chromium keeps each Blob of a
// record as a file of its own, so photos do not weigh on the database.
//
// Stores: `uploads` (sha256 -> the bytes, the reference's members, state 'draft' until the
// record naming it is saved, then 'waiting', or 'failed' with the server's reason) and
// `cache` (sha256 -> bytes known to be on the server: sent from here, or fetched to be shown),
// least recently used first out past CACHE_LIMIT.
'use strict';

(() => {
  const MAX_SIDE = 1600;                 // px, the longest side of a shrunk photo
  const QUALITY = 0.8;                   // JPEG quality
  const CHUNK = 256 * 1024;              // bytes per PUT
  const MAX_BLOB = 10 * 1024 * 1024;     // the server's default blob limit (SPEC.md, "Limits")
  const CACHE_LIMIT = 40 * 1024 * 1024;  // bytes of fetched and sent photos kept for showing
  const DRAFT_TTL_MS = 24 * 3600 * 1000; // a photo taken for a form never saved

  let db = null;
  let token = '';
  let running = false;
  let again = false;
  const sending = new Map();    // sha256 -> fraction sent, during an upload
  const remote = new Map();     // sha256 -> 'missing' | 'offline' (what the server said last)
  const urls = new Map();       // sha256 -> object URL shown
  const listeners = new Set();

  const changed = (sha) => { for (const f of listeners) f(sha); };

  const req = (r) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const done = (tx) => new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new DOMException('aborted', 'AbortError'));
  });
  const write = (stores) => db.transaction(stores, 'readwrite', { durability: 'strict' });

  async function open(deviceId, deviceToken) {
    token = deviceToken;
    if (db) return;
    const r = indexedDB.open('fieldsync-files-' + deviceId, 1);
    r.onupgradeneeded = () => {
      const d = r.result;
      d.createObjectStore('uploads', { keyPath: 'sha256' });
      d.createObjectStore('cache', { keyPath: 'sha256' }).createIndex('used', 'used_ms');
    };
    db = await req(r);
    // Photos taken for a new record that was never saved.
    const tx = write(['uploads']);
    for (const u of await req(tx.objectStore('uploads').getAll())) {
      if (u.state === 'draft' && Date.now() - u.added_ms > DRAFT_TTL_MS) tx.objectStore('uploads').delete(u.sha256);
    }
    await done(tx);
  }

  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

  // A photo as the app keeps it: upright, at most MAX_SIDE on its longest side, JPEG.
  async function shrink(file) {
    const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
    try {
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      const w = Math.max(1, Math.round(bitmap.width * scale));
      const h = Math.max(1, Math.round(bitmap.height * scale));
      const canvas = typeof OffscreenCanvas === 'function' ? new OffscreenCanvas(w, h) : Object.assign(document.createElement('canvas'), { width: w, height: h });
      const ctx = canvas.getContext('2d');
      ctx.fillStyle = '#fff';   // a PNG's transparent parts: white paper, not black
      ctx.fillRect(0, 0, w, h);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(bitmap, 0, 0, w, h);
      const blob = canvas.convertToBlob
        ? await canvas.convertToBlob({ type: 'image/jpeg', quality: QUALITY })
        : await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', QUALITY));
      if (!blob) throw new Error('no JPEG');
      return { blob, width: w, height: h };
    } finally {
      bitmap.close();
    }
  }

  // At most `max` bytes of UTF-8, cut between characters.
  function clip(s, max) {
    const enc = new TextEncoder();
    let out = s.normalize('NFC');
    while (enc.encode(out).length > max) out = Array.from(out).slice(0, -1).join('');
    return out;
  }

  // What the file is called where it is shown: the name the cadre gave it ("Biên bản trang
  // 2"), but a camera's own name (IMG_20261207_071201, PXL_…, DSC01234, image) reads as a code,
  // so a photo so named is called by when it was taken: "Ảnh chụp 07-12-2026 07.12.31".
  const CAMERA_NAME = /^(?:img|pxl|dsc[nf]?|dcim|mvimg|image|photo|cam|wp|screenshot)?[-_ ]?[\d_\-. ]*$|\d{8}/i;
  function nameFor(file, ext) {
    const base = (file.name || '').replace(/\.[^.]*$/, '').trim();
    const t = new Date(file.lastModified || Date.now());
    const p = (n) => String(n).padStart(2, '0');
    const when = `${p(t.getDate())}-${p(t.getMonth() + 1)}-${t.getFullYear()} ${p(t.getHours())}.${p(t.getMinutes())}.${p(t.getSeconds())}`;
    const named = base && !CAMERA_NAME.test(base) ? base : (ext === '.pdf' ? 'Tệp ' : 'Ảnh chụp ') + when;
    return clip(named, 250) + ext;
  }

  // Attaching: the file made into what is kept (a photo shrunk; a PDF as it is), hashed and
  // kept durably on the device with its upload queued as 'draft' (sent once `commit` says
  // the record naming it is saved). Answers the reference for the record. Throws an Error
  // whose `name` says why, in words the form shows: 'unreadable', 'too_large', 'storage'.
  async function attach(file) {
    let blob;
    let type;
    let name;
    if (file.type === 'application/pdf' || /\.pdf$/i.test(file.name || '')) {
      if (file.size > MAX_BLOB) throw Object.assign(new Error('pdf too large'), { name: 'too_large' });
      blob = file;
      type = 'application/pdf';
      name = nameFor(file, '.pdf');
      const head = new Uint8Array(await file.slice(0, 5).arrayBuffer());
      if (String.fromCharCode(...head) !== '%PDF-') throw Object.assign(new Error('not a PDF'), { name: 'unreadable' });
    } else {
      try {
        ({ blob } = await shrink(file));
      } catch {
        throw Object.assign(new Error('not an image'), { name: 'unreadable' });
      }
      type = 'image/jpeg';
      name = nameFor(file, '.jpg');
    }
    const bytes = await blob.arrayBuffer();
    const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes));
    const kept = new Blob([bytes], { type });
    const ref = { sha256, size: kept.size, content_type: type, name };
    try {
      const tx = write(['uploads', 'cache']);
      const uploads = tx.objectStore('uploads');
      const old = await req(uploads.get(sha256));
      const cached = await req(tx.objectStore('cache').get(sha256));
      // The same photo twice: one upload. Already on the server: nothing to send.
      if (!cached && (!old || old.state === 'failed')) {
        uploads.put({ ...ref, blob: kept, state: 'draft', added_ms: Date.now() });
      }
      await done(tx);
    } catch (e) {
      throw Object.assign(new Error(String(e && e.message)), { name: 'storage' });
    }
    changed(sha256);
    return ref;
  }

  // The record naming these blobs is saved: their uploads may go.
  async function commit(shas) {
    const tx = write(['uploads']);
    const uploads = tx.objectStore('uploads');
    for (const sha of shas) {
      const u = await req(uploads.get(sha));
      if (u && u.state === 'draft') uploads.put({ ...u, state: 'waiting' });
    }
    await done(tx);
    for (const sha of shas) changed(sha);
  }

  async function pendingCount() {
    if (!db) return 0;
    const all = await req(db.transaction('uploads').objectStore('uploads').getAll());
    return all.filter((u) => u.state === 'waiting').length;
  }

  // Bytes known to be on the server, kept for showing; the least recently used go first once
  // the cache is over its limit (in the same transaction as the caller's write).
  async function cachePut(tx, sha256, blob) {
    const cache = tx.objectStore('cache');
    cache.put({ sha256, blob, size: blob.size, used_ms: Date.now() });
    let total = 0;
    const all = await req(cache.getAll());
    for (const e of all) total += e.size;
    all.sort((a, b) => a.used_ms - b.used_ms);
    for (const e of all) {
      if (total <= CACHE_LIMIT || e.sha256 === sha256) continue;
      cache.delete(e.sha256);
      total -= e.size;
    }
  }

  async function markSent(u) {
    const tx = write(['uploads', 'cache']);
    tx.objectStore('uploads').delete(u.sha256);
    await cachePut(tx, u.sha256, u.blob);
    await done(tx);
    sending.delete(u.sha256);
    remote.delete(u.sha256);
    changed(u.sha256);
  }

  async function setUpload(u, fields) {
    const tx = write(['uploads']);
    const store = tx.objectStore('uploads');
    const now = await req(store.get(u.sha256));
    if (now) store.put({ ...now, ...fields });
    await done(tx);
    sending.delete(u.sha256);
    changed(u.sha256);
  }

  const auth = () => ({ Authorization: 'Bearer ' + token });
  async function errorOf(res) {
    try {
      const body = await res.json();
      return (body && body.error) || {};
    } catch {
      return {};
    }
  }

  // One blob: where the server is (GET), then chunks from there (PUT). Answers 'done' (sent
  // or failed for good: the next one may go) or 'stop' (the network, the server or the day's
  // allowance: the run ends and the next sync tries again).
  async function uploadOne(u) {
    const url = '/v1/uploads/' + u.sha256;
    let offset;
    try {
      const res = await fetch(url, { headers: auth(), cache: 'no-store' });
      if (!res.ok) return 'stop';
      const body = await res.json();
      if (body.complete) { await markSent(u); return 'done'; }
      offset = Number(body.offset) || 0;
    } catch {
      return 'stop';
    }
    for (let guard = 0; guard < 10000; ++guard) {
      sending.set(u.sha256, offset / u.size);
      changed(u.sha256);
      let chunk;
      try {
        chunk = u.blob.slice(offset, Math.min(u.size, offset + CHUNK));
        chunk = new Uint8Array(await chunk.arrayBuffer());
      } catch {
        // The bytes are gone from the device (the browser's storage was cleared under us).
        await setUpload(u, { state: 'failed', reason: 'lost' });
        return 'done';
      }
      let res;
      try {
        res = await fetch(url, {
          method: 'PUT',
          headers: { ...auth(), 'Content-Type': u.content_type, 'Upload-Offset': String(offset), 'Upload-Length': String(u.size) },
          body: chunk,
          cache: 'no-store',
        });
      } catch {
        sending.delete(u.sha256);
        changed(u.sha256);
        return 'stop';
      }
      if (res.ok) {
        const body = await res.json().catch(() => ({}));
        if (body.complete) { await markSent(u); return 'done'; }
        offset = Number(body.offset);
        if (!Number.isFinite(offset)) return 'stop';
        continue;
      }
      const err = await errorOf(res);
      if (err.code === 'upload_offset' && Number.isInteger(err.offset)) { offset = err.offset; continue; }
      if (['blob_too_large', 'blob_type_refused', 'blob_hash_mismatch', 'bad_request'].includes(err.code)) {
        await setUpload(u, { state: 'failed', reason: err.code });
        return 'done';
      }
      if (err.code === 'blob_quota') {
        const wait = Number(res.headers.get('Retry-After')) || 3600;
        await setUpload(u, { retry_ms: Date.now() + wait * 1000, reason: 'blob_quota' });
        return 'stop';
      }
      sending.delete(u.sha256);
      changed(u.sha256);
      return 'stop';
    }
    return 'stop';
  }

  // The upload queue, oldest first: after each sync and when the network returns.
  async function run() {
    if (!db || !token) return;
    if (running) { again = true; return; }
    running = true;
    try {
      do {
        again = false;
        const all = await req(db.transaction('uploads').objectStore('uploads').getAll());
        const queue = all.filter((u) => u.state === 'waiting' && !(u.retry_ms > Date.now()))
          .sort((a, b) => a.added_ms - b.added_ms);
        for (const u of queue) {
          if ((await uploadOne(u)) === 'stop') { again = false; break; }
        }
      } while (again);
    } finally {
      running = false;
    }
  }

  // What the cadre reads about one attachment: {state, percent?, reason?}. state is 'draft'
  // (not saved yet), 'waiting', 'sending', 'sent', 'failed', 'missing' (not on the server yet:
  // the device that took it has not sent it), 'offline' (not on this device; no network to
  // fetch it) or 'unknown' (not looked for yet).
  async function state(sha) {
    if (!db) return { state: 'unknown' };
    const tx = db.transaction(['uploads', 'cache']);
    const u = await req(tx.objectStore('uploads').get(sha));
    if (u) {
      if (u.state === 'failed') return { state: 'failed', reason: u.reason };
      if (u.state === 'draft') return { state: 'draft' };
      if (sending.has(sha)) return { state: 'sending', percent: Math.floor(sending.get(sha) * 100) };
      return { state: 'waiting', reason: u.reason === 'blob_quota' && u.retry_ms > Date.now() ? 'blob_quota' : undefined };
    }
    if (await req(tx.objectStore('cache').getKey(sha))) return { state: 'sent' };
    return { state: remote.get(sha) || 'unknown' };
  }

  // The bytes to show: kept on the device, else fetched with the token (and kept in the cache).
  // Answers an object URL, or null (with state() saying why).
  const inflight = new Map();   // sha256 -> the promise of url(), one fetch at a time
  function url(ref) {
    const sha = ref && ref.sha256;
    if (!db || !/^[0-9a-f]{64}$/.test(sha || '')) return Promise.resolve(null);
    if (urls.has(sha)) return Promise.resolve(urls.get(sha));
    if (!inflight.has(sha)) inflight.set(sha, load(sha).finally(() => inflight.delete(sha)));
    return inflight.get(sha);
  }
  async function load(sha) {
    // The cache can be fetched again: no flush to disk for it.
    const tx = db.transaction(['uploads', 'cache'], 'readwrite');
    const u = await req(tx.objectStore('uploads').get(sha));
    const c = u ? null : await req(tx.objectStore('cache').get(sha));
    if (c) tx.objectStore('cache').put({ ...c, used_ms: Date.now() });
    await done(tx);
    let blob = u ? u.blob : c ? c.blob : null;
    if (!blob) {
      try {
        const res = await fetch('/v1/blobs/' + sha, { headers: auth() });
        if (res.status === 404) { remote.set(sha, 'missing'); changed(sha); return null; }
        if (!res.ok) { remote.set(sha, 'offline'); changed(sha); return null; }
        blob = await res.blob();
      } catch {
        remote.set(sha, 'offline');
        changed(sha);
        return null;
      }
      remote.delete(sha);
      const put = db.transaction(['cache'], 'readwrite');
      await cachePut(put, sha, blob);
      await done(put).catch(() => undefined);
      changed(sha);
    }
    if (urls.has(sha)) return urls.get(sha);
    const made = URL.createObjectURL(blob);
    urls.set(sha, made);
    return made;
  }

  self.fieldsyncFiles = {
    open, attach, commit, run, state, url, pendingCount, shrink,
    subscribe: (f) => listeners.add(f),
    MAX_SIDE, CHUNK,
  };
})();
