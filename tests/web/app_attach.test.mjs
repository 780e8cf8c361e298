// Attachments in the field app and the review page (issue 19), in a real headless Chromium
// against a real server. "Done when": the field app attaches a photo offline and it arrives
// after going online. A cell secretary on a 390×844 phone, with the network off, opens a
// registration and takes two photos of the signed form (3000×2000 JPEGs, one with EXIF
// orientation 6): each is shown shrunk on the phone (1600×1067, and 1067×1600 upright) and
// waits to be sent ("Chờ gửi"). Online, the record syncs and the photos follow in 256 KiB
// chunks; the connection is cut in the middle of one and the app reloaded, and the upload
// resumes from the server's offset, not from 0; a chunk the server already holds is answered
// 409 upload_offset and the app goes on from the error's offset. The server then holds bytes whose SHA-256 is
// the reference's and whose JPEG is at most 1600 px, and the app says "Đã gửi". An
// inspection written at the district names a photo nobody has sent: "Chưa có trên máy chủ",
// until it is uploaded; then it is fetched with the token and shown. A refused upload is a
// sentence. Removing a photo is an edit. A new record's photo waits for «Lưu». A PDF goes as it
// is and opens from the device. Two different photos added to the same registration
// on the phone and at the district collide, and the review page shows both sides' photos,
// side by side, at 390×844 and 1366×768. Prints what a 12-megapixel photo costs once shrunk.
//
// usage: node app_attach.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG
// Writes SCREENSHOT_PNG (the phone: the registration with its photos waiting) and beside it
// -sent.png (the phone: sent), -missing.png (the phone: a photo not on the server yet),
// -laptop.png (the app at 1366×768), -review-laptop.png (the conflict, whole page) and
// -review-phone.png and -review-phone-pick.png (the phone's screen at the photos, and at the pick).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { WebTest } from './harness.mjs';

const t = new WebTest('app_attach.test.mjs');
const admin = (...args) => execFileSync(t.adminBin, ['--db', t.db, ...args], { encoding: 'utf8' }).trim();
const beside = (suffix) => t.screenshot.replace(/\.png$/, '') + suffix;
const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1366, height: 768 };
const CHUNK = 256 * 1024;
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

let base = '';

async function api(method, path, token, body, headers) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json = null;
  try { json = JSON.parse(bytes.toString('utf8')); } catch { json = null; }
  return { status: res.status, json, bytes, headers: res.headers };
}

async function write(token, change) {
  const r = await api('POST', '/v1/sync', token, { batch_id: 'b-' + change.change_id, cursor: '', changes: [change] });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.results[0];
}

// A blob uploaded by another device (the district's office), in one chunk.
async function upload(token, bytes) {
  const r = await api('PUT', '/v1/uploads/' + sha256(bytes), token, bytes,
    { 'Content-Type': 'image/jpeg', 'Upload-Offset': '0', 'Upload-Length': String(bytes.length) });
  assert.ok(r.status === 201 || r.status === 200, `upload: ${r.status} ${r.bytes.toString()}`);
  assert.equal(r.json.complete, true);
}

// A one-page PDF, as a scanner app writes one (the smallest a viewer opens).
const PDF = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n'
  + '3 0 obj<</Type/Page/MediaBox[0 0 200 200]/Parent 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n');

const refOf = (bytes, name) => ({ sha256: sha256(bytes), size: bytes.length, content_type: 'image/jpeg', name });

// A JPEG's width and height, from its SOF segment.
function jpegSize(buf) {
  assert.ok(buf[0] === 0xff && buf[1] === 0xd8, 'a JPEG starts with FF D8');
  let i = 2;
  while (i + 9 < buf.length) {
    assert.equal(buf[i], 0xff, 'a JPEG marker');
    const m = buf[i + 1];
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) { i += 2; continue; }
    if (m >= 0xc0 && m <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(m)) {
      return { width: buf.readUInt16BE(i + 7), height: buf.readUInt16BE(i + 5) };
    }
    i += 2 + buf.readUInt16BE(i + 2);
  }
  throw new Error('no SOF in the JPEG');
}

