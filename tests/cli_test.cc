// The paretopipe binary, as a user runs it: every bad input is one line on
// stderr and a non-zero exit, never a stack trace or an abort.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/link_model.h"
#include "control/worker.h"
#include "model/segment.h"
#include "model/tensor_file.h"
#include "store/store.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using Outcome = testing::CommandOutcome;

class CliTest : public ::testing::Test {
 protected:
  Outcome Run(const std::string& args) {
    return testing::RunCommand(std::string(PARETOPIPE_BINARY) + " " + args, dir_);
  }

  // Expects a clean failure whose one-line message contains `needle`.
  void ExpectOneLineError(const std::string& args, const std::string& needle) {
    const Outcome o = Run(args);
    EXPECT_FALSE(o.signaled) << args << " crashed: " << o.err;
    EXPECT_NE(o.exit_code, 0) << args;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << args << " stderr:\n" << o.err;
    EXPECT_NE(o.err.find(needle), std::string::npos) << args << " stderr: " << o.err;
    EXPECT_EQ(o.err.find("Exception raised from"), std::string::npos) << o.err;
    EXPECT_EQ(o.err.find("terminate called"), std::string::npos) << o.err;
  }

  std::string WriteTensor(const std::string& name, const torch::Tensor& t) {
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteTensorFile(t, path).ok());
    return path;
  }

  testing::ScopedTempDir temp_;
  std::string dir_ = temp_.path();
};

TEST_F(CliTest, HelpWorksOnEverySubcommand) {
  for (const char* cmd : {"", "models", "cuts", "profile", "run"}) {
    const Outcome o = Run(std::string(cmd) + " --help");
    EXPECT_EQ(o.exit_code, 0) << cmd;
    EXPECT_NE(o.out.find("Usage"), std::string::npos) << cmd << ": " << o.out;
  }
}

TEST_F(CliTest, ModelsListsTheZoo) {
  const Outcome o = Run("models");
  EXPECT_EQ(o.exit_code, 0);
  for (const char* name : {"mobilenet_v2", "resnet18", "resnet50", "vgg16", "alexnet", "inception_v3"}) {
    EXPECT_NE(o.out.find(name), std::string::npos) << name;
  }
}

TEST_F(CliTest, CutsJsonForMobileNetV2AtBatch8) {
  const Outcome o = Run("cuts mobilenet_v2 --batch 8 --json");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j["cuts"].size(), 18u);
  EXPECT_EQ(j["cuts"][0]["bytes"].get<int64_t>(), 12'845'056);
  EXPECT_EQ(j["cuts"][0]["shape"], nlohmann::json({8, 32, 112, 112}));
}

TEST_F(CliTest, RunWritesWhatTheSegmentComputes) {
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  const std::string in = WriteTensor("in.pt", x), out = dir_ + "/out.pt";
  const Outcome o = Run("run mobilenet_v2 --num-classes 10 --seed 4 --from 0 --to 7 -i " + in + " -o " + out);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  Result<torch::Tensor> written = ReadTensorFile(out);
  ASSERT_TRUE(written.ok()) << written.status().message();
  auto segment = testing::BuildOrDie({"mobilenet_v2", 10, 4, ""}, {0, 7});
  EXPECT_TRUE(torch::allclose(*written, testing::RunOrDie(*segment, x), 1e-5, 1e-6));
}

TEST_F(CliTest, ModelsJsonGivesEachModelsValidCuts) {
  const Outcome o = Run("models --json");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j.size(), 6u);
  EXPECT_EQ(j[0]["name"], "mobilenet_v2");
  EXPECT_EQ(j[0]["valid_cuts"]["first"], 1);
  EXPECT_EQ(j[0]["valid_cuts"]["last"], 18);
}

TEST_F(CliTest, CutsTableNamesTheBlocksOnEachSide) {
  const Outcome o = Run("cuts resnet18 --batch 2");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("stem+layer1.0"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("2x64x56x56"), std::string::npos) << o.out;  // Cut 1 at batch 2.
  EXPECT_NE(o.out.find("1,605,632"), std::string::npos) << o.out;   // 2*64*56*56*4 bytes.
}

TEST_F(CliTest, UnknownModel) { ExpectOneLineError("cuts resnet1000", "unknown model 'resnet1000'"); }

