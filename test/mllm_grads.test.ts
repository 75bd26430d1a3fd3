/**
 * The MM-LLM's training step against torch autograd (scripts/fixtures/mllm_grads.py, float64): for a
 * TinyLLaVA-style model over each decoder family (LLaMA, Qwen2, OpenELM, Phi-2) with an mlp2x_gelu connector,
 * the loss of one example and the gradient of every trainable tensor, connector and LLM, within 1e-4; then one
 * AdamW step over all of them.
 */
import * as fs from 'fs';
import * as path from 'path';

import { ModelFolder } from '../lib/io/model_folder';
import { WeightFile } from '../lib/io/weights';
import { decoderConfig } from '../lib/models/llm/decoder_config';
import { DecoderTrainer } from '../lib/models/llm/decoder_train';
import { Param, TrainLinear, loadTrainWeights } from '../lib/models/llm/decoder_train_weights';
import { TrainableTinyLlava } from '../lib/models/llm/tinyllava_train';
import { WeightLoader } from '../lib/models/weight_loader';
import { adamwStepSync } from '../lib/ops/optim';
import { Tensor } from '../lib/tensor';
import { relError } from './helpers/compare';

const DEC = path.join(__dirname, 'fixtures', 'decoders');
const FIX = path.join(__dirname, 'fixtures', 'mllm_grads');

function build(family: string): { model: TrainableTinyLlava; features: Tensor<'f32'>; dispose: () => void } {
  const folder = ModelFolder.open(path.join(DEC, family));
  const loader = new WeightLoader(folder, 'f32');
  const config = decoderConfig(folder.config, folder.dir);
  const weights = loadTrainWeights(folder, config, loader);
  folder.close();
  const inputs = WeightFile.open(path.join(FIX, family, 'inputs.safetensors'));
  const param = (name: string): Param => ({ name, value: inputs.load(name, { dtype: 'f32' }) as Tensor<'f32'> });
  const connector: TrainLinear[] = [0, 2].map((i) => ({ w: param(`connector._connector.${i}.weight`), b: param(`connector._connector.${i}.bias`) }));
  const features = inputs.load('features', { dtype: 'f32' }) as Tensor<'f32'>;
  inputs.close();
  const model = new TrainableTinyLlava(new DecoderTrainer(config, weights), connector);
  for (const p of model.params()) p.grad = Tensor.zeros(p.value.shape, 'f32');
  return {
    model,
    features,
    dispose: () => {
      for (const p of model.params()) p.grad?.dispose();
      for (const l of connector) [l.w.value, l.b!.value].forEach((t) => t.dispose());
      features.dispose();
      loader.disposeAll();
    },
  };
}

describe.each(['llama', 'qwen2', 'openelm', 'phi'])('%s + mlp2x_gelu', (family) => {
  test('the loss and every gradient equal torch autograd within 1e-4; one AdamW step matches', () => {
    const ex = JSON.parse(fs.readFileSync(path.join(FIX, family, 'example.json'), 'utf8')) as { ids: number[]; labels: number[]; loss: number };
    const { model, features, dispose } = build(family);
    try {
      // Position t predicts label t + 1: every label but one at position 0 is a target.
      const trained = ex.labels.slice(1).filter((l) => l !== -100).length;
      const r = model.accumulate({ ids: Int32Array.from(ex.ids), labels: Int32Array.from(ex.labels), features }, 1 / trained);
      expect(r.tokens).toBe(trained);
      expect(Math.abs(r.loss / r.tokens - ex.loss) / ex.loss).toBeLessThan(1e-5);
      const want = WeightFile.open(path.join(FIX, family, 'grads.safetensors'));
      const params = model.params();
      expect(params.map((p) => p.name).sort()).toEqual(want.tensors.map((t) => t.name).sort());
      const worst: Array<[string, number]> = [];
      for (const p of params) {
        const g = want.load(p.name, { dtype: 'f32' });
        const e = relError(p.grad!.toArray(), g.toArray());
        g.dispose();
        if (!(e < 1e-4)) worst.push([p.name, e]);
      }
      want.close();
      expect(worst).toEqual([]);
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
      const after = WeightFile.open(path.join(FIX, family, 'adamw.safetensors'));
      const grads = WeightFile.open(path.join(FIX, family, 'grads.safetensors'));
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
