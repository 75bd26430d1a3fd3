/**
 * Where the queue lives: a `redis://[user:password@]HOST:PORT[/DB]` URL
 * (`rediss://` for TLS), turned into BullMQ's connection options. A lost
 * connection is retried with backoff (capped at 5 s) and commands wait for it
 * rather than failing, so a Redis restart pauses workers and submitters
 * instead of failing their jobs.
 */
import type { ConnectionOptions } from 'bullmq';

import { invalid } from '../errors';

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