TEST_F(CliTest, UnknownOptionAndMissingArgument) {
  ExpectOneLineError("cuts mobilenet_v2 --bogus", "--bogus");
  ExpectOneLineError("run mobilenet_v2", "--input");
  ExpectOneLineError("cuts mobilenet_v2 --batch eight", "eight");
}

TEST_F(CliTest, CutIndexOutOfRange) {
  const std::string in = WriteTensor("x.pt", torch::zeros({1, 3, 32, 32}));
  ExpectOneLineError("run mobilenet_v2 --from 19 -i " + in + " -o " + dir_ + "/y.pt", "out of range");
  ExpectOneLineError("run mobilenet_v2 --to 20 -i " + in + " -o " + dir_ + "/y.pt", "out of range");
  ExpectOneLineError("run mobilenet_v2 --from 5 --to 3 -i " + in + " -o " + dir_ + "/y.pt", "out of range");
}

TEST_F(CliTest, MissingInputFile) {
  ExpectOneLineError("run alexnet -i " + dir_ + "/nope.pt -o " + dir_ + "/y.pt", "nope.pt");
}

TEST_F(CliTest, MalformedInputAndWeightsFiles) {
  const std::string garbage = dir_ + "/garbage.pt";
  std::ofstream(garbage) << "this is not a torch.save file";
  ExpectOneLineError("run alexnet -i " + garbage + " -o " + dir_ + "/y.pt", "garbage.pt");
  const std::string in = WriteTensor("x.pt", torch::zeros({1, 3, 64, 64}));
  ExpectOneLineError("run alexnet --weights " + garbage + " -i " + in + " -o " + dir_ + "/y.pt", "garbage.pt");
  // A tensor file where a state dict belongs.
  ExpectOneLineError("run alexnet --weights " + in + " -i " + in + " -o " + dir_ + "/y.pt", in);
}

TEST_F(CliTest, WrongInputShape) {
  const std::string in = WriteTensor("x.pt", torch::zeros({1, 5, 64, 64}));
  ExpectOneLineError("run alexnet -i " + in + " -o " + dir_ + "/y.pt", "[1, 5, 64, 64]");
  const std::string mid = WriteTensor("m.pt", torch::zeros({1, 7, 8, 8}));
  ExpectOneLineError("run alexnet --from 3 -i " + mid + " -o " + dir_ + "/y.pt", "[1, 7, 8, 8]");
}

TEST_F(CliTest, BadNumbers) {
  ExpectOneLineError("cuts mobilenet_v2 --batch 0", "--batch");
  ExpectOneLineError("cuts mobilenet_v2 --num-classes 0", "--num-classes");
  ExpectOneLineError("profile alexnet --repeat 0", "--repeat");
  ExpectOneLineError("profile alexnet --threads 0 --repeat 1", "--threads");
}

TEST_F(CliTest, UnwritableProfilePathFailsBeforeProfiling) {
  ExpectOneLineError("profile vgg16 -o " + dir_ + "/no/such/dir/profile.json", "no/such/dir/profile.json");
}

TEST_F(CliTest, UnknownDevice) {
  const std::string in = WriteTensor("x.pt", torch::zeros({1, 3, 64, 64}));
  ExpectOneLineError("run alexnet --device tpu -i " + in + " -o " + dir_ + "/y.pt", "tpu");
}

TEST_F(CliTest, CudaDeviceOnACpuOnlyBuild) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this LibTorch has CUDA; the CPU-only error path does not apply";
  const std::string in = WriteTensor("x.pt", torch::zeros({1, 3, 64, 64}));
  ExpectOneLineError("run alexnet --device cuda -i " + in + " -o " + dir_ + "/y.pt", "CUDA");
  ExpectOneLineError("profile alexnet --device cuda:1 --repeat 1", "CUDA");
}

TEST_F(CliTest, ProfileWritesVersionedJsonWithOneEntryPerBlock) {
  const std::string path = dir_ + "/profile.json";
  const Outcome o = Run("profile alexnet --num-classes 10 --input-size 63 --repeat 3 --warmup 1 --threads 1 -o " + path);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(testing::Slurp(path));
  EXPECT_EQ(j["format"], "paretopipe.profile");
  EXPECT_EQ(j["version"], 1);
  ASSERT_EQ(j["blocks"].size(), 13u);
  EXPECT_EQ(j["settings"]["threads"], 1);
  EXPECT_EQ(j["blocks"][0]["compute_ms"]["n"], 3);
  EXPECT_GT(j["blocks"][0]["compute_ms"]["median"].get<double>(), 0.0);
  EXPECT_GT(j["blocks"][0]["macs"].get<int64_t>(), 0);
  EXPECT_FALSE(j["machine"]["cpu_model"].get<std::string>().empty());
}

}  // namespace
}  // namespace paretopipe

