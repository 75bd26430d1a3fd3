import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, TinyEmoError } from '../lib';
import { WeightFile } from '../lib/io/weights';
import { writeSafetensors } from '../lib/io/safetensors';
import { EMOTION6, describeWithEmotion6 } from './helpers/emotion6';

const dir = path.join(__dirname, 'fixtures', 'weights');
const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, Record<string, { dtype: string; shape: number[]; values: number[] }>>;

function values(t: Tensor): number[] {
  if (t.dtype === 'i64') return Array.from(t.toArray() as BigInt64Array, Number);
  if (t.dtype === 'i32') return Array.from(t.toArray() as Int32Array);
  return Array.from(t.toFloat32Array());
}

function expectFile(file: string, want: Record<string, { dtype: string; shape: number[]; values: number[] }>) {
  const w = WeightFile.open(path.join(dir, file));
  try {
    expect(w.tensors.map((t) => t.name).sort()).toEqual(Object.keys(want).sort());
    for (const info of w.tensors) {
      const e = want[info.name];
      expect({ name: info.name, dtype: info.dtype, shape: info.shape }).toEqual({ name: info.name, dtype: e.dtype, shape: e.shape });
      const got = values(w.load(info.name));
      expect(got.length).toBe(e.values.length);
      got.forEach((v, i) => expect(Math.abs(v - e.values[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(e.values[i]))));
    }
    return w.format;
  } finally {
    w.close();
  }
}

describe('PyTorch checkpoints written by PyTorch 1.13', () => {
  test('zip format: every dtype, strided views, storage offsets, shared storages, nesting, 0-d and empty tensors', () => {
    expect(expectFile('state_zip.pt', expected.state)).toBe('torch-zip');
  });
  test('legacy (non-zip) format', () => {
    expect(expectFile('state_legacy.pt', expected.state)).toBe('torch-legacy');
  });
  test('with the records torch 2.x adds (byteorder, .data/serialization_id)', () => {
    expectFile('torch2.pt', expected.state);
  });
  test('a bare tensor is named ""', () => {
    expectFile('tensor.pt', expected.tensor);
  });
  test('a TinyEmo projector state dict, num_batches_tracked included', () => {
    expectFile('projector.bin', expected.projector);
  });
  test('floats convert on load', () => {
    const w = WeightFile.open(path.join(dir, 'state_zip.pt'));
    const t = w.load('bf16', { dtype: 'f32' });
    expect(t.dtype).toBe('f32');
    expect(Array.from(t.data)).toEqual(expected.state.bf16.values);
    w.close();
  });
  test('TorchScript and pickles reaching for other globals are refused, naming why', () => {
    expect(() => WeightFile.open(path.join(dir, 'script.pt'))).toThrow(/TorchScript/);
    expect(() => WeightFile.open(path.join(dir, 'evil.pt'))).toThrow(/refused global os\.system/);
  });
});

describe('.npy and safetensors written by other tools', () => {
  test('NumPy arrays in C and Fortran order, int16 widened, object arrays refused', () => {
    const c = WeightFile.open(path.join(dir, 'c_order.npy'));
    const f = WeightFile.open(path.join(dir, 'fortran.npy'));
    expect(values(c.load(''))).toEqual(values(f.load('')));
    expect(c.info('')).toEqual({ name: '', dtype: 'F32', shape: [3, 5] });
    values(c.load('')).forEach((v, i) => expect(v).toBeCloseTo(expected.npy.c_order.values[i], 6));
    const i16 = WeightFile.open(path.join(dir, 'int16.npy')).load('');
    expect(i16.dtype).toBe('i32');
    expect(values(i16)).toEqual(expected.npy.int16.values);
    expect(() => WeightFile.open(path.join(dir, 'object.npy'))).toThrow(/object arrays/);
  });

  test('a safetensors file written from the specification, metadata kept', () => {
    const w = WeightFile.open(path.join(dir, 'spec.safetensors'));
    expect(w.format).toBe('safetensors');
    expect(w.metadata).toEqual({ format: 'pt' });
    for (const [name, e] of Object.entries(expected.safetensors)) {
      values(w.load(name)).forEach((v, i) => expect(v).toBeCloseTo(e.values[i], 6));
    }
  });
});

describe('safetensors round trips', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-st-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('write -> read gives the same values; write again gives the same bytes', () => {
    const base = Tensor.from(
      Float32Array.from({ length: 24 }, (_, i) => i / 3),
      [4, 6],
    );
    const tensors = {
      'z.f32': Tensor.from([1.5, -2, 3]),
      'a.f16': Tensor.from([0.1, 0.2, 0.3, 65504]).toSync('f16'),
      'm.bf16': Tensor.from([1, 2, 3e38]).toSync('bf16'),
      'i.i32': Tensor.fromArray('i32', Int32Array.from([-1, 2 ** 31 - 1]), [2]),
      'i.i64': Tensor.fromArray('i64', BigInt64Array.from([-(2n ** 62n), 5n]), [2]),
      'view.transposed': base.transpose(0, 1), // written in row-major order of the view
      empty: Tensor.zeros([0, 7]),
      scalar: Tensor.from([4], []),
    };
    const file = path.join(tmp, 'a.safetensors');
    writeSafetensors(file, tensors, { note: 'round trip' });
    const w = WeightFile.open(file);
    expect(w.metadata).toEqual({ note: 'round trip' });
    for (const [name, t] of Object.entries(tensors)) {
      const back = w.load(name);
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(values(back)).toEqual(values(t));
    }
    // The header length and each tensor's offset keep data aligned.
    const bytes = fs.readFileSync(file);
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    const again = path.join(tmp, 'b.safetensors');
    writeSafetensors(again, w.loadAll(), { note: 'round trip' });
    expect(fs.readFileSync(again).equals(bytes)).toBe(true);
    w.close();
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]); // no temp files left
  });

  test('a failed write leaves no file behind', () => {
    const file = path.join(tmp, 'no', 'such', 'dir', 'x.safetensors');
    expect(() => writeSafetensors(file, { a: Tensor.from([1]) })).toThrow(expect.objectContaining({ code: 'IO' }));
    expect(fs.existsSync(file)).toBe(false);
  });
});

