#!/usr/bin/env node
// Prints the native sources of the named groups, one per line, for
// binding.gyp's <!@(...) expansion. Usage: node native/sources.js core cpu
'use strict';
const path = require('path');
const list = require('./sources.json');
const out = [];
for (const group of process.argv.slice(2)) {
  if (!Array.isArray(list[group])) {
    console.error(`unknown source group: ${group}`);
    process.exit(1);
  }
  out.push(...list[group]);
}
// gyp resolves sources relative to binding.gyp, which sits one folder up.
process.stdout.write(out.map((p) => p.split('/').join(path.sep)).join('\n') + '\n');
