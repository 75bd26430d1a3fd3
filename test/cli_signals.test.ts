/** The stop signals of the long-running commands: who hears them, and that no listener is left behind. */
import { abortOnStopSignals, nextStopSignal } from '../lib/cli/signals';

const listeners = () => [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];

test('abortOnStopSignals: SIGTERM aborts the work, which still ends normally; its listeners go with it', async () => {
  const before = listeners();
  const result = await abortOnStopSignals(async (signal) => {
    expect(listeners()).toEqual([before[0] + 1, before[1] + 1]);
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    expect(signal.aborted).toBe(false);
    process.emit('SIGTERM', 'SIGTERM');
    await aborted;
    return 'stopped cleanly';
  });
  expect(result).toBe('stopped cleanly');
  expect(listeners()).toEqual(before);
});

test('abortOnStopSignals: work that throws leaves no listener either, and a signal afterwards aborts nothing', async () => {
  const before = listeners();
  let seen: AbortSignal | undefined;
  await expect(
    abortOnStopSignals(async (signal) => {
      seen = signal;
      throw new Error('failed');
    }),
  ).rejects.toThrow('failed');
  expect(listeners()).toEqual(before);
  const ignore = () => undefined; // so that the emit below cannot reach Node's default handler
  process.on('SIGINT', ignore);
  process.emit('SIGINT', 'SIGINT');
  process.removeListener('SIGINT', ignore);
  expect(seen?.aborted).toBe(false);
});

test('nextStopSignal: names the first signal, and takes both listeners away', async () => {
  const before = listeners();
  const next = nextStopSignal();
  expect(listeners()).toEqual([before[0] + 1, before[1] + 1]);
  process.emit('SIGINT', 'SIGINT');
  await expect(next).resolves.toBe('SIGINT');
  expect(listeners()).toEqual(before);
  const again = nextStopSignal();
  process.emit('SIGTERM', 'SIGTERM');
  await expect(again).resolves.toBe('SIGTERM');
  expect(listeners()).toEqual(before);
});
