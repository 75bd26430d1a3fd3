/**
 * LoRA on a decoder's linear layers, as PEFT defines it: for W [out, in],
 *   y = x·Wᵀ + (alpha / r) · (drop(x)·Aᵀ)·Bᵀ,   A [r, in], B [out, r],
 * A initialised as nn.Linear (uniform in ±1/sqrt(in)), B at zero, W frozen;
 * drop(x) is inverted dropout with a mask drawn from a seed and the layer, so
 * the backward redraws the same mask instead of keeping it. Weights take
 * PEFT's names (`<module>.lora_A.weight`, `<module>.lora_B.weight`), the
 * adapter PEFT's files (adapter_config.json, adapter_model.safetensors), and
 * merging folds (alpha / r)·B·A into W.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError } from '../../errors';
import { writeFileAtomic } from '../../io/file';
import { readJsonFile } from '../../io/model_folder';
import { writeSafetensors } from '../../io/safetensors';
import { WeightFile } from '../../io/weights';
import { Dropout, dropoutApplySync } from '../../ops/dropout';
import { gemmSync } from '../../ops/gemm';
import { Device, Tensor } from '../../tensor';
import { Rng } from '../../util/rng';
import { Scope } from '../../util/scope';
import { LoraPair, TrainLinear, TrainWeights } from './decoder_train_weights';

export type { LoraPair } from './decoder_train_weights';

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names as PEFT targets them: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, ... */
  targets: readonly string[];
  seed: number;
  device?: Device;
}

/** The linear layers of a decoder with their module names (the weight's name without ".weight"). */
export function linearModules(w: TrainWeights): TrainLinear[] {
  return w.layers.flatMap((L) => [...L.qkv, L.o, ...L.up, L.down]);
}

/** Adds LoRA pairs to the targeted linear layers of a decoder; returns them (their A and B are the Params that train). */
export function attachLora(w: TrainWeights, o: LoraOptions): LoraPair[] {
  return attachLoraTo(linearModules(w), o);
}

/**
 * Adds LoRA pairs to the targeted layers among `modules` (a decoder's, a tower's). `keyBase` numbers their dropout
 * streams, so two parts of one model never share masks.
 */
export function attachLoraTo(modules: TrainLinear[], o: LoraOptions & { keyBase?: number }): LoraPair[] {
  if (!Number.isSafeInteger(o.r) || o.r < 1) throw new TinyEmoError('INVALID_ARGUMENT', 'LoRA r must be a positive integer');
  if (!(o.alpha > 0)) throw new TinyEmoError('INVALID_ARGUMENT', 'LoRA alpha must be positive');
  if (!(o.dropout >= 0 && o.dropout < 1)) throw new TinyEmoError('INVALID_ARGUMENT', 'LoRA dropout must be in [0, 1)');
  const rng = new Rng(o.seed ^ 0x4c6f5241 ^ (o.keyBase ?? 0));
  const pairs: LoraPair[] = [];
  const known = moduleKinds(modules);
  const unknown = o.targets.filter((t) => !known.includes(t));
  if (unknown.length) throw new TinyEmoError('INVALID_ARGUMENT', `LoRA targets ${unknown.join(', ')} are not linear layers of this model (${known.join(', ')})`);
  modules.forEach((l, i) => {
    const name = moduleName(l);
    if (!o.targets.includes(name.split('.').pop()!)) return;
    const [out, inp] = l.w.value.shape;
    const bound = 1 / Math.sqrt(inp);
    const a = Tensor.from(
      Float32Array.from({ length: o.r * inp }, () => (2 * rng.next() - 1) * bound),
      [o.r, inp],
      o.device,
    );
    const b = Tensor.zeros([out, o.r], 'f32', o.device);
    l.lora = {
      a: { name: `${name}.lora_A.weight`, value: a },
      b: { name: `${name}.lora_B.weight`, value: b },
      scale: o.alpha / o.r,
      dropout: o.dropout,
      key: (o.keyBase ?? 0) + i,
    };
    pairs.push(l.lora);
  });
  if (pairs.length === 0) throw new TinyEmoError('INVALID_ARGUMENT', 'LoRA targets no layer');
  return pairs;
}

/** The short names (q_proj, fc1, ...) of some linear layers, each once. */
export function moduleKinds(modules: TrainLinear[]): string[] {
  return [...new Set(modules.map((m) => moduleName(m).split('.').pop()!))];
}

export function moduleName(l: TrainLinear): string {
  return l.w.name.replace(/\.weight$/, '');
}

/** The layer's dropout for one mask seed: its own stream of masks (the seed's bits above, the layer's below). */
function dropoutOf(l: LoraPair, seed: number | undefined): Dropout | undefined {
  if (l.dropout === 0 || seed === undefined) return undefined;
  return { p: l.dropout, seed: (BigInt(seed >>> 0) << 32n) | BigInt(l.key >>> 0) };
}

/** drop(x), owned by scope (x itself without dropout). */
function dropped(x: Tensor<'f32'>, d: Dropout | undefined, scope: Scope): Tensor<'f32'> {
  return d ? scope.use(dropoutApplySync(x, d)) : x;
}

/** out += scale · (drop(x)·Aᵀ)·Bᵀ. */
export function loraForward(x: Tensor<'f32'>, l: LoraPair, out: Tensor<'f32'>, seed: number | undefined): void {
  using scope = new Scope();
  const t = scope.use(gemmSync(dropped(x, dropoutOf(l, seed), scope), l.a.value));
  gemmSync(t, l.b.value, { out, beta: 1, alpha: l.scale });
}

