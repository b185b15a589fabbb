// releases.test.mjs: the releases feature end to end: content-addressed release ids, the
// immutable SQLite store, route promotion and rollback (CLI and admin API) while serving,
// prompt rendering as the upstream sees it, admin roles and the audit log, and durability
// across kill -9.
//
// The math-tutor example (examples/math-tutor) is the fixture: its manifests and prompts are
// used as they are, with `sluice mock-llm --config examples/demo/mock.yaml` (run from the repo
// root, the config's replay paths are relative to it) as the upstream named `mock`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';

import {
  requestJSON,
  SLUICE_BIN,
  assertOpenAIError,
  chunkEvent,
  completionBody,
  ms,
  postJSON,
  sleep,
  startFakeUpstream,
  startGateway,
  startMock,
  tempDir,
  waitFor,
  MATH_MSG,
} from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const EXAMPLE = path.join(REPO, 'examples/math-tutor');
const V1_MANIFEST = path.join(EXAMPLE, 'release-v1.yaml');
const V2_MANIFEST = path.join(EXAMPLE, 'release-v2.yaml');
const V2_SMALL_MANIFEST = path.join(EXAMPLE, 'release-v2-small-model.yaml');
const MOCK_CONFIG = path.join(REPO, 'examples/demo/mock.yaml');

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const REL_ID = /^rel_[0-9a-f]{8}$/;
const PROMPT_ID = /^p_[0-9a-f]{12}$/;


// ------------------------------------------------------------------ CLI helpers

// Runs the sluice CLI; resolves {code, stdout, stderr, exitedAt} (exitedAt: performance.now()
// when the process exited, i.e. when "the command returned").
function runSluice(args, { cwd, timeout = ms(15000) } = {}) {
  return new Promise((resolve) => {
    const c = spawn(SLUICE_BIN, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let exitedAt;
    c.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeout);
    c.on('exit', () => (exitedAt = performance.now()));
    c.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr, exitedAt: exitedAt ?? performance.now() });
    });
    c.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: -1, signal: null, stdout, stderr: stderr + e.message, exitedAt: performance.now() });
    });
  });
}

const cli = (dataDir, ...args) => runSluice([...args, '--data-dir', dataDir]);

