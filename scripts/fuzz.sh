#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan into
# build-fuzz/ and runs each for SECONDS (default 60), starting from its seeds
# in fuzz/corpus/<target>/. Exits non-zero on any crash, sanitizer report or
# timeout; the input that caused it is left in build-fuzz/artifacts/<target>/
# (copy it into fuzz/corpus/<target>/ with the fix, as a regression seed).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
generator=()
[[ -f build-fuzz/CMakeCache.txt ]] || generator=(-G Ninja)
cmake -S . -B build-fuzz "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER=clang++ -DPARETOPIPE_FUZZ=ON \
  -DPARETOPIPE_BUILD_TESTS=OFF -DPARETOPIPE_BUILD_BENCH=OFF >/dev/null
targets=(wire_fuzz)
cmake --build build-fuzz --parallel "${PARETOPIPE_JOBS:-$(nproc)}" --target "${targets[@]}"
for target in "${targets[@]}"; do
  # New inputs go to a scratch corpus: the seeds in the repository stay as committed.
  scratch=build-fuzz/corpus/$target
  artifacts=build-fuzz/artifacts/$target
  mkdir -p "$scratch" "$artifacts"
  # -max_len: a control message of every field is ~700 bytes; 4 KiB leaves
  # room for long strings and arrays without slowing the search down.
  # -timeout, -rss_limit_mb: a slow or memory-hungry input is a finding too.
  echo "fuzz: $target for ${seconds}s"
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "build-fuzz/fuzz/$target" \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$scratch" "fuzz/corpus/$target"
done
