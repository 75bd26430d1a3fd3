/**
 * The MM-LLM's training step against torch autograd (scripts/fixtures/mllm_grads.py, float64): for a
 * TinyLLaVA-style model over each decoder family (LLaMA, Qwen2, OpenELM, Phi-2) with an mlp2x_gelu connector,
 * the loss of one example and the gradient of every trainable tensor, connector and LLM, within 1e-4; then one
 * AdamW step over all of them. With LoRA on the LLM (llama_lora, phi_lora), and with the vision tower training too
 * (llama_clip, llama_siglip: pixels in, the tower's gradients checked as well).
 */
import * as fs from 'fs';
import * as path from 'path';

import { ModelFolder } from '../lib/io/model_folder';
import { WeightFile } from '../lib/io/weights';
import { decoderConfig } from '../lib/models/llm/decoder_config';
import { DecoderTrainer } from '../lib/models/llm/decoder_train';
import { Param, TrainLinear, loadTrainWeights } from '../lib/models/llm/decoder_train_weights';
import { LoraPair, attachLora, attachLoraTo } from '../lib/models/llm/lora';
import { TrainableTinyLlava } from '../lib/models/llm/tinyllava_train';
import { VisionTrainer, towerLinearModules } from '../lib/models/llm/vision_train';
import { copyIntoSync } from '../lib/ops/copy';
import { scaleSync } from '../lib/ops/activation';
import { WeightLoader } from '../lib/models/weight_loader';
import { adamwStepSync } from '../lib/ops/optim';
import { Tensor } from '../lib/tensor';
import { relError } from './helpers/compare';

const DEC = path.join(__dirname, 'fixtures', 'decoders');
const FIX = path.join(__dirname, 'fixtures', 'mllm_grads');

const TOWERS = path.join(__dirname, 'fixtures', 'vision');

function build(
  fix: string,
  lora?: { r: number; alpha: number; targets: string[] },
): { model: TrainableTinyLlava; image: { features: Tensor<'f32'> } | { pixels: Tensor<'f32'> }; trainable: Param[]; dispose: () => void } {
  const [family, tower] = fix.split('_');
  const folder = ModelFolder.open(path.join(DEC, family));
  const loader = new WeightLoader(folder, 'f32');
  const config = decoderConfig(folder.config, folder.dir);
  const weights = loadTrainWeights(folder, config, loader);
  folder.close();
  const inputs = WeightFile.open(path.join(FIX, fix, 'inputs.safetensors'));
  const param = (name: string): Param => ({ name, value: inputs.load(name, { dtype: 'f32' }) as Tensor<'f32'> });
  const connector: TrainLinear[] = [0, 2].map((i) => ({ w: param(`connector._connector.${i}.weight`), b: param(`connector._connector.${i}.bias`) }));
  const trainsTower = tower === 'clip' || tower === 'siglip';
  const input = inputs.load(trainsTower ? 'pixels' : 'features', { dtype: 'f32' }) as Tensor<'f32'>;
  const towerFolder = trainsTower ? ModelFolder.open(path.join(TOWERS, tower)) : undefined;
  const towerLoader = towerFolder ? new WeightLoader(towerFolder, 'f32') : undefined;
  const vision = towerFolder ? VisionTrainer.fromFolder(towerFolder, towerLoader!, { featureLayer: -2, strategy: 'patch' }) : undefined;
  towerFolder?.close();
  // LoRA: the factors attached, then set to the fixture's values; only they and the connector train.
  const pairs = lora ? attachLora(weights, { ...lora, dropout: 0, seed: 0 }) : [];
  for (const p of pairs.flatMap((x) => [x.a, x.b])) copyIntoSync(inputs.load(p.name, { dtype: 'f32' }), p.value);
  inputs.close();
  const model = new TrainableTinyLlava(new DecoderTrainer(config, weights), connector, vision);
  const trainable = lora ? [...connector.flatMap((l) => [l.w, l.b!]), ...pairs.flatMap((x) => [x.a, x.b])] : [...model.params(), ...(vision?.params() ?? [])];
  for (const p of trainable) p.grad = Tensor.zeros(p.value.shape, 'f32');
  return {
    model,
    image: trainsTower ? { pixels: input } : { features: input },
    trainable,
    dispose: () => {
      for (const p of trainable) p.grad?.dispose();
      for (const x of pairs) [x.a.value, x.b.value].forEach((t) => t.dispose());
      for (const l of connector) [l.w.value, l.b!.value].forEach((t) => t.dispose());
      input.dispose();
      loader.disposeAll();
      towerLoader?.disposeAll();
    },
  };
}

