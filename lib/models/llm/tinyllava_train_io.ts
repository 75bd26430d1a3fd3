/**
 * Where a trainable TinyLLaVA comes from and where it goes: a TinyLLaVA
 * Factory folder (config.json with text_config and vision_config;
 * language_model.*, vision_tower._vision_tower.*, connector._connector.*), or
 * parts for stage 1 (a CLIP or SigLIP folder, a decoder folder, a connector
 * initialised from a seed as nn.Linear initialises itself); and the folder a
 * run writes, in the same layout, which TinyLlava.load, `tinyemo generate` and
 * TinyLLaVA's own loader read.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError, invalidFile } from '../../errors';
import { writeFileAtomic } from '../../io/file';
import { JsonObject, ModelFolder } from '../../io/model_folder';
import { writeSafetensors } from '../../io/safetensors';
import { Device, Tensor } from '../../tensor';
import { Rng } from '../../util/rng';
import { ClipVision } from '../vision/clip_vision';
import { ImagePreprocess, preprocessForFolder } from '../vision/preprocess';
import { SiglipVision } from '../vision/siglip_vision';
import { visionFamily } from '../vision/tower';
import { WeightLoader } from '../weight_loader';
import { decoderConfig } from './decoder_config';
import { DecoderTrainer } from './decoder_train';
import { Param, TrainLinear, loadTrainWeights } from './decoder_train_weights';
import { adapterTransforms } from './lora';
import { TrainableTinyLlava } from './tinyllava_train';
import { VisionTrainer } from './vision_train';

export type MllmSource = { kind: 'mllm'; dir: string } | { kind: 'parts'; vision: string; llm: string; connector: string; seed: number };

/** A TinyLLaVA in training with its frozen tower (none when the tower trains: model.vision) and what saving it needs. */
export interface LoadedMllm {
  model: TrainableTinyLlava;
  vision?: ClipVision | SiglipVision;
  preprocess: ImagePreprocess;
  featureLayer: number;
  selectStrategy: 'patch' | 'cls_patch';
  /** config.json of the folder a run writes (TinyLLaVA's keys). */
  config: JsonObject;
  /** The tower's weights as the source stores them: folder and name prefix. */
  visionWeights: { dir: string; prefix: string };
  dispose(): void;
}

const CONNECTOR = /^mlp(\d+)x_gelu$/;

export interface LoadMllmOptions {
  device?: Device;
  /** Merge a LoRA adapter beside a TinyLLaVA folder's weights into them (default true). */
  mergeAdapter?: boolean;
  /** Load the tower as f32 Params too (VisionTrainer), for --tune vision=full. */
  trainVision?: boolean;
}

export function loadTrainableMllm(src: MllmSource, opts: LoadMllmOptions = {}): LoadedMllm {
  return src.kind === 'mllm' ? fromFolder(src.dir, opts) : fromParts(src, opts);
}

function fromFolder(dir: string, opts: LoadMllmOptions): LoadedMllm {
  const device = opts.device;
  const mergeAdapter = opts.mergeAdapter ?? true;
  const folder = ModelFolder.open(dir);
  try {
    const adapter = mergeAdapter ? adapterTransforms(dir) : undefined;
    if (adapter) folder.setTransforms(adapter);
    const c = folder.config;
    if (c.model_type !== 'tinyllava') throw new TinyEmoError('UNSUPPORTED', `${dir}: model_type "${String(c.model_type)}" is not tinyllava`);
    const text = objectField(c, 'text_config', dir);
    const vis = objectField(c, 'vision_config', dir);
    const depth = connectorDepth(c.connector_type, dir);
    const towerPart = folder.part('vision_tower._vision_tower.', { ...vis });
    const towerLoader = new WeightLoader(towerPart, 'f32', device);
    const tower = loadTowers(towerPart, towerLoader, opts, selection(c));
    const llmPart = folder.part('language_model.', { ...text });
    // The LLM's names are its own inside the part; the connector's are the folder's.
    const llmLoader = new WeightLoader(llmPart, 'f32', device);
    const loader = new WeightLoader(folder, 'f32', device);
    try {
      const cfg = decoderConfig(text, dir);
      const weights = loadTrainWeights(llmPart, cfg, llmLoader);
      const E = cfg.hidden;
      const connector = Array.from({ length: depth }, (_, i) => {
        const p = `connector._connector.${2 * i}`;
        const inp = i === 0 ? tower.shape.hiddenSize : E;
        return { w: param(`${p}.weight`, loader.tensor(`${p}.weight`, [E, inp], 'f32')), b: param(`${p}.bias`, loader.tensor(`${p}.bias`, [E], 'f32')) };
      });
      return assemble(new TrainableTinyLlava(new DecoderTrainer(cfg, weights), connector, tower.trainer), tower, c, { dir, prefix: 'vision_tower._vision_tower.' }, dir, [
        llmLoader,
        loader,
        towerLoader,
      ]);
    } catch (e) {
      llmLoader.disposeAll();
      loader.disposeAll();
      towerLoader.disposeAll();
      tower.frozen?.dispose();
      throw e;
    }
  } finally {
    folder.close();
  }
}

