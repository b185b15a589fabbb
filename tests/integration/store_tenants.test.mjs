// store_tenants.test.mjs: tenants and API keys as first-class objects in the store (issue 10),
// through the official OpenAI SDK: the CLI on a running gateway's data dir, the admin API
// (rotation with and without grace, concurrent rotations, roles), strict validation of
// settings, the routes a tenant may call, daily and monthly budgets that survive a restart,
// and the sluice_tenant_* metrics. Two tests pin a bug (see the comment above them): the tenant
// endpoints' body check runs for every admin POST URL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import OpenAI from 'openai';

import {
  SLUICE_BIN,
  USER_MSG,
  assertOpenAIError,
  ms,
  rawRequest,
  requestJSON,
  sleep,
  startGateway,
  errorHeader as hdr,
  startMock,
  tempDir,
  waitFor,
} from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
// An SDK error's response header (a Headers object or a plain record, by SDK version).

// Admin tokens of gateway A (configured, so there is no bootstrap token there).
const ADMIN_TOKEN = 'sluice-admin-test-token-0123456789';
const OPERATOR_TOKEN = 'sluice-operator-test-token-0123456789';
const VIEWER_TOKEN = 'sluice-viewer-test-token-0123456789';
const FILE_KEY = 'sk-file-tenant-key';

// Runs the sluice CLI; resolves {code, stdout, stderr, exitedAt} (exitedAt: performance.now()
// when the process exited).
function runSluice(args, { timeout = ms(15000) } = {}) {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const c = spawn(SLUICE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let exitedAt;
    c.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeout);
    c.on('exit', () => (exitedAt = performance.now()));
    c.on('close', (code, signal) => {
      clearTimeout(t);
      // A CLI run that passes while ASan/UBSan reports something must not count as a pass.
      const san = stderr.match(/(ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:)[^\n]*/);
      if (san) return reject(new Error(`sanitizer report in sluice ${args.join(' ')}: ${san[0]}\n${stderr.slice(0, 4000)}`));
      resolve({ code, signal, stdout, stderr, startedAt, exitedAt: exitedAt ?? performance.now() });
    });
    c.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: -1, signal: null, stdout, stderr: stderr + e.message, startedAt, exitedAt: performance.now() });
    });
  });
}

const cli = (gw, ...args) => runSluice([...args, '--data-dir', gw.dataDir]);

