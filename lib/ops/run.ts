/** Running a planned native call synchronously, as a Promise, or queued on an OpBatch. */
import { awaitNative, callNative } from '../errors';
import { NativeOpBatchHandle, RunMode, binding } from '../native';
import { Tensor } from '../tensor';

export interface Planned<R> {
  /** What the op returns once the call succeeded. */
  result: R;
  /** Tensors the op allocated, disposed again if the call fails. */
  owned: Tensor[];
  invoke(mode: RunMode): Promise<void> | undefined;
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

/**
 * Ops queued to run in order as one native job: `run()` hands them to a
 * worker thread once, where awaiting each op would hand off (and back) per
 * op. A forward pass whose ops are all known up front (a ViT layer) queues
 * them and awaits once.
 *
 * A queued op's result is allocated but not computed until `run()` settles.
 * Ops are checked as they are queued (a bad argument throws there, queueing
 * nothing); a failure while running stops the batch, disposes the tensors
 * its ops allocated, and names which op failed.
 */
export class OpBatch {
  private readonly native: NativeOpBatchHandle = new (binding().OpBatch)();
  private owned: Tensor[] = [];

  /** Ops queued and not yet run. */
  get size(): number {
    return this.native.size;
  }

  /** Queues a planned op; its result is filled in by run(). */
  add<R>(p: Planned<R>): R {
    try {
      callNative(() => p.invoke(this.native));
    } catch (e) {
      for (const t of p.owned) t.dispose();
      throw e;
    }
    this.owned.push(...p.owned);
    return p.result;
  }

  /** Runs the queued ops off the event loop; the batch is empty again after. */
  async run(): Promise<void> {
    const owned = this.take();
    try {
      await awaitNative(Promise.resolve(this.native.run(true)));
    } catch (e) {
      for (const t of owned) t.dispose();
      throw e;
    }
  }

  /** The same, on the calling thread. */
  runSync(): void {
    const owned = this.take();
    try {
      callNative(() => this.native.run(false));
    } catch (e) {
      for (const t of owned) t.dispose();
      throw e;
    }
  }

  /** Drops the queued ops unrun, disposing the results they had allocated. */
  clear(): void {
    this.native.clear();
    for (const t of this.take()) t.dispose();
  }

  private take(): Tensor[] {
    const owned = this.owned;
    this.owned = [];
    return owned;
  }
}

/** The async, sync and queued entry points of an op from its planner. */
export function defineOp<A extends unknown[], R>(
  plan: (...args: A) => Planned<R>,
): {
  async: (...args: A) => Promise<R>;
  sync: (...args: A) => R;
  queued: (batch: OpBatch, ...args: A) => R;
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
    queued: (batch: OpBatch, ...args: A): R => batch.add(plan(...args)),
  };
}
