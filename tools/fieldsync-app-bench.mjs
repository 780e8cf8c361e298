// The field app's figures (issue 15's closing note), measured in Debian's headless Chromium
// against a real fieldsync-server on a loopback port:
//   - the app's download: every file the app loads, raw and gzipped;
//   - first load online (the enrolment link opened in a fresh profile, until the work screen
//     shows) and load offline (reloaded with no network, from the service worker's cache);
//   - the initial sync of a cell's records into the app (seconds; peak memory: the
//     WebAssembly memory and the browser's resident memory, all its processes);
//   - save latency: the form's "Lưu" clicked until the page says saved (median, p95).
//
// usage: node tools/fieldsync-app-bench.mjs SERVER_BINARY ADMIN_BINARY [RECORDS (1000)] [SAVES (20)]
// (playwright-core from tests/web: `npm ci` there first; `tools/dev build` does it.)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const { chromium } = await import(new URL('../tests/web/node_modules/playwright-core/index.mjs', import.meta.url));
const [serverBin, adminBin, recordsArg, savesArg] = process.argv.slice(2);
if (!serverBin || !adminBin) {
  console.error('usage: node tools/fieldsync-app-bench.mjs SERVER_BINARY ADMIN_BINARY [RECORDS] [SAVES]');
  process.exit(2);
}
const RECORDS = Number(recordsArg || 1000);
const SAVES = Number(savesArg || 20);
const dir = mkdtempSync(join(tmpdir(), 'fieldsync-app-bench-'));
const db = join(dir, 'central.db');
const admin = (...args) => execFileSync(adminBin, ['--db', db, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
const ms = (t0) => Math.round(performance.now() - t0);
const mib = (b) => (b / 1048576).toFixed(1) + ' MiB';

function startServer() {
  return new Promise((resolve, reject) => {
    const server = spawn(serverBin, ['--db', db, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) resolve({ server, base: 'http://127.0.0.1:' + m[1] });
    });
    server.on('exit', (code) => reject(new Error('fieldsync-server exited with ' + code)));
  });
}

// Resident memory of every process of the browser's profile (its renderers and workers too).
function browserRss(profile) {
  try {
    const pids = execFileSync('pgrep', ['-f', profile], { encoding: 'utf8' }).trim().split('\n');
    let kib = 0;
    for (const pid of pids) {
      try {
        kib += Number(execFileSync('ps', ['-o', 'rss=', '-p', pid], { encoding: 'utf8' }).trim()) || 0;
      } catch { /* gone */ }
    }
    return kib * 1024;
  } catch {
    return 0;
  }
}

async function seed(base, token) {
  // A cell's records: a fifth members, the rest their registrations, in change-sets of 500.
  const members = Math.max(1, Math.round(RECORDS / 5));
  const changes = [];
  for (let i = 0; i < RECORDS; ++i) {
    const id = `0193b000-0000-7000-8000-${String(i).padStart(12, '0')}`;
    const m = i % members;
    const data = i < members
      ? { name: `Đảng viên số ${i + 1} ấp Tân Lợi`, cell: 'ap-1', role: 'Đảng viên' }
      : { member: `0193b000-0000-7000-8000-${String(m).padStart(12, '0')}`, year: 2026 - Math.floor(i / members) + 1,
          commitments: ['Tham gia đầy đủ sinh hoạt chi bộ', 'Giúp một hộ khó khăn trong ấp'], status: 'submitted' };
    changes.push({ change_id: 'seed-' + i, collection: i < members ? 'members' : 'registrations', id, unit_id: 'ap-1',
      op: 'put', base_version: 0, data });
  }
  for (let i = 0; i < changes.length; i += 500) {
    const res = await fetch(base + '/v1/sync', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ batch_id: 'seed-' + i, cursor: '', changes: changes.slice(i, i + 500) }),
    });
    if (res.status !== 200) throw new Error('seed: ' + res.status);
  }
}