namespace paretopipe {
namespace {

// `plan` and `validate` as a user runs them, on profiles `profile` wrote.
class CliPlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* name : {"a", "b"}) {
      const testing::CommandOutcome o = testing::RunCommand(
          std::string(PARETOPIPE_BINARY) + " profile mobilenet_v2 --num-classes 10 --batch 2 " +
              "--input-size 32 --repeat 2 --warmup 1 --threads 1 -o " + dir_->path() + "/" +
              name + ".json",
          dir_->path());
      ASSERT_EQ(o.exit_code, 0) << o.err;
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  testing::CommandOutcome Run(const std::string& args) {
    return testing::RunCommand(std::string(PARETOPIPE_BINARY) + " " + args, dir_->path());
  }
  std::string Devices() {
    return " --device pi=" + dir_->path() + "/a.json --device server=" + dir_->path() + "/b.json";
  }

  static testing::ScopedTempDir* dir_;
};
testing::ScopedTempDir* CliPlanTest::dir_ = new testing::ScopedTempDir;

TEST_F(CliPlanTest, PlanPrintsThePredictedFrontSortedByLatency) {
  const testing::CommandOutcome o =
      Run("plan mobilenet_v2 --stages 2" + Devices() + " --net rtt=200ms,rate=5mbit --json");

  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out);
  ASSERT_FALSE(j["front"].empty());
  double last_latency = 0;
  for (const nlohmann::json& p : j["front"]) {
    EXPECT_EQ(p["devices"].size(), 2u);
    EXPECT_GE(p["latency_ms"].get<double>(), last_latency);
    // 200 ms of round trip: every two-stage plan crosses one 100 ms hop.
    EXPECT_GT(p["latency_ms"].get<double>(), 100);
    last_latency = p["latency_ms"].get<double>();
  }
}

TEST_F(CliPlanTest, PlanWithoutALinkForAPairIsOneLineError) {
  const testing::CommandOutcome o = Run("plan mobilenet_v2" + Devices());

  EXPECT_NE(o.exit_code, 0);
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  EXPECT_NE(o.err.find("--net"), std::string::npos) << o.err;
}

TEST_F(CliPlanTest, ValidateWithoutMatchingRunsIsOneLineError) {
  const testing::CommandOutcome o = Run("validate --db " + dir_->path() + "/none.db" + Devices());

  EXPECT_NE(o.exit_code, 0);
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
}

// A finished two-stage run of the profiles' model and batch, its stages on
// the hosts the profiles are named after.
RunRecord MeasuredRun(int cut, std::optional<RunPrediction> prediction) {
  RunRecord r;
  r.started_at_utc = "2026-11-27T10:00:00Z";
  r.config.model = "mobilenet_v2";
  r.config.num_classes = 10;
  r.config.batch_size = 2;
  r.config.input_side_px = 32;
  r.config.cuts = {cut};
  r.config.window = 4;
  r.config.repeats = 1;
  r.config.workers = {"127.0.0.1:7000", "127.0.0.1:7001"};
  for (int s = 0; s < 2; ++s) {
    StageEnvironment e;
    e.stage = s;
    e.endpoint = r.config.workers[s];
    e.hostname = s == 0 ? "pi" : "server";
    r.environment.push_back(e);
  }
  r.latency_ms_mean = r.latency_ms_p50 = r.latency_ms_p95 = r.latency_ms_p99 = {20, {}, {}, 1};
  r.throughput_ips = {100, {}, {}, 1};
  r.prediction = std::move(prediction);
  return r;
}

