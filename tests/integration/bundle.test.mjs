// bundle.test.mjs: a release moved from staging to production with its evidence
// (`sluice release export|verify|import`, docs/environments.md).
//
//  - round trip: export from the staging store, import into another store: the same id, the
//    same eval evidence (as the staging environment's), the same answers served through the
//    official OpenAI client by a gateway on each store;
//  - a bundle altered by one byte (in any of its files) is refused, naming the file, and
//    nothing is imported; a signed bundle checked with another key is refused;
//  - promotion: a production route whose policy requires staging evidence refuses a rollout of
//    a release that passed only production's own eval gate, and allows it once the bundle with
//    the staging evidence is imported; imported runs alone never pass production's gate.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';

import { REPO, SLUICE_BIN, ms, runProcess, startGateway, startMock, tempDir } from './harness.mjs';

const HAVE_DATA = existsSync(path.resolve(REPO, '../shared/data/xstest/prompts.csv'));

const show = (r) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function sluice(args, env = {}) {
  return runProcess(SLUICE_BIN, args, { cwd: REPO, env, timeout: ms(120000) });
}

async function ok(args, env) {
  const r = await sluice(args, env);
  assert.equal(r.code, 0, `sluice ${args.join(' ')}\n${show(r)}`);
  return r.stdout;
}

// Flips one bit of one byte in the middle of `file`.
function flipByte(file) {
  const b = readFileSync(file);
  const i = Math.floor(b.length / 2);
  b[i] ^= 0x01;
  writeFileSync(file, b);
}

