/**
 * One way to read any supported weight file: safetensors, PyTorch zip or
 * legacy checkpoints, or .npy. The format is recognised from the bytes, not
 * the name. A file holding one bare tensor (a torch.save(tensor), an .npy)
 * names it ''.
 */
import { TinyEmoError, invalidFile } from '../errors';
import { FloatDType, Tensor } from '../tensor';
import { FileDType } from './dtypes';
import { ReadableFile } from './file';
import { isNpy, readNpyIndex } from './npy';
import { readSafetensorsHeader } from './safetensors';
import { isLegacyTorch, isZip, readTorchLegacy, readTorchZip } from './torch';
import { TensorSource, numel, readTensor } from './tensor_reader';

export type WeightFormat = 'safetensors' | 'torch-zip' | 'torch-legacy' | 'npy';

export interface WeightInfo {
  name: string;
  dtype: FileDType;
  shape: number[];
}

export interface OpenOptions {
  /** Check zip records' CRC-32 before use (default true). */
  verify?: boolean;
}

export interface LoadOptions {
  /** Convert float tensors on load. */
  dtype?: FloatDType;
}

export class WeightFile {
  readonly metadata: Readonly<Record<string, string>>;
  private readonly index: Map<string, TensorSource>;

  private constructor(
    private readonly file: ReadableFile,
    readonly format: WeightFormat,
    index: Map<string, TensorSource>,
    metadata: Record<string, string>,
  ) {
    this.index = index;
    this.metadata = Object.freeze({ ...metadata });
  }

  static open(path: string, opts: OpenOptions = {}): WeightFile {
    const file = new ReadableFile(path);
    try {
      const head = file.read(0, Math.min(file.size, 16), 'the first bytes');
      if (isZip(head)) {
        const t = readTorchZip(file, opts.verify ?? true);
        return new WeightFile(file, t.format, t.tensors, {});
      }
      if (isLegacyTorch(head)) {
        const t = readTorchLegacy(file);
        return new WeightFile(file, t.format, t.tensors, {});
      }
      if (isNpy(head)) {
        const src = readNpyIndex(file);
        return new WeightFile(file, 'npy', new Map([['', src]]), {});
      }
      if (head.length >= 9 && head[8] === 0x7b) {
        const h = readSafetensorsHeader(file);
        const index = new Map<string, TensorSource>();
        for (const e of h.entries) {
          index.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, base: h.dataStart + e.begin, storageElements: numel(e.shape), offset: 0 });
        }
        return new WeightFile(file, 'safetensors', index, h.metadata);
      }
      throw invalidFile(path, 'not a safetensors, PyTorch or .npy file');
    } catch (e) {
      file.close();
      throw e;
    }
  }

  get path(): string {
    return this.file.path;
  }

  /** The tensors, in the file's order. */
  get tensors(): WeightInfo[] {
    return [...this.index.values()].map((s) => ({ name: s.name, dtype: s.dtype, shape: [...s.shape] }));
  }

  has(name: string): boolean {
    return this.index.has(name);
  }

  info(name: string): WeightInfo {
    const s = this.source(name);
    return { name: s.name, dtype: s.dtype, shape: [...s.shape] };
  }

  load<D extends FloatDType>(name: string, opts: { dtype: D }): Tensor<D>;
  load(name: string, opts?: LoadOptions): Tensor;
  load(name: string, opts: LoadOptions = {}): Tensor {
    return readTensor(this.file, this.source(name), opts.dtype);
  }

  /** Several tensors (all by default); on failure none stays allocated. */
  loadAll(opts: LoadOptions & { names?: readonly string[] } = {}): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    try {
      for (const name of opts.names ?? [...this.index.keys()]) out.set(name, this.load(name, opts));
    } catch (e) {
      for (const t of out.values()) t.dispose();
      throw e;
    }
    return out;
  }

  close(): void {
    this.file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private source(name: string): TensorSource {
    const s = this.index.get(name);
    if (!s) throw new TinyEmoError('NOT_FOUND', `${this.file.path} has no tensor "${name}"`);
    return s;
  }
}

/** Opens, runs fn, closes. */
export function withWeights<T>(path: string, fn: (w: WeightFile) => T, opts?: OpenOptions): T {
  const w = WeightFile.open(path, opts);
  try {
    return fn(w);
  } finally {
    w.close();
  }
}
