// metrics.test.mjs: /metrics (Prometheus text format) and the request log after real traffic.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  USER_MSG,
  chatStreamRaw,
  closedPort,
  ms,
  parsePrometheus,
  parseRawResponse,
  postJSON,
  rawRequest,
  sendLargeBody,
  sleep,
  startGateway,
  startMock,
  waitFor,
} from './harness.mjs';

const KEY = 'sk-it-metrics-key';
const AUTH = { authorization: `Bearer ${KEY}` };

let mock;
let gw;
// What the traffic below should add up to, per route.
const sent = { ids: [], chatA: { n: 0, streams: 0, tokensIn: 0, tokensOut: 0 } };

before(async () => {
  mock = await startMock({
    config: {
      seed: 11,
      defaults: { output_tokens: [6, 12] },
      models: [{ name: 'mock-model' }, { name: 'slow-model', tpot_ms: 40, output_tokens: [30, 30] }],
    },
  });
  const dead = await closedPort();
  gw = await startGateway({
    env: { SLUICE_IT_METRICS_KEY: KEY },
    config: {
      upstreams: [
        { name: 'mock', url: mock.url, models: ['embed-model'] },
        { name: 'dead', url: `http://127.0.0.1:${dead}` },
      ],
      routes: [
        { name: 'chat-a', upstream: 'mock', model: 'mock-model' },
        { name: 'slow', upstream: 'mock', model: 'slow-model' },
        { name: 'dead-route', upstream: 'dead' },
      ],
      api_keys: [{ tenant: 'acme', key_env: 'SLUICE_IT_METRICS_KEY' }],
    },
  });

  const record = (r) => {
    const id = r.headers.get('x-request-id');
    assert.ok(id, 'x-request-id');
    sent.ids.push(id);
    return r;
  };
  // 3 non-streaming completions on chat-a
  for (let i = 0; i < 3; i++) {
    const r = record(await postJSON(`${gw.url}/v1/chat/completions`, { model: 'chat-a', messages: [{ role: 'user', content: `q${i}` }] }, { headers: AUTH }));
    assert.equal(r.status, 200, r.text);
    sent.chatA.n++;
    sent.chatA.tokensIn += r.json.usage.prompt_tokens;
    sent.chatA.tokensOut += r.json.usage.completion_tokens;
  }
  // 2 streams with include_usage
  for (let i = 0; i < 2; i++) {
    const r = record(await chatStreamRaw(gw, { model: 'chat-a', stream_options: { include_usage: true } }, { headers: AUTH }));
    assert.equal(r.status, 200);
    const usage = JSON.parse(r.events.at(-2)).usage;
    sent.chatA.n++;
    sent.chatA.streams++;
    sent.chatA.tokensIn += usage.prompt_tokens;
    sent.chatA.tokensOut += usage.completion_tokens;
  }
  // 1 stream without include_usage: the gateway still counts its tokens
  {
    const r = record(await chatStreamRaw(gw, { model: 'chat-a', messages: [{ role: 'user', content: 'no usage' }] }, { headers: AUTH }));
    assert.equal(r.status, 200);
    const pieces = r.events
      .filter((e) => e !== '[DONE]')
      .map((e) => JSON.parse(e))
      .flatMap((c) => c.choices.map((ch) => ch.delta?.content).filter(Boolean));
    sent.chatA.n++;
    sent.chatA.streams++;
    sent.chatA.tokensOut += pieces.length;
    // prompt tokens are not visible to this client; read them from the log later
    sent.noUsageId = r.headers.get('x-request-id');
  }
  // one unknown model (404), one bad key (401), one dead upstream (502), one embedding
  record(await postJSON(`${gw.url}/v1/chat/completions`, { model: 'nope', messages: USER_MSG }, { headers: AUTH }));
  record(await postJSON(`${gw.url}/v1/chat/completions`, { model: 'chat-a', messages: USER_MSG }, { headers: { authorization: 'Bearer bad' } }));
  const d = record(await postJSON(`${gw.url}/v1/chat/completions`, { model: 'dead-route', messages: USER_MSG }, { headers: AUTH }));
  assert.equal(d.status, 502);
  const e = record(await postJSON(`${gw.url}/v1/embeddings`, { model: 'embed-model', input: 'hello' }, { headers: AUTH }));
  assert.equal(e.status, 200, e.text);
  sent.embedTokens = e.json.usage.prompt_tokens;
  await sleep(150); // request log flush interval is ~50 ms
});

