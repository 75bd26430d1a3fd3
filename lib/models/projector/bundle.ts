/**
 * tinyemo.json: a model folder describes itself — the projector file and
 * its sizes, the label space (names, source, table file), the taxonomy, and
 * how it was trained. Every command that takes a model folder reads it.
 */
import * as fs from 'fs';
import * as path from 'path';

import { TinyEmoError, invalidFile } from '../../errors';
import { writeFileAtomic } from '../../io/file';
import { readJsonFile } from '../../io/model_folder';
import { LabelSource, LabelSpace } from './label_space';
import { Projector } from './projector';

export const BUNDLE_FILE = 'tinyemo.json';

export interface Bundle {
  format: 'tinyemo';
  version: 1;
  projector: { file: string; inDim: number; hidden: number; outDim: number };
  labels: { file: string; names: string[]; source: LabelSource };
  taxonomy?: string;
  /** Which vision tower produced the features the projector expects (from `tinyemo features`' tinyemo-features.json). */
  vision?: { model: string; output: string };
  /** The multimodal model `tinyemo reason` uses with this projector (optional; --mllm overrides). */
  reasoning?: { model: string; tokenizer?: string; template?: string };
  training?: Record<string, unknown>;
}

export function writeBundle(dir: string, projector: Projector, labels: LabelSpace, extra: Pick<Bundle, 'taxonomy' | 'vision' | 'training'> = {}): Bundle {
  fs.mkdirSync(dir, { recursive: true });
  projector.save(path.join(dir, 'projector.safetensors'));
  labels.save(path.join(dir, 'labels.safetensors'));
  const bundle: Bundle = {
    format: 'tinyemo',
    version: 1,
    projector: { file: 'projector.safetensors', inDim: projector.inDim, hidden: projector.hidden, outDim: projector.outDim },
    labels: { file: 'labels.safetensors', names: [...labels.names], source: labels.source },
    ...extra,
  };
  writeFileAtomic(path.join(dir, BUNDLE_FILE), [Buffer.from(`${JSON.stringify(bundle, null, 2)}\n`)]);
  return bundle;
}

export interface LoadedBundle {
  bundle: Bundle;
  projector: Projector;
  labels: LabelSpace;
}

export function readBundle(dir: string): LoadedBundle {
  const file = path.join(dir, BUNDLE_FILE);
  if (!fs.existsSync(file)) throw new TinyEmoError('NOT_FOUND', `${dir} has no ${BUNDLE_FILE}`);
  const b = readJsonFile(file) as unknown as Bundle;
  if (b.format !== 'tinyemo' || b.version !== 1 || !b.projector || !b.labels) throw invalidFile(file, 'not a tinyemo bundle (format/version)');
  const inside = (f: unknown) => {
    if (typeof f !== 'string' || f !== path.basename(f)) throw invalidFile(file, `file ${JSON.stringify(f)} is not a plain name in the folder`);
    return path.join(dir, f);
  };
  const projector = Projector.load(inside(b.projector.file));
  let labels: LabelSpace;
  try {
    labels = LabelSpace.load(inside(b.labels.file));
  } catch (e) {
    projector.dispose();
    throw e;
  }
  if (projector.outDim !== labels.dim) {
    projector.dispose();
    throw invalidFile(file, `the projector outputs ${projector.outDim} values but the labels have ${labels.dim}`);
  }
  return { bundle: b, projector, labels };
}
