// Demo traffic through the official OpenAI SDK: a few GSM8K problems sent to two routes
// (streaming and not), graded against the reference answers.
//   node examples/demo/client.mjs http://127.0.0.1:8080/v1
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../tests/integration/package.json'));
const OpenAI = require('openai').default ?? require('openai');

const baseURL = process.argv[2] ?? 'http://127.0.0.1:8080/v1';
const client = new OpenAI({ baseURL, apiKey: process.env.SLUICE_API_KEY ?? 'demo', maxRetries: 0 });
const problems = readFileSync(path.join(here, '../../../shared/data/gsm8k/test.jsonl'), 'utf8')
  .trim().split('\n').slice(0, 6).map((l) => JSON.parse(l));

const finalNumber = (s) => (s.match(/-?[\d,]*\.?\d+/g) ?? []).pop()?.replace(/,/g, '');
const pad = (s, n) => String(s).padEnd(n);

console.log(pad('route', 18), pad('mode', 7), pad('ttft ms', 8), pad('total ms', 9), pad('answer', 8), pad('expected', 9), 'request id');
for (const route of ['math-tutor', 'math-tutor-small']) {
  let correct = 0;
  for (const [i, p] of problems.entries()) {
    const expected = p.answer.split('####').pop().trim();
    const stream = i % 2 === 1;
    const t0 = performance.now();
    let text = '', ttft = null, id = '';
    if (stream) {
      const { data, response } = await client.chat.completions
        .create({ model: route, stream: true, messages: [{ role: 'user', content: p.question }] })
        .withResponse();
      id = response.headers.get('x-request-id');
      for await (const chunk of data) {
        const d = chunk.choices[0]?.delta?.content;
        if (d) { if (ttft === null) ttft = performance.now() - t0; text += d; }
      }
    } else {
      const { data, response } = await client.chat.completions
        .create({ model: route, messages: [{ role: 'user', content: p.question }] })
        .withResponse();
      id = response.headers.get('x-request-id');
      text = data.choices[0].message.content;
    }
    const got = finalNumber(text);
    if (got === expected) correct++;
    console.log(pad(route, 18), pad(stream ? 'stream' : 'json', 7), pad(ttft === null ? '-' : ttft.toFixed(1), 8),
      pad((performance.now() - t0).toFixed(1), 9), pad(got, 8), pad(expected, 9), id);
  }
  console.log(`${route}: ${correct}/${problems.length} correct\n`);
}
try {
  await client.chat.completions.create({ model: 'no-such-route', messages: [{ role: 'user', content: 'hi' }] });
} catch (e) {
  console.log(`unknown route -> ${e.status} ${e.constructor.name}: ${e.message}`);
}
