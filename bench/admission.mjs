// bench/admission.mjs: admission control (issue 10) under load, in one run.
//
//   node bench/admission.mjs [--sluice PATH] [--out PREFIX] [--quick] [--seconds S]
//                            [--scenarios tpm,overload,noisy] [--tpm 60000]
//                            [--queue-max 16,256] [--queue-timeout-ms 100] [--critical-timeout-ms 2000] [--max-inflight 16]
//
// Starts its own `sluice mock-llm` upstreams and `sluice serve --threads 1` gateways on free
// loopback ports (a copy of the binary taken at the start, so a rebuild during the run changes
// nothing), drives them with streaming chat completions over keep-alive node:http agents, and
// writes PREFIX.md and PREFIX.json (default bench/results/<date>-<host>-admission, with
// `-quick` appended for --quick runs).
//
// 1. TPM accuracy. One tenant with `tpm: T`; 32 client streams. The run opens with a burst of
//    large-prompt requests that empties the (initially full) token bucket, then offers 2x T
//    (in real tokens) at a fixed pace for the rest of the window. Admitted tokens = the usage
//    (prompt + completion) of every 200 sent in the window; allowance = T + T x S / 60 (the
//    bucket starts full and refills T/60 per second). Goal: |admitted / allowance - 1| <= 0.02.
//    Two variants: max_tokens = the mock's fixed output length (reservation ~ usage), and
//    max_tokens 4x the output (every request is refunded at completion).
// 2. Overload with three tiers. One mock with a capacity model (16 slots, TTFT 100 ms, 5 ms per
//    token, 40 tokens: ~54 req/s) behind a pool with max_inflight 16, adaptive concurrency and
//    a queue for critical/standard. Unloaded TTFT first (critical only, 0.3x capacity), then
//    an open-loop Poisson overload of 3x capacity: critical 0.5x, standard 1x, sheddable 1.5x.
//    Goals: critical success >= 99.9%, p99 TTFT of admitted requests <= 2x the unloaded p99,
//    p99 time to a sheddable refusal < 5 ms. Then the same overload through a pool without
//    admission control (the baseline).
// 3. Noisy neighbour. A quiet tenant at a steady 20 req/s; a noisy one at 10x its rpm limit
//    (rpm 600, 100 req/s). The quiet tenant's p99 latency (whole response) alone and with the
//    noisy one, in alternating rounds. Goal: p99 change <= 10%.
// (4. 1,000 streams/s, sluice vs nginx added TTFT p99: bench/run.sh, not here.)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { WORDS, here, parseArgs, rng, sluiceBin, start as startProc } from './procs.mjs';

const args = parseArgs();
const QUICK = 'quick' in args;
const ORIG_BIN = sluiceBin(args);
const SCENARIOS = (args.scenarios ?? 'tpm,overload,noisy').split(',');
const S = args.seconds !== undefined ? Number(args.seconds) : QUICK ? 20 : 60;
const DUR = {
  tpm: S, // each TPM variant
  overload: S, // the overload phase (gated and baseline)
  unloaded: Math.max(5, Math.round(S / 3)),
  noisyRound: Math.max(5, Math.round(QUICK ? S / 2 : S / 4)),
  noisyRounds: QUICK ? 1 : 2,
};
const TPM = Number(args.tpm ?? 60000);
// One gated overload run per queue size: 16 is sluice's default (as many as the limit), 256
// is more than the standard tier's backlog ever reaches within the deadline here.
const QUEUE_MAXES = String(args['queue-max'] ?? '16,256').split(',').map(Number);
const QUEUE_TIMEOUT = Number(args['queue-timeout-ms'] ?? 100);
const CRITICAL_TIMEOUT = Number(args['critical-timeout-ms'] ?? 2000);
const MAX_INFLIGHT = Number(args['max-inflight'] ?? 16); // the gated pool's ceiling (the mock has 16 slots)
const CLIENT_TIMEOUT_MS = 60000;

const DATE = new Date().toISOString().slice(0, 10);
const HOST = os.hostname().split('.')[0];
const OUT = args.out ?? path.join(here, 'results', `${DATE}-${HOST}-admission${QUICK ? '-quick' : ''}`);

const WORK = mkdtempSync(path.join(os.tmpdir(), 'sluice-admission-'));
const BIN = path.join(WORK, 'sluice');
copyFileSync(ORIG_BIN, BIN);
execFileSync('chmod', ['+x', BIN]);
const BIN_SHA = createHash('sha256').update(readFileSync(BIN)).digest('hex');

const anomalies = []; // what looked wrong in sluice's (or the harness's) behaviour
const note = (s) => {
  anomalies.push(s);
  console.log(`!! ${s}`);
};
const log = (s) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

// ------------------------------------------------------------------ processes

const procs = [];
async function launch(label, argv, re) {
  const { p, m } = await startProc(BIN, argv, re);
  const rec = { label, p, stderr: '', exit: null, stopping: false };
  p.stderr.on('data', (d) => {
    rec.stderr += d;
    if (rec.stderr.length > 400000) rec.stderr = rec.stderr.slice(-200000);
  });
  p.on('exit', (code, signal) => {
    rec.exit = { code, signal };
    if (!rec.stopping) note(`${label} exited during the run (code ${code}, signal ${signal}): ${rec.stderr.slice(-300)}`);
  });
  procs.push(rec);
  return { rec, m };
}

async function stop(rec) {
  if (rec.exit) return;
  rec.stopping = true;
  rec.p.kill('SIGTERM');
  const t = Date.now();
  while (!rec.exit && Date.now() - t < 20000) await sleep(50);
  if (!rec.exit) {
    note(`${rec.label} did not exit within 20 s of SIGTERM; killed`);
    rec.p.kill('SIGKILL');
    while (!rec.exit) await sleep(50);
  }
  const san = rec.stderr.match(/(ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:)[^\n]*/);
  if (san) note(`${rec.label}: sanitizer report: ${san[0]}`);
  else if (rec.exit.code !== 0 && rec.exit.code !== null) note(`${rec.label} exited with code ${rec.exit.code} after SIGTERM: ${rec.stderr.slice(-300)}`);
}

async function startMock(label, cfg) {
  const dir = mkdtempSync(path.join(WORK, 'mock-'));
  const file = path.join(dir, 'mock.yaml');
  writeFileSync(file, JSON.stringify(cfg));
  const { rec, m } = await launch(label, ['mock-llm', '--listen', '127.0.0.1:0', '--config', file, '--threads', '1'], /listening on 127\.0\.0\.1:(\d+)/);
  return { rec, port: Number(m[1]), url: `http://127.0.0.1:${m[1]}` };
}

