/**
 * A small TinyLLaVA-format model folder for tests, in TinyLLaVA Factory's layout: the CLIP fixture as its tower,
 * a random 2-layer LLaMA-layout LLM (GQA) over the 32,000-token LLaMA vocabulary, an mlp2x_gelu connector, and the
 * LLaMA tokenizer fixture.
 */
import * as fs from 'fs';
import * as path from 'path';

import { writeSafetensors } from '../../lib/io/safetensors';
import { WeightFile } from '../../lib/io/weights';
import { Tensor } from '../../lib/tensor';
import { Rng } from './random';
import { tokenizerFixture } from './tokenizers';
import { REPO } from './repo';

const CLIP = path.join(REPO, 'test', 'fixtures', 'vision', 'clip');

/** A random 2-layer LLaMA-layout LLM (GQA) over the 32,000-token LLaMA vocabulary: its tensors and config. */
function randomLlm(rng: Rng, prefix = ''): { tensors: Record<string, Tensor>; config: Record<string, unknown> } {
  const E = 64;
  const V = 32000;
  const t: Record<string, Tensor> = {};
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    t[prefix + name] = Tensor.from(
      rng.floats(n, scale).map((x) => x + offset),
      shape,
    );
  };
  add('model.embed_tokens.weight', [V, E], 0.5);
  add('model.norm.weight', [E], 0.1, 1);
  add('lm_head.weight', [V, E], 0.15);
  for (let i = 0; i < 2; ++i) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [E], 0.1, 1);
    add(`${p}.post_attention_layernorm.weight`, [E], 0.1, 1);
    add(`${p}.self_attn.q_proj.weight`, [E, E], 0.12);
    add(`${p}.self_attn.k_proj.weight`, [32, E], 0.12);
    add(`${p}.self_attn.v_proj.weight`, [32, E], 0.12);
    add(`${p}.self_attn.o_proj.weight`, [E, E], 0.12);
    add(`${p}.mlp.gate_proj.weight`, [96, E], 0.12);
    add(`${p}.mlp.up_proj.weight`, [96, E], 0.12);
    add(`${p}.mlp.down_proj.weight`, [E, 96], 0.1);
  }
  const config = {
    model_type: 'llama',
    hidden_size: E,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    vocab_size: V,
    max_position_embeddings: 512,
    bos_token_id: 1,
    eos_token_id: 2,
  };
  return { tensors: t, config };
}

function copyTokenizer(dir: string): void {
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokenizerFixture('llama'), f), path.join(dir, f));
}

/** The same kind of LLM as a plain Hugging Face folder, with the LLaMA tokenizer. */
export function writeLlmFixture(dir: string, seed = 4): void {
  fs.mkdirSync(dir, { recursive: true });
  const { tensors, config } = randomLlm(new Rng(seed));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  for (const x of Object.values(tensors)) x.dispose();
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  copyTokenizer(dir);
}

/** The CLIP fixture folder (a 42-pixel tower of 3 layers, 9 patches of width 64). */
export const CLIP_FIXTURE = CLIP;

export function writeTinyLlavaFixture(dir: string, seed = 4): void {
  fs.mkdirSync(dir, { recursive: true });
  const E = 64;
  const rng = new Rng(seed);
  const t: Record<string, Tensor> = {};
  const w = WeightFile.open(path.join(CLIP, 'model.safetensors'));
  for (const info of w.tensors) if (info.name.startsWith('vision_model.')) t[`vision_tower._vision_tower.${info.name}`] = w.load(info.name, { dtype: 'f32' }) as Tensor<'f32'>;
  w.close();
  const llm = randomLlm(rng, 'language_model.');
  Object.assign(t, llm.tensors);
  const add = (name: string, shape: number[], scale: number) => {
    t[name] = Tensor.from(
      rng.floats(
        shape.reduce((a, b) => a * b, 1),
        scale,
      ),
      shape,
    );
  };
  add('connector._connector.0.weight', [E, E], 0.12);
  add('connector._connector.0.bias', [E], 0.05);
  add('connector._connector.2.weight', [E, E], 0.12);
  add('connector._connector.2.bias', [E], 0.05);
  writeSafetensors(path.join(dir, 'model.safetensors'), t);
  for (const x of Object.values(t)) x.dispose();
  const vision = JSON.parse(fs.readFileSync(path.join(CLIP, 'config.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'tinyllava',
      text_config: llm.config,
      vision_config: vision,
      connector_type: 'mlp2x_gelu',
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'patch',
    }),
  );
  copyTokenizer(dir);
}
