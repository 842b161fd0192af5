// Model analysis: one instrumented forward pass.
#include "model/cuts.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "model/flop_counter.h"
#include "model/segment.h"
#include "model/torch_util.h"
#include "model/torchscript.h"

namespace paretopipe {

namespace {

Result<ModelAnalysis> Analyze(const ModelSpec& spec, int64_t input_side_px) {
  ModelSpec random_weights = spec;
  random_weights.weights_path.clear();
  PP_ASSIGN_OR_RETURN(std::unique_ptr<Segment> model, Segment::Build(random_weights, {0, -1}));
  ModelAnalysis analysis;
  analysis.entry = model->def().entry;
  analysis.num_classes = spec.num_classes;
  analysis.input_side_px = input_side_px > 0 ? input_side_px : analysis.entry.input_side_px;

  torch::Tensor x = torch::zeros(
      {1, analysis.entry.input_channels, analysis.input_side_px, analysis.input_side_px});
  MacCounter counter;
  for (int64_t k = 0; k < analysis.entry.num_blocks; ++k) {
    counter.Reset();
    PP_ASSIGN_OR_RETURN(x, model->RunBlocks(k, k + 1, x));
    BlockAnalysis block;
    block.index = k;
    block.name = model->def().blocks[k].name;
    block.output_shape = x.sizes().vec();
    block.output_bytes = x.numel() * static_cast<int64_t>(sizeof(float));
    block.macs = counter.macs();
    block.parameters = model->BlockParameterCount(k);
    analysis.total_macs += block.macs;
    analysis.total_parameters += block.parameters;
    analysis.blocks.push_back(std::move(block));
  }
  return analysis;
}

Result<CutGranularity> ParseGranularity(const std::string& text) {
  if (text == "module") return CutGranularity::kModule;
  if (text == "op") return CutGranularity::kOp;
  return Status::InvalidArgument(fmt::format("--granularity {}: expected module or op", text));
}

// "layer1.0.conv1" for one node's module; the first and last node's for a
// run of nodes ("conv1 .. maxpool"); a node of the model's own forward goes
// by its op ("aten::flatten").
std::string NodeName(const ScriptNode& node) {
  return node.module_path.empty() ? node.kind : node.module_path;
}

// A TorchScript model's blocks are the node runs between its valid cuts, so
// block indices work as cuts everywhere a zoo model's do.
Result<ModelAnalysis> AnalyzeScript(const ModelSpec& spec, int64_t input_side_px) {
  PP_ASSIGN_OR_RETURN(CutGranularity granularity, ParseGranularity(spec.granularity));
  if (spec.max_cut_tensors < 1) {
    return Status::InvalidArgument(
        fmt::format("--max-cut-tensors {}: must be >= 1", spec.max_cut_tensors));
  }
  PP_ASSIGN_OR_RETURN(std::unique_ptr<ScriptModel> model, ScriptModel::Load(spec.name));
  ModelAnalysis analysis;
  analysis.entry.name = spec.name;
  analysis.entry.description = "TorchScript file, cut by its graph";
  analysis.entry.input_channels = 3;
  analysis.input_side_px = input_side_px > 0 ? input_side_px : analysis.entry.input_side_px;
  analysis.num_classes = 0;
  // At batch 1 and 2: a cut is runnable when every tensor crossing it is
  // float32 with the batch as its first dimension (what the frames carry and
  // what a stage's input shape at another batch assumes).
  std::vector<NodeTensors> at_batch;
  for (int64_t batch : {1, 2}) {
    Result<NodeTensors> tensors = model->NodeOutputs(torch::zeros(
        {batch, analysis.entry.input_channels, analysis.input_side_px, analysis.input_side_px}));
    if (!tensors.ok()) {
      return tensors.status().WithContext(
          fmt::format("a {0}x3x{1}x{1} input (--input-size)", batch, analysis.input_side_px));
    }
    at_batch.push_back(std::move(tensors).value());
  }
  const NodeTensors& tensors = at_batch[0];
  auto runnable = [&](int64_t position) {
    const std::vector<TensorInfo> one = model->CrossingTensors(position, at_batch[0]);
    const std::vector<TensorInfo> two = model->CrossingTensors(position, at_batch[1]);
    for (size_t i = 0; i < one.size(); ++i) {
      if (!one[i].float32 || one[i].shape.empty() || two[i].shape.size() != one[i].shape.size() ||
          one[i].shape[0] != 1 || two[i].shape[0] != 2) {
        return false;
      }
    }
    return !one.empty();
  };
  const std::vector<TensorInfo> outputs = model->CrossingTensors(model->node_count(), tensors);
  if (outputs.size() != 1 || !runnable(model->node_count())) {
    return Status::InvalidArgument(fmt::format(
        "{}: its forward returns {} value(s){}; ParetoPipe splits models that return one float32 "
        "tensor with the batch first",
        spec.name, outputs.size(), outputs.size() == 1 ? " of another kind" : ""));
  }
  std::vector<int64_t> bounds = {0};
  for (int64_t p : model->CutPositions(granularity, spec.max_cut_tensors)) {
    if (runnable(p)) bounds.push_back(p);
  }
  bounds.push_back(model->node_count());
  for (size_t k = 0; k + 1 < bounds.size(); ++k) {
    const int64_t begin = bounds[k], end = bounds[k + 1];
    BlockAnalysis block;
    block.index = static_cast<int64_t>(k);
    const std::string first = NodeName(model->nodes()[begin]);
    const std::string last = NodeName(model->nodes()[end - 1]);
    block.name = first == last ? first : first + " .. " + last;
    const std::vector<TensorInfo> crossing = model->CrossingTensors(end, tensors);
    for (size_t i = 0; i < crossing.size(); ++i) {
      if (i == 0) {
        block.output_shape = crossing[i].shape;
      } else {
        block.extra_output_shapes.push_back(crossing[i].shape);
      }
      block.output_bytes += crossing[i].bytes();
    }
    for (int64_t i = begin; i < end; ++i) block.macs += model->NodeMacs(i, tensors);
    block.parameters = model->ConstantElements(begin, end);
    analysis.total_macs += block.macs;
    analysis.total_parameters += block.parameters;
    analysis.blocks.push_back(std::move(block));
  }
  analysis.entry.num_blocks = static_cast<int64_t>(analysis.blocks.size());
  analysis.node_bounds = bounds;
  return analysis;
}

}  // namespace

Result<ModelAnalysis> AnalyzeModel(const ModelSpec& spec, int64_t input_side_px) {
  if (IsTorchScriptFile(spec.name)) {
    return GuardTorch([&] { return AnalyzeScript(spec, input_side_px); });
  }
  return GuardTorch([&] { return Analyze(spec, input_side_px); });
}

std::vector<CutInfo> CutsAtBatch(const ModelAnalysis& analysis, int64_t batch) {
  std::vector<CutInfo> cuts;
  int64_t macs_before = 0;
  for (size_t k = 1; k < analysis.blocks.size(); ++k) {
    const BlockAnalysis& before = analysis.blocks[k - 1];
    macs_before += before.macs;
    CutInfo cut;
    cut.cut = static_cast<int64_t>(k);
    cut.last_block_before = before.name;
    cut.first_block_after = analysis.blocks[k].name;
    cut.shape = before.output_shape;
    cut.shape[0] = batch;
    cut.bytes = before.output_bytes * batch;
    cut.macs_before = macs_before * batch;
    cut.macs_share_before =
        analysis.total_macs > 0 ? static_cast<double>(macs_before) / analysis.total_macs : 0.0;
    cuts.push_back(std::move(cut));
  }
  return cuts;
}

}  // namespace paretopipe
