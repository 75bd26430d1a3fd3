/**
 * `tinyemo serve` over real HTTP on 127.0.0.1, with small real models: the
 * answers equal the CLI's on the same inputs (classify exactly for the same
 * batch, to rounding across batches; reason and chat token for token, greedy), events stream in order, the
 * openai client works against the chat endpoint, and the probes, metrics,
 * key and queue behave.
 */
import * as fs from 'fs';
import * as path from 'path';
import OpenAI from 'openai';

import * as imageModule from '../lib/io/image';
import { ServeModels } from '../lib/serve/models';
import { RunningServer, SERVE_DEFAULTS, ServeOptions, startServer } from '../lib/serve/server';
import { IMAGES, ServeFixture, cliJson, makeServeFixture } from './helpers/serve_fixture';

type Ranked = { file: string; predictions: Array<{ label: string; score: number }> };
type Classified = { results: Ranked[]; skipped: Array<{ file: string; reason: string; code: string }> };

let fx: ServeFixture;
let models: ServeModels;
let server: RunningServer;
const photo = path.join(IMAGES, 'photo_640x480.jpg');
const files = ['photo_640x480.jpg', 'wide_1023x257.webp', 'grey_225x224.png', 'cmyk_320x240.jpg', 'odd_crop_299x374.png'].map((f) => path.join(IMAGES, f));

const opts = (o: Partial<ServeOptions> = {}): ServeOptions => ({ ...SERVE_DEFAULTS, port: 0, ...o });

beforeAll(async () => {
  fx = await makeServeFixture('tinyemo-serve-');
  models = ServeModels.load({ model: fx.model, mllm: fx.mllm });
  server = await startServer(models, opts({ batchWaitMs: 20 }));
}, 120000);

afterAll(async () => {
  await server?.close();
  models?.dispose();
  fs.rmSync(fx.tmp, { recursive: true, force: true });
});

const post = (route: string, body: Blob | FormData | string, headers: Record<string, string> = {}, at = server) => fetch(`${at.url}${route}`, { method: 'POST', body, headers });
const imageBody = (f: string) => new Blob([fs.readFileSync(f)]);
const mime = (f: string) => (f.endsWith('.png') ? 'image/png' : f.endsWith('.webp') ? 'image/webp' : 'image/jpeg');

test('classify: a raw image body gets exactly what `tinyemo classify --json` prints for the file', async () => {
  const cli = cliJson<Classified>('classify', photo, '--model', fx.model, '--top-k', '2');
  const res = await post('/v1/classify?top_k=2', imageBody(photo), { 'content-type': 'image/jpeg' });
  expect(res.status).toBe(200);
  const j = (await res.json()) as Classified;
  expect(j.skipped).toEqual([]);
  expect(j.results).toEqual([{ file: 'image', predictions: cli.results[0].predictions }]);
});

test('classify: multipart with several images and a bad one, and JSON base64, equal the CLI; the bad one is skipped with its code', async () => {
  const cli = cliJson<Classified>('classify', ...files, '--model', fx.model);
  const form = new FormData();
  for (const f of files) form.append('image', new Blob([fs.readFileSync(f)], { type: mime(f) }), path.basename(f));
  form.append('image', new Blob(['<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9" height="9"/></svg>'], { type: 'image/svg+xml' }), 'x.svg');
  const j = (await (await post('/v1/classify', form)).json()) as Classified;
  expect(j.results.map((r) => r.file)).toEqual(files.map((f) => path.basename(f)));
  // A request's images are queued together (however long each took to decode): one batch, as the CLI's.
  expect(j.results.map((r) => r.predictions)).toEqual(cli.results.map((r) => r.predictions));
  expect(j.skipped).toEqual([{ file: 'x.svg', reason: expect.stringMatching(/svg images are not accepted/), code: 'UNSUPPORTED' }]);

  const b64 = JSON.stringify({ images: files.slice(0, 2).map((f) => fs.readFileSync(f).toString('base64')), top_k: 3 });
  const k = (await (await post('/v1/classify', b64, { 'content-type': 'application/json' })).json()) as Classified;
  // Two images are a batch of 20 rows, under the 48 where the CLI's batch of five switches kernels.
  expect(k.results).toHaveLength(2);
  k.results.forEach((r, i) => expectSameRanking(r.predictions, cli.results[i].predictions));
});