// The same JPEG with an EXIF block saying "rotate 90° clockwise to show" (orientation 6), as
// a phone held upright writes it.
function withOrientation(buf, o) {
  const app1 = Buffer.from([0xff, 0xe1, 0x00, 0x22, 0x45, 0x78, 0x69, 0x66, 0x00, 0x00,
    0x4d, 0x4d, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01,
    0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, o, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
  return Buffer.concat([buf.subarray(0, 2), app1, buf.subarray(2)]);
}

// A photo of a signed paper form as a phone camera takes it: paper under uneven light, lines
// of printed text, ruled lines, a signature in blue ink, and sensor noise; JPEG at quality
// 0.92, as cameras write. Drawn in the page (Chromium's canvas), so it costs what a real
// photo of a form costs, not what a flat colour would.
async function photo(page, width, height, hue) {
  const b64 = await page.evaluate(async ({ w, h, hue }) => {
    const c = new OffscreenCanvas(w, h);
    const g = c.getContext('2d');
    const light = g.createRadialGradient(w * 0.4, h * 0.35, 0, w * 0.5, h * 0.5, Math.max(w, h) * 0.8);
    light.addColorStop(0, `hsl(${hue}, 35%, 93%)`);
    light.addColorStop(1, `hsl(${hue}, 15%, 60%)`);
    g.fillStyle = light;
    g.fillRect(0, 0, w, h);
    const fs = Math.round(h / 45);
    g.fillStyle = '#222';
    g.font = `bold ${Math.round(fs * 1.4)}px serif`;
    g.fillText('BẢN ĐĂNG KÝ HỌC TẬP VÀ LÀM THEO', w * 0.12, h * 0.1);
    g.font = `${fs}px serif`;
    const words = ['Đảng', 'viên', 'cam', 'kết', 'rèn', 'luyện', 'học', 'tập', 'làm', 'theo', 'tư', 'tưởng', 'đạo', 'đức',
      'phong', 'cách', 'Hồ', 'Chí', 'Minh', 'năm', '2026', 'chi', 'bộ', 'ấp', 'Tân', 'Lợi', 'giúp', 'hộ', 'nghèo'];
    g.strokeStyle = '#999';
    for (let y = h * 0.16; y < h * 0.82; y += fs * 1.6) {
      let line = '';
      while (line.length < 80) line += words[Math.floor(Math.random() * words.length)] + ' ';
      g.fillText(line, w * 0.08 + Math.random() * 6, y);
      g.beginPath();
      g.moveTo(w * 0.07, y + fs * 0.35);
      g.lineTo(w * 0.93, y + fs * 0.35);
      g.stroke();
    }
    g.strokeStyle = '#1a2a7a';
    g.lineWidth = Math.max(2, fs / 6);
    g.beginPath();
    g.moveTo(w * 0.6, h * 0.9);
    for (let i = 0; i < 60; ++i) g.lineTo(w * 0.6 + i * w * 0.005, h * 0.9 + Math.sin(i * 1.3) * h * 0.03 * Math.random());
    g.stroke();
    const img = g.getImageData(0, 0, w, h);
    const d = img.data;
    for (let i = 0; i < d.length; i += 4) {
      const n = (Math.random() + Math.random() + Math.random() - 1.5) * 12;
      d[i] += n;
      d[i + 1] += n;
      d[i + 2] += n * 1.3;
    }
    g.putImageData(img, 0, 0);
    const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/jpeg', quality: 0.92 })).arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }, { w: width, h: height, hue });
  return Buffer.from(b64, 'base64');
}

// No sideways scrolling, and every visible control at least 44 px high.
async function checkLayout(page, where) {
  const fit = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(fit.scroll <= fit.inner, `${where}: the page scrolls sideways: ${fit.scroll} > ${fit.inner}`);
  const small = await page.evaluate(() => [...document.querySelectorAll('button, input, select, textarea')]
    .filter((e) => e.offsetParent !== null && e.type !== 'checkbox' && e.getBoundingClientRect().height < 44)
    .map((e) => e.id || e.textContent || e.outerHTML.slice(0, 60)));
  assert.deepEqual(small, [], `${where}: touch targets under 44 px`);
}

const message = (page, words) => page.locator('#sync-message', { hasText: words }).waitFor({ timeout: 20000 });
const items = (page, field) => page.locator(`#f-${field} figure.attachment`);
// The state words of the attachments of a field, in order.
const states = (page, field) => items(page, field).locator('.att-state').allTextContents();
async function statesAre(page, field, expected, timeout = 30000) {
  let got = [];
  for (const until = Date.now() + timeout; Date.now() < until;) {
    got = await states(page, field);
    if (got.length === expected.length && got.every((s, i) => (expected[i] instanceof RegExp ? expected[i].test(s) : s === expected[i]))) return;
    await page.waitForTimeout(100);
  }
  assert.fail(`${field}: states ${JSON.stringify(got)}, expected ${expected}`);
}
// The shown photos' natural sizes, once every one has loaded.
// (Polled from here: page.waitForFunction's polling evaluates a string now and then, which
// the pages' CSP refuses.)
async function shownSizes(page, selector, count) {
  let sizes = [];
  for (const until = Date.now() + 20000; Date.now() < until;) {
    sizes = await page.evaluate((selector) => [...document.querySelectorAll(selector)]
      .map((i) => (i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null)), selector);
    if (sizes.length === count && sizes.every((x) => x)) return sizes;
    await page.waitForTimeout(100);
  }
  assert.fail(`${selector}: ${count} photos shown expected, got ${JSON.stringify(sizes)}`);
}

async function openApp(url) {
  const page = await t.openPage();
  await page.setViewportSize(PHONE);
  await page.goto(url);
  await page.locator('#work:not([hidden])').waitFor();
  await page.locator('#collection option').first().waitFor({ state: 'attached' });
  return page;
}

async function openRecord(page, collection, title) {
  if (!(await page.locator('#record-form').isHidden())) await page.click('#back');
  await page.selectOption('#collection', collection);
  await page.locator('#records button', { hasText: title }).click();
  await page.locator('#record-form:not([hidden])').waitFor();
}

// The record as the phone's replica holds it.
const local = (page, collection, id) => page.evaluate(({ collection, id }) => self.fieldsyncReplica.call('get', { collection, id }), { collection, id });

await t.run('attachments in headless Chromium', async () => {
  admin('unit', 'add', '--id', 'giong-trom', '--name', 'Huyện ủy Giồng Trôm', '--kind', 'district');
  admin('unit', 'add', '--id', 'ap-1', '--name', 'Chi bộ ấp Tân Lợi', '--kind', 'cell', '--parent', 'giong-trom');
  const office = admin('device', 'add', '--name', 'Văn phòng Huyện ủy', '--unit', 'giong-trom');
  const reviewer = admin('device', 'add', '--name', 'Ban Tổ chức Huyện ủy', '--unit', 'giong-trom', '--role', 'reviewer');
  const root = admin('device', 'add', '--name', 'Quản trị máy chủ', '--unit', 'giong-trom', '--role', 'admin');
  base = await t.startServer();
  const link = admin('device', 'add', '--name', 'Bí thư chi bộ ấp Tân Lợi', '--unit', 'ap-1', '--enrol', '--server', base);

  const LAN = '0193a000-0000-7000-8000-000000000001';
  const REG = '0193a000-0000-7000-8000-0000000000a1';
  const INSP = '0193a000-0000-7000-8000-0000000000b1';
  assert.equal((await write(office, { change_id: 'c-lan', collection: 'members', id: LAN, unit_id: 'ap-1', op: 'put',
    base_version: 0, data: { name: 'Nguyễn Thị Lan', cell: 'ap-1' } })).status, 'applied');
  assert.equal((await write(office, { change_id: 'c-reg', collection: 'registrations', id: REG, unit_id: 'ap-1', op: 'put',
    base_version: 0, data: { member: LAN, year: 2026, commitments: ['Tham gia đầy đủ sinh hoạt chi bộ'], status: 'draft' } })).status, 'applied');

  let page = await openApp(link);
  await message(page, 'Đồng bộ xong');

  // The photos: made in the page (Chromium draws them), as a phone's camera would write them.
  const shotA = await photo(page, 3000, 2000, 40);
  const shotB = withOrientation(await photo(page, 3000, 2000, 200), 6);
  const district = await photo(page, 1200, 900, 120);     // the district's own photo of the form
  const minutes = await photo(page, 800, 600, 90);        // an inspection's minutes, sent late
  const big = await photo(page, 4000, 3000, 30);          // 12 megapixels
  // An inspection written at the district, naming a photo nobody has sent yet.
  const minutesRef = refOf(minutes, 'Biên bản kiểm tra trang 1.jpg');
  assert.equal((await write(office, { change_id: 'c-insp', collection: 'inspections', id: INSP, unit_id: 'ap-1', op: 'put',
    base_version: 0, data: { unit: 'ap-1', date: '2026-11-20', findings: ['Hai bản đăng ký còn chung chung'], minutes: [minutesRef] } })).status, 'applied');
  for (let i = 0; i < 300 && !(await local(page, 'inspections', INSP)); ++i) await page.waitForTimeout(100);
  assert.ok(await local(page, 'inspections', INSP), 'the inspection reached the phone (its long poll)');
  const phoneToken = await page.evaluate(() => JSON.parse(localStorage.getItem('fieldsync.device')).token);

  // ---- Offline: two photos of the signed registration.
  await t.browser.setOffline(true);
  await openRecord(page, 'registrations', 'Nguyễn Thị Lan');
  await page.locator('#f-scans button', { hasText: 'Chụp ảnh' }).waitFor();
  await page.setInputFiles('#f-scans input.camera', { name: 'IMG_20261207_071201.jpg', mimeType: 'image/jpeg', buffer: shotA });
  await page.locator('#f-scans .att-message', { hasText: 'Đã lưu ảnh trên máy.' }).waitFor();
  await page.setInputFiles('#f-scans input.gallery', { name: 'IMG_20261207_071230.jpg', mimeType: 'image/jpeg', buffer: shotB });
  await statesAre(page, 'scans', ['Chờ gửi', 'Chờ gửi']);
  // Shrunk on the phone, the upright one turned by its EXIF orientation.
  assert.deepEqual(await shownSizes(page, '#f-scans img.thumb', 2), [[1600, 1067], [1067, 1600]], 'the photos as kept on the phone');
  const held = await local(page, 'registrations', REG);
  assert.equal(held.state, 'pending', 'the record waits to be sent, as any edit');
  const [refA, refB] = held.data.scans;
  for (const r of [refA, refB]) {
    assert.match(r.sha256, /^[0-9a-f]{64}$/);
    assert.equal(r.content_type, 'image/jpeg');
    assert.match(r.name, /\.jpg$/);
    assert.ok(r.size > CHUNK && r.size < 2 * 1024 * 1024, `a shrunk photo of a form is more than a chunk and well under 2 MiB: ${r.size}`);
  }
  // A camera's file name reads as a code: the photo is called by when it was taken.
  assert.match(refA.name, /^Ảnh chụp \d\d-\d\d-20\d\d \d\d\.\d\d\.\d\d\.jpg$/);
  await page.locator('#sync-state', { hasText: '2 ảnh' }).waitFor();
  await checkLayout(page, 'phone, photos waiting');
  await page.screenshot({ path: t.screenshot, fullPage: true });

  // ---- Online: the record goes first; the photos follow. The connection is cut in the middle
  // of the first photo (its second chunk), and the app reloaded: the upload resumes from
  // what the server holds.
  const puts = [];
  page.on('request', (r) => {
    if (r.method() === 'PUT' && r.url().includes('/v1/uploads/')) puts.push({ sha: r.url().split('/').pop(), offset: Number(r.headers()['upload-offset']) });
  });
  // Every chunk after the first is cut until the server has been asked what it holds (a sync
  // woken by the long poll would otherwise resume before the reload).
  let cut = 0;
  await page.route('**/v1/uploads/*', (route) => {
    const r = route.request();
    if (r.method() === 'PUT' && r.url().endsWith(refA.sha256) && r.headers()['upload-offset'] !== '0') {
      cut++;
      return route.abort('connectionreset');
    }
    return route.continue();
  });
  await t.browser.setOffline(false);
  for (let i = 0; i < 200 && !cut; ++i) await page.waitForTimeout(100);
  assert.ok(cut >= 1, 'the second chunk was sent (and cut)');
  // The record reached the server whatever happens to its photos.
  for (let i = 0; i < 100; ++i) {
    const r = await api('GET', `/v1/records/registrations/${REG}`, reviewer);
    if (r.json && r.json.data && r.json.data.scans) break;
    await page.waitForTimeout(100);
  }
  const onServer = await api('GET', `/v1/records/registrations/${REG}`, reviewer);
  assert.deepEqual(onServer.json.data.scans, [refA, refB], 'the record with both references');
  const before = await api('GET', '/v1/uploads/' + refA.sha256, phoneToken);
  assert.equal(before.json.complete, false, 'the first photo is not whole on the server yet');
  assert.equal(before.json.offset, CHUNK, 'the server holds its first chunk');
  await page.unroute('**/v1/uploads/*');
  // The second photo's first chunk reaches the server by another way just before the app sends
  // it (as when an answer is lost on its way back): the app's own PUT is answered 409
  // upload_offset, and it goes on from the error's offset.
  let raced = 0;
  let racedOffset = null;
  const answersB = [];
  page.on('response', (res) => {
    const r = res.request();
    if (r.method() === 'PUT' && r.url().endsWith(refB.sha256)) answersB.push([Number(r.headers()['upload-offset']), res.status()]);
  });
  await page.route('**/v1/uploads/' + refB.sha256, async (route) => {
    const r = route.request();
    if (r.method() === 'PUT' && r.headers()['upload-offset'] === '0' && !raced++) {
      const first = await api('PUT', '/v1/uploads/' + refB.sha256, phoneToken, r.postDataBuffer(),
        { 'Content-Type': 'image/jpeg', 'Upload-Offset': '0', 'Upload-Length': String(refB.size) });
      racedOffset = first.json && first.json.offset;
    }
    return route.continue();
  });
  await page.reload();
  await page.locator('#work:not([hidden])').waitFor();
  await openRecord(page, 'registrations', 'Nguyễn Thị Lan');
  await statesAre(page, 'scans', ['Đã gửi', 'Đã gửi']);
  await page.unroute('**/v1/uploads/' + refB.sha256);
  assert.deepEqual([raced, racedOffset], [1, CHUNK], 'the first chunk of the second photo went ahead of the app');
  assert.deepEqual(answersB.slice(0, 2), [[0, 409], [CHUNK, refB.size <= 2 * CHUNK ? 201 : 200]],
    'the app resumed from the 409\'s offset');
  const putsA = puts.filter((p) => p.sha === refA.sha256).map((p) => p.offset);
  assert.equal(putsA.filter((o) => o === 0).length, 1, `the first chunk was sent once: ${putsA}`);
  assert.deepEqual(putsA.slice(0, 3), [0, CHUNK, CHUNK], 'after the cut and the reload, resumed from the server\'s offset');
  assert.ok(putsA.indexOf(2 * CHUNK) > 0 || refA.size <= 2 * CHUNK, 'and went on from there');
  for (const r of [refA, refB]) {
    assert.deepEqual(puts.filter((p) => p.sha === r.sha256).map((p) => p.offset).slice(-1)[0] % CHUNK, 0, 'chunks of 256 KiB');
    const u = await api('GET', '/v1/uploads/' + r.sha256, office);
    assert.equal(u.status, 200);
    assert.deepEqual([u.json.complete, u.json.offset], [true, r.size], 'the upload is complete');
    const b = await api('GET', '/v1/blobs/' + r.sha256, reviewer);
    assert.equal(b.status, 200);
    assert.equal(b.headers.get('content-type'), 'image/jpeg');
    assert.equal(sha256(b.bytes), r.sha256, 'the bytes are those the reference names');
    const size = jpegSize(b.bytes);
    assert.ok(Math.max(size.width, size.height) <= 1600, `at most 1600 px: ${JSON.stringify(size)}`);
  }
  assert.deepEqual(jpegSize((await api('GET', '/v1/blobs/' + refB.sha256, reviewer)).bytes), { width: 1067, height: 1600 }, 'stored upright');
  await page.locator('#sync-state', { hasText: /Chưa gửi: 0 thay đổi · / }).waitFor();
  await checkLayout(page, 'phone, photos sent');
  await page.screenshot({ path: beside('-sent.png'), fullPage: true });

  // ---- Removing a photo is an edit like any other.
  await items(page, 'scans').nth(1).locator('button', { hasText: 'Bỏ ảnh' }).click();
  await page.locator('#f-scans .att-message', { hasText: 'Đã bỏ ảnh khỏi hồ sơ.' }).waitFor();
  await statesAre(page, 'scans', ['Đã gửi']);
  for (let i = 0; i < 100; ++i) {
    const r = await api('GET', `/v1/records/registrations/${REG}`, reviewer);
    if (r.json.data.scans.length === 1) break;
    await page.waitForTimeout(100);
  }
  const afterRemove = await api('GET', `/v1/records/registrations/${REG}`, reviewer);
  assert.deepEqual(afterRemove.json.data.scans, [refA], 'the server holds the record without the removed photo');
  assert.equal(afterRemove.json.data.commitments.length, 1, 'and nothing else changed');

  // ---- A photo taken elsewhere and not sent yet; then sent, fetched with the token and shown.
  await openRecord(page, 'inspections', 'Chi bộ ấp Tân Lợi');
  await statesAre(page, 'minutes', ['Chưa có trên máy chủ']);
  await items(page, 'minutes').locator('.att-why', { hasText: 'chưa gửi lên' }).waitFor();
  await checkLayout(page, 'phone, photo not on the server');
  await page.screenshot({ path: beside('-missing.png'), fullPage: true });
  await upload(office, minutes);
  await openRecord(page, 'inspections', 'Chi bộ ấp Tân Lợi');
  await statesAre(page, 'minutes', ['Đã gửi']);
  assert.deepEqual(await shownSizes(page, '#f-minutes img.thumb', 1), [[800, 600]]);
  assert.ok(t.requested.some((u) => u.endsWith('/v1/blobs/' + minutesRef.sha256)), 'fetched from the server');
  // Kept on the phone: shown again with no network.
  await t.browser.setOffline(true);
  await page.reload();
  await page.locator('#work:not([hidden])').waitFor();
  await openRecord(page, 'inspections', 'Chi bộ ấp Tân Lợi');
  assert.deepEqual(await shownSizes(page, '#f-minutes img.thumb', 1), [[800, 600]], 'the fetched photo is kept on the phone');
  await t.browser.setOffline(false);

  // ---- A 12-megapixel photo: what it costs once shrunk.
  await page.setInputFiles('#f-minutes input.camera', { name: 'IMG_20261207_0800.jpg', mimeType: 'image/jpeg', buffer: big });
  await statesAre(page, 'minutes', ['Đã gửi', /Chờ gửi|Đang gửi \d+%|Đã gửi/]);
  const bigRef = (await local(page, 'inspections', INSP)).data.minutes[1];
  await statesAre(page, 'minutes', ['Đã gửi', 'Đã gửi']);
  const bigStored = (await api('GET', '/v1/blobs/' + bigRef.sha256, reviewer)).bytes;
  assert.equal(sha256(bigStored), bigRef.sha256);
  assert.deepEqual(jpegSize(bigStored), { width: 1600, height: 1200 });
  console.log(`A 12-megapixel photo of a signed form (4000×3000, ${big.length.toLocaleString('en')} bytes as the camera's JPEG at 0.92) `
    + `costs ${bigRef.size.toLocaleString('en')} bytes after shrinking on the phone (1600×1200, JPEG 0.8): `
    + `${(bigRef.size / 1024).toFixed(0)} KiB, ${Math.ceil(bigRef.size / CHUNK)} chunks of 256 KiB.`);

  // ---- A refusal is a sentence, and the record keeps its reference.
  await page.route('**/v1/uploads/*', (route) => (route.request().method() === 'PUT'
    ? route.fulfill({ status: 413, contentType: 'application/json', body: JSON.stringify({ error: { code: 'blob_too_large', message: 'over the limit' } }) })
    : route.continue()));
  await page.setInputFiles('#f-minutes input.gallery', { name: 'Biên bản trang 2.jpg', mimeType: 'image/jpeg', buffer: await photo(page, 900, 1200, 60) });
  await statesAre(page, 'minutes', ['Đã gửi', 'Đã gửi', 'Không gửi được']);
  await items(page, 'minutes').nth(2).locator('.att-why', { hasText: 'Ảnh quá lớn, máy chủ không nhận.' }).waitFor();
  await page.unroute('**/v1/uploads/*');
  await page.setViewportSize(LAPTOP);
  await checkLayout(page, 'laptop, inspection');
  await page.screenshot({ path: beside('-laptop.png'), fullPage: true });
  await page.setViewportSize(PHONE);

  // ---- A new record: its photo waits for «Lưu» (nothing is sent for a form never saved), then
  // goes with the record.
  await page.click('#back');
  await page.selectOption('#collection', 'inspections');
  await page.click('#new-record');
  await page.selectOption('#f-unit', { label: 'Chi bộ ấp Tân Lợi' });
  const draftShot = await photo(page, 1000, 1400, 300);
  await page.setInputFiles('#f-minutes input.camera', { name: 'image.jpg', mimeType: 'image/jpeg', buffer: draftShot });
  await statesAre(page, 'minutes', ['Chưa lưu']);
  await page.locator('#f-minutes .att-message', { hasText: 'Ảnh sẽ được lưu cùng hồ sơ khi bấm «Lưu».' }).waitFor();
  await page.waitForTimeout(1500);   // a sync or two meanwhile: the draft is not sent
  assert.equal(await page.evaluate(() => self.fieldsyncFiles.pendingCount()), 0, 'a photo of an unsaved form is not queued');
  await page.click('#save');
  await page.locator('#save-message', { hasText: 'Đã lưu trên máy' }).waitFor();
  let created = null;
  for (let i = 0; i < 200 && !created; ++i) {
    const r = await api('POST', '/v1/sync', reviewer, { batch_id: 'pull-' + i + '-' + Date.now(), cursor: '', changes: [] });
    created = r.json.changes.find((c) => c.collection === 'inspections' && c.id !== INSP && !c.deleted) || null;
    if (!created) await page.waitForTimeout(100);
  }
  assert.ok(created, 'the new inspection reached the server');
  assert.equal(created.data.minutes.length, 1);
  const draftRef = created.data.minutes[0];
  for (let i = 0; i < 200 && !(await api('GET', '/v1/uploads/' + draftRef.sha256, office)).json.complete; ++i) await page.waitForTimeout(100);
  const draftBytes = (await api('GET', '/v1/blobs/' + draftRef.sha256, reviewer)).bytes;
  assert.equal(sha256(draftBytes), draftRef.sha256, 'its photo followed');
  assert.deepEqual(jpegSize(draftBytes), { width: 1000, height: 1400 }, 'under 1600 px: not enlarged');

  // ---- Two different photos added to one registration: on the phone offline, at the district.
  await t.browser.setOffline(true);
  await openRecord(page, 'registrations', 'Nguyễn Thị Lan');
  await page.setInputFiles('#f-scans input.camera', { name: 'Trang 2.jpg', mimeType: 'image/jpeg', buffer: shotB });
  await statesAre(page, 'scans', ['Đã gửi', 'Đã gửi']);   // the same photo as before: on the server already
  // A PDF is picked as it is (no camera for it).
  await page.setInputFiles('#f-scans input.gallery', { name: 'Biên bản họp chi bộ.pdf', mimeType: 'application/pdf', buffer: PDF });
  await statesAre(page, 'scans', ['Đã gửi', 'Đã gửi', 'Chờ gửi']);
  const [pdfTab] = await Promise.all([page.waitForEvent('popup'), items(page, 'scans').nth(2).locator('.thumb.pdf').click()]);
  await pdfTab.waitForURL(/^blob:http:\/\/127\.0\.0\.1/, { waitUntil: 'commit' });   // from the device, offline
  await pdfTab.close();
  const phoneRefs = (await local(page, 'registrations', REG)).data.scans;
  const head = await api('GET', `/v1/records/registrations/${REG}`, reviewer);
  await upload(office, district);
  const districtRef = refOf(district, 'Bản đăng ký (bản chụp ở huyện).jpg');
  assert.equal((await write(office, { change_id: 'c-scan', collection: 'registrations', id: REG, unit_id: 'ap-1', op: 'put',
    base_version: head.json.version, data: { ...head.json.data, scans: [refA, districtRef] } })).status, 'applied');
  await t.browser.setOffline(false);
  await page.click('#back');
  await page.locator('#records li', { hasText: 'Nguyễn Thị Lan' }).locator('.badge', { hasText: 'Chờ cấp trên xem xét' }).waitFor({ timeout: 20000 });
  await openRecord(page, 'registrations', 'Nguyễn Thị Lan');
  await statesAre(page, 'scans', ['Đã gửi', 'Đã gửi', 'Đã gửi']);   // the held change's files go all the same
  const pdfRef = phoneRefs[2];
  assert.deepEqual([pdfRef.content_type, pdfRef.name, pdfRef.size], ['application/pdf', 'Biên bản họp chi bộ.pdf', PDF.length]);
  // (An admin device may read any blob; a reviewer only those a version of a record names.)
  const pdfBlob = await api('GET', '/v1/blobs/' + pdfRef.sha256, root);
  assert.equal(pdfBlob.headers.get('content-type'), 'application/pdf');
  assert.ok(pdfBlob.bytes.equals(PDF), 'the PDF arrived as it was');

  const conflicts = await api('GET', '/v1/conflicts', reviewer);
  const listed = conflicts.json.conflicts.find((c) => c.record_id === REG);
  assert.ok(listed && listed.fields.includes('/scans'), 'the photos collide');
  const review = await t.browser.newPage();
  await review.setViewportSize(LAPTOP);
  await review.goto(base + '/admin/');
  await t.signIn(review, reviewer);
  await review.click(`#conflicts tbody tr[data-id="${listed.id}"] button`);
  await review.waitForSelector('#detail-view:not([hidden])');
  const row = '#sides tr[data-field="/scans"]';
  // Both sides' photos in the table (head: the district's two, incoming: the phone's two)...
  assert.deepEqual(await shownSizes(review, `${row} td:nth-child(3) img.thumb`, 2), [[1600, 1067], [1200, 900]]);
  assert.deepEqual(await shownSizes(review, `${row} td:nth-child(4) img.thumb`, 2), [[1600, 1067], [1067, 1600]]);
  assert.deepEqual(await review.locator(`${row} td:nth-child(3) figcaption`).allTextContents(), [refA.name, districtRef.name]);
  // ...and side by side where the reviewer picks.
  const pick = review.locator('.pick-row.files');
  await pick.locator('label', { hasText: 'Bản hiện có' }).locator('img.thumb').nth(1).waitFor();
  await pick.locator('label', { hasText: 'Bản gửi đến' }).locator('img.thumb').nth(1).waitFor();
  const boxes = await pick.locator('label').evaluateAll((ls) => ls.map((l) => l.getBoundingClientRect()).map((r) => [r.top, r.left]));
  assert.equal(boxes[0][0], boxes[1][0], 'the two sides side by side');
  await review.screenshot({ path: beside('-review-laptop.png'), fullPage: true });
  await review.setViewportSize(PHONE);
  await review.waitForTimeout(200);
  const fit = await review.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(fit.scroll <= fit.inner, `review on a phone scrolls sideways: ${fit.scroll} > ${fit.inner}`);
  const widest = await review.evaluate(() => Math.max(...[...document.querySelectorAll('img.thumb')].map((i) => i.getBoundingClientRect().right)));
  assert.ok(widest <= 390, `every photo fits the phone: ${widest}`);
  const onPhone = await pick.locator('label').evaluateAll((ls) => ls.map((l) => l.getBoundingClientRect()).map((r) => [r.top, r.left, r.right]));
  assert.ok(onPhone[0][0] === onPhone[1][0] && onPhone[0][2] <= onPhone[1][1], 'side by side on the phone too');
  // The phone's screen where the photos are: the sides, then the pick.
  await review.locator(row).scrollIntoViewIfNeeded();
  await review.evaluate((sel) => document.querySelector(sel).scrollIntoView({ block: 'start' }), row);
  await review.screenshot({ path: beside('-review-phone.png') });
  await review.evaluate(() => document.querySelector('.pick-row.files').scrollIntoView({ block: 'start' }));
  await review.screenshot({ path: beside('-review-phone-pick.png') });
  // The reviewer takes the phone's photos; the preview shows them before the decision.
  await pick.locator('label', { hasText: 'Bản gửi đến' }).locator('input').check();
  await review.click('#pick');
  await review.waitForSelector('#preview:not([hidden])');
  assert.deepEqual(await shownSizes(review, '#preview-table tr[data-field="/scans"] img.thumb', 2), [[1600, 1067], [1067, 1600]]);
  await review.click('#confirm');
  await review.locator('#message', { hasText: 'Đã giải quyết xung đột.' }).waitFor();
  // The version the decision wrote, in the history: its photos, and the PDF, which opens from
  // its button, its bytes fetched with the token.
  const last = review.locator('#history tbody tr').last();
  await last.locator('img.thumb').nth(1).waitFor();
  const [pdfPage] = await Promise.all([review.waitForEvent('popup'), last.locator('button.open-pdf').click()]);
  await pdfPage.waitForURL(/^blob:http:\/\/127\.0\.0\.1/, { waitUntil: 'commit' });
  await pdfPage.close();
  const decided = await api('GET', `/v1/records/registrations/${REG}`, reviewer);
  assert.deepEqual(decided.json.data.scans, phoneRefs, 'the phone\'s photos were kept');
  await review.close();

  assert.deepEqual(t.problems, []);
});
