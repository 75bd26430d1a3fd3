/**
 * Decoding images into 8-bit RGB with sharp, treating every file as hostile:
 * the format is checked against an allow-list from the file's own bytes
 * before anything is decoded, the pixel count is capped before decoding, and
 * any decoder warning (a truncated or corrupt file) refuses the image.
 *
 * The result matches what the reference pipelines get from PIL's
 * `Image.open(f).convert('RGB')`: alpha dropped (not composited), grey
 * replicated into three channels, palettes expanded, EXIF orientation not
 * applied unless asked, CMYK through PIL's own formula (no colour profile).
 * One difference, on purpose: 16-bit images are scaled to 8 bits (v >> 8;
 * PIL clips them to 255).
 */
import * as fs from 'fs';
import * as path from 'path';

// sharp's types are a CommonJS namespace; this form names them without loading sharp at import time.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import type SharpModule = require('sharp');

import { TinyEmoError } from '../errors';

type Sharp = typeof SharpModule;

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

/** Formats read by default: the photo formats, no vector or container formats. */
export const IMAGE_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'];

/** File name endings tried as images when a folder is scanned. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];

export interface ReadImageOptions {
  /** Largest width × height decoded (default 50 megapixels). */
  maxPixels?: number;
  /** Largest file read, in bytes (default 100 MB). */
  maxBytes?: number;
  /** Formats accepted (default IMAGE_FORMATS). */
  formats?: readonly ImageFormat[];
  /** Apply the EXIF orientation (default false: PIL and the reference pipelines do not). */
  autoOrient?: boolean;
}

/** An image to read: a file path, or bytes from elsewhere (an upload), named in messages and results. */
export type ImageSource = string | ImageBytes;

export interface ImageBytes {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** How an image source is named in results and messages. */
export const sourceName = (s: ImageSource): string => (typeof s === 'string' ? s : s.name);

export interface RgbImage {
  width: number;
  height: number;
  /** Row-major RGB, 3 bytes per pixel. */
  data: Uint8Array;
}

export const DEFAULT_MAX_PIXELS = 50_000_000;
const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;

let loaded: Sharp | undefined;

/**
 * sharp, loaded on first use (programs that never read an image never load
 * libvips). sharp shares libuv's pool and has its own threads; tinyemo's
 * kernels have theirs. One libvips thread per decode keeps the two from
 * oversubscribing the cores (decoding is a small part of an encode).
 */
function sharpModule(): Sharp {
  if (loaded) return loaded;
  let m: Sharp;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    m = require('sharp') as Sharp;
  } catch (e) {
    throw new TinyEmoError('NATIVE_LOAD', `reading images needs sharp, which did not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  m.concurrency(1);
  m.cache(false);
  loaded = m;
  return m;
}

function refuse(file: string, why: string, code: 'INVALID_FILE' | 'UNSUPPORTED' = 'INVALID_FILE'): TinyEmoError {
  return new TinyEmoError(code, `${file}: ${why}`);
}

/** sharp reports AVIF and HEIC both as "heif"; tell them apart by the compression it names. */
function formatOf(meta: SharpModule.Metadata): string | undefined {
  if (meta.format === 'heif') return meta.compression === 'av1' ? 'avif' : 'heic';
  return meta.format;
}

/** An image file's bytes, refused (typed, naming the file) when missing, not a file, empty or over `maxBytes`. */
export async function readImageBytes(file: string, maxBytes = DEFAULT_MAX_BYTES): Promise<Buffer> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch {
    throw new TinyEmoError('NOT_FOUND', `${file}: no such file`);
  }
  if (!st.isFile()) throw refuse(file, 'not a file');
  if (st.size > maxBytes) throw refuse(file, `${st.size} bytes, more than the limit of ${maxBytes}`);
  if (st.size === 0) throw refuse(file, 'empty file');
  return fs.promises.readFile(file);
}

/**
 * Decodes one image into 8-bit RGB. `source` is a path, named bytes, or bare
 * bytes that `name` names in errors.
 */
export async function readImage(source: ImageSource | Uint8Array, opts: ReadImageOptions = {}, name?: string): Promise<RgbImage> {
  if (typeof source === 'object' && !(source instanceof Uint8Array)) return readImage(source.bytes, opts, source.name);
  const sharp = sharpModule();
  const file = typeof source === 'string' ? source : (name ?? '<image bytes>');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!(Number.isSafeInteger(maxPixels) && maxPixels > 0)) throw new TinyEmoError('INVALID_ARGUMENT', 'maxPixels must be a positive integer');
  const formats = opts.formats ?? IMAGE_FORMATS;
  let bytes: Buffer;
  if (typeof source === 'string') bytes = await readImageBytes(source, maxBytes);
  else {
    if (source.byteLength > maxBytes) throw refuse(file, `${source.byteLength} bytes, more than the limit of ${maxBytes}`);
    bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  }

  // The header first: format and size are known before a pixel is decoded.
  const sharpOpts: SharpModule.SharpOptions = { limitInputPixels: maxPixels, failOn: 'warning', sequentialRead: true, pages: 1 };
  let meta: SharpModule.Metadata;
  try {
    meta = await sharp(bytes, sharpOpts).metadata();
  } catch (e) {
    throw refuse(file, `not a readable image (${decoderMessage(e)})`);
  }
  const format = formatOf(meta);
  if (format === undefined || !(formats as readonly string[]).includes(format)) {
    throw refuse(file, `${format ?? 'unknown'} images are not accepted (accepted: ${formats.join(', ')})`, 'UNSUPPORTED');
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!(w > 0 && h > 0)) throw refuse(file, 'the image declares no size');
  if (w * h > maxPixels) throw refuse(file, `${w}×${h} pixels, more than the limit of ${maxPixels}`);
  if ((meta.pages ?? 1) > 1) throw refuse(file, `${meta.pages} frames or pages; animated and multi-page images are not accepted`, 'UNSUPPORTED');

  try {
    let img = sharp(bytes, sharpOpts);
    if (opts.autoOrient) img = img.rotate();
    if (meta.space === 'cmyk') return await cmykToRgb(img, file);
    const { data, info } = await img.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw refuse(file, `decoded to ${info.channels} channels (${data.length} bytes for ${info.width}×${info.height})`);
    }
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    if (e instanceof TinyEmoError) throw e;
    throw refuse(file, `could not be decoded (${decoderMessage(e)})`);
  }
}

/**
 * CMYK as PIL converts it, so features match the reference's: the raw ink
 * values (libvips undoes Adobe's inversion as PIL does), then per channel
 * (255 − k) − x·(255 − k)/255 with PIL's rounded division by 255.
 */
async function cmykToRgb(img: SharpModule.Sharp, file: string): Promise<RgbImage> {
  const { data, info } = await img.pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  if (info.channels < 4 || data.length !== n * info.channels) throw refuse(file, `CMYK decoded to ${info.channels} channels`);
  const out = new Uint8Array(n * 3);
  const ch = info.channels;
  for (let i = 0; i < n; ++i) {
    const nk = 255 - data[i * ch + 3];
    for (let c = 0; c < 3; ++c) {
      const t = data[i * ch + c] * nk + 128;
      out[i * 3 + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return { width: info.width, height: info.height, data: out };
}

function decoderMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // libvips messages can run over several lines; the first says what happened.
  return m.split('\n')[0].trim() || 'unknown error';
}

/** Image files under `dir`, relative, in a fixed order; links are not followed. */
export function listImages(dir: string): string[] {
  const found: string[] = [];
  const walk = (rel: string) => {
    const entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) found.push(r);
    }
  };
  walk('');
  return found;
}
