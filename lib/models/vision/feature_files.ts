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
import { withFile, writeFileAtomicIfChanged } from '../../io/file';
import { ImageBytes, ReadImageOptions, readImageBytes } from '../../io/image';
import { readJsonFile } from '../../io/model_folder';
import { readSafetensorsHeader, writeSafetensors } from '../../io/safetensors';
import type { MatmulPrecision } from '../../ops/gemm';
import { FEATURES_INFO_FILE, FeaturesInfo } from '../../data/features_info';
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

/** What a slice needs: the images to encode (bytes read, hashed), and what was kept or skipped on the way. */
export interface FeaturePlan {
  /** The slice's inputs in order (skips are reported in it, whatever step refused them). */
  rels: readonly string[];
  todo: Array<{ rel: string; source: ImageBytes; sha: string }>;
  kept: number;
  skipped: Skip[];
}

/** Reads the images of `rels` that need encoding; unreadable ones are skipped, finished ones kept. */
export async function planFeatureSlice(rels: readonly string[], o: FeatureSliceOptions): Promise<FeaturePlan> {
  const plan: FeaturePlan = { rels, todo: [], kept: 0, skipped: [] };
  for (const rel of rels) {
    const target = path.join(o.out, featureName(rel));
    if (o.reuse === 'exists' && fs.existsSync(target)) {
      plan.kept += 1;
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = await readImageBytes(path.join(o.root, rel), o.image?.maxBytes);
    } catch (e) {
      if (!(e instanceof TinyEmoError)) throw e;
      plan.skipped.push({ file: rel, reason: e.message, code: e.code });
      continue;
    }
    const sha = sha256Hex(bytes);
    if (o.reuse === 'same-source' && recordedSource(target) === sha) plan.kept += 1;
    else plan.todo.push({ rel, source: { name: rel, bytes }, sha });
  }
  return plan;
}

/** Encodes a plan's images and writes their feature files; images that do not decode are skipped. */
export async function encodeFeatureSlice(tower: VisionTower, plan: FeaturePlan, o: FeatureSliceOptions): Promise<FeatureSliceResult> {
  const r = await encodeImages(
    tower,
    plan.todo.map((t) => t.source),
    { batchSize: o.batchSize, image: o.image, signal: o.signal, onProgress: o.onProgress },
  );
  const shaOf = new Map(plan.todo.map((t) => [t.rel, t.sha]));
  for (const e of r.encoded) writeFeatureFile(o, e.file, e.embeds!, shaOf.get(e.file)!);
  const at = new Map(plan.rels.map((rel, i) => [rel, i]));
  const skipped = [...plan.skipped, ...r.skipped].sort((a, b) => at.get(a.file)! - at.get(b.file)!);
  return { written: r.encoded.length, kept: plan.kept, skipped };
}

/** Both steps, for a caller that holds the tower. */
export async function writeFeatureSlice(tower: VisionTower, rels: readonly string[], o: FeatureSliceOptions): Promise<FeatureSliceResult> {
  return encodeFeatureSlice(tower, await planFeatureSlice(rels, o), o);
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

/** Refuses two images that would write one feature file (`a.jpg` and `a.png`). */
export function checkFeatureTargets(rels: readonly string[]): void {
  const byTarget = new Map<string, string>();
  for (const rel of rels) {
    const t = featureName(rel);
    const other = byTarget.get(t);
    if (other) throw new TinyEmoError('INVALID_ARGUMENT', `${other} and ${rel} would both become ${t}; rename one`);
    byTarget.set(t, rel);
  }
}

/** What must match for features to join a folder: the tower, the dtype, the precision, and the width when known. */
export type FeaturesRecipe = Pick<FeaturesInfo, 'vision' | 'dtype' | 'precision'> & { dim?: number };

/** Refuses adding features made `want`'s way to `out`, whose record is `prev` (none: anything may go there). */
export function assertSameFeatures(out: string, prev: FeaturesInfo | undefined, want: FeaturesRecipe): void {
  if (!prev) return;
  if (prev.vision === want.vision && (want.dim === undefined || prev.dim === want.dim) && prev.dtype === want.dtype && prev.precision === want.precision) return;
  const made = (r: FeaturesRecipe) => [r.dim, r.dtype, r.precision && `${r.precision} products`].filter((x) => x !== undefined).join(', ');
  throw new TinyEmoError('INVALID_ARGUMENT', `${out} holds features of ${prev.vision} (${made(prev)}); use another --out for ${want.vision} (${made(want)})`);
}

/**
 * Writes `tinyemo-features.json` for a tower's features in `out` (the same bytes from every writer), refusing a
 * folder that holds another tower's or dtype's features.
 */
export function recordFeaturesInfo(tower: VisionTower, out: string, vision: string, dtype: 'f32' | 'f16', precision: MatmulPrecision = 'f32'): FeaturesInfo {
  const infoFile = path.join(out, FEATURES_INFO_FILE);
  const dim = tower.family === 'clip' ? (tower.model.config as { projectionDim?: number }).projectionDim : tower.model.config.hiddenSize;
  if (dim === undefined) throw new TinyEmoError('UNSUPPORTED', `${tower.dir} has no visual_projection: no image embedding to write`);
  // Only a bf16 run says so: an f32 folder's record stays what it always was.
  const info: FeaturesInfo = { vision, family: tower.family, output: 'image_embeds', dim, dtype, ...(precision === 'bf16' ? { precision } : {}) };
  if (fs.existsSync(infoFile)) assertSameFeatures(out, readJsonFile(infoFile) as unknown as FeaturesInfo, info);
  fs.mkdirSync(out, { recursive: true });
  writeFileAtomicIfChanged(infoFile, Buffer.from(`${JSON.stringify(info, null, 2)}\n`));
  return info;
}

/** `skipped.json` in a features folder: the refused images with their reasons, or no file when there are none. */
export function writeSkippedList(out: string, skipped: readonly Skip[]): void {
  const file = path.join(out, 'skipped.json');
  if (skipped.length) writeFileAtomicIfChanged(file, Buffer.from(`${JSON.stringify(skipped, null, 2)}\n`));
  else fs.rmSync(file, { force: true });
}
