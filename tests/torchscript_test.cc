// TorchScript models split by their dataflow graph: every cut at module
// granularity of real torchvision models, scripted and traced, computes the
// whole model's output; a cut inside a residual block carries two tensors; a
// forward with control flow splits too; files that are not TorchScript are
// refused clearly. The models come from Debian's python3-torch and
// python3-torchvision, exported when the suite starts (skipped without them).
#include "model/torchscript.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/worker_client.h"
#include "model/cuts.h"
#include "model/tensor_file.h"
#include "runtime/input_set.h"
#include "sweep/pipeline_run.h"
#include "sweep/script_stages.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::ScopedTempDir;

// Exports the models and, for one input batch, what PyTorch computes for each.
constexpr const char* kExportScript = R"PY(
import sys, torch, torchvision
d = sys.argv[1]
torch.manual_seed(0)
x = torch.rand(2, 3, 64, 64)
x.numpy().tofile(d + "/input.bin")
torch.save(x, d + "/input.pth")

class Branchy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)
    def forward(self, x):
        y = torch.relu(self.a(x))
        if bool(y.mean() > 0.1):
            y = self.b(y)
        else:
            y = -self.b(y)
        for _ in range(2):
            y = y * 0.5 + 1
        return self.fc(y.mean([2, 3]))

class Tricky(torch.nn.Module):
    # A view crossing beside its base, then written in place; a bool mask and
    # a 0-dim tensor; the model's input used again at the end (a global skip).
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 3, 3, padding=1)
    def forward(self, x):
        y = self.a(x)
        z = y.transpose(2, 3)
        w = self.b(y)
        y.relu_()
        m = w > 0
        s = m.any()
        return w + z.transpose(2, 3)[:, :3] + s.float() + x

models = {
    "resnet18_traced": torch.jit.trace(torchvision.models.resnet18().eval(), x),
    "resnet18_scripted": torch.jit.script(torchvision.models.resnet18().eval()),
    "mobilenet_v2_scripted": torch.jit.script(torchvision.models.mobilenet_v2().eval()),
    "branchy_scripted": torch.jit.script(Branchy().eval()),
    "tricky_scripted": torch.jit.script(Tricky().eval()),
}
with torch.no_grad():
    for name, m in models.items():
        m.save(d + "/" + name + ".pt")
        m(x).numpy().tofile(d + "/" + name + ".out.bin")
)PY";

torch::Tensor ReadFloats(const std::string& path, std::vector<int64_t> shape) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::Tensor t = torch::empty(shape, torch::kFloat);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(t.nbytes())) << path;
  if (bytes.size() == static_cast<size_t>(t.nbytes())) {
    std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  }
  return t;
}

class TorchScriptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") != 0) return;
    dir_ = new ScopedTempDir();
    std::ofstream(dir_->path() + "/export.py") << kExportScript;
    exported_ =
        std::system(("/usr/bin/python3 " + dir_->path() + "/export.py " + dir_->path()).c_str()) ==
        0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (dir_ == nullptr) {
      GTEST_SKIP() << "needs Debian's python3-torch and python3-torchvision (scripts/setup.sh "
                      "--tests installs them) to export TorchScript models";
    }
    ASSERT_TRUE(exported_) << "exporting the models with PyTorch failed";
    torch::set_num_threads(1);
    input_ = ReadFloats(dir_->path() + "/input.bin", {2, 3, 64, 64});
  }

  std::unique_ptr<ScriptModel> LoadOrDie(const std::string& name) {
    Result<std::unique_ptr<ScriptModel>> model = ScriptModel::Load(Path(name));
    EXPECT_TRUE(model.ok()) << model.status().message();
    return model.ok() ? std::move(model).value() : nullptr;
  }
  std::string Path(const std::string& name) const { return dir_->path() + "/" + name + ".pt"; }

  // Runs nodes [begin, end) on `inputs`.
  std::vector<torch::jit::IValue> RunNodes(const ScriptModel& model, int64_t begin, int64_t end,
                                           std::vector<torch::jit::IValue> inputs) {
    Result<std::unique_ptr<ScriptSegment>> segment = model.Cut(begin, end);
    EXPECT_TRUE(segment.ok()) << segment.status().message();
    if (!segment.ok()) return {};
    Result<std::vector<torch::jit::IValue>> out = (*segment)->Run(std::move(inputs));
    EXPECT_TRUE(out.ok()) << out.status().message();
    return out.ok() ? *out : std::vector<torch::jit::IValue>{};
  }

  // Every cut in `positions` of `model`: the two halves run one after the
  // other give exactly the whole model's output.
  void ExpectEveryCutEqualsWholeModel(const ScriptModel& model,
                                      const std::vector<int64_t>& positions) {
    const int64_t n = model.node_count();
    const std::vector<torch::jit::IValue> whole = RunNodes(model, 0, n, {input_});
    ASSERT_EQ(whole.size(), 1u);
    for (int64_t p : positions) {
      SCOPED_TRACE("cut at node " + std::to_string(p) + " (" + model.nodes()[p].module_path + ")");
      std::vector<torch::jit::IValue> crossing = RunNodes(model, 0, p, {input_});
      ASSERT_FALSE(crossing.empty());
      const std::vector<torch::jit::IValue> out = RunNodes(model, p, n, crossing);
      ASSERT_EQ(out.size(), 1u);
      EXPECT_TRUE(torch::equal(out[0].toTensor(), whole[0].toTensor()));
    }
  }

  static inline ScopedTempDir* dir_ = nullptr;
  static inline bool exported_ = false;
  torch::Tensor input_;
};

