// What the browser tests share: their arguments, a temp dir with the store, fieldsync-server
// on an ephemeral loopback port, headless Chromium (Debian's, driven by playwright-core) with
// a fresh profile whose page errors and requests are recorded, and the cleanup.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export class WebTest {
  // `script`: the test file's name, for usage and the verdict line.
  constructor(script) {
    this.script = script;
    [this.serverBin, this.adminBin, this.screenshot] = process.argv.slice(2);
    if (!this.serverBin || !this.adminBin || !this.screenshot) {
      console.error('usage: node ' + script + ' SERVER_BINARY ADMIN_BINARY SCREENSHOT_PNG');
      process.exit(2);
    }
    this.dir = mkdtempSync(join(tmpdir(), 'fieldsync-web-'));
    this.db = join(this.dir, 'central.db');
    // Only init (or demo) makes a store: the admin tool and the server refuse a missing one.
    execFileSync(this.adminBin, ['--db', this.db, 'init'], { stdio: 'ignore' });
    this.problems = [];   // page errors, dialogs and console errors: a test ends with none
    this.requested = [];  // every URL the page asked for
  }

  // Starts fieldsync-server on the store; resolves to its base URL once it listens.
  startServer() {
    return new Promise((resolve, reject) => {
      this.server = spawn(this.serverBin, ['--db', this.db, '--listen', '127.0.0.1:0'],
                          { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      this.server.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/listening on 127\.0\.0\.1:(\d+)/);
        if (m) resolve('http://127.0.0.1:' + m[1]);
      });
      this.server.on('exit', (code) => reject(new Error('fieldsync-server exited with ' + code)));
    });
  }

  // A page in a fresh profile in the temp dir (playwright passes it as --user-data-dir).
  async openPage() {
    this.browser = await chromium.launchPersistentContext(join(this.dir, 'chromium-profile'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1280, height: 1000 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await this.browser.newPage();
    this.page = page;
    page.on('dialog', async (d) => { this.problems.push('a dialog opened: ' + d.message()); await d.dismiss(); });
    page.on('pageerror', (e) => this.problems.push('page error: ' + e.message));
    // Chromium logs every non-2xx fetch ("Failed to load resource"), expected ones (a 409
    // stale, a 404 report, the favicon) among them. Any other error logged (a CSP
    // violation) is a problem.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) this.problems.push('console error: ' + m.text());
    });
    page.on('request', (r) => this.requested.push(r.url()));
    return page;
  }

  // Signs in on the /admin/ page with `token` and waits for the conflict list.
  async signIn(page, token) {
    await page.fill('#token', token);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#list-view:not([hidden])');
  }

  // Runs the test body, prints the verdict, and cleans up whatever happened.
  async run(name, body) {
    try {
      await body();
      console.log(name + ' passed' + (existsSync(this.screenshot) ? '; screenshot: ' + this.screenshot : ''));
    } catch (e) {
      console.error(name + ' FAILED:', e);
      process.exitCode = 1;
      // What the page showed when it failed, beside the screenshot.
      const shot = this.screenshot.replace(/\.png$/, '') + '-failed.png';
      if (this.page) await this.page.screenshot({ path: shot, fullPage: true }).then(() => console.error('page at failure: ' + shot), () => undefined);
      if (this.problems.length) console.error('problems: ' + this.problems.join('\n'));
    } finally {
      if (this.browser) await this.browser.close();
      if (this.server) this.server.kill('SIGTERM');
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
