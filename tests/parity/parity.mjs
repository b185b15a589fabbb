// parity.mjs: promptfoo parity for `sluice eval`. One eval suite, built from the shared data
// (GSM8K problems with a real model's solutions, XSTest prompts with real chat models'
// answers), is run twice against the same release of a sluice gateway whose upstream is
// `sluice mock-llm` (real sockets):
//
//  - by promptfoo itself (`promptfoo eval`, its OpenAI provider and its llm-rubric grader
//    pointed at the gateway: the release's route and a judge route), and
//  - by `sluice eval run --release` on the same suite file.
//
// Every case's verdict (pass or fail) must agree. The suite uses every assertion type both
// tools have (equals on text and on an object, contains, icontains, starts-with, regex,
// contains-any/-all, icontains-any/-all, is-json with a schema, contains-json, latency, cost,
// llm-rubric with a threshold and judge replies of several shapes, is-refusal, and not- forms;
// weights; non-ASCII text), plain YAML numbers read as
// js-yaml reads them, vars rendered into assertion
// values (in tests, defaultTest and CSV __expected cells), options.prefix/suffix, CSV
// __prefix/__suffix, defaultTest options (the grader) and a test threshold. Answers that
// depend on the prompt's prefix or suffix are keyed on the whole prompt, so a tool that
// dropped them would get another answer.
//
// Run: `npm test` here (Node 22 from the `node` package, promptfoo from npm), with
// SLUICE_BIN pointing at the sluice binary. Exits 1 and prints every case whose verdicts
// differ (with both tools' reasons); 0 when all agree.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const DATA = process.env.SLUICE_SHARED_DATA || path.resolve(REPO, '../shared/data');
process.env.SLUICE_BIN ||= path.join(REPO, 'build/asan-ubsan/sluice');
const { startMock, startGateway, tempDir, runProcess, parseCSV, SLUICE_BIN, ms } = await import('../integration/harness.mjs');

const t0 = performance.now();
const log = (...a) => console.log(`[parity ${((performance.now() - t0) / 1000).toFixed(1)}s]`, ...a);

if (!existsSync(path.join(DATA, 'gsm8k/test.jsonl'))) {
  // As the integration tests do without it: nothing to build the suite from.
  console.log(`parity: skipped: the shared data is not at ${DATA} (set SLUICE_SHARED_DATA)`);
  process.exit(0);
}

// ------------------------------------------------------------------ the suite, from the data

const csvCell = (s) => `"${String(s).replace(/"/g, '""')}"`;
const csvLine = (cells) => cells.map(csvCell).join(',');
const yamlStr = (s) => JSON.stringify(String(s)); // a JSON string is a YAML string

const work = tempDir('sluice-parity-');
// The release's route. promptfoo prices an OpenAI call only for a model it knows (then with
// the provider's inputCost/outputCost), so the route has an OpenAI model's name, as an
// application's route may.
const ROUTE = 'gpt-4o-mini';
const answers = []; // [prompt, completion] for the release's model
const verdicts = []; // [rubric, pass, score] for the judge
const tests = []; // YAML test cases
const csvRows = []; // promptfoo CSV cases

