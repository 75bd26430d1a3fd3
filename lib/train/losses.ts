/**
 * The metric losses of the TinyEmo projector, with their gradients: the
 * projector's outputs y [B, H] are compared by cosine with unit label
 * embeddings L [C, H]. Computed in double precision (B x C x H is small).
 *
 * - cosine: 1 - cos(y_b, L_{t_b}), the mean over the batch (nn.CosineEmbeddingLoss
 *   with target +1, as the reference trains it).
 * - infonce: for sample b, -log softmax over a candidate set of cos(y_b, L_c) / tau
 *   at its own label, where the candidates are its own label and the labels of the
 *   other-class samples in the batch (the reference code's choice; the paper's
 *   formula sums over every label, which it becomes when the batch holds every
 *   class). tau 0.1.
 * - ntxent: pytorch-metric-learning's NTXentLoss with the batch's label embeddings
 *   L_{t_j} as reference embeddings: for each (anchor b, positive j with t_j = t_b)
 *   -log( e^{s_bj/tau} / (e^{s_bj/tau} + sum_{k: t_k != t_b} e^{s_bk/tau}) ), the mean
 *   over positive pairs. tau 0.07.
 *
 * The op is metricLoss in lib/ops/loss.ts (native; sums in double); test/helpers/
 * metric_loss_reference.ts computes the same in plain float64 TypeScript.
 */
export type LossName = 'infonce' | 'cosine' | 'ntxent';

export const LOSSES: readonly LossName[] = ['infonce', 'cosine', 'ntxent'];
export const DEFAULT_TAU: Readonly<Record<LossName, number>> = { infonce: 0.1, cosine: 1, ntxent: 0.07 };

/** Unit label embeddings, [C, H] row-major. */
export interface LabelTable {
  count: number;
  dim: number;
  data: Float32Array;
}

