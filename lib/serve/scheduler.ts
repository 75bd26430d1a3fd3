/**
 * Admission and compute slots. One model instance serves every request, so
 * work waits its turn: at most `maxConcurrency` computations at once (a batch
 * of classifications is one), and at most `maxQueue` requests waiting for
 * one. A request past the queue is refused at once with 429 and a
 * Retry-After from the recent service time, rather than waiting unboundedly.
 */
import { TinyEmoError } from '../errors';
import { HttpError } from './http_error';

export interface SchedulerOptions {
  maxConcurrency: number;
  maxQueue: number;
}

interface Waiter {
  grant: () => void;
  refuse: (e: Error) => void;
}

export class Scheduler {
  /** Requests admitted and not yet computing. */
  queued = 0;
  /** Computations holding a slot. */
  running = 0;
  private readonly waiters: Waiter[] = [];
  /** Seconds one computation took, smoothed (for Retry-After). */
  private serviceS = 1;

  constructor(readonly opts: SchedulerOptions) {}

  /** Admits `n` requests into the queue, or refuses them all with 429. */
  reserve(n = 1): void {
    if (this.queued + n > this.opts.maxQueue) {
      const waitS = Math.max(1, Math.ceil((this.serviceS * (this.queued + this.running)) / this.opts.maxConcurrency));
      throw new HttpError(429, 'too_many_requests', `the queue is full (${this.opts.maxQueue} waiting); retry later`, { 'retry-after': String(waitS) });
    }
    this.queued += n;
  }

  /** Takes `n` requests off the queue (they start computing, or left). */
  unreserve(n = 1): void {
    this.queued = Math.max(0, this.queued - n);
  }

  /** Waits for a compute slot; the returned function gives it back. Aborting while waiting leaves the line. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new TinyEmoError('CANCELLED', 'the request was cancelled'));
    return new Promise((resolve, reject) => {
      const start = () => {
        this.running += 1;
        const t0 = performance.now();
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.running -= 1;
          this.serviceS = 0.8 * this.serviceS + 0.2 * ((performance.now() - t0) / 1000);
          this.waiters.shift()?.grant();
        });
      };
      if (this.running < this.opts.maxConcurrency) return start();
      const w: Waiter = { grant: start, refuse: reject };
      this.waiters.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.waiters.indexOf(w);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          reject(new TinyEmoError('CANCELLED', 'the request was cancelled'));
        },
        { once: true },
      );
    });
  }

  /** Runs `fn` on a slot, as one queued request. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.reserve();
    let release: () => void;
    try {
      release = await this.acquire(signal);
    } finally {
      this.unreserve();
    }
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
