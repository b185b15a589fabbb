// Alarms (docs/alarms.md): an injected refusal spike fires a refusal-rate rule, which rolls the
// route back (the stable release serves afterwards) and POSTs to a webhook; a rule whose value
// sits at its threshold's edge does not flap and does not repeat its action. Windows are
// seconds long; nothing here asserts a duration.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { SLUICE_BIN, completionBody, ms, requestJSON, runProcess, sleep, startFakeUpstream, startGateway, tempDir, waitFor } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const ADMIN = `adm-${randomBytes(12).toString('hex')}`;
const VIEWER = `view-${randomBytes(12).toString('hex')}`;
const REFUSAL = "I'm sorry, but I can't help with that request.";

async function cliOk(dataDir, ...args) {
  const r = await runProcess(SLUICE_BIN, [...args, '--data-dir', dataDir], { timeout: ms(15000) });
  assert.equal(r.code, 0, `sluice ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('alarms', { timeout: ms(60_000) }, () => {
  let fake, hook, gw, d, good, bad;
  const hooks = []; // webhook POST bodies
  let edgeCount = 0;

  const admin = (method, p, token = ADMIN) =>
    requestJSON(method, `${gw.adminUrl}${p}`, { headers: { authorization: `Bearer ${token}` } });
  const send = (model) =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
    });
  const alarm = async (name) => (await admin('GET', '/admin/v1/alarms')).json.alarms.find((a) => a.name === name);

  before(async () => {
    // The upstream: model "m-bad" always refuses; "m-edge" refuses every other request; others answer.
    fake = await startFakeUpstream((req, res, body) => {
      const model = JSON.parse(body).model;
      const refuse = model === 'm-bad' || (model === 'm-edge' && edgeCount++ % 2 === 0);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completionBody(model, refuse ? REFUSAL : 'Gateways route requests between clients and models.'));
    });
    hook = http.createServer((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        hooks.push(JSON.parse(b));
        res.writeHead(204).end();
      });
    });
    await new Promise((r) => hook.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${hook.address().port}/hook`;

    d = tempDir('sluice-alarms-');
    writeFileSync(path.join(d, 'good.yaml'), 'route: chat\nmodel: {upstream: fake, id: m-good}\nparams: {temperature: 0}\n');
    writeFileSync(path.join(d, 'bad.yaml'), 'route: chat\nmodel: {upstream: fake, id: m-bad}\nparams: {temperature: 0}\n');
    good = /^(rel_[0-9a-f]{8})/.exec(await cliOk(d, 'release', 'create', path.join(d, 'good.yaml')))[1];
    bad = /^(rel_[0-9a-f]{8})/.exec(await cliOk(d, 'release', 'create', path.join(d, 'bad.yaml')))[1];
    await cliOk(d, 'route', 'promote', 'chat', good, '--reason', 'baseline');
    gw = await startGateway({
      dataDir: d,
      config: {
        upstreams: [{ name: 'fake', url: `${fake.url}/v1` }],
        routes: [{ name: 'edge', upstream: 'fake', model: 'm-edge' }],
        admin: {
          tokens: [
            { name: 'alice', role: 'admin', token_sha256: sha256(ADMIN) },
            { name: 'victor', role: 'viewer', token_sha256: sha256(VIEWER) },
          ],
        },
        alarms: [
          {
            name: 'refusal-spike', metric: 'refusal_rate', scope: { route: 'chat' }, window: '30s', op: '>',
            threshold: 0.5, clear: 0.2, min_requests: 5,
            actions: [{ webhook: hookUrl }, { rollback: 'chat' }],
          },
          {
            // Refusals alternate, so the value wanders around 0.5: above it at times, never below clear.
            name: 'edge', metric: 'refusal_rate', scope: { route: 'edge' }, window: '5s', op: '>',
            threshold: 0.5, for: '1s', clear: 0.3, clear_for: '2s', min_requests: 2,
            actions: [{ webhook: hookUrl }],
          },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await fake?.close();
    await new Promise((r) => (hook ? hook.close(r) : r()));
  });

  test('a refusal spike fires the rule: the route is rolled back and the webhook called, once', async () => {
    // Edge traffic runs beside the spike, for the second test.
    let stop = false;
    const edgeLoop = (async () => {
      while (!stop) {
        await (await send('edge')).arrayBuffer();
        await sleep(20);
      }
    })();
    try {
      for (let i = 0; i < 10; i++) {
        const r = await send('chat');
        await r.arrayBuffer();
        assert.equal(r.headers.get('x-sluice-release'), good);
      }
      // The rules reach the engine on its first tick (once a second).
      await waitFor(async () => (await alarm('refusal-spike')) !== undefined, { timeout: ms(5000), what: 'alarm loaded' });
      let a = await alarm('refusal-spike');
      assert.equal(a.state, 'ok');
      await cliOk(d, 'route', 'promote', 'chat', bad, '--reason', 'the regression');
      // The bad release serves (and refuses) until the alarm rolls the route back.
      await waitFor(async () => (await send('chat')).headers.get('x-sluice-release') === bad, { timeout: ms(5000), what: 'bad release serving' });
      await waitFor(async () => {
        const r = await send('chat');
        await r.arrayBuffer();
        return r.headers.get('x-sluice-release') === good;
      }, { timeout: ms(10000), interval: 50, what: 'rolled back to the good release' });
      a = await alarm('refusal-spike');
      assert.equal(a.state, 'firing');
      assert.equal(a.fired_count, 1);
      assert.ok(a.value > 0.5, `value ${a.value}`);
      assert.equal(a.last_action.outcome, 'ok');
      await waitFor(() => hooks.some((h) => h.alarm === 'refusal-spike'), { timeout: ms(5000), what: 'webhook POST' });
      const h = hooks.find((x) => x.alarm === 'refusal-spike');
      assert.equal(h.state, 'firing');
      assert.equal(h.scope.route, 'chat');
      assert.equal(h.detail.metric, 'refusal_rate');
      // More good traffic while the refusals are still in the window: still one firing, one rollback.
      for (let i = 0; i < 10; i++) assert.equal((await send('chat')).headers.get('x-sluice-release'), good);
      await sleep(ms(2500));
      a = await alarm('refusal-spike');
      assert.equal(a.fired_count, 1);
      const audit = (await admin('GET', '/admin/v1/audit?limit=200')).json.audit;
      const mine = audit.filter((e) => e.actor === 'alarm:refusal-spike');
      assert.equal(mine.filter((e) => e.action === 'alarm.fire').length, 1, JSON.stringify(mine));
      const rb = mine.filter((e) => e.action === 'alarm.action.rollback');
      assert.equal(rb.length, 1);
      assert.equal(rb[0].outcome, 'ok');
      assert.equal(rb[0].target, 'chat');

      // The series the dashboard charts: both releases of the route, with refusal rates.
      const s = (await admin('GET', '/admin/v1/series?route=chat&window_s=600', VIEWER)).json;
      assert.equal(s.route, 'chat');
      assert.equal(s.step_s, 10);
      const byRel = Object.fromEntries(s.series.map((x) => [x.release, x.points]));
      assert.ok(byRel[good] && byRel[bad], JSON.stringify(s));
      assert.ok(byRel[bad].some((p) => p.refusal_rate === 1));
      assert.ok(byRel[good].every((p) => p.refusal_rate === 0 && p.requests > 0 && p.latency_p99_ms > 0));
      const bad400 = await admin('GET', '/admin/v1/series');
      assert.equal(bad400.status, 400);

      // The metrics.
      const m = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      assert.match(m, /sluice_alarm_state\{alarm="refusal-spike"\} 2/);
      assert.match(m, /sluice_alarm_actions_total\{alarm="refusal-spike",action="rollback",outcome="ok"\} 1/);
    } finally {
      stop = true;
      await edgeLoop;
    }
  });

  test('a value at the threshold edge does not flap and does not repeat its action', async () => {
    const a = await alarm('edge');
    assert.ok(a.fired_count <= 1, JSON.stringify(a));
    const audit = (await admin('GET', '/admin/v1/audit?limit=500', VIEWER)).json.audit.filter((e) => e.actor === 'alarm:edge');
    assert.ok(audit.filter((e) => e.action === 'alarm.fire').length <= 1, JSON.stringify(audit));
    assert.equal(audit.filter((e) => e.action === 'alarm.resolve').length, 0, JSON.stringify(audit));
    assert.ok(hooks.filter((h) => h.alarm === 'edge').length <= 1);
    // The value it saw stayed around the threshold (refusals alternate).
    if (a.value !== null) assert.ok(a.value > 0.3 && a.value < 0.7, `value ${a.value}`);
  });
});
