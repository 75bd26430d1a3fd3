/**
 * The strict JSON parser reads each character of a string once: a safetensors header that declares 100,000
 * tensors (about 8 MB) is parsed, and refused when one entry is wrong, in work bounded by its length (the
 * parser once searched ahead to the end of the text for every name: quadratic, 40 s for such a header).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { parseStrictJson } from '../lib/io/json';
import { WeightFile } from '../lib/io/weights';

function header(n: number, bad: boolean): string {
  const h: Record<string, unknown> = {};
  for (let i = 0; i < n; ++i) h[`model.layers.${i}.mlp.gate_proj.weight`] = { dtype: 'F32', shape: [1], data_offsets: [i * 4, i * 4 + 4] };
  if (bad) h['model.bad'] = { dtype: 'F32', shape: [2], data_offsets: [0, 4] };
  return JSON.stringify(h);
}

test.each([false, true])('100,000 tensors (a wrong one: %s): strings are read once, the file opens or is refused', (bad) => {
  const text = header(100_000, bad);
  const work = { chars: 0 };
  parseStrictJson(text, { work });
  expect(work.chars).toBeLessThanOrEqual(text.length);
  expect(work.chars).toBeGreaterThan(text.length / 3);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-json-')), 'big.safetensors');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(text), Buffer.alloc(400_000)]));
  try {
    if (bad) expect(() => WeightFile.open(file)).toThrow(/"model\.bad": shape \[2\] of F32 needs 8 bytes/);
    else {
      const w = WeightFile.open(file);
      expect(w.tensors).toHaveLength(100_000);
      w.close();
    }
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});