function fromParts(src: Extract<MllmSource, { kind: 'parts' }>, opts: LoadMllmOptions): LoadedMllm {
  const device = opts.device;
  const depth = connectorDepth(src.connector, src.connector);
  const vfolder = ModelFolder.open(src.vision);
  const towerLoader = new WeightLoader(vfolder, 'f32', device);
  let tower: Towers;
  try {
    tower = loadTowers(vfolder, towerLoader, opts, selection({}));
  } catch (e) {
    towerLoader.disposeAll();
    throw e;
  } finally {
    vfolder.close();
  }
  const folder = ModelFolder.open(src.llm);
  const loader = new WeightLoader(folder, 'f32', device);
  try {
    const cfg = decoderConfig(folder.config, src.llm);
    const weights = loadTrainWeights(folder, cfg, loader);
    const connector = initConnector(depth, tower.shape.hiddenSize, cfg.hidden, src.seed, device);
    for (const l of connector) loader.owned.push(l.w.value, l.b!.value);
    const visionConfig = JSON.parse(fs.readFileSync(path.join(src.vision, 'config.json'), 'utf8')) as JsonObject;
    const config: JsonObject = {
      model_type: 'tinyllava',
      architectures: ['TinyLlavaForConditionalGeneration'],
      text_config: folder.config,
      vision_config: visionConfig,
      connector_type: src.connector,
      vision_feature_layer: -2,
      vision_feature_select_strategy: 'patch',
      ignore_index: -100,
      image_token_index: -200,
    };
    return assemble(new TrainableTinyLlava(new DecoderTrainer(cfg, weights), connector, tower.trainer), tower, config, { dir: src.vision, prefix: '' }, src.vision, [
      loader,
      towerLoader,
    ]);
  } catch (e) {
    loader.disposeAll();
    towerLoader.disposeAll();
    tower.frozen?.dispose();
    throw e;
  } finally {
    folder.close();
  }
}

function assemble(model: TrainableTinyLlava, tower: Towers, config: JsonObject, visionWeights: LoadedMllm['visionWeights'], preDir: string, loaders: WeightLoader[]): LoadedMllm {
  const { featureLayer: layer, strategy } = selection(config);
  return {
    model,
    vision: tower.frozen,
    preprocess: preprocessForFolder(path.resolve(preDir), tower.shape.family, tower.shape.imageSize),
    featureLayer: layer,
    selectStrategy: strategy,
    config,
    visionWeights,
    dispose: () => {
      for (const l of loaders) l.disposeAll();
      tower.frozen?.dispose();
    },
  };
}

/** Which hidden state of the tower feeds the connector, and whether its first row is dropped (TinyLLaVA's keys). */
function selection(config: JsonObject): { featureLayer: number; strategy: 'patch' | 'cls_patch' } {
  return {
    featureLayer: typeof config.vision_feature_layer === 'number' ? config.vision_feature_layer : -2,
    strategy: config.vision_feature_select_strategy === 'cls_patch' ? 'cls_patch' : 'patch',
  };
}

/** The tower as it is used: frozen (a ClipVision or SiglipVision), or training (f32 Params only: no second copy). */
interface Towers {
  frozen?: ClipVision | SiglipVision;
  trainer?: VisionTrainer;
  shape: { family: 'clip' | 'siglip'; hiddenSize: number; imageSize: number };
}

