/** Whether the bf16 cases can run here: the library's own check (the CPU's AVX512_BF16, and the avx512 kernels in use). */
import { checkPrecision } from '../lib';

/** Why bf16 products cannot run here (the library's refusal), or undefined when they can. */
export function bf16Unavailable(): string | undefined {
  try {
    checkPrecision('bf16', 'cpu');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
