/**
 * Feature files, as `tinyemo features` and queue workers write them: one
 * `.safetensors` per image at the image's relative path (extension
 * replaced), holding `image_embeds`, with the image's relative path, the
 * tower, and the SHA-256 of the image's bytes in the metadata. Each file is
 * written atomically (written, synced, renamed), so a file that exists is
 * whole; the hash tells whether it is this image's (an input that changed,
 * or a retried job, is recognised without recomputing anything).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { withFile } from '../../io/file';
import { ImageBytes, ReadImageOptions, readImageBytes } from '../../io/image';
import { readSafetensorsHeader, writeSafetensors } from '../../io/safetensors';
import { Tensor } from '../../tensor';
import { VisionTower, encodeImages } from './tower';

export type Skip = { file: string; reason: string; code: string };

/** The feature file of an image's relative path. */
export function featureName(rel: string): string {
  return rel.slice(0, rel.length - path.extname(rel).length) + '.safetensors';
}

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The source hash a feature file records, or undefined (absent, unreadable, or written before hashes were). */
export function recordedSource(file: string): string | undefined {
  try {
    return withFile(file, (f) => readSafetensorsHeader(f).metadata.source_sha256);
  } catch (e) {
    if (e instanceof TinyEmoError) return undefined;
    throw e;
  }
}

export interface FeatureSliceOptions {
  /** The images' folder; `rels` are relative to it. */
  root: string;
  out: string;
  dtype: 'f32' | 'f16';
  /** The tower as recorded in the metadata. */
  vision: string;
  /**
   * Which existing outputs stand: 'exists', any (a resumed run); 'same-source', only one whose recorded hash is the
   * image's (a retried or duplicated job never writes twice; a changed image is redone).
   */
  reuse: 'exists' | 'same-source';
  batchSize?: number;
  image?: ReadImageOptions;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface FeatureSliceResult {
  written: number;
  kept: number;
  skipped: Skip[];
}

/** Encodes the images of `rels` that need it and writes their feature files; unreadable images are skipped. */
export async function writeFeatureSlice(tower: VisionTower, rels: readonly string[], o: FeatureSliceOptions): Promise<FeatureSliceResult> {
  const skipped: Skip[] = [];
  const todo: Array<{ rel: string; source: ImageBytes; sha: string }> = [];
  let kept = 0;
  for (const rel of rels) {
    const target = path.join(o.out, featureName(rel));
    if (o.reuse === 'exists' && fs.existsSync(target)) {
      kept += 1;
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = await readImageBytes(path.join(o.root, rel), o.image?.maxBytes);
    } catch (e) {
      if (!(e instanceof TinyEmoError)) throw e;
      skipped.push({ file: rel, reason: e.message, code: e.code });
      continue;
    }
    const sha = sha256Hex(bytes);
    if (o.reuse === 'same-source' && recordedSource(target) === sha) kept += 1;
    else todo.push({ rel, source: { name: rel, bytes }, sha });
  }
  const r = await encodeImages(
    tower,
    todo.map((t) => t.source),
    { batchSize: o.batchSize, image: o.image, signal: o.signal, onProgress: o.onProgress },
  );
  const shaOf = new Map(todo.map((t) => [t.rel, t.sha]));
  for (const e of r.encoded) writeFeatureFile(o, e.file, e.embeds!, shaOf.get(e.file)!);
  skipped.push(...r.skipped);
  return { written: r.encoded.length, kept, skipped };
}

function writeFeatureFile(o: FeatureSliceOptions, rel: string, embeds: Float32Array, sha: string): void {
  const target = path.join(o.out, featureName(rel));
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const f32 = Tensor.from(embeds, [embeds.length]);
  const t = o.dtype === 'f16' ? f32.toSync('f16') : f32;
  try {
    writeSafetensors(target, { image_embeds: t }, { source: rel, vision: o.vision, source_sha256: sha });
  } finally {
    if (t !== f32) t.dispose();
    f32.dispose();
  }
}