function loadTowers(folder: ModelFolder, loader: WeightLoader, opts: LoadMllmOptions, sel: ReturnType<typeof selection>): Towers {
  if (opts.trainVision) {
    const trainer = VisionTrainer.fromFolder(folder, loader, sel);
    return { trainer, shape: { family: trainer.family, hiddenSize: trainer.config.hiddenSize, imageSize: trainer.config.imageSize } };
  }
  const frozen = loadTower(folder, opts.device);
  const family = frozen instanceof SiglipVision ? 'siglip' : 'clip';
  return { frozen, shape: { family, hiddenSize: frozen.config.hiddenSize, imageSize: frozen.config.imageSize } };
}

function loadTower(folder: ModelFolder, device: Device | undefined): ClipVision | SiglipVision {
  return visionFamily(folder) === 'siglip' ? SiglipVision.load(folder, { device }) : ClipVision.load(folder, { device });
}

/**
 * mlpNx_gelu's N Linear layers as nn.Linear initialises them: weights and biases uniform in ±1/sqrt(fan_in)
 * (kaiming_uniform with a = sqrt(5)), drawn from `seed`.
 */
export function initConnector(depth: number, inDim: number, hidden: number, seed: number, device: Device | undefined): TrainLinear[] {
  const rng = new Rng(seed);
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * bound);
  return Array.from({ length: depth }, (_, i) => {
    const fanIn = i === 0 ? inDim : hidden;
    const bound = 1 / Math.sqrt(fanIn);
    const p = `connector._connector.${2 * i}`;
    return {
      w: param(`${p}.weight`, Tensor.from(uniform(hidden * fanIn, bound), [hidden, fanIn], device)),
      b: param(`${p}.bias`, Tensor.from(uniform(hidden, bound), [hidden], device)),
    };
  });
}

/** Writes the model in TinyLLaVA's layout: config.json, model.safetensors, and the tokenizer files. */
export function saveTinyLlava(out: string, m: LoadedMllm, opts: { tokenizerDir?: string; metadata?: Record<string, string> } = {}): void {
  fs.mkdirSync(out, { recursive: true });
  const tensors: Record<string, Tensor> = {};
  for (const p of m.model.params()) tensors[p.name.startsWith('connector.') ? p.name : `language_model.${p.name}`] = p.value;
  // A training tower's Params; the rest of it (layers past the feature layer, heads) as the source stores it.
  for (const p of m.model.vision?.params() ?? []) tensors[`vision_tower._vision_tower.${p.name}`] = p.value;
  const src = ModelFolder.open(m.visionWeights.dir);
  const loaded: Tensor[] = [];
  try {
    for (const name of src.weightNames) {
      if (!name.startsWith(`${m.visionWeights.prefix}vision_model.`)) continue;
      if (`vision_tower._vision_tower.${name.slice(m.visionWeights.prefix.length)}` in tensors) continue;
      const t = src.load(name);
      loaded.push(t);
      tensors[`vision_tower._vision_tower.${name.slice(m.visionWeights.prefix.length)}`] = t;
    }
    writeSafetensors(path.join(out, 'model.safetensors'), tensors, opts.metadata);
  } finally {
    for (const t of loaded) t.dispose();
    src.close();
  }
  writeFileAtomic(path.join(out, 'config.json'), [Buffer.from(`${JSON.stringify(m.config, null, 2)}\n`)]);
  if (opts.tokenizerDir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      const from = path.join(opts.tokenizerDir, f);
      if (fs.existsSync(from) && path.resolve(from) !== path.resolve(out, f)) fs.copyFileSync(from, path.join(out, f));
    }
  }
}

function param(name: string, value: Tensor): Param {
  return { name, value: value as Tensor<'f32'> };
}

function objectField(c: JsonObject, key: string, where: string): JsonObject {
  const v = c[key];
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidFile(where, `config.json has no "${key}" object`);
  return v as JsonObject;
}

function connectorDepth(type: unknown, where: string): number {
  const m = CONNECTOR.exec(typeof type === 'string' ? type : '');
  if (!m || Number(m[1]) < 1) throw new TinyEmoError('UNSUPPORTED', `${where}: connector "${String(type)}" (only mlpNx_gelu, e.g. mlp2x_gelu)`);
  return Number(m[1]);
}
