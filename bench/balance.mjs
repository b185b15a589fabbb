// bench/balance.mjs: balancing policies on a replay of real LLM traffic, side by side.
//
//   node bench/balance.mjs [--sluice PATH] [--trace conv|code|both] [--seconds 40]
//                          [--utilization 0.7] [--policies round_robin,least_request,least_tokens,prefix]
//                          [--out FILE]
//
// Four `sluice mock-llm` upstreams with the capacity model (8 batch slots each, time per
// output token growing as slots fill, a queue beyond them, and a prefix cache whose hits cut
// the prefill part of the time to first token) behind one sluice pool, one run per policy,
// same requests in the same order at the same times.
//
// Workload: the arrival times and token counts of ../shared/data/azure-llm-trace-2023
// (conv.csv or code.csv), a window of --seconds, time-scaled so the offered load is about
// --utilization of the four servers' slots. Prompts are generated to the trace's context
// length: each starts with one of 16 system prompts of 256 tokens (chosen with a skew: a few
// are popular), and half the requests continue an earlier conversation (its whole earlier
// prompt is their prefix, as a chat's later turns are). Output length is the trace's
// generated tokens (capped at 400), sent as max_tokens.
//
// Reported per policy: TTFT p50/p99, throughput, goodput (streams whose first token came
// within the --slo-ms objective) and the servers' prefix-cache hit rate (cached blocks /
// prompt blocks), and the servers' measured utilization (slot time used / slot time
// available). Goal (issue 9): at least 30% lower p99 TTFT than round robin at >= 70%
// utilization, and no worse than least_request on any trace.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { WORDS, here, parseArgs, rng, sluiceBin, start as startProc } from './procs.mjs';

const args = parseArgs();
const BIN = sluiceBin(args);
const SECONDS = Number(args.seconds ?? 40);
const UTIL = Number(args.utilization ?? 0.7);
const SLO = Number(args['slo-ms'] ?? 500);
const POLICIES = (args.policies ?? 'round_robin,least_request,least_tokens,prefix').split(',');
const TRACES = (args.trace ?? 'both') === 'both' ? ['conv', 'code'] : [args.trace];
const DATA = path.join(here, '../../shared/data/azure-llm-trace-2023');

// The servers: 8 slots, 30 ms base TTFT + 60 ms per 1,000 uncached prompt tokens, 4 ms per
// output token growing to 8 ms with a full batch, a 2,048-block (256 chars) prefix cache.
const CAPACITY = { slots: 8, queue: 512, tpot_growth: 1.0, prefill_ms_per_1k: 60, prefix_cache_blocks: 2048, block_chars: 256 };
const LATENCY = { ttft_ms: 30, tpot_ms: 4, output_tokens: [400, 400] };
const MAX_OUT = 400;
const MAX_CONTEXT = 8000;

const start = (argv, re) => startProc(BIN, argv, re);

// A deterministic pseudo-random stream (mulberry32).
function text(r, chars) {
  let s = '';
  while (s.length < chars) s += WORDS[Math.floor(r() * WORDS.length)] + ' ';
  return s.slice(0, chars);
}

function workload(trace) {
  const lines = readFileSync(path.join(DATA, `${trace}.csv`), 'utf8').trim().split('\n').slice(1);
  const rows = lines.map((l) => {
    const [ts, ctx, gen] = l.split(',');
    return { t: Date.parse(ts.replace(' ', 'T').slice(0, 23) + 'Z'), ctx: Math.min(Number(ctx), MAX_CONTEXT), gen: Math.max(1, Math.min(Number(gen), MAX_OUT)) };
  });
  const r = rng(7);
  const systems = Array.from({ length: 16 }, (_, i) => `system ${i}: ` + text(rng(100 + i), 1024));
  // Offered load: the slot-seconds the requests need unloaded, against 4 x 8 slots.
  // Unloaded estimate: 70% of the prompt uncached, tpot at a 70%-full batch.
  const service = (x) =>
    (LATENCY.ttft_ms + (CAPACITY.prefill_ms_per_1k * x.ctx * 0.7) / 1000 + x.gen * LATENCY.tpot_ms * (1 + CAPACITY.tpot_growth * 0.7)) / 1000;
  const meanService = rows.reduce((a, x) => a + service(x), 0) / rows.length;
  const rate = (UTIL * 4 * CAPACITY.slots) / meanService; // requests per second
  const n = Math.round(rate * SECONDS);
  const start = Math.floor(rows.length / 4);
  const window = rows.slice(start, start + n);
  const span = window[window.length - 1].t - window[0].t;
  const scale = (SECONDS * 1000) / span;
  const convs = [];
  const reqs = window.map((x) => {
    let prompt;
    if (convs.length > 0 && r() < 0.5) {
      const c = convs[Math.floor(r() * Math.min(convs.length, 64)) + Math.max(0, convs.length - 64)];
      prompt = c.prompt + `\nuser: ` + text(r, Math.max(64, x.ctx * 4 - c.prompt.length));
      c.prompt = prompt.slice(0, MAX_CONTEXT * 4);
    } else {
      const sys = systems[Math.floor(16 * r() * r())];
      prompt = sys + '\nuser: ' + text(r, Math.max(64, x.ctx * 4 - sys.length));
      convs.push({ prompt });
    }
    return { at: (x.t - window[0].t) * scale, prompt: prompt.slice(0, MAX_CONTEXT * 4), gen: x.gen };
  });
  return { reqs, rate: n / SECONDS, meanService };
}

