// responses.test.mjs: OpenAI's Responses API (POST /v1/responses) served over a chat
// completions upstream (mock-llm), through the clients people use: the official `openai` SDK
// (create, streaming, tools, previous_response_id, structured output, retrieve/delete), the
// Vercel AI SDK's default OpenAI provider (which validates every answer and event against its
// own schemas), and an agent loop with tool calls (@openai/agents).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled, tool as agentTool } from '@openai/agents';
import { z } from 'zod';

import { ms, startGateway, startMock } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

describe('the Responses API over a chat completions upstream', { timeout: ms(90_000) }, () => {
  let mock;
  let gw;
  let client;
  before(async () => {
    mock = await startMock({ config: { seed: 3, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    gw = await startGateway({
      config: {
        upstreams: [{ name: 'mock', url: `${mock.url}/v1` }],
        routes: [{ name: 'bot', upstream: 'mock', model: 'mock-1' }],
        api_keys: [
          { tenant: 'acme', key_sha256: sha256('sk-acme') },
          { tenant: 'other', key_sha256: sha256('sk-other') },
        ],
        tenants: [{ name: 'acme' }, { name: 'other' }],
      },
    });
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-acme', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test('responses.create: a message item with output_text, usage in the Responses shape, lineage headers', async () => {
    const { data: r, response } = await client.responses
      .create({ model: 'bot', instructions: 'Be brief.', input: 'Tell me about gateways.', max_output_tokens: 64 })
      .withResponse();
    assert.match(r.id, /^resp_/);
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.instructions, 'Be brief.');
    assert.equal(r.output.length, 1);
    assert.equal(r.output[0].type, 'message');
    assert.equal(r.output[0].role, 'assistant');
    assert.equal(r.output[0].content[0].type, 'output_text');
    assert.ok(r.output_text.length > 0, 'the SDK assembles output_text from the items');
    assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    assert.equal(response.headers.get('x-sluice-upstream'), 'mock');
    assert.ok(response.headers.get('x-request-id'));
    const line = await gw.waitLog((l) => l.request_id === response.headers.get('x-request-id'));
    assert.equal(line.api, 'responses');
    assert.equal(line.route, 'bot');
    assert.equal(line.tokens_out, r.usage.output_tokens);
  });

  test('a cut answer is "incomplete" with reason max_output_tokens', async () => {
    const r = await client.responses.create({ model: 'bot', input: 'Tell me more.', max_output_tokens: 2 });
    assert.equal(r.status, 'incomplete');
    assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(r.usage.output_tokens, 2);
  });

  test('streaming: the event sequence, deltas that add up to the final text, sequence numbers in order', async () => {
    const stream = await client.responses.create({ model: 'bot', input: 'Stream, please.', stream: true });
    const types = [];
    let text = '';
    let last = -1;
    let completed;
    for await (const ev of stream) {
      types.push(ev.type);
      assert.equal(ev.sequence_number, last + 1, `sequence_number after ${last}`);
      last = ev.sequence_number;
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') completed = ev.response;
    }
    assert.deepEqual(types.slice(0, 4), [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    assert.deepEqual(types.slice(-4), [
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    assert.ok(text.length > 0);
    assert.equal(completed.output[0].content[0].text, text);
    assert.ok(completed.usage.output_tokens > 0, 'usage comes with response.completed');
  });

  test('the SDK stream helper assembles the final response', async () => {
    const stream = client.responses.stream({ model: 'bot', input: 'Once more.' });
    let deltas = '';
    stream.on('response.output_text.delta', (e) => (deltas += e.delta));
    const final = await stream.finalResponse();
    assert.equal(final.output_text, deltas);
    assert.equal(final.status, 'completed');
  });

  test('tools: a function_call item, then its output continues the conversation by previous_response_id', async () => {
    const first = await client.responses.create({ model: 'bot', input: 'Weather in Paris?', tools: [weatherTool] });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'mock' });
    assert.ok(call.call_id);
    assert.deepEqual(first.tools.map((t) => t.name), ['get_weather']);
    // The next turn sends only the tool's output: the gateway supplies the rest.
    const second = await client.responses.create({
      model: 'bot',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '18 degrees and sunny' }],
      tools: [weatherTool],
    });
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.output_text, 'The tool answered: 18 degrees and sunny');
  });

  test('streamed tool calls: argument deltas that add up to the call', async () => {
    const stream = await client.responses.create({ model: 'bot', input: 'Weather?', tools: [weatherTool], stream: true });
    let args = '';
    let done;
    let added;
    for await (const ev of stream) {
      if (ev.type === 'response.output_item.added' && ev.item.type === 'function_call') added = ev.item;
      if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
      if (ev.type === 'response.function_call_arguments.done') done = ev;
    }
    assert.equal(added.name, 'get_weather');
    assert.equal(args, '{"city":"mock"}');
    assert.equal(done.arguments, args);
    assert.equal(done.item_id, added.id);
  });

  test('structured output: text.format json_schema reaches the upstream as response_format', async () => {
    const r = await client.responses.create({
      model: 'bot',
      input: 'Answer in JSON.',
      text: {
        format: {
          type: 'json_schema',
          name: 'answer',
          schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false },
          strict: true,
        },
      },
    });
    assert.equal(typeof JSON.parse(r.output_text).answer, 'string');
    assert.equal(r.text.format.type, 'json_schema');
  });

  test('stored responses: retrieve, delete, store:false keeps nothing, and tenants never see each other\'s', async () => {
    const r = await client.responses.create({ model: 'bot', input: 'Keep this.' });
    const got = await client.responses.retrieve(r.id);
    assert.equal(got.id, r.id);
    assert.equal(got.output_text, r.output_text);
    const other = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-other', maxRetries: 0 });
    const hidden = await other.responses.retrieve(r.id).catch((e) => e);
    assert.equal(hidden.status, 404);
    const cont = await other.responses.create({ model: 'bot', input: 'More.', previous_response_id: r.id }).catch((e) => e);
    assert.equal(cont.status, 400);
    assert.equal(cont.param, 'previous_response_id');
    await client.responses.delete(r.id);
    assert.equal((await client.responses.retrieve(r.id).catch((e) => e)).status, 404);

    const unkept = await client.responses.create({ model: 'bot', input: 'Forget this.', store: false });
    assert.equal(unkept.store, false);
    assert.equal((await client.responses.retrieve(unkept.id).catch((e) => e)).status, 404);
    const m = await gw.metrics();
    assert.ok(m.value('sluice_responses_stored') >= 1);
  });

  test('errors in the API\'s own shape: unknown model, hosted tools, bad input, wrong key', async () => {
    const unknown = await client.responses.create({ model: 'nope', input: 'hi' }).catch((e) => e);
    assert.ok(unknown instanceof OpenAI.NotFoundError, String(unknown));
    assert.equal(unknown.code, 'model_not_found');
    const hosted = await client.responses.create({ model: 'bot', input: 'hi', tools: [{ type: 'web_search' }] }).catch((e) => e);
    assert.equal(hosted.status, 400);
    assert.equal(hosted.code, 'unsupported_parameter');
    assert.equal(hosted.param, 'tools[0].type');
    const bad = await client.responses.create({ model: 'bot', input: 42 }).catch((e) => e);
    assert.equal(bad.status, 400);
    assert.equal(bad.param, 'input');
    const anon = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
    assert.ok((await anon.responses.create({ model: 'bot', input: 'hi' }).catch((e) => e)) instanceof OpenAI.AuthenticationError);
    const raw = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-acme', 'content-type': 'application/json' },
      body: '{"model": "bot", "input": ',
    });
    assert.equal(raw.status, 400);
    assert.equal((await raw.json()).error.code, 'invalid_json');
  });

  test('a stream the upstream cuts ends with an error event and response.failed', async () => {
    await mock.setFaults({ cut_rate: 1, cut_after_tokens: 2 });
    try {
      const res = await fetch(`${gw.baseURL}/responses`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-acme', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bot', input: 'Stream and break.', stream: true }),
      });
      assert.equal(res.status, 200);
      const text = await res.text();
      const events = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
      assert.equal(events[0], 'response.created');
      assert.deepEqual(events.slice(-2), ['error', 'response.failed']);
      const failed = JSON.parse(text.trim().split('\n').at(-1).slice(6));
      assert.equal(failed.response.status, 'failed');
      assert.equal(failed.response.error.code, 'server_error');
      assert.match(text, /"type":"error","sequence_number":\d+,"code":"stream_cut"/);
    } finally {
      await mock.clearFaults();
    }
  });

  test('the Vercel AI SDK\'s default provider (Responses API): generateText, streamText and a tool loop', async () => {
    const provider = createOpenAI({ baseURL: gw.baseURL, apiKey: 'sk-acme' });
    const g = await generateText({ model: provider('bot'), prompt: 'Say hello.' });
    assert.ok(g.text.length > 0);
    assert.ok(g.usage.inputTokens > 0 && g.usage.outputTokens > 0);
    assert.equal(g.finishReason, 'stop');
    assert.equal(g.response.modelId, 'mock-1');

    const s = streamText({ model: provider('bot'), prompt: 'Stream hello.' });
    let text = '';
    for await (const part of s.textStream) text += part;
    assert.ok(text.length > 0);
    assert.equal(await s.text, text);
    assert.ok((await s.usage).outputTokens > 0);

    const looped = await generateText({
      model: provider('bot'),
      prompt: 'Weather in Rome?',
      tools: {
        get_weather: tool({
          description: 'The weather in a city',
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => `21 degrees in ${city}`,
        }),
      },
      stopWhen: stepCountIs(3),
    });
    assert.equal(looped.steps.length, 2);
    assert.equal(looped.steps[0].toolCalls[0].toolName, 'get_weather');
    assert.match(looped.text, /The tool answered: .*21 degrees in mock/);
  });

  test('an agent loop with tool calls (@openai/agents over the Responses API)', async () => {
    setDefaultOpenAIClient(new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-acme', maxRetries: 0 }));
    setOpenAIAPI('responses');
    setTracingDisabled(true);
    let calls = 0;
    const agent = new Agent({
      name: 'weather',
      instructions: 'Answer with the weather.',
      model: 'bot',
      tools: [
        agentTool({
          name: 'get_weather',
          description: 'The weather in a city',
          parameters: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            calls++;
            return `cloudy in ${city}`;
          },
        }),
      ],
    });
    const result = await run(agent, 'What is the weather in Oslo?');
    assert.equal(calls, 1);
    assert.match(result.finalOutput, /The tool answered: .*cloudy in mock/);
  });
});

