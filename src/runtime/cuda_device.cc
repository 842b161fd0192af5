// The CUDA stage device: pinned host buffers, a copy stream and a compute
// stream, CUDA events for timing. Built only against a LibTorch with CUDA
// (PARETOPIPE_WITH_CUDA; docs/gpu.md).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "metrics/gpu_metrics.h"
#include "model/compute.h"
#include "model/torch_util.h"
#include "runtime/stage_device.h"

namespace paretopipe {
namespace {

// NVML's utilization covers its own last sample period (at least 1/6 s):
// 100 ms samples see every such period of a pass at least once.
constexpr std::chrono::milliseconds kUtilizationPeriod{100};

int64_t ElapsedNs(const at::cuda::CUDAEvent& from, const at::cuda::CUDAEvent& to) {
  return static_cast<int64_t>(static_cast<double>(from.elapsed_time(to)) * 1e6);
}

// Output buffers in pinned host memory, reused once the send thread has let
// go of them (as the stage loop's receive buffers are).
class PinnedPool {
 public:
  torch::Tensor Get(c10::IntArrayRef shape) {
    for (torch::Tensor& t : buffers_) {
      if (t.use_count() == 1 && t.storage().use_count() == 1 && t.sizes() == shape) return t;
    }
    buffers_.push_back(Pinned(shape));
    return buffers_.back();
  }
  static torch::Tensor Pinned(c10::IntArrayRef shape) {
    return torch::empty(shape, torch::TensorOptions().dtype(torch::kFloat).pinned_memory(true));
  }

 private:
  std::vector<torch::Tensor> buffers_;
};

class CudaStageDevice final : public StageDevice {
 public:
  explicit CudaStageDevice(const torch::Device& device)
      : device_(device),
        copy_stream_(c10::cuda::getStreamFromPool(false, device.index())),
        compute_stream_(c10::cuda::getStreamFromPool(false, device.index())) {
    const cudaDeviceProp* p = at::cuda::getDeviceProperties(device.index());
    description_ = p->name;
    // NVML and CUDA may number GPUs differently; the PCI address is common.
    const std::string pci =
        fmt::format("{:08x}:{:02x}:{:02x}.0", p->pciDomainID, p->pciBusID, p->pciDeviceID);
    Result<UtilizationReader> reader = NvmlUtilizationReader(pci);
    if (reader.ok()) {
      sampler_ =
          std::make_unique<UtilizationSampler>(std::move(reader).value(), kUtilizationPeriod);
    } else {
      spdlog::info("{}: GPU utilization not recorded: {}", name(), reader.status().message());
    }
  }

  std::string name() const override { return device_.str(); }
  std::string description() const override { return description_; }

  torch::Tensor HostBuffer(c10::IntArrayRef shape) override { return PinnedPool::Pinned(shape); }

  Status CopyIn(std::vector<torch::Tensor>* tensors, int64_t* copy_ns) override {
    return CatchTorchErrors([&] {
      c10::cuda::CUDAStreamGuard guard(copy_stream_);
      at::cuda::CUDAEvent begin(cudaEventDefault), end(cudaEventDefault);
      std::vector<torch::Tensor> out;
      begin.record(copy_stream_);
      for (const torch::Tensor& h : *tensors) {
        // Allocated on the copy stream; the compute thread frees it only
        // after the compute stream is done with it (Compute synchronizes).
        torch::Tensor d = torch::empty(h.sizes(), h.options().device(device_).pinned_memory(false));
        d.copy_(h, /*non_blocking=*/true);
        out.push_back(std::move(d));
      }
      end.record(copy_stream_);
      end.synchronize();
      *copy_ns = ElapsedNs(begin, end);
      *tensors = std::move(out);  // The host buffers go back to their pool.
      return Status::Ok();
    });
  }

  Result<std::vector<torch::Tensor>> Compute(StageCompute& compute,
                                             const std::vector<torch::Tensor>& inputs,
                                             BatchTrace* trace) override {
    c10::cuda::CUDAStreamGuard guard(compute_stream_);
    at::cuda::CUDAEvent begin(cudaEventDefault), computed(cudaEventDefault),
        copied(cudaEventDefault);
    Status recorded = CatchTorchErrors([&] {
      begin.record(compute_stream_);
      return Status::Ok();
    });
    PP_RETURN_IF_ERROR(recorded);
    PP_ASSIGN_OR_RETURN(std::vector<torch::Tensor> out, compute.RunAll(inputs));
    return GuardTorch([&]() -> Result<std::vector<torch::Tensor>> {
      computed.record(compute_stream_);
      std::vector<torch::Tensor> host;
      for (const torch::Tensor& o : out) {
        torch::Tensor h = outputs_.Get(o.sizes());
        h.copy_(o, /*non_blocking=*/true);
        host.push_back(std::move(h));
      }
      copied.record(compute_stream_);
      // Also where an asynchronous kernel error surfaces, as an exception.
      copied.synchronize();
      trace->device_compute_ns = ElapsedNs(begin, computed);
      trace->copy_out_ns = ElapsedNs(computed, copied);
      return host;
    });
  }

  void BeginPass() override {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device_.index());
    if (sampler_) sampler_->Start();
  }

  void EndPass(StageTrace* trace) override {
    if (sampler_) trace->device_utilization_pct = sampler_->Stop();
    // Index 0 of each statistic is the aggregate over pool kinds.
    trace->device_peak_bytes =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device_.index()).allocated_bytes[0].peak;
  }

 private:
  torch::Device device_;
  c10::cuda::CUDAStream copy_stream_, compute_stream_;
  std::string description_;
  PinnedPool outputs_;
  std::unique_ptr<UtilizationSampler> sampler_;
};

}  // namespace

Result<std::unique_ptr<StageDevice>> MakeCudaStageDevice(const torch::Device& device) {
  return GuardTorch([&]() -> Result<std::unique_ptr<StageDevice>> {
    return std::unique_ptr<StageDevice>(std::make_unique<CudaStageDevice>(device));
  });
}

}  // namespace paretopipe
