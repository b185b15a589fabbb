#!/usr/bin/env node
// bench/bench.mjs: the small helpers bench/run.sh needs that bash does badly. No dependencies.
//
//   freeport                         print a free TCP port on 127.0.0.1
//   h2load FILE                      summarise an h2load stdout capture as JSON
//   latency FILE [--skip-s S]        percentiles of an h2load --log-file (3rd column, us) as JSON
//   ttft --url U --rate R --duration S --body F [--warmup-s W] [--header 'k: v']...
//                                    open-loop streaming load; time to first content chunk and
//                                    the gaps between later chunks
//   hold --url U --streams N --body F --pids P1,P2 [--header 'k: v']... [--timeout-s T]
//                                    open N concurrent streams, RSS of PIDs before / with / after
//   rss PID[,PID...]                 summed VmRSS in KiB
//   cpu PID[,PID...] [--split]       summed user+system CPU seconds so far ("user system" with --split)
//   strace FILE                      parse an `strace -c` summary table as JSON
//   report --dir D --md F --json F   assemble the fragments in D into the results files
//   render --json F --md F           re-render the Markdown of an existing results JSON
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

function args(argv) {
  const out = { _: [], header: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const k = a.slice(2);
      const v = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : 'true';
      if (k === 'header') out.header.push(v);
      else out[k] = v;
    } else out._.push(a);
  }
  return out;
}

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summary(values) {
  const s = Float64Array.from(values).sort();
  const r3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  let sum = 0;
  for (const v of s) sum += v;
  return {
    n: s.length,
    mean: s.length ? r3(sum / s.length) : null,
    p50: r3(pct(s, 50)),
    p90: r3(pct(s, 90)),
    p99: r3(pct(s, 99)),
    p999: r3(pct(s, 99.9)),
    max: s.length ? r3(s[s.length - 1]) : null,
  };
}

function parseHeaders(list) {
  const h = {};
  for (const line of list) {
    const i = line.indexOf(':');
    h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}

function rssKiB(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      /* process gone */
    }
  }
  return total;
}

// CPU seconds (all threads) used so far by the processes: { user, system }.
function cpuTimes(pids) {
  let user = 0, system = 0;
  for (const pid of pids) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]);
      system += Number(f[12]);
    } catch {
      /* process gone */
    }
  }
  return { user: user / 100, system: system / 100 };  // USER_HZ is 100 on Linux
}
const cpuSeconds = (pids) => {
  const c = cpuTimes(pids);
  return c.user + c.system;
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ freeport
async function freeport() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  console.log(port);
}

// ------------------------------------------------------------------ h2load summary
function h2loadSummary(file) {
  const t = fs.readFileSync(file, 'utf8');
  const num = (re) => {
    const m = re.exec(t);
    return m ? Number(m[1]) : null;
  };
  const fin = /finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s/.exec(t);
  const out = {
    seconds: fin ? Number(fin[1]) / { us: 1e6, ms: 1e3, s: 1 }[fin[2]] : null,
    rps: fin ? Number(fin[3]) : null,
    total: num(/requests: (\d+) total/),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/),
    errored: num(/(\d+) errored/),
    timeout: num(/(\d+) timeout/),
    status_2xx: num(/status codes: (\d+) 2xx/),
    status_4xx: num(/(\d+) 4xx/),
    status_5xx: num(/(\d+) 5xx/),
  };
  // ms units in h2load's "time for request" line vary (us, ms, s): normalise to ms.
  const m = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(t);
  if (m) {
    const ms = (s) => {
      const v = parseFloat(s);
      if (s.endsWith('us')) return v / 1000;
      if (s.endsWith('ms')) return v;
      if (s.endsWith('s')) return v * 1000;
      return v;
    };
    out.request_ms = { min: ms(m[1]), max: ms(m[2]), mean: ms(m[3]), sd: ms(m[4]) };
  }
  console.log(JSON.stringify(out));
}

// ------------------------------------------------------------------ latency from --log-file
function latency(file, skipS) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const rows = [];
  let t0 = Infinity;
  for (const l of lines) {
    if (!l) continue;
    const [start, status, us] = l.split('\t');
    const s = Number(start);
    if (s < t0) t0 = s;
    rows.push([s, Number(status), Number(us)]);
  }
  const skip = skipS * 1e6;
  const vals = [];
  let bad = 0, tmin = Infinity, tmax = 0;
  for (const [s, status, us] of rows) {
    if (s - t0 < skip) continue;
    if (status < 200 || status >= 300) {
      bad++;
      continue;
    }
    vals.push(us / 1000);
    if (s < tmin) tmin = s;
    if (s > tmax) tmax = s;
  }
  const out = summary(vals);
  out.non_2xx = bad;
  out.total_logged = rows.length;
  out.achieved_rps = tmax > tmin ? Math.round((vals.length / ((tmax - tmin) / 1e6)) * 10) / 10 : null;
  console.log(JSON.stringify(out));
}

// ------------------------------------------------------------------ streaming TTFT client
// A chunk carries content when a "content" string is non-empty (the first, role-only chunk
// of an OpenAI stream has "content":"").
const CONTENT_RE = /"content":"(?:[^"\\]|\\.)/;

// Inter-chunk gaps: the time between successive 'data' events of a stream after its first
// content chunk, for streams started after the warm-up. Node hands over what one socket read
// returned, so events that arrive together are one 'data' event (one gap, not two).
const GAP_CAP = 2_000_000;

