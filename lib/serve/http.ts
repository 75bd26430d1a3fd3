/** Small pieces of HTTP the routes share: bounded body reads, JSON answers, server-sent events. */
import type { IncomingMessage, ServerResponse } from 'http';

import { HttpError, errorBody } from './http_error';

/** A body too large for the limit: refused before reading when Content-Length says so, else when the count passes it. */
export const tooLarge = (limit: number) => new HttpError(413, 'payload_too_large', `the body is larger than the limit of ${limit} bytes (--max-body-mb)`);

export const incompleteBody = () => new HttpError(400, 'incomplete_body', 'the client closed the connection before the body ended');

/** The whole body, refused past `limit` bytes; rejects when the client goes away mid-body. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const fail = (e: Error) => {
      req.removeAllListeners('data');
      req.resume(); // drain what is in flight so the socket can carry the answer
      reject(e);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(tooLarge(limit));
      parts.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(parts, size)));
    req.on('close', () => {
      if (!req.complete) fail(incompleteBody());
    });
    req.on('error', (e) => fail(e));
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, e: HttpError): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    // Mid-stream the status is gone: say it as an event the client's reader sees, then end.
    if (isEventStream(res)) res.end(`event: error\ndata: ${errorBody(e)}\n\n`);
    else res.destroy();
    return;
  }
  const text = errorBody(e);
  res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...e.headers });
  res.end(text);
}

const isEventStream = (res: ServerResponse) => String(res.getHeader('content-type') ?? '').startsWith('text/event-stream');

/** Whether the client asked for server-sent events. */
export const wantsEvents = (req: IncomingMessage) => /\btext\/event-stream\b/.test(req.headers.accept ?? '');

/** Starts an event stream; each call of the returned function sends one `data:` event. */
export function startEvents(res: ServerResponse): (data: unknown) => void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  return (data) => {
    if (!res.destroyed) res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  };
}
