// The replica in a Web Worker: the client library (C++, compiled to WebAssembly as
// fieldsync-replica.wasm) with its file in the browser's origin-private file system.
//
// The page talks to it with messages (replica-client.js): {id, op, args} in, {id, ok, value}
// or {id, ok: false, error: {code, name, message}} out, and {progress} during a sync. Every op
// runs to its end before the next starts (one worker, one thread), so a put that has
// answered is in the file: the VFS (opfs_vfs.c) flushes the access handles when SQLite
// syncs, before the C call returns.
'use strict';

importScripts('fieldsync-replica.js');

// fieldsync.h's fs_errc, by value.
const ERRC = ['ok', 'invalid_argument', 'invalid_json', 'invalid_utf8', 'schema_violation', 'not_found',
  'not_configured', 'storage', 'network', 'timeout', 'server_unavailable', 'unauthorized', 'forbidden',
  'bad_request', 'bad_response', 'cancelled', 'busy', 'unsupported', 'internal', 'server_too_old',
  'client_too_old', 'tls'];
const STATES = { 0: 'synced', 1: 'pending', 2: 'conflict', 3: 'rejected' };
const REPORT_FIELDS = ['pushed', 'applied', 'merged', 'conflicts', 'rejected', 'pulled', 'bytes_sent',
  'bytes_received', 'duration_ms', 'decided'];
// Headers a browser sets itself and refuses from a script.
const FORBIDDEN_HEADERS = new Set(['accept-encoding', 'connection', 'content-length', 'host', 'user-agent']);

// A file kept in memory: for SQLite's temporary files, and for the replica itself where the
// browser has no origin-private file system (then nothing survives the worker).
class MemoryFile {
  constructor() { this.bytes = new Uint8Array(0); this.length = 0; }
  getSize() { return this.length; }
  read(view, { at }) {
    const n = Math.max(0, Math.min(view.length, this.length - at));
    view.set(this.bytes.subarray(at, at + n));
    return n;
  }
  write(view, { at }) {
    const end = at + view.length;
    if (end > this.bytes.length) {
      const grown = new Uint8Array(Math.max(end, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    this.bytes.set(view, at);
    this.length = Math.max(this.length, end);
    return view.length;
  }
  truncate(size) {
    if (size > this.bytes.length) this.write(new Uint8Array(size - this.length), { at: this.length });
    this.length = size;
  }
  flush() {}
  close() {}
}

// The files SQLite opens through opfs_vfs.c, by name, and the open ones by number.
const files = {
  byName: new Map(),   // name -> {handle, durable}
  open: new Map(),     // id -> entry
  nextId: 1,
  guard(fn, failed) {
    try { return fn(); } catch (e) { console.error('fieldsync file:', e); return failed; }
  },
  // The calls of opfs_vfs.c.
  api: {
    open: (name, create) => files.guard(() => {
      let entry = files.byName.get(name);
      if (!entry) {
        if (!create) return -1;
        entry = { handle: new MemoryFile(), durable: false };
        files.byName.set(name, entry);
      }
      const id = files.nextId++;
      files.open.set(id, entry);
      return id;
    }, -1),
    close: (id) => { files.open.delete(id); return 0; },
    read: (id, view, at) => files.guard(() => files.open.get(id).handle.read(view, { at }), -1),
    write: (id, view, at) => files.guard(() => files.open.get(id).handle.write(view, { at }), -1),
    truncate: (id, size) => files.guard(() => { files.open.get(id).handle.truncate(size); return 0; }, -1),
    flush: (id) => files.guard(() => { files.open.get(id).handle.flush(); return 0; }, -1),
    size: (id) => files.guard(() => files.open.get(id).handle.getSize(), -1),
    // An access handle's file cannot be removed synchronously: emptied, it "does not exist".
    remove: (name) => files.guard(() => {
      const entry = files.byName.get(name);
      if (!entry) return 0;
      if (entry.durable) {
        entry.handle.truncate(0);
        entry.handle.flush();
      } else {
        files.byName.delete(name);
      }
      return 0;
    }, -1),
    sizeOf: (name) => files.guard(() => {
      const entry = files.byName.get(name);
      return entry ? entry.handle.getSize() : 0;
    }, 0),
  },
};

// Opens the replica's file and its journal in the origin-private file system (asynchronous,
// so before SQLite asks for them). False where the browser has none.
async function openDurable(name) {
  if (!(self.navigator && navigator.storage && navigator.storage.getDirectory)) return false;
  const names = [name, name + '-journal'];
  try {
    const root = await navigator.storage.getDirectory();
    for (const n of names) {
      if (files.byName.has(n)) continue;
      const file = await root.getFileHandle(n, { create: true });
      files.byName.set(n, { handle: await file.createSyncAccessHandle(), durable: true });
    }
    return true;
  } catch (e) {
    // Both files durable or neither: a journal in memory beside a file on disk could not
    // roll back a transaction cut by a kill.
    for (const n of names) {
      const entry = files.byName.get(n);
      if (entry && entry.durable) entry.handle.close();
      files.byName.delete(n);
    }
    throw e;
  }
}

// The transport's seam (op `network`): 'on'; 'off' (nothing is sent, as with no signal);
// 'lose_next_answer' (the next request reaches the server, its answer is dropped, as when
// the signal goes while the server answers; then 'on'). The conformance scenarios use it
// (tests/conformance/); an app may use 'off' to hold its syncs.
let network = 'on';

// One HTTP request for the library (bridge.c's transport): a synchronous XMLHttpRequest,
// which a worker may make. 0 with the response set, 1 when no answer came.
function send(M, method, url, headers, body, timeoutMs, response) {
  if (network === 'off') return 1;
  try {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url, false);
    xhr.responseType = 'arraybuffer';
    if (timeoutMs > 0) xhr.timeout = timeoutMs;
    for (const line of headers.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim();
      if (!FORBIDDEN_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, line.slice(colon + 1).trim());
    }
    xhr.send(method === 'GET' || method === 'HEAD' ? null : body);
    if (xhr.status === 0) return 1;
    if (network === 'lose_next_answer') {
      network = 'on';
      return 1;
    }
    const bytes = new Uint8Array(xhr.response || new ArrayBuffer(0));
    const p = M._malloc(bytes.length + 1);
    M.HEAPU8.set(bytes, p);
    M._fs_http_response_set(response, xhr.status, p, bytes.length);
    M._free(p);
    return 0;
  } catch (e) {
    return 1;
  }
}

let M = null;          // the WebAssembly module
let replica = 0;       // fs_replica*
let durable = false;   // the replica's file is in the origin-private file system

const ready = createFieldsync({
  fieldsyncFiles: files.api,
  fieldsyncSend: (...args) => send(M, ...args),
  fieldsyncProgress: (phase, pushed, toPush, pulled, sent, received) => {
    postMessage({ progress: { phase: ['push', 'pull'][phase] || 'wait', pushed, to_push: toPush, pulled, sent, received } });
    return 1;
  },
}).then((module) => { M = module; });

// ---- Calling the C ABI ----

function cstr(s) {
  if (s === null || s === undefined) return 0;
  const n = M.lengthBytesUTF8(s) + 1;
  const p = M._malloc(n);
  M.stringToUTF8(s, p, n);
  return p;
}

class ReplicaError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
    this.name = ERRC[code] || 'internal';
  }
}

