/**
 * Float64 references, written independently of the native code: the
 * definitions, evaluated naively in double precision.
 */

/** erfc in double: Taylor series of erf near 0, Lentz's continued fraction in the tail. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; ++n) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; ++n) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

export function phi(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export type ActName = 'none' | 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'silu' | 'relu';

export function activate(act: ActName, x: number): number {
  switch (act) {
    case 'gelu':
      return x * phi(x);
    case 'gelu_tanh': {
      // 0.5 x (1 + tanh(u)), written as x / (1 + e^(-2u)) so that double
      // precision does not cancel to 0 in the negative tail.
      const u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3);
      return x / (1 + Math.exp(-2 * u));
    }
    case 'quick_gelu':
      return x * sigmoid(1.702 * x);
    case 'silu':
      return x * sigmoid(x);
    case 'relu':
      return Math.max(x, 0);
    default:
      return x;
  }
}

/** d/dx of x * Phi(x). */
export function geluGrad(x: number): number {
  return phi(x) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
}

export interface RefGemm {
  m: number;
  n: number;
  k: number;
  a: (m: number, k: number) => number;
  b: (n: number, k: number) => number;
  bias?: ArrayLike<number>;
  alpha?: number;
  beta?: number;
  c0?: ArrayLike<number>;
  act?: ActName;
}

/** C[m,n] = act(alpha * sum_k A(m,k) B(n,k) + bias[n] + beta * C0[m,n]), row-major [M, N]. */
export function refGemm(g: RefGemm): Float64Array {
  const out = new Float64Array(g.m * g.n);
  for (let i = 0; i < g.m; ++i) {
    for (let j = 0; j < g.n; ++j) {
      let s = 0;
      for (let p = 0; p < g.k; ++p) s += g.a(i, p) * g.b(j, p);
      let v = (g.alpha ?? 1) * s;
      if (g.bias) v += g.bias[j];
      if (g.beta && g.c0) v += g.beta * g.c0[i * g.n + j];
      out[i * g.n + j] = activate(g.act ?? 'none', v);
    }
  }
  return out;
}
