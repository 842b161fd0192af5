#!/usr/bin/env bash
# Configures and builds ParetoPipe into build/ (Release, Ninja, ccache when present).
#   scripts/build.sh [--no-tests] [TARGET...]
# --no-tests leaves out the tests and benchmarks, which need the packages of
# `scripts/setup.sh --tests`.
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=ON
if [[ "${1:-}" == "--no-tests" ]]; then
  with_tests=OFF
  shift
fi
generator=()
[[ -f build/CMakeCache.txt ]] || generator=(-G Ninja)  # An existing build keeps its generator.
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DPARETOPIPE_BUILD_TESTS="$with_tests" -DPARETOPIPE_BUILD_BENCH="$with_tests" >/dev/null
# One job per CPU; a LibTorch translation unit needs about 1 GB of memory to compile.
cmake --build build --parallel "${PARETOPIPE_JOBS:-$(nproc)}" ${1:+--target "$@"}