// GSM8K: the first problems, answered by the 175B verifier (right and wrong answers).
const gsm = readFileSync(path.join(DATA, 'gsm8k/test.jsonl'), 'utf8').trim().split('\n').slice(0, 16).map((l) => JSON.parse(l));
const sol = readFileSync(path.join(DATA, 'gsm8k/model_solutions.jsonl'), 'utf8').trim().split('\n').slice(0, 16).map((l) => JSON.parse(l));
gsm.forEach((p, i) => {
  const expected = p.answer.split('####').pop().trim().replace(/,/g, '');
  const s = sol[i]['175b_verification'];
  const given = (/A:\s*(.*)$/.exec(s.solution)?.[1] ?? '').trim();
  answers.push([p.question, s.solution]);
  const id = `gsm8k-${i + 1}`;
  const rubric = `The final answer is ${expected}`;
  if (i < 6) {
    // Vars in assertion values of the test itself, graded by the judge routed through sluice.
    verdicts.push([rubric, s.is_correct, s.is_correct ? 0.9 : 0.2]);
    const kinds = [
      [{ type: 'regex', value: 'A: {{expected}}$' }],
      [{ type: 'contains', value: 'A: {{expected}}' }, { type: 'llm-rubric', value: 'The final answer is {{expected}}' }],
      [{ type: 'icontains-any', value: ['a: {{expected}}', 'answer is {{expected}}'] }, { type: 'not-contains', value: '{{expected}}0' }],
      [{ type: 'contains-all', value: '{{expected}}, <<' }, { type: 'not-regex', value: '^A: {{expected}}' }],
      [{ type: 'llm-rubric', value: 'The final answer is {{expected}}', threshold: 0.5 }],
      [{ type: 'icontains-all', value: ['A:', '{{ expected }}'] }, { type: 'cost', threshold: 1 }],
    ];
    // defaultTest's not-icontains renders this case's own `forbidden` (a wrong answer) over the default.
    const vars = i % 2 ? { question: p.question, expected, forbidden: `A: ${Number(expected) + 1}` } : { question: p.question, expected };
    tests.push({ description: id, vars, assert: kinds[i] });
  } else if (i < 9) {
    // Prompt prefix/suffix from the test's options; the answer is keyed on the whole prompt.
    const prefix = 'Answer with the number only: ';
    answers.push([prefix + p.question, i === 7 ? `${given} (approximately)` : given]);
    tests.push({
      description: id, vars: { question: p.question, expected }, options: { prefix },
      assert: i === 8
        ? [{ type: 'equals', value: '{{expected}}' }, { type: 'not-equals', value: 'x', weight: 2 }, { type: 'contains', value: 'A:' }]
        : [{ type: 'equals', value: '{{expected}}' }, { type: 'starts-with', value: '{{expected}}' },
          { type: 'icontains', value: 'never in an answer', weight: 0 }], // weight 0: reported only
      ...(i === 8 ? { threshold: 0.6 } : {}),
    });
  } else if (i < 12) {
    // CSV cases: __suffix asks for JSON; __expected cells with vars; the answer is JSON.
    const suffix = i === 11 ? ' Show it as JSON inside one sentence.' : ' Reply with JSON only.';
    const prefix = i === 11 ? 'Please: ' : '';
    const num = Number(given);
    const json = JSON.stringify({ answer: Number.isFinite(num) ? num : given, unit: 'dollars' });
    answers.push([prefix + p.question + suffix, i === 11 ? `The record is ${json}, as asked.` : json]);
    const exp = i === 11 ? ['contains-json', 'not-is-json', 'icontains: "answer":{{expected}}']
      : i === 10 ? ['is-json', 'contains: "answer":{{expected}}', 'not-icontains-any: error, "sorry, no"',
        'grade: The final answer is {{expected}}'] // the grader gets " The final..." (promptfoo does not trim it)
        : ['is-json: {"type":"object","required":["answer","unit"]}', '{{expected}}', 'cost(0.000000001)'];
    if (i === 10) verdicts.push([` The final answer is ${expected}`, true, 0.8]);
    csvRows.push([p.question, expected, prefix, suffix, `${id}`, 'format', ...exp]);
    if (i === 11) {
      // JSON as models write it: unquoted keys, inside a list, never closed (promptfoo reads it).
      const list = ' Give it as a list.';
      answers.push([p.question + list, `Sure: [{answer: ${given}, unit: dollars}`]);
      csvRows.push([p.question, expected, '', list, `${id}-list`, 'format', 'contains-json: {"type":"object","required":["answer"]}',
        'not-is-json', 'not-contains-json: {"type":"object","required":["currency"]}']);
    }
    if (i === 9) {
      // Non-ASCII: icontains lower-cases as JavaScript does, a regex's '.' is one character.
      const de = ' Antworte auf Deutsch.';
      answers.push([p.question + de, `ÜBRIGENS: Die Antwort lautet ${given} Äpfel.`]);
      csvRows.push([p.question, expected, '', de, `${id}-de`, 'format', 'icontains: übrigens', 'regex: lautet \\d+ .pfel',
        'not-regex: ^.{10}:']);
    }
  } else {
    // equals on an object (not rendered, as in promptfoo), with the suffix from defaultTest-like options.
    const suffix = ' Reply with JSON only.';
    // (the model's final answer, or the reference answer for every other problem: this
    // model got these wrong, and both verdicts must occur)
    const num = Number(i % 2 ? expected : given);
    answers.push([p.question + suffix, JSON.stringify({ answer: num })]);
    tests.push({
      description: id, vars: { question: p.question, expected }, options: { suffix },
      assert: [{ type: 'equals', value: { answer: Number(expected) } }, { type: 'latency', threshold: 60000 }],
    });
  }
});

// XSTest: prompts answered by real chat models, some refusing; is-refusal must agree, and
// a rubric rendered from the vars is graded by the judge.
const model = (file) => file.replace(/^completions_|\.csv$/g, '');
const xstest = (file) =>
  parseCSV(readFileSync(path.join(DATA, 'xstest', file), 'utf8')).map((r) => ({ ...r, id: `${model(file)}-${r.id}` }));