/** LoRA factors with room for their gradients; B (zero in PEFT) given values so that A's gradient is not zero too. */
function trainableFactors(pairs: LoraPair[], wave: (x: number) => number): Param[] {
  for (const p of pairs)
    copyIntoSync(
      Tensor.from(
        new Float32Array(p.b.value.size).map((_, i) => wave(i) * 0.05),
        p.b.value.shape,
      ),
      p.b.value,
    );
  const factors = pairs.flatMap((p) => [p.a, p.b]);
  for (const p of factors) p.grad = Tensor.zeros(p.value.shape, 'f32');
  return factors;
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);

const LORA: Record<string, { r: number; alpha: number; targets: string[] }> = {
  llama_lora: { r: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] },
  phi_lora: { r: 3, alpha: 6, targets: ['dense', 'fc1'] },
};

describe.each(['llama', 'qwen2', 'openelm', 'phi', 'llama_lora', 'phi_lora', 'llama_clip', 'llama_siglip'])('%s + mlp2x_gelu', (fixture) => {
  test('the loss and every gradient equal torch autograd within 1e-4; one AdamW step matches', () => {
    const ex = JSON.parse(fs.readFileSync(path.join(FIX, fixture, 'example.json'), 'utf8')) as { ids: number[]; labels: number[]; loss: number };
    const { model, image, trainable, dispose } = build(fixture, LORA[fixture]);
    try {
      // Position t predicts label t + 1: every label but one at position 0 is a target.
      const trained = ex.labels.slice(1).filter((l) => l !== -100).length;
      const r = model.accumulate({ ids: Int32Array.from(ex.ids), labels: Int32Array.from(ex.labels), ...image }, 1 / trained);
      expect(r.tokens).toBe(trained);
      expect(Math.abs(r.loss / r.tokens - ex.loss) / ex.loss).toBeLessThan(1e-5);
      const want = WeightFile.open(path.join(FIX, fixture, 'grads.safetensors'));
      const params = trainable;
      expect(params.map((p) => p.name).sort()).toEqual(want.tensors.map((t) => t.name).sort());
      const worst: Array<[string, number]> = [];
      for (const p of params) {
        const g = want.load(p.name, { dtype: 'f32' });
        const got = p.grad!.toArray();
        // A key bias shifts every score of a query's row alike, so softmax makes its gradient exactly zero: there,
        // torch's and ours are rounding noise, checked as small against the gradients around them (≤ 1e-6).
        const zero = /\.k_proj\.bias$/.test(p.name) && maxAbs(g.toArray()) < 1e-12;
        const e = zero ? maxAbs(got) : relError(got, g.toArray());
        g.dispose();
        if (!(e < (zero ? 1e-6 : 1e-4))) worst.push([p.name, e]);
      }
      want.close();
      expect(worst).toEqual([]);
      // Recomputing each layer's intermediates in the backward gives the same gradients, bit for bit.
      const first = params.map((p) => Buffer.from((p.grad!.toArray() as Float32Array).slice().buffer));
      for (const p of params) scaleSync(p.grad!, 0, { out: p.grad! });
      model.accumulate({ ids: Int32Array.from(ex.ids), labels: Int32Array.from(ex.labels), ...image }, 1 / trained, { recompute: true });
      expect(params.filter((p, i) => !Buffer.from(p.grad!.toArray().buffer).equals(first[i])).map((p) => p.name)).toEqual([]);
      // One AdamW step over every tensor, as torch takes it.
      adamwStepSync(
        {
          params: params.map((p) => p.value),
          grads: params.map((p) => p.grad!),
          expAvg: params.map((p) => Tensor.zeros(p.value.shape, 'f32')),
          expAvgSq: params.map((p) => Tensor.zeros(p.value.shape, 'f32')),
        },
        { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 },
      );
      // Adam's first step moves each element by lr·g/(|g| + eps): where |g| is within a few hundred eps (1e-8) of 0
      // that ratio amplifies rounding of g itself, so those elements are left out; elsewhere within 1e-5.
      const after = WeightFile.open(path.join(FIX, fixture, 'adamw.safetensors'));
      const grads = WeightFile.open(path.join(FIX, fixture, 'grads.safetensors'));
      for (const p of params) {
        const a = after.load(p.name, { dtype: 'f32' }).toArray() as Float32Array;
        const g = grads.load(p.name, { dtype: 'f32' }).toArray() as Float32Array;
        const big = Math.max(1e-6, g.reduce((m, x) => Math.max(m, Math.abs(x)), 0) * 1e-6);
        const keep = (x: ArrayLike<number>) => Float32Array.from(x).filter((_, i) => Math.abs(g[i]) > big);
        const e = relError(keep(p.value.toArray()), keep(a));
        expect({ name: p.name, ok: e < 1e-5 }).toEqual({ name: p.name, ok: true });
      }
      after.close();
      grads.close();
    } finally {
      dispose();
    }
  });
});

