// dashboard.test.mjs: the dashboard (/ui/ on the admin listener) in real headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core): an admin logs in, watches a running
// canary's charts get new points, rolls the route back from a button (a reason is required),
// and the official OpenAI SDK then sees only the stable release answer; a viewer sees no
// buttons. The page loads with every non-loopback request blocked (no CDN, no web fonts).
// Also over plain HTTP: static assets' headers (CSP, ETag/304), 401 on any other /ui/ path
// without a token, 403 (audited) on cross-site changes, whoami and the release diff.
//
// Screenshots go to tests/integration/.artifacts/dashboard/ (gitignored; the path is printed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

import { SLUICE_BIN, ms, requestJSON, runProcess, startGateway, startMock, tempDir, waitFor } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(HERE, 'fixtures/rollouts');
const ARTIFACTS = path.join(HERE, '.artifacts/dashboard');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NO_CHROMIUM = existsSync(CHROMIUM) ? false : `chromium not installed at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`;
const ROUTE = 'canary-chat';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const ADMIN = `adm-${randomBytes(12).toString('hex')}`;
const VIEWER = `view-${randomBytes(12).toString('hex')}`;

async function cliOk(dataDir, ...args) {
  const r = await runProcess(SLUICE_BIN, [...args, '--data-dir', dataDir], { timeout: ms(15000) });
  assert.equal(r.code, 0, `sluice ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('dashboard in headless Chromium', { skip: process.env.SLUICE_SANITIZER === 'tsan' ? 'runs in the ASan pass: a browser driving the admin API exercises no gateway threads the other suites do not' : NO_CHROMIUM, timeout: ms(90_000) }, () => {
  let mockA, mockB, gw, d, stable, candidate, browser, stopLoad, load;
  const offsite = []; // requests the page tried to make off this machine

  const admin = (method, p, { token = ADMIN, body, headers = {} } = {}) =>
    requestJSON(method, `${gw.adminUrl}${p}`, { body, headers: { authorization: `Bearer ${token}`, ...headers } });

  async function newPage() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1400 } });
    // No network: everything that is not this machine's loopback is refused.
    await context.route('**/*', (route) => {
      const host = new URL(route.request().url()).hostname;
      if (host === '127.0.0.1' || host === 'localhost') return route.continue();
      offsite.push(route.request().url());
      return route.abort('internetdisconnected');
    });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.errors = errors;
    return page;
  }

  async function login(page, token) {
    await page.goto(`${gw.adminUrl}/ui/`);
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('login-button').click();
    await page.getByTestId('whoami').waitFor();
  }

  const shot = async (page, name) => {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    console.log(`# dashboard screenshots: ${ARTIFACTS}`);
    const fast = { seed: 7, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 16] } };
    [mockA, mockB] = await Promise.all([startMock({ config: fast }), startMock({ config: fast })]);
    d = tempDir('sluice-dash-');
    stable = /^(rel_[0-9a-f]{8})/.exec(await cliOk(d, 'release', 'create', path.join(FIX, 'chat-stable.yaml')))[1];
    candidate = /^(rel_[0-9a-f]{8})/.exec(await cliOk(d, 'release', 'create', path.join(FIX, 'chat-candidate.yaml')))[1];
    await cliOk(d, 'route', 'promote', ROUTE, stable, '--reason', 'baseline');
    gw = await startGateway({
      dataDir: d,
      config: {
        upstreams: [
          { name: 'mock-a', url: `${mockA.url}/v1`, price: { input_per_1m: 1, output_per_1m: 2 } },
          { name: 'mock-b', url: `${mockB.url}/v1`, price: { input_per_1m: 2, output_per_1m: 4 } },
        ],
        admin: {
          tokens: [
            { name: 'alice', role: 'admin', token_sha256: sha256(ADMIN) },
            { name: 'victor', role: 'viewer', token_sha256: sha256(VIEWER) },
          ],
        },
      },
    });
    // A canary that stays at 50% until someone acts.
    const spec = path.join(d, 'spec.yaml');
    writeFileSync(spec, 'strategy: canary\nsteps:\n  - setWeight: 50\n  - pause: 30m\ngates: []\n');
    await cliOk(d, 'rollout', 'start', ROUTE, '--to', candidate, '--spec', spec, '--override', '--reason', 'dashboard test');
    await waitFor(async () => (await admin('GET', `/admin/v1/rollouts/${ROUTE}`)).json?.status === 'running', { timeout: ms(10000), what: 'rollout running' });

    // Closed-loop traffic through the official SDK, a few clients.
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-unused', maxRetries: 0 });
    let stopped = false;
    load = [];
    const worker = async () => {
      while (!stopped) {
        try {
          const { response } = await client.chat.completions.create({ model: ROUTE, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
          load.push(response.headers.get('x-sluice-release'));
        } catch (e) {
          load.push(`error ${e.status}`);
        }
      }
    };
    const workers = Promise.all([worker(), worker(), worker()]);
    stopLoad = () => ((stopped = true), workers);

    const { chromium } = await import('playwright-core');
    // --no-sandbox: containers usually lack the user namespaces Chromium's sandbox needs.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  });

  after(async () => {
    await stopLoad?.();
    await browser?.close();
    await gw?.stop();
    await Promise.all([mockA?.stop(), mockB?.stop()]);
  });

  test('an admin watches the canary chart update and rolls back from the page; the SDK then sees stable only', async () => {
    const page = await newPage();
    await login(page, ADMIN);
    assert.match(await page.getByTestId('whoami').textContent(), /token:alice \(admin\)/);
    const card = page.getByTestId(`rollout-${ROUTE}`);
    await card.waitFor();
    assert.equal(await page.getByTestId(`rollout-status-${ROUTE}`).textContent(), 'running');
    const read = async (id) => Number(await page.getByTestId(`${id}-${ROUTE}`).textContent());
    const points0 = await read('rollout-points');
    const cand0 = await read('rollout-candidate-requests');
    // New samples arrive every 2 s and carry the candidate's growing evidence.
    await waitFor(async () => (await read('rollout-points')) >= points0 + 2 && (await read('rollout-candidate-requests')) > cand0, {
      timeout: ms(15000),
      what: 'the rollout chart to get new points',
    });
    const chart = page.getByTestId(`rollout-chart-${ROUTE}`);
    assert.ok((await chart.locator('canvas').count()) >= 4, 'one uPlot canvas per evidence metric');
    assert.match(await chart.textContent(), /error rate/);
    await shot(page, '1-admin-rollout-running');

    // Rollback asks for a reason: an empty one is refused in the dialog, nothing is sent.
    await page.getByTestId(`btn-rollback-${ROUTE}`).click();
    await page.getByTestId('dialog-confirm').click();
    assert.match(await page.getByTestId('dialog-error').textContent(), /reason is required/);
    assert.equal((await admin('GET', `/admin/v1/rollouts/${ROUTE}`)).json.status, 'running');
    await page.getByTestId('reason-input').fill('dashboard test: candidate looks wrong');
    await shot(page, '2-admin-rollback-dialog');
    await page.getByTestId('dialog-confirm').click();
    await page.getByTestId('action-dialog').waitFor({ state: 'detached' });
    await waitFor(async () => (await page.getByTestId(`rollout-status-${ROUTE}`).textContent()) === 'aborted', {
      timeout: ms(10000),
      what: 'the page to show the rollout aborted',
    });
    await shot(page, '3-admin-rolled-back');

    // The official SDK: every answer now comes from the stable release.
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-unused', maxRetries: 0 });
    for (let i = 0; i < 10; i++) {
      const { response } = await client.chat.completions.create({ model: ROUTE, messages: [{ role: 'user', content: `after ${i}` }] }).withResponse();
      assert.equal(response.headers.get('x-sluice-release'), stable);
    }
    // Audited with the actor and the reason typed in the dialog.
    const audit = (await admin('GET', '/admin/v1/audit?limit=50')).json.audit;
    assert.ok(audit.some((e) => e.actor === 'token:alice' && e.reason.includes('candidate looks wrong')), JSON.stringify(audit.slice(0, 5)));
    assert.deepEqual(page.errors, [], 'no script errors');
  });

  test('a viewer sees the data and no buttons', async () => {
    const page = await newPage();
    await login(page, VIEWER);
    assert.match(await page.getByTestId('whoami').textContent(), /\(viewer\)/);
    await page.getByTestId(`rollout-${ROUTE}`).waitFor();
    assert.equal(await page.locator('button[data-testid^="btn-"]').count(), 0);
    await page.getByTestId('nav-routes').click();
    await page.getByTestId(`route-${ROUTE}`).waitFor();
    assert.equal(await page.getByTestId(`stable-${ROUTE}`).textContent(), stable);
    assert.equal(await page.locator('button[data-testid^="btn-"]').count(), 0);
    await page.getByTestId('nav-flags').click();
    await page.getByTestId('page-flags').waitFor();
    assert.equal(await page.locator('button[data-testid^="btn-"]').count(), 0);
    await shot(page, '4-viewer-no-buttons');
    assert.deepEqual(page.errors, [], 'no script errors');
  });

  test('the page made no request off this machine', () => {
    assert.deepEqual(offsite, []);
  });

  test('static assets: security headers, ETag revalidation; every other /ui/ path needs a token', async () => {
    const r = await fetch(`${gw.adminUrl}/ui/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const js = await fetch(`${gw.adminUrl}/ui/app.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const again = await fetch(`${gw.adminUrl}/ui/app.js`, { headers: { 'if-none-match': js.headers.get('etag') } });
    assert.equal(again.status, 304);
    for (const p of ['/ui/data', '/ui/api/routes', '/ui/admin/v1/audit']) {
      assert.equal((await fetch(`${gw.adminUrl}${p}`)).status, 401, p);
      assert.equal((await fetch(`${gw.adminUrl}${p}`, { headers: { authorization: 'Bearer wrong' } })).status, 401, p);
      assert.equal((await admin('GET', p)).status, 404, p);
    }
  });

  test('cross-site changes are refused (403, audited); whoami; release diff', async () => {
    const evil = await admin('POST', `/admin/v1/routes/${ROUTE}/rollback`, { body: { reason: 'csrf' }, headers: { origin: 'http://evil.example' } });
    assert.equal(evil.status, 403, evil.text);
    assert.equal(evil.json.error.code, 'cross_site_request');
    const sibling = await admin('POST', '/admin/v1/kill/shadow', { body: { reason: 'csrf' }, headers: { 'sec-fetch-site': 'same-site' } });
    assert.equal(sibling.status, 403, sibling.text);
    const audit = (await admin('GET', '/admin/v1/audit?limit=20')).json.audit;
    assert.ok(audit.filter((e) => e.outcome === 'cross_site').length >= 2, JSON.stringify(audit.slice(0, 4)));
    // Reads are not affected.
    assert.equal((await admin('GET', '/admin/v1/routes', { headers: { origin: 'http://evil.example' } })).status, 200);

    assert.deepEqual((await admin('GET', '/admin/v1/whoami', { token: VIEWER })).json, { actor: 'token:victor', role: 'viewer' });
    const diff = await admin('GET', `/admin/v1/releases/${stable}/diff/${candidate}`, { token: VIEWER });
    assert.equal(diff.status, 200, diff.text);
    assert.match(diff.json.diff, /mock-b/);
    assert.equal((await admin('GET', `/admin/v1/releases/${stable}/diff/rel_00000000`)).status, 404);
  });
});
