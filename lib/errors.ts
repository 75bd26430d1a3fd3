/** Every failure tinyemo reports is a TinyEmoError with one of these codes. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'SHAPE_MISMATCH'
  | 'DTYPE_MISMATCH'
  | 'DEVICE'
  | 'OUT_OF_MEMORY'
  | 'UNSUPPORTED'
  | 'INTERNAL'
  | 'CANCELLED'
  | 'DISPOSED'
  | 'NATIVE_LOAD'
  | 'INVALID_FILE'
  | 'NOT_FOUND'
  | 'IO'
  | 'NETWORK';

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'INVALID_ARGUMENT',
  'SHAPE_MISMATCH',
  'DTYPE_MISMATCH',
  'DEVICE',
  'OUT_OF_MEMORY',
  'UNSUPPORTED',
  'INTERNAL',
  'CANCELLED',
  'DISPOSED',
  'NATIVE_LOAD',
  'INVALID_FILE',
  'NOT_FOUND',
  'IO',
  'NETWORK',
]);

export class TinyEmoError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TinyEmoError';
    this.code = code;
  }
}

/**
 * Errors thrown by the addon come from another realm (and are plain Errors
 * with a `code`); this turns them into TinyEmoErrors so `instanceof` works.
 */
export function fromNative(e: unknown): Error {
  if (e instanceof TinyEmoError) return e;
  if (typeof e === 'object' && e !== null && 'code' in e && 'message' in e) {
    const code = String((e as { code: unknown }).code);
    const message = String((e as { message: unknown }).message);
    if (CODES.has(code)) return new TinyEmoError(code as ErrorCode, message, { cause: e });
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** Runs a native call, re-throwing its failure as a TinyEmoError. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

export async function awaitNative<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw fromNative(e);
  }
}

export function invalid(message: string): TinyEmoError {
  return new TinyEmoError('INVALID_ARGUMENT', message);
}

/** A file that is not what it claims to be (corrupt, truncated, hostile). */
export function invalidFile(file: string, message: string): TinyEmoError {
  return new TinyEmoError('INVALID_FILE', `${file}: ${message}`);
}
