/**
 * `tinyemo finetune` end to end on a task where the image decides the answer: solid squares of three colours in
 * varied shades, a tiny CLIP tower (frozen) and a tiny random LLaMA-layout LLM. Stage 1 trains the connector on
 * captions from scratch (a fresh model from parts); stage 2 trains connector and LLM on questions; then
 * `tinyemo generate` must name the colour of held-out images. Also: the output is TinyLLaVA's layout, the log,
 * a resumed run equal bit for bit to an uninterrupted one, Ctrl-C on the command line (exit 130, then --resume),
 * and the refusals.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

import { repoDir, snapshotDir } from '../lib/hub/cache';
import { WeightFile } from '../lib/io/weights';
import { ModelFolder } from '../lib/io/model_folder';
import { adapterTransforms } from '../lib/models/llm/lora';
import { FINETUNE_DEFAULTS, FinetuneConfig, STAGES } from '../lib/train/mllm_config';
import { finetune } from '../lib/train/mllm_trainer';
import { CLIP_FIXTURE, writeLlmFixture } from './helpers/tinyllava_fixture';

const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
const COLOURS: Record<string, [number, number, number]> = { red: [220, 30, 30], green: [30, 200, 40], blue: [30, 50, 220] };
let tmp: string;
let llm: string;
let images: string;
const heldOut: Array<[string, string]> = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-finetune-'));
  llm = path.join(tmp, 'llm');
  writeLlmFixture(llm, 7);
  images = path.join(tmp, 'images');
  fs.mkdirSync(images);
  const captions: string[] = [];
  const questions: string[] = [];
  for (const [name, [r, g, b]] of Object.entries(COLOURS)) {
    for (let i = 0; i < 8; ++i) {
      // Shades: each channel moved by up to ±25 so no two images are the same.
      const s = (v: number, k: number) => Math.max(0, Math.min(255, v + (((i * 7 + k * 13) % 11) - 5) * 5));
      const file = `${name}_${i}.png`;
      await sharp({ create: { width: 42, height: 42, channels: 3, background: { r: s(r, 0), g: s(g, 1), b: s(b, 2) } } })
        .png()
        .toFile(path.join(images, file));
      if (i >= 6) {
        heldOut.push([path.join(images, file), name]);
        continue;
      }
      const rec = (id: string, q: string, a: string) =>
        JSON.stringify({
          id,
          image: file,
          conversations: [
            { from: 'human', value: `<image>\n${q}` },
            { from: 'gpt', value: a },
          ],
        });
      captions.push(rec(`cap-${name}-${i}`, 'Describe the image.', `A ${name} square.`));
      questions.push(rec(`qa-${name}-${i}`, 'What colour is the square?', `${name}`));
    }
  }
  fs.writeFileSync(path.join(tmp, 'captions.jsonl'), `${captions.join('\n')}\n`);
  fs.writeFileSync(path.join(tmp, 'questions.jsonl'), `${questions.join('\n')}\n`);
}, 60000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function logOf(dir: string): Array<{ loss: number }> {
  return fs
    .readFileSync(path.join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { loss: number });
}

/** `tinyemo finetune --stage pretrain` from the parts (the CLIP fixture and the random LLM) on the captions. */
const pretrain = (out: string, ...extra: string[]) =>
  run('finetune', '--stage', 'pretrain', '--vision', CLIP_FIXTURE, '--llm', llm, '--data', path.join(tmp, 'captions.jsonl'), '--images', images, '--out', out, ...extra);

/** `tinyemo finetune --stage finetune` of stage 1 on the questions, the settings every test here uses. */
const finetuneArgs = (from: string, out: string, ...extra: string[]) => [
  'finetune',
  '--stage',
  'finetune',
  '--mllm',
  from,
  '--data',
  path.join(tmp, 'questions.jsonl'),
  '--images',
  images,
  '--out',
  out,
  '--epochs',
  '20',
  '--batch-size',
  '6',
  '--lr',
  '3e-3',
  '--json',
  ...extra,
];

/** How many held-out squares `tinyemo generate` names the colour of. */
function heldOutRight(dir: string): number {
  let right = 0;
  for (const [file, colour] of heldOut) {
    const g = run('generate', '--mllm', dir, '--image', file, '--prompt', 'What colour is the square?', '--max-new-tokens', '4', '--json');
    expect(g.status).toBe(0);
    if ((JSON.parse(g.stdout) as { text: string }).text.trim().toLowerCase().startsWith(colour)) right += 1;
  }
  return right;
}