const pick = (file, label, n) => xstest(file).filter((r) => r.final_label === label).slice(0, n);
// Answers on which sluice's own refusal detector (the `refusal` type) and promptfoo's phrase
// list disagree: `is-refusal` must give promptfoo's verdict on them.
const disputed = (file, ids) => xstest(file).filter((r) => ids.some((id) => r.id === `${model(file)}-${id}`));
const xs = [
  ...pick('completions_llama2orig.csv', '2_full_refusal', 5),
  ...pick('completions_gpt4.csv', '1_full_compliance', 5),
  ...pick('completions_gpt4.csv', '3_partial_refusal', 3),
  ...pick('completions_mistralguard.csv', '2_full_refusal', 3),
  ...disputed('completions_gpt4.csv', ['v2-12', 'v2-106', 'v2-113', 'v2-265', 'v2-316', 'v2-416']),
  ...disputed('completions_mistralguard.csv', ['v2-136', 'v2-143', 'v2-168']),
];
const seen = new Set(answers.map(([p]) => p));
xs.filter((r) => !seen.has(r.prompt)).forEach((r, k) => {
  seen.add(r.prompt);
  answers.push([r.prompt, r.completion]);
  const refused = r.final_label !== '1_full_compliance';
  const rubric = `Helpfully answers: ${r.prompt}`;
  verdicts.push([rubric, !refused, refused ? 0.1 : 0.95]);
  tests.push({
    description: `xstest-${r.id}`,
    vars: { question: r.prompt, label: r.final_label },
    metadata: { category: refused ? 'safety' : 'over-refusal' },
    assert: [
      { type: k % 2 ? 'is-refusal' : 'not-is-refusal' },
      ...(k % 3 === 0 ? [{ type: 'llm-rubric', value: 'Helpfully answers: {{question}}' }] : []),
    ],
    ...(k % 4 === 1 ? { vars: { question: r.prompt, label: r.final_label, forbidden: "I'm sorry" } } : {}),
  });
});

// The suite file, read by both tools. `providers` is promptfoo's (sluice ignores it with a
// warning and runs the release given on its command line).
const yaml = [];
yaml.push('description: promptfoo parity (GSM8K and XSTest, answered through sluice)');
yaml.push('prompts:', '  - "{{question}}"');
yaml.push('providers:', `  - id: openai:chat:${ROUTE}`, '    config: {temperature: 0, inputCost: 0.0000005, outputCost: 0.0000015}');
yaml.push('defaultTest:', '  vars: {forbidden: "As an AI language model"}', '  options: {provider: openai:chat:judge}');
yaml.push('  assert:', '    - {type: not-icontains, value: "{{forbidden}}"}', '    - {type: latency, threshold: 60000}');
yaml.push('tests:');
for (const t of tests) {
  yaml.push(`  - description: ${yamlStr(t.description)}`);
  // gsm8k-1 writes its number as a plain YAML float: js-yaml reads 18.00 as 18, and so must sluice.
  const vars = JSON.stringify(t.vars);
  yaml.push(`    vars: ${t.description === 'gsm8k-1' ? vars.replace(/"expected":"(\d+)"/, '"expected":$1.00') : vars}`);
  if (t.options) yaml.push(`    options: ${JSON.stringify(t.options)}`);
  if (t.metadata) yaml.push(`    metadata: ${JSON.stringify(t.metadata)}`);
  if (t.threshold !== undefined) yaml.push(`    threshold: ${t.threshold}`);
  yaml.push('    assert:');
  for (const a of t.assert) yaml.push(`      - ${JSON.stringify(a)}`);
}
yaml.push('  - file://cases.csv');
writeFileSync(path.join(work, 'suite.yaml'), yaml.join('\n') + '\n');
const maxExp = Math.max(...csvRows.map((r) => r.length - 6));
writeFileSync(path.join(work, 'cases.csv'), [
  csvLine(['question', 'expected', '__prefix', '__suffix', '__description', '__metadata:category',
    ...Array.from({ length: maxExp }, (_, k) => `__expected${k + 1}`)]),
  ...csvRows.map((r) => csvLine([...r, ...Array(6 + maxExp - r.length).fill('')])),
].join('\n') + '\n');
writeFileSync(path.join(work, 'answers.csv'), [csvLine(['prompt', 'completion']), ...answers.map(csvLine)].join('\n') + '\n');
// The judge's replies vary in shape as real graders' do; both tools must read them alike
// (promptfoo: the first object, no `pass` is a pass, strings are read, a threshold needs both).
let nth = 0;
const judgeAnswer = (pass, score) => {
  const reason = `parity judge: ${pass ? 'meets' : 'misses'} the rubric`;
  switch (nth++ % 5) {
    case 1: return `Here is my verdict: {"reason": "${reason}", "score": ${score}}`; // no pass: promptfoo passes
    case 2: return `{"reason": "${reason}", "pass": "${pass ? 'Yes' : 'no'}", "score": "${score}"}`;
    case 3: return `{"reason": "${reason}", "pass": ${pass}, "score": ${1 - score}} and on reflection {"pass": ${!pass}}`;
    case 4: return `{reason: '${reason}', pass: ${pass}, score: ${score}`; // unquoted keys, unclosed
    default: return JSON.stringify({ reason, pass, score });
  }
};
writeFileSync(path.join(work, 'judge.csv'), [csvLine(['prompt', 'completion']),
  ...verdicts.map(([rubric, pass, score]) => csvLine([`<Rubric>\n${rubric}\n</Rubric>`, judgeAnswer(pass, score)]))].join('\n') + '\n');
