// The CPU stage device, and the factory that picks a stage's device.
#include "runtime/stage_device.h"

#include <fmt/format.h>

#include "model/compute.h"
#include "model/torch_util.h"

namespace paretopipe {
namespace {

// Tensors stay where they are: received bytes are already in the memory the
// segment reads, and its outputs are made contiguous for sending.
class CpuStageDevice final : public StageDevice {
 public:
  std::string name() const override { return "cpu"; }
  std::string description() const override { return ""; }

  torch::Tensor HostBuffer(c10::IntArrayRef shape) override {
    return torch::empty(shape, torch::kFloat);
  }

  Status CopyIn(std::vector<torch::Tensor>* /*tensors*/, int64_t* copy_ns) override {
    *copy_ns = -1;
    return Status::Ok();
  }

  Result<std::vector<torch::Tensor>> Compute(StageCompute& compute,
                                             const std::vector<torch::Tensor>& inputs,
                                             BatchTrace* /*trace*/) override {
    PP_ASSIGN_OR_RETURN(std::vector<torch::Tensor> out, compute.RunAll(inputs));
    return GuardTorch([&]() -> Result<std::vector<torch::Tensor>> {
      // A segment may end in a view (a transpose, a slice): the next stage
      // reads plain row-major bytes.
      for (torch::Tensor& o : out) o = o.to(torch::kCPU).contiguous();
      return out;
    });
  }

  void BeginPass() override {}
  void EndPass(StageTrace* /*trace*/) override {}
};

}  // namespace

Result<std::unique_ptr<StageDevice>> MakeStageDevice(const std::string& name) {
  PP_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(name));
  if (device.is_cpu()) return std::unique_ptr<StageDevice>(std::make_unique<CpuStageDevice>());
#if PARETOPIPE_WITH_CUDA
  if (!device.has_index()) device.set_index(0);
  return MakeCudaStageDevice(device);
#else
  // ParseDevice refused CUDA already in a build without it.
  return Status::Internal(fmt::format("device '{}': no CUDA stages in this build", name));
#endif
}

}  // namespace paretopipe
