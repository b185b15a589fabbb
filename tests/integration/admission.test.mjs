// admission.test.mjs: a pool's admission control (issue 10), through the official OpenAI
// SDK: shedding by tier with a fast 503 and Retry-After, a bounded queue that serves critical
// requests when a slot frees and refuses them at its deadline, overflow to another target
// before anyone is shed, the SDK's own retry honouring Retry-After, and the pool's series.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import OpenAI from 'openai';

import { USER_MSG, errorHeader as hdr, ms, startGateway, startMock, sleep } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

describe('pool admission control', { timeout: ms(90_000) }, () => {
  let fast;
  let slow;
  let gw;
  before(async () => {
    fast = await startMock({ config: { seed: 5, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8] } } });
    // Answers that hold their slot for a while.
    slow = await startMock({ config: { seed: 5, defaults: { ttft_ms: ms(2500), tpot_ms: 0.2, output_tokens: [4, 8] } } });
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'fast', url: `${fast.url}/v1` },
          { name: 'slow', url: `${slow.url}/v1` },
          { name: 'slow2', url: `${slow.url}/v1` },
          { name: 'slow3', url: `${slow.url}/v1` },
        ],
        pools: [
          // 4 slots: sheddable from 2, standard from 3, critical at 4; 4 may wait 5 s.
          { name: 'gpu', upstreams: ['slow'], max_inflight: 4, shed_at: 0.5, queue: { max: 4, timeout_ms: ms(5000) } },
          // One slot, a short queue deadline.
          { name: 'tiny', upstreams: ['slow2'], max_inflight: 1, queue: { max: 2, timeout_ms: 300 } },
          // One slot, then spill to the fast upstream under its own model name.
          { name: 'spill', upstreams: ['slow3'], max_inflight: 1, overflow: 'fast', overflow_model: 'hosted-model' },
        ],
        routes: [
          { name: 'bot', upstream: 'gpu', model: 'm' },
          { name: 'tinybot', upstream: 'tiny', model: 'm' },
          { name: 'spillbot', upstream: 'spill', model: 'm' },
        ],
        api_keys: [
          { tenant: 'ops', key_sha256: sha256('sk-ops') },
          { tenant: 'web', key_sha256: sha256('sk-web') },
          { tenant: 'batch', key_sha256: sha256('sk-batch') },
        ],
        tenants: [
          { name: 'ops', tier: 'critical' },
          { name: 'web', tier: 'standard' },
          { name: 'batch', tier: 'sheddable' },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([fast?.stop(), slow?.stop()]);
  });

  const client = (key, extra = {}) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0, ...extra });
  const ask = (key, model = 'bot', extra = {}) =>
    client(key, extra).chat.completions.create({ model, messages: USER_MSG, max_tokens: 8 });
  const inFlight = async (pool) => (await gw.metrics()).value('sluice_pool_in_flight', { pool }) ?? -1;
  const until = async (fn, what) => {
    for (let i = 0; i < 400; i++) {
      if (await fn()) return;
      await sleep(5);
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  test('the lowest tier is shed first with a 503 and Retry-After; critical requests queue and are served', async () => {
    // Two sheddable requests fill the pool to its shed line (50 % of 4).
    const held = [ask('sk-batch'), ask('sk-batch')];
    await until(async () => (await inFlight('gpu')) === 2, '2 in flight');
    const shed = await ask('sk-batch').catch((e) => e);
    assert.ok(shed instanceof OpenAI.InternalServerError, String(shed));
    assert.equal(shed.status, 503);
    assert.equal(shed.code, 'overloaded');
    assert.match(shed.message, /shed lowest tier first, this one is sheddable/);
    assert.ok(Number(hdr(shed, 'retry-after')) >= 1);
    assert.ok(Number(hdr(shed, 'retry-after-ms')) >= 1);
    // A standard key may lower itself, never raise itself.
    const lowered = await client('sk-web', { defaultHeaders: { 'x-sluice-priority': 'sheddable' } })
      .chat.completions.create({ model: 'bot', messages: USER_MSG })
      .catch((e) => e);
    assert.equal(lowered.status, 503);
    const raised = await client('sk-batch', { defaultHeaders: { 'x-sluice-priority': 'critical' } })
      .chat.completions.create({ model: 'bot', messages: USER_MSG })
      .catch((e) => e);
    assert.equal(raised.status, 400);
    assert.equal(raised.code, 'invalid_priority');
    // Standard and critical still get in, in that order (a critical request admitted first
    // would take the third slot and the standard one would rightly be shed); then the pool
    // is full...
    held.push(ask('sk-web'));
    await until(async () => (await inFlight('gpu')) === 3, '3 in flight');
    held.push(ask('sk-ops'));
    await until(async () => (await inFlight('gpu')) === 4, '4 in flight');
    // ...so critical requests wait in the queue and are served as slots free.
    const queued = [ask('sk-ops'), ask('sk-ops')];
    await until(
      async () => (await gw.metrics()).value('sluice_pool_queued', { pool: 'gpu', tier: 'critical' }) === 2,
      'two critical requests queued',
    );
    for (const r of await Promise.all([...held, ...queued])) assert.ok(r.choices[0].message.content.length > 0);
    await until(async () => (await inFlight('gpu')) === 0, 'the pool to drain');
    const m = await gw.metrics();
    assert.equal(m.value('sluice_pool_admitted_total', { pool: 'gpu', tier: 'critical' }), 3);
    assert.equal(m.value('sluice_pool_shed_total', { pool: 'gpu', tier: 'sheddable' }), 2);
    assert.equal(m.value('sluice_pool_queued', { pool: 'gpu', tier: 'critical' }), 0);
    const line = await gw.waitLog((l) => l.tenant === 'batch' && l.status === 503);
    assert.equal(line.error_kind, 'overloaded');
  });

  test('a queued request is refused at its deadline, and the SDK retries after Retry-After', async () => {
    const first = ask('sk-ops', 'tinybot');
    await until(async () => (await inFlight('tiny')) === 1, 'the slot taken');
    const t0 = Date.now();
    const late = await ask('sk-ops', 'tinybot').catch((e) => e);
    assert.equal(late.status, 503, String(late));
    assert.equal(late.code, 'overloaded');
    assert.match(late.message, /waited 300 ms for capacity/);
    assert.ok(Date.now() - t0 >= 290, 'it waited for its deadline');
    await first;
    // The SDK's own retries (honouring retry-after-ms) get a sheddable request through once
    // the slot frees.
    const holder = ask('sk-ops', 'tinybot');
    await until(async () => (await inFlight('tiny')) === 1, 'the slot taken again');
    const retried = await ask('sk-batch', 'tinybot', { maxRetries: 10 });
    assert.ok(retried.choices[0].message.content.length > 0);
    await holder;
  });

  test('a full pool spills to its overflow target before shedding anyone, marked on the answer', async () => {
    const holder = ask('sk-batch', 'spillbot');
    await until(async () => (await inFlight('spill')) === 1, 'the slot taken');
    const { data, response } = await client('sk-batch')
      .chat.completions.create({ model: 'spillbot', messages: USER_MSG, max_tokens: 8 })
      .withResponse();
    assert.ok(data.choices[0].message.content.length > 0);
    assert.equal(response.headers.get('x-sluice-overflow'), 'fast');
    assert.equal(data.model, 'hosted-model', 'the overflow target got its own model name');
    await holder;
    assert.equal((await gw.metrics()).value('sluice_pool_overflowed_total', { pool: 'spill' }), 1);
    // GET /admin/v1/upstreams shows each pool's admission state.
    const r = await fetch(`${gw.adminUrl}/admin/v1/upstreams`, { headers: { authorization: `Bearer ${gw.adminToken()}` } });
    const body = await r.json();
    const spill = body.pools.find((p) => p.name === 'spill');
    assert.equal(spill.admission.overflowed_total, 1);
    assert.equal(spill.admission.overflow, 'fast');
    assert.equal(spill.admission.in_flight, 0);
  });
});
