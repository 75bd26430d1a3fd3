import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor } from '../lib';
import { ModelFolder, subConfig } from '../lib/io/model_folder';
import { writeSafetensors } from '../lib/io/safetensors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-folder-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function folder(name: string, files: Record<string, string | Buffer | Record<string, Tensor>>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) {
    if (typeof content === 'string' || Buffer.isBuffer(content)) fs.writeFileSync(path.join(dir, f), content);
    else writeSafetensors(path.join(dir, f), content);
  }
  return dir;
}

const config = JSON.stringify({ model_type: 'clip', vision_config: { hidden_size: 4, layer_norm_eps: 1e-5 }, logit_scale_init_value: NaN }).replace('null', 'NaN');

describe('Hugging Face model folders', () => {
  test('config.json (nested, with NaN as Python writes it) and model.safetensors; dtype conversion on load', () => {
    const dir = folder('single', { 'config.json': config, 'model.safetensors': { 'a.weight': Tensor.from([1, 2, 3, 4], [2, 2]).toSync('bf16'), 'a.bias': Tensor.from([5, 6]) } });
    const m = ModelFolder.open(dir);
    expect(subConfig(m.config, 'vision_config')).toEqual({ hidden_size: 4, layer_norm_eps: 1e-5 });
    expect(Number.isNaN(m.config.logit_scale_init_value)).toBe(true);
    expect(m.weightNames.sort()).toEqual(['a.bias', 'a.weight']);
    expect(m.info('a.weight')).toEqual({ name: 'a.weight', dtype: 'BF16', shape: [2, 2] });
    expect(Array.from(m.load('a.weight', { dtype: 'f32' }).data)).toEqual([1, 2, 3, 4]);
    m.checkWeights(['a.weight', 'a.bias']);
    m.close();
  });

  test('sharded safetensors through model.safetensors.index.json', () => {
    const dir = folder('sharded', {
      'config.json': '{}',
      'model-00001-of-00002.safetensors': { x: Tensor.from([1]) },
      'model-00002-of-00002.safetensors': { y: Tensor.from([2, 3]) },
      'model.safetensors.index.json': JSON.stringify({
        metadata: { total_size: 12 },
        weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' },
      }),
    });
    const m = ModelFolder.open(dir);
    expect(Array.from(m.load('y').toArray() as Float32Array)).toEqual([2, 3]);
    expect(Array.from(m.load('x').toArray() as Float32Array)).toEqual([1]);
    m.close();
  });

  test('pytorch_model.bin fallback', () => {
    const dir = folder('bin', { 'config.json': '{}', 'pytorch_model.bin': fs.readFileSync(path.join(__dirname, 'fixtures', 'weights', 'projector.bin')) });
    const m = ModelFolder.open(dir);
    expect(m.weightNames).toContain('1.num_batches_tracked');
    expect(m.info('4.weight').shape).toEqual([8, 8]);
    m.close();
  });

  test('missing and unexpected weights are listed in one error', () => {
    const dir = folder('mismatch', { 'config.json': '{}', 'model.safetensors': { a: Tensor.from([1]), extra: Tensor.from([2]) } });
    const m = ModelFolder.open(dir);
    expect(() => m.checkWeights(['a', 'b', 'c'])).toThrow(/missing: b, c; unexpected: extra/);
    m.checkWeights(['a'], { allowUnexpected: (n) => n === 'extra' });
    m.close();
  });

  test('hostile folders: shard names that leave the folder, bad JSON, no config', () => {
    const escape = folder('escape', {
      'config.json': '{}',
      'model.safetensors.index.json': JSON.stringify({ weight_map: { a: '../../../etc/passwd' } }),
    });
    expect(() => ModelFolder.open(escape)).toThrow(expect.objectContaining({ code: 'INVALID_FILE', message: expect.stringContaining('plain file name') }));
    const dup = folder('dup', { 'config.json': '{"a": 1, "a": 2}' });
    expect(() => ModelFolder.open(dup)).toThrow(/duplicate key/);
    const utf = folder('utf', { 'config.json': Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) });
    expect(() => ModelFolder.open(utf)).toThrow(expect.objectContaining({ code: 'INVALID_FILE' }));
    const none = folder('none', { 'model.safetensors': { a: Tensor.from([1]) } });
    expect(() => ModelFolder.open(none)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(ModelFolder.open(none, { requireConfig: false }).weightNames).toEqual(['a']);
    const lying = folder('lying', {
      'config.json': '{}',
      'model-1.safetensors': { a: Tensor.from([1]) },
      'model.safetensors.index.json': JSON.stringify({ weight_map: { b: 'model-1.safetensors' } }),
    });
    expect(() => ModelFolder.open(lying).load('b')).toThrow(/does not hold it/);
  });
});

describe('tinyemo inspect', () => {
  const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
  test('lists a file as text and as one JSON document', () => {
    const file = path.join(__dirname, 'fixtures', 'weights', 'state_zip.pt');
    const text = spawnSync(process.execPath, [bin, 'inspect', file], { encoding: 'utf8' });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/torch-zip, 18 tensors/);
    expect(text.stdout).toMatch(/transposed\s+F32\s+\[6, 4\]/);
    const json = JSON.parse(spawnSync(process.execPath, [bin, 'inspect', file, '--json'], { encoding: 'utf8' }).stdout);
    expect(json.tensors).toHaveLength(18);
    expect(json.tensors.find((t: { name: string }) => t.name === 'bf16')).toEqual({ name: 'bf16', dtype: 'BF16', shape: [2, 3] });
  });

  test('a hostile file is a message and exit code 2, not a crash', () => {
    const r = spawnSync(process.execPath, [bin, 'inspect', path.join(__dirname, 'fixtures', 'weights', 'evil.pt')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/refused global os\.system/);
    expect(r.stdout).toBe('');
  });
});
