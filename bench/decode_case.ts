/**
 * One decode step, and the prompt's prefill, of an OpenELM-270M-shaped model (16 layers, width 1280,
 * head dim 64, 12→20 query and 3→5 key/value heads, FFN 768→5120, vocabulary
 * 32,000, shared embeddings) at a KV cache of 512 positions, random weights
 * written once in Hugging Face's layout and loaded by the real loader; f32,
 * and f16 weights (tinyemo only: PyTorch's CPU half-precision matmul is not a
 * fair baseline). bench/torch_worker.py builds the same network in PyTorch.
 * The prefill is 512 tokens into an empty cache, causal, the last
 * position's logits (what generation needs), f32.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { DecoderLM, KvCache, Tensor, writeSafetensors } from '../lib';
import type { BenchCase } from './cases';

export const OPENELM_270M = {
  layers: 16,
  dim: 1280,
  headDim: 64,
  vocab: 32000,
  qHeads: [12, 12, 12, 12, 12, 16, 16, 16, 16, 16, 16, 16, 20, 20, 20, 20],
  kvHeads: [3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5],
};

/** OpenELM's FFN multipliers, 0.5 to 4.0 across the layers, and its width rule (divisor 256). */
export function openelmWidths(): number[] {
  const { layers, dim } = OPENELM_270M;
  return Array.from({ length: layers }, (_, i) => {
    const v = (0.5 + (3.5 * i) / (layers - 1)) * dim;
    const w = Math.max(256, Math.floor((v + 128) / 256) * 256);
    return w < 0.9 * v ? w + 256 : w;
  });
}

const folders = new Map<string, string>();
let users = 0;

function rand(n: number, scale: number, seed: number, offset = 0): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = offset + ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

/** The model written once per dtype into a temporary folder (each caller releases it with releaseOpenelmFolder). */
export function openelmFolder(dtype: 'f32' | 'f16'): string {
  users += 1;
  const have = folders.get(dtype);
  if (have) return have;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tinyemo-bench-openelm-${dtype}-`));
  const { layers, dim: E, headDim: D, vocab: V, qHeads, kvHeads } = OPENELM_270M;
  const widths = openelmWidths();
  const w: Record<string, Tensor> = {};
  let seed = 1;
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    let t: Tensor = Tensor.from(
      rand(
        shape.reduce((a, b) => a * b, 1),
        scale,
        seed++,
        offset,
      ),
      shape,
    );
    if (dtype === 'f16' && shape.length === 2) {
      const h = t.toSync('f16');
      t.dispose();
      t = h;
    }
    w[name] = t;
  };
  add('transformer.token_embeddings.weight', [V, E], 0.02);
  add('transformer.norm.weight', [E], 0.1, 1);
  for (let i = 0; i < layers; ++i) {
    const p = `transformer.layers.${i}`;
    add(`${p}.attn_norm.weight`, [E], 0.1, 1);
    add(`${p}.ffn_norm.weight`, [E], 0.1, 1);
    add(`${p}.attn.qkv_proj.weight`, [(qHeads[i] + 2 * kvHeads[i]) * D, E], 0.03);
    add(`${p}.attn.q_norm.weight`, [D], 0.1, 1);
    add(`${p}.attn.k_norm.weight`, [D], 0.1, 1);
    add(`${p}.attn.out_proj.weight`, [E, qHeads[i] * D], 0.03);
    add(`${p}.ffn.proj_1.weight`, [2 * widths[i], E], 0.03);
    add(`${p}.ffn.proj_2.weight`, [E, widths[i]], 0.03);
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), w);
  for (const t of Object.values(w)) t.dispose();
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'openelm',
      model_dim: E,
      head_dim: D,
      num_transformer_layers: layers,
      num_query_heads: qHeads,
      num_kv_heads: kvHeads,
      ffn_multipliers: Array.from({ length: layers }, (_, i) => 0.5 + (3.5 * i) / (layers - 1)),
      ffn_dim_divisor: 256,
      ffn_with_glu: true,
      normalize_qk_projections: true,
      share_input_output_layers: true,
      rope_freq_constant: 10000,
      max_context_length: 2048,
      vocab_size: V,
      bos_token_id: 1,
      eos_token_id: 2,
    }),
  );
  folders.set(dtype, dir);
  return dir;
}

export function releaseOpenelmFolder(): void {
  users -= 1;
  if (users === 0) {
    for (const d of folders.values()) fs.rmSync(d, { recursive: true, force: true });
    folders.clear();
  }
}

export function decodeCase(dtype: 'f32' | 'f16', kv = 512): BenchCase {
  const widths = openelmWidths();
  const { dim: E, headDim: D, qHeads, kvHeads, vocab } = OPENELM_270M;
  const params = widths.reduce((s, I, i) => s + ((qHeads[i] + 2 * kvHeads[i]) * D * E + E * qHeads[i] * D + 3 * I * E), 0) + vocab * E;
  return {
    name: `decode_openelm270m_kv${kv}_${dtype}`,
    kind: 'decode',
    params: { kv, torch: dtype === 'f32' },
    flops: 2 * params,
    bytes: params * (dtype === 'f32' ? 4 : 2),
    heavy: true,
    async setup() {
      const m = DecoderLM.load(openelmFolder(dtype));
      const cache: KvCache = m.newCache(kv + 1);
      await m.forward(
        Array.from({ length: kv }, (_, i) => 3 + ((i * 37) % 30000)),
        cache,
      );
      let token = 5;
      return {
        run: async () => {
          cache.length = kv;
          await m.forward([token], cache);
          token = 3 + ((token * 31) % 30000);
        },
        dispose: () => {
          cache.dispose();
          m.dispose();
          releaseOpenelmFolder();
        },
      };
    },
  };
}

export function prefillCase(tokens = 512): BenchCase {
  const widths = openelmWidths();
  const { dim: E, headDim: D, qHeads, kvHeads, vocab } = OPENELM_270M;
  // Per token: every layer's products; attention's scores and weighted sums over the causal half; one head row.
  const perToken = widths.reduce((s, I, i) => s + ((qHeads[i] + 2 * kvHeads[i]) * D * E + E * qHeads[i] * D + 3 * I * E), 0);
  const attention = qHeads.reduce((s, H) => s + 2 * H * D * ((tokens * (tokens + 1)) / 2), 0);
  return {
    name: `prefill_openelm270m_${tokens}`,
    kind: 'prefill',
    params: { tokens },
    flops: 2 * (perToken * tokens + attention + vocab * E),
    heavy: true,
    async setup() {
      const m = DecoderLM.load(openelmFolder('f32'));
      const cache: KvCache = m.newCache(tokens);
      const ids = Array.from({ length: tokens }, (_, i) => 3 + ((i * 37) % 30000));
      return {
        run: async () => {
          cache.length = 0;
          await m.forward(ids, cache);
        },
        dispose: () => {
          cache.dispose();
          m.dispose();
          releaseOpenelmFolder();
        },
      };
    },
  };
}
