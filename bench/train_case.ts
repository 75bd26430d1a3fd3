/**
 * A whole `tinyemo train` run of the default recipe (5 epochs) on a data set
 * of Emotion6's size: 6 classes of 231 CLIP-L/14-sized features (768 values),
 * written once as .npy files; PyTorch's side (torch_train.py) reads the same
 * folder. Each timed call loads the folder, trains, validates every epoch
 * and writes its checkpoints, as a user's run does.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { npyBytes } from '../lib/io/npy';
import { TRAIN_DEFAULTS, trainProjector } from '../lib/train/trainer';
import type { BenchCase } from './cases';

const CLASSES = ['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise'];
const PER_CLASS = 231; // 1,386 in all, Emotion6's train split
const DIM = 768;

/** Gaussian clusters (unit noise around centres of spread 0.5), so the run learns something. */
function writeDataset(dir: string): void {
  let s = 0x2545f491;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  for (const c of CLASSES) {
    fs.mkdirSync(path.join(dir, c), { recursive: true });
    const centre = Float32Array.from({ length: DIM }, () => 0.5 * normal());
    for (let i = 0; i < PER_CLASS; ++i) {
      const v = Float32Array.from(centre, (m) => m + normal());
      fs.writeFileSync(path.join(dir, c, `${String(i).padStart(4, '0')}.npy`), npyBytes(v, [DIM]));
    }
  }
}

export function trainRunCase(): BenchCase {
  // One training with validation, as torch_train.py runs it (no refit).
  const cfg = { ...TRAIN_DEFAULTS, refit: false };
  return {
    name: 'train_emotion6_5ep',
    kind: 'train_run',
    params: { samples: CLASSES.length * PER_CLASS, classes: CLASSES.length, in: DIM, hidden: cfg.hidden, epochs: cfg.epochs, batch: cfg.batchSize },
    heavy: true,
    setup() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-bench-train-'));
      const data = path.join(root, 'data');
      writeDataset(data);
      const run = async () => {
        await trainProjector({ ...cfg, data, out: path.join(root, 'tinyemo') });
      };
      return {
        run,
        torchParams: { data, out: path.join(root, 'torch'), config: JSON.stringify(cfg) },
        dispose: () => fs.rmSync(root, { recursive: true, force: true }),
      };
    },
  };
}
