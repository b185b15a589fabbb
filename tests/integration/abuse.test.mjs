// abuse.test.mjs: bad input, slow and hostile clients, broken upstreams, admin auth and
// process lifecycle (startup refusal, SIGHUP reload, SIGTERM drain).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  USER_MSG,
  assertOpenAIError,
  chat,
  chatStreamRaw,
  chunkEvent,
  closedPort,
  completionBody,
  ms,
  connect,
  parseRawResponse,
  postJSON,
  rawRequest,
  sendLargeBody,
  sleep,
  spawnSluice,
  startFakeUpstream,
  sseData,
  startGateway,
  startMock,
  tempDir,
  waitFor,
  watchSocket,
} from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

let mock;
before(async () => {
  mock = await startMock({
    config: {
      seed: 3,
      defaults: { output_tokens: [8, 16] },
      models: [
        { name: 'mock-model' },
        { name: 'slow-model', tpot_ms: 40, output_tokens: [50, 50] },
      ],
    },
  });
  await mock.setFaults({ model: 'garbage-model', garbage_rate: 1 });
  await mock.setFaults({ model: 'slow-header-model', slow_first_byte_ms: 1500 });
  await mock.setFaults({ model: 'limited-model', rate_limit_rate: 1, retry_after_s: 3 });
});
after(() => mock?.stop());

async function assertServing(gw) {
  assert.ok(gw.proc.running, `gateway died:\n${gw.proc.describe()}`);
  const h = await fetch(`${gw.url}/healthz`);
  assert.equal(h.status, 200);
  await h.text();
  const r = await chat(gw, {});
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.choices[0].message.content.length > 0);
}

// ---------------------------------------------------------------------------- bodies

