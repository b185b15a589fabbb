// harness.mjs: process and network helpers for the sluice integration tests.
//
// Every process is started with port 0 and its real port is read from its stdout. Every
// process started here is registered and killed on teardown (stop()), and again, with
// SIGKILL, when the test process exits for any reason, so a failing test never leaks a
// gateway or a mock.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

export { sleep };

export const SLUICE_BIN = process.env.SLUICE_BIN || '/work/main/build/dev/sluice';

// Sanitizer builds (scripts/test.sh sets SLUICE_SANITIZER) run several times slower: wall-clock
// bounds in the tests are scaled with ms(); bounds that are inherent to the scenario are not.
export const SLACK = { tsan: 4, 'asan-ubsan': 2 }[process.env.SLUICE_SANITIZER] ?? 1;
export const ms = (n) => n * SLACK;

if (!existsSync(SLUICE_BIN)) {
  throw new Error(`sluice binary not found at ${SLUICE_BIN} (set SLUICE_BIN)`);
}

// ------------------------------------------------------------------ process registry

const live = new Set();
const tempDirs = new Set();

function killAll() {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
  if (!process.env.SLUICE_KEEP_TMP) {
    for (const d of tempDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

export function tempDir(prefix = 'sluice-it-') {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

// A child process whose stdout/stderr are captured; waitLine() resolves on the first line
// matching a regexp (or rejects when the process exits or the timeout passes).
class Proc {
  constructor(args, { env, name, cwd } = {}) {
    this.name = name || path.basename(args[0] || 'proc');
    this.args = args;
    this.stdout = '';
    this.stderr = '';
    this.exitCode = undefined;
    this.signalCode = undefined;
    this.child = spawn(SLUICE_BIN, args, {
      env: { ...process.env, ...(env || {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(cwd ? { cwd } : {}),
    });
    live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.signalCode = signal;
        live.delete(this.child);
        resolve({ code, signal });
      });
      this.child.on('error', (err) => {
        this.stderr += `spawn error: ${err.message}\n`;
        this.exitCode = -1;
        live.delete(this.child);
        resolve({ code: -1, signal: null });
      });
    });
    this.waiters = [];
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (d) => {
      this.stdout += d;
      this.#check();
    });
    this.child.stderr.on('data', (d) => {
      this.stderr += d;
      this.#check();
    });
  }

  get pid() {
    return this.child.pid;
  }

  get running() {
    return this.exitCode === undefined;
  }

  #check() {
    for (const w of [...this.waiters]) {
      const m = (w.stream === 'stderr' ? this.stderr : this.stdout).match(w.re);
      if (m) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  waitLine(re, { stream = 'stdout', timeout = ms(5000) } = {}) {
    const m = (stream === 'stderr' ? this.stderr : this.stdout).match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const w = { re, stream, resolve };
      this.waiters.push(w);
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: timed out waiting for ${re} on ${stream}\n${this.describe()}`));
      }, timeout);
      const origResolve = w.resolve;
      w.resolve = (v) => {
        clearTimeout(t);
        origResolve(v);
      };
      this.exited.then(() => {
        if (this.waiters.includes(w)) {
          clearTimeout(t);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`${this.name}: exited (${this.exitCode}/${this.signalCode}) before ${re}\n${this.describe()}`));
        }
      });
    });
  }

  describe() {
    return `--- ${this.name} ${this.args.join(' ')}\n--- stdout:\n${this.stdout}\n--- stderr:\n${this.stderr}`;
  }

  signal(sig) {
    if (this.running) this.child.kill(sig);
  }

  // Resolves with {code, signal}; rejects if the process has not exited within `timeout`.
  async waitExit(timeout = 5000) {
    let t;
    const r = await Promise.race([
      this.exited,
      new Promise((_, reject) => {
        t = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeout} ms\n${this.describe()}`)), timeout);
      }),
    ]);
    clearTimeout(t);
    return r;
  }

  // Throws if a sanitizer (ASan, UBSan, LSan, TSan) reported anything on stderr: a test that
  // passes while the gateway corrupts memory or races must not count as a pass.
  checkSanitizers() {
    const m = this.stderr.match(/(ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:)[^\n]*/);
    if (m) throw new Error(`${this.name}: sanitizer report: ${m[0]}\n${this.stderr.slice(this.stderr.indexOf(m[0]), this.stderr.indexOf(m[0]) + 4000)}`);
  }

  // SIGTERM, then SIGKILL if it lingers. Throws only for sanitizer reports.
  async stop(timeout = 3000) {
    if (!this.running) {
      const r = await this.exited;
      this.checkSanitizers();
      return r;
    }
    this.child.kill('SIGTERM');
    let t;
    let r = await Promise.race([this.exited, new Promise((res) => (t = setTimeout(() => res(null), timeout)))]);
    clearTimeout(t);
    if (r === null) {
      this.child.kill('SIGKILL');
      r = await this.exited;
    }
    this.checkSanitizers();
    return r;
  }
}

