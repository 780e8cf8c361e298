// Posts the records fieldsync-bench pushes (study sessions of about 200 bytes of JSON, as
// record_data in tools/fieldsync-bench-common.cpp makes them) to a PouchDB Server's _bulk_docs,
// from a few concurrent clients, and prints one figure line:
//   pouchdb _bulk_docs: N docs, S s: R docs/s
// Usage: node bench.mjs --url http://127.0.0.1:PORT [--docs 200000] [--batch 1000] [--clients 4]

import { randomBytes } from 'node:crypto';

const args = { url: '', docs: 200000, batch: 1000, clients: 4, db: 'fieldsync_bench' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  const value = process.argv[i + 1];
  if (!(key in args) || value === undefined) {
    console.error('usage: node bench.mjs --url URL [--docs N] [--batch B] [--clients C] [--db NAME]');
    process.exit(2);
  }
  args[key] = typeof args[key] === 'number' ? Number(value) : value;
}
if (!args.url || !(args.docs > 0) || !(args.batch > 0) || !(args.clients > 0)) {
  console.error('bench.mjs: --url and positive --docs, --batch, --clients are needed');
  process.exit(2);
}

// record_data(i) of fieldsync-bench, in JavaScript: the same fields and padding, so both
// servers store the same bytes per record.
const recordBytes = 200;
const communes = ['Bình Hòa', 'Bình Thành', 'Châu Bình', 'Châu Hòa', 'Hưng Lễ', 'Hưng Nhượng', 'Hưng Phong',
  'Long Mỹ', 'Lương Hòa', 'Lương Phú', 'Lương Quới', 'Mỹ Thạnh', 'Phong Mỹ', 'Phong Nẫm', 'Phước Long', 'Sơn Phú',
  'Tân Hào', 'Tân Lợi Thạnh', 'Tân Thanh', 'Thạnh Phú Đông', 'Thuận Điền'];
const audiences = ['giáo viên', 'đảng viên', 'cán bộ xã', 'học sinh trung học phổ thông'];
const pad2 = (n) => String(n).padStart(2, '0');

function recordJson(i) {
  const invited = 20 + (i % 80);
  const attended = invited - (i % 7);
  let s = `{"unit":"xa-${i % communes.length}","date":"2014-${pad2(1 + (i % 12))}-${pad2(1 + (i % 28))}",` +
    `"audience":"${audiences[i % audiences.length]}","invited":${invited},"attended":${attended},` +
    `"notes":"Học tập chuyên đề tại xã ${communes[i % communes.length]} #${i}`;
  // Byte length, as the C++ pads bytes; the padding is ASCII, and the closing `"}` is 2 bytes.
  const bytes = Buffer.byteLength(s);
  if (bytes + 2 < recordBytes) s += '.'.repeat(recordBytes - 2 - bytes);
  return JSON.parse(s + '"}');
}

// Time-ordered ids (UUIDv7), as fieldsync's devices make them by default: a B-tree's inserts
// land near its right edge in both stores.
let lastMs = 0;
let seq = 0;
function uuidv7() {
  const ms = Date.now();
  seq = ms === lastMs ? seq + 1 : 0;
  lastMs = ms;
  const b = randomBytes(16);
  b.writeUIntBE(ms, 0, 6);
  b[6] = 0x70 | ((seq >> 8) & 0x0f);
  b[7] = seq & 0xff;
  b[8] = 0x80 | (b[8] & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function request(method, path, body) {
  const res = await fetch(args.url + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function client(begin, end, totals) {
  for (let first = begin; first < end; first += args.batch) {
    const last = Math.min(end, first + args.batch);
    const docs = [];
    for (let i = first; i < last; ++i) docs.push({ _id: uuidv7(), ...recordJson(i) });
    const answer = await request('POST', `/${args.db}/_bulk_docs`, { docs });
    for (const r of answer) {
      if (r.ok) ++totals.ok;
      else {
        ++totals.failed;
        totals.firstError ??= JSON.stringify(r);
      }
    }
  }
}

await request('PUT', `/${args.db}`);
const totals = { ok: 0, failed: 0, firstError: undefined };
const t0 = process.hrtime.bigint();
const clients = [];
for (let c = 0; c < args.clients; ++c) {
  const begin = Math.floor((args.docs * c) / args.clients);
  const end = Math.floor((args.docs * (c + 1)) / args.clients);
  clients.push(client(begin, end, totals));
}
await Promise.all(clients);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const info = await request('GET', `/${args.db}`);
console.log(`pouchdb _bulk_docs: ${totals.ok} docs, ${seconds.toFixed(2)} s: ${Math.round(totals.ok / seconds)} docs/s` +
  ` (${args.clients} clients, ${args.batch} docs per request, ${totals.failed} failed; the database holds` +
  ` ${info.doc_count} docs)`);
if (totals.failed > 0 || info.doc_count !== args.docs) {
  console.error(`bench.mjs: not every doc was stored; first failure: ${totals.firstError ?? 'none'}`);
  process.exit(1);
}
