/** Gathering rows of an embedding table, and a ViT's patch embedding. */
import { TinyEmoError } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectNdim, expectShape, expectTensor, output } from './check';
import { Planned, defineOp } from './run';

function planEmbedding(table: Tensor, ids: Tensor<'i32' | 'i64'>, opts: { out?: Tensor<'f32'> } = {}): Planned<Tensor<'f32'>> {
  expectTensor(table, 'table');
  expectTensor(ids, 'ids');
  expectDType(table, 'table', ['f32', 'f16', 'bf16']);
  expectDType(ids, 'ids', ['i32', 'i64']);
  expectNdim(table, 'table', 2);
  expectNdim(ids, 'ids', 1);
  const out = output(opts.out, 'out', [ids.shape[0], table.shape[1]], 'f32', table) as Tensor<'f32'>;
  return { result: out, owned: opts.out ? [] : [out], invoke: (async) => binding().embedding(table.handle, ids.handle, out.handle, async) };
}

export interface PatchEmbedOptions {
  bias?: Tensor<'f32'>;
  out?: Tensor<'f32'>;
}

function planPatchEmbed(pixels: Tensor<'f32'>, weight: Tensor, opts: PatchEmbedOptions = {}): Planned<Tensor<'f32'>> {
  expectTensor(pixels, 'pixels');
  expectTensor(weight, 'weight');
  expectDType(pixels, 'pixels', ['f32']);
  expectDType(weight, 'weight', ['f32', 'f16', 'bf16']);
  expectNdim(pixels, 'pixels', 4);
  expectNdim(weight, 'weight', 4);
  const [b, c, h, w] = pixels.shape;
  const [e, wc, p] = weight.shape;
  if (wc !== c || weight.shape[3] !== p || h % p !== 0 || w % p !== 0) {
    throw new TinyEmoError('SHAPE_MISMATCH', `pixels [${pixels.shape.join(', ')}] do not tile into patches of weight [${weight.shape.join(', ')}]`);
  }
  if (opts.bias !== undefined) {
    expectTensor(opts.bias, 'bias');
    expectDType(opts.bias, 'bias', ['f32']);
    expectShape(opts.bias, 'bias', [e]);
  }
  const bias = opts.bias;
  const out = output(opts.out, 'out', [b, (h / p) * (w / p), e], 'f32', pixels) as Tensor<'f32'>;
  return {
    result: out,
    owned: opts.out ? [] : [out],
    invoke: (async) => binding().patchEmbed(pixels.handle, weight.handle, bias?.handle ?? null, out.handle, async),
  };
}

export interface EmbeddingBackwardOptions {
  /** Add into dtable instead of overwriting it (tied input and output embeddings sum their two gradients). */
  accumulate?: boolean;
}

function planEmbeddingBackward(ids: Tensor<'i32' | 'i64'>, dy: Tensor<'f32'>, dtable: Tensor<'f32'>, opts: EmbeddingBackwardOptions = {}): Planned<Tensor<'f32'>> {
  expectTensor(ids, 'ids');
  expectTensor(dy, 'dy');
  expectTensor(dtable, 'dtable');
  return { result: dtable, owned: [], invoke: (async) => binding().embeddingBackward(ids.handle, dy.handle, dtable.handle, opts.accumulate === true, async) };
}

const embeddingOp = defineOp(planEmbedding);
const embeddingBackwardOp = defineOp(planEmbeddingBackward);
const patchEmbedOp = defineOp(planPatchEmbed);

/** out[n] = table[ids[n]] as f32; every id is checked against the table. */
export const embedding = embeddingOp.async;
export const embeddingSync = embeddingOp.sync;
export const embeddingQueued = embeddingOp.queued;
/** Conv2d(kernel = stride = P) over pixels [B, C, H, W] -> [B, patches, E]. */
export const patchEmbed = patchEmbedOp.async;
export const patchEmbedSync = patchEmbedOp.sync;
/**
 * The embedding's backward: dtable[ids[i]] += dy[i] for ids >= 0 (negative ids, the image positions, are
 * skipped); dtable is zeroed first unless `accumulate`. Deterministic whatever the thread count.
 */
export const embeddingBackward = embeddingBackwardOp.async;
export const embeddingBackwardSync = embeddingBackwardOp.sync;