/** The LoRA branch's backward: dB += scale·dyᵀ·t, dA += dtᵀ·drop(x) with dt = scale·dy·B, and dx += drop'(dt·A). */
export function loraBackward(x: Tensor<'f32'>, l: LoraPair, dy: Tensor<'f32'>, dx: Tensor<'f32'> | undefined, seed: number | undefined): void {
  using scope = new Scope();
  const d = dropoutOf(l, seed);
  const xd = dropped(x, d, scope);
  const t = scope.use(gemmSync(xd, l.a.value));
  if (l.b.grad) gemmSync(dy, t, { aTrans: true, bTrans: true, alpha: l.scale, out: l.b.grad, beta: 1 });
  const dt = scope.use(gemmSync(dy, l.b.value, { bTrans: true, alpha: l.scale }));
  if (l.a.grad) gemmSync(dt, xd, { aTrans: true, bTrans: true, out: l.a.grad, beta: 1 });
  if (!dx) return;
  if (!d) {
    gemmSync(dt, l.a.value, { bTrans: true, out: dx, beta: 1 });
    return;
  }
  // drop(x) = x ⊙ mask, so dL/dx gains (dt·A) ⊙ mask: the same op, the same seed.
  dropoutApplySync(scope.use(gemmSync(dt, l.a.value, { bTrans: true })), d, { out: dx, accumulate: true });
}

/** W += scale · B·A for every pair among these linear layers (after merging, the adapter is the weights). */
export function mergeLora(modules: TrainLinear[]): void {
  for (const l of modules) {
    if (!l.lora) continue;
    gemmSync(l.lora.b.value, l.lora.a.value, { bTrans: true, alpha: l.lora.scale, out: l.w.value, beta: 1 });
  }
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/**
 * PEFT's adapter files beside a model: adapter_config.json and adapter_model.safetensors, the factors under
 * `base_model.model.<prefix><module>.lora_{A,B}.weight` (prefix: where each part, the LLM or the tower, sits in the
 * checkpoint).
 */
export function writeAdapter(dir: string, groups: ReadonlyArray<{ pairs: LoraPair[]; prefix: string }>, o: Omit<LoraOptions, 'seed' | 'device'>): void {
  const tensors: Record<string, Tensor> = {};
  for (const { pairs, prefix } of groups) {
    for (const p of pairs) {
      tensors[`base_model.model.${prefix}${p.a.name}`] = p.a.value;
      tensors[`base_model.model.${prefix}${p.b.name}`] = p.b.value;
    }
  }
  writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), tensors);
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: o.r,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    target_modules: [...o.targets],
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
  };
  writeFileAtomic(path.join(dir, ADAPTER_CONFIG), [Buffer.from(`${JSON.stringify(config, null, 2)}\n`)]);
}

/**
 * The adapter in `dir`, as weight transforms for ModelFolder.setTransforms (W + (alpha/r)·B·A, by the full
 * weight name); undefined when the folder has none. A malformed adapter is refused, naming what is wrong.
 */
export function adapterTransforms(dir: string): Map<string, (w: Tensor<'f32'>) => Tensor<'f32'>> | undefined {
  const cfgFile = path.join(dir, ADAPTER_CONFIG);
  if (!fs.existsSync(cfgFile)) return undefined;
  const cfg = readJsonFile(cfgFile) as { r?: unknown; lora_alpha?: unknown; peft_type?: unknown };
  if (cfg.peft_type !== 'LORA' || typeof cfg.r !== 'number' || typeof cfg.lora_alpha !== 'number' || !(cfg.r > 0)) {
    throw new TinyEmoError('INVALID_FILE', `${cfgFile}: not a LoRA adapter config (peft_type LORA, r, lora_alpha)`);
  }
  const scale = cfg.lora_alpha / cfg.r;
  const w = WeightFile.open(path.join(dir, ADAPTER_WEIGHTS));
  const out = new Map<string, (t: Tensor<'f32'>) => Tensor<'f32'>>();
  try {
    for (const info of w.tensors) {
      const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(info.name);
      if (!m) continue;
      const bName = `base_model.model.${m[1]}.lora_B.weight`;
      if (!w.tensors.some((t) => t.name === bName)) throw new TinyEmoError('INVALID_FILE', `${dir}: ${info.name} has no ${bName}`);
      const file = path.join(dir, ADAPTER_WEIGHTS);
      out.set(`${m[1]}.weight`, (base) => {
        const f = WeightFile.open(file);
        const a = f.load(info.name, { dtype: 'f32' }) as Tensor<'f32'>;
        const b = f.load(bName, { dtype: 'f32' }) as Tensor<'f32'>;
        f.close();
        try {
          if (b.shape[0] !== base.shape[0] || a.shape[1] !== base.shape[1] || a.shape[0] !== b.shape[1]) {
            throw new TinyEmoError('INVALID_FILE', `${dir}: LoRA factors of ${m[1]} do not fit its [${base.shape.join(', ')}] weight`);
          }
          gemmSync(b, a, { bTrans: true, alpha: scale, out: base, beta: 1 });
          return base;
        } finally {
          a.dispose();
          b.dispose();
        }
      });
    }
  } finally {
    w.close();
  }
  return out;
}
