/** Copies between tensors of one shape (any strides; f32/f16/bf16 convert on the way): filling a KV cache's slots. */
import { TinyEmoError } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectTensor } from './check';
import { Planned, defineOp } from './run';

function plan(src: Tensor, dst: Tensor): Planned<Tensor> {
  expectTensor(src, 'src');
  expectTensor(dst, 'dst');
  if (src.ndim !== dst.ndim || src.shape.some((n, i) => n !== dst.shape[i])) {
    throw new TinyEmoError('SHAPE_MISMATCH', `copy: src [${src.shape.join(', ')}] and dst [${dst.shape.join(', ')}] differ`);
  }
  return { result: dst, owned: [], invoke: (async) => binding().copy(src.handle, dst.handle, async) };
}

const op = defineOp(plan);

/** dst[...] = src[...]; returns dst. */
export const copyInto = op.async;
export const copyIntoSync = op.sync;
export const copyIntoQueued = op.queued;