TEST_F(TorchScriptTest, WholeFrozenGraphComputesWhatPyTorchComputed) {
  for (const std::string name :
       {"resnet18_traced", "resnet18_scripted", "mobilenet_v2_scripted", "branchy_scripted"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<ScriptModel> model = LoadOrDie(name);
    ASSERT_NE(model, nullptr);
    const std::vector<torch::jit::IValue> out = RunNodes(*model, 0, model->node_count(), {input_});
    ASSERT_EQ(out.size(), 1u);
    const torch::Tensor expected =
        ReadFloats(dir_->path() + "/" + name + ".out.bin", out[0].toTensor().sizes().vec());
    // PyTorch ran with its default thread count; reductions may round apart.
    EXPECT_TRUE(torch::allclose(out[0].toTensor(), expected, 1e-4, 1e-5))
        << "max abs diff " << (out[0].toTensor() - expected).abs().max().item<double>();
  }
}

TEST_F(TorchScriptTest, EveryModuleCutOfResNet18AndMobileNetV2EqualsTheWholeModel) {
  for (const std::string name : {"resnet18_traced", "resnet18_scripted", "mobilenet_v2_scripted"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<ScriptModel> model = LoadOrDie(name);
    ASSERT_NE(model, nullptr);
    const std::vector<int64_t> cuts = model->CutPositions(CutGranularity::kModule, 1);
    EXPECT_GE(cuts.size(), 10u);
    ExpectEveryCutEqualsWholeModel(*model, cuts);
  }
}

TEST_F(TorchScriptTest, ResNetModuleCutsFallBetweenBlocksNeverInsideAResidualBlock) {
  std::unique_ptr<ScriptModel> model = LoadOrDie("resnet18_traced");
  ASSERT_NE(model, nullptr);
  std::vector<std::string> first_after;
  for (int64_t p : model->CutPositions(CutGranularity::kModule, 1)) {
    first_after.push_back(model->nodes()[p].module_path);
  }
  // Each BasicBlock begins with its conv1; inside a block two tensors cross
  // (the residual and the main path), so no single-tensor cut is there.
  for (const char* block :
       {"layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer4.1.conv1", "fc"}) {
    EXPECT_NE(std::find(first_after.begin(), first_after.end(), block), first_after.end()) << block;
  }
  EXPECT_EQ(std::find(first_after.begin(), first_after.end(), "layer1.0.conv2"), first_after.end());
}

TEST_F(TorchScriptTest, ACutInsideAResidualBlockCarriesTwoTensorsAndStillEqualsTheWholeModel) {
  std::unique_ptr<ScriptModel> model = LoadOrDie("mobilenet_v2_scripted");
  ASSERT_NE(model, nullptr);
  std::vector<int64_t> two;
  for (const ScriptCrossing& c : model->crossings()) {
    if (c.all_tensors && c.values == 2) two.push_back(c.position);
  }
  ASSERT_FALSE(two.empty());
  const std::vector<int64_t> op_cuts = model->CutPositions(CutGranularity::kOp, 2);
  EXPECT_NE(std::find(op_cuts.begin(), op_cuts.end(), two.front()), op_cuts.end());
  const std::vector<int64_t> single = model->CutPositions(CutGranularity::kOp, 1);
  EXPECT_EQ(std::find(single.begin(), single.end(), two.front()), single.end());

  std::vector<torch::jit::IValue> crossing = RunNodes(*model, 0, two.front(), {input_});
  EXPECT_EQ(crossing.size(), 2u);
  ExpectEveryCutEqualsWholeModel(*model, {two.front(), two[two.size() / 2], two.back()});
}

TEST_F(TorchScriptTest, SegmentsSavedAsTheirOwnModulesComputeTheSame) {
  for (const std::string name : {"resnet18_traced", "mobilenet_v2_scripted", "branchy_scripted"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<ScriptModel> model = LoadOrDie(name);
    ASSERT_NE(model, nullptr);
    const int64_t n = model->node_count();
    const std::vector<torch::jit::IValue> whole = RunNodes(*model, 0, n, {input_});
    // A single-tensor cut in the middle, and (where there is one) a two-tensor one.
    std::vector<int64_t> cuts = model->CutPositions(CutGranularity::kOp, 1);
    ASSERT_FALSE(cuts.empty());
    std::vector<int64_t> tried = {cuts[cuts.size() / 2]};
    for (const ScriptCrossing& c : model->crossings()) {
      if (c.all_tensors && c.values == 2) {
        tried.push_back(c.position);
        break;
      }
    }
    for (int64_t p : tried) {
      SCOPED_TRACE("cut at node " + std::to_string(p));
      std::vector<torch::jit::IValue> values = {input_};
      for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, p}, {p, n}}) {
        Result<std::unique_ptr<ScriptSegment>> cut = model->Cut(begin, end);
        ASSERT_TRUE(cut.ok()) << cut.status().message();
        Result<std::string> bytes = (*cut)->Serialize();
        ASSERT_TRUE(bytes.ok()) << bytes.status().message();
        Result<std::unique_ptr<ScriptSegment>> loaded = ScriptSegment::Deserialize(*bytes, "x");
        ASSERT_TRUE(loaded.ok()) << loaded.status().message();
        EXPECT_EQ((*loaded)->input_count(), values.size());
        Result<std::vector<torch::jit::IValue>> out = (*loaded)->Run(values);
        ASSERT_TRUE(out.ok()) << out.status().message();
        values = *out;
      }
      ASSERT_EQ(values.size(), 1u);
      EXPECT_TRUE(torch::equal(values[0].toTensor(), whole[0].toTensor()));
    }
  }
}

