/**
 * Loading a model's weights by name from a Hugging Face folder: every shape
 * checked against what the config implies, vectors widened to f32, matrices
 * kept in the checkpoint's dtype (or the one asked for), all placed on one
 * device and owned by the loader so a failed load frees what it took.
 */
import { invalidFile } from '../errors';
import { JsonObject, ModelFolder } from '../io/model_folder';
import { MatmulPrecision, PackedWeight } from '../ops/gemm';
import { Device, FloatDType, Tensor } from '../tensor';

export interface Linear {
  /** [out, in], f32 or the checkpoint's 16-bit type. */
  weight: Tensor;
  bias?: Tensor<'f32'>;
}

/** A linear layer only used in products: its weight may be packed for the CPU GEMM. */
export interface ProductLinear {
  weight: Tensor | PackedWeight;
  bias?: Tensor<'f32'>;
}

/**
 * Whether loaders pack weights for the CPU GEMM by default: yes, unless TINYEMO_PACK_WEIGHTS=0. Packing saves
 * the repacking every product would do (about 15% of a ViT's time) at the cost of the load's extra pass.
 */
export function packWeightsByDefault(): boolean {
  return process.env.TINYEMO_PACK_WEIGHTS !== '0';
}

export interface Norm {
  weight: Tensor<'f32'>;
  bias: Tensor<'f32'>;
}

/** A positive integer field of a config, or its default. */
export function intField(cfg: JsonObject, key: string, fallback: number | undefined, where: string): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalidFile(where, `config field "${key}" must be a positive integer`);
  return v;
}

export function numberField(cfg: JsonObject, key: string, fallback: number, where: string): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw invalidFile(where, `config field "${key}" must be a positive number`);
  return v;
}

/** Loads weights by name, checking every shape, widening vectors to f32, onto one device. */
export class WeightLoader {
  readonly owned: Tensor[] = [];

  constructor(
    private readonly folder: ModelFolder,
    /** The dtype matrices are kept in; undefined keeps the checkpoint's own. */
    private readonly dtype: FloatDType | undefined,
    /** Where the weights go (read on the host, then copied there once). */
    readonly device: Device = 'cpu',
  ) {}

  /** A host tensor moved to this loader's device (the host copy freed), and owned. */
  adopt<T extends Tensor>(t: T): T {
    let placed: T;
    try {
      placed = t.toDevice(this.device) as T;
    } catch (e) {
      t.dispose();
      throw e;
    }
    if (placed !== t) t.dispose();
    this.owned.push(placed);
    return placed;
  }

  tensor(name: string, shape: readonly number[], dtype?: FloatDType): Tensor {
    const info = this.folder.info(name);
    if (info.shape.length !== shape.length || info.shape.some((n, i) => n !== shape[i])) {
      throw invalidFile(this.folder.dir, `weight ${name} is [${info.shape.join(', ')}], the config implies [${shape.join(', ')}]`);
    }
    const want = dtype ?? this.dtype ?? (info.dtype === 'F16' ? 'f16' : info.dtype === 'BF16' ? 'bf16' : 'f32');
    return this.adopt(this.folder.load(name, { dtype: want }));
  }

  vector(name: string, n: number): Tensor<'f32'> {
    return this.tensor(name, [n], 'f32') as Tensor<'f32'>;
  }

  f32(name: string, shape: readonly number[]): Tensor<'f32'> {
    return this.tensor(name, shape, 'f32') as Tensor<'f32'>;
  }

  norm(prefix: string, n: number): Norm {
    return { weight: this.vector(`${prefix}.weight`, n), bias: this.vector(`${prefix}.bias`, n) };
  }

  linear(prefix: string, out: number, inp: number, bias = true): Linear {
    return { weight: this.tensor(`${prefix}.weight`, [out, inp]), bias: bias ? this.vector(`${prefix}.bias`, out) : undefined };
  }

  /**
   * The linear with its weight packed for the CPU GEMM's products in `precision`, the unpacked copy freed. In f32,
   * as it is on another device or in a 16-bit type (packed, it would take twice the memory); bf16 packs any type.
   */
  packed(l: Linear, precision: MatmulPrecision = 'f32'): ProductLinear {
    if (this.device !== 'cpu' || (precision === 'f32' && l.weight.dtype !== 'f32')) return l;
    const p = PackedWeight.pack(l.weight, precision);
    this.owned.push(p.packed);
    const i = this.owned.indexOf(l.weight);
    if (i >= 0) this.owned.splice(i, 1);
    l.weight.dispose();
    return { weight: p, bias: l.bias };
  }

  /** Several [n_i, in] linears stacked into one [Σn_i, in] (same dtype), biases likewise. */
  stacked(parts: Array<{ weight: Tensor; bias?: Tensor<'f32'> }>): Linear {
    const dtype = parts[0].weight.dtype;
    const inp = parts[0].weight.shape[1];
    if (parts.some((p) => p.weight.dtype !== dtype)) {
      throw invalidFile(this.folder.dir, 'stacked projections have different dtypes');
    }
    const rows = parts.reduce((n, p) => n + p.weight.shape[0], 0);
    let weight: Tensor;
    // Concatenated on the host (toArray reads a device tensor back), then placed once.
    if (dtype === 'f32') {
      const all = new Float32Array(rows * inp);
      let at = 0;
      for (const p of parts) {
        all.set(p.weight.toArray() as Float32Array, at);
        at += p.weight.size;
      }
      weight = this.adopt(Tensor.fromArray('f32', all, [rows, inp]));
    } else {
      const all = new Uint16Array(rows * inp);
      let at = 0;
      for (const p of parts) {
        all.set(p.weight.toArray() as Uint16Array, at);
        at += p.weight.size;
      }
      weight = this.adopt(Tensor.fromArray(dtype as 'f16' | 'bf16', all, [rows, inp]));
    }
    let bias: Tensor<'f32'> | undefined;
    if (parts.every((p) => p.bias)) {
      const b = new Float32Array(rows);
      let at = 0;
      for (const p of parts) {
        b.set(p.bias!.toArray(), at);
        at += p.bias!.size;
      }
      bias = this.adopt(Tensor.from(b, [rows]));
    }
    // The separate parts are no longer needed.
    for (const p of parts) {
      p.weight.dispose();
      p.bias?.dispose();
    }
    return { weight, bias };
  }

  /** Frees an owned tensor that served only during loading. */
  release(t: Tensor): void {
    const i = this.owned.indexOf(t);
    if (i >= 0) this.owned.splice(i, 1);
    t.dispose();
  }

  disposeAll(): void {
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
  }
}
