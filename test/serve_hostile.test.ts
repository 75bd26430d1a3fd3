/**
 * `tinyemo serve` under hostile requests: each gets a clean 4xx with the
 * error shape (or, for a client that never finishes, a bounded timeout), and
 * after each the server answers a good request correctly.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';

import { ServeModels } from '../lib/serve/models';
import { RunningServer, SERVE_DEFAULTS, startServer } from '../lib/serve/server';
import { png } from './helpers/png';
import { IMAGES, ServeFixture, makeServeFixture } from './helpers/serve_fixture';

let fx: ServeFixture;
let models: ServeModels;
let server: RunningServer;
let expected: unknown;
const photoBytes = fs.readFileSync(path.join(IMAGES, 'photo_640x480.jpg'));

beforeAll(async () => {
  fx = await makeServeFixture('tinyemo-serve-hostile-');
  models = ServeModels.load({ model: fx.model, mllm: fx.mllm });
  server = await startServer(models, { ...SERVE_DEFAULTS, port: 0, maxBodyBytes: 4 * 2 ** 20, maxTokens: 4096, headersTimeoutMs: 1000, requestTimeoutMs: 2000 });
  expected = await classifyPhoto();
}, 120000);

afterAll(async () => {
  await server?.close();
  models?.dispose();
  fs.rmSync(fx.tmp, { recursive: true, force: true });
});

async function classifyPhoto(): Promise<unknown> {
  const r = await fetch(`${server.url}/v1/classify`, { method: 'POST', body: photoBytes, headers: { 'content-type': 'image/jpeg' } });
  expect(r.status).toBe(200);
  return r.json();
}

/** The server is up, answers correctly, and holds nothing for requests that are gone. */
async function expectHealthy(): Promise<void> {
  expect(await classifyPhoto()).toEqual(expected);
  expect(server.state.scheduler.queued).toBe(0);
  expect(server.state.scheduler.running).toBe(0);
}

async function expectError(res: Response, status: number, code: string, message?: RegExp): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const j = (await res.json()) as { error: { code: string; message: string } };
  expect(Object.keys(j)).toEqual(['error']);
  expect(j.error.code).toBe(code);
  if (message) expect(j.error.message).toMatch(message);
  expect(j.error.message).not.toMatch(/\n\s+at |\/tmp\/|node_modules/); // no stack, no server paths
}

const post = (route: string, body: Uint8Array | string, type: string) => fetch(`${server.url}${route}`, { method: 'POST', body, headers: { 'content-type': type } });
const json = (route: string, body: unknown) => post(route, JSON.stringify(body), 'application/json');