TEST_F(TorchScriptTest, BytesThatAreNotASegmentModuleAreRefused) {
  Result<std::unique_ptr<ScriptSegment>> loaded =
      ScriptSegment::Deserialize("PK\x03\x04 not really a zip", "segment from 10.0.0.2");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message().rfind("segment from 10.0.0.2: not a ParetoPipe segment", 0),
            0u)
      << loaded.status().message();
}

TEST_F(TorchScriptTest, AForwardWithControlFlowSplitsAtEveryOpCut) {
  std::unique_ptr<ScriptModel> model = LoadOrDie("branchy_scripted");
  ASSERT_NE(model, nullptr);
  const std::vector<int64_t> cuts = model->CutPositions(CutGranularity::kOp, 1);
  ASSERT_FALSE(cuts.empty());
  bool has_if = false;
  for (const ScriptNode& node : model->nodes()) has_if = has_if || node.kind == "prim::If";
  EXPECT_TRUE(has_if);
  ExpectEveryCutEqualsWholeModel(*model, cuts);
}

TEST_F(TorchScriptTest, OnlyCutsThatTravelAsFloatBatchesWithoutAliasingAreBlocks) {
  ModelSpec spec;
  spec.name = Path("tricky_scripted");
  spec.granularity = "op";
  spec.max_cut_tensors = 3;
  Result<ModelAnalysis> analysis = AnalyzeModel(spec, 64);
  ASSERT_TRUE(analysis.ok()) << analysis.status().message();
  std::unique_ptr<ScriptModel> model = LoadOrDie("tricky_scripted");
  ASSERT_NE(model, nullptr);
  bool aliased = false;
  for (const ScriptCrossing& c : model->crossings()) aliased = aliased || c.aliased;
  EXPECT_TRUE(aliased);
  const std::vector<int64_t>& bounds = analysis->node_bounds;
  ASSERT_GE(bounds.size(), 3u);
  EXPECT_LT(bounds.size() - 2, model->CutPositions(CutGranularity::kOp, 3).size());
  // Each block boundary, with every crossing tensor copied as the network
  // would: exactly the whole model.
  const int64_t n = model->node_count();
  const torch::Tensor whole = RunNodes(*model, 0, n, {input_})[0].toTensor();
  for (size_t k = 1; k + 1 < bounds.size(); ++k) {
    SCOPED_TRACE("cut at node " + std::to_string(bounds[k]));
    std::vector<torch::jit::IValue> crossing = RunNodes(*model, 0, bounds[k], {input_});
    for (torch::jit::IValue& v : crossing) {
      ASSERT_TRUE(v.isTensor());
      EXPECT_EQ(v.toTensor().scalar_type(), torch::kFloat);
      v = v.toTensor().clone();
    }
    const std::vector<torch::jit::IValue> out = RunNodes(*model, bounds[k], n, crossing);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(torch::equal(out[0].toTensor(), whole));
  }
}