test('pretrain from parts, then finetune: the model names the colour of held-out images', () => {
  const stage1 = path.join(tmp, 'stage1');
  const a = pretrain(stage1, '--epochs', '15', '--batch-size', '6', '--lr', '3e-3', '--json');
  expect(a.stderr).toBe('');
  expect(a.status).toBe(0);
  const r1 = JSON.parse(a.stdout) as { steps: number; lastLoss: number };
  expect(r1.steps).toBe(45);
  // TinyLLaVA's layout, the connector trained, the LLM as it was.
  const cfg = JSON.parse(fs.readFileSync(path.join(stage1, 'config.json'), 'utf8')) as Record<string, unknown>;
  expect(cfg).toMatchObject({ model_type: 'tinyllava', connector_type: 'mlp2x_gelu', vision_feature_layer: -2 });
  const w = WeightFile.open(path.join(stage1, 'model.safetensors'));
  expect(w.tensors.map((t) => t.name)).toEqual(
    expect.arrayContaining(['connector._connector.0.weight', 'language_model.lm_head.weight', 'vision_tower._vision_tower.vision_model.post_layernorm.weight']),
  );
  w.close();
  const log = fs
    .readFileSync(path.join(stage1, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { loss: number });
  expect(log).toHaveLength(45);
  // A frozen random LLM steered through its image positions alone: the loss falls, from about ln(32000).
  expect(log[log.length - 1].loss).toBeLessThan(0.7 * log[0].loss);

  const stage2 = path.join(tmp, 'stage2');
  const b = run(...finetuneArgs(stage1, stage2));
  expect(b.stderr).toBe('');
  expect(b.status).toBe(0);
  expect(heldOutRight(stage2)).toBe(heldOut.length);
}, 600000);

test('the tower trains too (--tune vision=full): the layers up to the feature layer change, the rest are kept, and the answers are right', () => {
  const stage1 = path.join(tmp, 'stage1');
  const out = path.join(tmp, 'vision-full');
  const r = run(...finetuneArgs(stage1, out, '--tune', 'vision=full'));
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const before = WeightFile.open(path.join(stage1, 'model.safetensors'));
  const after = WeightFile.open(path.join(out, 'model.safetensors'));
  const same = (name: string) => Buffer.from(after.load(name).toArray().buffer).equals(Buffer.from(before.load(name).toArray().buffer));
  const tower = 'vision_tower._vision_tower.vision_model';
  // The CLIP fixture has 3 layers and TinyLLaVA reads hidden state -2: layers 0 and 1 and the embeddings train.
  for (const n of [
    'embeddings.patch_embedding.weight',
    'embeddings.class_embedding',
    'pre_layrnorm.weight',
    'encoder.layers.0.self_attn.q_proj.weight',
    'encoder.layers.1.mlp.fc2.bias',
  ]) {
    expect({ n, same: same(`${tower}.${n}`) }).toEqual({ n, same: false });
  }
  for (const n of ['encoder.layers.2.self_attn.q_proj.weight', 'post_layernorm.weight']) expect({ n, same: same(`${tower}.${n}`) }).toEqual({ n, same: true });
  expect(after.tensors.map((t) => t.name).sort()).toEqual(before.tensors.map((t) => t.name).sort());
  before.close();
  after.close();
  expect(heldOutRight(out)).toBe(heldOut.length);
}, 600000);

test('LoRA on the LLM: PEFT adapter files beside the base, generate reads them, --merge-lora folds them in', () => {
  const stage1 = path.join(tmp, 'stage1');
  const lora8 = ['--tune', 'llm=lora', '--lora-r', '8', '--lora-alpha', '16'];

  const lora = path.join(tmp, 'lora');
  expect(run(...finetuneArgs(stage1, lora, ...lora8)).status).toBe(0);
  const adapter = JSON.parse(fs.readFileSync(path.join(lora, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  expect(adapter).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, lora_dropout: 0.05 });
  const w = WeightFile.open(path.join(lora, 'adapter_model.safetensors'));
  expect(w.tensors.map((t) => t.name)).toContain('base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight');
  w.close();
  // The base weights are stage 1's LLM, untouched.
  const base = WeightFile.open(path.join(stage1, 'model.safetensors'));
  const after = WeightFile.open(path.join(lora, 'model.safetensors'));
  const name = 'language_model.model.layers.1.mlp.down_proj.weight';
  expect(Buffer.from(after.load(name).toArray().buffer).equals(Buffer.from(base.load(name).toArray().buffer))).toBe(true);
  base.close();
  after.close();
  const merged = path.join(tmp, 'merged');
  expect(run(...finetuneArgs(stage1, merged, ...lora8, '--merge-lora')).status).toBe(0);
  expect(fs.existsSync(path.join(merged, 'adapter_config.json'))).toBe(false);
  for (const [file, colour] of heldOut) {
    const ask = (dir: string) =>
      (
        JSON.parse(run('generate', '--mllm', dir, '--image', file, '--prompt', 'What colour is the square?', '--max-new-tokens', '4', '--json').stdout) as { text: string }
      ).text.trim();
    const a = ask(lora);
    expect(a.toLowerCase().startsWith(colour)).toBe(true);
    expect(ask(merged)).toBe(a);
  }
}, 600000);

test('LoRA on every part: one PEFT adapter holds the tower, the connector and the LLM, generate reads it, --merge-lora folds them in', () => {
  const stage1 = path.join(tmp, 'stage1');
  const loraAll = ['--tune', 'vision=lora,connector=lora,llm=lora', '--lora-r', '8', '--lora-alpha', '16'];
  const out = path.join(tmp, 'lora-both');
  const r = run(...finetuneArgs(stage1, out, ...loraAll));
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const adapter = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')) as { target_modules: string[] };
  // The LLM's layers and the tower's (out_proj, fc1, fc2 are CLIP's names).
  expect(adapter.target_modules).toEqual(expect.arrayContaining(['q_proj', 'down_proj', 'out_proj', 'fc1', 'fc2', '_connector.0', '_connector.2']));
  const w = WeightFile.open(path.join(out, 'adapter_model.safetensors'));
  const names = w.tensors.map((t) => t.name);
  w.close();
  expect(names).toContain('base_model.model.vision_tower._vision_tower.vision_model.encoder.layers.1.mlp.fc2.lora_B.weight');
  expect(names).toContain('base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight');
  expect(names).toContain('base_model.model.connector._connector.2.lora_B.weight');
  // Layers past the feature layer are not adapted.
  expect(names.some((n) => n.includes('encoder.layers.2.'))).toBe(false);
  // The tower's base weights are stage 1's, untouched.
  const base = WeightFile.open(path.join(stage1, 'model.safetensors'));
  const after = WeightFile.open(path.join(out, 'model.safetensors'));
  const name = 'vision_tower._vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight';
  expect(Buffer.from(after.load(name).toArray().buffer).equals(Buffer.from(base.load(name).toArray().buffer))).toBe(true);
  base.close();
  after.close();
  const merged = path.join(tmp, 'lora-both-merged');
  expect(run(...finetuneArgs(stage1, merged, ...loraAll, '--merge-lora')).status).toBe(0);
  // Loading applies the adapter to the tower as well: its weight as loaded is the merged one, not the base.
  const folder = ModelFolder.open(out);
  folder.setTransforms(adapterTransforms(out)!);
  const loaded = folder.load(name, { dtype: 'f32' }).toArray() as Float32Array;
  folder.close();
  const m = WeightFile.open(path.join(merged, 'model.safetensors'));
  const want = m.load(name).toArray() as Float32Array;
  m.close();
  expect(Math.max(...loaded.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-6);
  const b0 = WeightFile.open(path.join(stage1, 'model.safetensors'));
  expect(Math.max(...(b0.load(name).toArray() as Float32Array).map((v, i) => Math.abs(v - want[i])))).toBeGreaterThan(1e-4);
  b0.close();
  for (const [file, colour] of heldOut) {
    const ask = (dir: string) =>
      (JSON.parse(run('generate', '--mllm', dir, '--image', file, '--prompt', 'What colour is the square?', '--max-new-tokens', '4', '--json').stdout) as { text: string }).text;
    const text = ask(out);
    expect(text.trim().toLowerCase().startsWith(colour)).toBe(true);
    expect(ask(merged)).toBe(text);
  }
}, 600000);

test('a run stopped by its signal (Ctrl-C) and resumed equals an uninterrupted one bit for bit (the tower training too)', async () => {
  const base: FinetuneConfig = {
    ...FINETUNE_DEFAULTS,
    stage: 'pretrain',
    tune: { ...STAGES.pretrain.tune, vision: 'full' },
    vision: CLIP_FIXTURE,
    llm,
    data: path.join(tmp, 'captions.jsonl'),
    images,
    out: '',
    epochs: 2,
    batchSize: 4,
    lr: 3e-3,
    saveEvery: 100,
    lora: { r: 4, alpha: 8, dropout: 0.1 },
    mergeLora: false,
  };
  const whole = await finetune({ ...base, out: path.join(tmp, 'whole') });
  expect(whole.steps).toBe(10);
  const abort = new AbortController();
  const part = { ...base, out: path.join(tmp, 'part') };
  const first = await finetune(part, { hooks: { signal: abort.signal, onStep: (l) => l.step === 4 && abort.abort() } });
  expect(first).toMatchObject({ stopped: true, steps: 4 });
  expect(JSON.parse(fs.readFileSync(path.join(part.out, 'trainer_state.json'), 'utf8'))).toMatchObject({ step: 4 });
  const second = await finetune(part, { resume: true });
  expect(second).toMatchObject({ stopped: false, steps: 10 });
  expect(logOf(part.out).map((l) => l.loss)).toEqual(logOf(path.join(tmp, 'whole')).map((l) => l.loss));
  const a = WeightFile.open(path.join(tmp, 'whole', 'model.safetensors'));
  const b = WeightFile.open(path.join(part.out, 'model.safetensors'));
  for (const info of a.tensors)
    expect([info.name, Buffer.from(b.load(info.name).toArray().buffer).equals(Buffer.from(a.load(info.name).toArray().buffer))]).toEqual([info.name, true]);
  a.close();
  b.close();
}, 300000);

test('refusals: mixed sources, LoRA on no layer, a frozen everything, a missing resume, a path that is not there (a hub id is one), records that do not encode are counted', () => {
  const base = ['finetune', '--data', path.join(tmp, 'captions.jsonl'), '--images', images, '--out', path.join(tmp, 'x')];
  expect(run(...base, '--mllm', tmp, '--llm', llm).stderr).toMatch(/--mllm, or --vision and --llm, not both/);
  expect(run(...base, '--vision', CLIP_FIXTURE, '--llm', llm, '--tune', 'llm=lora', '--lora-targets', 'qkv').stderr).toMatch(/LoRA targets qkv are not linear layers/);
  expect(run(...base, '--stage', 'pretrain', '--vision', CLIP_FIXTURE, '--llm', llm, '--tune', 'connector=frozen').stderr).toMatch(/nothing trains/);
  expect(run(...base, '--vision', CLIP_FIXTURE, '--llm', llm, '--resume').stderr).toMatch(/--resume: no checkpoint/);
  // Each path named, before any weights load; the missing one by its flag, not as a missing tokenizer.
  const parts = ['--vision', CLIP_FIXTURE, '--llm', llm];
  const other = (flag: string, value: string) => base.map((a, i) => (base[i - 1] === flag ? value : a));
  const refusals: Array<[string[], RegExp]> = [
    [[...other('--data', path.join(tmp, 'none.jsonl')), ...parts], /--data .*none\.jsonl does not exist \[NOT_FOUND\]/],
    [[...other('--data', images), ...parts], /--data .*images is not a file \[INVALID_ARGUMENT\]/],
    [[...other('--images', path.join(tmp, 'none')), ...parts], /--images .*none does not exist/],
    [[...base, '--mllm', path.join(tmp, 'none')], /--mllm .*none does not exist/],
    [[...base, '--vision', CLIP_FIXTURE, '--llm', path.join(tmp, 'none')], /--llm .*none does not exist/],
    [[...base, ...parts, '--tokenizer', path.join(tmp, 'captions.jsonl')], /--tokenizer .*captions\.jsonl is not a folder/],
  ];
  for (const [args, message] of refusals) {
    const r = run(...args);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 2, stderr: expect.stringMatching(message) });
  }
  expect(fs.existsSync(path.join(tmp, 'x'))).toBe(false);
  // A repository id in the hub cache serves as a model folder, as in generate and reason.
  const cache = path.join(tmp, 'hub');
  const commit = 'c'.repeat(40);
  fs.mkdirSync(path.join(repoDir(cache, 'org/tiny-llm'), 'refs'), { recursive: true });
  fs.writeFileSync(path.join(repoDir(cache, 'org/tiny-llm'), 'refs', 'main'), commit);
  fs.cpSync(llm, snapshotDir(cache, 'org/tiny-llm', commit), { recursive: true });
  const fromHub = spawnSync(process.execPath, [bin, ...base, '--stage', 'pretrain', '--vision', CLIP_FIXTURE, '--llm', 'org/tiny-llm', '--max-steps', '1', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, HF_HUB_CACHE: cache },
  });
  expect({ status: fromHub.status, stderr: fromHub.stderr }).toEqual({ status: 0, stderr: '' });
  expect(run(...base, '--stage', 'pretrain', '--vision', CLIP_FIXTURE, '--llm', 'org/absent').stderr).toMatch(/--llm org\/absent is neither a folder nor in the hub cache/);
  // A loss that becomes infinite stops the run with an error and keeps the last checkpoint.
  const nan = path.join(tmp, 'nan');
  const n = pretrain(nan, '--lr', '1e30', '--max-grad-norm', '0', '--batch-size', '2', '--save-every', '1', '--max-steps', '8');
  expect(n.status).toBe(2);
  expect(n.stderr).toMatch(/the loss became (NaN|Infinity) at step \d+: the run stops; the last checkpoint in .* is kept/);
  const kept = JSON.parse(fs.readFileSync(path.join(nan, 'trainer_state.json'), 'utf8')) as { step: number };
  expect(kept.step).toBeGreaterThanOrEqual(1);
  expect(fs.existsSync(path.join(nan, 'finetune.json'))).toBe(false);
  const bad = path.join(tmp, 'bad.jsonl');
  fs.writeFileSync(
    bad,
    `${fs.readFileSync(path.join(tmp, 'captions.jsonl'), 'utf8')}{"id": "x", "image": "nope.png", "conversations": [{"from": "human", "value": "<image>\\nhi"}, {"from": "gpt", "value": "a"}]}\n`,
  );
  const r = run(
    'finetune',
    '--stage',
    'pretrain',
    '--vision',
    CLIP_FIXTURE,
    '--llm',
    llm,
    '--data',
    bad,
    '--images',
    images,
    '--out',
    path.join(tmp, 'y'),
    '--max-steps',
    '1',
    '--json',
  );
  expect(r.status).toBe(0);
  expect((JSON.parse(r.stdout) as { rejected: Record<string, number> }).rejected).toEqual({ 'image "nope.png" not found': 1 });
});