/** Writes raw bytes on a socket and collects what comes back until the server closes it (or `waitMs` passes). */
function raw(bytes: string | Buffer, waitMs = 8000): Promise<{ text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => s.write(bytes));
    let text = '';
    s.on('data', (d) => (text += d.toString('latin1')));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the server kept the connection open for ${waitMs} ms; got: ${text.slice(0, 80)}`));
    }, waitMs);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text });
    });
    s.on('error', () => undefined);
  });
}

test('slow headers are cut off by the header timeout (408), and the server goes on', async () => {
  const r = await raw('POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: ima');
  expect(r.text).toMatch(/^HTTP\/1\.1 408/);
  await expectHealthy();
});

test('a truncated body: a client that stalls is cut off by the request timeout; one that hangs up is forgotten', async () => {
  const head = 'POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 50000\r\n\r\n';
  const stalled = await raw(Buffer.concat([Buffer.from(head), photoBytes.subarray(0, 3000)]));
  expect(stalled.text).toMatch(/^HTTP\/1\.1 408/);
  const s = net.connect(server.port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.end(Buffer.concat([Buffer.from(head), photoBytes.subarray(0, 3000)]));
  await new Promise((r) => setTimeout(r, 200));
  s.destroy();
  await expectHealthy();
});

test('a 100 MB body is refused with 413, declared or chunked', async () => {
  const big = new Uint8Array(100 * 2 ** 20);
  await expectError(await post('/v1/classify', big, 'image/png'), 413, 'payload_too_large', /limit of 4194304 bytes/);
  await expectError(await post('/v1/classify', JSON.stringify({ image: Buffer.alloc(6 * 2 ** 20).toString('base64') }), 'application/json'), 413, 'payload_too_large');
  // Chunked, no Content-Length: refused when the count passes the limit.
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= 100 * 2 ** 20) return c.close();
      sent += 2 ** 20;
      c.enqueue(new Uint8Array(2 ** 20));
    },
  });
  const res = await fetch(`${server.url}/v1/classify`, { method: 'POST', body, headers: { 'content-type': 'image/png' }, duplex: 'half' } as RequestInit).catch((e: Error) => e);
  // Either the 413 arrives, or the server's close reaches the client first; it never reads the whole 100 MB.
  if (res instanceof Response) await expectError(res, 413, 'payload_too_large');
  expect(sent).toBeLessThan(100 * 2 ** 20);
  await expectHealthy();
});

test('bad images: bad base64, a pixel bomb, SVG, HEIC, garbage, an empty body', async () => {
  await expectError(await json('/v1/classify', { image: 'not*base64!' }), 400, 'bad_request', /not valid base64/);
  await expectError(await json('/v1/classify', { image: 'data:text/plain,hello' }), 400, 'bad_request', /base64 data URLs/);
  const bomb = png(50000, 50000, Buffer.alloc(1));
  expect(bomb.length).toBeLessThan(200);
  await expectError(await post('/v1/classify', bomb, 'image/png'), 400, 'invalid_image', /exceeds pixel limit|more than the limit/);
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>';
  await expectError(await post('/v1/classify', svg, 'image/svg+xml'), 415, 'unsupported_media_type', /svg images are not accepted/);
  const heic = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.alloc(4), Buffer.from('mif1heic'), Buffer.alloc(64)]);
  const h = await post('/v1/classify', heic, 'image/heic');
  expect([400, 415]).toContain(h.status);
  await expectError(await post('/v1/classify', Buffer.from('GIF89a garbage'), 'image/gif'), 400, 'invalid_image');
  await expectError(await post('/v1/classify', '', 'image/png'), 400, 'invalid_image');
  await expectHealthy();
});

test('wrong content types, malformed JSON and multipart, huge max_tokens, URLs to fetch', async () => {
  await expectError(await post('/v1/classify', 'hello', 'text/plain'), 415, 'unsupported_media_type');
  await expectError(await fetch(`${server.url}/v1/classify`, { method: 'POST', body: photoBytes }), 415, 'unsupported_media_type');
  await expectError(await post('/v1/classify', '{"image": ', 'application/json'), 400, 'bad_request', /not valid JSON/);
  await expectError(await post('/v1/classify', '[1,2]', 'application/json'), 400, 'bad_request', /JSON object/);
  await expectError(await post('/v1/classify', '--x\r\nnonsense', 'multipart/form-data'), 400, 'bad_request', /multipart/);
  await expectError(
    await post('/v1/classify', '--b\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc', 'multipart/form-data; boundary=b'),
    400,
    'bad_request',
    /multipart/,
  );
  await expectError(await post('/v1/classify?top_k=-3', photoBytes, 'image/jpeg'), 400, 'bad_request', /top_k/);
  await expectError(await post('/v1/reason?max_tokens=100000', photoBytes, 'image/jpeg'), 400, 'bad_request', /max_tokens/);
  const msg = (content: unknown) => ({ model: 'x', messages: [{ role: 'user', content }] });
  await expectError(await json('/v1/chat/completions', { ...msg('hi'), max_tokens: 1e9 }), 400, 'bad_request', /max_tokens/);
  await expectError(await json('/v1/chat/completions', { ...msg('hi'), temperature: 'hot' }), 400, 'bad_request', /temperature/);
  await expectError(await json('/v1/chat/completions', msg([{ type: 'image_url', image_url: { url: 'http://127.0.0.1:1/x.png' } }])), 400, 'bad_request', /never fetches/);
  await expectError(await json('/v1/chat/completions', msg([{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }])), 400, 'bad_request', /never fetches/);
  await expectError(await json('/v1/chat/completions', { messages: 'hi' }), 400, 'bad_request', /messages/);
  await expectError(await json('/v1/chat/completions', { messages: [{ role: 'root', content: 'x' }] }), 400, 'bad_request', /role/);
  await expectHealthy();
});

test('unknown routes, methods and path tricks never reach a file', async () => {
  await expectError(await fetch(`${server.url}/../../etc/passwd`), 404, 'not_found');
  await expectError(await fetch(`${server.url}/v1/classify/..%2F..%2Fetc%2Fpasswd`), 404, 'not_found');
  await expectError(await fetch(`${server.url}/v1/chat/completions`, { method: 'DELETE' }), 405, 'method_not_allowed');
  expect((await raw('BREW /coffee HTCPCP/1.0\r\n\r\n')).text).toMatch(/^HTTP\/1\.1 400/);
  await expectHealthy();
});

test('1,000 requests that disconnect midway (in the body, or during a generation) leave nothing behind', async () => {
  const head = (len: number) => `POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${len}\r\n\r\n`;
  const hangUp = (i: number) =>
    new Promise<void>((resolve) => {
      const s = net.connect(server.port, '127.0.0.1', () => {
        // Some stop inside the headers, most inside the body, a few right after the body.
        const cut = i % 10 === 0 ? 20 : i % 10 === 1 ? photoBytes.length : 1 + ((i * 7919) % (photoBytes.length - 1));
        s.write(Buffer.concat([Buffer.from(head(photoBytes.length)), photoBytes.subarray(0, cut)]).subarray(0, i % 10 === 0 ? cut : undefined), () => s.destroy());
      });
      s.on('close', () => resolve());
      s.on('error', () => undefined);
    });
  for (let wave = 0; wave < 10; ++wave) await Promise.all(Array.from({ length: 100 }, (_, j) => hangUp(wave * 100 + j)));
  // Generations whose client goes away after the first event stop there: no answer is finished, no slot kept.
  const tokens = async () => Number(/^tinyemo_generated_tokens_total (\S+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())![1]);
  const before = await tokens();
  for (let i = 0; i < 3; ++i) {
    const ac = new AbortController();
    const res = await fetch(`${server.url}/v1/reason?max_tokens=4000`, {
      method: 'POST',
      body: photoBytes,
      headers: { 'content-type': 'image/jpeg', accept: 'text/event-stream' },
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
  }
  await new Promise((r) => setTimeout(r, 300));
  await expectHealthy();
  expect(await tokens()).toBe(before);
}, 120000);

test('a request past --timeout-s gets 504 and its generation stops', async () => {
  const short = await startServer(models, { ...SERVE_DEFAULTS, port: 0, timeoutS: 0.5, maxTokens: 4096 });
  try {
    const r = await fetch(`${short.url}/v1/reason?max_tokens=4000`, { method: 'POST', body: photoBytes, headers: { 'content-type': 'image/jpeg' } });
    await expectError(r, 504, 'timeout', /longer than 0.5 s/);
    await new Promise((res) => setTimeout(res, 100));
    expect(short.state.scheduler.running).toBe(0);
  } finally {
    await short.close();
  }
});
