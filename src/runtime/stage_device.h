// Where a stage's segment computes: the CPU, or a CUDA GPU (a Pi-to-server
// pipeline's server stage). The stage loop (runtime/stage.h) sees only this
// interface; the CPU implementation is here, the CUDA one in cuda_device.cc,
// built only against a LibTorch with CUDA (docs/gpu.md).
//
// On a GPU, received activations land in pinned host buffers and are copied
// to the device on a copy stream by the receive thread, while the compute
// thread runs the previous batch on a compute stream: the copy of batch k + 1
// overlaps the compute of batch k. Outputs come back to pinned host buffers
// before they are sent. CUDA events time the compute and the copies on the
// GPU (docs/metrics.md, "GPU stages").
//
// Owns: device memory, streams, events and the device's pass metrics.
// Must not touch: links, threads of the stage loop, the control protocol.
// Torch-facing: include only from .cc files.
// Thread safety: HostBuffer() and CopyIn() are called from the receive
// thread, Compute() from the compute thread, concurrently; BeginPass() and
// EndPass() when neither runs.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/run_record.h"
#include "util/status.h"

namespace paretopipe {

class StageCompute;

class StageDevice {
 public:
  virtual ~StageDevice() = default;

  // "cpu" or "cuda:N" (an index always named).
  virtual std::string name() const = 0;
  // The GPU's name ("NVIDIA H200"); empty for the CPU.
  virtual std::string description() const = 0;

  // An empty float32 host tensor for receiving `shape`: pinned on a GPU, so
  // that its copy to the device is asynchronous DMA.
  virtual torch::Tensor HostBuffer(c10::IntArrayRef shape) = 0;

  // Replaces `*tensors` (a batch's received tensors, on the host) by copies
  // on the device. Returns when the copy is done, so the host buffers may be
  // reused; *copy_ns is its time on the GPU. The CPU leaves them where they
  // are (nothing is allocated per batch) and *copy_ns -1.
  // REQUIRES: tensors != nullptr, copy_ns != nullptr.
  virtual Status CopyIn(std::vector<torch::Tensor>* tensors, int64_t* copy_ns) = 0;

  // Runs `compute` on `inputs` (from CopyIn) and returns its outputs on the
  // host, contiguous, in row-major order as the next stage receives them.
  // Returns when they are there. On a GPU fills trace->device_compute_ns and
  // trace->copy_out_ns from CUDA events; the CPU leaves them -1.
  // REQUIRES: trace != nullptr.
  virtual Result<std::vector<torch::Tensor>> Compute(StageCompute& compute,
                                                     const std::vector<torch::Tensor>& inputs,
                                                     BatchTrace* trace) = 0;

  // Around a pass: resets the device's peak-memory counter and starts
  // sampling its utilization; EndPass fills trace->device_peak_bytes and
  // trace->device_utilization_pct (left -1 on the CPU, or when unknown).
  virtual void BeginPass() = 0;
  virtual void EndPass(StageTrace* trace) = 0;
};

// The device `name` names ("cpu", "cuda", "cuda:N"): InvalidArgument for an
// unknown name, Unavailable when this build or machine has no such device
// (a CPU-only LibTorch, no GPU visible), saying which.
Result<std::unique_ptr<StageDevice>> MakeStageDevice(const std::string& name);

// Implemented by cuda_device.cc, built only when PARETOPIPE_WITH_CUDA.
// REQUIRES: `device` is a CUDA device that exists.
Result<std::unique_ptr<StageDevice>> MakeCudaStageDevice(const torch::Device& device);

}  // namespace paretopipe
