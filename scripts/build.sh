#!/usr/bin/env bash
# Configures and builds ParetoPipe into build/ (Release, Ninja, ccache when present).
#   scripts/build.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
# Two parallel jobs: each LibTorch translation unit needs ~1 GB of memory to compile.
cmake --build build --parallel "${PARETOPIPE_JOBS:-$(nproc)}" ${1:+--target "$@"}
