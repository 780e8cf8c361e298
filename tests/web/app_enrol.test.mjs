// The field app's enrolment (/app/) in a real headless Chromium (SPEC.md, "Enrolment"): a
// typed code, wrong then right; a link opened on a 390×844 phone; the app reloaded with no
// network; the same link again; an answer lost on the way and asked for again. The token is made by the page and never shows
// in a URL, the page's HTML or a request's URL; refusals change nothing, and the devices sync
// afterwards with what they hold.
//
// usage: node app_enrol.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
// Writes SCREENSHOT_PNG (the phone, enrolled) and beside it -laptop.png (a wrong code typed
// on a 1366×768 laptop) and -used.png (the same link opened twice). Exit 0 on success.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { WebTest } from './harness.mjs';

const t = new WebTest('app_enrol.test.mjs');
const admin = (...args) => execFileSync(t.adminBin, ['--db', t.db, ...args], { encoding: 'utf8' }).trim();
const beside = (suffix) => t.screenshot.replace(/\.png$/, '') + suffix;

// Names stored decomposed (NFD), as some phones' keyboards write them; the page shows NFC.
const SECRETARY = 'Bí thư chi bộ ấp Tân Lợi';
const LAPTOP = 'Máy tính văn phòng Đảng ủy xã Bình Hòa';
const CELL = 'Chi bộ ấp Tân Lợi';

async function stored(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('fieldsync.device')));
}

