// flags_gateway.test.mjs: flags inside the gateway (issue 13), on real sockets.
//   - OFREP read by OpenFeature's own providers: the server SDK's OFREP provider and the web
//     SDK's OFREP provider (bulk evaluation, ETag/304), authenticated with a tenant's key;
//     fractional splits identical to @openfeature/flagd-core on the same flags;
//   - a release flag pins a tenant or a cohort (an operator-allowed header) to a release,
//     before rollout weights; lineage headers and the request log name the flag and variant;
//     no client header can force a variant;
//   - kill switches: a tool stripped from requests, a route blocked (a 503 the OpenAI SDK does
//     not retry), sent to its fallback chain, or answered statically; and one flipped under
//     load: no request started after the admin call returned is served by the disabled path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { FlagdCore } from '@openfeature/flagd-core';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

import {
  MATH_MSG,
  REPO,
  SLUICE_BIN,
  completionBody,
  ms,
  postJSON,
  requestJSON,
  runProcess,
  sleep,
  startFakeUpstream,
  startGateway,
  startMock,
  tempDir,
  waitFor,
} from './harness.mjs';

const EXAMPLE = path.join(REPO, 'examples/math-tutor');
const MOCK_CONFIG = path.join(REPO, 'examples/demo/mock.yaml');
const sha256 = (s) => createHash('sha256').update(s).digest('hex');

// The CLI, to its end; `at` is when it exited.
async function runSluice(args) {
  const r = await runProcess(SLUICE_BIN, args, { timeout: ms(60_000) });
  return { ...r, at: performance.now() };
}

