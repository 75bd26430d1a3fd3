/** A float64 Metric Projector written from its definition, for the kernel tests. */
import { geluGrad, phi } from './reference';

export interface RefParams {
  IN: number;
  H: number;
  OUT: number;
  w1: Float64Array; // [H, IN]
  b1: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
  rm: Float64Array;
  rv: Float64Array;
  w2: Float64Array; // [OUT, H]
  b2: Float64Array;
  eps: number;
}

function linear(x: ArrayLike<number>, B: number, K: number, w: ArrayLike<number>, b: ArrayLike<number>, N: number): Float64Array {
  const y = new Float64Array(B * N);
  for (let i = 0; i < B; ++i)
    for (let n = 0; n < N; ++n) {
      let s = b[n];
      for (let k = 0; k < K; ++k) s += x[i * K + k] * w[n * K + k];
      y[i * N + n] = s;
    }
  return y;
}

/** Inference: BatchNorm with running statistics. */
export function refForward(p: RefParams, x: ArrayLike<number>, B: number): Float64Array {
  const z = linear(x, B, p.IN, p.w1, p.b1, p.H);
  for (let i = 0; i < B; ++i)
    for (let h = 0; h < p.H; ++h) {
      const a = ((z[i * p.H + h] - p.rm[h]) / Math.sqrt(p.rv[h] + p.eps)) * p.gamma[h] + p.beta[h];
      z[i * p.H + h] = a * phi(a);
    }
  return linear(z, B, p.H, p.w2, p.b2, p.OUT);
}

/** Training: batch statistics (biased variance), then mask[b*H+h] (0 or 1/(1-p)) after GELU. */
export function refForwardTrain(p: RefParams, x: ArrayLike<number>, B: number, mask?: ArrayLike<number>): Float64Array {
  const z = linear(x, B, p.IN, p.w1, p.b1, p.H);
  for (let h = 0; h < p.H; ++h) {
    let mean = 0;
    for (let i = 0; i < B; ++i) mean += z[i * p.H + h];
    mean /= B;
    let v = 0;
    for (let i = 0; i < B; ++i) v += (z[i * p.H + h] - mean) ** 2;
    v /= B;
    for (let i = 0; i < B; ++i) {
      const a = ((z[i * p.H + h] - mean) / Math.sqrt(v + p.eps)) * p.gamma[h] + p.beta[h];
      z[i * p.H + h] = a * phi(a) * (mask ? mask[i * p.H + h] : 1);
    }
  }
  return linear(z, B, p.H, p.w2, p.b2, p.OUT);
}

export { geluGrad };
