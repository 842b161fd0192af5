// Small LibTorch helpers shared by the torch-facing files of src/model and
// the layers above: devices, exceptions to Status, shapes in messages.
// Torch-facing: include only from .cc files.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <torch/types.h>

#include "util/status.h"

namespace paretopipe {

// Parses "cpu", "cuda" or "cuda:N" and checks that the device is usable here.
// Unavailable, saying why, for CUDA in a build against a LibTorch without it
// (Debian's) or on a machine where no GPU is visible.
Result<torch::Device> ParseDevice(const std::string& device);

// Runs `fn` and turns a LibTorch or standard exception into a Status holding
// the message's first line (never a backtrace). Out of memory is Unavailable;
// any other exception is Internal.
Status CatchTorchErrors(const std::function<Status()>& fn);

// Runs `fn` (returning a Status or a Result<T>) under CatchTorchErrors: for
// API entry points that promise a Status, never an exception.
template <typename Fn>
auto GuardTorch(Fn&& fn) -> decltype(fn()) {
  std::optional<decltype(fn())> out;
  Status status = CatchTorchErrors([&] {
    out.emplace(fn());
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return std::move(*out);
}

// "[8, 32, 112, 112]".
std::string ShapeString(const torch::Tensor& tensor);

}  // namespace paretopipe
