#!/usr/bin/env bash
# tests/gpu under NVIDIA's compute-sanitizer: memcheck over every GPU test but the >2^31-element
# ones, then racecheck and synccheck over the small ones (pytest marker `small`). Only our kernels
# are instrumented; any report fails the run (exit 99).
#
#   tests/gpu/sanitize.sh                 # from the repository root, on a machine with a GPU
#   COMPUTE_SANITIZER=/usr/local/cuda/bin/compute-sanitizer tests/gpu/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CS="${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")}"
PY="${PYTHON:-python3}"
export PYTORCH_NO_CUDA_MEMORY_CACHING=1  # every tensor its own allocation: memcheck sees its true bounds
export STYLEGAN_GPU_SANITIZE=1           # the tests skip the cases that take minutes under the tool
"$PY" -m scripts.cli ops build           # compile (and check) outside the tool, where it is fast
KERNELS="regex=bias_act_kernel|upfirdn2d_kernel|filtered_lrelu_kernel"
run() {
  echo "== compute-sanitizer --tool $1: ${*:2}"
  "$CS" --tool "$1" --kernel-name "$KERNELS" --error-exitcode 99 --target-processes all \
        "$PY" -m pytest -q -p no:cacheprovider "${@:2}"
}
run memcheck tests/gpu -k "not arch_list"
run racecheck tests/gpu -m small
run synccheck tests/gpu -m small
echo "compute-sanitizer: memcheck, racecheck, synccheck clean"
