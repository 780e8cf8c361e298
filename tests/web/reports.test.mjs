// The reports view of the /admin/ page in a real headless Chromium (issue 8): a store loaded
// with `fieldsync-admin demo`, a district reviewer signs in, opens the reports, sees the
// participation chart (inline SVG bars, no external library, the page's CSP kept) with the
// article's 97.4% of teachers, drills down into a commune, switches to English; the API
// refuses a field device (403), an unknown report (404) and a unit outside the scope (404).
//
// usage: node reports.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { WebTest } from './harness.mjs';

const t = new WebTest('reports.test.mjs');

async function main() {
  // ROLE<TAB>UNIT<TAB>NAME<TAB>TOKEN per device.
  const devices = execFileSync(t.adminBin, ['--db', t.db, 'demo', '--district', 'Giồng Trôm', '--seed', '2014'],
                               { encoding: 'utf8' })
    .trim().split('\n').map((line) => { const [role, unit, name, token] = line.split('\t'); return { role, unit, name, token }; });
  const districtReviewer = devices.find((d) => d.role === 'reviewer' && d.unit === 'giong-trom');
  const communeReviewer = devices.find((d) => d.role === 'reviewer' && d.unit !== 'giong-trom');
  const field = devices.find((d) => d.role === 'field');
  assert.ok(districtReviewer && communeReviewer && field, 'the demo registers a reviewer per level and a field device');

  const base = await t.startServer();
  const get = async (path, token) => {
    const res = await fetch(base + path, { headers: { Authorization: 'Bearer ' + token } });
    return { status: res.status, json: await res.json() };
  };
  assert.equal((await get('/v1/reports/participation', field.token)).status, 403);
  const unknown = await get('/v1/reports/attendance', districtReviewer.token);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'not_found');
  const outside = await get('/v1/reports/registrations?unit=giong-trom', communeReviewer.token);
  assert.equal(outside.status, 404);
  assert.equal(outside.json.error.code, 'not_found');
  const own = await get('/v1/reports/registrations', communeReviewer.token);
  assert.equal(own.status, 200);
  assert.equal(own.json.unit.id, communeReviewer.unit);

  const page = await t.openPage();
  await page.goto(base + '/admin/');
  await t.signIn(page, districtReviewer.token);
  await page.click('#tab-reports');
  await page.waitForSelector('#reports-view:not([hidden])');
  await page.locator('#report-chart svg rect.bar').first().waitFor();

  // Participation: one bar per row, the district's teachers at the article's 97.4%.
  const rows = await page.locator('#report-table tbody tr').count();
  assert.ok(rows > 10);
  assert.equal(await page.locator('#report-chart svg rect.bar').count(), rows);
  assert.match(await page.textContent('#report-title'), /Tỷ lệ tham gia học tập chuyên đề — Huyện ủy Giồng Trôm/);
  // The page's title names both views, not only the conflicts.
  assert.equal(await page.title(), 'fieldsync — Xung đột và báo cáo');
  assert.equal(await page.textContent('h1'), 'Xung đột và báo cáo');
  const teachers = await page.$$eval('#report-table tbody tr', (trs) => trs
    .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent))
    .find((cells) => cells[0] === 'giong-trom' && cells[2] === 'giáo viên'));
  assert.ok(teachers, 'a row for the district\'s teachers');
  assert.equal(teachers[6], '97,4%');
  const labels = await page.$$eval('#report-chart svg text', (ts) => ts.map((x) => x.textContent));
  assert.ok(labels.some((l) => l.includes('giáo viên')));
  assert.ok(labels.some((l) => l.startsWith('97,4%')));

  // Registrations, then down into a commune: its hamlet cells appear.
  await page.selectOption('#report-name', 'registrations');
  await page.locator('#report-title', { hasText: 'Đảng viên đăng ký' }).waitFor();
  const commune = await page.locator('#report-table tbody button.drill').first().textContent();
  await page.locator('#report-table tbody button.drill').first().click();
  await page.locator('#report-table tbody tr[data-unit="' + commune + '-ap-1"]').waitFor();
  assert.equal(await page.inputValue('#report-unit'), commune);
  assert.equal(await page.locator('#report-chart svg rect.bar').count(),
               await page.locator('#report-table tbody tr').count());

  // English.
  await page.selectOption('#lang', 'en');
  assert.match(await page.textContent('#report-title'), /Members registered this year/);
  assert.equal(await page.title(), 'fieldsync — Conflicts and reports');
  assert.equal(await page.textContent('#report-table thead th:nth-child(4)'), 'Members');

  // A unit outside the tree: a clear message, no chart left from before.
  await page.fill('#report-unit', 'khong-co');
  await page.click('#report-show');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /not_found/);
  assert.equal(await page.locator('#report-chart svg').count(), 0);

  await page.selectOption('#lang', 'vi');
  await page.fill('#report-unit', '');
  await page.selectOption('#report-name', 'participation');
  await page.locator('#report-title', { hasText: 'Tỷ lệ tham gia' }).waitFor();
  await page.screenshot({ path: t.screenshot, fullPage: true });

  for (const url of t.requested) assert.ok(!url.includes(districtReviewer.token), 'the token appeared in ' + url);
  assert.deepEqual(t.problems, []);
}

await t.run('web reports test', main);
