// The field app's work (SPEC.md, "GET /app/"): the records of the device's unit, kept on the
// device by the replica (the client library compiled to WebAssembly, in a worker:
// replica-client.js) and synced with the server; forms built from the schema (SPEC.md, "Forms
// from the schema"). Everything a person reads is Vietnamese; no code, id or English message
// of the library reaches the screen.
'use strict';

(() => {
  const KEY_SCHEMA = 'fieldsync.schema';     // GET /v1/schema, kept for offline starts
  const KEY_ME = 'fieldsync.me';             // GET /v1/me: the device's unit and the units it sees
  const KEY_LAST_SYNC = 'fieldsync.last_sync';
  const UNREADABLE = Symbol('unreadable JSON');   // a JSON field's text that does not parse
  const AUTO_SYNC_MS = 60000;                // while the app is open and online
  const WAIT_MS = 25000;                     // a long poll's wait (the server's maximum)

  const $ = (id) => document.getElementById(id);
  const nfc = (s) => (typeof s === 'string' ? s.normalize('NFC') : '');
  // Search ignores case, NFC/NFD and, as a second chance, the marks (typed without them).
  const fold = (s) => nfc(s).toLocaleLowerCase('vi');
  const bare = (s) => fold(s).normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/g, 'd');
  const readJSON = (key) => {
    try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
  };

  // Words for the states of a record and for the library's errors.
  const STATE_WORDS = {
    synced: 'Đã đồng bộ',
    pending: 'Chờ gửi',
    conflict: 'Chờ cấp trên xem xét',
    rejected: 'Bị từ chối',
    decided: 'Cấp trên đã quyết định',
  };
  const SYNC_ERRORS = {
    network: 'Chưa kết nối được máy chủ. Mọi thay đổi vẫn được giữ trên máy; khi có mạng, ứng dụng sẽ tự gửi.',
    timeout: 'Mạng quá chậm, máy chủ chưa trả lời. Thay đổi vẫn được giữ trên máy; ứng dụng sẽ thử lại.',
    server_unavailable: 'Máy chủ đang bận hoặc gặp sự cố. Thay đổi vẫn được giữ trên máy; ứng dụng sẽ thử lại sau.',
    unauthorized: 'Thiết bị này không còn được phép đồng bộ (đã bị thu hồi hoặc cấp lại mã). '
      + 'Xin cán bộ phụ trách ghi danh lại thiết bị. Dữ liệu trên máy vẫn được giữ.',
    forbidden: 'Thiết bị này không được phép làm việc này. Xin hỏi cán bộ phụ trách.',
    client_too_old: 'Ứng dụng đã cũ so với máy chủ. Khi có mạng, hãy tải lại trang để cập nhật.',
    server_too_old: 'Máy chủ của huyện chưa được nâng cấp cho ứng dụng này. Xin báo cán bộ phụ trách.',
    storage: 'Bộ nhớ của trình duyệt gặp lỗi. Hãy đóng các thẻ khác của ứng dụng rồi mở lại.',
    busy: 'Đang đồng bộ, xin chờ.',
  };
  const SYNC_FAILED = 'Đồng bộ chưa thành công. Thay đổi vẫn được giữ trên máy. Nếu lỗi lặp lại, xin báo cán bộ phụ trách.';
  const REFUSALS = {
    out_of_scope: 'Thiết bị này không được ghi hồ sơ vào đơn vị đó.',
    schema_violation: 'Nội dung chưa đúng quy định của hồ sơ (thiếu hoặc sai một mục).',
    unknown_collection: 'Máy chủ không có loại hồ sơ này.',
  };
  const CHOICES = {
    keep_head: 'giữ bản đang có trên máy chủ; thay đổi của đồng chí không được nhận',
    take_incoming: 'nhận bản của đồng chí',
    pick: 'chọn từng mục giữa hai bản',
    edit: 'sửa thành một bản mới',
    dismiss: 'bỏ qua; giữ nguyên bản trên máy chủ',
  };

  let device = null;      // {token, device, unit}
  let schema = null;      // the schema document
  let me = null;          // GET /v1/me
  let replica = null;     // FieldsyncReplica
  let current = null;     // {collection, record|null}: the open form
  let syncing = false;
  let syncAgain = false;
  let timer = 0;
  let listening = false;

  const text = (t) => (t && (t.vi || t.en || Object.values(t)[0])) || '';
  const coll = (name) => schema.collections[name];
  const label = (name, field) => text(coll(name).fields[field].label) || field;
  const unitName = (id) => {
    const u = me && me.units && me.units.find((x) => x.id === id);
    return u ? nfc(u.name) : '';
  };

  function say(message, kind) {
    const m = $('sync-message');
    m.textContent = message;
    m.className = kind || '';
  }

  async function api(path) {
    const res = await fetch(path, { headers: { Authorization: 'Bearer ' + device.token, Accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) throw new Error(String(res.status));
    return res.json();
  }

  // The schema and the device's units: from the server when it answers, else as kept.
  async function loadSetup() {
    try {
      const [s, m] = await Promise.all([api('/v1/schema'), api('/v1/me')]);
      localStorage.setItem(KEY_SCHEMA, JSON.stringify(s));
      localStorage.setItem(KEY_ME, JSON.stringify(m));
    } catch {
      // Offline: what was kept.
    }
    schema = readJSON(KEY_SCHEMA);
    me = readJSON(KEY_ME);
    return Boolean(schema && schema.collections);
  }

  // ---- Lists ----

  // A collection's title fields: the schema names one field or an array of up to three.
  const titleFields = (c) => (Array.isArray(c.title) ? c.title : c.title ? [c.title] : []);

  // The titles of the collections the title fields of `c` refer to: collection -> (id -> title).
  async function refTitlesOf(c, depth) {
    const out = new Map();
    for (const f of titleFields(c)) {
      const ref = c.fields[f] && c.fields[f].ref;
      if (ref && !out.has(ref)) out.set(ref, await titles(ref, depth + 1));
    }
    return out;
  }

  // The records of `collection` by id, for titles of references (followed three deep, so a
  // schema whose titles refer in a circle ends).
  async function titles(collection, depth = 0) {
    const out = new Map();
    if (collection === 'units') {
      for (const u of (me && me.units) || []) out.set(u.id, nfc(u.name));
      return out;
    }
    const c = coll(collection);
    if (!c || depth >= 3) return out;
    const records = await replica.call('list', { collection });
    const inner = await refTitlesOf(c, depth);
    for (const r of records) out.set(r.id, titleOf(c, r, inner));
    return out;
  }

  // What the record shows: while the server holds or refuses the cadre's change, the text
  // she wrote (the local copy is then the server's); else the local copy.
  const shown = (r) => {
    const held = r.held && typeof r.held === 'object' ? r.held : null;
    if (held && (r.state === 'conflict' || r.state === 'rejected')) return held;
    return r.data && typeof r.data === 'object' ? r.data : held || {};
  };

  // The record's title (SPEC.md, "Forms from the schema"): the values of its title fields
  // that are not empty, joined with ", ", a reference by the referenced record's title.
  function titleOf(c, r, refTitles) {
    const parts = [];
    for (const f of titleFields(c)) {
      const v = shown(r)[f];
      const ref = c.fields[f] && c.fields[f].ref;
      let part = '';
      if (ref) part = (refTitles && refTitles.get(ref) && refTitles.get(ref).get(v)) || '';
      else if (typeof v === 'string') part = nfc(v);
      else if (Number.isInteger(v)) part = String(v);
      if (part) parts.push(part);
    }
    return parts.join(', ');
  }

  function stateOf(r) {
    if (r.resolution && r.state === 'synced') return 'decided';
    return r.state;
  }

  let listDrawn = 0;   // the latest showList: an older one that ends later draws nothing

  async function showList() {
    const mine = ++listDrawn;
    current = null;
    $('record-form').hidden = true;
    $('list-view').hidden = false;
    const name = $('collection').value;
    const c = name && coll(name);
    // Before the list of collections is filled (a sync woken while the app starts): nothing yet.
    if (!c) return;
    // The live records, and those held or refused (a refused create is deleted locally, and
    // must still be seen to be discarded).
    const records = await replica.call('list', { collection: name });
    for (const h of await replica.call('held', { collection: name })) {
      if (!records.some((r) => r.id === h.id)) records.push(h);
    }
    const refTitles = await refTitlesOf(c, 0);
    // Another collection was picked (or a sync ended) meanwhile: that call draws the list.
    if (mine !== listDrawn) return;
    const q = $('search').value.trim();
    const rows = records.map((r) => ({ r, title: titleOf(c, r, refTitles) || text(c.label) }))
      .filter(({ title }) => !q || fold(title).includes(fold(q)) || bare(title).includes(bare(q)))
      .sort((a, b) => a.title.localeCompare(b.title, 'vi'));
    const list = $('records');
    list.replaceChildren(...rows.map(({ r, title }) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      const t = document.createElement('span');
      t.className = 'record-title';
      t.textContent = title;
      const sub = document.createElement('span');
      sub.className = 'record-sub';
      sub.textContent = subtitle(c, r);
      const badge = document.createElement('span');
      const st = stateOf(r);
      badge.className = 'badge ' + st;
      badge.textContent = STATE_WORDS[st] || '';
      b.append(t, sub, badge);
      b.addEventListener('click', () => openForm(name, r));
      li.append(b);
      return li;
    }));
    $('list-empty').hidden = rows.length > 0;
    $('list-empty').textContent = q ? 'Không tìm thấy hồ sơ nào khớp.' : 'Chưa có hồ sơ nào.';
  }

  // A second line: the first few filled fields that are not the title (year, date, role).
  function subtitle(c, r) {
    const parts = [];
    for (const [f, spec] of orderedFields(c)) {
      if (titleFields(c).includes(f) || spec.ref || parts.length >= 2) continue;
      const v = shown(r)[f];
      if (v === undefined || v === null || v === '' || typeof v === 'object') continue;
      if (spec.type === 'string' && (spec.max_length || 0) > 300) continue;
      const words = spec.choices && spec.choices[v] ? text(spec.choices[v]) : String(v);
      parts.push(`${text(spec.label) || f}: ${nfc(words)}`);
    }
    return parts.join(' · ');
  }

  // ---- Forms ----

  // The fields in the schema's order for forms, then any it does not name.
  function orderedFields(c) {
    const order = Array.isArray(c.order) ? c.order.filter((f) => c.fields[f]) : [];
    const rest = Object.keys(c.fields).filter((f) => !order.includes(f));
    return [...order, ...rest].map((f) => [f, c.fields[f]]);
  }

  function defaultOf(spec) {
    const d = spec.default;
    if (!d) return undefined;
    if ('value' in d) return d.value;
    if (d.now === 'year') return new Date().getFullYear();
    if (d.now === 'date') {
      const t = new Date();
      return `${t.getFullYear()}-${String(t.getMonth() + 1).padStart(2, '0')}-${String(t.getDate()).padStart(2, '0')}`;
    }
    if (d.device === 'unit') return device.device.unit_id;
    return undefined;
  }

  function option(value, words) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = words;
    return o;
  }

  // One field's input, its label and help; `read()` gives the value as the record holds it.
  async function fieldInput(name, field, spec, value) {
    const box = document.createElement('div');
    box.className = 'field';
    const id = 'f-' + field;
    const lab = document.createElement('label');
    lab.htmlFor = id;
    lab.textContent = text(spec.label) || field;
    if (spec.required) {
      const star = document.createElement('span');
      star.className = 'required';
      star.textContent = ' *';
      lab.append(star);
    }
    let input;
    let read;
    if (isAttachmentField(spec)) {
      const a = attachmentInput(name, field, spec, value, lab);
      input = a.input;
      read = a.read;
      box.append(lab, a.input);
      box.classList.add('attachment-field');
      if (spec.help) appendHelp(box, spec);
      return { box, read, spec, field, immediate: a.immediate, shas: a.shas };
    }
    if (spec.type === 'boolean') {
      lab.className = 'check';
      input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = value === true;
      lab.prepend(input);
      read = () => input.checked;
      box.append(lab);
    } else if (spec.type === 'array') {
      const lines = document.createElement('div');
      lines.className = 'lines';
      lines.id = id;
      const addLine = (v) => {
        const row = document.createElement('div');
        row.className = 'line';
        const i = document.createElement('input');
        i.value = nfc(typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
        i.setAttribute('aria-label', `${lab.textContent}: dòng`);
        const del = document.createElement('button');
        del.type = 'button';
        del.className = 'secondary';
        del.textContent = 'Xóa';
        del.setAttribute('aria-label', 'Xóa dòng này');
        del.addEventListener('click', () => row.remove());
        row.append(i, del);
        lines.append(row);
        return i;
      };
      for (const v of Array.isArray(value) ? value : []) addLine(v);
      if (!lines.children.length) addLine('');
      const more = document.createElement('button');
      more.type = 'button';
      more.className = 'secondary';
      more.textContent = 'Thêm dòng';
      more.addEventListener('click', () => addLine('').focus());
      read = () => [...lines.querySelectorAll('input')].map((i) => i.value.trim().normalize('NFC')).filter((v) => v);
      box.append(lab, lines, more);
      input = lines;
    } else if (spec.ref || spec.one_of) {
      input = document.createElement('select');
      input.append(option('', '— chọn —'));
      const pairs = spec.ref
        ? [...(await titles(spec.ref)).entries()].sort((a, b) => a[1].localeCompare(b[1], 'vi'))
        : spec.one_of.map((v) => [v, spec.choices && spec.choices[v] ? text(spec.choices[v]) : v]);
      for (const [v, words] of pairs) input.append(option(v, words || v));
      if (value !== undefined && value !== null && ![...input.options].some((o) => o.value === value)) {
        input.append(option(value, spec.ref === 'units' ? unitName(value) || value : String(value)));
      }
      input.value = value === undefined || value === null ? '' : value;
      read = () => input.value || null;
      box.append(lab, input);
    } else if (spec.type === 'object' || spec.type === 'any') {
      // No form for these: the value as JSON text (a schema of the district's own may have them).
      input = document.createElement('textarea');
      input.value = value === undefined || value === null ? '' : JSON.stringify(value, null, 2);
      read = () => {
        const v = input.value.trim();
        if (v === '') return null;
        try { return JSON.parse(v); } catch { return UNREADABLE; }
      };
      box.append(lab, input);
    } else {
      const long = spec.type === 'string' && (spec.max_length || 0) > 300;
      input = document.createElement(long ? 'textarea' : 'input');
      if (!long) {
        input.type = spec.type === 'integer' || spec.type === 'number' ? 'number' : spec.type === 'date' ? 'date' : 'text';
        if (spec.type === 'integer') {
          input.step = '1';
          input.inputMode = 'numeric';
        }
      }
      input.value = value === undefined || value === null ? '' : typeof value === 'string' ? nfc(value) : String(value);
      read = () => {
        const v = input.value.trim();
        if (v === '') return null;
        if (spec.type === 'integer' || spec.type === 'number') return Number(v);
        return v.normalize('NFC');
      };
      box.append(lab, input);
    }
    if (input.tagName !== 'DIV') input.id = id;
    if (spec.help) appendHelp(box, spec);
    return { box, read, spec, field };
  }

  function appendHelp(box, spec) {
    const help = document.createElement('p');
    help.className = 'help';
    help.textContent = text(spec.help);
    box.append(help);
    return help;
  }

  // ---- Attachments (files.js; SPEC.md, "Attachments") ----

  const isAttachmentField = (spec) => spec.type === 'attachment' || (spec.type === 'array' && spec.items === 'attachment');
  const isRef = (v) => Boolean(v && typeof v === 'object' && typeof v.sha256 === 'string' && /^[0-9a-f]{64}$/.test(v.sha256));
  const refsOf = (spec, v) => (spec.type === 'array' ? (Array.isArray(v) ? v : []) : v ? [v] : []).filter(isRef);

  // An attachment's state in words, and a sentence when something is to be done.
  const ATTACH_FAILED = {
    blob_too_large: 'Ảnh quá lớn, máy chủ không nhận. Bấm «Bỏ ảnh» rồi chụp lại.',
    blob_type_refused: 'Máy chủ không nhận tệp này: không phải ảnh hay tệp PDF. Bấm «Bỏ ảnh» rồi chọn tệp khác.',
    blob_hash_mismatch: 'Ảnh bị hỏng khi gửi hoặc trên máy. Bấm «Bỏ ảnh» rồi chụp lại.',
    lost: 'Ảnh không còn trên máy này nên không gửi được. Bấm «Bỏ ảnh» rồi chụp lại.',
  };
  function attachmentWords(st, isPdf) {
    const what = isPdf ? 'tệp' : 'ảnh';
    switch (st.state) {
      case 'draft': return ['Chưa lưu', 'Bấm «Lưu» để lưu hồ sơ cùng ' + what + ' này.'];
      case 'waiting': return ['Chờ gửi', st.reason === 'blob_quota'
        ? 'Hôm nay thiết bị đã gửi quá nhiều ảnh; ứng dụng sẽ gửi tiếp vào ngày mai.'
        : 'Đã lưu trên máy; sẽ được gửi khi có mạng.'];
      case 'sending': return [`Đang gửi ${st.percent}%`, ''];
      case 'sent': return ['Đã gửi', ''];
      case 'failed': return ['Không gửi được', ATTACH_FAILED[st.reason] || 'Máy chủ không nhận ' + what + ' này. Bấm «Bỏ ảnh» rồi chụp lại.'];
      case 'missing': return ['Chưa có trên máy chủ', 'Máy đã chụp ' + what + ' này chưa gửi lên; khi gửi xong sẽ xem được ở đây.'];
      case 'offline': return ['Chưa xem được', 'Cần có mạng để tải ' + what + ' này về máy.'];
      default: return ['', ''];
    }
  }

  // One attachment: its thumbnail (tap to see it large), its name and state; «Bỏ ảnh».
  function attachmentItem(ref, onRemove) {
    const isPdf = ref.content_type === 'application/pdf';
    const item = document.createElement('figure');
    item.className = 'attachment';
    item.dataset.sha = ref.sha256;
    const thumb = document.createElement(isPdf ? 'div' : 'img');
    thumb.className = isPdf ? 'thumb pdf' : 'thumb';
    if (isPdf) {
      // A tap opens the PDF in the phone's viewer, from the bytes on the device.
      thumb.textContent = 'PDF';
      thumb.setAttribute('role', 'link');
      thumb.addEventListener('click', async () => {
        const u = await self.fieldsyncFiles.url(ref);
        if (!u) return;
        const a = document.createElement('a');
        a.href = u;
        a.target = '_blank';
        a.rel = 'noopener';
        a.click();
      });
    } else {
      thumb.alt = '';   // named once shown: a photo not fetched is a grey square, not its name twice
      thumb.addEventListener('click', () => item.classList.toggle('large'));
    }
    const cap = document.createElement('figcaption');
    const nm = document.createElement('span');
    nm.className = 'att-name';
    nm.textContent = nfc(ref.name);
    const st = document.createElement('span');
    st.className = 'att-state';
    const why = document.createElement('span');
    why.className = 'att-why';
    cap.append(nm, st, why);
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'secondary';
    del.textContent = isPdf ? 'Bỏ tệp' : 'Bỏ ảnh';
    del.addEventListener('click', () => onRemove(ref));
    item.append(thumb, cap, del);
    // `again`: look on the server again for bytes it did not have (after a sync); a change of
    // state alone (an upload's progress) only redraws the words.
    item.refresh = async (again) => {
      const files = self.fieldsyncFiles;
      // Fetched once shown (and kept), not with every pull; a PDF too, to know its state.
      if (!item.dataset.shown && (again || !item.dataset.tried)) {
        item.dataset.tried = '1';
        const u = await files.url(ref);
        if (u) {
          item.dataset.shown = '1';
          if (!isPdf) {
            thumb.alt = nfc(ref.name);
            thumb.src = u;
          }
        }
      }
      const [words, sentence] = attachmentWords(await files.state(ref.sha256), isPdf);
      st.textContent = words;
      st.dataset.state = words;
      why.textContent = sentence;
      item.classList.toggle('failed', words === 'Không gửi được');
    };
    item.refresh(true);
    return item;
  }

  // The attachments of a field and the controls that add to them. A photo is kept on the
  // device first (files.js); on a saved record its reference is then written at once as an
  // ordinary edit (a patch of this field alone), so it syncs without waiting for «Lưu»; on a
  // new record it goes with the record when it is saved.
  function attachmentInput(name, field, spec, value, lab) {
    const many = spec.type === 'array';
    let refs = refsOf(spec, value);
    const wrap = document.createElement('div');
    wrap.className = 'attachments';
    wrap.id = 'f-' + field;
    const list = document.createElement('div');
    list.className = 'attachment-list';
    const note = document.createElement('p');
    note.className = 'att-message';
    note.setAttribute('role', 'status');
    const saved = () => Boolean(current && current.record && current.collection === name);

    // A saved record: the field written at once, from the record as the device holds it now
    // (a sync may have brought another photo meanwhile).
    async function writeField(change) {
      const r = await replica.call('get', { collection: name, id: current.record.id });
      const now = refsOf(spec, r && r.data ? r.data[field] : undefined);
      const next = change(now);
      await replica.call('patch', { collection: name, id: current.record.id,
        patch: { [field]: many ? next : next.length ? next[0] : null } });
      current.record = await replica.call('get', { collection: name, id: current.record.id });
      refs = next;
      render();
      stateNotice(current.record);
      await refreshCounts();
      scheduleSync(500);
    }

    async function remove(ref) {
      note.textContent = '';
      if (!saved()) {
        refs = refs.filter((r) => r.sha256 !== ref.sha256);
        render();
        return;
      }
      try {
        await writeField((now) => now.filter((r) => r.sha256 !== ref.sha256));
        note.textContent = ref.content_type === 'application/pdf' ? 'Đã bỏ tệp khỏi hồ sơ.' : 'Đã bỏ ảnh khỏi hồ sơ.';
      } catch {
        note.textContent = 'Chưa bỏ được ảnh. Thử lại.';
      }
    }

    function render() {
      list.replaceChildren(...refs.map((r) => attachmentItem(r, remove)));
      more.hidden = !many && refs.length > 0;
    }

    async function add(fileList) {
      note.textContent = '';
      for (const file of [...fileList]) {
        note.textContent = 'Đang thu nhỏ và lưu ảnh…';
        let ref;
        try {
          ref = await self.fieldsyncFiles.attach(file);
        } catch (e) {
          note.textContent = e.name === 'too_large'
            ? 'Tệp PDF lớn hơn 10 MB, máy chủ không nhận. Hãy chụp từng trang thành ảnh.'
            : e.name === 'storage'
              ? 'Máy không còn chỗ để lưu ảnh. Hãy xóa bớt ảnh hoặc video cũ trên điện thoại rồi thử lại.'
              : 'Không đọc được tệp này. Hãy chụp lại, hoặc chọn một ảnh hay tệp PDF khác.';
          continue;
        }
        if (refs.some((r) => r.sha256 === ref.sha256)) {
          note.textContent = 'Ảnh này đã có trong hồ sơ.';
          continue;
        }
        try {
          if (saved()) {
            await writeField((now) => (many ? [...now.filter((r) => r.sha256 !== ref.sha256), ref] : [ref]));
            await self.fieldsyncFiles.commit([ref.sha256]);
            note.textContent = 'Đã lưu ảnh trên máy.';
          } else {
            refs = many ? [...refs, ref] : [ref];
            render();
            note.textContent = 'Ảnh sẽ được lưu cùng hồ sơ khi bấm «Lưu».';
          }
        } catch {
          note.textContent = 'Chưa lưu được ảnh vào hồ sơ. Thử lại.';
        }
      }
    }

    // Two ways in: the camera (capture), or a photo or PDF already on the phone.
    const more = document.createElement('div');
    more.className = 'row attach-buttons';
    const pick = (words, accept, capture, cls) => {
      const input = document.createElement('input');
      input.type = 'file';
      input.accept = accept;
      if (capture) input.setAttribute('capture', 'environment');
      else input.multiple = many;
      input.className = 'file-input ' + cls;
      input.tabIndex = -1;
      input.setAttribute('aria-hidden', 'true');
      input.addEventListener('change', async () => {
        const chosen = [...input.files];
        input.value = '';
        if (chosen.length) await add(chosen);
      });
      const b = document.createElement('button');
      b.type = 'button';
      b.className = cls === 'camera' ? '' : 'secondary';
      b.textContent = words;
      b.addEventListener('click', () => input.click());
      more.append(b, input);
    };
    pick('Chụp ảnh', 'image/*', true, 'camera');
    pick('Chọn ảnh / PDF', 'image/*,application/pdf', false, 'gallery');
    lab.htmlFor = '';
    wrap.setAttribute('aria-label', lab.textContent);
    wrap.append(list, more, note);
    render();
    return {
      input: wrap,
      read: () => (many ? refs : refs.length ? refs[0] : null),
      // Written as it changes on a saved record; «Lưu» leaves it alone.
      immediate: () => saved(),
      shas: () => refs.map((r) => r.sha256),
    };
  }

  // The attachments of the open form, their states redrawn (an upload's progress).
  function refreshAttachments(sha) {
    for (const item of document.querySelectorAll('#form-fields figure.attachment')) {
      if (!sha || item.dataset.sha === sha) item.refresh(!sha);
    }
  }

  // What is wrong with `value` for `spec`, in words; '' when nothing.
  function problem(name, field, spec, value) {
    const l = `«${label(name, field)}»`;
    const empty = value === null || value === undefined || (Array.isArray(value) && value.length === 0);
    if (empty && spec.required && isAttachmentField(spec)) return `Cần ít nhất một ảnh ở ${l}.`;
    if (empty) return spec.required ? (spec.type === 'array' ? `Cần ít nhất một dòng ở ${l}.` : `Chưa điền ${l}.`) : '';
    if (isAttachmentField(spec)) return '';
    if (spec.type === 'integer' && !Number.isInteger(value)) return `${l} phải là một số nguyên.`;
    if (spec.type === 'number' && !Number.isFinite(value)) return `${l} phải là một số.`;
    if (spec.type === 'date' && !/^\d{4}-\d{2}-\d{2}$/.test(value)) return `${l} phải là một ngày.`;
    if (value === UNREADABLE) return `${l} không đọc được (viết theo dạng JSON).`;
    if (spec.type === 'object' && (typeof value !== 'object' || Array.isArray(value))) return `${l} phải là một đối tượng JSON.`;
    if (spec.max_length && typeof value === 'string' && new TextEncoder().encode(value).length > spec.max_length) {
      return `${l} dài quá mức cho phép, xin viết ngắn lại.`;
    }
    return '';
  }

  // What the record's state means for the cadre, and what she can do about it.
  function stateNotice(r) {
    const box = $('record-state');
    box.replaceChildren();
    if (!r) return;
    const note = (kind, lines, action) => {
      const div = document.createElement('div');
      div.className = 'notice ' + kind;
      for (const l of lines) {
        const p = document.createElement('p');
        p.textContent = l;
        div.append(p);
      }
      if (action) div.append(action);
      box.append(div);
    };
    const discardButton = (words, done) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.id = 'discard';
      b.textContent = words;
      b.addEventListener('click', async () => {
        try {
          await replica.call('discard', { collection: current.collection, id: r.id });
          $('save-message').textContent = done;
          await refreshCounts();
          await showList();
        } catch (e) {
          $('form-error').textContent = e.name === 'busy' ? SYNC_ERRORS.busy : 'Chưa bỏ được thay đổi. Thử lại sau.';
        }
      });
      return b;
    };
    if (r.state === 'pending') note('pending', ['Thay đổi đã lưu trên máy, chờ gửi lên máy chủ.']);
    if (r.state === 'conflict') {
      note('conflict', ['Trên máy chủ, hồ sơ này cũng vừa được sửa ở nơi khác, cùng mục đồng chí sửa.',
        'Bản của đồng chí được giữ nguyên và đang chờ cấp trên xem xét. Khi có quyết định, ứng dụng sẽ báo ở đây.']);
    }
    if (r.state === 'rejected') {
      const why = (r.reason && REFUSALS[r.reason.code]) || 'Máy chủ không nhận thay đổi này.';
      note('rejected', ['Máy chủ đã từ chối thay đổi của đồng chí (bên dưới là bản đồng chí đã viết). ' + why,
        'Bấm nút dưới đây để bỏ thay đổi này và trở về bản trên máy chủ.'],
      discardButton('Bỏ thay đổi của tôi', 'Đã bỏ thay đổi bị từ chối.'));
    }
    if (r.resolution) {
      const res = r.resolution;
      const who = nfc(res.reviewer && res.reviewer.unit_name) || 'Cấp trên';
      const lines = res.status === 'dismissed'
        ? [`${who} đã bỏ qua thay đổi của đồng chí; hồ sơ giữ như trên máy chủ.`]
        : res.status === 'resolved'
          ? [`${who} đã quyết định: ${CHOICES[res.choice] || 'đã xem xét'}.`]
          : ['Máy chủ không còn giữ việc xem xét này; hồ sơ là bản mới nhất trên máy chủ.'];
      if (res.note) lines.push('Ghi chú: ' + nfc(res.note));
      if (r.held && typeof r.held === 'object') lines.push('Bản đồng chí đã viết vẫn được giữ trong thông báo này cho đến khi đồng chí ẩn nó.');
      note('decided', lines, discardButton('Đã xem, ẩn thông báo', 'Đã ẩn thông báo.'));
    }
  }

  async function openForm(name, r) {
    current = { collection: name, record: r || null };
    $('save-message').textContent = '';
    const c = coll(name);
    $('list-view').hidden = true;
    $('record-form').hidden = false;
    $('form-error').textContent = '';
    $('form-title').textContent = (r ? 'Sửa: ' : 'Thêm: ') + text(c.label);
    stateNotice(r);
    const inputs = [];
    for (const [field, spec] of orderedFields(c)) {
      const value = r ? shown(r)[field] : defaultOf(spec);
      inputs.push(await fieldInput(name, field, spec, value));
    }
    current.inputs = inputs;
    $('form-fields').replaceChildren(...inputs.map((i) => i.box));
    // A held change waits for the decision; a refused one for "discard".
    const locked = r && (r.state === 'conflict' || r.state === 'rejected');
    $('save').disabled = Boolean(locked);
    for (const el of $('form-fields').querySelectorAll('input, select, textarea, button')) el.disabled = Boolean(locked);
    window.scrollTo(0, 0);
  }

  async function save(event) {
    event.preventDefault();
    const { collection, record, inputs } = current;
    const values = {};
    const problems = [];
    for (const i of inputs) {
      if (i.immediate && i.immediate()) continue;
      const v = i.read();
      const p = problem(collection, i.field, i.spec, v);
      if (p) problems.push(p);
      values[i.field] = v;
    }
    if (problems.length) {
      $('form-error').textContent = problems.join(' ');
      return;
    }
    try {
      if (record) {
        // Only what changed: the server merges field by field with edits made elsewhere.
        const patch = {};
        for (const [k, v] of Object.entries(values)) {
          const old = record.data ? record.data[k] : undefined;
          if (JSON.stringify(old === undefined ? null : old) !== JSON.stringify(v)) patch[k] = v;
        }
        if (Object.keys(patch).length) await replica.call('patch', { collection, id: record.id, patch });
      } else {
        const data = {};
        for (const [k, v] of Object.entries(values)) if (v !== null) data[k] = v;
        const unit = typeof data.cell === 'string' ? data.cell : typeof data.unit === 'string' ? data.unit : device.device.unit_id;
        await replica.call('put', { collection, unit_id: unit, data });
        // The photos it names may now be sent.
        const shas = inputs.flatMap((i) => (i.shas ? i.shas() : []));
        if (shas.length) await self.fieldsyncFiles.commit(shas);
      }
    } catch (e) {
      $('form-error').textContent = e.name === 'schema_violation'
        ? 'Nội dung chưa đúng quy định của hồ sơ. Kiểm tra lại các mục có dấu *.'
        : 'Chưa lưu được trên máy. Thử lại; nếu vẫn lỗi, đóng các thẻ khác của ứng dụng rồi mở lại.';
      return;
    }
    // Its own line: a sync's message that follows does not replace it.
    $('save-message').textContent = 'Đã lưu trên máy.';
    await refreshCounts();
    await showList();
    scheduleSync(500);
  }

  // ---- Sync ----

  async function refreshCounts() {
    const pending = await replica.call('pending', {});
    const last = Number(localStorage.getItem(KEY_LAST_SYNC)) || 0;
    const when = last ? new Date(last).toLocaleString('vi-VN') : 'chưa lần nào';
    const photos = await self.fieldsyncFiles.pendingCount().catch(() => 0);
    $('sync-state').textContent = `Chưa gửi: ${pending} thay đổi` + (photos ? `, ${photos} ảnh` : '')
      + ` · Đồng bộ lần cuối: ${when}`;
  }

  function scheduleSync(ms) {
    clearTimeout(timer);
    timer = setTimeout(() => { syncNow(); }, ms);
  }

  async function syncNow() {
    if (syncing) {
      syncAgain = true;
      return;
    }
    syncing = true;
    const bar = $('sync-progress');
    bar.hidden = false;
    bar.removeAttribute('value');
    $('sync-button').disabled = true;
    $('sync-button').textContent = 'Đang đồng bộ…';
    try {
      const r = await replica.call('sync', {});
      localStorage.setItem(KEY_LAST_SYNC, String(Date.now()));
      const parts = [];
      if (r.pushed) parts.push(`đã gửi ${r.pushed} thay đổi`);
      if (r.pulled) parts.push(`đã nhận ${r.pulled} hồ sơ mới`);
      if (r.conflicts) parts.push(`${r.conflicts} thay đổi chờ cấp trên xem xét`);
      if (r.rejected) parts.push(`${r.rejected} thay đổi bị từ chối`);
      if (r.decided) parts.push(`${r.decided} quyết định của cấp trên`);
      say(parts.length ? 'Đồng bộ xong: ' + parts.join(', ') + '.' : 'Đồng bộ xong. Không có gì mới.', 'ok');
    } catch (e) {
      say(SYNC_ERRORS[e.name] || SYNC_FAILED, 'error');
    } finally {
      syncing = false;
      bar.hidden = true;
      $('sync-button').disabled = false;
      $('sync-button').textContent = 'Đồng bộ';
      await refreshCounts();
      if (!current) await showList();
      else if (current.record) {
        const fresh = await replica.call('get', { collection: current.collection, id: current.record.id });
        if (fresh) stateNotice(fresh);
        refreshAttachments();
      }
      uploadFiles();
      if (syncAgain) {
        syncAgain = false;
        scheduleSync(0);
      } else if (navigator.onLine) {
        scheduleSync(AUTO_SYNC_MS);
        listen();
      }
    }
  }

  // Changes made elsewhere (at the district, on another phone) reach the open app within
  // seconds: between syncs the page keeps one pull open with wait_ms from the replica's
  // cursor (SPEC.md, "Waiting for changes"); when it answers with something, the replica
  // syncs, and pulls it. The page waits, not the worker, so a save meanwhile goes on at once.
  // The answer itself is not applied (the replica's sync reads the page again): one small
  // page twice, for one implementation of the sync rules.
  async function listen() {
    if (listening || !replica || !navigator.onLine || document.hidden) return;
    listening = true;
    try {
      while (navigator.onLine && !document.hidden) {
        const { cursor } = await replica.call('status', {});
        if (!cursor) break;   // before the first sync: nothing to wait from
        const asked = Date.now();
        const res = await fetch('/v1/sync', {
          method: 'POST',
          headers: { Authorization: 'Bearer ' + device.token, 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ cursor, diffs: false, wait_ms: WAIT_MS }),
          cache: 'no-store',
        });
        if (!res.ok) break;
        const page = await res.json();
        const news = (page.changes && page.changes.length) || (page.dropped && page.dropped.length) || page.reset;
        if (news) {
          await syncNow();
        } else if (Date.now() - asked < WAIT_MS / 2) {
          // Answered early with nothing: the server has too many waiting (SPEC.md, "Waiting
          // for changes"). No tight loop: the minute's sync listens again.
          break;
        }
      }
    } catch {
      // Offline or the server went away: the next sync (network back, timer, button) listens again.
    } finally {
      listening = false;
    }
  }

  // The photos' queue, after the records (SPEC.md, "Client behaviour"): never in the way
  // of a sync, resumed from the server's offset.
  async function uploadFiles() {
    try {
      await self.fieldsyncFiles.run();
    } catch {
      // Storage or network: the next sync runs the queue again.
    }
    await refreshCounts();
  }

  function progress(p) {
    const bar = $('sync-progress');
    if (p.phase === 'push' && p.to_push > 0) {
      bar.max = p.to_push;
      bar.value = Math.min(p.pushed, p.to_push);
    } else {
      bar.removeAttribute('value');
    }
  }

  // ---- Start ----

  async function start(record) {
    if (device && device.device && record.device && device.device.id === record.device.id) return;
    device = record;
    $('work').hidden = false;
    $('device').classList.add('compact');
    if (!(await loadSetup())) {
      // Enrolled, but the schema never reached this device: try again when the network returns.
      say('Chưa tải được mẫu hồ sơ từ máy chủ. Khi có mạng, ứng dụng sẽ tự tải lại.', 'error');
      device = null;
      window.addEventListener('online', () => start(record), { once: true });
      return;
    }
    replica = self.fieldsyncReplica;
    replica.onprogress = progress;
    try {
      const opened = await replica.call('open', { name: `fieldsync-${device.device.id}.db` });
      await replica.call('configure', { url: location.origin, token: device.token });
      await self.fieldsyncFiles.open(device.device.id, device.token).catch(() => {
        say('Trình duyệt này không cho lưu ảnh trên máy; các hồ sơ vẫn làm việc bình thường.', 'error');
      });
      self.fieldsyncFiles.subscribe((sha) => { if (current) refreshAttachments(sha); });
      if (!opened.durable) say('Trình duyệt này không cho lưu bền dữ liệu; đừng đóng trang trước khi đồng bộ.', 'error');
    } catch (e) {
      say(e.name === 'storage' ? 'Ứng dụng đang mở ở một thẻ khác. Hãy dùng thẻ đó, hoặc đóng nó rồi tải lại trang này.'
        : 'Không mở được dữ liệu trên máy. Tải lại trang; nếu vẫn lỗi, xin báo cán bộ phụ trách.', 'error');
      return;
    }
    const select = $('collection');
    select.replaceChildren(...Object.entries(schema.collections)
      .filter(([name]) => name !== 'units')
      .map(([name, c]) => option(name, text(c.label) || name)));
    if (schema.collections.registrations) select.value = 'registrations';
    await refreshCounts();
    await showList();
    if (navigator.onLine) scheduleSync(0);
  }

  $('collection').addEventListener('change', () => { $('search').value = ''; showList(); });
  $('search').addEventListener('input', () => showList());
  $('new-record').addEventListener('click', () => openForm($('collection').value, null));
  $('back').addEventListener('click', () => showList());
  $('record-form').addEventListener('submit', save);
  // A check's message stays until the cadre changes something.
  $('record-form').addEventListener('input', () => { $('form-error').textContent = ''; });
  $('record-form').addEventListener('change', () => { $('form-error').textContent = ''; });
  $('sync-button').addEventListener('click', () => syncNow());
  window.addEventListener('online', () => { if (replica) scheduleSync(0); });
  document.addEventListener('visibilitychange', () => { if (replica && !document.hidden) scheduleSync(0); });

  self.fieldsyncWork = { start };
})();