export function spawnSluice(args, opts) {
  return new Proc(args, opts);
}

// Runs a program to its end: {code, signal, stdout, stderr, seconds}; SIGKILL after `timeout`.
export function runProcess(cmd, args, { cwd, env, timeout = ms(180000) } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { cwd, env: { ...process.env, ...(env || {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeout);
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, signal: null, stdout, stderr: stderr + e.message, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

// RFC 4180-ish CSV (quoted fields with "" escapes and newlines) as objects keyed by the header.
export function parseCSV(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  const [head, ...rest] = rows;
  return rest.filter((r) => r.length === head.length).map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])));
}

// ------------------------------------------------------------------ mock-llm

// Starts `sluice mock-llm`. `config` (object) is written as a YAML file (JSON is YAML).
// `cwd` is the working directory (for a config file whose paths are relative to it).
export async function startMock({ config, args = [], env, cwd } = {}) {
  const a = ['mock-llm', '--listen', '127.0.0.1:0', ...args];
  if (config) {
    const dir = tempDir('sluice-mock-');
    const file = path.join(dir, 'mock.yaml');
    writeFileSync(file, JSON.stringify(config, null, 2));
    a.push('--config', file);
  }
  const proc = new Proc(a, { env, name: 'mock-llm', cwd });
  const m = await proc.waitLine(/mock-llm: listening on 127\.0\.0\.1:(\d+)/);
  const port = Number(m[1]);
  const url = `http://127.0.0.1:${port}`;
  const mock = {
    proc,
    port,
    url,
    async stats() {
      const r = await fetch(`${url}/mock/stats`);
      return r.json();
    },
    async setFaults(faults) {
      const r = await fetch(`${url}/mock/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(faults),
      });
      if (r.status !== 200) throw new Error(`mock /mock/faults: ${r.status} ${await r.text()}`);
      return r.json();
    },
    async clearFaults() {
      const r = await fetch(`${url}/mock/faults`, { method: 'DELETE' });
      return r.json();
    },
    stop: () => proc.stop(),
  };
  return mock;
}

// ------------------------------------------------------------------ gateway

// Starts `sluice serve`. `upstreams` is {name: url} passed as --upstream flags; `config`
// (object) is written as the YAML config file. Returns once /readyz answers 200.
export async function startGateway({ upstreams = {}, config, args = [], env, threads = 2, dataDir, waitReady = true } = {}) {
  const dir = dataDir || tempDir('sluice-gw-');
  const a = ['serve', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dir];
  if (threads) a.push('--threads', String(threads));
  for (const [name, url] of Object.entries(upstreams)) a.push('--upstream', `${name}=${url}`);
  let configPath;
  if (config !== undefined) {
    configPath = path.join(dir, 'sluice.yaml');
    writeFileSync(configPath, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
    a.push('--config', configPath);
  }
  a.push(...args);
  const proc = new Proc(a, { env, name: 'sluice' });
  const dp = await proc.waitLine(/sluice: data plane listening on [^\s]+:(\d+)/);
  const ad = await proc.waitLine(/sluice: admin listening on [^\s]+:(\d+)/);
  const port = Number(dp[1]);
  const adminPort = Number(ad[1]);
  const gw = {
    proc,
    port,
    adminPort,
    dataDir: dir,
    configPath,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    baseURL: `http://127.0.0.1:${port}/v1`,
    adminToken() {
      return readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
    },
    writeConfig(cfg) {
      writeFileSync(configPath, typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2));
    },
    requestLog() {
      return readRequestLog(dir);
    },
    waitLog(pred, timeout) {
      return waitForLogLine(dir, pred, timeout);
    },
    async metrics(admin = false) {
      const r = await fetch(`${admin ? gw.adminUrl : gw.url}/metrics`);
      if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
      return parsePrometheus(await r.text());
    },
    stop: () => proc.stop(),
  };
  if (waitReady) {
    await waitFor(async () => {
      try {
        const r = await fetch(`${gw.url}/readyz`);
        await r.arrayBuffer();
        return r.status === 200;
      } catch {
        return false;
      }
    }, { timeout: ms(5000), what: 'gateway /readyz' });
  }
  return gw;
}

// A port that nothing listens on (bound then closed).
export async function closedPort() {
  const srv = net.createServer();
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  const port = srv.address().port;
  await new Promise((res) => srv.close(res));
  return port;
}

// ------------------------------------------------------------------ polling, logs

export async function waitFor(fn, { timeout = ms(3000), interval = 25, what = 'condition' } = {}) {
  const until = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > until) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

export function readRequestLog(dir) {
  const f = path.join(dir, 'requests.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

export function waitForLogLine(dir, pred, timeout = ms(3000)) {
  return waitFor(() => readRequestLog(dir).find(pred), { timeout, what: 'request log line' });
}

// ------------------------------------------------------------------ HTTP helpers

export const USER_MSG = [{ role: 'user', content: 'Say something about gateways.' }];

// The repository's root, and a real GSM8K question (the first of the shared test set), so
// mock-llm replays a recorded solution.
export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const GSM8K_FIRST = path.resolve(REPO, '../shared/data/gsm8k/test.jsonl');
export const MATH_QUESTION = existsSync(GSM8K_FIRST)
  ? JSON.parse(readFileSync(GSM8K_FIRST, 'utf8').split('\n')[0]).question
  : 'Janet has 16 eggs, eats 3 and bakes with 4. She sells the rest at $2 each. How much does she make?';
export const MATH_MSG = [{ role: 'user', content: MATH_QUESTION }];

// Any method; a JSON body is serialized and labelled. `json` is the parsed answer or undefined.
export async function requestJSON(method, url, { body, headers = {}, signal } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['content-type'] ??= 'application/json';
  const r = await fetch(url, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

export function postJSON(url, body, { headers = {}, signal } = {}) {
  return requestJSON('POST', url, { body, headers, signal });
}

export function chat(gw, body, opts) {
  return postJSON(`${gw.url}/v1/chat/completions`, { model: 'mock-model', messages: USER_MSG, ...body }, opts);
}

// Reads a whole SSE response: returns {status, headers, events: [data strings], raw}.
export async function chatStreamRaw(gw, body, { headers = {} } = {}) {
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'mock-model', messages: USER_MSG, stream: true, ...body }),
  });
  const raw = await r.text();
  return { status: r.status, headers: r.headers, raw, events: sseData(raw) };
}

export function sseData(raw) {
  return raw
    .split(/\r?\n\r?\n/)
    .map((block) =>
      block
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n'),
    )
    .filter((d) => d !== '');
}

export function assertOpenAIError(assert, json, { code, type } = {}) {
  assert.ok(json && typeof json === 'object', `expected a JSON error body, got ${JSON.stringify(json)}`);
  assert.ok(json.error && typeof json.error === 'object', `expected {"error":{...}}, got ${JSON.stringify(json)}`);
  for (const k of ['message', 'type', 'param', 'code']) assert.ok(k in json.error, `error has no '${k}': ${JSON.stringify(json)}`);
  assert.equal(typeof json.error.message, 'string');
  assert.ok(json.error.message.length > 0);
  if (code !== undefined) assert.equal(json.error.code, code, `error code in ${JSON.stringify(json)}`);
  if (type !== undefined) assert.equal(json.error.type, type, `error type in ${JSON.stringify(json)}`);
}

// ------------------------------------------------------------------ raw TCP

export function connect(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host }, () => resolve(s));
    s.once('error', reject);
  });
}

