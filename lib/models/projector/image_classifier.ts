/**
 * Image → vision tower → projector → emotion labels. The classifier comes
 * from a model folder (tinyemo.json, which may name its vision tower), or,
 * with no folder, from the pinned defaults in the local Hugging Face cache:
 * CLIP ViT-L/14 (the tower TinyEmo's features came from), the released
 * TinyEmo OpenELM-450M projector, and the label space of OpenELM-450M's
 * embeddings with TinyLlama's tokenizer.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { TAXONOMIES } from '../../data/taxonomies';
import { DEFAULT_REPOS } from '../../hub/defaults';
import { isOffline, pull, resolveModel } from '../../hub/client';
import { SUBSETS, TensorSubset, pullTensors, resolvePartial, tinyemoCacheDir } from '../../hub/partial';
import { readJsonFile } from '../../io/model_folder';
import { BUNDLE_FILE } from './bundle';
import { MetricClassifier, Prediction } from './classifier';
import { LabelSpace } from './label_space';
import type { Device } from '../../tensor';
import type { MatmulPrecision } from '../../ops/gemm';
import { ImageSource, RgbImage } from '../../io/image';
import { ENCODE_BATCH_SIZE, EncodeOptions, EncodedImage, VisionTower, encodeDecoded, encodeImages, loadVisionTower } from '../vision/tower';

/** Labels per file and images per forward pass unless told otherwise. */
export const CLASSIFY_DEFAULTS = { topK: 3, batchSize: ENCODE_BATCH_SIZE } as const;

/** The defaults, by their keys in DEFAULT_REPOS. */
export const DEFAULT_CLASSIFIER = {
  vision: 'clip-vit-l14',
  projector: 'tinyemo-openelm-450m',
  llm: 'openelm-450m',
  tokenizer: 'tinyllama',
  taxonomy: 'emotion6',
} as const;

/** The files of each default repository the classifier reads (a pull skips the TF/Flax copies and the rest). */
export const DEFAULT_FILES: Readonly<Record<string, readonly string[]>> = {
  [DEFAULT_CLASSIFIER.vision]: ['*.json', 'model.safetensors'],
  [DEFAULT_CLASSIFIER.projector]: ['*.bin', '*.safetensors'],
  [DEFAULT_CLASSIFIER.llm]: ['*.json', '*.safetensors'],
  [DEFAULT_CLASSIFIER.tokenizer]: ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'],
};

/**
 * The defaults read only part of these repositories' weights, so only that part is downloaded (hub/partial.ts):
 * CLIP's vision tower (not its text tower) and the label space's token-embedding table (not the rest of the LLM:
 * about 0.1 GB instead of 0.9 GB for OpenELM-450M).
 */
export const DEFAULT_SUBSETS: Readonly<Record<string, TensorSubset>> = {
  [DEFAULT_CLASSIFIER.vision]: 'vision',
  [DEFAULT_CLASSIFIER.llm]: 'embeddings',
};

/** How to get a default part, as a command. */
function pullCommandFor(key: string): string {
  const { repo } = DEFAULT_REPOS[key];
  const subset = DEFAULT_SUBSETS[key];
  return subset ? `tinyemo pull ${repo} --only ${subset}` : `tinyemo pull ${repo} ${DEFAULT_FILES[key].map((g) => `--include '${g}'`).join(' ')}`;
}

/**
 * Downloads the default models that are not in the cache yet (unless
 * offline: HF_HUB_OFFLINE or `offline`). What cannot be had is left for
 * ImageClassifier.load to report in one message.
 */
export async function ensureDefaultModels(
  opts: {
    cacheDir?: string;
    tinyemoCache?: string;
    offline?: boolean;
    endpoint?: string;
    retries?: number;
    onPull?: (repo: string, what: string) => void;
    onPlan?: (repo: string, what: string) => void;
  } = {},
): Promise<{ pulled: string[]; failed: Array<{ repo: string; reason: string }> }> {
  const offline = isOffline(opts.offline);
  const pulled: string[] = [];
  const failed: Array<{ repo: string; reason: string }> = [];
  for (const key of [DEFAULT_CLASSIFIER.vision, DEFAULT_CLASSIFIER.projector, DEFAULT_CLASSIFIER.llm, DEFAULT_CLASSIFIER.tokenizer]) {
    const { repo, revision } = DEFAULT_REPOS[key];
    if (findPinned(key, opts.cacheDir, opts.tinyemoCache)) continue;
    if (offline) continue;
    const subset = DEFAULT_SUBSETS[key];
    opts.onPull?.(repo, subset ? `${SUBSETS[subset].describe}, into tinyemo's cache` : 'into the Hugging Face cache');
    try {
      if (subset) {
        const onPlan = (p: { tensors: number; bytes: number; ofBytes: number }) =>
          opts.onPlan?.(repo, `${p.tensors} tensors, ${(p.bytes / 2 ** 20).toFixed(0)} MiB of the ${(p.ofBytes / 2 ** 20).toFixed(0)} MiB weights`);
        await pullTensors(repo, { subset, revision, cacheDir: opts.tinyemoCache, hubCacheDir: opts.cacheDir, endpoint: opts.endpoint, retries: opts.retries, onPlan });
      } else await pull(repo, { revision, include: DEFAULT_FILES[key], cacheDir: opts.cacheDir, endpoint: opts.endpoint, retries: opts.retries });
      pulled.push(repo);
    } catch (e) {
      if (!(e instanceof TinyEmoError)) throw e;
      failed.push({ repo, reason: e.message });
    }
  }
  return { pulled, failed };
}

