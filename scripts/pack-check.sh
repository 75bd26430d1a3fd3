#!/usr/bin/env bash
# Packaging check: pack tinyemo as it would be published (with the linux-x64
# prebuild), install the tarball into an empty project, and use it from
# there. npm 11 blocks dependencies' install scripts by default, so this also
# shows that the prebuilt addon loads without any build step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
npm run --silent prebuild >/dev/null
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --prefer-offline --no-audit --no-fund "$work/$tarball" >/dev/null
version=$(npx --no-install tinyemo --version)
expected=$(node -p "require('$root/package.json').version")
[ "$version" = "$expected" ] || { echo "tinyemo --version printed '$version', expected '$expected'"; exit 1; }
node -e "
const t = require('tinyemo');
const a = t.Tensor.from([1, 2, 3, 4], [2, 2]);
const c = t.gemmSync(a, a);
if (c.data.join() !== '5,11,11,25') { console.error('gemm gave', c.data); process.exit(1); }
const where = t.backendInfo().addonPath;
if (!where.includes('prebuilds')) { console.error('addon did not come from the prebuild:', where); process.exit(1); }
console.log('pack check ok: tinyemo', '$version', 'from', where.replace(process.cwd() + '/', ''));
"