describe('release bundles between environments', { skip: !HAVE_DATA && 'needs ../shared/data' }, () => {
  let mock;
  let gatewayYaml;
  let staging;
  let production;
  let bundle;
  const rel = {};

  before(async () => {
    mock = await startMock({ args: ['--config', 'examples/evals/mock.yaml', '--threads', '1'], cwd: REPO });
    const out = tempDir('sluice-bundle-out-');
    gatewayYaml = path.join(out, 'gateway.yaml');
    writeFileSync(gatewayYaml, readFileSync(path.join(REPO, 'examples/evals/gateway.yaml'), 'utf8')
      .replace('http://127.0.0.1:9100/v1', `${mock.url}/v1`));
    staging = tempDir('sluice-staging-');
    production = tempDir('sluice-production-');
    bundle = path.join(out, 'bundle');
    for (const [k, m] of [['smoke', 'smoke.yaml'], ['smoke2', 'smoke-prompt-v2.yaml']])
      rel[k] = /rel_[0-9a-f]{8}/.exec(await ok(['release', 'create', `examples/evals/releases/${m}`, '--data-dir', staging]))[0];
    // Staging: the candidate passes the smoke suite against the stable release.
    const r = await sluice(['eval', 'run', '--suite', 'examples/evals/smoke.yaml', '--release', rel.smoke, '--baseline',
      rel.smoke2, '--config', gatewayYaml, '--data-dir', staging]);
    assert.equal(r.code, 0, show(r));
  });

  after(async () => {
    if (mock) await mock.proc.stop();
  });

  test('export writes a bundle that verifies; export needs an environment', async () => {
    const none = await sluice(['release', 'export', rel.smoke, '--out', path.join(bundle, '..', 'x'), '--data-dir', staging],
      { SLUICE_ENVIRONMENT: '' });
    assert.equal(none.code, 1, show(none));
    assert.match(none.stderr, /--environment/);
    const text = await ok(['release', 'export', rel.smoke.slice(0, 8), '--out', bundle, '--environment', 'staging',
      '--data-dir', staging]);
    assert.match(text, new RegExp(`exported ${rel.smoke} .*1 eval run`));
    const files = readdirSync(bundle, { recursive: true }).map(String).sort();
    assert.ok(files.includes('bundle.json') && files.includes('release.json'), files.join(' '));
    assert.ok(files.some((f) => /^blobs\/[0-9a-f]{64}$/.test(f)), 'the prompt travels by hash');
    assert.equal(files.filter((f) => /^evals\/.+\.json$/.test(f)).length, 1);
    const manifest = JSON.parse(readFileSync(path.join(bundle, 'bundle.json'), 'utf8'));
    assert.equal(manifest.release, rel.smoke);
    assert.equal(manifest.environment, 'staging');
    assert.match(await ok(['release', 'verify', bundle]), /ok: release .* from staging/);
    // Exporting over an existing bundle is refused.
    const again = await sluice(['release', 'export', rel.smoke, '--out', bundle, '--environment', 'staging', '--data-dir', staging]);
    assert.equal(again.code, 1, show(again));
  });

  test('a bundle altered by one byte is refused, naming the file, and nothing is imported', async () => {
    const files = readdirSync(bundle, { recursive: true }).map(String)
      .filter((f) => !['blobs', 'evals'].includes(f)).sort();
    const target = tempDir('sluice-tampered-store-');
    for (const f of files) {
      const copy = tempDir('sluice-tampered-');
      cpSync(bundle, copy, { recursive: true });
      flipByte(path.join(copy, f));
      const r = await sluice(['release', 'import', copy, '--data-dir', target]);
      assert.equal(r.code, 1, `${f}: ${show(r)}`);
      assert.ok(r.stderr.includes(f), `the error names ${f}: ${r.stderr}`);
    }
    // A file slipped in is refused too.
    const extra = tempDir('sluice-tampered-');
    cpSync(bundle, extra, { recursive: true });
    writeFileSync(path.join(extra, 'evals', 'forged.json'), '{}');
    const r = await sluice(['release', 'import', extra, '--data-dir', target]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /evals\/forged\.json: not listed/);
    const list = await ok(['release', 'list', '--data-dir', target]);
    assert.ok(!list.includes(rel.smoke), `nothing was imported:\n${list}`);
  });

  test('signed bundles: the right key verifies, another key or no signature is refused', async () => {
    const signed = path.join(tempDir('sluice-signed-'), 'b');
    await ok(['release', 'export', rel.smoke, '--out', signed, '--environment', 'staging', '--data-dir', staging],
      { SLUICE_BUNDLE_KEY: 'k1-staging-to-prod' });
    assert.match(await ok(['release', 'verify', signed], { SLUICE_BUNDLE_KEY: 'k1-staging-to-prod' }), /signature ok/);
    const wrong = await sluice(['release', 'verify', signed], { SLUICE_BUNDLE_KEY: 'another-key' });
    assert.equal(wrong.code, 1, show(wrong));
    assert.match(wrong.stderr, /bundle\.json: signature does not match/);
    const unsigned = await sluice(['release', 'verify', bundle, '--require-signature'], { SLUICE_BUNDLE_KEY: '' });
    assert.equal(unsigned.code, 1, show(unsigned));
  });

  test('promotion: production refuses a rollout without staging evidence and allows it with the bundle', async () => {
    // Production: the stable release, a policy that wants the smoke suite passed in staging.
    await ok(['release', 'create', 'examples/evals/releases/smoke-prompt-v2.yaml', '--data-dir', production]);
    await ok(['route', 'promote', 'assistant-smoke', rel.smoke2, '--data-dir', production]);
    const pol = await ok(['route', 'policy', 'assistant-smoke', '--evidence-environment', 'staging', '--evidence-suites',
      'smoke', '--reason', 'staging first', '--data-dir', production]);
    assert.match(pol, /passed smoke in environment 'staging'/);

    // Imported alone, the staging run is not production's eval pass.
    assert.match(await ok(['release', 'import', bundle, '--data-dir', production]),
      new RegExp(`imported ${rel.smoke} .*from environment staging.*1 eval run\\(s\\) added`));
    let r = await sluice(['rollout', 'start', 'assistant-smoke', '--to', rel.smoke, '--data-dir', production]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /has no passing eval run/);

    // Production's own gate passes; the staging requirement is met by the imported run.
    r = await sluice(['eval', 'run', '--suite', 'examples/evals/smoke.yaml', '--release', rel.smoke, '--baseline',
      rel.smoke2, '--config', gatewayYaml, '--data-dir', production]);
    assert.equal(r.code, 0, show(r));
    const runs = JSON.parse(await ok(['eval', 'list', '--release', rel.smoke, '--json', '--data-dir', production])).eval_runs;
    assert.deepEqual(runs.map((x) => x.environment).sort(), ['', 'staging']);
    assert.ok(runs.every((x) => x.passed && x.suite === 'smoke'));
    await ok(['rollout', 'start', 'assistant-smoke', '--to', rel.smoke, '--data-dir', production]);
    await ok(['rollout', 'abort', 'assistant-smoke', '--reason', 'test over', '--data-dir', production]);

    // Re-importing changes nothing.
    assert.match(await ok(['release', 'import', bundle, '--data-dir', production]), /0 eval run\(s\) added, 1 already present/);
    const audit = JSON.parse(await ok(['audit', '--data-dir', production])).audit;
    assert.equal(audit.filter((e) => e.action === 'eval.import').length, 1);
  });

  test('a second release without staging evidence is refused even after passing production\'s gate', async () => {
    const prod = tempDir('sluice-production-2-');
    await ok(['release', 'create', 'examples/evals/releases/smoke-prompt-v2.yaml', '--data-dir', prod]);
    await ok(['release', 'create', 'examples/evals/releases/smoke.yaml', '--data-dir', prod]);
    await ok(['route', 'promote', 'assistant-smoke', rel.smoke2, '--data-dir', prod]);
    await ok(['route', 'policy', 'assistant-smoke', '--evidence-environment', 'staging', '--data-dir', prod]);
    const e = await sluice(['eval', 'run', '--suite', 'examples/evals/smoke.yaml', '--release', rel.smoke, '--baseline',
      rel.smoke2, '--config', gatewayYaml, '--data-dir', prod]);
    assert.equal(e.code, 0, show(e));
    const r = await sluice(['rollout', 'start', 'assistant-smoke', '--to', rel.smoke, '--data-dir', prod]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /no evidence from environment 'staging'/);
    // No override skips another environment's evidence.
    const o = await sluice(['rollout', 'start', 'assistant-smoke', '--to', rel.smoke, '--override', '--reason', 'hurry',
      '--data-dir', prod]);
    assert.equal(o.code, 1, show(o));
  });

  test('the imported release serves the same answers as in staging', async () => {
    const fresh = tempDir('sluice-imported-');
    await ok(['release', 'import', bundle, '--data-dir', fresh]);
    await ok(['route', 'promote', 'assistant-smoke', rel.smoke, '--data-dir', fresh]);
    await ok(['route', 'promote', 'assistant-smoke', rel.smoke, '--data-dir', staging]);
    const config = readFileSync(gatewayYaml, 'utf8');
    const answers = [];
    for (const dataDir of [staging, fresh]) {
      const gw = await startGateway({ config, dataDir });
      try {
        const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-unused', maxRetries: 0 });
        const got = [];
        for (const q of ['What is the capital of France?', 'What is 6 times 7?']) {
          const c = await client.chat.completions.create({ model: 'assistant-smoke', messages: [{ role: 'user', content: q }] });
          assert.equal(c.choices[0].finish_reason, 'stop');
          got.push(c.choices[0].message.content);
        }
        answers.push(got);
      } finally {
        await gw.stop();
      }
    }
    assert.ok(answers[0][0].includes('Paris'), answers[0][0]);
    assert.deepEqual(answers[1], answers[0]);
  });
});
