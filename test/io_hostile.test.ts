/**
 * Hostile weight files: truncated and corrupted at every section, lying
 * headers, huge declared sizes, overlapping offsets, pickles reaching for
 * other globals, zip bombs. Each must give a typed error, allocate nothing
 * native, and leave the process alive.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Tensor, TinyEmoError, hostBytesInUse } from '../lib';
import { writeSafetensors } from '../lib/io/safetensors';
import { WeightFile } from '../lib/io/weights';
import { Rng } from './helpers/random';
import { buildZip } from './helpers/zip';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-hostile-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const fixtures = path.join(__dirname, 'fixtures', 'weights');
let counter = 0;
export const casesRun: Record<string, number> = {};

/** Opens and loads everything; returns 'refused' (a TinyEmoError) or 'loaded'. Anything else fails the test. */
function attempt(bytes: Buffer, category: string): 'refused' | 'loaded' {
  casesRun[category] = (casesRun[category] ?? 0) + 1;
  const file = path.join(tmp, `case-${counter++}`);
  fs.writeFileSync(file, bytes);
  const before = hostBytesInUse();
  try {
    const w = WeightFile.open(file);
    try {
      for (const t of w.loadAll().values()) t.dispose();
    } finally {
      w.close();
    }
    return 'loaded';
  } catch (e) {
    if (!(e instanceof TinyEmoError)) throw new Error(`${category}: not a TinyEmoError: ${(e as Error).stack}`);
    expect(['INVALID_FILE', 'UNSUPPORTED', 'NOT_FOUND']).toContain(e.code);
    return 'refused';
  } finally {
    expect(hostBytesInUse()).toBe(before); // nothing native allocated or leaked
    fs.rmSync(file, { force: true });
  }
}

function refused(bytes: Buffer, category: string): void {
  expect(attempt(bytes, category)).toBe('refused');
}

