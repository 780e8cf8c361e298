// The review page (issue 5; protocol/SPEC.md, "Conflicts" and "Resolving a conflict").
// Every piece of data reaches the page through textContent or form values, never as HTML,
// so a record holding markup shows as text. The token lives in sessionStorage (gone with the
// tab) and travels only in the Authorization header.
'use strict';

const TOKEN_KEY = 'fieldsync.review.token';
const LANG_KEY = 'fieldsync.review.lang';

const strings = {
  vi: {
    title: 'Xung đột và báo cáo', language: 'Ngôn ngữ', signout: 'Đăng xuất', signin_title: 'Đăng nhập',
    token_label: 'Mã thiết bị của người xem xét', signin: 'Đăng nhập', open_conflicts: 'Xung đột',
    status: 'Trạng thái', status_open: 'đang mở', status_resolved: 'đã giải quyết',
    status_dismissed: 'đã bỏ qua', status_any: 'tất cả', collection: 'Danh mục', refresh: 'Tải lại',
    record: 'Bản ghi', fields: 'Trường xung đột', writer: 'Người gửi', when: 'Thời điểm',
    no_conflicts: 'Không có xung đột nào.', back: '← Danh sách', field: 'Trường', base: 'Gốc',
    head: 'Bản hiện có', incoming: 'Bản gửi đến', pick_legend: 'Chọn từng trường xung đột',
    note: 'Ghi chú', keep_head: 'Giữ bản hiện có', take_incoming: 'Lấy bản gửi đến',
    pick: 'Áp dụng lựa chọn từng trường', edit: 'Sửa…', dismiss: 'Bỏ qua', edit_label: 'Bản ghi (JSON)',
    edit_delete: 'Xóa bản ghi', save_edit: 'Lưu bản đã sửa', history: 'Lịch sử bản ghi',
    version: 'Phiên bản', how: 'Cách ghi', content: 'Nội dung', open: 'Mở',
    whole_record: '(cả bản ghi)', absent: '(không có)', deleted: '(đã xóa)',
    unit: 'Đơn vị', routed_to: 'Thuộc', head_by: 'Bản hiện có do', incoming_by: 'Bản gửi đến do',
    current: 'Phiên bản hiện tại', closed: 'Đã đóng', by: 'bởi', choice: 'Cách giải quyết',
    signed_in: 'Đã đăng nhập.', bad_token: 'Mã không đúng hoặc đã bị thu hồi.',
    resolved_ok: 'Đã giải quyết xung đột.', dismissed_ok: 'Đã bỏ qua xung đột.',
    stale: 'Bản ghi đã thay đổi từ lúc bạn xem. Xung đột được hiển thị lại theo bản hiện tại; hãy quyết định lại.',
    closed_already: 'Xung đột này đã được đóng.', forbidden: 'Thiết bị này không có quyền giải quyết xung đột.',
    bad_json: 'Bản sửa không phải JSON hợp lệ.', error: 'Lỗi', pick_missing: 'Hãy chọn một bên cho mỗi trường xung đột.',
    applied: 'ghi trực tiếp', merged: 'gộp', resolved: 'giải quyết',
    tab_devices: 'Thiết bị', devices_title: 'Thiết bị và ghi danh', device: 'Thiết bị', role: 'Vai trò',
    last_sync: 'Đồng bộ lần cuối', never: 'chưa lần nào', make_code: 'Tạo mã ghi danh', code: 'Mã ghi danh',
    code_for: 'Mã ghi danh cho', expires: 'Dùng được một lần, đến', revoked: 'đã thu hồi',
    role_field: 'cán bộ cơ sở', role_reviewer: 'người xem xét', role_admin: 'quản trị',
    code_made: 'Đã tạo mã ghi danh. Mở đường dẫn hoặc quét mã QR bằng điện thoại của thiết bị đó; các mã cũ chưa dùng của thiết bị này không còn hiệu lực.',
    tab_conflicts: 'Xung đột', tab_reports: 'Báo cáo', reports_title: 'Báo cáo của Huyện ủy', report: 'Báo cáo',
    report_participation: 'Tỷ lệ tham gia học tập chuyên đề',
    report_registrations: 'Đảng viên đăng ký học tập và làm theo',
    report_unreviewed_cells: 'Chi bộ chưa nhận xét đảng viên', report_inspections: 'Kiểm tra và kết quả',
    year: 'Năm', show: 'Xem', no_rows: 'Không có số liệu.', all_units: 'Tất cả đơn vị', totals: 'Tổng',
    period: 'Kỳ', drill: 'Xem chi tiết', reports_forbidden: 'Thiết bị này không được xem báo cáo.',
    col_unit: 'Mã đơn vị', col_unit_name: 'Đơn vị', col_kind: 'Loại', col_audience: 'Đối tượng',
    col_sessions: 'Số buổi', col_invited: 'Được mời', col_attended: 'Tham dự', col_rate: 'Tỷ lệ',
    col_members: 'Đảng viên', col_registered: 'Đã đăng ký', col_not_registered: 'Chưa đăng ký',
    col_vague: 'Chung chung', col_parent_name: 'Thuộc', col_reviewed: 'Đã nhận xét',
    col_not_reviewed: 'Chưa nhận xét', col_date: 'Ngày', col_team: 'Đoàn kiểm tra', col_findings: 'Kết quả',
    col_vague_registrations: 'Đăng ký chung chung', col_conclusions: 'Thông báo kết luận',
    tot_sessions: 'số buổi', tot_invited: 'được mời', tot_attended: 'tham dự', tot_rate: 'tỷ lệ',
    tot_members: 'đảng viên', tot_registered: 'đã đăng ký', tot_not_registered: 'chưa đăng ký',
    tot_vague: 'chung chung', tot_cells_with_registrations: 'chi bộ có đăng ký',
    tot_cells_not_reviewed: 'chi bộ chưa nhận xét', tot_cells_partly_reviewed: 'chi bộ nhận xét chưa đủ',
    tot_inspections: 'cuộc kiểm tra', tot_with_vague_registrations: 'nơi có đăng ký chung chung',
    tot_vague_registrations: 'đăng ký chung chung', tot_conclusions: 'thông báo kết luận',
  },
  en: {
    title: 'Conflicts and reports', language: 'Language', signout: 'Sign out', signin_title: 'Sign in',
    token_label: "Reviewer device token", signin: 'Sign in', open_conflicts: 'Conflicts',
    status: 'Status', status_open: 'open', status_resolved: 'resolved', status_dismissed: 'dismissed',
    status_any: 'any', collection: 'Collection', refresh: 'Refresh', record: 'Record',
    fields: 'Colliding fields', writer: 'Written by', when: 'When', no_conflicts: 'No conflicts.',
    back: '← List', field: 'Field', base: 'Base', head: 'Head', incoming: 'Incoming',
    pick_legend: 'Pick a side for each colliding field', note: 'Note', keep_head: 'Keep head',
    take_incoming: 'Take incoming', pick: 'Apply per-field picks', edit: 'Edit…', dismiss: 'Dismiss',
    edit_label: 'Record (JSON)', edit_delete: 'Delete the record', save_edit: 'Save the edited record',
    history: 'Record history', version: 'Version', how: 'How', content: 'Content', open: 'Open',
    whole_record: '(whole record)', absent: '(absent)', deleted: '(deleted)', unit: 'Unit',
    routed_to: 'Routed to', head_by: 'Head written by', incoming_by: 'Incoming written by',
    current: 'Current version', closed: 'Closed', by: 'by', choice: 'Choice',
    signed_in: 'Signed in.', bad_token: 'Unknown or revoked token.', resolved_ok: 'Conflict resolved.',
    dismissed_ok: 'Conflict dismissed.',
    stale: 'The record changed since you looked. The conflict is shown again on the current head; decide again.',
    closed_already: 'This conflict is already closed.', forbidden: 'This device may not resolve conflicts.',
    bad_json: 'The edited record is not valid JSON.', error: 'Error',
    pick_missing: 'Pick a side for every colliding field.',
    applied: 'applied', merged: 'merged', resolved: 'resolved',
    tab_devices: 'Devices', devices_title: 'Devices and enrolment', device: 'Device', role: 'Role',
    last_sync: 'Last sync', never: 'never', make_code: 'Make an enrolment code', code: 'Enrolment code',
    code_for: 'Enrolment code for', expires: 'Usable once, until', revoked: 'revoked',
    role_field: 'field', role_reviewer: 'reviewer', role_admin: 'admin',
    code_made: 'Enrolment code made. Open the link or scan the QR code with that device\'s phone; its older unused codes no longer work.',
    tab_conflicts: 'Conflicts', tab_reports: 'Reports', reports_title: "The district's reports", report: 'Report',
    report_participation: 'Study session participation', report_registrations: 'Members registered this year',
    report_unreviewed_cells: 'Cells that have not reviewed their members', report_inspections: 'Inspections and findings',
    year: 'Year', show: 'Show', no_rows: 'No figures.', all_units: 'All units', totals: 'Totals',
    period: 'Period', drill: 'Drill down', reports_forbidden: 'This device may not read reports.',
    col_unit: 'Unit id', col_unit_name: 'Unit', col_kind: 'Kind', col_audience: 'Audience',
    col_sessions: 'Sessions', col_invited: 'Invited', col_attended: 'Attended', col_rate: 'Rate',
    col_members: 'Members', col_registered: 'Registered', col_not_registered: 'Not registered',
    col_vague: 'Vague', col_parent_name: 'In', col_reviewed: 'Reviewed', col_not_reviewed: 'Not reviewed',
    col_date: 'Date', col_team: 'Team', col_findings: 'Findings', col_vague_registrations: 'Vague registrations',
    col_conclusions: 'Conclusions',
    tot_sessions: 'sessions', tot_invited: 'invited', tot_attended: 'attended', tot_rate: 'rate',
    tot_members: 'members', tot_registered: 'registered', tot_not_registered: 'not registered',
    tot_vague: 'vague', tot_cells_with_registrations: 'cells with registrations',
    tot_cells_not_reviewed: 'cells not reviewed', tot_cells_partly_reviewed: 'cells partly reviewed',
    tot_inspections: 'inspections', tot_with_vague_registrations: 'with vague registrations',
    tot_vague_registrations: 'vague registrations', tot_conclusions: 'conclusions',
  },
};

let lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'vi';
let current = null;  // the conflict on screen
let report = null;   // the report on screen

const $ = (id) => document.getElementById(id);
const t = (key) => strings[lang][key] ?? key;

// Names are shown in NFC: a name stored decomposed (NFD) draws its marks apart in some fonts.
const nfc = (s) => (typeof s === 'string' ? s.normalize('NFC') : '');

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  $('lang').value = lang;
  document.title = 'fieldsync — ' + t('title');
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
}

function say(text, isError) {
  const m = $('message');
  m.textContent = text;
  m.className = isError ? 'error' : '';
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, body) {
  const init = { headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store' };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let json = null;
  try { json = await res.json(); } catch (_) { json = null; }
  if (res.status === 401) {
    signOut();
    say(t('bad_token'), true);
  }
  return { status: res.status, json };
}

function errorText(r) {
  const code = r.json && r.json.error ? r.json.error.code : '';
  if (code === 'stale') return t('stale');
  if (code === 'conflict_closed') return t('closed_already');
  if (code === 'forbidden') return t('forbidden');
  const message = r.json && r.json.error ? r.json.error.message : 'HTTP ' + r.status;
  return t('error') + ' (' + (code || r.status) + '): ' + message;
}

function when(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB');
}

function show(view) {
  $('signin').hidden = view !== 'signin';
  $('list-view').hidden = view !== 'list';
  $('detail-view').hidden = view !== 'detail';
  $('reports-view').hidden = view !== 'reports';
  $('devices-view').hidden = view !== 'devices';
  $('tab-devices').classList.toggle('active', view === 'devices');
  $('signout').hidden = view === 'signin';
  $('tabs').hidden = view === 'signin';
  $('tab-conflicts').classList.toggle('active', view === 'list' || view === 'detail');
  $('tab-reports').classList.toggle('active', view === 'reports');
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  current = null;
  show('signin');
}

// ---- the list ---------------------------------------------------------------------------

async function loadList() {
  const q = new URLSearchParams({ status: $('status-filter').value, limit: '200' });
  const coll = $('collection-filter').value.trim();
  if (coll) q.set('collection', coll);
  const r = await api('/v1/conflicts?' + q.toString());
  if (r.status !== 200) { if (r.status !== 401) say(errorText(r), true); return; }
  const body = $('conflicts').tBodies[0];
  body.replaceChildren();
  for (const c of r.json.conflicts) {
    const tr = el('tr');
    tr.dataset.id = c.id;
    tr.append(el('td', c.collection + ' / ' + c.record_id),
              el('td', c.fields.map(fieldName).join(', ')),
              el('td', c.device_id),
              el('td', when(c.created_ms)),
              el('td', t('status_' + c.status)));
    const open = el('button', t('open'));
    open.type = 'button';
    open.className = 'open-conflict';
    open.addEventListener('click', () => openConflict(c.id));
    const td = el('td');
    td.append(open);
    tr.append(td);
    body.append(tr);
  }
  $('empty').hidden = r.json.conflicts.length !== 0;
  show('list');
}

// ---- one conflict -----------------------------------------------------------------------

function fieldName(pointer) { return pointer === '' ? t('whole_record') : pointer; }

function display(value, deletedSide) {
  if (deletedSide) return [t('deleted'), 'absent'];
  if (value === undefined) return [t('absent'), 'absent'];
  if (typeof value === 'string') return [value, ''];
  return [JSON.stringify(value, null, 1), ''];
}

// The value at a JSON Pointer (RFC 6901), or undefined.
function at(doc, pointer) {
  if (pointer === '') return doc;
  let v = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (v === null || typeof v !== 'object' || !(key in v)) return undefined;
    v = v[key];
  }
  return v;
}

