/**
 * CLIP and SigLIP vision towers against a float64 forward written from the
 * equations in PyTorch (scripts/fixtures/vision_towers.py), on small random
 * models saved in Hugging Face's exact layouts: f32, f16 and bf16 weights,
 * flat and nested configs, safetensors and pytorch_model.bin.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { ClipVision } from '../lib/models/vision/clip_vision';
import { SiglipVision } from '../lib/models/vision/siglip_vision';
import { Tensor } from '../lib/tensor';
import { relError } from './helpers/compare';
import { readNpyFixture } from './helpers/npy_fixture';

const FIX = path.join(__dirname, 'fixtures', 'vision');

const npy = (name: string) => readNpyFixture(path.join(FIX, 'expected', `${name}.npy`)) as { shape: number[]; data: Float32Array };

function expectClose(t: Tensor<'f32'> | undefined, ref: { shape: number[]; data: Float32Array }, tol: number): void {
  expect(t).toBeDefined();
  expect([...t!.shape]).toEqual(ref.shape);
  expect(relError(t!.toArray() as Float32Array, ref.data)).toBeLessThan(tol);
}

describe.each([
  ['clip', 'clip'],
  ['clip-f16', 'clip-f16'],
  ['clip-full', 'clip'],
])('CLIP vision tower %s', (folder, ref) => {
  test('image embedding and hidden states 0, -2 and -1 match the float64 reference to 1e-4', async () => {
    const m = ClipVision.load(path.join(FIX, folder));
    expect(m.config).toMatchObject({ hiddenSize: 64, heads: 2, layers: 3, patchSize: 14, imageSize: 42, projectionDim: 40, activation: 'quick_gelu' });
    const px = npy('clip.pixels');
    const pixels = Tensor.from(px.data, px.shape);
    const out = await m.forward(pixels, { hiddenStates: [0, -2, -1, 3] });
    expectClose(out.imageEmbeds, npy(`${ref}.image_embeds`), 1e-4);
    expectClose(out.hiddenStates.get(0), npy(`${ref}.hidden_0`), 1e-4);
    expectClose(out.hiddenStates.get(-2), npy(`${ref}.hidden_m2`), 1e-4);
    expectClose(out.hiddenStates.get(-1), npy(`${ref}.last_hidden_state`), 1e-4);
    expect(out.hiddenStates.get(3)!.toArray()).toEqual(out.hiddenStates.get(-1)!.toArray());
    for (const t of [pixels, out.imageEmbeds!, ...out.hiddenStates.values()]) t.dispose();
    m.dispose();
  });
});

test('CLIP: a batch gives each image what it gives alone; hidden states only stop early', async () => {
  const m = ClipVision.load(path.join(FIX, 'clip'));
  const px = npy('clip.pixels');
  const both = Tensor.from(px.data, px.shape);
  const one = Tensor.from(px.data.slice(px.data.length / 2), [1, ...px.shape.slice(1)]);
  const a = await m.forward(both);
  const b = await m.forward(one);
  const ea = a.imageEmbeds!.toArray() as Float32Array;
  const eb = b.imageEmbeds!.toArray() as Float32Array;
  expect(relError(ea.slice(40), eb)).toBeLessThan(1e-5);
  const h = await m.forward(both, { hiddenStates: [-2], embeds: false });
  expect(h.imageEmbeds).toBeUndefined();
  expectClose(h.hiddenStates.get(-2), npy('clip.hidden_m2'), 1e-4);
  for (const t of [both, one, a.imageEmbeds!, b.imageEmbeds!, ...h.hiddenStates.values()]) t.dispose();
  m.dispose();
});

test('SigLIP (bf16 weights, head dim 72): pooled embedding, hidden states and post-LN last state', async () => {
  const m = SiglipVision.load(path.join(FIX, 'siglip'));
  expect(m.config).toMatchObject({ hiddenSize: 144, heads: 2, layers: 2, patchSize: 14, imageSize: 56, activation: 'gelu_tanh', eps: 1e-6 });
  const px = npy('siglip.pixels');
  const pixels = Tensor.from(px.data, px.shape);
  const out = await m.forward(pixels, { hiddenStates: [0, -2] });
  expectClose(out.imageEmbeds, npy('siglip.image_embeds'), 1e-4);
  expectClose(out.hiddenStates.get(0), npy('siglip.hidden_0'), 1e-4);
  expectClose(out.hiddenStates.get(-2), npy('siglip.hidden_m2'), 1e-4);
  for (const t of [pixels, out.imageEmbeds!, ...out.hiddenStates.values()]) t.dispose();
  m.dispose();
});

describe('refusals', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-vision-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function variant(name: string, edit: (cfg: Record<string, unknown>) => void): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(FIX, 'clip', 'config.json'), 'utf8')) as Record<string, unknown>;
    edit(cfg);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    fs.copyFileSync(path.join(FIX, 'clip', 'model.safetensors'), path.join(dir, 'model.safetensors'));
    return dir;
  }

  test('a config that disagrees with the weights names the weight', () => {
    expect(() => ClipVision.load(variant('wide', (c) => (c.hidden_size = 96)))).toThrow(/is \[.*\], the config implies/);
  });
  test('more layers than the file holds lists the missing weights', () => {
    expect(() => ClipVision.load(variant('deep', (c) => (c.num_hidden_layers = 4)))).toThrow(/missing: vision_model\.encoder\.layers\.3/);
  });
  test('an unknown activation is UNSUPPORTED', () => {
    try {
      ClipVision.load(variant('act', (c) => (c.hidden_act = 'mish')));
      throw new Error('loaded');
    } catch (e) {
      expect((e as { code?: string }).code).toBe('UNSUPPORTED');
    }
  });
  test('pixels of the wrong size and out-of-range hidden states are refused', async () => {
    const m = ClipVision.load(path.join(FIX, 'clip'));
    const bad = Tensor.zeros([1, 3, 40, 40]);
    await expect(m.forward(bad)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    const px = Tensor.zeros([1, 3, 42, 42]);
    await expect(m.forward(px, { hiddenStates: [4] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(m.forward(px, { hiddenStates: [-5] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    m.dispose();
    await expect(m.forward(px)).rejects.toMatchObject({ code: 'DISPOSED' });
    bad.dispose();
    px.dispose();
  });
});
