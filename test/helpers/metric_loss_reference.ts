/**
 * The metric losses in plain float64 TypeScript, written apart from the
 * native op (lib/ops/loss.ts) as the reference it is tested against: one
 * candidate at a time, as the definitions in lib/ops/loss.ts read.
 */
import { DEFAULT_TAU, LabelTable, LossName } from '../../lib/ops/loss';

export interface LossResult {
  loss: number;
  /** dLoss/dy, [B, H]. */
  grad: Float32Array;
}

interface Cosines {
  norms: Float64Array; // |y_b|
  z: Float64Array; // y_b / |y_b|
}

function normalizeRows(y: Float32Array, B: number, H: number): Cosines {
  const norms = new Float64Array(B);
  const z = new Float64Array(B * H);
  for (let b = 0; b < B; ++b) {
    let s = 0;
    for (let h = 0; h < H; ++h) s += y[b * H + h] ** 2;
    const n = Math.max(Math.sqrt(s), 1e-12);
    norms[b] = n;
    for (let h = 0; h < H; ++h) z[b * H + h] = y[b * H + h] / n;
  }
  return { norms, z };
}

function dot(z: Float64Array, zo: number, l: Float32Array, lo: number, H: number): number {
  let s = 0;
  for (let h = 0; h < H; ++h) s += z[zo + h] * l[lo + h];
  return s;
}

/**
 * Adds g * d cos(y_b, l)/dy_b to grad: (l - cos * z_b) / |y_b|.
 */
function addCosGrad(grad: Float32Array, c: Cosines, b: number, l: Float32Array, lo: number, cos: number, g: number, H: number): void {
  const k = g / c.norms[b];
  for (let h = 0; h < H; ++h) grad[b * H + h] += k * (l[lo + h] - cos * c.z[b * H + h]);
}

export function metricLossReference(name: LossName, y: Float32Array, targets: Int32Array, labels: LabelTable, tau = DEFAULT_TAU[name]): LossResult {
  const B = targets.length;
  const H = labels.dim;
  if (y.length !== B * H) throw new RangeError(`outputs hold ${y.length} values, expected ${B} x ${H}`);
  const c = normalizeRows(y, B, H);
  const grad = new Float32Array(B * H);
  const L = labels.data;
  let loss = 0;
  if (name === 'cosine') {
    for (let b = 0; b < B; ++b) {
      const t = targets[b];
      const cos = dot(c.z, b * H, L, t * H, H);
      loss += (1 - cos) / B;
      addCosGrad(grad, c, b, L, t * H, cos, -1 / B, H);
    }
    return { loss, grad };
  }
  if (name === 'infonce') {
    const present = new Set<number>(targets);
    for (let b = 0; b < B; ++b) {
      const own = targets[b];
      const cands = [...present].filter((x) => x !== own);
      cands.unshift(own);
      const cos = cands.map((l) => dot(c.z, b * H, L, l * H, H));
      const m = Math.max(...cos.map((v) => v / tau));
      const e = cos.map((v) => Math.exp(v / tau - m));
      const sum = e.reduce((a, v) => a + v, 0);
      loss += (-(cos[0] / tau - m) + Math.log(sum)) / B;
      cands.forEach((l, k) => addCosGrad(grad, c, b, L, l * H, cos[k], (e[k] / sum - (k === 0 ? 1 : 0)) / (tau * B), H));
    }
    return { loss, grad };
  }
  // ntxent: reference embeddings are the batch's label embeddings L_{t_j}.
  const s = new Float64Array(B * B); // s[b, j] = cos(y_b, L_{t_j})
  for (let b = 0; b < B; ++b) for (let j = 0; j < B; ++j) s[b * B + j] = dot(c.z, b * H, L, targets[j] * H, H);
  const dS = new Float64Array(B * B);
  let pairs = 0;
  for (let b = 0; b < B; ++b) {
    const negs: number[] = [];
    for (let j = 0; j < B; ++j) if (targets[j] !== targets[b]) negs.push(j);
    for (let p = 0; p < B; ++p) {
      if (targets[p] !== targets[b]) continue;
      pairs += 1;
      const terms = [p, ...negs].map((j) => s[b * B + j] / tau);
      const m = Math.max(...terms);
      const e = terms.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, v) => a + v, 0);
      loss += -(terms[0] - m) + Math.log(sum);
      [p, ...negs].forEach((j, k) => (dS[b * B + j] += (e[k] / sum - (k === 0 ? 1 : 0)) / tau));
    }
  }
  const scale = pairs ? 1 / pairs : 0;
  for (let b = 0; b < B; ++b) for (let j = 0; j < B; ++j) if (dS[b * B + j] !== 0) addCosGrad(grad, c, b, L, targets[j] * H, s[b * B + j], dS[b * B + j] * scale, H);
  return { loss: loss * scale, grad };
}
