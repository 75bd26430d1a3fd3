#!/usr/bin/env bash
# The repository's style checks, as CI runs them: the layer rule, ESLint, Prettier, and clang-format on native/.
# Exit status: 0 when all pass. `npm run format` rewrites what the formatters would change.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
node scripts/check-layers.js || status=1
npx eslint lib test bench scripts bin || status=1
npx prettier --check "lib/**/*.ts" "test/**/*.ts" "bench/**/*.ts" "scripts/**/*.{js,mjs}" "test/**/*.mjs" "bin/*.js" "*.js" "*.mjs" >/dev/null || {
  echo "prettier: files above differ from the format (npm run format)"
  status=1
}
if command -v clang-format >/dev/null; then
  git ls-files 'native/*.cpp' 'native/*.h' 'native/*.cu' 'native/*.cuh' | xargs clang-format --dry-run -Werror || status=1
else
  echo "clang-format not found: native/ not checked (apt-get install clang-format)"
fi
[ $status -eq 0 ] && echo "lint: clean"
exit $status