async function ttft(o) {
  const u = new URL(o.url);
  const rate = Number(o.rate);
  const duration = Number(o.duration);
  const warmup = Number(o['warmup-s'] ?? 1);
  const gapCap = Number(o['gap-cap'] ?? GAP_CAP);
  const gapMs = new Float64Array(gapCap);
  const gapRec = new Int32Array(gapCap);
  let gapN = 0;
  const body = fs.readFileSync(o.body);
  const headers = { 'content-type': 'application/json', 'content-length': body.length, ...parseHeaders(o.header) };
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(o['max-sockets'] ?? 2048), maxFreeSockets: 2048, scheduling: 'lifo' });
  const total = Math.round(rate * (duration + warmup));
  const recs = [];
  let finished = 0;
  const start = performance.now();
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  const finish = () => {
    if (++finished === total) resolveAll();
  };
  function fire() {
    const t0 = performance.now();
    const rec = { t0: (t0 - start) / 1000, status: 0, ttft: -1, total: -1, err: null, content: 0, last: 0 };
    const idx = recs.length;
    const keepGaps = rec.t0 >= warmup;
    recs.push(rec);
    let done = false;
    const end = (err) => {
      if (done) return;
      done = true;
      if (err) rec.err = err;
      finish();
    };
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers },
      (res) => {
        rec.status = res.statusCode;
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk) => {
          const now = performance.now();
          if (rec.ttft < 0) {
            buf += chunk;
            if (CONTENT_RE.test(buf)) {
              rec.ttft = now - t0;
              rec.last = now;
              buf = '';
            } else if (buf.length > 1 << 16) buf = buf.slice(-4096);
          } else {
            if (keepGaps && gapN < gapCap) {
              gapMs[gapN] = now - rec.last;
              gapRec[gapN++] = idx;
            }
            rec.last = now;
          }
          rec.content += chunk.length;
        });
        res.on('end', () => {
          rec.total = performance.now() - t0;
          end(null);
        });
        res.on('error', (e) => end(e.code || e.message));
        res.on('aborted', () => end('aborted'));
      },
    );
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => end(e.code || e.message));
    req.end(body);
  }
  let sent = 0;
  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due) {
      fire();
      sent++;
    }
    if (sent < total) setTimeout(tick, 1);
  };
  tick();
  const hardStop = setTimeout(() => resolveAll(), (duration + warmup + 60) * 1000);
  await all;
  clearTimeout(hardStop);
  const wall = (performance.now() - start) / 1000;
  agent.destroy();
  const measured = recs.filter((r) => r.t0 >= warmup);
  const ok = measured.filter((r) => r.status === 200 && r.ttft >= 0 && r.total >= 0 && !r.err);
  const okRec = new Uint8Array(recs.length);
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    if (r.t0 >= warmup && r.status === 200 && r.ttft >= 0 && r.total >= 0 && !r.err) okRec[i] = 1;
  }
  const gaps = [];
  for (let i = 0; i < gapN; i++) if (okRec[gapRec[i]]) gaps.push(gapMs[i]);
  const errs = {};
  for (const r of measured) {
    if (r.status === 200 && r.ttft >= 0 && !r.err && r.total >= 0) continue;
    const k = r.err || (r.status !== 200 ? `status_${r.status}` : r.ttft < 0 ? 'no_content' : 'incomplete');
    errs[k] = (errs[k] || 0) + 1;
  }
  const out = {
    target_rps: rate,
    offered: measured.length,
    ok: ok.length,
    errors: errs,
    achieved_rps: Math.round((measured.length / duration) * 10) / 10,
    wall_s: Math.round(wall * 10) / 10,
    ttft_ms: summary(ok.map((r) => r.ttft)),
    total_ms: summary(ok.map((r) => r.total)),
    gap_ms: { ...summary(gaps), capped: gapN >= gapCap },
  };
  console.log(JSON.stringify(out));
}

// ------------------------------------------------------------------ memory per open stream
// Opens N streams (in batches), waits until each has relayed its first content chunk, samples
// the RSS of the gateway process(es), closes them all, samples again. With --rounds 2 it does
// it twice: a second round that needs no new memory shows the first round's growth is reused
// (allocator caching), not leaked.
async function holdRound(o, pids) {
  const u = new URL(o.url);
  const n = Number(o.streams);
  const timeoutS = Number(o['timeout-s'] ?? 40);
  const settleMs = Number(o['settle-ms'] ?? 3000);
  const batch = Number(o.batch ?? 250);
  const body = fs.readFileSync(o.body);
  const headers = { 'content-type': 'application/json', 'content-length': body.length, ...parseHeaders(o.header) };
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

  await sleep(500);
  const before = rssKiB(pids);
  let open = 0, errors = 0, ended = 0, closing = false;
  const errKinds = {};
  const reqs = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    let counted = false, over = false;
    const fail = (k) => {
      if (over || closing) return;
      over = true;
      errors++;
      errKinds[k] = (errKinds[k] || 0) + 1;
      if (counted) open--;
    };
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers }, (res) => {
      res.setEncoding('utf8');
      let buf = '';
      if (res.statusCode !== 200) fail(`status_${res.statusCode}`);
      res.on('data', (c) => {
        if (!counted && !over) {
          buf += c;
          if (CONTENT_RE.test(buf)) {
            counted = true;
            open++;
            buf = '';
          }
        }
      });
      res.on('end', () => {
        if (over || closing) return;
        over = true;
        ended++;
        if (counted) open--;
      });
      res.on('error', (e) => fail(e.code || e.message));
    });
    req.on('error', (e) => fail(e.code || e.message));
    req.end(body);
    reqs.push(req);
    if ((i + 1) % batch === 0) await sleep(50);
  }
  while (open + errors + ended < n && performance.now() - t0 < timeoutS * 1000) await sleep(100);
  const openedIn = (performance.now() - t0) / 1000;
  await sleep(settleMs);
  const samples = [];
  for (let i = 0; i < 3; i++) {
    samples.push(rssKiB(pids));
    await sleep(500);
  }
  const during = Math.max(...samples);
  const openAtSample = open;
  closing = true;
  for (const r of reqs) r.destroy();
  await sleep(3000);
  const after = rssKiB(pids);
  return {
    streams_requested: n,
    streams_open: openAtSample,
    errors,
    error_kinds: errKinds,
    ended_early: ended,
    open_seconds: Math.round(openedIn * 10) / 10,
    rss_before_kib: before,
    rss_open_kib: during,
    rss_after_close_kib: after,
    per_stream_kib: openAtSample > 0 ? Math.round(((during - before) / openAtSample) * 100) / 100 : null,
  };
}