TEST_F(TorchScriptTest, ConvolutionAndLinearMacsFromTheGraph) {
  std::unique_ptr<ScriptModel> model = LoadOrDie("resnet18_traced");
  ASSERT_NE(model, nullptr);
  Result<NodeTensors> shapes = model->NodeOutputs(input_.narrow(0, 0, 1));
  ASSERT_TRUE(shapes.ok()) << shapes.status().message();
  int64_t total = 0, first_conv = -1, fc = -1;
  for (int64_t i = 0; i < model->node_count(); ++i) {
    const int64_t macs = model->NodeMacs(i, *shapes);
    total += macs;
    if (first_conv < 0 && macs > 0) first_conv = macs;
    if (model->nodes()[i].module_path == "fc") fc = macs;
  }
  // conv1: 64 x 32 x 32 outputs at 64 px, each 3 x 7 x 7 products; fc: 1000 x 512.
  EXPECT_EQ(first_conv, 64 * 32 * 32 * 3 * 7 * 7);
  EXPECT_EQ(fc, 1000 * 512);
  // ResNet-18 is 1.82 GMACs at 224 px; at 64 px about (64/224)^2 of that.
  EXPECT_NEAR(static_cast<double>(total), 1.82e9 * (64.0 / 224) * (64.0 / 224), 0.03e9);
}

TEST_F(TorchScriptTest, CutsCommandListsTheGraphsCutsWithBytesAndMacs) {
  std::unique_ptr<ScriptModel> model = LoadOrDie("resnet18_traced");
  ASSERT_NE(model, nullptr);
  const size_t module_cuts = model->CutPositions(CutGranularity::kModule, 1).size();
  const size_t op_cuts = model->CutPositions(CutGranularity::kOp, 2).size();
  const std::string binary = PARETOPIPE_BINARY;

  const testing::CommandOutcome o = testing::RunCommand(
      binary + " cuts " + Path("resnet18_traced") + " --input-size 64 --batch 2 --json",
      dir_->path());
  const testing::CommandOutcome op =
      testing::RunCommand(binary + " cuts " + Path("resnet18_traced") +
                              " --input-size 64 --granularity op --max-cut-tensors 2 --json",
                          dir_->path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j["cuts"].size(), module_cuts);
  EXPECT_EQ(j["blocks"].get<size_t>(), module_cuts + 1);
  EXPECT_NEAR(j["macs"].get<double>(), 2 * 1.82e9 * (64.0 / 224) * (64.0 / 224), 0.06e9);
  const nlohmann::json& last = j["cuts"].back();  // Before fc: the 512 pooled features.
  EXPECT_EQ(last["shape"], nlohmann::json({2, 512}));
  EXPECT_EQ(last["bytes"].get<int64_t>(), 2 * 512 * 4);
  EXPECT_EQ(last["first_block_after"], "fc");
  ASSERT_EQ(op.exit_code, 0) << op.err;
  EXPECT_EQ(nlohmann::json::parse(op.out)["cuts"].size(), op_cuts);
  EXPECT_GT(op_cuts, module_cuts);
}

