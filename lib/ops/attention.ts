/** Scaled dot-product attention: full (ViT), causal, grouped-query, and decode against a KV cache. */
import { TinyEmoError } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectNdim, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

export interface AttentionOptions {
  /** Default 1 / sqrt(D). */
  scale?: number;
  /** Query i sees keys j <= i + (Skv - Sq): prefill when Sq = Skv, decode against a cache otherwise. */
  causal?: boolean;
  out?: Tensor<'f32'>;
}

/** Checks q, k, v; returns the head size and whether it is causal. */
function checkQkv(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, causal: boolean): number {
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    expectTensor(t, name);
    expectDType(t, name, ['f32']);
    expectNdim(t, name, 4);
  }
  const [B, Sq, Hq, D] = q.shape;
  const [Bk, Skv, Hkv, Dk] = k.shape;
  if (Bk !== B || Dk !== D || v.shape.some((n, i) => n !== k.shape[i]) || Hkv === 0 || Hq % Hkv !== 0) {
    throw new TinyEmoError(
      'SHAPE_MISMATCH',
      `q [${q.shape.join(', ')}], k [${k.shape.join(', ')}], v [${v.shape.join(', ')}] do not fit [B,Sq,Hq,D] / [B,Skv,Hkv,D] with Hq a multiple of Hkv`,
    );
  }
  if (causal && Sq > Skv) throw new TinyEmoError('SHAPE_MISMATCH', `causal attention needs Sq (${Sq}) <= Skv (${Skv})`);
  return D;
}

function plan(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, opts: AttentionOptions = {}): Planned<Tensor<'f32'>> {
  const causal = opts.causal ?? false;
  const D = checkQkv(q, k, v, causal);
  const scale = finiteNumber(opts.scale ?? 1 / Math.sqrt(D), 'scale');
  const out = output(opts.out, 'out', q.shape, 'f32', q) as Tensor<'f32'>;
  return {
    result: out,
    owned: opts.out ? [] : [out],
    invoke: (async) => binding().attention(q.handle, k.handle, v.handle, out.handle, scale, causal, async),
  };
}

export interface AttentionGrads {
  dq: Tensor<'f32'>;
  dk: Tensor<'f32'>;
  dv: Tensor<'f32'>;
}

export interface AttentionBackwardOptions extends Omit<AttentionOptions, 'out'> {
  /** Where the gradients go (each allocated when absent); overwritten. */
  grads?: Partial<AttentionGrads>;
}

function planBackward(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, out: Tensor<'f32'>, dout: Tensor<'f32'>, opts: AttentionBackwardOptions = {}): Planned<AttentionGrads> {
  const causal = opts.causal ?? false;
  const D = checkQkv(q, k, v, causal);
  expectTensor(out, 'out');
  expectTensor(dout, 'dout');
  const scale = finiteNumber(opts.scale ?? 1 / Math.sqrt(D), 'scale');
  const g = opts.grads ?? {};
  const owned: Tensor[] = [];
  const grad = (t: Tensor<'f32'> | undefined, name: string, like: Tensor<'f32'>) => {
    const r = output(t, name, like.shape, 'f32', like) as Tensor<'f32'>;
    if (!t) owned.push(r);
    return r;
  };
  const dq = grad(g.dq, 'dq', q);
  const dk = grad(g.dk, 'dk', k);
  const dv = grad(g.dv, 'dv', v);
  return {
    result: { dq, dk, dv },
    owned,
    invoke: (async) => binding().attentionBackward(q.handle, k.handle, v.handle, out.handle, dout.handle, dq.handle, dk.handle, dv.handle, scale, causal, async),
  };
}

const op = defineOp(plan);
const backwardOp = defineOp(planBackward);

/** softmax(q k^T * scale) v for q [B,Sq,Hq,D], k and v [B,Skv,Hkv,D] (views with any strides but the last). */
export const attention = op.async;
export const attentionSync = op.sync;
/** The same, queued on an OpBatch (computed when the batch runs). */
export const attentionQueued = op.queued;
/**
 * The backward of attention from q, k, v, its output `out` and dL/dout: dq, dk, dv. Flash-style (no S×S matrix;
 * each row's log-sum-exp recomputed once), with dk and dv summed in a fixed order whatever the thread count.
 */
export const attentionBackward = backwardOp.async;
export const attentionBackwardSync = backwardOp.sync;
