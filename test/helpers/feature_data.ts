/**
 * Small synthetic data folders in the layout `tinyemo train` reads: one
 * folder per class, one feature file per sample, in the three formats
 * (.safetensors written by tinyemo, .npy written here from the format's
 * description, .pt copied from the PyTorch-written fixture).
 */
import * as fs from 'fs';
import * as path from 'path';

import { Tensor, writeSafetensors } from '../../lib';
import { Rng } from './random';

/** A minimal .npy (version 1.0, little-endian f4, C order). */
export function npyBytes(values: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}

export interface SyntheticData {
  dir: string;
  classes: string[];
  dim: number;
  /** Per class, the vectors written, in file order. */
  samples: Float32Array[][];
}

/**
 * Gaussian clusters around random class centres (spread `sep`), unit noise;
 * files alternate between .safetensors and .npy.
 */
export function writeClusters(dir: string, opts: { classes: string[]; counts: number[]; dim: number; sep: number; seed: number }): SyntheticData {
  const rng = new Rng(opts.seed);
  const samples: Float32Array[][] = [];
  opts.classes.forEach((c, ci) => {
    const centre = rng.floats(opts.dim, opts.sep);
    fs.mkdirSync(path.join(dir, c), { recursive: true });
    const list: Float32Array[] = [];
    for (let i = 0; i < opts.counts[ci]; ++i) {
      const v = Float32Array.from(centre, (m) => m + rng.normal());
      list.push(v);
      if (i % 2 === 0) {
        const t = Tensor.from(v, [opts.dim]);
        writeSafetensors(path.join(dir, c, `${i}.safetensors`), { image_embeds: t });
        t.dispose();
      } else {
        fs.writeFileSync(path.join(dir, c, `${i}.npy`), npyBytes(v, [opts.dim]));
      }
    }
    samples.push(list);
  });
  return { dir, classes: opts.classes, dim: opts.dim, samples };
}
