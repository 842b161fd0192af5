#include "model/run_file.h"

#include <fmt/format.h>

#include <chrono>

#include "model/cuts.h"
#include "model/device.h"
#include "model/segment.h"
#include "model/tensor_file.h"
#include "model/torch_util.h"
#include "model/torchscript.h"

namespace paretopipe {

namespace {

// Blocks [from, to) of a TorchScript model: the node runs between its cuts
// (model/cuts.h), found at the input's size.
Result<std::unique_ptr<StageCompute>> BuildScriptBlocks(const RunFileRequest& request,
                                                        const torch::Tensor& input,
                                                        RunFileResult* result) {
  if (request.device != "cpu") {
    return Status::InvalidArgument(fmt::format(
        "TorchScript models run on the CPU in this version, not on {}", request.device));
  }
  if (input.dim() != 4 || input.size(0) < 1) {
    return Status::InvalidArgument(
        fmt::format("{}: a TorchScript model's blocks are found on an image batch [N, 3, H, W]; "
                    "got {}",
                    request.input_path, ShapeString(input)));
  }
  // Blocks after the first take an activation: their bounds come from an
  // analysis at the input image's size, which --input-size gives then.
  const int64_t side = request.from == 0 ? input.size(3) : request.input_side_px;
  PP_ASSIGN_OR_RETURN(ModelAnalysis analysis, AnalyzeModel(request.model, side));
  const int64_t blocks = static_cast<int64_t>(analysis.blocks.size());
  result->from = request.from;
  result->to = request.to < 0 ? blocks : request.to;
  if (result->from < 0 || result->from >= result->to || result->to > blocks) {
    return Status::InvalidArgument(fmt::format("{}: blocks [{}, {}) outside its {} blocks",
                                               request.model.name, result->from, result->to,
                                               blocks));
  }
  PP_ASSIGN_OR_RETURN(std::unique_ptr<ScriptModel> model, ScriptModel::Load(request.model.name));
  PP_ASSIGN_OR_RETURN(
      std::unique_ptr<ScriptSegment> segment,
      model->Cut(analysis.node_bounds[result->from], analysis.node_bounds[result->to]));
  return std::unique_ptr<StageCompute>(std::make_unique<ScriptStageCompute>(std::move(segment)));
}

Result<RunFileResult> Run(const RunFileRequest& request) {
  PP_RETURN_IF_ERROR(ConfigureCompute(request.threads > 0 ? request.threads : DefaultThreads()));
  PP_ASSIGN_OR_RETURN(torch::Tensor input, ReadTensorFile(request.input_path));
  RunFileResult result;
  std::unique_ptr<StageCompute> compute;
  if (IsTorchScriptFile(request.model.name)) {
    PP_ASSIGN_OR_RETURN(compute, BuildScriptBlocks(request, input, &result));
  } else {
    PP_ASSIGN_OR_RETURN(std::unique_ptr<Segment> segment,
                        Segment::Build(request.model, {request.from, request.to}, request.device));
    result.from = segment->range().begin;
    result.to = segment->range().end;
    compute = std::move(segment);
  }
  const auto start = std::chrono::steady_clock::now();
  PP_ASSIGN_OR_RETURN(torch::Tensor output, compute->Run(input));
  output = output.to(torch::kCPU);
  result.compute_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
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
