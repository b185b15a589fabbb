// otel.test.mjs: OpenTelemetry traces over OTLP/HTTP JSON (issue 14). A tiny collector in
// this process receives the spans: a SERVER span per request with the GenAI attributes, a
// CLIENT span per upstream attempt (a fallback shows both attempts), the client's
// traceparent joined and propagated upstream. With the collector down, requests still
// succeed and the spans are counted as failed or dropped.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import OpenAI from 'openai';

import { USER_MSG, closedPort, completionBody, ms, startFakeUpstream, startGateway, startMock, waitFor } from './harness.mjs';

// A collector: every POST /v1/traces body, parsed.
async function startCollector() {
  const spans = [];
  const posts = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      posts.push({ url: req.url, headers: req.headers });
      const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of doc.resourceSpans)
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, attrs: attrsOf(s.attributes), resource: attrsOf(rs.resource.attributes) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { spans, posts, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

function valueOf(v) {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  if ('arrayValue' in v) return v.arrayValue.values.map(valueOf);
  throw new Error(`unknown AnyValue ${JSON.stringify(v)}`);
}
function attrsOf(list) {
  return Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));
}

// The request's SERVER span and its CLIENT children, once they arrived.
async function traceOf(col, requestId) {
  let server;
  await waitFor(() => (server = col.spans.find((s) => s.kind === 2 && s.attrs['sluice.request_id'] === requestId)), {
    timeout: ms(5000),
    what: `span of ${requestId}`,
  });
  const children = col.spans
    .filter((s) => s.kind === 3 && s.traceId === server.traceId && s.parentSpanId === server.spanId)
    .sort((a, b) => a.attrs['sluice.attempt'] - b.attrs['sluice.attempt']);
  return { server, children };
}

