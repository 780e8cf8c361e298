// The field app (SPEC.md, "GET /app/"). This first part enrols the device: the link an
// administrator makes (`fieldsync-admin device enrol`) carries a one-time code in its
// fragment (#enrol=CODE), which no browser sends to a server. The app makes the device's token
// itself, exchanges the code for it (POST /v1/enrol), and keeps it in localStorage; the token
// is never put in a URL or in the page. A code and its token are kept until the server has
// answered, so an answer lost to a bad network is asked for again with the same token, and the
// server answers it again instead of calling the code used.
'use strict';

const KEY_DEVICE = 'fieldsync.device';        // {token, device, unit, enrolled_ms}
const KEY_PENDING = 'fieldsync.enrolment';    // {code, token}: an exchange not yet answered

// The server's refusals, in the cadre's words (SPEC.md, "Errors" and "Enrolment").
const REFUSALS = {
  enrolment_used: 'Mã ghi danh này đã được dùng. Xin cán bộ phụ trách cấp một mã mới.',
  enrolment_expired: 'Mã ghi danh này đã hết hạn, hoặc thiết bị đã bị thu hồi. '
    + 'Xin cán bộ phụ trách cấp một mã mới.',
  not_found: 'Không có mã ghi danh này. Kiểm tra lại từng chữ, hoặc xin cán bộ phụ trách cấp một mã mới.',
  bad_request: 'Mã ghi danh có 16 chữ và số (không kể dấu gạch). Kiểm tra lại rồi nhập lại.',
};
const USED_WHILE_ENROLLED = 'Mã ghi danh này đã được dùng. Thiết bị vẫn giữ ghi danh dưới đây.';
const OFFLINE = 'Không kết nối được với máy chủ. Khi có mạng, ứng dụng sẽ tự thử lại; '
  + 'đồng chí cũng có thể bấm “Thử lại”.';
const BUSY = 'Máy chủ đang bận hoặc gặp sự cố. Bấm “Thử lại” sau ít phút.';

// The replica's worker (replica-client.js), shared with the work screens (work.js). It also
// keeps the enrolment durably: localStorage alone may lose it to a browser killed soon after.
const replica = new self.FieldsyncReplica('replica-worker.js');
self.fieldsyncReplica = replica;

const $ = (id) => document.getElementById(id);
// Names are shown in NFC: a name typed on another device may arrive decomposed (NFD), which
// some fonts draw with the marks apart from their letters.
const nfc = (s) => (typeof s === 'string' ? s.normalize('NFC') : '');

function show(...ids) {
  for (const id of ['enrol-form', 'enrolling', 'retry', 'device']) $(id).hidden = !ids.includes(id);
}

function say(text, kind) {
  const m = $('message');
  m.textContent = text;
  m.className = kind || '';
}

function readJSON(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch {
    return null;
  }
}

// A token of the form every fieldsync token has: "fs1_" and 32 random bytes in hex.
function newToken() {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return 'fs1_' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The exchange for `code`: the one kept for it if there is one (its answer may have been
// lost), else a new one with a new token.
function pendingFor(code) {
  const kept = readJSON(KEY_PENDING);
  if (kept && kept.code === code && typeof kept.token === 'string') return kept;
  const pending = { code, token: newToken() };
  localStorage.setItem(KEY_PENDING, JSON.stringify(pending));
  return pending;
}

function showDevice(record) {
  $('device-name').textContent = nfc(record.device && record.device.name);
  $('device-unit').textContent = nfc(record.unit && record.unit.name) || nfc(record.device && record.device.unit_id);
  $('device-since').textContent = new Date(record.enrolled_ms).toLocaleString('vi-VN');
  show('device');
  // The work screens (work.js): the records, their forms and their sync.
  if (self.fieldsyncWork) self.fieldsyncWork.start(record);
}

function showForm() {
  show('enrol-form');
}

async function enrol(pending) {
  show('enrolling');
  say('');
  let res;
  try {
    res = await fetch('/v1/enrol', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ code: pending.code, token: pending.token }),
      cache: 'no-store',
    });
  } catch {
    say(OFFLINE, 'error');
    show('retry');
    return;
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (res.ok && body && body.device) {
    const record = { token: pending.token, device: body.device, unit: body.unit, enrolled_ms: Date.now() };
    localStorage.setItem(KEY_DEVICE, JSON.stringify(record));
    await replica.call('settings', { value: { device: record } }).catch(() => undefined);
    localStorage.removeItem(KEY_PENDING);
    say('Ghi danh thành công.', 'ok');
    showDevice(record);
    return;
  }
  const code = body && body.error && body.error.code;
  if (code === 'rate_limited') {
    const wait = Number(res.headers.get('Retry-After')) || 60;
    say(`Đã nhập sai quá nhiều lần từ mạng này. Chờ ${wait} giây rồi bấm “Thử lại”.`, 'error');
    show('retry');
    return;
  }
  if (REFUSALS[code]) {
    // Final: this code will not work. The exchange is forgotten; the device keeps what it had.
    localStorage.removeItem(KEY_PENDING);
    const record = readJSON(KEY_DEVICE);
    if (record && record.token) {
      say(code === 'enrolment_used' ? USED_WHILE_ENROLLED : REFUSALS[code], 'error');
      showDevice(record);
    } else {
      say(REFUSALS[code], 'error');
      showForm();
    }
    return;
  }
  say(BUSY, 'error');
  show('retry');
}

function start() {
  const link = /(?:^#|&)enrol=([^&]*)/.exec(location.hash);
  if (link) {
    // The code leaves the address bar and the history at once.
    history.replaceState(null, '', location.pathname + location.search);
    enrol(pendingFor(decodeURIComponent(link[1]).trim()));
    return;
  }
  const kept = readJSON(KEY_PENDING);
  if (kept) {
    enrol(kept);
    return;
  }
  const record = readJSON(KEY_DEVICE);
  if (record && record.token) {
    showDevice(record);
    return;
  }
  // Not in localStorage (a browser killed before it wrote it): the durable copy, if any.
  replica.call('settings').then((kept) => {
    if (kept && kept.device && kept.device.token) {
      localStorage.setItem(KEY_DEVICE, JSON.stringify(kept.device));
      showDevice(kept.device);
    } else {
      showForm();
    }
  }, () => showForm());
}

$('enrol-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const code = $('code').value.trim();
  if (!code) return;
  enrol(pendingFor(code));
});
$('retry-button').addEventListener('click', () => {
  const kept = readJSON(KEY_PENDING);
  if (kept) enrol(kept);
  else showForm();
});
// A link opened while the app is open changes only the fragment: no new page loads.
window.addEventListener('hashchange', start);
window.addEventListener('online', () => {
  if (!$('retry').hidden) $('retry-button').click();
});

// The app's files are kept for offline starts (sw.js). Browsers allow service workers on
// https and on 127.0.0.1/localhost only; elsewhere the app works online.
if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => undefined);

start();