export interface ImageClassifierOptions {
  /** A vision folder or hub id; overrides the bundle's. */
  vision?: string;
  /** The label set of the default classifier (a key of TAXONOMIES; default emotion6). */
  taxonomy?: string;
  /** Where the hub cache is (default HF_HUB_CACHE / HF_HOME). */
  cacheDir?: string;
  /** tinyemo's own cache: partial downloads, label tables (default TINYEMO_CACHE / ~/.cache/tinyemo). */
  tinyemoCache?: string;
  /** Told which vision tower was chosen when the model folder does not name one. */
  onNote?: (message: string) => void;
  /** Where the vision tower, the projector and the label lookup run (default: defaultDevice()). */
  device?: Device;
  /** The vision tower's products: 'f32' (default) or 'bf16' (CPUs with AVX512_BF16; see EncoderLoadOptions). */
  precision?: MatmulPrecision;
}

export interface ImagePrediction {
  file: string;
  predictions: Prediction[];
}

export interface ImageClassification {
  results: ImagePrediction[];
  skipped: Array<{ file: string; reason: string; code: string }>;
}

/** A default part's folder: the whole snapshot in the hub cache, else the subset it needs in tinyemo's cache. */
function findPinned(key: string, cacheDir?: string, tinyemoCache?: string): string | undefined {
  const r = DEFAULT_REPOS[key];
  try {
    return resolveModel(r.repo, { revision: r.revision, cacheDir });
  } catch (e) {
    if (!(e instanceof TinyEmoError) || e.code !== 'NOT_FOUND') throw e;
  }
  const subset = DEFAULT_SUBSETS[key];
  return subset ? resolvePartial(r.repo, { subset, revision: r.revision, cacheDir: tinyemoCache }) : undefined;
}

/** The default classifier's parts from the hub cache, or one error naming everything missing and how to get it. */
function defaultParts(cacheDir?: string, tinyemoCache?: string): { vision: string; projector: string; llm: string; tokenizer: string } {
  const keys = [DEFAULT_CLASSIFIER.vision, DEFAULT_CLASSIFIER.projector, DEFAULT_CLASSIFIER.llm, DEFAULT_CLASSIFIER.tokenizer] as const;
  const found: string[] = [];
  const missing: string[] = [];
  const commands: string[] = [];
  for (const k of keys) {
    const dir = findPinned(k, cacheDir, tinyemoCache);
    if (dir) found.push(dir);
    else {
      missing.push(DEFAULT_REPOS[k].repo);
      commands.push(pullCommandFor(k));
    }
  }
  if (missing.length) {
    throw new TinyEmoError(
      'NOT_FOUND',
      `no --model given, and the default models are not all in the Hugging Face cache or tinyemo's; missing: ${missing.join(', ')}. ` +
        `Get them (online) with: ${commands.join(' && ')} — or give --model DIR (a folder from tinyemo train)`,
    );
  }
  const [vision, projector, llm, tokenizer] = found;
  return { vision, projector, llm, tokenizer };
}

/** A tower given as a folder or a hub id: the whole snapshot in the hub cache, else its vision subset. */
function resolveTower(vision: string, opts: ImageClassifierOptions): string {
  try {
    return resolveModel(vision, { cacheDir: opts.cacheDir });
  } catch (e) {
    if (!(e instanceof TinyEmoError) || e.code !== 'NOT_FOUND' || fs.existsSync(vision)) throw e;
    const partial = resolvePartial(vision, { subset: 'vision', cacheDir: opts.tinyemoCache });
    if (!partial) throw new TinyEmoError('NOT_FOUND', `${e.message}, or tinyemo pull ${vision} --only vision`);
    return partial;
  }
}

/**
 * The default label space, cached in tinyemo's cache after its first use (its table is a few KB; making it reads
 * the LLM's embedding table, about 0.1 GB). The key covers the classes and the files it comes from (paths, sizes,
 * times), so a changed model or tokenizer makes a new one; an unreadable cached table is made again.
 */
function defaultLabels(classes: readonly string[], parts: { llm: string; tokenizer: string }, cache?: string): LabelSpace {
  const stamp = (dir: string) =>
    fs
      .readdirSync(dir)
      .filter((f) => /\.(safetensors|bin|json)$/.test(f))
      .sort()
      .map((f) => {
        const st = fs.statSync(path.join(dir, f));
        return [f, st.size, st.mtimeMs];
      });
  const key = createHash('sha256')
    .update(JSON.stringify({ classes, llm: path.resolve(parts.llm), tokenizer: path.resolve(parts.tokenizer), files: [stamp(parts.llm), stamp(parts.tokenizer)] }))
    .digest('hex')
    .slice(0, 32);
  const file = path.join(cache ?? tinyemoCacheDir(), 'labels', `${key}.safetensors`);
  if (fs.existsSync(file)) {
    try {
      return LabelSpace.load(file);
    } catch (e) {
      if (!(e instanceof TinyEmoError)) throw e;
    }
  }
  const labels = LabelSpace.fromLlm(classes, parts.llm, { tokenizerDir: parts.tokenizer });
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    labels.save(file);
  } catch (e) {
    if (!(e instanceof Error)) throw e; // a read-only cache only costs the next run the same work
  }
  return labels;
}

