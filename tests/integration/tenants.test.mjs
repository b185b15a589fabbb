// tenants.test.mjs: per-tenant rate limits (issue 10), through the official OpenAI SDK:
// OpenAI's x-ratelimit-* headers on every response, a limit hit as a 429 with Retry-After
// that the SDK's own retry logic honours, and limits that hold under concurrency.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import OpenAI from 'openai';

import { USER_MSG, errorHeader as hdr, ms, startGateway, startMock } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
// An SDK error's response header (a Headers object or a plain record, by SDK version).

describe('tenant rate limits', { timeout: ms(60_000) }, () => {
  let mock;
  let slow;
  let gw;
  before(async () => {
    mock = await startMock({ config: { seed: 3, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8] } } });
    // Answers that take a while: concurrent requests are all in flight at once.
    slow = await startMock({ config: { seed: 3, defaults: { ttft_ms: 800, tpot_ms: 0.2, output_tokens: [4, 8] } } });
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'm', url: `${mock.url}/v1` },
          { name: 's', url: `${slow.url}/v1` },
        ],
        routes: [
          { name: 'bot', upstream: 'm', model: 'm' },
          { name: 'slowbot', upstream: 's', model: 'm' },
        ],
        api_keys: [
          { tenant: 'acme', key_sha256: sha256('sk-acme') },
          { tenant: 'tight', key_sha256: sha256('sk-tight') },
          { tenant: 'tokens', key_sha256: sha256('sk-tokens') },
          { tenant: 'free', key_sha256: sha256('sk-free') },
        ],
        tenants: [
          { name: 'acme', rpm: 600, tpm: 1000000 },
          { name: 'tight', rpm: 20 },
          { name: 'tokens', tpm: 600, max_input_tokens: 500 },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([mock?.stop(), slow?.stop()]);
  });

  const client = (key, extra = {}) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0, ...extra });

  test("every response carries OpenAI's x-ratelimit-* headers, counting down", async () => {
    const { data, response } = await client('sk-acme')
      .chat.completions.create({ model: 'bot', messages: USER_MSG, max_tokens: 8 })
      .withResponse();
    assert.ok(data.choices[0].message.content.length > 0);
    const h = response.headers;
    assert.equal(h.get('x-ratelimit-limit-requests'), '600');
    assert.equal(h.get('x-ratelimit-limit-tokens'), '1000000');
    const remaining = Number(h.get('x-ratelimit-remaining-requests'));
    assert.ok(remaining >= 590 && remaining < 600, `remaining ${remaining}`);
    assert.match(h.get('x-ratelimit-reset-requests'), /^\d+(ms|s|m\d+s)$/);
    // A stream carries them too.
    const { response: sr } = await client('sk-acme')
      .chat.completions.create({ model: 'bot', messages: USER_MSG, stream: true })
      .withResponse();
    assert.equal(sr.headers.get('x-ratelimit-limit-requests'), '600');
    assert.ok(Number(sr.headers.get('x-ratelimit-remaining-requests')) < remaining);
    // A tenant without limits gets none.
    const { response: fr } = await client('sk-free').chat.completions.create({ model: 'bot', messages: USER_MSG }).withResponse();
    assert.equal(fr.headers.get('x-ratelimit-limit-requests'), null);
  });

  test('a limit hit is a 429 in OpenAI shape with Retry-After, and the SDK retries after it', async () => {
    // 20 RPM: a burst of 20, then one request every 3 s. The 21st at once is refused...
    for (let i = 0; i < 20; i++) await client('sk-tight').chat.completions.create({ model: 'bot', messages: USER_MSG });
    const err = await client('sk-tight')
      .chat.completions.create({ model: 'bot', messages: USER_MSG })
      .catch((e) => e);
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    assert.equal(err.status, 429);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.match(err.message, /requests per min \(RPM\): Limit 20/);
    const waitMs = Number(hdr(err, 'retry-after-ms'));
    assert.ok(waitMs > 0 && waitMs <= 3000, `retry-after-ms ${hdr(err, 'retry-after-ms')}`);
    assert.equal(hdr(err, 'retry-after'), String(Math.ceil(waitMs / 1000)));
    assert.equal(hdr(err, 'x-ratelimit-remaining-requests'), '0');
    // ...and the SDK, allowed to retry, waits as told and gets through.
    const t0 = Date.now();
    const ok = await client('sk-tight', { maxRetries: 2 }).chat.completions.create({ model: 'bot', messages: USER_MSG });
    assert.ok(ok.choices[0].message.content.length > 0);
    assert.ok(Date.now() - t0 >= 200, 'it waited for the bucket to refill');
    const line = await gw.waitLog((l) => l.tenant === 'tight' && l.status === 429);
    assert.equal(line.error_kind, 'rate_limit_exceeded');
  });

  test('tokens per minute hold under 8 concurrent requests, and an over-long input is a 400', async () => {
    // Each request reserves its prompt (~bytes/4) + max_tokens 100, and all 8 are in flight
    // at once (the answers take 800 ms): 600 TPM admits what fits, however the 8 race.
    const c = client('sk-tokens');
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => c.chat.completions.create({ model: 'slowbot', messages: USER_MSG, max_tokens: 100 })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const limited = results.filter((r) => r.status === 'rejected' && r.reason.status === 429).length;
    assert.equal(ok + limited, 8);
    assert.ok(ok >= 1 && ok <= 5, `admitted ${ok} of 8 (each reserves over 100 tokens of 600)`);
    assert.ok(limited >= 3);
    const long = await c.chat.completions
      .create({ model: 'bot', messages: [{ role: 'user', content: 'x'.repeat(4000) }] })
      .catch((e) => e);
    assert.equal(long.status, 400);
    assert.equal(long.code, 'input_too_long');
    assert.match(long.message, /max_input_tokens limit of 500/);
  });
});