// Tracks everything a raw socket receives and how it ends.
export function watchSocket(s) {
  const st = { data: Buffer.alloc(0), closed: false, error: null, closedAt: null, ended: false };
  st.done = new Promise((resolve) => {
    s.on('data', (d) => {
      st.data = Buffer.concat([st.data, d]);
    });
    s.on('end', () => {
      st.ended = true;
    });
    s.on('error', (e) => {
      st.error = e;
    });
    s.on('close', () => {
      st.closed = true;
      st.closedAt = Date.now();
      resolve(st);
    });
  });
  st.text = () => st.data.toString('latin1');
  return st;
}

// Sends `data` on a fresh connection and collects the answer until the server closes
// (or `timeout` passes, then the socket is destroyed). Resolves {data, text, status, error, closed}.
export async function rawRequest(port, data, { timeout = 3000, halfClose = false } = {}) {
  const s = await connect(port);
  const st = watchSocket(s);
  s.write(data);
  if (halfClose) s.end();
  const t = setTimeout(() => s.destroy(), timeout);
  await st.done;
  clearTimeout(t);
  return { ...st, text: st.text(), status: parseStatus(st.text()) };
}

export function parseStatus(text) {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : undefined;
}

// Splits one raw HTTP/1.1 response with Content-Length into {status, headers, body}.
export function parseRawResponse(text) {
  const i = text.indexOf('\r\n\r\n');
  if (i < 0) return undefined;
  const lines = text.slice(0, i).split('\r\n');
  const status = parseStatus(lines[0]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  let body = text.slice(i + 4);
  if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length']));
  return { status, headers, body };
}

// ------------------------------------------------------------------ Prometheus text format

// Parses the exposition format into {samples: [{name, labels, value}], types: {name: type}, text}.
export function parsePrometheus(text) {
  const samples = [];
  const types = {};
  const bad = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m) types[m[1]] = m[2];
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) {
      bad.push(line);
      continue;
    }
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
      let lm;
      let consumed = 0;
      while ((lm = re.exec(m[3]))) {
        labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
        consumed += lm[0].length;
      }
      if (consumed !== m[3].length) bad.push(line);
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  const find = (name, want = {}) =>
    samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  const value = (name, want = {}) => {
    const f = find(name, want);
    return f.length ? f.reduce((a, s) => a + s.value, 0) : undefined;
  };
  return { text, samples, types, bad, find, value };
}

