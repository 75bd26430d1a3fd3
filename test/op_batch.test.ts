/** OpBatch: ops queued and run in order as one native job give exactly what the same ops awaited one by one give. */
import { OpBatch, Tensor, attention, attentionQueued, gemm, gemmQueued, layerNorm, layerNormQueued } from '../lib';
import { NativeOpBatchHandle, binding } from '../lib/native';
import { Rng } from './helpers/random';

const rng = new Rng(29);

interface Block {
  x: Tensor<'f32'>;
  w: Tensor<'f32'>;
  b: Tensor<'f32'>;
  gamma: Tensor<'f32'>;
  beta: Tensor<'f32'>;
}

// A pre-LN attention block of odd sizes: LN, the q/k/v product, attention, the output product added into x.
const S = 13;
const H = 3;
const D = 5;
const E = H * D;

function block(): Block {
  return {
    x: Tensor.from(rng.floats(S * E, 1), [S, E]),
    w: Tensor.from(rng.floats(3 * E * E, 0.3), [3 * E, E]),
    b: Tensor.from(rng.floats(3 * E, 0.1), [3 * E]),
    gamma: Tensor.from(
      rng.floats(E, 0.2).map((v) => v + 1),
      [E],
    ),
    beta: Tensor.from(rng.floats(E, 0.1), [E]),
  };
}

function heads(qkv: Tensor<'f32'>): Tensor<'f32'>[] {
  const h = qkv.reshape([1, S, 3, H, D]);
  return [0, 1, 2].map((i) => h.select(2, i));
}

async function oneByOne(p: Block): Promise<Float32Array> {
  const x = Tensor.from(p.x.toArray(), [S, E]);
  const n = await layerNorm(x, { weight: p.gamma, bias: p.beta });
  const qkv = await gemm(n, p.w, { bias: p.b });
  const [q, k, v] = heads(qkv);
  const o = await attention(q, k, v);
  await gemm(o.reshape([S, E]), p.w.narrow(0, 0, E), { out: x, beta: 1 });
  return x.toArray() as Float32Array;
}

function queueBlock(batch: OpBatch, p: Block, x: Tensor<'f32'>): void {
  const n = layerNormQueued(batch, x, { weight: p.gamma, bias: p.beta });
  const qkv = gemmQueued(batch, n, p.w, { bias: p.b });
  const [q, k, v] = heads(qkv);
  const o = attentionQueued(batch, q, k, v);
  gemmQueued(batch, o.reshape([S, E]), p.w.narrow(0, 0, E), { out: x, beta: 1 });
  // Handles may go before the batch runs: the queued ops hold their memory.
  for (const t of [n, qkv, q, k, v, o]) t.dispose();
}

test('queued ops run in order when the batch runs, bit for bit what awaiting each op gives', async () => {
  const p = block();
  const expected = await oneByOne(p);
  const x = Tensor.from(p.x.toArray(), [S, E]);
  const batch = new OpBatch();
  queueBlock(batch, p, x);
  expect(batch.size).toBe(4);
  expect(x.toArray()).toEqual(p.x.toArray()); // nothing ran yet
  await batch.run();
  expect(batch.size).toBe(0);
  expect(x.toArray()).toEqual(expected);

  // The batch is reusable, and runs on the calling thread too.
  const y = Tensor.from(p.x.toArray(), [S, E]);
  queueBlock(batch, p, y);
  batch.runSync();
  expect(y.toArray()).toEqual(expected);
});

test('a bad argument throws as the op is queued, and queues nothing', () => {
  const p = block();
  const batch = new OpBatch();
  layerNormQueued(batch, p.x, { weight: p.gamma });
  expect(() => gemmQueued(batch, p.x, Tensor.zeros([4, E + 1], 'f32'))).toThrow(/disagree on K/);
  expect(() => layerNormQueued(batch, p.x, { weight: p.b })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  expect(batch.size).toBe(1);
  batch.clear();
  expect(batch.size).toBe(0);
});

test('a failure while running stops the batch, names the op, and disposes what the queued ops allocated', async () => {
  for (const run of [(b: OpBatch) => b.run(), async (b: OpBatch) => b.runSync()]) {
    const p = block();
    const batch = new OpBatch();
    const first = layerNormQueued(batch, p.x);
    // A call the TypeScript checks would refuse, sent straight to the binding, so that it fails as it runs.
    const wrong = Tensor.zeros([S, E + 1], 'f32');
    const native = (batch as unknown as { native: NativeOpBatchHandle }).native;
    binding().layerNorm(p.x.handle, null, null, 1e-5, wrong.handle, native);
    const after = Tensor.zeros([S, E], 'f32');
    layerNormQueued(batch, p.x, { out: after });
    await expect(run(batch)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH', message: expect.stringMatching(/^queued op 2 of 3: /) });
    expect(first.disposed).toBe(true); // allocated by a queued op of the failed batch
    expect(Array.from(after.toArray()).every((v) => v === 0)).toBe(true); // the op after the failure never ran
    expect(batch.size).toBe(0);
  }
});

test('the last argument of a raw op must be a boolean or an OpBatch', () => {
  const x = Tensor.from([1, 2, 3], [1, 3]);
  const b = binding() as unknown as Record<string, (...args: unknown[]) => unknown>;
  expect(() => b.layerNorm(x.handle, null, null, 1e-5, x.handle, {})).toThrow(/async must be a boolean or an OpBatch/);
  expect(() => b.layerNorm(x.handle, null, null, 1e-5, x.handle, x.handle)).toThrow(/async must be a boolean or an OpBatch/);
});