async function hold(o) {
  const pids = String(o.pids).split(',').filter(Boolean).map(Number);
  const rounds = Number(o.rounds ?? 1);
  const first = await holdRound(o, pids);
  const out = { ...first, rounds: [first] };
  for (let i = 1; i < rounds; i++) out.rounds.push(await holdRound(o, pids));
  console.log(JSON.stringify(out));
  process.exit(0);
}

// ------------------------------------------------------------------ strace / perf stat parsing
// An `strace -c` summary table: the default layout ("% time seconds usecs/call calls errors
// syscall", errors blank when none) or `-U name,calls,errors`.
function parseStrace(text) {
  const calls = {}, errors = {};
  let cols = null, total = null, totalErrors = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (!line.trim() || /^-+$/.test(f[0]) || f[0].startsWith('strace:')) continue;
    if (f.includes('calls') && (f.includes('syscall') || f.includes('syscall_name'))) {
      cols = f;
      continue;
    }
    if (!cols) continue;
    let name, n, e;
    if (cols[0] === '%') {
      name = f[f.length - 1];
      n = Number(f[3]);
      e = f.length >= 6 ? Number(f[4]) : 0;
    } else {
      name = f[0];
      n = Number(f[1]);
      e = f.length >= 3 ? Number(f[2]) : 0;
    }
    if (!Number.isFinite(n)) continue;
    if (name === 'total') {
      total = n;
      totalErrors = e || 0;
    } else {
      calls[name] = n;
      if (e) errors[name] = e;
    }
  }
  if (total === null) total = Object.values(calls).reduce((a, b) => a + b, 0);
  return { total, total_errors: totalErrors, calls, errors };
}

// `perf stat -x,` output: "count,unit,event,..." per line; event "group:name_N_PID" -> name.
function parsePerfStat(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(',');
    if (f.length < 3 || !f[2]) continue;
    const name = f[2].split(':').pop().replace(/(_\d+)+$/, '');
    out[name] = /^\d+$/.test(f[0]) ? Number(f[0]) : null;
  }
  return out;
}

// ------------------------------------------------------------------ report
function readJSON(f, dflt = null) {
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch {
    return dflt;
  }
}
function readText(f) {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return null;
  }
}
const med = (xs) => (xs.length ? xs.slice().sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] : null);
const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;
const r3 = (x) => Math.round(x * 1000) / 1000;

function readRuns(dir, prefix, t) {
  const runs = [];
  for (let i = 1; i <= 20; i++) {
    const r = readJSON(`${dir}/${prefix}-${t}-${i}.json`);
    if (r) runs.push(r);
  }
  return runs;
}