async function run(policy, wl) {
  const mocks = [];
  for (let i = 0; i < 4; i++) {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bal-'));
    const cfg = path.join(dir, 'mock.yaml');
    writeFileSync(cfg, JSON.stringify({ seed: 3, capacity: CAPACITY, defaults: LATENCY }));
    const { p, m } = await start(['mock-llm', '--listen', '127.0.0.1:0', '--config', cfg, '--threads', '1'], /listening on 127\.0\.0\.1:(\d+)/);
    mocks.push({ p, url: `http://127.0.0.1:${m[1]}` });
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bal-gw-'));
  const cfg = path.join(dir, 'gw.yaml');
  writeFileSync(
    cfg,
    JSON.stringify({
      request_log: { enabled: false },
      limits: { max_body_bytes: 1 << 20 },
      upstreams: mocks.map((m, i) => ({ name: `u${i}`, url: `${m.url}/v1` })),
      pools: [{ name: 'pool', upstreams: ['u0', 'u1', 'u2', 'u3'], balance: policy, bounded_load: 1.25 }],
      routes: [{ name: 'chat', upstream: 'pool', model: 'm' }],
    }),
  );
  const { p: gw, m } = await start(
    ['serve', '--config', cfg, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dir, '--threads', '1'],
    /data plane listening on [^:]+:(\d+)/,
  );
  const base = `http://127.0.0.1:${m[1]}/v1/chat/completions`;
  await sleep(300);
  const results = [];
  const t0 = performance.now();
  const pending = [];
  for (const q of wl.reqs) {
    const wait = q.at - (performance.now() - t0);
    if (wait > 1) await sleep(wait);
    const sent = performance.now();
    pending.push(
      fetch(base, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', stream: true, max_tokens: q.gen, messages: [{ role: 'user', content: q.prompt }] }),
      })
        .then(async (res) => {
          let ttft = null;
          const reader = res.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            if (ttft === null && value.length > 0) ttft = performance.now() - sent;
          }
          results.push({ ok: res.status === 200, ttft, total: performance.now() - sent });
        })
        .catch(() => results.push({ ok: false, ttft: null, total: performance.now() - sent })),
    );
  }
  await Promise.all(pending);
  const wall = (performance.now() - t0) / 1000;
  const st = await Promise.all(mocks.map(async (x) => (await fetch(`${x.url}/mock/stats`)).json()));
  gw.kill('SIGTERM');
  for (const x of mocks) x.p.kill('SIGTERM');
  await sleep(300);
  const ttfts = results.filter((x) => x.ok && x.ttft !== null).map((x) => x.ttft).sort((a, b) => a - b);
  const q = (p) => Number(ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))].toFixed(1));
  const hit = st.reduce((a, s) => a + s.prefix_blocks_hit, 0);
  const seen = st.reduce((a, s) => a + s.prefix_blocks_seen, 0);
  return {
    policy,
    requests: results.length,
    errors: results.filter((x) => !x.ok).length,
    ttft_p50_ms: q(0.5),
    ttft_p99_ms: q(0.99),
    throughput_rps: Number((results.filter((x) => x.ok).length / wall).toFixed(1)),
    goodput_rps: Number((ttfts.filter((t) => t <= SLO).length / wall).toFixed(1)),
    prefix_hit_rate: Number((hit / Math.max(1, seen)).toFixed(3)),
    queued: st.reduce((a, s) => a + s.queued, 0),
    // Measured: slot time the generations used / (4 servers x 8 slots x the run's wall time).
    utilization: Number((st.reduce((a, s) => a + s.busy_slot_ms, 0) / (4 * CAPACITY.slots * wall * 1000)).toFixed(3)),
    per_upstream: st.map((s) => s.requests),
  };
}

const all = [];
for (const trace of TRACES) {
  const wl = workload(trace);
  console.log(`# ${trace}: ${wl.reqs.length} requests over ${SECONDS} s (${wl.rate.toFixed(1)} req/s, mean unloaded service ${(wl.meanService * 1000).toFixed(0)} ms, target utilization ${UTIL})`);
  for (const policy of POLICIES) {
    const r = { trace, ...(await run(policy, wl)) };
    console.log(JSON.stringify(r));
    all.push(r);
  }
}
if (args.out) writeFileSync(args.out, JSON.stringify(all, null, 2));
process.exit(0);
