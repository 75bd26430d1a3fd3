/**
 * LLaMA-family decoders against a float64 forward written from the
 * equations in PyTorch (scripts/fixtures/decoders.py): LLaMA with grouped
 * query attention and an untied head, Qwen2 with q/k/v biases, a large rope
 * base and tied embeddings. Logits with and without the KV cache, in one
 * pass or piece by piece, and greedy continuations. OpenELM with per-layer
 * head counts and FFN widths, q/k norms and a fused qkv projection; Phi-2
 * with its parallel block, partial rotary, gelu-tanh and biases.
 */
import * as path from 'path';

import { hostBytesInUse } from '../lib/backend';
import { DecoderLM } from '../lib/models/llm/decoder';
import { PackedWeight } from '../lib/ops/gemm';
import { relError } from './helpers/compare';
import { readNpyFixture } from './helpers/npy_fixture';

const FIX = path.join(__dirname, 'fixtures', 'decoders');

const npy = (name: string) => readNpyFixture(path.join(FIX, 'expected', `${name}.npy`)).data;

describe.each(['llama', 'qwen2', 'openelm', 'phi'])('%s', (name) => {
  test('prompt logits in one pass match the reference to 1e-4', async () => {
    const m = DecoderLM.load(path.join(FIX, name));
    const prompt = Array.from(npy(`${name}.prompt`));
    const want = npy(`${name}.logits`);
    const cache = m.newCache(64);
    const got = await m.forward(prompt, cache, { allLogits: true });
    expect(got.length).toBe(want.length);
    expect(relError(got, want)).toBeLessThan(1e-4);
    expect(cache.length).toBe(prompt.length);
    cache.dispose();
    m.dispose();
  });

  test('with the KV cache, piece by piece (4 tokens, then 3, then one at a time), the same logits', async () => {
    const m = DecoderLM.load(path.join(FIX, name));
    const prompt = Array.from(npy(`${name}.prompt`));
    const want = npy(`${name}.logits`);
    const V = m.config.vocab;
    const cache = m.newCache(32);
    const rows: Float32Array[] = [];
    const first = await m.forward(prompt.slice(0, 4), cache, { allLogits: true });
    for (let i = 0; i < 4; ++i) rows.push(first.subarray(i * V, (i + 1) * V));
    const second = await m.forward(prompt.slice(4, 7), cache, { allLogits: true });
    for (let i = 0; i < 3; ++i) rows.push(second.subarray(i * V, (i + 1) * V));
    for (let i = 7; i < prompt.length; ++i) rows.push(await m.forward([prompt[i]], cache));
    rows.forEach((r, i) => expect(relError(r, want.subarray(i * V, (i + 1) * V))).toBeLessThan(1e-4));
    cache.dispose();
    m.dispose();
  });

  test('two one-token streams interleaved on one model (as a server runs them) each get the reference logits', async () => {
    // One-token steps share the model's workspace; a step that starts while another is between its ops must
    // not write into it.
    const m = DecoderLM.load(path.join(FIX, name));
    const prompt = Array.from(npy(`${name}.prompt`));
    const want = npy(`${name}.logits`);
    const V = m.config.vocab;
    const caches = [m.newCache(32), m.newCache(32)];
    for (let i = 0; i < prompt.length; ++i) {
      const [a, b] = await Promise.all(caches.map((c) => m.forward([prompt[i]], c)));
      expect(relError(a, want.subarray(i * V, (i + 1) * V))).toBeLessThan(1e-4);
      expect(Array.from(b)).toEqual(Array.from(a));
    }
    caches.forEach((c) => c.dispose());
    m.dispose();
  });

  test('greedy continuation equals the reference wherever its top two logits differ by more than 1e-3', async () => {
    const m = DecoderLM.load(path.join(FIX, name));
    const prompt = Array.from(npy(`${name}.prompt`));
    const greedy = Array.from(npy(`${name}.greedy`));
    const margins = Array.from(npy(`${name}.margins`));
    const cache = m.newCache(64);
    let logits = await m.forward(prompt, cache);
    for (let i = 0; i < greedy.length; ++i) {
      let best = 0;
      for (let t = 1; t < logits.length; ++t) if (logits[t] > logits[best]) best = t;
      if (margins[i] > 1e-3) expect(best).toBe(greedy[i]);
      else break;
      logits = await m.forward([greedy[i]], cache);
    }
    cache.dispose();
    m.dispose();
  });
});

