// Runs every *.browser.mjs here in turn and prints their total as one line,
// "browser: N passed, M failed" (what .ci/run reads); exits non-zero when any failed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
let passed = 0;
let failed = 0;
for (const f of fs
  .readdirSync(here)
  .filter((x) => x.endsWith('.browser.mjs'))
  .sort()) {
  const r = spawnSync(process.execPath, [path.join(here, f), ...process.argv.slice(2)], { encoding: 'utf8', timeout: 300_000 });
  process.stdout.write(`${f}:\n${r.stdout}${r.stderr}`);
  const m = /^browser: (\d+) passed, (\d+) failed$/m.exec(r.stdout);
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  } else if (!/^browser: skipped/m.test(r.stdout)) failed += 1;
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
