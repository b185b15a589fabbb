// anthropic_upstream.test.mjs: an Anthropic upstream (`api: anthropic`; mock-llm answering
// in Anthropic's format over a real socket, checking x-api-key and anthropic-version) behind
// the OpenAI surface: whole answers, streams with usage, tool calls both ways, errors mapped
// to OpenAI's shape, and a route whose primary is OpenAI-compatible falling back to Anthropic.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

import { ms, startGateway, startMock } from './harness.mjs';

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe('Anthropic as an upstream', { timeout: ms(60_000) }, () => {
  let openaiMock;
  let claudeMock;
  let gw;
  let client;
  before(async () => {
    openaiMock = await startMock({ config: { seed: 7, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    claudeMock = await startMock({ config: { seed: 8, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    gw = await startGateway({
      env: { ANTHROPIC_KEY: 'sk-ant-upstream' },
      config: {
        upstreams: [
          { name: 'oai', url: `${openaiMock.url}/v1` },
          { name: 'claude', url: `${claudeMock.url}/v1`, api: 'anthropic', api_key_env: 'ANTHROPIC_KEY' },
          { name: 'claude-nokey', url: `${claudeMock.url}/v1`, api: 'anthropic' },
        ],
        routes: [
          { name: 'sonnet', upstream: 'claude', model: 'claude-sonnet-4-5' },
          { name: 'nokey', upstream: 'claude-nokey', model: 'claude-sonnet-4-5' },
          { name: 'primary-then-claude', upstream: 'oai', model: 'mock-1' },
        ],
        fallbacks: [{ route: 'primary-then-claude', on: ['5xx'], chain: [{ upstream: 'claude', model: 'claude-haiku-4-5' }] }],
      },
    });
    client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([openaiMock?.stop(), claudeMock?.stop()]);
  });

  test('a chat completion answered by an Anthropic upstream: message, finish_reason, usage', async () => {
    const { data: c, response } = await client.chat.completions
      .create({ model: 'sonnet', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello?' }], max_tokens: 3 })
      .withResponse();
    assert.equal(c.object, 'chat.completion');
    assert.ok(c.choices[0].message.content.length > 0);
    assert.equal(c.choices[0].finish_reason, 'length');
    assert.equal(c.usage.completion_tokens, 3);
    assert.ok(c.usage.prompt_tokens > 0);
    assert.equal(c.model, 'claude-sonnet-4-5');
    assert.equal(response.headers.get('x-sluice-upstream'), 'claude');
  });

  test('a stream from an Anthropic upstream: chat chunks, include_usage honoured, [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'sonnet',
      messages: [{ role: 'user', content: 'Stream.' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage;
    let finish;
    for await (const ch of stream) {
      text += ch.choices[0]?.delta?.content ?? '';
      if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
      if (ch.usage) usage = ch.usage;
    }
    assert.ok(text.length > 0);
    assert.equal(finish, 'stop');
    assert.ok(usage.completion_tokens > 0 && usage.prompt_tokens > 0);
    // Without include_usage the gateway still accounts the tokens, and strips the chunk.
    const plain = await client.chat.completions.create({ model: 'sonnet', messages: [{ role: 'user', content: 'Again.' }], stream: true });
    for await (const ch of plain) assert.equal(ch.usage ?? undefined, undefined);
  });

  test('tools both ways: tool_use becomes tool_calls, a tool message becomes a tool_result', async () => {
    const first = await client.chat.completions.create({
      model: 'sonnet',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weather],
    });
    const call = first.choices[0].message.tool_calls[0];
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'mock' });
    const second = await client.chat.completions.create({
      model: 'sonnet',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        first.choices[0].message,
        { role: 'tool', tool_call_id: call.id, content: '18 degrees' },
      ],
      tools: [weather],
    });
    assert.equal(second.choices[0].message.content, 'The tool answered: 18 degrees');
    // Streamed tool calls arrive as chat tool_call deltas.
    const stream = await client.chat.completions.create({
      model: 'sonnet',
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [weather],
      stream: true,
    });
    let args = '';
    let name;
    for await (const ch of stream) {
      const tc = ch.choices[0]?.delta?.tool_calls?.[0];
      if (tc?.function?.name) name = tc.function.name;
      args += tc?.function?.arguments ?? '';
    }
    assert.equal(name, 'get_weather');
    assert.deepEqual(JSON.parse(args), { city: 'mock' });
  });

  test('errors from Anthropic reach OpenAI clients in OpenAI\'s shape', async () => {
    const noKey = await client.chat.completions.create({ model: 'nokey', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e);
    assert.ok(noKey instanceof OpenAI.AuthenticationError, String(noKey));
    assert.equal(noKey.type, 'authentication_error');
    assert.match(noKey.message, /x-api-key/);
    const twoChoices = await client.chat.completions
      .create({ model: 'sonnet', messages: [{ role: 'user', content: 'hi' }], n: 2 })
      .catch((e) => e);
    assert.equal(twoChoices.status, 400);
    assert.equal(twoChoices.param, 'n');
  });

  test('primary on an OpenAI-compatible upstream, fallback on Anthropic', async () => {
    await openaiMock.setFaults({ error_rate: 1 });
    try {
      const { data, response } = await client.chat.completions
        .create({ model: 'primary-then-claude', messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      assert.ok(data.choices[0].message.content.length > 0);
      assert.equal(response.headers.get('x-sluice-upstream'), 'claude');
      assert.match(response.headers.get('x-sluice-fallback'), /claude/);
      assert.equal(data.model, 'claude-haiku-4-5');
    } finally {
      await openaiMock.clearFaults();
    }
  });

  test('Anthropic clients to an Anthropic upstream: both translations, one conversation', async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
    const m = await anthropic.messages.create({
      model: 'sonnet',
      max_tokens: 64,
      tools: [{ name: 'get_weather', input_schema: weather.function.parameters }],
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    });
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(m.content.find((b) => b.type === 'tool_use').input, { city: 'mock' });
  });
});
