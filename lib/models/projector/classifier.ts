/**
 * Classification with a trained Metric Projector: image features in, the
 * nearest emotion labels by cosine out. Loads a tinyemo model folder (or a
 * released projector with the label space it was trained in).
 */
import * as fs from 'fs';
import * as path from 'path';

import { defaultDevice } from '../../backend';
import { TinyEmoError } from '../../errors';
import { cosineTopk, cosineTopkSync } from '../../ops/metric';
import { Device, Tensor } from '../../tensor';
import { BUNDLE_FILE, readBundle } from './bundle';
import { LabelSpace } from './label_space';
import { Projector } from './projector';

export interface Prediction {
  label: string;
  /** Cosine similarity between the projected features and the label, in [-1, 1]. */
  score: number;
}

export interface ClassifierOptions {
  /** The label space, required for a released projector without tinyemo.json. */
  labels?: LabelSpace;
  /** Use `labels` even where the model folder records another label space. */
  allowLabelMismatch?: boolean;
  /** Where to run: 'cpu', 'cuda' or 'cuda:N'. Default: defaultDevice() (a GPU when the CUDA build finds one). */
  device?: Device;
}

export class MetricClassifier {
  private disposed = false;
  /** The label vectors in native memory on the projector's device, uploaded once (every classify reads them). */
  private readonly table: Tensor<'f32'>;

  /**
   * Runs where the projector's weights are (move them with Projector.toDevice). It owns the projector
   * (dispose frees it) unless `borrowed`, as for a projector still in training.
   */
  constructor(
    readonly projector: Projector,
    readonly labelSpace: LabelSpace,
    private readonly opts: { borrowed?: boolean } = {},
  ) {
    if (projector.outDim !== labelSpace.dim) {
      throw new TinyEmoError('INVALID_ARGUMENT', `the projector outputs ${projector.outDim} values, the label space has ${labelSpace.dim}`);
    }
    this.table = Tensor.from(labelSpace.table, [labelSpace.names.length, labelSpace.dim], projector.device);
  }

  /** Where it runs: 'cpu' or 'cuda:N'. */
  get device(): 'cpu' | `cuda:${number}` {
    return this.projector.device;
  }

  /** A model folder (tinyemo.json), or a released projector file or folder with `opts.labels`. */
  static load(where: string, opts: ClassifierOptions = {}): MetricClassifier {
    if (fs.existsSync(path.join(where, BUNDLE_FILE))) {
      const b = readBundle(where);
      let labels = b.labels;
      if (opts.labels) {
        if (!opts.labels.sameSpaceAs(b.labels) && !opts.allowLabelMismatch) {
          b.projector.dispose();
          throw new TinyEmoError(
            'INVALID_ARGUMENT',
            `the projector in ${where} was trained in ${b.labels.describe()}, not ${opts.labels.describe()}; its outputs mean nothing in another label space ` +
              '(to use it anyway: --allow-label-mismatch on the command line, allowLabelMismatch in the API)',
          );
        }
        labels = opts.labels;
      }
      return MetricClassifier.placed(b.projector, labels, opts.device);
    }
    if (!fs.existsSync(where)) throw new TinyEmoError('NOT_FOUND', `${where} does not exist (a model folder from tinyemo train, or a projector's weights)`);
    if (!opts.labels)
      throw new TinyEmoError('INVALID_ARGUMENT', `${where} has no ${BUNDLE_FILE}: give the label space it was trained in (--llm DIR or --labels FILE; opts.labels in the API)`);
    const p = fs.existsSync(where) && fs.statSync(where).isDirectory() ? Projector.fromFolder(where) : Projector.load(where);
    return MetricClassifier.placed(p, opts.labels, opts.device);
  }

  /** A classifier on `device` from a freshly loaded projector (which it owns, or disposes on failure). */
  private static placed(loaded: Projector, labels: LabelSpace, device: Device | undefined): MetricClassifier {
    let p = loaded;
    try {
      p = loaded.toDevice(device ?? defaultDevice());
      if (p !== loaded) loaded.dispose();
      return new MetricClassifier(p, labels);
    } catch (e) {
      loaded.dispose();
      if (p !== loaded) p.dispose();
      throw e;
    }
  }