async function api(base, method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

// No sideways scrolling, and every visible button and input at least 44 px high.
async function checkLayout(page) {
  const fit = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(fit.scroll <= fit.inner, `the page scrolls sideways: ${fit.scroll} > ${fit.inner}`);
  const small = await page.evaluate(() => [...document.querySelectorAll('button, input')]
    .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
    .map((e) => e.id || e.textContent));
  assert.deepEqual(small, [], 'touch targets under 44 px');
}

async function main() {
  admin('unit', 'add', '--id', 'giong-trom', '--name', 'Huyện ủy Giồng Trôm', '--kind', 'district');
  admin('unit', 'add', '--id', 'binh-hoa', '--name', 'Đảng bộ xã Bình Hòa'.normalize('NFD'), '--kind', 'commune',
        '--parent', 'giong-trom');
  admin('unit', 'add', '--id', 'ap-5', '--name', CELL.normalize('NFD'), '--kind', 'cell', '--parent', 'binh-hoa');
  const base = await t.startServer();
  // The link is what `device add --enrol` prints on stdout, and nothing else.
  const laptopLink = admin('device', 'add', '--name', LAPTOP.normalize('NFD'), '--unit', 'binh-hoa', '--enrol',
                           '--server', base);
  const phoneLink = admin('device', 'add', '--name', SECRETARY.normalize('NFD'), '--unit', 'ap-5', '--enrol',
                          '--server', base + '/');
  for (const link of [laptopLink, phoneLink])
    assert.match(link, new RegExp('^' + base + '/app/#enrol=[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$'));
  const laptopCode = laptopLink.split('#enrol=')[1];
  const phoneCode = phoneLink.split('#enrol=')[1];

  const page = await t.openPage();

  // 1. The laptop: no link, a code typed by hand; a wrong one first.
  await page.setViewportSize({ width: 1366, height: 768 });
  const first = await page.goto(base + '/app/');
  assert.match(first.headers()['content-security-policy'], /script-src 'self'/);
  await page.waitForSelector('#enrol-form:not([hidden])');
  await page.fill('#code', 'ZZZZ-ZZZZ-ZZZZ-ZZZZ');
  await page.click('#enrol-submit');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /Không có mã ghi danh này/);
  await checkLayout(page);
  await page.screenshot({ path: beside('-laptop.png'), fullPage: true });
  // Typed as people type: lower case, spaces instead of dashes.
  await page.fill('#code', laptopCode.toLowerCase().replaceAll('-', ' '));
  await page.click('#enrol-submit');
  await page.waitForSelector('#device:not([hidden])');
  assert.equal(await page.textContent('#device-name'), LAPTOP);
  assert.equal(await page.textContent('#device-unit'), 'Đảng bộ xã Bình Hòa');
  const laptop = await stored(page);
  assert.match(laptop.token, /^fs1_[0-9a-f]{64}$/);

  // 2. The phone: the link opened on a fresh app.
  await page.evaluate(() => localStorage.clear());
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(phoneLink);
  await page.locator('#device-name', { hasText: SECRETARY }).waitFor();
  await page.waitForSelector('#device:not([hidden])');
  assert.equal(await page.textContent('#device-unit'), CELL);
  assert.equal(page.url(), base + '/app/', 'the code left the address bar');
  const phone = await stored(page);
  assert.match(phone.token, /^fs1_[0-9a-f]{64}$/);
  assert.notEqual(phone.token, laptop.token);
  assert.ok(!(await page.content()).includes(phone.token), 'the token is in the page');
  assert.ok(!(await page.evaluate(() => history.length > 0 && location.hash)), 'a fragment is left');
  await checkLayout(page);
  await page.screenshot({ path: t.screenshot, fullPage: true });

  // 2b. Opened once, the app starts with no network (its service worker serves its files).
  await page.evaluate(async () => { await navigator.serviceWorker.ready; });
  await t.browser.setOffline(true);
  await page.reload();
  await page.locator('#device-name', { hasText: SECRETARY }).waitFor();
  assert.equal(await page.evaluate(() => navigator.serviceWorker.controller !== null), true);
  await t.browser.setOffline(false);

  // 3. The same link again: refused in words, and the app keeps the device it has.
  await page.goto(phoneLink);
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /đã được dùng\. Thiết bị vẫn giữ ghi danh/);
  await page.waitForSelector('#device:not([hidden])');
  assert.equal((await stored(page)).token, phone.token);
  await checkLayout(page);
  await page.screenshot({ path: beside('-used.png'), fullPage: true });

  // 4. After the refusals both devices sync with their tokens, and each sees the other's work.
  const put = { change_id: 'web-enrol-1', collection: 'members', id: 'm-tan-loi-1', unit_id: 'ap-5', op: 'put',
                base_version: 0, data: { name: 'Nguyễn Thị Mai', cell: 'ap-5', role: 'Đảng viên' } };
  const pushed = await api(base, 'POST', '/v1/sync', phone.token, { batch_id: 'web-enrol-b1', cursor: '', changes: [put] });
  assert.equal(pushed.status, 200);
  assert.equal(pushed.body.results[0].status, 'applied');
  const pulled = await api(base, 'POST', '/v1/sync', laptop.token, { batch_id: 'web-enrol-b2', cursor: '', changes: [] });
  assert.equal(pulled.status, 200);
  assert.deepEqual(pulled.body.changes.map((c) => c.id), ['m-tan-loi-1']);

  // 5. An answer lost on the way: the server enrols, the page sees a broken connection. Asked
  // again with the token it kept, the server answers the same device again.
  await page.evaluate(() => localStorage.clear());
  const again = admin('device', 'enrol', (await api(base, 'GET', '/v1/me', phone.token)).body.device.id, '--server', base);
  let cut = 0;
  await page.route('**/v1/enrol', async (route) => {
    await route.fetch();   // reaches the server, which commits
    cut++;
    await route.abort('connectionreset');
  });
  await page.goto(again);
  await page.waitForSelector('#retry:not([hidden])');
  assert.equal(cut, 1);
  assert.match(await page.textContent('#message'), /Không kết nối được/);
  await page.unroute('**/v1/enrol');
  await page.click('#retry-button');
  await page.waitForSelector('#message.ok');
  await page.waitForSelector('#device:not([hidden])');
  const reenrolled = await stored(page);
  assert.notEqual(reenrolled.token, phone.token);
  assert.equal((await api(base, 'GET', '/v1/me', reenrolled.token)).status, 200);
  assert.equal((await api(base, 'GET', '/v1/me', phone.token)).status, 401, 'the old token still works');

  for (const url of t.requested) {
    for (const secret of [laptop.token, phone.token, reenrolled.token, laptopCode, phoneCode])
      assert.ok(!url.includes(secret), 'a request URL holds a secret: ' + url);
  }
  assert.deepEqual(t.problems, []);
}

await t.run('app enrolment', main);
