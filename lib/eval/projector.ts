/** Scoring a projector on a feature set: its ranked labels per sample, and the evaluation report. */
import { TinyEmoError } from '../errors';
import { FeatureSet } from '../data/features';
import { MetricClassifier } from '../models/projector/classifier';
import { LabelSpace } from '../models/projector/label_space';
import { Projector } from '../models/projector/projector';
import { EvalReport, evaluate } from './report';

/** The top-k label indices (into `labels.names`) and cosines of every sample, in the projector's label space. */
export function predict(projector: Projector, labels: LabelSpace, s: FeatureSet, k = 5): { ranked: Int32Array[]; scores: Float32Array[] } {
  if (s.y.length === 0) return { ranked: [], scores: [] };
  const classifier = new MetricClassifier(projector, labels, { borrowed: true });
  try {
    const r = classifier.rankSync(s.x, { topK: k });
    return { ranked: r.indices, scores: r.scores };
  } finally {
    classifier.dispose();
  }
}

/** Evaluates a projector on a feature set whose classes are named in the label space. */
export function evaluateProjector(projector: Projector, labels: LabelSpace, s: FeatureSet): EvalReport {
  const map = s.classes.map((c) => labels.names.indexOf(c));
  if (map.some((i) => i < 0)) {
    throw new TinyEmoError('INVALID_ARGUMENT', `classes ${s.classes.filter((_, i) => map[i] < 0).join(', ')} are not in the label space (${labels.names.join(', ')})`);
  }
  const { ranked } = predict(projector, labels, s);
  return evaluate(
    labels.names,
    Int32Array.from(s.y, (t) => map[t]),
    ranked,
  );
}
