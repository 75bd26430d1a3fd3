/** Running a planned native call synchronously or as a Promise. */
import { awaitNative, callNative } from '../errors';
import { Tensor } from '../tensor';

export interface Planned<R> {
  /** What the op returns once the call succeeded. */
  result: R;
  /** Tensors the op allocated, disposed again if the call fails. */
  owned: Tensor[];
  invoke(async: boolean): Promise<void> | undefined;
}

export async function runAsync<R>(p: Planned<R>): Promise<R> {
  try {
    await awaitNative(Promise.resolve(p.invoke(true)));
  } catch (e) {
    for (const t of p.owned) t.dispose();
    throw e;
  }
  return p.result;
}

export function runSync<R>(p: Planned<R>): R {
  try {
    callNative(() => p.invoke(false));
  } catch (e) {
    for (const t of p.owned) t.dispose();
    throw e;
  }
  return p.result;
}
