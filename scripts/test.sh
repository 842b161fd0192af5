#!/usr/bin/env bash
# Sets up, builds everything (library, CLI, tests, benchmarks) and runs every test;
# then the whole test suite again built with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/), and the fuzzers for a minute
# (scripts/fuzz.sh). README.md, "Fuzzing and sanitizers".
#   PARETOPIPE_SANITIZE=0 scripts/test.sh   only the first part
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
scripts/build.sh
(cd build && ctest --output-on-failure --parallel "$(nproc)" --timeout 900)
[[ "${PARETOPIPE_SANITIZE:-1}" == 0 ]] && { echo "test: sanitizers skipped (PARETOPIPE_SANITIZE=0)"; exit 0; }

# Our code instrumented, LibTorch, gRPC, OpenBLAS and the rest not:
# scripts/sanitizers/ says what that needs at run time. -O0: this build checks
# memory and behaviour, not speed; it compiles in well under half the time
# of -O3 (LibTorch's headers dominate), and the tests' time goes to LibTorch,
# which stays optimized. NDEBUG as Debian built LibTorch: some of its classes
# have debug-only members, so its headers without NDEBUG describe objects of
# another layout than the library's.
generator=()
[[ -f build-asan/CMakeCache.txt ]] || generator=(-G Ninja)
cmake -S . -B build-asan "${generator[@]}" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O0 -DNDEBUG" \
  -DPARETOPIPE_SANITIZE=address,undefined -DPARETOPIPE_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan --parallel "${PARETOPIPE_JOBS:-$(nproc)}"
# Leaks are checked at every test program's exit (LeakSanitizer); a sanitizer
# report fails the test that caused it. The suppression files name only
# third-party libraries, each with its reason.
sanitizers=$PWD/scripts/sanitizers
(cd build-asan &&
  ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1" \
  LSAN_OPTIONS="suppressions=$sanitizers/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$sanitizers/ubsan.supp" \
  ctest --output-on-failure --parallel "$(nproc)" --timeout 1800)

scripts/fuzz.sh 60
