// The admin page: conflicts, reports and devices (protocol/SPEC.md, "Conflicts", "Reports",
// "Devices", "GET /admin/"). It speaks the reviewer's words: records by their titles, fields,
// choices and collections by the schema's labels (GET /v1/schema, the same labels the field
// app shows), units and devices by name, refusals as sentences. Every piece of data reaches the
// page through textContent or form values, never as HTML, so a record holding markup shows as
// text. The token lives in sessionStorage (gone with the tab) and travels only in the
// Authorization header.
'use strict';

const TOKEN_KEY = 'fieldsync.review.token';
const LANG_KEY = 'fieldsync.review.lang';

const strings = {
  vi: {
    title: 'Xung đột và báo cáo', language: 'Ngôn ngữ', signout: 'Đăng xuất', signin_title: 'Đăng nhập',
    token_label: 'Mã thiết bị của người xem xét', signin: 'Đăng nhập', open_conflicts: 'Xung đột',
    status: 'Trạng thái', status_open: 'đang mở', status_resolved: 'đã giải quyết',
    status_dismissed: 'đã bỏ qua', status_any: 'tất cả', collection: 'Loại bản ghi', refresh: 'Tải lại',
    all_collections: 'Tất cả', record: 'Bản ghi', fields: 'Trường xung đột', writer: 'Người gửi', when: 'Thời điểm',
    no_conflicts: 'Không có xung đột nào.', back: '← Danh sách', field: 'Trường', base: 'Bản gốc (trước khi sửa)',
    head: 'Bản hiện có', incoming: 'Bản gửi đến', pick_legend: 'Chọn từng trường xung đột',
    note: 'Ghi chú gửi người viết', keep_head: 'Giữ bản hiện có', take_incoming: 'Lấy bản gửi đến',
    pick: 'Theo lựa chọn từng trường', edit: 'Tự sửa…', dismiss: 'Bỏ qua',
    edit_title: 'Bản ghi do người xem xét sửa', edit_delete: 'Xóa bản ghi', save_edit: 'Xem trước bản đã sửa',
    history: 'Lịch sử bản ghi', version: 'Phiên bản', how: 'Cách ghi', content: 'Nội dung', open: 'Xem',
    open_decide: 'Xem và quyết định',
    whole_record: 'Cả bản ghi', absent: '(để trống)', deleted: '(đã xóa)', yes: 'Có', no: 'Không',
    unit: 'Đơn vị', sender_unit: 'Đơn vị người gửi', routed_to: 'Thuộc', head_by: 'Bản hiện có do', incoming_by: 'Bản gửi đến do',
    current: 'Phiên bản hiện tại', closed: 'Đã đóng', by: 'bởi', choice: 'Cách giải quyết',
    unknown_device: 'thiết bị không rõ', unknown_record: '(bản ghi không xem được)', untitled: 'chưa có tên',
    signed_in: 'Đã đăng nhập.', resolved_ok: 'Đã giải quyết xung đột.', dismissed_ok: 'Đã bỏ qua xung đột.',
    pick_missing: 'Hãy chọn một bên cho mỗi trường xung đột.',
    bad_number: 'Trường «{field}» phải là một số nguyên.',
    applied: 'ghi trực tiếp', merged: 'gộp', resolved: 'giải quyết', version_n: 'phiên bản {n}',
    keep_head_choice: 'giữ bản hiện có', take_incoming_choice: 'lấy bản gửi đến', pick_choice: 'chọn từng trường',
    edit_choice: 'người xem xét tự sửa', dismiss_choice: 'bỏ qua',
    preview_of: 'Bản ghi sau khi quyết định: {choice}', after: 'Sau khi quyết định',
    preview_changed: 'Thay đổi so với bản hiện có: {fields}.', preview_same: 'Không trường nào thay đổi so với bản hiện có.',
    preview_deleted: 'Bản ghi sẽ bị xóa.', preview_dismiss: 'Bản ghi giữ nguyên như hiện có; xung đột được đóng và không ghi gì thêm.',
    confirm: 'Xác nhận quyết định', cancel: 'Chọn lại', changed: 'thay đổi',
    tab_devices: 'Thiết bị', devices_title: 'Thiết bị và ghi danh', device: 'Thiết bị', role: 'Vai trò',
    last_sync: 'Đồng bộ lần cuối', never: 'chưa lần nào', make_code: 'Tạo mã ghi danh', code: 'Mã ghi danh',
    code_for: 'Mã ghi danh cho', expires: 'Dùng được một lần, đến', revoked: 'đã thu hồi',
    role_field: 'cán bộ cơ sở', role_reviewer: 'người xem xét', role_admin: 'quản trị',
    code_made: 'Đã tạo mã ghi danh. Mở đường dẫn hoặc quét mã QR bằng điện thoại của thiết bị đó; các mã cũ chưa dùng của thiết bị này không còn hiệu lực.',
    tab_conflicts: 'Xung đột', tab_reports: 'Báo cáo', reports_title: 'Báo cáo của Huyện ủy', report: 'Báo cáo',
    report_participation: 'Tỷ lệ tham gia học tập chuyên đề',
    report_registrations: 'Đảng viên đăng ký học tập và làm theo',
    report_unreviewed_cells: 'Chi bộ chưa nhận xét đảng viên', report_inspections: 'Kiểm tra và kết quả',
    year: 'Năm', show: 'Xem', no_rows: 'Không có dòng nào.', all_units: 'Tất cả đơn vị trong phạm vi', totals: 'Tổng',
    period: 'Kỳ', period_latest: 'Kỳ gần nhất có số liệu', period_year: 'Cả năm {y}', period_q: 'Quý {n}/{y}',
    period_h: '6 tháng {which} năm {y}', first_half: 'đầu', second_half: 'cuối',
    drill: 'Xem các đơn vị trực thuộc', export_csv: 'Tải về CSV (Excel)', print: 'In báo cáo',
    campaign: 'năm của đợt hiện tại',
    no_data: 'Chưa có số liệu năm {y} cho báo cáo này.', years_with_data: 'Các năm có số liệu: {years}.',
    no_years: 'Chưa có năm nào có số liệu.',
    legend_ok: 'Đạt từ 90% trở lên', legend_low: 'Dưới 90%', legend_zero: 'Bằng 0: chưa có ai',
    legend_sorted: 'Xếp từ thấp đến cao: nơi cần quan tâm ở trên cùng.',
    legend_vague: 'Số bản đăng ký còn chung chung mà đoàn kiểm tra phát hiện, nhiều nhất ở trên cùng.',
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
    kind_district: 'huyện', kind_commune: 'xã', kind_cell: 'chi bộ', kind_office: 'cơ quan',
    // Refusals, by the server's error code (SPEC.md, "Errors"), then by what the page was doing.
    err_network: 'Không kết nối được tới máy chủ. Hãy kiểm tra mạng rồi thử lại.',
    err_unauthorized: 'Mã không đúng hoặc đã bị thu hồi. Hãy đăng nhập lại bằng mã do quản trị viên cấp.',
    err_forbidden: 'Thiết bị này không có quyền làm việc này.',
    err_resolve_forbidden: 'Thiết bị này không có quyền giải quyết xung đột.',
    err_report_forbidden: 'Thiết bị này không được xem báo cáo.',
    err_devices_forbidden: 'Chỉ thiết bị quản trị mới xem được danh sách thiết bị.',
    err_not_found: 'Không tìm thấy nội dung này, hoặc nó nằm ngoài phạm vi của bạn.',
    err_conflict_not_found: 'Không tìm thấy xung đột này, hoặc nó nằm ngoài phạm vi của bạn.',
    err_resolve_not_found: 'Không tìm thấy xung đột này, hoặc nó nằm ngoài phạm vi của bạn.',
    err_report_not_found: 'Không tìm thấy đơn vị này trong cây tổ chức, hoặc đơn vị nằm ngoài phạm vi của bạn.',
    err_devices_not_found: 'Thiết bị này không còn, hoặc đã bị thu hồi.',
    err_stale: 'Bản ghi đã thay đổi từ lúc bạn xem. Xung đột được hiển thị lại theo bản hiện tại; hãy quyết định lại.',
    err_conflict_closed: 'Xung đột này đã được đóng.',
    err_bad_request: 'Máy chủ không nhận yêu cầu này vì nó không hợp lệ.',
    err_resolve_bad_request: 'Không áp dụng được quyết định này. Nếu bản ghi còn một xung đột cũ hơn đang mở, hãy giải quyết xung đột đó trước.',
    err_report_bad_request: 'Năm hoặc kỳ báo cáo không hợp lệ.',
    err_schema: 'Bản ghi không đúng mẫu của loại bản ghi này.',
    err_schema_field: 'Bản ghi không đúng mẫu ở trường «{field}».',
    err_rate_limited: 'Máy chủ đang bận. Hãy đợi ít phút rồi thử lại.',
    err_server: 'Máy chủ đang gặp sự cố. Hãy thử lại sau; nếu vẫn lỗi, báo cho cán bộ phụ trách máy chủ.',
    err_client_too_old: 'Trang này đã cũ so với máy chủ. Hãy tải lại trang.',
    err_other: 'Trang gửi một yêu cầu mà máy chủ không nhận. Hãy tải lại trang rồi thử lại.',
    att_missing: 'Chưa xem được: máy chủ chưa có tệp này, có thể thiết bị đã chụp chưa gửi lên.', att_error: 'Chưa tải được; bấm để thử lại.',
    att_loading: 'Đang tải…', att_open_pdf: 'Mở tệp PDF', att_photos: '{n} ảnh/tệp', att_enlarge: 'Bấm vào ảnh để xem lớn.',
  },
  en: {
    title: 'Conflicts and reports', language: 'Language', signout: 'Sign out', signin_title: 'Sign in',
    token_label: "Reviewer device token", signin: 'Sign in', open_conflicts: 'Conflicts',
    status: 'Status', status_open: 'open', status_resolved: 'resolved', status_dismissed: 'dismissed',
    status_any: 'any', collection: 'Kind of record', refresh: 'Refresh', all_collections: 'All', record: 'Record',
    fields: 'Colliding fields', writer: 'Written by', when: 'When', no_conflicts: 'No conflicts.',
    back: '← List', field: 'Field', base: 'Original (before the edits)', head: 'Current version', incoming: 'Incoming',
    pick_legend: 'Pick a side for each colliding field', note: 'Note to the writer', keep_head: 'Keep the current version',
    take_incoming: 'Take the incoming version', pick: 'As picked per field', edit: 'Edit myself…', dismiss: 'Dismiss',
    edit_title: 'The record as the reviewer writes it', edit_delete: 'Delete the record', save_edit: 'Preview the edited record',
    history: 'Record history', version: 'Version', how: 'How', content: 'Content', open: 'View',
    open_decide: 'View and decide',
    whole_record: 'Whole record', absent: '(empty)', deleted: '(deleted)', yes: 'Yes', no: 'No',
    unit: 'Unit', sender_unit: "Sender's unit", routed_to: 'Belongs to', head_by: 'Current version by',
    incoming_by: 'Incoming by', current: 'Current version', closed: 'Closed', by: 'by', choice: 'Decision',
    unknown_device: 'unknown device', unknown_record: '(record not readable)', untitled: 'untitled',
    signed_in: 'Signed in.', resolved_ok: 'Conflict resolved.', dismissed_ok: 'Conflict dismissed.',
    pick_missing: 'Pick a side for every colliding field.',
    bad_number: 'The field «{field}» must be a whole number.',
    applied: 'applied', merged: 'merged', resolved: 'resolved', version_n: 'version {n}',
    keep_head_choice: 'keep the current version', take_incoming_choice: 'take the incoming version',
    pick_choice: 'picked per field', edit_choice: 'edited by the reviewer', dismiss_choice: 'dismiss',
    preview_of: 'The record after the decision: {choice}', after: 'After the decision',
    preview_changed: 'Changed from the current version: {fields}.', preview_same: 'No field changes from the current version.',
    preview_deleted: 'The record will be deleted.', preview_dismiss: 'The record stays as it is; the conflict is closed and nothing is written.',
    confirm: 'Confirm the decision', cancel: 'Choose again', changed: 'changed',
    tab_devices: 'Devices', devices_title: 'Devices and enrolment', device: 'Device', role: 'Role',
    last_sync: 'Last sync', never: 'never', make_code: 'Make an enrolment code', code: 'Enrolment code',
    code_for: 'Enrolment code for', expires: 'Usable once, until', revoked: 'revoked',
    role_field: 'field', role_reviewer: 'reviewer', role_admin: 'admin',
    code_made: 'Enrolment code made. Open the link or scan the QR code with that device\'s phone; its older unused codes no longer work.',
    tab_conflicts: 'Conflicts', tab_reports: 'Reports', reports_title: "The district's reports", report: 'Report',
    report_participation: 'Study session participation', report_registrations: 'Members registered this year',
    report_unreviewed_cells: 'Cells that have not reviewed their members', report_inspections: 'Inspections and findings',
    year: 'Year', show: 'Show', no_rows: 'No rows.', all_units: 'All units in scope', totals: 'Totals',
    period: 'Period', period_latest: 'Latest period with data', period_year: 'The whole of {y}', period_q: 'Q{n} {y}',
    period_h: '{which} half of {y}', first_half: 'First', second_half: 'Second',
    drill: 'Show the units below', export_csv: 'Download CSV (Excel)', print: 'Print the report',
    campaign: "the current campaign's year",
    no_data: 'No figures for {y} in this report yet.', years_with_data: 'Years with figures: {years}.',
    no_years: 'No year has figures yet.',
    legend_ok: '90% or more', legend_low: 'Below 90%', legend_zero: 'Zero: nobody yet',
    legend_sorted: 'Lowest first: the places that need attention are at the top.',
    legend_vague: 'Vague registrations the inspection found, most first.',
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
    kind_district: 'district', kind_commune: 'commune', kind_cell: 'cell', kind_office: 'office',
    err_network: 'The server cannot be reached. Check the network and try again.',
    err_unauthorized: 'Unknown or revoked token. Sign in again with the token your administrator gave you.',
    err_forbidden: 'This device may not do that.',
    err_resolve_forbidden: 'This device may not resolve conflicts.',
    err_report_forbidden: 'This device may not read reports.',
    err_devices_forbidden: 'Only an admin device may list the devices.',
    err_not_found: 'Not found, or outside your scope.',
    err_conflict_not_found: 'This conflict was not found, or it is outside your scope.',
    err_resolve_not_found: 'This conflict was not found, or it is outside your scope.',
    err_report_not_found: 'This unit is not in the organisation tree, or it is outside your scope.',
    err_devices_not_found: 'This device no longer exists, or it was revoked.',
    err_stale: 'The record changed since you looked. The conflict is shown again on the current version; decide again.',
    err_conflict_closed: 'This conflict is already closed.',
    err_bad_request: 'The server did not accept this request.',
    err_resolve_bad_request: 'This decision cannot be applied. If the record has an older open conflict, resolve that one first.',
    err_report_bad_request: 'The year or the period is not valid.',
    err_schema: 'The record does not fit its kind of record.',
    err_schema_field: 'The record does not fit its kind of record at the field «{field}».',
    err_rate_limited: 'The server is busy. Wait a few minutes and try again.',
    err_server: 'The server has a problem. Try again later; if it goes on, tell whoever runs the server.',
    err_client_too_old: 'This page is older than the server. Reload the page.',
    err_other: 'The page sent a request the server did not accept. Reload the page and try again.',
    att_missing: 'Not viewable: the server does not have this file; the device that took it may not have sent it yet.', att_error: 'Not loaded; click to try again.',
    att_loading: 'Loading…', att_open_pdf: 'Open the PDF', att_photos: '{n} photos/files', att_enlarge: 'Click a photo to see it large.',
  },
};

let lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'vi';
let current = null;   // the conflict on screen
let pending = null;   // the decision being previewed (the body /resolve will get)
let report = null;    // the report on screen
let allYears = [];    // the years with figures in any report (GET /v1/reports)
let schema = null;    // GET /v1/schema: labels of collections, fields and choices
let units = new Map();  // GET /v1/me: the units in scope, by id
const refTitles = new Map();  // "collection/id" -> title of a referenced record (or null)

const $ = (id) => document.getElementById(id);
const t = (key, vars) => {
  let s = strings[lang][key] ?? strings.vi[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
  return s;
};

// Names are shown in NFC: a name stored decomposed (NFD) draws its marks apart in some fonts.
const nfc = (s) => (typeof s === 'string' ? s.normalize('NFC') : '');

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// A table cell with its column's name, which the phone layout (cards) shows before the value.
function cell(label, text, cls) {
  const td = el('td', text, cls);
  td.dataset.label = label;
  return td;
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
  let res;
  try { res = await fetch(path, init); } catch (_) { return { status: 0, json: null }; }
  let json = null;
  try { json = await res.json(); } catch (_) { json = null; }
  if (res.status === 401) {
    signOut();
    say(t('err_unauthorized'), true);
  }
  return { status: res.status, json };
}

// A refusal as a sentence: by the error code and what the page was doing (`context`).
function errorText(r, context) {
  if (r.status === 0) return t('err_network');
  const code = (r.json && r.json.error && r.json.error.code) || '';
  const message = (r.json && r.json.error && r.json.error.message) || '';
  if (code === 'schema_violation' || code === 'bad_field') {
    const m = message.match(/field '([^']+)'/);
    return m && current ? t('err_schema_field', { field: fieldLabel(current.collection, '/' + m[1]) }) : t('err_schema');
  }
  for (const key of ['err_' + context + '_' + code, 'err_' + code]) if (code && strings[lang][key]) return t(key);
  if (r.status >= 500) return t('err_server');
  return t('err_other');
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

// ---- names: the schema's labels, units and referenced records ------------------------------

// A schema text ({"vi": ..., "en": ...}) in the page's language, else Vietnamese, else any.
function text(v) {
  if (!v) return '';
  if (typeof v === 'string') return v;
  return v[lang] || v.vi || Object.values(v)[0] || '';
}

const collectionOf = (name) => (schema && schema.collections && schema.collections[name]) || null;
const collLabel = (name) => text((collectionOf(name) || {}).label) || name;
const unescapePointer = (s) => s.replace(/~1/g, '/').replace(/~0/g, '~');

function fieldSpec(collection, key) {
  const c = collectionOf(collection);
  return (c && c.fields && c.fields[key]) || null;
}

// A JSON Pointer's name: the field's label, then the path below it.
function fieldLabel(collection, pointer) {
  if (pointer === '') return t('whole_record');
  const parts = pointer.slice(1).split('/').map(unescapePointer);
  const spec = fieldSpec(collection, parts[0]);
  const name = (spec && text(spec.label)) || parts[0];
  return parts.length > 1 ? name + ' › ' + parts.slice(1).join(' › ') : name;
}

function unitName(id) {
  const u = units.get(id);
  return u ? nfc(u.name) : id;
}

// The fields of a collection in the schema's order, then any others the documents hold.
function fieldOrder(collection, docs) {
  const c = collectionOf(collection);
  const names = [...((c && c.order) || []), ...Object.keys((c && c.fields) || {})];
  for (const d of docs) if (d && typeof d === 'object') names.push(...Object.keys(d).sort());
  return [...new Set(names)];
}

function dateText(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  return m && lang === 'vi' ? m[3] + '/' + m[2] + '/' + m[1] : s;
}

// A field's value as a person reads it: choices by their text, references by the referenced
// record's title, units by name, lists one item a line, dates as dates, yes/no.
function valueText(collection, key, value) {
  if (value === undefined || value === null || value === '') return t('absent');
  const spec = fieldSpec(collection, key) || {};
  if (typeof value === 'string') {
    if (spec.choices && spec.choices[value]) return text(spec.choices[value]);
    if (spec.ref === 'units') return unitName(value);
    if (spec.ref) {
      const title = refTitles.get(spec.ref + '/' + value);
      return title || t('unknown_record');
    }
    if (spec.type === 'date') return dateText(value);
    return nfc(value);
  }
  if (typeof value === 'boolean') return value ? t('yes') : t('no');
  if (isAttachments(collection, key, value)) {
    const refs = refsOf(value);
    return refs.length ? refs.map((r) => '• ' + nfc(r.name)).join('\n') : t('absent');
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return t('absent');
    return value.map((v) => '• ' + (typeof v === 'string' ? nfc(v) : JSON.stringify(v))).join('\n');
  }
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value, null, 1);
}

