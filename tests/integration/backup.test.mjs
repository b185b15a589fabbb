// backup.test.mjs: online backup and restore of the SQLite store (`sluice store backup`,
// `sluice store restore`, docs/replicas.md). A gateway keeps serving the official OpenAI
// client while a canary runs, the CLI keeps creating and promoting releases, and a backup is
// taken in the middle of it all. The backup restores into a fresh data directory holding one
// consistent moment of the store: every release, route, rollout and audit entry committed
// before the backup began, each exactly as the source holds it; a gateway started on the
// restored store serves the same routes with the same releases and resumes the rollout.
// A PostgreSQL store is refused with a pointer to pg_dump.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

import { SLUICE_BIN, ms, requestJSON, startGateway, startMock, tempDir, waitFor } from './harness.mjs';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/rollouts');

function runSluice(args, { env = {}, timeout = ms(15000) } = {}) {
  return new Promise((resolve) => {
    const c = spawn(SLUICE_BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeout);
    c.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function cliOk(dataDir, ...args) {
  const r = await runSluice([...args, '--data-dir', dataDir]);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

async function createRelease(dataDir, manifest) {
  const m = /^(rel_[0-9a-f]{8})/.exec(await cliOk(dataDir, 'release', 'create', manifest));
  assert.ok(m, 'release create prints the id');
  return m[1];
}

// Everything compared, read through the CLI: audit entries by seq, releases, routes.
async function contents(dataDir) {
  const [auditOut, releasesOut, routesOut] = await Promise.all([
    cliOk(dataDir, 'audit', '--limit', '100000'),
    cliOk(dataDir, 'release', 'list'),
    cliOk(dataDir, 'route', 'list'),
  ]);
  const audit = JSON.parse(auditOut).audit;
  const releases = releasesOut
    .split('\n')
    .filter((l) => l.startsWith('rel_'))
    .map((l) => l.split(/\s+/).slice(0, 2).join(' '));
  const routes = Object.fromEntries(
    routesOut.split('\n').filter((l) => /\S+\s+rel_/.test(l)).map((l) => l.trim().split(/\s+/)),
  );
  return { audit: new Map(audit.map((e) => [e.seq, e])), releases: new Set(releases), routes };
}

function gatewayConfig(mocks) {
  return { upstreams: Object.entries(mocks).map(([name, m]) => ({ name, url: `${m.url}/v1` })) };
}

// Closed-loop traffic through the official client on two routes; every answer recorded.
function traffic(gw, routes) {
  const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-unused', maxRetries: 0, timeout: ms(20000) });
  const log = [];
  let stopped = false;
  let n = 0;
  const worker = async () => {
    while (!stopped) {
      const i = n++;
      const rec = { route: routes[i % routes.length], t0: Date.now() };
      try {
        const { data, response } = await client.chat.completions
          .create({ model: rec.route, messages: [{ role: 'user', content: `hello ${i}` }] })
          .withResponse();
        rec.status = response.status;
        rec.release = response.headers.get('x-sluice-release');
        rec.ok = typeof data.choices?.[0]?.message?.content === 'string';
      } catch (e) {
        rec.status = e.status ?? 'network';
        rec.error = e.message;
      }
      rec.t1 = Date.now();
      log.push(rec);
    }
  };
  const done = Promise.all(Array.from({ length: 3 }, worker));
  return {
    log,
    async stop() {
      stopped = true;
      await done;
      return log;
    },
  };
}

describe('online backup under traffic and writes, restore into a fresh data directory', { timeout: ms(60000) }, () => {
  let mockA;
  let mockB;
  let gw;
  let restored;
  let d;
  let stable;
  let candidate;
  let rolloutId;
  let backupFile;
  let beforeBackup;
  let atBackup;
  let source;
  let load;
  const written = []; // side releases the CLI created and promoted, in order

  before(async () => {
    [mockA, mockB] = await Promise.all(
      [0, 1].map(() => startMock({ config: { seed: 3, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [4, 12] } } })),
    );
    d = tempDir('sluice-backup-src-');
    [stable, candidate] = await Promise.all(['chat-stable.yaml', 'chat-candidate.yaml'].map((f) => createRelease(d, path.join(FIX, f))));
    await Promise.all([
      cliOk(d, 'route', 'promote', 'canary-chat', stable, '--reason', 'baseline'),
      cliOk(d, 'route', 'policy', 'canary-chat', '--no-approval', '--reason', 'backup test'),
    ]);
    // A canary that holds at 50% for longer than the test: the restored store must resume it.
    const spec = path.join(tempDir('sluice-backup-spec-'), 'spec.yaml');
    writeFileSync(spec, 'strategy: canary\nsteps:\n  - setWeight: 50\n  - pause: 1h\n  - setWeight: 100\ngates: []\n');
    const out = await cliOk(d, 'rollout', 'start', 'canary-chat', '--to', candidate, '--spec', spec, '--override', '--reason', 'backup test');
    rolloutId = /started rollout (ro_[0-9a-f]+)/.exec(out)?.[1];
    assert.ok(rolloutId, out);
    await writeSide(0);
    gw = await startGateway({ dataDir: d, config: gatewayConfig({ 'mock-a': mockA, 'mock-b': mockB }) });
  });
  after(async () => {
    await load?.stop();
    await Promise.all([gw?.stop(), restored?.stop?.()]);
    await Promise.all([mockA?.stop(), mockB?.stop()]);
  });

  // The CLI's writes: a new release of route side-chat, created and promoted, again and again.
  async function writeSide(n) {
    const manifest = path.join(d, `side-${n}.yaml`);
    writeFileSync(manifest, `route: side-chat\nmodel: {upstream: mock-a, id: chat-a}\nlabels: {n: "${n}"}\n`);
    const id = await createRelease(d, manifest);
    await cliOk(d, 'route', 'promote', 'side-chat', id, '--reason', `side ${n}`);
    written.push(id);
  }

  test('`sluice store backup` while the gateway serves and the CLI writes', async () => {
    load = traffic(gw, ['canary-chat', 'side-chat']);
    let writing = true;
    let n = 1;
    const writer = (async () => {
      while (writing) await writeSide(n++);
    })();
    await waitFor(() => written.length >= 2 && load.log.length >= 10, { timeout: ms(15000), what: 'writes and traffic' });

    beforeBackup = await contents(d);
    backupFile = path.join(tempDir('sluice-backups-'), 'sluice.backup');
    const writtenAtStart = written.length;
    const t0 = Date.now();
    const r = await runSluice(['store', 'backup', backupFile, '--data-dir', d]);
    const t1 = Date.now();
    // A write after the backup: the source moves on past the backup's moment.
    await waitFor(() => written.length >= writtenAtStart + 1, { timeout: ms(10000), what: 'writes after the backup' });
    writing = false;
    await writer;
    const log = await load.stop();
    load = undefined;

    assert.equal(r.code, 0, `store backup: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /backed up .*sluice\.db to .*sluice\.backup: .*schema version \d+/);
    assert.match(r.stdout, /integrity ok/);
    assert.match(r.stdout, /\d+ releases, \d+ routes/);
    assert.ok(existsSync(`${backupFile}.sha256`));
    const sum = readFileSync(`${backupFile}.sha256`, 'utf8');
    assert.match(sum, /^[0-9a-f]{64} {2}sluice\.backup\n$/);
    assert.ok(r.stdout.includes(sum.slice(0, 64)), 'the printed checksum is the file\'s');

    // The gateway kept serving: every request answered, those during the backup included.
    const failed = log.filter((x) => x.status !== 200 || !x.ok);
    assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
    const during = log.filter((x) => x.t1 >= t0 && x.t0 <= t1);
    assert.ok(during.length >= 1, `requests answered while the backup ran (${t1 - t0} ms): ${during.length}`);
    assert.ok(log.some((x) => x.release === candidate), 'the canary served the candidate');
    source = await contents(d);
  });

  test('`sluice store restore` into a fresh data directory: one consistent moment, nothing lost', async () => {
    assert.ok(source, 'needs the backup');
    const fresh = path.join(tempDir('sluice-backup-dst-'), 'data');
    // Never over a data directory in use without --force.
    const [refused, out] = await Promise.all([
      runSluice(['store', 'restore', backupFile, '--data-dir', d]),
      cliOk(fresh, 'store', 'restore', backupFile),
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /not empty/);
    assert.match(out, /restored .*sluice\.backup as .*sluice\.db: .*integrity ok/);
    let verify;
    [verify, atBackup] = await Promise.all([runSluice(['store', 'verify', backupFile]), contents(fresh)]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /integrity ok/);
    // Every audit entry committed before the backup began, unchanged.
    for (const [seq, e] of beforeBackup.audit) assert.deepEqual(atBackup.audit.get(seq), e, `audit entry ${seq}`);
    // The restored log is a prefix of the source's: no entry invented, altered or skipped.
    const seqs = [...atBackup.audit.keys()].sort((a, b) => a - b);
    for (const seq of seqs) assert.deepEqual(atBackup.audit.get(seq), source.audit.get(seq), `audit entry ${seq}`);
    for (const [seq] of source.audit) if (seq <= seqs[seqs.length - 1]) assert.ok(atBackup.audit.has(seq), `audit entry ${seq} lost`);
    assert.ok(source.audit.size > atBackup.audit.size, 'the source moved on after the backup');

    // Releases: all from before the backup, and exactly those the restored audit log created.
    for (const r of beforeBackup.releases) assert.ok(atBackup.releases.has(r), `release ${r} lost`);
    const created = [...atBackup.audit.values()].filter((e) => e.action === 'release.create').map((e) => e.target);
    assert.deepEqual([...atBackup.releases].map((r) => r.split(' ')[0]).sort(), created.sort());
    for (const r of atBackup.releases) assert.ok(source.releases.has(r), `release ${r} is the source's`);

    // Routes: each restored route's stable release is the last one its restored audit promoted.
    for (const route of Object.keys(beforeBackup.routes)) assert.ok(route in atBackup.routes, `route ${route} lost`);
    for (const [route, rel] of Object.entries(atBackup.routes)) {
      const last = seqs.map((s) => atBackup.audit.get(s)).filter((e) => e.target === route && e.action === 'route.promote').pop();
      assert.equal(rel, last?.after, `route ${route}`);
    }
    assert.equal(atBackup.routes['canary-chat'], stable);
    assert.ok(written.indexOf(atBackup.routes['side-chat']) >= written.indexOf(beforeBackup.routes['side-chat']));
    restored = { dir: fresh };
  });

  test('a gateway on the restored store serves the same routes and resumes the rollout', async () => {
    assert.ok(restored?.dir, 'needs the restore');
    const [a, b] = [mockA, mockB];
    restored = await startGateway({ dataDir: restored.dir, config: gatewayConfig({ 'mock-a': a, 'mock-b': b }) });
    const client = new OpenAI({ baseURL: restored.baseURL, apiKey: 'sk-unused', maxRetries: 0 });
    const { response } = await client.chat.completions
      .create({ model: 'side-chat', messages: [{ role: 'user', content: 'after the restore' }] })
      .withResponse();
    assert.equal(response.headers.get('x-sluice-release'), atBackup.routes['side-chat']);
    const seen = new Set();
    for (let i = 0; i < 30 && seen.size < 2; i++) {
      const r = await client.chat.completions
        .create({ model: 'canary-chat', messages: [{ role: 'user', content: `canary ${i}` }] })
        .withResponse();
      seen.add(r.response.headers.get('x-sluice-release'));
    }
    for (const rel of seen) assert.ok([stable, candidate].includes(rel), rel);
    const token = restored.adminToken();
    const st = await requestJSON('GET', `${restored.adminUrl}/admin/v1/rollouts/canary-chat`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.json.id, rolloutId);
    assert.equal(st.json.status, 'running');
    assert.equal(st.json.candidate, candidate);
    assert.equal(st.json.weight, 50);
    // The restored store takes writes and continues the audit log after the restored entries.
    await cliOk(restored.dataDir, 'route', 'promote', 'side-chat', written[0], '--reason', 'after restore');
    const audit = JSON.parse(await cliOk(restored.dataDir, 'audit', '--limit', '1')).audit;
    assert.equal(audit[0].action, 'route.promote');
    assert.ok(audit[0].seq > Math.max(...atBackup.audit.keys()));
  });

  test('a PostgreSQL store is refused with a pointer to pg_dump (and no password shown)', async () => {
    const url = 'postgres://sluice:s3cret@127.0.0.1:1/sluice';
    const cases = [
      ['store', 'backup', '/tmp/never.backup', '--store', url],
      ['store', 'restore', backupFile ?? '/tmp/never.backup', '--data-dir', tempDir('sluice-backup-pg-')],
    ];
    const results = await Promise.all(cases.map((args) => runSluice(args, { env: { SLUICE_STORE_URL: args.includes('--store') ? '' : url } })));
    for (const [i, args] of cases.entries()) {
      const r = results[i];
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /PostgreSQL.*pg_dump/s);
      assert.doesNotMatch(r.stderr + r.stdout, /s3cret/);
    }
    assert.equal(existsSync('/tmp/never.backup'), false);
  });
});
