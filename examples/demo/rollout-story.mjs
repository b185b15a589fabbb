// The rollout story of `sluice demo`, in about two minutes: releases, the eval gate, a
// shadow-then-canary rollout that promotes on evidence, and a second candidate that breaks
// mid-canary and is rolled back by its guardrail. Traffic goes through the official OpenAI
// SDK; answers are graded against GSM8K's references and posted back as user feedback.
//
// The story is told as one incident timeline: what the gateway recorded (promotions, every
// rollout step and gate decision with its numbers, rollbacks, breaker changes), read through
// `sluice incident timeline` as it happens, interleaved in time order with what the demo
// itself does ("demo" lines). The gateway's own log goes to a file (`sluice demo` names it).
//
// Environment (set by `sluice demo`): SLUICE_BIN, SLUICE_DEMO_DATA, SLUICE_DEMO_BASE (the
// gateway's /v1 URL), SLUICE_DEMO_ADMIN (admin URL), SLUICE_DEMO_MOCK (mock-llm URL).
import { createRequire } from 'node:module';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '../..');
const require = createRequire(path.join(root, 'tests/integration/package.json'));
const OpenAI = require('openai').default ?? require('openai');

const BIN = process.env.SLUICE_BIN ?? path.join(root, 'build/release/sluice');
const DATA = process.env.SLUICE_DEMO_DATA ?? path.join(root, 'sluice-data/demo');
const BASE = process.env.SLUICE_DEMO_BASE ?? 'http://127.0.0.1:8080/v1';
const ADMIN = process.env.SLUICE_DEMO_ADMIN ?? 'http://127.0.0.1:8081';
const MOCK = process.env.SLUICE_DEMO_MOCK ?? 'http://127.0.0.1:8180';
const TOKEN = readFileSync(path.join(DATA, 'admin.token'), 'utf8').trim();
const client = new OpenAI({ baseURL: BASE, apiKey: 'demo', maxRetries: 0, timeout: 20000 });

const t0 = Date.now();
// One timeline: the gateway's events (`sluice incident timeline`, its formatter, polled in
// the background without blocking the traffic) and the demo's own steps ("demo" lines),
// merged in time order, each line "HH:MM:SS.mmm  kind  ...", each event printed once.
const execFileP = promisify(execFile);
const shown = new Set();
const pending = [];  // the demo's own lines not yet printed: [t_ms, text]
async function pollTimeline(final = false) {
  const started = final ? Infinity : Date.now();
  let out = '';
  try {
    out = (await execFileP(BIN, ['incident', 'timeline', '--route', 'math-tutor', '--since', String(t0), '--admin', ADMIN,
      '--token', TOKEN], { cwd: root, encoding: 'utf8' })).stdout;
  } catch (e) {
    // the next poll catches up
  }
  const items = [];
  for (const line of out.split('\n')) {
    if (!/^\d{4}-\d\d-\d\d /.test(line) || shown.has(line)) continue;
    shown.add(line);
    items.push([Date.parse(`${line.slice(0, 10)}T${line.slice(11, 23)}Z`), line.slice(11)]);  // the date is today's
  }
  while (pending.length && pending[0][0] <= started) items.push(pending.shift());
  items.sort((a, b) => a[0] - b[0]);
  for (const [, l] of items) console.log(l);
}
let storyDone = false;
const poller = (async () => {
  while (!storyDone) {
    await pollTimeline();
    await new Promise((r) => setTimeout(r, 300));
  }
})();
const say = (s) => {
  const t = Date.now();
  const clock = new Date(t).toISOString().slice(11, 23);
  for (const [i, l] of String(s).split('\n').entries())
    pending.push([t, `${i ? ' '.repeat(12) : clock}  ${'demo'.padEnd(18)}  ${l}`]);
};
const sluice = (...args) => execFileSync(BIN, [...args, '--data-dir', DATA], { cwd: root, encoding: 'utf8' }).trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function admin(method, p, body) {
  const r = await fetch(ADMIN + p, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return r.json();
}

// ---- traffic: users ask GSM8K questions, answers are graded and fed back as feedback
const problems = readFileSync(path.join(root, '../shared/data/gsm8k/test.jsonl'), 'utf8')
  .trim().split('\n').map((l) => JSON.parse(l));
const finalNumber = (s) => (s.split('####').pop().match(/-?[\d,]*\.?\d+/g) ?? []).pop()?.replace(/,/g, '');
const traffic = { ok: 0, failed: 0, byRelease: {}, stop: false };

async function user(u) {
  let i = u * 7;
  while (!traffic.stop) {
    const p = problems[i++ % problems.length];
    try {
      const { data, response } = await client.chat.completions
        .create({ model: 'math-tutor', user: `student-${u}`, messages: [{ role: 'user', content: p.question }] })
        .withResponse();
      const rel = response.headers.get('x-sluice-release');
      traffic.byRelease[rel] = (traffic.byRelease[rel] ?? 0) + 1;
      traffic.ok++;
      const correct = finalNumber(data.choices[0].message.content ?? '') === p.answer.split('####').pop().trim();
      await fetch(BASE + '/feedback', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ request_id: response.headers.get('x-request-id'), score: correct ? 1 : 0 }),
      });
    } catch (e) {
      traffic.failed++;
      await sleep(100);
    }
  }
}

