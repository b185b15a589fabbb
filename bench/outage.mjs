// bench/outage.mjs: one of four upstreams fails under steady load, and what clients see.
//
//   node bench/outage.mjs [--sluice PATH] [--rate 200] [--seconds 50] [--fault-at 10] [--fault-for 30]
//                         [--scenarios dies,slow,429] [--out FILE]
//
// Four `sluice mock-llm` upstreams in one pool (least_request, default breakers and retry
// budget, max_attempts 2, first_byte_ms 1000) behind one gateway. A steady open-loop load of
// non-streamed chat requests runs for --seconds; at --fault-at one upstream fails for
// --fault-for seconds, then recovers:
//   dies  the process is killed (connections refused), and started again on the same port
//   slow  it holds every response head for 5 s (past first_byte_ms)
//   429   it answers 429 with Retry-After: 1 to everything
// Reported per scenario: client errors (during the fault, after it), p50/p99 latency before,
// during and after, time from the fault to the victim's breaker opening (or, for 429, to
// the victim no longer being sent requests), time from recovery to its first answered
// request again (readmission), and retry amplification = requests the upstreams received /
// requests clients sent. Goals (issue 9): no client error while a healthy upstream remains;
// amplification at most 1.2.
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { parseArgs, sluiceBin, start as startProc } from './procs.mjs';

const args = parseArgs();
const BIN = sluiceBin(args);
const RATE = Number(args.rate ?? 200);
const SECONDS = Number(args.seconds ?? 50);
const FAULT_AT = Number(args['fault-at'] ?? 10);
const FAULT_FOR = Number(args['fault-for'] ?? 30);
const SCENARIOS = (args.scenarios ?? 'dies,slow,429').split(',');

const start = (argv, re) => startProc(BIN, argv, re);

async function startMock(port = 0) {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-outage-'));
  const cfg = path.join(dir, 'mock.yaml');
  writeFileSync(cfg, JSON.stringify({ seed: 5, defaults: { ttft_ms: 20, tpot_ms: 1, output_tokens: [8, 24] } }));
  const { p, m } = await start(['mock-llm', '--listen', `127.0.0.1:${port}`, '--config', cfg], /listening on 127\.0\.0\.1:(\d+)/);
  return { p, port: Number(m[1]), url: `http://127.0.0.1:${m[1]}` };
}

async function stats(url) {
  try {
    return (await (await fetch(`${url}/mock/stats`)).json()).requests;
  } catch {
    return null;
  }
}

const pct = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(1));
};

