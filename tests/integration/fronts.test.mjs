// fronts.test.mjs: every front door goes through the same pipeline. A route served by a
// release (pinned model, rendered prompt, pinned params), a tenant's rate limit and the
// lineage headers apply to Responses API and Anthropic Messages clients exactly as to chat
// completions clients.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

import { ms, runProcess, SLUICE_BIN, startGateway, startMock, tempDir } from './harness.mjs';

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

describe('releases, limits and lineage behind every front door', { timeout: ms(60_000) }, () => {
  let mock;
  let gw;
  let rel;
  before(async () => {
    mock = await startMock({ config: { seed: 13, defaults: { ttft_ms: 2, tpot_ms: 0.2, output_tokens: [8, 12] } } });
    const dataDir = tempDir('sluice-fronts-');
    const dir = tempDir('sluice-fronts-rel-');
    writeFileSync(path.join(dir, 'prompt.yaml'), 'system: "You are a terse tutor."\n');
    writeFileSync(
      path.join(dir, 'release.yaml'),
      'route: tutor\nmodel: {upstream: mock, id: mock-pinned}\nprompt: {file: prompt.yaml, mode: prepend_system}\nparams: {max_tokens: 3}\n',
    );
    const created = await runProcess(SLUICE_BIN, ['release', 'create', path.join(dir, 'release.yaml'), '--data-dir', dataDir]);
    assert.equal(created.code, 0, created.stderr);
    rel = created.stdout.trim().split(/\s/)[0];
    const promoted = await runProcess(SLUICE_BIN, ['route', 'promote', 'tutor', rel, '--data-dir', dataDir]);
    assert.equal(promoted.code, 0, promoted.stderr);
    gw = await startGateway({
      dataDir,
      config: {
        upstreams: [{ name: 'mock', url: `${mock.url}/v1` }],
        api_keys: [
          { tenant: 'acme', key_sha256: sha256('sk-acme') },
          { tenant: 'tiny', key_sha256: sha256('sk-tiny') },
        ],
        tenants: [{ name: 'acme', rpm: 1000 }, { name: 'tiny', rpm: 2 }],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.stop();
  });

  test('a Responses API client gets the release: pinned model and params, lineage and rate-limit headers', async () => {
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-acme', maxRetries: 0 });
    const { data: r, response } = await client.responses
      .create({ model: 'tutor', input: 'Explain fractions.', max_output_tokens: 50 })
      .withResponse();
    assert.equal(r.model, 'mock-pinned', 'the release pins the upstream model');
    assert.equal(r.status, 'incomplete', 'the release pins max_tokens 3');
    assert.equal(r.usage.output_tokens, 3);
    assert.equal(response.headers.get('x-sluice-release'), rel);
    assert.match(response.headers.get('x-sluice-prompt'), /^p_/);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1000');
    const line = await gw.waitLog((l) => l.request_id === response.headers.get('x-request-id'));
    assert.equal(line.release, rel);
    assert.equal(line.upstream_model, 'mock-pinned');
  });

  test('an Anthropic client gets the release too', async () => {
    const client = new Anthropic({ baseURL: gw.url, apiKey: 'sk-acme', maxRetries: 0 });
    const { data: m, response } = await client.messages
      .create({ model: 'tutor', max_tokens: 50, messages: [{ role: 'user', content: 'Explain fractions.' }] })
      .withResponse();
    assert.equal(m.stop_reason, 'max_tokens');
    assert.equal(m.usage.output_tokens, 3);
    assert.equal(response.headers.get('x-sluice-release'), rel);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1000');
  });

  test('a tenant over its limit gets a 429 in each API\'s shape, with Retry-After', async () => {
    const body = { model: 'tutor', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] };
    const post = (url, headers) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    assert.equal((await post(`${gw.baseURL}/messages`, { 'x-api-key': 'sk-tiny' })).status, 200);
    assert.equal((await post(`${gw.baseURL}/chat/completions`, { authorization: 'Bearer sk-tiny' })).status, 200);
    const anthropic = await post(`${gw.baseURL}/messages`, { 'x-api-key': 'sk-tiny' });
    assert.equal(anthropic.status, 429);
    assert.ok(Number(anthropic.headers.get('retry-after')) >= 1);
    const a = await anthropic.json();
    assert.equal(a.type, 'error');
    assert.equal(a.error.type, 'rate_limit_error');
    const responses = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-tiny' },
      body: JSON.stringify({ model: 'tutor', input: 'hi' }),
    });
    assert.equal(responses.status, 429);
    assert.equal((await responses.json()).error.code, 'rate_limit_exceeded');
  });
});
