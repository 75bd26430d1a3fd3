/** A one-line progress bar on stderr, drawn at most every 100 ms (callers only use it on a TTY). */
export function progressBar(unit: string): (done: number, total: number) => void {
  let lastDraw = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - lastDraw < 100 && done !== total) return;
    lastDraw = now;
    const width = 30;
    const filled = total > 0 ? Math.round((width * done) / total) : width;
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${unit} ${done}/${total}`);
  };
}

/** Clears the bar's line. */
export function clearBar(): void {
  process.stderr.write('\r\x1b[K');
}
