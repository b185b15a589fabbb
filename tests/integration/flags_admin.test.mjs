// flags_admin.test.mjs: the control plane of flags (issue 13) — `sluice flag ...` and
// `sluice kill ...` on the store and through a running gateway (--admin), and the admin API
// behind them:
//   - set/show/list/enable/disable/delete, each audited, each served over OFREP: at once when
//     made through the admin API (published before the reply), within the store poll when made
//     by the CLI on the data dir;
//   - import of whole flagd files (merge, replace; flag-set metadata; $evaluators), export and
//     a round trip that changes nothing;
//   - bad input refused whole with the line and column (malformed JsonLogic, an unknown
//     operator, a $ref cycle, a release flag naming a missing release or another route's, an
//     oversized file), the running flags unchanged and nothing audited;
//   - kill switch commands: the flags they write, list, clear, roles, audit;
//   - the stale report: static, fully ramped, unchanged for long.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  SLUICE_BIN,
  USER_MSG,
  assertOpenAIError,
  ms,
  parseRawResponse,
  rawRequest,
  requestJSON,
  runProcess,
  sleep,
  startGateway,
  startMock,
  tempDir,
  waitFor,
} from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXAMPLE = path.resolve(HERE, '../../examples/math-tutor');
const sha256 = (s) => createHash('sha256').update(s).digest('hex');

const ADMIN_TOKEN = 'flags-admin-test-token-0123456789';
const OPERATOR_TOKEN = 'flags-operator-test-token-0123456789';
const VIEWER_TOKEN = 'flags-viewer-test-token-0123456789';
const KEY = 'sk-flags-acme';

// Runs the CLI; a sanitizer report fails the test even when the command succeeded.
async function sluice(args) {
  const r = await runProcess(SLUICE_BIN, args, { timeout: ms(30_000) });
  const san = r.stderr.match(/(ERROR: (Address|Leak)Sanitizer|runtime error:)[^\n]*/);
  if (san) throw new Error(`sanitizer report in sluice ${args.join(' ')}: ${san[0]}\n${r.stderr.slice(0, 4000)}`);
  return r;
}

const onOff = (defaultVariant = 'on', extra = {}) => ({
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant,
  ...extra,
});