function report(o) {
  const dir = o.dir;
  const meta = readJSON(`${dir}/meta.json`, {});
  const targets = meta.targets || ['direct', 'nginx', 'portkey', 'sluice'];
  const res = {
    meta, throughput: {}, latency: {}, bound: null, one_at_a_time: null, ttft: {}, syscalls: null, memory: {},
    rss_flatness: null, notes: meta.notes || [],
  };

  // 1. throughput: every run, median
  for (const t of targets) {
    const runs = readRuns(dir, 'sat', t);
    if (!runs.length) continue;
    const rps = runs.map((r) => r.rps ?? 0).sort((a, b) => a - b);
    const cpus = [];
    for (let i = 1; i <= runs.length; i++) {
      const c = readJSON(`${dir}/cpu-sat-${t}-${i}.json`);
      if (c) cpus.push(c);
    }
    res.throughput[t] = {
      gateway_cpu_us_per_req: t === 'direct' ? null : med(cpus.map((c) => r1((c.gateway_cpu_s * 1e6) / c.requests))),
      upstream_cpu_us_per_req: med(cpus.map((c) => r1((c.upstream_cpu_s * 1e6) / c.requests))),
      rps_median: rps[Math.floor((rps.length - 1) / 2)],
      rps_runs: runs.map((r) => r.rps),
      failed: runs.reduce((a, r) => a + (r.failed || 0) + (r.errored || 0), 0),
      non_2xx: runs.reduce((a, r) => a + (r.status_4xx || 0) + (r.status_5xx || 0), 0),
      requests_per_run: runs[0].total,
    };
  }
  const ngx = res.throughput.nginx?.rps_median;
  for (const t of Object.keys(res.throughput)) {
    res.throughput[t].ratio_to_nginx = ngx ? r3(res.throughput[t].rps_median / ngx) : null;
  }

  // 2. latency at fixed rates
  for (const rate of meta.latency_rates || []) {
    const row = {};
    for (const t of targets) {
      const r = readJSON(`${dir}/lat-${rate}-${t}.json`);
      const c = readJSON(`${dir}/cpu-lat-${rate}-${t}.json`);
      if (r && c) {
        r.gateway_cpu_us_per_req = t === 'direct' ? null : r1((c.gateway_cpu_s * 1e6) / c.requests);
        r.gateway_cpu_pct = t === 'direct' ? null : Math.round((c.gateway_cpu_s / (c.requests / Number(rate))) * 1000) / 10;
      }
      if (r) row[t] = r;
    }
    const d = row.direct;
    for (const t of Object.keys(row)) {
      if (t === 'direct' || !d) continue;
      row[t].added_ms = { p50: r3(row[t].p50 - d.p50), p90: r3(row[t].p90 - d.p90), p99: r3(row[t].p99 - d.p99) };
      const sat = res.throughput[t]?.rps_median;
      row[t].above_saturation = sat ? rate > sat * 0.95 : null;
    }
    if (Object.keys(row).length) res.latency[rate] = row;
  }

  // 3. gateway-bound saturation: static upstream, user and system CPU apart
  const bound = {};
  for (const t of ['direct', 'nginx', 'sluice']) {
    const runs = readRuns(dir, 'bound-sat', t);
    if (!runs.length) continue;
    const rps = runs.map((r) => r.rps ?? 0).sort((a, b) => a - b);
    const cpus = [];
    for (let i = 1; i <= runs.length; i++) {
      const c = readJSON(`${dir}/cpu-bound-${t}-${i}.json`);
      if (c) cpus.push(c);
    }
    const per = (f) => (t === 'direct' ? null : med(cpus.map((c) => r1((f(c) * 1e6) / c.requests))));
    bound[t] = {
      rps_median: rps[Math.floor((rps.length - 1) / 2)],
      rps_runs: runs.map((r) => r.rps),
      failed: runs.reduce((a, r) => a + (r.failed || 0) + (r.errored || 0), 0),
      non_2xx: runs.reduce((a, r) => a + (r.status_4xx || 0) + (r.status_5xx || 0), 0),
      requests_per_run: runs[0].total,
      gateway_cpu_us_per_req: per((c) => c.gateway_user_s + c.gateway_sys_s),
      gateway_user_us_per_req: per((c) => c.gateway_user_s),
      gateway_sys_us_per_req: per((c) => c.gateway_sys_s),
      upstream_cpu_us_per_req: med(cpus.map((c) => r1((c.upstream_cpu_s * 1e6) / c.requests))),
    };
  }
  if (Object.keys(bound).length) {
    const b = bound.nginx?.rps_median;
    for (const t of Object.keys(bound)) bound[t].ratio_to_nginx = b ? r3(bound[t].rps_median / b) : null;
    res.bound = bound;
  }

  // 4. one request at a time (closed loop, static upstream)
  const one = {};
  for (const t of ['direct', 'nginx', 'sluice']) {
    const r = readJSON(`${dir}/oaat-${t}.json`);
    if (!r) continue;
    const c = readJSON(`${dir}/cpu-oaat-${t}.json`);
    r.gateway_cpu_us_per_req = t === 'direct' || !c ? null : r1((c.gateway_cpu_s * 1e6) / c.requests);
    one[t] = r;
  }
  if (one.direct) {
    const d = one.direct;
    for (const t of Object.keys(one)) {
      if (t === 'direct') continue;
      const r = one[t];
      r.added_ms = { p50: r3(r.p50 - d.p50), p90: r3(r.p90 - d.p90), p99: r3(r.p99 - d.p99), p999: r3(r.p999 - d.p999) };
    }
  }
  if (Object.keys(one).length) res.one_at_a_time = one;

  // 5. streaming TTFT, per rate
  for (const rate of meta.ttft_rates || []) {
    const row = {};
    for (const t of targets) {
      const r = readJSON(`${dir}/ttft-${rate}-${t}.json`);
      const c = readJSON(`${dir}/cpu-ttft-${rate}-${t}.json`);
      if (r && c) {
        r.gateway_cpu_us_per_stream = t === 'direct' ? null : Math.round((c.gateway_cpu_s * 1e6) / c.requests);
        r.upstream_cpu_us_per_stream = Math.round((c.upstream_cpu_s * 1e6) / c.requests);
      }
      if (r) row[t] = r;
    }
    const dt = row.direct;
    for (const t of Object.keys(row)) {
      if (t === 'direct' || !dt) continue;
      const a = row[t].ttft_ms, b = dt.ttft_ms;
      if (a.p50 != null && b.p50 != null) row[t].added_ttft_ms = { p50: r3(a.p50 - b.p50), p90: r3(a.p90 - b.p90), p99: r3(a.p99 - b.p99) };
      const g = row[t].gap_ms, dg = dt.gap_ms;
      if (g?.p99 != null && dg?.p99 != null) row[t].added_gap_ms = { p50: r3(g.p50 - dg.p50), p99: r3(g.p99 - dg.p99) };
      // Streams last ~100 ms upstream; a gateway whose streams take far longer fell behind the offered rate.
      const tot = row[t].total_ms?.p50, dtot = dt.total_ms?.p50;
      row[t].fell_behind = tot != null && dtot != null && tot > 1.5 * dtot;
      if (row[t].fell_behind)
        res.notes.push(`streaming at ${rate}/s: ${t} fell behind the offered rate (median stream took ${Math.round(tot)} ms, direct ${Math.round(dtot)} ms): its TTFT there is queueing, not per-request overhead`);
    }
    if (Object.keys(row).length) res.ttft[rate] = row;
  }

  // 6. system calls and allocations per request and per stream
  const sysMeta = readJSON(`${dir}/sys-meta.json`);
  if (sysMeta) {
    const sys = { ...sysMeta, per_request: {}, per_stream: {}, malloc_per_request: {}, malloc_per_stream: {} };
    for (const t of ['nginx', 'sluice']) {
      for (const [kind, key, mkey] of [['req', 'per_request', 'malloc_per_request'], ['stream', 'per_stream', 'malloc_per_stream']]) {
        const units = (load) => (load ? (kind === 'req' ? load.succeeded : load.offered) : null);
        const st = readText(`${dir}/strace-${kind}-${t}.txt`);
        const load = readJSON(`${dir}/sys-${kind}-${t}.json`);
        const n = units(load);
        if (st && n) {
          const p = parseStrace(st);
          const per = {};
          for (const [k, v] of Object.entries(p.calls)) per[k] = Math.round((v / n) * 1e6) / 1e6;
          const perErr = {};
          for (const [k, v] of Object.entries(p.errors)) perErr[k] = Math.round((v / n) * 1e6) / 1e6;
          sys[key][t] = {
            units: n, total_calls: p.total, total_errors: p.total_errors, per_unit_total: r2(p.total / n),
            per_unit: per, errors_per_unit: perErr, calls: p.calls, errors: p.errors,
            load: kind === 'req' ? { rps_under_strace: load.rps, failed: (load.failed || 0) + (load.errored || 0) } : { ok: load.ok, errors: load.errors },
          };
        }
        const pf = readText(`${dir}/perf-${kind}-${t}.txt`);
        const mload = readJSON(`${dir}/malloc-${kind}-${t}.json`);
        const mn = units(mload);
        if (pf && mn) {
          const c = parsePerfStat(pf);
          const per = {};
          for (const [k, v] of Object.entries(c)) per[k] = v == null ? null : r2(v / mn);
          sys[mkey][t] = { units: mn, counts: c, per_unit: per };
        }
      }
    }
    res.syscalls = sys;
  }

  // 7. memory per stream
  for (const t of targets) {
    const r = readJSON(`${dir}/mem-${t}.json`);
    if (r) res.memory[t] = r;
  }
  for (const t of Object.keys(res.memory)) {
    const r = res.memory[t];
    if (t !== 'nginx' && res.memory.nginx?.per_stream_kib && r.per_stream_kib != null)
      r.ratio_to_nginx = r2(r.per_stream_kib / res.memory.nginx.per_stream_kib);
    r.after_close_over_before = r.rss_before_kib ? r2(r.rss_after_close_kib / r.rss_before_kib) : null;
  }

  // 8. RSS flatness
  const fl = readJSON(`${dir}/flat.json`);
  if (fl) {
    const samples = [];
    for (const line of (readText(`${dir}/flat-samples.tsv`) || '').split('\n')) {
      if (!line) continue;
      const [t, kib] = line.split('\t').map(Number);
      samples.push({ t_s: t, rss_kib: kib });
    }
    const during = samples.filter((s) => s.t_s > 0);
    const first = during.length ? during[0].rss_kib : null;
    const last = during.length ? during[during.length - 1].rss_kib : null;
    const max = during.length ? Math.max(...during.map((s) => s.rss_kib)) : null;
    res.rss_flatness = {
      ...fl,
      samples,
      baseline_kib: samples.length ? samples[0].rss_kib : null,
      first_kib: first,
      last_kib: last,
      max_kib: max,
      change_pct: first ? Math.round(((last - first) / first) * 10000) / 100 : null,
      max_over_first_pct: first ? Math.round(((max - first) / first) * 10000) / 100 : null,
    };
  }

  derive(res);
  fs.writeFileSync(o.json, JSON.stringify(res, null, 2) + '\n');
  fs.writeFileSync(o.md, markdown(res));
}

