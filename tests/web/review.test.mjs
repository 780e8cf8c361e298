// The /admin/ review page in a real headless Chromium (issue 5, "Done when"): sign in with a
// reviewer token, open a conflict, pick per field, resolve, see the history; a record whose
// text holds <script> shows as text and runs nothing; a stale answer shows the conflict again.
//
// usage: node review.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
// Starts fieldsync-server on 127.0.0.1:0 with a fresh store seeded through fieldsync-admin
// (units, devices) and the HTTP API (conflicting edits). Exit 0 on success, 1 on failure.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const [serverBin, adminBin, screenshot] = process.argv.slice(2);
if (!serverBin || !adminBin || !screenshot) {
  console.error('usage: node review.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'fieldsync-web-'));
const db = join(dir, 'central.db');
const admin = (...args) => execFileSync(adminBin, ['--db', db, ...args], { encoding: 'utf8' }).trim();

let server;
let browser;

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(serverBin, ['--db', db, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error('fieldsync-server exited with ' + code)));
  });
}

async function sync(base, token, changes) {
  const res = await fetch(base + '/v1/sync', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ batch_id: 'b-' + changes[0].change_id, cursor: '', changes }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).results[0];
}

const put = (change_id, id, base_version, data) =>
  ({ change_id, collection: 'registrations', id, unit_id: 'ap-1', op: 'put', base_version, data });

const record = (extra) => ({
  member: 'm-an', year: 2014, commitments: ['Rời khỏi phòng thì tắt quạt máy, tắt đèn'],
  status: 'draft', notes: '', ...extra,
});

