/**
 * The benchmark cases: the same work on both sides, with stable names.
 * Each case builds its tinyemo inputs once and returns the call to time;
 * bench/torch_worker.py builds the PyTorch side from the same params.
 */
import {
  PackedWeight,
  Tensor,
  adamwStepSync,
  attentionSync,
  cosineTopkSync,
  gemmSync,
  l2NormalizeSync,
  metricLossSync,
  projectionBackwardSync,
  projectionForwardSync,
  projectionForwardTrainSync,
} from '../lib';
import type { ProjectionWeights } from '../lib';
import { decodeCase, prefillCase } from './decode_case';
import { bf16Unavailable } from './precision';
import { trainRunCase } from './train_case';
import { featuresCase, imageLabelCase, vitCase } from './vit_case';

export type Params = Record<string, number | boolean>;

export interface BenchCase {
  name: string;
  /** The torch_worker.py setup this case uses. */
  kind: 'gemm' | 'projection' | 'train_step' | 'loss' | 'topk' | 'attention' | 'vit' | 'decode' | 'prefill' | 'image_label' | 'features' | 'train_run';
  params: Params;
  flops?: number;
  bytes?: number;
  /** Evict the caches before every timed call (weights cold). */
  cold?: boolean;
  /** Sleep this long before every timed call: a call arriving at an idle process, its thread pool asleep. */
  idleMs?: number;
  /** Left out of --quick runs. */
  slow?: boolean;
  /** Seconds per call: time one call per batch at least (default three). */
  heavy?: boolean;
  /** Why the case cannot run on this machine (left out, saying so), or undefined when it can. */
  unavailable?: () => string | undefined;
  setup(): Instance | Promise<Instance>;
}

export interface Instance {
  run: () => void | Promise<void>;
  /** Values the PyTorch side needs that exist only once set up (a data folder), added to the case's params. */
  torchParams?: Record<string, string | number>;
  dispose: () => void;
}