// Sends a request with a `total`-byte body (Content-Length or chunked) on a raw socket,
// honouring backpressure and stopping as soon as the server answers or hangs up.
// Resolves {status, text, error, sent, ms}: a client of a server that refuses a huge body
// may legitimately see EPIPE/ECONNRESET instead of the response.
// `pauseAfter`: stop after that many body bytes and wait (up to 10 s) for the answer: a
// server that refuses by Content-Length answers before the body, whatever the timing.
export async function sendLargeBody(port, { total = 100 << 20, chunked = false, path = '/v1/chat/completions', extraHeaders = '', pauseAfter } = {}) {
  const s = await connect(port);
  const st = watchSocket(s);
  s.on('error', () => {});
  const t0 = Date.now();
  if (pauseAfter !== undefined) {
    s.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extraHeaders}Content-Length: ${total}\r\n\r\n`,
    );
    s.write(Buffer.alloc(pauseAfter, 0x20));
    const answered = new Promise((res) => {
      const check = () => (st.data.length > 0 ? res() : null);
      s.on('data', check);
      st.done.then(res);
    });
    await Promise.race([answered, sleep(10000)]);
    await Promise.race([st.done, sleep(100)]);
    s.destroy();
    await st.done;
    const text = st.text();
    return { status: parseStatus(text), text, error: st.error, sent: pauseAfter, ms: Date.now() - t0 };
  }
  s.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extraHeaders}` +
      (chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${total}\r\n`) +
      '\r\n',
  );
  const chunk = Buffer.alloc(1 << 20, 0x20);
  let sent = 0;
  while (sent < total && !st.closed && !st.error && st.data.length === 0 && Date.now() - t0 < 20000) {
    const n = Math.min(chunk.length, total - sent);
    let ok;
    if (chunked) {
      s.write(`${n.toString(16)}\r\n`);
      s.write(chunk.subarray(0, n));
      ok = s.write('\r\n');
    } else {
      ok = s.write(chunk.subarray(0, n));
    }
    sent += n;
    if (!ok) {
      await new Promise((res) => {
        const done = () => {
          s.off('drain', done);
          s.off('close', done);
          res();
        };
        s.once('drain', done);
        s.once('close', done);
      });
    }
  }
  if (chunked && sent >= total && !st.closed) s.write('0\r\n\r\n');
  if (st.data.length > 0 && !st.closed) {
    // Answered early: give the rest of the response a moment, then hang up our side.
    await Promise.race([st.done, sleep(100)]);
    if (!st.closed) s.end();
  }
  // Wait for the server to close (it lingers a few seconds at most).
  const t = setTimeout(() => s.destroy(), 6000);
  await st.done;
  clearTimeout(t);
  const text = st.text();
  return { status: parseStatus(text), text, error: st.error, sent, ms: Date.now() - t0 };
}

// ------------------------------------------------------------------ scripted upstream

// A tiny HTTP upstream in this process, for checking exactly what the gateway sends and for
// answers mock-llm cannot give. `handler(req, res, body)` answers; every request is recorded
// as {method, url, headers, body}.
export async function startFakeUpstream(handler) {
  const http = await import('node:http');
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
      Promise.resolve(handler(req, res, body.toString('utf8'))).catch((e) => {
        res.destroy(e);
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((res) => {
        for (const s of sockets) s.destroy();
        server.close(() => res());
      }),
  };
}

export function completionBody(model = 'fake-model', content = 'hello from fake') {
  return JSON.stringify({
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: 1,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
  });
}

export function chunkEvent(content, { finish = null, id = 'chatcmpl-fake' } = {}) {
  return JSON.stringify({
    id,
    object: 'chat.completion.chunk',
    created: 1,
    model: 'fake-model',
    choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }],
  });
}

// A response header of an OpenAI SDK error (a Headers object or a plain record, by SDK version).
export const errorHeader = (err, name) =>
  (typeof err.headers?.get === 'function' ? err.headers.get(name) : err.headers?.[name]) ?? null;