async function cliOk(dataDir, ...args) {
  const r = await runSluice([...args, '--data-dir', dataDir]);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function createRelease(dataDir, manifest) {
  const out = await cliOk(dataDir, 'release', 'create', manifest);
  return /^(rel_[0-9a-f]{8})/.exec(out)[1];
}

// The application's flags (served over OFREP) as a flagd file; flagd-core reads the same.
const APP_FLAGS = {
  $evaluators: { paying: { in: [{ var: 'plan' }, ['pro', 'team']] } },
  flags: {
    'new-checkout': {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: {
        if: [{ '==': [{ var: 'tenant' }, 'acme'] }, 'on', { $ref: 'paying' }, { fractional: [['on', 30], ['off', 70]] }, null],
      },
      metadata: { owner: 'checkout-team', purpose: 'new checkout flow' },
    },
    'banner-color': {
      state: 'ENABLED',
      variants: { red: '#f00', green: '#0f0', blue: '#00f' },
      defaultVariant: 'red',
      targeting: { fractional: [{ cat: [{ var: '$flagd.flagKey' }, { var: 'email' }] }, ['red', 1], ['green', 1], ['blue', 1]] },
    },
    'max-items': { state: 'ENABLED', variants: { small: 10, large: 100 }, defaultVariant: 'small' },
    'old-search': { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'off' },
  },
};

describe('flags in the gateway', { timeout: ms(180_000) }, () => {
  let mock;
  let fake;
  let d;
  let gw;
  let token;
  let v1;
  let v2;
  before(async () => {
    mock = await startMock({ args: ['--config', MOCK_CONFIG], cwd: REPO });
    fake = await startFakeUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completionBody('fake-model', 'fake answer'));
    });
    d = tempDir('sluice-flags-');
    v1 = await createRelease(d, path.join(EXAMPLE, 'release-v1.yaml'));
    v2 = await createRelease(d, path.join(EXAMPLE, 'release-v2.yaml'));
    await cliOk(d, 'route', 'promote', 'math-tutor', v1, '--reason', 'baseline');
    gw = await startGateway({
      dataDir: d,
      config: {
        upstreams: [
          { name: 'mock', url: `${mock.url}/v1` },
          { name: 'spare', url: `${mock.url}/v1` },
          { name: 'fake', url: `${fake.url}/v1` },
        ],
        routes: [
          { name: 'bot', upstream: 'fake', model: 'fake-model' },
          { name: 'helper', upstream: 'fake', model: 'fake-model' },
        ],
        fallbacks: [
          { route: 'bot', chain: [{ upstream: 'spare', model: 'gsm8k-6b-verification' }] },
          { route: 'helper', chain: [{ static: 'The helper is resting.' }] },
        ],
        api_keys: [
          { tenant: 'acme', key_sha256: sha256('sk-acme') },
          { tenant: 'beta', key_sha256: sha256('sk-beta') },
        ],
        flags: { context_headers: ['x-cohort'] },
      },
    });
    token = gw.adminToken();
  });
  after(async () => {
    await OpenFeature.close();
    await gw?.stop();
    await mock?.stop();
    await fake?.close();
  });

  const admin = (method, p, body) =>
    requestJSON(method, `${gw.adminUrl}${p}`, { body, headers: { authorization: `Bearer ${token}` } });
  const putFlag = async (key, definition) => {
    const r = await admin('PUT', `/admin/v1/flags/${encodeURIComponent(key)}`, { definition, reason: 'test' });
    assert.equal(r.status, 200, `PUT flag ${key}: ${r.status} ${r.text}`);
  };
  const sdk = (key, extra = {}) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0, ...extra });
  const ofrep = (p, body, key = 'sk-acme', headers = {}) =>
    postJSON(`${gw.url}/ofrep/v1/evaluate/flags${p}`, body, { headers: { authorization: `Bearer ${key}`, ...headers } });

  test('setup: the application flags are imported', async () => {
    const r = await admin('POST', '/admin/v1/flags/import', { file: JSON.stringify(APP_FLAGS), reason: 'test' });
    assert.equal(r.status, 200, r.text);
  });

  test("OFREP through OpenFeature's server SDK and OFREP provider", async () => {
    await OpenFeature.setProviderAndWait(
      'acme',
      new OFREPProvider({ baseUrl: gw.url, headers: [['Authorization', 'Bearer sk-acme']] }),
    );
    await OpenFeature.setProviderAndWait(
      'beta',
      new OFREPProvider({ baseUrl: gw.url, headers: [['Authorization', 'Bearer sk-beta']] }),
    );
    const acme = OpenFeature.getClient('acme');
    const beta = OpenFeature.getClient('beta');
    const a = await acme.getBooleanDetails('new-checkout', false, { targetingKey: 'u1' });
    assert.equal(a.value, true);
    assert.equal(a.variant, 'on');
    assert.equal(a.reason, 'TARGETING_MATCH');
    assert.equal(a.flagMetadata.owner, 'checkout-team');
    // The tenant comes from the key: a context that claims another tenant changes nothing.
    const spoof = await beta.getBooleanDetails('new-checkout', false, { targetingKey: 'u1', tenant: 'acme', plan: 'free' });
    const core = new FlagdCore();
    core.setConfigurations(JSON.stringify(APP_FLAGS));
    const expected = core.resolveBooleanEvaluation('new-checkout', false, { targetingKey: 'u1', tenant: 'beta', plan: 'free' });
    assert.equal(spoof.value, expected.value);
    assert.equal(spoof.variant, expected.variant);
    // Splits land where flagd puts them, for every user.
    for (let i = 0; i < 200; i++) {
      const ctx = { targetingKey: `user-${i}`, plan: i % 7 === 0 ? 'pro' : 'free', email: `u${i}@example.com` };
      const got = await beta.getBooleanDetails('new-checkout', false, ctx);
      const want = core.resolveBooleanEvaluation('new-checkout', false, { ...ctx, tenant: 'beta' });
      assert.equal(got.value, want.value, `user-${i}`);
      assert.equal(got.reason, want.reason, `user-${i}`);
      const color = await beta.getStringDetails('banner-color', 'none', ctx);
      const wantColor = core.resolveStringEvaluation('banner-color', 'none', { ...ctx, tenant: 'beta' });
      assert.equal(color.value, wantColor.value, `user-${i} color`);
      assert.equal(color.variant, wantColor.variant);
    }
    assert.equal(await acme.getNumberValue('max-items', 1), 10);
    const missing = await acme.getBooleanDetails('no-such-flag', false);
    assert.equal(missing.value, false);
    assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
    const wrongType = await acme.getStringDetails('max-items', 'x');
    assert.equal(wrongType.errorCode, 'TYPE_MISMATCH');
  });

  test("OFREP through OpenFeature's web SDK and OFREP web provider (bulk, ETag)", async () => {
    // The web provider runs in browsers; in Node it needs their storage and visibility APIs.
    const store = new Map();
    globalThis.localStorage ??= {
      getItem: (k) => (store.has(k) ? store.get(k) : null),
      setItem: (k, v) => store.set(k, String(v)),
      removeItem: (k) => store.delete(k),
    };
    globalThis.document ??= { visibilityState: 'visible', addEventListener() {}, removeEventListener() {} };
    const { OpenFeature: Web } = await import('@openfeature/web-sdk');
    const { OFREPWebProvider } = await import('@openfeature/ofrep-web-provider');
    await Web.setContext({ targetingKey: 'web-user', email: 'web@example.com' });
    await Web.setProviderAndWait(
      new OFREPWebProvider({ baseUrl: gw.url, headers: [['Authorization', 'Bearer sk-acme']], cacheMode: 'network-first' }),
    );
    const c = Web.getClient();
    assert.equal(c.getBooleanValue('new-checkout', false), true);
    assert.equal(c.getNumberValue('max-items', 0), 10);
    const core = new FlagdCore();
    core.setConfigurations(JSON.stringify(APP_FLAGS));
    assert.equal(
      c.getStringValue('banner-color', ''),
      core.resolveStringEvaluation('banner-color', '', { targetingKey: 'web-user', email: 'web@example.com', tenant: 'acme' }).value,
    );
    // A flag changed on the gateway reaches the web client at its next context change.
    await putFlag('max-items', { state: 'ENABLED', variants: { small: 10, large: 100 }, defaultVariant: 'large' });
    await Web.setContext({ targetingKey: 'web-user-2' });
    assert.equal(c.getNumberValue('max-items', 0), 100);
    await Web.close();
  });

  test('OFREP on the wire: shapes, errors, ETag and 304', async () => {
    const one = await ofrep('/max-items', { context: { targetingKey: 'x' } });
    assert.equal(one.status, 200);
    assert.deepEqual(
      { key: one.json.key, reason: one.json.reason, variant: one.json.variant, value: one.json.value },
      { key: 'max-items', reason: 'STATIC', variant: 'large', value: 100 },
    );
    const disabled = await ofrep('/old-search', {});
    assert.equal(disabled.status, 200);
    assert.equal(disabled.json.reason, 'DISABLED');
    const nf = await ofrep('/nope', {});
    assert.equal(nf.status, 404);
    assert.equal(nf.json.errorCode, 'FLAG_NOT_FOUND');
    assert.equal(nf.json.key, 'nope');
    const badCtx = await ofrep('/max-items', '{"context": [1,2]}');
    assert.equal(badCtx.status, 400);
    assert.equal(badCtx.json.errorCode, 'INVALID_CONTEXT');
    const malformed = await ofrep('/max-items', '{"context": ');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.errorCode, 'INVALID_CONTEXT');
    const noKey = await postJSON(`${gw.url}/ofrep/v1/evaluate/flags/max-items`, {});
    assert.equal(noKey.status, 401);
    const wrongKey = await ofrep('/max-items', {}, 'sk-wrong');
    assert.equal(wrongKey.status, 401);
    const get = await requestJSON('GET', `${gw.url}/ofrep/v1/evaluate/flags/max-items`, { headers: { authorization: 'Bearer sk-acme' } });
    assert.equal(get.status, 405);

    const bulk = await ofrep('', { context: { targetingKey: 'bulk-user' } });
    assert.equal(bulk.status, 200);
    const keys = bulk.json.flags.map((f) => f.key).sort();
    assert.deepEqual(keys, ['banner-color', 'max-items', 'new-checkout'], 'disabled flags are left out');
    const etag = bulk.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    const again = await ofrep('', { context: { targetingKey: 'bulk-user' } }, 'sk-acme', { 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    const other = await ofrep('', { context: { targetingKey: 'someone-else', plan: 'pro' } }, 'sk-beta', { 'if-none-match': etag });
    assert.equal(other.status, 200, 'another context gets its own answer');
    const m = await gw.metrics();
    assert.ok(m.value('sluice_ofrep_requests_total') >= 8);
  });

  test('a release flag pins a tenant or a cohort to a release; clients cannot force it', async () => {
    await putFlag('math-tutor-release', {
      state: 'ENABLED',
      variants: { v1, v2, none: '' },
      defaultVariant: 'none',
      targeting: { if: [{ '==': [{ var: 'tenant' }, 'beta'] }, 'v2', { '==': [{ var: 'x-cohort' }, 'early'] }, 'v2', null] },
      metadata: { route: 'math-tutor', owner: 'learning-team', purpose: 'v2 for beta and early adopters' },
    });
    const call = (key, headers = {}) =>
      sdk(key).chat.completions.create({ model: 'math-tutor', messages: MATH_MSG, max_tokens: 8 }, { headers }).withResponse();
    const a = await call('sk-acme');
    assert.equal(a.response.headers.get('x-sluice-release'), v1);
    assert.equal(a.response.headers.get('x-sluice-flags'), null);
    const b = await call('sk-beta');
    assert.equal(b.response.headers.get('x-sluice-release'), v2);
    assert.equal(b.response.headers.get('x-sluice-flags'), 'math-tutor-release=v2');
    const cohort = await call('sk-acme', { 'x-cohort': 'early' });
    assert.equal(cohort.response.headers.get('x-sluice-release'), v2);
    // Headers the operator did not allow, or that claim a tenant or a decision, are ignored.
    const forged = await call('sk-acme', { 'x-tenant': 'beta', tenant: 'beta', 'x-sluice-flags': 'math-tutor-release=v2' });
    assert.equal(forged.response.headers.get('x-sluice-release'), v1);
    const rid = b.response.headers.get('x-request-id');
    const line = await gw.waitLog((l) => l.request_id === rid);
    assert.equal(line.flags, 'math-tutor-release=v2');
    assert.equal(line.release, v2);
    // A variant naming a release that does not exist is refused; the flag in force stays.
    const bad = await admin('PUT', '/admin/v1/flags/math-tutor-release', {
      definition: { state: 'ENABLED', variants: { v1, ghost: 'rel_deadbeef' }, defaultVariant: 'v1', metadata: { route: 'math-tutor' } },
      reason: 'test',
    });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.text, /rel_deadbeef/);
    const still = await call('sk-beta');
    assert.equal(still.response.headers.get('x-sluice-release'), v2);
    // The OFREP endpoint does not serve the gateway's own flags.
    assert.equal((await ofrep('/math-tutor-release', {})).status, 404);
  });

  test('kill switch: a tool is stripped from the requests to a route', async () => {
    const tools = ['search', 'calc'].map((name) => ({
      type: 'function',
      function: { name, parameters: { type: 'object', properties: {} } },
    }));
    const send = () =>
      sdk('sk-acme').chat.completions.create({ model: 'bot', messages: MATH_MSG, tools, tool_choice: { type: 'function', function: { name: 'search' } } });
    let r = await admin('POST', '/admin/v1/kill/tool', { route: 'bot', tool: 'search', reason: 'search tool leaks' });
    assert.equal(r.status, 200, r.text);
    const before = fake.requests.length;
    await send();
    const sent = JSON.parse(fake.requests[before].body);
    assert.deepEqual(sent.tools.map((t) => t.function.name), ['calc']);
    assert.equal(sent.tool_choice, 'auto', 'a tool_choice naming the killed tool falls back to auto');
    r = await admin('POST', '/admin/v1/kill/clear', { key: 'kill.tool.bot.search', reason: 'fixed' });
    assert.equal(r.status, 200, r.text);
    await send();
    assert.deepEqual(JSON.parse(fake.requests.at(-1).body).tools.map((t) => t.function.name), ['search', 'calc']);
  });

  test('kill switch: block, fallback and static answer for a route', async () => {
    let r = await admin('POST', '/admin/v1/kill/route', { route: 'bot', mode: 'block', reason: 'incident' });
    assert.equal(r.status, 200, r.text);
    const before = fake.requests.length;
    const retrying = sdk('sk-acme', { maxRetries: 3 });
    const t0 = performance.now();
    const err = await retrying.chat.completions.create({ model: 'bot', messages: MATH_MSG }).catch((e) => e);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'route_disabled');
    assert.match(err.message, /kill switch 'kill\.route\.bot'/);
    assert.ok(performance.now() - t0 < ms(2000), 'the SDK does not retry a switched-off route (x-should-retry: false)');
    assert.equal(fake.requests.length, before);

    r = await admin('POST', '/admin/v1/kill/route', { route: 'bot', mode: 'fallback', reason: 'primary is bad' });
    assert.equal(r.status, 200, r.text);
    const fb = await sdk('sk-acme').chat.completions.create({ model: 'bot', messages: MATH_MSG, max_tokens: 8 }).withResponse();
    assert.equal(fb.response.headers.get('x-sluice-fallback'), 'spare/gsm8k-6b-verification');
    assert.equal(fb.response.headers.get('x-sluice-flags'), 'kill.route.bot=fallback');
    assert.equal(fake.requests.length, before, 'the primary is not tried');

    r = await admin('POST', '/admin/v1/kill/route', { route: 'helper', mode: 'static', reason: 'maintenance' });
    assert.equal(r.status, 200, r.text);
    const st = await sdk('sk-acme').chat.completions.create({ model: 'helper', messages: MATH_MSG }).withResponse();
    assert.equal(st.data.choices[0].message.content, 'The helper is resting.');
    assert.equal(st.response.headers.get('x-sluice-degraded'), 'static');
    // A stream gets the static answer as a stream.
    const stream = await sdk('sk-acme').chat.completions.create({ model: 'helper', messages: MATH_MSG, stream: true });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'The helper is resting.');

    for (const key of ['kill.route.bot', 'kill.route.helper']) {
      r = await admin('POST', '/admin/v1/kill/clear', { key, reason: 'resolved' });
      assert.equal(r.status, 200, r.text);
    }
    const ok = await sdk('sk-acme').chat.completions.create({ model: 'bot', messages: MATH_MSG }).withResponse();
    assert.equal(ok.data.choices[0].message.content, 'fake answer');
    assert.equal(ok.response.headers.get('x-sluice-flags'), null);
    const audit = await admin('GET', '/admin/v1/audit?limit=200');
    const actions = audit.json.audit.map((e) => e.action);
    for (const a of ['kill.route', 'kill.tool', 'kill.clear']) assert.ok(actions.includes(a), `audit has ${a}: ${actions}`);
  });

  test('a kill switch flipped under load: nothing starts on the disabled path after the call returns', async () => {
    const agent = sdk('sk-acme', { timeout: 10_000 });
    const results = [];
    let stop = false;
    let flippedAt = Infinity;
    const worker = async () => {
      while (!stop) {
        const t = performance.now();
        try {
          await agent.chat.completions.create({ model: 'bot', messages: MATH_MSG });
          results.push({ t, ok: true });
        } catch (e) {
          results.push({ t, ok: false, status: e.status, code: e.code });
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await sleep(ms(300));
    const r = await admin('POST', '/admin/v1/kill/route', { route: 'bot', mode: 'block', reason: 'flip under load' });
    flippedAt = performance.now();
    assert.equal(r.status, 200, r.text);
    await sleep(ms(300));
    stop = true;
    await Promise.all(workers);
    const served = results.filter((x) => x.ok);
    const blocked = results.filter((x) => !x.ok);
    assert.ok(served.length > 10 && blocked.length > 10, `served ${served.length}, blocked ${blocked.length}`);
    for (const b of blocked) assert.deepEqual([b.status, b.code], [503, 'route_disabled'], 'only the kill switch refused');
    const lastServedStart = Math.max(...served.map((x) => x.t));
    const lag = lastServedStart - flippedAt;
    console.log(`# kill switch: last request served by the disabled path started ${lag.toFixed(2)} ms after the admin call returned`);
    assert.ok(lag <= 10, `a request that started ${lag.toFixed(2)} ms after the call returned was served`);
    await admin('POST', '/admin/v1/kill/clear', { key: 'kill.route.bot', reason: 'done' });
  });

  test('a release flag that splits traffic is an experiment: a per-variant readout that names the winner', async () => {
    await putFlag('math-tutor-release', {
      state: 'ENABLED',
      variants: { v1, v2 },
      defaultVariant: 'v1',
      targeting: { fractional: [['v1', 50], ['v2', 50]] },
      metadata: { route: 'math-tutor', metric: 'feedback_mean', owner: 'learning-team', purpose: 'prompt v2 experiment' },
    });
    const seen = { v1: 0, v2: 0 };
    for (let i = 0; i < 160; i++) {
      const { response } = await sdk('sk-acme')
        .chat.completions.create({ model: 'math-tutor', messages: MATH_MSG, max_tokens: 8, user: `learner-${i}` })
        .withResponse();
      const variant = response.headers.get('x-sluice-release') === v2 ? 'v2' : 'v1';
      seen[variant]++;
      assert.equal(response.headers.get('x-sluice-flags'), `math-tutor-release=${variant}`);
      // Learners rate v2's answers better.
      const f = await postJSON(`${gw.url}/v1/feedback`, { request_id: response.headers.get('x-request-id'), score: variant === 'v2' ? 1 : 0 }, { headers: { authorization: 'Bearer sk-acme' } });
      assert.equal(f.status, 200, f.text);
    }
    assert.ok(seen.v1 > 40 && seen.v2 > 40, `split ${JSON.stringify(seen)}`);
    const r = await admin('GET', '/admin/v1/flags/math-tutor-release/readout');
    assert.equal(r.status, 200, r.text);
    const byVariant = Object.fromEntries(r.json.variants.map((v) => [v.variant, v]));
    assert.equal(r.json.control, 'v1');
    assert.equal(byVariant.v1.role, 'control');
    assert.equal(byVariant.v1.requests + byVariant.v2.requests, 160, 'a changed flag starts a new experiment');
    assert.equal(byVariant.v2.feedback_mean, 1);
    const fb = byVariant.v2.comparisons.find((c) => c.metric === 'feedback_mean');
    assert.equal(fb.verdict, 'better', JSON.stringify(fb));
    assert.ok(fb.lo > 0, 'the interval of the difference excludes 0');
    assert.equal(byVariant.v2.outcome, 'won', JSON.stringify(byVariant.v2.comparisons));
    // The larger model is slower: reported, not a guardrail unless the flag names it one.
    assert.equal(byVariant.v2.comparisons.find((c) => c.metric === 'latency_ms').verdict, 'worse');
    assert.equal(r.json.guardrails, 'error_rate,refusal_rate');
    // The CLI reads the same readout from the running gateway.
    const cli = await runSluice(['flag', 'readout', 'math-tutor-release', '--admin', gw.adminUrl, '--token', token]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).variants.find((v) => v.variant === 'v2').outcome, 'won');
    const plain = await admin('GET', '/admin/v1/flags/max-items/readout');
    assert.equal(plain.status, 404);
    await admin('POST', '/admin/v1/flags/math-tutor-release/disable', { reason: 'experiment over' });
  });

  test('kill switches for shadow traffic and for every rollout', async () => {
    await admin('POST', '/admin/v1/flags/math-tutor-release/disable', { reason: 'no pins while the rollout runs' });
    const spec = 'strategy: shadow\nshadow: {share: 1.0}\nsteps:\n  - shadow: 10m\ngates: []\n';
    const st = await admin('POST', '/admin/v1/rollouts/math-tutor/start', { release: v2, spec, override: true, reason: 'shadow v2' });
    assert.equal(st.status, 200, st.text);
    const status = async () => (await admin('GET', '/admin/v1/rollouts/math-tutor')).json;
    await waitFor(async () => (await status()).status === 'running', { what: 'the shadow rollout' });
    const send = () => sdk('sk-acme').chat.completions.create({ model: 'math-tutor', messages: MATH_MSG, max_tokens: 8 }).withResponse();
    for (let i = 0; i < 5; i++) await send();
    await waitFor(async () => (await status()).shadow_sent >= 5, { what: 'mirrored requests' });
    let r = await admin('POST', '/admin/v1/kill/shadow', { route: 'math-tutor', reason: 'shadow overloads the candidate' });
    assert.equal(r.status, 200, r.text);
    const before = (await status()).shadow_sent;
    for (let i = 0; i < 5; i++) {
      const { response } = await send();
      assert.equal(response.headers.get('x-sluice-flags'), 'kill.shadow.math-tutor=on');
    }
    await sleep(ms(200));
    assert.equal((await status()).shadow_sent, before, 'no request was mirrored');

    r = await admin('POST', '/admin/v1/kill/rollouts', { reason: 'freeze during the incident' });
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => /kill\.rollouts/.test((await status()).held ?? ''), { what: 'the rollout held' });
    const m = await gw.metrics(true);
    await waitFor(async () => (await gw.metrics(true)).value('sluice_rollouts_held') === 1, { what: 'sluice_rollouts_held 1' });
    assert.ok(m);
    r = await admin('POST', '/admin/v1/kill/clear', { key: 'kill.rollouts', reason: 'incident over' });
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => (await status()).held === undefined, { what: 'the rollout released' });
    await admin('POST', '/admin/v1/kill/clear', { key: 'kill.shadow.math-tutor', reason: 'done' });
    await admin('POST', '/admin/v1/rollouts/math-tutor/abort', { reason: 'test over' });
  });

  test('a kill switch set from the CLI on the store reaches the running gateway', async () => {
    const t0 = performance.now();
    const r = await runSluice(['kill', 'route', 'helper', '--mode', 'block', '--reason', 'cli', '--data-dir', d]);
    assert.equal(r.code, 0, r.stderr);
    let seen;
    await waitFor(async () => {
      const x = await postJSON(`${gw.url}/v1/chat/completions`, { model: 'helper', messages: MATH_MSG }, { headers: { authorization: 'Bearer sk-acme' } });
      seen = performance.now();
      return x.status === 503;
    }, { timeout: ms(3000), what: 'the CLI kill switch' });
    console.log(`# kill switch from the CLI: in force ${(seen - r.at).toFixed(1)} ms after the CLI exited (${(seen - t0).toFixed(0)} ms incl. the CLI)`);
    assert.equal((await runSluice(['kill', 'clear', 'kill.route.helper', '--reason', 'cli', '--data-dir', d])).code, 0);
  });
});
