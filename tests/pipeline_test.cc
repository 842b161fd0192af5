// RunPipeline over in-process workers on loopback: a split model run as a
// pipeline computes exactly what the whole model computes, the record
// describes the run, weights reach the stages, and a failed run neither
// hangs nor spoils the workers for the next one.
#include "sweep/pipeline_run.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "control/worker_client.h"
#include "model/cuts.h"
#include "model/device.h"
#include "model/segment.h"
#include "model/tensor_file.h"
#include "test_util.h"
#include "util/digest.h"

namespace paretopipe {
namespace {

using testing::ScopedTempDir;
using testing::ServingWorker;

constexpr std::chrono::milliseconds kConnectTimeout(3000);

// Small enough that a run takes well under a second on one core.
constexpr const char* kModel = "resnet18";
constexpr int64_t kNumClasses = 10;
constexpr int64_t kInputSidePx = 32;
constexpr int64_t kBatchSize = 2;

// The plan RunSweep makes for `cuts` (src/sweep/sweep.cc): stage 0 receives
// the input image batch, stage i the activation at cuts[i - 1], at the run's
// batch size.
RunPlan PlanFor(const ModelSpec& spec, const std::vector<int>& cuts, int window) {
  Result<ModelAnalysis> analysis = AnalyzeModel(spec, kInputSidePx);
  EXPECT_TRUE(analysis.ok()) << analysis.status().message();
  RunPlan plan;
  if (!analysis.ok()) return plan;
  RunConfig& c = plan.config;
  c.model = spec.name;
  c.num_classes = spec.num_classes;
  c.seed = spec.seed;
  c.cuts = cuts;
  c.batch_size = kBatchSize;
  c.input_side_px = static_cast<int>(analysis->input_side_px);
  c.batches = 6;
  c.warmup = 1;
  c.window = window;
  c.repeats = 1;
  c.threads = 1;
  plan.num_blocks = static_cast<int64_t>(analysis->blocks.size());
  plan.run_id = 1000 + window;
  plan.input_seed = 17;
  plan.clock_samples = 4;
  plan.keep_outputs = true;
  plan.stage_input_shapes = StageInputShapes(*analysis, kBatchSize, cuts);
  return plan;
}

// The source's synthetic input of batch `b` (StageRunner::RunPass): uniform
// [0, 1) from input_seed + b, cycling over min(batches, 4) distinct batches.
torch::Tensor SourceInput(const RunPlan& plan, int64_t b) {
  const int distinct = std::min(plan.config.batches, 4);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(plan.input_seed + static_cast<uint64_t>(b % distinct));
  return torch::rand(plan.stage_input_shapes[0], gen, torch::kFloat);
}

// What the whole model (weights from `spec`) outputs for every batch of `plan`.
std::vector<torch::Tensor> WholeModelOutputs(const ModelSpec& spec, const RunPlan& plan) {
  std::unique_ptr<Segment> whole = testing::BuildOrDie(spec);
  std::vector<torch::Tensor> out;
  if (!whole) return out;
  for (int b = 0; b < plan.config.batches; ++b) out.push_back(testing::RunOrDie(*whole, SourceInput(plan, b)));
  return out;
}

void ExpectOutputsEqual(const std::vector<KeptOutput>& got, const std::vector<torch::Tensor>& expected) {
  ASSERT_EQ(got.size(), expected.size());
  for (size_t b = 0; b < got.size(); ++b) {
    EXPECT_EQ(got[b].batch_id, static_cast<int64_t>(b));
    std::vector<float> values = got[b].values;
    const torch::Tensor t = torch::from_blob(values.data(), got[b].shape, torch::kFloat).clone();
    ASSERT_EQ(t.sizes(), expected[b].sizes()) << "batch " << b;
    EXPECT_TRUE(torch::equal(t, expected[b]))
        << "batch " << b << ": max abs diff " << (t - expected[b]).abs().max().item<double>();
  }
}

// In-process workers, one per stage, and an orchestrator's client for each.
class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ConfigureCompute(1).ok()); }

  // Starts `stages` workers with `options` and connects to them.
  void StartWorkers(int stages, const WorkerOptions& options = {}) {
    for (int s = 0; s < stages; ++s) {
      workers_.push_back(std::make_unique<ServingWorker>(options));
      ASSERT_TRUE(workers_.back()->ok());
      Result<std::unique_ptr<WorkerClient>> client =
          WorkerClient::Connect(workers_.back()->endpoint(), kConnectTimeout);
      ASSERT_TRUE(client.ok()) << client.status().message();
      clients_.push_back(std::move(client).value());
    }
  }

  std::vector<WorkerClient*> Clients() const {
    std::vector<WorkerClient*> out;
    for (const auto& c : clients_) out.push_back(c.get());
    return out;
  }

  void TearDown() override {
    clients_.clear();  // Orchestrator leaves first, as in a sweep.
    workers_.clear();
  }

  std::vector<std::unique_ptr<ServingWorker>> workers_;
  std::vector<std::unique_ptr<WorkerClient>> clients_;
};

