/**
 * What a request carries, validated before anything is decoded: images as a
 * raw `image/*` body, as `multipart/form-data` fields named `image`, or as
 * base64 in JSON (`{"image": "..."}` or `{"images": [...]}`), plus the
 * request's parameters (JSON fields, form fields, or the query string).
 * Names that come with an upload only ever name it in the answer; nothing
 * from a request names a file on the server.
 */
import Busboy from 'busboy';
import type { IncomingMessage } from 'http';

import type { ImageBytes } from '../io/image';
import { HttpError, badRequest } from './http_error';
import { incompleteBody, readBody, tooLarge } from './http';

export type Params = Readonly<Record<string, unknown>>;

export interface ImageRequest {
  images: ImageBytes[];
  params: Params;
}

export interface BodyLimits {
  /** Largest body, in bytes. */
  maxBytes: number;
  /** Most images in one request. */
  maxImages: number;
}

const unsupportedType = (type: string, accepted: string) =>
  new HttpError(415, 'unsupported_media_type', `Content-Type "${type.slice(0, 80)}" is not accepted here (send ${accepted})`);

const mediaType = (req: IncomingMessage) => (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();

/** A JSON object body, or a 4xx that says what was wrong with it. */
export async function readJsonObject(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const type = mediaType(req);
  if (type !== 'application/json') throw unsupportedType(type || 'none', 'application/json');
  const text = (await readBody(req, maxBytes)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badRequest(`the body is not valid JSON (${e instanceof Error ? e.message.slice(0, 120) : 'parse error'})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The images and parameters of a request to an image route. */
export async function readImageRequest(req: IncomingMessage, query: URLSearchParams, limits: BodyLimits): Promise<ImageRequest> {
  const type = mediaType(req);
  const fromQuery = Object.fromEntries(query);
  let r: ImageRequest;
  if (type.startsWith('image/')) r = { images: [{ name: 'image', bytes: await readBody(req, limits.maxBytes) }], params: {} };
  else if (type === 'multipart/form-data') r = await readMultipart(req, limits);
  else if (type === 'application/json') r = jsonImages(await readJsonObject(req, limits.maxBytes));
  else throw unsupportedType(type || 'none', 'an image/* body, multipart/form-data with "image" fields, or JSON {"image": "<base64>"}');
  if (r.images.length === 0) throw badRequest('the request holds no image');
  if (r.images.length > limits.maxImages) throw badRequest(`${r.images.length} images; at most ${limits.maxImages} per request`);
  return { images: r.images, params: { ...fromQuery, ...r.params } };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Base64 (or a data URL of it) into bytes; anything else is refused rather than decoded leniently. */
export function decodeBase64(text: unknown, what: string): Uint8Array {
  if (typeof text !== 'string') throw badRequest(`${what} must be a base64 string`);
  const comma = text.startsWith('data:') ? text.indexOf(',') : -1;
  if (text.startsWith('data:') && (comma < 0 || !/;base64$/i.test(text.slice(0, comma)))) throw badRequest(`${what}: only base64 data URLs are accepted`);
  const body = text.slice(comma + 1).replace(/\s+/g, '');
  if (body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body)) throw badRequest(`${what} is not valid base64`);
  return Buffer.from(body, 'base64');
}

function jsonImages(body: Record<string, unknown>): ImageRequest {
  const { image, images, ...params } = body;
  if (image !== undefined && images !== undefined) throw badRequest('give "image" or "images", not both');
  if (images !== undefined && !Array.isArray(images)) throw badRequest('"images" must be an array of base64 strings');
  const list = image !== undefined ? [image] : ((images as unknown[] | undefined) ?? []);
  const name = (i: number) => (image !== undefined ? 'image' : `images[${i}]`);
  return { images: list.map((x, i) => ({ name: name(i), bytes: decodeBase64(x, name(i)) })), params };
}

/** A client's file name, kept only to name the result: its last path part, printable, short. */
function uploadName(filename: string | undefined, i: number): string {
  const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 200);
  return clean || `image[${i}]`;
}

function readMultipart(req: IncomingMessage, limits: BodyLimits): Promise<ImageRequest> {
  return new Promise((resolve, reject) => {
    const images: ImageBytes[] = [];
    const params: Record<string, string> = {};
    let settled = false;
    let size = 0;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      req.unpipe();
      req.resume();
      reject(e);
    };
    let bb: Busboy.Busboy;
    try {
      bb = Busboy({ headers: req.headers, limits: { fileSize: limits.maxBytes, files: limits.maxImages + 1, fields: 32, fieldSize: 4096, parts: limits.maxImages + 33 } });
    } catch (e) {
      return reject(badRequest(`malformed multipart body (${e instanceof Error ? e.message : 'no boundary'})`));
    }
    bb.on('file', (field, stream, info) => {
      if (field !== 'image') {
        stream.resume();
        return fail(badRequest(`unexpected file field "${field.slice(0, 40)}" (send images as "image")`));
      }
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('limit', () => fail(tooLarge(limits.maxBytes)));
      stream.on('end', () => images.push({ name: uploadName(info.filename, images.length), bytes: Buffer.concat(parts) }));
    });
    bb.on('field', (name, value) => (params[name] = value));
    bb.on('filesLimit', () => fail(badRequest(`more than ${limits.maxImages} images in one request`)));
    bb.on('partsLimit', () => fail(badRequest('too many parts in the multipart body')));
    bb.on('fieldsLimit', () => fail(badRequest('too many fields in the multipart body')));
    bb.on('error', (e: unknown) => fail(badRequest(`malformed multipart body (${e instanceof Error ? e.message : 'parse error'})`)));
    bb.on('close', () => {
      if (settled) return;
      settled = true;
      resolve({ images, params });
    });
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limits.maxBytes) fail(tooLarge(limits.maxBytes));
    });
    req.on('close', () => {
      if (!req.complete) fail(incompleteBody());
    });
    req.pipe(bb);
  });
}

/** An integer parameter within [min, max], or its default. */
export function intParam(params: Params, name: string, o: { min: number; max: number; default?: number }): number | undefined {
  const v = params[name];
  if (v === undefined || v === null || v === '') return o.default;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < o.min || n > o.max) throw badRequest(`"${name}" must be an integer from ${o.min} to ${o.max}`);
  return n;
}

/** A number parameter within [min, max], or undefined. */
export function numberParam(params: Params, name: string, o: { min: number; max: number }): number | undefined {
  const v = params[name];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < o.min || n > o.max) throw badRequest(`"${name}" must be a number from ${o.min} to ${o.max}`);
  return n;
}
