/**
 * Small real models for the service's tests: a projector trained on features
 * of the CLIP fixture (its tower named in the bundle), and a TinyLLaVA-format
 * model over that CLIP tower. Also the CLI, to compare the service with.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { extractFeatures } from '../../lib/models/vision/extract_features';
import { TRAIN_DEFAULTS, trainProjector } from '../../lib/train/trainer';
import { REPO } from './repo';
import { writeTinyLlavaFixture } from './tinyllava_fixture';

export const IMAGES = path.join(REPO, 'test', 'fixtures', 'images');
const CLIP = path.join(REPO, 'test', 'fixtures', 'vision', 'clip');
const bin = path.join(REPO, 'bin', 'tinyemo.js');

export interface ServeFixture {
  tmp: string;
  model: string;
  mllm: string;
}

export async function makeServeFixture(prefix: string): Promise<ServeFixture> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const images = path.join(tmp, 'images');
  for (const [cls, f] of [
    ['joy', 'photo_640x480.jpg'],
    ['joy', 'wide_1023x257.webp'],
    ['sadness', 'grey_225x224.png'],
    ['sadness', 'palette_500x375.png'],
    ['fear', 'portrait_300x517.png'],
  ]) {
    fs.mkdirSync(path.join(images, cls), { recursive: true });
    fs.copyFileSync(path.join(IMAGES, f), path.join(images, cls, f));
  }
  const feats = path.join(tmp, 'features');
  await extractFeatures({ images, visionDir: CLIP, visionName: CLIP, out: feats });
  const model = path.join(tmp, 'model');
  await trainProjector({ ...TRAIN_DEFAULTS, data: feats, out: model, valSplit: 0, epochs: 2, hidden: 16, batchSize: 2 });
  const mllm = path.join(tmp, 'tinyllava');
  writeTinyLlavaFixture(mllm);
  return { tmp, model, mllm };
}

/** `tinyemo ARGS...` with its JSON output parsed. */
export function cliJson<T>(...args: string[]): T {
  const r = spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tinyemo ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export const tinyemoBin = bin;