async function main() {
  admin('unit', 'add', '--id', 'giong-trom', '--name', 'Huyện ủy Giồng Trôm', '--kind', 'district');
  admin('unit', 'add', '--id', 'binh-hoa', '--name', 'Đảng bộ xã Bình Hòa', '--kind', 'commune', '--parent', 'giong-trom');
  admin('unit', 'add', '--id', 'ap-1', '--name', 'Chi bộ ấp 1', '--kind', 'cell', '--parent', 'binh-hoa');
  const secretary = admin('device', 'add', '--name', 'Bí thư chi bộ ấp 1', '--unit', 'ap-1');
  const member = admin('device', 'add', '--name', 'Đảng viên Nguyễn Văn An', '--unit', 'ap-1');
  const reviewer = admin('device', 'add', '--name', 'Kiểm tra xã Bình Hòa', '--unit', 'binh-hoa', '--role', 'reviewer');

  const port = await startServer();
  const base = 'http://127.0.0.1:' + port;

  // dk-1: notes and status collide, theme merges. dk-x: the incoming notes hold markup.
  assert.equal((await sync(base, secretary, [put('c1', 'dk-1', 0, record())])).status, 'applied');
  assert.equal((await sync(base, secretary, [put('c2', 'dk-1', 1, record({ notes: 'Chi bộ đề nghị cụ thể hơn', status: 'reviewed' }))])).status, 'applied');
  const c1 = await sync(base, member, [put('c3', 'dk-1', 1, record({ notes: 'Tôi đã bổ sung việc làm cụ thể', status: 'submitted', theme: 'nói đi đôi với làm' }))]);
  assert.equal(c1.status, 'conflict');
  assert.equal((await sync(base, secretary, [put('c4', 'dk-x', 0, record())])).status, 'applied');
  assert.equal((await sync(base, secretary, [put('c5', 'dk-x', 1, record({ notes: 'ý kiến chi bộ' }))])).status, 'applied');
  const c2 = await sync(base, member, [put('c6', 'dk-x', 1, record({ notes: '<script>alert(1)</script><img src=x onerror=alert(2)>' }))]);
  assert.equal(c2.status, 'conflict');

  // A fresh profile in the temp dir (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const problems = [];
  page.on('dialog', async (d) => { problems.push('a dialog opened: ' + d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // Chromium logs every non-2xx fetch ("Failed to load resource"): the expected 409 stale and
  // the favicon's 404 among them. Anything else logged as an error (a CSP violation) fails.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push('console error: ' + m.text());
  });
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));

  // Headers of the page itself.
  const first = await page.goto(base + '/admin/');
  const headers = first.headers();
  assert.match(headers['content-security-policy'], /script-src 'self'/);
  assert.equal(headers['x-content-type-options'], 'nosniff');

  // Vietnamese by default.
  assert.equal(await page.textContent('#signin h2'), 'Đăng nhập');
  await page.fill('#token', reviewer);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#list-view:not([hidden])');
  await page.waitForSelector('#conflicts tbody tr');
  assert.equal(await page.locator('#conflicts tbody tr').count(), 2);
  assert.equal(await page.isVisible('#signin'), false);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('fieldsync.review.token') !== null), true);

  // The markup conflict: shown as text, nothing runs.
  await page.click(`#conflicts tbody tr[data-id="${c2.conflict_id}"] button`);
  await page.waitForSelector('#detail-view:not([hidden])');
  const notesRow = page.locator('#sides tbody tr[data-field="/notes"]');
  assert.equal(await notesRow.getAttribute('class'), 'collide');
  assert.equal(await notesRow.locator('td').nth(3).textContent(), '<script>alert(1)</script><img src=x onerror=alert(2)>');
  assert.equal(await page.locator('#sides script, #sides img').count(), 0);
  await page.click('#back');
  await page.waitForSelector('#list-view:not([hidden])');

  // The other conflict, side by side; colliding fields marked.
  await page.click(`#conflicts tbody tr[data-id="${c1.conflict_id}"] button`);
  await page.waitForSelector('#detail-view:not([hidden])');
  const collide = await page.$$eval('#sides tbody tr.collide', (rows) => rows.map((r) => r.dataset.field));
  assert.deepEqual(collide, ['/notes', '/status']);
  assert.equal(await page.locator('#sides tbody tr[data-field="/theme"]').getAttribute('class'), null);
  assert.match(await page.textContent('#meta'), /Đảng viên Nguyễn Văn An/);
  assert.match(await page.textContent('#meta'), /Bí thư chi bộ ấp 1/);

  // English is available.
  await page.selectOption('#lang', 'en');
  assert.equal(await page.textContent('#keep-head'), 'Keep head');
  await page.selectOption('#lang', 'vi');
  assert.equal(await page.textContent('#keep-head'), 'Giữ bản hiện có');

  // The head moves while the reviewer looks: the answer is stale and the conflict comes back.
  assert.equal((await sync(base, secretary, [put('c7', 'dk-1', 2, record({ notes: 'Chi bộ đề nghị cụ thể hơn', status: 'reviewed', year: 2014, commitments: ['Rời khỏi phòng thì tắt quạt máy, tắt đèn', 'Đi họp đúng giờ'] }))])).status, 'applied');
  await page.check('#pick-rows input[data-pointer="/notes"][value="incoming"]');
  await page.check('#pick-rows input[data-pointer="/status"][value="head"]');
  await page.fill('#note', 'gộp ý hai bên');
  await page.click('#pick');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /đã thay đổi/);
  assert.match(await page.textContent('#meta'), /v3/);

  // Decide again on the current head.
  await page.check('#pick-rows input[data-pointer="/notes"][value="incoming"]');
  await page.check('#pick-rows input[data-pointer="/status"][value="head"]');
  await page.click('#pick');
  // Locator waits, not waitForFunction: the page's CSP forbids the eval that polling needs.
  await page.locator('#message', { hasText: 'Đã giải quyết xung đột.' }).waitFor();
  await page.locator('#history tbody tr').nth(3).waitFor();
  assert.equal(await page.locator('#history tbody tr').count(), 4);
  const last = await page.$$eval('#history tbody tr:last-child td', (tds) => tds.map((td) => td.textContent));
  assert.equal(last[0], '4');
  assert.equal(last[1], 'giải quyết');
  assert.match(last[4], /Tôi đã bổ sung việc làm cụ thể/);
  assert.match(last[4], /"status": "reviewed"/);
  assert.match(await page.textContent('#detail-title'), /đã giải quyết/);

  const head = await (await fetch(base + '/v1/records/registrations/dk-1', { headers: { Authorization: 'Bearer ' + reviewer } })).json();
  assert.equal(head.version, 4);
  assert.equal(head.data.notes, 'Tôi đã bổ sung việc làm cụ thể');
  assert.equal(head.data.status, 'reviewed');
  assert.equal(head.data.theme, 'nói đi đôi với làm');

  assert.equal(await page.isVisible('#signin'), false);
  assert.equal(await page.isVisible('#list-view'), false);
  await page.screenshot({ path: screenshot, fullPage: true });

  // The token never appeared in a URL.
  for (const url of requested) assert.ok(!url.includes(reviewer), 'the token appeared in ' + url);
  assert.deepEqual(problems, []);
  console.log('web review test passed; screenshot: ' + screenshot);
}

try {
  await main();
} catch (e) {
  console.error('web review test FAILED:', e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