async function scenario(kind) {
  const mocks = [];
  for (let i = 0; i < 4; i++) mocks.push(await startMock());
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-outage-gw-'));
  const cfg = path.join(dir, 'gw.yaml');
  writeFileSync(
    cfg,
    JSON.stringify({
      request_log: { enabled: false },
      upstreams: mocks.map((m, i) => ({ name: `u${i}`, url: `${m.url}/v1`, timeouts: { first_byte_ms: 1000 } })),
      pools: [{ name: 'pool', upstreams: ['u0', 'u1', 'u2', 'u3'], balance: 'least_request' }],
      routes: [{ name: 'bot', upstream: 'pool', model: 'm' }],
    }),
  );
  const { p: gw, m } = await start(
    ['serve', '--config', cfg, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dir, '--threads', '1'],
    /data plane listening on [^:]+:(\d+)[\s\S]*admin listening on [^:]+:(\d+)/,
  );
  const base = `http://127.0.0.1:${m[1]}`;
  const admin = `http://127.0.0.1:${m[2]}`;
  const token = readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
  await sleep(300);
  const victim = mocks[0];
  const before = await Promise.all(mocks.map((x) => stats(x.url)));
  const t0 = Date.now();
  const faultStart = t0 + FAULT_AT * 1000;
  const faultEnd = faultStart + FAULT_FOR * 1000;
  const log = [];
  const victimSeries = [];
  let running = true;
  let opened = null;
  let readmitted = null;
  let faulted = false;
  let cleared = false;
  let lastVictim = before[0];
  let victimAtDeath = null;

  // Fault control and observation, every 100 ms.
  const control = (async () => {
    let restartedVictim = victim;
    while (running) {
      const now = Date.now();
      if (!faulted && now >= faultStart) {
        faulted = true;
        if (kind === 'dies') {
          victimAtDeath = (await stats(victim.url)) ?? lastVictim;
          victim.p.kill('SIGKILL');
        }
        if (kind === 'slow') await fetch(`${victim.url}/mock/faults`, { method: 'POST', body: JSON.stringify({ model: '*', slow_first_byte_ms: 5000 }) });
        if (kind === '429') await fetch(`${victim.url}/mock/faults`, { method: 'POST', body: JSON.stringify({ model: '*', rate_limit_rate: 1, retry_after_s: 1 }) });
      }
      if (faulted && !cleared && now >= faultEnd) {
        cleared = true;
        if (kind === 'dies') {
          restartedVictim = await startMock(victim.port);
          mocks[0] = restartedVictim;
          lastVictim = 0;
        } else {
          await fetch(`${victim.url}/mock/faults`, { method: 'DELETE' });
        }
      }
      const st = await (await fetch(`${admin}/admin/v1/upstreams`, { headers: { authorization: `Bearer ${token}` } })).json();
      const u0 = st.upstreams.find((u) => u.name === 'u0');
      if (faulted && !cleared && opened === null && u0.state === 'open') opened = Date.now() - faultStart;
      const vc = await stats(mocks[0].url);
      if (vc !== null) {
        victimSeries.push({ t: now, n: vc });
        if (cleared && readmitted === null && vc > lastVictim && u0.state === 'closed') readmitted = Date.now() - faultEnd;
        lastVictim = vc;
      }
      await sleep(100);
    }
  })();

  // Open-loop load: RATE requests per second, each independent of the others.
  const inflight = new Set();
  const body = JSON.stringify({ model: 'bot', messages: [{ role: 'user', content: 'status?' }] });
  const interval = 10;
  const perTick = RATE * interval / 1000;
  let carry = 0;
  while (Date.now() - t0 < SECONDS * 1000) {
    carry += perTick;
    while (carry >= 1) {
      carry -= 1;
      const ts = Date.now();
      const req = fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async (r) => {
          await r.arrayBuffer();
          log.push({ ts, ms: Date.now() - ts, status: r.status });
        })
        .catch(() => log.push({ ts, ms: Date.now() - ts, status: 0 }))
        .finally(() => inflight.delete(req));
      inflight.add(req);
    }
    await sleep(interval);
  }
  await Promise.all(inflight);
  running = false;
  await control;
  const after = await Promise.all(mocks.map((x) => stats(x.url)));
  // The victim's counter restarts with its process in "dies": count both lives.
  let upstreamRequests = 0;
  for (let i = 0; i < 4; i++)
    upstreamRequests += i === 0 && kind === 'dies' ? victimAtDeath - before[0] + (after[0] ?? 0) : after[i] - before[i];
  gw.kill('SIGTERM');
  for (const x of mocks) x.p.kill('SIGTERM');
  await sleep(300);

  const phase = (r) => (r.ts < faultStart ? 'before' : r.ts < faultEnd ? 'during' : 'after');
  const by = { before: [], during: [], after: [] };
  for (const r of log) by[phase(r)].push(r);
  const summary = (xs) => ({
    requests: xs.length,
    errors: xs.filter((r) => r.status !== 200).length,
    p50_ms: pct(xs.map((r) => r.ms), 0.5),
    p99_ms: pct(xs.map((r) => r.ms), 0.99),
  });
  return {
    scenario: kind,
    rate: RATE,
    client_requests: log.length,
    upstream_requests: upstreamRequests,
    amplification: Number((upstreamRequests / log.length).toFixed(3)),
    breaker_open_after_ms: opened,
    readmitted_after_ms: readmitted,
    before: summary(by.before),
    during: summary(by.during),
    after: summary(by.after),
    error_statuses: [...new Set(log.filter((r) => r.status !== 200).map((r) => r.status))],
  };
}

const results = [];
for (const s of SCENARIOS) {
  const r = await scenario(s);
  console.log(JSON.stringify(r));
  results.push(r);
}
if (args.out) writeFileSync(args.out, JSON.stringify(results, null, 2));
process.exit(0);
