#!/usr/bin/env bash
# The GPU check, for a CUDA machine with PyTorch installed and no package
# registry (docs/gpu.md): builds ParetoPipe against PyTorch's own LibTorch,
# runs the device tests and the backend conformance suite with CUDA stages,
# then a mobilenet_v2 sweep whose stage 1 runs on one CPU thread (a Pi-like
# device) and stage 2 on the GPU, every run's logits checked against the
# whole model on the CPU. Ends with a short table. About 5 minutes on 16 cores.
#
#   scripts/gpu-check.sh            # output in gpu-check/
#   PYTHON=/path/to/python3 GPU_CHECK_OUT=dir scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${GPU_CHECK_OUT:-gpu-check}
build=${GPU_CHECK_BUILD:-build-gpu}
mkdir -p "$out"
start=$SECONDS
say() { echo "gpu-check: $*"; }
fail() {
  echo "gpu-check: FAILED: $*" >&2
  exit 1
}

# A Python whose PyTorch has CUDA and sees a GPU: its LibTorch is what we build against.
py=""
for candidate in ${PYTHON:-} python3 /opt/torch/.venv/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    py=$candidate
    break
  fi
done
[ -n "$py" ] || fail "no python3 with a CUDA PyTorch that sees a GPU (give one as PYTHON=...)"
torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
"$py" -c 'import torch; print("gpu-check: PyTorch", torch.__version__, "CUDA", torch.version.cuda,
"cxx11 ABI", torch.compiled_with_cxx11_abi(), "GPU", torch.cuda.get_device_name(0))'
nvidia-smi -L 2>/dev/null || true

# What the core needs besides LibTorch; optional parts switch themselves off in CMake.
missing=()
for header in sqlite3.h openssl/hmac.h CLI/CLI.hpp nlohmann/json.hpp fmt/format.h \
  spdlog/spdlog.h gtest/gtest.h; do
  echo "#include <$header>" | ${CXX:-c++} -std=c++17 -fsyntax-only -x c++ - 2>/dev/null ||
    missing+=("$header")
done
[ ${#missing[@]} -eq 0 ] || fail "headers missing on this machine: ${missing[*]}"
command -v ninja >/dev/null || fail "ninja is missing"

say "configuring $build against $torch_prefix"
cuda_args=()
if command -v nvcc >/dev/null 2>&1; then cuda_args+=("-DCMAKE_CUDA_COMPILER=$(command -v nvcc)"); fi
# CMAKE_POLICY_VERSION_MINIMUM: CMake 4 refuses package files written for
# CMake < 3.5 without it.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
  -DPARETOPIPE_BUILD_BENCH=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "${cuda_args[@]}" \
  >"$out/configure.log" 2>&1 || {
  tail -30 "$out/configure.log"
  fail "cmake configure (log: $out/configure.log)"
}
grep -E "^-- ParetoPipe" "$out/configure.log" || true
grep -q "CUDA stages on" "$out/configure.log" || fail "CMake found no CUDA in this LibTorch"

say "building ($(nproc) cores)"
build_start=$SECONDS
ninja -C "$build" paretopipe pp_tests pp_metrics_tests >"$out/build.log" 2>&1 || {
  grep -E "error|FAILED" "$out/build.log" | head -30
  fail "build (log: $out/build.log)"
}
say "built in $((SECONDS - build_start)) s"
pp="$build/src/paretopipe"

say "device tests and the backend conformance suite with CUDA stages"
PARETOPIPE_REQUIRE_GPU=1 "$build/tests/pp_tests" \
  --gtest_filter='StageDeviceTest.*:StageRunnerDeviceTest.*:WorkerDeviceTest.*:*/GpuStageTest.*:*/BackendConformanceTest.*' \
  --gtest_brief=1 2>&1 | tee "$out/tests.log" | tail -25
grep -q "PASSED" "$out/tests.log" && ! grep -q "FAILED" "$out/tests.log" || fail "tests (log: $out/tests.log)"
"$build/tests/pp_metrics_tests" --gtest_filter='Utilization*:Nvml*' --gtest_brief=1 2>&1 |
  tee -a "$out/tests.log" | tail -3

# A Pi-like stage 1 (one core, one thread) feeding a GPU stage 2 over tcp on
# loopback; --verify compares every run's logits with the whole model run on
# the CPU here and fails a run beyond 1e-3 of the largest logit.
cpus=$(nproc)
db="$out/gpu.db"
rm -f "$db"
say "mobilenet_v2 sweep: stage 1 on cpu 0 with 1 thread, stage 2 on cuda:0"
sweep_start=$SECONDS
"$pp" sweep mobilenet_v2 --batches 24 --warmup 4 --repeat 3 --verify --db "$db" \
  --local-device "pi=cpus:0,threads:1" --local-device "server=cpus:1-$((cpus - 1)),device:cuda:0" \
  2>&1 | tee "$out/sweep.log" | tail -30 || fail "sweep (log: $out/sweep.log)"
say "sweep took $((SECONDS - sweep_start)) s"
grep -q "outputs = whole model" "$out/sweep.log" || fail "no run's outputs were verified"
! grep -q "differ from the whole model" "$out/sweep.log" || fail "outputs differ (log: $out/sweep.log)"

"$pp" export --db "$db" --json >"$out/runs.json"
"$py" - "$db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("""
  SELECT r.cuts, r.device, r.status, r.latency_ms_mean, r.throughput_ips,
         s1.compute_ms_mean, s2.compute_ms_mean, s2.copy_in_ms_mean, s2.copy_out_ms_mean,
         s2.device_peak_bytes, s2.device_utilization_pct, e2.device_name
  FROM runs r
  JOIN run_stages s1 ON s1.run_id = r.id AND s1.stage = 0
  JOIN run_stages s2 ON s2.run_id = r.id AND s2.stage = 1
  JOIN run_environment e2 ON e2.run_id = r.id AND e2.stage = 1
  ORDER BY CAST(r.cuts AS INTEGER)""").fetchall()
failed = [r for r in rows if r[2] != "ok"]
print()
print(f"GPU: {rows[0][11] if rows else '?'}; stage 2 compute from CUDA events, copies separately")
print(f"{'cut':>4} {'devices':<12} {'lat ms':>8} {'img/s':>8} {'s1 ms':>7} {'s2 gpu ms':>9} "
      f"{'h2d ms':>7} {'d2h ms':>7} {'peak MB':>8} {'util %':>7}")
def cell(v, spec, width):
    return format("-" if v is None else format(v, spec), f">{width}")
for cuts, dev, status, lat, tput, c1, c2, cin, cout, peak, util in (r[:11] for r in rows):
    print(f"{cuts:>4} {dev:<12} {cell(lat, '.2f', 8)} {cell(tput, '.1f', 8)} {cell(c1, '.2f', 7)} "
          f"{cell(c2, '.3f', 9)} {cell(cin, '.3f', 7)} {cell(cout, '.3f', 7)} "
          f"{cell(peak and peak / 2**20, '.1f', 8)} {cell(util, '.1f', 7)}")
if not rows or failed or any(r[6] is None or r[7] is None for r in rows):
    sys.exit(f"gpu-check: FAILED: {len(failed)} failed run(s), or a GPU stage without event times")
EOF
say "passed in $((SECONDS - start)) s; logs and the database in $out/"
