// upstreams.test.mjs: upstreams that fail well (issue 9). Several mock-llm processes and
// scripted upstreams behind one gateway, faults switched at run time: pools and balancing,
// circuit breakers with half-open probes, Retry-After, the retry budget, the first-token
// deadline, silent upstreams left after one timeout, and streams that end without [DONE].
// For each: what the client received, what each upstream received, and how long it took.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import {
  USER_MSG,
  chat,
  chatStreamRaw,
  chunkEvent,
  completionBody,
  ms,
  sleep,
  startFakeUpstream,
  startGateway,
  startMock,
  waitFor,
} from './harness.mjs';

function fastMock(extra = {}) {
  return startMock({ config: { seed: 11, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8], ...extra } } });
}

async function adminGet(gw, p) {
  const r = await fetch(`${gw.adminUrl}${p}`, { headers: { authorization: `Bearer ${gw.adminToken()}` } });
  return { status: r.status, json: await r.json() };
}

async function upstreamState(gw, name) {
  const { json } = await adminGet(gw, '/admin/v1/upstreams');
  return json.upstreams.find((u) => u.name === name);
}

const body = (model, extra = {}) => ({ model, messages: USER_MSG, ...extra });

// Two mock-llm upstreams `a` and `b` and a gateway whose config `make(a, b)` returns.
async function twoMocks(make) {
  const [a, b] = await Promise.all([fastMock(), fastMock()]);
  const gw = await startGateway({ config: make(`${a.url}/v1`, `${b.url}/v1`) });
  return { a, b, gw };
}

