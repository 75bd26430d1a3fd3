/** What a route handler is given: the exchange, its cancellation, and the server's shared state. */
import type { IncomingMessage, ServerResponse } from 'http';

import type { ClassifyBatcher } from './classify_batcher';
import type { ServeMetrics } from './metrics';
import type { ServeModels } from './models';
import type { Scheduler } from './scheduler';

export interface ServeLimits {
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
  /** Largest decoded image, in pixels. */
  maxPixels: number;
  /** Most images in one classify request. */
  maxImages: number;
  /** Largest `max_tokens` a request may ask for. */
  maxTokens: number;
}

export interface ServeState {
  readonly models: ServeModels;
  readonly scheduler: Scheduler;
  readonly batcher: ClassifyBatcher;
  readonly metrics: ServeMetrics;
  readonly limits: ServeLimits;
  /** Whether requests need the API key (the demo page asks for it then). */
  readonly auth: boolean;
  /** True once SIGTERM (or close()) began: /readyz answers 503. */
  draining: boolean;
}

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Aborted when the client goes away or the request's time runs out. */
  readonly signal: AbortSignal;
  readonly state: ServeState;
}

export type RouteHandler = (c: RouteContext) => Promise<void>;