// Ratios of added latency to nginx's. A ratio to a near-zero difference of two noisy
// percentiles means nothing, so it is only given when nginx's added p99 is at least
// RATIO_FLOOR_MS (ONE_RATIO_FLOOR_MS one request at a time, where there is no queueing
// and the differences are tens of microseconds).
const RATIO_FLOOR_MS = 0.1;
const ONE_RATIO_FLOOR_MS = 0.01;
function derive(res) {
  for (const row of Object.values(res.latency || {})) {
    for (const t of Object.keys(row)) {
      if (t === 'direct' || !row[t].added_ms) continue;
      const base = row.nginx?.added_ms?.p99;
      row[t].added_p99_ratio_to_nginx = base != null && base >= RATIO_FLOOR_MS ? r2(row[t].added_ms.p99 / base) : null;
    }
  }
  const one = res.one_at_a_time;
  if (one) {
    for (const t of Object.keys(one)) {
      if (t === 'direct' || !one[t].added_ms) continue;
      const base = one.nginx?.added_ms?.p99;
      one[t].added_p99_ratio_to_nginx = base != null && base >= ONE_RATIO_FLOOR_MS ? r2(one[t].added_ms.p99 / base) : null;
    }
  }
}

// Re-renders the Markdown (and derived fields) of an existing results JSON.
function render(o) {
  const res = JSON.parse(fs.readFileSync(o.json, 'utf8'));
  derive(res);
  fs.writeFileSync(o.json, JSON.stringify(res, null, 2) + '\n');
  fs.writeFileSync(o.md, markdown(res));
}

function fmt(x, d = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  return Number(x).toFixed(d);
}
// Counts per unit: two decimals, "<0.01" for what would round to zero but is not.
const fmtCount = (x) => (x == null ? '-' : x > 0 && x < 0.005 ? '<0.01' : fmt(x, 2));

// Rows of the syscall table: the busiest calls of either gateway in either load, and the ones
// every event loop makes, in order of the largest count per unit; then "other" and the total.
const SYSCALLS_ALWAYS = ['epoll_wait', 'epoll_pwait', 'epoll_ctl', 'recvmsg', 'recvfrom', 'read', 'readv', 'sendmsg', 'sendto', 'writev', 'write', 'timerfd_settime', 'futex'];
function syscallTable(sys, L) {
  const cols = [];
  for (const [key, unit] of [['per_request', 'request'], ['per_stream', 'stream']])
    for (const t of ['nginx', 'sluice']) if (sys[key]?.[t]) cols.push({ t, unit, d: sys[key][t] });
  if (!cols.length) return false;
  const score = {};
  for (const c of cols) {
    const top = Object.entries(c.d.per_unit).sort((a, b) => b[1] - a[1]).slice(0, 8);
    for (const [k, v] of top) score[k] = Math.max(score[k] || 0, v);
  }
  for (const k of SYSCALLS_ALWAYS)
    for (const c of cols) if (c.d.per_unit[k] != null) score[k] = Math.max(score[k] || 0, c.d.per_unit[k]);
  const rows = Object.keys(score).sort((a, b) => score[b] - score[a]);
  const cell = (c, k) => {
    const v = c.d.per_unit[k];
    if (v == null) return '-';
    const e = c.d.errors_per_unit[k];
    return e ? `${fmtCount(v)} (${fmtCount(e)} failed)` : fmtCount(v);
  };
  L.push(`| system call | ${cols.map((c) => `${c.t} per ${c.unit}`).join(' | ')} |`);
  L.push(`|---|${cols.map(() => '---:').join('|')}|`);
  L.push(`| **all** | ${cols.map((c) => `**${fmt(c.d.per_unit_total, 2)}**${c.d.total_errors ? ` (${fmtCount(c.d.total_errors / c.d.units)} failed)` : ''}`).join(' | ')} |`);
  for (const k of rows) L.push(`| ${k} | ${cols.map((c) => cell(c, k)).join(' | ')} |`);
  L.push(`| other | ${cols.map((c) => fmtCount(Math.max(0, c.d.per_unit_total - rows.reduce((a, k) => a + (c.d.per_unit[k] || 0), 0)))).join(' | ')} |`);
  L.push(`| (${'units measured'}) | ${cols.map((c) => `${c.d.units} ${c.unit}s`).join(' | ')} |`);
  return true;
}