// ---- attachments (SPEC.md, "Attachments") ------------------------------------------------

// A reference: {sha256, size, content_type, name}. A field holds them when the schema says so
// (`attachment`, or an array of them), or, for a field the schema does not name, when its
// value has that shape.
const isRef = (v) => Boolean(v && typeof v === 'object' && !Array.isArray(v) && typeof v.sha256 === 'string' &&
                             /^[0-9a-f]{64}$/.test(v.sha256) && typeof v.content_type === 'string');
const refsOf = (v) => (Array.isArray(v) ? v : [v]).filter(isRef);
function isAttachments(collection, key, value) {
  const spec = fieldSpec(collection, key);
  if (spec) return spec.type === 'attachment' || (spec.type === 'array' && spec.items === 'attachment');
  return isRef(value) || (Array.isArray(value) && value.length > 0 && value.every(isRef));
}
const topKey = (pointer) => unescapePointer(pointer.slice(1).split('/')[0]);

// The bytes of a blob, fetched with the token once per page (GET /v1/blobs/{sha256}): an
// object URL, or {missing} (the server has it not yet), or {error}.
const blobs = new Map();
function blobOf(sha) {
  if (!blobs.has(sha)) {
    blobs.set(sha, (async () => {
      let res;
      try { res = await fetch('/v1/blobs/' + sha, { headers: { Authorization: 'Bearer ' + token() } }); } catch (_) { return { error: true }; }
      if (res.status === 404) return { missing: true };
      if (!res.ok) return { error: true };
      return { url: URL.createObjectURL(await res.blob()) };
    })());
  }
  return blobs.get(sha).then((r) => { if (!r.url) blobs.delete(sha); return r; });
}