describe('flags and kill switches: CLI and admin API', { timeout: ms(120_000) }, () => {
  let mock;
  let gw;
  let d;
  let v1;
  let v2;
  before(async () => {
    mock = await startMock({ config: { seed: 7, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 8] } } });
    d = tempDir('sluice-flags-admin-');
    // Releases of route math-tutor, for release flags (the route need not be served here).
    for (const [i, f] of ['release-v1.yaml', 'release-v2.yaml'].entries()) {
      const r = await sluice(['release', 'create', path.join(EXAMPLE, f), '--data-dir', d]);
      assert.equal(r.code, 0, r.stderr);
      const id = /^(rel_[0-9a-f]{8})/.exec(r.stdout)[1];
      if (i === 0) v1 = id;
      else v2 = id;
    }
    gw = await startGateway({
      dataDir: d,
      config: {
        upstreams: [{ name: 'm', url: `${mock.url}/v1` }],
        routes: [{ name: 'bot', upstream: 'm', model: 'm' }],
        api_keys: [{ tenant: 'acme', key_sha256: sha256(KEY) }],
        admin: {
          tokens: [
            { name: 'root', role: 'admin', token_sha256: sha256(ADMIN_TOKEN) },
            { name: 'ops', role: 'operator', token_sha256: sha256(OPERATOR_TOKEN) },
            { name: 'watcher', role: 'viewer', token_sha256: sha256(VIEWER_TOKEN) },
          ],
        },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  // ---- helpers

  const cli = (...args) => sluice([...args, '--data-dir', d, '--actor', 'cli:test']);
  const remote = (token, ...args) => sluice([...args, '--admin', gw.adminUrl, '--token', token]);
  async function ok(p, what) {
    const r = await p;
    assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }
  const cliJSON = (...args) => ok(cli(...args), `sluice ${args.join(' ')}`);
  const remoteJSON = (token, ...args) => ok(remote(token, ...args), `sluice ${args.join(' ')} --admin`);
  // A refused command: non-zero exit, the reason on stderr, nothing on stdout.
  async function refused(p, re) {
    const r = await p;
    assert.notEqual(r.code, 0, `should have been refused\nstdout: ${r.stdout}`);
    assert.match(r.stderr, re);
    assert.equal(r.stdout.trim(), '', 'nothing on stdout when refused');
    return r.stderr;
  }

  const admin = (method, p, body, token = OPERATOR_TOKEN) =>
    requestJSON(method, `${gw.adminUrl}${p}`, { body, headers: token ? { authorization: `Bearer ${token}` } : {} });
  async function adminOk(method, p, body, token) {
    const r = await admin(method, p, body, token);
    assert.equal(r.status, 200, `${method} ${p}: ${r.status} ${r.text}`);
    return r.json;
  }
  async function adminRefused(status, re, method, p, body, token) {
    const r = await admin(method, p, body, token);
    assert.equal(r.status, status, `${method} ${p}: ${r.status} ${r.text}`);
    assertOpenAIError(assert, r.json);
    if (re) assert.match(r.json.error.message, re);
    return r.json.error;
  }
  const flagPath = (key) => `/admin/v1/flags/${encodeURIComponent(key)}`;
  const exported = () => adminOk('GET', '/admin/v1/flags/export', undefined, VIEWER_TOKEN);
  const audit = async () => (await adminOk('GET', '/admin/v1/audit?limit=1000', undefined, VIEWER_TOKEN)).audit;

  // A POST on a fresh connection (Connection: close), so the kernel spreads the calls over
  // every worker: what the published flags say, wherever the request lands.
  async function freshPost(p, body) {
    const text = JSON.stringify(body);
    const r = await rawRequest(
      gw.port,
      `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      { timeout: ms(3000) },
    );
    return parseRawResponse(r.text);
  }
  async function ofrep(key, context = { targetingKey: 'u1' }) {
    const res = await freshPost(`/ofrep/v1/evaluate/flags/${encodeURIComponent(key)}`, { context });
    return { status: res.status, json: JSON.parse(res.body) };
  }
  // Every worker answers `want` for `key` (a few fresh connections each).
  async function servedEverywhere(key, want, context) {
    for (let i = 0; i < 6; i++) {
      const r = await ofrep(key, context);
      assert.equal(r.status, want.status ?? 200, `OFREP ${key}: ${JSON.stringify(r)}`);
      for (const [k, v] of Object.entries(want)) if (k !== 'status') assert.deepEqual(r.json[k], v, `OFREP ${key}.${k}`);
    }
  }
  const chatStatus = async (model = 'bot') =>
    (await freshPost('/v1/chat/completions', { model, messages: USER_MSG, max_tokens: 4 })).status;

  // ---- tests

  test('CLI on the data dir: set, show, list, enable, disable, delete; the gateway picks each up', async () => {
    const def = onOff('on', { metadata: { owner: 'ana', purpose: 'new checkout' } });
    const set = await cliJSON('flag', 'set', 'checkout', '--json', JSON.stringify(def), '--reason', 'launch');
    assert.equal(set.changed, true);
    assert.equal(set.version, 1);
    assert.deepEqual(set.definition, def);
    assert.equal(set.updated_by, 'cli:test');
    await waitFor(async () => (await ofrep('checkout')).json.value === true, { what: 'checkout served over OFREP' });

    const shown = await cliJSON('flag', 'show', 'checkout');
    assert.equal(shown.kind, 'flag');
    assert.equal(shown.owner, 'ana');
    assert.equal(shown.purpose, 'new checkout');
    assert.equal(shown.state, 'ENABLED');
    const listed = (await cliJSON('flag', 'list')).flags.find((f) => f.key === 'checkout');
    assert.equal(listed.default_variant, 'on');
    assert.equal(listed.targeted, false);

    // The same definition again changes nothing (no new version).
    const again = await cliJSON('flag', 'set', 'checkout', '--json', JSON.stringify(def));
    assert.equal(again.changed, false);
    assert.equal(again.version, 1);

    // A YAML definition from a file, with targeting.
    const yaml = path.join(d, 'checkout.yaml');
    writeFileSync(
      yaml,
      ['state: ENABLED', 'variants:', '  on: true', '  off: false', 'defaultVariant: "off"', 'targeting:',
        '  if:', '    - in: [{var: plan}, [pro, team]]', '    - "on"', '    - "off"', 'metadata:', '  owner: ana', ''].join('\n'),
    );
    const v2def = await cliJSON('flag', 'set', 'checkout', '--file', yaml, '--reason', 'paying plans only');
    assert.equal(v2def.version, 2);
    assert.equal(v2def.targeted, true);
    await waitFor(async () => (await ofrep('checkout', { targetingKey: 'u1', plan: 'free' })).json.value === false, {
      what: 'the targeted definition served',
    });
    await servedEverywhere('checkout', { value: true, variant: 'on', reason: 'TARGETING_MATCH' }, { targetingKey: 'u', plan: 'pro' });

    await cliJSON('flag', 'disable', 'checkout', '--reason', 'pause');
    await waitFor(async () => (await ofrep('checkout')).json.reason === 'DISABLED', { what: 'checkout disabled' });
    assert.equal((await cliJSON('flag', 'show', 'checkout')).state, 'DISABLED');
    const en = await cliJSON('flag', 'enable', 'checkout', '--reason', 'resume');
    assert.equal(en.state, 'ENABLED');
    assert.equal(en.version, 4);
    assert.equal(en.definition.targeting !== undefined, true, 'enable changes only the state');
    await waitFor(async () => (await ofrep('checkout')).json.reason !== 'DISABLED', { what: 'checkout enabled' });

    const del = await cliJSON('flag', 'delete', 'checkout', '--reason', 'launched');
    assert.deepEqual(del, { key: 'checkout', deleted: true, changed: true });
    await waitFor(async () => (await ofrep('checkout')).status === 404, { what: 'checkout gone' });
    await refused(cli('flag', 'show', 'checkout'), /error: no flag 'checkout'/);
    await refused(cli('flag', 'delete', 'checkout'), /error: no flag 'checkout'/);
    await refused(cli('flag', 'enable', 'checkout'), /error: no flag 'checkout'/);
    await refused(cli('flag', 'set', 'x'), /--file FILE or --json TEXT/);

    const mine = (await audit()).filter((e) => e.target === 'checkout');
    assert.deepEqual(
      mine.map((e) => e.action).reverse(),
      ['flag.set', 'flag.set', 'flag.disable', 'flag.enable', 'flag.delete'],
      'one entry per change, none for the unchanged set',
    );
    for (const e of mine) assert.equal(e.actor, 'cli:test');
    const first = mine[mine.length - 1];
    assert.equal(first.before, '');
    assert.deepEqual(JSON.parse(first.after), def);
    assert.equal(first.reason, 'launch');
    assert.equal(mine[0].after, '', 'a delete keeps the definition in before');
    assert.ok(mine[0].before.includes('"targeting"'));
  });

  test('admin API and --admin: every change is live on every worker when the call returns', async () => {
    const put = await adminOk('PUT', flagPath('dark mode/v2'), { definition: onOff('on'), reason: 'beta' });
    assert.equal(put.key, 'dark mode/v2');
    assert.equal(put.updated_by, 'token:ops');
    await servedEverywhere('dark mode/v2', { value: true, reason: 'STATIC' });

    // The definition may also be text (JSON or YAML), as the CLI sends it.
    const text = await adminOk('PUT', flagPath('dark mode/v2'), {
      definition: 'state: ENABLED\nvariants: {on: true, off: false}\ndefaultVariant: "off"\n',
      reason: 'off by default',
    });
    assert.equal(text.version, 2);
    await servedEverywhere('dark mode/v2', { value: false, variant: 'off' });

    const shown = await remoteJSON(VIEWER_TOKEN, 'flag', 'show', 'dark mode/v2');
    assert.equal(shown.version, 2);
    assert.ok((await remoteJSON(VIEWER_TOKEN, 'flag', 'list')).flags.some((f) => f.key === 'dark mode/v2'));

    const off = await remoteJSON(OPERATOR_TOKEN, 'flag', 'disable', 'dark mode/v2', '--reason', 'incident');
    assert.equal(off.state, 'DISABLED');
    assert.equal(off.updated_by, 'token:ops');
    await servedEverywhere('dark mode/v2', { reason: 'DISABLED' });
    await remoteJSON(OPERATOR_TOKEN, 'flag', 'enable', 'dark mode/v2', '--reason', 'over');
    await servedEverywhere('dark mode/v2', { value: false });

    const file = path.join(d, 'dm.json');
    writeFileSync(file, JSON.stringify(onOff('on', { metadata: { owner: 'ui' } })));
    const fromFile = await remoteJSON(OPERATOR_TOKEN, 'flag', 'set', 'dark mode/v2', '--file', file, '--reason', 'on');
    assert.equal(fromFile.owner, 'ui');
    await servedEverywhere('dark mode/v2', { value: true });

    assert.deepEqual(await remoteJSON(OPERATOR_TOKEN, 'flag', 'delete', 'dark mode/v2', '--reason', 'done'), {
      key: 'dark mode/v2',
      deleted: true,
      changed: true,
    });
    await servedEverywhere('dark mode/v2', { status: 404 });
    await adminRefused(404, /no flag 'dark mode\/v2'/, 'GET', flagPath('dark mode/v2'));
    await adminRefused(404, /no flag/, 'DELETE', flagPath('dark mode/v2'), { reason: 'again' });
    await adminRefused(400, /'definition' is required/, 'PUT', flagPath('x'), { reason: 'no definition' });
    await adminRefused(400, /JSON object/, 'PUT', flagPath('x'), 'not json');
    await adminRefused(400, /'reason' must be a string/, 'PUT', flagPath('x'), { definition: onOff(), reason: 5 });
    await adminRefused(400, /percent-encoded/, 'GET', '/admin/v1/flags/bad%zz');

    const actions = (await audit()).filter((e) => e.target === 'dark mode/v2');
    assert.deepEqual(actions.map((e) => e.action).reverse(), ['flag.set', 'flag.set', 'flag.disable', 'flag.enable', 'flag.set', 'flag.delete']);
    for (const e of actions) assert.equal(e.actor, 'token:ops');
    assert.equal(actions.find((e) => e.action === 'flag.disable').reason, 'incident');
  });

  test('import (merge, replace) and export: a round trip changes nothing', async () => {
    const file1 = path.join(d, 'flags.yaml');
    writeFileSync(
      file1,
      [
        'metadata:',
        '  owner: growth',
        '  purpose: q3 experiments',
        '$evaluators:',
        '  paying:',
        '    in: [{var: plan}, [pro, team]]',
        'flags:',
        '  imp-a:',
        '    state: ENABLED',
        '    variants: {on: true, off: false}',
        '    defaultVariant: "off"',
        '    targeting: {if: [{$ref: paying}, "on", "off"]}',
        '  imp-b:',
        '    state: ENABLED',
        '    variants: {small: 1, large: 10}',
        '    defaultVariant: small',
        '  imp-c:',
        '    state: DISABLED',
        '    variants: {x: "X", y: "Y"}',
        '    defaultVariant: x',
        '    metadata: {owner: zoe}',
        '',
      ].join('\n'),
    );
    const first = await cliJSON('flag', 'import', file1, '--reason', 'q3');
    assert.deepEqual([first.created, first.updated, first.unchanged, first.deleted], [3, 0, 0, 0]);
    assert.deepEqual(first.keys.created, ['imp-a', 'imp-b', 'imp-c']);
    // The flag set's metadata joins each flag's; a flag's own keys win; $refs are resolved.
    const a = await cliJSON('flag', 'show', 'imp-a');
    assert.deepEqual([a.owner, a.purpose], ['growth', 'q3 experiments']);
    assert.deepEqual(a.definition.targeting, { if: [{ in: [{ var: 'plan' }, ['pro', 'team']] }, 'on', 'off'] });
    assert.equal((await cliJSON('flag', 'show', 'imp-c')).owner, 'zoe');
    await waitFor(async () => (await ofrep('imp-a', { targetingKey: 'u', plan: 'team' })).json.value === true, {
      what: 'imported flags served',
    });

    const imports = async () => (await audit()).filter((e) => e.action === 'flag.import').length;
    const before = await imports();
    assert.equal(before, 3, 'one audit entry per changed flag');
    const again = await cliJSON('flag', 'import', file1);
    assert.deepEqual([again.created, again.updated, again.unchanged, again.changed], [0, 0, 3, false]);
    assert.equal(await imports(), before, 'nothing changed, nothing audited');

    // Export (CLI to a file, admin API) and import it back, replacing: nothing changes.
    const out = path.join(d, 'export.json');
    const r = await cli('flag', 'export', '--output', out);
    assert.equal(r.code, 0, r.stderr);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(file, await exported());
    assert.deepEqual(Object.keys(file.flags), [...Object.keys(file.flags)].sort(), 'exported by key');
    assert.equal(file.flags['imp-b'].metadata.owner, 'growth');
    const back = await cliJSON('flag', 'import', out, '--replace', '--reason', 'round trip');
    assert.deepEqual([back.mode, back.created, back.updated, back.deleted, back.changed], ['replace', 0, 0, 0, false]);
    assert.equal(back.unchanged, Object.keys(file.flags).length);
    assert.deepEqual(await remoteJSON(VIEWER_TOKEN, 'flag', 'export'), file);

    // Through the admin API: merge creates and updates, the rest stays...
    const file2 = { flags: { 'imp-a': onOff('on'), 'imp-d': onOff('off') } };
    const merged = await adminOk('POST', '/admin/v1/flags/import', { file: JSON.stringify(file2), reason: 'merge' });
    assert.deepEqual([merged.created, merged.updated, merged.unchanged, merged.deleted], [1, 1, 0, 0]);
    await servedEverywhere('imp-a', { value: true, reason: 'STATIC' });
    assert.ok((await exported()).flags['imp-b']);
    // ...replace deletes every flag the file does not have.
    const replaced = await adminOk('POST', '/admin/v1/flags/import', { file: JSON.stringify(file2), replace: true, reason: 'replace' });
    assert.deepEqual([replaced.created, replaced.updated, replaced.unchanged], [0, 0, 2]);
    assert.ok(replaced.keys.deleted.includes('imp-b') && replaced.keys.deleted.includes('imp-c'), JSON.stringify(replaced));
    assert.deepEqual(Object.keys((await exported()).flags), ['imp-a', 'imp-d']);
    await servedEverywhere('imp-b', { status: 404 });
    await adminRefused(400, /'file'/, 'POST', '/admin/v1/flags/import', { reason: 'no file' });
    await adminRefused(400, /'replace' must be true or false/, 'POST', '/admin/v1/flags/import', { file: '{"flags":{}}', replace: 'yes' });

    const entries = (await audit()).filter((e) => e.action === 'flag.import');
    const deleted = entries.find((e) => e.target === 'imp-c' && e.after === '');
    assert.ok(deleted, 'the replace import audits each deleted flag');
    assert.equal(deleted.actor, 'token:ops');
    assert.equal(deleted.reason, 'replace');
    // Leave the store with imp-a and imp-d for the next test; the later ones add their own.
  });

  test('bad input is refused whole with its line and column; the running flags stay', async () => {
    const stored = await exported();
    const served = await ofrep('imp-a');
    const auditBefore = (await audit()).length;
    const bad = (targeting) => JSON.stringify(onOff('off', { targeting }));

    // Malformed JsonLogic: a rule object with two operators.
    const twoOps = { '==': [1, 1], '!=': [1, 2] };
    await refused(cli('flag', 'set', 'imp-a', '--json', bad(twoOps)), /^error: 1:\d+: a rule object has exactly one operator/);
    await adminRefused(400, /^1:\d+: a rule object has exactly one operator/, 'PUT', flagPath('imp-a'), {
      definition: onOff('off', { targeting: twoOps }),
    });
    // An unknown operator, on line 5 of a definition given as text.
    const unknown = '{\n  "state": "ENABLED",\n  "variants": {"on": true, "off": false},\n  "defaultVariant": "off",\n  "targeting": {"starts_wiht": [{"var": "email"}, "a"]}\n}';
    const e1 = await adminRefused(400, /^5:\d+: unknown operator 'starts_wiht'/, 'PUT', flagPath('imp-a'), { definition: unknown });
    assert.equal(e1.code, 'invalid_flag');
    await refused(cli('flag', 'set', 'imp-a', '--json', unknown), /error: 5:\d+: unknown operator 'starts_wiht'/);
    // The same inside a file, where it is on line 3.
    const unknownFile = path.join(d, 'unknown.json');
    writeFileSync(unknownFile, '{"flags": {\n  "ok-flag": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"},\n  "bad": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on", "targeting": {"nope": [1]}}\n}}\n');
    await refused(cli('flag', 'import', unknownFile), /error: 3:\d+: unknown operator 'nope'/);
    // A cycle of $refs.
    const cycle = path.join(d, 'cycle.yaml');
    writeFileSync(
      cycle,
      ['$evaluators:', '  loop-a: {$ref: loop-b}', '  loop-b: {and: [true, {$ref: loop-a}]}', 'flags:', '  fresh:',
        '    state: ENABLED', '    variants: {on: true, off: false}', '    defaultVariant: "off"', '    targeting: {$ref: loop-a}', ''].join('\n'),
    );
    await refused(cli('flag', 'import', cycle), /error: \d+:\d+: a cycle of \$refs: loop-a -> loop-b -> loop-a/);
    await adminRefused(400, /^\d+:\d+: a cycle of \$refs/, 'POST', '/admin/v1/flags/import', { file: readFileSync(cycle, 'utf8') });
    // A release flag naming a release that does not exist: at the variant's line and column.
    const pin = path.join(d, 'pin.yaml');
    writeFileSync(pin, ['state: ENABLED', 'variants:', '  stable: ""', '  next: rel_00000000', 'defaultVariant: stable', 'metadata: {route: math-tutor}', ''].join('\n'));
    await refused(
      cli('flag', 'set', 'pin', '--file', pin),
      /^error: 4:9: flags\.pin: variant 'next' names release 'rel_00000000', which does not exist/,
    );
    // ...or one of another route; in a file with a valid flag before it, nothing is written.
    const wrongRoute = {
      flags: {
        'aaa-valid': onOff(),
        'pin-bot': { state: 'ENABLED', variants: { a: v1 }, defaultVariant: 'a', metadata: { route: 'bot' } },
      },
    };
    await adminRefused(
      400,
      new RegExp(`^\\d+:\\d+: flags\\.pin-bot: variant 'a' names release '${v1}' of route 'math-tutor', not of 'bot'`),
      'POST',
      '/admin/v1/flags/import',
      { file: JSON.stringify(wrongRoute, null, 2), replace: true, reason: 'must not happen' },
    );
    await refused(
      remote(OPERATOR_TOKEN, 'flag', 'set', 'pin', '--file', pin),
      /names release 'rel_00000000', which does not exist/,
    );
    // A kill switch whose metadata makes no sense.
    await adminRefused(400, /^\d+:\d+: flags\.k: metadata\.kill is route, tool, shadow or rollouts/, 'PUT', flagPath('k'), {
      definition: onOff('on', { metadata: { kill: 'everything' } }),
    });
    // An oversized file: refused whole, with its size, by the CLI on the store and through the admin API.
    const big = path.join(d, 'big.json');
    writeFileSync(big, JSON.stringify({ flags: { 'big-flag': onOff('on', { metadata: { pad: 'x'.repeat(4.5 * 1024 * 1024) } }) } }));
    await refused(cli('flag', 'import', big), /error: the flag file is \d+ bytes; at most 4194304 are read/);
    const r = await remote(OPERATOR_TOKEN, 'flag', 'import', big);
    assert.notEqual(r.code, 0, 'an oversized import through the admin API is refused');
    assert.match(r.stdout + r.stderr, /at most 4194304 are read/);

    assert.deepEqual(await exported(), stored, 'the stored flags are unchanged');
    assert.deepEqual(await ofrep('imp-a'), served, 'the running flags are unchanged');
    assert.equal((await ofrep('pin-bot')).status, 404);
    assert.equal((await ofrep('aaa-valid')).status, 404, 'nothing of a refused file was written');
    const after = await audit();
    assert.ok(
      after.slice(0, after.length - auditBefore).every((e) => e.action === 'admin.request'),
      'a refused change audits nothing',
    );
  });

  test('a release flag naming releases of its route (by id or unique prefix) is accepted', async () => {
    const def = { state: 'ENABLED', variants: { stable: '', v1, v2: v2.slice(0, 10) }, defaultVariant: 'stable', metadata: { route: 'math-tutor', owner: 'learning' } };
    const set = await adminOk('PUT', flagPath('math-tutor-pin'), { definition: def, reason: 'pin' });
    assert.deepEqual([set.kind, set.route, set.owner], ['release', 'math-tutor', 'learning']);
    // The gateway's own flags are not served to applications.
    await servedEverywhere('math-tutor-pin', { status: 404 });
    await adminOk('DELETE', flagPath('math-tutor-pin'), { reason: 'unpin' });
  });

  test('roles: viewers read, operators change; no token, no access', async () => {
    await adminOk('GET', '/admin/v1/flags', undefined, VIEWER_TOKEN);
    await adminOk('GET', '/admin/v1/kill', undefined, VIEWER_TOKEN);
    await adminOk('GET', flagPath('imp-a'), undefined, VIEWER_TOKEN);
    const e = await adminRefused(403, /operator role/, 'PUT', flagPath('imp-a'), { definition: onOff('on') }, VIEWER_TOKEN);
    assert.equal(e.code, 'insufficient_role');
    await adminRefused(403, /operator role/, 'POST', '/admin/v1/kill/rollouts', { reason: 'x' }, VIEWER_TOKEN);
    await adminRefused(403, /operator role/, 'POST', '/admin/v1/flags/import', { file: '{"flags":{}}' }, VIEWER_TOKEN);
    await adminRefused(403, /operator role/, 'DELETE', flagPath('imp-a'), undefined, VIEWER_TOKEN);
    await refused(remote(VIEWER_TOKEN, 'flag', 'disable', 'imp-a'), /insufficient_role/);
    assert.equal((await admin('GET', '/admin/v1/flags', undefined, null)).status, 401);
    assert.equal((await admin('PUT', flagPath('imp-a'), { definition: onOff('off') }, null)).status, 401);
    assert.equal((await ofrep('imp-a')).json.value, true, 'nothing changed');
    const denied = (await audit()).filter((x) => x.action === 'admin.request' && x.actor === 'token:watcher');
    assert.ok(denied.length >= 4, 'refusals are audited');
  });

  test('kill switches: each command writes its flag, list shows it, clear turns it off; audited', async () => {
    assert.equal(await chatStatus(), 200);
    // On the store (the CLI): the running gateway picks it up within its poll.
    const route = await cliJSON('kill', 'route', 'bot', '--mode', 'block', '--reason', 'incident 42');
    assert.equal(route.key, 'kill.route.bot');
    assert.deepEqual(route.definition, {
      state: 'ENABLED',
      variants: { off: 'off', block: 'block', fallback: 'fallback', static: 'static' },
      defaultVariant: 'block',
      metadata: { kill: 'route', route: 'bot', owner: 'cli:test', purpose: 'incident 42' },
    });
    assert.deepEqual([route.kind, route.route, route.owner, route.purpose], ['kill.route', 'bot', 'cli:test', 'incident 42']);
    await waitFor(async () => (await chatStatus()) === 503, { what: 'route bot blocked' });
    let kills = (await cliJSON('kill', 'list')).kills;
    assert.deepEqual(kills.map((k) => [k.key, k.mode, k.on]), [['kill.route.bot', 'block', true]]);

    // Through the admin API: cleared on every worker when the call returns.
    const cleared = await adminOk('POST', '/admin/v1/kill/clear', { key: 'kill.route.bot', reason: 'fixed' });
    assert.equal(cleared.state, 'DISABLED');
    for (let i = 0; i < 6; i++) assert.equal(await chatStatus(), 200, 'served again at once');
    assert.deepEqual((await adminOk('GET', '/admin/v1/kill')).kills.map((k) => [k.key, k.on]), [['kill.route.bot', false]]);

    // The other kinds, through the CLI and --admin.
    const tool = await remoteJSON(OPERATOR_TOKEN, 'kill', 'tool', '*', 'web_search', '--reason', 'leaks');
    assert.equal(tool.key, 'kill.tool.all.web_search');
    assert.deepEqual(tool.definition.metadata, { kill: 'tool', route: '*', tool: 'web_search', owner: 'token:ops', purpose: 'leaks' });
    assert.deepEqual(tool.definition.variants, { on: true, off: false });
    assert.equal(tool.definition.defaultVariant, 'on');
    assert.equal((await remoteJSON(OPERATOR_TOKEN, 'kill', 'shadow', '--reason', 'load')).key, 'kill.shadow.all');
    assert.equal((await cliJSON('kill', 'shadow', 'bot', '--reason', 'load')).key, 'kill.shadow.bot');
    const rollouts = await remoteJSON(OPERATOR_TOKEN, 'kill', 'rollouts', '--reason', 'freeze');
    assert.deepEqual([rollouts.key, rollouts.kind], ['kill.rollouts', 'kill.rollouts']);
    const fb = await adminOk('POST', '/admin/v1/kill/route', { route: 'bot', mode: 'fallback', reason: 'primary bad' });
    assert.equal(fb.version, 3, 'the same kill switch, set again');
    assert.equal(fb.definition.defaultVariant, 'fallback');
    await adminOk('POST', '/admin/v1/kill/clear', { key: 'kill.route.bot', reason: 'ok' });

    kills = (await remoteJSON(VIEWER_TOKEN, 'kill', 'list')).kills;
    assert.deepEqual(
      kills.map((k) => [k.key, k.on]),
      [['kill.rollouts', true], ['kill.route.bot', false], ['kill.shadow.all', true], ['kill.shadow.bot', true], ['kill.tool.all.web_search', true]],
    );
    for (const k of ['kill.rollouts', 'kill.shadow.all', 'kill.shadow.bot', 'kill.tool.all.web_search']) {
      const c = await remoteJSON(OPERATOR_TOKEN, 'kill', 'clear', k, '--reason', 'incident over');
      assert.equal(c.state, 'DISABLED');
    }
    assert.ok((await cliJSON('kill', 'list')).kills.every((k) => !k.on));

    await adminRefused(400, /mode is block, fallback, static or off, not 'explode'/, 'POST', '/admin/v1/kill/route', { route: 'bot', mode: 'explode' });
    await adminRefused(400, /'route' and 'tool' are required/, 'POST', '/admin/v1/kill/tool', { route: 'bot' });
    await adminRefused(400, /not a kill switch/, 'POST', '/admin/v1/kill/clear', { key: 'imp-a' });
    await adminRefused(404, /no flag 'kill.route.nope'/, 'POST', '/admin/v1/kill/clear', { key: 'kill.route.nope' });
    await adminRefused(404, /kill switches: route, tool, shadow, rollouts, clear/, 'POST', '/admin/v1/kill/everything', {});
    await refused(cli('kill', 'route', 'bot', '--mode', 'explode'), /mode is block, fallback, static or off/);

    const entries = await audit();
    for (const action of ['kill.route', 'kill.tool', 'kill.shadow', 'kill.rollouts', 'kill.clear'])
      assert.ok(entries.some((e) => e.action === action), `audit has ${action}`);
    const first = entries.filter((e) => e.action === 'kill.route').pop();
    assert.deepEqual([first.actor, first.target, first.reason, first.before], ['cli:test', 'kill.route.bot', 'incident 42', '']);
  });

  test('the stale report: static, fully ramped, disabled, and unchanged for long', async () => {
    await cliJSON('flag', 'set', 'legacy-banner', '--json', JSON.stringify(onOff('on', { metadata: { owner: 'web', purpose: 'old banner' } })));
    await adminOk('PUT', flagPath('ramped'), {
      definition: {
        state: 'ENABLED',
        variants: { old: 'A', new: 'B' },
        defaultVariant: 'old',
        targeting: { fractional: [{ var: 'email' }, ['old', 0], ['new', 100]] },
      },
    });
    await adminOk('PUT', flagPath('split'), {
      definition: { state: 'ENABLED', variants: { old: 'A', new: 'B' }, defaultVariant: 'old', targeting: { fractional: [['old', 50], ['new', 50]] } },
    });

    await cliJSON('flag', 'set', 'old-switch', '--json', JSON.stringify({ ...onOff('on', { targeting: { if: [{ var: 'beta' }, 'on', 'off'] } }), state: 'DISABLED' }));

    const report = await cliJSON('flag', 'stale');
    assert.equal(report.older_than_s, 30 * 86400);
    const by = Object.fromEntries(report.stale.map((s) => [s.key, s]));
    assert.deepEqual([by['legacy-banner'].owner, by['legacy-banner'].purpose], ['web', 'old banner']);
    assert.match(by['legacy-banner'].reasons.join(' '), /static: no targeting, every evaluation gets variant 'on'/);
    assert.match(by.ramped.reasons.join(' '), /fully ramped: fractional gives variant 'new' all the weight/);
    assert.equal(by.split, undefined, 'a real split is not stale');
    assert.match(by['old-switch'].reasons.join(' '), /disabled: every evaluation gets the caller's default/);
    assert.equal(by['imp-a'] !== undefined, true, 'imp-a is static since the merge import');
    assert.ok(!report.stale.some((s) => s.key.startsWith('kill.')), 'kill switches only for their age');

    const viaAdmin = await adminOk('GET', '/admin/v1/flags/stale?older_than_s=0', undefined, VIEWER_TOKEN);
    assert.deepEqual(viaAdmin.stale.map((s) => s.key), report.stale.map((s) => s.key));
    await adminRefused(400, /older_than_s/, 'GET', '/admin/v1/flags/stale?older_than_s=soon', undefined, VIEWER_TOKEN);

    await sleep(1100);
    const aged = await remoteJSON(VIEWER_TOKEN, 'flag', 'stale', '--older-than', '1s');
    const split = aged.stale.find((s) => s.key === 'split');
    assert.ok(split, 'everything unchanged for over a second');
    assert.match(split.reasons.join(' '), /unchanged for 0 days \(since \d{4}-\d\d-\d\dT/);
    assert.ok(aged.stale.some((s) => s.key === 'kill.route.bot'));
    await refused(cli('flag', 'stale', '--older-than', 'soon'), /--older-than expects/);
  });
});
