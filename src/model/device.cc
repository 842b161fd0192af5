// Devices and compute threads.
#include "model/device.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sched.h>

#include <thread>

#include "model/segment.h"

namespace paretopipe {

int DefaultThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Status SetComputeThreads(int threads) {
  if (threads < 1) return Status::InvalidArgument(fmt::format("--threads must be at least 1, got {}", threads));
  at::set_num_threads(threads);
  // Looked up at run time: the BLAS behind Debian's libblas.so.3 is chosen by
  // update-alternatives, and only OpenBLAS has this entry point.
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(threads);
  }
  return Status::Ok();
}

Result<torch::Device> ParseDevice(const std::string& device) {
  torch::Device parsed(torch::kCPU);
  try {
    parsed = torch::Device(device);
  } catch (const c10::Error&) {
    return Status::InvalidArgument(
        fmt::format("unknown device '{}' (expected cpu, cuda or cuda:N)", device));
  }
  if (parsed.is_cpu()) return parsed;
  if (!parsed.is_cuda()) {
    return Status::InvalidArgument(
        fmt::format("device '{}' is not supported (expected cpu, cuda or cuda:N)", device));
  }
  if (!torch::cuda::is_available()) {
    return Status::Unavailable(fmt::format(
        "device '{}' requested, but this LibTorch build has no CUDA device available "
        "(Debian's libtorch is CPU-only; build against a CUDA-enabled LibTorch)",
        device));
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (parsed.has_index() && parsed.index() >= count) {
    return Status::InvalidArgument(
        fmt::format("device '{}' requested, but only {} CUDA device(s) exist", device, count));
  }
  return parsed;
}

Status CheckDevice(const std::string& device) { return ParseDevice(device).status(); }

}  // namespace paretopipe
