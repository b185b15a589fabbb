// surface.test.mjs: the rest of the OpenAI surface common clients call: models.retrieve,
// legacy completions (whole and streamed) passed through, and CORS for browsers (off by
// default; configured origins only).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import OpenAI from 'openai';

import { ms, startGateway, startMock } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

describe('models/{id}, completions and CORS', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  let plain;
  let client;
  before(async () => {
    mock = await startMock({ config: { seed: 6, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    const common = {
      upstreams: [{ name: 'mock', url: `${mock.url}/v1` }],
      routes: [
        { name: 'bot', upstream: 'mock', model: 'mock-1' },
        { name: 'org/model-x', upstream: 'mock', model: 'mock-2' },
        { name: 'secret', upstream: 'mock', model: 'mock-3' },
      ],
      api_keys: [{ tenant: 'acme', key_sha256: sha256('sk-acme') }],
      tenants: [{ name: 'acme', routes: ['bot', 'org/model-x'] }],
    };
    gw = await startGateway({ config: { ...common, cors: { allowed_origins: ['https://app.example.com'], max_age_s: 300 } } });
    plain = await startGateway({ config: common });
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-acme', maxRetries: 0 });
  });
  after(async () => {
    await Promise.all([gw?.stop(), plain?.stop()]);
    await mock?.stop();
  });

  test('models.retrieve: a route the tenant may call; 404 for others, names with a slash included', async () => {
    const m = await client.models.retrieve('bot');
    assert.deepEqual({ id: m.id, object: m.object }, { id: 'bot', object: 'model' });
    assert.equal((await client.models.retrieve('org/model-x')).id, 'org/model-x');
    const hidden = await client.models.retrieve('secret').catch((e) => e);
    assert.ok(hidden instanceof OpenAI.NotFoundError, String(hidden));
    assert.equal(hidden.code, 'model_not_found');
    assert.equal((await client.models.retrieve('nope').catch((e) => e)).status, 404);
    const anon = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-nope', maxRetries: 0 });
    assert.equal((await anon.models.retrieve('bot').catch((e) => e)).status, 401);
  });

  test('completions: whole and streamed, passed through to the upstream, usage accounted', async () => {
    const { data: c, response } = await client.completions
      .create({ model: 'bot', prompt: 'Once upon a time', max_tokens: 5 })
      .withResponse();
    assert.equal(c.object, 'text_completion');
    assert.ok(c.choices[0].text.length > 0);
    assert.equal(c.choices[0].finish_reason, 'length');
    assert.equal(c.usage.completion_tokens, 5);
    const line = await gw.waitLog((l) => l.request_id === response.headers.get('x-request-id'));
    assert.equal(line.tokens_out, 5);

    const stream = await client.completions.create({ model: 'bot', prompt: 'Stream a story', stream: true });
    let text = '';
    let chunks = 0;
    for await (const ch of stream) {
      chunks++;
      text += ch.choices[0]?.text ?? '';
      assert.equal(ch.usage ?? undefined, undefined, 'the usage chunk the gateway asked for is not relayed');
    }
    assert.ok(chunks > 1 && text.length > 0);
  });

  test('CORS preflight: allowed origins get the methods, headers and max age; others a 403', async () => {
    const pre = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.equal(pre.headers.get('access-control-allow-headers'), 'authorization, content-type, x-stainless-os');
    assert.equal(pre.headers.get('access-control-max-age'), '300');
    const evil = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    const off = await fetch(`${plain.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(off.status, 403);
    assert.match((await off.json()).error.message, /CORS is off/);
  });

  test('CORS on the answer: allow-origin and exposed headers on answers, streams and errors', async () => {
    const browser = new OpenAI({
      baseURL: gw.baseURL,
      apiKey: 'sk-acme',
      maxRetries: 0,
      defaultHeaders: { origin: 'https://app.example.com' },
    });
    const { response } = await browser.chat.completions
      .create({ model: 'bot', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.match(response.headers.get('access-control-expose-headers'), /x-request-id/);
    const { response: sr } = await browser.chat.completions
      .create({ model: 'bot', messages: [{ role: 'user', content: 'hi' }], stream: true })
      .withResponse();
    assert.equal(sr.headers.get('access-control-allow-origin'), 'https://app.example.com');
    await sr.text();
    const err = await browser.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e);
    assert.equal(err.status, 404);
    assert.equal(err.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const models = await fetch(`${gw.baseURL}/models`, {
      headers: { origin: 'https://app.example.com', authorization: 'Bearer sk-acme' },
    });
    assert.equal(models.headers.get('access-control-allow-origin'), 'https://app.example.com');
    // An origin that is not allowed gets no CORS headers (the browser blocks the answer).
    const other = await fetch(`${gw.baseURL}/models`, { headers: { origin: 'https://evil.example.com', authorization: 'Bearer sk-acme' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });
});

describe('a gateway without routes passes its upstream\'s models through', { timeout: ms(30_000) }, () => {
  test('one plain model id reaches the upstream; paths that are not a model id never do', async () => {
    const mock = await startMock({ config: { seed: 6 } });
    const gw = await startGateway({ upstreams: { mock: `${mock.url}/v1` } });
    try {
      const list = await fetch(`${gw.baseURL}/models`);
      assert.equal(list.status, 200);
      // (fetch itself folds bare dot segments; encoded ones reach the gateway as sent.)
      for (const bad of ['..%2F..%2Fv1%2Ffiles', 'a%2Fb', 'x%00y', '%2E%2E%2Fx']) {
        const r = await fetch(`${gw.baseURL}/models/${bad}`);
        assert.equal(r.status, 404, bad);
        assert.equal((await r.json()).error.code, 'model_not_found', bad);
      }
    } finally {
      await gw.stop();
      await mock.stop();
    }
  });
});