// One reference: a photo's thumbnail (a click shows it at the width of the page), a PDF's
// button that opens it, or why it cannot be shown; its name below.
function attachmentNode(ref) {
  const fig = el('figure', null, 'attachment');
  fig.dataset.sha = ref.sha256;
  const cap = el('figcaption', nfc(ref.name));
  const status = el('span', t('att_loading'), 'att-status');
  const pdf = ref.content_type === 'application/pdf';
  const load = async () => {
    status.textContent = t('att_loading');
    status.hidden = false;
    const r = await blobOf(ref.sha256);
    if (r.url) {
      status.hidden = true;
      if (pdf) {
        const b = el('button', t('att_open_pdf'), 'open-pdf');
        b.type = 'button';
        b.addEventListener('click', () => {
          const a = el('a');
          a.href = r.url;
          a.target = '_blank';
          a.rel = 'noopener';
          document.body.append(a);
          a.click();
          a.remove();
        });
        fig.prepend(b);
      } else {
        const img = el('img', null, 'thumb');
        img.alt = nfc(ref.name);
        img.src = r.url;
        img.addEventListener('click', () => fig.classList.toggle('large'));
        fig.prepend(img);
      }
      return;
    }
    status.textContent = r.missing ? t('att_missing') : t('att_error');
    status.classList.toggle('retry', !r.missing);
  };
  status.addEventListener('click', () => { if (status.classList.contains('retry')) load(); });
  fig.append(status, cap);
  load();
  return fig;
}

function attachmentsNode(value) {
  const refs = refsOf(value);
  if (!refs.length) return el('span', t('absent'), 'absent');
  const box = el('div', null, 'attachments');
  for (const r of refs) box.append(attachmentNode(r));
  return box;
}

// A cell that shows a field's value: photos for attachments, else the value's words.
function valueCell(label, collection, key, value, txt, cls) {
  if (txt === undefined) txt = valueText(collection, key, value);
  if (value === undefined || value === null || !isAttachments(collection, key, value)) return cell(label, txt, cls);
  const td = cell(label, null, ((cls || '') + ' files').trim());
  td.append(attachmentsNode(value));
  return td;
}

// The title of a record as the schema's `title` says (a field, or a list of fields joined by
// commas; a referenced record by its own title), from refTitles for what it references.
function titleOf(collection, data) {
  const c = collectionOf(collection);
  if (!c || !c.title || !data) return '';
  const keys = Array.isArray(c.title) ? c.title : [c.title];
  return keys.map((k) => {
    const v = data[k];
    if (v === undefined || v === null || v === '') return '';
    const spec = fieldSpec(collection, k) || {};
    if (spec.ref === 'units') return unitName(v);
    if (spec.ref) return refTitles.get(spec.ref + '/' + v) || '';
    return typeof v === 'string' ? (spec.type === 'date' ? dateText(v) : nfc(v)) : String(v);
  }).filter((s) => s).join(', ');
}

// Fetches the titles of the records the documents reference (a registration's member), and of
// what those reference in turn, so valueText and titleOf can name them.
async function loadRefTitles(collection, docs, depth = 0) {
  if (depth > 2) return;
  const wanted = [];
  for (const d of docs) {
    if (!d || typeof d !== 'object') continue;
    for (const [k, v] of Object.entries(d)) {
      const spec = fieldSpec(collection, k);
      if (!spec || !spec.ref || spec.ref === 'units' || typeof v !== 'string') continue;
      const key = spec.ref + '/' + v;
      if (!refTitles.has(key) && !wanted.some((w) => w.key === key)) wanted.push({ key, coll: spec.ref, id: v });
    }
  }
  await Promise.all(wanted.map(async (w) => {
    const r = await api('/v1/records/' + encodeURIComponent(w.coll) + '/' + encodeURIComponent(w.id));
    const data = r.status === 200 && r.json && r.json.data ? r.json.data : null;
    if (data) await loadRefTitles(w.coll, [data], depth + 1);
    refTitles.set(w.key, data ? titleOf(w.coll, data) : null);
  }));
}

async function loadNames() {
  const [s, me] = await Promise.all([api('/v1/schema'), api('/v1/me')]);
  if (s.status === 200) schema = s.json;
  if (me.status === 200) {
    units = new Map((me.json.units || []).map((u) => [u.id, u]));
    $('tab-devices').hidden = !(me.json.device && me.json.device.role === 'admin');
  }
  fillCollectionPicker();
  fillUnitPickers();
}

function fillCollectionPicker() {
  const sel = $('collection-filter');
  const was = sel.value;
  const names = Object.keys((schema && schema.collections) || {}).filter((n) => n !== 'units');
  sel.replaceChildren(new Option(t('all_collections'), ''),
                      ...names.map((n) => new Option(collLabel(n), n))
                        .sort((a, b) => a.text.localeCompare(b.text, 'vi')));
  sel.value = was;
}

// The units in scope as a tree: each under its parent, indented, by name.
function unitTree() {
  const children = new Map();
  for (const u of units.values()) {
    const parent = units.has(u.parent) ? u.parent : '';
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(u);
  }
  const out = [];
  const walk = (id, depth) => {
    for (const u of (children.get(id) || []).sort((a, b) => nfc(a.name).localeCompare(nfc(b.name), 'vi'))) {
      out.push({ unit: u, depth });
      walk(u.id, depth + 1);
    }
  };
  walk('', 0);
  return out;
}

function fillUnitPickers() {
  const tree = unitTree();
  for (const sel of document.querySelectorAll('select.unit-picker')) {
    const was = sel.value;
    sel.replaceChildren(new Option(t('all_units'), ''),
                        ...tree.map(({ unit, depth }) => new Option('\u00a0\u00a0'.repeat(depth) + nfc(unit.name), unit.id)));
    sel.value = was;
  }
}

// ---- the list ---------------------------------------------------------------------------

function recordCell(c) {
  const td = cell(t('record'));
  td.append(el('strong', nfc(c.title) || t('untitled')), el('span', collLabel(c.collection), 'sub'));
  return td;
}

async function loadList() {
  const q = new URLSearchParams({ status: $('status-filter').value, limit: '200' });
  if ($('collection-filter').value) q.set('collection', $('collection-filter').value);
  if ($('unit-filter').value) q.set('unit', $('unit-filter').value);
  const r = await api('/v1/conflicts?' + q.toString());
  if (r.status !== 200) { if (r.status !== 401) say(errorText(r, 'conflict'), true); return; }
  const rows = r.json.conflicts.map((c) => {
    const tr = el('tr');
    tr.dataset.id = c.id;
    const writer = cell(t('writer'));
    writer.append(el('span', nfc(c.device_name) || t('unknown_device')),
                  el('span', nfc(c.unit_name) || '', 'sub'));
    tr.append(recordCell(c),
              cell(t('fields'), c.fields.map((p) => fieldLabel(c.collection, p)).join(', ')),
              writer,
              cell(t('routed_to'), (c.path_names || []).map(nfc).join(' › ')),
              cell(t('when'), when(c.created_ms)),
              cell(t('status'), t('status_' + c.status)));
    const open = el('button', c.status === 'open' ? t('open_decide') : t('open'));
    open.type = 'button';
    open.className = 'open-conflict';
    open.addEventListener('click', () => openConflict(c.id));
    const td = el('td', null, 'actions');
    td.append(open);
    tr.append(td);
    return tr;
  });
  $('conflicts').tBodies[0].replaceChildren(...rows);
  $('conflicts').hidden = rows.length === 0;
  $('empty').hidden = rows.length !== 0;
  show('list');
}

// ---- one conflict -----------------------------------------------------------------------

// The value at a JSON Pointer (RFC 6901), or undefined.
function at(doc, pointer) {
  if (pointer === '') return doc;
  let v = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const key = unescapePointer(raw);
    if (v === null || typeof v !== 'object' || !(key in v)) return undefined;
    v = v[key];
  }
  return v;
}

// A pointer's value on one side, as text: the top-level field's value by valueText.
function sideText(c, doc, deleted, pointer) {
  if (deleted) return [t('deleted'), 'absent'];
  if (doc == null) return [t('absent'), 'absent'];
  const v = at(doc, pointer);
  if (v === undefined || v === null || v === '') return [t('absent'), 'absent'];
  const key = unescapePointer(pointer.slice(1).split('/')[0]);
  return [pointer.split('/').length > 2 && typeof v !== 'string' ? JSON.stringify(v) : valueText(c.collection, key, v), ''];
}

