// messages.test.mjs: Anthropic's Messages API (POST /v1/messages) as a front door, bridged
// to an OpenAI-compatible upstream (mock-llm), through the official `@anthropic-ai/sdk`:
// messages, streaming (the SDK's own event accumulation), tools and tool results, stop
// reasons, usage, keys in x-api-key, and errors in Anthropic's shape.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import Anthropic from '@anthropic-ai/sdk';

import { ms, startGateway, startMock } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

const weather = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('the Anthropic Messages API over an OpenAI-compatible upstream', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  let client;
  before(async () => {
    mock = await startMock({ config: { seed: 4, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    gw = await startGateway({
      config: {
        upstreams: [{ name: 'mock', url: `${mock.url}/v1` }],
        routes: [{ name: 'claude-bot', upstream: 'mock', model: 'mock-1' }],
        api_keys: [{ tenant: 'acme', key_sha256: sha256('sk-ant-acme') }],
        tenants: [{ name: 'acme' }],
      },
    });
    // The SDK's base URL is the server root: it appends /v1/messages itself.
    client = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-acme', maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test('messages.create: a text block, end_turn or max_tokens, usage, the key in x-api-key', async () => {
    const { data: m, response } = await client.messages
      .create({
        model: 'claude-bot',
        max_tokens: 64,
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'Tell me about gateways.' }],
      })
      .withResponse();
    assert.match(m.id, /^msg_/);
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'claude-bot');
    assert.equal(m.content[0].type, 'text');
    assert.ok(m.content[0].text.length > 0);
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
    assert.equal(response.headers.get('x-sluice-upstream'), 'mock');
    const line = await gw.waitLog((l) => l.request_id === response.headers.get('x-request-id'));
    assert.equal(line.api, 'messages');
    assert.equal(line.tenant, 'acme');

    const cut = await client.messages.create({ model: 'claude-bot', max_tokens: 2, messages: [{ role: 'user', content: 'More.' }] });
    assert.equal(cut.stop_reason, 'max_tokens');
    assert.equal(cut.usage.output_tokens, 2);
  });

  test('streaming: the SDK accumulates the events into the final message', async () => {
    const stream = client.messages.stream({
      model: 'claude-bot',
      max_tokens: 64,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Stream, please.' }] }],
    });
    let text = '';
    const types = [];
    stream.on('text', (t) => (text += t));
    stream.on('streamEvent', (e) => types.push(e.type));
    const final = await stream.finalMessage();
    assert.equal(final.content[0].text, text);
    assert.ok(text.length > 0);
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0, 'output tokens from message_delta');
    assert.equal(types[0], 'message_start');
    assert.equal(types[1], 'content_block_start');
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  });

  test('tools: tool_use with a parsed input and stop_reason tool_use; a tool_result continues the turn', async () => {
    const first = await client.messages.create({
      model: 'claude-bot',
      max_tokens: 64,
      tools: [weather],
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { city: 'mock' });
    const second = await client.messages.create({
      model: 'claude-bot',
      max_tokens: 64,
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18 degrees' }] },
      ],
    });
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(second.content[0].text, 'The tool answered: 18 degrees');
  });

  test('streamed tool use: input_json_delta events the SDK assembles into the input', async () => {
    const stream = client.messages.stream({
      model: 'claude-bot',
      max_tokens: 64,
      tools: [weather],
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: 'Weather?' }],
    });
    let json = '';
    stream.on('inputJson', (delta) => (json += delta));
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    assert.equal(final.content[0].type, 'tool_use');
    assert.deepEqual(final.content[0].input, { city: 'mock' });
    assert.equal(json, '{"city":"mock"}');
  });

  test('errors in Anthropic\'s shape: wrong key, unknown model, missing max_tokens, a broken upstream', async () => {
    const anon = new Anthropic({ baseURL: gw.url, apiKey: 'sk-wrong', maxRetries: 0 });
    const auth = await anon.messages
      .create({ model: 'claude-bot', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    assert.ok(auth instanceof Anthropic.AuthenticationError, String(auth));
    assert.equal(auth.error.type, 'error');
    assert.equal(auth.error.error.type, 'authentication_error');
    const unknown = await client.messages
      .create({ model: 'nope', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    assert.ok(unknown instanceof Anthropic.NotFoundError, String(unknown));
    assert.equal(unknown.error.error.type, 'not_found_error');
    const missing = await client.messages.create({ model: 'claude-bot', messages: [{ role: 'user', content: 'hi' }] }).catch((e) => e);
    assert.ok(missing instanceof Anthropic.BadRequestError);
    assert.match(missing.error.error.message, /max_tokens/);
    await mock.setFaults({ error_rate: 1 });
    try {
      const down = await client.messages
        .create({ model: 'claude-bot', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] })
        .catch((e) => e);
      assert.ok(down instanceof Anthropic.InternalServerError, String(down));
      assert.equal(down.error.type, 'error');
      assert.equal(down.error.error.type, 'api_error');
    } finally {
      await mock.clearFaults();
    }
  });

  test('a stream the upstream cuts ends with an error event the SDK raises', async () => {
    await mock.setFaults({ cut_rate: 1, cut_after_tokens: 2 });
    try {
      const stream = client.messages.stream({ model: 'claude-bot', max_tokens: 64, messages: [{ role: 'user', content: 'Break.' }] });
      const err = await stream.finalMessage().catch((e) => e);
      assert.ok(err instanceof Anthropic.APIError, String(err));
      assert.match(String(err.message), /closed the stream/);
    } finally {
      await mock.clearFaults();
    }
  });
});

describe('Anthropic clients listing models', { timeout: ms(30_000) }, () => {
  test('models.list and models.retrieve in Anthropic\'s shape, with the key in x-api-key', async () => {
    const mock = await startMock({ config: { seed: 4 } });
    const gw = await startGateway({
      config: {
        upstreams: [{ name: 'mock', url: `${mock.url}/v1` }],
        routes: [
          { name: 'claude-bot', upstream: 'mock', model: 'mock-1' },
          { name: 'hidden', upstream: 'mock', model: 'mock-2' },
        ],
        api_keys: [{ tenant: 'acme', key_sha256: sha256('sk-ant-acme') }],
        tenants: [{ name: 'acme', routes: ['claude-bot'] }],
      },
    });
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-acme', maxRetries: 0 });
      const page = await client.models.list();
      assert.deepEqual(page.data.map((m) => [m.type, m.id]), [['model', 'claude-bot']]);
      const one = await client.models.retrieve('claude-bot');
      assert.equal(one.display_name, 'claude-bot');
      const hidden = await client.models.retrieve('hidden').catch((e) => e);
      assert.ok(hidden instanceof Anthropic.NotFoundError, String(hidden));
      assert.equal(hidden.error.error.type, 'not_found_error');
      const anon = new Anthropic({ baseURL: gw.url, apiKey: 'sk-nope', maxRetries: 0 });
      assert.ok((await anon.models.list().catch((e) => e)) instanceof Anthropic.AuthenticationError);
    } finally {
      await gw.stop();
      await mock.stop();
    }
  });
});
