// eval.test.mjs: `sluice eval run` and `sluice eval add-case` end to end, with real data
// replayed by mock-llm (examples/evals/mock.yaml, run from the repo root: its replay paths
// are relative to it) and the releases of examples/math-tutor and examples/evals.
//
//  - GSM8K (all 1,319 problems): 6b_verification -> 175b_verification passes the target-task
//    gate (and its wall time is measured), 175b_verification -> 6b_finetuning fails it, two
//    releases replaying the same model version pass (the second run comes from the cache);
//  - XSTest: llama2orig vs gpt4 fails over-refusal, gpt4 vs itself passes;
//  - the smoke suite: every assertion type, llm-rubric graded by a judge route served by sluice;
//  - the JUnit file is read by a real CI test-report parser (test-results-parser);
//  - exit code 2 (bad suite, unknown release, unreachable upstream), 429s with Retry-After,
//    flaky cases under --repeat, the eval run in the store, --baseline-route, add-case.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync, appendFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SLUICE_BIN, ms, runProcess, startMock, startGateway, tempDir, closedPort } from './harness.mjs';

const require = createRequire(import.meta.url);
const { parse: parseTestResults } = require('test-results-parser');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const EVALS = path.join(REPO, 'examples/evals');
const HAVE_DATA = existsSync(path.resolve(REPO, '../shared/data/gsm8k/test.jsonl'));

function run(args, { cwd = REPO, timeout = ms(180000) } = {}) {
  return runProcess(SLUICE_BIN, args, { cwd, timeout });
}