describe('malformed request bodies', { timeout: 60_000 }, () => {
  let gw;
  before(async () => {
    gw = await startGateway({ upstreams: { mock: mock.url } });
  });
  after(() => gw?.stop());

  test('malformed or truncated JSON -> 400 invalid_json, logged', async () => {
    const bodies = [
      '{"model":',
      '{"model":"mock-model","messages":[{"role":"user","content":"hi"}]',
      '{"model":"mock-model",}',
      "{'model':'mock-model'}",
      'not json at all',
      '{"model":"mock-model","messages":[{"role":"user","content":"unterminated}]}',
      '{"model":"mock-model"} trailing',
      '',
    ];
    for (const b of bodies) {
      const r = await postJSON(`${gw.url}/v1/chat/completions`, b);
      assert.equal(r.status, 400, `body ${JSON.stringify(b)} -> ${r.status} ${r.text}`);
      assertOpenAIError(assert, r.json, { code: 'invalid_json', type: 'invalid_request_error' });
      const rid = r.headers.get('x-request-id');
      assert.ok(rid, 'x-request-id on a 400');
      const line = await gw.waitLog((l) => l.request_id === rid);
      assert.equal(line.status, 400);
      assert.equal(line.error_kind, 'invalid_json');
    }
  });

  test('valid JSON that is not an object -> 400 invalid_json', async () => {
    for (const b of ['[]', '[{"model":"mock-model"}]', '"a string"', '42', 'null', 'true']) {
      const r = await postJSON(`${gw.url}/v1/chat/completions`, b);
      assert.equal(r.status, 400, `body ${b}`);
      assertOpenAIError(assert, r.json, { code: 'invalid_json' });
      assert.match(r.json.error.message, /object/);
    }
    const e = await postJSON(`${gw.url}/v1/embeddings`, '[1,2,3]');
    assert.equal(e.status, 400);
    assertOpenAIError(assert, e.json, { code: 'invalid_json' });
  });

  test('invalid UTF-8 and absurd nesting are rejected, not crashed on', async () => {
    const bad = Buffer.from('{"model":"mock-\xff\xfe","messages":[{"role":"user","content":"x"}]}', 'latin1');
    const r1 = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: bad });
    assert.equal(r1.status, 400);
    assertOpenAIError(assert, await r1.json(), { code: 'invalid_json' });
    const deep = '['.repeat(200000) + ']'.repeat(200000);
    const r2 = await postJSON(`${gw.url}/v1/chat/completions`, deep);
    assert.equal(r2.status, 400);
    assertOpenAIError(assert, r2.json, { code: 'invalid_json' });
    const deepObj = '{"model":"mock-model","messages":[{"role":"user","content":"x"}],"x":' + '{"a":'.repeat(5000) + '1' + '}'.repeat(5001);
    const r3 = await postJSON(`${gw.url}/v1/chat/completions`, deepObj);
    assert.ok(r3.status === 400 || r3.status === 200, `${r3.status}`);
    await assertServing(gw);
  });

  test('wrongly typed or missing fields -> 400 with a clear error', async () => {
    const cases = [
      [{ model: 5, messages: USER_MSG }, /model/],
      [{ model: 'mock-model', messages: USER_MSG, stream: 'yes' }, /stream/],
      [{ model: 'mock-model', messages: 'hello' }, /messages/],
      [{ model: 'mock-model', messages: [] }, /messages/],
      [{ messages: USER_MSG }, /model/],
      [{ model: 'mock-model', messages: USER_MSG, stream: true, stream_options: 'x' }, /stream_options/],
      [{ model: 'mock-model', messages: USER_MSG, n: 1000 }, /'n'/],
    ];
    for (const [body, re] of cases) {
      const r = await postJSON(`${gw.url}/v1/chat/completions`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status} ${r.text}`);
      assertOpenAIError(assert, r.json, { type: 'invalid_request_error' });
      assert.match(r.json.error.message, re);
    }
  });

  // Deterministic (issue 9): the client sends the head and 64 KiB, then waits. The gateway
  // must refuse on Content-Length alone, before the body, whatever the machine's timing.
  test('100 MB body with Content-Length -> 413 before the body is sent, gateway keeps serving', async () => {
    const r = await sendLargeBody(gw.port, { total: 100 << 20, pauseAfter: 64 << 10 });
    assert.equal(r.status, 413, `expected 413 while the client waits, got ${r.status} ${r.error?.code ?? ''} ${r.text.slice(0, 200)}`);
    const res = parseRawResponse(r.text);
    assertOpenAIError(assert, JSON.parse(res.body), { code: 'request_too_large' });
    assert.ok(res.headers['x-request-id']);
    await assertServing(gw);
  });

  test('100 MB body with Content-Length sent all at once -> 413 or a refused connection, gateway keeps serving', async () => {
    const r = await sendLargeBody(gw.port, { total: 100 << 20 });
    assert.ok(
      r.status === 413 || (r.status === undefined && r.error && ['EPIPE', 'ECONNRESET'].includes(r.error.code)),
      `expected 413 or a refused connection, got status=${r.status} error=${r.error?.code} ${r.text.slice(0, 200)}`,
    );
    await assertServing(gw);
  });

  test('100 MB chunked body -> 413, gateway keeps serving', async () => {
    const r = await sendLargeBody(gw.port, { total: 100 << 20, chunked: true });
    assert.ok(
      r.status === 413 || (r.status === undefined && r.error && ['EPIPE', 'ECONNRESET'].includes(r.error.code)),
      `expected 413 or a refused connection, got status=${r.status} error=${r.error?.code}`,
    );
    await assertServing(gw);
  });

  test('Expect: 100-continue with an oversized body is refused without a 100 Continue', async () => {
    const r = await rawRequest(
      gw.port,
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 104857600\r\n\r\n',
      { timeout: 2000 },
    );
    assert.equal(r.status, 413, r.text);
    assert.doesNotMatch(r.text, /100 Continue/);
  });

  test('a body just under the limit (7 MB message) is relayed', async () => {
    const big = 'lorem ipsum '.repeat((7 << 20) / 12);
    const r = await chat(gw, { messages: [{ role: 'user', content: big }] });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.ok(r.json.usage.prompt_tokens > (6 << 20) / 4, `prompt_tokens ${r.json.usage.prompt_tokens}`);
  });
});

// ---------------------------------------------------------------------------- HTTP level

describe('hostile HTTP', { timeout: 60_000 }, () => {
  let gw;
  before(async () => {
    gw = await startGateway({ upstreams: { mock: mock.url } });
  });
  after(() => gw?.stop());

  test('header flood (100 KB of headers) -> 431', async () => {
    let h = 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n';
    for (let i = 0; i < 100; i++) h += `X-Flood-${i}: ${'a'.repeat(1000)}\r\n`;
    h += 'Content-Length: 2\r\n\r\n{}';
    for (let i = 0; i < 3; i++) {
      const r = await rawRequest(gw.port, h);
      assert.equal(r.status, 431, `attempt ${i}: status=${r.status} error=${r.error?.code} ${r.text.slice(0, 100)}`);
      const res = parseRawResponse(r.text);
      assertOpenAIError(assert, JSON.parse(res.body), { code: 'headers_too_large' });
    }
    // A single enormous header line, too.
    const r = await rawRequest(gw.port, `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(100 * 1024)}\r\n\r\n`);
    assert.equal(r.status, 431, `status=${r.status} error=${r.error?.code}`);
    await assertServing(gw);
  });

  test('malformed HTTP -> 400 bad_http_request', async () => {
    const reqs = [
      'HELLO WORLD\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ];
    for (const q of reqs) {
      const r = await rawRequest(gw.port, q);
      assert.equal(r.status, 400, `${JSON.stringify(q)} -> ${r.text.slice(0, 100)}`);
      const res = parseRawResponse(r.text);
      assertOpenAIError(assert, JSON.parse(res.body), { code: 'bad_http_request' });
      assert.ok(r.closed, 'connection closed after a malformed request');
    }
    await assertServing(gw);
  });

  test('pipelined requests are answered in order on one connection', async () => {
    const body = (c, stream = false) => JSON.stringify({ model: 'mock-model', stream, messages: [{ role: 'user', content: c }] });
    const req = (c, stream) =>
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body(c, stream))}\r\n\r\n${body(c, stream)}`;
    const r = await rawRequest(
      gw.port,
      req('first', true) + req('second') + req('third') + 'GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const statuses = (r.text.match(/HTTP\/1\.1 (\d+)/g) || []).map((s) => Number(s.slice(9)));
    assert.deepEqual(statuses, [200, 200, 200, 404]);
    assert.ok(r.text.indexOf('[DONE]') < r.text.indexOf('"chat.completion"'), 'the stream came first, complete');
    assert.ok(r.closed);
  });

  test('unknown URL -> 404, wrong method -> 405, both OpenAI-shaped', async () => {
    const r1 = await fetch(`${gw.url}/v1/does-not-exist`);
    assert.equal(r1.status, 404);
    assertOpenAIError(assert, await r1.json(), { code: 'unknown_url' });
    const r2 = await fetch(`${gw.url}/v1/chat/completions`);
    assert.equal(r2.status, 405);
    assertOpenAIError(assert, await r2.json(), { code: 'method_not_allowed' });
    const r3 = await fetch(`${gw.url}/admin/v1/status`);
    assert.equal(r3.status, 404, 'the admin API is not on the data plane');
    await r3.text();
  });

  test('every data-plane response carries x-request-id (including ops endpoints)', async () => {
    const missing = [];
    for (const [method, p, body] of [
      ['GET', '/healthz'],
      ['GET', '/readyz'],
      ['GET', '/metrics'],
      ['GET', '/v1/models'],
      ['GET', '/nope'],
      ['DELETE', '/v1/chat/completions'],
      ['POST', '/v1/chat/completions', '{'],
      ['POST', '/v1/chat/completions', JSON.stringify({ model: 'mock-model', messages: USER_MSG })],
      ['POST', '/v1/embeddings', JSON.stringify({ model: 'e', input: 'x' })],
    ]) {
      const r = await fetch(`${gw.url}${p}`, { method, body });
      await r.arrayBuffer();
      if (!r.headers.get('x-request-id')) missing.push(`${method} ${p} (${r.status})`);
    }
    assert.deepEqual(missing, [], `responses without x-request-id: ${missing.join(', ')}`);
  });

  test('HTTP/1.0 client asking for a stream gets no chunked encoding', async () => {
    const body = JSON.stringify({ model: 'mock-model', stream: true, messages: USER_MSG });
    const r = await rawRequest(
      gw.port,
      `POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    const head = r.text.slice(0, r.text.indexOf('\r\n\r\n'));
    assert.match(head, /^HTTP\/1\.[01] 200/);
    // RFC 9112 6.1: a server MUST NOT send chunked transfer coding to an HTTP/1.0 client.
    assert.doesNotMatch(head, /transfer-encoding:\s*chunked/i, head);
    const payload = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
    assert.match(payload, /^data: /, 'the body starts with an SSE event, not a chunk size');
    assert.match(payload, /data: \[DONE\]/);
  });
});

// ---------------------------------------------------------------------------- slow clients

describe('slow clients (header_timeout_ms 500)', { timeout: 60_000 }, () => {
  let gw;
  before(async () => {
    gw = await startGateway({ upstreams: { mock: mock.url }, config: { limits: { header_timeout_ms: 500 } } });
  });
  after(() => gw?.stop());

  test('slowloris: partial headers trickled slowly are cut off; other clients are unaffected', async () => {
    const N = 20;
    const socks = [];
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const s = await connect(gw.port);
      const st = watchSocket(s);
      s.on('error', () => {});
      s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      socks.push({ s, st });
    }
    const drip = setInterval(() => {
      for (const { s, st } of socks) if (!st.closed) s.write('a');
    }, 100);
    try {
      // Meanwhile, normal clients get prompt answers.
      const lat = [];
      for (let i = 0; i < 5; i++) {
        const t = Date.now();
        const r = await chat(gw, {});
        assert.equal(r.status, 200);
        lat.push(Date.now() - t);
      }
      assert.ok(Math.max(...lat) < ms(1000), `normal requests were slow during slowloris: ${lat}`);
      await Promise.race([Promise.all(socks.map((x) => x.st.done)), sleep(ms(3000))]);
    } finally {
      clearInterval(drip);
    }
    const open = socks.filter((x) => !x.st.closed).length;
    for (const { s } of socks) s.destroy();
    assert.equal(open, 0, `${open} slowloris connections still open after 3 s`);
    const worst = Math.max(...socks.map((x) => x.st.closedAt - t0));
    assert.ok(worst < ms(2500), `slowloris connections closed after ${worst} ms (header_timeout_ms 500)`);
    for (const { st } of socks) assert.equal(st.data.length, 0, 'no response is owed to a timed-out header');
    await assertServing(gw);
  });

  test('slow body: headers then a stalled body are cut off', async () => {
    const s = await connect(gw.port);
    const st = watchSocket(s);
    s.on('error', () => {});
    const t0 = Date.now();
    s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"model":"mock-model",');
    await Promise.race([st.done, sleep(ms(3000))]);
    const closed = st.closed;
    s.destroy();
    assert.ok(closed, 'connection with a stalled body still open after 3 s');
    assert.ok(st.closedAt - t0 < ms(2000), `closed after ${st.closedAt - t0} ms`);
  });

  test('a connection that never sends anything is closed', async () => {
    const s = await connect(gw.port);
    const st = watchSocket(s);
    s.on('error', () => {});
    const t0 = Date.now();
    await Promise.race([st.done, sleep(ms(3000))]);
    const closed = st.closed;
    s.destroy();
    assert.ok(closed, 'silent connection still open after 3 s');
    assert.ok(st.closedAt - t0 < ms(2000), `closed after ${st.closedAt - t0} ms`);
  });
});

// ---------------------------------------------------------------------------- upstreams

describe('upstream failures', { timeout: 60_000 }, () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      config: {
        // Each test here provokes one kind of failure from the same upstream; its circuit
        // breaker (tested in upstreams.test.mjs) would open part-way through and answer 503.
        upstreams: [{ name: 'mock', url: mock.url, timeouts: { first_byte_ms: 300, idle_ms: 1000 }, breaker: false }],
        limits: { max_response_bytes: 4096 },
      },
    });
  });
  after(() => gw?.stop());

  test('unreachable upstream -> 502 (non-streaming and streaming)', async () => {
    const port = await closedPort();
    const g = await startGateway({ upstreams: { dead: `http://127.0.0.1:${port}` } });
    try {
      const t0 = Date.now();
      const r = await chat(g, {});
      assert.equal(r.status, 502, r.text);
      assertOpenAIError(assert, r.json, { code: 'connect_failed', type: 'upstream_error' });
      assert.ok(Date.now() - t0 < ms(2000));
      const s = await chat(g, { stream: true });
      assert.equal(s.status, 502, 'nothing was relayed yet: a plain error response, not an SSE stream');
      assert.match(s.headers.get('content-type'), /application\/json/);
      assertOpenAIError(assert, s.json, { code: 'connect_failed' });
      const line = await g.waitLog((l) => l.request_id === s.headers.get('x-request-id'));
      assert.equal(line.status, 502);
      assert.equal(line.error_kind, 'connect_failed');
      assert.equal(line.attempts, 2, 'default max_attempts is 2');
      assert.ok(g.proc.running);
    } finally {
      await g.stop();
    }
  });

  test('upstream garbage -> 502 bad_response (non-streaming)', async () => {
    const r = await chat(gw, { model: 'garbage-model' });
    assert.equal(r.status, 502, r.text);
    assertOpenAIError(assert, r.json, { code: 'bad_response', type: 'upstream_error' });
  });

  test('upstream garbage while streaming -> error event, clean end, no [DONE]', async () => {
    const r = await chatStreamRaw(gw, { model: 'garbage-model' });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /text\/event-stream/);
    assert.ok(r.events.length >= 1);
    assert.ok(!r.events.includes('[DONE]'), 'no [DONE] after a failure');
    const last = JSON.parse(r.events.at(-1));
    assertOpenAIError(assert, last, { code: 'bad_stream' });
    for (const e of r.events.slice(0, -1)) JSON.parse(e); // nothing unparseable was relayed
  });

  test('slow first byte beyond first_byte_ms -> 504 first_byte_timeout', async () => {
    const t0 = Date.now();
    const r = await chat(gw, { model: 'slow-header-model' });
    const ms = Date.now() - t0;
    assert.equal(r.status, 504, r.text);
    assertOpenAIError(assert, r.json, { code: 'first_byte_timeout', type: 'upstream_error' });
    // two attempts of 300 ms each, well before the upstream's 1500 ms
    assert.ok(ms >= 280 && ms < 1450, `took ${ms} ms`);
    const s = await chat(gw, { model: 'slow-header-model', stream: true });
    assert.equal(s.status, 504);
    assertOpenAIError(assert, s.json, { code: 'first_byte_timeout' });
  });

  test('upstream 429 on a stream request -> 429 JSON with Retry-After before any SSE', async () => {
    const r = await chat(gw, { model: 'limited-model', stream: true });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '3');
    assert.match(r.headers.get('content-type'), /application\/json/);
    assertOpenAIError(assert, r.json, { code: 'rate_limit_exceeded' });
  });

  test('upstream response over max_response_bytes -> 502 response_too_large, not retried', async () => {
    const before = (await mock.stats()).requests;
    // 1024 floats printed as text: ~10 KB, over the 4 KB limit of this gateway.
    const r = await postJSON(`${gw.url}/v1/embeddings`, {
      model: 'mock-embed',
      input: 'big vector',
      dimensions: 1024,
      encoding_format: 'float',
    });
    const upstreamCalls = (await mock.stats()).requests - before;
    assert.equal(r.status, 502, r.text.slice(0, 200));
    assertOpenAIError(assert, r.json, { type: 'upstream_error' });
    assert.equal(r.json.error.code, 'response_too_large', `code: ${r.json.error.code} (${r.json.error.message})`);
    assert.equal(upstreamCalls, 1, 'a too-large answer is not worth a second attempt');
  });

  test('client abort while waiting for the first byte is recorded promptly as 499', async () => {
    const ac = new AbortController();
    const p = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'slow-header-model', messages: USER_MSG, user: 'abort-probe' }),
      signal: ac.signal,
    }).catch((e) => e);
    await sleep(100);
    const t0 = Date.now();
    ac.abort();
    await p;
    const line = await gw.waitLog((l) => l.status === 499 && l.model === 'slow-header-model', 1400);
    assert.equal(line.error_kind, 'client_abort');
    assert.ok(Date.now() - t0 < 1450, 'logged before the upstream would have answered');
  });

  test('upstream restarts: pooled keep-alive connections to the old process do not fail requests', async () => {
    const m1 = await startMock();
    const g = await startGateway({ upstreams: { mock: m1.url }, threads: 1 });
    let m2;
    try {
      for (let i = 0; i < 3; i++) assert.equal((await chat(g, {})).status, 200); // pool now holds a connection
      await m1.stop();
      m2 = spawnSluice(['mock-llm', '--listen', `127.0.0.1:${m1.port}`], { name: 'mock-llm-restarted' });
      await m2.waitLine(/listening/);
      const r = await chat(g, {});
      assert.equal(r.status, 200, r.text);
      const line = await g.waitLog((l) => l.request_id === r.headers.get('x-request-id'));
      assert.equal(line.attempts, 1, 'a stale pooled connection is not a failed attempt');
      const s = await chatStreamRaw(g, {});
      assert.equal(s.events.at(-1), '[DONE]');
    } finally {
      await g.stop();
      await m2?.stop();
    }
  });

  test('upstream closes the connection before answering (non-streaming) -> 502', async () => {
    await mock.setFaults({ model: 'cut-model', cut_rate: 1 });
    const r = await chat(gw, { model: 'cut-model' });
    assert.equal(r.status, 502, r.text);
    assertOpenAIError(assert, r.json, { type: 'upstream_error' });
    await assertServing(gw);
  });

  test('load shedding: over max_inflight_per_worker -> 503 overloaded', async () => {
    const g = await startGateway({
      upstreams: { mock: mock.url },
      threads: 1,
      config: { limits: { max_inflight_per_worker: 1 } },
    });
    const ac = new AbortController();
    try {
      const res = await fetch(`${g.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'slow-model', stream: true, messages: USER_MSG }),
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      const r = await chat(g, {});
      assert.equal(r.status, 503);
      assertOpenAIError(assert, r.json, { code: 'overloaded' });
      ac.abort();
      await waitFor(async () => (await chat(g, {})).status === 200, { timeout: ms(2000), what: 'capacity to come back' });
    } finally {
      ac.abort();
      await g.stop();
    }
  });
});

// ---------------------------------------------------------------------------- upstream contract

describe('upstream contract (scripted upstream)', { timeout: 60_000 }, () => {
  const CLIENT_KEY = 'sk-client-key-never-forwarded';
  const UPSTREAM_KEY = 'sk-upstream-secret';
  let fake;
  let gw;
  // What the scripted upstream answers next: a function (req, res, body).
  let answer;
  before(async () => {
    fake = await startFakeUpstream((req, res, body) => answer(req, res, body));
    gw = await startGateway({
      env: { SLUICE_IT_UPSTREAM_KEY: UPSTREAM_KEY, SLUICE_IT_CLIENT_KEY: CLIENT_KEY },
      config: {
        upstreams: [{ name: 'fake', url: `${fake.url}/openai/v1`, api_key_env: 'SLUICE_IT_UPSTREAM_KEY', timeouts: { idle_ms: 1000 } }],
        routes: [
          { name: 'raw', upstream: 'fake' },
          { name: 'bot', upstream: 'fake', model: 'target-model' },
        ],
        api_keys: [{ tenant: 'contract', key_env: 'SLUICE_IT_CLIENT_KEY' }],
        limits: { max_sse_event_bytes: 2048 },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await fake?.close();
  });
  const AUTH = { authorization: `Bearer ${CLIENT_KEY}` };
  const json = (res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  };
  const sse = (res) => res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });

  test('the request body reaches the upstream byte for byte, with the upstream key and the request id', async () => {
    answer = (req, res) => json(res, completionBody());
    const body =
      '{ "messages" : [ {"role":"user","content":"h\u00e9llo \u2713 \\u00e9"} ],\n  "model":"raw",' +
      ' "temperature":0.25, "x_custom":{"a":[1,2,{"b":null}]}, "n" : 1 }';
    const r = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json', 'x-client-header': 'should-not-leak' },
      body,
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).choices[0].message.content, 'hello from fake');
    const up = fake.requests.at(-1);
    assert.equal(up.method, 'POST');
    assert.equal(up.url, '/openai/v1/chat/completions', 'the base path of the upstream URL is kept');
    assert.equal(up.body, body, 'body forwarded unchanged');
    assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'upstream key from api_key_env');
    assert.ok(!JSON.stringify(up.headers).includes(CLIENT_KEY), 'the client key never goes upstream');
    assert.equal(up.headers.host, `127.0.0.1:${fake.port}`);
    assert.equal(up.headers['x-request-id'], r.headers.get('x-request-id'), 'same request id upstream and to the client');
  });

  test('a route rewrites only the model member', async () => {
    answer = (req, res) => json(res, completionBody('target-model'));
    const sentBody = { model: 'bot', messages: USER_MSG, temperature: 0.5, tools: [], metadata: { k: 'v' } };
    const r = await postJSON(`${gw.url}/v1/chat/completions`, sentBody, { headers: AUTH });
    assert.equal(r.status, 200);
    const up = JSON.parse(fake.requests.at(-1).body);
    assert.deepEqual(up, { ...sentBody, model: 'target-model' });
  });

  test('a stream without stream_options asks the upstream for usage and hides it from the client', async () => {
    answer = (req, res) => {
      sse(res);
      res.write(`data: ${chunkEvent('hi')}\n\n`);
      res.write(`data: ${chunkEvent(null, { finish: 'stop' })}\n\n`);
      res.write(`data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 } })}\n\n`);
      res.end('data: [DONE]\n\n');
    };
    const r = await chatStreamRaw(gw, { model: 'raw' }, { headers: AUTH });
    const up = JSON.parse(fake.requests.at(-1).body);
    assert.deepEqual(up.stream_options, { include_usage: true });
    assert.equal(r.events.length, 3, r.raw);
    assert.ok(!r.raw.includes('usage'), 'usage chunk stripped');
    const line = await gw.waitLog((l) => l.request_id === r.headers.get('x-request-id'));
    assert.equal(line.tokens_in, 4);
    assert.equal(line.tokens_out, 1);
    assert.equal(line.tenant, 'contract');
  });

  test('SSE split at every byte, with CRLF and comments, is reassembled and relayed intact', async () => {
    const events = [chunkEvent('Hel'), chunkEvent('lo, '), chunkEvent('w\u00f6rld'), chunkEvent(null, { finish: 'stop' })];
    const wire = Buffer.from(
      ': keep-alive\r\n\r\n' + events.map((e) => `data: ${e}\r\n\r\n`).join(': ping\r\n\r\n') + 'data: [DONE]\r\n\r\n',
    );
    answer = async (req, res) => {
      sse(res);
      for (let i = 0; i < wire.length; i += 3) {
        res.write(wire.subarray(i, i + 3));
        if (i % 60 === 0) await sleep(1);
      }
      res.end();
    };
    const r = await chatStreamRaw(gw, { model: 'raw', stream_options: { include_usage: false } }, { headers: AUTH });
    assert.equal(r.status, 200);
    assert.ok(!r.raw.includes('keep-alive') && !r.raw.includes('ping'), 'comments are not relayed');
    assert.deepEqual(r.events, [...events, '[DONE]']);
    const text = r.events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta.content ?? '').join('');
    assert.equal(text, 'Hello, w\u00f6rld');
  });

  test('a stream that ends cleanly without [DONE] gets a stream_cut error event', async () => {
    answer = (req, res) => {
      sse(res);
      res.write(`data: ${chunkEvent('partial')}\n\n`);
      res.end();
    };
    const r = await chatStreamRaw(gw, { model: 'raw' }, { headers: AUTH });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.events[0]).choices[0].delta.content, 'partial');
    assertOpenAIError(assert, JSON.parse(r.events.at(-1)), { code: 'stream_cut' });
    assert.ok(!r.events.includes('[DONE]'));
  });

  test('an upstream error event mid-stream is relayed and ends the stream', async () => {
    answer = (req, res) => {
      sse(res);
      res.write(`data: ${chunkEvent('some')}\n\n`);
      res.write(`data: ${JSON.stringify({ error: { message: 'overloaded upstream', type: 'server_error', param: null, code: 'upstream_overloaded' } })}\n\n`);
      res.write(`data: ${chunkEvent('never')}\n\n`);
      res.end('data: [DONE]\n\n');
    };
    const r = await chatStreamRaw(gw, { model: 'raw' }, { headers: AUTH });
    assertOpenAIError(assert, JSON.parse(r.events.at(-1)), { code: 'upstream_overloaded' });
    assert.ok(!r.raw.includes('never'), 'nothing after the error event');
    const line = await gw.waitLog((l) => l.request_id === r.headers.get('x-request-id'));
    assert.equal(line.status, 502);
    assert.equal(line.error_kind, 'upstream_error_event');
  });

  test('an SSE event over max_sse_event_bytes ends the stream with an error event', async () => {
    answer = (req, res) => {
      sse(res);
      res.write(`data: ${chunkEvent('ok')}\n\n`);
      res.write(`data: ${chunkEvent('x'.repeat(10000))}\n\n`);
      res.end('data: [DONE]\n\n');
    };
    const r = await chatStreamRaw(gw, { model: 'raw' }, { headers: AUTH });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.events[0]).choices[0].delta.content, 'ok');
    assertOpenAIError(assert, JSON.parse(r.events.at(-1)), { code: 'bad_stream' });
    assert.ok(!r.raw.includes('x'.repeat(3000)), 'the oversized event was not relayed');
  });

  test('a mid-stream failure ends the HTTP response cleanly (terminating chunk)', async () => {
    answer = (req, res) => {
      sse(res);
      res.write(`data: ${chunkEvent('before the cut')}\n\n`);
      setTimeout(() => res.socket.destroy(), 20);
    };
    const body = JSON.stringify({ model: 'raw', stream: true, messages: USER_MSG });
    const r = await rawRequest(
      gw.port,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_KEY}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      { timeout: 1500 },
    );
    assert.equal(r.status, 200);
    assert.match(r.text, /transfer-encoding: chunked/i);
    assert.match(r.text, /before the cut/);
    assert.match(r.text, /"code":"stream_cut"/);
    assert.ok(r.text.endsWith('\r\n0\r\n\r\n'), `response does not end with the last chunk: ${JSON.stringify(r.text.slice(-40))}`);
  });
});

// ---------------------------------------------------------------------------- admin

describe('admin API', { timeout: 60_000 }, () => {
  let gw;
  before(async () => {
    gw = await startGateway({ upstreams: { mock: mock.url } });
  });
  after(() => gw?.stop());

  test('every /admin/ path answers 401 without a valid token', async () => {
    const paths = [
      ['GET', '/admin/v1/anything'],
      ['GET', '/admin/v1/status'],
      ['POST', '/admin/v1/config/reload'],
      ['GET', '/admin/'],
      ['DELETE', '/admin/v1/routes/x'],
    ];
    for (const auth of [undefined, 'Bearer wrong-token', 'Basic YWRtaW46YWRtaW4=', 'Bearer ']) {
      for (const [method, p] of paths) {
        const r = await fetch(`${gw.adminUrl}${p}`, { method, headers: auth ? { authorization: auth } : {} });
        assert.equal(r.status, 401, `${method} ${p} with ${auth}`);
        assertOpenAIError(assert, await r.json());
      }
    }
  });

  test('the generated admin token (mode 0600) unlocks the API', async () => {
    const file = path.join(gw.dataDir, 'admin.token');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const token = gw.adminToken();
    assert.ok(token.length >= 20);
    const headers = { authorization: `Bearer ${token}` };
    const st = await fetch(`${gw.adminUrl}/admin/v1/status`, { headers });
    assert.equal(st.status, 200);
    const body = await st.json();
    assert.equal(typeof body.config_version, 'number');
    assert.equal(body.upstreams[0].name, 'mock');
    assert.ok(!JSON.stringify(body).includes(token), 'status never echoes the token');
    const any = await fetch(`${gw.adminUrl}/admin/v1/anything`, { headers });
    assert.equal(any.status, 404, 'authenticated but unknown path -> 404');
    await any.text();
    const rl = await fetch(`${gw.adminUrl}/admin/v1/config/reload`, { method: 'POST', headers });
    assert.equal(rl.status, 200);
    assert.ok((await rl.json()).config_version > body.config_version);
    const h = await fetch(`${gw.adminUrl}/healthz`);
    assert.equal(h.status, 200, 'ops endpoints need no token');
    await h.text();
  });

  test('configured admin tokens: viewer may read, only operator+ may reload; no bootstrap token', async () => {
    const g = await startGateway({
      upstreams: { mock: mock.url },
      config: {
        admin: {
          tokens: [
            { name: 'ro', role: 'viewer', token_sha256: sha256('viewer-secret') },
            { name: 'ops', role: 'operator', token_sha256: sha256('operator-secret') },
          ],
        },
      },
    });
    try {
      assert.ok(!existsSync(path.join(g.dataDir, 'admin.token')), 'no bootstrap token when tokens are configured');
      const as = (t) => ({ authorization: `Bearer ${t}` });
      const s = await fetch(`${g.adminUrl}/admin/v1/status`, { headers: as('viewer-secret') });
      assert.equal(s.status, 200);
      await s.text();
      const v = await fetch(`${g.adminUrl}/admin/v1/config/reload`, { method: 'POST', headers: as('viewer-secret') });
      assert.equal(v.status, 403);
      assertOpenAIError(assert, await v.json(), { code: 'insufficient_role' });
      const o = await fetch(`${g.adminUrl}/admin/v1/config/reload`, { method: 'POST', headers: as('operator-secret') });
      assert.equal(o.status, 200);
      await o.text();
    } finally {
      await g.stop();
    }
  });
});

// ---------------------------------------------------------------------------- lifecycle

describe('process lifecycle', { timeout: 60_000 }, () => {
  test('non-loopback listen without API keys: refuses to start, exits non-zero with a message', async () => {
    const dir = tempDir();
    const p = spawnSluice([
      'serve',
      '--upstream',
      `mock=${mock.url}`,
      '--listen',
      '0.0.0.0:0',
      '--admin-listen',
      '127.0.0.1:0',
      '--data-dir',
      dir,
    ]);
    const { code } = await p.waitExit(5000);
    assert.notEqual(code, 0);
    assert.match(p.stderr, /api.?keys|without API keys|refus/i, p.stderr);
    assert.doesNotMatch(p.stdout, /listening/);
  });

  // Issue 17: with SO_REUSEPORT a second process used to bind the same port and silently
  // take a share of the connections. Both mock-llm and serve must refuse, and the first
  // process must keep answering every connection.
  test('a port another process listens on: mock-llm and serve refuse to start, the first keeps all traffic', async () => {
    const second = spawnSluice(['mock-llm', '--listen', `127.0.0.1:${mock.port}`], { name: 'mock-llm-2' });
    const r2 = await second.waitExit(ms(5000));
    assert.notEqual(r2.code, 0);
    assert.match(second.stderr, /already in use/, second.stderr);
    assert.doesNotMatch(second.stdout, /listening/);
    const dir = tempDir();
    const gw = spawnSluice(['serve', '--upstream', `mock=${mock.url}`, '--listen', `127.0.0.1:${mock.port}`,
      '--admin-listen', '127.0.0.1:0', '--data-dir', dir]);
    const r3 = await gw.waitExit(ms(5000));
    assert.notEqual(r3.code, 0);
    assert.match(gw.stderr, /already in use/, gw.stderr);
    // The wildcard address overlaps the loopback one: refused too.
    const wild = spawnSluice(['mock-llm', '--listen', `0.0.0.0:${mock.port}`], { name: 'mock-llm-3' });
    assert.notEqual((await wild.waitExit(ms(5000))).code, 0);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${mock.url}/v1/models`, { headers: { connection: 'close' } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
  });

  test('two processes racing for one free port: exactly one of them gets it', async () => {
    const port = await closedPort();
    const a = spawnSluice(['mock-llm', '--listen', `127.0.0.1:${port}`], { name: 'race-a' });
    const b = spawnSluice(['mock-llm', '--listen', `127.0.0.1:${port}`], { name: 'race-b' });
    const winner = await Promise.race([
      a.waitLine(/listening/).then(() => a),
      b.waitLine(/listening/).then(() => b),
    ]);
    const loser = winner === a ? b : a;
    assert.notEqual((await loser.waitExit(ms(5000))).code, 0, loser.describe());
    assert.match(loser.stderr, /already in use/);
    await winner.stop();
  });

  test('an invalid config file at startup: exits non-zero naming the file and line', async () => {
    const dir = tempDir();
    const cfg = path.join(dir, 'bad.yaml');
    writeFileSync(cfg, `upstreams:\n  - name: a\n    url: ${mock.url}\n    bogus_key: 1\n`);
    const p = spawnSluice(['serve', '--config', cfg, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dir]);
    const { code } = await p.waitExit(5000);
    assert.notEqual(code, 0);
    assert.match(p.stderr, /bad\.yaml:4/);
    assert.match(p.stderr, /bogus_key/);
  });

  test('SIGHUP: an invalid config is rejected and the old one keeps serving; a valid one adds a route', async () => {
    const base = {
      upstreams: [{ name: 'mock', url: mock.url }],
      routes: [{ name: 'alpha', upstream: 'mock', model: 'mock-model' }],
    };
    const gw = await startGateway({ config: base });
    try {
      const ok = async (model) => (await chat(gw, { model })).status;
      assert.equal(await ok('alpha'), 200);
      assert.equal(await ok('beta'), 404);
      const v0 = (await (await fetch(`${gw.url}/readyz`)).json()).config_version;

      const invalid = [
        'upstreams: [ {name: mock, url: ',                                             // YAML syntax
        JSON.stringify({ ...base, routes: [{ name: 'beta', upstream: 'nope' }] }),     // unknown upstream
        JSON.stringify({ ...base, routez: [] }),                                       // unknown key
        JSON.stringify({ upstreams: [{ name: 'mock', url: 'ftp://x' }] }),             // bad URL
        JSON.stringify({ ...base, api_keys: [{ tenant: 't', key_env: 'SLUICE_IT_UNSET_VAR' }] }),
      ];
      let rejected = 0;
      for (const bad of invalid) {
        gw.writeConfig(bad);
        const mark = gw.proc.stderr.length;
        gw.proc.signal('SIGHUP');
        await waitFor(() => gw.proc.stderr.slice(mark).includes('reload rejected'), { timeout: ms(2000), what: 'reload rejection' });
        rejected++;
        assert.equal(await ok('alpha'), 200, `still serving after: ${bad}`);
        assert.equal(await ok('beta'), 404);
        assert.ok(gw.proc.running);
      }
      const m = await gw.metrics();
      assert.equal(m.value('sluice_config_reload_failures_total'), rejected);
      assert.equal((await (await fetch(`${gw.url}/readyz`)).json()).config_version, v0);

      gw.writeConfig({ ...base, routes: [...base.routes, { name: 'beta', upstream: 'mock', model: 'mock-model' }] });
      gw.proc.signal('SIGHUP');
      await waitFor(async () => (await ok('beta')) === 200, { timeout: ms(2000), what: 'route beta after reload' });
      assert.equal(await ok('alpha'), 200);
      assert.ok((await (await fetch(`${gw.url}/readyz`)).json()).config_version > v0);
      assert.equal((await gw.metrics()).value('sluice_config_reloads_total'), 1);
      const models = await (await fetch(`${gw.url}/v1/models`)).json();
      assert.deepEqual(models.data.map((d) => d.id).sort(), ['alpha', 'beta']);
    } finally {
      await gw.stop();
    }
  });

  test('SIGHUP while a stream is in flight: the stream finishes on the old config', async () => {
    const base = {
      upstreams: [{ name: 'mock', url: mock.url }],
      routes: [{ name: 'slow', upstream: 'mock', model: 'slow-model' }],
    };
    const gw = await startGateway({ config: base });
    try {
      const p = chatStreamRaw(gw, { model: 'slow' });
      await sleep(300);
      gw.writeConfig({ ...base, routes: [{ name: 'other', upstream: 'mock', model: 'mock-model' }] });
      const mark = gw.proc.stderr.length;
      gw.proc.signal('SIGHUP');
      // Wait for the reload itself: a request sent before it lands would take the slow route.
      await waitFor(() => gw.proc.stderr.slice(mark).includes('reloaded'), { timeout: ms(2000), what: 'reload' });
      await waitFor(async () => (await chat(gw, { model: 'slow' })).status === 404, { timeout: ms(2000), what: 'route removal' });
      const r = await p;
      assert.equal(r.status, 200);
      assert.equal(r.events.at(-1), '[DONE]');
    } finally {
      await gw.stop();
    }
  });

  test('SIGHUP applies a lowered max_body_bytes (or the gateway says it needs a restart)', async () => {
    const base = { upstreams: [{ name: 'mock', url: mock.url }] };
    const gw = await startGateway({ config: base });
    try {
      const body = { messages: [{ role: 'user', content: 'x'.repeat(8000) }] };
      assert.equal((await chat(gw, body)).status, 200);
      gw.writeConfig({ ...base, limits: { max_body_bytes: 4096 } });
      const mark = gw.proc.stderr.length;
      gw.proc.signal('SIGHUP');
      await waitFor(() => gw.proc.stderr.slice(mark).includes('reloaded'), { timeout: ms(2000), what: 'reload' });
      const warned = /restart/i.test(gw.proc.stderr.slice(mark));
      const status = (await chat(gw, body)).status;
      assert.ok(status === 413 || warned, `after lowering max_body_bytes to 4096 an 8 KB body got ${status} and no restart notice was printed:\n${gw.proc.stderr.slice(mark)}`);
    } finally {
      await gw.stop();
    }
  });

  test('SIGTERM past drain_timeout_ms: exits on time, the cut stream gets an error event and a log record', async () => {
    const gw = await startGateway({ upstreams: { mock: mock.url }, config: { limits: { drain_timeout_ms: 300 } } });
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'slow-model', stream: true, messages: USER_MSG }),
    });
    const rid = res.headers.get('x-request-id');
    const reader = res.body.getReader();
    let raw = Buffer.from((await reader.read()).value).toString();
    const t0 = Date.now();
    gw.proc.signal('SIGTERM');
    let transportError = null;
    try {
      for (;;) {
        const x = await reader.read();
        if (x.done) break;
        raw += Buffer.from(x.value).toString();
      }
    } catch (e) {
      transportError = e.cause?.code || e.message;
    }
    const { code } = await gw.proc.waitExit(3000);
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < ms(1500), `exit took ${Date.now() - t0} ms with drain_timeout_ms 300`);
    const events = sseData(raw);
    const problems = [];
    let last;
    try {
      last = JSON.parse(events.at(-1));
    } catch {
      last = undefined;
    }
    if (!last?.error) problems.push(`client got no error event (last event ${JSON.stringify(events.at(-1))?.slice(0, 80)}, transport error ${transportError})`);
    if (!gw.requestLog().some((l) => l.request_id === rid)) problems.push('the cut stream has no request log record');
    assert.deepEqual(problems, []);
  });

  test('the bootstrap admin token survives a restart with the same data dir', async () => {
    const dir = tempDir();
    const g1 = await startGateway({ upstreams: { mock: mock.url }, dataDir: dir });
    const token = g1.adminToken();
    await g1.stop();
    const g2 = await startGateway({ upstreams: { mock: mock.url }, dataDir: dir });
    try {
      assert.equal(g2.adminToken(), token, 'token file kept');
      const r = await fetch(`${g2.adminUrl}/admin/v1/status`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      await r.text();
    } finally {
      await g2.stop();
    }
  });

  test('api_keys key_sha256 that is not lowercase hex: works or is rejected at startup, never silently dead', async () => {
    const key = 'sk-it-upper-case-hash';
    const cases = [
      ['uppercase hex of the key', sha256(key).toUpperCase(), true],
      ['64 non-hex characters', 'z'.repeat(64), false],
    ];
    const problems = [];
    for (const [what, hash, couldWork] of cases) {
      let g;
      try {
        g = await startGateway({ upstreams: { mock: mock.url }, config: { api_keys: [{ tenant: 't', key_sha256: hash }] } });
      } catch {
        continue; // rejected at startup: fine
      }
      try {
        const status = (await chat(g, {}, { headers: { authorization: `Bearer ${key}` } })).status;
        if (!couldWork) problems.push(`${what}: accepted at startup although no key can ever match it`);
        else if (status !== 200) problems.push(`${what}: accepted at startup, but the matching key gets ${status}`);
      } finally {
        await g.stop();
      }
    }
    assert.deepEqual(problems, []);
  });

  test('SIGTERM drains: the in-flight stream completes with [DONE], new connections are refused, exit 0', async () => {
    const gw = await startGateway({ upstreams: { mock: mock.url } });
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'slow-model', stream: true, messages: USER_MSG }),
    });
    const rid = res.headers.get('x-request-id');
    const reader = res.body.getReader();
    let raw = Buffer.from((await reader.read()).value).toString();
    const t0 = Date.now();
    gw.proc.signal('SIGTERM');
    await sleep(150);
    const during = await fetch(`${gw.url}/healthz`).then(
      (r) => `status ${r.status}`,
      (e) => e.cause?.code || e.message,
    );
    assert.equal(during, 'ECONNREFUSED', 'no new connections while draining');
    for (;;) {
      const x = await reader.read();
      if (x.done) break;
      raw += Buffer.from(x.value).toString();
    }
    const events = sseData(raw);
    assert.equal(events.at(-1), '[DONE]', 'the drained stream ran to completion');
    const content = events
      .slice(0, -1)
      .map((e) => JSON.parse(e))
      .flatMap((c) => c.choices.map((ch) => ch.delta?.content).filter(Boolean));
    assert.ok(content.length >= 45, `only ${content.length} content pieces`);
    const { code, signal } = await gw.proc.waitExit(5000);
    assert.equal(signal, null);
    assert.equal(code, 0, gw.proc.stderr);
    assert.ok(Date.now() - t0 < ms(4000));
    // The request log is flushed on exit and holds the drained stream.
    const line = gw.requestLog().find((l) => l.request_id === rid);
    assert.ok(line, 'drained request is in the request log');
    assert.equal(line.status, 200);
  });
});
