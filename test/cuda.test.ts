/**
 * Devices: the CPU build refuses GPU tensors clearly; a CUDA build (npm run
 * build:cuda) loads without a GPU and runs on the CPU; on a machine with a
 * GPU, the CUDA kernels agree with the CPU ones. The kernels themselves are
 * checked against PyTorch by bench/gpu/check.py on a GPU machine.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
  Tensor,
  attentionSync,
  backendInfo,
  cosineTopkSync,
  defaultDevice,
  deviceBytesInUse,
  gemmSync,
  hostBytesInUse,
  l2NormalizeSync,
  metricLossSync,
  projectionForwardSync,
  setCudaTf32,
} from '../lib';
import type { Device } from '../lib';
import { MetricClassifier } from '../lib/models/projector/classifier';
import { ClipVision } from '../lib/models/vision/clip_vision';
import { SiglipVision } from '../lib/models/vision/siglip_vision';
import { DecoderLM } from '../lib/models/llm/decoder';
import { loadVisionTower } from '../lib/models/vision/tower';
import { LabelSpace } from '../lib/models/projector/label_space';
import { Projector } from '../lib/models/projector/projector';
import { TRAIN_DEFAULTS, trainProjector } from '../lib/train/trainer';
import { writeClusters } from './helpers/feature_data';
import { cudaAddonPath } from '../lib/native';
import { relError } from './helpers/compare';
import { Rng } from './helpers/random';

const ROOT = path.join(__dirname, '..');
const VISION = path.join(__dirname, 'fixtures', 'vision');
const DECODERS = path.join(__dirname, 'fixtures', 'decoders');
const info = backendInfo();

/** Runs a script against the compiled library (dist/lib) in a fresh process with `env`. */
function child(script: string, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: ROOT,
    env: { ...process.env, TINYEMO_DEVICE: '', TINYEMO_CUDA_ADDON: '', ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('device names and the CPU build', () => {
  test('a device must be cpu, cuda or cuda:N', () => {
    expect(() => Tensor.empty([2], 'f32', 'gpu' as Device)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => Tensor.empty([2], 'f32', 'cuda:x' as Device)).toThrow(/cuda:N/);
  });

  test('setCudaTf32 takes a boolean, and changes nothing where no GPU answers', () => {
    expect(() => setCudaTf32('yes' as unknown as boolean)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    if (info.cudaDevices > 0) return;
    setCudaTf32(true);
    expect(backendInfo().cudaTf32).toBe(false);
    setCudaTf32(false);
  });

  test('host tensors say so, and toDevice to where they are is the same tensor', () => {
    const t = Tensor.from([1, 2, 3]);
    expect(t.device).toBe('cpu');
    expect(t.toDevice('cpu')).toBe(t);
    t.dispose();
  });

  (info.build === 'cpu' ? test : test.skip)('the CPU build refuses GPU tensors with a DEVICE error', () => {
    expect(() => Tensor.zeros([4], 'f32', 'cuda')).toThrow(expect.objectContaining({ code: 'DEVICE' }));
    const t = Tensor.from([1, 2]);
    expect(() => t.toDevice('cuda:0')).toThrow(/no CUDA support/);
    t.dispose();
    expect(info.cudaDevices).toBe(0);
  });

  (info.build === 'cpu' ? test : test.skip)('models placed on a GPU in the CPU build fail cleanly, leaving nothing behind', () => {
    expect(defaultDevice()).toBe('cpu');
    const labels = LabelSpace.random(['joy', 'fear', 'anger'], 32, 1);
    const p = Projector.init(16, 32, 32, 2);
    expect(p.device).toBe('cpu');
    expect(p.toDevice('cpu')).toBe(p);
    const before = hostBytesInUse();
    expect(() => p.toDevice('cuda')).toThrow(expect.objectContaining({ code: 'DEVICE' }));
    expect(hostBytesInUse()).toBe(before);
    expect(deviceBytesInUse()).toBe(0);
    const cls = new MetricClassifier(p, labels);
    expect(cls.device).toBe('cpu');
    const x = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i));
    expect(cls.classifySync(x, { topK: 2 }).map((r) => r.length)).toEqual([2, 2]);
    cls.dispose();
  });

  (info.build === 'cpu' ? test : test.skip)('a vision tower or decoder asked onto a GPU fails cleanly', () => {
    const before = hostBytesInUse();
    expect(() => ClipVision.load(path.join(VISION, 'clip'), { device: 'cuda' })).toThrow(expect.objectContaining({ code: 'DEVICE' }));
    expect(hostBytesInUse()).toBe(before);
    expect(() => loadVisionTower(path.join(VISION, 'siglip'), { device: 'cuda' })).toThrow(expect.objectContaining({ code: 'DEVICE' }));
    expect(hostBytesInUse()).toBe(before);
    expect(() => DecoderLM.load(path.join(DECODERS, 'openelm'), { device: 'cuda' })).toThrow(expect.objectContaining({ code: 'DEVICE' }));
    expect(hostBytesInUse()).toBe(before);
  });

  (info.build === 'cpu' ? test : test.skip)('training on a GPU in the CPU build fails before --out exists', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-cuda-train-'));
    try {
      const data = writeClusters(path.join(tmp, 'data'), { classes: ['joy', 'fear'], counts: [6, 6], dim: 8, sep: 2, seed: 1 });
      const out = path.join(tmp, 'out');
      await expect(trainProjector({ ...TRAIN_DEFAULTS, hidden: 16, epochs: 1, batchSize: 4, data: data.dir, out, device: 'cuda' })).rejects.toMatchObject({ code: 'DEVICE' });
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a CUDA build that does not load is said once, and the CPU build takes over', () => {
    const bad = path.join(os.tmpdir(), `tinyemo-not-an-addon-${process.pid}.node`);
    fs.writeFileSync(bad, 'not a shared object');
    try {
      const r = child(`console.log(require('./dist/lib').backendInfo().build)`, { TINYEMO_CUDA_ADDON: bad });
      expect(r.stdout.trim()).toBe('cpu');
      expect(r.stderr).toMatch(/TINYEMO_CUDA_LOAD.*could not be loaded[\s\S]*using the CPU build/);
    } finally {
      fs.rmSync(bad, { force: true });
    }
  });

  test.each([
    ['classify', 'x.npy'],
    ['reason', 'x.jpg', '--model', '.'],
  ])('tinyemo %s --device is checked', (...argv) => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'tinyemo.js'), ...argv, '--device', 'gpu'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--device takes cpu, cuda or cuda:N, not "gpu"/);
  });

  test('TINYEMO_DEVICE is checked, and =cuda without a CUDA build or device is a clear error', () => {
    const script = `try { require('./dist/lib').backendInfo(); console.log('loaded'); } catch (e) { console.log(e.code + ': ' + e.message); }`;
    expect(child(script, { TINYEMO_DEVICE: 'gpu' }).stdout).toMatch(/^INVALID_ARGUMENT: TINYEMO_DEVICE must be 'cpu' or 'cuda'/);
    if (info.cudaDevices === 0) {
      const out = child(script, { TINYEMO_DEVICE: 'cuda' }).stdout;
      expect(out).toMatch(/^DEVICE: TINYEMO_DEVICE=cuda, but /);
    }
    expect(child(script, { TINYEMO_DEVICE: 'cpu' }).stdout.trim()).toBe('loaded');
  });
});

