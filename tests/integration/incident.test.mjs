// incident.test.mjs: the incident timeline, the postmortem skeleton and rollback readiness,
// end to end. Two fake upstreams (the stable release's and the candidate's), a gateway, the
// CLI on the store: a promotion, a canary rollout promoted on a gate decision, a kill switch
// flipped on and off, readiness probed while the rollback target's upstream answers and
// while it fails, a rollback onto the failing upstream (its breaker opens) -> the timeline
// (admin API and CLI) has all of it in order with its numbers, and `incident report` has
// the timeline and ready-to-run add-case lines for the failed requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  SLUICE_BIN,
  completionBody,
  ms,
  requestJSON,
  runProcess,
  startFakeUpstream,
  startGateway,
  tempDir,
  waitFor,
  USER_MSG,
} from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(HERE, 'fixtures/rollouts');
const ROUTE = 'canary-chat';

const cli = (gw, ...args) => runProcess(SLUICE_BIN, [...args, '--data-dir', gw.dataDir], { timeout: ms(20000) });
async function cliOk(gw, ...args) {
  const r = await cli(gw, ...args);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}
const admin = (gw, method, p, body) =>
  requestJSON(method, `${gw.adminUrl}${p}`, { body, headers: { authorization: `Bearer ${gw.adminToken()}` } });

// A fake upstream that answers completions, or 500 while `broken`.
async function fakeLLM(name) {
  const state = { broken: false };
  const up = await startFakeUpstream((req, res) => {
    if (state.broken) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `${name} is down`, type: 'server_error' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(completionBody(name, `hello from ${name}`));
  });
  return Object.assign(up, { state });
}

async function send(gw, n, user = 'u') {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: ROUTE, user: `${user}-${i}`, messages: USER_MSG }),
    });
    await r.arrayBuffer();
    out.push(r.status);
  }
  return out;
}

