// flags_differential.test.mjs: `sluice flag eval` against the reference, @openfeature/flagd-core
// 4.0.1 (json-logic-engine 5.0.7 in compiled mode, imurmurhash, semver). One rich flag set
// (fixtures/flags/differential.json: every operator sluice evaluates, $evaluators with nested
// $refs, every flag type, state and reason) is evaluated for FLAGS_CONTEXTS (default 100,000)
// seeded random contexts by both; every flag for every context must give the same reason,
// variant, value and error code. Then bad flag files: sluice refuses them with line:column
// and never crashes. FLAGS_SEED picks other contexts; FLAGS_DUMP=FILE writes them out.
//
// Deliberately not generated (json-logic-engine behaviour sluice does not reproduce, see
// src/flags/logic.cpp):
//  - operators the engine compiles without parentheses (or, and, missing, missing_some, all)
//    as a direct operand of `cat`, `??` or a var default: JavaScript's operator precedence
//    then mangles the generated code (`'' + "a" + engine.truthy(prev = x) ? prev : ...` is
//    the `or` alone). The fixture wraps such operands in a one-operand `??`.
//  - the context key "__proto__": flagd-core copies the context with Object.assign, which
//    sets the copy's prototype instead of a property.
//  - lone UTF-16 surrogates in strings: JSON text cannot carry them as UTF-8.
//  - objects with a large `length` member under the interpreter's some/all/none, which loop
//    up to it (for ever, near enough); generated objects have small lengths only.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { FlagdCore } from '@openfeature/flagd-core';

import { SLUICE_BIN, ms, runProcess, tempDir } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(HERE, 'fixtures/flags/differential.json');
// Under TSan 20,000: the evaluator runs on one thread (TSan has nothing to find there) and
// the full 100,000 run under ASan in the same test command.
const CONTEXTS = Number(process.env.FLAGS_CONTEXTS || (process.env.SLUICE_SANITIZER === 'tsan' ? 20_000 : 100_000));
const SEED = Number(process.env.FLAGS_SEED || 20240611);
const NOW = 1_750_000_000; // $flagd.timestamp on both sides (sluice --now, Date.now below)

