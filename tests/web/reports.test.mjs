// The reports view of the /admin/ page in a real headless Chromium (issues 8 and 16): a store
// loaded with `fieldsync-admin demo`, a district reviewer signs in, opens the reports, sees the
// participation chart (inline SVG bars, no external library, the page's CSP kept) with the
// article's 97.4% of teachers, drills down into a commune by its name, switches to English; a
// record of a later year changes no figure of the campaign year, the year picker lists the years
// with data, a year without data says so instead of showing zeros; the report downloads as CSV
// (BOM, Vietnamese headers) and prints without the controls; the API refuses a field device
// (403), an unknown report (404) and a unit outside the scope (404).
//
// usage: node reports.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  const campaign = own.json.params.year;

  // A study session of the next year, synced by the hamlet cell's phone: the campaign year's
  // figures stay as they were, and the next year appears among the years with data.
  const before = await get('/v1/reports/participation', districtReviewer.token);
  const res = await fetch(base + '/v1/sync', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + field.token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ batch_id: 'b-next', cursor: '', changes: [{
      change_id: 'next-year-1', collection: 'study_sessions', id: 'ss-next-1', unit_id: field.unit, op: 'put', base_version: 0,
      data: { unit: field.unit, date: `${campaign + 1}-03-02`, audience: 'đảng viên', invited: 10, attended: 9 } }] }),
  });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).results[0].status, 'applied');
  const after = await get('/v1/reports/participation', districtReviewer.token);
  assert.deepEqual(after.json.rows, before.json.rows);
  assert.equal(after.json.params.year, campaign);
  assert.ok(after.json.years.includes(campaign) && after.json.years.includes(campaign + 1), JSON.stringify(after.json.years));

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
  assert.equal(await page.inputValue('#report-year'), String(campaign));
  const byHeader = await page.$$eval('#report-table tbody tr[data-unit="giong-trom"]', (trs) => trs
    .map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.label, td.textContent]))));
  const teachers = byHeader.find((cells) => cells['Đối tượng'] === 'giáo viên');
  assert.ok(teachers, 'a row for the district\'s teachers');
  assert.equal(teachers['Tỷ lệ'], '97,4%');
  assert.equal(teachers['Đơn vị'], 'Huyện ủy Giồng Trôm');
  const labels = await page.$$eval('#report-chart svg text', (ts) => ts.map((x) => x.textContent));
  assert.ok(labels.some((l) => l.includes('giáo viên')));
  assert.ok(labels.some((l) => l.startsWith('97,4%')));

  // Registrations, then down into a commune: its hamlet cells appear.
  await page.selectOption('#report-name', 'registrations');
  await page.locator('#report-title', { hasText: 'Đảng viên đăng ký' }).waitFor();
  const drill = page.locator('#report-table tbody button.drill').first();
  const communeName = await drill.textContent();
  const commune = await drill.evaluate((b) => b.closest('tr').dataset.unit);
  assert.doesNotMatch(communeName, /-/);
  await drill.click();
  await page.locator('#report-table tbody tr[data-unit="' + commune + '-ap-1"]').waitFor();
  assert.equal(await page.inputValue('#report-unit'), commune);
  assert.match(await page.textContent('#report-title'), new RegExp(communeName));
  assert.equal(await page.locator('#report-chart svg rect.bar').count(),
               await page.locator('#report-table tbody tr').count());

  // English.
  await page.selectOption('#lang', 'en');
  assert.match(await page.textContent('#report-title'), /Members registered this year/);
  assert.equal(await page.title(), 'fieldsync — Conflicts and reports');
  const headers = await page.$$eval('#report-table thead th', (ths) => ths.map((th) => th.textContent));
  assert.ok(headers.includes('Members'), headers.join(', '));
  await page.selectOption('#lang', 'vi');

  // The next year: registrations have none, and the page says so instead of a table of zeros.
  await page.selectOption('#report-unit', '');
  await page.locator('#report-table tbody tr[data-unit="giong-trom"]').waitFor();
  await page.selectOption('#report-year', String(campaign + 1));
  await page.locator('#report-nodata:not([hidden])').waitFor();
  assert.match(await page.textContent('#report-nodata'), new RegExp(`Chưa có số liệu năm ${campaign + 1}.*Các năm có số liệu: ${campaign}\\.`));
  assert.equal(await page.isVisible('#report-table'), false);
  assert.equal(await page.isVisible('#report-chart'), false);
  await page.selectOption('#report-year', String(campaign));
  await page.locator('#report-table tbody tr').first().waitFor();

  // Participation, downloaded as CSV: UTF-8 with a BOM, Vietnamese headers.
  await page.selectOption('#report-name', 'participation');
  await page.locator('#report-title', { hasText: 'Tỷ lệ tham gia' }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#report-csv')]);
  const csv = readFileSync(await download.path());
  assert.deepEqual([...csv.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
  const csvText = csv.subarray(3).toString('utf8');
  assert.match(csvText.split('\r\n')[0], /Đơn vị/);
  assert.match(csvText, /Huyện ủy Giồng Trôm/);
  assert.match(download.suggestedFilename(), /^participation-.*\.csv$/);

  // Printed: the report without the controls.
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.isVisible('#report-name'), false);
  assert.equal(await page.isVisible('#tabs'), false);
  assert.equal(await page.isVisible('#report-chart svg'), true);
  await page.emulateMedia({ media: 'screen' });
  await page.screenshot({ path: t.screenshot, fullPage: true });

  for (const url of t.requested) assert.ok(!url.includes(districtReviewer.token), 'the token appeared in ' + url);
  assert.deepEqual(t.problems, []);
}

await t.run('web reports test', main);