async function download(base) {
  const files = ['', 'app.js', 'work.js', 'replica-client.js', 'style.css', 'manifest.webmanifest', 'sw.js',
    'replica-worker.js', 'fieldsync-replica.js', 'fieldsync-replica.wasm'];
  let raw = 0;
  let gz = 0;
  for (const f of files) {
    const body = Buffer.from(await (await fetch(base + '/app/' + f, { headers: { 'Accept-Encoding': 'identity' } })).arrayBuffer());
    raw += body.length;
    gz += gzipSync(body, { level: 9 }).length;
  }
  return { raw, gz, count: files.length };
}

let server;
let context;
try {
  admin('init');
  admin('unit', 'add', '--id', 'giong-trom', '--name', 'Huyện ủy Giồng Trôm', '--kind', 'district');
  admin('unit', 'add', '--id', 'binh-hoa', '--name', 'Đảng bộ xã Bình Hòa', '--kind', 'commune', '--parent', 'giong-trom');
  admin('unit', 'add', '--id', 'ap-1', '--name', 'Chi bộ ấp Tân Lợi', '--kind', 'cell', '--parent', 'binh-hoa');
  const office = admin('device', 'add', '--name', 'Văn phòng Huyện ủy', '--unit', 'giong-trom');
  let base;
  ({ server, base } = await startServer());
  const link = admin('device', 'add', '--name', 'Bí thư chi bộ ấp Tân Lợi', '--unit', 'ap-1', '--enrol', '--server', base);
  await seed(base, office);
  const size = await download(base);

  const profile = join(dir, 'chromium-profile');
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 390, height: 844 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await context.newPage();

  // First load online, then the initial sync of the cell's records, sampling memory.
  let peakRss = browserRss(profile);
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, browserRss(profile)); }, 100);
  const t0 = performance.now();
  await page.goto(link);
  await page.locator('#work:not([hidden])').waitFor({ timeout: 60000 });
  const firstLoad = ms(t0);
  const t1 = performance.now();
  await page.locator('#sync-message', { hasText: 'Đồng bộ xong' }).waitFor({ timeout: 300000 });
  const initialSync = ms(t1);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, browserRss(profile));
  const wasm = await page.evaluate(() => self.fieldsyncReplica.call('stats', {}));
  const held = await page.evaluate(() => Promise.all([
    self.fieldsyncReplica.call('list', { collection: 'members' }),
    self.fieldsyncReplica.call('list', { collection: 'registrations' })]).then(([a, b]) => a.length + b.length));

  // Load offline: reloaded with no network, until the list shows.
  await context.setOffline(true);
  const t2 = performance.now();
  await page.reload();
  await page.locator('#records li').first().waitFor({ timeout: 60000 });
  const offlineLoad = ms(t2);

  // Saves: a new registration each, offline (nothing else runs meanwhile).
  const saves = [];
  for (let i = 0; i < SAVES; ++i) {
    await page.click('#new-record');
    await page.selectOption('#f-member', { index: 1 + (i % 10) });
    await page.locator('#f-commitments input').first().fill('Việc làm cụ thể số ' + (i + 1));
    const t = performance.now();
    await page.click('#save');
    await page.locator('#save-message', { hasText: 'Đã lưu trên máy' }).waitFor();
    saves.push(performance.now() - t);
  }
  saves.sort((a, b) => a - b);
  const pick = (q) => Math.round(saves[Math.min(saves.length - 1, Math.floor(q * saves.length))]);

  console.log(`app download: ${size.count} files, ${(size.raw / 1024).toFixed(0)} KiB raw, ${(size.gz / 1024).toFixed(0)} KiB gzipped`);
  console.log(`first load online (enrolment link, fresh profile, until the work screen shows): ${firstLoad} ms`);
  console.log(`initial sync of ${RECORDS} records into the app (the replica then holds ${held}): ${(initialSync / 1000).toFixed(2)} s`);
  console.log(`peak memory during it: WebAssembly ${mib(wasm.wasm_bytes)}, browser (all processes, resident) ${mib(peakRss)}`);
  console.log(`load offline (reload, service worker, until the list shows): ${offlineLoad} ms`);
  console.log(`save latency over ${SAVES} saves (click to "saved"): median ${pick(0.5)} ms, p95 ${pick(0.95)} ms`);
} finally {
  if (context) await context.close();
  if (server) server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