  get labels(): readonly string[] {
    return this.labelSpace.names;
  }

  get inDim(): number {
    return this.projector.inDim;
  }

  /** Features: one vector, n vectors back to back, or a [n, inDim] tensor. One ranked list per vector. */
  async classify(features: Float32Array | Tensor<'f32'>, opts: { topK?: number } = {}): Promise<Prediction[][]> {
    const { x, owned, k } = this.prepare(features, opts.topK);
    try {
      const y = await this.projector.forward(x);
      try {
        const r = await cosineTopk(y, this.table, k, { tableNormalized: true });
        return this.rank(r.indices, r.scores, k);
      } finally {
        y.dispose();
      }
    } finally {
      if (owned) x.dispose();
    }
  }

  classifySync(features: Float32Array | Tensor<'f32'>, opts: { topK?: number } = {}): Prediction[][] {
    const { indices, scores } = this.rankSync(features, opts);
    return indices.map((row, i) => Array.from(row, (c, j) => ({ label: this.labels[c], score: scores[i][j] })));
  }

  /** The same as label indices into `labels` and their cosines, one row per vector (for evaluation). */
  rankSync(features: Float32Array | Tensor<'f32'>, opts: { topK?: number } = {}): { indices: Int32Array[]; scores: Float32Array[] } {
    const { x, owned, k } = this.prepare(features, opts.topK);
    try {
      const y = this.projector.forwardSync(x);
      try {
        const r = cosineTopkSync(y, this.table, k, { tableNormalized: true });
        return splitRows(r.indices, r.scores, k);
      } finally {
        y.dispose();
      }
    } finally {
      if (owned) x.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.table.dispose();
    if (!this.opts.borrowed) this.projector.dispose();
  }

  private prepare(features: Float32Array | Tensor<'f32'>, topK = 1): { x: Tensor<'f32'>; owned: boolean; k: number } {
    if (this.disposed) throw new TinyEmoError('DISPOSED', 'this classifier was disposed');
    if (!Number.isSafeInteger(topK) || topK < 1) throw new TinyEmoError('INVALID_ARGUMENT', `topK must be a positive integer, not ${topK}`);
    const k = Math.min(topK, this.labels.length);
    const d = this.inDim;
    if (features instanceof Tensor) {
      if (features.ndim !== 2 || features.shape[1] !== d) {
        throw new TinyEmoError('SHAPE_MISMATCH', `features must be [n, ${d}], not [${features.shape.join(', ')}]`);
      }
      const x = features.toDevice(this.device);
      return { x, owned: x !== features, k };
    }
    if (features.length === 0 || features.length % d !== 0) {
      throw new TinyEmoError('SHAPE_MISMATCH', `features must hold a multiple of ${d} values (got ${features.length})`);
    }
    return { x: Tensor.from(features, [features.length / d, d], this.device), owned: true, k };
  }

  private rank(indices: Tensor, scores: Tensor, k: number): Prediction[][] {
    const r = splitRows(indices, scores, k);
    return r.indices.map((row, i) => Array.from(row, (c, j) => ({ label: this.labels[c], score: r.scores[i][j] })));
  }
}

/** Top-k results [n, k] read back (and freed) as one row per vector. */
function splitRows(indices: Tensor, scores: Tensor, k: number): { indices: Int32Array[]; scores: Float32Array[] } {
  const idx = indices.toArray() as Int32Array;
  const sc = scores.toArray() as Float32Array;
  indices.dispose();
  scores.dispose();
  const n = idx.length / k;
  return {
    indices: Array.from({ length: n }, (_, i) => idx.subarray(i * k, (i + 1) * k)),
    scores: Array.from({ length: n }, (_, i) => sc.subarray(i * k, (i + 1) * k)),
  };
}
