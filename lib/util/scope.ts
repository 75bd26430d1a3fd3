/**
 * Scoped disposal: everything a block allocates is handed to a Scope, which
 * frees it all when the block ends, normally or by an exception (`using`).
 * Node 20 has Symbol.dispose but not DisposableStack; this is the part of
 * it we need.
 */
export interface Disposable {
  dispose(): void;
}

export class Scope {
  private readonly held: Disposable[] = [];

  /** Holds `x` until the scope ends and returns it. */
  use<T extends Disposable>(x: T): T {
    this.held.push(x);
    return x;
  }

  /** Takes `x` back out of the scope (the caller now owns it) and returns it. */
  keep<T extends Disposable>(x: T): T {
    const i = this.held.lastIndexOf(x);
    if (i >= 0) this.held.splice(i, 1);
    return x;
  }

  /** Frees what it holds, last taken first; every dispose runs even if one throws (the first error is rethrown). */
  dispose(): void {
    let first: unknown;
    let failed = false;
    while (this.held.length) {
      try {
        this.held.pop()!.dispose();
      } catch (e) {
        if (!failed) first = e;
        failed = true;
      }
    }
    if (failed) throw first;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