describe('the Responses API passed through to an upstream that serves it', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  let client;
  before(async () => {
    mock = await startMock({ config: { seed: 9, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    gw = await startGateway({
      config: {
        upstreams: [
          { name: 'native', url: `${mock.url}/v1`, responses: true },
          { name: 'chat-only', url: `${mock.url}/v1` },
        ],
        routes: [
          { name: 'direct', upstream: 'native', model: 'mock-1' },
          { name: 'mixed', upstream: ['native', 'chat-only'], model: 'mock-1' },
        ],
      },
    });
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test('whole and streamed answers reach the upstream\'s own /v1/responses; tokens are accounted', async () => {
    const before = (await mock.stats()).by_api;
    const { data: r, response } = await client.responses.create({ model: 'direct', input: 'Hello?' }).withResponse();
    assert.equal(r.status, 'completed');
    assert.ok(r.output_text.length > 0);
    const line = await gw.waitLog((l) => l.request_id === response.headers.get('x-request-id'));
    assert.equal(line.bridged, false);
    assert.equal(line.tokens_out, r.usage.output_tokens);

    const stream = await client.responses.create({ model: 'direct', input: 'Stream?', stream: true });
    const types = [];
    for await (const ev of stream) types.push(ev.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    const after = (await mock.stats()).by_api;
    assert.equal(after.responses - before.responses, 2, 'both went to /v1/responses');
    assert.equal(after.chat, before.chat, 'nothing was bridged');
    const m = await gw.metrics();
    assert.equal(m.value('sluice_upstream_errors_total', { upstream: 'native', kind: 'missing_done' }) ?? 0, 0);
    const sline = await gw.waitLog((l) => l.route === 'direct' && l.stream === true);
    assert.equal(sline.status, 200);
    assert.ok(sline.tokens_out > 0);
    assert.ok(sline.ttft_ms !== null);
  });

  test('the upstream keeps its own conversation: previous_response_id passes through', async () => {
    const first = await client.responses.create({ model: 'direct', input: 'Weather?', tools: [weatherTool] });
    const call = first.output.find((o) => o.type === 'function_call');
    const second = await client.responses.create({
      model: 'direct',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'windy' }],
    });
    assert.equal(second.output_text, 'The tool answered: windy');
  });

  test('a route with a target that only serves chat completions is bridged instead', async () => {
    const before = (await mock.stats()).by_api;
    const { response } = await client.responses.create({ model: 'mixed', input: 'Hi' }).withResponse();
    const after = (await mock.stats()).by_api;
    assert.equal(after.chat - before.chat, 1);
    assert.equal(after.responses, before.responses);
    const line = await gw.waitLog((l) => l.request_id === response.headers.get('x-request-id'));
    assert.equal(line.bridged, true);
  });
});

describe('stored responses outlive a restart', { timeout: ms(60_000) }, () => {
  test('a conversation continues on a gateway restarted on the same store; a deleted one does not', async () => {
    const mock = await startMock({ config: { seed: 12, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    const config = {
      upstreams: [{ name: 'mock', url: `${mock.url}/v1` }],
      routes: [{ name: 'bot', upstream: 'mock', model: 'mock-1' }],
    };
    let gw = await startGateway({ config });
    const dataDir = gw.dataDir;
    try {
      let client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
      const first = await client.responses.create({ model: 'bot', input: 'Weather?', tools: [weatherTool] });
      const gone = await client.responses.create({ model: 'bot', input: 'Forget me.' });
      await client.responses.delete(gone.id);
      await gw.stop();
      gw = await startGateway({ config, dataDir });
      client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
      assert.equal((await client.responses.retrieve(first.id)).id, first.id);
      const call = first.output.find((o) => o.type === 'function_call');
      const next = await client.responses.create({
        model: 'bot',
        previous_response_id: first.id,
        input: [{ type: 'function_call_output', call_id: call.call_id, output: 'still sunny' }],
      });
      assert.equal(next.output_text, 'The tool answered: still sunny');
      assert.equal((await client.responses.retrieve(gone.id).catch((e) => e)).status, 404);
    } finally {
      await gw.stop();
      await mock.stop();
    }
  });
});

describe('passed-through responses belong to their tenant', { timeout: ms(60_000) }, () => {
  test('only the tenant that made a response may continue it; provider-side stores are not reachable', async () => {
    const mock = await startMock({ config: { seed: 14, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    const gw = await startGateway({
      config: {
        upstreams: [{ name: 'native', url: `${mock.url}/v1`, responses: true }],
        routes: [{ name: 'direct', upstream: 'native', model: 'mock-1' }],
        api_keys: [
          { tenant: 'a', key_sha256: sha256('sk-a') },
          { tenant: 'b', key_sha256: sha256('sk-b') },
        ],
        tenants: [{ name: 'a' }, { name: 'b' }],
      },
    });
    try {
      const a = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-a', maxRetries: 0 });
      const b = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-b', maxRetries: 0 });
      const first = await a.responses.create({ model: 'direct', input: 'Hello' });
      const mine = await a.responses.create({ model: 'direct', input: 'More', previous_response_id: first.id });
      assert.equal(mine.status, 'completed');
      const stream = await a.responses.create({ model: 'direct', input: 'Stream', stream: true });
      let streamed;
      for await (const ev of stream) if (ev.type === 'response.completed') streamed = ev.response.id;
      assert.equal((await a.responses.create({ model: 'direct', input: 'On', previous_response_id: streamed })).status, 'completed');
      const theirs = await b.responses.create({ model: 'direct', input: 'More', previous_response_id: first.id }).catch((e) => e);
      assert.equal(theirs.status, 400);
      assert.equal(theirs.param, 'previous_response_id');
      const conv = await a.responses.create({ model: 'direct', input: 'x', conversation: 'conv_1' }).catch((e) => e);
      assert.equal(conv.status, 400);
      assert.equal(conv.code, 'unsupported_parameter');
      const fs = await a.responses
        .create({ model: 'direct', input: 'x', tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] })
        .catch((e) => e);
      assert.equal(fs.param, 'tools[0].type');
    } finally {
      await gw.stop();
      await mock.stop();
    }
  });
});
