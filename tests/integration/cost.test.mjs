// cost.test.mjs: cost as an operating metric (issue 14). Each request's cost, from its
// upstream's prices (cached prompt tokens at their own price; an hourly price for a self-hosted
// upstream), is in the request log, in sluice_cost_usd_total by route, release and tenant, and
// in the daily spend the admin API reports with its week-over-week trend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import OpenAI from 'openai';

import { USER_MSG, chunkEvent, ms, requestJSON, startFakeUpstream, startGateway, waitFor } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const USAGE = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200, prompt_tokens_details: { cached_tokens: 600 } };
// 400 uncached at $2/M + 600 cached at $0.5/M + 200 output at $8/M
const API_COST = (400 * 2 + 600 * 0.5 + 200 * 8) / 1e6;

describe('cost per request', { timeout: ms(60_000) }, () => {
  let api;
  let gpu;
  let gw;
  before(async () => {
    api = await startFakeUpstream((req, res, body) => {
      const stream = JSON.parse(body).stream;
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm',
          choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
          usage: USAGE,
        }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${chunkEvent('ok')}\n\n`);
      res.write(`data: ${chunkEvent('', { finish: 'stop' })}\n\n`);
      res.write(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: USAGE })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    // A self-hosted model: no token prices, $36 an hour shared by 2 requests at once.
    gpu = await startFakeUpstream(async (req, res) => {
      await new Promise((r) => setTimeout(r, 150));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'chatcmpl-2', object: 'chat.completion', created: 1, model: 'm',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
      }));
    });
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'api', url: `${api.url}/v1`, price: { input_per_1m: 2, cached_input_per_1m: 0.5, output_per_1m: 8 } },
          { name: 'gpu', url: `${gpu.url}/v1`, price: { per_hour: 36, concurrency: 2 } },
          { name: 'free', url: `${gpu.url}/v1` },
        ],
        routes: [
          { name: 'bot', upstream: 'api', model: 'm' },
          { name: 'local', upstream: 'gpu', model: 'm' },
          { name: 'unpriced', upstream: 'free', model: 'm' },
        ],
        api_keys: [
          { tenant: 'acme', key_sha256: sha256('sk-acme') },
          { tenant: 'globex', key_sha256: sha256('sk-globex') },
        ],
        tenants: [{ name: 'acme' }, { name: 'globex' }],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([api?.close(), gpu?.close()]);
  });
  const client = (key) => new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0 });

  test('token prices with cached prompt tokens, whole and streamed, in the log and the metrics', async () => {
    await client('sk-acme').chat.completions.create({ model: 'bot', messages: USER_MSG });
    const s = await client('sk-globex').chat.completions.create({
      model: 'bot', messages: USER_MSG, stream: true, stream_options: { include_usage: true },
    });
    for await (const _ of s) { /* drain */ }
    await client('sk-acme').chat.completions.create({ model: 'bot', messages: USER_MSG });
    await waitFor(() => gw.requestLog().filter((l) => l.route === 'bot').length >= 3, { what: 'three log lines' });
    const lines = gw.requestLog();
    for (const l of lines.filter((x) => x.route === 'bot')) {
      assert.equal(l.tokens_cached, 600);
      assert.ok(Math.abs(l.cost_usd - API_COST) < 1e-9, `cost_usd ${l.cost_usd} != ${API_COST}`);
    }
    const m = await gw.metrics();
    const cost = (tenant) => m.value('sluice_cost_usd_total', { route: 'bot', tenant });
    assert.ok(Math.abs(cost('acme') - 2 * API_COST) < 1e-9, `acme ${cost('acme')}`);
    assert.ok(Math.abs(cost('globex') - API_COST) < 1e-9, `globex ${cost('globex')}`);
    assert.equal(m.value('sluice_priced_requests_total', { route: 'bot', tenant: 'acme' }), 2);
  });

  test("an hourly price is shared by the time each request held the upstream; no price, no cost", async () => {
    await client('sk-acme').chat.completions.create({ model: 'local', messages: USER_MSG });
    await client('sk-acme').chat.completions.create({ model: 'unpriced', messages: USER_MSG });
    await gw.waitLog((l) => l.route === 'unpriced');
    const lines = gw.requestLog();
    const local = lines.find((l) => l.route === 'local');
    // $36/h over 2 concurrent requests = $0.005 per second held.
    const expected = (36 / 3600 / 2) * (local.total_ms / 1000);
    assert.ok(local.cost_usd > 0 && Math.abs(local.cost_usd - expected) / expected < 0.05,
      `cost ${local.cost_usd} vs ${expected} for ${local.total_ms} ms`);
    assert.equal(lines.find((l) => l.route === 'unpriced').cost_usd, undefined);
    const m = await gw.metrics();
    assert.equal(m.find('sluice_cost_usd_total', { route: 'unpriced' }).length, 0);
  });

  test('the daily spend, per route, release and tenant, with the week-over-week trend', async () => {
    const headers = { authorization: `Bearer ${gw.adminToken()}` };
    let spend;
    await waitFor(async () => {
      spend = (await requestJSON('GET', `${gw.adminUrl}/admin/v1/spend`, { headers })).json;
      const bot = spend.routes?.find((r) => r.route === 'bot');
      return bot && bot.requests_7d === 3;
    }, { timeout: ms(5000), what: 'spend written behind' });
    assert.equal(spend.days.length, 14);
    assert.equal(spend.days.at(-1).day, spend.today);
    const bot = spend.routes.find((r) => r.route === 'bot');
    assert.ok(Math.abs(bot.today_usd - 3 * API_COST) < 2e-6, `today ${bot.today_usd}`);
    assert.equal(bot.wow_growth, null, 'no spend the week before: no growth figure');
    assert.ok(Math.abs(bot.cost_per_request_usd - API_COST) < 1e-6);
    const acme = spend.tenants.find((t) => t.tenant === 'acme');
    assert.equal(acme.requests, 3);
    const r = await requestJSON('GET', `${gw.adminUrl}/admin/v1/spend`);
    assert.equal(r.status, 401);
  });
});