after(async () => {
  await gw?.stop();
  await mock?.stop();
});

describe('/metrics', { timeout: 60_000 }, () => {
  test('is valid Prometheus text format with a TYPE for every family', async () => {
    const r = await fetch(`${gw.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain/);
    const m = parsePrometheus(await r.text());
    assert.deepEqual(m.bad, [], 'unparseable lines');
    assert.ok(m.samples.length > 0);
    for (const s of m.samples) {
      const family = m.types[s.name] ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(m.types[family], `no # TYPE for ${s.name}`);
      assert.ok(Number.isFinite(s.value), `${s.name} value`);
      if (m.types[family] === 'counter') assert.ok(s.value >= 0);
    }
    // one sample line per label set
    const keys = m.samples.map((s) => s.name + JSON.stringify(Object.entries(s.labels).sort()));
    assert.equal(new Set(keys).size, keys.length, 'duplicate series');
  });

  test('sluice_requests_total counts by route, upstream and status_class', async () => {
    const m = await gw.metrics();
    assert.equal(m.types.sluice_requests_total, 'counter');
    assert.equal(m.value('sluice_requests_total', { route: 'chat-a', upstream: 'mock', status_class: '2xx' }), sent.chatA.n);
    assert.equal(m.value('sluice_requests_total', { route: 'dead-route', upstream: 'dead', status_class: '5xx' }), 1);
    assert.equal(m.value('sluice_requests_total', { route: 'embed-model', upstream: 'mock', status_class: '2xx' }), 1);
    // 404 (unknown model) and 401 (bad key) have no route or upstream
    assert.equal(m.value('sluice_requests_total', { status_class: '4xx' }), 2);
    for (const s of m.find('sluice_requests_total')) {
      assert.deepEqual(Object.keys(s.labels).sort(), ['route', 'status_class', 'upstream']);
      assert.match(s.labels.status_class, /^[1-5]xx$|^other$/);
    }
  });

  test('latency, TTFT and TPOT histograms are consistent', async () => {
    const m = await gw.metrics();
    const labels = { route: 'chat-a', upstream: 'mock' };
    for (const [name, expected] of [
      ['sluice_request_duration_seconds', sent.chatA.n],
      ['sluice_time_to_first_token_seconds', sent.chatA.streams],
      ['sluice_time_per_output_token_seconds', sent.chatA.streams],
    ]) {
      assert.equal(m.types[name], 'histogram', name);
      const buckets = m.find(`${name}_bucket`, labels);
      assert.ok(buckets.length >= 5, `${name} has buckets`);
      const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(les[i] > les[i - 1], `${name} le ascending`);
        assert.ok(buckets[i].value >= buckets[i - 1].value, `${name} cumulative`);
      }
      assert.equal(les.at(-1), Infinity);
      const count = m.value(`${name}_count`, labels);
      assert.equal(count, expected, `${name}_count`);
      assert.equal(buckets.at(-1).value, count, `${name} +Inf bucket == count`);
      assert.ok(m.value(`${name}_sum`, labels) > 0, `${name}_sum`);
    }
    // All chat-a requests against a local mock are fast.
    const fast = m.find('sluice_request_duration_seconds_bucket', { ...labels, le: '1' });
    if (fast.length) assert.equal(fast[0].value, sent.chatA.n);
  });

  test('sluice_tokens_total matches the usage the upstream reported', async () => {
    const m = await gw.metrics();
    const line = (await gw.requestLog()).find((l) => l.request_id === sent.noUsageId);
    assert.ok(line && line.tokens_in > 0, 'no-usage stream has tokens_in in the log');
    assert.equal(m.value('sluice_tokens_total', { route: 'chat-a', upstream: 'mock', direction: 'input' }), sent.chatA.tokensIn + line.tokens_in);
    assert.equal(m.value('sluice_tokens_total', { route: 'chat-a', upstream: 'mock', direction: 'output' }), sent.chatA.tokensOut);
    assert.equal(m.value('sluice_tokens_total', { route: 'embed-model', upstream: 'mock', direction: 'input' }), sent.embedTokens);
  });

  test('upstream errors are counted by kind', async () => {
    const m = await gw.metrics();
    assert.equal(m.value('sluice_upstream_errors_total', { upstream: 'dead', kind: 'connect_failed' }), 2, 'two attempts');
    assert.equal(m.value('sluice_upstream_errors_total', { upstream: 'mock' }), undefined, 'no errors against the healthy upstream');
  });

  test('in-flight and open-stream gauges follow a live stream', async () => {
    let m = await gw.metrics();
    assert.equal(m.types.sluice_inflight_requests, 'gauge');
    assert.equal(m.value('sluice_inflight_requests'), 0);
    assert.equal(m.value('sluice_open_streams'), 0);
    const p = chatStreamRaw(gw, { model: 'slow' }, { headers: AUTH });
    await waitFor(async () => (await gw.metrics()).value('sluice_open_streams') === 1, { timeout: ms(1000), what: 'open stream gauge' });
    m = await gw.metrics();
    assert.equal(m.value('sluice_inflight_requests'), 1);
    const r = await p;
    assert.equal(r.events.at(-1), '[DONE]');
    m = await gw.metrics();
    assert.equal(m.value('sluice_inflight_requests'), 0);
    assert.equal(m.value('sluice_open_streams'), 0);
    // mock-llm's 40 ms per token shows up as TPOT
    const tp = { route: 'slow', upstream: 'mock' };
    const mean = m.value('sluice_time_per_output_token_seconds_sum', tp) / m.value('sluice_time_per_output_token_seconds_count', tp);
    assert.ok(mean > 0.025 && mean < 0.2, `TPOT mean ${mean}`);
  });

  test('the admin listener serves the same metrics; process counters move', async () => {
    const a = await gw.metrics(true);
    const d = await gw.metrics();
    assert.deepEqual(Object.keys(a.types).sort(), Object.keys(d.types).sort());
    assert.equal(
      a.value('sluice_requests_total', { route: 'chat-a', status_class: '2xx' }),
      d.value('sluice_requests_total', { route: 'chat-a', status_class: '2xx' }),
    );
    assert.ok(d.value('sluice_connections_accepted_total') >= 1);
    assert.equal(d.value('sluice_request_log_dropped_total'), 0);
    await sleep(100);
    assert.equal(d.value('sluice_request_log_written_total') <= gw.requestLog().length, true);
    await waitFor(async () => (await gw.metrics()).value('sluice_request_log_written_total') === gw.requestLog().length, {
      timeout: ms(1000),
      what: 'written counter to match the log file',
    });
  });
});

