#!/usr/bin/env node
// npm run build:cuda — the CUDA addon (a superset of the CPU addon) with
// cmake-js, into build-cuda/Release/tinyemo.node, where lib/native.ts looks
// for it. Not build/Release: node-gyp-build would load anything there first.
//
//   TINYEMO_CUDA_ARCHS="sm_90a,compute_90" npm run build:cuda   (fewer targets, faster)
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');

/** nvcc on PATH (undefined: CMake finds it), or under CUDA_HOME (its path), or null when absent. */
function findNvcc() {
  const r = spawnSync(process.platform === 'win32' ? 'where' : 'which', ['nvcc'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const cudaHome = process.env.CUDA_HOME || process.env.CUDA_PATH || '/usr/local/cuda';
  const nvcc = path.join(cudaHome, 'bin', process.platform === 'win32' ? 'nvcc.exe' : 'nvcc');
  return fs.existsSync(nvcc) ? nvcc : null;
}

const nvcc = findNvcc();
if (nvcc === null) {
  console.error('tinyemo: nvcc not found (install the CUDA toolkit, or set CUDA_HOME); the CPU addon is unaffected');
  process.exit(1);
}
let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  console.error('tinyemo: cmake-js is not installed (npm install --no-save cmake-js)');
  process.exit(1);
}
const args = [cmakeJs, 'compile', '--out', 'build-cuda', '--CDTINYEMO_CUDA=ON', ...process.argv.slice(2)];
if (nvcc && !process.env.CUDACXX) process.env.CUDACXX = nvcc;
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env });
process.exit(r.status ?? 1);