// ------------------------------------------------------------------ seeded contexts

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function contextGenerator(seed) {
  const rnd = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const chance = (p) => rnd() < p;

  const WORDS = ['alice', 'bob', 'carol', 'dave', 'm', 'pro', 'team', 'beta', 'hello', 'world', 'a.b', 'x y', 'Zed', '0', '1', 'true', 'null'];
  const UNICODE = ['é', 'ü', 'ñ', '😀', '🚀', '中文', '日本', 'ｶ', '～', '\uFF5E', 'Ω', 'ß', '\u00A0', '\t', '"', '\\', '\n', 'İ'];
  const word = () => pick(WORDS);
  const text = () => {
    const n = int(0, 4);
    let s = '';
    for (let i = 0; i < n; i++) s += chance(0.3) ? pick(UNICODE) : word();
    return s;
  };
  const NUMERIC_STRINGS = ['5', ' 7 ', '1e3', '0x1F', '0b11', '0o7', '-2.5', '.5', '5.', 'Infinity', '-Infinity', 'abc', '', ' ', '12abc', '1,000', '+3', '00012', '1e', '-0', '9007199254740993', '\u00A05\n'];
  const num = () => {
    switch (int(0, 9)) {
      case 0:
        return 0;
      case 1:
        return int(-10, 10);
      case 2:
        return int(-1000, 1000) / 8;
      case 3:
        return pick([1e21, 1e-7, 123456789.123, -1e300, 0.1 + 0.2, 2 ** 53, 2 ** 31, 4294967296, 1.5, -0.5, 5]);
      case 4:
        return rnd() * 200 - 100;
      default:
        return int(0, 20);
    }
  };
  // What a "number" field holds in practice: usually a number, sometimes anything else.
  const numLike = () => {
    switch (int(0, 19)) {
      case 0:
      case 1:
        return pick(NUMERIC_STRINGS);
      case 2:
        return String(num());
      case 3:
        return null;
      case 4:
        return chance(0.5);
      case 5:
        return pick([[], [1], [2, 3], ['4'], [null], [[5]]]);
      case 6:
        return pick([{}, { a: 1 }, { length: 2, 0: 'a' }, { length: '1' }]);
      case 7:
        return text();
      default:
        return num();
    }
  };
  const anything = (depth = 0) => {
    switch (int(0, depth > 1 ? 4 : 6)) {
      case 0:
        return null;
      case 1:
        return chance(0.5);
      case 2:
        return numLike();
      case 3:
      case 4:
        return text();
      case 5:
        return Array.from({ length: int(0, 3) }, () => anything(depth + 1));
      default: {
        const o = {};
        for (let i = int(0, 3); i > 0; i--) o[pick(['a', 'id', 'x', 'tier', '0', '1'])] = anything(depth + 1);
        return o;
      }
    }
  };
  const version = () => {
    if (chance(0.25)) {
      return pick([
        '1.2.3', 'v1.2.3', 'V1.2.3', 'vv1.2.3', 'Vv1.2.3', '1', '1.2', 'v1', 'v1.2', '01.2.3', '1.02.3', '1.2.3.4', '1.2.x', '1.2.3-', '1.2.3-01',
        '1.2.3-0a', '1.2.3-a.-', '1.2.3+', '1.2.3+a..b', ' 1.2.3 ', '\t2.0.0\n', '=1.2.3', 'v 1.2.3', '', 'abc', 'myVersion_1', '2.0.0-beta.2',
        '2.0.0-beta.10', '2.0.0-beta.2+build.7', '2.0.0-beta', '2.0.0-alpha', '2.0.0-rc.1', '2.0.0', '1.2.3+meta', '1.2.3-beta+meta',
        '9007199254740991.0.0', '9007199254740992.0.0', '12345678901234567', '12345678901234567.5', '1.12345678901234567', '999999999999999.1',
        '1.2.3-9007199254740993', '1.2.3-9007199254740992', '0.0.0', '0.0.0-0', '1.2.3-x.7.z.92', '1.2', '01', '1.', '.1', 'x', '1.2.3-β',
        1, 1.5, 2, 0, -1, 1.2, null, true, ['1.2.3'], ['1', '2'], {},
      ]);
    }
    let s = `${int(0, 3)}`;
    if (chance(0.9)) s += `.${int(0, 3)}`;
    if (chance(0.85)) s += `.${int(0, 3)}`;
    if (chance(0.3)) s += '-' + Array.from({ length: int(1, 3) }, () => pick(['alpha', 'beta', 'rc', '0', '1', '2', '10', 'x-y', 'b2'])).join('.');
    if (chance(0.15)) s += '+' + pick(['build', '7', 'sha.abc', '001']);
    if (chance(0.2)) s = pick(['v', 'V']) + s;
    return s;
  };
  const user = () => {
    if (chance(0.1)) return pick([null, 'alice', 42, [], [1, 2], true, {}]);
    const u = {};
    if (chance(0.8)) u.id = chance(0.8) ? pick(['u', 'user-', 'id']) + int(0, 500) : pick([int(0, 99), null, '', text()]);
    if (chance(0.8)) u.tier = pick(['free', 'pro', 'team', 'staff', 'admin', 'enterprise', '', null, 1, 'Staff']);
    if (chance(0.6)) u.beta = pick([true, false, 1, 0, 'yes', '', null, [], {}]);
    if (chance(0.7)) {
      u.profile = chance(0.9)
        ? {
            ...(chance(0.85) && { country: pick(['us', 'de', 'fr', 'jp', 'br', '', null, 1, true, 'US']) }),
            ...(chance(0.6) && { langs: chance(0.9) ? Array.from({ length: int(0, 3) }, () => pick(['en', 'de', 'fr', 'ja', ''])) : 'en' }),
          }
        : pick(['us', 7, null, []]);
    }
    return u;
  };

  return () => {
    const c = {};
    const maybe = (p, key, f) => {
      if (chance(p)) c[key] = f();
    };
    maybe(0.9, 'targetingKey', () => {
      const r = int(0, 9);
      if (r === 0) return '';
      if (r === 1) return int(0, 1e6);
      if (r === 2) return text();
      if (r === 3) return pick([null, true, false, 0, [], {}, ['k']]);
      return pick(['user-', 'sess_', '', 'ключ-', '用户']) + int(0, 1e9).toString(36);
    });
    maybe(0.8, 'email', () =>
      chance(0.8)
        ? `${pick(['admin', 'alice', 'bob', 'ops', word(), pick(UNICODE)])}${int(0, 99)}@${pick(['example.com', 'example.org', 'corp.example.com', 'Example.com'])}`
        : anything(),
    );
    maybe(0.85, 'version', version);
    maybe(0.5, 'minVersion', version);
    maybe(0.3, 'op', () => pick(['=', '!=', '<', '<=', '>', '>=', '^', '~', '==', '', null, 'x', 1]));
    maybe(0.8, 'user', user);
    maybe(0.8, 'plan', () => pick(['pro', 'team', 'free', 'enterprise', '', null, 5, '5', [], 'PRO', 'pro ', true]));
    maybe(0.8, 'country', () => pick(['us', 'ca', 'mx', 'de', 'fr', 'jp', '', 1, null, true, ['us'], 'US']));
    maybe(0.7, 'tags', () =>
      chance(0.8) ? Array.from({ length: int(0, 4) }, () => pick(['beta', 'alpha', 'internal', '', 1, null, true, ['beta']])) : pick(['beta', 'beta,alpha', 3, null, {}]),
    );
    maybe(0.8, 'items', () => (chance(0.85) ? Array.from({ length: int(0, 5) }, () => (chance(0.85) ? num() : numLike())) : numLike()));
    maybe(0.4, 'users', () => (chance(0.8) ? Array.from({ length: int(0, 3) }, () => (chance(0.8) ? { id: anything(2) } : anything(2))) : anything()));
    for (const k of ['x', 'y', 'age']) maybe(0.85, k, numLike);
    maybe(0.8, 's', () => (chance(0.8) ? text() : anything()));
    maybe(0.8, 'name', () => (chance(0.8) ? text() : anything()));
    maybe(0.6, 'from', numLike);
    maybe(0.6, 'len', numLike);
    maybe(0.6, 'w', () => pick([0, 1, 5, 10, 50, -3, 2.5, 2 ** 31, 2147483637, 1e10, '10', null, true, [5]]));
    maybe(0.4, 'n', anything);
    maybe(0.1, '$flagd', () => ({ flagKey: 'spoofed', timestamp: 1 }));
    return c;
  };
}

