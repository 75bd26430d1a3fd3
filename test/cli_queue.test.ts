/**
 * The queue commands' refusals, which need no Redis: bad URLs, a queue nobody listens on, chunks that split batches;
 * and how a submission's end is read, against a queue whose job ends between two reads.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

import { connectionOptions, parseQueueUrl } from '../lib/queue/connection';
import type { FlowSummary } from '../lib/queue/jobs';
import { JobLookup, flowOutcome } from '../lib/queue/submit';
import { REPO } from './helpers/repo';
import { freePort } from './helpers/redis';

const bin = path.join(REPO, 'bin', 'tinyemo.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });

test('queue URLs: host, port, database, credentials, TLS; anything else is refused by name', () => {
  expect(parseQueueUrl('redis://127.0.0.1:6380/3')).toEqual({ host: '127.0.0.1', port: 6380, db: 3, tls: false });
  expect(parseQueueUrl('rediss://u:p%40ss@queue.example:6390')).toEqual({ host: 'queue.example', port: 6390, db: 0, username: 'u', password: 'p@ss', tls: true });
  expect(parseQueueUrl('redis://[::1]')).toMatchObject({ host: '::1', port: 6379 });
  expect(() => parseQueueUrl('http://127.0.0.1:6379')).toThrow(/redis:\/\/HOST:PORT\[\/DB\] or rediss/);
  expect(() => parseQueueUrl('redis://127.0.0.1:6379/x')).toThrow(/the database is a number/);
  expect(() => parseQueueUrl('127.0.0.1:6379')).toThrow(/not a URL|redis:\/\//);
  expect(connectionOptions('redis://h:1', 'worker')).toMatchObject({ maxRetriesPerRequest: null });
  expect(connectionOptions('redis://h:1')).toMatchObject({ maxRetriesPerRequest: 15 });
});

test('a queue nobody listens on is said at once, by submit, worker and queue status', async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const images = path.join(REPO, 'test', 'fixtures', 'images');
  const clip = path.join(REPO, 'test', 'fixtures', 'vision', 'clip');
  for (const args of [
    ['queue', 'status', '--queue', url],
    ['worker', '--queue', url],
    ['submit', 'classify', path.join(images, 'photo_640x480.jpg'), '--model', images, '--out', '/tmp/x.jsonl', '--queue', url],
    ['submit', 'features', images, '--vision', clip, '--out', '/tmp/tinyemo-never', '--queue', url],
  ]) {
    const r = run(...args);
    expect(r.stderr).toMatch(/cannot reach the queue at 127\.0\.0\.1:\d+ \(ECONNREFUSED\); is Redis running there\? \[NETWORK\]/);
    expect(r.status).toBe(2);
  }
});

test('submit features refuses chunks that are not whole batches', () => {
  const r = run('submit', 'features', REPO, '--vision', REPO, '--out', '/tmp/x', '--queue', 'redis://127.0.0.1:1', '--chunk', '12', '--batch-size', '8');
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/--chunk \(12\) must be a multiple of --batch-size \(8\)/);
});

/** A queue whose final job ends right after it is fetched: the copy in hand has the old fields, its state the new. */
function endingQueue(end: 'completed' | 'failed', summary: FlowSummary | null): JobLookup {
  let state = 'active';
  return {
    async getJob() {
      const ended = state !== 'active';
      const snapshot = { returnvalue: ended && end === 'completed' ? summary : null, failedReason: ended && end === 'failed' ? 'the final job threw' : '' };
      state = end;
      return { ...snapshot, getState: async () => state as 'completed' };
    },
  };
}

test("a submission's end is read from the job as it is once ended, not from the copy fetched before", async () => {
  const summary: FlowSummary = { done: 3, kept: 1, skipped: [{ file: 'a.png', reason: 'not an image', code: 'INVALID_IMAGE' }], failed: [], out: '/tmp/o' };
  await expect(flowOutcome(endingQueue('completed', summary), 'sub-1')).resolves.toEqual({ ended: summary });
  await expect(flowOutcome(endingQueue('failed', null), 'sub-2')).rejects.toThrow(/submission sub-2 failed: the final job threw/);
  // A completed job without a summary (another version's) is said, not a TypeError later.
  await expect(flowOutcome(endingQueue('completed', null), 'sub-3')).rejects.toThrow(/sub-3 completed without a summary/);
  // Still running: the job itself, for its progress.
  const job = { returnvalue: null, failedReason: '', getState: async () => 'active' as const };
  await expect(flowOutcome({ getJob: async () => job }, 'sub-4')).resolves.toEqual({ running: job });
  await expect(flowOutcome({ getJob: async () => undefined }, 'sub-5')).rejects.toThrow(/sub-5 is not on the queue/);
});
