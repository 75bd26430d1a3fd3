/**
 * The service's options and their defaults, apart from the server itself so
 * that the command line can show the defaults without loading the HTTP stack.
 */
import type { ServeLimits } from './context';

export interface ServeOptions extends ServeLimits {
  host: string;
  /** 0 picks a free port. */
  port: number;
  apiKey?: string;
  maxConcurrency: number;
  maxQueue: number;
  maxBatch: number;
  batchWaitMs: number;
  /** Per-request time limit, in seconds (504 past it; a generation stops). */
  timeoutS: number;
  /** Time to send the request headers, and the whole request, in ms (slow clients are cut off). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Where the server says what went wrong on its side (never sent to clients). */
  onLog?: (message: string) => void;
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxConcurrency: 2,
  maxQueue: 64,
  maxBatch: 8,
  batchWaitMs: 5,
  maxBodyBytes: 20 * 2 ** 20,
  maxPixels: 40_000_000,
  maxImages: 16,
  maxTokens: 2048,
  timeoutS: 120,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
} as const satisfies Omit<ServeOptions, 'apiKey' | 'onLog'>;