describe('incident timeline, report and rollback readiness', () => {
  let a, b, gw, v1, v2;
  const t0 = Date.now() - 1000;

  before(async () => {
    a = await fakeLLM('mock-a');
    b = await fakeLLM('mock-b');
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'mock-a', url: `${a.url}/v1`, breaker: { consecutive_failures: 2, open_ms: 60000 } },
          { name: 'mock-b', url: `${b.url}/v1` },
        ],
        limits: { max_attempts: 1 },
        request_log: { bodies: true },
      },
      args: ['--readiness-interval-ms', '200'],
    });
    v1 = (await cliOk(gw, 'release', 'create', path.join(FIX, 'chat-stable.yaml'))).trim().split(/\s/)[0];
    v2 = (await cliOk(gw, 'release', 'create', path.join(FIX, 'chat-candidate.yaml'))).trim().split(/\s/)[0];
  });

  after(async () => {
    await gw?.stop();
    await a?.close();
    await b?.close();
  });

  test('promote, rollout with a gate decision, kill switch, readiness, rollback, breaker: one timeline', async () => {
    await cliOk(gw, 'route', 'promote', ROUTE, v1, '--reason', 'baseline');
    await cliOk(gw, 'route', 'policy', ROUTE, '--no-approval', '--reason', 'this test promotes on evidence');
    await waitFor(async () => (await send(gw, 1))[0] === 200, { what: 'route served' });

    // No known good release behind v1 yet: nothing to roll back to, not ready.
    const none = await cli(gw, 'rollback', ROUTE, '--check', '--admin', gw.adminUrl);
    assert.equal(none.code, 1, none.stdout + none.stderr);
    assert.match(none.stdout, /target\s+\(none\)/);

    const spec = path.join(tempDir('sluice-spec-'), 'spec.yaml');
    const specText = [
      'strategy: canary',
      'steps:',
      '  - setWeight: 50',
      '  - pause: 1s',
      '  - setWeight: 100',
      'gates:',
      '  - {check: "error_rate <= stable + 0.5", min_samples: 5}',
    ].join('\n');
    (await import('node:fs')).writeFileSync(spec, specText);
    await cliOk(gw, 'rollout', 'start', ROUTE, '--to', v2, '--spec', spec, '--override', '--reason', 'canary of v2');
    // Traffic until the rollout completes on its gate decision.
    await waitFor(
      async () => {
        await send(gw, 10);
        const st = await admin(gw, 'GET', `/admin/v1/rollouts/${ROUTE}`);
        return st.json?.status === 'completed';
      },
      { timeout: ms(15000), interval: 10, what: 'rollout completed' },
    );

    // v2 is stable; a rollback goes to v1 on mock-a, which answers: ready (probed).
    const ready = await cli(gw, 'rollback', ROUTE, '--check', '--admin', gw.adminUrl);
    assert.equal(ready.code, 0, ready.stdout + ready.stderr);
    assert.match(ready.stdout, new RegExp(`target\\s+${v1}`));
    assert.match(ready.stdout, /upstream\s+mock-a \(model chat-a\)/);
    assert.match(ready.stdout, /probe\s+ok in [\d.]+ ms/);
    const probesBefore = a.requests.length;
    const rd = await admin(gw, 'GET', `/admin/v1/routes/${ROUTE}/readiness`);
    assert.equal(rd.status, 200);
    assert.equal(rd.json.route, ROUTE);
    assert.equal(rd.json.target_release, v1);
    assert.equal(rd.json.upstream, 'mock-a');
    assert.equal(rd.json.healthy, true);
    assert.ok(rd.json.latency_ms >= 0 && rd.json.checked_ms > t0, JSON.stringify(rd.json));
    assert.ok(a.requests.length > probesBefore, 'the probe is a real request to the upstream');
    assert.equal(JSON.parse(a.requests.at(-1).body).model, 'chat-a', "the probe asks for the target release's model");
    await waitFor(async () => {
      const m = await (await fetch(`${gw.url}/metrics`)).text();
      return /sluice_rollback_ready\{route="canary-chat"\} 1/.test(m);
    }, { timeout: ms(5000), what: 'sluice_rollback_ready 1' });

    // A kill switch on the route, then off.
    await cliOk(gw, 'kill', 'route', ROUTE, '--mode', 'block', '--reason', 'answers look wrong');
    await cliOk(gw, 'kill', 'clear', `kill.route.${ROUTE}`, '--reason', 'false alarm');

    // The rollback target's upstream starts failing: not ready, nothing changed.
    a.state.broken = true;
    const notReady = await cli(gw, 'rollback', ROUTE, '--check', '--admin', gw.adminUrl);
    assert.equal(notReady.code, 1, notReady.stdout + notReady.stderr);
    assert.match(notReady.stdout, /ready\s+NO/);
    assert.match(notReady.stdout, /probe\s+failed/);
    const routes = await admin(gw, 'GET', '/admin/v1/routes');
    assert.equal(routes.json.routes.find((r) => r.name === ROUTE).stable_release, v2, '--check changes nothing');

    // Rolled back anyway: its requests fail and mock-a's breaker opens.
    const rb = await admin(gw, 'POST', `/admin/v1/routes/${ROUTE}/rollback`, { reason: 'v2 regressed' });
    assert.equal(rb.status, 200, rb.text);
    const statuses = await send(gw, 4, 'after');
    assert.ok(statuses.every((s) => s >= 500), JSON.stringify(statuses));

    const want = ['release.promoted', 'rollout.start', 'rollout.step', 'rollout.decision', 'rollout.completed',
      'release.promoted', 'kill.route', 'kill.clear', 'rollback', 'breaker.open'];
    const inOrder = (kinds) => {
      let i = 0;
      for (const k of kinds) if (k === want[i]) i++;
      return i === want.length;
    };
    let tl;
    await waitFor(async () => {
      tl = await admin(gw, 'GET', `/admin/v1/timeline?route=${ROUTE}&since=${t0}`);
      return tl.status === 200 && inOrder(tl.json.events.map((e) => e.kind));
    }, { timeout: ms(5000), what: `timeline in order: ${want.join(', ')}` }).catch((e) => {
      e.message += `\n${JSON.stringify(tl?.json?.events?.map((x) => [x.t_ms, x.kind, x.summary]), null, 1)}`;
      throw e;
    });
    const events = tl.json.events;
    for (let i = 1; i < events.length; i++) assert.ok(events[i - 1].t_ms <= events[i].t_ms, 'time order');
    for (const e of events) assert.deepEqual(Object.keys(e).filter((k) => ['t_ms', 'kind', 'route', 'summary', 'detail'].includes(k)).length, 5);
    const decision = events.find((e) => e.kind === 'rollout.decision');
    const gate = decision.detail.data.gates[0];
    assert.equal(gate.check, 'error_rate <= stable + 0.5');
    assert.ok(gate.n_candidate >= 5 && gate.n_stable >= 5, JSON.stringify(gate));
    assert.ok(gate.lo <= gate.estimate && gate.estimate <= gate.hi, JSON.stringify(gate));
    assert.match(decision.summary, /promote: /);
    const breaker = events.find((e) => e.kind === 'breaker.open');
    assert.equal(breaker.subject, 'mock-a');
    assert.equal(breaker.route, ROUTE, 'an upstream event is on the timeline of the route that uses it');
    assert.match(breaker.summary, /upstream mock-a ejected \(breaker open\): 2 consecutive failures/);
    assert.equal(breaker.detail.reason.startsWith('2 consecutive failures'), true);
    const rollback = events.find((e) => e.kind === 'rollback');
    assert.match(rollback.summary, new RegExp(`rolled back to ${v1} \\(from ${v2}\\) by token:bootstrap: v2 regressed`));
    assert.equal(events.filter((e) => e.kind === 'rollout.decision').length, 1, 'each decision once');

    // The CLI on the store: the same events as text, and as the same JSON.
    const text = await cliOk(gw, 'incident', 'timeline', '--route', ROUTE, '--since', String(t0));
    const kinds = text.trim().split('\n').map((l) => l.split(/\s+/)[2]);
    assert.ok(inOrder(kinds), text);
    assert.match(text, /rollout\.decision\s+canary-chat\s+rel_[0-9a-f]+ promote: /);
    const viaAdmin = await cliOk(gw, 'incident', 'timeline', '--route', ROUTE, '--since', String(t0), '--admin', gw.adminUrl);
    assert.ok(inOrder(viaAdmin.trim().split('\n').map((l) => l.split(/\s+/)[2])), viaAdmin);
    const js = JSON.parse(await cliOk(gw, 'incident', 'timeline', '--route', ROUTE, '--since', String(t0), '--json'));
    assert.ok(inOrder(js.events.map((e) => e.kind)));

    // Another route's timeline does not have this one's events.
    const other = await admin(gw, 'GET', `/admin/v1/timeline?route=elsewhere&since=${t0}`);
    assert.equal(other.json.events.filter((e) => e.kind !== 'config.reload').length, 0, JSON.stringify(other.json));

    // The postmortem skeleton.
    const out = path.join(tempDir('sluice-report-'), 'incident.md');
    await cliOk(gw, 'incident', 'report', '--route', ROUTE, '--since', String(t0), '--out', out, '--suite', 'evals/chat.yaml');
    const md = readFileSync(out, 'utf8');
    assert.match(md, /^# Incident: route canary-chat/);
    assert.match(md, /## Timeline[\s\S]*rollout\.decision[\s\S]*rollback[\s\S]*breaker\.open/);
    assert.match(md, new RegExp(`\\| \`${v1}\` \\| \\d+ \\| [1-9]\\d* \\|`), md);
    const lines = md.split('\n').filter((l) => l.startsWith('sluice eval add-case '));
    assert.ok(lines.length >= 4, md);
    const ids = gw.requestLog().filter((l) => l.route === ROUTE && l.status >= 500).map((l) => l.request_id);
    for (const l of lines) {
      assert.match(l, /^sluice eval add-case --suite evals\/chat.yaml --request \S+ --expect not-refusal --description '/);
      assert.ok(ids.includes(/--request (\S+)/.exec(l)[1]), l);
    }

    // The readiness gauge follows: mock-a fails its probes now.
    await waitFor(async () => {
      const m = await (await fetch(`${gw.url}/metrics`)).text();
      return /sluice_rollback_ready\{route="canary-chat"\} 0/.test(m) || !/sluice_rollback_ready\{route="canary-chat"\}/.test(m);
    }, { timeout: ms(5000), what: 'readiness gauge updated' });
  });
});
