// apply.test.mjs: declared state (issue 19) — `sluice diff -f DIR` and `sluice apply -f DIR`
// driving the real binary against a data dir while a gateway runs on it:
//   - diff prints the plan (exit 2), apply does exactly it, audited with the files' git commit;
//     the running gateway serves the flag over OFREP, accepts the tenant's key (given as an
//     env: reference) and reports the declared stable release;
//   - a second apply changes nothing and diff exits 0;
//   - a bad file is refused with file:line:column and nothing is applied;
//   - a literal secret is refused;
//   - two concurrent applies of the same files are serialized: one applies, the other finds
//     nothing left to do.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SLUICE_BIN, USER_MSG, ms, parseRawResponse, rawRequest, requestJSON, runProcess, startGateway, startMock, tempDir, waitFor } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXAMPLE = path.resolve(HERE, '../../examples/math-tutor');
const ACME_KEY = 'sk-apply-test-acme-0123456789';

async function sluice(args, env) {
  const r = await runProcess(SLUICE_BIN, args, { timeout: ms(30_000), env });
  const san = r.stderr.match(/(ERROR: (Address|Leak)Sanitizer|runtime error:)[^\n]*/);
  if (san) throw new Error(`sanitizer report in sluice ${args.join(' ')}: ${san[0]}\n${r.stderr.slice(0, 4000)}`);
  return r;
}

