// RunPipeline over workers on loopback: a split model run as a pipeline
// computes exactly what the whole model computes, the record describes the
// run, weights reach the stages, and a failed run neither hangs nor spoils
// the workers for the next one. The backend conformance suite runs the same
// checks on every backend (tcp, grpc, torch), plus a peer killed mid-run.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/worker_client.h"
#include "model/cuts.h"
#include "model/device.h"
#include "model/segment.h"
#include "model/tensor_file.h"
#include "runtime/input_set.h"
#include "sweep/pipeline_run.h"
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
RunPlan PlanFor(const ModelSpec& spec, const std::vector<int>& cuts, int window,
                const std::string& backend = "tcp") {
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
  c.backend = backend;
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
  // (Defaulted to a named object, not `{}`: GCC 12 at -O3 warns that the
  // temporary's strings may be used uninitialized, wrongly.)
  void StartWorkers(int stages, const WorkerOptions& options = DefaultOptions()) {
    for (int s = 0; s < stages; ++s) StartWorker(options);
  }

  // Starts one more worker, the next stage's, with `options`, and connects to it.
  void StartWorker(const WorkerOptions& options) {
    workers_.push_back(std::make_unique<ServingWorker>(options));
    ASSERT_TRUE(workers_.back()->ok());
    Result<std::unique_ptr<WorkerClient>> client =
        WorkerClient::Connect(workers_.back()->endpoint(), kConnectTimeout);
    ASSERT_TRUE(client.ok()) << client.status().message();
    clients_.push_back(std::move(client).value());
  }

  static const WorkerOptions& DefaultOptions() {
    static const WorkerOptions defaults;
    return defaults;
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
  std::string backend;
  std::vector<int> cuts;
  int window;
};

void PrintTo(const SplitCase& c, std::ostream* os) {
  *os << c.backend << ", " << c.cuts.size() + 1 << " stages, window " << c.window;
}

class BackendConformanceTest : public PipelineTest,
                               public ::testing::WithParamInterface<SplitCase> {
 protected:
  void SetUp() override {
    PP_REQUIRE_BACKEND(GetParam().backend);
    PipelineTest::SetUp();
  }
};

TEST_P(BackendConformanceTest, PipelineOutputsEqualWholeModelBitForBit) {
  const SplitCase c = GetParam();
  const ModelSpec spec{kModel, kNumClasses, 5, ""};
  const RunPlan plan = PlanFor(spec, c.cuts, c.window, c.backend);
  StartWorkers(static_cast<int>(c.cuts.size()) + 1);
  const std::vector<torch::Tensor> expected = WholeModelOutputs(spec, plan);

  std::vector<KeptOutput> outputs;
  Result<RunRecord> record = RunPipeline(Clients(), plan, &outputs);

  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ(record->status, "ok");
  EXPECT_EQ(record->config.backend, c.backend);
  ExpectOutputsEqual(outputs, expected);
  ASSERT_EQ(record->hops.size(), c.cuts.size());
  for (const HopStats& h : record->hops) {
    SCOPED_TRACE("hop " + std::to_string(h.hop));
    EXPECT_EQ(h.bytes_per_frame, record->stages[h.hop].bytes_out_per_batch);
    EXPECT_GT(h.bytes_per_frame, 0);
    EXPECT_GT(h.hop_ms_mean, -h.clock_uncertainty_ms);
    EXPECT_NEAR(h.wire_ms_mean,
                h.hop_ms_mean - h.serialize_ms_mean - h.queue_ms_mean - h.deserialize_ms_mean,
                1e-9);
    if (c.backend == "tcp") {  // Reads and writes the tensors' memory: nothing to convert.
      EXPECT_EQ(h.serialize_ms_mean, 0);
      EXPECT_EQ(h.deserialize_ms_mean, 0);
      EXPECT_EQ(h.queue_ms_mean, 0);
    } else if (c.backend == "grpc") {  // One copy out of gRPC's buffers per frame.
      EXPECT_GT(h.deserialize_ms_mean, 0);
      EXPECT_GT(h.serialize_ms_mean, 0);
    } else {  // torch: no queue of its own.
      EXPECT_EQ(h.queue_ms_mean, 0);
    }
  }
}

std::vector<SplitCase> EveryBackendSplit() {
  std::vector<SplitCase> cases;
  for (const char* backend : {"tcp", "grpc", "torch"}) {
    for (const std::vector<int>& cuts : {std::vector<int>{4}, std::vector<int>{2, 6}}) {
      for (int window : {1, 4}) cases.push_back({backend, cuts, window});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, BackendConformanceTest,
                         ::testing::ValuesIn(EveryBackendSplit()),
                         [](const ::testing::TestParamInfo<SplitCase>& info) {
                           return info.param.backend + "_" +
                                  std::to_string(info.param.cuts.size() + 1) + "StagesWindow" +
                                  std::to_string(info.param.window);
                         });

// A pipeline mixing CPU and CUDA stages (the Pi-to-server case, and back):
// the same outputs as the whole model on the CPU within 1e-3 of the largest
// logit (cuDNN's algorithms and TF32 convolutions round differently), each
// GPU stage's compute timed by CUDA events, its copies and memory recorded.
// Runs where a GPU is visible (scripts/gpu-check.sh); skips elsewhere, unless
// PARETOPIPE_REQUIRE_GPU is set.
struct MixedCase {
  std::string backend;
  std::vector<std::string> devices;  // One per stage.
};

void PrintTo(const MixedCase& c, std::ostream* os) {
  *os << c.backend << ", " << fmt::format("{}", fmt::join(c.devices, " -> "));
}

class GpuStageTest : public PipelineTest, public ::testing::WithParamInterface<MixedCase> {
 protected:
  void SetUp() override {
    PP_REQUIRE_BACKEND(GetParam().backend);
    if (!PARETOPIPE_WITH_CUDA || !torch::cuda::is_available()) {
      // scripts/gpu-check.sh sets it: there, a skip would hide a broken GPU.
      if (std::getenv("PARETOPIPE_REQUIRE_GPU")) FAIL() << "PARETOPIPE_REQUIRE_GPU: no CUDA device";
      GTEST_SKIP() << "no CUDA device here (this build has CUDA stages: "
                   << (PARETOPIPE_WITH_CUDA ? "yes" : "no") << "); scripts/gpu-check.sh runs this";
    }
    PipelineTest::SetUp();
  }
};

TEST_P(GpuStageTest, MixedDevicePipelineMatchesTheWholeModelOnTheCpu) {
  const MixedCase c = GetParam();
  const ModelSpec spec{kModel, kNumClasses, 5, ""};
  const std::vector<int> cuts =
      c.devices.size() == 2 ? std::vector<int>{4} : std::vector<int>{2, 6};
  const RunPlan plan = PlanFor(spec, cuts, 4, c.backend);
  for (const std::string& device : c.devices) {
    WorkerOptions options;
    options.device = device;
    StartWorker(options);
  }
  const std::vector<torch::Tensor> expected = WholeModelOutputs(spec, plan);

  std::vector<KeptOutput> outputs;
  Result<RunRecord> record = RunPipeline(Clients(), plan, &outputs);

  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ(record->config.device, fmt::format("{}", fmt::join(c.devices, ",")));
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t b = 0; b < outputs.size(); ++b) {
    std::vector<float> values = outputs[b].values;
    const torch::Tensor got =
        torch::from_blob(values.data(), outputs[b].shape, torch::kFloat).clone();
    ASSERT_EQ(got.sizes(), expected[b].sizes()) << "batch " << b;
    const double scale = expected[b].abs().max().item<double>();
    const double diff = (got - expected[b]).abs().max().item<double>();
    EXPECT_LE(diff, 1e-3 * scale) << "batch " << b << ": relative difference " << diff / scale;
  }
  for (size_t s = 0; s < c.devices.size(); ++s) {
    SCOPED_TRACE("stage " + std::to_string(s + 1) + " on " + c.devices[s]);
    const StageStats& st = record->stages[s];
    EXPECT_EQ(record->environment[s].device, c.devices[s]);
    if (c.devices[s] == "cpu") {
      EXPECT_EQ(record->environment[s].device_name, "");
      EXPECT_FALSE(st.copy_in_ms_mean.has_value());
      EXPECT_FALSE(st.device_peak_bytes.has_value());
      continue;
    }
    EXPECT_NE(record->environment[s].device_name, "");
    ASSERT_TRUE(st.copy_in_ms_mean.has_value());
    ASSERT_TRUE(st.copy_out_ms_mean.has_value());
    ASSERT_TRUE(st.device_peak_bytes.has_value());
    EXPECT_GE(*st.copy_in_ms_mean, 0);
    EXPECT_GT(*st.copy_out_ms_mean, 0);
    EXPECT_GT(*st.device_peak_bytes, 0);
    EXPECT_GT(st.compute_ms_mean, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, GpuStageTest,
                         ::testing::Values(MixedCase{"tcp", {"cpu", "cuda:0"}},
                                           MixedCase{"tcp", {"cuda:0", "cpu"}},
                                           MixedCase{"tcp", {"cpu", "cuda:0", "cpu"}},
                                           MixedCase{"grpc", {"cpu", "cuda:0"}},
                                           MixedCase{"torch", {"cpu", "cuda:0"}}),
                         [](const ::testing::TestParamInfo<MixedCase>& info) {
                           std::string name = info.param.backend;
                           for (const std::string& d : info.param.devices)
                             name += "_" + d.substr(0, d.find(':'));
                           return name;
                         });

class BackendFaultTest : public PipelineTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    PP_REQUIRE_BACKEND(GetParam());
    PipelineTest::SetUp();
  }
};

TEST_P(BackendFaultTest, MalformedActivationFailsTheRunAndTheWorkersServeTheNext) {
  const ModelSpec spec{kModel, kNumClasses, 5, ""};
  RunPlan bad = PlanFor(spec, {4}, 4, GetParam());
  // The second stage takes a larger activation than the first stage makes:
  // it builds and primes fine, then the first frame does not match.
  bad.stage_input_shapes[1][2] += 1;
  bad.stage_input_shapes[1][3] += 1;
  RunPlan good = PlanFor(spec, {4}, 4, GetParam());
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

// A worker process killed mid-run (a crash, a pulled plug): the run ends
// with an error long before the stall timeout, and the surviving worker with
// a restarted one runs the next split correctly.
TEST_P(BackendFaultTest, PeerKilledMidRunEndsTheRunAndARestartedPeerServesTheNext) {
  const ModelSpec spec{kModel, kNumClasses, 5, ""};
  RunPlan endless = PlanFor(spec, {4}, 4, GetParam());
  endless.config.batches = 100000;  // Minutes of work: the kill comes first.
  endless.keep_outputs = false;
  endless.stall_timeout = std::chrono::seconds(60);
  RunPlan next = PlanFor(spec, {4}, 4, GetParam());
  next.run_id = endless.run_id + 1;
  const std::vector<torch::Tensor> expected = WholeModelOutputs(spec, next);
  testing::ChildWorker source, sink;
  ASSERT_FALSE(source.endpoint().empty());
  ASSERT_FALSE(sink.endpoint().empty());
  auto connect = [](const std::string& endpoint) -> std::unique_ptr<WorkerClient> {
    Result<Endpoint> e = ParseEndpoint(endpoint);
    EXPECT_TRUE(e.ok());
    if (!e.ok()) return nullptr;
    Result<std::unique_ptr<WorkerClient>> client = WorkerClient::Connect(*e, kConnectTimeout);
    EXPECT_TRUE(client.ok()) << client.status().message();
    return client.ok() ? std::move(client).value() : nullptr;
  };
  std::unique_ptr<WorkerClient> to_source = connect(source.endpoint());
  std::unique_ptr<WorkerClient> to_sink = connect(sink.endpoint());
  ASSERT_TRUE(to_source && to_sink);

  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    sink.Kill();
  });
  const auto begin = Clock::now();
  Result<RunRecord> killed = RunPipeline({to_source.get(), to_sink.get()}, endless);
  const auto failed_after = Clock::now() - begin;
  killer.join();
  testing::ChildWorker restarted;
  ASSERT_FALSE(restarted.endpoint().empty());
  std::unique_ptr<WorkerClient> to_restarted = connect(restarted.endpoint());
  ASSERT_TRUE(to_restarted);
  std::vector<KeptOutput> outputs;
  Result<RunRecord> after = RunPipeline({to_source.get(), to_restarted.get()}, next, &outputs);

  ASSERT_FALSE(killed.ok()) << "the run finished 100000 batches before the kill";
  // A peer gone, said as such and placed at a worker: not a malformed frame
  // or a compute error.
  EXPECT_EQ(killed.status().code(), Status::Code::kUnavailable) << killed.status().message();
  EXPECT_NE(killed.status().message().find("worker 127.0.0.1:"), std::string::npos)
      << killed.status().message();
  // The kill comes 2 s in; the stall timeout is 60 s.
  EXPECT_LT(failed_after, std::chrono::seconds(10)) << killed.status().message();
  ASSERT_TRUE(after.ok()) << after.status().message();
  ExpectOutputsEqual(outputs, expected);
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, BackendFaultTest, ::testing::Values("tcp", "grpc", "torch"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
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

// A dataset's images instead of synthetic ones: 5 images with batches of 2,
// so batch 2 wraps around the set's end (images 4 and 0).
class PipelineInputTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(123);
    Result<InputSet> set =
        MakeInputSet(torch::rand({5, 3, kInputSidePx, kInputSidePx}, gen, torch::kFloat));
    ASSERT_TRUE(set.ok()) << set.status().message();
    set_ = std::make_shared<const InputSet>(std::move(set).value());
  }

  RunPlan PlanWithInputs(const std::vector<int>& cuts) const {
    RunPlan plan = PlanFor(spec_, cuts, 4);
    plan.inputs = set_;
    plan.config.input = "test images";
    plan.config.input_digest = set_->digest;
    plan.config.input_images = set_->count();
    return plan;
  }

  const ModelSpec spec_{kModel, kNumClasses, 5, ""};
  std::shared_ptr<const InputSet> set_;
};

TEST_F(PipelineInputTest, BatchesCycleThroughTheSetAndWrapAroundItsEnd) {
  const torch::Tensor wrapped = set_->Batch(2, 2);
  EXPECT_TRUE(torch::equal(wrapped[0], set_->images[4]));
  EXPECT_TRUE(torch::equal(wrapped[1], set_->images[0]));
  const torch::Tensor inside = set_->Batch(1, 2);
  EXPECT_TRUE(torch::equal(inside, set_->images.narrow(0, 2, 2)));
  EXPECT_EQ(inside.data_ptr(), set_->images[2].data_ptr());  // A view: nothing copied.
  EXPECT_TRUE(torch::equal(set_->Batch(5, 2), set_->Batch(0, 2)));  // 10 images later.
}

TEST_F(PipelineInputTest, EveryCutComputesTheWholeModelOnTheSetAndScoresTheSameAccuracy) {
  std::unique_ptr<Segment> whole = testing::BuildOrDie(spec_);
  ASSERT_NE(whole, nullptr);
  const RunPlan first = PlanWithInputs({2});
  std::vector<torch::Tensor> expected;
  for (int b = 0; b < first.config.batches; ++b) {
    expected.push_back(testing::RunOrDie(*whole, set_->Batch(b, kBatchSize)));
  }
  // Labels: the whole model's class for images 0, 2 and 4 (first seen in
  // batches 0, 1, 2), a wrong one for images 1 and 3: accuracy is 3 of 5.
  std::vector<int64_t> labels(5);
  for (int64_t image = 0; image < 5; ++image) {
    const int64_t top1 = expected[image / 2][image % 2].argmax().item<int64_t>();
    labels[image] = image % 2 == 0 ? top1 : (top1 + 1) % kNumClasses;
  }
  StartWorkers(2);

  for (const std::vector<int>& cuts :
       {std::vector<int>{2}, std::vector<int>{4}, std::vector<int>{6}}) {
    SCOPED_TRACE("cut " + std::to_string(cuts[0]));
    RunPlan plan = PlanWithInputs(cuts);
    plan.labels = labels;
    std::vector<KeptOutput> outputs;
    Result<RunRecord> record = RunPipeline(Clients(), plan, &outputs);

    ASSERT_TRUE(record.ok()) << record.status().message();
    ExpectOutputsEqual(outputs, expected);
    ASSERT_TRUE(record->accuracy.has_value());
    EXPECT_EQ(record->accuracy->images, 5);
    EXPECT_EQ(record->accuracy->correct, 3);
    EXPECT_EQ(record->config.input_digest, set_->digest);
  }
}

TEST_F(PipelineInputTest, WithoutLabelsNoAccuracyIsScored) {
  StartWorkers(2);
  Result<RunRecord> record = RunPipeline(Clients(), PlanWithInputs({4}));
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_FALSE(record->accuracy.has_value());
}

TEST_F(PipelineInputTest, APlanWhoseDigestIsNotItsSetsIsRefused) {
  RunPlan plan = PlanWithInputs({4});
  plan.config.input_digest = std::string(64, '0');
  StartWorkers(2);
  Result<RunRecord> record = RunPipeline(Clients(), plan);
  ASSERT_FALSE(record.ok());
  EXPECT_NE(record.status().message().find("digest"), std::string::npos);
}

}  // namespace
}  // namespace paretopipe