export function rand(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = 0x9e3779b9;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

function tensor(shape: number[], scale = 1): Tensor<'f32'> {
  return Tensor.from(
    rand(
      shape.reduce((a, b) => a * b, 1),
      scale,
    ),
    shape,
  );
}

function projector(inp: number, hidden: number): ProjectionWeights {
  return {
    w1: tensor([hidden, inp], 1 / Math.sqrt(inp)),
    b1: tensor([hidden], 0.1),
    bnWeight: Tensor.from(new Float32Array(hidden).fill(1)),
    bnBias: tensor([hidden], 0.1),
    runningMean: tensor([hidden], 0.1),
    runningVar: Tensor.from(new Float32Array(hidden).fill(1)),
    w2: tensor([hidden, hidden], 1 / Math.sqrt(hidden)),
    b2: tensor([hidden], 0.1),
  };
}

function disposeAll(...ts: Array<Tensor | Tensor[] | ProjectionWeights>): void {
  for (const t of ts) {
    if (t instanceof Tensor) t.dispose();
    else if (Array.isArray(t)) t.forEach((x) => x.dispose());
    else Object.values(t).forEach((x) => x instanceof Tensor && x.dispose());
  }
}

function gemmCase(M: number, N: number, K: number, { slow = false, idleMs }: { slow?: boolean; idleMs?: number } = {}): BenchCase {
  return {
    name: `gemm_${M}x${N}x${K}${idleMs ? `_idle${idleMs}ms` : ''}`,
    kind: 'gemm',
    params: { M, N, K },
    flops: 2 * M * N * K,
    bytes: M === 1 ? 4 * N * K : undefined,
    slow,
    idleMs,
    setup() {
      const a = tensor([M, K]);
      const w = tensor([N, K]);
      const out = Tensor.empty([M, N]);
      return { run: () => void gemmSync(a, w, { out }), dispose: () => disposeAll(a, w, out) };
    },
  };
}

/** A product in bf16 against a weight packed once (the towers' --precision bf16); PyTorch's F.linear in bf16. */
function gemmBf16Case(M: number, N: number, K: number): BenchCase {
  return {
    name: `gemm_${M}x${N}x${K}_bf16`,
    kind: 'gemm',
    params: { M, N, K, bf16: true },
    flops: 2 * M * N * K,
    unavailable: bf16Unavailable,
    setup() {
      const a = tensor([M, K]);
      const w = tensor([N, K]);
      const p = PackedWeight.pack(w, 'bf16');
      const out = Tensor.empty([M, N]);
      return { run: () => void gemmSync(a, p, { out }), dispose: () => disposeAll(a, w, p.packed, out) };
    },
  };
}

function projectionCase(B: number, cold = false, slow = false): BenchCase {
  const [IN, H] = [768, 1280];
  return {
    name: `projection_b${B}${B === 1 ? (cold ? '_cold' : '_warm') : ''}`,
    kind: 'projection',
    params: { B, in: IN, hidden: H },
    flops: 2 * B * (IN * H + H * H),
    bytes: B === 1 ? 4 * (IN * H + H * H) : undefined,
    cold,
    slow,
    setup() {
      const w = projector(IN, H);
      const x = tensor([B, IN]);
      const out = Tensor.empty([B, H]);
      return { run: () => void projectionForwardSync(x, w, { out }), dispose: () => disposeAll(w, x, out) };
    },
  };
}

function trainStepCase(B: number): BenchCase {
  const [IN, H] = [768, 1280];
  return {
    name: `train_step_b${B}`,
    kind: 'train_step',
    params: { B, in: IN, hidden: H, dropout: 0.2 },
    // Forward, then backward's two products per Linear.
    flops: 6 * B * (IN * H + H * H),
    setup() {
      const w = projector(IN, H);
      const x = tensor([B, IN]);
      const r = tensor([B, H]);
      const params = [w.w1, w.b1, w.bnWeight, w.bnBias, w.w2, w.b2] as Tensor<'f32'>[];
      const m = params.map((p) => Tensor.zeros(p.shape));
      const v = params.map((p) => Tensor.zeros(p.shape));
      let step = 0;
      const run = () => {
        step += 1;
        const dropout = { p: 0.2, seed: step };
        const { y, saved } = projectionForwardTrainSync(x, w, { dropout });
        const { grads } = projectionBackwardSync(r, x, w, saved, { dropout });
        const g = [grads.w1, grads.b1, grads.bnWeight, grads.bnBias, grads.w2, grads.b2];
        adamwStepSync({ params, grads: g, expAvg: m, expAvgSq: v }, { lr: 1e-3, weightDecay: 0.01, step });
        disposeAll(y, saved.z1, saved.mean, saved.rstd, g);
      };
      return { run, dispose: () => disposeAll(w, x, r, m, v) };
    },
  };
}

/** The training loss with its gradient, against bench/torch_losses.py with autograd on the torch side. */
function lossCase(loss: 'infonce' | 'ntxent', B: number, C: number): BenchCase {
  const H = 1280;
  const tau = loss === 'infonce' ? 0.1 : 0.07;
  return {
    name: `loss_${loss}_b${B}_c${C}`,
    kind: 'loss',
    params: { B, C, H, ntxent: loss === 'ntxent', tau },
    setup() {
      const raw = tensor([C, H]);
      const labels = l2NormalizeSync(raw);
      raw.dispose();
      const y = tensor([B, H]);
      const targets = Tensor.fromArray(
        'i32',
        Int32Array.from({ length: B }, (_, i) => (i * 7) % C),
        [B],
      );
      const grad = Tensor.empty([B, H]);
      return {
        run: () => {
          const r = metricLossSync(loss, y, targets, labels, { tau, grad });
          r.loss.dispose();
        },
        dispose: () => disposeAll(labels, y, targets, grad),
      };
    },
  };
}

function topkCase(B: number, C: number, slow = false): BenchCase {
  const H = 1280;
  return {
    name: `topk5_b${B}_c${C}`,
    kind: 'topk',
    params: { B, C, H, k: 5 },
    flops: 2 * B * C * H,
    bytes: B === 1 ? 4 * C * H : undefined,
    slow,
    setup() {
      const raw = tensor([C, H]);
      const table = l2NormalizeSync(raw);
      raw.dispose();
      const q = tensor([B, H]);
      return {
        run: () => {
          const r = cosineTopkSync(q, table, 5, { tableNormalized: true });
          disposeAll(r.scores, r.indices);
        },
        dispose: () => disposeAll(table, q),
      };
    },
  };
}

function attentionCase(name: string, B: number, Sq: number, Skv: number, Hq: number, Hkv: number, D: number, causal: boolean, slow = false): BenchCase {
  const pairs = causal && Sq === Skv ? (Sq * (Sq + 1)) / 2 : Sq * Skv;
  return {
    name,
    kind: 'attention',
    params: { B, Sq, Skv, Hq, Hkv, D, causal },
    flops: 4 * B * Hq * pairs * D,
    bytes: Sq === 1 ? 2 * 4 * B * Skv * Hkv * D : undefined,
    slow,
    setup() {
      const q = tensor([B, Sq, Hq, D]);
      const k = tensor([B, Skv, Hkv, D]);
      const v = tensor([B, Skv, Hkv, D]);
      const out = Tensor.empty([B, Sq, Hq, D]);
      return { run: () => void attentionSync(q, k, v, { causal, out }), dispose: () => disposeAll(q, k, v, out) };
    },
  };
}

export const CASES: readonly BenchCase[] = [
  gemmCase(1024, 1024, 1024),
  gemmBf16Case(1024, 1024, 1024),
  gemmCase(1, 1280, 768),
  gemmCase(1, 1280, 768, { idleMs: 2 }),
  gemmCase(32, 1280, 768),
  gemmCase(4096, 1280, 768, { slow: true }),
  projectionCase(1),
  projectionCase(1, true),
  projectionCase(32),
  projectionCase(1024),
  projectionCase(4096, false, true),
  trainStepCase(32),
  lossCase('infonce', 32, 6),
  lossCase('ntxent', 1024, 27),
  topkCase(1, 6),
  topkCase(1, 32000),
  topkCase(1024, 6),
  topkCase(1024, 32000, true),
  attentionCase('attention_vit_b1', 1, 257, 257, 16, 16, 64, false),
  attentionCase('attention_vit_b8', 8, 257, 257, 16, 16, 64, false, true),
  attentionCase('attention_causal_512', 1, 512, 512, 20, 20, 64, true),
  attentionCase('attention_decode_kv512', 1, 1, 512, 20, 5, 64, true),
  vitCase(1),
  vitCase(8, true),
  vitCase(1, false, 'bf16'),
  vitCase(8, true, 'bf16'),
  imageLabelCase(),
  imageLabelCase('bf16'),
  featuresCase(),
  decodeCase('f32'),
  decodeCase('f16'),
  prefillCase(512),
  trainRunCase(),
];
