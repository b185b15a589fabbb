// helm_chart.test.mjs: lints deploy/helm/sluice without Helm (it cannot be installed here).
// Nothing is rendered; instead everything the chart tells the binary is checked against the
// binary itself:
//  - every .Values path a template reads exists in values.yaml, every include is defined,
//    and the template actions are balanced (if/range/with/define ... end);
//  - the Deployment's args are flags `sluice serve` accepts: the gateway is started with
//    exactly those flags (listen addresses moved to loopback port 0) on the chart's default
//    config, and the probe paths answer on the port the probes name, /metrics on the
//    scraped port;
//  - every SLUICE_* variable the templates set is one the binary reads;
//  - the default `config` (the ConfigMap's sluice.yaml) passes `sluice config check`;
//  - the ConfigMap key, its mount and --config agree, and so do the data volume and --data-dir.
// Run: SLUICE_BIN=build/asan-ubsan/sluice node --test tests/deploy/helm_chart.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHART = path.join(REPO, 'deploy/helm/sluice');
const BIN = process.env.SLUICE_BIN || path.join(REPO, 'build/dev/sluice');

const read = (f) => readFileSync(path.join(CHART, f), 'utf8');
const templates = Object.fromEntries(
  readdirSync(path.join(CHART, 'templates')).map((f) => [f, read(path.join('templates', f))]),
);
const deployment = templates['deployment.yaml'];

// The key paths of values.yaml (block mappings and one-line flow mappings; list items are
// leaves). Enough for the chart's own file, which this test also keeps that simple.
function valuePaths(text) {
  const paths = new Set();
  const stack = []; // [{indent, path}]
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '');
    if (/^\s*(#|$)/.test(line)) continue;
    const indent = line.match(/^ */)[0].length;
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    const m = /^ *([A-Za-z_][\w-]*):(?: +(.*))?$/.exec(line);
    if (!m) continue; // a list item or a continuation: a leaf of its parent
    const p = [...(stack.length ? [stack[stack.length - 1].path] : []), m[1]].join('.');
    paths.add(p);
    const rest = (m[2] || '').trim();
    if (rest.startsWith('{')) for (const k of rest.matchAll(/([A-Za-z_][\w-]*):/g)) paths.add(`${p}.${k[1]}`);
    stack.push({ indent, path: p });
  }
  return paths;
}

// The `config:` block of values.yaml, de-indented: the ConfigMap's sluice.yaml.
function defaultConfig() {
  const lines = read('values.yaml').split('\n');
  const start = lines.findIndex((l) => /^config:\s*$/.test(l));
  assert.ok(start >= 0, 'values.yaml has a top-level config:');
  const out = [];
  for (const l of lines.slice(start + 1)) {
    if (/^\S/.test(l)) break;
    out.push(l.slice(2));
  }
  return out.join('\n') + '\n';
}

// The Deployment's container args: `- serve`, `- --flag`, `- "value"`.
function deploymentArgs() {
  const block = /args:\n((?: {12}- .*\n)+)/.exec(deployment);
  assert.ok(block, 'deployment.yaml has an args: list');
  return block[1].split('\n').filter(Boolean).map((l) => l.replace(/^ *- /, '').replace(/^"(.*)"$/, '$1'));
}

function run(args, env = {}) {
  return spawnSync(BIN, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30000 });
}

test('Chart.yaml names a v2 chart with a version', () => {
  const chart = read('Chart.yaml');
  assert.match(chart, /^apiVersion: v2$/m);
  assert.match(chart, /^name: sluice$/m);
  assert.match(chart, /^version: \d+\.\d+\.\d+$/m);
  assert.match(chart, /^appVersion: "?\d+\.\d+\.\d+"?$/m);
});