describe('pools and balancing', { timeout: ms(60_000) }, () => {
  let a;
  let b;
  let gw;
  before(async () => {
    ({ a, b, gw } = await twoMocks((ua, ub) => ({
      upstreams: [
        { name: 'a', url: ua },
        { name: 'b', url: ub },
      ],
      pools: [
        { name: 'rr', upstreams: ['a', 'b'], balance: 'round_robin' },
        { name: 'sticky', upstreams: ['a', 'b'], balance: 'session', affinity_header: 'x-session-id' },
      ],
      routes: [
        { name: 'spread', upstream: 'rr', model: 'm' },
        { name: 'session', upstream: 'sticky', model: 'm' },
      ],
    })));
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('round robin spreads requests over the pool (official SDK), each answer says who served it', async () => {
    const before = [(await a.stats()).requests, (await b.stats()).requests];
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
    const served = new Map();
    for (let i = 0; i < 20; i++) {
      const { data, response } = await client.chat.completions.create({ model: 'spread', messages: USER_MSG }).withResponse();
      assert.ok(data.choices[0].message.content.length > 0);
      const who = response.headers.get('x-sluice-upstream');
      served.set(who, (served.get(who) ?? 0) + 1);
    }
    const got = [(await a.stats()).requests - before[0], (await b.stats()).requests - before[1]];
    assert.deepEqual(got, [10, 10], `requests per upstream: ${got}`);
    assert.deepEqual([...served.keys()].sort(), ['a', 'b']);
  });

  test('session affinity: one session always lands on the same upstream', async () => {
    for (const sid of ['s-1', 's-2', 's-3', 's-4']) {
      const seen = new Set();
      for (let i = 0; i < 5; i++) {
        const r = await chat(gw, body('session'), { headers: { 'x-session-id': sid } });
        assert.equal(r.status, 200, r.text);
        seen.add(r.headers.get('x-sluice-upstream'));
      }
      assert.equal(seen.size, 1, `session ${sid} went to ${[...seen]}`);
    }
  });

  test('GET /admin/v1/upstreams lists every upstream with its breaker, and the pools', async () => {
    const { status, json } = await adminGet(gw, '/admin/v1/upstreams');
    assert.equal(status, 200);
    assert.deepEqual(json.upstreams.map((u) => u.name), ['a', 'b']);
    for (const u of json.upstreams) {
      assert.equal(u.state, 'closed');
      assert.equal(u.outstanding_requests, 0);
    }
    assert.deepEqual(json.pools.map((p) => [p.name, p.balance]), [['rr', 'round_robin'], ['sticky', 'session']]);
    const m = await gw.metrics();
    assert.equal(m.value('sluice_upstream_state', { upstream: 'a', state: 'closed' }), 1);
    assert.equal(m.value('sluice_upstream_state', { upstream: 'a', state: 'open' }), 0);
    assert.deepEqual(m.bad, []);
  });
});

describe('circuit breakers: a failing upstream is left and probed back', { timeout: ms(60_000) }, () => {
  let a;
  let b;
  let gw;
  before(async () => {
    ({ a, b, gw } = await twoMocks((ua, ub) => ({
      limits: { max_attempts: 2, retry_budget: { ratio: 1, min_per_second: 100 } },
      upstreams: [
        { name: 'a', url: ua, breaker: { consecutive_failures: 3, open_ms: 800, max_open_ms: 800 } },
        { name: 'b', url: ub },
      ],
      routes: [{ name: 'primary', upstreams: ['a', 'b'], model: 'm' }],
    })));
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('the primary fails everything: clients see no error, the breaker opens, the primary stops receiving', async () => {
    await a.setFaults({ model: 'm', error_rate: 1 });
    const aBefore = (await a.stats()).requests;
    for (let i = 0; i < 10; i++) {
      const r = await chat(gw, body('primary'));
      assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.text}`);
      assert.equal(r.headers.get('x-sluice-upstream'), 'b');
    }
    const aGot = (await a.stats()).requests - aBefore;
    assert.equal(aGot, 3, `the primary got ${aGot} requests: 3 failures open the breaker, then none`);
    const st = await upstreamState(gw, 'a');
    assert.equal(st.state, 'open');
    assert.match(st.reason, /3 consecutive failures/);
    assert.ok(st.next_probe_ms > Date.now() - 100, JSON.stringify(st));
    const log = await waitFor(() => {
      const l = gw.requestLog();
      return l.length >= 10 ? l.slice(-10) : false;
    }, { what: '10 request log lines' });
    // (Two workers write the log: lines are not in request order.)
    assert.deepEqual(log.map((l) => l.attempts).sort(), [1, 1, 1, 1, 1, 1, 1, 2, 2, 2], 'retried on b until the breaker opened, then straight to b');
  });

  test('after the cool-down one probe goes through; a success closes the breaker', async () => {
    await a.clearFaults();
    await sleep(900);
    const r = await chat(gw, body('primary'));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-sluice-upstream'), 'a', 'the half-open probe');
    assert.equal((await upstreamState(gw, 'a')).state, 'closed');
    const again = await chat(gw, body('primary'));
    assert.equal(again.headers.get('x-sluice-upstream'), 'a');
  });

  test('every target open: 503 at once, naming the upstreams, with Retry-After', async () => {
    await a.setFaults({ model: 'm', error_rate: 1 });
    await b.setFaults({ model: 'm', error_rate: 1 });
    // Open both: a after 3 failures; b (default breaker) after 5 consecutive.
    for (let i = 0; i < 6; i++) await chat(gw, body('primary'));
    await waitFor(async () => (await upstreamState(gw, 'b')).state === 'open', { what: 'b open' });
    const t0 = Date.now();
    const r = await chat(gw, body('primary'));
    const took = Date.now() - t0;
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.code, 'upstreams_unavailable');
    assert.match(r.json.error.message, /a: circuit open, .*consecutive failures.*; b: circuit open/);
    assert.ok(Number(r.headers.get('retry-after')) >= 1, `Retry-After: ${r.headers.get('retry-after')}`);
    assert.ok(took < ms(500), `failed fast: ${took} ms`);
    await a.clearFaults();
    await b.clearFaults();
  });
});

describe('Retry-After, the retry budget and deadlines', { timeout: ms(90_000) }, () => {
  test('429 with Retry-After: the request goes elsewhere now and the limited upstream is left alone', async () => {
    const { a, b, gw } = await twoMocks((ua, ub) => ({
      upstreams: [
        { name: 'a', url: ua },
        { name: 'b', url: ub },
      ],
      routes: [{ name: 'r', upstreams: ['a', 'b'], model: 'm' }],
    }));
    try {
      await a.setFaults({ model: 'm', rate_limit_rate: 1, retry_after_s: 5 });
      const aBefore = (await a.stats()).requests;
      for (let i = 0; i < 8; i++) {
        const r = await chat(gw, body('r'));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('x-sluice-upstream'), 'b');
      }
      assert.equal((await a.stats()).requests - aBefore, 1, 'one 429, then a is left alone for its Retry-After');
      const st = await upstreamState(gw, 'a');
      assert.ok(st.retry_after_until_ms > Date.now(), JSON.stringify(st));
      assert.equal(st.state, 'closed', 'a 429 is not a failure');
    } finally {
      await gw.stop();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('the retry budget caps retries: with no budget a failing primary is not retried', async () => {
    const { a, b, gw } = await twoMocks((ua, ub) => ({
      limits: { max_attempts: 2, retry_budget: { ratio: 0, min_per_second: 0 } },
      upstreams: [
        { name: 'a', url: ua, breaker: false },
        { name: 'b', url: ub },
      ],
      routes: [{ name: 'r', upstreams: ['a', 'b'], model: 'm' }],
    }));
    try {
      await a.setFaults({ model: 'm', error_rate: 1 });
      const bBefore = (await b.stats()).requests;
      for (let i = 0; i < 5; i++) {
        const r = await chat(gw, body('r'));
        assert.equal(r.status, 500, `no retry allowed: the primary's error reaches the client (${r.status})`);
      }
      assert.equal((await b.stats()).requests - bBefore, 0, 'no request was retried on b');
      const m = await gw.metrics();
      assert.ok(m.value('sluice_retry_budget_refused_total') >= 5, m.text);
    } finally {
      await gw.stop();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('a slow first token moves a stream to the next target before the client sees a byte', async () => {
    const slow = await fastMock({ ttft_ms: 3000 });
    const fast = await fastMock();
    const gw = await startGateway({
      config: {
        upstreams: [
          { name: 'slow', url: `${slow.url}/v1`, timeouts: { first_token_ms: 400 } },
          { name: 'fast', url: `${fast.url}/v1` },
        ],
        routes: [{ name: 'r', upstreams: ['slow', 'fast'], model: 'm' }],
      },
    });
    try {
      const t0 = Date.now();
      const r = await chatStreamRaw(gw, body('r'));
      const took = Date.now() - t0;
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-sluice-upstream'), 'fast');
      assert.equal(r.events.at(-1), '[DONE]');
      assert.ok(took < ms(2500), `answered by the fast upstream in ${took} ms, not after the slow one's 3 s`);
      const log = await gw.waitLog((l) => l.upstream === 'fast' && l.stream);
      assert.equal(log.attempts, 2);
    } finally {
      await gw.stop();
      await Promise.all([slow.stop(), fast.stop()]);
    }
  });

  test('an upstream that holds a request silently and then drops it is not sent it again', async () => {
    let n = 0;
    const fake = await startFakeUpstream(async (req, res) => {
      n++;
      if (n === 1) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(completionBody());
        return;
      }
      await sleep(1500); // silence, then the connection is dropped
      res.socket.destroy();
    });
    const gw = await startGateway({
      config: {
        limits: { max_attempts: 3 },
        upstreams: [{ name: 'f', url: `${fake.url}/v1`, breaker: false }],
        routes: [{ name: 'r', upstream: 'f', model: 'm' }],
      },
    });
    try {
      assert.equal((await chat(gw, body('r'))).status, 200); // leaves a keep-alive connection
      const r = await chat(gw, body('r'));
      assert.equal(r.status, 502, r.text);
      await sleep(200);
      assert.equal(fake.requests.length, 2, `the dropped request was sent ${fake.requests.length - 1} times`);
    } finally {
      await gw.stop();
      await fake.close();
    }
  });
});

describe('streams that end oddly', { timeout: ms(30_000) }, () => {
  test('a stream that finishes without data: [DONE] is complete: the client gets [DONE], status 200', async () => {
    const fake = await startFakeUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${chunkEvent('Hello')}\n\n`);
      res.write(`data: ${chunkEvent(' world')}\n\n`);
      res.write(`data: ${chunkEvent(null, { finish: 'stop' })}\n\n`);
      const usage = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } };
      res.write(`data: ${JSON.stringify(usage)}\n\n`);
      res.end(); // no [DONE]
    });
    const gw = await startGateway({ upstreams: { f: `${fake.url}/v1` } });
    try {
      const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'fake-model', messages: USER_MSG, stream: true });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      assert.equal(text, 'Hello world');
      const raw = await chatStreamRaw(gw, body('fake-model'));
      assert.equal(raw.events.at(-1), '[DONE]');
      assert.ok(!raw.events.some((e) => e.includes('"error"')), 'no error event');
      const log = await gw.waitLog((l) => l.stream && l.status === 200);
      assert.equal(log.tokens_out, 2);
    } finally {
      await gw.stop();
      await fake.close();
    }
  });

  test('a stream cut before its choice finished still ends with an error event, never a fake [DONE]', async () => {
    const fake = await startFakeUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${chunkEvent('Hel')}\n\n`);
      res.end();
    });
    const gw = await startGateway({ upstreams: { f: `${fake.url}/v1` } });
    try {
      const raw = await chatStreamRaw(gw, body('fake-model'));
      assert.notEqual(raw.events.at(-1), '[DONE]');
      assert.equal(JSON.parse(raw.events.at(-1)).error.code, 'stream_cut');
    } finally {
      await gw.stop();
      await fake.close();
    }
  });
});

describe('fallback chains: another model, then a static degraded answer', { timeout: ms(60_000) }, () => {
  let primary;
  let cheap;
  let gw;
  let primaryStatus = 500;
  let cheapStatus = 200;
  before(async () => {
    primary = await startFakeUpstream((req, res) => {
      res.writeHead(primaryStatus, { 'content-type': 'application/json' });
      res.end(primaryStatus === 200 ? completionBody('big') : JSON.stringify({ error: { message: 'nope', type: 'x', param: null, code: null } }));
    });
    cheap = await startFakeUpstream((req, res, raw) => {
      res.writeHead(cheapStatus, { 'content-type': 'application/json' });
      res.end(cheapStatus === 200 ? completionBody(JSON.parse(raw).model, 'from the cheap model') : '{"error":{"message":"down"}}');
    });
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'primary', url: `${primary.url}/v1`, breaker: false },
          { name: 'cheap', url: `${cheap.url}/v1`, breaker: false },
        ],
        routes: [{ name: 'bot', upstream: 'primary', model: 'big-model' }],
        fallbacks: [
          {
            route: 'bot',
            chain: [{ upstream: 'cheap', model: 'small-model' }, { static: 'The assistant is busy; please try again in a minute.' }],
          },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([primary?.close(), cheap?.close()]);
  });

  test('the primary fails: the cheaper model answers, and the answer says so', async () => {
    const r = await chat(gw, body('bot'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-sluice-fallback'), 'cheap/small-model');
    assert.equal(r.headers.get('x-sluice-upstream'), 'cheap');
    assert.equal(r.json.choices[0].message.content, 'from the cheap model');
    assert.equal(JSON.parse(cheap.requests.at(-1).body).model, 'small-model', 'the fallback model was sent');
    const line = await gw.waitLog((l) => l.request_id === r.headers.get('x-request-id'));
    assert.equal(line.fallback, 'cheap/small-model');
    const m = await gw.metrics();
    assert.ok(m.value('sluice_fallbacks_total', { route: 'bot', served_by: 'cheap/small-model' }) >= 1, m.text);
  });

  test('everything fails: a static degraded answer, whole and streamed (official SDK)', async () => {
    cheapStatus = 503;
    try {
      const r = await chat(gw, body('bot'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-sluice-degraded'), 'static');
      assert.equal(r.json.object, 'chat.completion');
      assert.equal(r.json.choices[0].message.content, 'The assistant is busy; please try again in a minute.');
      const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
      const stream = await client.chat.completions.create({ model: 'bot', messages: USER_MSG, stream: true });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      assert.equal(text, 'The assistant is busy; please try again in a minute.');
      const line = await gw.waitLog((l) => l.request_id === r.headers.get('x-request-id'));
      assert.equal(line.degraded, 'static');
    } finally {
      cheapStatus = 200;
    }
  });

  test('a 4xx the request caused never falls back', async () => {
    primaryStatus = 400;
    try {
      const before = cheap.requests.length;
      const r = await chat(gw, body('bot'));
      assert.equal(r.status, 400);
      assert.equal(r.headers.get('x-sluice-fallback'), null);
      assert.equal(cheap.requests.length, before);
    } finally {
      primaryStatus = 500;
    }
  });
});

describe('active deep health checks and slow start', { timeout: ms(60_000) }, () => {
  let a;
  let b;
  let gw;
  before(async () => {
    ({ a, b, gw } = await twoMocks((ua, ub) => ({
      upstreams: [
        {
          name: 'a',
          url: ua,
          models: ['m'],
          health_check: { interval_ms: 150, timeout_ms: 1000, unhealthy_after: 2 },
          breaker: { slow_start_ms: 60000 },
        },
        { name: 'b', url: ub, models: ['m'] },
      ],
      pools: [{ name: 'p', upstreams: ['a', 'b'], balance: 'least_request' }],
      routes: [{ name: 'bot', upstream: 'p', model: 'm' }],
    })));
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('a failing model server is ejected by its checks before any user request reaches it', async () => {
    await waitFor(async () => (await upstreamState(gw, 'a')).health_check?.last_ok === true, { what: 'a first passing check' });
    const checked = (await a.stats()).requests;
    assert.ok(checked >= 1, 'the check is a real completion the model server answered');
    assert.equal((await b.stats()).requests, 0, 'b has no check configured');
    await a.setFaults({ model: 'm', error_rate: 1 });
    const st = await waitFor(async () => {
      const u = await upstreamState(gw, 'a');
      return u.state === 'open' ? u : false;
    }, { what: 'a ejected by its health checks' });
    assert.match(st.reason, /health check failed 2 time\(s\) in a row/);
    assert.equal(st.health_check.last_ok, false);
    // Users are served by b only; no request of theirs was spent finding out.
    for (let i = 0; i < 5; i++) {
      const r = await chat(gw, body('bot'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-sluice-upstream'), 'b');
    }
    const m = await gw.metrics();
    assert.ok(m.value('sluice_upstream_errors_total', { upstream: 'a', kind: 'health_check_failed' }) >= 2, m.text);
    assert.equal(m.value('sluice_upstream_health_check_ok', { upstream: 'a' }), 0);
  });

  test('a passing check readmits it at once, and slow start ramps its share', async () => {
    await a.clearFaults();
    const st = await waitFor(async () => {
      const u = await upstreamState(gw, 'a');
      return u.state === 'closed' ? u : false;
    }, { what: 'a readmitted by a passing check' });
    assert.ok(st.weight < 0.5, `just readmitted: weight ${st.weight}`);
    // With a at a tenth of its share, least_request sends b nearly everything.
    const seen = { a: 0, b: 0 };
    for (let i = 0; i < 20; i++) {
      const r = await chat(gw, body('bot'));
      assert.equal(r.status, 200, r.text);
      seen[r.headers.get('x-sluice-upstream')] += 1;
    }
    assert.ok(seen.b > seen.a, JSON.stringify(seen));
    const m = await gw.metrics();
    assert.ok(m.value('sluice_upstream_weight', { upstream: 'a' }) < 1, m.text);
  });
});

describe('mid-stream failover: continue on a target that accepts a prefill', { timeout: ms(60_000) }, () => {
  let a;
  let b;
  let gw;
  before(async () => {
    [a, b] = await Promise.all([fastMock({ output_tokens: [14, 18] }), fastMock({ output_tokens: [14, 18] })]);
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'a', url: `${a.url}/v1`, breaker: false },
          { name: 'b', url: `${b.url}/v1`, prefill: true },
        ],
        routes: [{ name: 'bot', upstreams: ['a', 'b'], model: 'm' }],
        fallbacks: [{ route: 'bot', mid_stream: 'continue' }],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('a stream cut after 3 tokens is finished by another server: one whole answer, as that model would give it', async () => {
    const question = [{ role: 'user', content: 'Name three rivers of Europe.' }];
    // What the model answers to this question when nothing fails (both mocks are the same model).
    const direct = await fetch(`${b.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: question }),
    }).then((r) => r.json());
    const expected = direct.choices[0].message.content;
    await a.setFaults({ model: 'm', cut_rate: 1, cut_after_tokens: 3 });
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'bot', messages: question, stream: true });
    let text = '';
    let finish = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, expected, 'the client got the whole answer once, no gap and no repeat');
    assert.equal(finish, 'stop');
    assert.ok((await a.stats()).requests >= 1, 'a started the answer');
    const line = await gw.waitLog((l) => l.resumed === 'continue');
    assert.equal(line.status, 200);
    assert.equal(line.upstream, 'b');
    const m = await gw.metrics();
    assert.ok(m.value('sluice_fallbacks_total', { route: 'bot', served_by: 'continue' }) >= 1, m.text);
  });
});

describe("an upstream's own load report (vLLM /metrics)", { timeout: ms(60_000) }, () => {
  let a;
  let b;
  let gw;
  before(async () => {
    // Slow streams: requests sent to a by other clients stay running there for seconds.
    const slow = { ttft_ms: 2, tpot_ms: 25, output_tokens: [120, 120] };
    [a, b] = await Promise.all([startMock({ config: { seed: 5, defaults: slow } }), startMock({ config: { seed: 5, defaults: slow } })]);
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'a', url: `${a.url}/v1`, load_metrics: { interval_ms: 100 } },
          { name: 'b', url: `${b.url}/v1`, load_metrics: { interval_ms: 100 } },
        ],
        pools: [{ name: 'p', upstreams: ['a', 'b'], balance: 'least_request' }],
        routes: [{ name: 'bot', upstream: 'p', model: 'm' }],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test("traffic the gateway never saw (other clients on a) steers least_request to b", async () => {
    const st = await waitFor(async () => {
      const u = await upstreamState(gw, 'a');
      return u.reported_load ? u : false;
    }, { what: "a's first load report" });
    assert.equal(st.reported_load.running, 0);
    // Four streams sent straight to a, read slowly: a is busy, the gateway has nothing there.
    const others = [];
    for (let i = 0; i < 4; i++) {
      const ctl = new AbortController();
      const r = await fetch(`${a.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: `other ${i}` }] }),
        signal: ctl.signal,
      });
      others.push({ ctl, r });
    }
    try {
      await waitFor(async () => (await upstreamState(gw, 'a')).reported_load?.running >= 4, { what: 'a reports 4 running' });
      const seen = { a: 0, b: 0 };
      for (let i = 0; i < 6; i++) {
        const r = await chat(gw, { model: 'bot', max_tokens: 2, messages: [{ role: 'user', content: `q${i}` }] });
        assert.equal(r.status, 200, r.text);
        seen[r.headers.get('x-sluice-upstream')] += 1;
      }
      assert.deepEqual(seen, { a: 0, b: 6 }, 'the busy server got none');
      const m = await gw.metrics();
      assert.ok(m.value('sluice_upstream_reported_requests', { upstream: 'a', state: 'running' }) >= 4, m.text);
    } finally {
      for (const o of others) o.ctl.abort();
    }
  });
});

describe('several API keys of one provider: one breaker each', { timeout: ms(60_000) }, () => {
  let fake;
  let gw;
  const badKey = 'Bearer sk-key-one';
  let failBadKey = false;
  before(async () => {
    // A provider that answers per key: the first key's quota is gone (500 once switched on).
    fake = await startFakeUpstream((req, res) => {
      if (failBadKey && req.headers.authorization === badKey) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"key one is broken"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completionBody('m', `served with ${req.headers.authorization}`));
    });
    gw = await startGateway({
      env: { KEY_ONE: 'sk-key-one', KEY_TWO: 'sk-key-two' },
      config: {
        upstreams: [{ name: 'openai', url: `${fake.url}/v1`, api_key_envs: ['KEY_ONE', 'KEY_TWO'], breaker: { consecutive_failures: 2 } }],
        routes: [{ name: 'bot', upstream: 'openai', model: 'm' }],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await fake?.close();
  });

  test('requests spread over the keys; a broken key is ejected alone and no client sees an error', async () => {
    const keys = new Set();
    for (let i = 0; i < 4; i++) {
      const r = await chat(gw, body('bot'));
      assert.equal(r.status, 200, r.text);
      keys.add(r.json.choices[0].message.content);
    }
    assert.deepEqual([...keys].sort(), ['served with Bearer sk-key-one', 'served with Bearer sk-key-two']);
    failBadKey = true;
    for (let i = 0; i < 8; i++) {
      const r = await chat(gw, body('bot'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].message.content, 'served with Bearer sk-key-two');
    }
    assert.equal((await upstreamState(gw, 'openai#1')).state, 'open');
    assert.equal((await upstreamState(gw, 'openai#2')).state, 'closed');
    const { json } = await adminGet(gw, '/admin/v1/upstreams');
    assert.ok(!JSON.stringify(json).includes('sk-key'), 'no key in the admin API');
  });
});

describe('degraded mode: the last good answer, then a static one', { timeout: ms(60_000) }, () => {
  let up;
  let gw;
  let status = 200;
  before(async () => {
    // Answers echo the question, so each request has its own answer (sampled: temperature 1).
    up = await startFakeUpstream((req, res, raw) => {
      const q = JSON.parse(raw).messages.at(-1).content;
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"down"}}');
        return;
      }
      const stream = JSON.parse(raw).stream;
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(completionBody('m', `answer to ${q}`));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${chunkEvent(`streamed answer to ${q}`)}\n\n`);
      res.write(`data: ${chunkEvent(null, { finish: 'stop' })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    gw = await startGateway({
      config: {
        upstreams: [{ name: 'up', url: `${up.url}/v1`, breaker: false }],
        routes: [{ name: 'bot', upstream: 'up', model: 'm' }],
        fallbacks: [{ route: 'bot', chain: [{ last_good: true }, { static: 'Busy, try again soon.' }] }],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  const ask = (q, extra = {}) => ({ model: 'bot', temperature: 1, messages: [{ role: 'user', content: q }], ...extra });

  test('while the upstream fails, a request it answered before gets that answer, marked degraded', async () => {
    const ok = await chat(gw, ask('one'));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers.get('x-sluice-degraded'), null);
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'x', maxRetries: 0 });
    const s = await client.chat.completions.create(ask('two', { stream: true }));
    for await (const c of s) void c;  // a stream is kept as the whole answer it amounts to
    status = 503;
    try {
      const r = await chat(gw, ask('one'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-sluice-degraded'), 'cache');
      assert.equal(r.headers.get('x-sluice-fallback'), 'cache');
      assert.equal(r.json.choices[0].message.content, 'answer to one');
      const line = await gw.waitLog((l) => l.request_id === r.headers.get('x-request-id'));
      assert.equal(line.degraded, 'cache');
      assert.equal(line.status, 200);

      // The streamed answer, asked again as a stream through the official SDK.
      const again = await client.chat.completions.create(ask('two', { stream: true }));
      let text = '';
      for await (const c of again) text += c.choices[0]?.delta?.content ?? '';
      assert.equal(text, 'streamed answer to two');

      // A question never answered falls through to the static answer.
      const fresh = await chat(gw, ask('three'));
      assert.equal(fresh.headers.get('x-sluice-degraded'), 'static');
      assert.equal(fresh.json.choices[0].message.content, 'Busy, try again soon.');
      const m = await gw.metrics();
      assert.ok(m.value('sluice_fallbacks_total', { route: 'bot', served_by: 'cache' }) >= 2, m.text);
    } finally {
      status = 200;
    }
  });

  test('a degraded answer is never kept as a good one', async () => {
    status = 503;
    try {
      const r = await chat(gw, ask('three'));
      assert.equal(r.headers.get('x-sluice-degraded'), 'static');
    } finally {
      status = 200;
    }
    const ok = await chat(gw, ask('three'));
    assert.equal(ok.json.choices[0].message.content, 'answer to three', 'the static answer was not kept');
  });
});

describe('response cache (exact match, deterministic requests, per tenant)', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  const keys = { t1: 'sk-tenant-one', t2: 'sk-tenant-two' };
  const sha = async (s) => (await import('node:crypto')).createHash('sha256').update(s).digest('hex');
  before(async () => {
    mock = await fastMock();
    gw = await startGateway({
      config: {
        upstreams: [{ name: 'm', url: `${mock.url}/v1` }],
        routes: [{ name: 'cached', upstream: 'm', model: 'mm' }],
        response_cache: { max_bytes: 1 << 20, routes: [{ route: 'cached', ttl_ms: 1500 }] },
        api_keys: [
          { tenant: 't1', key_sha256: await sha(keys.t1) },
          { tenant: 't2', key_sha256: await sha(keys.t2) },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });
  const ask = (key, extra = {}) =>
    chat(gw, { model: 'cached', messages: [{ role: 'user', content: 'What is 2+2?' }], temperature: 0, ...extra }, {
      headers: { authorization: `Bearer ${key}` },
    });

  test('a deterministic request is answered from the cache the second time, streamed or not', async () => {
    const n0 = (await mock.stats()).requests;
    const first = await ask(keys.t1);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-sluice-cache'), 'miss');
    const second = await ask(keys.t1);
    assert.equal(second.headers.get('x-sluice-cache'), 'hit');
    assert.equal(second.json.choices[0].message.content, first.json.choices[0].message.content);
    assert.equal((await mock.stats()).requests - n0, 1, 'the upstream answered once');
    // The same request as a stream: the cached answer replayed as a stream (official SDK).
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: keys.t1, maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'cached', messages: [{ role: 'user', content: 'What is 2+2?' }], temperature: 0, stream: true })
      .withResponse();
    assert.equal(response.headers.get('x-sluice-cache'), 'hit');
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, first.json.choices[0].message.content);
    assert.equal((await mock.stats()).requests - n0, 1);
    const line = await gw.waitLog((l) => l.request_id === second.headers.get('x-request-id'));
    assert.equal(line.cache, 'hit');
  });

  test('never shared across tenants; never for sampled requests; entries expire', async () => {
    const n0 = (await mock.stats()).requests;
    const other = await ask(keys.t2);
    assert.equal(other.headers.get('x-sluice-cache'), 'miss', "another tenant does not get t1's answer");
    const sampled = await ask(keys.t1, { temperature: 0.7 });
    assert.equal(sampled.headers.get('x-sluice-cache'), null, 'temperature 0.7: not cacheable');
    const seeded = await ask(keys.t1, { temperature: 0.7, seed: 42 });
    assert.equal(seeded.headers.get('x-sluice-cache'), 'miss', 'a seed makes it deterministic');
    assert.equal((await mock.stats()).requests - n0, 3);
    await sleep(1600);
    const expired = await ask(keys.t1);
    assert.equal(expired.headers.get('x-sluice-cache'), 'miss', 'past its ttl');
  });
});

describe('a prompt too long for the model goes to a larger-context model, never resent unchanged', { timeout: ms(30_000) }, () => {
  test('400 context_length_exceeded -> the fallback with the larger context; other 400s pass through untouched', async () => {
    let code = 'context_length_exceeded';
    const small = await startFakeUpstream((req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: "This model's maximum context length is 8192 tokens.", type: 'invalid_request_error', param: 'messages', code } }));
    });
    const large = await startFakeUpstream((req, res, raw) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completionBody(JSON.parse(raw).model, 'long answer'));
    });
    const gw = await startGateway({
      config: {
        upstreams: [
          { name: 'small', url: `${small.url}/v1` },
          { name: 'large', url: `${large.url}/v1` },
        ],
        routes: [{ name: 'bot', upstream: 'small', model: 'ctx-8k' }],
        fallbacks: [{ route: 'bot', on: ['context_length'], chain: [{ upstream: 'large', model: 'ctx-128k' }] }],
      },
    });
    try {
      const r = await chat(gw, body('bot'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-sluice-fallback'), 'large/ctx-128k');
      assert.equal(JSON.parse(large.requests.at(-1).body).model, 'ctx-128k');
      assert.equal(small.requests.length, 1, 'the too-long prompt was not resent to the small model');
      code = 'invalid_value';
      const other = await chat(gw, body('bot'));
      assert.equal(other.status, 400);
      assert.equal(other.json.error.code, 'invalid_value', "the upstream's own error, byte for byte");
      assert.equal(other.json.error.param, 'messages');
      assert.equal(large.requests.length, 1, 'an ordinary 400 never falls back');
    } finally {
      await gw.stop();
      await Promise.all([small.close(), large.close()]);
    }
  });
});