TEST_F(CliPlanTest, ValidateSaveStoresEachRunsPredictionButKeepsOneASweepMadeBeforeTheRun) {
  const std::string db = dir_->path() + "/save.db";
  RunPrediction before_the_run;
  before_the_run.latency_ms = 1.5;
  before_the_run.idle_latency_ms = 1.25;
  before_the_run.throughput_ips = 1000;
  before_the_run.bottleneck = "stage 1";
  before_the_run.role = "front";
  before_the_run.source = "plan-first: each worker profiled (10 passes), base link none";
  {
    Result<std::unique_ptr<ResultStore>> store = ResultStore::Open(db);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->InsertRun(MeasuredRun(3, std::nullopt)).ok());
    ASSERT_TRUE((*store)->InsertRun(MeasuredRun(10, before_the_run)).ok());
  }

  const testing::CommandOutcome o = Run("validate --save --db " + db + Devices());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("saved the prediction of 1 run(s) in " + db +
                       "; kept the one sweep --plan-first made before the run for 1 run(s)"),
            std::string::npos)
      << o.out;
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db);
  ASSERT_TRUE(store.ok()) << store.status().message();
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns(RunFilter{});
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  ASSERT_EQ(runs->size(), 2u);
  const std::optional<RunPrediction>& saved = (*runs)[0].prediction;
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->role, "validate");
  EXPECT_EQ(saved->source, "validate: pi=" + dir_->path() + "/a.json, server=" + dir_->path() +
                               "/b.json; base link none");
  EXPECT_GT(saved->latency_ms, 0);
  EXPECT_GE(saved->latency_ms, saved->idle_latency_ms);
  EXPECT_GT(saved->throughput_ips, 0);
  const std::optional<RunPrediction>& kept = (*runs)[1].prediction;
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->role, "front");
  EXPECT_EQ(kept->latency_ms, 1.5);
  EXPECT_EQ(kept->source, before_the_run.source);
}

}  // namespace
}  // namespace paretopipe

namespace paretopipe {
namespace {

TEST(CliLinkProbeTest, FitsTheLoopbackLinkBetweenTwoWorkersAndWritesALinkFile) {
  const WorkerOptions defaults;
  testing::ServingWorker a(defaults), b(defaults);
  ASSERT_TRUE(a.ok() && b.ok());
  testing::ScopedTempDir dir;
  const std::string file = dir.path() + "/link.json";

  const testing::CommandOutcome o = testing::RunCommand(
      std::string(PARETOPIPE_BINARY) + " linkprobe --repeat 2 --max-size 65536 --workers " +
          a.endpoint().ToString() + "," + b.endpoint().ToString() + " -o " + file,
      dir.path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("fit: overhead"), std::string::npos) << o.out;
  Result<LinkModel> link = ReadLinkFile(file);
  ASSERT_TRUE(link.ok()) << link.status().message();
  EXPECT_GE(link->overhead_ms, 0);
  EXPECT_GE(link->delay_ms, 0);
}

// The round trips through a backend's own links (a frame forward, a credit
// back) are fitted, and the link file says which backend carried them.
void ExpectBackendLinkFile(const std::string& backend) {
  const WorkerOptions defaults;
  testing::ServingWorker a(defaults), b(defaults);
  ASSERT_TRUE(a.ok() && b.ok());
  testing::ScopedTempDir dir;
  const std::string file = dir.path() + "/link.json";

  const testing::CommandOutcome o =
      testing::RunCommand(std::string(PARETOPIPE_BINARY) + " linkprobe --backend " + backend +
                              " --repeat 2 --max-size 65536 --workers " + a.endpoint().ToString() +
                              "," + b.endpoint().ToString() + " -o " + file,
                          dir.path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("over " + backend), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("fit: overhead"), std::string::npos) << o.out;
  Result<LinkModel> link = ReadLinkFile(file);
  ASSERT_TRUE(link.ok()) << link.status().message();
  EXPECT_GE(link->overhead_ms, 0);
  std::ifstream in(file);
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["fit"]["backend"], backend) << j.dump();
}

TEST(CliLinkProbeTest, FitsTheGrpcBackendsOwnLinksAndRecordsTheBackend) {
  PP_REQUIRE_BACKEND("grpc");
  ExpectBackendLinkFile("grpc");
}

TEST(CliLinkProbeTest, FitsTheTorchBackendsOwnLinksAndRecordsTheBackend) {
  PP_REQUIRE_BACKEND("torch");
  ExpectBackendLinkFile("torch");
}

TEST(CliLinkProbeTest, UnknownBackendOrOneWorkerIsOneLineError) {
  for (const char* args : {"linkprobe --workers 127.0.0.1:1",
                           "linkprobe --backend nccl --workers 127.0.0.1:1,127.0.0.1:2"}) {
    const testing::CommandOutcome o =
        testing::RunCommand(std::string(PARETOPIPE_BINARY) + " " + args, "/tmp");
    EXPECT_NE(o.exit_code, 0) << args;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << args << ": " << o.err;
  }
}

}  // namespace
}  // namespace paretopipe
