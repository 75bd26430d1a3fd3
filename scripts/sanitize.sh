#!/usr/bin/env bash
# Builds the addon with a sanitizer and runs the test suite under it, then
# rebuilds the normal addon. Usage: scripts/sanitize.sh [address|undefined]
set -euo pipefail
kind=${1:-address}
cd "$(dirname "$0")/.."
case "$kind" in
  address) lib=libasan.so; export ASAN_OPTIONS=detect_leaks=0 ;;  # V8 keeps memory to exit
  undefined) lib=libubsan.so; export UBSAN_OPTIONS=halt_on_error=1 ;;
  *) echo "usage: $0 [address|undefined]"; exit 2 ;;
esac
flags="-fsanitize=$kind -fno-omit-frame-pointer -g"
[ "$kind" = undefined ] && flags="$flags -fno-sanitize-recover=undefined"
trap 'node scripts/install.js --rebuild >/dev/null' EXIT
CXXFLAGS="$flags" CFLAGS="$flags" LDFLAGS="-fsanitize=$kind" node scripts/install.js --rebuild >/dev/null
# Node itself is not instrumented: preload the runtime.
LD_PRELOAD="$(g++ -print-file-name="$lib")" npx jest --runInBand
