/**
 * Small synthetic data folders in the layout `tinyemo train` reads: one
 * folder per class, one feature file per sample, in the three formats
 * (.safetensors written by tinyemo, .npy written here from the format's
 * description, .pt copied from the PyTorch-written fixture).
 */
import * as fs from 'fs';
import * as path from 'path';

import { Tensor, writeSafetensors } from '../../lib';
import { npyBytes } from '../../lib/io/npy';
import { Rng } from './random';

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
