// The /admin/ page's devices (SPEC.md, "Devices"), in a real headless Chromium: an admin signs
// in, sees the devices by name with their units, makes an enrolment code for the cell
// secretary's phone and gets its link and QR code; the link, opened on a 390×844 phone,
// enrols the field app. A reviewer does not see the devices tab. Nothing of the code or a
// token shows in a URL the browser asked for.
//
// usage: node admin_devices.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
// Writes SCREENSHOT_PNG (the laptop: the code made) and beside it -phone.png (enrolled).
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { WebTest } from './harness.mjs';

const t = new WebTest('admin_devices.test.mjs');
const admin = (...args) => execFileSync(t.adminBin, ['--db', t.db, ...args], { encoding: 'utf8' }).trim();
const beside = (suffix) => t.screenshot.replace(/\.png$/, '') + suffix;

await t.run('admin devices in headless Chromium', async () => {
  admin('unit', 'add', '--id', 'giong-trom', '--name', 'Huyện ủy Giồng Trôm', '--kind', 'district');
  admin('unit', 'add', '--id', 'ap-5', '--name', 'Chi bộ ấp Tân Lợi'.normalize('NFD'), '--kind', 'cell', '--parent', 'giong-trom');
  const office = admin('device', 'add', '--name', 'Văn phòng Huyện ủy', '--unit', 'giong-trom', '--role', 'admin');
  const reviewer = admin('device', 'add', '--name', 'Ban Tổ chức Huyện ủy', '--unit', 'giong-trom', '--role', 'reviewer');
  admin('device', 'add', '--name', 'Bí thư chi bộ ấp Tân Lợi'.normalize('NFD'), '--unit', 'ap-5');
  const base = await t.startServer();

  const page = await t.openPage();
  await page.setViewportSize({ width: 1366, height: 768 });

  // A reviewer has no devices tab.
  await page.goto(base + '/admin/');
  await t.signIn(page, reviewer);
  assert.equal(await page.isVisible('#tab-devices'), false);
  await page.click('#signout');

  // The admin: the devices, by name, with their units' names (NFC on screen).
  await t.signIn(page, office);
  await page.locator('#tab-devices:not([hidden])').waitFor();
  await page.click('#tab-devices');
  const row = page.locator('#devices tbody tr', { hasText: 'Bí thư chi bộ ấp Tân Lợi' });
  await row.waitFor();
  assert.equal(await row.locator('td').nth(1).textContent(), 'Chi bộ ấp Tân Lợi');
  assert.equal(await row.locator('td').nth(3).textContent(), 'chưa lần nào');
  await row.locator('button', { hasText: 'Tạo mã ghi danh' }).click();
  await page.locator('#enrolment:not([hidden])').waitFor();
  const link = await page.textContent('#enrolment-link');
  const code = await page.textContent('#enrolment-code');
  assert.equal(link, base + '/app/#enrol=' + code);
  assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  assert.equal(await page.locator('#enrolment-qr svg path').count(), 1, 'the QR code is drawn');
  assert.match(await page.textContent('#enrolment-title'), /Bí thư chi bộ ấp Tân Lợi$/);
  const fit = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(fit, 'the page scrolls sideways');
  await page.screenshot({ path: t.screenshot, fullPage: true });

  // The link on the phone enrols the field app.
  const phone = await t.browser.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(link);
  await phone.locator('#device:not([hidden])').waitFor();
  assert.equal(await phone.textContent('#device-name'), 'Bí thư chi bộ ấp Tân Lợi');
  await phone.locator('#work:not([hidden])').waitFor();
  await phone.locator('#sync-message', { hasText: 'Đồng bộ xong' }).waitFor();
  await phone.screenshot({ path: beside('-phone.png'), fullPage: true });
  await phone.close();

  // The list now shows the phone's first sync.
  await page.bringToFront();
  await page.click('#tab-devices');
  // The tab reloads the list: wait for the row as it is drawn again, with a sync time.
  const synced = page.locator('#devices tbody tr', { hasText: 'Bí thư chi bộ ấp Tân Lợi' }).filter({ hasNotText: 'chưa lần nào' });
  await synced.waitFor();
  assert.notEqual(await synced.locator('td').nth(3).textContent(), 'chưa lần nào');

  for (const url of t.requested) {
    assert.ok(!url.includes(office) && !url.includes(reviewer), 'a token appeared in ' + url);
    assert.ok(!url.includes(code) || url.startsWith(base + '/app/'), 'the code reached a request: ' + url);
  }
  assert.deepEqual(t.problems, []);
});