/** The released projector weights in a hub snapshot: its one .bin (or pytorch_model.bin). */
function projectorFile(dir: string): string {
  const bins = fs.readdirSync(dir).filter((f) => f.endsWith('.bin') || f.endsWith('.safetensors'));
  if (bins.length !== 1) throw new TinyEmoError('INVALID_FILE', `${dir}: expected one projector weight file, found ${bins.length} (${bins.join(', ')})`);
  return path.join(dir, bins[0]);
}

export class ImageClassifier {
  private constructor(
    readonly classifier: MetricClassifier,
    readonly tower: VisionTower,
  ) {}

  /**
   * From a model folder (`model`), or the pinned defaults when `model` is
   * undefined. The vision tower: `opts.vision`, else the one the bundle names,
   * else CLIP ViT-L/14 for a 768-input projector.
   */
  static load(model: string | undefined, opts: ImageClassifierOptions = {}): ImageClassifier {
    let classifier: MetricClassifier;
    let vision = opts.vision;
    if (model === undefined) {
      const parts = defaultParts(opts.cacheDir, opts.tinyemoCache);
      const taxonomy = TAXONOMIES[opts.taxonomy ?? DEFAULT_CLASSIFIER.taxonomy];
      if (!taxonomy) throw new TinyEmoError('INVALID_ARGUMENT', `unknown taxonomy "${opts.taxonomy}" (one of ${Object.keys(TAXONOMIES).join(', ')})`);
      const labels = defaultLabels(taxonomy.classes, parts, opts.tinyemoCache);
      classifier = MetricClassifier.load(projectorFile(parts.projector), { labels, device: opts.device });
      vision ??= parts.vision;
    } else {
      classifier = MetricClassifier.load(model, { device: opts.device });
      if (vision === undefined) {
        const bundleFile = path.join(model, BUNDLE_FILE);
        const v = fs.existsSync(bundleFile) ? (readJsonFile(bundleFile).vision as { model?: unknown } | undefined) : undefined;
        if (v && typeof v.model === 'string') vision = v.model;
      }
    }
    try {
      if (vision === undefined) {
        if (classifier.inDim !== 768) {
          throw new TinyEmoError('INVALID_ARGUMENT', `${model} does not say which vision tower made its ${classifier.inDim}-value features: give --vision DIR`);
        }
        vision = DEFAULT_REPOS[DEFAULT_CLASSIFIER.vision].repo;
        opts.onNote?.(`${model} does not name its vision tower; using ${vision}, whose image embeddings TinyEmo's projectors take`);
      }
      const towerDir = resolveTower(vision, opts);
      const tower = loadVisionTower(towerDir, { device: classifier.device, precision: opts.precision });
      const dim = tower.family === 'clip' ? (tower.model.config as { projectionDim?: number }).projectionDim : tower.model.config.hiddenSize;
      if (dim !== classifier.inDim) {
        tower.model.dispose();
        throw new TinyEmoError('SHAPE_MISMATCH', `the vision tower ${vision} makes ${dim}-value embeddings; the projector takes ${classifier.inDim}`);
      }
      return new ImageClassifier(classifier, tower);
    } catch (e) {
      classifier.dispose();
      throw e;
    }
  }

  /** Classifies images (files or named bytes); unreadable ones are skipped and reported. */
  async classifyImages(sources: readonly ImageSource[], opts: { topK?: number } & Omit<EncodeOptions, 'hiddenStates' | 'embeds'> = {}): Promise<ImageClassification> {
    const { encoded, skipped } = await encodeImages(this.tower, sources, { ...opts, embeds: true });
    return { results: await this.rank(encoded, opts.topK), skipped };
  }

  /** Classifies decoded images in one forward pass (a server's batch). */
  async classifyDecoded(batch: ReadonlyArray<{ file: string; image: RgbImage }>, opts: { topK?: number } = {}): Promise<ImagePrediction[]> {
    return this.rank(await encodeDecoded(this.tower, batch, { embeds: true }), opts.topK);
  }

  private async rank(encoded: readonly EncodedImage[], topK: number = CLASSIFY_DEFAULTS.topK): Promise<ImagePrediction[]> {
    if (encoded.length === 0) return [];
    const d = this.classifier.inDim;
    const x = new Float32Array(encoded.length * d);
    encoded.forEach((e, i) => x.set(e.embeds!, i * d));
    const ranked = await this.classifier.classify(x, { topK });
    return encoded.map((e, i) => ({ file: e.file, predictions: ranked[i] }));
  }

  dispose(): void {
    this.classifier.dispose();
    this.tower.model.dispose();
  }
}
