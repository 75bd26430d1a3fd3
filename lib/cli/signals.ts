/**
 * SIGINT (Ctrl-C) and SIGTERM for the long-running commands: training stops
 * at the next step with a checkpoint, servers and workers finish what is in
 * hand, instead of dying mid-write.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/** The first of SIGINT or SIGTERM to arrive; neither listener outlives it. */
export function nextStopSignal(): Promise<StopSignal> {
  return new Promise((resolve) => {
    const on = (s: StopSignal) => () => {
      process.removeListener('SIGINT', int);
      process.removeListener('SIGTERM', term);
      resolve(s);
    };
    const int = on('SIGINT');
    const term = on('SIGTERM');
    process.once('SIGINT', int);
    process.once('SIGTERM', term);
  });
}

/**
 * Runs `work` with a signal that the first SIGINT or SIGTERM aborts; the listeners go when the work ends. A
 * second Ctrl-C meets Node's default and ends the process, for a user who will not wait for the step.
 */
export async function abortOnStopSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await work(abort.signal);
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}