const cudaBuild = cudaAddonPath(ROOT);
const haveCudaBuild = fs.existsSync(cudaBuild);
if (!haveCudaBuild) {
  console.log(`CUDA addon tests skipped: no CUDA build at ${cudaBuild} (npm run build:cuda, needs nvcc)`);
}

(haveCudaBuild ? describe : describe.skip)('the CUDA build (npm run build:cuda)', () => {
  test('loads where no GPU answers and runs every op on the CPU', () => {
    const script = `
      const te = require('./dist/lib');
      const i = te.backendInfo();
      const a = te.Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
      const w = te.Tensor.from([1, 0, -1, 0.5, 0.5, 0.5], [2, 3]);
      const y = te.gemmSync(a, w);
      let dev;
      try { te.Tensor.zeros([2], 'f32', 'cuda'); dev = 'allocated'; } catch (e) { dev = e.code; }
      te.setCudaTf32(true);
      const tf32 = te.backendInfo().cudaTf32;
      console.log(JSON.stringify({ build: i.build, devices: i.cudaDevices, device: i.device, y: Array.from(y.toArray()), dev, tf32 }));`;
    const r = child(script, { TINYEMO_CUDA_ADDON: cudaBuild });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { build: string; devices: number; device: string; y: number[]; dev: string; tf32: boolean };
    expect(out.build).toBe('cuda');
    expect(out.y).toEqual([-2, 3, -2, 7.5]);
    if (out.devices === 0) {
      expect(out.device).toBe('cpu');
      expect(out.dev).toBe('DEVICE'); // the CUDA runtime's own reason (no driver), as a typed error
      expect(out.tf32).toBe(false); // no GPU GEMMs to run as TF32
    }
  });

  test('TINYEMO_DEVICE=cuda with the CUDA build but no device answering is a clear error', () => {
    if (info.cudaDevices > 0) return;
    const script = `try { require('./dist/lib').backendInfo(); console.log('loaded'); } catch (e) { console.log(e.code + ': ' + e.message); }`;
    const out = child(script, { TINYEMO_DEVICE: 'cuda', TINYEMO_CUDA_ADDON: cudaBuild }).stdout;
    expect(out).toMatch(/^DEVICE: TINYEMO_DEVICE=cuda, but no CUDA device answers/);
  });
});

