import { Tensor, attention, attentionSync, backendInfo, setThreads } from '../lib';
import { forEachIsa, poisoned, relError } from './helpers/compare';
import { Rng } from './helpers/random';

const rng = new Rng(31);

interface Case {
  B: number;
  Sq: number;
  Skv: number;
  Hq: number;
  Hkv: number;
  D: number;
  causal: boolean;
}

/** softmax(q k^T * scale) v in double, head by head, with bottom-right causal alignment. */
function refAttention(c: Case, q: Float32Array, k: Float32Array, v: Float32Array, scale: number): Float64Array {
  const out = new Float64Array(c.B * c.Sq * c.Hq * c.D);
  const G = c.Hq / c.Hkv;
  for (let b = 0; b < c.B; ++b)
    for (let h = 0; h < c.Hq; ++h) {
      const hk = Math.floor(h / G);
      for (let i = 0; i < c.Sq; ++i) {
        const n = c.causal ? Math.min(c.Skv, i + 1 + c.Skv - c.Sq) : c.Skv;
        const s = new Float64Array(n);
        for (let j = 0; j < n; ++j) {
          let d = 0;
          for (let e = 0; e < c.D; ++e) d += q[((b * c.Sq + i) * c.Hq + h) * c.D + e] * k[((b * c.Skv + j) * c.Hkv + hk) * c.D + e];
          s[j] = d * scale;
        }
        const m = Math.max(...s);
        let sum = 0;
        for (let j = 0; j < n; ++j) sum += s[j] = Math.exp(s[j] - m);
        for (let e = 0; e < c.D; ++e) {
          let acc = 0;
          for (let j = 0; j < n; ++j) acc += s[j] * v[((b * c.Skv + j) * c.Hkv + hk) * c.D + e];
          out[((b * c.Sq + i) * c.Hq + h) * c.D + e] = acc / sum;
        }
      }
    }
  return out;
}

const cases: Array<[string, Case]> = [
  ['ViT-like, 257 tokens', { B: 1, Sq: 257, Skv: 257, Hq: 3, Hkv: 3, D: 64, causal: false }],
  ['batch 2, odd sizes, D=72', { B: 2, Sq: 33, Skv: 33, Hq: 2, Hkv: 2, D: 72, causal: false }],
  ['causal prefill, D=80, longer than a key block', { B: 1, Sq: 300, Skv: 300, Hq: 2, Hkv: 2, D: 80, causal: true }],
  ['grouped-query causal prefill', { B: 2, Sq: 50, Skv: 50, Hq: 8, Hkv: 2, D: 64, causal: true }],
  ['decode against a cache (1 query)', { B: 2, Sq: 1, Skv: 513, Hq: 4, Hkv: 1, D: 64, causal: true }],
  ['a few queries continuing a cache', { B: 1, Sq: 3, Skv: 40, Hq: 4, Hkv: 2, D: 72, causal: true }],
  ['chunked prefill continuing a cache', { B: 1, Sq: 20, Skv: 70, Hq: 2, Hkv: 1, D: 64, causal: true }],
  ['single key', { B: 1, Sq: 7, Skv: 1, Hq: 1, Hkv: 1, D: 8, causal: false }],
  ['decode, OpenELM-270M heads (20 query, 5 kv), a long cache', { B: 1, Sq: 1, Skv: 1000, Hq: 20, Hkv: 5, D: 64, causal: true }],
  ['a few queries over a long cache, each row its own causal end', { B: 2, Sq: 3, Skv: 500, Hq: 4, Hkv: 2, D: 72, causal: true }],
];