async function cliJSON(gw, ...args) {
  const r = await cli(gw, ...args);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// A CLI call that must fail: non-zero exit, "error: ..." naming the problem on stderr.
async function cliFails(gw, re, ...args) {
  const r = await cli(gw, ...args);
  assert.notEqual(r.code, 0, `sluice ${args.join(' ')} should have failed\nstdout: ${r.stdout}`);
  assert.match(r.stderr, re, `sluice ${args.join(' ')}: stderr`);
  assert.equal(r.stdout.trim(), '', 'nothing on stdout when refused');
  return r;
}

function admin(gw, method, p, body, token) {
  const t = token === undefined ? gw.token : token;
  return requestJSON(method, `${gw.adminUrl}${p}`, { body, headers: t ? { authorization: `Bearer ${t}` } : {} });
}

async function adminOk(gw, method, p, body, token) {
  const r = await admin(gw, method, p, body, token);
  assert.equal(r.status, 200, `${method} ${p}: ${r.status} ${r.text}`);
  return r.json;
}

// A 4xx in OpenAI's error shape whose message matches `re`.
async function adminRefused(gw, status, re, method, p, body, token) {
  const r = await admin(gw, method, p, body, token);
  assert.equal(r.status, status, `${method} ${p} ${typeof body === 'string' ? body : JSON.stringify(body)}: ${r.status} ${r.text}`);
  assertOpenAIError(assert, r.json);
  if (re) assert.match(r.json.error.message, re, `${method} ${p}: message`);
  return r.json.error;
}

const chatBody = (model = 'bot') => ({ model, messages: USER_MSG, max_tokens: 4 });

// A chat completion on a fresh TCP connection (Connection: close): the kernel spreads new
// connections over the workers' SO_REUSEPORT acceptors, so a few of these reach every worker.
async function freshStatus(gw, key, model = 'bot') {
  const body = JSON.stringify(chatBody(model));
  const r = await rawRequest(
    gw.port,
    `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    { timeout: ms(3000) },
  );
  return r.status;
}

async function freshStatuses(gw, key, n = 16, model = 'bot') {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await freshStatus(gw, key, model));
  return out;
}

describe('tenants and keys in the store', { timeout: ms(90_000) }, () => {
  let mock;
  let gw;
  let gwConfig;
  before(async () => {
    mock = await startMock({
      config: {
        seed: 5,
        defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8] },
        models: [{ name: 'slow', ttft_ms: 1500 }],
      },
    });
    gwConfig = {
      upstreams: [{ name: 'm', url: `${mock.url}/v1` }],
      routes: [
        { name: 'bot', upstream: 'm', model: 'm' },
        { name: 'other', upstream: 'm', model: 'm' },
        { name: 'slowbot', upstream: 'm', model: 'slow' },
      ],
      // A key from the file: keys are required on the data plane from the start.
      api_keys: [{ tenant: 'filed', key_sha256: sha256(FILE_KEY) }],
      tenants: [{ name: 'filed', rpm: 100 }],
      admin: {
        tokens: [
          { name: 'root', role: 'admin', token_sha256: sha256(ADMIN_TOKEN) },
          { name: 'ops', role: 'operator', token_sha256: sha256(OPERATOR_TOKEN) },
          { name: 'watcher', role: 'viewer', token_sha256: sha256(VIEWER_TOKEN) },
        ],
      },
    };
    gw = await startGateway({ config: gwConfig });
    gw.token = ADMIN_TOKEN;
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  const client = (key, extra = {}) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0, ...extra });
  const ask = (key, model = 'bot', extra = {}) => client(key, extra).chat.completions.create(chatBody(model));
  // Resolves with the error a call fails with (or rejects when it succeeds).
  const refusal = (p) =>
    p.then(
      (v) => {
        throw new Error(`expected a refusal, got an answer: ${JSON.stringify(v).slice(0, 200)}`);
      },
      (e) => e,
    );
  // Waits until `key` is accepted (a CLI change reaches the gateway by its store poll).
  async function waitAccepted(key, model = 'bot', timeout = ms(1000)) {
    const t0 = performance.now();
    let last;
    await waitFor(
      async () => {
        try {
          last = await client(key).chat.completions.create(chatBody(model)).withResponse();
          return true;
        } catch (e) {
          if (e.status === 401 || e.status === 404 || e.status === 429) return false;
          throw e;
        }
      },
      { timeout, interval: 5, what: `key ${key.slice(0, 14)}... accepted on ${model}` },
    );
    return { ...last, after: performance.now() - t0 };
  }

  // Revokes `id` with the CLI while a client polls with `key` every 5 ms; returns the first
  // refusal relative to the CLI's exit.
  async function revokeWithCli(id, key, reason) {
    const c = client(key);
    const polls = [];
    let stop = false;
    let cliExit;
    const pollStart = performance.now();
    const poller = (async () => {
      const deadline = () => (cliExit === undefined ? pollStart + ms(20_000) : cliExit + ms(500));
      while (!stop && performance.now() <= deadline()) {
        const sent = performance.now();
        const r = await c.chat.completions.create(chatBody()).then(
          () => ({ status: 200 }),
          (e) => ({ status: e.status ?? -1, err: e }),
        );
        polls.push({ sent, got: performance.now(), ...r });
        if (r.status === 401) return;
        if (r.status !== 200) throw new Error(`poll: unexpected ${r.status} ${r.err}`);
        await sleep(5);
      }
    })();
    poller.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
    const res = await runSluice(['key', 'revoke', id, '--reason', reason, '--data-dir', gw.dataDir]);
    cliExit = res.exitedAt;
    assert.equal(res.code, 0, `key revoke: ${res.stderr}`);
    // The commit's time: the WAL's mtime (nothing else writes the store meanwhile), on the
    // performance.now() clock.
    const commit = statSync(path.join(gw.dataDir, 'sluice.db-wal')).mtimeMs - (Date.now() - performance.now());
    await poller.finally(() => (stop = true));
    const first = polls.find((p) => p.status === 401);
    assert.ok(first, `the revoked key was still accepted ${ms(500)} ms after the CLI exited (${polls.length} polls)`);
    assert.ok(first.err instanceof OpenAI.AuthenticationError, String(first.err));
    assert.equal(first.err.code, 'invalid_api_key');
    const acceptedAfterExit = polls.filter((p) => p.status === 200 && p.sent > cliExit).length;
    const lastAccepted = polls.filter((p) => p.status === 200).at(-1);
    return {
      fromCommitMs: first.got - commit, // the 401 arrived this long after the store commit
      lastAcceptedSentMs: lastAccepted ? lastAccepted.sent - commit : NaN, // the last 200's request was sent then
      cli: JSON.parse(res.stdout),
      refusedMs: first.got - cliExit, // the 401 arrived this long after the CLI exited
      sentMs: first.sent - cliExit, // the request that got it was sent then
      acceptedAfterExit,
      cliMs: res.exitedAt - res.startedAt,
      polls: polls.length,
    };
  }

  test('CLI on the data dir: create a tenant and a key, the SDK is served; revoke stops it on every worker; audited without the secret', async () => {
    const t = await cliJSON(gw, 'tenant', 'create', 'cli-co', '--rpm', '600', '--tpm', '200000', '--tier', 'critical', '--reason', 'onboarding cli-co');
    assert.equal(t.name, 'cli-co');
    assert.equal(t.source, 'store');
    assert.equal(t.settings.rpm, 600);
    assert.equal(t.settings.tpm, 200000);
    assert.equal(t.settings.tier, 'critical');
    assert.deepEqual(t.settings.routes, []);

    const keys = [];
    for (const label of ['ci', 'laptop', 'batch']) {
      const k = await cliJSON(gw, 'key', 'create', 'cli-co', '--label', label, '--reason', `key for ${label}`);
      assert.match(k.id, /^key_[0-9a-f]+$/);
      assert.equal(k.tenant, 'cli-co');
      assert.match(k.key, /^sk-sluice-[0-9a-f]{20,}$/);
      assert.ok(k.key.startsWith(k.prefix) && k.prefix.length < k.key.length, `prefix ${k.prefix}`);
      assert.match(k.note, /only now/);
      keys.push(k);
    }
    assert.equal(new Set(keys.map((k) => k.key)).size, 3);

    // The running gateway picks the new key up from the store (its poll), well within 1 s.
    const { data, response, after: acceptedAfter } = await waitAccepted(keys[0].key);
    console.log(`# key created by the CLI accepted ${acceptedAfter.toFixed(1)} ms after the CLI exited`);
    assert.ok(data.choices[0].message.content.length > 0);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '600');
    assert.equal(response.headers.get('x-ratelimit-limit-tokens'), '200000');
    const remaining = Number(response.headers.get('x-ratelimit-remaining-requests'));
    assert.ok(remaining < 600 && remaining >= 590, `remaining ${remaining}`);
    for (const k of keys) await ask(k.key); // every key of the tenant works

    // show and list never print a secret (or its hash).
    const shown = await cli(gw, 'tenant', 'show', 'cli-co');
    assert.equal(shown.code, 0, shown.stderr);
    const sj = JSON.parse(shown.stdout);
    assert.deepEqual(sj.keys.map((k) => k.id).sort(), keys.map((k) => k.id).sort());
    for (const k of sj.keys) {
      assert.equal(k.state, 'active');
      assert.equal(k.key, undefined);
    }
    const listed = await cli(gw, 'key', 'list', 'cli-co');
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).keys.length, 3);
    const tenantList = await cliJSON(gw, 'tenant', 'list');
    assert.ok(tenantList.tenants.some((x) => x.name === 'cli-co'));
    for (const k of keys) {
      for (const text of [shown.stdout, listed.stdout]) {
        assert.ok(!text.includes(k.key), 'a secret key was printed');
        assert.ok(!text.includes(sha256(k.key)), 'a key hash was printed');
      }
    }
    // Through the admin API, show has the usage too.
    const remote = await runSluice(['tenant', 'show', 'cli-co', '--admin', gw.adminUrl, '--token', ADMIN_TOKEN]);
    assert.equal(remote.code, 0, remote.stderr);
    const rj = JSON.parse(remote.stdout);
    assert.equal(rj.usage.requests.limit, 600);
    // (600 RPM refills 10 a second: a few requests ago may be back to full.)
    assert.ok(rj.usage.requests.remaining >= 580 && rj.usage.requests.remaining <= 600, JSON.stringify(rj.usage));
    assert.equal(rj.usage.in_flight, 0);

    // Revoke from the CLI while a client keeps calling: refused within the bound, then on
    // every worker (fresh connections land on both), and the other keys keep working.
    const samples = [];
    for (const k of keys.slice(0, 2)) {
      const r = await revokeWithCli(k.id, k.key, `rotate out ${k.id}`);
      assert.equal(r.cli.state, 'revoked');
      assert.equal(r.cli.id, k.id);
      samples.push(r);
      const statuses = await freshStatuses(gw, k.key, 16);
      assert.deepEqual(statuses, Array(16).fill(401), `revoked key on fresh connections: ${statuses}`);
    }
    console.log(
      `# revoke by CLI -> 401 on the data plane: ${samples
        .map((s) => `${s.refusedMs.toFixed(1)} ms after the CLI's exit (that request sent at ${s.sentMs.toFixed(1)} ms; ${s.acceptedAfterExit} accepted after the exit; the CLI ran ${s.cliMs.toFixed(1)} ms), ${s.fromCommitMs.toFixed(1)} ms after the commit (WAL mtime; the last accepted request was sent ${s.lastAcceptedSentMs.toFixed(1)} ms after it; ${s.polls} polls)`)
        .join('; ')}`,
    );
    for (const s of samples) assert.ok(s.refusedMs <= ms(500), `refused ${s.refusedMs} ms after the CLI exited`);
    const statuses = await freshStatuses(gw, keys[2].key, 8);
    assert.deepEqual(statuses, Array(8).fill(200), 'the tenant\'s remaining key still works');

    // Revoking twice is refused, by the CLI and by the admin API (409).
    await cliFails(gw, /^error: .*already revoked/m, 'key', 'revoke', keys[0].id);
    await adminRefused(gw, 409, /already revoked/, 'POST', `/admin/v1/keys/${keys[0].id}/revoke`, { reason: 'again' });
    const after = (await adminOk(gw, 'GET', '/admin/v1/tenants/cli-co/keys')).keys;
    assert.deepEqual(
      Object.fromEntries(after.map((k) => [k.id, k.state])),
      { [keys[0].id]: 'revoked', [keys[1].id]: 'revoked', [keys[2].id]: 'active' },
    );

    // The audit log has every change, with reasons, and never a secret.
    const audit = (await adminOk(gw, 'GET', '/admin/v1/audit?limit=500')).audit;
    const mine = audit.filter((e) => e.target === 'cli-co' || keys.some((k) => e.before === k.id || e.target === k.id));
    const created = mine.find((e) => e.action === 'tenant.create');
    assert.ok(created, `no tenant.create in ${JSON.stringify(mine)}`);
    assert.equal(created.reason, 'onboarding cli-co');
    assert.equal(created.outcome, 'ok');
    assert.match(created.actor, /^cli:/);
    assert.match(created.after, /"rpm":600/);
    const keyCreates = mine.filter((e) => e.action === 'key.create');
    assert.equal(keyCreates.length, 3, JSON.stringify(mine));
    for (const k of keys) assert.ok(keyCreates.some((e) => e.after.includes(k.id)), `key.create of ${k.id}`);
    const revokes = mine.filter((e) => e.action === 'key.revoke');
    assert.equal(revokes.length, 2, `exactly the two successful revokes: ${JSON.stringify(revokes)}`);
    for (const k of keys.slice(0, 2))
      assert.ok(
        revokes.some((e) => JSON.stringify(e).includes(k.id) && e.reason === `rotate out ${k.id}`),
        `key.revoke of ${k.id} with its reason`,
      );
    const everything = JSON.stringify(audit);
    for (const k of keys) {
      assert.ok(!everything.includes(k.key), 'the audit log contains a secret key');
      assert.ok(!everything.includes(sha256(k.key)), 'the audit log contains a key hash');
    }
    // Nor does the request log.
    const log = JSON.stringify(gw.requestLog());
    for (const k of keys) assert.ok(!log.includes(k.key), 'the request log contains a secret key');

    // A config reload (SIGHUP) keeps the store's tenants and keys, revoked ones out.
    const reloads = (gw.proc.stderr.match(/configuration reloaded/g) || []).length;
    gw.proc.signal('SIGHUP');
    await waitFor(() => (gw.proc.stderr.match(/configuration reloaded/g) || []).length > reloads, { what: 'the reload' });
    assert.deepEqual(await freshStatuses(gw, keys[2].key, 4), Array(4).fill(200), 'a store key after a reload');
    assert.deepEqual(await freshStatuses(gw, keys[0].key, 4), Array(4).fill(401), 'a revoked key after a reload');
    const { response: rr } = await client(keys[2].key).chat.completions.create(chatBody()).withResponse();
    assert.equal(rr.headers.get('x-ratelimit-limit-requests'), '600', 'the store tenant\'s limits after a reload');
  });

  test('admin API: rotate with grace (both keys work), with grace 0 (old refused at once), twice (409); a grace that ends', async () => {
    const t = await adminOk(gw, 'POST', '/admin/v1/tenants', { name: 'rot', rpm: 1000, reason: 'rotation tests' });
    assert.equal(t.name, 'rot');
    assert.equal(t.settings.rpm, 1000);
    const k1 = await adminOk(gw, 'POST', '/admin/v1/tenants/rot/keys', { label: 'svc', reason: 'first key' });
    assert.equal(k1.tenant, 'rot');
    // Published before the reply: usable at once, on every worker.
    assert.deepEqual(await freshStatuses(gw, k1.key, 6), Array(6).fill(200));

    const k2 = await adminOk(gw, 'POST', `/admin/v1/keys/${k1.id}/rotate`, { grace_seconds: 60, reason: 'scheduled' });
    assert.equal(k2.replaces, k1.id);
    assert.equal(k2.tenant, 'rot');
    assert.match(k2.key, /^sk-sluice-/);
    assert.notEqual(k2.key, k1.key);
    await ask(k1.key);
    await ask(k2.key);
    assert.deepEqual(await freshStatuses(gw, k1.key, 6), Array(6).fill(200), 'old key during its grace');
    assert.deepEqual(await freshStatuses(gw, k2.key, 6), Array(6).fill(200), 'new key');
    let listed = (await adminOk(gw, 'GET', '/admin/v1/tenants/rot/keys')).keys;
    const old = listed.find((k) => k.id === k1.id);
    assert.equal(old.state, 'expiring');
    assert.equal(old.replaced_by, k2.id);
    const expiresIn = Date.parse(old.expires_at) - Date.now();
    assert.ok(expiresIn > 50_000 && expiresIn <= 61_000, `expires_at ${old.expires_at}`);
    assert.equal(listed.find((k) => k.id === k2.id).state, 'active');

    // Rotating the same key again is refused: it already has its successor.
    const again = await adminRefused(gw, 409, /already rotated/, 'POST', `/admin/v1/keys/${k1.id}/rotate`, { grace_seconds: 0 });
    assert.match(again.message, new RegExp(k2.id));

    // Grace 0: the old key stops at once (the reply comes after the publish).
    const k3 = await adminOk(gw, 'POST', `/admin/v1/keys/${k2.id}/rotate`, { grace_seconds: 0, reason: 'leaked' });
    assert.equal(k3.replaces, k2.id);
    const err = await refusal(ask(k2.key));
    assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
    assert.equal(err.status, 401);
    assert.deepEqual(await freshStatuses(gw, k2.key, 8), Array(8).fill(401), 'rotated with grace 0');
    assert.deepEqual(await freshStatuses(gw, k3.key, 4), Array(4).fill(200), 'its successor');
    listed = (await adminOk(gw, 'GET', '/admin/v1/keys')).keys;
    assert.equal(listed.find((k) => k.id === k2.id).state, 'expired');
    // An expired or revoked key cannot be rotated; an unknown one is a 404.
    await adminRefused(gw, 409, /already rotated|expired/, 'POST', `/admin/v1/keys/${k2.id}/rotate`, { grace_seconds: 0 });
    await adminRefused(gw, 404, /key_doesnotexist/, 'POST', '/admin/v1/keys/key_doesnotexist/rotate', { grace_seconds: 0 });
    await adminRefused(gw, 404, /key_doesnotexist/, 'POST', '/admin/v1/keys/key_doesnotexist/revoke', {});
    for (const bad of [-1, 'soon', 31 * 86400]) {
      await adminRefused(gw, 400, /grace/, 'POST', `/admin/v1/keys/${k3.id}/rotate`, { grace_seconds: bad });
    }
    await cliFails(gw, /--grace/, 'key', 'rotate', k3.id, '--grace', '5q');

    // A grace that ends: the old key stops by itself, with no other change to the store.
    const rot = await cli(gw, 'key', 'rotate', k3.id, '--grace', '1s', '--reason', 'short grace');
    assert.equal(rot.code, 0, rot.stderr);
    const k4 = JSON.parse(rot.stdout);
    assert.equal(k4.replaces, k3.id);
    await waitAccepted(k4.key);
    await ask(k3.key);
    await waitFor(async () => (await freshStatus(gw, k3.key)) === 401, { timeout: ms(3000), interval: 20, what: 'the grace to end' });
    // It expires 1 s after the rotation, which happened after the CLI started.
    const ended = performance.now() - rot.startedAt;
    assert.ok(ended >= 950, `the old key stopped ${ended} ms after the start of a rotation with a 1 s grace`);
    assert.deepEqual(await freshStatuses(gw, k3.key, 6), Array(6).fill(401));
    assert.deepEqual(await freshStatuses(gw, k4.key, 4), Array(4).fill(200));

    // A revoke through the admin API is published before the reply: refused at once everywhere.
    const rv = await adminOk(gw, 'POST', `/admin/v1/keys/${k4.id}/revoke`, { reason: 'done' });
    assert.equal(rv.state, 'revoked');
    assert.deepEqual(await freshStatuses(gw, k4.key, 8), Array(8).fill(401), 'revoked through the admin API');
    await adminRefused(gw, 409, /revoked or expired/, 'POST', `/admin/v1/keys/${k4.id}/rotate`, { grace_seconds: 0 });

    const audit = (await adminOk(gw, 'GET', '/admin/v1/audit?limit=500')).audit;
    const rotations = audit.filter((e) => e.action === 'key.rotate' && e.target === 'rot');
    assert.equal(rotations.length, 3, JSON.stringify(rotations));
    assert.ok(rotations.some((e) => e.reason === 'leaked' && e.actor === 'token:root'));
    const text = JSON.stringify(audit);
    for (const k of [k1, k2, k3, k4]) assert.ok(!text.includes(k.key), 'a secret in the audit log');
  });

  test('10 concurrent rotations of 5 keys: exactly one successor each; successors work, originals expired', async () => {
    await adminOk(gw, 'POST', '/admin/v1/tenants', { name: 'conc', reason: 'concurrency' });
    const originals = [];
    for (let i = 0; i < 5; i++) originals.push(await adminOk(gw, 'POST', '/admin/v1/tenants/conc/keys', { label: `k${i}` }));
    for (const k of originals) await ask(k.key);

    const calls = originals.flatMap((k) => [k, k]).map((k, i) =>
      admin(gw, 'POST', `/admin/v1/keys/${k.id}/rotate`, { grace_seconds: 0, reason: `race ${i}` }).then((r) => ({ k, r })),
    );
    const results = await Promise.all(calls);
    const successors = [];
    for (const o of originals) {
      const mine = results.filter((x) => x.k.id === o.id);
      const ok = mine.filter((x) => x.r.status === 200);
      const refused = mine.filter((x) => x.r.status === 409);
      assert.equal(ok.length, 1, `key ${o.id}: ${mine.map((x) => `${x.r.status} ${x.r.text}`).join(' | ')}`);
      assert.equal(refused.length, 1, `key ${o.id}: ${mine.map((x) => `${x.r.status} ${x.r.text}`).join(' | ')}`);
      assertOpenAIError(assert, refused[0].r.json);
      assert.match(refused[0].r.json.error.message, /already rotated/);
      assert.equal(ok[0].r.json.replaces, o.id);
      successors.push(ok[0].r.json);
    }
    for (const s of successors) {
      const r = await ask(s.key);
      assert.ok(r.choices[0].message.content.length > 0);
    }
    for (const o of originals) {
      const err = await refusal(ask(o.key));
      assert.ok(err instanceof OpenAI.AuthenticationError, `original ${o.id}: ${err}`);
    }
    const listed = (await adminOk(gw, 'GET', '/admin/v1/tenants/conc/keys')).keys;
    assert.equal(listed.length, 10, `5 originals + 5 successors, no orphan successor: ${listed.map((k) => k.id)}`);
    for (const o of originals) {
      const row = listed.find((k) => k.id === o.id);
      assert.equal(row.state, 'expired');
      assert.equal(row.replaced_by, successors.find((s) => s.replaces === o.id).id);
    }
    for (const s of successors) assert.equal(listed.find((k) => k.id === s.id).state, 'active');

    // The same race between CLI processes on the data dir (SQLite transactions, not the
    // admin API's single thread): 3 keys, 2 concurrent `key rotate` each.
    const more = [];
    for (let i = 0; i < 3; i++) more.push(await cliJSON(gw, 'key', 'create', 'conc', '--label', `cli${i}`));
    const runs = await Promise.all(
      more.flatMap((k) => [k, k]).map((k) => cli(gw, 'key', 'rotate', k.id, '--grace', '0').then((r) => ({ k, r }))),
    );
    const cliSuccessors = [];
    for (const o of more) {
      const mine = runs.filter((x) => x.k.id === o.id);
      const ok = mine.filter((x) => x.r.code === 0);
      assert.equal(ok.length, 1, `key ${o.id}: ${mine.map((x) => `exit ${x.r.code} ${x.r.stdout}${x.r.stderr}`).join(' | ')}`);
      const loser = mine.find((x) => x.r.code !== 0);
      assert.equal(loser.r.code, 1);
      assert.match(loser.r.stderr, /^error: API key .* was already rotated/m);
      const succ = JSON.parse(ok[0].r.stdout);
      assert.equal(succ.replaces, o.id);
      cliSuccessors.push(succ);
    }
    for (const s of cliSuccessors) await waitAccepted(s.key);
    for (const o of more) assert.equal(await freshStatus(gw, o.key), 401);
    assert.equal((await adminOk(gw, 'GET', '/admin/v1/tenants/conc/keys')).keys.length, 16);
  });

  test('bad input is refused with a message naming the field: admin API (400), CLI (exit 1), config check (file:line:column)', async () => {
    const badSettings = [
      [{ name: 'neg', rpm: -5 }, /'rpm' must be between 0 and 100000000, got -5/],
      [{ name: 'huge', rpm: 1e12 }, /'rpm' must be between 0 and 100000000/],
      [{ name: 'huge', tpm: 2 ** 41 }, /'tpm' must be between 0 and/],
      [{ name: 'frac', max_concurrent: 1.5 }, /'max_concurrent' must be a whole number/],
      [{ name: 'strrpm', rpm: '60' }, /'rpm' must be a whole number/],
      [{ name: 'neginput', max_input_tokens: -1 }, /'max_input_tokens'/],
      [{ name: 'gold', tier: 'gold' }, /'tier' is critical, standard or sheddable/],
      [{ name: 'typo', rpmm: 5 }, /unknown tenant setting 'rpmm'/],
      [{ name: 'negbudget', budget_usd_per_day: -1 }, /'budget_usd_per_day' must be between 0 and/],
      [{ name: 'bigbudget', budget_usd_per_month: 1e10 }, /'budget_usd_per_month' must be between 0 and/],
      [{ name: 'routestr', routes: 'bot' }, /'routes' must be a list of route names/],
      [{ name: 'routeempty', routes: [''] }, /'routes' must be a list of route names/],
      [{ name: 'b@d' }, /tenant name is 1-64/],
      [{ name: '-dash' }, /tenant name is 1-64/],
      [{ name: 'x'.repeat(65) }, /tenant name is 1-64/],
      [{ rpm: 5 }, /tenant name/],
    ];
    for (const [body, re] of badSettings) {
      const e = await adminRefused(gw, 400, re, 'POST', '/admin/v1/tenants', body);
      assert.equal(e.type, 'invalid_request_error');
    }
    for (const body of ['{"name": "x", "rpm": }', '{"name": "x"', '[1,2]', 'null', '"tenant"']) {
      const e = await adminRefused(gw, 400, /JSON object/, 'POST', '/admin/v1/tenants', body);
      assert.equal(e.code, 'invalid_json');
    }
    // None of them left a tenant behind, or an audit entry.
    const tenants = (await adminOk(gw, 'GET', '/admin/v1/tenants')).tenants.map((t) => t.name);
    for (const n of ['neg', 'huge', 'frac', 'strrpm', 'gold', 'typo', 'negbudget', 'bigbudget', 'routestr', 'x'])
      assert.ok(!tenants.includes(n), `tenant ${n} was created: ${tenants}`);

    // A partial update with a bad value changes nothing.
    await adminOk(gw, 'POST', '/admin/v1/tenants', { name: 'steady', rpm: 50, tier: 'sheddable' });
    await adminRefused(gw, 400, /'rpm' must be between/, 'POST', '/admin/v1/tenants/steady', { rpm: -1, tier: 'critical' });
    await adminRefused(gw, 400, /'name' cannot be changed/, 'POST', '/admin/v1/tenants/steady', { name: 'other' });
    await adminRefused(gw, 400, /JSON object/, 'POST', '/admin/v1/tenants/steady', '{rpm: 5}');
    const steady = await adminOk(gw, 'GET', '/admin/v1/tenants/steady');
    assert.equal(steady.settings.rpm, 50);
    assert.equal(steady.settings.tier, 'sheddable');
    // A good partial update keeps the rest.
    const upd = await adminOk(gw, 'POST', '/admin/v1/tenants/steady', { tpm: 9000, reason: 'more tokens' });
    assert.equal(upd.settings.tpm, 9000);
    assert.equal(upd.settings.rpm, 50);
    assert.equal(upd.settings.tier, 'sheddable');
    // Creating it again is refused; unknown tenants and keys are 404s.
    const dup = await admin(gw, 'POST', '/admin/v1/tenants', { name: 'steady' });
    assert.ok(dup.status === 409 || dup.status === 400, `${dup.status} ${dup.text}`);
    assert.match(dup.json.error.message, /already exists/);
    await adminRefused(gw, 404, /nobody/, 'GET', '/admin/v1/tenants/nobody');
    await adminRefused(gw, 404, /nobody/, 'POST', '/admin/v1/tenants/nobody', { rpm: 5 });
    await adminRefused(gw, 404, /nobody/, 'GET', '/admin/v1/tenants/nobody/keys');
    await adminRefused(gw, 404, /nobody/, 'POST', '/admin/v1/tenants/nobody/keys', { label: 'x' });
    await adminRefused(gw, 400, /label/, 'POST', '/admin/v1/tenants/steady/keys', { label: 'l'.repeat(201) });
    // A malformed body never rotates or revokes a key (with some default grace).
    const sk = await adminOk(gw, 'POST', '/admin/v1/tenants/steady/keys', { label: 'kept' });
    await adminRefused(gw, 400, /JSON object/, 'POST', `/admin/v1/keys/${sk.id}/rotate`, '{"grace_seconds": 60');
    await adminRefused(gw, 400, /JSON object/, 'POST', `/admin/v1/keys/${sk.id}/revoke`, 'revoke it');
    const skRow = (await adminOk(gw, 'GET', '/admin/v1/tenants/steady/keys')).keys.find((k) => k.id === sk.id);
    assert.equal(skRow.state, 'active');
    assert.equal(skRow.replaced_by, undefined);
    assert.equal((await adminOk(gw, 'GET', '/admin/v1/tenants/steady/keys')).keys.length, 1, 'no key left behind by refused calls');
    await ask(sk.key);

    // The CLI: the same messages on stderr, exit 1, nothing created.
    await cliFails(gw, /^error: 'rpm' must be between 0 and 100000000, got -5$/m, 'tenant', 'create', 'cneg', '--rpm', '-5');
    await cliFails(gw, /^error: 'rpm' must be between 0 and 100000000, got 100000001$/m, 'tenant', 'create', 'cbig', '--rpm', '100000001');
    await cliFails(gw, /^error: 'max_concurrent' must be between/m, 'tenant', 'create', 'cconc', '--max-concurrent', '-1');
    await cliFails(gw, /^error: 'tier' is critical, standard or sheddable/m, 'tenant', 'create', 'ctier', '--tier', 'gold');
    await cliFails(gw, /^error: 'budget_usd_per_day' must be between 0 and/m, 'tenant', 'create', 'cbud', '--budget-usd-per-day', '-1');
    await cliFails(gw, /^error: a tenant name is 1-64/m, 'tenant', 'create', 'b@d');
    await cliFails(gw, /^error: 'rpm' must be between/m, 'tenant', 'update', 'steady', '--rpm', '-3');
    await cliFails(gw, /^error: no tenant 'nobody'/m, 'tenant', 'update', 'nobody', '--rpm', '3');
    await cliFails(gw, /^error: no tenant 'nobody'/m, 'key', 'create', 'nobody');
    await cliFails(gw, /^error: no API key 'key_nope'/m, 'key', 'revoke', 'key_nope');
    // Through the admin API, the CLI prints the API's error and exits 1.
    const remote = await runSluice(['tenant', 'create', 'cremote', '--rpm', '-5', '--admin', gw.adminUrl, '--token', ADMIN_TOKEN]);
    assert.equal(remote.code, 1, remote.stdout + remote.stderr);
    assert.match(remote.stderr, /'rpm' must be between 0 and 100000000, got -5/);
    const names = (await cliJSON(gw, 'tenant', 'list')).tenants.map((t) => t.name);
    for (const n of ['cneg', 'cbig', 'cconc', 'ctier', 'cbud', 'cremote']) assert.ok(!names.includes(n), `CLI created ${n}`);
    assert.equal((await adminOk(gw, 'GET', '/admin/v1/tenants/steady')).settings.rpm, 50);

    // Refused changes leave no tenant.create/update in the audit log.
    const audit = (await adminOk(gw, 'GET', '/admin/v1/audit?limit=1000')).audit;
    const changes = audit.filter((e) => e.action === 'tenant.create' || e.action === 'tenant.update');
    for (const n of ['neg', 'huge', 'gold', 'typo', 'cneg', 'cbig', 'ctier', 'b@d'])
      assert.ok(!changes.some((e) => e.target === n), `audit has a change to ${n}`);
    assert.equal(changes.filter((e) => e.target === 'steady').length, 2, 'steady: one create, one update');
  });

  test('admin roles: no token 401, a viewer reads but changes nothing, an operator manages tenants but not keys', async () => {
    for (const token of [null, 'not-a-token']) {
      for (const [method, p, body] of [
        ['GET', '/admin/v1/tenants'],
        ['GET', '/admin/v1/keys'],
        ['POST', '/admin/v1/tenants', { name: 'anon' }],
        ['POST', '/admin/v1/tenants/rot/keys', { label: 'x' }],
      ]) {
        const r = await admin(gw, method, p, body, token);
        assert.equal(r.status, 401, `${method} ${p} with ${token}: ${r.status} ${r.text}`);
        assertOpenAIError(assert, r.json);
      }
    }
    // viewer
    const list = await adminOk(gw, 'GET', '/admin/v1/tenants', undefined, VIEWER_TOKEN);
    assert.ok(list.tenants.some((t) => t.name === 'rot'));
    assert.deepEqual(
      list.file_tenants.map((t) => [t.name, t.source, t.settings.rpm]),
      [['filed', 'file', 100]],
    );
    await adminOk(gw, 'GET', '/admin/v1/tenants/rot', undefined, VIEWER_TOKEN);
    await adminOk(gw, 'GET', '/admin/v1/keys', undefined, VIEWER_TOKEN);
    const keyId = (await adminOk(gw, 'GET', '/admin/v1/tenants/conc/keys')).keys.find((k) => k.state === 'active').id;
    for (const [method, p, body] of [
      ['POST', '/admin/v1/tenants/rot/keys', { label: 'sneaky' }],
      ['POST', '/admin/v1/tenants', { name: 'viewer-made' }],
      ['POST', '/admin/v1/tenants/rot', { rpm: 1 }],
      ['POST', `/admin/v1/keys/${keyId}/revoke`, {}],
      ['POST', `/admin/v1/keys/${keyId}/rotate`, { grace_seconds: 0 }],
    ]) {
      const e = await adminRefused(gw, 403, /role/, method, p, body, VIEWER_TOKEN);
      assert.equal(e.code, 'insufficient_role');
      assert.equal(e.type, 'permission_error');
    }
    // operator: tenants yes, keys no
    const made = await adminOk(gw, 'POST', '/admin/v1/tenants', { name: 'op-made', rpm: 7 }, OPERATOR_TOKEN);
    assert.equal(made.updated_by, 'token:ops');
    await adminOk(gw, 'POST', '/admin/v1/tenants/op-made', { rpm: 8 }, OPERATOR_TOKEN);
    for (const [method, p, body] of [
      ['POST', '/admin/v1/tenants/op-made/keys', { label: 'x' }],
      ['POST', `/admin/v1/keys/${keyId}/revoke`, {}],
      ['POST', `/admin/v1/keys/${keyId}/rotate`, { grace_seconds: 0 }],
    ]) {
      const e = await adminRefused(gw, 403, /admin role/, method, p, body, OPERATOR_TOKEN);
      assert.equal(e.code, 'insufficient_role');
    }
    // The refused calls changed nothing: the key is active, no key for op-made, no viewer-made.
    const keys = (await adminOk(gw, 'GET', '/admin/v1/keys')).keys;
    assert.equal(keys.find((k) => k.id === keyId).state, 'active');
    assert.ok(!keys.some((k) => k.tenant === 'op-made' || k.label === 'sneaky'));
    assert.ok(!(await adminOk(gw, 'GET', '/admin/v1/tenants')).tenants.some((t) => t.name === 'viewer-made'));
    // The CLI through the admin API, with the viewer's token: refused, exit 1.
    const r = await runSluice(['key', 'create', 'rot', '--admin', gw.adminUrl, '--token', VIEWER_TOKEN]);
    assert.equal(r.code, 1, `${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /insufficient_role/);
    assert.ok(!r.stdout.includes('sk-sluice-'));
    // Refusals are audited.
    const audit = (await adminOk(gw, 'GET', '/admin/v1/audit?limit=1000')).audit;
    assert.ok(audit.some((e) => e.actor === 'token:watcher' && e.outcome === 'denied'), 'a viewer refusal in the audit log');
    assert.ok(audit.some((e) => e.actor === 'anonymous' && e.outcome === 'unauthenticated'));
  });

  // The tenant endpoints validate a POST body before looking at the URL: every admin POST
  // goes through that check, so their 64 KiB JSON-object rule hits URLs that are not theirs.
  test("the tenant endpoints' body check applies to their own URLs only", async () => {
    const problems = [];
    const expect = async (status, method, p, body, why, token = ADMIN_TOKEN) => {
      const r = await admin(gw, method, p, body, token);
      if (r.status !== status) problems.push(`${method} ${p} (${why}): expected ${status}, got ${r.status} ${r.text}`);
    };
    await expect(404, 'POST', '/admin/v1/nope', 'not json', 'an unknown admin URL with a non-JSON body');
    await expect(
      409,
      'POST',
      '/admin/v1/rollouts/bot/abort',
      JSON.stringify({ reason: 'r'.repeat(70_000) }),
      'a rollout command whose JSON body is over 64 KiB; no rollout is active',
    );
    // The rollout and route endpoints check the role before they read the body.
    await expect(403, 'POST', '/admin/v1/rollouts/bot/abort', '{not json', 'a viewer, malformed body', VIEWER_TOKEN);
    await expect(403, 'POST', '/admin/v1/routes/bot/rollback', '{not json', 'a viewer, malformed body', VIEWER_TOKEN);
    assert.deepEqual(problems, []);
  });

  test('the tenant endpoints check the role before the body, as the rollout and route endpoints do', async () => {
    const problems = [];
    for (const [token, p, why] of [
      [VIEWER_TOKEN, '/admin/v1/tenants', 'a viewer creating a tenant'],
      [VIEWER_TOKEN, '/admin/v1/tenants/rot', 'a viewer updating a tenant'],
      [OPERATOR_TOKEN, '/admin/v1/tenants/rot/keys', 'an operator creating a key'],
    ]) {
      const r = await admin(gw, 'POST', p, '{not json', token);
      if (r.status !== 403) problems.push(`POST ${p} (${why}, malformed body): expected 403, got ${r.status} ${r.text}`);
    }
    assert.deepEqual(problems, []);
  });

  test('a tenant in the YAML config with a typo key fails `sluice config check` with file:line:column', async () => {
    const dir = tempDir('sluice-cfg-');
    const file = path.join(dir, 'gw.yaml');
    writeFileSync(
      file,
      [
        'upstreams:',
        `  - name: m`,
        `    url: ${mock.url}/v1`,
        'tenants:',
        '  - name: acme',
        '    rpm: 60',
        '  - name: beta',
        '    rpmm: 5',
        '',
      ].join('\n'),
    );
    const r = await runSluice(['config', 'check', file]);
    assert.notEqual(r.code, 0, r.stdout);
    const out = r.stdout + r.stderr;
    assert.ok(out.includes(`${file}:8:5`), `no file:line:column in: ${out}`);
    assert.match(out, /unknown key 'rpmm' in a tenant/);
    assert.match(out, /rpm, tpm/, 'the known keys are listed');
    // The same bad values as the API, in YAML.
    writeFileSync(file, ['upstreams:', '  - name: m', `    url: ${mock.url}/v1`, 'tenants:', '  - name: acme', '    rpm: -5', '    tier: gold', ''].join('\n'));
    const r2 = await runSluice(['config', 'check', file]);
    assert.notEqual(r2.code, 0);
    const out2 = r2.stdout + r2.stderr;
    assert.ok(out2.includes(`${file}:6:10`), `rpm -5 at 6:10: ${out2}`);
    assert.match(out2, /rpm/);
    assert.ok(out2.includes(`${file}:7:11`), `tier at 7:11: ${out2}`);
    assert.match(out2, /'tier' is critical, standard or sheddable, got 'gold'/);
  });

  test("routes: a tenant limited to 'bot' gets model_not_found on another route and sees only 'bot'", async () => {
    await cliJSON(gw, 'tenant', 'create', 'botonly', '--routes', 'bot', '--rpm', '1000');
    const k = await cliJSON(gw, 'key', 'create', 'botonly', '--label', 'bot-only');
    await waitAccepted(k.key, 'bot');

    for (const model of ['other', 'slowbot']) {
      const err = await refusal(ask(k.key, model));
      assert.ok(err instanceof OpenAI.NotFoundError, `${model}: ${err}`);
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.match(err.message, /does not exist or you do not have access to it/);
      assert.ok(err.message.includes(model), err.message);
    }
    // A stream is refused the same way, before any byte.
    const serr = await refusal(client(k.key).chat.completions.create({ ...chatBody('other'), stream: true }));
    assert.ok(serr instanceof OpenAI.NotFoundError, String(serr));
    assert.deepEqual(await freshStatuses(gw, k.key, 6, 'other'), Array(6).fill(404));
    // Embeddings too.
    const eerr = await refusal(client(k.key).embeddings.create({ model: 'other', input: 'x' }));
    assert.ok(eerr instanceof OpenAI.NotFoundError, String(eerr));
    assert.equal(eerr.code, 'model_not_found');
    const emb = await client(k.key).embeddings.create({ model: 'bot', input: 'x' });
    assert.ok(emb.data[0].embedding.length > 0);

    const models = [];
    for await (const m of client(k.key).models.list()) models.push(m.id);
    assert.deepEqual(models, ['bot']);
    // A tenant without routes sees them all.
    const all = [];
    for await (const m of client(FILE_KEY).models.list()) all.push(m.id);
    assert.deepEqual(all.sort(), ['bot', 'other', 'slowbot']);
    await ask(FILE_KEY, 'other');

    const m = await gw.metrics();
    assert.equal(m.value('sluice_admission_refused_total', { tenant: 'botonly', reason: 'route_not_allowed' }), 10);
    const log = await gw.waitLog((l) => l.tenant === 'botonly' && l.status === 404);
    assert.equal(log.error_kind, 'model_not_found');

    // Widening the routes with the CLI takes effect on the running gateway.
    const upd = await cliJSON(gw, 'tenant', 'update', 'botonly', '--routes', 'bot,other', '--reason', 'needs other');
    assert.deepEqual(upd.settings.routes, ['bot', 'other']);
    assert.equal(upd.settings.rpm, 1000, 'a partial update keeps the rest');
    await waitAccepted(k.key, 'other');
    const after = [];
    for await (const x of client(k.key).models.list()) after.push(x.id);
    assert.deepEqual(after.sort(), ['bot', 'other']);
    assert.equal((await refusal(ask(k.key, 'slowbot'))).status, 404);
    // --routes "" lifts the restriction.
    const open = await cliJSON(gw, 'tenant', 'update', 'botonly', '--routes', '');
    assert.deepEqual(open.settings.routes, []);
    await waitAccepted(k.key, 'slowbot', ms(2000));
  });

  test('metrics: sluice_tenant_* series carry a limited tenant\'s limits, remaining, in flight, spend and budget', async () => {
    await adminOk(gw, 'POST', '/admin/v1/tenants', {
      name: 'metered',
      rpm: 60,
      tpm: 1200,
      max_concurrent: 3,
      budget_usd_per_day: 5,
      budget_usd_per_month: 50,
      reason: 'metrics',
    });
    const k = await adminOk(gw, 'POST', '/admin/v1/tenants/metered/keys', { label: 'm' });
    const t0 = performance.now();
    for (let i = 0; i < 2; i++) await ask(k.key);
    // Three slow requests in flight (the limit), and a fourth refused for concurrency.
    const slow = Array.from({ length: 3 }, () => ask(k.key, 'slowbot'));
    await waitFor(async () => (await gw.metrics()).value('sluice_tenant_in_flight', { tenant: 'metered' }) === 3, {
      timeout: ms(2000),
      interval: 10,
      what: '3 requests in flight',
    });
    const usage = (await adminOk(gw, 'GET', '/admin/v1/tenants/metered')).usage;
    assert.equal(usage.in_flight, 3);
    assert.equal(usage.max_concurrent, 3);
    const busy = await refusal(ask(k.key));
    assert.ok(busy instanceof OpenAI.RateLimitError, String(busy));
    assert.match(busy.message, /concurrent requests: Limit 3/);
    await Promise.all(slow);

    const m = await gw.metrics();
    const v = (name, labels) => m.value(name, { tenant: 'metered', ...labels });
    assert.equal(m.types.sluice_tenant_limit, 'gauge');
    assert.equal(v('sluice_tenant_limit', { limit: 'rpm' }), 60);
    assert.equal(v('sluice_tenant_limit', { limit: 'tpm' }), 1200);
    assert.equal(v('sluice_tenant_limit', { limit: 'max_concurrent' }), 3);
    const rem = v('sluice_tenant_remaining', { limit: 'rpm' });
    // 5 admitted of a 60 RPM bucket that refills one a second (of 1200 TPM, 20 a second).
    const elapsedS = (performance.now() - t0) / 1000;
    assert.ok(rem >= 55 && rem <= Math.min(59, 55 + Math.ceil(elapsedS)), `remaining rpm ${rem} after ${elapsedS} s`);
    const remTokens = v('sluice_tenant_remaining', { limit: 'tpm' });
    assert.ok(remTokens >= 900 && (remTokens < 1200 || elapsedS > 3), `remaining tpm ${remTokens} after ${elapsedS} s`);
    assert.equal(v('sluice_tenant_in_flight'), 0);
    assert.equal(v('sluice_tenant_spend_usd', { period: 'day' }), 0, 'no price table: no spend');
    assert.equal(v('sluice_tenant_spend_usd', { period: 'month' }), 0);
    assert.equal(v('sluice_tenant_budget_usd', { period: 'day' }), 5);
    assert.equal(v('sluice_tenant_budget_usd', { period: 'month' }), 50);
    assert.equal(v('sluice_admission_refused_total', { reason: 'concurrency' }), 1);
    // The admin view agrees.
    const u = (await adminOk(gw, 'GET', '/admin/v1/tenants/metered')).usage;
    assert.equal(u.requests.limit, 60);
    assert.ok(Math.abs(u.requests.remaining - rem) <= 1, `admin ${u.requests.remaining} vs metric ${rem}`);
    assert.equal(u.in_flight, 0);
    assert.deepEqual(u.budget_usd, { day: 5, month: 50 });
    // Every tenant is there, the file's too; an unlimited one has no remaining series.
    assert.equal(m.value('sluice_tenant_limit', { tenant: 'filed', limit: 'rpm' }), 100);
    assert.equal(m.value('sluice_tenant_limit', { tenant: 'conc', limit: 'rpm' }), 0);
    assert.equal(m.find('sluice_tenant_remaining', { tenant: 'conc' }).length, 0);
    assert.deepEqual(m.bad, []);
    // A change of limits shows in the metrics at once.
    await adminOk(gw, 'POST', '/admin/v1/tenants/metered', { rpm: 120 });
    assert.equal((await gw.metrics()).value('sluice_tenant_limit', { tenant: 'metered', limit: 'rpm' }), 120);
  });
});

