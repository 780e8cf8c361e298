// The /admin/ review page in a real headless Chromium (issues 5 and 16): sign in with a
// reviewer token, open a conflict named by its record's title, see the sides by field label and
// choice text, pick per field, preview the record the decision writes, confirm, see the history
// in words; a record whose text holds <script> shows as text and runs nothing; a stale answer
// shows the conflict again; a refused edit is explained in words, naming the field.
//
// usage: node review.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
// Starts fieldsync-server on 127.0.0.1:0 with a fresh store seeded through fieldsync-admin
// (units, devices) and the HTTP API (conflicting edits). Exit 0 on success, 1 on failure.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { WebTest } from './harness.mjs';

const t = new WebTest('review.test.mjs');
const admin = (...args) => execFileSync(t.adminBin, ['--db', t.db, ...args], { encoding: 'utf8' }).trim();

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
  admin('init');
  admin('unit', 'add', '--id', 'giong-trom', '--name', 'Huyện ủy Giồng Trôm', '--kind', 'district');
  admin('unit', 'add', '--id', 'binh-hoa', '--name', 'Đảng bộ xã Bình Hòa', '--kind', 'commune', '--parent', 'giong-trom');
  admin('unit', 'add', '--id', 'ap-1', '--name', 'Chi bộ ấp 1', '--kind', 'cell', '--parent', 'binh-hoa');
  const secretary = admin('device', 'add', '--name', 'Bí thư chi bộ ấp 1', '--unit', 'ap-1');
  const member = admin('device', 'add', '--name', 'Đảng viên Nguyễn Văn An', '--unit', 'ap-1');
  const reviewer = admin('device', 'add', '--name', 'Kiểm tra xã Bình Hòa', '--unit', 'binh-hoa', '--role', 'reviewer');

  const base = await t.startServer();

  // The member the registrations name: the page shows her name, never her id.
  const m = await sync(base, secretary, [{ change_id: 'c0', collection: 'members', id: 'm-an', unit_id: 'ap-1', op: 'put',
                                           base_version: 0, data: { name: 'Nguyễn Văn An', cell: 'ap-1' } }]);
  assert.equal(m.status, 'applied');

  // dk-1: notes and status collide, theme merges. dk-x: the incoming notes hold markup.
  assert.equal((await sync(base, secretary, [put('c1', 'dk-1', 0, record())])).status, 'applied');
  assert.equal((await sync(base, secretary, [put('c2', 'dk-1', 1, record({ notes: 'Chi bộ đề nghị cụ thể hơn', status: 'reviewed' }))])).status, 'applied');
  const c1 = await sync(base, member, [put('c3', 'dk-1', 1, record({ notes: 'Tôi đã bổ sung việc làm cụ thể', status: 'submitted', theme: 'nói đi đôi với làm' }))]);
  assert.equal(c1.status, 'conflict');
  assert.equal((await sync(base, secretary, [put('c4', 'dk-x', 0, record())])).status, 'applied');
  assert.equal((await sync(base, secretary, [put('c5', 'dk-x', 1, record({ notes: 'ý kiến chi bộ' }))])).status, 'applied');
  const c2 = await sync(base, member, [put('c6', 'dk-x', 1, record({ notes: '<script>alert(1)</script><img src=x onerror=alert(2)>' }))]);
  assert.equal(c2.status, 'conflict');

  const page = await t.openPage();

  // Headers of the page itself.
  const first = await page.goto(base + '/admin/');
  const headers = first.headers();
  assert.match(headers['content-security-policy'], /script-src 'self'/);
  assert.equal(headers['x-content-type-options'], 'nosniff');

  // Vietnamese by default.
  assert.equal(await page.textContent('#signin h2'), 'Đăng nhập');
  await t.signIn(page, reviewer);
  await page.waitForSelector('#conflicts tbody tr');
  assert.equal(await page.locator('#conflicts tbody tr').count(), 2);
  // Named: the record by its title (the member's name and the year), the kind of record, the
  // sender by device and unit name, where the conflict belongs by unit names.
  const row = await page.locator(`#conflicts tbody tr[data-id="${c1.conflict_id}"]`).innerText();
  assert.match(row, /Nguyễn Văn An, 2014/);
  assert.match(row, /Bản đăng ký rèn luyện/);
  assert.match(row, /Đảng viên Nguyễn Văn An/);
  assert.match(row, /Chi bộ ấp 1/);
  assert.doesNotMatch(row, /dk-1|registrations|ap-1\b|\/notes/);
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
  assert.deepEqual(collide.sort(), ['/notes', '/status']);
  // Field labels and choice texts from the schema; the member by name.
  const statusRow = await page.$$eval('#sides tbody tr[data-field="/status"] td', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(statusRow, ['Tình trạng', 'Bản nháp', 'Chi bộ đã xem xét', 'Đã nộp chi bộ']);
  assert.equal(await page.textContent('#sides tbody tr[data-field="/member"] td:nth-child(3)'), 'Nguyễn Văn An');
  assert.match(await page.textContent('#detail-title'), /^Bản đăng ký rèn luyện: Nguyễn Văn An, 2014/);
  assert.equal(await page.locator('#sides tbody tr[data-field="/theme"]').getAttribute('class'), null);
  assert.match(await page.textContent('#meta'), /Đảng viên Nguyễn Văn An/);
  assert.match(await page.textContent('#meta'), /Bí thư chi bộ ấp 1/);

  // English is available.
  await page.selectOption('#lang', 'en');
  assert.equal(await page.textContent('#keep-head'), 'Keep the current version');
  // The sides are drawn again once the referenced records' titles are fetched: wait for it.
  await page.locator('#sides tbody tr[data-field="/status"] td:nth-child(3)', { hasText: 'Reviewed' }).waitFor();
  await page.selectOption('#lang', 'vi');
  assert.equal(await page.textContent('#keep-head'), 'Giữ bản hiện có');
  await page.locator('#sides tbody tr[data-field="/status"] td:nth-child(3)', { hasText: 'Chi bộ đã xem xét' }).waitFor();

  // The head moves while the reviewer looks: the answer is stale and the conflict comes back.
  assert.equal((await sync(base, secretary, [put('c7', 'dk-1', 2, record({ notes: 'Chi bộ đề nghị cụ thể hơn', status: 'reviewed', year: 2014, commitments: ['Rời khỏi phòng thì tắt quạt máy, tắt đèn', 'Đi họp đúng giờ'] }))])).status, 'applied');
  await page.check('#pick-rows input[data-pointer="/notes"][value="incoming"]');
  await page.check('#pick-rows input[data-pointer="/status"][value="head"]');
  await page.fill('#note', 'gộp ý hai bên');
  await page.click('#pick');
  await page.waitForSelector('#message.error');
  assert.match(await page.textContent('#message'), /đã thay đổi/);
  assert.match(await page.textContent('#meta'), /phiên bản 3/);
  assert.equal(await page.isVisible('#preview'), false);

  // An edit that breaks the schema is refused in words naming the field, and nothing is written.
  await page.click('#edit');
  await page.fill('#edit-fields [data-key="theme"]', 'x'.repeat(1001));
  await page.click('#save-edit');
  await page.locator('#message.error', { hasText: 'Bản ghi không đúng mẫu ở trường' }).waitFor();
  assert.match(await page.textContent('#message'), /«Chủ đề[^»]*»/);
  assert.equal(await page.isVisible('#preview'), false);

  // Decide again on the current head.
  await page.check('#pick-rows input[data-pointer="/notes"][value="incoming"]');
  await page.check('#pick-rows input[data-pointer="/status"][value="head"]');
  await page.click('#pick');
  // The record as the decision will write it, changed fields marked; nothing is written yet.
  await page.waitForSelector('#preview:not([hidden])');
  assert.equal(await page.textContent('#preview-table tr[data-field="/notes"] td:nth-child(2)'), 'Tôi đã bổ sung việc làm cụ thể');
  assert.equal(await page.getAttribute('#preview-table tr[data-field="/notes"]', 'class'), 'changed');
  assert.equal(await page.textContent('#preview-table tr[data-field="/status"] td:nth-child(2)'), 'Chi bộ đã xem xét');
  assert.match(await page.textContent('#preview-summary'), /Ghi chú/);
  const before = await (await fetch(base + '/v1/records/registrations/dk-1', { headers: { Authorization: 'Bearer ' + reviewer } })).json();
  assert.equal(before.version, 3);
  await page.click('#confirm');
  // Locator waits, not waitForFunction: the page's CSP forbids the eval that polling needs.
  await page.locator('#message', { hasText: 'Đã giải quyết xung đột.' }).waitFor();
  await page.locator('#history tbody tr').nth(3).waitFor();
  assert.equal(await page.locator('#history tbody tr').count(), 4);
  const last = await page.$$eval('#history tbody tr:last-child td', (tds) => tds.map((td) => td.textContent));
  assert.equal(last[0], '4');
  assert.equal(last[1], 'giải quyết');
  assert.match(last[4], /Tôi đã bổ sung việc làm cụ thể/);
  assert.match(last[4], /Tình trạng: Chi bộ đã xem xét/);
  assert.match(last[2], /Kiểm tra xã Bình Hòa/);
  assert.match(await page.textContent('#detail-title'), /đã giải quyết/);

  const head = await (await fetch(base + '/v1/records/registrations/dk-1', { headers: { Authorization: 'Bearer ' + reviewer } })).json();
  assert.equal(head.version, 4);
  assert.equal(head.data.notes, 'Tôi đã bổ sung việc làm cụ thể');
  assert.equal(head.data.status, 'reviewed');
  assert.equal(head.data.theme, 'nói đi đôi với làm');

  assert.equal(await page.isVisible('#signin'), false);
  assert.equal(await page.isVisible('#list-view'), false);
  await page.screenshot({ path: t.screenshot, fullPage: true });

  // The token never appeared in a URL.
  for (const url of t.requested) assert.ok(!url.includes(reviewer), 'the token appeared in ' + url);
  assert.deepEqual(t.problems, []);
}

await t.run('web review test', main);