if (info.cudaDevices === 0) {
  console.log('CUDA kernel tests skipped: no CUDA device answers here (bench/gpu/check.sh checks the kernels on a GPU machine)');
}

(info.cudaDevices > 0 ? describe : describe.skip)('CUDA kernels against the CPU kernels', () => {
  const rng = new Rng(11);
  const host = (shape: number[], scale = 1) =>
    Tensor.from(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale),
      shape,
    );

  test('gemm, projection, top-k and attention give the CPU results, and disposing frees the device memory', () => {
    const deviceBefore = deviceBytesInUse();
    const a = host([37, 129]);
    const w = host([65, 129]);
    const ga = a.toDevice('cuda');
    const gw = w.toDevice('cuda');
    expect(ga.device).toBe('cuda:0');
    const want = gemmSync(a, w, { activation: 'gelu' });
    const got = gemmSync(ga, gw, { activation: 'gelu' });
    expect(got.device).toBe('cuda:0');
    expect(relError(got.toArray(), want.toArray())).toBeLessThan(1e-5);
    setCudaTf32(true);
    try {
      expect(backendInfo().cudaTf32).toBe(true);
      const tf = gemmSync(ga, gw, { activation: 'gelu' });
      expect(relError(tf.toArray(), want.toArray())).toBeLessThan(2e-3);
      tf.dispose();
    } finally {
      setCudaTf32(false);
    }
    expect(backendInfo().cudaTf32).toBe(false);

    const pw = {
      w1: host([96, 129], 0.1),
      b1: host([96], 0.1),
      bnWeight: host([96], 0.1),
      bnBias: host([96], 0.1),
      runningMean: host([96], 0.1),
      runningVar: Tensor.from(new Float32Array(96).fill(1.5)),
      w2: host([80, 96], 0.1),
      b2: host([80], 0.1),
    };
    const gpw = Object.fromEntries(Object.entries(pw).map(([k, t]) => [k, t.toDevice('cuda')])) as typeof pw;
    const gy = projectionForwardSync(ga, gpw);
    expect(relError(gy.toArray(), projectionForwardSync(a, pw).toArray())).toBeLessThan(1e-5);

    const table = host([1000, 129]);
    const gt = table.toDevice('cuda');
    const cpuTop = cosineTopkSync(a, table, 5);
    const gpuTop = cosineTopkSync(ga, gt, 5);
    expect(Array.from(gpuTop.indices.toArray())).toEqual(Array.from(cpuTop.indices.toArray()));

    const labels = l2NormalizeSync(host([7, 129]));
    const targets = Tensor.fromArray(
      'i32',
      Int32Array.from({ length: 37 }, (_, i) => (i * 3) % 6),
      [37],
    );
    const [gLabels, gTargets] = [labels.toDevice('cuda'), targets.toDevice('cuda')];
    for (const loss of ['cosine', 'infonce', 'ntxent'] as const) {
      const c = metricLossSync(loss, a, targets, labels);
      const g = metricLossSync(loss, ga, gTargets, gLabels);
      expect(g.grad.device).toBe('cuda:0');
      expect(Math.abs(g.loss.toArray()[0] - c.loss.toArray()[0])).toBeLessThan(1e-6 * Math.max(1, Math.abs(c.loss.toArray()[0])));
      expect(relError(g.grad.toArray(), c.grad.toArray())).toBeLessThan(1e-6);
      [c.loss, c.grad, g.loss, g.grad].forEach((t) => t.dispose());
    }
    const badTargets = Tensor.fromArray(
      'i32',
      Int32Array.from({ length: 37 }, (_, i) => (i === 5 ? 7 : 0)),
      [37],
      'cuda',
    );
    expect(() => metricLossSync('infonce', ga, badTargets, gLabels)).toThrow(/targets\[5\] is not a label index/);
    [labels, targets, gLabels, gTargets, badTargets].forEach((t) => t.dispose());

    const q = host([2, 33, 8, 64]);
    const k = host([2, 33, 2, 64]);
    const v = host([2, 33, 2, 64]);
    const [gq, gk, gv] = [q, k, v].map((t) => t.toDevice('cuda'));
    const att = attentionSync(gq, gk, gv, { causal: true });
    expect(relError(att.toArray(), attentionSync(q, k, v, { causal: true }).toArray())).toBeLessThan(1e-5);
    expect(deviceBytesInUse()).toBeGreaterThan(deviceBefore);
    for (const t of [ga, gw, got, gy, gt, gpuTop.scores, gpuTop.indices, gq, gk, gv, att, ...Object.values(gpw)]) t.dispose();
    expect(deviceBytesInUse()).toBe(deviceBefore);
  });

  test.each(['llama', 'openelm', 'phi', 'qwen2'])('the %s decoder on the GPU gives the CPU logits, prefill and decode', async (name) => {
    const cpu = DecoderLM.load(path.join(DECODERS, name));
    const gpu = DecoderLM.load(path.join(DECODERS, name), { device: 'cuda' });
    const [cc, gc] = [cpu.newCache(16), gpu.newCache(16)];
    expect(gc.k[0].device).toBe('cuda:0');
    const prompt = [1, 5, 9, 2, 7];
    expect(relError(await gpu.forward(prompt, gc), await cpu.forward(prompt, cc))).toBeLessThan(1e-4);
    expect(relError(await gpu.forward([3], gc), await cpu.forward([3], cc))).toBeLessThan(1e-4);
    for (const x of [cc, gc, cpu, gpu]) x.dispose();
  });

  test('a projector trains on the GPU as on the CPU (no dropout: the same steps)', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-cuda-train-'));
    try {
      const data = writeClusters(path.join(tmp, 'data'), { classes: ['joy', 'fear', 'anger'], counts: [20, 20, 20], dim: 24, sep: 2, seed: 3 });
      const cfg = { ...TRAIN_DEFAULTS, hidden: 32, epochs: 2, batchSize: 8, dropout: 0, data: data.dir };
      const a = await trainProjector({ ...cfg, out: path.join(tmp, 'cpu') });
      const b = await trainProjector({ ...cfg, out: path.join(tmp, 'gpu'), device: 'cuda' });
      // Adam divides by sqrt(v): tiny gradient differences move near-zero weights by up to lr, hence the slack.
      expect(b.epochs.map((e) => e.trainLoss)[1]).toBeCloseTo(a.epochs.map((e) => e.trainLoss)[1], 3);
      const pa = Projector.load(path.join(tmp, 'cpu', 'projector.safetensors'));
      const pb = Projector.load(path.join(tmp, 'gpu', 'projector.safetensors'));
      expect(relError(pb.weights.w2.toArray() as Float32Array, pa.weights.w2.toArray() as Float32Array)).toBeLessThan(1e-2);
      pa.dispose();
      pb.dispose();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('the CLIP tower on the GPU gives what it gives on the CPU', async () => {
    const cpu = ClipVision.load(path.join(VISION, 'clip'));
    const gpu = ClipVision.load(path.join(VISION, 'clip'), { device: 'cuda' });
    expect(gpu.device).toBe('cuda:0');
    const pixels = host([2, 3, 42, 42]);
    const a = await cpu.forward(pixels, { hiddenStates: [-2] });
    const b = await gpu.forward(pixels, { hiddenStates: [-2] });
    expect(relError(b.imageEmbeds!.toArray(), a.imageEmbeds!.toArray())).toBeLessThan(1e-4);
    expect(relError(b.hiddenStates.get(-2)!.toArray(), a.hiddenStates.get(-2)!.toArray())).toBeLessThan(1e-4);
    cpu.dispose();
    gpu.dispose();
  });

  test('the SigLIP tower (pooling head included) on the GPU gives what it gives on the CPU', async () => {
    const cpu = loadVisionTower(path.join(VISION, 'siglip')).model;
    const gpu = loadVisionTower(path.join(VISION, 'siglip'), { device: 'cuda' }).model;
    expect(gpu instanceof SiglipVision && gpu.device).toBe('cuda:0');
    const pixels = host([3, 3, 56, 56]);
    const a = await cpu.forward(pixels, { hiddenStates: [0, -2] });
    const b = await gpu.forward(pixels, { hiddenStates: [0, -2] });
    expect(relError(b.imageEmbeds!.toArray(), a.imageEmbeds!.toArray())).toBeLessThan(1e-4);
    for (const k of [0, -2]) expect(relError(b.hiddenStates.get(k)!.toArray(), a.hiddenStates.get(k)!.toArray())).toBeLessThan(1e-4);
    cpu.dispose();
    gpu.dispose();
  });
});
