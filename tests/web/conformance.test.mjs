// The conformance scenarios (tests/conformance/*.json; README.md there) run by the browser's
// replica: the client library compiled to WebAssembly, in a Web Worker of a real headless
// Chromium, its file in the origin-private file system, against a real fieldsync-server. The
// C++ replica runs the same files (tests/client/e2e/conformance_test.cpp).
//
// Each device of a scenario is one worker with its own replica file; "reopen" terminates the
// worker (the browser's kill of a worker: nothing of it runs after) and starts another on the
// same file. The server is checked over HTTP with the reviewer's token.
//
// usage: node conformance.test.mjs SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG [SCENARIO.json...]
// (the screenshot is not taken: nothing is shown; the argument keeps the harness's usage).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { WebTest } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const scenarioDir = join(here, '..', 'conformance');
const t = new WebTest('conformance.test.mjs');
const admin = (...args) => execFileSync(t.adminBin, ['--db', t.db, ...args], { encoding: 'utf8' }).trim();

let base = '';
let reviewerToken = '';

async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: 'Bearer ' + reviewerToken, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

// The replicas of a scenario, by device name: calls run in the page, each in its worker.
class Devices {
  constructor(page, scenario) {
    this.page = page;
    this.scenario = scenario;
    this.tokens = {};
  }

  file(name) {
    return `${this.scenario.file.replace(/\.json$/, '')}-${name}.db`;
  }

  // Starts the device's worker on its file; the replica must be in the origin-private file
  // system (durable), not in memory.
  async start(name) {
    const opened = await this.page.evaluate(async ({ name, file }) => {
      self.replicas = self.replicas || {};
      const r = new self.FieldsyncReplica('/app/replica-worker.js');
      self.replicas[name] = r;
      // A terminated worker's access handles are released soon after, not at once.
      for (let tries = 0; ; ++tries) {
        try {
          return await r.call('open', { name: file });
        } catch (e) {
          if (tries >= 50) throw e;
          await new Promise((ok) => setTimeout(ok, 100));
        }
      }
    }, { name, file: this.file(name) });
    assert.equal(opened.durable, true, `${name}: the replica is not in the origin-private file system`);
  }

  async add(name, unit) {
    this.tokens[name] = admin('device', 'add', '--name', `${this.scenario.name}: ${name}`, '--unit', unit);
    const me = await fetch(base + '/v1/me', { headers: { Authorization: 'Bearer ' + this.tokens[name] } });
    this.ids = this.ids || {};
    this.ids[name] = (await me.json()).device.id;
    await this.start(name);
    await this.must(name, 'configure', { url: base, token: this.tokens[name] });
  }

  // {ok, value} or {ok: false, error: {name, message}}: a failure is data for the step to check.
  call(name, op, args) {
    return this.page.evaluate(({ name, op, args }) => self.replicas[name].call(op, args).then(
      (value) => ({ ok: true, value }),
      (e) => ({ ok: false, error: { name: e.name, code: e.code, message: e.message } })), { name, op, args });
  }

  async must(name, op, args) {
    const r = await this.call(name, op, args);
    assert.ok(r.ok, `${name}: ${op} failed: ${JSON.stringify(r.error)}`);
    return r.value;
  }

  async kill(name) {
    await this.page.evaluate((name) => self.replicas[name].terminate(), name);
    await this.start(name);
  }
}

function subset(actual, expected, what) {
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(actual[k], v, `${what}: ${k}`);
}