// Two in-process workers run a traced ResNet-18 split at module cuts, each
// stage on the segment module the orchestrator cut and sent it.
class TorchScriptPipelineTest : public TorchScriptTest {
 protected:
  void StartWorkers(bool allow_remote_models) {
    WorkerOptions options;
    options.allow_remote_models = allow_remote_models;
    for (int s = 0; s < 2; ++s) {
      workers_.push_back(std::make_unique<testing::ServingWorker>(options));
      ASSERT_TRUE(workers_.back()->ok());
      Result<std::unique_ptr<WorkerClient>> client =
          WorkerClient::Connect(workers_.back()->endpoint(), std::chrono::milliseconds(3000));
      ASSERT_TRUE(client.ok()) << client.status().message();
      clients_.push_back(std::move(client).value());
    }
  }
  void TearDown() override {
    clients_.clear();
    workers_.clear();
  }

  // The plan a sweep makes for `cut`, the source cycling through input_ (one
  // batch of 2: every batch is input_).
  Result<RunPlan> PlanFor(const ModelAnalysis& analysis, ScriptStages& stages, int cut,
                          const std::string& backend = "tcp") {
    RunPlan plan;
    RunConfig& c = plan.config;
    c.model = analysis.entry.name;
    c.backend = backend;
    c.cuts = {cut};
    c.batch_size = 2;
    c.input_side_px = 64;
    c.batches = 4;
    c.warmup = 1;
    c.window = 2;
    c.repeats = 1;
    c.threads = 1;
    plan.num_blocks = static_cast<int64_t>(analysis.blocks.size());
    plan.run_id = 500 + cut;
    plan.clock_samples = 2;
    plan.keep_outputs = true;
    plan.stage_input_shapes = StageInputShapes(analysis, 2, c.cuts);
    plan.stage_extra_input_shapes = StageExtraInputShapes(analysis, 2, c.cuts);
    PP_ASSIGN_OR_RETURN(InputSet set, MakeInputSet(input_));
    plan.inputs = std::make_shared<const InputSet>(std::move(set));
    c.input_digest = plan.inputs->digest;
    c.input_images = plan.inputs->count();
    for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, cut}, {cut, plan.num_blocks}}) {
      PP_ASSIGN_OR_RETURN(ScriptStageModule module, stages.Module(begin, end));
      plan.stage_modules.push_back(module);
    }
    return plan;
  }

  std::vector<WorkerClient*> Clients() const {
    std::vector<WorkerClient*> out;
    for (const auto& c : clients_) out.push_back(c.get());
    return out;
  }

  // Analyzes a model at 64 px and loads its stages, as a sweep does.
  void LoadStages(const std::string& name = "resnet18_traced",
                  const std::string& granularity = "module", int max_cut_tensors = 1) {
    ModelSpec spec;
    spec.name = Path(name);
    spec.granularity = granularity;
    spec.max_cut_tensors = max_cut_tensors;
    Result<ModelAnalysis> analysis = AnalyzeModel(spec, 64);
    ASSERT_TRUE(analysis.ok()) << analysis.status().message();
    analysis_ = std::move(analysis).value();
    Result<std::unique_ptr<ScriptStages>> stages =
        ScriptStages::Load(spec.name, analysis_.node_bounds);
    ASSERT_TRUE(stages.ok()) << stages.status().message();
    stages_ = std::move(stages).value();
  }

  // Runs `plan` on the workers and expects every batch's output to be `whole`
  // exactly. Returns the record (empty on failure).
  RunRecord ExpectRunEquals(const RunPlan& plan, const torch::Tensor& whole) {
    std::vector<KeptOutput> outputs;
    Result<RunRecord> record = RunPipeline(Clients(), plan, &outputs);
    EXPECT_TRUE(record.ok()) << record.status().message();
    if (!record.ok()) return RunRecord();
    EXPECT_EQ(outputs.size(), static_cast<size_t>(plan.config.batches));
    for (KeptOutput& o : outputs) {
      const torch::Tensor got = torch::from_blob(o.values.data(), o.shape, torch::kFloat);
      EXPECT_TRUE(torch::equal(got, whole)) << "batch " << o.batch_id;
    }
    return std::move(record).value();
  }

  std::vector<std::unique_ptr<testing::ServingWorker>> workers_;
  std::vector<std::unique_ptr<WorkerClient>> clients_;
  ModelAnalysis analysis_;
  std::unique_ptr<ScriptStages> stages_;
};