describe('tenant budgets', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  let cfg;
  before(async () => {
    mock = await startMock({ config: { seed: 9, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8] } } });
    cfg = {
      // $0.01 per input token, $0.02 per output token: a request costs about $0.2.
      upstreams: [{ name: 'p', url: `${mock.url}/v1`, price: { input_per_1m: 10000, output_per_1m: 20000 } }],
      routes: [{ name: 'bot', upstream: 'p', model: 'm' }],
    };
    gw = await startGateway({ config: cfg });
    gw.token = gw.adminToken();
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  const client = (key, extra = {}) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0, ...extra });
  const ask = (key, extra) => client(key, extra).chat.completions.create(chatBody());
  const refusal = (p) =>
    p.then(
      () => {
        throw new Error('expected a refusal, got an answer');
      },
      (e) => e,
    );
  const quota429s = () => gw.requestLog().filter((l) => l.tenant === 'spender' && l.status === 429).length;

  test('a spent daily budget is a 429 insufficient_quota the SDK does not retry; it holds across a restart; raising it lets requests through', async () => {
    await adminOk(gw, 'POST', '/admin/v1/tenants', { name: 'spender', budget_usd_per_day: 0.5, reason: 'tiny budget' });
    const k = await adminOk(gw, 'POST', '/admin/v1/tenants/spender/keys', { label: 'b' });
    // A stream is charged too (the gateway asks for its usage).
    const stream = await client(k.key).chat.completions.create({ ...chatBody(), stream: true });
    let chunks = 0;
    for await (const c of stream) chunks += c.choices.length;
    assert.ok(chunks > 0);
    assert.equal(stream.response?.headers?.get?.('x-should-retry') ?? null, null);
    const afterStream = (await adminOk(gw, 'GET', '/admin/v1/tenants/spender')).usage.spend_usd.day;
    assert.ok(afterStream > 0.05 && afterStream < 0.5, `a streamed request cost ${afterStream}`);
    let passed = 1;
    let err;
    for (let i = 0; i < 30 && !err; i++) {
      try {
        await ask(k.key);
        passed++;
      } catch (e) {
        err = e;
      }
    }
    assert.ok(err, 'the budget was never enforced');
    assert.ok(passed >= 2 && passed <= 4, `${passed} requests passed a $0.5 budget at about $0.2 each`);
    assert.equal((await mock.stats()).requests, passed, 'the refused request never reached the upstream');
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    assert.equal(err.status, 429);
    assert.equal(err.code, 'insufficient_quota');
    assert.equal(err.type, 'insufficient_quota');
    assert.equal(hdr(err, 'x-should-retry'), 'false');
    assert.match(err.message, /daily budget of \$0\.5/);

    // The SDK, allowed 2 retries, sends it once.
    await waitFor(() => quota429s() === 1, { what: 'the first 429 in the request log' });
    const t0 = performance.now();
    const again = await refusal(ask(k.key, { maxRetries: 2 }));
    const took = performance.now() - t0;
    assert.ok(again instanceof OpenAI.RateLimitError, String(again));
    assert.equal(again.code, 'insufficient_quota');
    await waitFor(() => quota429s() >= 2, { what: 'the second 429 in the request log' });
    await sleep(200);
    assert.equal(quota429s(), 2, 'the SDK retried an insufficient_quota');
    // (A retry would have waited at least 375 ms: the SDK's first backoff.)
    console.log(`# insufficient_quota with maxRetries 2: one request, the call took ${took.toFixed(1)} ms`);
    const line = gw.requestLog().find((l) => l.tenant === 'spender' && l.status === 429);
    assert.equal(line.error_kind, 'insufficient_quota');

    const usage = (await adminOk(gw, 'GET', '/admin/v1/tenants/spender')).usage;
    assert.ok(usage.spend_usd.day >= 0.5 && usage.spend_usd.day < 1.5, `spend ${JSON.stringify(usage)}`);
    assert.equal(usage.spend_usd.month, usage.spend_usd.day);
    assert.deepEqual(usage.budget_usd, { day: 0.5, month: 0 });
    const m = await gw.metrics();
    assert.equal(m.value('sluice_tenant_spend_usd', { tenant: 'spender', period: 'day' }), usage.spend_usd.day);
    assert.equal(m.value('sluice_tenant_budget_usd', { tenant: 'spender', period: 'day' }), 0.5);
    assert.equal(m.value('sluice_admission_refused_total', { tenant: 'spender', reason: 'budget_day' }), 2);
    const upstreamCalls = (await mock.stats()).requests;

    // Restart on the same data dir: the spend is restored and the budget still holds.
    const dataDir = gw.dataDir;
    await gw.stop();
    gw = await startGateway({ config: cfg, dataDir });
    gw.token = gw.adminToken();
    const afterRestart = await refusal(ask(k.key));
    assert.ok(afterRestart instanceof OpenAI.RateLimitError, `after the restart: ${afterRestart}`);
    assert.equal(afterRestart.code, 'insufficient_quota');
    const restored = (await adminOk(gw, 'GET', '/admin/v1/tenants/spender')).usage;
    assert.ok(Math.abs(restored.spend_usd.day - usage.spend_usd.day) < 1e-6, `restored ${restored.spend_usd.day}, was ${usage.spend_usd.day}`);
    assert.ok(Math.abs(restored.spend_usd.month - usage.spend_usd.month) < 1e-6);
    const rm = await gw.metrics();
    assert.equal(rm.value('sluice_tenant_spend_usd', { tenant: 'spender', period: 'day' }), restored.spend_usd.day);
    assert.equal(rm.value('sluice_admission_refused_total', { tenant: 'spender', reason: 'budget_day' }), 1);
    assert.equal((await mock.stats()).requests, upstreamCalls, 'a refused request reached the upstream');

    // Raising the budget with the CLI on the data dir lets requests through again.
    const upd = await cliJSON(gw, 'tenant', 'update', 'spender', '--budget-usd-per-day', '1000', '--reason', 'top up');
    assert.equal(upd.settings.budget_usd_per_day, 1000);
    const t1 = performance.now();
    await waitFor(
      async () => {
        try {
          await ask(k.key);
          return true;
        } catch (e) {
          if (e.status === 429) return false;
          throw e;
        }
      },
      { timeout: ms(1000), interval: 5, what: 'requests pass after the budget was raised' },
    );
    console.log(`# budget raised by the CLI: requests pass ${(performance.now() - t1).toFixed(1)} ms after it exited`);
    // The spend keeps counting; it was charged for the request that just passed.
    const u2 = (await adminOk(gw, 'GET', '/admin/v1/tenants/spender')).usage;
    assert.ok(u2.spend_usd.day > restored.spend_usd.day, `spend ${u2.spend_usd.day} after ${restored.spend_usd.day}`);

    // A monthly budget already spent refuses too, saying so.
    await adminOk(gw, 'POST', '/admin/v1/tenants/spender', { budget_usd_per_month: 0.25, reason: 'month cap' });
    const monthly = await refusal(ask(k.key));
    assert.ok(monthly instanceof OpenAI.RateLimitError, String(monthly));
    assert.equal(monthly.code, 'insufficient_quota');
    assert.match(monthly.message, /monthly budget of \$0\.25/);
    const m2 = await gw.metrics();
    assert.equal(m2.value('sluice_admission_refused_total', { tenant: 'spender', reason: 'budget_month' }), 1);
    assert.equal(m2.value('sluice_tenant_budget_usd', { tenant: 'spender', period: 'month' }), 0.25);

    // A crash loses at most the last second: spend is flushed every second.
    const spent = (await adminOk(gw, 'GET', '/admin/v1/tenants/spender')).usage.spend_usd;
    await sleep(1500);
    gw.proc.checkSanitizers();
    gw.proc.signal('SIGKILL');
    await gw.proc.waitExit();
    gw = await startGateway({ config: cfg, dataDir });
    gw.token = gw.adminToken();
    const afterCrash = (await adminOk(gw, 'GET', '/admin/v1/tenants/spender')).usage.spend_usd;
    assert.ok(Math.abs(afterCrash.day - spent.day) < 1e-6, `after a crash: ${afterCrash.day}, was ${spent.day}`);
    assert.ok(Math.abs(afterCrash.month - spent.month) < 1e-6, `after a crash: ${afterCrash.month}, was ${spent.month}`);
    const stillMonthly = await refusal(ask(k.key));
    assert.equal(stillMonthly.code, 'insufficient_quota', String(stillMonthly));
  });
});

