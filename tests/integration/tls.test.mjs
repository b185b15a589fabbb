// tls.test.mjs: HTTPS upstreams. nginx terminates TLS in front of mock-llm with a
// certificate made here; the gateway must verify it by default, accept it with the right
// CA file, refuse a certificate for another host, and skip checks only when told to.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { startMock, startGateway, tempDir, closedPort, waitFor, postJSON, USER_MSG } from './harness.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
let mock, nginx, dir, port;

function makeCert(name, san) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
    '-addext', `subjectAltName=${san}`, '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.pem`)],
  { stdio: 'ignore' });
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

before(async () => {
  if (!NGINX) return;
  dir = tempDir('sluice-tls-');
  mock = await startMock();
  const good = makeCert('ip', 'IP:127.0.0.1');
  const other = makeCert('other', 'DNS:other.example');
  port = await closedPort();
  const port2 = await closedPort();
  writeFileSync(path.join(dir, 'nginx.conf'), `
daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};
  fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${good.cert}; ssl_certificate_key ${good.key};
           location / { proxy_pass ${mock.url}; proxy_http_version 1.1; proxy_buffering off; } }
  server { listen 127.0.0.1:${port2} ssl; ssl_certificate ${other.cert}; ssl_certificate_key ${other.key};
           location / { proxy_pass ${mock.url}; proxy_http_version 1.1; } }
}`);
  nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  globalThis.port2 = port2;
  await waitFor(async () => {
    try {
      execFileSync('curl', ['-sk', '-o', '/dev/null', `https://127.0.0.1:${port}/mock/stats`]);
      return true;
    } catch {
      return false;
    }
  }, { timeout: 5000, what: 'nginx TLS' });
});

after(async () => {
  nginx?.kill('SIGKILL');
  await mock?.stop();
});

async function call(upstream) {
  const gw = await startGateway({ config: { upstreams: [upstream], limits: { max_attempts: 1 } } });
  try {
    const r = await postJSON(`${gw.url}/v1/chat/completions`, { model: 'm', messages: USER_MSG });
    return { status: r.status, body: r.json };
  } finally {
    await gw.stop();
  }
}

test('HTTPS upstream: verification is on by default and rejects an unknown CA', { skip: !NGINX }, async () => {
  const r = await call({ name: 'tls', url: `https://127.0.0.1:${port}/v1` });
  assert.equal(r.status, 502);
  assert.equal(r.body.error.code, 'tls_failed');
});

test('HTTPS upstream: the right CA file makes it work, streaming included', { skip: !NGINX }, async () => {
  const r = await call({ name: 'tls', url: `https://127.0.0.1:${port}/v1`, ca_file: path.join(dir, 'ip.pem') });
  assert.equal(r.status, 200);
  assert.ok(r.body.choices[0].message.content.length > 0);
});

test('HTTPS upstream: a valid certificate for another host is refused', { skip: !NGINX }, async () => {
  const r = await call({ name: 'tls', url: `https://127.0.0.1:${globalThis.port2}/v1`, ca_file: path.join(dir, 'other.pem') });
  assert.equal(r.status, 502);
  assert.equal(r.body.error.code, 'tls_failed');
});

test('HTTPS upstream: tls_verify false skips verification', { skip: !NGINX }, async () => {
  const r = await call({ name: 'tls', url: `https://127.0.0.1:${port}/v1`, tls_verify: false });
  assert.equal(r.status, 200);
});
