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

/** The async and sync entry points of an op from its planner. */
export function defineOp<A extends unknown[], R>(
  plan: (...args: A) => Planned<R>,
): {
  async: (...args: A) => Promise<R>;
  sync: (...args: A) => R;
} {
  return {
    async: (...args: A): Promise<R> => {
      try {
        return runAsync(plan(...args));
      } catch (e) {
        return Promise.reject(e);
      }
    },
    sync: (...args: A): R => runSync(plan(...args)),
  };
}