TEST_F(TorchScriptPipelineTest, EveryStagePairOnWorkersComputesTheWholeModel) {
  ASSERT_NO_FATAL_FAILURE(LoadStages());
  std::unique_ptr<ScriptModel> model = LoadOrDie("resnet18_traced");
  ASSERT_NE(model, nullptr);
  const torch::Tensor whole = RunNodes(*model, 0, model->node_count(), {input_})[0].toTensor();
  StartWorkers(/*allow_remote_models=*/true);
  const int blocks = static_cast<int>(analysis_.blocks.size());

  for (int cut : {1, blocks / 2, blocks - 1}) {
    SCOPED_TRACE("cut " + std::to_string(cut));
    Result<RunPlan> plan = PlanFor(analysis_, *stages_, cut);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    ExpectRunEquals(*plan, whole);
  }
}

TEST_F(TorchScriptPipelineTest, TwoTensorCutsTravelOnEveryBackend) {
  ASSERT_NO_FATAL_FAILURE(LoadStages("mobilenet_v2_scripted", "op", 2));
  std::unique_ptr<ScriptModel> model = LoadOrDie("mobilenet_v2_scripted");
  ASSERT_NE(model, nullptr);
  const torch::Tensor whole = RunNodes(*model, 0, model->node_count(), {input_})[0].toTensor();
  int two = 0;  // The first block boundary where two tensors cross.
  for (size_t k = 0; k + 1 < analysis_.blocks.size() && two == 0; ++k) {
    if (analysis_.blocks[k].extra_output_shapes.size() == 1) two = static_cast<int>(k) + 1;
  }
  ASSERT_GT(two, 0);
  StartWorkers(/*allow_remote_models=*/true);

  for (const std::string& backend : BackendNames()) {  // Those of this build.
    SCOPED_TRACE(backend);
    Result<RunPlan> plan = PlanFor(analysis_, *stages_, two, backend);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    ASSERT_EQ(plan->stage_extra_input_shapes[1].size(), 1u);
    const RunRecord record = ExpectRunEquals(*plan, whole);
    // Both tensors crossed: the bytes sent are the sum of the two.
    ASSERT_FALSE(record.stages.empty());
    EXPECT_EQ(record.stages[0].bytes_out_per_batch, 2 * analysis_.blocks[two - 1].output_bytes);
  }
}

TEST_F(TorchScriptPipelineTest, AWorkerNotAllowingRemoteModelsRefusesTheSegment) {
  ASSERT_NO_FATAL_FAILURE(LoadStages());
  StartWorkers(/*allow_remote_models=*/false);
  Result<RunPlan> plan = PlanFor(analysis_, *stages_, 3);
  ASSERT_TRUE(plan.ok()) << plan.status().message();

  Result<RunRecord> record = RunPipeline(Clients(), *plan);

  ASSERT_FALSE(record.ok());
  EXPECT_NE(record.status().message().find("--allow-remote-models"), std::string::npos)
      << record.status().message();
}

