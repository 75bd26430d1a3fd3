/**
 * A tiny TinyLLaVA checkpoint in the published layout, composed here from the
 * CLIP and LLaMA fixtures plus a random mlp2x_gelu connector: the image
 * features and the spliced embeddings fed to the LLM against a float64
 * computation from the PyTorch reference's hidden states; seeded generation.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { WeightFile } from '../lib/io/weights';
import { writeSafetensors } from '../lib/io/safetensors';
import { generateTokens } from '../lib/models/llm/generate';
import { TinyLlava } from '../lib/models/llm/tinyllava';
import { PackedWeight } from '../lib/ops/gemm';
import { IMAGE_TOKEN_INDEX } from '../lib/text/templates';
import { Tensor } from '../lib/tensor';
import { Rng } from './helpers/random';
import { readNpyFixture } from './helpers/npy_fixture';
import { activate } from './helpers/reference';

const VIS = path.join(__dirname, 'fixtures', 'vision');
const DEC = path.join(__dirname, 'fixtures', 'decoders');
let tmp: string;
let dir: string;
let w1: Float32Array;
let b1: Float32Array;
let w2: Float32Array;
let b2: Float32Array;
const E = 64;

function all(file: string): Map<string, Tensor> {
  const w = WeightFile.open(file);
  try {
    return new Map(w.tensors.map((t) => [t.name, w.load(t.name, { dtype: 'f32' })]));
  } finally {
    w.close();
  }
}

const npy = (file: string) => readNpyFixture(file) as { shape: number[]; data: Float32Array };

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-tinyllava-'));
  dir = path.join(tmp, 'TinyLLaVA-mini');
  fs.mkdirSync(dir);
  const tensors: Record<string, Tensor> = {};
  for (const [n, t] of all(path.join(VIS, 'clip', 'model.safetensors'))) if (n.startsWith('vision_model.')) tensors[`vision_tower._vision_tower.${n}`] = t;
  for (const [n, t] of all(path.join(DEC, 'llama', 'model.safetensors'))) tensors[`language_model.${n}`] = t;
  const rng = new Rng(12);
  w1 = rng.floats(E * E, 0.15);
  b1 = rng.floats(E, 0.05);
  w2 = rng.floats(E * E, 0.15);
  b2 = rng.floats(E, 0.05);
  tensors['connector._connector.0.weight'] = Tensor.from(w1, [E, E]);
  tensors['connector._connector.0.bias'] = Tensor.from(b1, [E]);
  tensors['connector._connector.2.weight'] = Tensor.from(w2, [E, E]);
  tensors['connector._connector.2.bias'] = Tensor.from(b2, [E]);
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  for (const t of Object.values(tensors)) t.dispose();
  const text = JSON.parse(fs.readFileSync(path.join(DEC, 'llama', 'config.json'), 'utf8')) as Record<string, unknown>;
  const vision = JSON.parse(fs.readFileSync(path.join(VIS, 'clip', 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'tinyllava',
      architectures: ['TinyLlavaForConditionalGeneration'],
      text_config: text,
      vision_config: vision,
      connector_type: 'mlp2x_gelu',
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'patch',
      hidden_size: E,
      vision_hidden_size: E,
    }),
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('image features: penultimate CLIP layer, class token dropped, mlp2x_gelu — against float64 from the reference hidden states', async () => {
  const m = TinyLlava.load(dir);
  expect(m.featureLayer).toBe(-2);
  const px = npy(path.join(VIS, 'expected', 'clip.pixels.npy'));
  const pixels = Tensor.from(px.data, px.shape);
  const feats = await m.encodeImages(pixels);
  expect([...feats.shape]).toEqual([2, 9, E]);
  const hm2 = npy(path.join(VIS, 'expected', 'clip.hidden_m2.npy')); // [2, 10, 64], float64 reference rounded to f32
  const got = feats.toArray() as Float32Array;
  let err = 0;
  let scale = 0;
  for (let b = 0; b < 2; ++b) {
    for (let s = 1; s < 10; ++s) {
      const x = hm2.data.subarray((b * 10 + s) * E, (b * 10 + s + 1) * E);
      const h = Array.from({ length: E }, (_, o) => {
        let v = b1[o];
        for (let i = 0; i < E; ++i) v += w1[o * E + i] * x[i];
        return activate('gelu', v);
      });
      for (let o = 0; o < E; ++o) {
        let v = b2[o];
        for (let i = 0; i < E; ++i) v += w2[o * E + i] * h[i];
        err = Math.max(err, Math.abs(got[(b * 9 + s - 1) * E + o] - v));
        scale = Math.max(scale, Math.abs(v));
      }
    }
  }
  expect(err / scale).toBeLessThan(1e-4);
  pixels.dispose();
  feats.dispose();
  m.dispose();
});

test('the splice: text embeddings around the image features, in order; seeded generation is deterministic', async () => {
  const m = TinyLlava.load(dir);
  const px = npy(path.join(VIS, 'expected', 'clip.pixels.npy'));
  const one = Tensor.from(px.data.slice(0, px.data.length / 2), [1, ...px.shape.slice(1)]);
  const feats = await m.encodeImages(one);
  const ids = [1, 5, IMAGE_TOKEN_INDEX, 7, 8];
  const emb = await m.spliceEmbeddings(ids, feats);
  expect([...emb.shape]).toEqual([4 + 9, E]);
  const weights = all(path.join(DEC, 'llama', 'model.safetensors'));
  const table = weights.get('model.embed_tokens.weight')!.toArray() as Float32Array;
  for (const t of weights.values()) t.dispose();
  const e = emb.toArray() as Float32Array;
  const f = feats.toArray() as Float32Array;
  const row = (r: number) => Array.from(e.subarray(r * E, (r + 1) * E));
  expect(row(0)).toEqual(Array.from(table.subarray(1 * E, 2 * E)));
  expect(row(1)).toEqual(Array.from(table.subarray(5 * E, 6 * E)));
  for (let s = 0; s < 9; ++s) expect(row(2 + s)).toEqual(Array.from(f.subarray(s * E, (s + 1) * E)));
  expect(row(11)).toEqual(Array.from(table.subarray(7 * E, 8 * E)));
  expect(row(12)).toEqual(Array.from(table.subarray(8 * E, 9 * E)));
  await expect(m.spliceEmbeddings([1, 2], feats)).rejects.toThrow(/0 image slots for 1 images/);
  const gen = async (seed: number) => {
    const cache = m.newCache(64);
    const out: number[] = [];
    for await (const t of generateTokens(m.llm, emb, cache, { temperature: 1, seed, maxNewTokens: 10, stopTokens: [] })) out.push(t);
    cache.dispose();
    return out;
  };
  expect(await gen(3)).toEqual(await gen(3));
  expect(await gen(3)).not.toEqual(await gen(4));
  for (const t of [one, feats, emb]) t.dispose();
  m.dispose();
});

test('packWeights reaches both the vision tower and the LLM', () => {
  const packedKinds = (m: TinyLlava) => {
    const llm = m.llm as unknown as { w: { layers: Array<{ qkv: { weight: unknown } }> } };
    const vision = m.vision as unknown as { w: { layers: Array<{ qkv: { weight: unknown } }> } };
    return [...llm.w.layers, ...vision.w.layers].map((L) => L.qkv.weight instanceof PackedWeight);
  };
  const packed = TinyLlava.load(dir);
  const plain = TinyLlava.load(dir, { packWeights: false });
  expect(packedKinds(packed).every(Boolean)).toBe(true);
  expect(packedKinds(plain).some(Boolean)).toBe(false);
  packed.dispose();
  plain.dispose();
});

test('not a TinyLLaVA folder, or an unknown connector, is refused', () => {
  expect(() => TinyLlava.load(path.join(DEC, 'llama'))).toThrow(/is not tinyllava/);
  const bad = path.join(tmp, 'bad');
  fs.mkdirSync(bad);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, connector_type: 'qformer' }));
  fs.copyFileSync(path.join(dir, 'model.safetensors'), path.join(bad, 'model.safetensors'));
  expect(() => TinyLlava.load(bad)).toThrow(/connector_type "qformer"/);
});
