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

function plan(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, opts: AttentionOptions = {}): Planned<Tensor<'f32'>> {
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
  const causal = opts.causal ?? false;
  if (causal && Sq > Skv) throw new TinyEmoError('SHAPE_MISMATCH', `causal attention needs Sq (${Sq}) <= Skv (${Skv})`);
  const scale = finiteNumber(opts.scale ?? 1 / Math.sqrt(D), 'scale');
  const out = output(opts.out, 'out', q.shape, 'f32', q) as Tensor<'f32'>;
  return {
    result: out,
    owned: opts.out ? [] : [out],
    invoke: (async) => binding().attention(q.handle, k.handle, v.handle, out.handle, scale, causal, async),
  };
}

const op = defineOp(plan);

/** softmax(q k^T * scale) v for q [B,Sq,Hq,D], k and v [B,Skv,Hkv,D] (views with any strides but the last). */
export const attention = op.async;
export const attentionSync = op.sync;