TEST_F(TorchScriptTest, RunOfTwoBlockRangesOnTensorFilesEqualsTheWholeModel) {
  const std::string run = std::string(PARETOPIPE_BINARY) + " run " + Path("resnet18_traced") +
                          " -t 1 -i " + dir_->path() + "/";
  const testing::CommandOutcome first = testing::RunCommand(
      run + "input.pth --from 0 --to 5 -o " + dir_->path() + "/mid.pth", dir_->path());
  const testing::CommandOutcome second = testing::RunCommand(
      run + "mid.pth --from 5 --input-size 64 -o " + dir_->path() + "/out.pth", dir_->path());
  const testing::CommandOutcome whole =
      testing::RunCommand(run + "input.pth -o " + dir_->path() + "/whole.pth", dir_->path());

  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  Result<torch::Tensor> split = ReadTensorFile(dir_->path() + "/out.pth");
  Result<torch::Tensor> all = ReadTensorFile(dir_->path() + "/whole.pth");
  ASSERT_TRUE(split.ok() && all.ok());
  EXPECT_TRUE(torch::equal(*split, *all));
  const torch::Tensor expected =
      ReadFloats(dir_->path() + "/resnet18_traced.out.bin", all->sizes().vec());
  EXPECT_TRUE(torch::allclose(*all, expected, 1e-4, 1e-5));
}

TEST_F(TorchScriptTest, ProfileTimesEveryBlockOfTheGraph) {
  std::unique_ptr<ScriptModel> model = LoadOrDie("resnet18_traced");
  ASSERT_NE(model, nullptr);
  const size_t blocks = model->CutPositions(CutGranularity::kModule, 1).size() + 1;
  const std::string json = dir_->path() + "/profile.json";

  const testing::CommandOutcome o =
      testing::RunCommand(std::string(PARETOPIPE_BINARY) + " profile " + Path("resnet18_traced") +
                              " --input-size 64 --batch 2 --repeat 3 --warmup 1 -o " + json,
                          dir_->path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json p = nlohmann::json::parse(testing::Slurp(json));
  ASSERT_EQ(p["blocks"].size(), blocks);
  int64_t macs = 0;
  for (const nlohmann::json& b : p["blocks"]) {
    EXPECT_EQ(b["compute_ms"]["n"].get<int>(), 3);
    EXPECT_GT(b["compute_ms"]["median"].get<double>(), 0);
    macs += b["macs"].get<int64_t>();
  }
  EXPECT_EQ(p["blocks"].back()["output_shape"], nlohmann::json({2, 1000}));
  EXPECT_NEAR(static_cast<double>(macs), 2 * 1.82e9 * (64.0 / 224) * (64.0 / 224), 0.06e9);
}

TEST_F(TorchScriptTest, SweepOfATracedModelOnLocalWorkersMatchesTheWholeModelAtEveryCut) {
  const std::string binary = PARETOPIPE_BINARY;
  const std::string db = dir_->path() + "/sweep.db";

  const testing::CommandOutcome o = testing::RunCommand(
      binary + " sweep " + Path("resnet18_traced") +
          " --input-size 64 --cuts 1,5,12 --batch 2 --batches 4 --warmup 1 --repeat 1 --verify "
          "--db " +
          db,
      dir_->path());
  const testing::CommandOutcome weights = testing::RunCommand(
      binary + " sweep " + Path("resnet18_traced") + " --weights w.pth --db " + db, dir_->path());

  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  size_t verified = 0;
  for (size_t at = o.out.find("outputs = whole model"); at != std::string::npos;
       at = o.out.find("outputs = whole model", at + 1)) {
    ++verified;
  }
  EXPECT_EQ(verified, 3u) << o.out;
  EXPECT_EQ(weights.exit_code, 1);
  EXPECT_NE(weights.err.find("carries its own weights"), std::string::npos) << weights.err;
}

TEST(TorchScriptLoadTest, AFileThatIsNotTorchScriptIsRefusedClearly) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/model.pt";
  std::ofstream(path) << "this is not a zip archive";

  Result<std::unique_ptr<ScriptModel>> model = ScriptModel::Load(path);

  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(model.status().message().rfind(path + ": not a TorchScript model", 0), 0u)
      << model.status().message();
  EXPECT_EQ(model.status().message().find('\n'), std::string::npos);
  EXPECT_EQ(ScriptModel::Load(dir.path() + "/absent.pt").status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace paretopipe