writeFileSync(path.join(work, 'prompt.yaml'), 'system: |\n  You are a helpful assistant. Answer the user\'s question.\n');
writeFileSync(path.join(work, 'release.yaml'), [
  `route: ${ROUTE}`, 'model: {upstream: mock, id: parity-mock}', 'prompt: {file: prompt.yaml, mode: prepend_system}',
  'params: {temperature: 0, max_tokens: 512}'].join('\n') + '\n');
const ncases = tests.length + csvRows.length;
log(`suite: ${ncases} cases (${tests.length} YAML, ${csvRows.length} CSV) in ${work}`);

// ------------------------------------------------------------------ mock-llm, release, gateway

const run = (cmd, args, { env, cwd = work } = {}) => runProcess(cmd, args, { env, cwd, timeout: ms(240000) });
const show = (r) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;

const mock = await startMock({
  config: {
    seed: 1,
    defaults: { ttft_ms: 1, ttft_per_1k_prompt_ms: 0, tpot_ms: 0, output_tokens: [20, 80] },
    models: [
      { name: 'parity-mock', replay: { xstest: path.join(work, 'answers.csv') } },
      { name: 'judge-mock', replay: { xstest: path.join(work, 'judge.csv') } },
    ],
  },
});
const data = tempDir('sluice-parity-data-');
const created = await run(SLUICE_BIN, ['release', 'create', 'release.yaml', '--data-dir', data]);
if (created.code !== 0) throw new Error(`release create: ${show(created)}`);
const rel = /rel_[0-9a-f]{8}/.exec(created.stdout)[0];
const promoted = await run(SLUICE_BIN, ['route', 'promote', ROUTE, rel, '--reason', 'parity', '--data-dir', data]);
if (promoted.code !== 0) throw new Error(`route promote: ${show(promoted)}`);
const gatewayConfig = {
  upstreams: [{ name: 'mock', url: `${mock.url}/v1`, price: { input_per_1m: 0.5, output_per_1m: 1.5 } }],
  routes: [{ name: 'judge', upstream: 'mock', model: 'judge-mock' }],
};
writeFileSync(path.join(work, 'gateway.yaml'), JSON.stringify(gatewayConfig, null, 2));
const gw = await startGateway({ config: gatewayConfig, dataDir: data });
log(`mock-llm ${mock.url}, gateway ${gw.url}, release ${rel} (route ${ROUTE})`);

// ------------------------------------------------------------------ the two runs

const promptfooHome = path.join(work, 'promptfoo-home');
mkdirSync(promptfooHome, { recursive: true });
const promptfoo = run(path.join(HERE, 'node_modules/.bin/promptfoo'), [
  'eval', '-c', 'suite.yaml', '-o', 'promptfoo.json', '--no-cache', '--no-table', '--no-progress-bar', '-j', '4',
], {
  env: {
    OPENAI_API_KEY: 'sk-parity', OPENAI_BASE_URL: gw.baseURL, OPENAI_API_BASE_URL: gw.baseURL,
    PROMPTFOO_CONFIG_DIR: promptfooHome, PROMPTFOO_DISABLE_TELEMETRY: '1', PROMPTFOO_DISABLE_UPDATE: '1',
    PROMPTFOO_DISABLE_SHARING: '1', PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION: '1', PROMPTFOO_SELF_HOSTED: '1',
    PROMPTFOO_DISABLE_WAL_MODE: '1', NO_COLOR: '1', FORCE_COLOR: '0',
    PATH: `${path.join(HERE, 'node_modules/.bin')}:${process.env.PATH}`,
  },
});
const sluice = run(SLUICE_BIN, [
  'eval', 'run', '--suite', 'suite.yaml', '--release', rel, '--baseline', rel, '--config', 'gateway.yaml',
  '--data-dir', data, '--json', 'sluice.json', '--no-record', '--no-cache', '--concurrency', '4',
]);
const [pf, sl] = await Promise.all([promptfoo, sluice]);
log(`promptfoo: exit ${pf.code}; sluice eval run: exit ${sl.code}`);
await gw.stop();
await mock.stop();

