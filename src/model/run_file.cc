#include "model/run_file.h"

#include <chrono>

#include "model/device.h"
#include "model/segment.h"
#include "model/tensor_file.h"
#include "model/torch_util.h"

namespace paretopipe {

namespace {

Result<RunFileResult> Run(const RunFileRequest& request) {
  PP_RETURN_IF_ERROR(ConfigureCompute(request.threads > 0 ? request.threads : DefaultThreads()));
  PP_ASSIGN_OR_RETURN(torch::Tensor input, ReadTensorFile(request.input_path));
  PP_ASSIGN_OR_RETURN(std::unique_ptr<Segment> segment,
                      Segment::Build(request.model, {request.from, request.to}, request.device));
  const auto start = std::chrono::steady_clock::now();
  PP_ASSIGN_OR_RETURN(torch::Tensor output, segment->Run(input));
  output = output.to(torch::kCPU);
  RunFileResult result;
  result.compute_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  result.from = segment->range().begin;
  result.to = segment->range().end;
  result.input_shape = input.sizes().vec();
  result.output_shape = output.sizes().vec();
  PP_RETURN_IF_ERROR(WriteTensorFile(output.contiguous(), request.output_path));
  return result;
}

}  // namespace

Result<RunFileResult> RunOnTensorFile(const RunFileRequest& request) {
  return GuardTorch([&] { return Run(request); });
}

}  // namespace paretopipe
