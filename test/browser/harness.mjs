// What every browser test shares: the repository's root and a require() into
// it, Debian's Chromium (a "skipped" line and exit 0 when it is missing),
// headless launch flags for a closed network, --screenshot FILE, and the
// check tally printed as "browser: N passed, M failed".
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const require = createRequire(path.join(root, 'package.json'));

const shotArg = process.argv.indexOf('--screenshot');
/** Where --screenshot asked the page to be saved, if it did. */
export const screenshot = shotArg > 0 ? path.resolve(process.argv[shotArg + 1]) : undefined;

/** Debian's Chromium (or CHROMIUM_PATH); without one the test says it skipped and exits 0. */
export function chromiumOrSkip() {
  const found = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
  if (!found) {
    console.log('browser: skipped: no Chromium (apt-get install chromium, or set CHROMIUM_PATH)');
    process.exit(0);
  }
  return found;
}

/** Headless Chromium as root on a machine with no outside network. */
export function launch(executablePath) {
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

let passed = 0;
let failed = 0;
export function check(name, ok, detail = '') {
  if (ok) passed += 1;
  else {
    failed += 1;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
}

/** Prints the tally and exits (non-zero on a failure). */
export function finish() {
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