describe('request log', { timeout: 60_000 }, () => {
  const FIELDS = {
    ts: 'number',
    request_id: 'string',
    tenant: 'string',
    route: 'string',
    model: 'string',
    upstream: 'string',
    status: 'number',
    stream: 'boolean',
    attempts: 'number',
    tokens_in: 'number|null',
    tokens_out: 'number|null',
    ttft_ms: 'number|null',
    total_ms: 'number',
    error_kind: 'string|null',
  };

  test('every line has the documented fields with the right types', async () => {
    const lines = gw.requestLog();
    assert.ok(lines.length >= sent.ids.length);
    const now = Date.now();
    for (const l of lines) {
      for (const [k, t] of Object.entries(FIELDS)) {
        assert.ok(k in l, `field ${k} missing in ${JSON.stringify(l)}`);
        const actual = l[k] === null ? 'null' : typeof l[k];
        assert.ok(t.split('|').includes(actual), `${k} is ${actual} in ${JSON.stringify(l)}`);
      }
      assert.ok(Math.abs(now - l.ts) < 60_000, 'ts is epoch milliseconds');
      assert.ok(Number.isInteger(l.status) && l.status >= 100 && l.status < 600);
      assert.ok(l.total_ms >= 0);
      if (l.ttft_ms !== null) assert.ok(l.ttft_ms <= l.total_ms);
    }
  });

  test('each request of the traffic is logged once, with what happened', async () => {
    const lines = gw.requestLog();
    const byId = new Map();
    for (const l of lines) {
      assert.ok(!byId.has(l.request_id), `duplicate request_id ${l.request_id}`);
      byId.set(l.request_id, l);
    }
    for (const id of sent.ids) assert.ok(byId.has(id), `request ${id} not in the log`);
    const ok = lines.filter((l) => l.route === 'chat-a' && l.status === 200);
    assert.equal(ok.length, sent.chatA.n);
    for (const l of ok) {
      assert.equal(l.tenant, 'acme');
      assert.equal(l.model, 'chat-a');
      assert.equal(l.upstream, 'mock');
      assert.equal(l.attempts, 1);
      assert.equal(l.error_kind, null);
      assert.ok(l.tokens_in > 0 && l.tokens_out > 0);
      assert.equal(l.ttft_ms === null, !l.stream, 'ttft only for streams');
    }
    const nf = lines.find((l) => l.model === 'nope');
    assert.equal(nf.status, 404);
    assert.equal(nf.error_kind, 'model_not_found');
    assert.equal(nf.route, '');
    assert.equal(nf.attempts, 0);
    const unauth = lines.find((l) => l.status === 401);
    assert.equal(unauth.tenant, '');
    const dead = lines.find((l) => l.route === 'dead-route');
    assert.equal(dead.status, 502);
    assert.equal(dead.upstream, 'dead');
    assert.equal(dead.attempts, 2);
    assert.equal(dead.error_kind, 'connect_failed');
  });

  test('every x-request-id handed out by the data plane can be found in the request log', async () => {
    const ids = [];
    const take = (rid, what) => {
      assert.ok(rid, `${what} has an x-request-id`);
      ids.push([rid, what]);
    };
    let r = await fetch(`${gw.url}/v1/models`, { headers: AUTH });
    await r.text();
    take(r.headers.get('x-request-id'), 'GET /v1/models');
    r = await fetch(`${gw.url}/v1/nothing-here`);
    await r.text();
    take(r.headers.get('x-request-id'), 'unknown URL (404)');
    r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'PUT', body: '{}' });
    await r.text();
    take(r.headers.get('x-request-id'), 'wrong method (405)');
    const big = await sendLargeBody(gw.port, { total: 16 << 20 });
    if (big.status === 413) take(parseRawResponse(big.text).headers['x-request-id'], 'body too large (413)');
    let h = 'GET /v1/models HTTP/1.1\r\nHost: x\r\n';
    for (let i = 0; i < 40; i++) h += `X-Flood-${i}: ${'a'.repeat(1000)}\r\n`;
    const hf = await rawRequest(gw.port, `${h}\r\n`);
    if (hf.status === 431) take(parseRawResponse(hf.text).headers['x-request-id'], 'headers too large (431)');
    const bad = await rawRequest(gw.port, 'BROKEN\r\n\r\n');
    take(parseRawResponse(bad.text)?.headers['x-request-id'], 'malformed HTTP (400)');
    await sleep(200);
    const logged = new Set(gw.requestLog().map((l) => l.request_id));
    const missing = ids.filter(([id]) => !logged.has(id)).map(([, what]) => what);
    assert.deepEqual(missing, [], `responses whose x-request-id is not in the request log: ${missing.join('; ')}`);
  });
});
