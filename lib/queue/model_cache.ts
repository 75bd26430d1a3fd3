/**
 * The models a worker keeps loaded between jobs, keyed by what the job
 * names, at most `max` at once: the least recently used model that no job is
 * using is disposed when another is needed. Loading ViT-L/14 costs seconds,
 * so consecutive chunks of one submission reuse it.
 */
interface Entry {
  value: unknown;
  dispose: () => void;
  users: number;
}

export class ModelCache {
  private readonly entries = new Map<string, Entry>();

  constructor(readonly max: number) {}

  /** Runs `fn` with the model under `key` (loaded by `load` on a miss); it is not disposed while `fn` runs. */
  async use<T, R>(key: string, load: () => T, dispose: (v: T) => void, fn: (v: T) => Promise<R>): Promise<R> {
    let e = this.entries.get(key);
    if (e)
      this.entries.delete(key); // re-inserted below: most recently used last
    else {
      this.evict(this.max - 1);
      const value = load();
      e = { value, dispose: () => dispose(value), users: 0 };
    }
    this.entries.set(key, e);
    e.users += 1;
    try {
      return await fn(e.value as T);
    } finally {
      e.users -= 1;
      this.evict(this.max);
    }
  }

  /** Disposes idle models, oldest first, until at most `keep` remain (models in use stay). */
  private evict(keep: number): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= keep) return;
      if (e.users > 0) continue;
      this.entries.delete(key);
      e.dispose();
    }
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    for (const e of this.entries.values()) e.dispose();
    this.entries.clear();
  }
}
