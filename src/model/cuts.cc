// Model analysis: one instrumented forward pass.
#include "model/cuts.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "model/flop_counter.h"
#include "model/segment.h"
#include "model/torch_util.h"

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

  torch::Tensor x = torch::zeros({1, analysis.entry.input_channels, analysis.input_side_px, analysis.input_side_px});
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

}  // namespace

Result<ModelAnalysis> AnalyzeModel(const ModelSpec& spec, int64_t input_side_px) {
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