test('config and refusals: GQA and tied heads read right; bad ids, a full cache, disposed models', async () => {
  const m = DecoderLM.load(path.join(FIX, 'llama'));
  expect(m.config).toMatchObject({ family: 'llama', heads: 4, kvHeads: 2, headDim: 16, tied: false, eos: [2], bos: 1 });
  const q = DecoderLM.load(path.join(FIX, 'qwen2'));
  expect(q.config).toMatchObject({ family: 'qwen2', kvHeads: 1, tied: true, ropeTheta: 1e6 });
  const e = DecoderLM.load(path.join(FIX, 'openelm'));
  expect(e.config).toMatchObject({ family: 'openelm', layerHeads: [2, 3, 4], layerKvHeads: [1, 1, 2], layerIntermediate: [32, 64, 80], qkNorm: true, tied: true, headDim: 16 });
  const ec = e.newCache(8);
  expect(ec.k.map((t) => t.shape[2])).toEqual([1, 1, 2]);
  ec.dispose();
  e.dispose();
  const phi = DecoderLM.load(path.join(FIX, 'phi'));
  expect(phi.config).toMatchObject({ family: 'phi', headDim: 40, rotaryDim: 16, eps: 1e-5, tied: false });
  phi.dispose();
  const cache = m.newCache(4);
  await expect(m.forward([500], cache)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  await expect(m.forward([1, 2, 3, 4, 5], cache)).rejects.toThrow(/holds 4 positions; 0 used, 5 more asked/);
  await expect(q.forward([1], cache)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
  cache.dispose();
  await expect(m.forward([1], cache)).rejects.toMatchObject({ code: 'DISPOSED' });
  const fresh = m.newCache(2);
  m.dispose();
  q.dispose();
  await expect(m.forward([1], fresh)).rejects.toMatchObject({ code: 'DISPOSED' });
  fresh.dispose();
});

test.each(['openelm', 'phi'])("%s: the blocks' f32 weights are packed as they load (unless told not to), with the same logits", async (name) => {
  const prompt = Array.from(npy(`${name}.prompt`));
  const want = npy(`${name}.logits`);
  const V = want.length / prompt.length;
  const layers = (m: DecoderLM) => (m as unknown as { w: { layers: Array<Record<'qkv' | 'o' | 'gateUp' | 'down', { weight: unknown }>> } }).w.layers;
  const packed = DecoderLM.load(path.join(FIX, name));
  const plain = DecoderLM.load(path.join(FIX, name), { packWeights: false });
  const kinds = (m: DecoderLM) => layers(m).flatMap((L) => [L.qkv, L.o, L.gateUp, L.down].map((l) => l.weight instanceof PackedWeight));
  expect(kinds(packed).every(Boolean)).toBe(true);
  expect(kinds(plain).some(Boolean)).toBe(false);
  for (const m of [packed, plain]) {
    // The prompt in one pass (the blocked products), then its last token again one step at a time (one-row products).
    const cache = m.newCache(32);
    const all = await m.forward(prompt.slice(0, -1), cache, { allLogits: true });
    const last = await m.forward(prompt.slice(-1), cache);
    expect(relError(all, want.subarray(0, all.length))).toBeLessThan(1e-4);
    expect(relError(last, want.subarray(want.length - V))).toBeLessThan(1e-4);
    cache.dispose();
  }
  packed.dispose();
  plain.dispose();
});

test("the KV cache keeps each head's keys and values as one contiguous run, seen as [1, capacity, kvHeads, D]", async () => {
  const m = DecoderLM.load(path.join(FIX, 'openelm'));
  const cache = m.newCache(10);
  const D = m.config.headDim;
  cache.k.forEach((k, l) => {
    const kv = m.config.layerKvHeads[l];
    expect(k.shape).toEqual([1, 10, kv, D]);
    expect(k.strides).toEqual([kv * 10 * D, D, 10 * D, 1]);
    expect(cache.v[l].strides).toEqual(k.strides);
  });
  cache.dispose();
  m.dispose();
});

test('16-bit weights stay 16-bit and give the f32 logits to 16-bit precision', async () => {
  const want = npy('llama.logits');
  const prompt = Array.from(npy('llama.prompt'));
  for (const dtype of ['f16', 'bf16'] as const) {
    const m = DecoderLM.load(path.join(FIX, 'llama'), { dtype });
    const cache = m.newCache(32);
    const got = await m.forward(prompt, cache, { allLogits: true });
    expect(relError(got, want)).toBeLessThan(dtype === 'f16' ? 5e-3 : 4e-2);
    expect(relError(got, want)).toBeGreaterThan(0);
    cache.dispose();
    m.dispose();
  }
});

test.each(['llama', 'phi'])('%s: an op that fails mid-layer frees every intermediate (scoped disposal), and the model still runs', async (name) => {
  const m = DecoderLM.load(path.join(FIX, name));
  const prompt = Array.from(npy(`${name}.prompt`));
  const want = npy(`${name}.logits`);
  const cache = m.newCache(64);
  const before = hostBytesInUse();
  // Layer 1's key cache gone: its copy fails after layer 0 and part of layer 1 ran.
  cache.k[1].dispose();
  await expect(m.forward(prompt, cache, { allLogits: true })).rejects.toMatchObject({ code: 'DISPOSED' });
  expect(hostBytesInUse()).toBe(before - cache.k[0].size * 4);
  cache.dispose();
  const fresh = m.newCache(64);
  expect(relError(await m.forward(prompt, fresh, { allLogits: true }), want)).toBeLessThan(1e-4);
  fresh.dispose();
  m.dispose();
});
