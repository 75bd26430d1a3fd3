/**
 * `tinyemo serve`'s HTTP server, on node:http. The service is a handful of
 * routes whose hard parts are streaming, back-pressure, cancellation and
 * limits; node:http gives direct control of each (request and header
 * timeouts, socket close, chunked writes) with no framework layer between,
 * and busboy parses multipart with its limits enforced while streaming.
 * Routes: see ROUTES. Models load before the server listens and stay loaded.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';

import { bearerCheck } from './auth';
import { ClassifyBatcher } from './classify_batcher';
import type { RouteContext, RouteHandler, ServeState } from './context';
import type { ServeOptions } from './options';

export { SERVE_DEFAULTS } from './options';
export type { ServeOptions } from './options';
import { DEMO_PAGE } from './demo_page';
import { HttpError, httpErrorOf } from './http_error';
import { sendError, sendJson } from './http';
import { classifyRoute, reasonRoute } from './image_routes';
import { ServeMetrics } from './metrics';
import { ServeModels } from './models';
import { chatCompletionsRoute, modelsRoute } from './openai_chat';
import { Scheduler } from './scheduler';

interface Route {
  handler: RouteHandler;
  /** Open routes answer without the API key: the page and the probes an orchestrator calls. */
  open?: boolean;
}

const ROUTES: Readonly<Record<string, Readonly<Record<string, Route>>>> = {
  '/': { GET: { handler: demoRoute, open: true } },
  '/healthz': { GET: { handler: async (c) => sendJson(c.res, 200, { ok: true }), open: true } },
  '/readyz': { GET: { handler: readyRoute, open: true } },
  '/metrics': { GET: { handler: metricsRoute } },
  '/v1/models': { GET: { handler: modelsRoute } },
  '/v1/classify': { POST: { handler: classifyRoute } },
  '/v1/reason': { POST: { handler: reasonRoute } },
  '/v1/chat/completions': { POST: { handler: chatCompletionsRoute } },
};

async function demoRoute(c: RouteContext): Promise<void> {
  c.res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    // The page is self-contained: its own inline script and style, requests to this server only.
    'content-security-policy':
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  c.res.end(DEMO_PAGE);
}

async function readyRoute(c: RouteContext): Promise<void> {
  const { state } = c;
  const body = { ready: !state.draining, labels: state.models.labels, reason: state.models.reasoner !== undefined, chat: state.models.chatId ?? null, auth: state.auth };
  sendJson(c.res, state.draining ? 503 : 200, body);
}

async function metricsRoute(c: RouteContext): Promise<void> {
  const text = await c.state.metrics.registry.metrics();
  c.res.writeHead(200, { 'content-type': c.state.metrics.registry.contentType });
  c.res.end(text);
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly state: ServeState;
  /** Stops accepting, lets requests in flight finish within `deadlineMs`, then closes every connection. */
  close(deadlineMs?: number): Promise<void>;
}

/** Listens with models already loaded (the caller keeps ownership of them). */
export async function startServer(models: ServeModels, opts: ServeOptions): Promise<RunningServer> {
  const scheduler = new Scheduler(opts);
  const metrics = new ServeMetrics(() => scheduler);
  const batcher = new ClassifyBatcher(models.classifier, scheduler, opts);
  batcher.onBatch = (n) => metrics.batchSize.observe(n);
  const state: ServeState = { models, scheduler, batcher, metrics, limits: opts, auth: opts.apiKey !== undefined, draining: false };
  const authorize = bearerCheck(opts.apiKey);
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const server = http.createServer({ headersTimeout: opts.headersTimeoutMs, requestTimeout: opts.requestTimeoutMs, connectionsCheckingInterval: 500 }, (req, res) => {
    inFlight += 1;
    void handle(req, res, state, authorize, opts).finally(() => {
      inFlight -= 1;
      if (inFlight === 0) idle?.();
    });
  });
  // A client too slow to send its request, or one that sends a malformed request line or headers: a bare status
  // on the socket, never a crash.
  server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
    const status = e.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : e.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const close = async (deadlineMs = 10_000) => {
    state.draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (inFlight > 0) await Promise.race([new Promise<void>((r) => (idle = r)), new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    server.closeAllConnections();
    await closed;
  };
  return { url: `http://${host}:${port}`, port, state, close };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, state: ServeState, authorize: (r: http.IncomingMessage) => void, opts: ServeOptions): Promise<void> {
  const t0 = performance.now();
  const url = new URL(req.url ?? '/', 'http://localhost');
  const methods = ROUTES[url.pathname];
  const name = methods ? url.pathname : 'unknown';
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, opts.timeoutS * 1000);
  // The client went away before its answer ended: stop its work (a generation stops at the next token).
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  if (state.draining) res.setHeader('connection', 'close');
  try {
    if (!methods) throw new HttpError(404, 'not_found', `no route ${req.method} ${url.pathname.slice(0, 100)}`);
    const route = methods[req.method ?? ''];
    if (!route) throw new HttpError(405, 'method_not_allowed', `${url.pathname} takes ${Object.keys(methods).join(', ')}`, { allow: Object.keys(methods).join(', ') });
    if (!route.open) authorize(req);
    await route.handler({ req, res, url, signal: ac.signal, state });
  } catch (e) {
    let err = httpErrorOf(e);
    if (timedOut) err = new HttpError(504, 'timeout', `the request took longer than ${opts.timeoutS} s (--timeout-s)`);
    if (err.status >= 500 && !timedOut) opts.onLog?.(`${req.method} ${url.pathname}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    sendError(res, err);
  } finally {
    clearTimeout(timer);
    const status = res.headersSent ? res.statusCode : 499;
    state.metrics.requests.inc({ route: name, status: String(status) });
    state.metrics.latency.observe({ route: name }, (performance.now() - t0) / 1000);
  }
}
