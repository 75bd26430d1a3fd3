#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, the CUDA toolkit, CMake and
# Python with PyTorch (no Node.js, no network needed):
#
#   bash bench/gpu/check.sh [OUT_DIR] [check.py options: --quick, --device cpu]
#
# builds the C-ABI library with the CUDA kernels (for this GPU only, unless
# TINYEMO_CUDA_ARCHS says otherwise), checks every kernel against PyTorch and
# times it (bench/gpu/check.py). Writes OUT_DIR/gpu-check.log and
# OUT_DIR/gpu-latest.json (the npm run bench JSON shape); OUT_DIR defaults to
# $OUT (the device runner's folder), else bench/results. About 2-4 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bench/results}
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then out=$1; shift; fi  # the rest goes to check.py
mkdir -p "$out"
log="$out/gpu-check.log"
: > "$log"
say() { echo "$*" | tee -a "$log"; }

if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
command -v nvcc >/dev/null || { say "nvcc not found"; exit 1; }
arch=${TINYEMO_CUDA_ARCHS:-}
if [ -z "$arch" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  case "$cc" in
    90) arch="sm_90a" ;;  # Hopper: the wgmma-capable target
    "") arch="sm_80" ;;
    *) arch="sm_$cc" ;;
  esac
fi
python=${PYTHON:-python3}
say "== $(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1) · $(nvcc --version | tail -1) · $(cmake --version | head -1) · targets $arch"

t0=$(date +%s)
if ! { cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DTINYEMO_CUDA=ON -DTINYEMO_CUDA_ARCHS="$arch" &&
       cmake --build build-gpu -j"$(nproc)" --target tinyemo; } >>"$log" 2>&1; then
  tail -40 "$log"
  say "build failed"
  exit 1
fi
say "== built in $(( $(date +%s) - t0 )) s"

"$python" bench/gpu/check.py --lib build-gpu/libtinyemo.so --json "$out/gpu-latest.json" "$@" 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
