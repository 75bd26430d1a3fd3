#!/usr/bin/env node
// Install-time build of the native addon, and the developer's rebuild and
// prebuild commands. It sets what node-gyp needs explicitly instead of
// relying on one machine's npm config:
//   - npm_config_nodedir: Node's own headers when they sit next to the node
//     binary (distro and official builds), so nothing is downloaded;
//   - the node-gyp that ships with npm.
//
//   node scripts/install.js              load a prebuild or build from source (npm install)
//   node scripts/install.js --rebuild    build from source (add --debug for a debug build)
//   node scripts/install.js --prebuild   make prebuilds/<platform>-<arch>/ with prebuildify
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);

function nodeHeadersDir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] }));
  } catch {
    /* not installed locally */
  }
  return candidates.find((p) => p && fs.existsSync(p));
}

function env() {
  const e = { ...process.env };
  if (!e.npm_config_nodedir) {
    const dir = nodeHeadersDir();
    if (dir) e.npm_config_nodedir = dir;
  }
  const gyp = nodeGypScript();
  if (gyp) e.npm_config_node_gyp = gyp;
  return e;
}

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, env: env(), stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function nodeGyp(argv) {
  const gyp = nodeGypScript();
  if (!gyp) {
    console.error('tinyemo: node-gyp not found (it ships with npm); cannot build the native addon');
    process.exit(1);
  }
  run(process.execPath, [gyp, ...argv]);
}

if (args.includes('--prebuild')) {
  const bin = require.resolve('prebuildify/bin.js', { paths: [root] });
  run(process.execPath, [bin, '--napi', '--strip', '--target', process.versions.node]);
} else if (args.includes('--rebuild')) {
  nodeGyp(['rebuild', ...(args.includes('--debug') ? ['--debug'] : [])]);
} else {
  // node-gyp-build loads build/Release or a matching prebuild, else builds.
  const bin = require.resolve('node-gyp-build/bin.js', { paths: [root] });
  run(process.execPath, [bin]);
}
