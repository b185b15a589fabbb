// sdk.test.mjs: sluice driven by the official OpenAI Node SDK, against mock-llm.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, {
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
} from 'openai';

import { USER_MSG, closedPort, ms, startGateway, startMock, waitFor } from './harness.mjs';

const TEST_KEY = 'sk-it-acme-0123456789';

const MOCK_CONFIG = {
  seed: 7,
  defaults: { output_tokens: [8, 24] },
  models: [
    { name: 'mock-model' },
    // 60 tokens at 40 ms each: a stream that lasts ~2.4 s, long enough to abort mid-way.
    { name: 'slow-model', tpot_ms: 40, output_tokens: [60, 60] },
  ],
};

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] }, days: { type: 'integer' } },
      required: ['city', 'unit'],
    },
  },
};

function sdk(gw, opts = {}) {
  return new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-anything', maxRetries: 0, timeout: 10_000, ...opts });
}

function words(s) {
  return s.split(/\s+/).filter(Boolean);
}

// mock-llm's tokenizer: one token per word, words longer than 8 bytes split in 8-byte pieces.
function mockTokens(s) {
  return words(s).reduce((n, w) => n + Math.ceil(Buffer.byteLength(w) / 8), 0);
}

let mock;
let gw; // zero-config: one upstream, no routes, any model passes through (max_attempts 2)
let gwStrict; // max_attempts 1, idle_ms 300
let gwRoutes; // routes + api keys

before(async () => {
  mock = await startMock({ config: MOCK_CONFIG });
  gw = await startGateway({ upstreams: { mock: mock.url } });
  gwStrict = await startGateway({
    config: {
      upstreams: [{ name: 'mock', url: mock.url, timeouts: { idle_ms: 300, first_byte_ms: 2000 } }],
      limits: { max_attempts: 1 },
    },
  });
  gwRoutes = await startGateway({
    env: { SLUICE_IT_KEY: TEST_KEY },
    config: {
      upstreams: [
        { name: 'mock', url: mock.url },
        { name: 'mock-b', url: `${mock.url}/v1` },
      ],
      routes: [
        { name: 'support-bot', upstream: 'mock', model: 'mock-model' },
        { name: 'limited', upstreams: ['mock', 'mock-b'], model: 'limited-model' },
      ],
      api_keys: [{ tenant: 'acme', key_env: 'SLUICE_IT_KEY' }],
    },
  });
});

after(async () => {
  await Promise.all([gw?.stop(), gwStrict?.stop(), gwRoutes?.stop()]);
  await mock?.stop();
});

describe('chat completions (non-streaming)', { timeout: 60_000 }, () => {
  test('returns a completion with consistent usage', async () => {
    const client = sdk(gw);
    const res = await client.chat.completions.create({ model: 'mock-model', messages: USER_MSG });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices.length, 1);
    const msg = res.choices[0].message;
    assert.equal(msg.role, 'assistant');
    assert.equal(typeof msg.content, 'string');
    assert.ok(msg.content.length > 0);
    assert.equal(res.choices[0].finish_reason, 'stop');
    assert.ok(res.usage, 'usage present');
    assert.ok(res.usage.prompt_tokens > 0);
    // mock-llm generates 8..24 words (configured) and counts tokens with its own tokenizer.
    const nw = words(msg.content).length;
    assert.ok(nw >= 8 && nw <= 24, `${nw} words`);
    assert.equal(res.usage.completion_tokens, mockTokens(msg.content));
    assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
  });

  test('max_tokens truncates with finish_reason length', async () => {
    const res = await sdk(gw).chat.completions.create({ model: 'mock-model', messages: USER_MSG, max_tokens: 3 });
    assert.equal(res.choices[0].finish_reason, 'length');
    assert.equal(res.usage.completion_tokens, 3);
  });

  test('x-request-id header is present and matches a request log line', async () => {
    const { data, response } = await sdk(gw)
      .chat.completions.create({ model: 'mock-model', messages: USER_MSG })
      .withResponse();
    const rid = response.headers.get('x-request-id');
    assert.ok(rid && rid.length >= 8, `x-request-id: ${rid}`);
    assert.equal(data._request_id, rid, 'SDK exposes the request id');
    const line = await gw.waitLog((l) => l.request_id === rid);
    assert.equal(line.status, 200);
    assert.equal(line.model, 'mock-model');
    assert.equal(line.upstream, 'mock');
    assert.equal(line.stream, false);
    assert.equal(line.tokens_in, data.usage.prompt_tokens);
    assert.equal(line.tokens_out, data.usage.completion_tokens);
  });

  test('n=2 returns two choices and usage counts both', async () => {
    const res = await sdk(gw).chat.completions.create({ model: 'mock-model', messages: USER_MSG, n: 2 });
    assert.equal(res.choices.length, 2);
    assert.deepEqual(
      res.choices.map((c) => c.index),
      [0, 1],
    );
    for (const c of res.choices) assert.ok(c.message.content.length > 0);
    const perChoice = mockTokens(res.choices[0].message.content);
    assert.equal(res.usage.completion_tokens, 2 * perChoice);
  });

  test('response_format json_object yields parseable JSON', async () => {
    const res = await sdk(gw).chat.completions.create({
      model: 'mock-model',
      messages: [{ role: 'user', content: 'Answer in JSON.' }],
      response_format: { type: 'json_object' },
    });
    const parsed = JSON.parse(res.choices[0].message.content);
    assert.equal(typeof parsed, 'object');
    assert.equal(typeof parsed.answer, 'string');
  });

  test('tool call with arguments for the required parameters', async () => {
    const res = await sdk(gw).chat.completions.create({
      model: 'mock-model',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [WEATHER_TOOL],
    });
    const choice = res.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.ok(call.id);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'mock', unit: 'mock' });
  });
});