describe('the last key', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  before(async () => {
    mock = await startMock({ config: { seed: 4, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8] } } });
    gw = await startGateway({ config: { upstreams: [{ name: 'p', url: `${mock.url}/v1` }], routes: [{ name: 'bot', upstream: 'p', model: 'm' }] } });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test('once the store has tenants, revoking the last key never opens the gateway to anonymous requests', async () => {
    // No keys anywhere: a loopback gateway serves without a key.
    assert.equal(await freshStatus(gw, 'anything'), 200);
    await cliJSON(gw, 'tenant', 'create', 'solo', '--rpm', '100');
    // A tenant exists: every request needs a key now, even before the first one is made.
    await waitFor(async () => (await freshStatus(gw, 'anything')) === 401, { what: 'keys required' });
    const k = await cliJSON(gw, 'key', 'create', 'solo');
    await waitFor(async () => (await freshStatus(gw, k.key)) === 200, { what: 'the new key accepted' });
    await cliJSON(gw, 'key', 'revoke', k.id, '--reason', 'last one');
    await waitFor(async () => (await freshStatus(gw, k.key)) === 401, { what: 'the revoked key refused' });
    assert.deepEqual([...new Set(await freshStatuses(gw, k.key, 8))], [401]);
    assert.deepEqual([...new Set(await freshStatuses(gw, 'anything', 8))], [401], 'no anonymous access after the last revoke');
  });
});
