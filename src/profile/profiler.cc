#include "profile/profiler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <memory>

#include "model/cuts.h"
#include "model/device.h"
#include "model/flop_counter.h"
#include "model/segment.h"
#include "model/torch_util.h"
#include "model/torchscript.h"

namespace paretopipe {
namespace {

// A model's blocks as the profiler times them: a zoo model's, or the node
// runs between a TorchScript model's cuts (model/cuts.h).
struct ProfiledBlocks {
  int64_t count = 0;
  torch::Device device = torch::kCPU;
  int64_t input_channels = 3;
  int64_t nominal_side_px = 224;
  std::function<std::string(int64_t)> name;
  std::function<int64_t(int64_t)> parameters;
  std::function<Result<torch::Tensor>(int64_t, const torch::Tensor&)> run;
  // MACs of block k at batch 1, when known without running (TorchScript);
  // null: counted with MacCounter during the untimed pass (zoo).
  std::function<int64_t(int64_t)> macs_at_batch1;
  // What owns the blocks.
  std::shared_ptr<void> keep;
};

Result<ProfiledBlocks> ZooBlocks(const ProfileRequest& request) {
  PP_ASSIGN_OR_RETURN(std::unique_ptr<Segment> built,
                      Segment::Build(request.model, {0, -1}, request.device));
  std::shared_ptr<Segment> model = std::move(built);
  ProfiledBlocks b;
  b.count = model->def().entry.num_blocks;
  b.device = model->device();
  b.input_channels = model->def().entry.input_channels;
  b.nominal_side_px = model->def().entry.input_side_px;
  b.name = [model](int64_t k) { return model->def().blocks[k].name; };
  b.parameters = [model](int64_t k) { return model->BlockParameterCount(k); };
  b.run = [model](int64_t k, const torch::Tensor& x) { return model->RunBlocks(k, k + 1, x); };
  b.keep = model;
  return b;
}

Result<ProfiledBlocks> ScriptBlocks(const ProfileRequest& request, int64_t side) {
  if (request.device != "cpu") {
    return Status::InvalidArgument(fmt::format(
        "TorchScript models run on the CPU in this version, not on {}", request.device));
  }
  PP_ASSIGN_OR_RETURN(ModelAnalysis analysis, AnalyzeModel(request.model, side));
  PP_ASSIGN_OR_RETURN(std::unique_ptr<ScriptModel> model, ScriptModel::Load(request.model.name));
  auto blocks = std::make_shared<std::vector<std::unique_ptr<StageCompute>>>();
  for (size_t k = 0; k + 1 < analysis.node_bounds.size(); ++k) {
    PP_ASSIGN_OR_RETURN(std::unique_ptr<ScriptSegment> segment,
                        model->Cut(analysis.node_bounds[k], analysis.node_bounds[k + 1]));
    blocks->push_back(std::make_unique<ScriptStageCompute>(std::move(segment)));
  }
  auto shared = std::make_shared<ModelAnalysis>(std::move(analysis));
  ProfiledBlocks b;
  b.count = static_cast<int64_t>(blocks->size());
  b.nominal_side_px = shared->input_side_px;
  b.name = [shared](int64_t k) { return shared->blocks[k].name; };
  b.parameters = [shared](int64_t k) { return shared->blocks[k].parameters; };
  b.macs_at_batch1 = [shared](int64_t k) { return shared->blocks[k].macs; };
  b.run = [blocks](int64_t k, const torch::Tensor& x) { return (*blocks)[k]->Run(x); };
  b.keep = blocks;
  return b;
}

void Synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}

nlohmann::ordered_json SummaryToJson(const Summary& s) {
  return {{"n", s.n},
          {"median", s.median},
          {"p95", s.p95},
          {"mean", s.mean},
          {"min", s.min},
          {"max", s.max},
          {"median_ci95", {s.median_ci_low, s.median_ci_high}}};
}

Result<Profile> Run(const ProfileRequest& request) {
  if (request.batch < 1)
    return Status::InvalidArgument(
        fmt::format("--batch must be at least 1, got {}", request.batch));
  if (request.repeat < 1)
    return Status::InvalidArgument(
        fmt::format("--repeat must be at least 1, got {}", request.repeat));
  if (request.warmup < 0)
    return Status::InvalidArgument(
        fmt::format("--warmup must be at least 0, got {}", request.warmup));
  Profile profile;
  profile.request = request;
  if (profile.request.threads == 0) profile.request.threads = DefaultThreads();
  PP_RETURN_IF_ERROR(ConfigureCompute(profile.request.threads));
  profile.machine = DescribeMachine();

  ProfiledBlocks model;
  if (IsTorchScriptFile(request.model.name)) {
    PP_ASSIGN_OR_RETURN(model, ScriptBlocks(request, request.input_side_px));
  } else {
    PP_ASSIGN_OR_RETURN(model, ZooBlocks(request));
  }
  const int64_t side = request.input_side_px > 0 ? request.input_side_px : model.nominal_side_px;
  profile.request.input_side_px = side;
  const int64_t n = model.count;

  // Deterministic synthetic input: the block times do not depend on its values.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(request.model.seed);
  profile.input_shape = {request.batch, model.input_channels, side, side};
  const torch::Tensor input = torch::rand(profile.input_shape, generator);

  // Each block's input, from one untimed pass that also counts MACs.
  std::vector<torch::Tensor> inputs(n);
  profile.blocks.resize(n);
  {
    MacCounter counter;
    torch::Tensor x = input;
    for (int64_t k = 0; k < n; ++k) {
      inputs[k] = x.to(model.device);
      counter.Reset();
      PP_ASSIGN_OR_RETURN(x, model.run(k, inputs[k]));
      BlockProfile& block = profile.blocks[k];
      block.index = k;
      block.name = model.name(k);
      block.output_shape = x.sizes().vec();
      block.output_bytes = x.numel() * static_cast<int64_t>(x.element_size());
      block.macs = model.macs_at_batch1 ? model.macs_at_batch1(k) * request.batch : counter.macs();
      block.parameters = model.parameters(k);
    }
  }

  std::vector<std::vector<double>> samples(n);
  std::vector<double> totals;
  for (int pass = 0; pass < request.warmup + request.repeat; ++pass) {
    const bool timed = pass >= request.warmup;
    double total_ms = 0;
    for (int64_t k = 0; k < n; ++k) {
      Synchronize(model.device);
      const auto start = std::chrono::steady_clock::now();
      PP_ASSIGN_OR_RETURN(torch::Tensor out, model.run(k, inputs[k]));
      Synchronize(model.device);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      if (timed) samples[k].push_back(ms);
      total_ms += ms;
    }
    if (timed) totals.push_back(total_ms);
  }
  for (int64_t k = 0; k < n; ++k) profile.blocks[k].compute_ms = Summarize(samples[k]);
  profile.total_ms = Summarize(totals);
  return profile;
}

}  // namespace

