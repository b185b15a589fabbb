// prometheus.test.mjs: a real Prometheus (Debian's package) scrapes sluice's /metrics every
// second; PromQL through its HTTP API returns exactly the requests the official OpenAI SDK
// sent (by route, errors included), and every query of the Grafana dashboard kept in the
// repo (deploy/grafana/sluice-dashboard.json) runs against it without error. Also the
// autoscaling signal: GET /metrics/scale on both listeners and the headroom report while a
// stream holds tokens in flight (docs/autoscaling.md). Skipped when prometheus is missing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import OpenAI from 'openai';

import { REPO, USER_MSG, closedPort, ms, requestJSON, startGateway, startMock, tempDir, waitFor } from './harness.mjs';

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
const PROMETHEUS = process.env.PROMETHEUS_BIN || which('prometheus');
const PROMTOOL = which('promtool');
const KEY = 'sk-it-prometheus';

// Grafana's built-in variables and the dashboard's own, as Grafana substitutes them.
function grafanaExpr(expr) {
  return expr
    .replaceAll('$__rate_interval', '15s')
    .replaceAll('$__interval', '5s')
    .replaceAll('$__range', '5m')
    .replaceAll(/\$\{?(route|tenant)\}?/g, '.*');
}

describe('prometheus and grafana', { skip: process.env.SLUICE_SANITIZER === 'tsan' ? 'runs in the ASan pass: Prometheus scraping exercises no gateway threads the other suites do not' : PROMETHEUS ? false : 'prometheus is not installed (apt-get install prometheus)', timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  let prom;
  let promUrl;
  let promLog = '';
  const sent = { byRoute: {}, errorsByRoute: {}, outputTokens: 0, streams: 0 };
  const count = (m, k) => (m[k] = (m[k] || 0) + 1);

  async function query(expr) {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = await r.json();
    return { http: r.status, ...body };
  }
  // The value of a query as {labels-of-`by`: number}.
  async function vector(expr, by) {
    const q = await query(expr);
    assert.equal(q.status, 'success', `${expr}: ${JSON.stringify(q)}`);
    return Object.fromEntries(q.data.result.map((s) => [by ? s.metric[by] : '', Number(s.value[1])]));
  }

  before(async () => {
    mock = await startMock({
      config: { seed: 5, defaults: { output_tokens: [4, 9] }, models: [{ name: 'mock-model' }, { name: 'slow-model', ttft_ms: 20, tpot_ms: 100, output_tokens: [60, 60] }] },
    });
    const dead = await closedPort();
    gw = await startGateway({
      env: { SLUICE_IT_PROM_KEY: KEY },
      config: {
        upstreams: [
          { name: 'mock', url: mock.url },
          { name: 'dead', url: `http://127.0.0.1:${dead}` },
        ],
        pools: [{ name: 'gpu', upstreams: ['mock'], max_inflight: 64, max_tokens_inflight: 100000 }],
        routes: [
          { name: 'chat-a', upstream: 'gpu', model: 'mock-model' },
          { name: 'chat-b', upstream: 'mock', model: 'mock-model' },
          { name: 'slow', upstream: 'gpu', model: 'slow-model' },
          { name: 'broken', upstream: 'dead' },
        ],
        api_keys: [{ tenant: 'acme', key_env: 'SLUICE_IT_PROM_KEY' }],
        autoscale: { target_tokens_in_flight: 50, min_replicas: 1, max_replicas: 10, scale_down_stabilization_s: 300 },
      },
    });

    // Prometheus on loopback, a port chosen now, a temporary TSDB, sluice scraped every second.
    const dir = tempDir('sluice-prom-');
    const port = await closedPort();
    promUrl = `http://127.0.0.1:${port}`;
    writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      'scrape_configs:',
      '  - job_name: sluice',
      '    metrics_path: /metrics',
      `    static_configs: [{targets: ['127.0.0.1:${gw.port}']}]`,
      '',
    ].join('\n'));
    prom = spawn(PROMETHEUS, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    prom.stdout.on('data', (d) => (promLog += d));
    prom.stderr.on('data', (d) => (promLog += d));
    await waitFor(async () => {
      try {
        return (await fetch(`${promUrl}/-/ready`)).status === 200;
      } catch {
        return false;
      }
    }, { timeout: ms(15000), what: `prometheus ready (${promLog.slice(-500)})` });

    const client = new OpenAI({ apiKey: KEY, baseURL: gw.baseURL, maxRetries: 0 });
    for (const [route, n] of [['chat-a', 5], ['chat-b', 3]]) {
      for (let i = 0; i < n; i++) {
        const r = await client.chat.completions.create({ model: route, messages: USER_MSG });
        sent.outputTokens += r.usage.completion_tokens;
        count(sent.byRoute, route);
      }
    }
    const stream = await client.chat.completions.create({ model: 'chat-b', messages: USER_MSG, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) if (chunk.usage) sent.outputTokens += chunk.usage.completion_tokens;
    count(sent.byRoute, 'chat-b');
    sent.streams++;
    // Errors: an upstream that refuses connections (5xx) on its own route, twice.
    for (let i = 0; i < 2; i++) {
      await assert.rejects(client.chat.completions.create({ model: 'broken', messages: USER_MSG }), (e) => e.status >= 500);
      count(sent.byRoute, 'broken');
      count(sent.errorsByRoute, 'broken');
    }
  });

  after(async () => {
    if (prom && prom.exitCode === null) {
      prom.kill('SIGTERM');
      await new Promise((r) => prom.once('exit', r));
    }
    await gw?.stop();
    await mock?.stop();
  });

  test('PromQL returns exactly the requests sent, by route, errors included', async () => {
    const total = Object.values(sent.byRoute).reduce((a, b) => a + b, 0);
    // Wait for a scrape taken after the last request (never a timing assertion: just polling).
    await waitFor(async () => (await vector('sum(sluice_requests_total)'))[''] === total, { timeout: ms(15000), what: 'a scrape with every request' });
    assert.deepEqual(await vector('sum by (route) (sluice_requests_total)', 'route'), sent.byRoute);
    assert.deepEqual(await vector('sum by (route) (sluice_requests_total{status_class="5xx"})', 'route'), sent.errorsByRoute);
    assert.deepEqual(await vector('sum by (route) (sluice_requests_total{status_class="2xx"})', 'route'), { 'chat-a': 5, 'chat-b': 4 });
    assert.deepEqual(await vector('sum by (route) (sluice_request_duration_seconds_count)', 'route'), sent.byRoute);
    assert.deepEqual(await vector('sum(sluice_time_to_first_token_seconds_count)'), { '': sent.streams });
    assert.deepEqual(await vector('sum(sluice_tokens_total{direction="output",route=~"chat-.*"})'), { '': sent.outputTokens });
    // The pool's gate admitted chat-a's requests only (chat-b calls the upstream directly).
    assert.deepEqual(await vector('sum by (pool) (sluice_pool_admitted_total)', 'pool'), { gpu: 5 });
    const up = await vector('up{job="sluice"}');
    assert.equal(up[''], 1);
  });

  test('every query of the Grafana dashboard runs against this Prometheus', async () => {
    const dash = JSON.parse(readFileSync(path.join(REPO, 'deploy/grafana/sluice-dashboard.json'), 'utf8'));
    assert.equal(dash.templating.list.find((v) => v.name === 'datasource')?.type, 'datasource');
    const exprs = [];
    const walk = (panels) => {
      for (const p of panels) {
        if (p.panels) walk(p.panels);
        for (const t of p.targets || []) exprs.push({ panel: p.title, expr: t.expr });
        if (p.targets) assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: uses the datasource variable`);
      }
    };
    walk(dash.panels);
    for (const v of dash.templating.list) if (v.type === 'query') exprs.push({ panel: `variable ${v.name}`, expr: v.definition, variable: true });
    assert.ok(exprs.length >= 20, `${exprs.length} queries`);
    // Rates need two scrapes of a series inside their window.
    await waitFor(async () => (await query(grafanaExpr(exprs[0].expr))).data?.result?.length > 0, { timeout: ms(10000), what: 'a rate with data' });
    const empty = [];
    for (const { panel, expr, variable } of exprs) {
      let q;
      if (variable) {
        // label_values(metric, label) is Grafana's: Prometheus answers it through the series API.
        const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(expr);
        assert.ok(m, `${panel}: ${expr}`);
        const r = await fetch(`${promUrl}/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(m[1])}`);
        q = await r.json();
      } else {
        q = await query(grafanaExpr(expr));
      }
      assert.equal(q.status, 'success', `${panel}: ${expr}: ${JSON.stringify(q.error || q)}`);
      if (!variable && q.data.result.length === 0) empty.push(panel);
    }
    // Series this gateway has now (traffic, pools, upstreams) must show data, not just parse.
    for (const title of ['Request rate by route', 'Request latency p50 / p99', 'Tokens per second', 'Breaker state (1 = open)', 'Admission queue and slots per pool']) {
      assert.ok(!empty.includes(title), `${title} has data`);
    }
  });

  test('promtool accepts /metrics', { skip: PROMTOOL ? false : 'promtool is not installed' }, async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('/metrics/scale and the headroom report follow tokens in flight', async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: gw.baseURL, maxRetries: 0 });
    for (const base of [gw.url, gw.adminUrl]) {
      const idle = await requestJSON('GET', `${base}/metrics/scale`);
      assert.equal(idle.status, 200);
      assert.equal(idle.json.tokens_in_flight, 0);
      assert.equal(idle.json.queued_requests, 0);
      assert.equal(idle.json.suggested_replicas, 1);
      assert.deepEqual(idle.json.pools.map((p) => p.name), ['gpu']);
    }
    // A slow stream holds its tokens in the pool while it relays (about 6 s of output).
    const stream = await client.chat.completions.create({ model: 'slow', messages: USER_MSG, stream: true, max_tokens: 100 });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const busy = await requestJSON('GET', `${gw.url}/metrics/scale`);
    assert.ok(busy.json.tokens_in_flight > 0, JSON.stringify(busy.json));
    assert.equal(busy.json.requests_in_flight, 1);
    assert.equal(busy.json.pools[0].requests_in_flight, 1);
    assert.ok(busy.json.pools[0].tokens_in_flight > 0);
    // The control thread decides once a second: 50 tokens per replica asks for more than one.
    const expect = Math.min(10, Math.ceil(busy.json.tokens_in_flight / 50));
    await waitFor(async () => (await requestJSON('GET', `${gw.url}/metrics/scale`)).json.suggested_replicas === expect, {
      timeout: ms(5000), what: `suggested_replicas ${expect}`,
    });
    const token = gw.adminToken();
    await waitFor(async () => {
      const h = await requestJSON('GET', `${gw.adminUrl}/admin/v1/headroom`, { headers: { authorization: `Bearer ${token}` } });
      return h.status === 200 && h.json.pools[0].peak.requests_in_flight === 1;
    }, { timeout: ms(5000), what: 'headroom peak' });
    const h = await requestJSON('GET', `${gw.adminUrl}/admin/v1/headroom`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(h.json.pools[0].capacity.max_tokens_inflight, 100000);
    assert.ok(h.json.pools[0].peak_token_utilization > 0);
    assert.equal((await requestJSON('GET', `${gw.adminUrl}/admin/v1/headroom`)).status, 401);
    for (let r = await it.next(); !r.done; r = await it.next());
    const done = await requestJSON('GET', `${gw.url}/metrics/scale`);
    assert.equal(done.json.tokens_in_flight, 0);
    // Load fell, but the scale-down stabilization window (300 s) keeps the count.
    assert.equal(done.json.suggested_replicas, expect);
    // The window (60 s) holds the streams' TTFT once the control thread took its next snapshot.
    let last;
    await waitFor(async () => (last = (await requestJSON('GET', `${gw.url}/metrics/scale`)).json).ttft_p99_ms > 0, {
      timeout: ms(5000), what: 'p99 TTFT of the window',
    }).catch((e) => assert.fail(`${e.message}: ${JSON.stringify(last)}`));
  });
});