function startTraffic(users = 24) {
  traffic.stop = false;
  return Promise.all(Array.from({ length: users }, (_, u) => user(u)));
}

// Prints the timeline as the rollout moves; resolves when it finishes (or pauses).
async function follow(route, { until = ['completed', 'aborted'], timeoutMs = 150000, onStatus } = {}) {
  const deadline = Date.now() + timeoutMs;
  let st;
  while (Date.now() < deadline) {
    st = await admin('GET', `/admin/v1/rollouts/${route}`);
    if (onStatus) await onStatus(st);
    if (until.includes(st.status)) return st;
    await sleep(400);
  }
  return st;
}

function evalGate(candidate, baseline) {
  // The eval gate: a small GSM8K suite through the real request path, paired statistics.
  const suite = path.join(root, 'examples/demo/eval-gsm8k-200.yaml');
  const r = spawnSync(BIN, ['eval', 'run', '--suite', suite, '--release', candidate, '--baseline', baseline,
    '--config', path.join(root, 'examples/demo/gateway.yaml'), '--upstream', `mock=${MOCK}/v1`,
    '--concurrency', '32', '--quiet', '--data-dir', DATA], { cwd: root, encoding: 'utf8' });
  const lines = (r.stdout + r.stderr).trim().split('\n').filter((l) => l.trim());
  for (const l of lines.slice(-6)) say(`  ${l}`);
  return r.status;
}

