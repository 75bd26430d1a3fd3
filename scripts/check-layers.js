#!/usr/bin/env node
// The layer rule of DESIGN.md, checked: a module of lib/ imports only from its own layer or the ones below.
// The table runs from the bottom up; a module's layer is that of the longest path that holds it.
'use strict';
const fs = require('fs');
const path = require('path');

const LAYERS = [
  ['util', ['lib/util']],
  ['base', ['lib/errors.ts', 'lib/dtype.ts']],
  // version.ts reads the package.json beside the root the addon loader finds.
  ['native', ['lib/native.ts', 'lib/version.ts']],
  ['tensor + backend', ['lib/tensor.ts', 'lib/backend.ts']],
  ['ops', ['lib/ops']],
  ['formats', ['lib/io']],
  ['hub', ['lib/hub']],
  ['text', ['lib/text']],
  ['data', ['lib/data']],
  ['weight loading', ['lib/models/weight_loader.ts']],
  ['vision models', ['lib/models/vision']],
  ['projector models', ['lib/models/projector']],
  ['language models', ['lib/models/llm']],
  ['evaluation', ['lib/eval']],
  ['training', ['lib/train']],
  ['bias', ['lib/bias']],
  ['surfaces', ['lib/cli', 'lib/serve', 'lib/queue']],
  ['package entry', ['lib/index.ts']],
];

const root = path.resolve(__dirname, '..');

function layerOf(rel) {
  let best = { rank: -1, len: -1 };
  LAYERS.forEach(([, prefixes], rank) => {
    for (const p of prefixes) {
      if ((rel === p || rel.startsWith(`${p}/`)) && p.length > best.len) best = { rank, len: p.length };
    }
  });
  return best.rank;
}

function sources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function resolveImport(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, 'index.ts'), base]) if (fs.existsSync(c)) return c;
  return base;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"]*?\sfrom\s+['"](\.[^'"]+)['"]|\b(?:require|import)\s*\(\s*['"](\.[^'"]+)['"]\s*\)/g;

const problems = [];
let files = 0;
for (const file of sources(path.join(root, 'lib'))) {
  files += 1;
  const rel = path.relative(root, file).split(path.sep).join('/');
  const own = layerOf(rel);
  if (own < 0) {
    problems.push(`${rel}: in no layer of scripts/check-layers.js (add it to the table)`);
    continue;
  }
  const text = fs.readFileSync(file, 'utf8');
  for (const m of text.matchAll(IMPORT)) {
    const target = path
      .relative(root, resolveImport(file, m[1] ?? m[2]))
      .split(path.sep)
      .join('/');
    const theirs = layerOf(target);
    if (theirs > own) problems.push(`${rel} (${LAYERS[own][0]}) imports ${target} (${LAYERS[theirs][0]}), a higher layer`);
  }
}
for (const p of problems) console.error(p);
console.log(`layers: ${files} modules, ${problems.length} imports against the layers`);
process.exit(problems.length ? 1 : 0);