// ------------------------------------------------------------------ the reference

// flagd-core's flags, with the pieces of their result lines made once. For an enabled flag
// flagd-core's resolve() returns FeatureFlag.evaluate()'s answer unless the value's type is
// not the one asked for, which cannot happen here (a flag has one type): the test calls
// evaluate() directly, which halves the reference's time.
function referenceFlags(core) {
  return [...core.getFlags()].map(([key, flag]) => ({
    key,
    flag,
    type: typeof flag.variants.values().next().value,
    prefix: `{"key":${JSON.stringify(key)},"reason":"`,
    // `","variant":...,"value":...}` for each variant
    tails: new Map([...flag.variants].map(([name, value]) => [name, `","variant":${JSON.stringify(name)},"value":${JSON.stringify(value)}}`])),
  }));
}

// The line `sluice flag eval` should write: key, reason, variant and value (when the
// evaluation has a value), errorCode. Counts the reasons.
function expectedLine(core, f, ctx, reasons) {
  const r = f.flag.state === 'DISABLED' ? core.resolve(f.type, f.key, undefined, ctx) : f.flag.evaluate(ctx);
  reasons[r.reason] = (reasons[r.reason] || 0) + 1;
  if (r.value !== undefined) {
    if (typeof r.value !== f.type) throw new Error(`${f.key}: a ${typeof r.value} value`);
    return f.prefix + r.reason + f.tails.get(r.variant);
  }
  return f.prefix + r.reason + (r.errorCode ? `","errorCode":"${r.errorCode}"}` : '"}');
}

// Runs `sluice flag eval` over `lines` (contexts as JSON) and calls onLine(text) for each
// output line as it arrives, so neither side's output is held in memory whole.
function sluiceEval(file, lines, onLine) {
  return new Promise((resolve, reject) => {
    // Millions of small allocations: ASan keeps 2 frames of each one's stack (not 30) and a
    // smaller quarantine, which makes this run about a fifth faster and checks the same.
    const asan = [process.env.ASAN_OPTIONS, 'malloc_context_size=2:quarantine_size_mb=32'].filter(Boolean).join(':');
    const child = spawn(SLUICE_BIN, ['flag', 'eval', file, '--now', String(NOW)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ASAN_OPTIONS: asan },
    });
    let carry = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      const parts = (carry + chunk).split('\n');
      carry = parts.pop();
      for (const p of parts) onLine(p);
    });
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (carry) onLine(carry);
      resolve({ code, signal, stderr });
    });
    child.stdin.on('error', () => {}); // a crash shows as the exit status
    child.stdin.end(lines.join('\n') + '\n');
  });
}

