/** Cosine-metric lookup: L2-normalise, full cosine matrices, streaming top-k. */
import { TinyEmoError, invalid } from '../errors';
import { binding } from '../native';
import { Tensor } from '../tensor';
import { expectDType, expectNdim, expectTensor, finiteNumber, output } from './check';
import { Planned, defineOp } from './run';

function planL2Normalize(x: Tensor<'f32'>, opts: { eps?: number; out?: Tensor<'f32'> } = {}): Planned<Tensor<'f32'>> {
  expectTensor(x, 'x');
  expectDType(x, 'x', ['f32']);
  const eps = finiteNumber(opts.eps ?? 1e-12, 'eps');
  const y = output(opts.out, 'out', x.shape, 'f32', x) as Tensor<'f32'>;
  return { result: y, owned: opts.out ? [] : [y], invoke: (async) => binding().l2Normalize(x.handle, eps, y.handle, async) };
}

function checkPair(q: Tensor, table: Tensor): void {
  expectTensor(q, 'queries');
  expectTensor(table, 'table');
  expectDType(q, 'queries', ['f32']);
  expectDType(table, 'table', ['f32', 'f16', 'bf16']);
  expectNdim(q, 'queries', 2);
  expectNdim(table, 'table', 2);
  if (table.shape[1] !== q.shape[1]) {
    throw new TinyEmoError('SHAPE_MISMATCH', `table rows have ${table.shape[1]} values, queries ${q.shape[1]}`);
  }
}

function planCosine(q: Tensor<'f32'>, table: Tensor, opts: { out?: Tensor<'f32'> } = {}): Planned<Tensor<'f32'>> {
  checkPair(q, table);
  const out = output(opts.out, 'out', [q.shape[0], table.shape[0]], 'f32', q) as Tensor<'f32'>;
  return { result: out, owned: opts.out ? [] : [out], invoke: (async) => binding().cosine(q.handle, table.handle, out.handle, async) };
}

export interface TopK {
  /** [B, k] cosines, best first. */
  scores: Tensor<'f32'>;
  /** [B, k] row indices into the table. */
  indices: Tensor<'i32'>;
}

export interface CosineTopkOptions {
  /** Promise that the table's rows have unit norm (skips computing them). */
  tableNormalized?: boolean;
}

function planTopk(q: Tensor<'f32'>, table: Tensor, k: number, opts: CosineTopkOptions = {}): Planned<TopK> {
  checkPair(q, table);
  if (!Number.isInteger(k) || k < 1 || k > table.shape[0]) throw invalid(`k = ${k} must be in 1..${table.shape[0]}`);
  const scores = Tensor.empty([q.shape[0], k], 'f32', q.device);
  const indices = Tensor.empty([q.shape[0], k], 'i32', q.device);
  const normalized = opts.tableNormalized ?? false;
  return {
    result: { scores, indices },
    owned: [scores, indices],
    invoke: (async) => binding().cosineTopk(q.handle, table.handle, normalized, k, scores.handle, indices.handle, async),
  };
}

const l2Op = defineOp(planL2Normalize);
const cosineOp = defineOp(planCosine);
const topkOp = defineOp(planTopk);

/** x / max(||x||, eps) over the last dimension. */
export const l2Normalize = l2Op.async;
export const l2NormalizeSync = l2Op.sync;
/** The [B, C] cosine matrix of queries [B, H] against table [C, H] (f32/f16/bf16). */
export const cosine = cosineOp.async;
export const cosineSync = cosineOp.sync;
/** The k most similar table rows per query (ties: lower index), without a B x C matrix. */
export const cosineTopk = topkOp.async;
export const cosineTopkSync = topkOp.sync;