struct SplitCase {
  std::vector<int> cuts;
  int window;
};

void PrintTo(const SplitCase& c, std::ostream* os) {
  *os << c.cuts.size() + 1 << " stages, window " << c.window;
}

class PipelineSplitTest : public PipelineTest, public ::testing::WithParamInterface<SplitCase> {};

TEST_P(PipelineSplitTest, PipelineOutputsEqualWholeModelBitForBit) {
  const SplitCase c = GetParam();
  const ModelSpec spec{kModel, kNumClasses, 5, ""};
  const RunPlan plan = PlanFor(spec, c.cuts, c.window);
  StartWorkers(static_cast<int>(c.cuts.size()) + 1);
  const std::vector<torch::Tensor> expected = WholeModelOutputs(spec, plan);

  std::vector<KeptOutput> outputs;
  Result<RunRecord> record = RunPipeline(Clients(), plan, &outputs);

  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ(record->status, "ok");
  ExpectOutputsEqual(outputs, expected);
}

INSTANTIATE_TEST_SUITE_P(StagesAndWindows, PipelineSplitTest,
                         ::testing::Values(SplitCase{{4}, 1}, SplitCase{{4}, 4}, SplitCase{{2, 6}, 1},
                                           SplitCase{{2, 6}, 4}),
                         [](const ::testing::TestParamInfo<SplitCase>& info) {
                           return std::to_string(info.param.cuts.size() + 1) + "StagesWindow" +
                                  std::to_string(info.param.window);
                         });

TEST_F(PipelineTest, RecordDescribesEveryRepeatStageAndBatch) {
  const ModelSpec spec{kModel, kNumClasses, 5, ""};
  RunPlan plan = PlanFor(spec, {2, 6}, 2);
  plan.config.repeats = 2;
  plan.keep_outputs = false;
  StartWorkers(3);

  Result<RunRecord> record = RunPipeline(Clients(), plan);

  ASSERT_TRUE(record.ok()) << record.status().message();
  const RunConfig& c = plan.config;
  EXPECT_EQ(record->status, "ok");
  EXPECT_FALSE(record->started_at_utc.empty());
  EXPECT_EQ(record->config.cuts, c.cuts);
  ASSERT_EQ(record->repeats.size(), 2u);
  for (const RepeatSummary& r : record->repeats) {
    EXPECT_EQ(r.measured_batches, c.batches - c.warmup) << "repeat " << r.repeat;
    EXPECT_GT(r.latency_ms_mean, 0) << "repeat " << r.repeat;
    EXPECT_GT(r.throughput_ips, 0) << "repeat " << r.repeat;
  }
  ASSERT_EQ(record->samples.size(), static_cast<size_t>(c.batches * c.repeats));
  for (const BatchSample& s : record->samples) {
    EXPECT_EQ(s.warmup, s.batch_id < c.warmup) << "repeat " << s.repeat << " batch " << s.batch_id;
    EXPECT_EQ(s.stage_compute_ms.size(), 3u);
  }
  EXPECT_EQ(std::count_if(record->samples.begin(), record->samples.end(),
                          [](const BatchSample& s) { return s.warmup; }),
            c.warmup * c.repeats);
  ASSERT_EQ(record->environment.size(), 3u);
  for (const StageEnvironment& e : record->environment) EXPECT_EQ(e.threads, 1) << "stage " << e.stage;
  ASSERT_EQ(record->stages.size(), 3u);
  const std::vector<std::pair<int, int>> ranges{{0, 2}, {2, 6}, {6, static_cast<int>(plan.num_blocks)}};
  for (size_t s = 0; s < 3; ++s) {
    const StageStats& st = record->stages[s];
    EXPECT_EQ(st.stage, static_cast<int>(s));
    EXPECT_EQ(std::make_pair(st.block_begin, st.block_end), ranges[s]) << "stage " << s;
    EXPECT_EQ(st.endpoint, workers_[s]->endpoint().ToString());
    EXPECT_GT(st.compute_ms_mean, 0) << "stage " << s;
    EXPECT_EQ(st.clock.samples, plan.clock_samples) << "stage " << s;
    // One process, one steady clock: the estimate must contain the truth (0)
    // within its own uncertainty, give or take a millisecond of scheduling.
    EXPECT_LE(std::llabs(st.clock.offset_ns), st.clock.uncertainty_ns + 1'000'000) << "stage " << s;
  }
  EXPECT_GT(record->stages[0].bytes_out_per_batch, 0);
  EXPECT_GT(record->latency_ms_mean.mean, 0);
  EXPECT_EQ(record->latency_ms_mean.n, 2);
  EXPECT_GT(record->throughput_ips.mean, 0);
}