async function cliOk(dataDir, ...args) {
  const r = await cli(dataDir, ...args);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

// `release create` prints `rel_xxxxxxxx` or `rel_xxxxxxxx (already existed: same content)`.
async function createRelease(dataDir, manifest, { cwd } = {}) {
  const r = await runSluice(['release', 'create', manifest, '--data-dir', dataDir], { cwd });
  assert.equal(r.code, 0, `release create ${manifest}: exit ${r.code}\n${r.stderr}`);
  const m = /^(rel_[0-9a-f]{8})( \(already existed: same content\))?\n?$/.exec(r.stdout);
  assert.ok(m, `unexpected release create output: ${JSON.stringify(r.stdout)}`);
  return { id: m[1], existed: Boolean(m[2]) };
}

async function auditCli(dataDir, limit = 200) {
  return JSON.parse(await cliOk(dataDir, 'audit', '--limit', String(limit))).audit;
}

// ------------------------------------------------------------------ SQLite access (test 2)

// The sqlite3 CLI when installed; else node:sqlite (Node >= 22.5); else null (tests skip).
async function sqliteBackend() {
  if (spawnSync('sh', ['-c', 'command -v sqlite3']).status === 0) {
    return {
      name: 'sqlite3 CLI',
      exec(db, sql) {
        const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
        return { ok: r.status === 0, error: (r.stderr || '').trim() };
      },
      query(db, sql) {
        const r = spawnSync('sqlite3', ['-json', db, sql], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
        return r.stdout.trim() === '' ? [] : JSON.parse(r.stdout);
      },
    };
  }
  try {
    const { DatabaseSync } = await import('node:sqlite');
    const open = (db) => new DatabaseSync(db);
    return {
      name: 'node:sqlite',
      exec(db, sql) {
        const d = open(db);
        try {
          d.exec(sql);
          return { ok: true, error: '' };
        } catch (e) {
          return { ok: false, error: e.message };
        } finally {
          d.close();
        }
      },
      query(db, sql) {
        const d = open(db);
        try {
          return d.prepare(sql).all();
        } finally {
          d.close();
        }
      },
    };
  } catch {
    return null;
  }
}
const SQL = await sqliteBackend();
const NO_SQL = SQL ? false : 'neither the sqlite3 CLI nor node:sqlite is available to write to the store directly';

// ------------------------------------------------------------------ HTTP helpers

function sdk(gw) {
  return new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-unused', maxRetries: 0, timeout: 15_000 });
}

async function admin(gw, method, p, { token, body } = {}) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const r = await requestJSON(method, `${gw.adminUrl}${p}`, { body, headers });
  return { ...r, at: performance.now() };
}

function mathChat(gw, extra = {}, opts) {
  return postJSON(`${gw.url}/v1/chat/completions`, { model: 'math-tutor', messages: MATH_MSG, max_tokens: 8, ...extra }, opts);
}

// Starts the example's mock-llm (GSM8K replay, realistic latencies) from the repo root.
function startExampleMock() {
  return startMock({ args: ['--config', MOCK_CONFIG], cwd: REPO });
}

// ------------------------------------------------------------------ top-level fixtures

let mock;
before(async () => {
  mock = await startExampleMock();
});
after(async () => {
  await mock?.stop();
});

// ============================================================================ 1. hash stability

describe('1. release ids are content hashes', { timeout: 60_000 }, () => {
  let dirA;
  let v1;

  test('the same manifest twice, and in another data dir, gives the same id', async () => {
    dirA = tempDir('sluice-rel-a-');
    const dirB = tempDir('sluice-rel-b-');
    const a1 = await createRelease(dirA, V1_MANIFEST);
    assert.match(a1.id, REL_ID);
    assert.equal(a1.existed, false, 'first create is new');
    const a2 = await createRelease(dirA, V1_MANIFEST);
    assert.equal(a2.id, a1.id);
    assert.equal(a2.existed, true, 'second create reports "already existed: same content"');
    const b = await createRelease(dirB, V1_MANIFEST);
    assert.equal(b.id, a1.id, 'same id in another store');
    assert.equal(b.existed, false);
    // Exactly one row, and one release.create audit entry, despite two creates.
    const list = await cliOk(dirA, 'release', 'list');
    assert.equal(list.trim().split('\n').length, 1, list);
    const creates = (await auditCli(dirA)).filter((e) => e.action === 'release.create');
    assert.equal(creates.length, 1, 'an idempotent re-create is not a second release.create');
    v1 = a1.id;
  });

  test('the id is rel_ + sha256(canonical tuple), and the tuple pins the prompt file by sha256', async () => {
    const show = await cliOk(dirA, 'release', 'show', v1);
    const full = /^hash\s+([0-9a-f]{64})$/m.exec(show)?.[1];
    assert.ok(full, `no hash line in:\n${show}`);
    assert.equal(v1, `rel_${full.slice(0, 8)}`);
    const entry = (await auditCli(dirA)).find((e) => e.action === 'release.create' && e.target === v1);
    assert.ok(entry, 'release.create audited');
    assert.equal(sha256(entry.after), full, 'full hash is sha256 of the stored canonical tuple');
    const tuple = JSON.parse(entry.after);
    assert.equal(tuple.prompt.hash, sha256(readFileSync(path.join(EXAMPLE, 'prompts/tutor-v1.yaml'))));
    assert.equal(tuple.prompt.mode, 'prepend_system');
    assert.deepEqual(tuple.model, { upstream: 'mock', id: 'gsm8k-6b-verification', floating: false });
    // Canonical: keys sorted at every level, no whitespace.
    const canon = (v) =>
      Array.isArray(v)
        ? `[${v.map(canon).join(',')}]`
        : v && typeof v === 'object'
          ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`
          : JSON.stringify(v);
    assert.equal(entry.after, canon(tuple), 'stored tuple is canonical JSON');
  });

  test('manifest + prompt copied to another directory (and created from there with a relative path): same id', async () => {
    const copy = tempDir('sluice-rel-copy-');
    mkdirSync(path.join(copy, 'nested', 'prompts'), { recursive: true });
    cpSync(V1_MANIFEST, path.join(copy, 'nested', 'release-v1.yaml'));
    cpSync(path.join(EXAMPLE, 'prompts/tutor-v1.yaml'), path.join(copy, 'nested', 'prompts', 'tutor-v1.yaml'));
    const dirC = tempDir('sluice-rel-c-');
    const c = await createRelease(dirC, path.join(copy, 'nested', 'release-v1.yaml'));
    assert.equal(c.id, v1, 'absolute path to the copy');
    const rel = await createRelease(dirC, 'nested/release-v1.yaml', { cwd: copy });
    assert.equal(rel.id, v1, 'relative path, resolved against the cwd');
  });

  test('comments, key order and YAML style do not change the id', async () => {
    const copy = tempDir('sluice-rel-style-');
    mkdirSync(path.join(copy, 'prompts'));
    cpSync(path.join(EXAMPLE, 'prompts/tutor-v1.yaml'), path.join(copy, 'prompts', 'tutor-v1.yaml'));
    writeFileSync(
      path.join(copy, 'reordered.yaml'),
      [
        '# same release, written differently',
        'labels:',
        '  stage: baseline',
        '  owner: learning-team',
        'overridable:',
        '  - max_tokens',
        'params:',
        '  max_tokens: 400',
        '  temperature: 0',
        'prompt:',
        '  mode: prepend_system',
        '  file: prompts/tutor-v1.yaml',
        'model:',
        '  id: gsm8k-6b-verification',
        '  upstream: mock',
        'route: math-tutor',
        '',
      ].join('\n'),
    );
    const r = await createRelease(tempDir('sluice-rel-d-'), path.join(copy, 'reordered.yaml'));
    assert.equal(r.id, v1);
  });

  test('one changed byte in the prompt file gives a new id; diff shows the prompt line', async () => {
    const copy = tempDir('sluice-rel-byte-');
    mkdirSync(path.join(copy, 'prompts'));
    cpSync(V1_MANIFEST, path.join(copy, 'release-v1.yaml'));
    const orig = readFileSync(path.join(EXAMPLE, 'prompts/tutor-v1.yaml'), 'utf8');
    const i = orig.indexOf('<number>');
    assert.ok(i > 0);
    const changed = `${orig.slice(0, i + 1)}N${orig.slice(i + 2)}`; // <number> -> <Number>
    assert.equal(Buffer.byteLength(changed), Buffer.byteLength(orig));
    writeFileSync(path.join(copy, 'prompts', 'tutor-v1.yaml'), changed);
    const r = await createRelease(dirA, path.join(copy, 'release-v1.yaml'));
    assert.notEqual(r.id, v1);
    assert.equal(r.existed, false);
    const diff = await cliOk(dirA, 'release', 'diff', v1, r.id);
    assert.match(diff, new RegExp(`^--- ${v1}$`, 'm'));
    assert.match(diff, new RegExp(`^\\+\\+\\+ ${r.id}$`, 'm'));
    assert.match(diff, /prompt\.hash: "[0-9a-f]{64}" -> "[0-9a-f]{64}"/);
    assert.match(diff, /^\s*- .*A: <number>/m, diff);
    assert.match(diff, /^\s*\+ .*A: <Number>/m, diff);
    assert.doesNotMatch(diff, /model\.id/, 'only the prompt changed');
  });

  test('release show prints the tuple, a prompt preview and the route history', async () => {
    const v2 = (await createRelease(dirA, V2_MANIFEST)).id;
    await cliOk(dirA, 'route', 'promote', 'math-tutor', v1, '--reason', 'baseline');
    const s1 = await cliOk(dirA, 'release', 'show', v1);
    assert.match(s1, new RegExp(`^release\\s+${v1}$`, 'm'));
    assert.match(s1, /^route\s+math-tutor$/m);
    assert.match(s1, /"id": "gsm8k-6b-verification"/);
    assert.match(s1, /"mode": "prepend_system"/);
    const p1 = `p_${sha256(readFileSync(path.join(EXAMPLE, 'prompts/tutor-v1.yaml'))).slice(0, 12)}`;
    assert.match(s1, new RegExp(`prompt ${p1} preview`));
    assert.match(s1, /\[system\] You are a math tutor\. Work through the problem/);
    assert.match(s1, new RegExp(`promote\\s+- -> ${v1}\\s+by .*\\(baseline\\)\\s+<-`));
    const s2 = await cliOk(dirA, 'release', 'show', v2);
    assert.match(s2, /"id": "gsm8k-175b-verification"/);
    assert.match(s2, /\[system\] You are a patient math tutor/);
    assert.match(s2, /\[user\] Solve step by step: Tom has 3 apples/);
    assert.match(s2, /\[assistant\] Tom starts with 3 apples\./);
    assert.match(s2, /\[user\] Solve step by step: <input>/);
    // A unique prefix works too.
    const pre = await cliOk(dirA, 'release', 'show', v1.slice(0, 8));
    assert.match(pre, new RegExp(`^release\\s+${v1}$`, 'm'));
    const missing = await cli(dirA, 'release', 'show', 'rel_ffffffff');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no release rel_ffffffff/);
  });

  test('release diff v1 v2 shows model.id, prompt mode and prompt line changes; v2 vs v2-small only the model', async () => {
    const v2 = (await createRelease(dirA, V2_MANIFEST)).id;
    const small = (await createRelease(dirA, V2_SMALL_MANIFEST)).id;
    const d = await cliOk(dirA, 'release', 'diff', v1, v2);
    assert.match(d, /~ model\.id: "gsm8k-6b-verification" -> "gsm8k-175b-verification"/);
    assert.match(d, /~ prompt\.mode: "prepend_system" -> "template_user"/);
    assert.match(d, /~ labels\.stage: "baseline" -> "candidate"/);
    assert.match(d, /^\s*-\s+You are a math tutor\. Work through the problem/m);
    assert.match(d, /^\s*\+\s+You are a patient math tutor/m);
    assert.match(d, /^\s*\+ user: "Solve step by step: \{\{input\}\}"/m);
    const d2 = await cliOk(dirA, 'release', 'diff', small, v2);
    assert.match(d2, /~ model\.id: "gsm8k-6b-verification" -> "gsm8k-175b-verification"/);
    assert.doesNotMatch(d2, /prompt/, 'same prompt file, same mode: no prompt lines');
  });

  test('a release lookup by prefix does not treat SQL LIKE wildcards (% and _) as matching any id', async () => {
    // A store with one release: a "prefix" made of wildcards must not resolve to it.
    const d = tempDir('sluice-rel-like-');
    await createRelease(d, V1_MANIFEST);
    for (const bogus of ['%%%%%%', '______', 'rel_%%%%']) {
      const show = await cli(d, 'release', 'show', bogus);
      assert.notEqual(show.code, 0, `release show ${bogus} resolved to a release:\n${show.stdout}`);
      const promote = await cli(d, 'route', 'promote', 'math-tutor', bogus);
      assert.notEqual(promote.code, 0, `route promote math-tutor ${bogus} promoted: ${promote.stdout}`);
    }
    assert.equal((await cliOk(d, 'route', 'list')).trim(), 'no routes');
  });
});

// ============================================================================ 2. immutability

describe('2. the store refuses to rewrite releases', { timeout: 60_000, skip: NO_SQL }, () => {
  // A fresh store with v1 and v2, v1 promoted.
  async function store() {
    const d = tempDir('sluice-imm-');
    const v1 = (await createRelease(d, V1_MANIFEST)).id;
    const v2 = (await createRelease(d, V2_MANIFEST)).id;
    await cliOk(d, 'route', 'promote', 'math-tutor', v1);
    return { d, db: path.join(d, 'sluice.db'), v1, v2 };
  }
  // Every row still is what its id says: id = rel_ + 8 hex of full_hash = sha256(tuple).
  function assertIntact(db, ids) {
    const rows = SQL.query(db, 'SELECT id, full_hash, route, tuple FROM releases ORDER BY id');
    assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort(), 'the same set of release ids');
    for (const r of rows) {
      assert.equal(sha256(r.tuple), r.full_hash, `${r.id}: tuple no longer hashes to full_hash`);
      assert.equal(r.id, `rel_${r.full_hash.slice(0, 8)}`, `${r.id}: id does not match its hash`);
      assert.equal(r.route, 'math-tutor');
    }
  }

  test(`UPDATE of tuple / full_hash / route and DELETE are refused (via ${SQL ? SQL.name : '-'})`, async () => {
    const { d, db, v1, v2 } = await store();
    for (const sql of [
      `UPDATE releases SET tuple = '{}' WHERE id = '${v1}'`,
      `UPDATE releases SET full_hash = '${'0'.repeat(64)}' WHERE id = '${v1}'`,
      `UPDATE releases SET route = 'other' WHERE id = '${v2}'`,
      `UPDATE releases SET tuple = replace(tuple, 'gsm8k-6b', 'gsm8k-175b')`,
      `DELETE FROM releases WHERE id = '${v2}'`,
      'DELETE FROM releases',
    ]) {
      const r = SQL.exec(db, sql);
      assert.equal(r.ok, false, `accepted: ${sql}`);
      assert.match(r.error, /releases are immutable/, sql);
    }
    assertIntact(db, [v1, v2]);
    // The store is still usable and unchanged from sluice's point of view.
    assert.match(await cliOk(d, 'release', 'show', v1), /"id": "gsm8k-6b-verification"/);
  });

  test('the audit log is append-only', async () => {
    const { db } = await store();
    const before = SQL.query(db, 'SELECT count(*) AS n FROM audit')[0].n;
    for (const sql of ["UPDATE audit SET actor = 'mallory'", 'DELETE FROM audit', 'DELETE FROM audit WHERE seq = 1']) {
      const r = SQL.exec(db, sql);
      assert.equal(r.ok, false, `accepted: ${sql}`);
      assert.match(r.error, /append-only/);
    }
    assert.equal(SQL.query(db, 'SELECT count(*) AS n FROM audit')[0].n, before);
  });

  test('renaming a release (UPDATE of its id) is refused', async () => {
    const { db, v1, v2 } = await store();
    const r = SQL.exec(db, `UPDATE releases SET id = 'rel_00000000' WHERE id = '${v2}'`);
    assert.equal(r.ok, false, 'UPDATE releases SET id = ... was accepted: the row now has an id that is not its hash');
    assertIntact(db, [v1, v2]);
  });

  test('rename + rewrite in one UPDATE (id and tuple together) is refused', async () => {
    const { db, v1, v2 } = await store();
    const r = SQL.exec(db, `UPDATE releases SET id = 'rel_00000000', tuple = '{"evil":true}' WHERE id = '${v2}'`);
    assert.equal(r.ok, false, 'the trigger only fires when NEW.id = OLD.id, so changing the id too bypasses it');
    assertIntact(db, [v1, v2]);
  });

  test('INSERT OR REPLACE cannot overwrite an existing release', async () => {
    const { db, v1, v2 } = await store();
    const r = SQL.exec(
      db,
      `INSERT OR REPLACE INTO releases(id, full_hash, route, tuple, created_by, created_at)
       VALUES ('${v1}', '${'e'.repeat(64)}', 'math-tutor', '{"evil":true}', 'mallory', 1)`,
    );
    assert.equal(r.ok, false, 'REPLACE deletes the old row without firing the delete trigger, then inserts new content under the same id');
    assertIntact(db, [v1, v2]);
  });
});

// ============================================================================ 3. routing and lineage

describe('3. routing by release and request lineage', { timeout: 60_000 }, () => {
  let d;
  let gw;
  let v1;
  let v2;
  const p1 = `p_${sha256(readFileSync(path.join(EXAMPLE, 'prompts/tutor-v1.yaml'))).slice(0, 12)}`;
  const p2 = `p_${sha256(readFileSync(path.join(EXAMPLE, 'prompts/tutor-v2.yaml'))).slice(0, 12)}`;
  const ids = { v1: [], v2: [] };

  before(async () => {
    d = tempDir('sluice-route-');
    v1 = (await createRelease(d, V1_MANIFEST)).id;
    v2 = (await createRelease(d, V2_MANIFEST)).id;
    await cliOk(d, 'route', 'promote', 'math-tutor', v1, '--reason', 'baseline');
    gw = await startGateway({ upstreams: { mock: `${mock.url}/v1` }, dataDir: d });
  });
  after(async () => {
    await gw?.stop();
  });

  test('SDK: model "math-tutor" is served by v1 (x-sluice-release, x-sluice-prompt, pinned model)', async () => {
    const { data, response } = await sdk(gw)
      .chat.completions.create({ model: 'math-tutor', messages: MATH_MSG, max_tokens: 16 })
      .withResponse();
    assert.equal(response.headers.get('x-sluice-release'), v1);
    assert.match(response.headers.get('x-sluice-prompt'), PROMPT_ID);
    assert.equal(response.headers.get('x-sluice-prompt'), p1);
    assert.equal(data.model, 'gsm8k-6b-verification', 'the release pins the provider model');
    assert.ok(data.choices[0].message.content.length > 0);
    assert.ok(data.usage.completion_tokens <= 16, 'caller max_tokens is overridable');
    ids.v1.push(response.headers.get('x-request-id'));
  });

  test('SDK streaming: the same lineage headers, and the stream completes', async () => {
    const { data: stream, response } = await sdk(gw)
      .chat.completions.create({ model: 'math-tutor', messages: MATH_MSG, max_tokens: 16, stream: true })
      .withResponse();
    assert.equal(response.headers.get('x-sluice-release'), v1);
    assert.equal(response.headers.get('x-sluice-prompt'), p1);
    let text = '';
    let finish;
    for await (const chunk of stream) {
      assert.equal(chunk.model, 'gsm8k-6b-verification');
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(text.length > 0);
    assert.ok(finish, 'a finish_reason arrived');
    ids.v1.push(response.headers.get('x-request-id'));
  });

  test('models.list includes the route', async () => {
    const names = [];
    for await (const m of sdk(gw).models.list()) names.push(m.id);
    assert.ok(names.includes('math-tutor'), `models: ${names}`);
  });

  test('sluice logs --request prints release, prompt and model of one request', async () => {
    for (const id of ids.v1) {
      assert.match(id, /^req_/);
      await gw.waitLog((l) => l.request_id === id);
      const out = await cliOk(d, 'logs', '--request', id);
      assert.match(out, new RegExp(`^request\\s+${id}$`, 'm'));
      assert.match(out, /^route\s+math-tutor$/m);
      assert.match(out, new RegExp(`^release\\s+${v1}$`, 'm'));
      assert.match(out, new RegExp(`^prompt\\s+${p1}$`, 'm'));
      assert.match(out, /^model\s+gsm8k-6b-verification \(upstream mock\)$/m);
      assert.match(out, /^status\s+200$/m);
    }
    const line = gw.requestLog().find((l) => l.request_id === ids.v1[0]);
    assert.equal(line.release, v1);
    assert.equal(line.prompt, p1);
    assert.equal(line.upstream_model, 'gsm8k-6b-verification');
    assert.equal(line.model, 'math-tutor');
    assert.equal(line.route, 'math-tutor');
    for (const k of ['adapter', 'index_version']) assert.ok(k in line, `log line has ${k}`);
  });

  test('sluice logs --release <id> --since 1h lists exactly that release\'s requests', async () => {
    const out = await cliOk(d, 'logs', '--release', v1, '--since', '1h');
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.request_id).sort(), [...ids.v1].sort());
    assert.ok(lines.every((l) => l.release === v1));
    const none = await cli(d, 'logs', '--release', v2, '--since', '1h');
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no matching requests/);
  });

  test('CLI promote v2 while serving: applied within 1 s, new lineage in headers and log', async () => {
    const out = await cliOk(d, 'route', 'promote', 'math-tutor', v2, '--reason', 'candidate');
    assert.equal(out.trim(), `math-tutor: ${v1} -> ${v2}`);
    const r = await waitFor(
      async () => {
        const x = await mathChat(gw);
        assert.equal(x.status, 200, x.text);
        return x.headers.get('x-sluice-release') === v2 ? x : null;
      },
      { timeout: ms(1000), interval: 10, what: 'v2 served' },
    );
    assert.equal(r.headers.get('x-sluice-prompt'), p2);
    assert.equal(r.json.model, 'gsm8k-175b-verification');
    const id = r.headers.get('x-request-id');
    ids.v2.push(id);
    await gw.waitLog((l) => l.request_id === id);
    const out2 = await cliOk(d, 'logs', '--route', 'math-tutor', '--release', v2);
    const lines = out2.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.request_id === id && l.upstream_model === 'gsm8k-175b-verification' && l.prompt === p2));
    assert.ok(lines.every((l) => l.release === v2));
    assert.equal((await cliOk(d, 'route', 'list')).trim(), `math-tutor  ${v2}`);
  });

  test('lineage: a new release descends from the route\'s stable release', async () => {
    const small = (await createRelease(d, V2_SMALL_MANIFEST)).id;
    const show = await cliOk(d, 'release', 'show', small);
    assert.match(show, new RegExp(`^parent\\s+${v2}$`, 'm'), show);
    const r = await admin(gw, 'GET', `/admin/v1/releases/${small}`, { token: gw.adminToken() });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.parent, v2);
    assert.equal(r.json.route, 'math-tutor');
    assert.equal(r.json.tuple.model.id, 'gsm8k-6b-verification');
  });
});

// ============================================================================ 4. rendering

describe('4. prompt rendering, as the upstream sees it', { timeout: 60_000 }, () => {
  let fake;
  let gw;
  let d;
  const rel = {};

  function write(dir, file, text) {
    writeFileSync(path.join(dir, file), text);
    return path.join(dir, file);
  }

  before(async () => {
    fake = await startFakeUpstream((req, res, body) => {
      let reqBody = {};
      try {
        reqBody = JSON.parse(body);
      } catch {
        /* the test inspects fake.requests */
      }
      if (reqBody.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: ${chunkEvent('ok')}\n\ndata: ${chunkEvent(null, { finish: 'stop' })}\n\ndata: [DONE]\n\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completionBody(reqBody.model, "ok"));
    });
    d = tempDir('sluice-render-');
    const m = tempDir('sluice-render-manifests-');
    write(m, 'p-vars.yaml', 'system: "You are a math tutor for {{grade}} graders. Be kind."\n');
    write(
      m,
      'vars.yaml',
      'route: tutor-vars\nmodel: {upstream: fake, id: fake-model-2024-01-01}\nprompt: {file: p-vars.yaml, mode: prepend_system}\n' +
        'params: {temperature: 0.2, max_tokens: 100}\noverridable: [max_tokens]\n',
    );
    write(
      m,
      'p-wrap.yaml',
      [
        'system: "Tutor for {{grade}} graders."',
        'few_shot:',
        '  - {role: user, content: "Solve: 1+1"}',
        '  - {role: assistant, content: "A: 2"}',
        'user: "Solve step by step: {{input}} (for {{name}})"',
        '',
      ].join('\n'),
    );
    write(m, 'wrap.yaml', 'route: tutor-wrap\nmodel: {upstream: fake, id: fake-model-2024-01-01}\nprompt: {file: p-wrap.yaml, mode: template_user}\n');
    write(m, 'p-replace.yaml', 'system: "Answer briefly."\nuser: "Question: {{question}}"\n');
    write(m, 'replace.yaml', 'route: tutor-replace\nmodel: {upstream: fake, id: fake-model-2024-01-01}\nprompt: {file: p-replace.yaml, mode: replace}\n');
    for (const name of ['vars', 'wrap', 'replace']) {
      rel[name] = (await createRelease(d, path.join(m, `${name}.yaml`))).id;
      await cliOk(d, 'route', 'promote', `tutor-${name}`, rel[name]);
    }
    gw = await startGateway({ upstreams: { fake: `${fake.url}/v1` }, dataDir: d });
  });
  after(async () => {
    await gw?.stop();
    await fake?.close();
  });

  const chatTo = (route, extra = {}, opts) =>
    postJSON(`${gw.url}/v1/chat/completions`, { model: route, messages: [{ role: 'user', content: 'What is 2+2?' }], ...extra }, opts);

  // The body the upstream received for the last request.
  function lastUpstream() {
    const r = fake.requests.at(-1);
    return { raw: r.body, json: JSON.parse(r.body), headers: r.headers };
  }

  test('a missing variable is a 400 missing_variable with param vars.grade; nothing reaches the upstream', async () => {
    const n = fake.requests.length;
    const r = await chatTo('tutor-vars');
    assert.equal(r.status, 400, r.text);
    assertOpenAIError(assert, r.json, { code: 'missing_variable', type: 'invalid_request_error' });
    assert.equal(r.json.error.param, 'vars.grade');
    assert.match(r.json.error.message, /grade/);
    assert.equal(r.headers.get('x-sluice-release'), rel.vars, 'the refusal still names the release');
    assert.equal(fake.requests.length, n, 'no upstream request');
    // With only an unrelated variable, still missing.
    const r2 = await chatTo('tutor-vars', { vars: { name: 'Ada' } });
    assert.equal(r2.status, 400);
    assert.equal(r2.json.error.param, 'vars.grade');
  });

  test('body vars: 200, the upstream gets the rendered system message first, the caller\'s messages after, no "vars"', async () => {
    const caller = [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '4' },
      { role: 'user', content: 'And 3+3?' },
    ];
    const r = await chatTo('tutor-vars', { messages: caller, vars: { grade: '5th' }, max_tokens: 7 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-sluice-release'), rel.vars);
    const up = lastUpstream();
    assert.ok(!('vars' in up.json), `"vars" reached the upstream: ${up.raw}`);
    assert.doesNotMatch(up.raw, /"vars"/);
    assert.deepEqual(up.json.messages, [{ role: 'system', content: 'You are a math tutor for 5th graders. Be kind.' }, ...caller]);
    assert.equal(up.json.model, 'fake-model-2024-01-01', 'pinned model id');
    assert.equal(up.json.temperature, 0.2, 'release params applied');
    assert.equal(up.json.max_tokens, 7, 'overridable param kept from the caller');
    assert.equal(up.headers['x-sluice-vars'], undefined);
  });

  test('a non-overridable param from the caller is replaced by the release\'s', async () => {
    const r = await chatTo('tutor-vars', { vars: { grade: '5th' }, temperature: 1.5 });
    assert.equal(r.status, 200, r.text);
    assert.equal(lastUpstream().json.temperature, 0.2);
    assert.equal(lastUpstream().json.max_tokens, 100);
  });

  test('x-sluice-vars header: 200, rendered, and the header is not forwarded', async () => {
    const r = await chatTo('tutor-vars', {}, { headers: { 'x-sluice-vars': JSON.stringify({ grade: '3rd' }) } });
    assert.equal(r.status, 200, r.text);
    const up = lastUpstream();
    assert.equal(up.json.messages[0].content, 'You are a math tutor for 3rd graders. Be kind.');
    assert.equal(up.headers['x-sluice-vars'], undefined, 'sluice headers stay at the gateway');
    assert.ok(!('vars' in up.json));
  });

  test('unicode, quotes, backslashes, newlines and control characters in a var are JSON-escaped correctly', async () => {
    const nasty = 'ünïcødé — «5th» 数学 🧮 "quoted" \\back\\slash\nnew line\ttab \u0001 </script> {{grade}}';
    const r = await chatTo('tutor-vars', { vars: { grade: nasty } });
    assert.equal(r.status, 200, r.text);
    const up = lastUpstream();
    assert.equal(up.json.messages[0].content, `You are a math tutor for ${nasty} graders. Be kind.`);
    assert.ok(!/[\u0000-\u001f]/.test(up.raw), 'no raw control characters in the upstream JSON');
    // The same through the header (HTTP headers are ASCII: non-ASCII as \u escapes).
    const asciiJSON = JSON.stringify({ grade: nasty }).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const r2 = await chatTo('tutor-vars', {}, { headers: { 'x-sluice-vars': asciiJSON } });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(lastUpstream().json.messages[0].content, `You are a math tutor for ${nasty} graders. Be kind.`);
  });

  test('a var value is not re-expanded, and a non-string var is rendered as JSON', async () => {
    const r = await chatTo('tutor-vars', { vars: { grade: '{{grade}}' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(lastUpstream().json.messages[0].content, 'You are a math tutor for {{grade}} graders. Be kind.');
    const r2 = await chatTo('tutor-vars', { vars: { grade: 5 } });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(lastUpstream().json.messages[0].content, 'You are a math tutor for 5 graders. Be kind.');
  });

  test('bad vars: a non-object "vars" and a non-JSON header are 400s', async () => {
    const n = fake.requests.length;
    const r = await chatTo('tutor-vars', { vars: 'grade=5th' });
    assert.equal(r.status, 400, r.text);
    assertOpenAIError(assert, r.json, { code: 'invalid_type' });
    assert.equal(r.json.error.param, 'vars');
    const r2 = await chatTo('tutor-vars', {}, { headers: { 'x-sluice-vars': 'grade=5th' } });
    assert.equal(r2.status, 400, r2.text);
    assertOpenAIError(assert, r2.json, { code: 'invalid_vars_header' });
    assert.equal(fake.requests.length, n);
  });

  test('template_user: body and header vars merge; only the last user message is wrapped; few-shot in front', async () => {
    const caller = [
      { role: 'system', content: 'caller system' },
      { role: 'user', content: 'first q' },
      { role: 'assistant', content: 'first a' },
      { role: 'user', content: 'second "q"\n?' },
    ];
    const r = await chatTo('tutor-wrap', { messages: caller, vars: { grade: '5th' } }, { headers: { 'x-sluice-vars': '{"name":"Ada"}' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-sluice-release'), rel.wrap);
    const up = lastUpstream();
    assert.deepEqual(up.json.messages, [
      { role: 'system', content: 'Tutor for 5th graders.' },
      { role: 'user', content: 'Solve: 1+1' },
      { role: 'assistant', content: 'A: 2' },
      { role: 'system', content: 'caller system' },
      { role: 'user', content: 'first q' },
      { role: 'assistant', content: 'first a' },
      { role: 'user', content: 'Solve step by step: second "q"\n? (for Ada)' },
    ]);
    assert.ok(!('vars' in up.json));
    // Without {{name}}: missing_variable names it.
    const r2 = await chatTo('tutor-wrap', { vars: { grade: '5th' } });
    assert.equal(r2.status, 400);
    assert.equal(r2.json.error.param, 'vars.name');
  });

  test('template_user: the wrapped message is the last user message even when it uses content parts', async () => {
    const caller = [
      { role: 'user', content: 'first q' },
      { role: 'assistant', content: 'first a' },
      { role: 'user', content: [{ type: 'text', text: 'second q' }] },
    ];
    const n = fake.requests.length;
    const r = await chatTo('tutor-wrap', { messages: caller, vars: { grade: '5th', name: 'Ada' } });
    if (r.status === 400) return; // refusing content parts is acceptable
    assert.equal(r.status, 200, r.text);
    assert.equal(fake.requests.length, n + 1);
    const msgs = lastUpstream().json.messages;
    const earlier = msgs.find((m) => m.role === 'user' && typeof m.content === 'string' && m.content.includes('first q'));
    assert.equal(
      earlier?.content,
      'first q',
      `an earlier user message was wrapped as {{input}} instead of the last one:\n${JSON.stringify(msgs, null, 1)}`,
    );
  });

  test('replace mode: the caller\'s messages are replaced by the prompt\'s', async () => {
    const r = await chatTo('tutor-replace', { vars: { question: 'Why is the sky blue?' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(lastUpstream().json.messages, [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'Question: Why is the sky blue?' },
    ]);
  });

  test('streaming requests are rendered the same way', async () => {
    const r = await chatTo('tutor-vars', { vars: { grade: '7th' }, stream: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-sluice-release'), rel.vars);
    assert.match(r.text, /data: \[DONE\]/);
    const up = lastUpstream();
    assert.equal(up.json.stream, true);
    assert.equal(up.json.messages[0].content, 'You are a math tutor for 7th graders. Be kind.');
    assert.ok(!('vars' in up.json));
  });
});

// ============================================================================ 5. rollback under load

describe('5. rollback under load', { timeout: 90_000 }, () => {
  let d;
  let gw;
  let v1;
  let v2;

  before(async () => {
    d = tempDir('sluice-load-');
    v1 = (await createRelease(d, V1_MANIFEST)).id;
    v2 = (await createRelease(d, V2_MANIFEST)).id;
    await cliOk(d, 'route', 'promote', 'math-tutor', v1, '--reason', 'baseline');
    gw = await startGateway({ upstreams: { mock: `${mock.url}/v1` }, dataDir: d });
  });
  after(async () => {
    await gw?.stop();
  });

  // `concurrency` loops of short math-tutor requests until stop(); every result is recorded.
  function load(concurrency = 8) {
    const results = [];
    let stopped = false;
    const deadline = performance.now() + ms(30_000); // never outlive a failed test
    const loop = async () => {
      while (!stopped && performance.now() < deadline) {
        const sent = performance.now();
        try {
          const r = await mathChat(gw, { max_tokens: 4 });
          results.push({
            sent,
            recv: performance.now(),
            status: r.status,
            release: r.headers.get('x-sluice-release'),
            id: r.headers.get('x-request-id'),
            text: r.status === 200 ? '' : r.text,
          });
        } catch (e) {
          results.push({ sent, recv: performance.now(), status: 0, error: e.message });
        }
      }
    };
    const loops = Array.from({ length: concurrency }, loop);
    return {
      results,
      async stop() {
        stopped = true;
        await Promise.all(loops);
        return results;
      },
    };
  }

  function analyze(t, label, results, switchedAt, newer, older) {
    const failed = results.filter((r) => r.status !== 200);
    const lateNewer = results.filter((r) => r.release === newer && r.recv > switchedAt);
    const lastNewerRecv = Math.max(switchedAt, ...results.filter((r) => r.release === newer).map((r) => r.recv));
    const lastNewerSent = Math.max(-Infinity, ...results.filter((r) => r.release === newer).map((r) => r.sent));
    const latency = lastNewerRecv - switchedAt;
    const stats = {
      requests: results.length,
      failed: failed.length,
      [newer]: results.filter((r) => r.release === newer).length,
      [older]: results.filter((r) => r.release === older).length,
      newer_responses_after_return: lateNewer.length,
      last_newer_response_after_return_ms: Number(latency.toFixed(1)),
      last_newer_request_sent_after_return_ms: Number((lastNewerSent - switchedAt).toFixed(1)),
    };
    t.diagnostic(`${label}: ${JSON.stringify(stats)}`);
    console.log(`[releases] ${label}: ${JSON.stringify(stats)}`);
    assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
    return { latency, lastNewerSent: lastNewerSent - switchedAt, stats };
  }

  // Every response's release header agrees with its request-log line.
  async function assertLogAgrees(results) {
    await gw.waitLog((l) => l.request_id === results.at(-1).id, ms(5000));
    const log = new Map(gw.requestLog().map((l) => [l.request_id, l]));
    for (const r of results) {
      const l = log.get(r.id);
      assert.ok(l, `request ${r.id} not in the request log`);
      assert.equal(l.release, r.release, `log release of ${r.id}`);
    }
  }

  test('CLI: promote v2, then `sluice rollback` during 8 concurrent loops: no failures, v1 back within 1 s', async (t) => {
    const L = load(8);
    let results;
    let returnedAt;
    try {
      await sleep(500);
      await cliOk(d, 'route', 'promote', 'math-tutor', v2, '--reason', 'canary');
      const promotedAt = performance.now();
      await waitFor(() => L.results.some((r) => r.release === v2 && r.sent > promotedAt), {
        timeout: ms(2000),
        what: 'v2 serving after CLI promote',
      });
      await sleep(700);
      const rb = await cli(d, 'rollback', 'math-tutor', '--reason', 'regression');
      assert.equal(rb.code, 0, rb.stderr);
      assert.equal(rb.stdout.trim(), `math-tutor: ${v2} -> ${v1} (rolled back)`);
      returnedAt = rb.exitedAt;
      await sleep(ms(1000) + 1000);  // longer than the tail window checked below
    } finally {
      results = await L.stop();
    }
    const { latency, stats } = analyze(t, 'CLI rollback', results, returnedAt, v2, v1);
    assert.ok(stats[v2] > 0, 'v2 served between promote and rollback');
    assert.ok(latency < ms(1000), `a v2 response arrived ${latency.toFixed(0)} ms after the rollback command returned`);
    const tail = results.filter((r) => r.sent > returnedAt + ms(1000));
    assert.ok(tail.length > 0, 'traffic continued after the rollback');
    assert.ok(tail.every((r) => r.release === v1), 'v1 serves after the rollback');
    await assertLogAgrees(results);
    const routes = await admin(gw, 'GET', '/admin/v1/routes', { token: gw.adminToken() });
    const mt = routes.json.routes.find((r) => r.name === 'math-tutor');
    assert.equal(mt.stable_release, v1);
    assert.deepEqual(
      mt.history.map((h) => [h.action, h.previous, h.release, h.reason]),
      [
        ['promote', '', v1, 'baseline'],
        ['promote', v1, v2, 'canary'],
        ['rollback', v2, v1, 'regression'],
      ],
    );
  });

  test('admin API: promote v2, then POST .../rollback during 8 concurrent loops: no failures, no v2 after the answer', async (t) => {
    const token = gw.adminToken();
    const L = load(8);
    let results;
    let p;
    let rb;
    try {
      await sleep(500);
      p = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/promote', { token, body: { release: v2, reason: 'canary 2' } });
      assert.equal(p.status, 200, p.text);
      assert.deepEqual(p.json, { route: 'math-tutor', before: v1, stable_release: v2, applied: true });
      await sleep(800);
      assert.ok(L.results.some((r) => r.release === v2 && r.sent > p.at), 'v2 serves right after the promote answer');
      rb = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/rollback', { token, body: { reason: 'regression 2' } });
      assert.equal(rb.status, 200, rb.text);
      assert.deepEqual(rb.json, { route: 'math-tutor', before: v2, stable_release: v1, applied: true });
      await sleep(ms(1000) + 1000);  // longer than the tail window checked below
    } finally {
      results = await L.stop();
    }
    const { latency, lastNewerSent } = analyze(t, 'admin API rollback', results, rb.at, v2, v1);
    assert.ok(latency < ms(1000), `a v2 response arrived ${latency.toFixed(0)} ms after the rollback answer`);
    assert.ok(lastNewerSent <= 0, `a request sent ${lastNewerSent.toFixed(1)} ms after the rollback answer was served by v2`);
    const afterPromote = results.filter((r) => r.sent > p.at && r.sent < rb.at - 300);
    assert.ok(afterPromote.length > 0 && afterPromote.every((r) => r.release === v2), 'every request sent after the promote answer got v2');
    await assertLogAgrees(results);
  });

  test('rollback with nothing to roll back to is refused (409), and the route keeps serving', async () => {
    const d2 = tempDir('sluice-load-norb-');
    const only = (await createRelease(d2, V1_MANIFEST)).id;
    await cliOk(d2, 'route', 'promote', 'math-tutor', only);
    const r = await cli(d2, 'rollback', 'math-tutor');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no earlier known good release/);
    const g = await startGateway({ upstreams: { mock: `${mock.url}/v1` }, dataDir: d2 });
    try {
      const a = await admin(g, 'POST', '/admin/v1/routes/math-tutor/rollback', { token: g.adminToken(), body: {} });
      assert.equal(a.status, 409, a.text);
      assertOpenAIError(assert, a.json, { code: 'route_change_refused' });
      const x = await mathChat(g);
      assert.equal(x.status, 200);
      assert.equal(x.headers.get('x-sluice-release'), only);
    } finally {
      await g.stop();
    }
  });
});

// ============================================================================ 6. admin auth and roles

describe('6. admin API: tokens, roles and the audit log', { timeout: 60_000 }, () => {
  let d;
  let gw;
  let v1;
  let v2;
  const tok = {
    viewer: `sk-view-${randomBytes(12).toString('hex')}`,
    operator: `sk-ops-${randomBytes(12).toString('hex')}`,
    admin: `sk-adm-${randomBytes(12).toString('hex')}`,
  };

  before(async () => {
    d = tempDir('sluice-auth-');
    v1 = (await createRelease(d, V1_MANIFEST)).id;
    v2 = (await createRelease(d, V2_MANIFEST)).id;
    await cliOk(d, 'route', 'promote', 'math-tutor', v1, '--reason', 'baseline');
    gw = await startGateway({
      upstreams: { mock: `${mock.url}/v1` },
      dataDir: d,
      config: {
        admin: {
          tokens: [
            { name: 'ro', role: 'viewer', token_sha256: sha256(tok.viewer) },
            { name: 'ops', role: 'operator', token_sha256: sha256(tok.operator) },
            { name: 'root', role: 'admin', token_sha256: sha256(tok.admin) },
          ],
        },
      },
    });
  });
  after(async () => {
    await gw?.stop();
  });

  test('no bootstrap token is generated when tokens are configured', () => {
    assert.ok(!existsSync(path.join(d, 'admin.token')));
  });

  test('401 without a token or with a wrong one, on reads and on promote', async () => {
    for (const [method, p, body] of [
      ['GET', '/admin/v1/releases'],
      ['GET', `/admin/v1/releases/${v1}`],
      ['GET', '/admin/v1/routes'],
      ['GET', '/admin/v1/audit'],
      ['POST', '/admin/v1/routes/math-tutor/promote', { release: v2 }],
      ['POST', '/admin/v1/routes/math-tutor/rollback', {}],
    ]) {
      for (const token of [undefined, 'sk-wrong', sha256(tok.admin)]) {
        const r = await admin(gw, method, p, { token, body });
        assert.equal(r.status, 401, `${method} ${p} with ${token ?? 'no token'}: ${r.status} ${r.text}`);
        assertOpenAIError(assert, r.json);
      }
    }
    const routes = await admin(gw, 'GET', '/admin/v1/routes', { token: tok.viewer });
    assert.equal(routes.json.routes[0].stable_release, v1, 'nothing changed');
  });

  test('a viewer reads releases, routes and audit; promote and rollback are 403 and change nothing', async () => {
    const list = await admin(gw, 'GET', '/admin/v1/releases', { token: tok.viewer });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.releases.map((r) => r.id).sort(), [v1, v2].sort());
    const filtered = await admin(gw, 'GET', '/admin/v1/releases?route=nope', { token: tok.viewer });
    assert.deepEqual(filtered.json.releases, []);
    const one = await admin(gw, 'GET', `/admin/v1/releases/${v2}`, { token: tok.viewer });
    assert.equal(one.status, 200);
    assert.equal(one.json.id, v2);
    assert.equal(one.json.tuple.model.id, 'gsm8k-175b-verification');
    const missing = await admin(gw, 'GET', '/admin/v1/releases/rel_ffffffff', { token: tok.viewer });
    assert.equal(missing.status, 404);
    assertOpenAIError(assert, missing.json, { code: 'release_not_found' });

    const p = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/promote', { token: tok.viewer, body: { release: v2, reason: 'sneaky' } });
    assert.equal(p.status, 403, p.text);
    assertOpenAIError(assert, p.json, { code: 'insufficient_role', type: 'permission_error' });
    const rb = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/rollback', { token: tok.viewer, body: {} });
    assert.equal(rb.status, 403);
    const x = await mathChat(gw);
    assert.equal(x.headers.get('x-sluice-release'), v1, 'still v1 on the data plane');
    assert.equal((await cliOk(d, 'route', 'list')).trim(), `math-tutor  ${v1}`);
  });

  test('an operator promotes (applied at once), bad promotes are refused', async () => {
    const bad = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/promote', { token: tok.operator, body: { reason: 'x' } });
    assert.equal(bad.status, 400);
    assertOpenAIError(assert, bad.json, { code: 'missing_release' });
    const nf = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/promote', { token: tok.operator, body: { release: 'rel_ffffffff' } });
    assert.equal(nf.status, 404);
    const other = await admin(gw, 'POST', '/admin/v1/routes/other-route/promote', { token: tok.operator, body: { release: v2 } });
    assert.equal(other.status, 409, other.text);
    assertOpenAIError(assert, other.json, { code: 'route_change_refused' });

    const p = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/promote', { token: tok.operator, body: { release: v2, reason: 'ship it' } });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.json, { route: 'math-tutor', before: v1, stable_release: v2, applied: true });
    const x = await mathChat(gw);
    assert.equal(x.status, 200);
    assert.equal(x.headers.get('x-sluice-release'), v2, 'applied before the answer');
  });

  test('the audit log has the refusals and the promote with actor token:<name>, and no secrets', async () => {
    const r = await admin(gw, 'GET', '/admin/v1/audit?limit=200', { token: tok.viewer });
    assert.equal(r.status, 200, r.text);
    const audit = r.json.audit;
    for (let i = 1; i < audit.length; i++) assert.ok(audit[i - 1].seq > audit[i].seq, 'newest first');
    const promotePath = 'POST /admin/v1/routes/math-tutor/promote';
    const has = (pred, what) => assert.ok(audit.some(pred), `audit lacks ${what}:\n${JSON.stringify(audit, null, 1)}`);
    has((e) => e.actor === 'anonymous' && e.outcome === 'unauthenticated' && e.target === promotePath, 'anonymous promote (unauthenticated)');
    has((e) => e.actor === 'invalid-token' && e.outcome === 'unauthenticated' && e.target === promotePath, 'wrong-token promote');
    has((e) => e.actor === 'token:ro' && e.outcome === 'denied' && e.target === promotePath, 'viewer promote (denied)');
    has(
      (e) => e.actor === 'token:ro' && e.outcome === 'denied' && e.target === 'POST /admin/v1/routes/math-tutor/rollback',
      'viewer rollback (denied)',
    );
    has(
      (e) =>
        e.action === 'route.promote' &&
        e.actor === 'token:ops' &&
        e.outcome === 'ok' &&
        e.target === 'math-tutor' &&
        e.before === v1 &&
        e.after === v2 &&
        e.reason === 'ship it',
      'the operator promote',
    );
    assert.ok(!audit.some((e) => e.action === 'route.promote' && e.after === v2 && e.actor !== 'token:ops'), 'only one promote to v2');
    const text = JSON.stringify(audit);
    for (const secret of Object.values(tok)) assert.ok(!text.includes(secret), 'a token appears in the audit log');
    // The CLI reads the same log.
    const fromCli = await auditCli(d);
    assert.ok(fromCli.some((e) => e.actor === 'token:ro' && e.outcome === 'denied'));
    // ?limit is honoured.
    const lim = await admin(gw, 'GET', '/admin/v1/audit?limit=2', { token: tok.viewer });
    assert.equal(lim.json.audit.length, 2);
    assert.equal(lim.json.audit[0].seq, audit[0].seq, 'reads are not audited: the newest entry is unchanged');
  });

  test('an admin token can roll back; the rollback is audited with its actor', async () => {
    const rb = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/rollback', { token: tok.admin, body: { reason: 'undo' } });
    assert.equal(rb.status, 200, rb.text);
    assert.equal(rb.json.stable_release, v1);
    const audit = (await admin(gw, 'GET', '/admin/v1/audit?limit=5', { token: tok.admin })).json.audit;
    const e = audit.find((x) => x.action === 'route.rollback');
    assert.ok(e, JSON.stringify(audit));
    assert.equal(e.actor, 'token:root');
    assert.equal(e.before, v2);
    assert.equal(e.after, v1);
    assert.equal(e.reason, 'undo');
  });
});

// ============================================================================ 7. kill -9

describe('7. durability across kill -9', { timeout: 60_000 }, () => {
  test('an admin promote and a CLI release create survive SIGKILL right after they answer', async () => {
    const d = tempDir('sluice-kill-');
    const v1 = (await createRelease(d, V1_MANIFEST)).id;
    await cliOk(d, 'route', 'promote', 'math-tutor', v1);
    const g1 = await startGateway({ upstreams: { mock: `${mock.url}/v1` }, dataDir: d });
    const token = g1.adminToken();
    // While g1 runs: v2 created by the CLI; then, at the same time, a promote through g1's admin
    // API and another CLI release create (two processes writing); SIGKILL as soon as both answered.
    const v2 = (await createRelease(d, V2_MANIFEST)).id;
    const [p, created] = await Promise.all([
      admin(g1, 'POST', '/admin/v1/routes/math-tutor/promote', { token, body: { release: v2, reason: 'before the crash' } }),
      createRelease(d, V2_SMALL_MANIFEST),
    ]);
    g1.proc.signal('SIGKILL');
    const small = created.id;
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.stable_release, v2);
    const e1 = await g1.proc.exited;
    assert.equal(e1.signal, 'SIGKILL');

    const g2 = await startGateway({ upstreams: { mock: `${mock.url}/v1` }, dataDir: d });
    try {
      assert.equal(g2.adminToken(), token, 'same bootstrap token');
      const routes = await admin(g2, 'GET', '/admin/v1/routes', { token });
      assert.equal(routes.status, 200, routes.text);
      const mt = routes.json.routes.find((r) => r.name === 'math-tutor');
      assert.equal(mt.stable_release, v2, 'the promote survived');
      assert.deepEqual(mt.history.map((h) => h.release), [v1, v2]);
      const rel = await admin(g2, 'GET', '/admin/v1/releases', { token });
      assert.deepEqual(rel.json.releases.map((r) => r.id).sort(), [v1, v2, small].sort(), 'all releases survived');
      const audit = (await admin(g2, 'GET', '/admin/v1/audit?limit=100', { token })).json.audit;
      assert.ok(
        audit.some((e) => e.action === 'route.promote' && e.actor === 'token:bootstrap' && e.after === v2 && e.reason === 'before the crash'),
        'promote audit entry survived',
      );
      for (const id of [v1, v2, small]) assert.ok(audit.some((e) => e.action === 'release.create' && e.target === id), `release.create ${id}`);
      const x = await mathChat(g2);
      assert.equal(x.status, 200, x.text);
      assert.equal(x.headers.get('x-sluice-release'), v2, 'the restarted gateway serves the promoted release');
      const rb = await admin(g2, 'POST', '/admin/v1/routes/math-tutor/rollback', { token, body: { reason: 'after restart' } });
      assert.equal(rb.status, 200, rb.text);
      assert.equal(rb.json.stable_release, v1, 'rollback history survived too');
    } finally {
      await g2.stop();
    }
  });
});

// ============================================================================ 8. unappliable promote

describe('8. a promote the gateway cannot apply', { timeout: 60_000 }, () => {
  let d;
  let gw;
  let v1;
  let vx;

  before(async () => {
    d = tempDir('sluice-unapplied-');
    // The v1 release, but on an upstream this gateway does not have.
    const m = tempDir('sluice-unapplied-m-');
    mkdirSync(path.join(m, 'prompts'));
    cpSync(path.join(EXAMPLE, 'prompts/tutor-v1.yaml'), path.join(m, 'prompts', 'tutor-v1.yaml'));
    writeFileSync(path.join(m, 'elsewhere.yaml'), readFileSync(V1_MANIFEST, 'utf8').replace('upstream: mock', 'upstream: elsewhere'));
    v1 = (await createRelease(d, V1_MANIFEST)).id;
    vx = (await createRelease(d, path.join(m, 'elsewhere.yaml'))).id;
    await cliOk(d, 'route', 'promote', 'math-tutor', v1);
    gw = await startGateway({ upstreams: { mock: `${mock.url}/v1` }, dataDir: d });
  });
  after(async () => {
    await gw?.stop();
  });

  test('admin promote of a release whose upstream is not configured is refused and leaves the route unchanged', async () => {
    const token = gw.adminToken();
    const p = await admin(gw, 'POST', '/admin/v1/routes/math-tutor/promote', { token, body: { release: vx, reason: 'oops' } });
    const routes = await admin(gw, 'GET', '/admin/v1/routes', { token });
    const stable = routes.json.routes.find((r) => r.name === 'math-tutor').stable_release;
    const x = await mathChat(gw);
    assert.equal(x.status, 200);
    assert.equal(x.headers.get('x-sluice-release'), v1, 'the data plane keeps v1');
    assert.ok(
      p.status >= 400 && p.status < 500 && stable === v1,
      `promote answered ${p.status} ${p.text}, and the store's stable release is now ${stable} ` +
        `(${stable === vx ? 'the unappliable release: committed although it was not applied' : 'v1'})`,
    );
  });

  test('after that attempt the gateway still restarts on the same data dir and serves the route', async () => {
    await gw.stop();
    gw = undefined;
    let g;
    try {
      g = await startGateway({ upstreams: { mock: `${mock.url}/v1` }, dataDir: d });
    } catch (e) {
      assert.fail(`the gateway no longer starts: ${e.message.split('\n').find((l) => l.startsWith('error:')) ?? e.message}`);
    }
    try {
      const x = await mathChat(g);
      assert.equal(x.status, 200, x.text);
      assert.equal(x.headers.get('x-sluice-release'), v1);
    } finally {
      await g.stop();
    }
  });
});