describe('sluice diff and apply', { timeout: ms(120_000) }, () => {
  let mock;
  let gw;
  let d;
  let repo;
  let v1;
  let v2;
  let commit;
  const env = { ACME_API_KEY: ACME_KEY };
  const run = (cmd, ...args) => sluice([cmd, '-f', path.join(repo, 'production'), '--data-dir', d, ...args], env);

  before(async () => {
    mock = await startMock({ config: { seed: 7, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8] } } });
    d = tempDir('sluice-apply-');
    for (const [i, f] of ['release-v1.yaml', 'release-v2.yaml'].entries()) {
      const r = await sluice(['release', 'create', path.join(EXAMPLE, f), '--data-dir', d]);
      assert.equal(r.code, 0, r.stderr);
      const id = /^(rel_[0-9a-f]{8})/.exec(r.stdout)[1];
      if (i === 0) v1 = id;
      else v2 = id;
    }
    assert.equal((await sluice(['route', 'promote', 'math-tutor', v1, '--data-dir', d])).code, 0);
    gw = await startGateway({
      dataDir: d,
      config: {
        upstreams: [{ name: 'm', url: `${mock.url}/v1` }],
        routes: [{ name: 'bot', upstream: 'm', model: 'm' }],
        api_keys: [{ tenant: 'ops', key_sha256: '0'.repeat(64) }],
      },
    });
    repo = tempDir('sluice-apply-repo-');
    mkdirSync(path.join(repo, 'production'));
    writeFileSync(
      path.join(repo, 'production', 'routes.yaml'),
      `kind: RoutePolicy\nname: math-tutor\nspec:\n  require_approval_above: 50\n  eval_suite: gsm8k\n---\n` +
        `kind: RouteRelease\nname: math-tutor\nspec:\n  stable: ${v2}\n`,
    );
    writeFileSync(
      path.join(repo, 'production', 'flags.yaml'),
      'kind: Flag\nname: new-checkout\nspec:\n  state: ENABLED\n  variants: {on: true, off: false}\n  defaultVariant: "on"\n',
    );
    writeFileSync(
      path.join(repo, 'production', 'tenants.yaml'),
      'kind: Tenant\nname: acme\nspec:\n  rpm: 600\n  keys:\n    - key_ref: env:ACME_API_KEY\n      label: prod\n',
    );
    const git = (...a) => execFileSync('git', ['-C', repo, ...a], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } });
    git('init', '-q');
    git('add', '.');
    git('commit', '-qm', 'state');
    commit = git('rev-parse', 'HEAD').trim();
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  async function ofrep(key) {
    const body = JSON.stringify({ context: { targetingKey: 'u1' } });
    const r = await rawRequest(
      gw.port,
      `POST /ofrep/v1/evaluate/flags/${key} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ACME_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      { timeout: ms(3000) },
    );
    const res = parseRawResponse(r.text);
    return { status: res.status, json: res.body ? JSON.parse(res.body) : null };
  }
  const admin = async (p) =>
    (await requestJSON('GET', `${gw.adminUrl}${p}`, { headers: { authorization: `Bearer ${gw.adminToken()}` } })).json;

  test('diff shows the plan, apply does it with the git commit, the gateway serves it, a second apply changes nothing', async () => {
    const plan = await run('diff');
    assert.equal(plan.code, 2, plan.stderr);
    assert.match(plan.stdout, /^\+ Tenant acme/m);
    assert.match(plan.stdout, /^\+ RoutePolicy math-tutor/m);
    assert.match(plan.stdout, /^\+ Flag new-checkout/m);
    assert.match(plan.stdout, new RegExp(`^~ RouteRelease math-tutor[^\\n]*\\n    stable: "${v1}" -> "${v2}"`, 'm'));
    assert.match(plan.stdout, /^Plan: 3 to create, 1 to change, 0 to remove\.$/m);
    assert.doesNotMatch(plan.stdout, new RegExp(ACME_KEY));

    const a = await run('apply', '--actor', 'ci:test');
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout.split('Apply complete')[0], plan.stdout, 'apply does the plan diff printed');

    // The running gateway sees it: the tenant's key works, the flag is served, the release is stable.
    await waitFor(async () => (await ofrep('new-checkout')).json?.value === true, { what: 'flag served to acme', timeout: ms(5000) });
    const routes = await admin('/admin/v1/routes');
    assert.equal(routes.routes.find((r) => r.name === 'math-tutor').stable_release, v2);
    const audit = (await admin('/admin/v1/audit?limit=100')).audit;
    const mine = audit.filter((e) => e.actor === 'ci:test');
    assert.ok(mine.length >= 5, JSON.stringify(mine));
    for (const e of mine) assert.match(e.reason, new RegExp(`at git ${commit}$`), JSON.stringify(e));

    const again = await run('apply', '--actor', 'ci:test');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /No changes/);
    const diff = await run('diff');
    assert.equal(diff.code, 0, diff.stdout);
    assert.match(diff.stdout, /Plan: 0 to create, 0 to change, 0 to remove\./);
  });

  test('a bad file is refused with file:line:column and nothing is applied; so is a literal secret', async () => {
    const f = path.join(repo, 'production', 'flags.yaml');
    writeFileSync(f, 'kind: Flag\nname: new-checkout\nspec:\n  state: DISABLED\n  variants: {on: true, off: false}\n  defaultVariant: "on"\n---\nkind: Flagg\nname: x\n');
    const t = path.join(repo, 'production', 'tenants.yaml');
    writeFileSync(t, 'kind: Tenant\nname: acme\nspec:\n  rpm: 600\n  keys:\n    - key: sk-literal-secret-in-git-0123\n');
    for (const cmd of ['diff', 'apply']) {
      const r = await run(cmd);
      assert.equal(r.code, 1, r.stdout);
      assert.ok(r.stderr.includes(`${f}:8:7: unknown kind 'Flagg'`), r.stderr);
      assert.ok(r.stderr.includes(`${t}:6:7: a literal secret is refused`), r.stderr);
      assert.match(r.stderr, /nothing was applied/);
      assert.equal(r.stdout, '');
    }
    assert.equal((await ofrep('new-checkout')).json.value, true, 'the flag is still enabled');
  });

  test('two concurrent applies are serialized: one applies, the other finds nothing to do', async () => {
    const dir = path.join(repo, 'production');
    writeFileSync(path.join(dir, 'flags.yaml'), 'kind: Flag\nname: new-checkout\nspec:\n  state: DISABLED\n  variants: {on: true, off: false}\n  defaultVariant: "on"\n');
    writeFileSync(path.join(dir, 'tenants.yaml'), 'kind: Tenant\nname: beta\nspec:\n  rpm: 60\n');
    const [x, y] = await Promise.all([run('apply', '--actor', 'ci:one'), run('apply', '--actor', 'ci:two')]);
    assert.equal(x.code, 0, x.stderr);
    assert.equal(y.code, 0, y.stderr);
    const applied = [x, y].filter((r) => /Apply complete: 1 created, 1 changed/.test(r.stdout));
    const idle = [x, y].filter((r) => /No changes/.test(r.stdout));
    assert.equal(applied.length, 1, x.stdout + y.stdout);
    assert.equal(idle.length, 1, x.stdout + y.stdout);
    const audit = (await admin('/admin/v1/audit?limit=200')).audit;
    assert.equal(audit.filter((e) => e.action === 'gitops.apply' && /1 to create, 1 to change/.test(e.after)).length, 1);
    assert.match(audit.find((e) => e.action === 'gitops.apply').reason, new RegExp(`at git ${commit}-dirty$`));
  });
});
