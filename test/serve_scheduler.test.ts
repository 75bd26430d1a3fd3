/**
 * The service's admission and batching, without HTTP: the queue bound and its 429, slots taken in order, and
 * cancelled requests leaving the queue at once, wherever they wait (for a slot, for a batch, or in a batch that
 * waits for a slot), so abandoned requests never hold places that new ones need.
 */
import { TinyEmoError } from '../lib/errors';
import type { RgbImage } from '../lib/io/image';
import type { ImageClassifier } from '../lib/models/projector/image_classifier';
import { ClassifyBatcher } from '../lib/serve/classify_batcher';
import { HttpError } from '../lib/serve/http_error';
import { Scheduler } from '../lib/serve/scheduler';

const image: RgbImage = { width: 1, height: 1, data: new Uint8Array(3) };

/** A classifier that records its batches and answers each image with its name as the label. */
function stubClassifier(batches: string[][]): ImageClassifier {
  const stub = {
    classifyDecoded: async (batch: ReadonlyArray<{ file: string }>) => {
      batches.push(batch.map((b) => b.file));
      return batch.map((b) => ({ file: b.file, predictions: [{ label: b.file, score: 1 }] }));
    },
  };
  return stub as unknown as ImageClassifier;
}

test('reserve: past maxQueue, 429 with a Retry-After of at least 1 s; unreserve makes room', () => {
  const s = new Scheduler({ maxConcurrency: 1, maxQueue: 2 });
  s.reserve(2);
  const e = (() => {
    try {
      s.reserve();
    } catch (x) {
      return x;
    }
  })() as HttpError;
  expect(e).toBeInstanceOf(HttpError);
  expect(e.status).toBe(429);
  expect(Number(e.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  s.unreserve();
  expect(() => s.reserve()).not.toThrow();
  expect(s.queued).toBe(2);
});

test('slots go in order; a waiter that is cancelled leaves the line at once', async () => {
  const s = new Scheduler({ maxConcurrency: 1, maxQueue: 10 });
  const first = await s.acquire();
  const order: string[] = [];
  const ac = new AbortController();
  const a = s.acquire(ac.signal).then(
    () => order.push('a'),
    (e: TinyEmoError) => order.push(`a ${e.code}`),
  );
  const b = s.acquire().then((release) => {
    order.push('b');
    release();
  });
  ac.abort();
  await a;
  first();
  await b;
  expect(order).toEqual(['a CANCELLED', 'b']);
  expect(s.running).toBe(0);
});

test('batcher: cancelled requests leave the queue at once, even inside a batch that waits for a slot', async () => {
  const s = new Scheduler({ maxConcurrency: 1, maxQueue: 10 });
  const batches: string[][] = [];
  const batcher = new ClassifyBatcher(stubClassifier(batches), s, { maxBatch: 3, batchWaitMs: 1 });
  const busy = await s.acquire(); // the one slot is taken: the batch will wait for it
  const acs = [new AbortController(), new AbortController(), new AbortController()];
  s.reserve(3);
  const results = ['x', 'y', 'z'].map((f, i) =>
    batcher.classify(f, image, 1, acs[i].signal).then(
      (p) => p[0].label,
      (e: TinyEmoError) => e.code,
    ),
  );
  await new Promise((r) => setTimeout(r, 20)); // the batch of 3 has formed and waits for the slot
  expect(s.queued).toBe(3);
  acs[0].abort();
  acs[2].abort();
  expect(s.queued).toBe(1); // not when the batch starts: now
  busy();
  expect(await Promise.all(results)).toEqual(['CANCELLED', 'y', 'CANCELLED']);
  expect(batches).toEqual([['y']]);
  expect(s.queued).toBe(0);
  expect(s.running).toBe(0);
});

test('batcher: a request cancelled before it reaches the batcher is refused and counted out', async () => {
  const s = new Scheduler({ maxConcurrency: 1, maxQueue: 10 });
  const batcher = new ClassifyBatcher(stubClassifier([]), s, { maxBatch: 8, batchWaitMs: 1 });
  const ac = new AbortController();
  ac.abort();
  s.reserve();
  await expect(batcher.classify('x', image, 1, ac.signal)).rejects.toMatchObject({ code: 'CANCELLED' });
  expect(s.queued).toBe(0);
});