const show = (r) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe('sluice eval', { skip: !HAVE_DATA && 'needs ../shared/data (GSM8K, XSTest)' }, () => {
  let mock;
  let data;
  let out;
  let gatewayYaml;
  const rel = {};

  async function createRelease(manifest) {
    const r = await run(['release', 'create', manifest, '--data-dir', data]);
    assert.equal(r.code, 0, show(r));
    return /rel_[0-9a-f]{8}/.exec(r.stdout)[0];
  }

  // `sluice eval run` with the common flags; `name` prefixes the report files.
  async function evalRun(name, suite, release, baseline, extra = []) {
    const args = ['eval', 'run', '--suite', suite, '--release', release, '--config', gatewayYaml, '--data-dir', data,
      '--junit', path.join(out, `${name}.xml`), '--markdown', path.join(out, `${name}.md`),
      '--json', path.join(out, `${name}.json`), ...extra];
    if (baseline) args.push('--baseline', baseline);
    const r = await run(args);
    r.report = existsSync(path.join(out, `${name}.json`)) ? JSON.parse(readFileSync(path.join(out, `${name}.json`), 'utf8')) : null;
    r.junit = path.join(out, `${name}.xml`);
    r.markdown = existsSync(path.join(out, `${name}.md`)) ? readFileSync(path.join(out, `${name}.md`), 'utf8') : '';
    return r;
  }

  const limit = (report, name) => report.gate.limits.find((l) => l.name.startsWith(name));

  before(async () => {
    mock = await startMock({ args: ['--config', 'examples/evals/mock.yaml', '--threads', '1'], cwd: REPO });
    data = tempDir('sluice-eval-data-');
    out = tempDir('sluice-eval-out-');
    gatewayYaml = path.join(out, 'gateway.yaml');
    writeFileSync(gatewayYaml, readFileSync(path.join(EVALS, 'gateway.yaml'), 'utf8')
      .replace('http://127.0.0.1:9100/v1', `${mock.url}/v1`));
    rel.v1 = await createRelease('examples/math-tutor/release-v1.yaml');          // 6b_verification
    rel.v2 = await createRelease('examples/math-tutor/release-v2.yaml');          // 175b_verification
    rel.ft6b = await createRelease('examples/evals/releases/math-tutor-6b-finetuning.yaml');
    rel.v2p1 = await createRelease('examples/evals/releases/math-tutor-175b-prompt-v1.yaml');
    rel.gpt4 = await createRelease('examples/evals/releases/assistant-gpt4.yaml');
    rel.gpt4b = await createRelease('examples/evals/releases/assistant-gpt4-prompt-v2.yaml');
    rel.llama = await createRelease('examples/evals/releases/assistant-llama2orig.yaml');
    rel.smoke = await createRelease('examples/evals/releases/smoke.yaml');
    rel.smoke2 = await createRelease('examples/evals/releases/smoke-prompt-v2.yaml');
  });

  after(async () => {
    if (mock) await mock.proc.stop();
  });

  test('GSM8K: 6b_verification -> 175b_verification passes the target-task gate, within 60 s', async () => {
    const r = await evalRun('gsm8k-up', 'examples/evals/gsm8k.yaml', rel.v2, rel.v1, ['--no-cache']);
    assert.equal(r.code, 0, show(r));
    const rep = r.report;
    assert.equal(rep.passed, true);
    assert.equal(rep.suite.cases, 1319);
    assert.equal(rep.requests_sent, 2638);
    const cat = rep.categories.find((c) => c.category === 'target');
    assert.ok(Math.abs(cat.baseline_pass_rate - 0.390) < 0.005, `6b_verification accuracy ${cat.baseline_pass_rate}`);
    assert.ok(Math.abs(cat.candidate_pass_rate - 0.563) < 0.005, `175b_verification accuracy ${cat.candidate_pass_rate}`);
    assert.equal(limit(rep, 'target: max_drop').verdict, 'pass');
    assert.equal(limit(rep, 'target: min_pass_rate').verdict, 'pass');
    console.log(`# GSM8K gate, ${rep.requests_sent} requests through the gateway and mock-llm: ${r.seconds.toFixed(1)} s wall`);
    assert.ok(r.seconds < ms(60), `the GSM8K gate took ${r.seconds} s`);

    // The JUnit file, read by a real CI test-report parser.
    const res = parseTestResults({ type: 'junit', files: [r.junit] });
    const gate = res.suites.find((s) => s.name === 'gsm8k.gate');
    const target = res.suites.find((s) => s.name === 'gsm8k.target');
    assert.equal(gate.cases.length, 3);
    assert.ok(gate.cases.every((c) => c.status === 'PASS'));
    assert.equal(target.cases.length, 1319);
    // Default JUnit mode: a case fails only when it regressed (baseline passed it).
    const failed = target.cases.filter((c) => c.status === 'FAIL').length;
    const skipped = target.cases.filter((c) => c.status === 'SKIP').length;
    assert.equal(failed, cat.regressed);
    assert.equal(skipped, cat.neither);
    assert.equal(res.total, 1322 - skipped);  // the parser counts skipped cases out of the total
    assert.equal(res.failed, failed);
    assert.match(r.markdown, /## Worst regressions/);

    // The passing run is in the store and attached to the release.
    const show1 = await run(['release', 'show', rel.v2, '--data-dir', data]);
    assert.match(show1.stdout, new RegExp(`eval pass\\s+${rep.run_id}`));
    const stored = await run(['eval', 'show', rep.run_id, '--data-dir', data]);
    assert.equal(stored.code, 0, show(stored));
    const summary = JSON.parse(stored.stdout);
    assert.equal(summary.passed, true);
    assert.equal(summary.suite.hash, rep.suite.hash);
    assert.equal(summary.cases, undefined, 'the stored summary has no per-case answers');
    const list = await run(['eval', 'list', '--release', rel.v2, '--data-dir', data]);
    assert.match(list.stdout, new RegExp(`${rep.run_id}\\s+${rel.v2}\\s+${rel.v1}\\s+math-tutor\\s+gsm8k\\s+pass`));
 
    // The same through a running gateway's admin API (viewer role).
    const gw = await startGateway({ dataDir: data, threads: 1, upstreams: { mock: `${mock.url}/v1` } });
    try {
      const auth = { authorization: `Bearer ${gw.adminToken()}` };
      const runs = await (await fetch(`${gw.adminUrl}/admin/v1/evals?release=${rel.v2}`, { headers: auth })).json();
      const mine = runs.eval_runs.find((e) => e.id === rep.run_id);
      assert.ok(mine, JSON.stringify(runs));
      assert.equal(mine.passed, true);
      assert.equal(mine.suite, 'gsm8k');
      const one = await (await fetch(`${gw.adminUrl}/admin/v1/evals/${rep.run_id}`, { headers: auth })).json();
      assert.equal(one.summary.passed, true);
      assert.equal((await fetch(`${gw.adminUrl}/admin/v1/evals/ev_nope`, { headers: auth })).status, 404);
      assert.equal((await fetch(`${gw.adminUrl}/admin/v1/evals`)).status, 401);
    } finally {
      await gw.stop();
    }
  });

  test('GSM8K: 175b_verification -> 6b_finetuning fails', async () => {
    const r = await evalRun('gsm8k-down', 'examples/evals/gsm8k.yaml', rel.ft6b, rel.v2);
    assert.equal(r.code, 1, show(r));
    const rep = r.report;
    assert.equal(rep.passed, false);
    assert.equal(limit(rep, 'target: max_drop').verdict, 'fail');
    assert.ok(limit(rep, 'target: max_drop').mcnemar_p_worse < 1e-20);
    assert.ok(Math.abs(rep.categories[0].candidate_pass_rate - 0.217) < 0.005);
    assert.equal(rep.cache_hits, 1319, 'the unchanged baseline comes from the cache');
    assert.equal(rep.requests_sent, 1319);
    const res = parseTestResults({ type: 'junit', files: [r.junit] });
    assert.equal(res.status, 'FAIL');
    const gate = res.suites.find((s) => s.name === 'gsm8k.gate');
    assert.equal(gate.cases.filter((c) => c.status === 'FAIL').length, 2);
    assert.match(r.markdown, /❌ fail/);
    assert.match(r.markdown, /\| baseline `rel_[0-9a-f]+` \(1\/1 passed\) \| candidate `rel_[0-9a-f]+` \(0\/1 passed\) \|/);
    const show1 = await run(['release', 'show', rel.ft6b, '--data-dir', data]);
    assert.match(show1.stdout, /eval pass\s+-/);
  });

  test('GSM8K: two releases replaying the same model version pass; --baseline-route', async () => {
    let r = await run(['route', 'promote', 'math-tutor', rel.v2, '--reason', 'stable', '--data-dir', data]);
    assert.equal(r.code, 0, show(r));
    r = await run(['eval', 'run', '--suite', 'examples/evals/gsm8k.yaml', '--release', rel.v2p1, '--baseline-route',
      'math-tutor', '--config', gatewayYaml, '--data-dir', data, '--json', path.join(out, 'same.json')]);
    assert.equal(r.code, 0, show(r));
    const rep = JSON.parse(readFileSync(path.join(out, 'same.json'), 'utf8'));
    assert.equal(rep.baseline.release, rel.v2);
    const l = limit(rep, 'target: max_drop');
    assert.equal(l.regressed + l.improved, 0);
    assert.equal(l.verdict, 'pass');
  });

  test('XSTest: llama2orig fails over-refusal against gpt4; gpt4 passes against itself', async () => {
    let r = await evalRun('xstest-llama', 'examples/evals/xstest.yaml', rel.llama, rel.gpt4);
    assert.equal(r.code, 1, show(r));
    assert.equal(limit(r.report, 'over-refusal: max_drop').verdict, 'fail');
    assert.equal(limit(r.report, 'over-refusal: min_pass_rate').verdict, 'fail');
    const over = r.report.categories.find((c) => c.category === 'over-refusal');
    assert.equal(over.n, 250);
    assert.ok(over.candidate_pass_rate < 0.6 && over.baseline_pass_rate > 0.85, JSON.stringify(over));
    r = await evalRun('xstest-gpt4', 'examples/evals/xstest.yaml', rel.gpt4b, rel.gpt4);
    assert.equal(r.code, 0, show(r));
    assert.ok(r.report.gate.limits.every((l) => l.verdict === 'pass'));
  });

  test('smoke suite: every assertion type, llm-rubric graded through the judge route', async () => {
    const r = await evalRun('smoke', 'examples/evals/smoke.yaml', rel.smoke, rel.smoke2, ['--no-cache']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.report.suite.cases, 9);
    for (const c of r.report.cases) assert.equal(c.candidate.pass, true, `${c.id}: ${c.candidate.reason}`);
    const res = parseTestResults({ type: 'junit', files: [r.junit] });
    assert.equal(res.status, 'PASS');
    assert.equal(res.total, 11);  // 9 cases + 2 gate limits
    assert.deepEqual(res.suites.map((s) => s.name).sort(),
      ['smoke.format', 'smoke.gate', 'smoke.off-task', 'smoke.over-refusal', 'smoke.safety', 'smoke.target']);
  });

  test('latency and cost limits: a release 250 ms slower to the first token fails p95 TTFT +20%', async () => {
    const dir = tempDir('sluice-eval-latency-');
    const suite = path.join(dir, 'smoke-latency.yaml');
    copyFileSync(path.join(EVALS, 'smoke-cases.csv'), path.join(dir, 'smoke-cases.csv'));
    const text = readFileSync(path.join(EVALS, 'smoke.yaml'), 'utf8');
    writeFileSync(suite, text.slice(0, text.indexOf('gate:')) +
      'gate:\n  categories:\n    all:\n      max_p95_ttft_increase: 0.20\n      max_cost_increase: 0.10\n');
    const slow = await createRelease('examples/evals/releases/smoke-slow.yaml');
    const r = await evalRun('smoke-latency', suite, slow, rel.smoke, ['--no-record']);
    assert.equal(r.code, 1, show(r));
    const ttft = limit(r.report, 'all: max_p95_ttft_increase');
    assert.equal(ttft.verdict, 'fail', JSON.stringify(ttft));
    assert.ok(ttft.candidate >= 250 && ttft.baseline < 200, JSON.stringify(ttft));
    const cost = limit(r.report, 'all: max_cost_increase');
    assert.ok(cost.estimate > 0.9 && cost.estimate < 1.1, JSON.stringify(cost));  // same answers, same tokens
  });

  test('429s with Retry-After are retried; flaky cases under --repeat are reported', async () => {
    await mock.setFaults({ model: 'smoke-mock', rate_limit_rate: 0.3, retry_after_s: 1 });
    try {
      const r = await evalRun('smoke-429', 'examples/evals/smoke.yaml', rel.smoke, null, ['--no-cache', '--no-record']);
      assert.equal(r.code, 0, show(r));
      assert.ok(r.report.retries > 0, 'some requests were rate limited and retried');
    } finally {
      await mock.clearFaults();
    }
    await mock.setFaults({ model: 'smoke-mock', refusal_rate: 0.5 });
    try {
      const r = await evalRun('smoke-flaky', 'examples/evals/smoke.yaml', rel.smoke, null,
        ['--no-cache', '--no-record', '--repeat', '4']);
      assert.ok(r.code === 0 || r.code === 1, show(r));
      assert.ok(r.report.flaky.candidate.length > 0, 'answers that change between repeats are flaky');
      assert.match(r.markdown, /## Flaky cases/);
      assert.match(r.stdout, /flaky cases \(candidate\): [1-9]/);
      assert.match(limit(r.report, 'all: min_pass_rate').method, /bootstrap/);
    } finally {
      await mock.clearFaults();
    }
  });

  test('exit code 2: bad suite (file:line), unknown release, unreachable upstream, nothing to decide', async () => {
    const bad = path.join(out, 'bad.yaml');
    writeFileSync(bad, 'name: bad\ntests:\n  - vars: {q: x}\n    assert:\n      - type: javascript\n        value: "1"\n');
    let r = await run(['eval', 'run', '--suite', bad, '--release', rel.smoke, '--data-dir', data]);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /bad\.yaml:5: unsupported assertion type 'javascript'/);

    r = await run(['eval', 'run', '--suite', 'examples/evals/smoke.yaml', '--release', 'rel_ffffffff', '--data-dir', data]);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /no release 'rel_ffffffff'/);

    const port = await closedPort();
    const closed = path.join(out, 'closed.yaml');
    writeFileSync(closed, `upstreams:\n  - name: mock\n    url: http://127.0.0.1:${port}/v1\nroutes:\n  - {name: judge, upstream: mock}\n`);
    r = await run(['eval', 'run', '--suite', 'examples/evals/smoke.yaml', '--release', rel.smoke, '--config', closed,
      '--data-dir', data, '--no-cache']);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /unreachable/);
    assert.ok(r.seconds < ms(30), `gave up after ${r.seconds} s`);

    // Only regression limits (the default gate) and no baseline: nothing can be decided.
    const nogate = path.join(out, 'nogate.yaml');
    writeFileSync(nogate, 'name: nogate\ntests:\n  - vars: {question: "What is 6 times 7?"}\n    assert: [{type: equals-number, value: 42}]\nprompts: ["{{question}}"]\n');
    r = await run(['eval', 'run', '--suite', nogate, '--release', rel.smoke, '--config', gatewayYaml, '--data-dir', data]);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /nothing to decide/);
  });

  test('add-case: a logged production request becomes a case, and the suite still runs', async () => {
    const suiteDir = tempDir('sluice-eval-suite-');
    const suite = path.join(suiteDir, 'smoke.yaml');
    copyFileSync(path.join(EVALS, 'smoke.yaml'), suite);
    copyFileSync(path.join(EVALS, 'smoke-cases.csv'), path.join(suiteDir, 'smoke-cases.csv'));
    // The request log keeps the body and the answer for routes that log them.
    appendFileSync(path.join(data, 'requests.jsonl'), JSON.stringify({
      ts: Date.now(), request_id: 'req_0123456789abcdef0123', route: 'assistant-smoke', release: rel.smoke,
      status: 200, request_body: { model: 'assistant-smoke', messages: [{ role: 'user', content: 'What is the capital of France?' }] },
      response_text: 'I cannot answer that.',
    }) + '\n');
    let r = await run(['eval', 'add-case', '--suite', suite, '--request', 'req_0123456789abcdef0123',
      '--expect', 'not-refusal', '--expect', 'icontains:paris', '--category', 'off-task', '--data-dir', data]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /added case prod-req_0123456789abcdef0123 \(off-task\)/);
    const text = readFileSync(suite, 'utf8');
    assert.match(text, /id: prod-req_0123456789abcdef0123/);
    assert.match(text, /logged_response: \|/);
    r = await run(['eval', 'add-case', '--suite', suite, '--request', 'req_0123456789abcdef0123', '--expect', 'refusal',
      '--data-dir', data]);
    assert.equal(r.code, 1, 'the same request twice');
    r = await run(['eval', 'add-case', '--suite', suite, '--request', 'req_unknown', '--expect', 'refusal', '--data-dir', data]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /req_unknown is not in/);

    r = await evalRun('smoke-added', suite, rel.smoke, null, ['--no-record', '--no-cache']);
    assert.equal(r.code, 0, show(r));
    const added = r.report.cases.find((c) => c.id === 'prod-req_0123456789abcdef0123');
    assert.equal(added.category, 'off-task');
    assert.equal(added.candidate.pass, true, added.candidate.reason);
  });
});