Result<Profile> RunProfile(const ProfileRequest& request) {
  return GuardTorch([&] { return Run(request); });
}

nlohmann::ordered_json ProfileToJson(const Profile& p) {
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  for (const BlockProfile& b : p.blocks) {
    blocks.push_back({{"index", b.index},
                      {"name", b.name},
                      {"compute_ms", SummaryToJson(b.compute_ms)},
                      {"output_shape", b.output_shape},
                      {"output_bytes", b.output_bytes},
                      {"macs", b.macs},
                      {"parameters", b.parameters}});
  }
  return {
      {"format", "paretopipe.profile"},
      {"version", 1},
      {"model",
       {{"name", p.request.model.name},
        {"num_classes", p.request.model.num_classes},
        {"seed", p.request.model.seed},
        {"weights", p.request.model.weights_path}}},
      {"settings",
       {{"batch", p.request.batch},
        {"input_shape", p.input_shape},
        {"repeat", p.request.repeat},
        {"warmup", p.request.warmup},
        {"threads", p.request.threads},
        {"device", p.request.device},
        {"clock", "steady_clock"}}},
      {"machine", MachineToJson(p.machine)},
      {"blocks", blocks},
      {"total_compute_ms", SummaryToJson(p.total_ms)},
  };
}

}  // namespace paretopipe
