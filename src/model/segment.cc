// Segment: building and running a contiguous range of blocks.
#include "model/segment.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "model/state_dict.h"
#include "model/tensor_file.h"

namespace paretopipe {
Segment::Segment(ModelDef def, BlockRange range, torch::Device device, std::vector<Block> blocks)
    : def_(std::move(def)), range_(range), device_(device), blocks_(std::move(blocks)) {}

Result<std::unique_ptr<Segment>> Segment::Build(const ModelSpec& spec, BlockRange range,
                                                const std::string& device_name) {
  if (spec.weights_path.empty()) return Materialize(spec, range, nullptr, "", device_name);
  PP_ASSIGN_OR_RETURN(ModelDef def, DefineModel(spec));
  PP_RETURN_IF_ERROR(CheckRange(def, &range));
  // Only this segment's tensors are read from the file.
  PP_ASSIGN_OR_RETURN(NamedTensors weights,
                      ReadStateDict(spec.weights_path, StageKeys(def, range.begin, range.end)));
  return Materialize(spec, range, &weights, spec.weights_path, device_name);
}

Result<std::unique_ptr<Segment>> Segment::BuildWithWeights(const ModelSpec& spec, BlockRange range,
                                                           const NamedTensors& weights,
                                                           const std::string& weights_name,
                                                           const std::string& device) {
  return Materialize(spec, range, &weights, weights_name, device);
}

Status Segment::CheckRange(const ModelDef& def, BlockRange* range) {
  const int64_t n = def.entry.num_blocks;
  if (range->end < 0) range->end = n;
  if (range->begin < 0 || range->begin >= range->end || range->end > n) {
    return Status::InvalidArgument(fmt::format(
        "block range [{}, {}) out of range: {} has blocks 0..{} (--from 0..{}, --to 1..{})",
        range->begin, range->end, def.entry.name, n - 1, n - 1, n));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Segment>> Segment::Materialize(const ModelSpec& spec, BlockRange range,
                                                      const NamedTensors* weights,
                                                      const std::string& weights_name,
                                                      const std::string& device_name) {
  PP_ASSIGN_OR_RETURN(ModelDef def, DefineModel(spec));
  PP_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(device_name));
  PP_RETURN_IF_ERROR(CheckRange(def, &range));

  std::vector<Block> blocks;
  Status status = CatchTorchErrors([&] {
    for (int64_t k = range.begin; k < range.end; ++k) {
      Block block = def.blocks[k].build();
      if (weights == nullptr) {  // Loaded weights overwrite every tensor below.
        InitializeBlock(*block, def.init,
                        at::make_generator<at::CPUGeneratorImpl>(BlockSeed(spec.seed, k)));
      }
      block->eval();
      blocks.push_back(block);
    }
    if (weights != nullptr) {
      PP_RETURN_IF_ERROR(LoadStateDict(*weights, weights_name, def, range.begin, blocks));
    }
    for (Block& block : blocks) block->to(device);
    return Status::Ok();
  });
  PP_RETURN_IF_ERROR(status);
  return std::unique_ptr<Segment>(new Segment(std::move(def), range, device, std::move(blocks)));
}

Result<torch::Tensor> Segment::Run(const torch::Tensor& input) {
  return RunBlocks(range_.begin, range_.end, input);
}

Result<torch::Tensor> Segment::RunBlocks(int64_t from, int64_t to, const torch::Tensor& input) {
  // Messages are formatted only on failure: this is the hot path of every stage.
  auto where = [&] { return fmt::format("{} blocks [{}, {})", def_.entry.name, from, to); };
  if (from < range_.begin || to > range_.end || from > to) {
    return Status::InvalidArgument(fmt::format("{}: outside this segment's blocks [{}, {})",
                                               where(), range_.begin, range_.end));
  }
  if (!input.defined()) return Status::InvalidArgument(where() + ": input tensor is undefined");
  if (input.scalar_type() != torch::kFloat) {
    return Status::InvalidArgument(fmt::format("{}: input has dtype {}, expected float32", where(),
                                               std::string(c10::toString(input.scalar_type()))));
  }
  if (input.dim() != 4) {
    return Status::InvalidArgument(fmt::format(
        "{}: input has shape {}, expected 4 dimensions [batch, channels, height, width]", where(),
        ShapeString(input)));
  }
  if (from == 0) {
    const ZooEntry& e = def_.entry;
    if (input.size(1) != e.input_channels || input.size(2) < e.min_input_side_px ||
        input.size(3) < e.min_input_side_px) {
      return Status::InvalidArgument(fmt::format(
          "{}: input has shape {}, expected [N, {}, H, W] with H, W >= {} (nominal {}x{})", where(),
          ShapeString(input), e.input_channels, e.min_input_side_px, e.input_side_px,
          e.input_side_px));
    }
  }

  torch::Tensor x;
  Status status = CatchTorchErrors([&] {
    c10::InferenceMode inference;
    x = input.to(device_);
    for (int64_t k = from; k < to; ++k) x = blocks_[k - range_.begin]->forward(x);
    return Status::Ok();
  });
  if (!status.ok()) {
    // LibTorch reports a shape its kernels cannot take as an error like any
    // other: keep its message, and classify it as the caller's input unless
    // it is a resource failure.
    const std::string message = fmt::format("{} failed on input of shape {}: {}", where(),
                                            ShapeString(input), status.message());
    return status.code() == Status::Code::kInternal ? Status::InvalidArgument(message)
                                                    : Status::Unavailable(message);
  }
  return x;
}

int64_t Segment::ParameterCount() const {
  int64_t count = 0;
  for (int64_t k = range_.begin; k < range_.end; ++k) count += BlockParameterCount(k);
  return count;
}

int64_t Segment::BlockParameterCount(int64_t index) const {
  int64_t count = 0;
  for (const torch::Tensor& p : blocks_[index - range_.begin]->parameters()) count += p.numel();
  return count;
}

std::vector<std::pair<std::string, torch::Tensor>> Segment::StateTensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const Block& block : blocks_) {
    auto tensors = block->StateTensors();
    out.insert(out.end(), tensors.begin(), tensors.end());
  }
  return out;
}

}  // namespace paretopipe
