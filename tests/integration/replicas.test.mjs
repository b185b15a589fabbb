// replicas.test.mjs: three `sluice serve` replicas sharing one PostgreSQL store (issue 15).
//
// A real PostgreSQL 15 (scripts/pg-test-server.sh: initdb in a temp dir, a free loopback
// port) and three gateways with SLUICE_STORE_URL pointing at it; the third one reaches it
// through a TCP proxy this test can cut. Clients are the official OpenAI SDK and plain HTTP
// for the admin API; the CLI writes releases and starts rollouts on the same store.
//
//   1. a promote, a rollback and a flag flip (a kill switch) made on one replica are in
//      force on all three within 1 s (the distribution is printed);
//   2. a replica cut off from PostgreSQL keeps serving its last snapshot, says it is not
//      ready for changes (/readyz/changes 503), and catches up when the connection returns;
//   3. the rollout controller: exactly one replica drives a canary, every replica's traffic
//      counts as evidence, and after kill -9 of the driver another takes over within the
//      lease, resumes at the same step with the evidence intact, and no decision is taken twice.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

import { SLUICE_BIN, ms, requestJSON, runProcess, sleep, startGateway, startMock, tempDir, waitFor } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const FIX = path.join(HERE, 'fixtures/rollouts');
const PG_SCRIPT = path.join(REPO, 'scripts/pg-test-server.sh');
const HAVE_PG = existsSync('/usr/lib/postgresql') ? false : 'PostgreSQL server binaries not installed (scripts/setup.sh)';
const LEASE_MS = 2000;

// ------------------------------------------------------------------ PostgreSQL and a cuttable proxy

function startPostgres() {
  const dir = tempDir('sluice-pg-');
  const port = execFileSync('bash', [PG_SCRIPT, 'start', dir], { encoding: 'utf8' }).trim();
  execFileSync('psql', ['-q', '-h', '127.0.0.1', '-p', port, '-U', 'postgres', '-d', 'postgres', '-c', 'CREATE DATABASE sluice']);
  return { dir, port: Number(port), url: `postgres://postgres@127.0.0.1:${port}/sluice`, stop: () => execFileSync('bash', [PG_SCRIPT, 'stop', dir]) };
}

// Forwards a loopback port to PostgreSQL. cut(): every connection reset and the port refused;
// restore(): listening again on the same port.
async function startProxy(targetPort) {
  const sockets = new Set();
  let server;
  let port = 0;
  const listen = () =>
    new Promise((resolve, reject) => {
      server = net.createServer((c) => {
        const up = net.connect(targetPort, '127.0.0.1');
        sockets.add(c);
        sockets.add(up);
        c.pipe(up);
        up.pipe(c);
        const close = () => {
          c.destroy();
          up.destroy();
          sockets.delete(c);
          sockets.delete(up);
        };
        c.on('error', close).on('close', close);
        up.on('error', close).on('close', close);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = server.address().port;
        resolve();
      });
    });
  await listen();
  return {
    get port() {
      return port;
    },
    async cut() {
      await new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.resetAndDestroy ? s.resetAndDestroy() : s.destroy();
        sockets.clear();
      });
    },
    restore: listen,
    stop() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

// ------------------------------------------------------------------ helpers

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

function sdk(gw) {
  return new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-unused', maxRetries: 0, timeout: ms(30000) });
}

// Which release answers on a replica (a short completion; the header names the release).
async function releaseOn(gw, route = 'canary-chat') {
  const { response } = await sdk(gw)
    .chat.completions.create({ model: route, messages: [{ role: 'user', content: 'which?' }], max_tokens: 2 })
    .withResponse();
  return response.headers.get('x-sluice-release');
}

async function admin(gw, method, p, body) {
  return requestJSON(method, `${gw.adminUrl}${p}`, { body, headers: { authorization: `Bearer ${gw.adminToken()}` } });
}

async function ready(gw, p = '/readyz') {
  const r = await fetch(`${gw.url}${p}`);
  return { status: r.status, json: await r.json() };
}