describe('chat completions (streaming)', { timeout: 60_000 }, () => {
  test('stream_options.include_usage: usage chunk arrives last and matches the content', async () => {
    const client = sdk(gw);
    const stream = await client.chat.completions.create({
      model: 'mock-model',
      messages: USER_MSG,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length > 3);
    const usageChunks = chunks.filter((c) => c.usage);
    assert.equal(usageChunks.length, 1, 'exactly one usage chunk');
    const last = chunks.at(-1);
    assert.ok(last.usage, 'usage chunk is the last one');
    assert.deepEqual(last.choices, []);
    const contentPieces = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content).filter((x) => x));
    const text = contentPieces.join('');
    assert.ok(text.length > 0);
    assert.equal(last.usage.completion_tokens, contentPieces.length);
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
    const finish = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason).filter(Boolean));
    assert.deepEqual(finish, ['stop']);
  });

  test('without include_usage no usage-only chunk reaches the client, yet tokens are accounted', async () => {
    const { data: stream, response } = await sdk(gw)
      .chat.completions.create({ model: 'mock-model', messages: USER_MSG, stream: true })
      .withResponse();
    const rid = response.headers.get('x-request-id');
    assert.ok(rid);
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length > 0);
    for (const c of chunks) {
      assert.ok(c.usage === undefined || c.usage === null, `unexpected usage in ${JSON.stringify(c)}`);
      assert.ok(c.choices.length > 0, `unexpected chunk without choices: ${JSON.stringify(c)}`);
    }
    const pieces = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content).filter((x) => x));
    // The gateway asked the upstream for usage on its own behalf: the log has the tokens.
    const line = await gw.waitLog((l) => l.request_id === rid);
    assert.equal(line.stream, true);
    assert.equal(line.status, 200);
    assert.equal(line.tokens_out, pieces.length);
    assert.ok(line.tokens_in > 0);
    assert.equal(typeof line.ttft_ms, 'number');
  });

  test('streamed tool-call deltas assemble into valid arguments', async () => {
    const stream = await sdk(gw).chat.completions.create({
      model: 'mock-model',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [WEATHER_TOOL],
      stream: true,
    });
    const calls = new Map();
    let finish;
    for await (const c of stream) {
      for (const ch of c.choices) {
        if (ch.finish_reason) finish = ch.finish_reason;
        for (const tc of ch.delta?.tool_calls ?? []) {
          const cur = calls.get(tc.index) ?? { id: undefined, name: '', arguments: '' };
          if (tc.id) cur.id = tc.id;
          if (tc.function?.name) cur.name += tc.function.name;
          if (tc.function?.arguments) cur.arguments += tc.function.arguments;
          calls.set(tc.index, cur);
        }
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.size, 1);
    const call = calls.get(0);
    assert.ok(call.id);
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'mock', unit: 'mock' });
  });

  test('SDK stream helper assembles a tool call (finalChatCompletion)', async () => {
    const runner = sdk(gw).chat.completions.stream({
      model: 'mock-model',
      messages: [{ role: 'user', content: 'Weather in Rome?' }],
      tools: [WEATHER_TOOL],
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'mock', unit: 'mock' });
  });

  test('n=2 streamed: both choices complete', async () => {
    const stream = await sdk(gw).chat.completions.create({
      model: 'mock-model',
      messages: USER_MSG,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ['', ''];
    const finish = [];
    let usage;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        text[ch.index] += ch.delta?.content ?? '';
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
    }
    assert.ok(text[0].length > 0 && text[1].length > 0);
    assert.deepEqual(finish, ['stop', 'stop']);
    assert.equal(usage.completion_tokens, mockTokens(text[0]) + mockTokens(text[1]));
  });

  test('40 concurrent streams on two workers do not mix', async () => {
    const client = sdk(gw);
    const prompts = Array.from({ length: 40 }, (_, i) => `concurrent prompt number ${i}`);
    // mock-llm answers a prompt deterministically: the non-streamed answer is the reference.
    const expected = await Promise.all(
      prompts.map(async (p) => (await client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: p }] })).choices[0].message.content),
    );
    assert.ok(new Set(expected).size > 30, 'prompts give distinct answers');
    const got = await Promise.all(
      prompts.map(async (p) => {
        const stream = await client.chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: p }], stream: true });
        const ids = new Set();
        let text = '';
        for await (const c of stream) {
          ids.add(c.id);
          text += c.choices[0]?.delta?.content ?? '';
        }
        assert.equal(ids.size, 1, 'all chunks of one stream share one id');
        return text;
      }),
    );
    assert.deepEqual(got, expected);
  });

  test('client abort mid-stream cancels the upstream stream', async () => {
    const before = await mock.stats();
    const ac = new AbortController();
    const { data: stream, response } = await sdk(gw)
      .chat.completions.create({ model: 'slow-model', messages: USER_MSG, stream: true }, { signal: ac.signal })
      .withResponse();
    const rid = response.headers.get('x-request-id');
    let n = 0;
    const t0 = Date.now();
    try {
      for await (const c of stream) {
        if (c.choices[0]?.delta?.content) n++;
        if (n === 3) ac.abort();
      }
    } catch (e) {
      // Depending on timing the SDK either ends silently or raises an abort error.
      assert.ok(e.name === 'AbortError' || e.constructor.name === 'APIUserAbortError', `unexpected ${e}`);
    }
    assert.ok(Date.now() - t0 < Math.min(ms(1500), 2200), 'the abort ended the stream long before it would have completed');
    const st = await waitFor(
      async () => {
        const s = await mock.stats();
        return s.streams_aborted >= before.streams_aborted + 1 ? s : null;
      },
      { timeout: ms(2000), what: 'mock streams_aborted to increase' },
    );
    assert.equal(st.streams_completed, before.streams_completed, 'the aborted stream must not run to completion upstream');
    const line = await gw.waitLog((l) => l.request_id === rid);
    assert.equal(line.status, 499);
    assert.equal(line.error_kind, 'client_abort');
  });

  test('mid-stream upstream cut surfaces as an APIError, not a silent end', async () => {
    await mock.setFaults({ model: 'cut-model', cut_rate: 1, cut_after_tokens: 3 });
    const stream = await sdk(gw).chat.completions.create({ model: 'cut-model', messages: USER_MSG, stream: true });
    let pieces = 0;
    let err;
    try {
      for await (const c of stream) if (c.choices[0]?.delta?.content) pieces++;
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'stream iteration must throw');
    assert.ok(err instanceof APIError, `expected APIError, got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.code, 'stream_cut');
    assert.ok(pieces >= 1, 'content before the cut was relayed');
  });

  test('mid-stream stall beyond idle_ms ends with an idle_timeout error event', async () => {
    await mock.setFaults({ model: 'stall-model', stall_rate: 1, stall_ms: 5000, cut_after_tokens: 2 });
    const t0 = Date.now();
    const stream = await sdk(gwStrict).chat.completions.create({ model: 'stall-model', messages: USER_MSG, stream: true });
    let err;
    try {
      for await (const _ of stream) {
        /* drain */
      }
    } catch (e) {
      err = e;
    }
    const elapsed = Date.now() - t0;
    assert.ok(err instanceof APIError, `expected APIError, got ${err}`);
    assert.equal(err.code, 'idle_timeout');
    assert.ok(elapsed < Math.min(ms(2500), 4500), `idle timeout took ${elapsed} ms (idle_ms is 300)`);
  });
});

describe('embeddings and models', { timeout: 60_000 }, () => {
  test('embeddings: SDK default (base64) decodes to unit vectors of the requested size', async () => {
    const client = sdk(gw);
    const res = await client.embeddings.create({ model: 'mock-embed', input: ['alpha', 'beta', 'gamma'] });
    assert.equal(res.data.length, 3);
    res.data.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.ok(Array.isArray(d.embedding), 'decoded to an array');
      assert.equal(d.embedding.length, 16);
      const norm = Math.sqrt(d.embedding.reduce((a, x) => a + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
    });
    assert.ok(res.usage.prompt_tokens > 0);
    const sized = await client.embeddings.create({ model: 'mock-embed', input: 'alpha', dimensions: 64 });
    assert.equal(sized.data[0].embedding.length, 64);
  });

  test('embeddings: float and base64 encodings carry the same vector', async () => {
    const client = sdk(gw);
    const b64 = await client.embeddings.create({ model: 'mock-embed', input: 'same input', dimensions: 32 });
    const flt = await client.embeddings.create({
      model: 'mock-embed',
      input: 'same input',
      dimensions: 32,
      encoding_format: 'float',
    });
    assert.equal(flt.data[0].embedding.length, 32);
    for (let i = 0; i < 32; i++) {
      assert.ok(Math.abs(b64.data[0].embedding[i] - flt.data[0].embedding[i]) < 1e-5, `component ${i}`);
    }
  });

  test('models.list passes through in zero-config mode', async () => {
    const ids = [];
    for await (const m of sdk(gw).models.list()) ids.push(m.id);
    assert.ok(ids.includes('mock-model'), `got ${ids}`);
    assert.ok(ids.includes('slow-model'), `got ${ids}`);
  });

  test('models.list lists the configured routes (with an API key)', async () => {
    const ids = [];
    for await (const m of sdk(gwRoutes, { apiKey: TEST_KEY }).models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['limited', 'support-bot']);
  });

  test('a route rewrites the model name for its upstream', async () => {
    const res = await sdk(gwRoutes, { apiKey: TEST_KEY }).chat.completions.create({
      model: 'support-bot',
      messages: USER_MSG,
    });
    assert.equal(res.model, 'mock-model', 'the upstream saw the route target model');
    assert.ok(res.choices[0].message.content.length > 0);
    const line = await gwRoutes.waitLog((l) => l.request_id === res._request_id);
    assert.equal(line.route, 'support-bot');
    assert.equal(line.tenant, 'acme');
  });
});

describe('errors as SDK error classes', { timeout: 60_000 }, () => {
  test('malformed JSON -> BadRequestError (invalid_json), via raw fetch and via the SDK', async () => {
    const raw = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"mock-model","messages":[{"role":"user","content":"hi"}',
    });
    assert.equal(raw.status, 400);
    const body = await raw.json();
    assert.equal(body.error.code, 'invalid_json');
    assert.ok(raw.headers.get('x-request-id'));

    // The SDK never sends bad JSON on its own: give it a fetch that truncates the body.
    const client = sdk(gw, {
      fetch: (url, init) => fetch(url, { ...init, body: String(init.body).slice(0, 20) }),
    });
    await assert.rejects(client.chat.completions.create({ model: 'mock-model', messages: USER_MSG }), (e) => {
      assert.ok(e instanceof BadRequestError, `got ${e?.constructor?.name}: ${e}`);
      assert.equal(e.status, 400);
      assert.equal(e.code, 'invalid_json');
      assert.ok(e.requestID, 'request id on the error');
      return true;
    });
  });

  test('invalid parameter (n: 0) -> BadRequestError', async () => {
    await assert.rejects(sdk(gw).chat.completions.create({ model: 'mock-model', messages: USER_MSG, n: 0 }), (e) => {
      assert.ok(e instanceof BadRequestError, `got ${e?.constructor?.name}: ${e}`);
      assert.match(e.message, /'n'/);
      return true;
    });
  });

  test('unknown model with routes configured -> NotFoundError (model_not_found)', async () => {
    await assert.rejects(
      sdk(gwRoutes, { apiKey: TEST_KEY }).chat.completions.create({ model: 'no-such-route', messages: USER_MSG }),
      (e) => {
        assert.ok(e instanceof NotFoundError, `got ${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 404);
        assert.equal(e.code, 'model_not_found');
        return true;
      },
    );
  });

  test('wrong or missing API key -> AuthenticationError; right key works', async () => {
    for (const apiKey of ['sk-wrong', `${TEST_KEY}x`]) {
      await assert.rejects(
        sdk(gwRoutes, { apiKey }).chat.completions.create({ model: 'support-bot', messages: USER_MSG }),
        (e) => {
          assert.ok(e instanceof AuthenticationError, `got ${e?.constructor?.name}: ${e}`);
          assert.equal(e.status, 401);
          return true;
        },
      );
    }
    const noKey = await fetch(`${gwRoutes.url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'support-bot', messages: USER_MSG }),
    });
    assert.equal(noKey.status, 401);
    assert.equal((await noKey.json()).error.type, 'invalid_request_error');
    const models = await fetch(`${gwRoutes.url}/v1/models`);
    assert.equal(models.status, 401, 'listing models needs a key too');
    const ok = await sdk(gwRoutes, { apiKey: TEST_KEY }).chat.completions.create({
      model: 'support-bot',
      messages: USER_MSG,
    });
    assert.ok(ok.choices[0].message.content);
  });

  test('upstream 500 with max_attempts 1 -> InternalServerError after exactly one upstream attempt', async () => {
    await mock.setFaults({ model: 'broken-model', error_rate: 1 });
    const before = (await mock.stats()).requests;
    await assert.rejects(
      sdk(gwStrict).chat.completions.create({ model: 'broken-model', messages: USER_MSG }),
      (e) => {
        assert.ok(e instanceof InternalServerError, `got ${e?.constructor?.name}: ${e}`);
        assert.ok(e instanceof APIError);
        assert.equal(e.status, 500);
        return true;
      },
    );
    assert.equal((await mock.stats()).requests - before, 1);
  });

  test('upstream 500 with the default max_attempts (2) is retried once, then surfaced', async () => {
    const before = (await mock.stats()).requests;
    const { response } = await sdk(gw)
      .chat.completions.create({ model: 'broken-model', messages: USER_MSG })
      .withResponse()
      .catch((e) => ({ response: { headers: e.headers }, error: e }));
    assert.equal((await mock.stats()).requests - before, 2);
    const rid = response.headers.get('x-request-id');
    const line = await gw.waitLog((l) => l.request_id === rid);
    assert.equal(line.attempts, 2);
    assert.equal(line.status, 500);
  });

  test('upstream 429 with retries exhausted -> RateLimitError with Retry-After', async () => {
    await mock.setFaults({ model: 'limited-model', rate_limit_rate: 1, retry_after_s: 7 });
    // Single upstream: the 429 is passed straight through.
    await assert.rejects(sdk(gw).chat.completions.create({ model: 'limited-model', messages: USER_MSG }), (e) => {
      assert.ok(e instanceof RateLimitError, `got ${e?.constructor?.name}: ${e}`);
      assert.equal(e.status, 429);
      assert.equal(e.headers.get('retry-after'), '7');
      return true;
    });
    // A route over two upstreams: the gateway tries the second, then gives up with the 429.
    const before = (await mock.stats()).requests;
    await assert.rejects(
      sdk(gwRoutes, { apiKey: TEST_KEY }).chat.completions.create({ model: 'limited', messages: USER_MSG }),
      (e) => {
        assert.ok(e instanceof RateLimitError, `got ${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 429);
        return true;
      },
    );
    assert.equal((await mock.stats()).requests - before, 2, 'both upstreams of the route were tried');
  });

  test('upstream unreachable -> InternalServerError-class 502 (SDK sees APIError status 502)', async () => {
    const port = await closedPort();
    const g = await startGateway({ upstreams: { dead: `http://127.0.0.1:${port}` } });
    try {
      await assert.rejects(sdk(g).chat.completions.create({ model: 'm', messages: USER_MSG }), (e) => {
        assert.ok(e instanceof InternalServerError, `got ${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 502);
        assert.equal(e.type, 'upstream_error');
        return true;
      });
    } finally {
      await g.stop();
    }
  });
});