describe('flags: sluice flag eval against flagd-core', { timeout: ms(300_000) }, () => {
  test(`${CONTEXTS} random contexts, every flag: same reason, variant, value and error code`, async () => {
    const text = readFileSync(FIXTURE, 'utf8');
    const core = new FlagdCore();
    core.setConfigurations(text);
    const flags = referenceFlags(core);
    assert.ok(flags.length >= 80, `${flags.length} flags`);

    const next = contextGenerator(SEED);
    const lines = Array.from({ length: CONTEXTS }, () => JSON.stringify(next()));
    if (process.env.FLAGS_DUMP) writeFileSync(process.env.FLAGS_DUMP, lines.join('\n') + '\n');

    const mismatches = [];
    const reasons = {};
    let ctxIndex = -1;
    let ctx = null;
    let flagIndex = flags.length;
    let seen = 0;
    const realNow = Date.now;
    const stackTraceLimit = Error.stackTraceLimit;
    Date.now = () => NOW * 1000; // flagd-core's $flagd.timestamp
    Error.stackTraceLimit = 0; // node-semver throws on every invalid version: no stacks is 25% faster
    const run = await sluiceEval(FIXTURE, lines, (got) => {
      if (flagIndex === flags.length) {
        if (++ctxIndex >= lines.length) {
          mismatches.push({ extra: got });
          return;
        }
        ctx = JSON.parse(lines[ctxIndex]);
        flagIndex = 0;
      }
      const f = flags[flagIndex++];
      seen++;
      const want = expectedLine(core, f, ctx, reasons);
      if (got === want) return;
      let same = false;
      try {
        assert.deepStrictEqual(JSON.parse(got), JSON.parse(want));
        same = true; // the same values, written differently (a number's digits)
      } catch {
        same = false;
      }
      if (!same && mismatches.length < 1000) mismatches.push({ context: lines[ctxIndex], want, got });
    }).finally(() => {
      Date.now = realNow;
      Error.stackTraceLimit = stackTraceLimit;
    });
    assert.equal(run.signal, null, `sluice died: ${run.signal}\n${run.stderr.slice(0, 4000)}`);
    assert.equal(run.code, 0, run.stderr.slice(0, 4000));
    assert.equal(seen, CONTEXTS * flags.length, 'one result per flag per context');
    for (const r of ['STATIC', 'TARGETING_MATCH', 'DEFAULT', 'DISABLED', 'ERROR']) assert.ok(reasons[r] > 0, `no ${r} at all: ${JSON.stringify(reasons)}`);

    if (mismatches.length) {
      const byFlag = new Map();
      for (const m of mismatches) {
        const k = m.extra ? 'extra output' : JSON.parse(m.want).key;
        if (!byFlag.has(k)) byFlag.set(k, []);
        byFlag.get(k).push(m);
      }
      const report = [...byFlag]
        .map(([k, ms]) => `${k}: ${ms.length}${ms.length >= 1000 ? '+' : ''} mismatches, first:\n` + ms.slice(0, 3).map((m) => (m.extra ? `  extra: ${m.extra}` : `  context: ${m.context}\n  flagd-core: ${m.want}\n  sluice:     ${m.got}`)).join('\n'))
        .join('\n');
      assert.fail(`${mismatches.length} mismatches between sluice and flagd-core\n${report}`);
    }
  });
});

// ------------------------------------------------------------------ bad flag files

// One flag, "bad", with this targeting (and these extra definition members / $evaluators).
const withRule = (targeting, { evaluators, flag = {} } = {}) =>
  JSON.stringify(
    {
      flags: { bad: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting, ...flag } },
      ...(evaluators && { $evaluators: evaluators }),
    },
    null,
    2,
  );

