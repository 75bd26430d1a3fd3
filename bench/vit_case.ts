/**
 * CLIP ViT-L/14 image encode (224 px, 257 tokens, 24 layers of width 1024,
 * MLP 4096, projection 768) with random f32 weights of the real shapes,
 * written once into a Hugging Face-layout folder and loaded by the real
 * loader. bench/torch_worker.py builds the same network in PyTorch.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as pathMod from 'path';

import { CLIP_PREPROCESS, ClipVision, Projector, Tensor, cosineTopk, preprocess, readImage, writeSafetensors } from '../lib';
import sharp from 'sharp';

import { ENCODE_BATCH_SIZE, encodeImages, loadVisionTower } from '../lib/models/vision/tower';
import type { MatmulPrecision } from '../lib/ops/gemm';
import type { BenchCase, Params } from './cases';
import { bf16Unavailable } from './precision';

const L14 = { hidden: 1024, mlp: 4096, heads: 16, layers: 24, image: 224, patch: 14, proj: 768 };

let folder: string | undefined;
let users = 0;

function rand(n: number, scale: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

/** The random ViT-L/14 folder (written on first use, removed when the last case is disposed). */
export function vitFolder(): string {
  users += 1;
  if (folder) return folder;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bench-vit-'));
  const { hidden: E, mlp: I, layers, image, patch: P, proj } = L14;
  const S = (image / P) ** 2 + 1;
  const w: Record<string, Tensor> = {};
  let seed = 1;
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = rand(n, scale, seed++);
    if (offset) for (let i = 0; i < n; ++i) data[i] += offset;
    w[name] = Tensor.from(data, shape);
  };
  const vm = 'vision_model';
  add(`${vm}.embeddings.patch_embedding.weight`, [E, 3, P, P], 0.02);
  add(`${vm}.embeddings.class_embedding`, [E], 0.1);
  add(`${vm}.embeddings.position_embedding.weight`, [S, E], 0.02);
  for (const n of ['pre_layrnorm', 'post_layernorm']) {
    add(`${vm}.${n}.weight`, [E], 0.1, 1);
    add(`${vm}.${n}.bias`, [E], 0.02);
  }
  for (let i = 0; i < layers; ++i) {
    const p = `${vm}.encoder.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(`${p}.self_attn.${n}.weight`, [E, E], 1 / Math.sqrt(E));
      add(`${p}.self_attn.${n}.bias`, [E], 0.02);
    }
    for (const n of ['layer_norm1', 'layer_norm2']) {
      add(`${p}.${n}.weight`, [E], 0.1, 1);
      add(`${p}.${n}.bias`, [E], 0.02);
    }
    add(`${p}.mlp.fc1.weight`, [I, E], 1 / Math.sqrt(E));
    add(`${p}.mlp.fc1.bias`, [I], 0.02);
    add(`${p}.mlp.fc2.weight`, [E, I], 1 / Math.sqrt(I));
    add(`${p}.mlp.fc2.bias`, [E], 0.02);
  }
  add('visual_projection.weight', [proj, E], 1 / Math.sqrt(E));
  writeSafetensors(path.join(dir, 'model.safetensors'), w);
  for (const t of Object.values(w)) t.dispose();
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'clip_vision_model',
      hidden_size: E,
      intermediate_size: I,
      num_attention_heads: L14.heads,
      num_hidden_layers: layers,
      image_size: image,
      patch_size: P,
      projection_dim: proj,
      hidden_act: 'quick_gelu',
      layer_norm_eps: 1e-5,
    }),
  );
  folder = dir;
  return dir;
}

export function release(): void {
  users -= 1;
  if (users === 0 && folder) {
    fs.rmSync(folder, { recursive: true, force: true });
    folder = undefined;
  }
}

/**
 * The bf16 variants (`--precision bf16`: the encoder's products in bf16) run only where the CPU has AVX512_BF16,
 * against PyTorch's network in bf16 (oneDNN's bf16 kernels), its fastest on such a CPU.
 */
function precisionOf(precision: MatmulPrecision): { suffix: string; params: Params; unavailable?: BenchCase['unavailable'] } {
  return precision === 'bf16' ? { suffix: '_bf16', params: { bf16: true }, unavailable: bf16Unavailable } : { suffix: '', params: {} };
}

export function vitCase(B: number, slow = false, precision: MatmulPrecision = 'f32'): BenchCase {
  const { hidden: E, mlp: I, layers, image, patch: P, proj } = L14;
  const S = (image / P) ** 2 + 1;
  // Per layer: QKV, output, two MLP products, and attention (QKᵀ and PV); patch embedding; projection.
  const flops = B * (layers * (2 * S * E * (4 * E + 2 * I) + 4 * S * S * E) + 2 * (S - 1) * 3 * P * P * E + 2 * E * proj);
  const v = precisionOf(precision);
  return {
    name: `vit_l14_b${B}${v.suffix}`,
    kind: 'vit',
    params: { B, ...L14, ...v.params },
    flops,
    slow,
    heavy: true,
    unavailable: v.unavailable,
    setup() {
      const model = ClipVision.load(vitFolder(), { precision });
      const pixels = Tensor.from(rand(B * 3 * image * image, 1.5, 99), [B, 3, image, image]);
      return {
        run: async () => {
          const out = await model.forward(pixels);
          out.imageEmbeds?.dispose();
        },
        dispose: () => {
          pixels.dispose();
          model.dispose();
          release();
        },
      };
    },
  };
}

/**
 * A JPEG file to an emotion label: decode, CLIP preprocessing, ViT-L/14 image
 * embedding, projector, cosine top-1 against six labels — the whole `classify`
 * path on one photo (640×480). PyTorch does the same with PIL.
 */
export function imageLabelCase(precision: MatmulPrecision = 'f32'): BenchCase {
  const { hidden: E, mlp: I, layers, image, patch: P, proj } = L14;
  const S = (image / P) ** 2 + 1;
  const flops = layers * (2 * S * E * (4 * E + 2 * I) + 4 * S * S * E) + 2 * (S - 1) * 3 * P * P * E + 2 * E * proj;
  const photo = pathMod.join(__dirname, '..', '..', 'test', 'fixtures', 'images', 'photo_640x480.jpg');
  const v = precisionOf(precision);
  return {
    name: `image_to_label_l14${v.suffix}`,
    kind: 'image_label',
    params: { B: 1, ...L14, ...v.params },
    flops,
    heavy: true,
    unavailable: v.unavailable,
    setup() {
      const model = ClipVision.load(vitFolder(), { precision });
      const projector = Projector.init(768, 1280, 1280, 3);
      const labels = Tensor.from(rand(6 * 1280, 1, 77), [6, 1280]);
      return {
        run: async () => {
          const px = preprocess([await readImage(photo)], CLIP_PREPROCESS);
          const out = await model.forward(px);
          px.dispose();
          const y = await projector.forward(out.imageEmbeds!);
          out.imageEmbeds!.dispose();
          const top = await cosineTopk(y, labels, 1);
          y.dispose();
          top.indices.dispose();
          top.scores.dispose();
        },
        dispose: () => {
          labels.dispose();
          projector.dispose();
          model.dispose();
          release();
        },
      };
    },
  };
}

/**
 * `tinyemo features` on 64 JPEG photos (640×480): decoding overlapped with the
 * forward passes, CLIP preprocessing, ViT-L/14 image embeddings in batches of
 * 8 (encodeImages, as `features` runs it). PyTorch does the same with PIL,
 * one batch after another.
 */
export function featuresCase(n = 64): BenchCase {
  const { hidden: E, mlp: I, layers, image, patch: P, proj } = L14;
  const S = (image / P) ** 2 + 1;
  const perImage = layers * (2 * S * E * (4 * E + 2 * I) + 4 * S * S * E) + 2 * (S - 1) * 3 * P * P * E + 2 * E * proj;
  return {
    name: `features_l14_${n}jpeg`,
    kind: 'features',
    params: { N: n, B: ENCODE_BATCH_SIZE, ...L14 },
    flops: n * perImage,
    slow: true,
    heavy: true,
    async setup() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bench-jpeg-'));
      const files: string[] = [];
      for (let i = 0; i < n; ++i) {
        // Smooth noise upscaled, so the JPEGs compress like photos rather than like static.
        const raw = Buffer.from(rand(64 * 48 * 3, 1, 1000 + i).map((v) => Math.round((v + 1) * 127.5)));
        const f = path.join(dir, `${String(i).padStart(3, '0')}.jpg`);
        await sharp(raw, { raw: { width: 64, height: 48, channels: 3 } })
          .resize(640, 480)
          .jpeg({ quality: 90 })
          .toFile(f);
        files.push(f);
      }
      const tower = loadVisionTower(vitFolder());
      return {
        run: async () => {
          const r = await encodeImages(tower, files, { embeds: true, batchSize: ENCODE_BATCH_SIZE });
          if (r.encoded.length !== n) throw new Error(`${r.skipped.length} images skipped`);
        },
        torchParams: { dir },
        dispose: () => {
          tower.model.dispose();
          fs.rmSync(dir, { recursive: true, force: true });
          release();
        },
      };
    },
  };
}