async function step(devices, s, where) {
  const on = s.on;
  // The district binds the device to another unit (the admin tool, while the server runs).
  if (s.move) return admin('device', 'move', devices.ids[s.move], '--unit', s.to);
  if (s.network) return devices.must(on, 'network', { mode: s.network });
  if (s.put) return devices.must(on, 'put', { collection: s.put, id: s.id, unit_id: s.unit, data: s.data });
  if (s.patch) return devices.must(on, 'patch', { collection: s.patch, id: s.id, patch: s.with });
  if (s.remove) return devices.must(on, 'remove', { collection: s.remove, id: s.id });
  if (s.discard) return devices.must(on, 'discard', { collection: s.discard, id: s.id });
  if (s.reopen) return devices.kill(on);
  if (s.held && !s.expect) {  // an "expect" may name held text
    const ids = (await devices.must(on, 'held', {})).map((r) => r.id).sort();
    return assert.deepEqual(ids, [...s.held].sort(), `${where}: held or refused`);
  }
  if (s.pending !== undefined) return assert.equal(await devices.must(on, 'pending', {}), s.pending, `${where}: pending`);
  if (s.sync) {
    const r = await devices.call(on, 'sync', {});
    const { error, ...report } = s.sync;
    if (error) {
      assert.ok(!r.ok, `${where}: the sync succeeded, ${error} expected`);
      return assert.equal(r.error.name, error, `${where}: the sync's error`);
    }
    assert.ok(r.ok, `${where}: the sync failed: ${JSON.stringify(r.error)}`);
    return subset(r.value, report, `${where}: sync report`);
  }
  if (s.expect) {
    const rec = await devices.must(on, 'get', { collection: s.expect, id: s.id });
    if (s.absent) return assert.ok(rec === null || rec.deleted, `${where}: the record is there: ${JSON.stringify(rec)}`);
    assert.ok(rec, `${where}: no record`);
    assert.equal(rec.deleted, s.deleted ?? false, `${where}: deleted`);
    if (s.state) assert.equal(rec.state, s.state, `${where}: state`);
    if (s.data) subset(rec.data, s.data, `${where}: data`);
    if (s.held) subset(rec.held || {}, s.held, `${where}: held`);
    if (s.resolution) subset(rec.resolution || {}, s.resolution, `${where}: resolution`);
    return undefined;
  }
  if (s.server) {
    const got = await api('GET', `/v1/records/${s.server}/${s.id}`);
    if (s.absent) {
      return assert.ok(got.status === 404 || got.body.deleted, `${where}: the server has the record: ${JSON.stringify(got.body)}`);
    }
    assert.equal(got.status, 200, `${where}: ${JSON.stringify(got.body)}`);
    if (s.data) subset(got.body.data, s.data, `${where}: server data`);
    if (s.versions !== undefined) {
      const h = await api('GET', `/v1/records/${s.server}/${s.id}/history`);
      assert.equal(h.body.versions.length, s.versions, `${where}: versions on the server`);
    }
    return undefined;
  }
  if (s.resolve) {
    const rec = await devices.must(s.held_on, 'get', { collection: s.resolve, id: s.id });
    assert.ok(rec && rec.conflict_id, `${where}: the record is not held`);
    const c = await api('GET', `/v1/conflicts/${rec.conflict_id}`);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    const done = await api('POST', `/v1/conflicts/${rec.conflict_id}/resolve`,
      { choice: s.choice, head_version: c.body.current_version, note: s.note });
    return assert.equal(done.status, 200, `${where}: resolve: ${JSON.stringify(done.body)}`);
  }
  throw new Error(`${where}: unknown step ${JSON.stringify(s)}`);
}

await t.run('conformance scenarios (browser replica)', async () => {
  const tree = JSON.parse(readFileSync(join(scenarioDir, 'tree.json'), 'utf8'));
  for (const u of tree.units) {
    admin('unit', 'add', '--id', u.id, '--name', u.name, '--kind', u.kind, ...(u.parent ? ['--parent', u.parent] : []));
  }
  reviewerToken = admin('device', 'add', '--name', tree.reviewer.name, '--unit', tree.reviewer.unit, '--role', 'reviewer');
  base = await t.startServer();
  const page = await t.openPage();
  // The app's page loads replica-client.js (FieldsyncReplica); no device is enrolled there.
  await page.goto(base + '/app/');

  const wanted = process.argv.slice(5);
  const files = wanted.length ? wanted : readdirSync(scenarioDir).filter((f) => f.endsWith('.json') && f !== 'tree.json').sort();
  let passed = 0;
  for (const file of files) {
    const scenario = { file, ...JSON.parse(readFileSync(join(scenarioDir, file), 'utf8')) };
    const devices = new Devices(page, scenario);
    for (const [name, unit] of Object.entries(scenario.devices)) await devices.add(name, unit);
    for (const [i, s] of scenario.steps.entries()) await step(devices, s, `${file} step ${i + 1}`);
    console.log(`  ${file}: ${scenario.steps.length} steps passed`);
    ++passed;
  }
  assert.deepEqual(t.problems, []);
  console.log(`conformance: ${passed} scenarios passed in Chromium`);
});
