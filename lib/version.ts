import * as fs from 'fs';
import * as path from 'path';

import { packageRoot } from './native';

/** The npm package's version (from its package.json). */
export function packageVersion(): string {
  const pj = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pj.version;
}