const emotion6 = EMOTION6;

describeWithEmotion6('the real Emotion6 CLIP features (../shared/data)', () => {
  test('every file loads as a [768] f16 tensor with an L2 norm near 18-21', () => {
    const classes = fs.readdirSync(path.join(emotion6, 'train')).sort();
    expect(classes).toEqual(['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise']);
    let count = 0;
    for (const c of classes) {
      for (const f of fs.readdirSync(path.join(emotion6, 'train', c))) {
        const w = WeightFile.open(path.join(emotion6, 'train', c, f));
        expect(w.info('')).toEqual({ name: '', dtype: 'F16', shape: [768] });
        const v = w.load('', { dtype: 'f32' }).data;
        const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
        expect(norm).toBeGreaterThan(15);
        expect(norm).toBeLessThan(25);
        w.close();
        count += 1;
      }
    }
    expect(count).toBe(1386);
  });

  test("the fp16 values equal the record's raw bytes, read independently with Python's zipfile", () => {
    const file = path.join(emotion6, 'train', 'joy', fs.readdirSync(path.join(emotion6, 'train', 'joy'))[0]);
    const py = spawnSync(
      'python3',
      ['-c', 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); n=[x for x in z.namelist() if x.endswith("/data/0")][0]; sys.stdout.write(z.read(n).hex())', file],
      { encoding: 'utf8' },
    );
    if (py.status !== 0) {
      console.warn('skipped: python3 with zipfile is not available');
      return;
    }
    const raw = Buffer.from(py.stdout.trim(), 'hex');
    const t = WeightFile.open(file).load('');
    expect(Buffer.from((t.toArray() as Uint16Array).buffer).equals(raw)).toBe(true);
  });
});

test('opening a missing file or a folder is a typed error', () => {
  expect(() => WeightFile.open('/no/such/file.safetensors')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
  expect(() => WeightFile.open(dir)).toThrow(TinyEmoError);
});
