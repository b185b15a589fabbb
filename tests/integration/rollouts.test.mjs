// rollouts.test.mjs: rollouts end to end: a canary rolled back by a guardrail while no client
// request fails, a GSM8K candidate promoted on user feedback through every step with sticky
// users, an over-refusing XSTest candidate stopped in shadow before any live traffic, a
// restart in the middle of a canary, the controls (eval gate, approval, pause/resume,
// roles, shadow drops, feedback endpoint), and edges (a candidate its upstream rejects,
// inconclusive gates, in-flight streams at an abort, a manual promote during a rollout,
// blue-green warm-up). Tests marked `todo` name an open bug in BUGS.md.
//
// Everything goes over real sockets: `sluice mock-llm` processes as upstreams (a second mock
// process for the candidate when faults must hit the candidate only), `sluice serve`, the
// official OpenAI SDK as the client, and the `sluice` CLI for releases and rollouts.
// Fixtures (release manifests, rollout specs) are in fixtures/rollouts/; mock configs and
// specs with run-time values (webhook URL, absolute data paths) are written to temp dirs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

import {
  SLUICE_BIN,
  assertOpenAIError,
  closedPort,
  ms,
  parseCSV,
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

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const FIX = path.join(HERE, 'fixtures/rollouts');
const DATA = path.resolve(REPO, '../shared/data');
const GSM8K_TEST = path.join(DATA, 'gsm8k/test.jsonl');
const GSM8K_SOLUTIONS = path.join(DATA, 'gsm8k/model_solutions.jsonl');
const XSTEST = path.join(DATA, 'xstest');
const MATH_V1 = path.join(REPO, 'examples/math-tutor/release-v1.yaml');
const MATH_V2 = path.join(REPO, 'examples/math-tutor/release-v2.yaml');
const NO_GSM8K = existsSync(GSM8K_TEST) && existsSync(GSM8K_SOLUTIONS) ? false : `GSM8K data not found under ${DATA}`;
const NO_XSTEST = existsSync(path.join(XSTEST, 'prompts.csv')) ? false : `XSTest data not found under ${XSTEST}`;

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

// ------------------------------------------------------------------ CLI

const runSluice = (args, { timeout = ms(15000) } = {}) => runProcess(SLUICE_BIN, args, { timeout });

const cli = (dataDir, ...args) => runSluice([...args, '--data-dir', dataDir]);

async function cliOk(dataDir, ...args) {
  const r = await cli(dataDir, ...args);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

async function createRelease(dataDir, manifest) {
  const out = await cliOk(dataDir, 'release', 'create', manifest);
  const m = /^(rel_[0-9a-f]{8})/.exec(out);
  assert.ok(m, `unexpected release create output: ${JSON.stringify(out)}`);
  return m[1];
}

// A spec from fixtures/rollouts with {{NAME}} placeholders filled, written to a temp file.
function specFile(name, vars = {}) {
  let text = readFileSync(path.join(FIX, name), 'utf8');
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{{${k}}}`, v);
  assert.doesNotMatch(text, /\{\{[A-Z_]+\}\}/, `unfilled placeholder in ${name}`);
  const f = path.join(tempDir('sluice-spec-'), name);
  writeFileSync(f, text);
  return f;
}

// Starts a rollout through the CLI on the store (the running gateway picks it up).
async function startRollout(dataDir, route, release, spec, reason = 'integration test') {
  const out = await cliOk(dataDir, 'rollout', 'start', route, '--to', release, '--spec', spec, '--override', '--reason', reason);
  const m = /started rollout (ro_[0-9a-f]+)/.exec(out);
  assert.ok(m, `unexpected rollout start output: ${out}`);
  return m[1];
}

// Every route needs a person's sign-off before 100% unless it opts out (issue 17). Stories
// about promotion on evidence alone opt out explicitly, as an operator would (audited).
async function optOutOfApproval(dataDir, route, reason = 'this test is about automatic promotion on evidence') {
  await cliOk(dataDir, 'route', 'policy', route, '--no-approval', '--reason', reason);
}

async function auditLog(dataDir) {
  return JSON.parse(await cliOk(dataDir, 'audit', '--limit', '500')).audit;
}

async function stableOf(dataDir, route) {
  const out = await cliOk(dataDir, 'route', 'list');
  const line = out.split('\n').find((l) => l.trim().split(/\s+/)[0] === route);
  return line?.trim().split(/\s+/)[1];
}

// ------------------------------------------------------------------ admin API

async function admin(gw, method, p, { token = gw.token ?? gw.adminToken(), body } = {}) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return requestJSON(method, `${gw.adminUrl}${p}`, { body, headers });
}

async function status(gw, route, token) {
  const r = await admin(gw, 'GET', `/admin/v1/rollouts/${route}`, { token });
  assert.equal(r.status, 200, `GET rollout status: ${r.status} ${r.text}`);
  return r.json;
}

async function waitStatus(gw, route, pred, { timeout = ms(20000), what = 'rollout status', token } = {}) {
  let last;
  try {
    return await waitFor(
      async () => {
        last = await status(gw, route, token);
        return pred(last) ? last : false;
      },
      { timeout, interval: 50, what },
    );
  } catch (e) {
    e.message += `\nlast status: ${last ? last.text : '(none)'}`;
    throw e;
  }
}

const eventsOf = (st, kind) => st.events.filter((e) => e.kind === kind);

// ------------------------------------------------------------------ mocks and gateways

// mock-llm with a config object (JSON is YAML); fast by default, so tests are about rollouts.
function startFastMock(models = [], defaults = {}) {
  return startMock({
    config: {
      seed: 7,
      defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 16], ...defaults },
      models,
    },
  });
}

// A gateway config listing the upstreams with prices (costs per call feed cost gates).
function gatewayConfig(upstreams, extra = {}) {
  return {
    upstreams: Object.entries(upstreams).map(([name, url], i) => ({
      name,
      url: `${url}/v1`,
      price: { input_per_1m: 1 + i, output_per_1m: 2 + 2 * i },
    })),
    ...extra,
  };
}

function sdk(gw, apiKey = 'sk-unused') {
  // maxRetries 0: a failed request must be seen as failed, not retried by the SDK.
  return new OpenAI({ baseURL: gw.baseURL, apiKey, maxRetries: 0, timeout: ms(30000) });
}

// Closed-loop load: `concurrency` clients send make(n) until stop() is called. Every request
// is recorded as {n, t0, t1, status, release, id, text, error, ...meta}.
function traffic(gw, { concurrency = 8, make, onResponse, apiKey } = {}) {
  const client = sdk(gw, apiKey);
  const log = [];
  let stopped = false;
  let n = 0;
  const worker = async () => {
    while (!stopped) {
      const i = n++;
      const { body, headers, meta } = make(i);
      const rec = { n: i, t0: Date.now(), ...meta };
      try {
        const { data, response } = await client.chat.completions.create(body, headers ? { headers } : undefined).withResponse();
        rec.status = response.status;
        rec.release = response.headers.get('x-sluice-release');
        rec.id = response.headers.get('x-request-id');
        if (body.stream) {
          rec.text = '';
          for await (const chunk of data) rec.text += chunk.choices?.[0]?.delta?.content ?? '';
        } else {
          rec.text = data.choices?.[0]?.message?.content ?? '';
        }
      } catch (e) {
        rec.status = e.status ?? 'network';
        rec.error = e.message;
        rec.release = e.headers?.get?.('x-sluice-release') ?? null;
      }
      rec.t1 = Date.now();
      log.push(rec);
      if (onResponse) await onResponse(rec);
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    log,
    get count() {
      return log.length;
    },
    async stop() {
      stopped = true;
      await done;
      return log;
    },
  };
}

function failures(log) {
  return log.filter((r) => r.status !== 200);
}

function describeFailures(log) {
  const f = failures(log);
  const byStatus = {};
  for (const r of f) byStatus[`${r.status} ${r.error ?? ''}`.slice(0, 160)] = (byStatus[`${r.status} ${r.error ?? ''}`.slice(0, 160)] ?? 0) + 1;
  return `${f.length} of ${log.length} requests failed: ${JSON.stringify(byStatus, null, 1)}`;
}

// ------------------------------------------------------------------ datasets

function gsm8kQuestions() {
  return readFileSync(GSM8K_TEST, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .map((q) => ({ question: q.question, answer: finalNumber(q.answer.split('####').pop()) }));
}

// The last number in a text ("A: 1,234" -> 1234).
function finalNumber(text) {
  const all = String(text).replace(/(\d),(\d)/g, '$1$2').match(/-?\d+(\.\d+)?/g);
  return all ? Number(all[all.length - 1]) : undefined;
}

// ============================================================================ 1. auto rollback

describe('1. a guardrail rolls a failing canary back; no client request fails', { timeout: ms(120_000) }, () => {
  let mockA;
  let mockB;
  let hook;
  let gw;
  let d;
  let stable;
  let candidate;
  let rolloutId;
  let load;
  let rollbackAt;
  let final;
  const hookAttempts = [];

  before(async () => {
    [mockA, mockB] = await Promise.all([startFastMock(), startFastMock()]);
    // The webhook receiver fails the first delivery: the controller must retry.
    hook = await startFakeUpstream((req, res, body) => {
      hookAttempts.push({ at: Date.now(), body, url: req.url, method: req.method });
      res.writeHead(hookAttempts.length === 1 ? 500 : 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    d = tempDir('sluice-ro-rollback-');
    stable = await createRelease(d, path.join(FIX, 'chat-stable.yaml'));
    candidate = await createRelease(d, path.join(FIX, 'chat-candidate.yaml'));
    await cliOk(d, 'route', 'promote', 'canary-chat', stable, '--reason', 'baseline');
    gw = await startGateway({ dataDir: d, config: gatewayConfig({ 'mock-a': mockA.url, 'mock-b': mockB.url }) });
  });
  after(async () => {
    await load?.stop();
    await gw?.stop();
    await Promise.all([mockA?.stop(), mockB?.stop(), hook?.close()]);
  });

  test('the canary starts at 30% and serves both releases', async () => {
    const spec = specFile('spec-auto-rollback.yaml', { WEBHOOK: `${hook.url}/hook` });
    rolloutId = await startRollout(d, 'canary-chat', candidate, spec);
    const st = await waitStatus(gw, 'canary-chat', (s) => s.status === 'running' && s.weight === 30);
    assert.equal(st.id, rolloutId);
    assert.equal(st.stable, stable);
    assert.equal(st.candidate, candidate);
    assert.equal(st.step, 1, 'setWeight 30 has no window: the pause (step index 1) is current');
    load = traffic(gw, {
      concurrency: 8,
      // Every third request streams: a candidate failing before the first byte of a stream
      // falls back to stable the same way.
      make: (i) => ({ body: { model: 'canary-chat', stream: i % 3 === 0, messages: [{ role: 'user', content: `hello ${i}` }] } }),
    });
    // Healthy traffic: enough candidate evidence that the gate has an opinion before the fault.
    await waitFor(async () => (await status(gw, 'canary-chat')).live.candidate.requests >= 60, {
      timeout: ms(30000),
      what: '60 healthy candidate requests',
    });
    const healthy = await status(gw, 'canary-chat');
    assert.equal(healthy.status, 'running', healthy.text);
    assert.equal(healthy.live.candidate.error_rate, 0);
    // Costs come from the upstreams' price tables: mock-b costs twice as much per token.
    const cs = healthy.live.stable.cost_per_call;
    const cc = healthy.live.candidate.cost_per_call;
    assert.ok(cs > 0 && cc > 1.5 * cs && cc < 2.5 * cs, `cost per call: stable ${cs}, candidate ${cc}`);
    assert.ok(healthy.live.candidate.latency_p50_ms > 0);
    const releases = new Set(load.log.map((r) => r.release));
    assert.deepEqual([...releases].sort(), [stable, candidate].sort(), 'both releases answered');
    assert.equal(failures(load.log).length, 0, describeFailures(load.log));
  });

  test('errors on the candidate only: rolled back by the guardrail, weight 0, aborted', async () => {
    assert.ok(load, 'needs the previous test');
    await mockB.setFaults({ error_rate: 0.6 });
    final = await waitStatus(gw, 'canary-chat', (s) => s.status === 'aborted', { timeout: ms(30000), what: 'rollback' });
    const rb = eventsOf(final, 'rollback');
    assert.equal(rb.length, 1, `one rollback event:\n${final.text}`);
    rollbackAt = rb[0].at;
    assert.match(rb[0].detail.message, /guardrail failed: error_rate <= stable \+ 0\.05: fail/);
    assert.equal(final.weight, 0);
    assert.equal(final.shadow_share, 0);
    assert.equal(final.record_status, 'aborted');
    assert.match(final.reason, /guardrail failed/);
    const gate = final.gates.find((g) => g.check.startsWith('error_rate'));
    assert.equal(gate.verdict, 'fail');
    assert.ok(gate.lo > gate.threshold, `the interval is entirely above the limit: ${JSON.stringify(gate)}`);
    assert.ok(final.live.candidate.error_rate > 0.1, JSON.stringify(final.live.candidate));
    // The candidate's failures reached the evidence although every client got an answer.
    assert.ok(final.live.stable.error_rate === 0, JSON.stringify(final.live.stable));
  });

  test('after the rollback only the stable release answers (requests in flight excepted)', async () => {
    assert.ok(rollbackAt, 'needs the previous test');
    // Keep the load running a while after the decision; the candidate's mock must see nothing new.
    await sleep(ms(300));
    const mockBefore = (await mockB.stats()).requests;
    const countBefore = load.count;
    await waitFor(() => load.count >= countBefore + 200, { timeout: ms(20000), what: '200 more requests' });
    const mockAfter = (await mockB.stats()).requests;
    await load.stop();
    assert.equal(mockAfter, mockBefore, 'the candidate upstream got requests after the rollback');
    // Requests sent clearly after the decision (50 ms for it to be applied) got stable.
    const late = load.log.filter((r) => r.t0 > rollbackAt + ms(50));
    assert.ok(late.length >= 200, `${late.length} requests after the rollback`);
    const bad = late.filter((r) => r.release !== stable);
    assert.equal(bad.length, 0, `${bad.length} requests started after the rollback got ${JSON.stringify(bad.slice(0, 3))}`);
  });

  test('no client request failed during the whole run (stable fallback)', () => {
    assert.ok(load.log.length > 0);
    assert.equal(failures(load.log).length, 0, describeFailures(load.log));
  });

  test('the webhook was called, retried after a 500', async () => {
    await waitFor(() => hookAttempts.length >= 2, { timeout: ms(10000), what: 'a second webhook attempt' });
    for (const a of hookAttempts) {
      assert.equal(a.method, 'POST');
      assert.equal(a.url, '/hook');
    }
    const first = JSON.parse(hookAttempts[0].body);
    const second = JSON.parse(hookAttempts[1].body);
    assert.deepEqual(second, first, 'the retry carries the same payload');
    assert.equal(first.event, 'rollback');
    assert.equal(first.rollout, rolloutId);
    assert.equal(first.route, 'canary-chat');
    assert.equal(first.stable, stable);
    assert.equal(first.candidate, candidate);
    assert.equal(first.status, 'aborted');
    assert.match(first.message, /error_rate/);
    assert.ok(hookAttempts[1].at - hookAttempts[0].at >= 200, 'retried with a backoff, not at once');
  });

  test('the rollback is in the audit log and the route keeps its stable release', async () => {
    const audit = await auditLog(d);
    const e = audit.find((x) => x.action === 'rollout.rollback');
    assert.ok(e, `no rollout.rollback in ${JSON.stringify(audit.map((x) => x.action))}`);
    assert.equal(e.target, 'canary-chat');
    assert.equal(e.actor, 'rollout-controller');
    assert.equal(e.before, stable);
    assert.equal(e.after, stable);
    assert.match(e.reason, /guardrail failed/);
    assert.ok(audit.some((x) => x.action === 'rollout.override_eval' && x.after === candidate), 'the eval override is audited');
    assert.equal(await stableOf(d, 'canary-chat'), stable);
  });

  test('rollback_settled: how long after the decision a request still went to the candidate', async (t) => {
    const st = await waitStatus(gw, 'canary-chat', (s) => eventsOf(s, 'rollback_settled').length > 0, {
      timeout: ms(5000),
      what: 'rollback_settled event',
    });
    const ev = eventsOf(st, 'rollback_settled')[0];
    const after = ev.detail.last_candidate_after_ms;
    t.diagnostic(`rollback_settled: last_candidate_after_ms = ${after}`);
    assert.equal(typeof after, 'number');
    assert.ok(after < ms(100), `a request reached the candidate ${after} ms after the rollback decision (goal: < 100 ms)`);
    // The event is part of the timeline: its time is that of the other events, not 0.
    assert.ok(ev.at >= rollbackAt, `rollback_settled at ${ev.at}, the rollback at ${rollbackAt}`);
  });
});

// ============================================================================ 2. GSM8K promotion

// The candidate's weight at every moment, from the controller's own events: [{at, weight}].
function weightTimeline(st) {
  const out = [];
  for (const e of st.events) {
    const w = e.detail?.weight;
    if (typeof w !== 'number') continue;
    if (!out.length || out[out.length - 1].weight !== w) out.push({ at: e.at, weight: w });
  }
  return out;
}

// The weight in force for a whole request [t0, t1], or undefined when it changed (within
// `slack` ms) while the request ran.
function weightDuring(timeline, t0, t1, slack = ms(100)) {
  let w;
  for (const p of timeline) if (p.at <= t0 - slack) w = p.weight;
  if (timeline.some((p) => p.at > t0 - slack && p.at < t1 + slack)) return undefined;
  return w;
}

describe('2. GSM8K: a better candidate is promoted through every step on user feedback', { skip: NO_GSM8K, timeout: ms(150_000) }, () => {
  let mock;
  let gw;
  let d;
  let v1;
  let v2;
  let load;
  let done;
  const feedbackFailures = [];

  before(async () => {
    mock = await startFastMock([
      { name: 'gsm8k-6b-verification', replay: { gsm8k: GSM8K_SOLUTIONS, version: '6b_verification' } },
      { name: 'gsm8k-175b-verification', replay: { gsm8k: GSM8K_SOLUTIONS, version: '175b_verification' } },
    ]);
    d = tempDir('sluice-ro-gsm8k-');
    v1 = await createRelease(d, MATH_V1);
    v2 = await createRelease(d, MATH_V2);
    await cliOk(d, 'route', 'promote', 'math-tutor', v1, '--reason', 'baseline');
    await optOutOfApproval(d, 'math-tutor');
    gw = await startGateway({ dataDir: d, config: gatewayConfig({ mock: mock.url }) });
  });
  after(async () => {
    await load?.stop();
    await gw?.stop();
    await mock?.stop();
  });

  test('started through the admin API (CLI --admin), with sticky users graded by their answers', async () => {
    const spec = specFile('spec-gsm8k-promotion.yaml');
    const r = await runSluice(['rollout', 'start', 'math-tutor', '--to', v2, '--spec', spec, '--override', '--reason', 'gsm8k 175b',
      '--admin', gw.adminUrl, '--token', gw.adminToken()]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /rollout ro_[0-9a-f]+ on route math-tutor/);
    await waitStatus(gw, 'math-tutor', (s) => s.status === 'running' && s.weight === 20);

    const questions = gsm8kQuestions();
    let seed = 12345;
    const rand = (n) => {
      seed = (seed * 48271) % 2147483647; // MINSTD: deterministic, all users drawn
      return Math.floor((seed / 2147483647) * n);
    };
    load = traffic(gw, {
      concurrency: 12,
      make: () => {
        const u = rand(240);
        const q = rand(questions.length);
        const body = { model: 'math-tutor', messages: [{ role: 'user', content: questions[q].question }] };
        // Half the users are identified by the body's `user`, half by the spec's sticky header.
        if (u % 2 === 0) return { body: { ...body, user: `user-${u}` }, meta: { user: u, q } };
        return { body, headers: { 'x-session-id': `session-${u}` }, meta: { user: u, q } };
      },
      onResponse: async (rec) => {
        if (rec.status !== 200) return;
        rec.correct = finalNumber(rec.text) === questions[rec.q].answer;
        const f = await postJSON(`${gw.url}/v1/feedback`, { request_id: rec.id, score: rec.correct ? 1 : 0 });
        if (f.status !== 200) feedbackFailures.push(`${f.status} ${f.text}`);
      },
    });
    done = await waitStatus(gw, 'math-tutor', (s) => s.status === 'completed' || s.status === 'aborted' || s.status === 'paused', {
      timeout: ms(100_000),
      what: 'the rollout to finish',
    });
    // A little traffic after the promotion.
    const endAt = eventsOf(done, 'completed')[0]?.at ?? Date.now();
    await waitFor(() => load.log.filter((r) => r.t0 > endAt + 300).length >= 30, { timeout: ms(10000), what: '30 requests after the end' });
    await load.stop();
    assert.equal(done.status, 'completed', done.text);
    assert.equal(failures(load.log).length, 0, describeFailures(load.log));
    assert.deepEqual(feedbackFailures, [], 'every feedback POST was accepted');
  });

  test('every step was passed on evidence, and the candidate became the stable release', async () => {
    assert.equal(done?.status, 'completed', 'needs the previous test');
    assert.equal(done.record_status, 'completed');
    assert.match(done.reason, /candidate is the stable release/);
    assert.equal(done.weight, 100);
    const entered = eventsOf(done, 'step').map((e) => e.detail.data.step);
    assert.deepEqual(entered, [0, 1, 2, 3, 4], `every step entered once, in order:\n${done.text}`);
    const decisions = eventsOf(done, 'decision');
    assert.equal(decisions.length, 2, 'each pause step ended with a promote decision');
    for (const dec of decisions) {
      assert.match(dec.detail.message, /^promote: /);
      const gates = dec.detail.data.gates;
      assert.deepEqual(gates.map((g) => g.verdict), ['pass', 'pass'], JSON.stringify(gates));
    }
    assert.equal(eventsOf(done, 'completed').length, 1);
    assert.equal(eventsOf(done, 'command').length, 0, 'no human pushed it');
    // The numbers behind the feedback gate: the 175B verifier is right more often.
    const { stable, candidate } = done.live;
    assert.ok(candidate.feedback_n >= 30 && stable.feedback_n >= 30, JSON.stringify(done.live));
    assert.ok(candidate.feedback_mean > stable.feedback_mean, `candidate ${candidate.feedback_mean} vs stable ${stable.feedback_mean}`);
    const fb = done.gates.find((g) => g.check.startsWith('feedback_mean'));
    assert.equal(fb.verdict, 'pass');
    assert.ok(fb.lo >= fb.threshold, JSON.stringify(fb));

    assert.equal(await stableOf(d, 'math-tutor'), v2, 'route list shows the candidate as stable');
    const routes = await admin(gw, 'GET', '/admin/v1/routes');
    const mt = routes.json.routes.find((r) => r.name === 'math-tutor');
    assert.equal(mt.stable_release, v2);
    const audit = await auditLog(d);
    const c = audit.find((e) => e.action === 'rollout.complete');
    assert.ok(c, JSON.stringify(audit.map((e) => e.action)));
    assert.equal(c.before, v1);
    assert.equal(c.after, v2);
    // The data plane serves v2 to everyone once the promotion is in the snapshot.
    const tail = load.log.filter((r) => r.t0 > eventsOf(done, 'completed')[0].at + 300);
    assert.ok(tail.length > 0);
    assert.deepEqual([...new Set(tail.map((r) => r.release))], [v2]);
  });

  test('the graded answers agree with the recorded GSM8K accuracies (6b worse than 175b)', () => {
    const rate = (rel) => {
      const xs = load.log.filter((r) => r.release === rel && r.correct !== undefined);
      return { n: xs.length, acc: xs.filter((r) => r.correct).length / xs.length };
    };
    const a = rate(v1);
    const b = rate(v2);
    assert.ok(a.n > 100 && b.n > 100, JSON.stringify({ a, b }));
    assert.ok(a.acc > 0.2 && a.acc < 0.6, `6b accuracy ${a.acc}`);
    assert.ok(b.acc > a.acc, `175b ${b.acc} vs 6b ${a.acc}`);
  });

  test('sticky users: at a given weight no user sees both releases; no user ever goes back to stable', () => {
    const timeline = weightTimeline(done);
    const end = eventsOf(done, 'completed')[0].at;
    const during = load.log.filter((r) => r.t1 < end - 100);
    const perPhase = new Map(); // `${weight}/${user}` -> Set(release)
    let checked = 0;
    for (const r of during) {
      const w = weightDuring(timeline, r.t0, r.t1);
      if (w === undefined) continue;
      checked++;
      const k = `${w}/${r.user}`;
      if (!perPhase.has(k)) perPhase.set(k, new Set());
      perPhase.get(k).add(r.release);
    }
    assert.ok(checked > 200, `${checked} requests within a single weight`);
    const flips = [...perPhase].filter(([, s]) => s.size > 1).map(([k, s]) => `${k}: ${[...s]}`);
    const show = (u) =>
      during
        .filter((r) => r.user === u)
        .map((r) => `${r.t0 - timeline[0].at}..${r.t1 - timeline[0].at} ${r.release} ${r.id}`)
        .join('\n');
    assert.deepEqual(
      flips,
      [],
      `users who saw both releases at the same weight; timeline ${JSON.stringify(timeline.map((p) => [p.at - timeline[0].at, p.weight]))}\n` +
        flips.map((f) => `user ${f.split(/[/:]/)[1]}:\n${show(Number(f.split(/[/:]/)[1]))}`).join('\n'),
    );
    // Across weights: raising the weight only adds users to the candidate.
    const seen = new Map();
    const back = [];
    for (const r of [...during].sort((x, y) => x.t0 - y.t0)) {
      if (seen.get(r.user) === v2 && r.release === v1 && r.t0 > (seen.lastAt?.get(r.user) ?? 0)) back.push(r.user);
      if (r.release === v2) seen.set(r.user, v2);
      else if (!seen.has(r.user)) seen.set(r.user, v1);
    }
    assert.deepEqual([...new Set(back)], [], 'users sent back to stable after seeing the candidate');
    // The share of users on the candidate at 20% is about 20%.
    const at20 = [...perPhase].filter(([k]) => k.startsWith('20/'));
    const onCand = at20.filter(([, s]) => s.has(v2)).length;
    assert.ok(at20.length >= 100, `${at20.length} users at 20%`);
    assert.ok(onCand / at20.length > 0.08 && onCand / at20.length < 0.35, `${onCand}/${at20.length} users on the candidate at 20%`);
  });
});

// ============================================================================ 3. XSTest shadow

describe('3. XSTest: an over-refusing candidate is caught in shadow before any live traffic', { skip: NO_XSTEST, timeout: ms(120_000) }, () => {
  let mock;
  let gw;
  let d;
  let stable;
  let candidate;
  let load;
  let final;

  before(async () => {
    mock = await startFastMock([
      { name: 'xstest-gpt4', replay: { xstest: path.join(XSTEST, 'completions_gpt4.csv') } },
      { name: 'xstest-llama2orig', replay: { xstest: path.join(XSTEST, 'completions_llama2orig.csv') } },
    ]);
    d = tempDir('sluice-ro-xstest-');
    stable = await createRelease(d, path.join(FIX, 'assistant-gpt4.yaml'));
    candidate = await createRelease(d, path.join(FIX, 'assistant-llama2orig.yaml'));
    await cliOk(d, 'route', 'promote', 'assistant', stable, '--reason', 'baseline');
    gw = await startGateway({ dataDir: d, config: gatewayConfig({ 'mock-x': mock.url }) });
  });
  after(async () => {
    await load?.stop();
    await gw?.stop();
    await mock?.stop();
  });

  test('shadow step: the refusal gate rolls the candidate back', async () => {
    const safe = parseCSV(readFileSync(path.join(XSTEST, 'prompts.csv'), 'utf8')).filter((r) => !r.type.startsWith('contrast_'));
    assert.ok(safe.length >= 200, `${safe.length} safe prompts`);
    await startRollout(d, 'assistant', candidate, specFile('spec-xstest-shadow.yaml'));
    await waitStatus(gw, 'assistant', (s) => s.status === 'running' && s.shadow_share === 1);
    load = traffic(gw, {
      concurrency: 6,
      make: (i) => ({
        body: { model: 'assistant', stream: i % 4 === 1, messages: [{ role: 'user', content: safe[(i * 7) % safe.length].prompt }] },
      }),
    });
    final = await waitStatus(gw, 'assistant', (s) => !['starting', 'running'].includes(s.status), { timeout: ms(60000), what: 'the shadow verdict' });
    const n = load.count;
    await waitFor(() => load.count >= n + 30, { timeout: ms(10000), what: '30 more requests' });
    await load.stop();
    assert.equal(final.status, 'aborted', final.text);
    const rb = eventsOf(final, 'rollback');
    assert.equal(rb.length, 1, final.text);
    assert.match(rb[0].detail.message, /guardrail failed: refusal_rate <= stable \+ 0\.05/);
    assert.equal(final.step, 0, 'still in the shadow step');
    assert.deepEqual(eventsOf(final, 'step').map((e) => e.detail.data.step), [0], 'no step after the shadow was ever entered');
    assert.equal(final.weight, 0);
    assert.equal(final.shadow_share, 0, 'mirroring stopped');
  });

  test('no client response ever came from the candidate', async () => {
    assert.ok(load?.log.length > 30);
    assert.equal(failures(load.log).length, 0, describeFailures(load.log));
    const fromCandidate = load.log.filter((r) => r.release !== stable);
    assert.equal(fromCandidate.length, 0, `responses from ${[...new Set(fromCandidate.map((r) => r.release))]}`);
    assert.equal(final.live.candidate.requests, 0, 'no live candidate evidence');
    // The request log agrees: every request on the route was served by stable.
    await sleep(ms(300));
    const lines = gw.requestLog().filter((l) => l.route === 'assistant');
    assert.ok(lines.length >= load.log.length * 0.9, `${lines.length} request-log lines for ${load.log.length} requests`);
    // Requests answered after the rollout ended (the aborted run is dropped from the snapshot
    // a second after the rollback) carry no rollout arm: stable either way, never the candidate.
    const arms = [...new Set(lines.map((l) => `${l.arm ?? 'no rollout'}/${l.release}`))];
    assert.ok(arms.includes(`stable/${stable}`), JSON.stringify(arms));
    assert.ok(arms.every((a) => a === `stable/${stable}` || a === `no rollout/${stable}`), JSON.stringify(arms));
  });

  test('the status shows the shadow refusal delta and the refusal rates behind the decision', () => {
    const sh = final.shadow;
    assert.ok(sh.pairs >= 30, `${sh.pairs} shadow pairs`);
    assert.ok(sh.candidate.refusal_n >= 30 && sh.stable.refusal_n >= 30, JSON.stringify(sh));
    assert.ok(sh.candidate.refusal_rate > sh.stable.refusal_rate + 0.2, `refusals: candidate ${sh.candidate.refusal_rate}, stable ${sh.stable.refusal_rate}`);
    assert.ok(sh.stable.refusal_rate < 0.2, `gpt4 refuses ${sh.stable.refusal_rate} of safe prompts`);
    assert.ok(sh.refusal_delta > 0.2, `refusal delta ${sh.refusal_delta}`);
    assert.ok(sh.agreement < 0.9, `agreement ${sh.agreement}`);
    assert.ok(sh.disagreements.length > 0, 'disagreeing pairs are kept for review');
    const g = final.gates.find((x) => x.check.startsWith('refusal_rate'));
    assert.equal(g.verdict, 'fail');
    assert.ok(g.lo > g.threshold, JSON.stringify(g));
    assert.match(final.text, /refusal delta \d/);
    assert.match(final.text, /refusals \d/);
  });
});

// ============================================================================ 4. restart

describe('4. a restart in the middle of a canary resumes at the same step with the same evidence', { timeout: ms(120_000) }, () => {
  let mockA;
  let mockB;
  let d;
  let config;
  let g1;
  let g2;
  let stable;
  let candidate;
  let before1;
  let load;

  before(async () => {
    [mockA, mockB] = await Promise.all([startFastMock(), startFastMock()]);
    d = tempDir('sluice-ro-restart-');
    stable = await createRelease(d, path.join(FIX, 'chat-stable.yaml'));
    candidate = await createRelease(d, path.join(FIX, 'chat-candidate.yaml'));
    await cliOk(d, 'route', 'promote', 'canary-chat', stable, '--reason', 'baseline');
    await optOutOfApproval(d, 'canary-chat');
    config = gatewayConfig({ 'mock-a': mockA.url, 'mock-b': mockB.url });
    g1 = await startGateway({ dataDir: d, config });
  });
  after(async () => {
    await load?.stop();
    await g1?.stop();
    await g2?.stop();
    await Promise.all([mockA?.stop(), mockB?.stop()]);
  });

  const make = (i) => ({ body: { model: 'canary-chat', messages: [{ role: 'user', content: `q${i}` }] } });

  test('canary at 30% with some evidence, then SIGTERM', async () => {
    await startRollout(d, 'canary-chat', candidate, specFile('spec-restart.yaml'));
    await waitStatus(g1, 'canary-chat', (s) => s.status === 'running' && s.weight === 30);
    load = traffic(g1, { concurrency: 4, make });
    await waitFor(async () => (await status(g1, 'canary-chat')).live.candidate.requests >= 30, {
      timeout: ms(20000),
      what: '30 candidate requests',
    });
    const log1 = await load.stop();
    load = undefined;
    assert.equal(failures(log1).length, 0, describeFailures(log1));
    await sleep(ms(200)); // the last samples reach the controller (20 ms ticks)
    before1 = await status(g1, 'canary-chat');
    assert.equal(before1.status, 'running', before1.text);
    assert.equal(before1.step, 1);
    assert.ok(before1.live.candidate.requests < 120, 'fewer candidate requests than the gate needs: the step cannot pass yet');
    assert.equal(before1.gates[0].verdict, 'collecting');
    const { code, signal } = await g1.proc.stop(ms(5000)); // SIGTERM: the controller saves its state
    assert.equal(signal, null);
    assert.equal(code, 0, g1.proc.stderr);
    g1 = undefined;
  });

  test('a new gateway on the same data dir: same step, same weight, same evidence', async () => {
    assert.ok(before1, 'needs the previous test');
    g2 = await startGateway({ dataDir: d, config });
    const after1 = await status(g2, 'canary-chat');
    assert.equal(after1.id, before1.id);
    assert.equal(after1.status, 'running', after1.text);
    assert.equal(after1.step, before1.step, 'same step');
    assert.equal(after1.weight, 30, 'same weight');
    assert.ok(after1.live.candidate.requests >= before1.live.candidate.requests, 'candidate evidence kept');
    assert.ok(after1.live.stable.requests >= before1.live.stable.requests, 'stable evidence kept');
    assert.equal(after1.live.candidate.requests, before1.live.candidate.requests, 'no traffic in between: exactly the same evidence');
    assert.equal(after1.live.stable.requests, before1.live.stable.requests);
    assert.equal(after1.live.candidate.latency_p50_ms, before1.live.candidate.latency_p50_ms, 'latency histogram kept');
    assert.match(g2.proc.stderr, /resumed at step 2 \(running, candidate 30%/);
  });

  test('traffic on the new gateway: both releases answer and the rollout completes', async () => {
    assert.ok(g2, 'needs the previous test');
    load = traffic(g2, { concurrency: 6, make });
    const done = await waitStatus(g2, 'canary-chat', (s) => s.status === 'completed' || s.status === 'aborted', {
      timeout: ms(60000),
      what: 'completion after the restart',
    });
    const log2 = await load.stop();
    load = undefined;
    assert.equal(done.status, 'completed', done.text);
    assert.equal(failures(log2).length, 0, describeFailures(log2));
    assert.ok(log2.some((r) => r.release === candidate) && log2.some((r) => r.release === stable), 'both served after the restart');
    assert.ok(done.live.candidate.requests >= 120, JSON.stringify(done.live.candidate));
    assert.deepEqual(eventsOf(done, 'step').map((e) => e.detail.data.step), [0, 1, 2, 3, 4]);
    assert.equal(await stableOf(d, 'canary-chat'), candidate);
  });
});

// ============================================================================ 5. controls

describe('5. controls: eval gate, roles, approval, pause/resume, shadow drops, feedback', { timeout: ms(120_000) }, () => {
  let mockA;
  let mockB;
  let gw;
  let d;
  let s0;
  let c1;
  let c2;
  let c3;
  const KEY = `sk-it-${randomBytes(8).toString('hex')}`;
  const tok = { viewer: `sk-view-${randomBytes(8).toString('hex')}`, operator: `sk-ops-${randomBytes(8).toString('hex')}` };
  const as = (role) => ({ token: tok[role] });

  before(async () => {
    [mockA, mockB] = await Promise.all([startFastMock(), startFastMock()]);
    d = tempDir('sluice-ro-controls-');
    s0 = await createRelease(d, path.join(FIX, 'chat-stable.yaml'));
    c1 = await createRelease(d, path.join(FIX, 'chat-candidate.yaml'));
    c2 = await createRelease(d, path.join(FIX, 'chat-candidate-2.yaml'));
    c3 = await createRelease(d, path.join(FIX, 'chat-candidate-3.yaml'));
    await cliOk(d, 'route', 'promote', 'canary-chat', s0, '--reason', 'baseline');
    gw = await startGateway({
      dataDir: d,
      config: gatewayConfig(
        { 'mock-a': mockA.url, 'mock-b': mockB.url },
        {
          api_keys: [{ tenant: 'it', key_sha256: sha256(KEY) }],
          admin: {
            tokens: [
              { name: 'ro', role: 'viewer', token_sha256: sha256(tok.viewer) },
              { name: 'ops', role: 'operator', token_sha256: sha256(tok.operator) },
            ],
          },
        },
      ),
    });
    gw.token = tok.operator;
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([mockA?.stop(), mockB?.stop()]);
  });

  const chatOnce = (extra = {}) =>
    postJSON(`${gw.url}/v1/chat/completions`, { model: 'canary-chat', messages: [{ role: 'user', content: 'hi' }], ...extra }, {
      headers: { authorization: `Bearer ${KEY}` },
    });

  test('a start without a passing eval run is refused unless overridden with a reason (audited)', async () => {
    const plain = await cli(d, 'rollout', 'start', 'canary-chat', '--to', c1);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /has no passing eval run/);
    const noReason = await cli(d, 'rollout', 'start', 'canary-chat', '--to', c1, '--override');
    assert.notEqual(noReason.code, 0);
    assert.match(noReason.stderr, /--override needs --reason/);
    const a1 = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/start', { ...as('operator'), body: { release: c1 } });
    assert.equal(a1.status, 409, a1.text);
    assertOpenAIError(assert, a1.json, { code: 'rollout_refused' });
    assert.match(a1.json.error.message, /no passing eval run/);
    const a2 = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/start', { ...as('operator'), body: { release: c1, override: true } });
    assert.equal(a2.status, 409, a2.text);
    const none = await admin(gw, 'GET', '/admin/v1/rollouts/canary-chat', as('viewer'));
    assert.equal(none.status, 404, 'nothing was started');
    assertOpenAIError(assert, none.json, { code: 'rollout_not_found' });
    assert.ok(!(await auditLog(d)).some((e) => e.action === 'rollout.override_eval'), 'refused starts are not overrides');

    const spec = readFileSync(path.join(FIX, 'spec-approval.yaml'), 'utf8');
    const ok = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/start', {
      ...as('operator'),
      body: { release: c1, spec, override: true, reason: 'eval suite is down, ship behind approval' },
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.candidate, c1);
    const second = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/start', {
      ...as('operator'),
      body: { release: c2, override: true, reason: 'a second one' },
    });
    assert.equal(second.status, 409, `one rollout per route: ${second.text}`);
    const itself = await cli(d, 'rollout', 'start', 'canary-chat', '--to', s0, '--override', '--reason', 'x');
    assert.notEqual(itself.code, 0, 'the stable release cannot be its own candidate');
    const overrides = (await auditLog(d)).filter((e) => e.action === 'rollout.override_eval');
    assert.deepEqual(
      overrides.map((e) => e.after),
      [c1],
      'exactly one rollout.override_eval: refused starts (second rollout, stable as candidate) override nothing',
    );
    const o = overrides[0];
    assert.equal(o.actor, 'token:ops');
    assert.equal(o.target, 'canary-chat');
    assert.equal(o.after, c1);
    assert.equal(o.reason, 'eval suite is down, ship behind approval');
  });

  test('a viewer reads the status; every rollout action is 403 for it, 401 without a token', async () => {
    const st = await admin(gw, 'GET', '/admin/v1/rollouts/canary-chat', as('viewer'));
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.candidate, c1);
    const list = await admin(gw, 'GET', '/admin/v1/rollouts', as('viewer'));
    assert.equal(list.status, 200);
    assert.ok(list.json.data.some((r) => r.id === st.json.id));
    for (const verb of ['pause', 'resume', 'abort', 'approve', 'promote', 'start']) {
      const body = verb === 'start' ? { release: c2, override: true, reason: 'x' } : { reason: 'x' };
      const r = await admin(gw, 'POST', `/admin/v1/rollouts/canary-chat/${verb}`, { ...as('viewer'), body });
      assert.equal(r.status, 403, `${verb}: ${r.status} ${r.text}`);
      assertOpenAIError(assert, r.json, { code: 'insufficient_role', type: 'permission_error' });
      const anon = await admin(gw, 'POST', `/admin/v1/rollouts/canary-chat/${verb}`, { token: null, body });
      assert.equal(anon.status, 401, `${verb} without a token: ${anon.status}`);
    }
    const rb = await admin(gw, 'POST', '/admin/v1/routes/canary-chat/rollback', { ...as('viewer'), body: {} });
    assert.equal(rb.status, 403);
    const after1 = await status(gw, 'canary-chat', tok.viewer);
    assert.notEqual(after1.status, 'aborted', 'nothing changed');
    assert.equal(eventsOf(after1, 'command').length, 0);
  });

  test('approval: require_approval_above inserts an approval step that waits for a named human', async () => {
    const waiting = await waitStatus(gw, 'canary-chat', (s) => s.status === 'awaiting_approval', { what: 'the approval step' });
    assert.deepEqual(waiting.steps, ['setWeight 10', 'pause 1s', 'approval', 'setWeight 100']);
    assert.equal(waiting.step, 2);
    assert.equal(waiting.weight, 10);
    await sleep(ms(1500));
    const still = await status(gw, 'canary-chat');
    assert.equal(still.status, 'awaiting_approval', 'it does not move on by itself');
    assert.equal(still.weight, 10);
    // Issue 17: promote cannot skip the sign-off, through the admin API or the CLI on the store.
    const pr = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/promote', { ...as('operator'), body: {} });
    assert.equal(pr.status, 409, pr.text);
    assertOpenAIError(assert, pr.json, { code: 'rollout_refused' });
    assert.match(pr.json.error.message, /waiting for approval.*approve/);
    const prCli = await cli(d, 'rollout', 'promote', 'canary-chat');
    assert.notEqual(prCli.code, 0, prCli.stdout);
    assert.match(prCli.stderr + prCli.stdout, /waiting for approval/);
    await sleep(ms(300));
    const held = await status(gw, 'canary-chat');
    assert.equal(held.status, 'awaiting_approval', held.text);
    assert.equal(held.weight, 10);
    const denied = (await auditLog(d)).filter((e) => e.action === 'rollout.promote');
    assert.ok(denied.length >= 2 && denied.every((e) => e.outcome === 'denied'), JSON.stringify(denied));
    const noReason = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/approve', { ...as('operator'), body: {} });
    assert.equal(noReason.status, 409, noReason.text);
    assert.match(noReason.json.error.message, /approve needs --reason/);
    // Through the CLI against the admin API, as an operator.
    const r = await runSluice(['rollout', 'approve', 'canary-chat', '--reason', 'looked at the numbers', '--admin', gw.adminUrl, '--token', tok.operator]);
    assert.equal(r.code, 0, r.stderr);
    const done = await waitStatus(gw, 'canary-chat', (s) => s.status === 'completed', { what: 'completion after approval' });
    assert.ok(eventsOf(done, 'command').some((e) => /approved by token:ops \(looked at the numbers\)/.test(e.detail.message)), done.text);
    assert.equal(await stableOf(d, 'canary-chat'), c1);
    await waitFor(async () => (await chatOnce()).headers.get('x-sluice-release') === c1, { timeout: ms(3000), what: 'c1 served' });
  });

  test('a route without a policy needs sign-off before 100%; opting out is explicit and audited', async () => {
    const policyless = await cli(d, 'route', 'policy', 'canary-chat', '--no-approval');
    assert.notEqual(policyless.code, 0, 'opting out needs a reason');
    // The default spec of a route with no policy of its own waits for a person before 100%.
    const st = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/start', {
      ...as('operator'),
      body: { release: c2, override: true, reason: 'default policy' },
    });
    assert.equal(st.status, 200, st.text);
    assert.ok(st.json.steps.includes('approval'), JSON.stringify(st.json.steps));
    assert.ok(st.json.steps.indexOf('approval') < st.json.steps.indexOf('setWeight 100'), JSON.stringify(st.json.steps));
    const ab = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/abort', { ...as('operator'), body: { reason: 'next test' } });
    assert.equal(ab.status, 200, ab.text);
    await optOutOfApproval(d, 'canary-chat', 'staging route: unattended promotion is fine here');
    const audit = (await auditLog(d)).find((e) => e.action === 'route.policy');
    assert.ok(audit, 'the opt-out is audited');
    assert.match(audit.reason, /staging route/);
    assert.match(audit.after, /require_approval_above=101/);
  });

  test('pause holds the step; resume gives it a fresh window', async () => {
    const spec = readFileSync(path.join(FIX, 'spec-pause.yaml'), 'utf8');
    const st = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/start', {
      ...as('operator'),
      body: { release: c2, spec, override: true, reason: 'pause test' },
    });
    assert.equal(st.status, 200, st.text);
    const p = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/pause', { ...as('operator'), body: { reason: 'hold on' } });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.status, 'paused', 'applied at once through the admin API');
    await sleep(2500); // longer than the 2 s window
    const held = await status(gw, 'canary-chat');
    assert.equal(held.status, 'paused', held.text);
    assert.equal(held.step, 1);
    assert.equal(held.weight, 10, 'the weight stays while paused');
    assert.match(held.reason, /paused by token:ops \(hold on\)/);
    const r = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/resume', { ...as('operator'), body: { reason: 'go' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'running');
    const done = await waitStatus(gw, 'canary-chat', (s) => s.status === 'completed', { what: 'completion after resume' });
    const resumed = eventsOf(done, 'command').find((e) => /resumed by/.test(e.detail.message));
    const completed = eventsOf(done, 'completed')[0];
    assert.ok(completed.at - resumed.at >= 1950, `completed ${completed.at - resumed.at} ms after resume: the window restarts at resume`);
    assert.equal(await stableOf(d, 'canary-chat'), c2);
  });

  test('shadow: a slow candidate never slows users; a full shadow queue drops and counts', async () => {
    await mockB.setFaults({ slow_first_byte_ms: 400 });
    try {
      const spec = readFileSync(path.join(FIX, 'spec-shadow-drop.yaml'), 'utf8');
      const st = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/start', {
        ...as('operator'),
        body: { release: c3, spec, override: true, reason: 'shadow test' },
      });
      assert.equal(st.status, 200, st.text);
      await waitStatus(gw, 'canary-chat', (s) => s.status === 'running' && s.shadow_share === 1);
      const load = traffic(gw, {
        concurrency: 8,
        apiKey: KEY,
        make: (i) => ({ body: { model: 'canary-chat', messages: [{ role: 'user', content: `m${i}` }] } }),
      });
      await waitFor(async () => {
        const s = await status(gw, 'canary-chat');
        return s.shadow_sent >= 2 && s.shadow_dropped >= 10;
      }, { timeout: ms(15000), what: 'shadow requests sent and dropped' });
      const log = await load.stop();
      assert.equal(failures(log).length, 0, describeFailures(log));
      assert.deepEqual([...new Set(log.map((r) => r.release))], [c2], 'users only see the stable answer');
      const lat = log.map((r) => r.t1 - r.t0).sort((a, b) => a - b);
      assert.ok(lat[Math.floor(lat.length / 2)] < 350, `median latency ${lat[Math.floor(lat.length / 2)]} ms (the candidate takes 400 ms)`);
      const s = await status(gw, 'canary-chat');
      assert.equal(typeof s.shadow_dropped, 'number');
      assert.ok(s.shadow_dropped > 0 && s.shadow_sent > 0, `sent ${s.shadow_sent}, dropped ${s.shadow_dropped}`);
      const m = await waitFor(async () => {
        const x = await gw.metrics();
        const v = x.value('sluice_rollout_shadow_dropped_total', { route: 'canary-chat' });
        return v > 0 ? x : false;
      }, { timeout: ms(3000), what: 'sluice_rollout_shadow_dropped_total > 0' });
      assert.equal(m.types.sluice_rollout_shadow_dropped_total, 'counter');
    } finally {
      await mockB.clearFaults();
    }
  });

  // Issue 9: a broken copy that mirrored tool-calling requests passed the whole suite.
  test('mirror_tools: false (the default): a request with tools is never mirrored to the candidate', async () => {
    const st0 = await status(gw, 'canary-chat');
    assert.equal(st0.shadow_share, 1, 'the shadow rollout of the previous test still mirrors everything');
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }];
    const post = (extra) =>
      requestJSON('POST', `${gw.url}/v1/chat/completions`, {
        body: { model: 'canary-chat', messages: [{ role: 'user', content: 'use the tool' }], ...extra },
        headers: { authorization: `Bearer ${KEY}` },
      });
    const bBefore = (await mockB.stats()).requests;
    for (let i = 0; i < 5; i++) assert.equal((await post({ tools })).status, 200);
    await sleep(ms(300));
    const st1 = await status(gw, 'canary-chat');
    assert.equal(st1.shadow_sent + st1.shadow_dropped, st0.shadow_sent + st0.shadow_dropped, 'no mirror was even considered');
    assert.equal((await mockB.stats()).requests, bBefore, 'the candidate upstream received none of them');
    // The same requests without tools are mirrored (the check above could fail).
    for (let i = 0; i < 3; i++) {
      assert.equal((await post({})).status, 200);
      await sleep(ms(100));
    }
    await waitFor(async () => (await mockB.stats()).requests > bBefore, { what: 'a mirrored request at the candidate' });
  });

  test('`sluice rollback ROUTE` while a rollout runs aborts it', async () => {
    const r = await cli(d, 'rollback', 'canary-chat', '--reason', 'enough');
    assert.equal(r.code, 0, r.stderr);
    const st = await waitStatus(gw, 'canary-chat', (s) => s.status === 'aborted', { timeout: ms(3000), what: 'abort' });
    assert.equal(st.weight, 0);
    assert.equal(st.shadow_share, 0);
    assert.match(st.reason, /enough/);
    assert.equal(await stableOf(d, 'canary-chat'), c2, 'the stable release is unchanged');
  });

  test('feedback: malformed bodies get 400 in the OpenAI error shape', async () => {
    const h = { authorization: `Bearer ${KEY}` };
    const fb = (body) => requestJSON('POST', `${gw.url}/v1/feedback`, { body, headers: h });
    for (const [body, param] of [
      ['not json', null],
      ['[1,2]', null],
      [{ score: 1 }, 'request_id'],
      [{ request_id: '', score: 1 }, 'request_id'],
      [{ request_id: 42, score: 1 }, 'request_id'],
      [{ request_id: 'req_x' }, 'score'],
      [{ request_id: 'req_x', score: 'good' }, 'score'],
      [{ request_id: 'req_x', score: null }, 'score'],
    ]) {
      const r = await fb(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assertOpenAIError(assert, r.json, { code: 'invalid_feedback', type: 'invalid_request_error' });
      if (param) assert.equal(r.json.error.param, param, JSON.stringify(r.json));
      assert.ok(r.headers.get('x-request-id'));
    }
    const noKey = await requestJSON('POST', `${gw.url}/v1/feedback`, { body: { request_id: 'req_x', score: 1 } });
    assert.equal(noKey.status, 401, 'data-plane key auth applies to feedback');
    assertOpenAIError(assert, noKey.json);
  });

  test('feedback for an unknown request id is accepted and counted as unmatched', async () => {
    const h = { authorization: `Bearer ${KEY}` };
    const read = async () => (await gw.metrics()).value('sluice_feedback_unmatched_total') ?? 0;
    const before1 = await read();
    const r = await postJSON(`${gw.url}/v1/feedback`, { request_id: `req_nope_${randomBytes(4).toString('hex')}`, score: true }, { headers: h });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'accepted');
    assert.equal(r.json.score, 1);
    await waitFor(async () => (await read()) === before1 + 1, { timeout: ms(4000), what: 'sluice_feedback_unmatched_total + 1' });
    const m = await gw.metrics();
    assert.equal(m.types.sluice_feedback_unmatched_total, 'counter');
  });
});

// ============================================================================ 6. more edges

describe('6. edges: a candidate rejected by its upstream, inconclusive gates, blue-green', { timeout: ms(120_000) }, () => {
  let mockA;
  let mockB;
  let hook;
  const hookBodies = [];

  before(async () => {
    [mockA, mockB] = await Promise.all([startFastMock(), startFastMock()]);
    hook = await startFakeUpstream((req, res, body) => {
      hookBodies.push(JSON.parse(body));
      res.writeHead(204);
      res.end();
    });
  });
  after(async () => {
    await Promise.all([mockA?.stop(), mockB?.stop(), hook?.close()]);
  });

  // A fresh data dir with chat-stable promoted and chat-candidate created; `b` is mock-b's URL.
  async function setup(b = mockB.url) {
    const d = tempDir('sluice-ro-edge-');
    const stable = await createRelease(d, path.join(FIX, 'chat-stable.yaml'));
    const candidate = await createRelease(d, path.join(FIX, 'chat-candidate.yaml'));
    await cliOk(d, 'route', 'promote', 'canary-chat', stable, '--reason', 'baseline');
    await optOutOfApproval(d, 'canary-chat');
    const gw = await startGateway({ dataDir: d, config: gatewayConfig({ 'mock-a': mockA.url, 'mock-b': b }) });
    return { d, stable, candidate, gw };
  }
  const make = (i) => ({ body: { model: 'canary-chat', messages: [{ role: 'user', content: `e${i}` }] } });

  test(
    'a candidate whose upstream rejects every request (404 model_not_found): users get stable, the guardrail rolls back',
    async () => {
      // The candidate release pins a model id its upstream does not have.
      const rejecting = await startFakeUpstream((req, res) => {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: "The model 'chat-b' does not exist", type: 'invalid_request_error', param: null, code: 'model_not_found' } }));
      });
      const { d, stable, candidate, gw } = await setup(rejecting.url);
      let load;
      try {
        await startRollout(d, 'canary-chat', candidate, specFile('spec-canary-guardrail.yaml'));
        await waitStatus(gw, 'canary-chat', (s) => s.status === 'running' && s.weight === 30);
        load = traffic(gw, { concurrency: 6, make });
        // ~180 candidate requests: far more than the guardrail needs to see a 100% error rate.
        const st = await waitFor(
          async () => {
            const x = await status(gw, 'canary-chat');
            return x.status !== 'running' || load.count >= 600 ? x : false;
          },
          { timeout: ms(30000), what: 'a verdict or 600 requests' },
        );
        const log = await load.stop();
        load = undefined;
        const rejected = log.filter((r) => r.status === 404).length;
        assert.equal(
          rejected,
          0,
          `${rejected} of ${log.length} users got the candidate upstream's 404 (release ${candidate}); ` +
            `the rollout is '${st.status}' with candidate evidence ${JSON.stringify(st.live.candidate)}`,
        );
        const final = await waitStatus(gw, 'canary-chat', (x) => x.status !== 'running', { timeout: ms(5000), what: 'rollback' });
        assert.equal(final.status, 'aborted', final.text);
        assert.ok(log.every((r) => r.release === stable || r.t0 < eventsOf(final, 'rollback')[0].at + ms(50)));
      } finally {
        await load?.stop();
        await gw.stop();
        await rejecting.close();
      }
    },
  );

  for (const [mode, expect] of [
    ['pause', { status: 'paused', event: 'paused', weight: 10 }],
    ['rollback', { status: 'aborted', event: 'rollback', weight: 0 }],
    ['promote', { status: 'completed', event: 'completed', weight: 100 }],
  ]) {
    test(`inconclusive gate after max_duration with on_inconclusive: ${mode}`, async () => {
      const { d, candidate, gw } = await setup();
      try {
        const hookFrom = hookBodies.length;
        const id = await startRollout(d, 'canary-chat', candidate, specFile('spec-inconclusive.yaml', { ON_INCONCLUSIVE: mode, WEBHOOK: `${hook.url}/h` }));
        const st = await waitStatus(gw, 'canary-chat', (s) => !['starting', 'running'].includes(s.status), {
          timeout: ms(8000),
          what: `on_inconclusive ${mode}`,
        });
        assert.equal(st.status, expect.status, st.text);
        assert.equal(st.weight, expect.weight);
        assert.equal(st.gates[0].verdict, 'inconclusive', JSON.stringify(st.gates));
        const ev = eventsOf(st, expect.event);
        assert.equal(ev.length, 1, st.text);
        if (mode !== 'promote') assert.match(ev[0].detail.message, /inconclusive after 1\.5 s/);
        // The step's window (500 ms) passed first; the gate's max_duration (1.5 s) decided.
        const started = eventsOf(st, 'step').find((e) => e.detail.data.step === 1).at;
        assert.ok(ev[0].at - started >= 1450, `decided ${ev[0].at - started} ms into the step`);
        if (mode === 'promote') assert.equal(await stableOf(d, 'canary-chat'), candidate);
        await waitFor(() => hookBodies.slice(hookFrom).some((b) => b.rollout === id && b.event === expect.event), {
          timeout: ms(5000),
          what: `webhook '${expect.event}'`,
        });
      } finally {
        await gw.stop();
      }
    });
  }

  test('an abort while candidate streams are in flight: they finish, new requests go to stable', async () => {
    const slow = await startFastMock([], { tpot_ms: 25, output_tokens: [40, 40] });
    const { d, stable, candidate, gw } = await setup(slow.url);
    try {
      const spec = specFile('spec-canary-guardrail.yaml');
      writeFileSync(spec, readFileSync(spec, 'utf8').replace('setWeight: 30', 'setWeight: 100'));
      await startRollout(d, 'canary-chat', candidate, spec);
      await waitStatus(gw, 'canary-chat', (s) => s.status === 'running' && s.weight === 100);
      const client = sdk(gw);
      let firstChunks = 0;
      const streams = Array.from({ length: 6 }, async (_, i) => {
        const { data, response } = await client.chat.completions
          .create({ model: 'canary-chat', stream: true, messages: [{ role: 'user', content: `long ${i}` }] })
          .withResponse();
        let text = '';
        let finish = null;
        let first = true;
        for await (const c of data) {
          if (first && c.choices?.[0]?.delta?.content) {
            first = false;
            firstChunks++;
          }
          text += c.choices?.[0]?.delta?.content ?? '';
          finish = c.choices?.[0]?.finish_reason ?? finish;
        }
        return { release: response.headers.get('x-sluice-release'), text, finish };
      });
      await waitFor(() => firstChunks === 6, { timeout: ms(5000), what: 'six candidate streams under way' });
      const abort = await admin(gw, 'POST', '/admin/v1/rollouts/canary-chat/abort', { body: { reason: 'stop' } });
      assert.equal(abort.status, 200, abort.text);
      assert.equal(abort.json.status, 'aborted');
      const after = await sdk(gw).chat.completions.create({ model: 'canary-chat', messages: [{ role: 'user', content: 'after' }] }).withResponse();
      assert.equal(after.response.headers.get('x-sluice-release'), stable, 'a request after the abort goes to stable');
      const done = await Promise.all(streams);
      for (const r of done) {
        assert.equal(r.release, candidate);
        assert.equal(r.finish, 'stop', 'the stream in flight finished normally');
        assert.ok(r.text.split(' ').length >= 30, `a whole answer: ${r.text.length} chars`);
      }
    } finally {
      await gw.stop();
      await slow.stop();
    }
  });

  test(
    'a manual promote while a rollout runs: the rollout must not later overwrite it',
    async () => {
      const { d, stable, candidate, gw } = await setup();
      try {
        const other = await createRelease(d, path.join(FIX, 'chat-candidate-2.yaml'));
        await startRollout(d, 'canary-chat', candidate, specFile('spec-pause.yaml'));
        await waitStatus(gw, 'canary-chat', (s) => s.status === 'running' && s.weight === 10);
        // An operator ships another release by hand in the middle of the rollout.
        const p = await cli(d, 'route', 'promote', 'canary-chat', other, '--reason', 'hotfix');
        const st = await waitStatus(gw, 'canary-chat', (s) => s.status !== 'running', { timeout: ms(8000), what: 'the rollout to end' }).catch(
          async () => status(gw, 'canary-chat'),
        );
        const now = await stableOf(d, 'canary-chat');
        assert.ok(
          p.code !== 0 || now === other,
          `the manual promote of ${other} (exit ${p.code}) was overwritten: the route's stable release is now ${now} ` +
            `(${now === candidate ? 'the rollout candidate' : now === stable ? 'the old stable' : '?'}), rollout '${st.status}'`,
        );
        const x = await sdk(gw).chat.completions.create(make(0).body).withResponse();
        assert.equal(x.response.headers.get('x-sluice-release'), now, 'the data plane serves what the store says');
      } finally {
        await gw.stop();
      }
    },
  );

  test('blue-green: warm-up, then all traffic at once, then promoted after the analysis window', async () => {
    const { d, stable, candidate, gw } = await setup();
    let load;
    try {
      const mockBBefore = (await mockB.stats()).requests;
      await startRollout(d, 'canary-chat', candidate, specFile('spec-blue-green.yaml'));
      const st = await waitStatus(gw, 'canary-chat', (s) => s.weight === 100 || s.status === 'aborted' || s.status === 'completed', {
        timeout: ms(8000),
        what: 'the switch to the candidate',
      });
      assert.ok(eventsOf(st, 'warm').length === 1, `warm-up passed:\n${st.text}`);
      assert.ok((await mockB.stats()).requests > mockBBefore, 'the smoke request reached the candidate upstream');
      load = traffic(gw, { concurrency: 4, make });
      const done = await waitStatus(gw, 'canary-chat', (s) => s.status === 'completed' || s.status === 'aborted', { timeout: ms(20000), what: 'completion' });
      const log = await load.stop();
      load = undefined;
      assert.equal(done.status, 'completed', done.text);
      assert.equal(failures(log).length, 0, describeFailures(log));
      assert.ok(log.filter((r) => r.release === stable).length === 0, 'no request went to the old release after the switch');
      assert.equal(await stableOf(d, 'canary-chat'), candidate);
    } finally {
      await load?.stop();
      await gw.stop();
    }
  });

  test('blue-green: a candidate whose upstream is down fails its warm-up and never gets traffic', async () => {
    const { d, stable, candidate, gw } = await setup(`http://127.0.0.1:${await closedPort()}`);
    try {
      await startRollout(d, 'canary-chat', candidate, specFile('spec-blue-green.yaml'));
      const st = await waitStatus(gw, 'canary-chat', (s) => s.status === 'aborted' || s.status === 'completed', { timeout: ms(15000), what: 'warm-up verdict' });
      assert.equal(st.status, 'aborted', st.text);
      assert.match(st.reason, /warm-up failed/);
      assert.equal(st.weight, 0);
      const log = await Promise.all(Array.from({ length: 10 }, (_, i) => sdk(gw).chat.completions.create(make(i).body).withResponse()));
      assert.deepEqual([...new Set(log.map((r) => r.response.headers.get('x-sluice-release')))], [stable]);
      assert.equal(await stableOf(d, 'canary-chat'), stable);
    } finally {
      await gw.stop();
    }
  });
});