describe('attention against float64', () => {
  test.each(cases)('%s', async (_name, c) => {
    const q = rng.floats(c.B * c.Sq * c.Hq * c.D);
    const k = rng.floats(c.B * c.Skv * c.Hkv * c.D);
    const v = rng.floats(c.B * c.Skv * c.Hkv * c.D);
    const scale = 1 / Math.sqrt(c.D);
    const want = refAttention(c, q, k, v, scale);
    await forEachIsa(async (isa) => {
      const out = poisoned([c.B, c.Sq, c.Hq, c.D]);
      await attention(Tensor.from(q, [c.B, c.Sq, c.Hq, c.D]), Tensor.from(k, [c.B, c.Skv, c.Hkv, c.D]), Tensor.from(v, [c.B, c.Skv, c.Hkv, c.D]), { causal: c.causal, out });
      const err = relError(out.data, want);
      if (!(err <= 1e-5)) throw new Error(`${isa}: rel error ${err}`);
    });
  });

  test('decoding: a NaN in the keys of one kv head reaches its query heads and only theirs; the others stay exact', () => {
    const c: Case = { B: 1, Sq: 1, Skv: 700, Hq: 4, Hkv: 2, D: 32, causal: true };
    const q = rng.floats(c.Hq * c.D);
    const k = rng.floats(c.Skv * c.Hkv * c.D);
    const v = rng.floats(c.Skv * c.Hkv * c.D);
    const want = refAttention(c, q, k, v, 1 / Math.sqrt(c.D));
    k[(650 * c.Hkv + 1) * c.D + 3] = NaN; // a key of kv head 1
    const out = attentionSync(Tensor.from(q, [1, 1, c.Hq, c.D]), Tensor.from(k, [1, c.Skv, c.Hkv, c.D]), Tensor.from(v, [1, c.Skv, c.Hkv, c.D]), { causal: true });
    const o = out.toArray();
    // Query heads 2 and 3 share kv head 1.
    expect(Array.from(o.subarray(2 * c.D)).every((x) => Number.isNaN(x))).toBe(true);
    expect(relError(o.subarray(0, 2 * c.D), want.subarray(0, 2 * c.D))).toBeLessThan(1e-5);
  });

  test('decoding: the cache is cut into splits by its length alone, so one thread and three give the same bits', () => {
    // 5 kv heads of 1,000 keys: 8 splits each, run by the pool; the merge adds them in a fixed order.
    const c: Case = { B: 1, Sq: 2, Skv: 1000, Hq: 20, Hkv: 5, D: 64, causal: true };
    const q = Tensor.from(rng.floats(c.Sq * c.Hq * c.D), [1, c.Sq, c.Hq, c.D]);
    const k = Tensor.from(rng.floats(c.Skv * c.Hkv * c.D), [1, c.Skv, c.Hkv, c.D]);
    const v = Tensor.from(rng.floats(c.Skv * c.Hkv * c.D), [1, c.Skv, c.Hkv, c.D]);
    const threads = backendInfo().threads;
    try {
      setThreads(1);
      const one = attentionSync(q, k, v, { causal: true }).toArray();
      setThreads(3);
      const three = attentionSync(q, k, v, { causal: true }).toArray();
      expect(Buffer.from(three.buffer).equals(Buffer.from(one.buffer))).toBe(true);
    } finally {
      setThreads(threads);
    }
  });

  test('views: q, k, v from one fused qkv buffer, and k/v as a prefix of a larger cache', () => {
    const [B, S, H, D] = [2, 9, 2, 16];
    const qkv = Tensor.from(rng.floats(B * S * 3 * H * D), [B, S, 3, H, D]);
    const flat = qkv.toArray();
    const part = (i: number) => qkv.select(2, i);
    const pick = (i: number) => {
      const a = new Float32Array(B * S * H * D);
      for (let b = 0; b < B; ++b) for (let s = 0; s < S; ++s) a.set(flat.subarray(((b * S + s) * 3 + i) * H * D, ((b * S + s) * 3 + i + 1) * H * D), (b * S + s) * H * D);
      return a;
    };
    const c: Case = { B, Sq: S, Skv: S, Hq: H, Hkv: H, D, causal: true };
    const out = attentionSync(part(0), part(1), part(2), { causal: true });
    expect(relError(out.data, refAttention(c, pick(0), pick(1), pick(2), 1 / Math.sqrt(D)))).toBeLessThan(1e-5);

    // A cache of capacity 32 holding 9 positions: pass the [B, 9, H, D] prefix view.
    const cacheK = Tensor.zeros([B, 32, H, D]);
    const cacheV = Tensor.zeros([B, 32, H, D]);
    const kk = pick(1);
    const vv = pick(2);
    for (let b = 0; b < B; ++b) {
      cacheK.data.set(kk.subarray(b * S * H * D, (b + 1) * S * H * D), b * 32 * H * D);
      cacheV.data.set(vv.subarray(b * S * H * D, (b + 1) * S * H * D), b * 32 * H * D);
    }
    const q1 = Tensor.from(pick(0), [B, S, H, D]).narrow(1, S - 1, 1);
    const dec = attentionSync(q1, cacheK.narrow(1, 0, S), cacheV.narrow(1, 0, S), { causal: true });
    const full = out.toArray();
    for (let b = 0; b < B; ++b) for (let i = 0; i < H * D; ++i) expect(dec.data[b * H * D + i]).toBeCloseTo(full[(b * S + S - 1) * H * D + i], 5);
  });

  test('shape errors are typed', () => {
    const q = Tensor.zeros([1, 4, 3, 8]);
    const k = Tensor.zeros([1, 4, 2, 8]);
    expect(() => attentionSync(q, k, k)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    const k2 = Tensor.zeros([1, 2, 3, 8]);
    expect(() => attentionSync(q, k2, k2, { causal: true })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
  });
});
