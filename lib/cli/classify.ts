/**
 * `tinyemo classify FILE... --model DIR`: the nearest emotion labels of
 * precomputed image features (.pt, .safetensors, .npy). Images themselves
 * need the CLIP vision tower, which comes with its own issue; until then an
 * image path is a clear error rather than a guess.
 */
import * as path from 'path';

import { TinyEmoError } from '../errors';
import { FEATURE_EXTENSIONS, readFeatureVector } from '../data/features';
import { MetricClassifier, Prediction } from '../models/classifier';

export interface ClassifyFlags {
  model: string;
  topK?: string;
  json?: boolean;
}

export interface ClassifyResult {
  file: string;
  predictions: Prediction[];
}

export async function classifyCommand(files: string[], f: ClassifyFlags): Promise<ClassifyResult[]> {
  const k = f.topK === undefined ? 3 : Number(f.topK);
  if (!Number.isSafeInteger(k) || k < 1) throw new TinyEmoError('INVALID_ARGUMENT', `--top-k takes a positive integer, not "${f.topK}"`);
  for (const file of files) {
    if (!FEATURE_EXTENSIONS.includes(path.extname(file).toLowerCase())) {
      throw new TinyEmoError(
        'UNSUPPORTED',
        `${file}: classify reads image features (${FEATURE_EXTENSIONS.join(', ')}) in this release; images need the CLIP vision tower, which is not built yet`,
      );
    }
  }
  const cls = MetricClassifier.load(f.model);
  try {
    const d = cls.inDim;
    const x = new Float32Array(files.length * d);
    files.forEach((file, i) => {
      const v = readFeatureVector(file);
      if (v.length !== d) throw new TinyEmoError('INVALID_ARGUMENT', `${file} holds ${v.length} values; the projector takes ${d}`);
      x.set(v, i * d);
    });
    const ranked = await cls.classify(x, { topK: k });
    return files.map((file, i) => ({ file, predictions: ranked[i] }));
  } finally {
    cls.dispose();
  }
}

export function formatClassify(r: ClassifyResult[]): string {
  return r.map((x) => `${x.file}: ${x.predictions.map((p) => `${p.label} ${p.score.toFixed(3)}`).join(', ')}`).join('\n');
}