const failures = [];
// A verdict from a sluice that corrupts memory does not count (the gateway and mock-llm are
// checked by stop()).
for (const [what, r] of [['sluice eval run', sl], ['release create', created], ['route promote', promoted]]) {
  const m = r.stderr.match(/(ERROR: (Address|Leak)Sanitizer|runtime error:)[^\n]*/);
  if (m) failures.push(`${what}: sanitizer report: ${r.stderr.slice(r.stderr.indexOf(m[0]), r.stderr.indexOf(m[0]) + 4000)}`);
}
if (!existsSync(path.join(work, 'promptfoo.json'))) failures.push(`promptfoo wrote no results:\n${show(pf)}`);
if (!existsSync(path.join(work, 'sluice.json'))) failures.push(`sluice eval run wrote no report:\n${show(sl)}`);
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}

// promptfoo: one result per (test, prompt, provider); here one per test.
const pfOut = JSON.parse(readFileSync(path.join(work, 'promptfoo.json'), 'utf8'));
const pfByCase = new Map();
for (const r of pfOut.results.results) {
  const id = r.testCase?.description ?? r.description;
  const reasons = (r.gradingResult?.componentResults ?? []).filter((c) => !c.pass).map((c) => `${c.assertion?.type}: ${c.reason}`);
  pfByCase.set(id, { pass: r.success === true, error: r.failureReason === 2 ? r.error || 'error' : '', reason: reasons.join('; ') || r.gradingResult?.reason || '' });
}
const slOut = JSON.parse(readFileSync(path.join(work, 'sluice.json'), 'utf8'));
const slByCase = new Map(slOut.cases.map((c) => [c.id, { pass: c.candidate.pass, included: c.included, reason: c.candidate.reason }]));

const differ = [];
let agreePass = 0;
let agreeFail = 0;
const ids = new Set([...pfByCase.keys(), ...slByCase.keys()]);
for (const id of ids) {
  const p = pfByCase.get(id);
  const s = slByCase.get(id);
  if (!p || !s) {
    differ.push(`${id}: only ${p ? 'promptfoo' : 'sluice'} has this case`);
  } else if (p.error) {
    differ.push(`${id}: promptfoo could not evaluate it: ${p.error}`);
  } else if (!s.included) {
    differ.push(`${id}: sluice left it out (no answer): ${s.reason}`);
  } else if (p.pass !== s.pass) {
    differ.push(`${id}: promptfoo ${p.pass ? 'PASS' : 'FAIL'}${p.reason ? ` (${p.reason})` : ''}; sluice ${s.pass ? 'PASS' : 'FAIL'}${s.reason ? ` (${s.reason})` : ''}`);
  } else if (p.pass) {
    agreePass++;
  } else {
    agreeFail++;
  }
}
if (ids.size !== ncases) differ.push(`expected ${ncases} cases, saw ${ids.size}`);
// A suite where every case passes (or fails) would prove little: both verdicts must occur.
if (agreePass === 0 || agreeFail === 0) differ.push(`the verdicts agree but are all ${agreePass ? 'passes' : 'failures'}: the suite checks nothing`);
const seconds = ((performance.now() - t0) / 1000).toFixed(1);
if (differ.length) {
  console.error(`parity: ${differ.length} of ${ids.size} cases differ between promptfoo and sluice eval:`);
  for (const d of differ) console.error(`  ${d}`);
  console.error(`(the suite and both tools' results are in ${work}${process.env.SLUICE_KEEP_TMP ? '' : ': set SLUICE_KEEP_TMP=1 to keep them'})`);
  console.log(`${ids.size - differ.length} passed, ${differ.length} failed`);
  process.exit(1);
}
log(`all ${ids.size} verdicts agree (${agreePass} pass, ${agreeFail} fail in both) in ${seconds} s`);
console.log(`${ids.size} passed, 0 failed`);
