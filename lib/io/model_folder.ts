/**
 * A Hugging Face model folder: config.json (flat, or with nested
 * sub-configs), and weights as model.safetensors, sharded safetensors
 * (model.safetensors.index.json), or pytorch_model.bin (also sharded).
 * Shard names come from a file that may be hostile: only plain names inside
 * the folder are followed.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError, invalidFile } from '../errors';
import { FloatDType, Tensor } from '../tensor';
import { Json, JsonError, isObject, parseStrictJson } from './json';
import { WeightFile, WeightInfo } from './weights';

export type JsonObject = { [key: string]: Json };

const MAX_JSON_BYTES = 64 << 20;

/** A JSON file of the folder, parsed strictly (NaN/Infinity allowed, as Python writes them). */
export function readJsonFile(file: string): JsonObject {
  let bytes: Buffer;
  try {
    if (fs.statSync(file).size > MAX_JSON_BYTES) throw invalidFile(file, 'over 64 MB: not a config file');
    bytes = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof TinyEmoError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new TinyEmoError('NOT_FOUND', `${file} does not exist`);
    throw new TinyEmoError('IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalidFile(file, 'not valid UTF-8');
  }
  try {
    const v = parseStrictJson(text.replace(/^\uFEFF/, ''), { allowNonFinite: true });
    if (!isObject(v)) throw invalidFile(file, 'not a JSON object');
    return v;
  } catch (e) {
    if (e instanceof JsonError) throw invalidFile(file, `invalid JSON: ${e.message}`);
    throw e;
  }
}

const WEIGHT_LAYOUTS = [
  { index: 'model.safetensors.index.json', single: 'model.safetensors' },
  { index: 'pytorch_model.bin.index.json', single: 'pytorch_model.bin' },
] as const;

export class ModelFolder {
  readonly config: JsonObject;
  /** Weight name -> the file (in this folder) that holds it. */
  private readonly where: Map<string, string>;
  private readonly open: Map<string, WeightFile>;
  /** Names inside the files start with this (a part of a composite checkpoint, see `part`). */
  private readonly prefix: string;

  /** Full weight name -> a change applied as it loads (an adapter merged in); shared with the parts. */
  private readonly transforms: Map<string, (w: Tensor<'f32'>) => Tensor<'f32'>>;

  private constructor(
    readonly dir: string,
    config: JsonObject,
    where: Map<string, string>,
    prefix = '',
    open = new Map<string, WeightFile>(),
    transforms = new Map<string, (w: Tensor<'f32'>) => Tensor<'f32'>>(),
  ) {
    this.config = config;
    this.where = where;
    this.prefix = prefix;
    this.open = open;
    this.transforms = transforms;
  }

  /**
   * Changes weights as they load (full names, the folder's own): each transform receives the stored weight in f32
   * and returns the one to use, which is then converted to the dtype asked for.
   */
  setTransforms(transforms: Map<string, (w: Tensor<'f32'>) => Tensor<'f32'>>): void {
    for (const [name, fn] of transforms) this.transforms.set(name, fn);
  }

  /**
   * One part of a composite checkpoint (TinyLLaVA's "language_model.",
   * "vision_tower._vision_tower."): a folder view whose weight names are the
   * part's own, without the prefix, with the part's config. It shares the
   * open files with this folder; close the whole.
   */
  part(prefix: string, config: JsonObject): ModelFolder {
    const where = new Map<string, string>();
    for (const [name, shard] of this.where) if (name.startsWith(prefix)) where.set(name.slice(prefix.length), shard);
    return new ModelFolder(this.dir, config, where, this.prefix + prefix, this.open, this.transforms);
  }

  /** Opens a folder: config.json is required unless `requireConfig` is false. */
  static open(dir: string, opts: { requireConfig?: boolean } = {}): ModelFolder {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new TinyEmoError('NOT_FOUND', `${dir} is not a folder`);
    const cfgFile = path.join(dir, 'config.json');
    const config = fs.existsSync(cfgFile) ? readJsonFile(cfgFile) : opts.requireConfig === false ? {} : undefined;
    if (!config) throw new TinyEmoError('NOT_FOUND', `${dir} has no config.json`);
    return new ModelFolder(dir, config, ModelFolder.index(dir));
  }

  private static index(dir: string): Map<string, string> {
    for (const layout of WEIGHT_LAYOUTS) {
      const indexFile = path.join(dir, layout.index);
      if (fs.existsSync(indexFile)) {
        const idx = readJsonFile(indexFile);
        const map = idx.weight_map;
        if (!isObject(map)) throw invalidFile(indexFile, 'no weight_map object');
        const where = new Map<string, string>();
        for (const [name, shard] of Object.entries(map)) {
          if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '..' || shard === '.' || shard.includes('\\')) {
            throw invalidFile(indexFile, `shard ${JSON.stringify(shard)} of "${name}" is not a plain file name in the folder`);
          }
          where.set(name, shard);
        }
        return where;
      }
      if (fs.existsSync(path.join(dir, layout.single))) {
        const where = new Map<string, string>();
        const w = WeightFile.open(path.join(dir, layout.single));
        try {
          for (const t of w.tensors) where.set(t.name, layout.single);
        } finally {
          w.close();
        }
        return where;
      }
    }
    return new Map();
  }

  /** Weight names, in the index's or file's order. */
  get weightNames(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): WeightInfo {
    return { ...this.file(name).info(this.prefix + name), name };
  }

  load<D extends FloatDType>(name: string, opts: { dtype: D }): Tensor<D>;
  load(name: string, opts?: { dtype?: FloatDType }): Tensor;
  load(name: string, opts: { dtype?: FloatDType } = {}): Tensor {
    const transform = this.transforms.get(this.prefix + name);
    if (!transform) return this.file(name).load(this.prefix + name, opts);
    const stored = this.file(name).info(this.prefix + name).dtype;
    const base = this.file(name).load(this.prefix + name, { dtype: 'f32' }) as Tensor<'f32'>;
    const changed = transform(base);
    if (changed !== base) base.dispose();
    const want = opts.dtype ?? (stored === 'F16' ? 'f16' : stored === 'BF16' ? 'bf16' : 'f32');
    if (want === 'f32') return changed;
    try {
      return changed.toSync(want);
    } finally {
      changed.dispose();
    }
  }

  /**
   * Checks the folder's weights against the names a model expects: an error
   * lists every missing one and, unless allowed, every unexpected one.
   */
  checkWeights(expected: Iterable<string>, opts: { allowUnexpected?: boolean | ((name: string) => boolean) } = {}): void {
    const want = new Set(expected);
    const missing = [...want].filter((n) => !this.where.has(n));
    const allow = opts.allowUnexpected;
    const unexpected = [...this.where.keys()].filter((n) => !want.has(n) && !(allow === true || (typeof allow === 'function' && allow(n))));
    if (missing.length || unexpected.length) {
      const list = (xs: string[]) => xs.slice(0, 20).join(', ') + (xs.length > 20 ? `, ... (${xs.length} in all)` : '');
      const parts = [];
      if (missing.length) parts.push(`missing: ${list(missing)}`);
      if (unexpected.length) parts.push(`unexpected: ${list(unexpected)}`);
      throw new TinyEmoError('INVALID_FILE', `${this.dir}: weights do not match the model (${parts.join('; ')})`);
    }
  }

  close(): void {
    for (const w of this.open.values()) w.close();
    this.open.clear();
  }

  private file(name: string): WeightFile {
    const shard = this.where.get(name);
    if (shard === undefined) throw new TinyEmoError('NOT_FOUND', `${this.dir} has no weight "${name}"`);
    let w = this.open.get(shard);
    if (!w) {
      w = WeightFile.open(path.join(this.dir, shard));
      this.open.set(shard, w);
      if (!w.has(this.prefix + name)) throw invalidFile(w.path, `the index puts "${this.prefix + name}" here, but the file does not hold it`);
    }
    return w;
  }
}

/** A sub-config (e.g. "vision_config", "text_config"), or the config itself when it is flat. */
export function subConfig(config: JsonObject, key: string): JsonObject {
  const v = config[key];
  return isObject(v) ? v : config;
}
