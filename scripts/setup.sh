#!/usr/bin/env bash
# Installs what ParetoPipe needs on Debian 12, only what is missing (idempotent).
#   scripts/setup.sh           build and run: compiler, CMake, LibTorch, OpenBLAS, CLI11, JSON, fmt,
#                              gnuplot (the report's figures)
#   scripts/setup.sh --tests   also GoogleTest, Google Benchmark, PyTorch + torchvision for cross-checks,
#                              libxml2 (parses the report in tests), Chromium (renders it headless),
#                              clang and libFuzzer (scripts/fuzz.sh)
# Runs apt-get as root, or through sudo.
set -euo pipefail

# Why each one: README.md, "Dependencies". CMake must be >= 3.25 (bookworm has 3.25.1).
packages=(g++ cmake ninja-build ccache libtorch-dev libopenblas0-pthread libcli11-dev
          nlohmann-json3-dev libfmt-dev libspdlog-dev libsqlite3-dev libssl-dev
          libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
          libgloo-dev libtensorpipe-dev iproute2 libjpeg62-turbo-dev libpng-dev
          gnuplot-nox fonts-dejavu-core)
if [[ "${1:-}" == "--tests" ]]; then
  # clang and libclang-rt-14-dev (libFuzzer's runtime): scripts/fuzz.sh.
  packages+=(libgtest-dev libbenchmark-dev python3-torch python3-torchvision libxml2-dev
             chromium clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
}

if (( ${#missing[@]} > 0 )); then
  echo "setup: installing ${missing[*]}"
  # env, not export: sudo resets the environment.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# LibTorch links Debian's generic libblas.so.3; update-alternatives decides which BLAS that is.
# OpenBLAS wins in automatic mode, but a manual choice of the reference BLAS would stay.
arch_triplet=$(gcc -print-multiarch 2>/dev/null || true)
alternative="libblas.so.3-${arch_triplet}"
current=$(update-alternatives --query "$alternative" 2>/dev/null | sed -n 's/^Value: //p' || true)
if [[ -n "$current" && "$current" != *openblas* ]]; then
  openblas=$(update-alternatives --list "$alternative" 2>/dev/null | grep openblas | head -n1 || true)
  if [[ -n "$openblas" ]]; then
    echo "setup: libblas.so.3 pointed at $current; switching it to $openblas"
    as_root update-alternatives --set "$alternative" "$openblas"
  fi
fi
