// schemas.test.mjs: what sluice writes itself (bridged Responses answers and events,
// Anthropic answers translated to chat completions, models, legacy completions through the
// gateway, errors) validated against OpenAI's published OpenAPI schemas
// (fixtures/openai-schemas.json).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { assertSchema } from './schemas.mjs';
import { ms, sseData, startGateway, startMock } from './harness.mjs';

const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

describe('answers sluice writes match OpenAI\'s published schemas', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  before(async () => {
    mock = await startMock({ config: { seed: 11, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [6, 12] } } });
    gw = await startGateway({
      env: { ANTHROPIC_KEY: 'sk-ant' },
      config: {
        upstreams: [
          { name: 'mock', url: `${mock.url}/v1` },
          { name: 'claude', url: `${mock.url}/v1`, api: 'anthropic', api_key_env: 'ANTHROPIC_KEY' },
        ],
        routes: [
          { name: 'bot', upstream: 'mock', model: 'mock-1' },
          { name: 'sonnet', upstream: 'claude', model: 'claude-sonnet-4-5' },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  const post = async (path, body) => {
    const r = await fetch(`${gw.baseURL}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, text: await r.text() };
  };

  test('bridged Responses: whole answers (text, tool calls, cut short) are Response objects', async () => {
    for (const body of [
      { model: 'bot', instructions: 'Be brief.', input: 'Hello?' },
      { model: 'bot', input: 'Weather?', tools: [weatherTool] },
      { model: 'bot', input: 'Long?', max_output_tokens: 2 },
      { model: 'bot', input: 'JSON?', text: { format: { type: 'json_object' } }, store: false },
    ]) {
      const r = await post('/responses', body);
      assert.equal(r.status, 200, r.text);
      assertSchema('Response', JSON.parse(r.text));
    }
  });

  test('bridged Responses: every streamed event is a ResponseStreamEvent, the broken ones too', async () => {
    for (const body of [
      { model: 'bot', input: 'Stream.', stream: true },
      { model: 'bot', input: 'Weather?', tools: [weatherTool], stream: true },
    ]) {
      const r = await post('/responses', body);
      const events = sseData(r.text);
      assert.ok(events.length > 5);
      for (const e of events) assertSchema('ResponseStreamEvent', JSON.parse(e));
    }
    await mock.setFaults({ cut_rate: 1, cut_after_tokens: 2 });
    try {
      const r = await post('/responses', { model: 'bot', input: 'Break.', stream: true });
      const events = sseData(r.text).map((e) => JSON.parse(e));
      assert.equal(events.at(-1).type, 'response.failed');
      for (const e of events) assertSchema('ResponseStreamEvent', e);
    } finally {
      await mock.clearFaults();
    }
  });

  test('an Anthropic upstream\'s answers, chunks and errors are chat completions', async () => {
    const whole = await post('/chat/completions', { model: 'sonnet', messages: [{ role: 'user', content: 'Hi' }] });
    assertSchema('CreateChatCompletionResponse', JSON.parse(whole.text));
    const tools = await post('/chat/completions', {
      model: 'sonnet',
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: weatherTool.parameters } }],
    });
    assertSchema('CreateChatCompletionResponse', JSON.parse(tools.text));
    const stream = await post('/chat/completions', {
      model: 'sonnet',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = sseData(stream.text).filter((d) => d !== '[DONE]');
    assert.ok(chunks.length > 3);
    for (const c of chunks) assertSchema('CreateChatCompletionStreamResponse', JSON.parse(c));
    await mock.setFaults({ error_rate: 1 });
    try {
      const err = await post('/chat/completions', { model: 'sonnet', messages: [{ role: 'user', content: 'Hi' }] });
      assert.equal(err.status, 500);
      assertSchema('ErrorResponse', JSON.parse(err.text));
    } finally {
      await mock.clearFaults();
    }
  });

  test('models, legacy completions and sluice\'s own errors', async () => {
    const list = await fetch(`${gw.baseURL}/models`);
    assertSchema('ListModelsResponse', await list.json());
    const one = await fetch(`${gw.baseURL}/models/bot`);
    assertSchema('Model', await one.json());
    const c = await post('/completions', { model: 'bot', prompt: 'Once', max_tokens: 4 });
    assertSchema('CreateCompletionResponse', JSON.parse(c.text));
    for (const [path, body] of [
      ['/responses', { model: 'nope', input: 'hi' }],
      ['/responses', { model: 'bot', input: 'hi', tools: [{ type: 'web_search' }] }],
      ['/chat/completions', { model: 'nope', messages: [] }],
    ]) {
      const r = await post(path, body);
      assert.ok(r.status >= 400);
      assertSchema('ErrorResponse', JSON.parse(r.text));
    }
  });
});
