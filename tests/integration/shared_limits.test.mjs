// shared_limits.test.mjs: a tenant's limit held across three `sluice serve` replicas that
// share one real redis-server (issue 15), through the official OpenAI SDK. A tenant offered
// twice its TPM over the replicas is admitted its limit (within 2%); with Redis killed each
// fail_open replica admits its share (limit / 3) and a fail_closed one refuses with 503
// rate_limit_store_unavailable; with Redis back the three share the one limit again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';

import OpenAI from 'openai';

import { closedPort, ms, sleep, startGateway, startMock, tempDir, waitFor } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const HAVE_REDIS = spawnSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' }).status === 0;

const TPM = 60000; // 1000 tokens a second
const SHARE = Math.floor(TPM / 3);

// redis-server in a temporary directory on a loopback port, no persistence.
function startRedis(port, dir) {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: 'ignore' });
  process.on('exit', () => p.kill('SIGKILL'));
  return p;
}
async function redisUp(port) {
  await waitFor(() => spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG',
    { timeout: ms(5000), what: 'redis-server' });
}

describe('shared limits through Redis, three replicas', { skip: !HAVE_REDIS && 'redis-server is not installed', timeout: ms(120_000) }, () => {
  let mock;
  let redis;
  let redisPort;
  let redisDir;
  const gws = [];
  let closedGw;
  const metricLine = async (gw, re) => re.exec(await (await fetch(`${gw.url}/metrics`)).text());
  const config = (onUnavailable, prefix) => ({
    upstreams: [{ name: 'm', url: `${mock.url}/v1` }],
    routes: [{ name: 'bot', upstream: 'm', model: 'm' }],
    api_keys: [{ tenant: 'acme', key_sha256: sha256('sk-acme') }],
    tenants: [{ name: 'acme', tpm: TPM }],
    shared_limits: { redis: `redis://127.0.0.1:${redisPort}`, on_unavailable: onUnavailable, key_prefix: prefix, heartbeat_ms: 200 },
  });

  before(async () => {
    mock = await startMock({ config: { seed: 7, defaults: { ttft_ms: 0, tpot_ms: 0, output_tokens: [20, 20] } } });
    redisPort = await closedPort();
    redisDir = tempDir('sluice-redis-');
    redis = startRedis(redisPort, redisDir);
    await redisUp(redisPort);
    for (let i = 0; i < 3; ++i) gws.push(await startGateway({ config: config('fail_open', 'it:'), threads: 1 }));
    // Another replica set (its own keys), failing closed.
    closedGw = await startGateway({ config: config('fail_closed', 'closed:'), threads: 1 });
    await waitFor(async () => {
      for (const gw of gws) if (!(await metricLine(gw, /^sluice_shared_limits_replicas 3$/m))) return false;
      return true;
    }, { timeout: ms(5000), what: 'three replicas counted' });
  });
  after(async () => {
    await Promise.all([...gws.map((g) => g.stop()), closedGw?.stop()]);
    redis?.kill('SIGKILL');
    await mock?.stop();
  });

  const clients = () => gws.map((gw) => new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-acme', maxRetries: 0 }));
  const bigPrompt = (tokens) => [{ role: 'user', content: 'gateway '.repeat(Math.round(tokens / 2)) }];

  // One request; its usage when admitted, 0 when refused with 429 (anything else fails).
  async function ask(client, messages) {
    try {
      const r = await client.chat.completions.create({ model: 'bot', messages, max_tokens: 20 });
      return r.usage.total_tokens;
    } catch (e) {
      if (e.status === 429) return 0;
      throw e;
    }
  }
  // Each replica in turn (one request in flight per replica) until all were refused 5 times in a row.
  async function flood(cs, messages) {
    const got = cs.map(() => 0);
    await Promise.all(cs.map(async (c, i) => {
      let refused = 0;
      for (let n = 0; n < 400 && refused < 5; ++n) {
        const u = await ask(c, messages);
        got[i] += u;
        refused = u ? 0 : refused + 1;
        if (!u) await sleep(20);
      }
    }));
    return got;
  }

  test('a tenant at 2x its TPM over three replicas is admitted its limit (within 2%)', async () => {
    const cs = clients();
    const small = [{ role: 'user', content: 'Say something about gateways.' }];
    const t0 = performance.now();
    const perRequest = await ask(cs[0], small); // what one paced request costs (the bucket is full: admitted)
    assert.ok(perRequest > 0);
    // The bucket starts full (one minute's worth): a burst of large prompts empties it...
    const burst = await flood(cs, bigPrompt(2000));
    let admitted = perRequest + burst.reduce((a, b) => a + b, 0);
    console.log(`# burst: ${burst.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    // ...then twice the refill rate, paced, spread over the replicas.
    const seconds = 10;
    const reqPerSec = (2 * TPM) / 60 / perRequest;
    const pending = [];
    const start = performance.now();
    for (let k = 1; performance.now() - start < seconds * 1000; ++k) {
      const due = start + (k * 1000) / reqPerSec;
      if (due > performance.now()) await sleep(due - performance.now());
      pending.push(ask(cs[k % 3], small));
    }
    const elapsed = (performance.now() - t0) / 1000;
    const paced = await Promise.all(pending);
    admitted += paced.reduce((a, b) => a + b, 0);
    console.log(`# paced: ${paced.length} sent, ${paced.filter((u) => u).length} admitted, ${perRequest} tokens each`);
    const allowance = TPM + (TPM / 60) * elapsed;
    const ratio = admitted / allowance;
    console.log(`# shared: admitted ${admitted} tokens of an allowance of ${Math.round(allowance)} over ${elapsed.toFixed(1)} s (ratio ${ratio.toFixed(4)}); offered ~2x after the burst`);
    assert.ok(Math.abs(ratio - 1) <= 0.02, `admitted ${admitted} vs allowance ${allowance.toFixed(0)} (ratio ${ratio.toFixed(4)})`);
    for (const gw of gws) {
      const t = await (await fetch(`${gw.url}/metrics`)).text();
      console.log('# ' + t.split('\n').filter((l) => /^sluice_shared_limits_(round_trips|failures|fallback)/.test(l)).join(' '));
    }
    const m = await metricLine(gws[0], /^sluice_shared_limits_round_trips_total (\d+)$/m);
    assert.ok(m && Number(m[1]) > 0, 'round trips counted');
  });

  test('Redis down: each fail_open replica admits its share, fail_closed refuses with 503', async () => {
    redis.kill('SIGKILL');
    await waitFor(async () => {
      for (const gw of [...gws, closedGw]) if (!(await metricLine(gw, /^sluice_shared_limits_up 0$/m))) return false;
      return true;
    }, { timeout: ms(5000), what: 'every replica sees Redis down' });
    const ready = await (await fetch(`${gws[0].url}/readyz`)).json();
    assert.deepEqual(ready.shared_limits, { redis: 'down', replicas: 3, on_unavailable: 'fail_open' });

    const t0 = performance.now();
    const got = await flood(clients(), bigPrompt(1000));
    const refill = ((TPM / 3 / 60) * (performance.now() - t0)) / 1000;
    console.log(`# fail_open: admitted per replica ${got.join(', ')} (share ${SHARE}, refill ${refill.toFixed(0)})`);
    for (const g of got) {
      assert.ok(g >= SHARE - 1100 && g <= SHARE + refill + 1100, `replica admitted ${g}, its share is ${SHARE}`);
    }
    const closed = new OpenAI({ baseURL: closedGw.baseURL, apiKey: 'sk-acme', maxRetries: 0 });
    await assert.rejects(closed.chat.completions.create({ model: 'bot', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }), (e) => {
      assert.equal(e.status, 503);
      assert.equal(e.code, 'rate_limit_store_unavailable');
      return true;
    });
  });

  test('Redis back: shared again without a restart, the one limit over the three', async () => {
    redis = startRedis(redisPort, redisDir); // empty: the bucket starts full
    await redisUp(redisPort);
    await waitFor(async () => {
      for (const gw of [...gws, closedGw]) if (!(await metricLine(gw, /^sluice_shared_limits_up 1$/m))) return false;
      return true;
    }, { timeout: ms(5000), what: 'every replica reconnected' });
    const closed = new OpenAI({ baseURL: closedGw.baseURL, apiKey: 'sk-acme', maxRetries: 0 });
    assert.ok((await closed.chat.completions.create({ model: 'bot', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 })).usage);

    const t0 = performance.now();
    const got = await flood(clients(), bigPrompt(500));
    const total = got.reduce((a, b) => a + b, 0);
    const allowance = TPM + ((TPM / 60) * (performance.now() - t0)) / 1000;
    console.log(`# recovered: admitted ${total} (${got.join(', ')}) of ${allowance.toFixed(0)}`);
    assert.ok(Math.abs(total / allowance - 1) <= 0.02, `admitted ${total} vs ${allowance.toFixed(0)}`);
  });
});