// Polls every replica until `pred(replica)` holds; returns the ms each took after t0.
async function propagation(replicas, t0, pred, what) {
  return Promise.all(
    replicas.map(async (gw) => {
      await waitFor(() => pred(gw), { timeout: ms(5000), interval: 5, what: `${what} on ${gw.name}` });
      return Date.now() - t0;
    }),
  );
}

describe('three replicas on one PostgreSQL store', { skip: HAVE_PG, timeout: ms(240_000) }, () => {
  let pg;
  let proxy;
  let mockA;
  let mockB;
  let gws = [];
  let stable;
  let candidate;
  let storeEnv;
  let config;
  const cli = async (...args) => {
    const r = await runProcess(SLUICE_BIN, args, { env: storeEnv, timeout: ms(20000) });
    assert.equal(r.code, 0, `sluice ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const startReplica = async (name, url) => {
    // Named replicas (as in Kubernetes, where each pod is a host of its own): a dead leader
    // is replaced when its lease runs out, not by the same-host process check.
    const gw = await startGateway({ config: { ...config, replica: { ...config.replica, id: `replica-${name}` } }, env: { ...process.env, SLUICE_STORE_URL: url } });
    gw.name = name;
    return gw;
  };

  before(async () => {
    pg = startPostgres();
    proxy = await startProxy(pg.port);
    storeEnv = { ...process.env, SLUICE_STORE_URL: pg.url };
    const mockCfg = { config: { seed: 7, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 12] } } };
    [mockA, mockB] = await Promise.all([startMock(mockCfg), startMock(mockCfg)]);
    const created = async (f) => /^(rel_[0-9a-f]{8})/.exec(await cli('release', 'create', path.join(FIX, f)))[1];
    stable = await created('chat-stable.yaml');
    candidate = await created('chat-candidate.yaml');
    await cli('route', 'promote', 'canary-chat', stable, '--reason', 'baseline');
    await cli('route', 'policy', 'canary-chat', '--no-approval', '--reason', 'automatic promotion in this test');
    config = {
      upstreams: [
        { name: 'mock-a', url: `${mockA.url}/v1` },
        { name: 'mock-b', url: `${mockB.url}/v1` },
      ],
      replica: { controller_lease_ms: LEASE_MS },
    };
    // Three replicas start together: the migrations are applied once.
    gws = await Promise.all([
      startReplica('A', pg.url),
      startReplica('B', pg.url),
      startReplica('C', `postgres://postgres@127.0.0.1:${proxy.port}/sluice`),
    ]);
  });

  after(async () => {
    await Promise.all(gws.map((g) => g?.stop().catch(() => {})));
    proxy?.stop();
    await Promise.all([mockA?.stop(), mockB?.stop()]);
    pg?.stop();
  });

  test('every replica serves the stable release; migrations were applied once', async () => {
    for (const gw of gws) assert.equal(await releaseOn(gw), stable, gw.name);
    const rows = execFileSync('psql', ['-At', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-d', 'sluice', '-c',
      'SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version'], { encoding: 'utf8' });
    const lines = rows.trim().split('\n');
    assert.ok(lines.length >= 2, rows);
    for (const l of lines) assert.match(l, /^\d+\|1$/, `each migration once: ${rows}`);
  });

  test('a promote, a rollback and a flag flip on one replica are in force on all within 1 s', async () => {
    const [a, b, c] = gws;
    const took = [];
    for (let round = 0; round < 3; ++round) {
      // promote on A (or B), observed on every replica by the release that answers
      const writer = round % 2 ? b : a;
      let t0 = Date.now();
      let r = await admin(writer, 'POST', '/admin/v1/routes/canary-chat/promote', { release: candidate, reason: `round ${round}` });
      assert.equal(r.status, 200, r.text);
      took.push(...(await propagation(gws, t0, async (gw) => (await releaseOn(gw)) === candidate, 'promote')));
      t0 = Date.now();
      r = await admin(writer, 'POST', '/admin/v1/routes/canary-chat/rollback', { reason: `round ${round}` });
      assert.equal(r.status, 200, r.text);
      took.push(...(await propagation(gws, t0, async (gw) => (await releaseOn(gw)) === stable, 'rollback')));
    }
    // A flag flip: the route's kill switch, set on C, blocks the route on every replica.
    let t0 = Date.now();
    let r = await admin(c, 'POST', '/admin/v1/kill/route', { route: 'canary-chat', reason: 'drill' });
    assert.equal(r.status, 200, r.text);
    const blocked = async (gw) => {
      try {
        await releaseOn(gw);
        return false;
      } catch (e) {
        return e.status >= 400;
      }
    };
    took.push(...(await propagation(gws, t0, blocked, 'kill switch')));
    t0 = Date.now();
    r = await admin(a, 'POST', '/admin/v1/kill/clear', { key: 'kill.route.canary-chat', reason: 'drill over' });
    assert.equal(r.status, 200, r.text);
    took.push(...(await propagation(gws, t0, async (gw) => !(await blocked(gw)), 'kill switch cleared')));
    const summary = `in force on every replica after (ms, ${took.length} observations): p50 ${quantile(took, 0.5)}, p90 ${quantile(took, 0.9)}, max ${Math.max(...took)}`;
    console.log(`# replicas: ${summary}`);
    assert.ok(Math.max(...took) <= ms(1000), summary);
  });

  test('a replica cut off from PostgreSQL keeps serving, is not ready for changes, and catches up', async () => {
    const [a, , c] = gws;
    assert.equal((await ready(c, '/readyz/changes')).status, 200);
    await proxy.cut();
    await waitFor(async () => (await ready(c, '/readyz/changes')).status === 503, { timeout: ms(5000), what: 'C not ready for changes' });
    const rz = await ready(c);
    assert.equal(rz.status, 200, 'still ready for traffic');
    assert.equal(rz.json.ready_for_changes, false);
    assert.equal(await releaseOn(c), stable, 'serves its last snapshot');
    // A change C cannot see yet.
    const r = await admin(a, 'POST', '/admin/v1/routes/canary-chat/promote', { release: candidate, reason: 'while C is cut off' });
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => (await releaseOn(a)) === candidate, { what: 'A promoted' });
    await sleep(ms(300));
    assert.equal(await releaseOn(c), stable, 'C keeps its snapshot while cut off');
    await proxy.restore();
    const t0 = Date.now();
    await waitFor(async () => (await ready(c, '/readyz/changes')).status === 200 && (await releaseOn(c)) === candidate, {
      timeout: ms(6000),
      interval: 20,
      what: 'C caught up',
    });
    console.log(`# replicas: C caught up ${Date.now() - t0} ms after the connection returned`);
    assert.match(c.proc.stderr, /store is unreachable/);
    const back = await admin(a, 'POST', '/admin/v1/routes/canary-chat/rollback', { reason: 'back to the baseline' });
    assert.equal(back.status, 200, back.text);
    await propagation(gws, Date.now(), async (gw) => (await releaseOn(gw)) === stable, 'rollback');
  });

  test('one controller drives a canary on every replica\'s evidence; kill -9 of it hands over within the lease', async () => {
    const spec = path.join(tempDir('sluice-spec-'), 'spec.yaml');
    // A gate that needs more candidate requests than any one replica sees before the kill.
    writeFileSync(spec, [
      'strategy: canary',
      'alpha: 0.01',
      'steps:',
      '  - setWeight: 30',
      '  - pause: 1s',
      '  - setWeight: 60',
      '  - pause: 1s',
      '  - setWeight: 100',
      'gates:',
      '  - {check: "error_rate <= stable + 0.05", min_samples: 150}',
      '',
    ].join('\n'));
    const out = await cli('rollout', 'start', 'canary-chat', '--to', candidate, '--spec', spec, '--override', '--reason', 'replicas test');
    const id = /started rollout (ro_[0-9a-f]+)/.exec(out)[1];
    const status = async (gw) => (await admin(gw, 'GET', '/admin/v1/rollouts/canary-chat')).json;
    const first = await waitFor(async () => {
      const s = await status(gws[0]);
      return s.id === id && s.weight === 30 ? s : false;
    }, { timeout: ms(5000), what: 'canary at 30% on A' });
    // Exactly one leader, and every replica names the same one.
    const views = await Promise.all(gws.map(status));
    const leaders = views.filter((v) => v.controller.leader);
    assert.equal(leaders.length, 1, JSON.stringify(views.map((v) => v.controller)));
    const leaderName = gws[views.indexOf(leaders[0])].name;
    await waitFor(async () => (await Promise.all(gws.map(status))).every((v) => v.controller.holder === leaders[0].controller.replica && v.weight === 30), {
      what: 'every replica follows the leader at 30%',
    });
    assert.equal(first.step, 1);

    // Traffic on the two followers only: the leader's gates must still see it.
    const followers = gws.filter((g) => g.name !== leaderName);
    let sent = 0;
    let stop = false;
    const pump = async (gw) => {
      const client = sdk(gw);
      while (!stop) {
        await client.chat.completions.create({ model: 'canary-chat', messages: [{ role: 'user', content: `q${sent++}` }], max_tokens: 4 });
      }
    };
    const pumps = followers.map(pump);
    const leaderGw = gws.find((g) => g.name === leaderName);
    await waitFor(async () => (await status(leaderGw)).live.candidate.requests >= 40, { timeout: ms(30000), interval: 100, what: 'followers\' evidence on the leader' });
    stop = true;
    await Promise.all(pumps);
    await sleep(ms(1200)); // the followers publish every 500 ms and the leader persists every second
    const before = await status(leaderGw);
    assert.equal(before.step, 1, 'the gate needs 150 candidate requests: still at the first pause');
    assert.ok(before.live.candidate.requests < 150);

    // kill -9 the leader.
    const killedAt = Date.now();
    leaderGw.proc.signal('SIGKILL');
    const rest = gws.filter((g) => g !== leaderGw);
    const taken = await waitFor(async () => {
      const vs = await Promise.all(rest.map(status));
      const l = vs.find((v) => v.controller.leader);
      return l ? { v: l, gw: rest[vs.indexOf(l)] } : false;
    }, { timeout: ms(LEASE_MS + 4000), interval: 50, what: 'a new controller' });
    const takeoverMs = Date.now() - killedAt;
    console.log(`# replicas: controller taken over by ${taken.gw.name} ${takeoverMs} ms after kill -9 (lease ${LEASE_MS} ms)`);
    assert.ok(takeoverMs <= ms(LEASE_MS + 1500), `took ${takeoverMs} ms`);
    assert.ok(taken.v.controller.token > leaders[0].controller.token, 'a new fencing token');
    assert.equal(taken.v.step, before.step, 'resumes at the same step');
    assert.equal(taken.v.weight, 30);
    assert.ok(taken.v.live.candidate.requests >= before.live.candidate.requests, 'evidence intact');

    // Finish it on the survivors' traffic.
    stop = false;
    const pumps2 = rest.map(pump);
    const done = await waitFor(async () => {
      const s = await status(taken.gw);
      return s.status === 'completed' || s.status === 'aborted' ? s : false;
    }, { timeout: ms(60000), interval: 200, what: 'completion after the take-over' });
    stop = true;
    await Promise.all(pumps2);
    assert.equal(done.status, 'completed', JSON.stringify(done.events?.slice(-5)));
    const steps = done.events.filter((e) => e.kind === 'step').map((e) => e.detail.data.step);
    assert.deepEqual(steps, [...new Set(steps)], `no step decided twice: ${steps}`);
    assert.deepEqual(steps, [0, 1, 2, 3, 4]);
    assert.equal(done.events.filter((e) => e.kind === 'completed').length, 1);
    assert.ok(done.events.some((e) => e.kind === 'controller'), 'the take-over is in the rollout\'s events');
    for (const gw of rest) await waitFor(async () => (await releaseOn(gw)) === candidate, { what: `${gw.name} serves the promoted candidate` });
  });
});