function mallocTable(sys, L) {
  const cols = [];
  for (const [key, unit] of [['malloc_per_request', 'request'], ['malloc_per_stream', 'stream']])
    for (const t of ['nginx', 'sluice']) if (sys[key]?.[t]) cols.push({ t, unit, d: sys[key][t] });
  if (!cols.length) return false;
  const names = [...new Set(cols.flatMap((c) => Object.keys(c.d.per_unit)))];
  const order = ['malloc', 'calloc', 'realloc', 'posix_memalign', 'mi_new', 'mi_new_aligned'];
  const label = { mi_new: 'operator new, new[] (mimalloc)', mi_new_aligned: 'aligned operator new (mimalloc)' };
  names.sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  L.push(`| call | ${cols.map((c) => `${c.t} per ${c.unit}`).join(' | ')} |`);
  L.push(`|---|${cols.map(() => '---:').join('|')}|`);
  for (const k of names) L.push(`| ${label[k] || k} | ${cols.map((c) => fmtCount(c.d.per_unit[k])).join(' | ')} |`);
  L.push(`| (units measured) | ${cols.map((c) => `${c.d.units} ${c.unit}s`).join(' | ')} |`);
  return true;
}

function markdown(res) {
  const m = res.meta;
  const L = [];
  L.push(`# sluice benchmark: ${m.date} on ${m.host}${m.quick ? ' (--quick)' : ''}`);
  L.push('');
  L.push('Produced by `bench/run.sh`; method in `bench/README.md`. Every target of a section ran in this one run,');
  L.push('in front of the same upstream, on the same machine, one after another.');
  if (m.phases) L.push(`Phases run: ${m.phases.join(', ')}.`);
  L.push('');
  L.push('## Machine and versions');
  L.push('');
  L.push('| item | value |');
  L.push('|---|---|');
  for (const [k, v] of Object.entries(m.machine || {})) L.push(`| ${k} | ${v} |`);
  for (const [k, v] of Object.entries(m.versions || {})) L.push(`| ${k} | ${v} |`);
  L.push(`| gateway workers | ${m.gateway_threads} (sluice --threads, nginx worker_processes, Portkey is one Node event loop) |`);
  if (Object.keys(res.throughput || {}).length || Object.keys(res.latency || {}).length || res.rss_flatness)
    L.push(`| upstream${m.phases ? ' (1, 2, 8)' : ''} | ${m.upstream} |`);
  if (m.bound_upstream && (res.bound || res.one_at_a_time || res.syscalls?.per_request)) L.push(`| upstream, gateway-bound mode (3, 4, 6) | ${m.bound_upstream} |`);
  L.push(`| request body | \`${m.body}\` |`);
  L.push('');

  if (Object.keys(res.throughput || {}).length) {
    L.push('## 1. Saturation throughput (non-streaming)');
    L.push('');
    L.push(`h2load --h1 -c ${m.sat_clients} -m 1 -n ${m.sat_requests}, ${m.sat_runs} run(s) per target interleaved, median shown.`);
    L.push('');
    L.push('| target | req/s (median) | runs | failed+errored | non-2xx | ratio to nginx | gateway CPU us/req | upstream CPU us/req |');
    L.push('|---|---:|---|---:|---:|---:|---:|---:|');
    for (const [t, r] of Object.entries(res.throughput)) {
      L.push(`| ${t} | ${fmt(r.rps_median, 0)} | ${r.rps_runs.map((x) => fmt(x, 0)).join(', ')} | ${r.failed} | ${r.non_2xx} | ${fmt(r.ratio_to_nginx, 3)} | ${fmt(r.gateway_cpu_us_per_req, 1)} | ${fmt(r.upstream_cpu_us_per_req, 1)} |`);
    }
    L.push('');
  }

  if (Object.keys(res.latency || {}).length) {
    L.push('## 2. Latency at fixed request rates (non-streaming)');
    L.push('');
    L.push('Per-request times from h2load --log-file; the first second of each run is dropped. Added latency = the');
    L.push('percentile through the gateway minus the same percentile calling the upstream directly. All times in ms.');
    L.push(`"added p99 / nginx" is left out when nginx's added p99 is under ${RATIO_FLOOR_MS} ms (a ratio to noise).`);
    L.push('');
    for (const [rate, row] of Object.entries(res.latency)) {
      L.push(`### ${rate} req/s${m.latency_labels?.[rate] ? ` (${m.latency_labels[rate]})` : ''}`);
      L.push('');
      L.push('| target | achieved req/s | p50 | p90 | p99 | p99.9 | max | added p50 | added p99 | added p99 / nginx | non-2xx | gateway CPU % of a core |');
      L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const [t, r] of Object.entries(row)) {
        const warn = r.above_saturation ? ' (over its saturation)' : '';
        L.push(
          `| ${t}${warn} | ${fmt(r.achieved_rps, 0)} | ${fmt(r.p50, 3)} | ${fmt(r.p90, 3)} | ${fmt(r.p99, 3)} | ${fmt(r.p999, 3)} | ${fmt(r.max, 3)} | ${fmt(r.added_ms?.p50, 3)} | ${fmt(r.added_ms?.p99, 3)} | ${fmt(r.added_p99_ratio_to_nginx, 2)} | ${r.non_2xx} | ${fmt(r.gateway_cpu_pct, 1)} |`,
        );
      }
      L.push('');
    }
  }

  if (res.bound) {
    L.push('## 3. Gateway-bound saturation (static upstream)');
    L.push('');
    L.push(`The upstream is nginx with one worker answering every request with a fixed 314-byte chat completion`);
    L.push('(`bench/nginx-static.conf.template`), a few microseconds of CPU each, so the gateway is what saturates.');
    L.push(`h2load --h1 -c ${m.sat_clients} -m 1 -n ${m.bound_requests}, ${m.bound_runs} run(s) per target interleaved, median shown.`);
    L.push('Gateway CPU per request from /proc/PID/stat (nginx: its worker; sluice: the process, all threads), split into');
    L.push('user and system time (medians of the runs, each column on its own). Portkey is left out of this phase: it');
    L.push('saturates about two orders of magnitude lower (section 1 measures it).');
    L.push('');
    L.push('| target | req/s (median) | runs | failed+errored | non-2xx | ratio to nginx | gateway CPU us/req | user | system | upstream CPU us/req |');
    L.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [t, r] of Object.entries(res.bound)) {
      L.push(`| ${t === 'direct' ? 'direct (static upstream)' : t} | ${fmt(r.rps_median, 0)} | ${r.rps_runs.map((x) => fmt(x, 0)).join(', ')} | ${r.failed} | ${r.non_2xx} | ${fmt(r.ratio_to_nginx, 3)} | ${fmt(r.gateway_cpu_us_per_req, 1)} | ${fmt(r.gateway_user_us_per_req, 1)} | ${fmt(r.gateway_sys_us_per_req, 1)} | ${fmt(r.upstream_cpu_us_per_req, 1)} |`);
    }
    L.push('');
  }

  if (res.one_at_a_time) {
    L.push('## 4. One request at a time (static upstream)');
    L.push('');
    L.push(`h2load --h1 -c 1 -m 1 -n ${m.oaat_requests ?? '?'}: a closed loop, the next request leaves when the answer to the previous`);
    L.push('one has arrived, so nothing queues (the method of the public cross-gateway boards). Upstream as in 3. Per-request');
    L.push('times from --log-file, the first second dropped. Added = percentile minus the direct percentile. ms.');
    L.push(`"added p99 / nginx" is left out when nginx's added p99 is under ${ONE_RATIO_FLOOR_MS} ms.`);
    L.push('');
    L.push('| target | req/s | p50 | p90 | p99 | p99.9 | max | added p50 | added p90 | added p99 | added p99.9 | added p99 / nginx | non-2xx | gateway CPU us/req |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [t, r] of Object.entries(res.one_at_a_time)) {
      L.push(
        `| ${t} | ${fmt(r.achieved_rps, 0)} | ${fmt(r.p50, 3)} | ${fmt(r.p90, 3)} | ${fmt(r.p99, 3)} | ${fmt(r.p999, 3)} | ${fmt(r.max, 3)} | ${fmt(r.added_ms?.p50, 3)} | ${fmt(r.added_ms?.p90, 3)} | ${fmt(r.added_ms?.p99, 3)} | ${fmt(r.added_ms?.p999, 3)} | ${fmt(r.added_p99_ratio_to_nginx, 2)} | ${r.non_2xx} | ${fmt(r.gateway_cpu_us_per_req, 1)} |`,
      );
    }
    L.push('');
  }

  if (Object.keys(res.ttft || {}).length) {
    L.push('## 5. Streaming: time to first token and gaps between chunks');
    L.push('');
    L.push(`Open-loop Node client (bench/bench.mjs ttft), ${m.ttft_duration_s} s per run after a 1 s warm-up; upstream mock-llm`);
    L.push('`--ttft-ms 0 --tpot-ms 5 --output-tokens 20:20` (about 100 ms per stream). TTFT = request start to the first SSE chunk with');
    L.push('non-empty content. Gap = time between successive reads of a stream after its first content chunk (the upstream');
    L.push('sends one every 5 ms; Node delivers what one socket read returned, so chunks that arrive together count as one read).');
    L.push('Added = percentile minus the direct percentile at the same rate. ms.');
    L.push('');
    for (const [rate, row] of Object.entries(res.ttft)) {
      L.push(`### ${rate} streams/s`);
      L.push('');
      L.push('| target | ok | errors | TTFT p50 | TTFT p90 | TTFT p99 | TTFT max | added p50 | added p99 | gap p99 | added gap p99 | stream total p50 | total p99 | gateway CPU us/stream |');
      L.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const [t, r] of Object.entries(row)) {
        const e = Object.entries(r.errors || {}).map(([k, v]) => `${k}: ${v}`).join(', ') || '0';
        L.push(
          `| ${t}${r.fell_behind ? ' (fell behind)' : ''} | ${r.ok} | ${e} | ${fmt(r.ttft_ms.p50, 3)} | ${fmt(r.ttft_ms.p90, 3)} | ${fmt(r.ttft_ms.p99, 3)} | ${fmt(r.ttft_ms.max, 3)} | ${fmt(r.added_ttft_ms?.p50, 3)} | ${fmt(r.added_ttft_ms?.p99, 3)} | ${fmt(r.gap_ms?.p99, 3)} | ${fmt(r.added_gap_ms?.p99, 3)} | ${fmt(r.total_ms.p50, 1)} | ${fmt(r.total_ms.p99, 1)} | ${fmt(r.gateway_cpu_us_per_stream, 0)} |`,
        );
      }
      L.push('');
    }
  }

  const sys = res.syscalls;
  if (sys) {
    L.push('## 6. System calls and allocations per request and per stream');
    L.push('');
    L.push(`Per request: gateway-bound setup of 3, \`h2load --h1 -c ${m.sat_clients} -m 1 -n ${sys.requests}\`. Per stream: mock-llm`);
    L.push(`\`--ttft-ms 0 --tpot-ms 5 --output-tokens 20:20\` (22 SSE events a stream), bench.mjs ttft at ${sys.stream_rate} streams/s for`);
    L.push(`${sys.stream_seconds} s. Each load runs once per gateway under \`strace -c -f\` (nginx: its worker; sluice: the process, all threads),`);
    L.push('then once more under `perf stat` counting libc calls. Both slow the gateway down a lot, so throughput under them');
    L.push('means nothing; the counts do. Counts include about a second of idle before the load starts.');
    L.push('');
    if (syscallTable(sys, L)) {
      L.push('');
      L.push('"(x failed)": calls that returned an error (EAGAIN from a read on an empty socket, for example).');
    } else L.push(`System calls: not measured${sys.strace_note ? ` (${sys.strace_note})` : ''}.`);
    L.push('');
    L.push('### Allocations');
    L.push('');
    if (mallocTable(sys, L)) {
      L.push('');
      L.push(`perf uprobes on ${sys.libc}. glibc's \`posix_memalign\` with an alignment of 16 or less (nginx's pools) and`);
      L.push('`realloc(NULL, n)` call `malloc` inside libc, so they are counted in the malloc row as well. With glibc, C++ `new`');
      L.push('calls `malloc`; mimalloc (sluice\'s release builds) defines its own `operator new`, counted on its row.');
    } else L.push(`Not measured: ${sys.malloc_note || 'no perf data'}.`);
    L.push('');
  }

  if (Object.keys(res.memory || {}).length) {
    L.push('## 7. Memory per open stream');
    L.push('');
    L.push(`${m.mem_streams} concurrent streams held open (mock-llm \`--tpot-ms 1000 --output-tokens ${m.mem_tokens}:${m.mem_tokens}\`). RSS = VmRSS`);
    L.push('of the gateway process(es) (nginx: master + worker; Portkey: the node process) before opening, with all open, and 3 s after closing;');
    L.push('then the same again (2nd round) to tell memory kept for reuse from memory lost. KiB per stream = (with - before) / open, 1st round.');
    L.push('"after close / before" = RSS 3 s after closing / RSS before opening, 1st round.');
    L.push('');
    L.push('| target | streams open | errors | RSS before (MiB) | RSS with streams (MiB) | RSS after close (MiB) | after close / before | KiB per stream | ratio to nginx | 2nd round: with streams / after close (MiB) |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [t, r] of Object.entries(res.memory)) {
      const ratio = r.after_close_over_before ?? (r.rss_before_kib ? r.rss_after_close_kib / r.rss_before_kib : null);
      L.push(
        `| ${t} | ${r.streams_open} | ${r.errors} | ${fmt(r.rss_before_kib / 1024, 1)} | ${fmt(r.rss_open_kib / 1024, 1)} | ${fmt(r.rss_after_close_kib / 1024, 1)} | ${fmt(ratio, 2)} | ${fmt(r.per_stream_kib, 2)} | ${fmt(r.ratio_to_nginx, 2)} | ${r.rounds?.[1] ? `${fmt(r.rounds[1].rss_open_kib / 1024, 1)} / ${fmt(r.rounds[1].rss_after_close_kib / 1024, 1)} (${r.rounds[1].streams_open} open)` : '-'} |`,
      );
    }
    L.push('');
  }

  const f = res.rss_flatness;
  if (f) {
    L.push('## 8. sluice RSS under sustained load');
    L.push('');
    L.push(`${f.duration_s} s at ${f.rate} req/s (about half of sluice's saturation), RSS sampled every ${f.interval_s} s. h2load: ${f.h2load?.succeeded ?? '-'} succeeded, ${(f.h2load?.failed ?? 0) + (f.h2load?.errored ?? 0)} failed.`);
    L.push('');
    L.push('| before load (MiB) | first sample (MiB) | last (MiB) | max (MiB) | last vs first | max vs first |');
    L.push('|---:|---:|---:|---:|---:|---:|');
    L.push(`| ${fmt(f.baseline_kib / 1024, 1)} | ${fmt(f.first_kib / 1024, 1)} | ${fmt(f.last_kib / 1024, 1)} | ${fmt(f.max_kib / 1024, 1)} | ${fmt(f.change_pct, 2)} % | ${fmt(f.max_over_first_pct, 2)} % |`);
    L.push('');
    L.push('Samples (s: MiB): ' + f.samples.map((s) => `${s.t_s}: ${fmt(s.rss_kib / 1024, 1)}`).join(', '));
    L.push('');
  }
  if (res.notes.length) {
    L.push('## Notes from this run');
    L.push('');
    for (const n of res.notes) L.push(`- ${n}`);
    L.push('');
  }
  return L.join('\n');
}

