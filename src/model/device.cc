// Devices and compute threads.
#include "model/device.h"

#include <dlfcn.h>
#include <malloc.h>
#include <fmt/format.h>
#include <ATen/Parallel.h>

#include "util/cpus.h"

namespace paretopipe {

int DefaultThreads() { return AvailableCpus(); }

Status ConfigureCompute(int threads) {
  if (threads < 1) return Status::InvalidArgument(fmt::format("--threads must be at least 1, got {}", threads));
  // Every buffer from the heap, none mmapped (a threshold alone cannot do it:
  // glibc caps M_MMAP_THRESHOLD at 32 MiB, below mobilenet_v2's activations at
  // batch 8), and freed heap kept for the next call up to 512 MiB.
  constexpr int kTrimThresholdBytes = 512 << 20;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
  at::set_num_threads(threads);
  // Looked up at run time: the BLAS behind Debian's libblas.so.3 is chosen by
  // update-alternatives, and only OpenBLAS has this entry point.
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(threads);
  }
  return Status::Ok();
}

}  // namespace paretopipe