describe('OpenTelemetry traces', { timeout: ms(60_000) }, () => {
  let mock;
  let fake;
  let col;
  let gw;
  let client;
  before(async () => {
    col = await startCollector();
    mock = await startMock({ config: { seed: 3, defaults: { output_tokens: [4, 8] }, models: [{ name: 'm' }] } });
    fake = await startFakeUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completionBody('fake-model'));
    });
    const dead = await closedPort();
    gw = await startGateway({
      config: {
        limits: { max_attempts: 2, retry_budget: { ratio: 1, min_per_second: 100 } },
        upstreams: [
          { name: 'mock', url: mock.url },
          { name: 'dead', url: `http://127.0.0.1:${dead}` },
          { name: 'fake', url: fake.url },
        ],
        routes: [
          { name: 'chat', upstream: 'mock', model: 'm' },
          { name: 'fb', upstreams: ['dead', 'mock'], model: 'm' },
          { name: 'echo', upstream: 'fake', model: 'fake-model' },
        ],
        telemetry: { otlp: { endpoint: col.url, flush_interval_ms: 50, batch_size: 16, headers: { 'x-api-key': 'k1' } } },
      },
    });
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
    await fake?.close();
    await col?.close();
  });

  test('a chat request: SERVER span with GenAI attributes and one CLIENT attempt span', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'chat', messages: USER_MSG, max_tokens: 20, temperature: 0.5, top_p: 0.9 })
      .withResponse();
    const { server, children } = await traceOf(col, response.headers.get('x-request-id'));
    const a = server.attrs;
    assert.equal(server.name, 'chat chat');
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(a['gen_ai.provider.name'], 'openai');
    assert.equal(a['gen_ai.request.model'], 'chat');
    assert.equal(a['gen_ai.request.max_tokens'], 20);
    assert.equal(a['gen_ai.request.temperature'], 0.5);
    assert.equal(a['gen_ai.request.top_p'], 0.9);
    assert.equal(a['gen_ai.response.id'], data.id);
    assert.equal(a['gen_ai.response.model'], data.model);
    assert.deepEqual(a['gen_ai.response.finish_reasons'], [data.choices[0].finish_reason]);
    assert.equal(a['gen_ai.usage.input_tokens'], data.usage.prompt_tokens);
    assert.equal(a['gen_ai.usage.output_tokens'], data.usage.completion_tokens);
    assert.equal(a['http.response.status_code'], 200);
    assert.equal(a['sluice.route'], 'chat');
    assert.equal(a['gen_ai.input.messages'], undefined, 'bodies are off by default');
    assert.equal(server.parentSpanId ?? '', '');
    assert.match(server.traceId, /^[0-9a-f]{32}$/);
    assert.match(server.spanId, /^[0-9a-f]{16}$/);
    assert.ok(BigInt(server.endTimeUnixNano) > BigInt(server.startTimeUnixNano));
    assert.ok(Math.abs(Number(BigInt(server.startTimeUnixNano) / 1000000n) - Date.now()) < 60_000);
    assert.equal(server.resource['service.name'], 'sluice');
    assert.equal(children.length, 1);
    const c = children[0].attrs;
    assert.equal(c['server.address'], '127.0.0.1');
    assert.equal(c['server.port'], mock.port);
    assert.equal(c['sluice.upstream'], 'mock');
    assert.equal(c['sluice.attempt'], 1);
    assert.equal(c['sluice.attempt.outcome'], 'success');
    assert.ok(col.posts.every((p) => p.url === '/v1/traces' && p.headers['x-api-key'] === 'k1'));
  });

  test('a fallback: the failed attempt and the one that answered are sibling spans', async () => {
    const { response } = await client.chat.completions.create({ model: 'fb', messages: USER_MSG }).withResponse();
    const { server, children } = await traceOf(col, response.headers.get('x-request-id'));
    assert.equal(server.attrs['http.response.status_code'], 200);
    assert.equal(children.length, 2);
    assert.deepEqual(children.map((s) => s.attrs['sluice.upstream']), ['dead', 'mock']);
    assert.equal(children[0].attrs['sluice.attempt.outcome'], 'failure');
    assert.match(children[0].attrs['sluice.attempt.reason'], /dead/);
    assert.equal(children[0].status.code, 2);
    assert.equal(children[1].attrs['sluice.attempt.outcome'], 'success');
  });

  test("the client's traceparent is joined and propagated to the upstream", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${parent}-01` },
      body: JSON.stringify({ model: 'echo', messages: USER_MSG }),
    });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    const { server, children } = await traceOf(col, r.headers.get('x-request-id'));
    assert.equal(server.traceId, traceId);
    assert.equal(server.parentSpanId, parent);
    assert.equal(children.length, 1);
    const sent = fake.requests.at(-1).headers.traceparent;
    assert.equal(sent, `00-${traceId}-${children[0].spanId}-01`);
  });

  test('an unsampled traceparent is respected: no spans', async () => {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-00' },
      body: JSON.stringify({ model: 'chat', messages: USER_MSG }),
    });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    const id = r.headers.get('x-request-id');
    // A later traced request's span arriving means this one's would have, too (same batch or earlier).
    const { response } = await client.chat.completions.create({ model: 'chat', messages: USER_MSG }).withResponse();
    await traceOf(col, response.headers.get('x-request-id'));
    assert.equal(col.spans.find((s) => s.attrs['sluice.request_id'] === id), undefined);
  });
});

describe('OpenTelemetry with the collector down', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  before(async () => {
    mock = await startMock({ config: { seed: 4, defaults: { output_tokens: [2, 4] }, models: [{ name: 'm' }] } });
    const down = await closedPort();
    gw = await startGateway({
      config: {
        upstreams: [{ name: 'mock', url: mock.url }],
        routes: [{ name: 'chat', upstream: 'mock', model: 'm' }],
        telemetry: { otlp: { endpoint: `http://127.0.0.1:${down}`, flush_interval_ms: 20, batch_size: 2, queue_size: 4 } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test('requests succeed and the spans are counted as failed or dropped', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
    await Promise.all(
      Array.from({ length: 24 }, () => client.chat.completions.create({ model: 'chat', messages: USER_MSG })),
    );
    let m;
    await waitFor(async () => {
      m = await gw.metrics();
      return m.value('sluice_otel_spans_total', { outcome: 'failed' }) > 0 && m.value('sluice_otel_spans_total', { outcome: 'dropped' }) > 0;
    }, { timeout: ms(5000), what: 'failed and dropped spans' });
    assert.equal(m.value('sluice_otel_spans_total', { outcome: 'exported' }), 0);
  });
});