test('classify: an unexpected failure while decoding one image answers 500 and gives back every queue place', async () => {
  const real = imageModule.readImage;
  let calls = 0;
  const spy = jest
    .spyOn(imageModule, 'readImage')
    .mockImplementation((...a: Parameters<typeof real>) => (++calls === 2 ? Promise.reject(new Error('a bug, not a bad image')) : real(...a)));
  try {
    const form = new FormData();
    for (const f of files.slice(0, 3)) form.append('image', new Blob([fs.readFileSync(f)], { type: mime(f) }), path.basename(f));
    const res = await post('/v1/classify', form);
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('internal');
  } finally {
    spy.mockRestore();
  }
  expect(calls).toBe(3);
  expect((await metrics())('tinyemo_queue_depth')).toBe(0);
});

/** The same labels in the same order, and scores equal to rounding (a batch's kernel can move the last bits). */
function expectSameRanking(got: Ranked['predictions'], want: Ranked['predictions']): void {
  expect(got.map((p) => p.label)).toEqual(want.map((p) => p.label));
  got.forEach((p, j) => expect(p.score).toBeCloseTo(want[j].score, 6));
}

test('classify: concurrent requests are batched into shared forward passes, and each still gets its answer', async () => {
  const cli = cliJson<Classified>('classify', ...files, '--model', fx.model);
  const before = await batchCount();
  const answers = await Promise.all(files.map((f) => post('/v1/classify', imageBody(f), { 'content-type': mime(f) }).then((r) => r.json() as Promise<Classified>)));
  // The fixture tower has 10 tokens per image, so a batch of under 5 takes the small-product kernel: equal to rounding.
  answers.forEach((a, i) => expectSameRanking(a.results[0].predictions, cli.results[i].predictions));
  const after = await batchCount();
  // Five requests, fewer forward passes.
  expect(after.batches - before.batches).toBeLessThan(files.length);
  expect(after.images - before.images).toBe(files.length);
});

async function batchCount(): Promise<{ batches: number; images: number }> {
  const read = await metrics();
  return { batches: read('tinyemo_classify_batch_size_count'), images: read('tinyemo_classify_batch_size_sum') };
}

/** The server's /metrics now, read by metric name (NaN when absent). */
async function metrics(): Promise<(name: string) => number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

type ReasonDone = { type: 'done'; label: string; text: string; tokens: number; scores: Array<{ label: string; score: number }> };

test('reason: the JSON equals `tinyemo reason --json`; with Accept: text/event-stream the events come in order and add up', async () => {
  const cli = cliJson<ReasonDone>('reason', photo, '--model', fx.model, '--mllm', fx.mllm, '--max-new-tokens', '12');
  const j = (await (await post('/v1/reason?max_tokens=12', imageBody(photo), { 'content-type': 'image/jpeg' })).json()) as ReasonDone;
  expect({ ...j, file: undefined }).toEqual({ ...cli, file: undefined });

  const res = await post('/v1/reason?max_tokens=12', imageBody(photo), { 'content-type': 'image/jpeg', accept: 'text/event-stream' });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events = (await res.text())
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => JSON.parse(b.slice(6)) as { type: string; text?: string; label?: string });
  expect(events[0]).toMatchObject({ type: 'label', label: cli.label });
  expect(events.at(-1)).toMatchObject({ type: 'done', text: cli.text, tokens: cli.tokens });
  expect(
    events
      .filter((e) => e.type === 'text')
      .map((e) => e.text)
      .join(''),
  ).toBe(cli.text);
});