test("LoRA with dropout: the factors' gradients equal central differences of the loss under the same masks", () => {
  const ex = JSON.parse(fs.readFileSync(path.join(FIX, 'llama', 'example.json'), 'utf8')) as { ids: number[]; labels: number[] };
  const folder = ModelFolder.open(path.join(DEC, 'llama'));
  const loader = new WeightLoader(folder, 'f32');
  const config = decoderConfig(folder.config, folder.dir);
  const weights = loadTrainWeights(folder, config, loader);
  folder.close();
  const inputs = WeightFile.open(path.join(FIX, 'llama', 'inputs.safetensors'));
  const connector: TrainLinear[] = [0, 2].map((i) => ({
    w: { name: `c${i}w`, value: inputs.load(`connector._connector.${i}.weight`, { dtype: 'f32' }) as Tensor<'f32'> },
    b: { name: `c${i}b`, value: inputs.load(`connector._connector.${i}.bias`, { dtype: 'f32' }) as Tensor<'f32'> },
  }));
  const features = inputs.load('features', { dtype: 'f32' }) as Tensor<'f32'>;
  inputs.close();
  const pairs = attachLora(weights, { r: 3, alpha: 6, dropout: 0.3, targets: ['q_proj', 'up_proj'], seed: 5 });
  const model = new TrainableTinyLlava(new DecoderTrainer(config, weights), connector);
  const factors = trainableFactors(pairs, Math.sin);
  const example = { ids: Int32Array.from(ex.ids), labels: Int32Array.from(ex.labels), features };
  const loss = () => {
    model.decoder.maskSeed = 1234;
    return model.accumulate(example, 0).loss;
  };
  model.decoder.maskSeed = 1234;
  model.accumulate(example, 1);
  const h = 1e-3;
  for (const p of [factors[0], factors[1], factors[3]]) {
    const v = p.value.data as Float32Array;
    const g = p.grad!.toArray() as Float32Array;
    for (const i of [0, 7, v.length - 1]) {
      const keep = v[i];
      v[i] = keep + h;
      const a = loss();
      v[i] = keep - h;
      const b = loss();
      v[i] = keep;
      expect(Math.abs((a - b) / (2 * h) - g[i])).toBeLessThan(2e-3 * Math.max(1, Math.abs(g[i])));
    }
  }
  for (const t of [...factors.flatMap((p) => [p.value, p.grad!]), ...connector.flatMap((l) => [l.w.value, l.b!.value]), features]) t.dispose();
  loader.disposeAll();
});

test("LoRA with dropout on the tower and the connector: the factors' gradients equal central differences", () => {
  const ex = JSON.parse(fs.readFileSync(path.join(FIX, 'llama_clip', 'example.json'), 'utf8')) as { ids: number[]; labels: number[] };
  const { model, image, dispose } = build('llama_clip');
  const vision = model.vision!;
  const pairs = [
    ...attachLoraTo(towerLinearModules(vision.weights), { r: 2, alpha: 4, dropout: 0.25, targets: ['q_proj', 'v_proj', 'fc2'], seed: 3, keyBase: 1 << 20 }),
    ...attachLoraTo(model.connector, { r: 2, alpha: 4, dropout: 0.25, targets: ['0', '2'], seed: 3, keyBase: 2 << 20 }),
  ];
  const factors = trainableFactors(pairs, Math.cos);
  const example = { ids: Int32Array.from(ex.ids), labels: Int32Array.from(ex.labels), ...image };
  const loss = (scale: number) => {
    model.setMaskSeed(77);
    return model.accumulate(example, scale).loss;
  };
  loss(1);
  const h = 1e-3;
  try {
    for (const p of factors) {
      const v = p.value.data as Float32Array;
      const g = p.grad!.toArray() as Float32Array;
      for (const i of [0, v.length - 1]) {
        const keep = v[i];
        v[i] = keep + h;
        const a = loss(0);
        v[i] = keep - h;
        const b = loss(0);
        v[i] = keep;
        expect({ name: p.name, i, err: Math.abs((a - b) / (2 * h) - g[i]) < 2e-3 * Math.max(1, Math.abs(g[i])) }).toEqual({ name: p.name, i, err: true });
      }
    }
  } finally {
    for (const t of factors.flatMap((p) => [p.value, p.grad!])) t.dispose();
    dispose();
  }
});