function safetensors(header: unknown, data: Buffer = Buffer.alloc(0), lenOverride?: bigint): Buffer {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

describe('safetensors', () => {
  const good = path.join(tmp, 'good.safetensors');
  writeSafetensors(good, { a: Tensor.from([1, 2, 3]), b: Tensor.fromArray('i64', BigInt64Array.from([4n]), [1]) });
  const bytes = fs.readFileSync(good);

  test('truncated at every byte', () => {
    for (let n = 0; n < bytes.length; ++n) refused(bytes.subarray(0, n), 'safetensors truncation');
    expect(attempt(bytes, 'safetensors control')).toBe('loaded');
  });

  test('lying headers', () => {
    const f32 = (offsets: number[], shape = [2]) => ({ dtype: 'F32', shape, data_offsets: offsets });
    const d8 = Buffer.alloc(8);
    const cases: Array<[string, Buffer]> = [
      ['header length 2^63', safetensors({}, Buffer.alloc(0), 1n << 63n)],
      ['header length over 100 MB', safetensors({}, Buffer.alloc(0), 100_000_001n)],
      ['header length past the end', safetensors({}, Buffer.alloc(0), 4096n)],
      ['header not UTF-8', safetensors(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('latin1'))],
      ['header not an object', safetensors('[1,2]')],
      ['duplicate key', safetensors('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', d8)],
      ['offset past 2^53', safetensors('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,9007199254740993]}}', d8)],
      ['unknown dtype', safetensors({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, Buffer.alloc(16))],
      ['negative shape', safetensors({ a: f32([0, 8], [-2]) }, d8)],
      ['shape product overflows', safetensors({ a: f32([0, 8], [2 ** 40, 2 ** 40]) }, d8)],
      ['size disagrees with shape', safetensors({ a: f32([0, 12]) }, Buffer.alloc(12))],
      ['overlapping tensors', safetensors({ a: f32([0, 8]), b: f32([4, 12]) }, Buffer.alloc(12))],
      ['a hole between tensors', safetensors({ a: f32([0, 8]), b: f32([12, 20]) }, Buffer.alloc(20))],
      ['bytes after the last tensor', safetensors({ a: f32([0, 8]) }, Buffer.alloc(16))],
      ['offsets past the data', safetensors({ a: f32([0, 8]) }, Buffer.alloc(4))],
      ['reversed offsets', safetensors({ a: f32([8, 0]) }, d8)],
      ['metadata not strings', safetensors({ __metadata__: { a: 1 } })],
      ['NaN literal', safetensors('{"a":NaN}')],
      ['nested 1000 deep', safetensors(`{"a":${'['.repeat(1000)}${']'.repeat(1000)}}`)],
      ['control character in a key', safetensors('{"a\u0001":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', d8)],
      ['no header at all', Buffer.from('hello world')],
    ];
    for (const [name, b] of cases) {
      try {
        refused(b, 'safetensors lying header');
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
  });
});

describe('PyTorch zip archives', () => {
  const zipBytes = fs.readFileSync(path.join(fixtures, 'state_zip.pt'));

  test('truncated anywhere', () => {
    for (let n = 0; n < zipBytes.length; n += 37) refused(zipBytes.subarray(0, n), 'torch zip truncation');
    for (let n = zipBytes.length - 300; n < zipBytes.length; ++n) refused(zipBytes.subarray(0, n), 'torch zip truncation');
  });

  test('single corrupted bytes anywhere: refused (bad structure or CRC) or loaded, never a crash', () => {
    const rng = new Rng(42);
    let refusedCount = 0;
    for (let k = 0; k < 400; ++k) {
      const b = Buffer.from(zipBytes);
      const i = rng.int(b.length);
      b[i] ^= 1 + rng.int(255);
      if (attempt(b, 'torch zip corruption') === 'refused') refusedCount += 1;
    }
    expect(refusedCount).toBeGreaterThan(200);
  });

  // data.pkl of {'w': tensor of 2 floats in storage "0"}; `size` is the declared element count.
  const pkl = (key = '0', size = 2, storage = 'FloatStorage') => {
    const k = Buffer.from(key);
    return Buffer.concat([
      Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x58, 0x01, 0, 0, 0, 0x77]), // PROTO 2, {}, 'w'
      Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n'),
      Buffer.from([0x28]), // MARK
      Buffer.from([0x28, 0x58, 7, 0, 0, 0]),
      Buffer.from('storage'),
      Buffer.from(`ctorch\n${storage}\n`),
      Buffer.from([0x58, k.length, 0, 0, 0]),
      k,
      Buffer.from([0x58, 3, 0, 0, 0]),
      Buffer.from('cpu'),
      Buffer.from([0x4b, size, 0x74, 0x51]), // BININT1 size, TUPLE, BINPERSID
      Buffer.from([0x4b, 0x00, 0x4b, 0x02, 0x85, 0x4b, 0x01, 0x85, 0x89, 0x7d, 0x74, 0x52]), // offset 0, (2,), (1,), False, {}, TUPLE, REDUCE
      Buffer.from([0x73, 0x2e]), // SETITEM, STOP
    ]);
  };
  const floats = Buffer.from(new Float32Array([1.5, -2]).buffer);

  test('a hand-built archive loads (the builder is right)', () => {
    const ok = buildZip([
      { name: 'a/data.pkl', data: pkl() },
      { name: 'a/data/0', data: floats },
      { name: 'a/version', data: Buffer.from('3\n') },
    ]);
    expect(attempt(ok, 'torch zip control')).toBe('loaded');
  });

  const corruptStorage = () => {
    const z = buildZip([
      { name: 'a/data.pkl', data: pkl() },
      { name: 'a/data/0', data: floats },
    ]);
    z[z.indexOf(floats) + 1] ^= 0x40;
    return z;
  };

  test('zip tricks: compressed, encrypted, overlapping, zip bomb sizes, duplicates, missing pieces', () => {
    const rec = (extra: Record<string, unknown> = {}) => [
      { name: 'a/data.pkl', data: pkl(), ...extra },
      { name: 'a/data/0', data: floats },
    ];
    const cases: Array<[string, Buffer]> = [
      ['compressed data.pkl', buildZip(rec({ method: 8 }))],
      ['encrypted data.pkl', buildZip(rec({ flags: 1 }))],
      ['declared 4 GB, stores 300 bytes', buildZip(rec({ declaredSize: 0xfffffff0 }))],
      ['two records share bytes', buildZip([...rec(), { name: 'a/data/1', data: floats, localOffsetOf: 'a/data/0' }])],
      ['two data.pkl', buildZip([...rec(), { name: 'b/data.pkl', data: pkl() }])],
      ['no data.pkl', buildZip([{ name: 'a/data/0', data: floats }])],
      ['storage record missing', buildZip([{ name: 'a/data.pkl', data: pkl() }])],
      [
        'record smaller than the storage (the torch 1.13 bypass)',
        buildZip([
          { name: 'a/data.pkl', data: pkl('0', 40) },
          { name: 'a/data/0', data: floats },
        ]),
      ],
      [
        'storage key with a path',
        buildZip([
          { name: 'a/data.pkl', data: pkl('../../etc/passwd') },
          { name: 'a/data/0', data: floats },
        ]),
      ],
      [
        'storage of an unknown type',
        buildZip([
          { name: 'a/data.pkl', data: pkl('0', 2, 'ComplexFloatStorage') },
          { name: 'a/data/0', data: floats },
        ]),
      ],
      ['big-endian byte order', buildZip([...rec(), { name: 'a/byteorder', data: Buffer.from('big') }])],
      ['corrupt storage bytes (CRC)', corruptStorage()],
    ];
    for (const [name, b] of cases) {
      try {
        refused(b, 'torch zip structure');
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
  });

  test('pickles that reach for code or break the machine', () => {
    const wrap = (p: Buffer) =>
      buildZip([
        { name: 'a/data.pkl', data: p },
        { name: 'a/version', data: Buffer.from('3\n') },
      ]);
    const P = (...parts: Array<number[] | string>) => Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : Buffer.from(x))));
    const cases: Array<[string, Buffer]> = [
      ['os.system', fs.readFileSync(path.join(fixtures, 'evil.pt'))],
      ['builtins.eval', wrap(P([0x80, 2], 'cbuiltins\neval\n', [0x58, 1, 0, 0, 0], '1', [0x85, 0x52, 0x2e]))],
      ['__builtin__.getattr', wrap(P([0x80, 2], 'c__builtin__\ngetattr\n', [0x2e]))],
      ['torch.load', wrap(P([0x80, 2], 'ctorch\nload\n', [0x2e]))],
      ['STACK_GLOBAL subprocess.Popen', wrap(P([0x80, 4, 0x8c, 10], 'subprocess', [0x8c, 5], 'Popen', [0x93, 0x2e]))],
      ['INST opcode', wrap(P([0x80, 2, 0x28], 'ios\nsystem\n', [0x2e]))],
      ['OBJ opcode', wrap(P([0x80, 2, 0x28, 0x6f, 0x2e]))],
      ['NEWOBJ of a storage class', wrap(P([0x80, 2], 'ctorch\nFloatStorage\n', [0x29, 0x81, 0x2e]))],
      ['REDUCE of a storage class', wrap(P([0x80, 2], 'ctorch\nFloatStorage\n', [0x29, 0x52, 0x2e]))],
      ['REDUCE of a string', wrap(P([0x80, 2, 0x58, 1, 0, 0, 0], 'x', [0x29, 0x52, 0x2e]))],
      ['100,000 MARKs', wrap(P([0x80, 2], Buffer.alloc(100000, 0x28).toString('latin1'), [0x2e]))],
      ['LONG4 of 2 GB', wrap(P([0x80, 2, 0x8b, 0, 0, 0, 0x80, 0x2e]))],
      ['BINUNICODE of 4 GB', wrap(P([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff, 0x2e]))],
      ['missing memo key', wrap(P([0x80, 2, 0x68, 9, 0x2e]))],
      ['STOP on an empty stack', wrap(P([0x80, 2, 0x2e]))],
      ['no STOP', wrap(P([0x80, 2, 0x5d]))],
      ['text PERSID', wrap(P([0x80, 2, 0x50], 'x\n', [0x2e]))],
      ['protocol 9', wrap(P([0x80, 9, 0x4e, 0x2e]))],
      ['a list that holds itself, no tensors', wrap(P([0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e]))],
      ['not UTF-8 text', wrap(P([0x80, 2, 0x58, 2, 0, 0, 0, 0xc3, 0x28, 0x2e]))],
    ];
    for (const [name, b] of cases) {
      try {
        refused(b, 'pickle');
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
  });

  test('TorchScript archives are refused', () => {
    refused(fs.readFileSync(path.join(fixtures, 'script.pt')), 'torch zip structure');
  });
});

describe('legacy PyTorch files and .npy', () => {
  test('legacy: truncated anywhere, or with a wrong magic number', () => {
    const b = fs.readFileSync(path.join(fixtures, 'state_legacy.pt'));
    for (let n = 0; n < b.length; n += 11) refused(b.subarray(0, n), 'torch legacy truncation');
    const wrong = Buffer.from(b);
    wrong[5] ^= 0xff;
    refused(wrong, 'torch legacy truncation');
  });

  test('.npy: object, big-endian and complex dtypes, lying shapes, truncation', () => {
    const npy = (header: string, data: Buffer, version = 1) => {
      let h = header;
      while ((10 + h.length + 1) % 64) h += ' ';
      h += '\n';
      const pre = Buffer.from([0x93, ...Buffer.from('NUMPY'), version, 0, h.length & 0xff, h.length >> 8]);
      return Buffer.concat([pre, Buffer.from(h, 'latin1'), data]);
    };
    const d = Buffer.alloc(16);
    const cases: Array<[string, Buffer]> = [
      ['object', npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", d)],
      ['big-endian', npy("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", d)],
      ['complex', npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", d)],
      ['shape larger than the data', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }", d)],
      ['data beyond the shape', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d)],
      ['version 9', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", d, 9)],
      ['code in the header', npy("{'descr': __import__('os').system('x'), 'shape': (4,), }", d)],
      ['huge shape product', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", d)],
    ];
    for (const [name, b] of cases) {
      try {
        refused(b, 'npy');
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
    const good = fs.readFileSync(path.join(fixtures, 'c_order.npy'));
    for (let n = 0; n < good.length; n += 3) refused(good.subarray(0, n), 'npy');
  });
});

afterAll(() => {
  const total = Object.values(casesRun).reduce((a, b) => a + b, 0);
  expect(total).toBeGreaterThan(1000);
  if (process.env.TINYEMO_PRINT_CASES) console.log(JSON.stringify({ total, ...casesRun }));
});