test('the openai client: a completion about an image equals `tinyemo generate`, streamed and not, with usage', async () => {
  const prompt = 'How does this picture feel?';
  const cli = cliJson<{ text: string; tokens: number }>('generate', '--mllm', fx.mllm, '--image', photo, '--prompt', prompt, '--max-new-tokens', '10');
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const url = `data:image/jpeg;base64,${fs.readFileSync(photo).toString('base64')}`;
  const messages = [
    {
      role: 'user' as const,
      content: [
        { type: 'text' as const, text: prompt },
        { type: 'image_url' as const, image_url: { url } },
      ],
    },
  ];
  const c = await client.chat.completions.create({ model: 'tinyllava', messages, max_tokens: 10 });
  expect(c.choices[0].message.content).toBe(cli.text);
  expect(c.choices[0].finish_reason).toBe(cli.tokens >= 10 ? 'length' : 'stop');
  expect(c.usage!.completion_tokens).toBe(cli.tokens);
  expect(c.usage!.prompt_tokens).toBeGreaterThan(10);

  const stream = await client.chat.completions.create({ model: 'tinyllava', messages, max_tokens: 10, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined | null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  expect(text).toBe(cli.text);
  expect(finish).toBe(c.choices[0].finish_reason);
  expect(usage).toEqual(c.usage);
  const list = await client.models.list();
  expect(list.data.map((m) => m.id)).toEqual(['tinyllava']);
});

test('probes, metrics, unknown routes and methods', async () => {
  expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ ok: true });
  const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { ready: boolean; labels: string[]; reason: boolean };
  expect(ready).toMatchObject({ ready: true, reason: true, labels: models.labels });
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  expect(metrics).toMatch(/^tinyemo_http_requests_total\{route="\/v1\/classify",status="200"\} \d+/m);
  expect(metrics).toMatch(/^tinyemo_http_request_duration_seconds_bucket\{le="0.1",route="\/v1\/classify"\}/m);
  expect(metrics).toMatch(/^tinyemo_queue_depth 0$/m);
  expect(metrics).toMatch(/^tinyemo_generated_tokens_total [1-9]/m);
  const missing = await fetch(`${server.url}/v2/nothing`);
  expect(missing.status).toBe(404);
  expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /v2/nothing' } });
  const wrong = await fetch(`${server.url}/v1/classify`);
  expect(wrong.status).toBe(405);
  expect(wrong.headers.get('allow')).toBe('POST');
  const page = await fetch(`${server.url}/`);
  expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
  expect(await page.text()).toMatch(/<title>tinyemo<\/title>/);
});

describe('a server with an API key and a short queue', () => {
  let keyed: RunningServer;
  beforeAll(async () => {
    keyed = await startServer(models, opts({ apiKey: 'sekrit-key-123', maxQueue: 2, maxConcurrency: 1 }));
  });
  afterAll(() => keyed.close());

  test('the key: missing or wrong is 401 (constant-time compare), right is 200; probes and the page stay open', async () => {
    const send = (h: Record<string, string>) => post('/v1/classify', imageBody(photo), { 'content-type': 'image/jpeg', ...h }, keyed);
    const none = await send({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    expect((await send({ authorization: 'Bearer sekrit-key-124' })).status).toBe(401);
    expect((await send({ authorization: 'Basic c2Vrcml0' })).status).toBe(401);
    expect((await send({ authorization: 'Bearer sekrit-key-123' })).status).toBe(200);
    expect((await fetch(`${keyed.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${keyed.url}/healthz`)).status).toBe(200);
    expect(((await (await fetch(`${keyed.url}/readyz`)).json()) as { auth: boolean }).auth).toBe(true);
  });

  test('past the queue: 429 with Retry-After, and the next request that fits is served', async () => {
    const form = new FormData();
    for (const f of files.slice(0, 3)) form.append('image', new Blob([fs.readFileSync(f)]), path.basename(f));
    const auth = { authorization: 'Bearer sekrit-key-123' };
    const full = await post('/v1/classify', form, auth, keyed);
    expect(full.status).toBe(429);
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await full.json()) as { error: { code: string } }).error.code).toBe('too_many_requests');
    const ok = await post('/v1/classify', imageBody(photo), { 'content-type': 'image/jpeg', ...auth }, keyed);
    expect(ok.status).toBe(200);
    expect(keyed.state.scheduler.queued).toBe(0);
  });
});
