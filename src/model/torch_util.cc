#include "model/torch_util.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/version.h>

namespace paretopipe {
namespace {

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

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
#if PARETOPIPE_WITH_CUDA
  if (!torch::cuda::is_available()) {
    return Status::Unavailable(fmt::format(
        "device '{}': no CUDA device is visible to this process (nvidia-smi lists the GPUs; "
        "CUDA_VISIBLE_DEVICES may hide them)",
        device));
  }
#else
  return Status::Unavailable(fmt::format(
      "device '{}': this paretopipe was built against LibTorch {} without CUDA (Debian's "
      "libtorch-dev is CPU-only); build it against PyTorch's CUDA LibTorch for GPU stages "
      "(docs/gpu.md)",
      device, TORCH_VERSION));
#endif
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (parsed.has_index() && parsed.index() >= count) {
    return Status::InvalidArgument(
        fmt::format("device '{}' requested, but only {} CUDA device(s) exist", device, count));
  }
  return parsed;
}

Status CatchTorchErrors(const std::function<Status()>& fn) {
  try {
    return fn();
  } catch (const c10::OutOfMemoryError& e) {
    return Status::Unavailable("out of memory: " + FirstLine(e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return Status::Internal(FirstLine(e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    return Status::Unavailable("out of memory");
  } catch (const std::exception& e) {
    return Status::Internal(FirstLine(e.what()));
  }
}

std::string ShapeString(const torch::Tensor& tensor) {
  return fmt::format("[{}]", fmt::join(tensor.sizes(), ", "));
}

}  // namespace paretopipe