// ------------------------------------------------------------------ main
const [cmd, ...rest] = process.argv.slice(2);
const o = args(rest);
switch (cmd) {
  case 'freeport':
    await freeport();
    break;
  case 'h2load':
    h2loadSummary(o._[0]);
    break;
  case 'latency':
    latency(o._[0], Number(o['skip-s'] ?? 1));
    break;
  case 'ttft':
    await ttft(o);
    break;
  case 'hold':
    await hold(o);
    break;
  case 'cpu': {
    const pids = String(o._[0] ?? '').split(',').filter(Boolean).map(Number);
    if (o.split) {
      const c = cpuTimes(pids);
      console.log(`${c.user.toFixed(2)} ${c.system.toFixed(2)}`);
    } else console.log(cpuSeconds(pids).toFixed(2));
    break;
  }
  case 'strace':
    console.log(JSON.stringify(parseStrace(fs.readFileSync(o._[0], 'utf8'))));
    break;
  case 'rss':
    console.log(rssKiB(String(o._[0]).split(',').map(Number)));
    break;
  case 'report':
    report(o);
    break;
  case 'render':
    render(o);
    break;
  default:
    console.error('usage: bench.mjs freeport|h2load|latency|ttft|hold|rss|cpu|strace|report|render ...');
    process.exit(2);
}