// Each: the file, whether sluice's message must carry a line:column, and what flagd-core
// makes of it ('load': setConfigurations throws; an error code: evaluating "bad" gives it;
// null: flagd-core takes it, sluice is stricter).
const BAD_FILES = [
  ['malformed JSON', '{\n  "flags": {\n    "a": {"state": "ENABLED",, "variants": {}}\n  }\n}\n', true, 'load'],
  ['truncated JSON', '{"flags": {"a": {"state": "ENABLED", "variants": {"on": tru', true, 'load'],
  ['a rule object with two operators', withRule({ '==': [1, 1], '!=': [1, 2] }), true, 'PARSE_ERROR'],
  ['an unknown operator', withRule({ if: [{ regex_match: [{ var: 'email' }, '.*'] }, 'on', 'off'] }), true, 'PARSE_ERROR'],
  ['a $ref cycle', withRule({ $ref: 'a' }, { evaluators: { a: { or: [{ $ref: 'b' }, false] }, b: { and: [{ $ref: 'a' }] } } }), true, 'PARSE_ERROR'],
  ['a $ref to no evaluator', withRule({ if: [{ $ref: 'nope' }, 'on', 'off'] }, { evaluators: { other: true } }), true, 'PARSE_ERROR'],
  ['a defaultVariant that is not a variant', withRule({}, { flag: { defaultVariant: 'maybe' } }), true, 'load'],
  ['a rule that fails for every context', withRule({ if: [{ '/': [1, 0] }, 'on', 'off'] }), true, 'PARSE_ERROR'],
  ['arithmetic on an array literal', withRule({ '>': [{ '+': [[1], { var: 'x' }] }, 1] }), true, 'PARSE_ERROR'],
  ['arithmetic on a non-numeric string', withRule({ '>': [{ '*': [{ var: 'x' }, 'abc'] }, 1] }), true, 'PARSE_ERROR'],
  ['map without a list', withRule({ in: [1, { map: { var: 'xs' } }] }), true, 'PARSE_ERROR'],
  ['variants of mixed types', withRule({}, { flag: { variants: { on: true, off: 'no' } } }), true, null],
  ['a rule nested 200 deep', withRule(Array.from({ length: 200 }).reduce((r) => ({ '!': [r] }), { var: 'x' })), true, null],
  ['a flag file that is an array', '[{"flags": {}}]', true, null],
  ['bytes that are not UTF-8', '{"flags": {\n  "f\xff": {"state": "ENABLED"}}}', true, null],
  ['an empty file', '', false, 'load'],
  ['binary garbage', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919 + 13) % 256)).toString('latin1'), false, 'load'],
];

describe('flags: bad flag files', { timeout: ms(60_000) }, () => {
  const dir = tempDir('sluice-flags-');
  const evalFile = (file) => runProcess(SLUICE_BIN, ['flag', 'eval', file, '--context', '{"x": 1}', '--now', String(NOW)], { timeout: ms(30_000) });
  const healthy = (r) => {
    assert.equal(r.signal, null, `killed by ${r.signal}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
  };

  for (const [name, text, positioned, reference] of BAD_FILES) {
    test(`${name}: refused${positioned ? ' with line:column' : ''}`, async () => {
      const file = path.join(dir, name.replace(/\W+/g, '-') + '.json');
      writeFileSync(file, text, 'latin1');
      const r = await evalFile(file);
      healthy(r);
      assert.notEqual(r.code, 0, `accepted:\n${r.stdout}`);
      assert.equal(r.stdout, '');
      assert.ok(r.stderr.startsWith(file), r.stderr);
      if (positioned) assert.match(r.stderr, /^[^\n]*?:\d+:\d+: \S/, r.stderr);

      // flagd-core does not take it either (or sluice says why it is stricter).
      if (reference === 'load') {
        assert.throws(() => new FlagdCore().setConfigurations(text));
      } else if (reference) {
        const core = new FlagdCore();
        core.setConfigurations(text);
        assert.equal(core.resolveBooleanEvaluation('bad', false, { x: 1 }).errorCode, reference);
      }
    });
  }

  test('a file over 4 MiB is refused', async () => {
    const file = path.join(dir, 'big.json');
    const flags = {};
    for (let i = 0; i < 60_000; i++) flags[`flag-${i}`] = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' };
    const text = JSON.stringify({ flags });
    assert.ok(text.length > 4 << 20, `${text.length} bytes`);
    writeFileSync(file, text);
    const r = await evalFile(file);
    healthy(r);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /at most 4194304/);
  });

  test('the same flags at 4 MiB less a little load and evaluate', async () => {
    const file = path.join(dir, 'almost.json');
    const pad = 'x'.repeat((4 << 20) - 200);
    writeFileSync(file, JSON.stringify({ metadata: { pad }, flags: { f: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' } } }));
    const r = await evalFile(file);
    healthy(r);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '{"key":"f","reason":"STATIC","variant":"on","value":true}');
  });
});
