/** The tokenizer fixtures (built once from devDependencies' vocabularies into test/.cache). */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { REPO } from './repo';

export const TOKENIZER_CACHE = path.join(REPO, 'test', '.cache', 'tokenizers');

/** The folder of a fixture tokenizer ('llama', 'gpt2', 'codegen'), building the cache when absent. */
export function tokenizerFixture(name: 'llama' | 'gpt2' | 'codegen'): string {
  if (!fs.existsSync(path.join(TOKENIZER_CACHE, 'expected.json'))) {
    execFileSync(process.execPath, [path.join(REPO, 'scripts', 'fixtures', 'tokenizers.mjs'), TOKENIZER_CACHE]);
  }
  return path.join(TOKENIZER_CACHE, name);
}

/** LLaMA ids (BOS first) from llama-tokenizer-js, independently of tinyemo's tokenizer. */
export function llamaIdsIndependent(texts: string[]): number[][] {
  const js = `const t = (await import('llama-tokenizer-js')).default; process.stdout.write(JSON.stringify(${JSON.stringify(texts)}.map((s) => t.encode(s))));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', js], { cwd: REPO, encoding: 'utf8' });
  return JSON.parse(out) as number[][];
}
