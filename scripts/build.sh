#!/usr/bin/env bash
# Configures and builds ParetoPipe into build/ (Release, Ninja, ccache when present).
#   scripts/build.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
[[ -f build/CMakeCache.txt ]] || generator=(-G Ninja)  # An existing build keeps its generator.
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
# One job per CPU; a LibTorch translation unit needs about 1 GB of memory to compile.
cmake --build build --parallel "${PARETOPIPE_JOBS:-$(nproc)}" ${1:+--target "$@"}