async function openConflict(id) {
  say('');
  const r = await api('/v1/conflicts/' + encodeURIComponent(id));
  if (r.status !== 200) { if (r.status !== 401) say(errorText(r, 'conflict'), true); return; }
  await showConflict(r.json);
  show('detail');
  await loadHistory();
}

async function showConflict(c) {
  await loadRefTitles(c.collection, [c.base, c.head, c.incoming, c.current]);
  renderConflict(c);
}

function writerText(w, fallbackVersion) {
  if (!w) return fallbackVersion ? t('version_n', { n: fallbackVersion }) : '';
  const parts = [nfc(w.device_name) || t('unknown_device'), when(w.server_ms)];
  if (w.version) parts.push(t('version_n', { n: w.version }));
  return parts.filter((s) => s).join(' · ');
}

function renderConflict(c) {
  current = c;
  pending = null;
  $('detail-title').textContent = collLabel(c.collection) + ': ' + (nfc(c.title) || t('untitled')) +
                                  ' — ' + t('status_' + c.status);
  const meta = $('meta');
  meta.replaceChildren();
  const add = (k, v) => { if (v) meta.append(el('dt', t(k)), el('dd', v)); };
  add('sender_unit', nfc(c.unit_name) || unitName(c.unit_id));
  add('routed_to', (c.path_names || []).map(nfc).join(' › '));
  add('head_by', writerText(c.writers && c.writers.head, c.head_version));
  add('incoming_by', writerText(c.writers && c.writers.incoming));
  add('current', t('version_n', { n: c.current_version }) + (c.current_deleted ? ' ' + t('deleted') : ''));
  if (c.status !== 'open' && c.resolution) {
    add('closed', when(c.closed_ms) + ' ' + t('by') + ' ' + (nfc(c.closed_by_name) || t('unknown_device')));
    add('choice', t(c.resolution.choice + '_choice') + (c.resolution.note ? ' — ' + nfc(c.resolution.note) : ''));
  }

  // Rows: every top-level field of any side in the schema's order, then the colliding pointers
  // below the top level.
  const colliding = new Set(c.fields);
  const present = new Set();
  for (const side of [c.base, c.head, c.incoming]) if (side && typeof side === 'object') Object.keys(side).forEach((k) => present.add(k));
  const rows = fieldOrder(c.collection, [c.base, c.head, c.incoming]).filter((k) => present.has(k))
    .map((k) => '/' + k.replace(/~/g, '~0').replace(/\//g, '~1'));
  // Below an attachment field, the row of the field itself shows the photos of each side.
  for (const p of c.fields) {
    if (p === '' || rows.includes(p)) continue;
    const key = topKey(p);
    if (rows.includes('/' + key.replace(/~/g, '~0').replace(/\//g, '~1')) && isAttachments(c.collection, key, undefined)) continue;
    rows.push(p);
  }
  $('sides').tBodies[0].replaceChildren(...rows.map((p) => {
    const tr = el('tr');
    tr.dataset.field = p;
    const collides = colliding.has('') || colliding.has(p) || c.fields.some((f) => f.startsWith(p + '/'));
    if (collides) tr.className = 'collide';
    tr.append(cell(t('field'), fieldLabel(c.collection, p), 'name'));
    for (const [key, doc, del] of [['base', c.base, false], ['head', c.head, c.head_deleted], ['incoming', c.incoming, c.incoming_deleted]]) {
      const [txt, cls] = sideText(c, doc, del, p);
      const v = !cls && p.split('/').length === 2 ? at(doc, p) : undefined;
      tr.append(valueCell(t(key), c.collection, topKey(p), v, txt, cls));
    }
    return tr;
  }));

  const picks = $('pick-rows');
  picks.replaceChildren();
  const wholeRecord = colliding.has('');
  $('picks').hidden = wholeRecord || c.status !== 'open';
  if (!wholeRecord) {
    // The colliding pointers, those below one attachment field picked together: a photo is
    // taken whole from one side, never its hash from one and its name from the other.
    const groups = [];
    for (const p of c.fields) {
      const key = topKey(p);
      const files = isAttachments(c.collection, key, at(c.head || {}, '/' + key) ?? at(c.incoming || {}, '/' + key));
      const top = '/' + key.replace(/~/g, '~0').replace(/\//g, '~1');
      const g = files && groups.find((x) => x.top === top);
      if (g) g.pointers.push(p);
      else groups.push({ top: files ? top : p, key, files, pointers: [p] });
    }
    groups.forEach((g, i) => {
      const row = el('div', null, g.files ? 'pick-row files' : 'pick-row');
      row.append(el('strong', fieldLabel(c.collection, g.files ? g.top : g.pointers[0])));
      for (const [side, doc, del] of [['head', c.head, c.head_deleted], ['incoming', c.incoming, c.incoming_deleted]]) {
        const label = el('label');
        const input = document.createElement('input');
        input.type = 'radio';
        input.name = 'pick-' + i;
        input.value = side;
        input.dataset.pointer = g.files ? g.top : g.pointers[0];
        input.dataset.pointers = JSON.stringify(g.pointers);
        if (g.files) {
          const v = doc && !del ? at(doc, g.top) : undefined;
          const head = el('span', t(side));
          label.append(input, head);
          const box = el('div', null, 'pick-files');
          box.append(v === undefined || v === null ? el('span', t('absent'), 'absent') : attachmentsNode(v));
          label.append(box);
        } else {
          const [txt] = sideText(c, doc, false, g.pointers[0]);
          label.append(input, el('span', t(side) + ': ' + (txt.length > 120 ? txt.slice(0, 119) + '…' : txt)));
        }
        row.append(label);
      }
      picks.append(row);
    });
  }
  $('resolve-form').hidden = c.status !== 'open';
  $('preview').hidden = true;
  $('pick').disabled = wholeRecord;
  $('editor').hidden = true;
  $('note').value = '';
}

// A version's fields, one a line; attachments as their photos.
function historyContent(collection, v) {
  const td = cell(t('content'));
  if (v.deleted) { td.textContent = t('deleted'); return td; }
  const d = v.data || {};
  for (const k of fieldOrder(collection, [d]).filter((key) => key in d)) {
    const line = el('div', fieldLabel(collection, '/' + k) + ': ', 'history-field');
    if (d[k] !== null && isAttachments(collection, k, d[k])) line.append(attachmentsNode(d[k]));
    else line.append(valueText(collection, k, d[k]).replace(/\n/g, '\n    '));
    td.append(line);
  }
  return td;
}

async function loadHistory() {
  if (!current) return;
  const r = await api('/v1/records/' + encodeURIComponent(current.collection) + '/' +
                      encodeURIComponent(current.record_id) + '/history');
  const body = $('history').tBodies[0];
  body.replaceChildren();
  if (r.status !== 200) return;
  await loadRefTitles(current.collection, r.json.versions.map((v) => v.data));
  for (const v of r.json.versions) {
    const tr = el('tr');
    tr.append(cell(t('version'), v.version), cell(t('how'), t(v.how)),
              cell(t('writer'), nfc(v.device_name) || t('unknown_device')), cell(t('when'), when(v.server_ms)),
              historyContent(current.collection, v));
    body.append(tr);
  }
}

// A decision is shown first as the record it will write (POST .../preview, which writes
// nothing), and made only once the reviewer confirms it.
async function previewDecision(body) {
  body.head_version = current.current_version;
  const note = $('note').value.trim();
  if (note) body.note = note.normalize('NFC');
  const r = await api('/v1/conflicts/' + encodeURIComponent(current.id) + '/preview', body);
  if (r.status === 200) {
    say('');
    pending = body;
    renderPreview(r.json, body);
  } else if (r.status === 409 && r.json && r.json.error && r.json.error.code === 'stale' && r.json.conflict) {
    await showConflict(r.json.conflict);
    say(t('err_stale'), true);
    await loadHistory();
  } else if (r.status !== 401) {
    say(errorText(r, 'resolve'), true);
  }
}

async function renderPreview(p, body) {
  if (p.record) await loadRefTitles(current.collection, [p.record]);
  $('preview-title').textContent = t('preview_of', { choice: t(body.choice + '_choice') });
  const changed = new Set(p.changed || []);
  let summary;
  if (body.choice === 'dismiss') summary = t('preview_dismiss');
  else if (p.deleted) summary = t('preview_deleted');
  else if (changed.size) summary = t('preview_changed', { fields: [...changed].map((f) => fieldLabel(current.collection, f)).join(', ') });
  else summary = t('preview_same');
  $('preview-summary').textContent = summary;
  const rec = p.record || {};
  $('preview-table').tBodies[0].replaceChildren(...(p.deleted ? [] : fieldOrder(current.collection, [rec]).filter((k) => k in rec).map((k) => {
    const pointer = '/' + k.replace(/~/g, '~0').replace(/\//g, '~1');
    const tr = el('tr', null, changed.has(pointer) ? 'changed' : '');
    tr.dataset.field = pointer;
    tr.append(cell(t('field'), fieldLabel(current.collection, pointer), 'name'),
              valueCell(t('after'), current.collection, k, rec[k]));
    return tr;
  })));
  $('preview-table').hidden = p.deleted || body.choice === 'dismiss';
  $('resolve-form').hidden = true;
  $('preview').hidden = false;
  $('preview').scrollIntoView({ block: 'nearest' });
}

async function resolve(body) {
  const r = await api('/v1/conflicts/' + encodeURIComponent(current.id) + '/resolve', body);
  if (r.status === 200) {
    await showConflict(r.json);
    say(body.choice === 'dismiss' ? t('dismissed_ok') : t('resolved_ok'));
  } else if (r.status === 409 && r.json && r.json.error && r.json.error.code === 'stale' && r.json.conflict) {
    await showConflict(r.json.conflict);
    say(t('err_stale'), true);
  } else if (r.status !== 401) {
    say(errorText(r, 'resolve'), true);
  }
  await loadHistory();
}

function collectPicks() {
  const picks = {};
  for (const input of $('pick-rows').querySelectorAll('input[type=radio]:checked')) {
    for (const p of JSON.parse(input.dataset.pointers)) picks[p] = input.value;
  }
  return picks;
}

// ---- the reviewer's own version: a form from the schema -------------------------------------

function editorStart() {
  const c = current;
  return (c.current_deleted ? (c.incoming || c.head) : c.current) || {};
}

function buildEditor() {
  const c = current;
  const start = editorStart();
  const box = $('edit-fields');
  box.replaceChildren();
  for (const key of fieldOrder(c.collection, [start])) {
    const spec = fieldSpec(c.collection, key) || {};
    const v = start[key];
    const row = el('label', null, 'edit-row');
    row.append(el('span', fieldLabel(c.collection, '/' + key)));
    let input;
    if (spec.one_of) {
      input = document.createElement('select');
      if (!spec.required) input.append(new Option(t('absent'), ''));
      for (const choice of spec.one_of) {
        input.append(new Option(spec.choices && spec.choices[choice] ? text(spec.choices[choice]) : String(choice), String(choice)));
      }
      input.value = v === undefined ? '' : String(v);
    } else if (spec.ref === 'units') {
      input = document.createElement('select');
      for (const { unit, depth } of unitTree()) input.append(new Option('\u00a0\u00a0'.repeat(depth) + nfc(unit.name), unit.id));
      if (v !== undefined && !units.has(v)) input.append(new Option(String(v), String(v)));
      input.value = v === undefined ? '' : String(v);
    } else if (v !== undefined && v !== null && isAttachments(c.collection, key, v)) {
      // Photos: kept as they are (the sides' photos are picked with «Theo lựa chọn từng trường»).
      input = el('div', null, 'edit-files');
      input.dataset.keep = JSON.stringify(v);
      input.append(attachmentsNode(v));
    } else if (spec.ref) {
      // Another record (a member): kept as it is, shown by its title.
      input = el('input');
      input.type = 'text';
      input.readOnly = true;
      input.dataset.keep = JSON.stringify(v === undefined ? null : v);
      input.value = v === undefined ? '' : valueText(c.collection, key, v);
    } else if (spec.type === 'boolean') {
      input = el('input');
      input.type = 'checkbox';
      input.checked = v === true;
      row.classList.add('check');
    } else if (spec.type === 'integer') {
      input = el('input');
      input.type = 'text';
      input.inputMode = 'numeric';
      input.value = v === undefined ? '' : String(v);
    } else if (spec.type === 'date') {
      input = el('input');
      input.type = 'date';
      input.value = v === undefined ? '' : String(v);
    } else if (spec.type === 'array' || Array.isArray(v)) {
      input = el('textarea');
      input.rows = Math.max(3, Array.isArray(v) ? v.length + 1 : 3);
      input.dataset.lines = '1';
      input.value = Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n') : '';
    } else {
      input = el(spec.max_length && spec.max_length > 300 ? 'textarea' : 'input');
      if (input.tagName === 'INPUT') input.type = 'text';
      else input.rows = 3;
      input.value = typeof v === 'string' ? nfc(v) : (v === undefined ? '' : JSON.stringify(v));
    }
    input.dataset.key = key;
    input.dataset.type = spec.type || '';
    row.append(input);
    box.append(row);
  }
}

// The record the editor holds, or a sentence saying what is wrong.
function readEditor() {
  const record = {};
  for (const input of $('edit-fields').querySelectorAll('[data-key]')) {
    const key = input.dataset.key;
    if (input.dataset.keep !== undefined) {
      const kept = JSON.parse(input.dataset.keep);
      if (kept !== null) record[key] = kept;
    } else if (input.type === 'checkbox') {
      record[key] = input.checked;
    } else if (input.dataset.lines) {
      const lines = input.value.split('\n').map((s) => s.trim().normalize('NFC')).filter((s) => s);
      record[key] = lines;
    } else if (input.dataset.type === 'integer') {
      const s = input.value.trim();
      if (s === '') continue;
      if (!/^-?\d+$/.test(s)) return { error: t('bad_number', { field: fieldLabel(current.collection, '/' + key) }) };
      record[key] = Number(s);
    } else {
      const s = input.value.trim().normalize('NFC');
      if (s !== '') record[key] = s;
    }
  }
  return { record };
}

// ---- reports (protocol/SPEC.md, "Reports") ---------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, txt) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (txt !== undefined) e.textContent = String(txt);
  return e;
}

const locale = () => (lang === 'vi' ? 'vi-VN' : 'en-GB');

function percent(v) {
  if (v === null || v === undefined) return '–';
  return (v * 100).toLocaleString(locale(), { maximumFractionDigits: 1 }) + '%';
}

function cellText(column, v) {
  if (v === null || v === undefined) return '–';
  if (column === 'rate') return percent(v);
  if (column === 'date') return dateText(v);
  if (column === 'kind') return t('kind_' + v);
  if (Array.isArray(v)) return v.map(nfc).join('; ');
  if (typeof v === 'number') return v.toLocaleString(locale());
  return nfc(String(v));
}

// One bar per row: a label, its value as a share of `max`, the figure as text; sorted so the
// places that need attention come first (lowest rate; most vague registrations).
function barsOf(r) {
  const label = (row) => nfc(row.unit_name || t('all_units')) + (row.audience ? ' — ' + nfc(row.audience) : '');
  let bars;
  switch (r.report) {
    case 'participation':
      bars = r.rows.map((row) => ({ label: label(row), value: row.rate, max: 1,
                                    text: percent(row.rate) + ' (' + row.attended + '/' + row.invited + ')' }));
      break;
    case 'registrations':
      bars = r.rows.map((row) => ({ label: label(row), value: row.rate, max: 1,
                                    text: percent(row.rate) + ' (' + row.registered + '/' + row.members + ')' }));
      break;
    case 'unreviewed_cells':
      bars = r.rows.map((row) => {
        const rate = row.registered ? row.reviewed / row.registered : null;
        return { label: (row.parent_name ? nfc(row.parent_name) + ' › ' : '') + nfc(row.unit_name),
                 value: rate, max: 1, text: percent(rate) + ' (' + row.reviewed + '/' + row.registered + ')' };
      });
      break;
    case 'inspections': {
      const most = Math.max(1, ...r.rows.map((row) => row.vague_registrations || 0));
      return r.rows.map((row) => ({ label: nfc(row.unit_name) + ' · ' + dateText(row.date), value: row.vague_registrations || 0,
                                    max: most, text: String(row.vague_registrations || 0), count: true }))
        .sort((a, b) => b.value - a.value);
    }
    default:
      return [];
  }
  return bars.sort((a, b) => (a.value ?? 2) - (b.value ?? 2));
}

function drawLegend(r) {
  const box = $('report-legend');
  box.replaceChildren();
  if (r.report === 'inspections') {
    box.append(el('p', t('legend_vague')));
  } else {
    const items = el('ul');
    for (const [cls, key] of [['ok', 'legend_ok'], ['low', 'legend_low'], ['zero', 'legend_zero']]) {
      const li = el('li');
      li.append(el('span', null, 'swatch ' + cls), el('span', t(key)));
      items.append(li);
    }
    box.append(items, el('p', t('legend_sorted')));
  }
  box.hidden = false;
}

// The chart, drawn for the width it has: label, bar and figure on one line on a wide screen,
// the label above its bar on a phone. Text is never scaled down with the drawing.
function drawChart(r) {
  const box = $('report-chart');
  box.replaceChildren();
  const bars = barsOf(r);
  if (bars.length === 0) return;
  const width = Math.max(260, Math.floor(box.clientWidth || 800));
  const narrow = width < 600;
  const textW = 120;
  const labelW = narrow ? 0 : Math.min(340, Math.floor(width * 0.38));
  const barW = width - labelW - textW - 12;
  const rowH = narrow ? 44 : 24;
  const height = bars.length * rowH + 8;
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': t('report_' + r.report) });
  const maxChars = narrow ? Math.floor(width / 7.5) : Math.floor(labelW / 7);
  bars.forEach((b, i) => {
    const y = 4 + i * rowH;
    const barY = narrow ? y + 20 : y + 3;
    const share = b.value === null || b.value === undefined ? 0 : Math.max(0, Math.min(1, b.value / b.max));
    const zero = b.value === 0 && !b.count;
    const cls = b.count ? 'bar low' : (zero ? 'bar zero' : (share < 0.9 ? 'bar low' : 'bar'));
    const g = svg('g', { class: 'row' });
    const shown = b.label.length > maxChars ? b.label.slice(0, maxChars - 1) + '…' : b.label;
    g.append(narrow ? svg('text', { x: 0, y: y + 14, class: 'label' }, shown)
                    : svg('text', { x: labelW - 6, y: y + 16, 'text-anchor': 'end', class: 'label' }, shown),
             svg('rect', { class: zero ? 'track zero' : 'track', x: labelW, y: barY, width: barW, height: rowH - (narrow ? 24 : 6) }),
             svg('rect', { class: cls, x: labelW, y: barY, width: zero ? 4 : Math.round(barW * share), height: rowH - (narrow ? 24 : 6) }),
             svg('text', { x: labelW + barW + 6, y: barY + 13, class: zero ? 'figure zero' : 'figure' }, b.text));
    g.append(svg('title', {}, b.label + ': ' + b.text));
    chart.append(g);
  });
  box.append(chart);
}

// Columns a person reads: the unit's name, never its id.
const shownColumns = (r) => r.columns.filter((c) => c !== 'unit' && c !== 'id');

function drawTable(r) {
  const head = $('report-table').tHead;
  const body = $('report-table').tBodies[0];
  const columns = shownColumns(r);
  const hr = el('tr');
  for (const c of columns) hr.append(el('th', t('col_' + c)));
  head.replaceChildren(hr);
  const drillable = r.report === 'participation' || r.report === 'registrations';
  body.replaceChildren(...r.rows.map((row) => {
    const tr = el('tr');
    tr.dataset.unit = row.unit;
    for (const c of columns) {
      const td = cell(t('col_' + c), cellText(c, row[c]), typeof row[c] === 'number' ? 'num' : '');
      if (c === 'unit_name' && drillable && row.unit && row.unit !== r.unit.id && units.has(row.unit)) {
        td.textContent = '';
        const b = el('button', nfc(row.unit_name), 'drill');
        b.type = 'button';
        b.title = t('drill');
        b.addEventListener('click', () => { $('report-unit').value = row.unit; $('report-year').dataset.want = String(r.params.year); loadReport(); });
        td.append(b);
      }
      tr.append(td);
    }
    return tr;
  }));
  $('report-empty').hidden = r.rows.length !== 0;
}

// The years offered: those with figures in any report (GET /v1/reports), this report's, the
// campaign's and the one shown; a year without figures in this report is marked with a dash.
function fillYears(r) {
  const sel = $('report-year');
  const years = new Set([...allYears, ...(r.years || []), r.params.year]);
  if (r.campaign_year) years.add(r.campaign_year);
  sel.replaceChildren(...[...years].sort((a, b) => b - a).map((y) => {
    const withData = (r.years || []).includes(y);
    return new Option(String(y) + (y === r.campaign_year ? ' (' + t('campaign') + ')' : '') + (withData ? '' : ' –'), String(y));
  }));
  sel.value = String(r.params.year);
}

function fillPeriods(r) {
  const label = $('report-period-label');
  label.hidden = r.report !== 'unreviewed_cells';
  if (label.hidden) return;
  const y = r.params.year;
  const sel = $('report-period');
  const options = [new Option(t('period_latest'), ''), new Option(t('period_year', { y }), String(y))];
  for (let n = 1; n <= 4; ++n) options.push(new Option(t('period_q', { n, y }), y + '-Q' + n));
  options.push(new Option(t('period_h', { which: t('first_half'), y }), y + '-H1'),
               new Option(t('period_h', { which: t('second_half'), y }), y + '-H2'));
  sel.replaceChildren(...options);
  sel.value = sel.dataset.chosen && options.some((o) => o.value === sel.dataset.chosen) ? sel.dataset.chosen : '';
}

function periodText(p) {
  if (!p) return '';
  let m = /^(\d{4})-Q([1-4])$/.exec(p);
  if (m) return t('period_q', { n: m[2], y: m[1] });
  m = /^(\d{4})-H([12])$/.exec(p);
  if (m) return t('period_h', { which: t(m[2] === '1' ? 'first_half' : 'second_half'), y: m[1] });
  if (/^\d{4}$/.test(p)) return t('period_year', { y: p });
  return p;
}

function drawReport(r) {
  report = r;
  const params = [t('year') + ' ' + r.params.year];
  if (r.params.period) params.push(t('period') + ': ' + periodText(r.params.period));
  $('report-title').textContent = t('report_' + r.report) + ' — ' + (r.unit.id ? nfc(r.unit.name) || unitName(r.unit.id) : t('all_units')) +
                                  ' (' + params.join(', ') + ')';
  fillYears(r);
  fillPeriods(r);
  const noData = r.has_data === false;
  const nodata = $('report-nodata');
  nodata.hidden = !noData;
  if (noData) {
    const years = (r.years || []).slice().sort((a, b) => a - b);
    nodata.textContent = t('no_data', { y: r.params.year }) + ' ' +
                         (years.length ? t('years_with_data', { years: years.join(', ') }) : t('no_years'));
  }
  for (const id of ['report-chart', 'report-table', 'report-totals', 'report-legend']) $(id).hidden = noData;
  $('report-csv').disabled = noData;
  if (noData) { $('report-empty').hidden = true; return; }
  drawLegend(r);
  drawChart(r);
  drawTable(r);
  const totals = Object.entries(r.totals || {}).map(([k, v]) => t('tot_' + k) + ': ' + cellText(k, v)).join(' · ');
  $('report-totals').textContent = totals ? t('totals') + ' — ' + totals : '';
}

function reportQuery(extra) {
  const q = new URLSearchParams();
  const unit = $('report-unit').value;
  const year = $('report-year').dataset.want || $('report-year').value;
  delete $('report-year').dataset.want;
  if (unit) q.set('unit', unit);
  if (year) q.set('year', year);
  if ($('report-name').value === 'unreviewed_cells' && $('report-period').value) q.set('period', $('report-period').value);
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return '/v1/reports/' + encodeURIComponent($('report-name').value) + '?' + q.toString();
}

function clearReport() {
  report = null;
  $('report-title').textContent = '';
  $('report-chart').replaceChildren();
  $('report-legend').hidden = true;
  $('report-nodata').hidden = true;
  $('report-table').tHead.replaceChildren();
  $('report-table').tBodies[0].replaceChildren();
  $('report-totals').textContent = '';
  $('report-empty').hidden = true;
}

async function loadYears() {
  const r = await api('/v1/reports');
  if (r.status === 200 && Array.isArray(r.json.years)) allYears = r.json.years;
}

async function loadReport() {
  say('');
  $('report-period').dataset.chosen = $('report-period').value;
  const r = await api(reportQuery());
  show('reports');
  if (r.status !== 200) {
    clearReport();
    if (r.status !== 401) say(errorText(r, 'report'), true);
    return;
  }
  drawReport(r.json);
}

// The report as a CSV file (UTF-8 with a BOM and Vietnamese headers, so Excel opens it right),
// fetched with the token and saved through a blob link.
async function downloadCsv() {
  if (!report) return;
  let res;
  try {
    res = await fetch(reportQuery({ format: 'csv' }), { headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store' });
  } catch (_) { say(t('err_network'), true); return; }
  if (res.status !== 200) {
    let json = null;
    try { json = await res.json(); } catch (_) { json = null; }
    say(errorText({ status: res.status, json }, 'report'), true);
    return;
  }
  const blob = await res.blob();
  const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = m ? m[1] : 'report.csv';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---- devices and enrolment codes (admin devices only) -------------------------------------

async function loadDevices() {
  const r = await api('/v1/devices');
  if (r.status !== 200) { if (r.status !== 401) say(errorText(r, 'devices'), true); return; }
  show('devices');
  const rows = r.json.devices
    .slice()
    .sort((a, b) => (nfc(a.unit_name) || a.unit_id).localeCompare(nfc(b.unit_name) || b.unit_id, 'vi') || nfc(a.name).localeCompare(nfc(b.name), 'vi'))
    .map((d) => {
      const tr = el('tr');
      tr.dataset.id = d.id;
      tr.append(cell(t('device'), nfc(d.name)), cell(t('unit'), nfc(d.unit_name) || d.unit_id),
        cell(t('role'), t('role_' + d.role) + (d.revoked ? ' (' + t('revoked') + ')' : '')),
        cell(t('last_sync'), d.last_sync_ms ? when(d.last_sync_ms) : t('never')));
      const td = el('td', null, 'actions');
      if (!d.revoked) {
        const b = el('button', t('make_code'));
        b.type = 'button';
        b.addEventListener('click', () => makeCode(d));
        td.append(b);
      }
      tr.append(td);
      return tr;
    });
  $('devices').tBodies[0].replaceChildren(...rows);
}

// A one-time code for the device: its link on this server's address, and the link's QR code.
async function makeCode(d) {
  const r = await api('/v1/devices/' + encodeURIComponent(d.id) + '/enrol', { server: location.origin });
  if (r.status !== 200) { if (r.status !== 401) say(errorText(r, 'devices'), true); return; }
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
  $('lang').addEventListener('change', async () => {
    lang = $('lang').value === 'en' ? 'en' : 'vi';
    localStorage.setItem(LANG_KEY, lang);
    applyLanguage();
    fillCollectionPicker();
    fillUnitPickers();
    refTitles.clear();
    if (current && !$('detail-view').hidden) { await showConflict(current); loadHistory(); }
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
    const r = await api('/v1/me');
    if (r.status === 200) { say(t('signed_in')); await loadNames(); await loadList(); }
    else if (r.status !== 401) say(errorText(r, 'signin'), true);
  });
  $('signout').addEventListener('click', () => { signOut(); say(''); });
  $('refresh').addEventListener('click', loadList);
  $('tab-conflicts').addEventListener('click', () => { current = null; say(''); loadList(); });
  $('tab-reports').addEventListener('click', async () => { await loadYears(); loadReport(); });
  $('tab-devices').addEventListener('click', () => { $('enrolment').hidden = true; say(''); loadDevices(); });
  $('report-show').addEventListener('click', loadReport);
  for (const id of ['report-name', 'report-unit', 'report-year', 'report-period']) $(id).addEventListener('change', loadReport);
  $('report-csv').addEventListener('click', downloadCsv);
  $('report-print').addEventListener('click', () => window.print());
  let resizing = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (report && !$('reports-view').hidden && report.has_data !== false) drawChart(report); }, 150);
  });
  for (const id of ['status-filter', 'collection-filter', 'unit-filter']) $(id).addEventListener('change', loadList);
  $('back').addEventListener('click', () => { current = null; say(''); loadList(); });
  $('resolve-form').addEventListener('submit', (e) => e.preventDefault());
  $('keep-head').addEventListener('click', () => previewDecision({ choice: 'keep_head' }));
  $('take-incoming').addEventListener('click', () => previewDecision({ choice: 'take_incoming' }));
  $('dismiss').addEventListener('click', () => previewDecision({ choice: 'dismiss' }));
  $('pick').addEventListener('click', () => {
    const picks = collectPicks();
    if (Object.keys(picks).length !== current.fields.length) { say(t('pick_missing'), true); return; }
    previewDecision({ choice: 'pick', picks });
  });
  $('edit').addEventListener('click', () => {
    buildEditor();
    $('edit-delete').checked = false;
    $('editor').hidden = false;
  });
  $('save-edit').addEventListener('click', () => {
    if ($('edit-delete').checked) { previewDecision({ choice: 'edit', deleted: true }); return; }
    const { record, error } = readEditor();
    if (error) { say(error, true); return; }
    previewDecision({ choice: 'edit', record });
  });
  $('confirm').addEventListener('click', () => { if (pending) resolve(pending); });
  $('cancel-preview').addEventListener('click', () => {
    pending = null;
    $('preview').hidden = true;
    $('resolve-form').hidden = false;
  });
}

document.addEventListener('DOMContentLoaded', async () => {
  wire();
  applyLanguage();
  if (token()) { await loadNames(); loadList(); } else show('signin');
});
