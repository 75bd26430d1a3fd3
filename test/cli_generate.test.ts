/**
 * `tinyemo generate` on small random models: a TinyLLaVA-format model (the CLIP fixture, a random LLaMA-layout LLM,
 * an mlp2x_gelu connector) with and without an image, and the same LLM as a plain folder. The text is random; what
 * is checked is the flow: templates, the JSON and streamed forms adding up, seeds, refusals, and that the
 * multimodal model without an image answers exactly as its LLM alone does in the same template.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { writeSafetensors } from '../lib/io/safetensors';
import { WeightFile } from '../lib/io/weights';
import { Tensor } from '../lib/tensor';
import { writeTinyLlavaFixture } from './helpers/tinyllava_fixture';

const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
const photo = path.join(__dirname, 'fixtures', 'images', 'photo_640x480.jpg');
let tmp: string;
let mllm: string;
let plain: string;

const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-generate-'));
  mllm = path.join(tmp, 'tinyllava');
  writeTinyLlavaFixture(mllm);
  // The same LLM as a plain Hugging Face folder.
  plain = path.join(tmp, 'llm');
  fs.mkdirSync(plain);
  const w = WeightFile.open(path.join(mllm, 'model.safetensors'));
  const t: Record<string, Tensor> = {};
  for (const info of w.tensors) if (info.name.startsWith('language_model.')) t[info.name.slice('language_model.'.length)] = w.load(info.name);
  w.close();
  writeSafetensors(path.join(plain, 'model.safetensors'), t);
  for (const x of Object.values(t)) x.dispose();
  const config = JSON.parse(fs.readFileSync(path.join(mllm, 'config.json'), 'utf8')) as { text_config: object };
  fs.writeFileSync(path.join(plain, 'config.json'), JSON.stringify(config.text_config));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(mllm, f), path.join(plain, f));
}, 60000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('about an image, --json: the answer, its token count and the TinyLLaVA template of the LLM family', () => {
  const r = run('generate', '--mllm', mllm, '--image', photo, '--prompt', 'How does this picture feel?', '--max-new-tokens', '5', '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as { type: string; text: string; tokens: number; template: string };
  expect(j.template).toBe('tinyllava-llama');
  expect(j.tokens).toBeGreaterThan(0);
  expect(j.tokens).toBeLessThanOrEqual(5);
  expect(typeof j.text).toBe('string');
});

test('--stream --json: text events in order add up to the answer; a seed fixes a sampled answer', () => {
  const args = ['generate', '--mllm', mllm, '--image', photo, '--prompt', 'Describe it.', '--max-new-tokens', '8', '--temperature', '1', '--seed', '3'];
  const r = run(...args, '--stream', '--json');
  expect(r.status).toBe(0);
  const events = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; text: string });
  const done = events[events.length - 1];
  expect(done.type).toBe('done');
  expect(
    events
      .slice(0, -1)
      .map((e) => e.text)
      .join(''),
  ).toBe(done.text);
  const again = JSON.parse(run(...args, '--json').stdout) as { text: string };
  expect(again.text).toBe(done.text);
});

test('without an image the multimodal model answers as its LLM alone does, in the same template', () => {
  const prompt = ['--prompt', 'Name a calm colour.', '--max-new-tokens', '6', '--json'];
  const a = JSON.parse(run('generate', '--mllm', mllm, ...prompt).stdout) as { text: string; tokens: number };
  const b = JSON.parse(run('generate', '--mllm', plain, '--template', 'tinyllava-llama', ...prompt).stdout) as { text: string; tokens: number; template: string };
  expect(b.template).toBe('tinyllava-llama');
  expect(b.tokens).toBe(a.tokens);
  expect(b.text).toBe(a.text);
  const c = JSON.parse(run('generate', '--mllm', plain, ...prompt).stdout) as { template: string };
  expect(c.template).toBe('tinyllama');
});

test('refusals: an image for a text-only LLM, an unknown template, a missing prompt', () => {
  const a = run('generate', '--mllm', plain, '--image', photo, '--prompt', 'x');
  expect(a.status).toBe(2);
  expect(a.stderr).toMatch(/text-only LLM: an image needs a TinyLLaVA-format model \[INVALID_ARGUMENT\]/);
  const b = run('generate', '--mllm', plain, '--template', 'nope', '--prompt', 'x');
  expect(b.status).toBe(2);
  expect(b.stderr).toMatch(/unknown chat template "nope"/);
  const c = run('generate', '--mllm', plain);
  expect(c.status).toBe(1);
  expect(c.stderr).toMatch(/--prompt/);
});