async function main() {
  console.log('\n== the rollout story, as the incident timeline records it (UTC) ==');
  const v1 = sluice('release', 'create', 'examples/math-tutor/release-v1.yaml');
  const v2 = sluice('release', 'create', 'examples/math-tutor/release-v2.yaml');
  const v3 = sluice('release', 'create', 'examples/math-tutor/release-v3-newstack.yaml');
  sluice('route', 'promote', 'math-tutor', v1, '--reason', 'demo baseline');
  say(`stable: ${v1} (6B verifier, prompt v1, 39.0% on GSM8K)`);
  say(`candidate: ${v2} (175B verifier, prompt v2, 56.3% on GSM8K)`);
  say(`second candidate: ${v3} (v2 on a new serving stack)`);

  say('eval gate: sluice eval run (GSM8K, 200 problems, candidate vs stable, paired statistics)');
  const evalStatus = evalGate(v2, v1);
  const override = evalStatus !== 0 ? ['--override', '--reason', 'demo: eval gate did not pass or could not run'] : [];
  if (evalStatus !== 0) say(`eval gate exit code ${evalStatus}: starting with an audited override instead`);

  const running = startTraffic();
  await sleep(2000);
  say(`rollout of ${v2}: shadow 50% -> canary 20% -> 50% -> sign-off -> 100%, gates checked after every request`);
  say(sluice('rollout', 'start', 'math-tutor', '--to', v2, '--spec', 'examples/demo/rollout-v2.yaml', ...override,
    ...(override.length ? [] : ['--reason', 'demo'])));
  // Every route needs a person's sign-off before 100% (the default policy). The demo's
  // operator reads the gates, tries to skip the sign-off (refused), then approves.
  let st2 = await follow('math-tutor', { until: ['awaiting_approval', 'completed', 'aborted'] });
  if (st2.status === 'awaiting_approval') {
    const skip = spawnSync(BIN, ['rollout', 'promote', 'math-tutor', '--data-dir', DATA], { cwd: root, encoding: 'utf8' });
    say(`sluice rollout promote (no sign-off): refused: ${(skip.stderr || skip.stdout).trim().slice(0, 120)}`);
    say(sluice('rollout', 'approve', 'math-tutor', '--reason', 'demo: gates pass, shadow and canary look right'));
    st2 = await follow('math-tutor');
  }
  say(`shadow: ${st2.shadow.pairs} mirrored pairs, agreement ${(st2.shadow.agreement * 100).toFixed(1)}%, ` +
      `latency delta ${st2.shadow.latency_delta_ms.toFixed(0)} ms, refusal delta ${st2.shadow.refusal_delta}`);
  say(`live: stable feedback ${st2.live.stable.feedback_mean.toFixed(3)} (n=${st2.live.stable.feedback_n}), ` +
      `candidate ${st2.live.candidate.feedback_mean.toFixed(3)} (n=${st2.live.candidate.feedback_n})`);
  const routes = await admin('GET', '/admin/v1/routes');
  const stable = routes.routes.find((r) => r.name === 'math-tutor')?.stable_release;
  say(`rollout ${st2.status}; route math-tutor now serves ${stable}`);

  // The second candidate: evals pass (nothing is wrong yet), then its stack starts failing.
  const hook = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      const j = JSON.parse(b);
      say(`webhook received: ${j.event} for ${j.rollout}: ${j.message.slice(0, 100)}`);
      res.end('ok');
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const spec3 = path.join(mkdtempSync(path.join(os.tmpdir(), 'sluice-demo-')), 'rollout-v3.yaml');
  writeFileSync(spec3, readFileSync(path.join(here, 'rollout-v3.yaml'), 'utf8')
    .replace('DEMO_HOOK_PORT', String(hook.address().port)));
  say(`rollout of ${v3}: canary 20%, guardrail "error_rate <= stable + 0.02"`);
  say(sluice('rollout', 'start', 'math-tutor', '--to', v3, '--spec', spec3, '--override', '--reason',
    'demo: same model and prompt as the evaluated v2, new serving stack'));
  const failedBefore = traffic.failed;
  let injected = false;
  const st3 = await follow('math-tutor', {
    onStatus: async (st) => {
      if (!injected && st.live?.candidate?.requests >= 40) {
        injected = true;
        await fetch(`${MOCK}/mock/faults`, {
          method: 'POST',
          body: JSON.stringify({ model: 'gsm8k-175b-verification-newstack', error_rate: 0.3 }),
        });
        say('fault injected: the new stack now fails 30% of its requests');
      }
    },
  });
  await sleep(1500);  // the rollback_settled event comes a second after the decision
  traffic.stop = true;
  await running;
  hook.close();
  say(`rollout ${st3.status}: ${st3.reason}`);
  say(`client requests: ${traffic.ok} answered, ${traffic.failed - failedBefore} failed during the bad canary, ` +
      `${traffic.failed} failed overall (candidate failures fall back to the stable release)`);
  say(`answers by release: ${JSON.stringify(traffic.byRelease)}`);
  await fetch(`${MOCK}/mock/faults`, { method: 'DELETE' });
  storyDone = true;
  await poller;
  await pollTimeline(true);
  console.log(`\n  sluice incident timeline --route math-tutor --data-dir ${DATA}    # this timeline again`);
  console.log(`  sluice incident timeline --route math-tutor --json --data-dir ${DATA}    # with every number (gate intervals, n)`);
  console.log(`  sluice rollout status math-tutor --data-dir ${DATA}    # the rollout's state and evidence`);
}

main().catch((e) => {
  console.error('demo story failed:', e);
  process.exit(1);
});
