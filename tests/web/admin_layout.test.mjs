// The /admin/ page at a phone's and a laptop's size (issue 16), on the demo data set as
// `tools/dev run` loads it: open conflicts are there at once; records, senders, units, fields and
// choices are named in words (no id, no slug, no machine value on screen); nothing scrolls
// sideways at 390 px (tables become cards); no button's label wraps at 1366 px; the chart's
// labels keep their size on a phone and the problem places (0 of N) show. Screenshots of every
// view at both sizes are left beside the test's own (build/web-admin-layout-*.png).
//
// usage: node admin_layout.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { WebTest } from './harness.mjs';

const t = new WebTest('admin_layout.test.mjs');

// Ids and machine words that must never be shown: UUIDs, the demo's unit slugs, collection and
// choice values, JSON.
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
const MACHINE = /\b(giong-trom|registrations|study_sessions|members|take_incoming|keep_head|submitted|draft)\b|[{}]/;

// What the page looks like now: sideways overflow, and the visible buttons whose label takes
// more than one line.
function measure(page) {
  return page.evaluate(() => {
    const wrapped = [];
    for (const b of document.querySelectorAll('button')) {
      if (!b.offsetParent || !b.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(b);
      const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (lines.size > 1) wrapped.push(b.textContent);
    }
    return { sideways: document.documentElement.scrollWidth - window.innerWidth, wrapped };
  });
}

async function check(page, size, view) {
  const m = await measure(page);
  assert.ok(m.sideways <= 0, `${view} at ${size.width} px scrolls sideways by ${m.sideways} px`);
  if (size.width >= 1000) assert.deepEqual(m.wrapped, [], `${view} at ${size.width} px: button labels wrap`);
  await page.screenshot({ path: t.screenshot.replace(/\.png$/, `-${size.name}-${view}.png`), fullPage: true });
}

async function visibleText(page, selector) {
  return page.locator(selector).innerText();
}

async function main() {
  const devices = execFileSync(t.adminBin, ['--db', t.db, 'demo', '--district', 'Giồng Trôm', '--seed', '2014'],
                               { encoding: 'utf8' })
    .trim().split('\n').map((line) => { const [role, unit, name, token] = line.split('\t'); return { role, unit, name, token }; });
  const admin = devices.find((d) => d.role === 'admin');
  assert.ok(admin, 'the demo registers an admin device');

  const base = await t.startServer();
  const page = await t.openPage();

  for (const size of [{ name: 'phone', width: 390, height: 844 }, { name: 'laptop', width: 1366, height: 768 }]) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await page.goto(base + '/admin/');
    await check(page, size, 'signin');
    await t.signIn(page, admin.token);

    // The demo's open conflicts are there at once, named in words.
    await page.locator('#conflicts tbody tr').first().waitFor();
    assert.ok(await page.locator('#conflicts tbody tr').count() >= 4, 'the demo has open conflicts of each kind');
    const list = await visibleText(page, '#list-view');
    assert.doesNotMatch(list, UUID);
    assert.doesNotMatch(list, MACHINE);
    assert.match(list, /Bản đăng ký rèn luyện/);
    // The collection filter and the unit picker offer names.
    const collections = await page.$$eval('#collection-filter option', (os) => os.map((o) => o.textContent));
    assert.ok(collections.includes('Bản đăng ký rèn luyện'), collections.join(', '));
    const unitsOffered = await page.$$eval('#unit-filter option', (os) => os.map((o) => o.textContent.trim()));
    assert.ok(unitsOffered.includes('Huyện ủy Giồng Trôm'), unitsOffered.slice(0, 5).join(', '));
    await check(page, size, 'conflicts');

    // A conflict of one field: the sides by field label, the choice values in words.
    await page.locator('#conflicts tbody tr button.open-conflict').first().click();
    await page.waitForSelector('#detail-view:not([hidden])');
    await page.locator('#history tbody tr').first().waitFor();
    const detail = await visibleText(page, '#detail-view');
    assert.doesNotMatch(detail, UUID);
    assert.doesNotMatch(detail, MACHINE);
    await check(page, size, 'conflict');

    // The decision is previewed before it is made.
    await page.click('#keep-head');
    await page.waitForSelector('#preview:not([hidden])');
    assert.equal(await page.isVisible('#resolve-form'), false);
    assert.doesNotMatch(await visibleText(page, '#preview'), MACHINE);
    await check(page, size, 'preview');
    await page.click('#cancel-preview');
    await page.waitForSelector('#resolve-form:not([hidden])');

    // Reports: the chart fits, its labels are not scaled down, lowest first, the zeros show.
    await page.click('#tab-reports');
    await page.locator('#report-title', { hasText: 'Tỷ lệ tham gia' }).waitFor();
    await page.selectOption('#report-name', 'registrations');
    await page.locator('#report-title', { hasText: 'Đảng viên đăng ký' }).waitFor();
    await page.locator('#report-chart svg rect.bar').first().waitFor();
    const chart = await page.evaluate(() => {
      const s = document.querySelector('#report-chart svg');
      const sizes = [...s.querySelectorAll('text')].map((x) => parseFloat(getComputedStyle(x).fontSize));
      const figures = [...s.querySelectorAll('text.figure')].map((x) => x.textContent);
      return { drawn: Number(s.getAttribute('width')), shown: s.getBoundingClientRect().width, smallest: Math.min(...sizes),
               figures, zeros: s.querySelectorAll('rect.bar.zero').length };
    });
    assert.ok(Math.abs(chart.drawn - chart.shown) < 1, `the chart is scaled: drawn ${chart.drawn}, shown ${chart.shown}`);
    assert.ok(chart.smallest >= 12, 'chart text of ' + chart.smallest + ' px');
    const rates = chart.figures.map((f) => parseFloat(f.replace(/\./g, '').replace(',', '.')));
    assert.deepEqual(rates, [...rates].sort((a, b) => a - b), 'bars sorted by rate, lowest first: ' + chart.figures.join(' | '));
    const zeroRows = chart.figures.filter((f) => f.startsWith('0%')).length;
    assert.equal(chart.zeros, zeroRows, 'every 0% bar is drawn as a visible mark');
    assert.ok(await page.isVisible('#report-legend'));
    const reportText = await visibleText(page, '#reports-view');
    assert.doesNotMatch(reportText, UUID);
    assert.doesNotMatch(reportText, /\bgiong-trom\b/);
    await check(page, size, 'reports');

    // Devices (an admin device): by name and unit name.
    await page.click('#tab-devices');
    await page.locator('#devices tbody tr').first().waitFor();
    const devicesText = await visibleText(page, '#devices-view');
    assert.doesNotMatch(devicesText, UUID);
    await check(page, size, 'devices');

    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])');
  }
  await page.screenshot({ path: t.screenshot, fullPage: true });
  assert.deepEqual(t.problems, []);
}

await t.run('web admin layout test', main);