async function startGateway(label, cfg) {
  const dir = mkdtempSync(path.join(WORK, 'gw-'));
  const file = path.join(dir, 'gw.yaml');
  writeFileSync(file, JSON.stringify({ request_log: { enabled: false }, ...cfg }));
  const { rec, m } = await launch(
    label,
    ['serve', '--config', file, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dir, '--threads', '1'],
    /data plane listening on [^:]+:(\d+)[\s\S]*admin listening on [^:]+:(\d+)/,
  );
  await sleep(300);
  return { rec, port: Number(m[1]), admin: Number(m[2]), config: cfg };
}

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const tenantsConfig = (tenants) => ({
  tenants: tenants.map(({ key, ...t }) => t),
  api_keys: tenants.map((t) => ({ tenant: t.name, key_sha256: sha256(t.key) })),
});

// ------------------------------------------------------------------ client

// A deterministic pseudo-random stream (mulberry32).
function words(chars, seed) {
  const r = rng(seed);
  let s = '';
  while (s.length < chars) s += WORDS[Math.floor(r() * WORDS.length)] + ' ';
  return s.slice(0, chars);
}
// Route and upstream model are both "m": the body sluice forwards (and estimates) is the one sent.
const chatBody = (content, maxTokens) =>
  JSON.stringify({ model: 'm', stream: true, stream_options: { include_usage: true }, max_tokens: maxTokens, messages: [{ role: 'user', content }] });

const newAgent = () => new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096 });
const KEPT_HEADERS = [
  'retry-after',
  'retry-after-ms',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-sluice-overflow',
];
const CONTENT_RE = /"content":"[^"]/;

// One streaming chat completion. Resolves (never rejects) with: t0 (performance.now() at send),
// status (0: no response), ttft (ms to the first chunk with non-empty content), total (ms to
// the end of the response), usage, done ([DONE] seen), code/message (error body), headers.
function chat(agent, port, key, body, extra = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const r = { t0, status: 0, ttft: null, total: null, usage: null, done: false, code: null, message: null, headers: {}, err: null };
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      r.total = performance.now() - t0;
      clearTimeout(timer);
      resolve(r);
    };
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        path: '/v1/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}`, ...extra },
      },
      (res) => {
        r.status = res.statusCode;
        for (const h of KEPT_HEADERS) if (res.headers[h] !== undefined) r.headers[h] = res.headers[h];
        res.setEncoding('utf8');
        let buf = '';
        if (res.statusCode === 200) {
          res.on('data', (d) => {
            buf += d;
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const ev = buf.slice(0, i);
              buf = buf.slice(i + 2);
              if (!ev.startsWith('data: ')) continue;
              const data = ev.slice(6);
              if (r.ttft === null && CONTENT_RE.test(data)) r.ttft = performance.now() - t0;
              else if (data === '[DONE]') r.done = true;
              else if (data.includes('"usage"')) {
                try {
                  r.usage = JSON.parse(data).usage ?? r.usage;
                } catch {
                  r.err = 'bad_usage_chunk';
                }
              }
            }
          });
        } else {
          res.on('data', (d) => (buf += d));
        }
        res.on('end', () => {
          if (res.statusCode !== 200) {
            try {
              const e = JSON.parse(buf).error;
              r.code = e?.code ?? null;
              r.message = e?.message ?? null;
            } catch {
              r.code = 'unparsable_body';
            }
          }
          finish();
        });
        res.on('error', (e) => {
          r.err = e.code || e.message;
          finish();
        });
        res.on('aborted', () => {
          r.err = 'aborted';
          finish();
        });
      },
    );
    req.on('error', (e) => {
      r.err = e.code || e.message;
      finish();
    });
    const timer = setTimeout(() => {
      r.err = 'client_timeout';
      req.destroy();
      finish();
    }, CLIENT_TIMEOUT_MS);
    req.end(body);
  });
}

// Arrival times (ms from the start) of a Poisson process with exactly rate x seconds arrivals
// (given their number, a Poisson process's arrival times are independent and uniform), or a
// fixed pace.
function poisson(rate, seconds, seed) {
  const r = rng(seed);
  return Array.from({ length: Math.round(rate * seconds) }, () => r() * seconds * 1000).sort((a, b) => a - b);
}
const paced = (rate, seconds) => Array.from({ length: Math.floor(rate * seconds) }, (_, k) => (k * 1000) / rate);

// Open loop: fires each item at its time whether or not earlier ones finished. Returns the
// records and how late the client was at sending (a check on the load generator itself).
async function openLoop(schedule, fire, stopFlag = null) {
  const t0 = performance.now();
  const pending = [];
  const lag = [];
  for (const s of schedule) {
    if (stopFlag?.stop) break;
    const wait = s.at - (performance.now() - t0);
    if (wait > 1) await sleep(wait);
    lag.push(performance.now() - t0 - s.at);
    pending.push(fire(s));
  }
  return { recs: await Promise.all(pending), lag };
}

// ------------------------------------------------------------------ statistics

const pct = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const r1 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(1)));
const r2 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(2)));
const r4 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(4)));
const okStream = (r) => r.status === 200 && r.done && r.ttft !== null && !r.err;

