/** Activation functions by name, and their te_activation numbers. */
import { invalid } from '../errors';

export type Activation = 'none' | 'gelu' | 'gelu_tanh' | 'quick_gelu' | 'silu' | 'relu';

const CODE: Record<Activation, number> = { none: 0, gelu: 1, gelu_tanh: 2, quick_gelu: 3, silu: 4, relu: 5 };

export function activationCode(a: Activation | undefined): number {
  if (a === undefined) return 0;
  const c = CODE[a];
  if (c === undefined) throw invalid(`unknown activation '${String(a)}' (expected ${Object.keys(CODE).join(', ')})`);
  return c;
}