// A state dict of the model built from seed 99: different weights from the
// plan's seed, so seeded initialization cannot pass for them.
class PipelineWeightsTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    std::unique_ptr<Segment> other = testing::BuildOrDie({kModel, kNumClasses, 99, ""});
    ASSERT_NE(other, nullptr);
    NamedTensors tensors;
    for (auto& [key, tensor] : other->StateTensors()) tensors.emplace_back(key, tensor);
    ASSERT_TRUE(WriteStateDict(tensors, weights_path_).ok());
    Result<std::string> digest = Sha256OfFile(weights_path_);
    ASSERT_TRUE(digest.ok()) << digest.status().message();
    digest_ = *digest;
  }

  ScopedTempDir temp_;
  std::string weights_path_ = temp_.path() + "/weights.pth";
  std::string digest_;
};

TEST_F(PipelineWeightsTest, WorkersWithoutTheFileReceiveTheWeights) {
  RunPlan plan = PlanFor({kModel, kNumClasses, 0, ""}, {4}, 4);
  plan.config.weights_digest = digest_;
  plan.weights_path = weights_path_;
  StartWorkers(2);
  const std::vector<torch::Tensor> expected = WholeModelOutputs({kModel, kNumClasses, 0, weights_path_}, plan);

  std::vector<KeptOutput> outputs;
  Result<RunRecord> record = RunPipeline(Clients(), plan, &outputs);

  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ(record->config.weights_digest, digest_);
  ExpectOutputsEqual(outputs, expected);
}

TEST_F(PipelineWeightsTest, WorkersWithTheFileUseTheirOwnCopy) {
  RunPlan plan = PlanFor({kModel, kNumClasses, 0, ""}, {4}, 4);
  plan.config.weights_digest = digest_;
  plan.weights_path = "";  // A worker asking for the tensors would fail the run.
  WorkerOptions options;
  options.weights_files = {weights_path_};
  StartWorkers(2, options);
  const std::vector<torch::Tensor> expected = WholeModelOutputs({kModel, kNumClasses, 0, weights_path_}, plan);

  std::vector<KeptOutput> outputs;
  Result<RunRecord> record = RunPipeline(Clients(), plan, &outputs);

  ASSERT_TRUE(record.ok()) << record.status().message();
  ExpectOutputsEqual(outputs, expected);
}

TEST_F(PipelineTest, WrongStageInputShapeFailsTheRunAndTheWorkersServeTheNext) {
  const ModelSpec spec{kModel, kNumClasses, 5, ""};
  RunPlan bad = PlanFor(spec, {4}, 4);
  // The second stage takes a larger activation than the first stage makes:
  // it builds and primes fine, then the first frame does not match.
  bad.stage_input_shapes[1][2] += 1;
  bad.stage_input_shapes[1][3] += 1;
  RunPlan good = PlanFor(spec, {4}, 4);
  good.run_id = bad.run_id + 1;
  StartWorkers(2);
  const std::vector<torch::Tensor> expected = WholeModelOutputs(spec, good);

  const auto begin = Clock::now();
  Result<RunRecord> failed = RunPipeline(Clients(), bad);
  const auto failed_after = Clock::now() - begin;
  std::vector<KeptOutput> outputs;
  Result<RunRecord> next = RunPipeline(Clients(), good, &outputs);

  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("expected activation of batch 0"), std::string::npos)
      << failed.status().message();
  EXPECT_LT(failed_after, std::chrono::seconds(10)) << "the failure waited for a stall timeout";
  ASSERT_TRUE(next.ok()) << next.status().message();
  ExpectOutputsEqual(outputs, expected);
}

}  // namespace
}  // namespace paretopipe