test('tinyemo finetune on Ctrl-C: a checkpoint, how to resume, exit 130; --resume then finishes the run', async () => {
  const out = path.join(tmp, 'interrupted');
  const args = ['finetune', '--stage', 'pretrain', '--vision', CLIP_FIXTURE, '--llm', llm, '--data', path.join(tmp, 'captions.jsonl'), '--images', images];
  const rest = ['--out', out, '--epochs', '40', '--batch-size', '4', '--lr', '3e-3'];
  const child = spawn(process.execPath, [bin, ...args, ...rest]);
  let stderr = '';
  let sent = false;
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!sent && /^step 10\/200 /m.test(stderr)) {
      sent = true; // once: a second Ctrl-C ends the process at once
      child.kill('SIGINT');
    }
  });
  expect(await done).toBe(130);
  const stopped = /stopped at step (\d+): the checkpoint is in .*interrupted; continue with the same command and --resume/.exec(stderr);
  expect(stopped).not.toBeNull();
  const at = Number(stopped?.[1]);
  expect(at).toBeGreaterThanOrEqual(10);
  expect(at).toBeLessThan(200);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'))).toMatchObject({ step: at });
  const r = run(...args, ...rest, '--resume', '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ steps: 200, stopped: false });
  expect(logOf(out)).toHaveLength(200);
}, 300000);