async function openConflict(id) {
  say('');
  const r = await api('/v1/conflicts/' + encodeURIComponent(id));
  if (r.status !== 200) { if (r.status !== 401) say(errorText(r), true); return; }
  renderConflict(r.json);
  show('detail');
  await loadHistory();
}

function writerText(w) {
  if (!w) return '';
  const who = w.device_name ? w.device_name + ' (' + w.device_id + ')' : w.device_id;
  return who + ' — ' + when(w.server_ms);
}

function renderConflict(c) {
  current = c;
  $('detail-title').textContent = c.collection + ' / ' + c.record_id + ' — ' + t('status_' + c.status);
  const meta = $('meta');
  meta.replaceChildren();
  const add = (k, v) => meta.append(el('dt', t(k)), el('dd', v));
  add('unit', c.unit_id);
  add('routed_to', c.path);
  add('head_by', writerText(c.writers && c.writers.head) + ' · v' + c.head_version);
  add('incoming_by', writerText(c.writers && c.writers.incoming));
  add('current', 'v' + c.current_version + (c.current_deleted ? ' ' + t('deleted') : ''));
  if (c.status !== 'open' && c.resolution) {
    add('closed', when(c.closed_ms) + ' ' + t('by') + ' ' + (c.closed_by_name || c.closed_by));
    add('choice', t(c.resolution.choice) + (c.resolution.note ? ' — ' + c.resolution.note : ''));
  }

  // Rows: every top-level field of any side, plus the colliding pointers below the top level.
  const colliding = new Set(c.fields);
  const names = new Set();
  for (const side of [c.base, c.head, c.incoming]) if (side && typeof side === 'object') Object.keys(side).forEach((k) => names.add(k));
  const rows = [...names].sort().map((k) => '/' + k.replace(/~/g, '~0').replace(/\//g, '~1'));
  for (const p of c.fields) if (p !== '' && !rows.includes(p)) rows.push(p);
  const body = $('sides').tBodies[0];
  body.replaceChildren();
  for (const p of rows) {
    const tr = el('tr');
    tr.dataset.field = p;
    const collides = colliding.has('') || colliding.has(p) || c.fields.some((f) => f.startsWith(p + '/'));
    if (collides) tr.className = 'collide';
    tr.append(el('td', p.slice(1).replace(/~1/g, '/').replace(/~0/g, '~')));
    for (const [doc, del] of [[c.base, false], [c.head, c.head_deleted], [c.incoming, c.incoming_deleted]]) {
      const [text, cls] = display(doc == null ? undefined : at(doc, p), del);
      tr.append(el('td', text, cls));
    }
    body.append(tr);
  }

  const picks = $('pick-rows');
  picks.replaceChildren();
  const wholeRecord = colliding.has('');
  $('picks').hidden = wholeRecord || c.status !== 'open';
  if (!wholeRecord) {
    c.fields.forEach((p, i) => {
      const row = el('div');
      row.append(el('strong', fieldName(p) + ': '));
      for (const side of ['head', 'incoming']) {
        const label = el('label');
        const input = document.createElement('input');
        input.type = 'radio';
        input.name = 'pick-' + i;
        input.value = side;
        input.dataset.pointer = p;
        label.append(input, document.createTextNode(' ' + t(side) + ' '));
        row.append(label);
      }
      picks.append(row);
    });
  }
  $('resolve-form').hidden = c.status !== 'open';
  $('pick').disabled = wholeRecord;
  $('editor').hidden = true;
  $('note').value = '';
}

async function loadHistory() {
  if (!current) return;
  const r = await api('/v1/records/' + encodeURIComponent(current.collection) + '/' +
                      encodeURIComponent(current.record_id) + '/history');
  const body = $('history').tBodies[0];
  body.replaceChildren();
  if (r.status !== 200) return;
  for (const v of r.json.versions) {
    const tr = el('tr');
    tr.append(el('td', v.version), el('td', t(v.how)), el('td', v.device_id), el('td', when(v.server_ms)),
              el('td', v.deleted ? t('deleted') : JSON.stringify(v.data, null, 1)));
    body.append(tr);
  }
}

async function resolve(body) {
  body.head_version = current.current_version;
  const note = $('note').value.trim();
  if (note) body.note = note;
  const r = await api('/v1/conflicts/' + encodeURIComponent(current.id) + '/resolve', body);
  if (r.status === 200) {
    renderConflict(r.json);
    say(body.choice === 'dismiss' ? t('dismissed_ok') : t('resolved_ok'));
  } else if (r.status === 409 && r.json && r.json.error && r.json.error.code === 'stale' && r.json.conflict) {
    renderConflict(r.json.conflict);
    say(t('stale'), true);
  } else if (r.status !== 401) {
    say(errorText(r), true);
  }
  await loadHistory();
}

function collectPicks() {
  const picks = {};
  for (const input of $('pick-rows').querySelectorAll('input[type=radio]:checked')) picks[input.dataset.pointer] = input.value;
  return picks;
}

// ---- reports (protocol/SPEC.md, "Reports") ---------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function percent(v) {
  if (v === null || v === undefined) return '–';
  return (v * 100).toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB', { maximumFractionDigits: 1 }) + '%';
}

function cellText(column, v) {
  if (v === null || v === undefined) return '–';
  if (column === 'rate') return percent(v);
  if (Array.isArray(v)) return v.join('; ');
  if (typeof v === 'number') return v.toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB');
  return String(v);
}

// One bar per row: a label, the bar (its share of `max`), and the figure as text.
function barsOf(r) {
  const label = (row) => (row.unit_name || row.unit || t('all_units')) + (row.audience ? ' — ' + row.audience : '');
  switch (r.report) {
    case 'participation':
      return r.rows.map((row) => ({ label: label(row), value: row.rate, max: 1,
                                    text: percent(row.rate) + ' (' + row.attended + '/' + row.invited + ')' }));
    case 'registrations':
      return r.rows.map((row) => ({ label: label(row), value: row.rate, max: 1,
                                    text: percent(row.rate) + ' (' + row.registered + '/' + row.members + ')' }));
    case 'unreviewed_cells':
      return r.rows.map((row) => ({ label: (row.parent_name ? row.parent_name + ' › ' : '') + row.unit_name,
                                    value: row.registered ? row.reviewed / row.registered : 0, max: 1,
                                    text: row.reviewed + '/' + row.registered }));
    case 'inspections': {
      const most = Math.max(1, ...r.rows.map((row) => row.vague_registrations));
      return r.rows.map((row) => ({ label: row.unit_name + ' · ' + row.date, value: row.vague_registrations,
                                    max: most, text: String(row.vague_registrations) }));
    }
    default:
      return [];
  }
}

function drawChart(r) {
  const box = $('report-chart');
  box.replaceChildren();
  const bars = barsOf(r);
  if (bars.length === 0) return;
  const rowH = 22, labelW = 330, barW = 300, textW = 160, width = labelW + barW + textW;
  const chart = svg('svg', { width, height: bars.length * rowH + 8, viewBox: `0 0 ${width} ${bars.length * rowH + 8}`,
                             role: 'img', 'aria-label': t('report_' + r.report) });
  bars.forEach((b, i) => {
    const y = 4 + i * rowH;
    const share = b.value === null || b.value === undefined ? 0 : Math.max(0, Math.min(1, b.value / b.max));
    const g = svg('g', { class: 'row' });
    g.append(svg('text', { x: labelW - 6, y: y + 15, 'text-anchor': 'end' }, b.label.length > 48 ? b.label.slice(0, 47) + '…' : b.label),
             svg('rect', { class: 'track', x: labelW, y: y + 3, width: barW, height: rowH - 6 }),
             svg('rect', { class: r.report === 'inspections' ? 'bar low' : (share < 0.9 ? 'bar low' : 'bar'),
                           x: labelW, y: y + 3, width: Math.round(barW * share), height: rowH - 6 }),
             svg('text', { x: labelW + barW + 6, y: y + 15 }, b.text));
    g.append(svg('title', {}, b.label + ': ' + b.text));
    chart.append(g);
  });
  box.append(chart);
}

function drawTable(r) {
  const head = $('report-table').tHead;
  const body = $('report-table').tBodies[0];
  head.replaceChildren();
  body.replaceChildren();
  const hr = el('tr');
  for (const c of r.columns) hr.append(el('th', t('col_' + c)));
  head.append(hr);
  const drillable = r.report === 'participation' || r.report === 'registrations' || r.report === 'unreviewed_cells';
  for (const row of r.rows) {
    const tr = el('tr');
    tr.dataset.unit = row.unit;
    for (const c of r.columns) {
      const td = el('td', cellText(c, row[c]), typeof row[c] === 'number' ? 'num' : '');
      if (c === 'unit' && drillable && row.unit && row.unit !== r.unit.id) {
        td.textContent = '';
        const b = el('button', row.unit, 'drill');
        b.type = 'button';
        b.title = t('drill');
        b.addEventListener('click', () => { $('report-unit').value = row.unit; loadReport(); });
        td.append(b);
      }
      tr.append(td);
    }
    body.append(tr);
  }
  $('report-empty').hidden = r.rows.length !== 0;
}

function drawReport(r) {
  report = r;
  const params = Object.entries(r.params || {}).filter(([, v]) => v !== null)
    .map(([k, v]) => t(k) + ' ' + v).join(', ');
  $('report-title').textContent = t('report_' + r.report) + ' — ' + (r.unit.id ? r.unit.name || r.unit.id : t('all_units')) +
                                  (params ? ' (' + params + ')' : '');
  drawChart(r);
  drawTable(r);
  const totals = Object.entries(r.totals || {}).map(([k, v]) => t('tot_' + k) + ': ' + cellText(k, v)).join(' · ');
  $('report-totals').textContent = totals ? t('totals') + ' — ' + totals : '';
}

async function loadReport() {
  say('');
  const q = new URLSearchParams();
  const unit = $('report-unit').value.trim();
  const year = $('report-year').value.trim();
  if (unit) q.set('unit', unit);
  if (year) q.set('year', year);
  const r = await api('/v1/reports/' + encodeURIComponent($('report-name').value) + (q.toString() ? '?' + q.toString() : ''));
  show('reports');
  if (r.status !== 200) {
    report = null;
    $('report-title').textContent = '';
    $('report-chart').replaceChildren();
    $('report-table').tHead.replaceChildren();
    $('report-table').tBodies[0].replaceChildren();
    $('report-totals').textContent = '';
    if (r.status === 403) say(t('reports_forbidden'), true);
    else if (r.status !== 401) say(errorText(r), true);
    return;
  }
  drawReport(r.json);
}

// ---- devices and enrolment codes (admin devices only) -------------------------------------

// The devices tab shows for an admin device only (GET /v1/me says which).
async function showDevicesTab() {
  const r = await api('/v1/me');
  $('tab-devices').hidden = !(r.status === 200 && r.json.device && r.json.device.role === 'admin');
}

async function loadDevices() {
  const r = await api('/v1/devices');
  if (r.status !== 200) { say(errorText(r), true); return; }
  show('devices');
  const rows = r.json.devices
    .slice()
    .sort((a, b) => (a.unit_name || a.unit_id).localeCompare(b.unit_name || b.unit_id, 'vi') || a.name.localeCompare(b.name, 'vi'))
    .map((d) => {
      const tr = el('tr');
      tr.dataset.id = d.id;
      tr.append(el('td', nfc(d.name)), el('td', nfc(d.unit_name) || d.unit_id),
        el('td', t('role_' + d.role) + (d.revoked ? ' (' + t('revoked') + ')' : '')),
        el('td', d.last_sync_ms ? when(d.last_sync_ms) : t('never')));
      const cell = el('td');
      if (!d.revoked) {
        const b = el('button', t('make_code'));
        b.type = 'button';
        b.addEventListener('click', () => makeCode(d));
        cell.append(b);
      }
      tr.append(cell);
      return tr;
    });
  $('devices').tBodies[0].replaceChildren(...rows);
}

// A one-time code for the device: its link on this server's address, and the link's QR code.
async function makeCode(d) {
  const r = await api('/v1/devices/' + encodeURIComponent(d.id) + '/enrol', { server: location.origin });
  if (r.status !== 200) { say(errorText(r), true); return; }
  $('enrolment-title').textContent = t('code_for') + ' ' + nfc(d.name);
  $('enrolment-code').textContent = r.json.code;
  $('enrolment-link').textContent = r.json.link;
  $('enrolment-link').href = r.json.link;
  $('enrolment-expires').textContent = t('expires') + ' ' + when(r.json.expires_ms);
  // The server's SVG (a rect and a path), parsed as SVG, never as HTML.
  const qr = $('enrolment-qr');
  qr.replaceChildren();
  if (r.json.qr_svg) {
    const doc = new DOMParser().parseFromString(r.json.qr_svg, 'image/svg+xml');
    if (doc.documentElement.nodeName === 'svg') qr.append(document.importNode(doc.documentElement, true));
  }
  $('enrolment').hidden = false;
  say(t('code_made'));
}

// ---- wiring -----------------------------------------------------------------------------

function wire() {
  $('lang').addEventListener('change', () => {
    lang = $('lang').value === 'en' ? 'en' : 'vi';
    localStorage.setItem(LANG_KEY, lang);
    applyLanguage();
    if (current && !$('detail-view').hidden) { renderConflict(current); loadHistory(); }
    else if (!$('reports-view').hidden) { if (report) drawReport(report); }
    else if (!$('devices-view').hidden) loadDevices();
    else if (token()) loadList();
  });
  $('signin').addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = $('token').value.trim();
    $('token').value = '';
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    const r = await api('/v1/conflicts?limit=1');
    if (r.status === 200) { say(t('signed_in')); await loadList(); await showDevicesTab(); }
    else if (r.status !== 401) say(errorText(r), true);
  });
  $('signout').addEventListener('click', () => { signOut(); say(''); });
  $('refresh').addEventListener('click', loadList);
  $('tab-conflicts').addEventListener('click', () => { current = null; say(''); loadList(); });
  $('tab-reports').addEventListener('click', loadReport);
  $('tab-devices').addEventListener('click', () => { $('enrolment').hidden = true; say(''); loadDevices(); });
  $('report-show').addEventListener('click', loadReport);
  $('report-name').addEventListener('change', loadReport);
  $('status-filter').addEventListener('change', loadList);
  $('back').addEventListener('click', () => { current = null; say(''); loadList(); });
  $('resolve-form').addEventListener('submit', (e) => e.preventDefault());
  $('keep-head').addEventListener('click', () => resolve({ choice: 'keep_head' }));
  $('take-incoming').addEventListener('click', () => resolve({ choice: 'take_incoming' }));
  $('dismiss').addEventListener('click', () => resolve({ choice: 'dismiss' }));
  $('pick').addEventListener('click', () => {
    const picks = collectPicks();
    if (Object.keys(picks).length !== current.fields.length) { say(t('pick_missing'), true); return; }
    resolve({ choice: 'pick', picks });
  });
  $('edit').addEventListener('click', () => {
    const start = current.current_deleted ? (current.incoming || current.head || {}) : current.current;
    $('edit-text').value = JSON.stringify(start, null, 2);
    $('edit-delete').checked = false;
    $('editor').hidden = false;
  });
  $('save-edit').addEventListener('click', () => {
    if ($('edit-delete').checked) { resolve({ choice: 'edit', deleted: true }); return; }
    let record;
    try { record = JSON.parse($('edit-text').value); } catch (_) { say(t('bad_json'), true); return; }
    resolve({ choice: 'edit', record });
  });
}

document.addEventListener('DOMContentLoaded', () => {
  wire();
  applyLanguage();
  if (token()) { loadList(); showDevicesTab(); } else show('signin');
});