test('templates read only values that exist, include only defined templates, and balance their actions', () => {
  const values = valuePaths(read('values.yaml'));
  const defined = new Set();
  for (const t of Object.values(templates)) for (const m of t.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)) defined.add(m[1]);
  for (const [name, t] of Object.entries(templates)) {
    for (const m of t.matchAll(/\.Values((?:\.[A-Za-z_]\w*)+)/g)) {
      assert.ok(values.has(m[1].slice(1)), `${name} reads .Values${m[1]}, which values.yaml does not define`);
    }
    for (const m of t.matchAll(/include\s+"([^"]+)"/g)) assert.ok(defined.has(m[1]), `${name} includes undefined "${m[1]}"`);
    let depth = 0;
    for (const m of t.matchAll(/\{\{-?\s*(if|range|with|define|end|else)\b/g)) {
      if (m[1] === 'end') depth--;
      else if (m[1] !== 'else') depth++;
      assert.ok(depth >= 0, `${name}: an {{ end }} without its opening action`);
    }
    assert.equal(depth, 0, `${name}: every if/range/with/define needs its {{ end }}`);
    assert.equal((t.match(/\{\{/g) || []).length, (t.match(/\}\}/g) || []).length, `${name}: unbalanced {{ }}`);
  }
});

test('the ConfigMap, its mount and the flags agree on the files', () => {
  const args = deploymentArgs();
  const flag = (f) => args[args.indexOf(f) + 1];
  assert.match(templates['configmap.yaml'], /^ {2}sluice\.yaml: \|$/m);
  const configMount = /- name: config\n\s+mountPath: (\S+)/.exec(deployment);
  assert.ok(configMount, 'the config volume is mounted');
  assert.equal(flag('--config'), `${configMount[1]}/sluice.yaml`);
  const dataMount = /- name: data\n\s+mountPath: (\S+)/.exec(deployment);
  assert.ok(dataMount, 'the data volume is mounted');
  assert.equal(flag('--data-dir'), dataMount[1]);
  // Named ports the probes and the Service use are declared on the container.
  const declared = new Set([...deployment.matchAll(/- name: (\w+)\n\s+containerPort:/g)].map((m) => m[1]));
  for (const m of [...deployment.matchAll(/port: ([a-z]\w*)$/gm), ...templates['service.yaml'].matchAll(/targetPort: (\w+)/g)])
    assert.ok(declared.has(m[1]), `port '${m[1]}' is not a container port name`);
  // Secrets never go into the ConfigMap: the store URL is an environment variable.
  assert.doesNotMatch(defaultConfig(), /postgres(ql)?:\/\//);
});

test('every SLUICE_* variable the templates set is one the binary reads', () => {
  const binary = readFileSync(BIN);
  const names = new Set();
  for (const t of Object.values(templates)) for (const m of t.matchAll(/- name: (SLUICE_[A-Z_]+)/g)) names.add(m[1]);
  assert.ok(names.has('SLUICE_STORE_URL'), 'the store URL is set from a Secret');
  for (const n of names) assert.ok(binary.indexOf(n) >= 0, `the binary never reads ${n}`);
});

test('the default config passes `sluice config check`', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-helm-'));
  try {
    const file = path.join(dir, 'sluice.yaml');
    const config = defaultConfig();
    writeFileSync(file, config);
    const env = {};
    for (const m of config.matchAll(/(?:api_key_env|key_env): (\w+)/g)) env[m[1]] = 'sk-lint';
    const r = run(['config', 'check', file], env);
    assert.equal(r.status, 0, `sluice config check on values.yaml's config:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /: ok \(\d+ upstreams, \d+ routes\)/);
    assert.doesNotMatch(r.stderr, /warning/, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`sluice serve` accepts the Deployment\'s flags and answers the probes on their port', async () => {
  const args = deploymentArgs();
  assert.equal(args[0], 'serve');
  const help = run(['serve', '--help']).stdout;
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-helm-'));
  const config = defaultConfig();
  writeFileSync(path.join(dir, 'sluice.yaml'), config);
  // The chart's values, moved to this machine: loopback, port 0, a temporary data directory.
  const local = { '--config': path.join(dir, 'sluice.yaml'), '--data-dir': path.join(dir, 'data'),
    '--listen': '127.0.0.1:0', '--admin-listen': '127.0.0.1:0', '--threads': '1' };
  const serveArgs = ['serve'];
  for (let i = 1; i < args.length; i += 2) {
    assert.match(args[i], /^--[a-z-]+$/, `unexpected argument ${args[i]}`);
    assert.ok(help.includes(args[i]), `sluice serve --help does not list ${args[i]}`);
    assert.ok(args[i] in local, `${args[i]} is new: teach this test its local value`);
    serveArgs.push(args[i], local[args[i]]);
  }
  const env = { SLUICE_STORE_URL: '' };
  for (const m of config.matchAll(/(?:api_key_env|key_env): (\w+)/g)) env[m[1]] = 'sk-lint';
  const gw = spawn(BIN, serveArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  gw.stdout.on('data', (d) => (out += d));
  gw.stderr.on('data', (d) => (out += d));
  try {
    const ports = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the gateway did not start:\n${out}`)), 20000);
      const check = () => {
        const dp = /data plane listening on [^\s]+:(\d+)/.exec(out);
        const ad = /admin listening on [^\s]+:(\d+)/.exec(out);
        if (dp && ad) {
          clearTimeout(t);
          resolve({ http: Number(dp[1]), admin: Number(ad[1]) });
        }
      };
      gw.stdout.on('data', check);
      gw.stderr.on('data', check);
      gw.on('exit', (code) => reject(new Error(`the gateway exited (${code}):\n${out}`)));
    });
    // Each probe on the port it names; /healthz must be 200, /readyz a readiness answer.
    for (const m of deployment.matchAll(/(readiness|liveness)Probe:\n\s+httpGet:\n\s+path: (\S+)\n\s+port: (\w+)/g)) {
      const r = await fetch(`http://127.0.0.1:${ports[m[3]]}${m[2]}`);
      const body = await r.text();
      if (m[1] === 'liveness') assert.equal(r.status, 200, `${m[2]}: ${body}`);
      else {
        assert.ok([200, 503].includes(r.status), `${m[2]}: ${r.status} ${body}`);
        assert.ok('ready' in JSON.parse(body), `${m[2]} answers readiness: ${body}`);
      }
    }
    const scrapePort = /prometheus\.io\/port: \{\{ \.Values\.ports\.(\w+)/.exec(deployment)[1];
    const scrapePath = /prometheus\.io\/path: (\S+)/.exec(deployment)[1];
    const port = scrapePort === 'data' ? ports.http : ports.admin;
    const metrics = await fetch(`http://127.0.0.1:${port}${scrapePath}`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^# TYPE sluice_/m);
  } finally {
    // SIGTERM drains (nothing is in flight here) and exits; the kubelet would SIGKILL it
    // after terminationGracePeriodSeconds, this test after 10 s, and then fails.
    const exited = new Promise((r) =>
      gw.exitCode !== null || gw.signalCode !== null ? r(gw.signalCode) : gw.on('exit', (code, sig) => r(sig)),
    );
    gw.kill('SIGTERM');
    let killed = false;
    const t = setTimeout(() => {
      killed = true;
      gw.kill('SIGKILL');
    }, 10000);
    await exited;
    clearTimeout(t);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(killed, false, `the gateway did not exit within 10 s of SIGTERM:\n${out}`);
    assert.doesNotMatch(out, /ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:/);
  }
});
