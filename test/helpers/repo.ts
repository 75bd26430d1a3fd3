/** The repository's root, from test/helpers under ts-jest and from dist/test/helpers when compiled (browser tests). */
import * as fs from 'fs';
import * as path from 'path';

function findRoot(from: string): string {
  for (let d = from; d !== path.dirname(d); d = path.dirname(d)) if (fs.existsSync(path.join(d, 'package.json'))) return d;
  throw new Error(`no package.json above ${from}`);
}

export const REPO = findRoot(__dirname);
