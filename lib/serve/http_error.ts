/**
 * The service's one error shape, `{"error": {"code", "message"}}`, and how
 * library failures map onto HTTP statuses. A failure the service did not
 * expect is answered as `internal` with no detail: stack traces and server
 * paths never reach a client.
 */
import { ErrorCode, TinyEmoError } from '../errors';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string) => new HttpError(400, 'bad_request', message);

/** Library codes that describe the request's content, with the status that says so. */
const CLIENT_FAULTS: Partial<Record<ErrorCode, [number, string]>> = {
  INVALID_ARGUMENT: [400, 'bad_request'],
  INVALID_FILE: [400, 'invalid_image'],
  SHAPE_MISMATCH: [400, 'bad_request'],
  UNSUPPORTED: [415, 'unsupported_media_type'],
  NOT_FOUND: [400, 'invalid_image'],
  CANCELLED: [499, 'cancelled'],
};

/** The HttpError a failure is answered with; `internal` when it is not the client's fault. */
export function httpErrorOf(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof TinyEmoError) {
    const fault = CLIENT_FAULTS[e.code];
    if (fault) return new HttpError(fault[0], fault[1], e.message);
    if (e.code === 'OUT_OF_MEMORY') return new HttpError(503, 'overloaded', 'the server ran out of memory for this request');
  }
  return new HttpError(500, 'internal', 'the server could not complete this request');
}

/** The body of an error answer. */
export function errorBody(e: HttpError): string {
  return JSON.stringify({ error: { code: e.code, message: e.message } });
}
