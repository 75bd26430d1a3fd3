/**
 * Where the queue lives: a `redis://[user:password@]HOST:PORT[/DB]` URL
 * (`rediss://` for TLS), turned into BullMQ's connection options. A lost
 * connection is retried with backoff (capped at 5 s) and commands wait for it
 * rather than failing, so a Redis restart pauses workers and submitters
 * instead of failing their jobs.
 */
import type { ConnectionOptions } from 'bullmq';
import * as net from 'net';

import { TinyEmoError, invalid } from '../errors';

/** The one BullMQ queue tinyemo's jobs go through. */
export const QUEUE_NAME = 'tinyemo';

export interface QueueAddress {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

export function parseQueueUrl(url: string): QueueAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`--queue "${url}" is not a URL (redis://HOST:PORT[/DB])`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw invalid(`--queue takes redis://HOST:PORT[/DB] or rediss://…, not ${u.protocol}`);
  if (!u.hostname) throw invalid(`--queue "${url}" names no host`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,2}$/.test(dbText)) throw invalid(`--queue "${url}": the database is a number (/0 to /15), not "${dbText}"`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db: dbText === '' ? 0 : Number(dbText),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    tls: u.protocol === 'rediss:',
  };
}

/**
 * BullMQ's options for a queue URL. A worker waits for Redis as long as it takes; a command (submit, status) gives
 * up after about a minute of failed reconnections and says so.
 */
export function connectionOptions(url: string, role: 'worker' | 'client' = 'client'): ConnectionOptions {
  const a = parseQueueUrl(url);
  return {
    host: a.host,
    port: a.port,
    db: a.db,
    username: a.username,
    password: a.password,
    ...(a.tls ? { tls: {} } : {}),
    // Workers block on Redis; BullMQ needs their commands to wait for a reconnection rather than fail after N tries.
    maxRetriesPerRequest: role === 'worker' ? null : 15,
    retryStrategy: (times: number) => Math.min(5000, 100 * 2 ** Math.min(times, 6)),
  };
}

/** Fails fast, with the address, when nothing listens there (a typo should not wait out the reconnection backoff). */
export function assertReachable(url: string, timeoutMs = 5000): Promise<void> {
  const a = parseQueueUrl(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: a.host, port: a.port });
    const fail = (why: string) => {
      s.destroy();
      reject(new TinyEmoError('NETWORK', `cannot reach the queue at ${a.host}:${a.port} (${why}); is Redis running there?`));
    };
    s.setTimeout(timeoutMs, () => fail(`no answer in ${timeoutMs / 1000} s`));
    s.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    s.once('connect', () => {
      s.end();
      resolve();
    });
  });
}

/** Runs a queue operation, reporting Redis trouble as a NETWORK error that names the queue. */
export async function queueCall<T>(url: string, fn: () => Promise<T>): Promise<T> {
  await assertReachable(url);
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TinyEmoError) throw e;
    throw new TinyEmoError('NETWORK', `the queue at ${url.replace(/\/\/[^@/]*@/, '//')} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
