#!/usr/bin/env bash
# The main job: set up, build, then split mobilenet_v2 at each of its 18 cuts,
# run every split as a two-stage pipeline on two local worker processes
# (loopback, one core each), print the Pareto table, keep every run in
# ./paretopipe.db and draw this sweep's report into ./report/index.html.
# About 3 to 5 minutes on 2 cores, plus the first build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --no-tests paretopipe
build/src/paretopipe sweep mobilenet_v2 --batches 32 --warmup 4 --repeat 3 --db paretopipe.db
build/src/paretopipe report --db paretopipe.db --sweep last -o report