function statusCounts(recs) {
  const c = {};
  for (const r of recs) {
    const k = r.err ? `error:${r.err}` : r.status === 200 && !okStream(r) ? '200_incomplete' : r.code ? `${r.status}:${r.code}` : `${r.status}`;
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
}

async function scrape(port) {
  try {
    const txt = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = {};
    for (const line of txt.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      m[line.slice(0, i)] = Number(line.slice(i + 1));
    }
    return m;
  } catch {
    return null;
  }
}
async function mockStats(url) {
  try {
    return await (await fetch(`${url}/mock/stats`)).json();
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ 1. TPM accuracy

const TPM_STREAMS = 32;
const TPM_PROMPT = 400; // characters of the steady requests' message
const TPM_BURST_PROMPT = 8000; // the opening burst: large prompts, 1 output token
const TPM_OUTPUT = 100; // the mock's fixed output length
const TPM_TPOT = 30; // ms per token: a steady request streams ~3 s, so ~15 are in flight
const TPM_KEY = 'sk-bench-metered';

async function tpmVariant(name, maxTokens) {
  log(`tpm/${name}: tpm ${TPM}, max_tokens ${maxTokens}, output ${TPM_OUTPUT}, ${DUR.tpm} s, ${TPM_STREAMS} streams`);
  const mock = await startMock(`mock-llm (tpm ${name})`, { seed: 11, defaults: { ttft_ms: 50, tpot_ms: TPM_TPOT, output_tokens: [TPM_OUTPUT, TPM_OUTPUT] } });
  const gw = await startGateway(`sluice serve (tpm ${name})`, {
    upstreams: [{ name: 'u0', url: `${mock.url}/v1` }],
    pools: [{ name: 'p', upstreams: ['u0'] }],
    routes: [{ name: 'm', upstream: 'p', model: 'm' }],
    ...tenantsConfig([{ name: 'metered', key: TPM_KEY, tpm: TPM, tier: 'standard' }]),
  });
  const agent = newAgent();
  const steady = chatBody(words(TPM_PROMPT, 1), maxTokens);
  const burst = chatBody(words(TPM_BURST_PROMPT, 2), 1);
  // sluice reserves body bytes / 4 + max_tokens; mock-llm counts ceil((chars + 16) / 4) + 3
  // prompt tokens per message.
  const reserveOf = (body, mt) => Math.floor(Buffer.byteLength(body) / 4) + mt;
  const usageEst = Math.ceil((TPM_PROMPT + 16) / 4) + 3 + TPM_OUTPUT;
  const rate = (2 * TPM) / 60 / usageEst; // requests per second: 2x TPM in real tokens
  const recs = [];
  const tStart = performance.now();
  const tEnd = tStart + DUR.tpm * 1000;
  let drained = false;
  let tSteady = null;
  let ticket = 0;
  let late = 0;
  let inflight = 0;
  let peak = 0;
  const send = async (kind, body, mt) => {
    inflight++;
    peak = Math.max(peak, inflight);
    const r = await chat(agent, gw.port, TPM_KEY, body);
    inflight--;
    r.kind = kind;
    r.reserve = reserveOf(body, mt);
    recs.push(r);
    return r;
  };
  const worker = async () => {
    // The burst: until the first 429 (the bucket is empty), at most 3 s.
    while (!drained && performance.now() - tStart < 3000) {
      const r = await send('burst', burst, 1);
      if (r.status === 429) drained = true;
    }
    drained = true;
    tSteady ??= performance.now();
    // The steady part: one global pace of `rate`, taken by whichever stream is free.
    for (;;) {
      const at = tSteady + (ticket++ * 1000) / rate;
      if (at >= tEnd) break;
      const wait = at - performance.now();
      if (wait > 1) await sleep(wait);
      else if (wait < -50) late++;
      await send('steady', steady, maxTokens);
    }
  };
  await Promise.all(Array.from({ length: TPM_STREAMS }, worker));
  const tLast = Math.max(...recs.map((r) => r.t0));
  const window = (tLast - tStart) / 1000;
  const allowance = TPM + (TPM * window) / 60;
  const admitted = recs.filter((r) => r.status === 200);
  const used = (r) => (r.usage ? r.usage.prompt_tokens + r.usage.completion_tokens : 0);
  const admittedTokens = admitted.reduce((a, r) => a + used(r), 0);
  // Requests admitted before the end whose refunds came after it: their reservation minus
  // their usage was still held in the bucket when the window closed.
  const held = admitted.filter((r) => r.t0 + r.total > tLast).reduce((a, r) => a + Math.max(0, r.reserve - used(r)), 0);
  const lastRefused = recs.filter((r) => r.status === 429).sort((a, b) => b.t0 - a.t0)[0];
  const refused = recs.filter((r) => r.status === 429);
  const steadyRecs = recs.filter((r) => r.kind === 'steady');
  const offeredTokens = steadyRecs.length * usageEst;
  const steadySpan = (tLast - (tSteady ?? tStart)) / 1000;
  // Checks.
  const noUsage = admitted.filter((r) => !r.usage || !r.done).length;
  if (noUsage) note(`tpm/${name}: ${noUsage} answers with status 200 had no usage chunk or no [DONE]`);
  const other = recs.filter((r) => r.status !== 200 && r.status !== 429);
  if (other.length) note(`tpm/${name}: ${other.length} responses neither 200 nor 429: ${JSON.stringify(statusCounts(other))}`);
  const badRefusals = refused.filter((r) => r.code !== 'rate_limit_exceeded' || !r.headers['retry-after'] || !r.headers['retry-after-ms']);
  if (badRefusals.length) note(`tpm/${name}: ${badRefusals.length} of ${refused.length} 429s lack code rate_limit_exceeded, Retry-After or retry-after-ms`);
  const noRl = recs.filter((r) => (r.status === 200 || r.status === 429) && (r.headers['x-ratelimit-limit-tokens'] !== String(TPM) || r.headers['x-ratelimit-remaining-tokens'] === undefined));
  if (noRl.length) note(`tpm/${name}: ${noRl.length} responses without x-ratelimit-limit-tokens ${TPM} / x-ratelimit-remaining-tokens`);
  if (steadySpan > 0 && offeredTokens / steadySpan < 1.8 * (TPM / 60)) note(`tpm/${name}: the client offered only ${(offeredTokens / steadySpan / (TPM / 60)).toFixed(2)}x TPM (target 2x)`);
  const st = await mockStats(mock.url);
  agent.destroy();
  await stop(gw.rec);
  await stop(mock.rec);
  const ratio = admittedTokens / allowance;
  return {
    variant: name,
    tpm: TPM,
    max_tokens: maxTokens,
    output_tokens: TPM_OUTPUT,
    streams: TPM_STREAMS,
    window_s: r2(window),
    allowance_tokens: Math.round(allowance),
    admitted_tokens: admittedTokens,
    ratio: r4(ratio),
    held_at_end_tokens: held,
    ratio_with_held: r4((admittedTokens + held) / allowance),
    remaining_at_last_refusal: lastRefused ? Number(lastRefused.headers['x-ratelimit-remaining-tokens'] ?? NaN) : null,
    reservation_per_request: reserveOf(steady, maxTokens),
    usage_per_request: admitted.find((r) => r.kind === 'steady') ? used(admitted.find((r) => r.kind === 'steady')) : null,
    burst_requests: recs.filter((r) => r.kind === 'burst').length,
    burst_admitted: admitted.filter((r) => r.kind === 'burst').length,
    steady_requests: steadyRecs.length,
    steady_admitted: admitted.filter((r) => r.kind === 'steady').length,
    offered_x_tpm: r2(steadySpan > 0 ? offeredTokens / steadySpan / (TPM / 60) : null),
    refused_429: refused.length,
    peak_concurrent_streams: peak,
    // Admitted streams in flight on average during the steady part (their time / its length).
    admitted_in_flight_mean: r1(steadySpan > 0 ? admitted.filter((r) => r.kind === 'steady').reduce((a, r) => a + r.total, 0) / 1000 / steadySpan : null),
    late_tickets: late,
    statuses: statusCounts(recs),
    upstream_requests: st?.requests ?? null,
    goal_met: Math.abs(ratio - 1) <= 0.02,
  };
}

// ------------------------------------------------------------------ 2. overload with three tiers

const CAP = { slots: 16, ttft_ms: 100, tpot_ms: 5, output: 40 };
const SERVICE_MS = CAP.ttft_ms + (CAP.output - 1) * CAP.tpot_ms; // tpot_growth 0: constant
const CAPACITY = CAP.slots / (SERVICE_MS / 1000); // requests per second the mock completes
const MIX = { critical: 0.5, standard: 1.0, sheddable: 1.5 }; // x capacity: 3x in all
const TIER_KEYS = { critical: 'sk-bench-critical', standard: 'sk-bench-standard', sheddable: 'sk-bench-sheddable' };
const TIERS = ['critical', 'standard', 'sheddable'];
const OVERLOAD_BODY = chatBody(words(200, 3), 64);

const mockCapacityConfig = () => ({
  seed: 21,
  defaults: { ttft_ms: CAP.ttft_ms, tpot_ms: CAP.tpot_ms, output_tokens: [CAP.output, CAP.output] },
  capacity: { slots: CAP.slots, queue: 512, tpot_growth: 0, prefill_ms_per_1k: 0 },
});
const overloadGateway = (mock, queueMax) => ({
  upstreams: [{ name: 'u0', url: `${mock.url}/v1` }],
  pools: [
    queueMax !== null
      ? { name: 'p', upstreams: ['u0'], max_inflight: MAX_INFLIGHT, adaptive_concurrency: true, queue: { max: queueMax, timeout_ms: QUEUE_TIMEOUT, critical_timeout_ms: CRITICAL_TIMEOUT } }
      : { name: 'p', upstreams: ['u0'] },
  ],
  routes: [{ name: 'm', upstream: 'p', model: 'm' }],
  ...tenantsConfig(TIERS.map((t) => ({ name: t, key: TIER_KEYS[t], tier: t }))),
});

function tierSummary(recs) {
  const ok = recs.filter(okStream);
  const s503 = recs.filter((r) => r.status === 503);
  const timeouts = s503.filter((r) => /waited \d+ ms/.test(r.message ?? ''));
  const fast = s503.filter((r) => !/waited \d+ ms/.test(r.message ?? ''));
  return {
    sent: recs.length,
    ok: ok.length,
    success_rate: recs.length ? r4(ok.length / recs.length) : null,
    refused_503: fast.length,
    queue_timeout_503: timeouts.length,
    other: recs.length - ok.length - s503.length,
    ttft_p50_ms: r1(pct(ok.map((r) => r.ttft), 0.5)),
    ttft_p99_ms: r1(pct(ok.map((r) => r.ttft), 0.99)),
    ttft_max_ms: r1(pct(ok.map((r) => r.ttft), 1)),
    total_p99_ms: r1(pct(ok.map((r) => r.total), 0.99)),
    refusal_p50_ms: r2(pct(fast.map((r) => r.total), 0.5)),
    refusal_p99_ms: r2(pct(fast.map((r) => r.total), 0.99)),
    refusal_max_ms: r2(pct(fast.map((r) => r.total), 1)),
    statuses: statusCounts(recs),
  };
}

// One open-loop phase against a gateway; samples sluice's pool gauges and the mock's load.
async function overloadPhase(label, gw, mock, mix, seconds, seedBase) {
  const schedule = [];
  for (const [i, tier] of TIERS.entries()) {
    if (!mix[tier]) continue;
    for (const at of poisson(mix[tier] * CAPACITY, seconds, seedBase + i)) schedule.push({ at, tier });
  }
  schedule.sort((a, b) => a.at - b.at);
  const agent = newAgent();
  const samples = [];
  const tPhase = performance.now();
  let sampling = true;
  const mock0 = await mockStats(mock.url);
  const m0 = (await scrape(gw.admin)) ?? {};
  const sampler = (async () => {
    while (sampling) {
      const [m, st] = await Promise.all([scrape(gw.admin), mockStats(mock.url)]);
      if (m) {
        samples.push({
          t_ms: Math.round(performance.now() - tPhase),
          limit: m['sluice_pool_limit{pool="p"}'],
          in_flight: m['sluice_pool_in_flight{pool="p"}'],
          queued: TIERS.reduce((a, t) => a + (m[`sluice_pool_queued{pool="p",tier="${t}"}`] ?? 0), 0),
          mock_in_flight: st?.in_flight ?? null,
        });
      }
      await sleep(250);
    }
  })();
  log(`${label}: ${schedule.length} requests in ${seconds} s (${(schedule.length / seconds).toFixed(1)} req/s; capacity ${CAPACITY.toFixed(1)} req/s)`);
  const { recs, lag } = await openLoop(schedule, async (s) => {
    const r = await chat(agent, gw.port, TIER_KEYS[s.tier], OVERLOAD_BODY);
    r.tier = s.tier;
    return r;
  });
  sampling = false;
  await sampler;
  // The queue must drain and the slots come back once the load stops.
  let drainedMs = null;
  const tDrain = performance.now();
  let m1 = null;
  const gated = !!gw.config.pools[0].max_inflight;
  while (performance.now() - tDrain < 10000) {
    m1 = await scrape(gw.admin);
    const busy = gated ? (m1?.['sluice_pool_in_flight{pool="p"}'] ?? 1) + TIERS.reduce((a, t) => a + (m1?.[`sluice_pool_queued{pool="p",tier="${t}"}`] ?? 0), 0) : 0;
    if (m1 && busy === 0) {
      drainedMs = performance.now() - tDrain;
      break;
    }
    await sleep(100);
  }
  const mock1 = await mockStats(mock.url);
  agent.destroy();
  const byTier = Object.fromEntries(TIERS.filter((t) => mix[t]).map((t) => [t, tierSummary(recs.filter((r) => r.tier === t))]));
  const ok = recs.filter(okStream);
  const delta = (name, t) => (m1?.[`${name}{pool="p",tier="${t}"}`] ?? 0) - (m0[`${name}{pool="p",tier="${t}"}`] ?? 0);
  const gate = gated
    ? {
        limit_min: Math.min(...samples.map((s) => s.limit).filter((x) => x !== undefined)),
        limit_max: Math.max(...samples.map((s) => s.limit).filter((x) => x !== undefined)),
        in_flight_max: Math.max(...samples.map((s) => s.in_flight ?? 0)),
        queued_max: Math.max(...samples.map((s) => s.queued ?? 0)),
        drained_after_ms: drainedMs === null ? null : Math.round(drainedMs),
        in_flight_after: m1?.['sluice_pool_in_flight{pool="p"}'] ?? null,
        // Every 250 ms: the pool's limit, slots held, waiters, and the mock's requests in flight.
        series: samples.map((x) => [x.t_ms, r2(x.limit), x.in_flight, x.queued, x.mock_in_flight]),
        metrics: Object.fromEntries(
          TIERS.map((t) => [
            t,
            {
              admitted: delta('sluice_pool_admitted_total', t),
              shed: delta('sluice_pool_shed_total', t),
              queue_timeouts: delta('sluice_pool_queue_timeouts_total', t),
            },
          ]),
        ),
      }
    : null;
  return {
    phase: label,
    seconds,
    offered_rps: r1(schedule.length / seconds),
    offered_x_capacity: r2(schedule.length / seconds / CAPACITY),
    client_send_lag_p99_ms: r1(pct(lag, 0.99)),
    admitted_ttft_p50_ms: r1(pct(ok.map((r) => r.ttft), 0.5)),
    admitted_ttft_p99_ms: r1(pct(ok.map((r) => r.ttft), 0.99)),
    // Completed streams over the time from the first request sent to the last answer ended.
    goodput_rps: r1(ok.length / ((Math.max(...recs.map((r) => r.t0 + r.total)) - Math.min(...recs.map((r) => r.t0))) / 1000)),
    tiers: byTier,
    gate,
    mock: {
      requests: (mock1?.requests ?? 0) - (mock0?.requests ?? 0),
      queued_in_mock: (mock1?.queued ?? 0) - (mock0?.queued ?? 0),
      queue_full_429: (mock1?.queue_full ?? 0) - (mock0?.queue_full ?? 0),
      in_flight_max: Math.max(...samples.map((s) => s.mock_in_flight ?? 0)),
    },
    _recs: recs,
  };
}

function checkGated(ph, anomaliesPrefix) {
  const g = ph.gate;
  const p = anomaliesPrefix;
  const recs = ph._recs;
  const s503 = recs.filter((r) => r.status === 503);
  const bad503 = s503.filter((r) => r.code !== 'overloaded' || !r.headers['retry-after'] || !r.headers['retry-after-ms']);
  if (bad503.length) note(`${p}: ${bad503.length} of ${s503.length} 503s lack code overloaded, Retry-After or retry-after-ms (e.g. ${JSON.stringify(bad503[0].code)} ${JSON.stringify(bad503[0].headers)})`);
  const weird = recs.filter((r) => !okStream(r) && r.status !== 503);
  if (weird.length) note(`${p}: ${weird.length} responses neither a complete 200 stream nor 503: ${JSON.stringify(statusCounts(weird))}`);
  const shedTimeouts = s503.filter((r) => r.tier === 'sheddable' && /waited/.test(r.message ?? ''));
  if (shedTimeouts.length || g.metrics.sheddable.queue_timeouts) note(`${p}: sheddable requests were queued (${shedTimeouts.length} queue-timeout 503s, metric ${g.metrics.sheddable.queue_timeouts})`);
  const slowShed = s503.filter((r) => r.tier === 'sheddable' && r.total > 100);
  if (slowShed.length) note(`${p}: ${slowShed.length} sheddable refusals took more than 100 ms (max ${r1(Math.max(...slowShed.map((r) => r.total)))} ms)`);
  const critRefused = s503.filter((r) => r.tier === 'critical');
  if (critRefused.length)
    note(`${p}: ${critRefused.length} critical requests refused (${critRefused.filter((r) => /waited/.test(r.message ?? '')).length} at the queue deadline), e.g. "${critRefused[0].message}"`);
  if (ph.mock.in_flight_max > MAX_INFLIGHT) note(`${p}: the mock had ${ph.mock.in_flight_max} requests in flight (pool max_inflight ${MAX_INFLIGHT}): the gate let more through`);
  if (ph.mock.queued_in_mock > 0 && MAX_INFLIGHT <= CAP.slots) note(`${p}: ${ph.mock.queued_in_mock} requests waited for a slot inside the mock (the gate let more than its ${CAP.slots} slots through)`);
  if (g.in_flight_max > g.limit_max) note(`${p}: sluice_pool_in_flight reached ${g.in_flight_max}, above the limit (max ${g.limit_max})`);
  if (g.drained_after_ms === null) note(`${p}: the pool did not drain within 10 s after the load (in flight ${g.in_flight_after}, queued ${JSON.stringify(g.metrics)})`);
  for (const t of TIERS) {
    const sent = ph.tiers[t]?.sent ?? 0;
    const m = g.metrics[t];
    if (m.admitted + m.shed !== sent)
      note(`${p}: ${t}: sluice counted admitted ${m.admitted} + shed ${m.shed} = ${m.admitted + m.shed}, the client sent ${sent} (${JSON.stringify(ph.tiers[t]?.statuses)})`);
    const ok = ph.tiers[t]?.ok ?? 0;
    if (m.admitted !== ok) note(`${p}: ${t}: sluice counted ${m.admitted} admitted, the client got ${ok} complete 200 streams`);
  }
}

async function overload() {
  const phases = [];
  const gatedSummary = (ph, unloadedP99) => ({
    queue_max: ph.queue_max,
    critical_success: ph.tiers.critical.success_rate,
    admitted_ttft_p99_ms: ph.admitted_ttft_p99_ms,
    admitted_ttft_p99_x_unloaded: r2(ph.admitted_ttft_p99_ms / unloadedP99),
    critical_ttft_p99_ms: ph.tiers.critical.ttft_p99_ms,
    critical_ttft_p99_x_unloaded: r2(ph.tiers.critical.ttft_p99_ms / unloadedP99),
    standard_ttft_p99_ms: ph.tiers.standard.ttft_p99_ms,
    sheddable_refusal_p99_ms: ph.tiers.sheddable.refusal_p99_ms,
  });
  // With admission control: the unloaded reference on the first gateway, then one overload per
  // queue size, each on a fresh gateway and mock.
  for (const [i, qmax] of QUEUE_MAXES.entries()) {
    const mock = await startMock(`mock-llm (overload, queue ${qmax})`, mockCapacityConfig());
    const gw = await startGateway(`sluice serve (overload, queue ${qmax})`, overloadGateway(mock, qmax));
    await overloadPhase(`overload/warm-up`, gw, mock, { critical: 0.3 }, 2, 100);
    if (i === 0) phases.push({ ...(await overloadPhase('overload/unloaded', gw, mock, { critical: 0.3 }, DUR.unloaded, 200)), kind: 'unloaded', queue_max: qmax });
    phases.push({ ...(await overloadPhase(`overload/gated, queue ${qmax}`, gw, mock, MIX, DUR.overload, 300)), kind: 'gated', queue_max: qmax });
    await stop(gw.rec);
    await stop(mock.rec);
  }
  // Baseline: the same overload, a pool without admission control.
  {
    const mock = await startMock('mock-llm (overload, baseline)', mockCapacityConfig());
    const gw = await startGateway('sluice serve (overload, baseline)', overloadGateway(mock, null));
    await overloadPhase('overload/baseline warm-up', gw, mock, { critical: 0.3 }, 2, 100);
    phases.push({ ...(await overloadPhase('overload/baseline', gw, mock, MIX, DUR.overload, 300)), kind: 'baseline', queue_max: null });
    await stop(gw.rec);
    await stop(mock.rec);
  }
  const unloaded = phases.find((p) => p.kind === 'unloaded');
  for (const ph of phases.filter((p) => p.kind === 'gated')) checkGated(ph, `overload/gated, queue ${ph.queue_max}`);
  const unloadedP99 = unloaded.tiers.critical.ttft_p99_ms;
  const unloadedBad = unloaded._recs.filter((r) => !okStream(r));
  if (unloadedBad.length) note(`overload/unloaded: ${unloadedBad.length} failed requests at 0.3x capacity: ${JSON.stringify(statusCounts(unloadedBad))}`);
  const baseline = phases.find((p) => p.kind === 'baseline');
  const summary = {
    capacity_rps: r1(CAPACITY),
    service_ms: SERVICE_MS,
    mix_x_capacity: MIX,
    queue_timeout_ms: QUEUE_TIMEOUT,
    critical_timeout_ms: CRITICAL_TIMEOUT,
    unloaded_ttft_p50_ms: unloaded.tiers.critical.ttft_p50_ms,
    unloaded_ttft_p99_ms: unloadedP99,
    gated: phases.filter((p) => p.kind === 'gated').map((p) => gatedSummary(p, unloadedP99)),
    baseline: { ...gatedSummary(baseline, unloadedP99), queue_max: undefined },
  };
  for (const p of phases) delete p._recs;
  return { summary, phases };
}

// ------------------------------------------------------------------ 3. noisy neighbour

const QUIET = { key: 'sk-bench-quiet', rpm: 6000, rate: 20 };
const NOISY = { key: 'sk-bench-noisy', rpm: 600, rate: 100 }; // 10x its limit
const NOISY_BODY = chatBody(words(200, 4), 32);

async function noisy() {
  const mock = await startMock('mock-llm (noisy)', { seed: 31, defaults: { ttft_ms: 20, tpot_ms: 2, output_tokens: [20, 20] } });
  const gw = await startGateway('sluice serve (noisy)', {
    upstreams: [{ name: 'u0', url: `${mock.url}/v1` }],
    pools: [{ name: 'p', upstreams: ['u0'] }],
    routes: [{ name: 'm', upstream: 'p', model: 'm' }],
    ...tenantsConfig([
      { name: 'quiet', key: QUIET.key, rpm: QUIET.rpm, tier: 'standard' },
      { name: 'noisy', key: NOISY.key, rpm: NOISY.rpm, tier: 'standard' },
    ]),
  });
  const agent = newAgent();
  const noisyAgent = newAgent();
  const quietRun = async () => {
    const { recs, lag } = await openLoop(
      paced(QUIET.rate, DUR.noisyRound).map((at) => ({ at })),
      () => chat(agent, gw.port, QUIET.key, NOISY_BODY),
    );
    return { recs, lag };
  };
  // Warm-up (connections, first requests).
  await openLoop(paced(QUIET.rate, 2).map((at) => ({ at })), () => chat(agent, gw.port, QUIET.key, NOISY_BODY));
  const alone = [];
  const withNoisy = [];
  const noisyRecs = [];
  const lags = [];
  const drainWaits = [];
  for (let round = 0; round < DUR.noisyRounds; round++) {
    log(`noisy: round ${round + 1}/${DUR.noisyRounds}: quiet alone, ${DUR.noisyRound} s`);
    const a = await quietRun();
    alone.push(...a.recs);
    lags.push(...a.lag);
    // The noisy tenant, until told to stop; the quiet one is measured once its bucket is empty
    // (its first 429): the steady state of a tenant at 10x its limit.
    const flag = { stop: false };
    let firstRefusal = null;
    const t0 = performance.now();
    const noisyRun = openLoop(
      paced(NOISY.rate, 3600).map((at) => ({ at })),
      async () => {
        const r = await chat(noisyAgent, gw.port, NOISY.key, NOISY_BODY);
        if (r.status === 429 && firstRefusal === null) firstRefusal = performance.now();
        noisyRecs.push(r);
        return null;
      },
      flag,
    );
    while (firstRefusal === null && performance.now() - t0 < 15000) await sleep(20);
    if (firstRefusal === null) note('noisy: the noisy tenant got no 429 within 15 s at 10x its rpm');
    drainWaits.push(r1((firstRefusal ?? performance.now()) - t0));
    log(`noisy: round ${round + 1}/${DUR.noisyRounds}: quiet with the noisy tenant, ${DUR.noisyRound} s`);
    const w = await quietRun();
    withNoisy.push(...w.recs);
    lags.push(...w.lag);
    flag.stop = true;
    await noisyRun;
  }
  agent.destroy();
  noisyAgent.destroy();
  await stop(gw.rec);
  await stop(mock.rec);
  const lat = (recs) => recs.filter(okStream).map((r) => r.total);
  const q = (recs) => ({
    requests: recs.length,
    ok: recs.filter(okStream).length,
    p50_ms: r1(pct(lat(recs), 0.5)),
    p99_ms: r1(pct(lat(recs), 0.99)),
    max_ms: r1(pct(lat(recs), 1)),
  });
  const quietBad = [...alone, ...withNoisy].filter((r) => !okStream(r));
  if (quietBad.length) note(`noisy: the quiet tenant had ${quietBad.length} failed requests: ${JSON.stringify(statusCounts(quietBad))}`);
  const noRl = [...alone, ...withNoisy, ...noisyRecs].filter((r) => (r.status === 200 || r.status === 429) && !r.headers['x-ratelimit-limit-requests']);
  if (noRl.length) note(`noisy: ${noRl.length} responses without x-ratelimit-limit-requests`);
  const n429 = noisyRecs.filter((r) => r.status === 429);
  const bad429 = n429.filter((r) => r.code !== 'rate_limit_exceeded' || !r.headers['retry-after']);
  if (bad429.length) note(`noisy: ${bad429.length} of ${n429.length} 429s lack code rate_limit_exceeded or Retry-After`);
  const noisyOther = noisyRecs.filter((r) => !okStream(r) && r.status !== 429);
  if (noisyOther.length) note(`noisy: the noisy tenant had ${noisyOther.length} responses neither 200 nor 429: ${JSON.stringify(statusCounts(noisyOther))}`);
  const A = q(alone);
  const W = q(withNoisy);
  return {
    quiet_rate: QUIET.rate,
    noisy_rate: NOISY.rate,
    noisy_rpm: NOISY.rpm,
    rounds: DUR.noisyRounds,
    round_s: DUR.noisyRound,
    quiet_alone: A,
    quiet_with_noisy: W,
    p99_change: r4(W.p99_ms / A.p99_ms - 1),
    p50_change: r4(W.p50_ms / A.p50_ms - 1),
    noisy: { sent: noisyRecs.length, ok: noisyRecs.filter(okStream).length, refused_429: n429.length, refusal_p99_ms: r2(pct(n429.map((r) => r.total), 0.99)), statuses: statusCounts(noisyRecs) },
    noisy_bucket_emptied_after_ms: drainWaits,
    client_send_lag_p99_ms: r1(pct(lags, 0.99)),
    goal_met: W.p99_ms / A.p99_ms - 1 <= 0.1,
  };
}

// ------------------------------------------------------------------ run and report

const machine = {
  nproc: os.cpus().length,
  cpu: os.cpus()[0]?.model ?? '?',
  kernel: os.release(),
  mem_gib: r1(os.totalmem() / 2 ** 30),
  loadavg_at_start: os.loadavg().map(r2),
};
let sluiceVersion = '?';
try {
  sluiceVersion = execFileSync(BIN, ['--version']).toString().trim();
} catch {}
let git = '?';
try {
  git = execFileSync('git', ['-C', here, 'rev-parse', '--short', 'HEAD']).toString().trim();
  if (execFileSync('git', ['-C', here, 'status', '--porcelain', '--', '../src']).toString().trim()) git += ' (src modified)';
} catch {}

const t0 = Date.now();
const results = {
  date: DATE,
  host: HOST,
  quick: QUICK,
  machine,
  sluice: { path: ORIG_BIN, sha256: BIN_SHA, version: sluiceVersion, git },
  node: process.version,
  durations_s: DUR,
};
log(`sluice ${ORIG_BIN} (sha256 ${BIN_SHA.slice(0, 12)}), ${QUICK ? 'quick' : 'full'} run, scenarios ${SCENARIOS.join(',')}`);
try {
  if (SCENARIOS.includes('tpm')) {
    results.tpm = [await tpmVariant('fixed', TPM_OUTPUT), await tpmVariant('refunds', 4 * TPM_OUTPUT)];
    for (const v of results.tpm) console.log(JSON.stringify(v));
  }
  if (SCENARIOS.includes('overload')) {
    results.overload = await overload();
    console.log(JSON.stringify(results.overload.summary));
  }
  if (SCENARIOS.includes('noisy')) {
    results.noisy = await noisy();
    console.log(JSON.stringify({ ...results.noisy, noisy: undefined }));
  }
} catch (e) {
  note(`the run stopped: ${e.stack ?? e}`);
}
results.wall_s = Math.round((Date.now() - t0) / 1000);
results.anomalies = anomalies;

// The goals, one line each.
const goals = [];
const fmtPct = (x) => (x === null || x === undefined ? 'n/a' : `${(x * 100).toFixed(2)}%`);
for (const v of results.tpm ?? [])
  goals.push({
    goal: `TPM accuracy, ${v.variant === 'fixed' ? 'max_tokens = output' : 'max_tokens 4x output (refunds)'}`,
    measured: `admitted/allowance ${v.ratio} (${v.admitted_tokens} / ${v.allowance_tokens}); with tokens still reserved at the end ${v.ratio_with_held}`,
    // The goal is for reservations ~ usage; with refunds the window ends with unrefunded
    // reservations in flight (reported as "with held"), so it is reported, not judged.
    target: v.variant === 'fixed' ? 'ratio within 1 ± 0.02' : 'reported (goal: fixed variant)',
    met: v.variant === 'fixed' ? v.goal_met : null,
  });
if (results.overload) {
  const s = results.overload.summary;
  for (const g of s.gated) {
    const q = `, queue max ${g.queue_max}`;
    goals.push({ goal: `critical success under 3x overload${q}`, measured: fmtPct(g.critical_success), target: '>= 99.9%', met: g.critical_success >= 0.999 });
    goals.push({
      goal: `admitted p99 TTFT vs unloaded p99${q}`,
      measured: `${g.admitted_ttft_p99_ms} ms vs ${s.unloaded_ttft_p99_ms} ms = ${g.admitted_ttft_p99_x_unloaded}x (critical only: ${g.critical_ttft_p99_ms} ms = ${g.critical_ttft_p99_x_unloaded}x; standard ${g.standard_ttft_p99_ms} ms)`,
      target: '<= 2x',
      met: g.admitted_ttft_p99_x_unloaded <= 2,
    });
    goals.push({ goal: `p99 time to a sheddable refusal${q}`, measured: `${g.sheddable_refusal_p99_ms} ms`, target: '< 5 ms', met: g.sheddable_refusal_p99_ms !== null && g.sheddable_refusal_p99_ms < 5 });
  }
  goals.push({
    goal: 'baseline (no admission control), for comparison',
    measured: `critical success ${fmtPct(s.baseline.critical_success)}, admitted p99 TTFT ${s.baseline.admitted_ttft_p99_ms} ms = ${s.baseline.admitted_ttft_p99_x_unloaded}x unloaded`,
    target: '-',
    met: null,
  });
}
if (results.noisy) {
  const n = results.noisy;
  goals.push({
    goal: 'noisy neighbour: quiet tenant p99 change',
    measured: `${n.quiet_alone.p99_ms} ms alone, ${n.quiet_with_noisy.p99_ms} ms with the noisy tenant: ${n.p99_change >= 0 ? '+' : ''}${fmtPct(n.p99_change)}`,
    target: '<= +10%',
    met: n.goal_met,
  });
}
goals.push({ goal: '1,000 streams/s, added TTFT p99 vs nginx', measured: 'see bench/run.sh (measurement 5)', target: '-', met: null });
results.goals = goals;

const yes = (m) => (m === null ? '-' : m ? 'yes' : '**no**');
const md = [];
md.push(`# sluice admission control (issue 10), ${DATE} on ${HOST}${QUICK ? ' (--quick)' : ''}`);
md.push('');
md.push(`Machine: ${machine.nproc} cores, ${machine.cpu}, kernel ${machine.kernel}, ${machine.mem_gib} GiB; load average at start ${machine.loadavg_at_start.join(' ')}.`);
md.push(`sluice: ${sluiceVersion}, \`${ORIG_BIN}\` sha256 ${BIN_SHA.slice(0, 12)}, source tree at git ${git}. Node ${process.version}. Wall time ${results.wall_s} s.`);
md.push('Every gateway: `sluice serve --threads 1`, request log off; every upstream: `sluice mock-llm --threads 1`. Clients: node:http keep-alive agents, streaming chat completions; TTFT = time to the first chunk with non-empty content.');
md.push('');
md.push('## Goals');
md.push('');
md.push('| goal | measured | target | met |');
md.push('|---|---|---|---|');
for (const g of goals) md.push(`| ${g.goal} | ${g.measured} | ${g.target} | ${yes(g.met)} |`);
md.push('');
if (results.tpm) {
  md.push('## 1. TPM accuracy');
  md.push('');
  md.push(
    `One tenant, \`tpm: ${TPM}\`; ${TPM_STREAMS} client streams. A burst of ${TPM_BURST_PROMPT}-character prompts (max_tokens 1) empties the full bucket, then the streams offer 2x the TPM in real tokens at a fixed pace (each steady request: ${TPM_PROMPT}-character prompt, the mock answers exactly ${TPM_OUTPUT} tokens at ${TPM_TPOT} ms per token, so each admitted stream lasts about ${((50 + TPM_OUTPUT * TPM_TPOT) / 1000).toFixed(1)} s). Allowance = T + T x window / 60 (the bucket starts full, refills T/60 per second); window = first to last request sent. Admitted = prompt + completion tokens from the usage of every 200. *With held*: plus the reservation minus usage of requests admitted before the end whose refund came after it (tokens the bucket still held when the window closed).`,
  );
  md.push('');
  md.push('| variant | window s | allowance | admitted | ratio | held at end | ratio with held | reserved / used per request | admitted (burst + steady) | 429 | offered x TPM | admitted streams in flight (mean) |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const v of results.tpm)
    md.push(
      `| ${v.variant} (max_tokens ${v.max_tokens}) | ${v.window_s} | ${v.allowance_tokens} | ${v.admitted_tokens} | ${v.ratio} | ${v.held_at_end_tokens} | ${v.ratio_with_held} | ${v.reservation_per_request} / ${v.usage_per_request} | ${v.burst_admitted} + ${v.steady_admitted} | ${v.refused_429} | ${v.offered_x_tpm} | ${v.admitted_in_flight_mean} |`,
    );
  md.push('');
}
if (results.overload) {
  const s = results.overload.summary;
  const P = results.overload.phases;
  md.push('## 2. Overload with three tiers');
  md.push('');
  md.push(
    `One mock-llm with the capacity model: ${CAP.slots} slots, TTFT ${CAP.ttft_ms} ms, ${CAP.tpot_ms} ms per token, ${CAP.output} output tokens, \`tpot_growth: 0\` (so a request takes ${SERVICE_MS} ms however full the batch is) and a queue of 512 beyond the slots: capacity ${s.capacity_rps} req/s. Gated pool: \`max_inflight: ${MAX_INFLIGHT}\`, \`adaptive_concurrency: true\`, \`shed_at: 0.8\` (default), \`queue: {max: Q, timeout_ms: ${QUEUE_TIMEOUT}, critical_timeout_ms: ${CRITICAL_TIMEOUT}}\`, one run per Q in ${QUEUE_MAXES.join(', ')} (16: sluice's default, as many as the limit; 256: more than the standard backlog, about its arrival rate x the deadline = 108, ever reaches); baseline pool: no admission settings. Three tenants, one per tier.`,
  );
  md.push('');
  md.push(
    `Unloaded: critical only, Poisson at 0.3x capacity for ${DUR.unloaded} s (after a 2 s warm-up). Overload: Poisson arrivals, open loop, for ${DUR.overload} s: critical 0.5x, standard 1x, sheddable 1.5x capacity (3x in all). The critical traffic alone fits in the capacity, as it must for a 99.9% goal to be meaningful: admission control can protect a tier only from the load of the tiers below it, never from its own excess. Standard alone could fill the pool; sheddable is the bulk of the excess, as batch and background work usually is.`,
  );
  md.push('');
  md.push('| phase | offered req/s (x cap) | tier | sent | 200 | 503 at once | 503 queue deadline | other | success | TTFT p50 / p99 / max ms | refusal p50 / p99 / max ms |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|');
  const label = (ph) => (ph.kind === 'gated' ? `gated, queue ${ph.queue_max}` : ph.kind);
  for (const ph of P) {
    for (const [t, x] of Object.entries(ph.tiers))
      md.push(
        `| ${label(ph)} | ${ph.offered_rps} (${ph.offered_x_capacity}) | ${t} | ${x.sent} | ${x.ok} | ${x.refused_503} | ${x.queue_timeout_503} | ${x.other} | ${fmtPct(x.success_rate)} | ${x.ttft_p50_ms} / ${x.ttft_p99_ms} / ${x.ttft_max_ms} | ${x.refusal_p50_ms ?? '-'} / ${x.refusal_p99_ms ?? '-'} / ${x.refusal_max_ms ?? '-'} |`,
      );
  }
  md.push('');
  md.push('| phase | admitted TTFT p50 / p99 ms | goodput req/s | pool limit min-max | pool in flight max | queued max | drained after load | mock: requests, waited for a slot, 429 queue full, max in flight | client send lag p99 ms |');
  md.push('|---|---|---|---|---|---|---|---|---|');
  for (const ph of P) {
    const g = ph.gate;
    md.push(
      `| ${label(ph)} | ${ph.admitted_ttft_p50_ms} / ${ph.admitted_ttft_p99_ms} | ${ph.goodput_rps} | ${g ? `${g.limit_min}-${g.limit_max}` : '-'} | ${g ? g.in_flight_max : '-'} | ${g ? g.queued_max : '-'} | ${g ? (g.drained_after_ms === null ? '**no**' : `${g.drained_after_ms} ms`) : '-'} | ${ph.mock.requests}, ${ph.mock.queued_in_mock}, ${ph.mock.queue_full_429}, ${ph.mock.in_flight_max} | ${ph.client_send_lag_p99_ms} |`,
    );
  }
  md.push('');
  for (const ph of P.filter((p) => p.kind === 'gated'))
    md.push(`sluice's counters, gated overload with queue ${ph.queue_max} (admitted / shed / of which at the queue deadline): ${TIERS.map((t) => `${t} ${ph.gate.metrics[t].admitted} / ${ph.gate.metrics[t].shed} / ${ph.gate.metrics[t].queue_timeouts}`).join('; ')}.`);
  md.push('');
}
if (results.noisy) {
  const n = results.noisy;
  md.push('## 3. Noisy neighbour');
  md.push('');
  md.push(
    `Two tenants on one gateway and one upstream (mock-llm without capacity model: TTFT 20 ms, 2 ms per token, 20 tokens). Quiet: \`rpm: ${QUIET.rpm}\` (never reached), ${QUIET.rate} req/s at a fixed pace. Noisy: \`rpm: ${n.noisy_rpm}\`, ${n.noisy_rate} req/s (10x). ${n.rounds} round(s) of ${n.round_s} s quiet alone, then ${n.round_s} s quiet with the noisy tenant; each *with* period starts once the noisy tenant's bucket is empty (its first 429, after ${n.noisy_bucket_emptied_after_ms.join(', ')} ms), so it measures the steady state of a tenant at 10x its limit. Latency = the whole streamed response.`,
  );
  md.push('');
  md.push('| quiet tenant | requests | 200 | p50 ms | p99 ms | max ms |');
  md.push('|---|---|---|---|---|---|');
  md.push(`| alone | ${n.quiet_alone.requests} | ${n.quiet_alone.ok} | ${n.quiet_alone.p50_ms} | ${n.quiet_alone.p99_ms} | ${n.quiet_alone.max_ms} |`);
  md.push(`| with the noisy tenant | ${n.quiet_with_noisy.requests} | ${n.quiet_with_noisy.ok} | ${n.quiet_with_noisy.p50_ms} | ${n.quiet_with_noisy.p99_ms} | ${n.quiet_with_noisy.max_ms} |`);
  md.push('');
  md.push(`Noisy tenant: ${n.noisy.sent} sent, ${n.noisy.ok} answered, ${n.noisy.refused_429} refused with 429 (p99 time to the 429: ${n.noisy.refusal_p99_ms} ms). Client send lag p99: ${n.client_send_lag_p99_ms} ms.`);
  md.push('');
}
md.push('## 4. 1,000 streams/s');
md.push('');
md.push('The added TTFT p99 of sluice vs nginx at 1,000 streams/s is measurement 5 of `bench/run.sh`; this script does not repeat it.');
md.push('');
md.push('## Anomalies');
md.push('');
if (anomalies.length) for (const a of anomalies) md.push(`- ${a}`);
else md.push('None seen: every status, header and counter matched what the configuration asks for.');
md.push('');

mkdirSync(path.dirname(OUT), { recursive: true });
writeFileSync(`${OUT}.json`, JSON.stringify(results, null, 2));
writeFileSync(`${OUT}.md`, md.join('\n'));

console.log('');
console.log('goal | measured | target | met');
for (const g of goals) console.log(`${g.goal} | ${g.measured} | ${g.target} | ${g.met === null ? '-' : g.met ? 'yes' : 'NO'}`);
console.log(`anomalies: ${anomalies.length}`);
for (const a of anomalies) console.log(`  - ${a}`);
console.log(`results: ${OUT}.md, ${OUT}.json`);
for (const p of procs) if (!p.exit) p.p.kill('SIGKILL');
rmSync(WORK, { recursive: true, force: true });
process.exit(0);