// Calls `fn(...pointers, errorPointer)` with the strings of `args` as C strings; `unwrap` reads
// the result (and may throw the error read from the fs_error).
function call(fn, args, unwrap) {
  const err = M._malloc(M._fsw_sizeof_error());
  M.HEAP32[err >> 2] = 0;
  const ptrs = args.map((a) => (typeof a === 'number' ? a : cstr(a)));
  try {
    const out = fn(...ptrs, err);
    const failure = () => new ReplicaError(M.HEAP32[err >> 2], M.UTF8ToString(err + 4));
    return unwrap(out, failure, M.HEAP32[err >> 2]);
  } finally {
    args.forEach((a, i) => { if (typeof a !== 'number' && ptrs[i]) M._free(ptrs[i]); });
    M._free(err);
  }
}

// A returned char*: its text (freed), or the error when NULL and the error is set.
function text(out, failure, code) {
  if (!out) {
    if (code !== 0) throw failure();
    return null;
  }
  const s = M.UTF8ToString(out);
  M._fs_free(out);
  return s;
}

function rc(out, failure) {
  if (out !== 0) throw failure();
  return true;
}

function need() {
  if (!replica) throw new ReplicaError(6, 'the replica is not open');
}

const ops = {
  // Opens (creating) the replica file `name`. Answers {durable, version}.
  async open({ name = 'fieldsync.db' } = {}) {
    if (replica) return { durable, version: M.UTF8ToString(M._fs_version()) };
    durable = await openDurable(name).catch((e) => {
      // Another tab holds the file (an access handle is exclusive): a storage error. Any
      // other failure (no origin-private file system here, e.g. plain http on another host)
      // leaves the replica in memory, and `durable: false` says so.
      if (e && e.name === 'NoModificationAllowedError') {
        throw new ReplicaError(7, 'the replica file is in use by another window: ' + e.message);
      }
      return false;
    });
    replica = call(M._fsw_open, [name], (out, failure) => {
      if (!out) throw failure();
      return out;
    });
    return { durable, version: M.UTF8ToString(M._fs_version()) };
  },
  configure({ url, token }) {
    need();
    return call((u, t, e) => M._fs_replica_configure(replica, u, t, e), [url, token], rc);
  },
  put({ collection, id = '', unit_id = null, data }) {
    need();
    return call((c, i, u, j, e) => M._fs_replica_put(replica, c, i, u, j, e),
      [collection, id, unit_id, JSON.stringify(data)], text);
  },
  patch({ collection, id, patch }) {
    need();
    return call((c, i, p, e) => M._fs_replica_patch(replica, c, i, p, e), [collection, id, JSON.stringify(patch)], rc);
  },
  remove({ collection, id }) {
    need();
    return call((c, i, e) => M._fs_replica_remove(replica, c, i, e), [collection, id], rc);
  },
  discard({ collection, id }) {
    need();
    return call((c, i, e) => M._fs_replica_discard(replica, c, i, e), [collection, id], rc);
  },
  get({ collection, id }) {
    need();
    const s = call((c, i, e) => M._fs_replica_get(replica, c, i, e), [collection, id], text);
    return s === null ? null : JSON.parse(s);
  },
  list({ collection, unit_id = null, field = null, value = undefined }) {
    need();
    const v = value === undefined ? null : JSON.stringify(value);
    return JSON.parse(call((c, u, f, j, e) => M._fs_replica_list(replica, c, u, f, j, e),
      [collection, unit_id, field, v], text));
  },
  // The app's own settings (its enrolment: the device and its token), kept durably beside
  // the replica: localStorage reaches the disk lazily, and a browser killed soon after
  // would forget the device, stranding its unsent records. With `value`, writes it (flushed
  // before the answer); without, reads it (null when none).
  async settings({ value } = {}) {
    const root = await navigator.storage.getDirectory();
    const file = await root.getFileHandle('fieldsync-app.json', { create: true });
    const h = await file.createSyncAccessHandle();
    try {
      if (value !== undefined) {
        const bytes = new TextEncoder().encode(JSON.stringify(value));
        h.truncate(0);
        h.write(bytes, { at: 0 });
        h.flush();
        return value;
      }
      const size = h.getSize();
      if (!size) return null;
      const bytes = new Uint8Array(size);
      h.read(bytes, { at: 0 });
      return JSON.parse(new TextDecoder().decode(bytes));
    } finally {
      h.close();
    }
  },
  // The replica at a glance: pending, conflicts, rejected, records, cursor, server_url.
  status() {
    need();
    return JSON.parse(call((e) => M._fs_replica_status(replica, e), [], text));
  },
  // The module's memory now (WebAssembly memory only grows: its peak), for benchmarks.
  stats() {
    return { wasm_bytes: M.HEAPU8.length };
  },
  // The records whose change the server held or refused, deleted ones included.
  held({ collection = null } = {}) {
    need();
    return JSON.parse(call((c, e) => M._fs_replica_list_held(replica, c, e), [collection], text));
  },
  state({ collection, id }) {
    need();
    const s = call((c, i, e) => M._fs_replica_record_state(replica, c, i, e), [collection, id], (out) => out);
    return STATES[s] || null;
  },
  pending() {
    need();
    // An int64 return reaches JavaScript as its low 32 bits (counts stay far below 2^31).
    return call((e) => M._fs_replica_pending_count(replica, e), [], (out, failure) => {
      if (out < 0) throw failure();
      return out;
    });
  },
  sync() {
    need();
    const report = M._malloc(M._fsw_sizeof_report());
    try {
      return call((e) => M._fsw_sync(replica, report, e), [], (out, failure) => {
        if (out !== 0) throw failure();
        const r = {};
        REPORT_FIELDS.forEach((k, i) => {
          const lo = M.HEAPU32[(report >> 2) + 2 * i];
          const hi = M.HEAP32[(report >> 2) + 2 * i + 1];
          r[k] = hi * 4294967296 + lo;
        });
        return r;
      });
    } finally {
      M._free(report);
    }
  },
  network({ mode }) {
    if (!['on', 'off', 'lose_next_answer'].includes(mode)) throw new ReplicaError(1, 'no network mode ' + mode);
    network = mode;
    return true;
  },
  network({ mode }) {
    if (!['on', 'off', 'lose_next_answer'].includes(mode)) throw new ReplicaError(1, 'no network mode ' + mode);
    network = mode;
    return true;
  },
  close() {
    if (replica) M._fs_replica_close(replica);
    replica = 0;
    for (const entry of files.byName.values()) if (entry.durable) entry.handle.close();
    files.byName.clear();
    return true;
  },
};

// One op at a time, in the order they came.
let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  const { id, op, args } = data || {};
  queue = queue.then(() => ready).then(async () => {
    if (!Object.hasOwn(ops, op)) throw new ReplicaError(1, 'no operation ' + op);
    return ops[op](args || {});
  }).then(
    (value) => postMessage({ id, ok: true, value }),
    (e) => postMessage({ id, ok: false, error: { code: e.code || 18, name: e.name || 'internal', message: String(e.message || e) } }));
};
