#!/usr/bin/env bash
# Sets up, builds everything (library, CLI, tests, benchmarks) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
scripts/build.sh
cd build
ctest --output-on-failure --parallel "$(nproc)" --timeout 900
