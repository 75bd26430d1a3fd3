/**
 * Vision towers by folder: which family a Hugging Face folder holds, its
 * preprocessing, and an encoder from image files to embeddings or hidden
 * states in batches, where one bad image is reported and skipped rather than
 * failing the batch.
 */
import { TinyEmoError } from '../../errors';
import { ImageSource, ReadImageOptions, RgbImage, readImage, sourceName } from '../../io/image';
import { ModelFolder } from '../../io/model_folder';
import { Device, FloatDType, Tensor } from '../../tensor';
import type { MatmulPrecision } from '../../ops/gemm';
import { ClipVision, VisionForwardOptions, VisionOutput } from './clip_vision';
import { ImagePreprocess, preprocessForFolder, resizeAndCrop, toPixels } from './preprocess';
import { SiglipVision } from './siglip_vision';

/** Images per forward pass unless told otherwise. */
export const ENCODE_BATCH_SIZE = 8;
export type VisionFamily = 'clip' | 'siglip';

export interface VisionTower {
  readonly family: VisionFamily;
  readonly dir: string;
  readonly preprocess: ImagePreprocess;
  readonly model: ClipVision | SiglipVision;
}

/** CLIP or SigLIP, from config.json's model_type / architectures, else from the weights. */
export function visionFamily(folder: ModelFolder): VisionFamily {
  const cfg = folder.config;
  const type = typeof cfg.model_type === 'string' ? cfg.model_type : '';
  const arch = Array.isArray(cfg.architectures) ? cfg.architectures.join(' ') : '';
  if (/^clip/.test(type) || /^CLIP/.test(arch)) return 'clip';
  if (/^siglip/.test(type) || /^Siglip/.test(arch)) return 'siglip';
  if (folder.has('vision_model.embeddings.class_embedding')) return 'clip';
  if (folder.has('vision_model.embeddings.patch_embedding.bias')) return 'siglip';
  throw new TinyEmoError('UNSUPPORTED', `${folder.dir}: not a CLIP or SigLIP vision model (model_type "${type}")`);
}

export function loadVisionTower(dir: string, opts: { dtype?: FloatDType; device?: Device; precision?: MatmulPrecision } = {}): VisionTower {
  const folder = ModelFolder.open(dir);
  try {
    const family = visionFamily(folder);
    const model = family === 'clip' ? ClipVision.load(folder, opts) : SiglipVision.load(folder, opts);
    return { family, dir, model, preprocess: preprocessForFolder(dir, family, model.config.imageSize) };
  } finally {
    folder.close();
  }
}

export interface EncodeOptions extends VisionForwardOptions {
  /** Images per forward pass (default 8). */
  batchSize?: number;
  image?: ReadImageOptions;
  /** Called after each batch with the number of images done (including skipped). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface EncodedImage {
  file: string;
  /** The image embedding, when asked for. */
  embeds?: Float32Array;
  /** Hidden states by requested index, each [S, E] row-major. */
  hiddenStates: Map<number, Float32Array>;
}

export interface EncodeResult {
  encoded: EncodedImage[];
  /** Images that could not be read, with the reason; the rest went on without them. */
  skipped: Array<{ file: string; reason: string; code: string }>;
}

/**
 * Reads, preprocesses and encodes images (files or named bytes) in batches.
 * Decoding runs ahead of the forward pass of the batch before (sharp works on
 * its own threads while the kernels run).
 */
export async function encodeImages(tower: VisionTower, sources: readonly ImageSource[], opts: EncodeOptions = {}): Promise<EncodeResult> {
  const batchSize = opts.batchSize ?? ENCODE_BATCH_SIZE;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new TinyEmoError('INVALID_ARGUMENT', `batch size must be a positive integer, not ${batchSize}`);
  const encoded: EncodedImage[] = [];
  const skipped: EncodeResult['skipped'] = [];
  const decode = (from: number) =>
    Promise.all(
      sources.slice(from, from + batchSize).map(async (source) => {
        const file = sourceName(source);
        try {
          return { file, image: resizeAndCrop(await readImage(source, opts.image), tower.preprocess) };
        } catch (e) {
          if (!(e instanceof TinyEmoError)) throw e;
          skipped.push({ file, reason: e.message, code: e.code });
          return undefined;
        }
      }),
    );
  let next = sources.length > 0 ? decode(0) : undefined;
  for (let at = 0; at < sources.length; at += batchSize) {
    if (opts.signal?.aborted) throw new TinyEmoError('CANCELLED', 'image encoding was cancelled');
    const batch = (await next!).filter((x) => x !== undefined);
    next = at + batchSize < sources.length ? decode(at + batchSize) : undefined;
    if (batch.length > 0) encoded.push(...(await encodeResized(tower, batch, opts)));
    opts.onProgress?.(Math.min(at + batchSize, sources.length), sources.length);
  }
  return { encoded, skipped };
}

/** One forward pass over decoded images of any size, one record per image. */
export function encodeDecoded(tower: VisionTower, batch: ReadonlyArray<{ file: string; image: RgbImage }>, opts: VisionForwardOptions = {}): Promise<EncodedImage[]> {
  return encodeResized(
    tower,
    batch.map((b) => ({ file: b.file, image: resizeAndCrop(b.image, tower.preprocess) })),
    opts,
  );
}

/** One forward pass over images already resized and cropped to the tower's input. */
async function encodeResized(tower: VisionTower, batch: ReadonlyArray<{ file: string; image: RgbImage }>, opts: VisionForwardOptions): Promise<EncodedImage[]> {
  const pixels = toPixels(
    batch.map((b) => b.image),
    tower.preprocess,
  );
  let out: VisionOutput;
  try {
    out = await tower.model.forward(pixels, opts);
  } finally {
    pixels.dispose();
  }
  return split(
    batch.map((b) => b.file),
    out,
  );
}

/** One record per image from a batch's outputs (which are disposed). */
function split(files: string[], out: VisionOutput): EncodedImage[] {
  const rows = (t: Tensor<'f32'>) => {
    const a = t.toArray() as Float32Array;
    const n = a.length / files.length;
    return files.map((_, i) => a.slice(i * n, (i + 1) * n));
  };
  const embeds = out.imageEmbeds ? rows(out.imageEmbeds) : undefined;
  const states = [...out.hiddenStates].map(([k, t]) => [k, rows(t)] as const);
  out.imageEmbeds?.dispose();
  for (const t of out.hiddenStates.values()) t.dispose();
  return files.map((file, i) => ({ file, embeds: embeds?.[i], hiddenStates: new Map(states.map(([k, r]) => [k, r[i]])) }));
}
