#!/usr/bin/env bash
# The main job: set up, build, then show where mobilenet_v2 can be split and
# profile its blocks on this machine (the profile goes to out/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --no-tests paretopipe
mkdir -p out
build/src/paretopipe cuts mobilenet_v2 --batch 8
echo
build/src/paretopipe profile mobilenet_v2 --batch 8 --repeat 10 -o out/profile-mobilenet_v2.json
