// `paretopipe sweep`, `pareto`, `export` and `worker` as a user runs them:
// the real binary, real worker processes on loopback, a real SQLite file.
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data/image_file.h"
#include "store/store.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::ChildWorker;
using testing::CommandOutcome;
using testing::ScopedTempDir;

// A small sweep of resnet18 at 64 px, a few batches of 2, into `db`.
std::string SweepArgs(const std::string& db, const std::string& cuts = "2,5", int warmup = 1) {
  return "sweep resnet18 --num-classes 10 --input-size 64 --cuts " + cuts +
         " --batch 2 --batches 6 --warmup " + std::to_string(warmup) + " --repeat 1 --db " + db;
}

CommandOutcome RunBinary(const std::string& args, const std::string& dir) {
  return testing::RunCommand(std::string(PARETOPIPE_BINARY) + " " + args, dir);
}

// The data rows of a run table (`sweep`, `pareto`): "  12* 2  ..." -> their cuts column.
std::vector<std::string> TableCuts(const std::string& text) {
  static const std::regex kRow(R"(^\s*\d+[ *K] (\d+(?::\d+)*)\s+[\d.+]+\s)");
  std::vector<std::string> cuts;
  std::stringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, kRow)) cuts.push_back(m[1]);
  }
  return cuts;
}

size_t LineCount(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

size_t StoredRuns(const std::string& db) {
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return 0;
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns({});
  EXPECT_TRUE(runs.ok()) << runs.status().message();
  return runs.ok() ? runs->size() : 0;
}

// One sweep with local workers (SweepArgs plus `kExtraArgs`), shared by the
// tests of a suite that read its output and database.
template <const char* kExtraArgs>
class SharedSweepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new ScopedTempDir();
    db_ = new std::string(temp_->path() + "/runs.db");
    sweep_ = new CommandOutcome(RunBinary(SweepArgs(*db_) + kExtraArgs, temp_->path()));
  }
  static void TearDownTestSuite() {
    delete sweep_;
    delete db_;
    delete temp_;
  }

  static inline ScopedTempDir* temp_ = nullptr;
  static inline std::string* db_ = nullptr;
  static inline CommandOutcome* sweep_ = nullptr;
  ScopedTempDir dir_;  // This test's own outputs.
};

constexpr char kTcpOnly[] = "";
constexpr char kEveryBackend[] = " --backend tcp,grpc,torch";
using CliSweepTest = SharedSweepTest<kTcpOnly>;
// Both cuts on every backend: these tests compare all three, so a build
// without grpc or torch skips them.
class CliBackendsTest : public SharedSweepTest<kEveryBackend> {
 protected:
  void SetUp() override {
    PP_REQUIRE_BACKEND("grpc");
    PP_REQUIRE_BACKEND("torch");
  }
};

TEST_F(CliSweepTest, SweepPrintsBothCutsAndMarksTheFront) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->out << sweep_->err;
  EXPECT_EQ(TableCuts(sweep_->out), (std::vector<std::string>{"2", "5"})) << sweep_->out;
  EXPECT_NE(sweep_->out.find("front"), std::string::npos) << sweep_->out;
}

TEST_F(CliSweepTest, SweepStoresOneRunPerCut) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;
  EXPECT_EQ(StoredRuns(*db_), 2u);
}

TEST_F(CliSweepTest, ParetoRanksBothRuns) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome o = RunBinary("pareto --db " + *db_, dir_.path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  const std::vector<std::string> cuts = TableCuts(o.out);
  EXPECT_EQ(cuts.size(), 2u) << o.out;
  EXPECT_NE(o.out.find("front"), std::string::npos) << o.out;
}

TEST_F(CliSweepTest, ExportCsvHasAHeaderAndOneRowPerRun) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome o = RunBinary("export --db " + *db_ + " --csv", dir_.path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(LineCount(o.out), 3u) << o.out;
}

TEST_F(CliSweepTest, ReportWritesThePageAndEveryFigureOfTheSweep) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome o =
      RunBinary("report --db " + *db_ + " --sweep last -o " + dir_.path() + "/out", dir_.path());

  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  const std::string page = testing::Slurp(dir_.path() + "/out/index.html");
  EXPECT_NE(page.find("<html"), std::string::npos);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  for (const char* kind : {"front", "breakdown", "bytes"}) {
    for (const char* ext : {".svg", ".png", ".gp"}) {
      const std::string file = dir_.path() + "/out/" + kind + "-resnet18" + ext;
      EXPECT_FALSE(testing::Slurp(file).empty()) << file;
    }
  }
}

TEST_F(CliSweepTest, PlotWritesOneFigureInTheFormatOfItsExtension) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome png = RunBinary("plot --db " + *db_ + " -o " + dir_.path() + "/f.png",
                                       dir_.path());
  const CommandOutcome pdf = RunBinary("plot --db " + *db_ + " -o " + dir_.path() + "/f.pdf",
                                       dir_.path());

  ASSERT_EQ(png.exit_code, 0) << png.err;
  EXPECT_EQ(testing::Slurp(dir_.path() + "/f.png").substr(1, 3), "PNG");
  EXPECT_EQ(pdf.exit_code, 1);
  EXPECT_EQ(LineCount(pdf.err), 1u) << pdf.err;
}

TEST_F(CliSweepTest, ExportJsonIsAnArrayOfBothRuns) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome o = RunBinary("export --db " + *db_ + " --json", dir_.path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << o.out;
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j.size(), 2u);
}

TEST_F(CliBackendsTest, SweepRunsEveryCutOnEveryBackendAndStoresThem) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->out << sweep_->err;
  EXPECT_EQ(StoredRuns(*db_), 6u);
  for (const char* backend : {"tcp", "grpc", "torch"}) {
    Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(*db_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    RunFilter filter;
    filter.backend = backend;
    Result<std::vector<RunRecord>> runs = (*store)->LoadRuns(filter);
    ASSERT_TRUE(runs.ok()) << runs.status().message();
    ASSERT_EQ(runs->size(), 2u) << backend;
    for (const RunRecord& r : *runs) {
      EXPECT_EQ(r.status, "ok") << backend << ": " << r.error;
      ASSERT_EQ(r.hops.size(), 1u) << backend;
      EXPECT_GT(r.hops[0].bytes_per_frame, 0) << backend;
    }
  }
}

TEST_F(CliBackendsTest, ParetoByBackendShowsEveryCutForEachBackend) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome o = RunBinary("pareto --by backend --db " + *db_, temp_->path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  // Rows: "2   tcp  ...", "    grpc ...", "    torch ...", then cut 5 likewise.
  static const std::regex kRow(R"(^(\d+)?\s+(tcp|grpc|torch)\s+\d+\s)");
  std::vector<std::string> rows;
  std::stringstream in(o.out);
  std::string line, cut;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!std::regex_search(line, m, kRow)) continue;
    if (m[1].matched) cut = m[1];
    rows.push_back(cut + " " + std::string(m[2]));
  }
  EXPECT_EQ(rows, (std::vector<std::string>{"2 tcp", "2 grpc", "2 torch", "5 tcp", "5 grpc",
                                            "5 torch"}))
      << o.out;
  EXPECT_NE(o.out.find("grpc against tcp over 2 cut(s): throughput x"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("torch against tcp over 2 cut(s): throughput x"), std::string::npos)
      << o.out;
}

TEST_F(CliBackendsTest, ParetoAndExportFilterByBackend) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome pareto =
      RunBinary("pareto --backend grpc --csv --db " + *db_, temp_->path());
  const CommandOutcome exported =
      RunBinary("export --backend torch --csv --db " + *db_, temp_->path());

  ASSERT_EQ(pareto.exit_code, 0) << pareto.err;
  ASSERT_EQ(LineCount(pareto.out), 3u) << pareto.out;
  EXPECT_EQ(pareto.out.find(",tcp,"), std::string::npos) << pareto.out;
  EXPECT_EQ(pareto.out.find(",torch,"), std::string::npos) << pareto.out;
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_EQ(LineCount(exported.out), 3u) << exported.out;
  EXPECT_NE(exported.out.find("hop1_hop_ms_mean"), std::string::npos);
  EXPECT_EQ(exported.out.find(",grpc,"), std::string::npos) << exported.out;
}

// --plan-first on every cut of resnet18: the workers profile it, and only
// the predicted front and one control are run (no margin), each stored with
// its prediction.
TEST(CliPlanFirstTest, MeasuresOnlyThePredictedFrontAndOneControlAndStoresTheirPredictions) {
  ScopedTempDir dir;
  const std::string db = dir.path() + "/runs.db";

  const CommandOutcome o =
      RunBinary(SweepArgs(db, "all") + " --plan-first --controls 1 --margin 0 --profile-repeat 3",
                dir.path());

  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  std::smatch m;
  static const std::regex kChoice(
      R"(plan-first under none: of (\d+) candidate\(s\), measuring the predicted front \(cuts ([\d, ]+)\), (\d+) within 0% of it \(cuts ([\d, ]+|none)\) and (\d) control\(s\) \(cuts ([\d, ]+|none))");
  ASSERT_TRUE(std::regex_search(o.out, m, kChoice)) << o.out;
  const int candidates = std::stoi(m[1]);
  const std::string front = m[2], near = m[4], controls = m[6];
  EXPECT_EQ(m[3], "0");  // --margin 0: nothing is near but ties, which are on the front.
  EXPECT_EQ(m[5], "1");
  EXPECT_NE(o.out.find("stage 1's worker (cpu"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("stage 2's worker (cpu"), std::string::npos) << o.out;

  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db);
  ASSERT_TRUE(store.ok()) << store.status().message();
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns({});
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  ASSERT_LT(static_cast<int>(runs->size()), candidates) << o.out;
  std::vector<std::string> measured_front, measured_near, measured_controls;
  for (const RunRecord& r : *runs) {
    ASSERT_TRUE(r.prediction.has_value()) << "run " << r.id;
    EXPECT_GT(r.prediction->latency_ms, 0);
    EXPECT_GT(r.prediction->throughput_ips, 0);
    EXPECT_NE(r.prediction->source.find("plan-first"), std::string::npos);
    const std::string role = r.prediction->role;
    ASSERT_TRUE(role == "front" || role == "near" || role == "control") << role;
    (role == "front"  ? measured_front
     : role == "near" ? measured_near
                      : measured_controls)
        .push_back(std::to_string(r.config.cuts[0]));
  }
  EXPECT_EQ(fmt::format("{}", fmt::join(measured_front, ", ")), front);
  EXPECT_EQ(measured_near.empty() ? "none" : fmt::format("{}", fmt::join(measured_near, ", ")),
            near);
  EXPECT_EQ(fmt::format("{}", fmt::join(measured_controls, ", ")), controls);
  EXPECT_NE(o.out.find(fmt::format("plan-first: measured {} of {} configuration(s)", runs->size(),
                                   candidates)),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("under none, tcp: measured front cuts"), std::string::npos) << o.out;
}

TEST(CliWorkersTest, SweepRunsOnWorkersStartedByHand) {
  ScopedTempDir dir;
  ChildWorker first(dir.path() + "/worker1.log"), second(dir.path() + "/worker2.log");
  ASSERT_FALSE(first.endpoint().empty());
  ASSERT_FALSE(second.endpoint().empty());
  const std::string db = dir.path() + "/runs.db";

  const CommandOutcome o = RunBinary(
      SweepArgs(db) + " --workers " + first.endpoint() + "," + second.endpoint(), dir.path());

  ASSERT_EQ(o.exit_code, 0) << o.out << o.err << "\nworker logs:\n"
                            << testing::Slurp(dir.path() + "/worker1.log")
                            << testing::Slurp(dir.path() + "/worker2.log");
  EXPECT_EQ(TableCuts(o.out), (std::vector<std::string>{"2", "5"})) << o.out;
  EXPECT_EQ(o.out.find("started"), std::string::npos)
      << "started local workers despite --workers:\n"
      << o.out;
  EXPECT_EQ(StoredRuns(db), 2u);
}

TEST(CliWorkersTest, OrchestratorKilledMidPassFreesItsWorkersForTheNextSweep) {
  ScopedTempDir dir;
  ChildWorker first(dir.path() + "/worker1.log"), second(dir.path() + "/worker2.log");
  ASSERT_FALSE(first.endpoint().empty());
  ASSERT_FALSE(second.endpoint().empty());
  const std::string workers = " --workers " + first.endpoint() + "," + second.endpoint();
  // A pass of a million batches would run for an hour: the workers must
  // notice the orchestrator's death and cancel it, or the next sweep finds
  // them busy.
  const CommandOutcome killed = testing::RunCommand(
      "timeout -s KILL 4 " + std::string(PARETOPIPE_BINARY) +
          " sweep resnet18 --num-classes 10 --input-size 64 --cuts 2 --batch 2 --batches 1000000"
          " --repeat 1 --db " +
          dir.path() + "/killed.db" + workers,
      dir.path());
  ASSERT_TRUE(killed.signaled || killed.exit_code == 137) << killed.out << killed.err;

  const CommandOutcome next = RunBinary(SweepArgs(dir.path() + "/next.db") + workers, dir.path());

  EXPECT_EQ(next.exit_code, 0) << next.out << next.err << "\nworker logs:\n"
                               << testing::Slurp(dir.path() + "/worker1.log")
                               << testing::Slurp(dir.path() + "/worker2.log");
  EXPECT_EQ(StoredRuns(dir.path() + "/next.db"), 2u);
}

// Writes a CIFAR-10 binary batch of `count` records (label i % 10, pixels
// from a fixed pattern) to `path`.
void WriteCifarBatch(const std::string& path, int count) {
  std::string bytes;
  for (int i = 0; i < count; ++i) {
    bytes += static_cast<char>(i % 10);
    for (int p = 0; p < 3072; ++p) bytes += static_cast<char>((p * 7 + i * 31) % 256);
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

TEST(CliDatasetTest, SweepOnTheCifarTestBatchScoresTheSameAccuracyAtEveryCut) {
  ScopedTempDir dir;
  WriteCifarBatch(dir.path() + "/test_batch.bin", 20);
  const std::string db = dir.path() + "/runs.db";

  const CommandOutcome o =
      RunBinary(SweepArgs(db, "2,4,6") + " --dataset cifar10:" + dir.path(), dir.path());

  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("top-1"), std::string::npos) << o.out;
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db);
  ASSERT_TRUE(store.ok()) << store.status().message();
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns({});
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  ASSERT_EQ(runs->size(), 3u);
  for (const RunRecord& r : *runs) {
    SCOPED_TRACE("run " + std::to_string(r.id));
    EXPECT_EQ(r.status, "ok") << r.error;
    EXPECT_EQ(r.config.input.rfind("cifar10:" + dir.path() + "/test_batch.bin mean=0.5", 0), 0u)
        << r.config.input;
    EXPECT_EQ(r.config.input_images, 12);  // One pass: 6 batches of 2.
    EXPECT_EQ(r.config.input_digest, runs->front().config.input_digest);
    ASSERT_TRUE(r.accuracy.has_value());
    EXPECT_EQ(r.accuracy->images, 12);
    EXPECT_EQ(r.accuracy->correct, runs->front().accuracy->correct);
  }
}

TEST(CliDatasetTest, ImageFolderReachesTheSourceAsTorchvisionsImageFolderWouldFeedIt) {
  if (std::system("/usr/bin/python3 -c 'import torchvision, PIL' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-torchvision (scripts/setup.sh --tests installs it)";
  }
  // Pillow writes two classes of JPEG and PNG files of odd sizes; torchvision's
  // ImageFolder and transforms make the tensor the source should hold, whose
  // SHA-256 the sweep stores as input_digest.
  ScopedTempDir dir;
  const std::string script = R"(
import sys, hashlib, numpy as np, torch, torchvision, torchvision.transforms as T
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(5)
for c, n in (("cat", 3), ("dog", 2)):
    import os; os.makedirs(d + "/photos/" + c)
    for i in range(n):
        a = rng.integers(0, 256, (40 + 7 * i, 53 - 5 * i, 3)).astype(np.uint8)
        Image.fromarray(a).save(d + "/photos/%s/%d.%s" % (c, i, "png" if i % 2 else "jpg"), quality=85)
t = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
ds = torchvision.datasets.ImageFolder(d + "/photos", transform=t)
x = torch.stack([ds[i][0] for i in range(len(ds))]).contiguous()
print(hashlib.sha256(x.numpy().astype(np.float32).tobytes()).hexdigest())
)";
  std::ofstream(dir.path() + "/t.py") << script;
  const CommandOutcome py = testing::RunCommand("/usr/bin/python3 " + dir.path() + "/t.py " + dir.path(), dir.path());
  ASSERT_EQ(py.exit_code, 0) << py.err;
  const std::string expected_digest = py.out.substr(0, py.out.find('\n'));
  const std::string db = dir.path() + "/runs.db";

  const CommandOutcome o =
      RunBinary(SweepArgs(db, "2,6") + " --images " + dir.path() + "/photos", dir.path());

  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db);
  ASSERT_TRUE(store.ok()) << store.status().message();
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns({});
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  ASSERT_EQ(runs->size(), 2u);
  for (const RunRecord& r : *runs) {
    SCOPED_TRACE("run " + std::to_string(r.id));
    EXPECT_EQ(r.status, "ok") << r.error;
    EXPECT_EQ(r.config.input_digest, expected_digest);
    EXPECT_EQ(r.config.input_images, 5);
    ASSERT_TRUE(r.accuracy.has_value());
    EXPECT_EQ(r.accuracy->images, 5);
    EXPECT_EQ(r.accuracy->correct, runs->front().accuracy->correct);
  }
}

class CliSweepErrorTest : public ::testing::Test {
 protected:
  // Expects exit status 1 and exactly one line on stderr, "paretopipe: error: ..."
  // containing `needle`.
  void ExpectOneLineError(const std::string& args, const std::string& needle) {
    const CommandOutcome o = RunBinary(args, dir_.path());
    EXPECT_EQ(o.exit_code, 1) << args << "\nstderr: " << o.err;
    EXPECT_EQ(LineCount(o.err), 1u) << args << "\nstderr:\n" << o.err;
    EXPECT_EQ(o.err.rfind("paretopipe: error: ", 0), 0u) << args << "\nstderr: " << o.err;
    EXPECT_NE(o.err.find(needle), std::string::npos) << args << "\nstderr: " << o.err;
  }

  ScopedTempDir dir_;
  std::string db_ = dir_.path() + "/runs.db";
};

TEST_F(CliSweepErrorTest, StallTimeoutOutOfRange) {
  ExpectOneLineError(SweepArgs(db_) + " --stall-timeout 0.5",
                     "--stall-timeout 0.5 s: must be within 1..3600 s");
}

TEST_F(CliSweepErrorTest, ResumeOfASweepTheDatabaseDoesNotHold) {
  ExpectOneLineError(SweepArgs(db_) + " --resume=2026-01-01T00:00:00Z-abcdef",
                     "holds no sweep 2026-01-01T00:00:00Z-abcdef");
}

TEST_F(CliSweepErrorTest, ResumeWithNothingToResume) {
  ExpectOneLineError(SweepArgs(db_) + " --resume", "holds no sweep of resnet18 to resume");
}

TEST_F(CliSweepErrorTest, CutBeyondTheModel) {
  ExpectOneLineError(SweepArgs(db_, "99"), "'99' is not valid");
}

TEST_F(CliSweepErrorTest, TupleOfTwoCutsWithTwoWorkers) {
  ExpectOneLineError(SweepArgs(db_, "3:5"), "2 stages need 1");
}

TEST_F(CliSweepErrorTest, WarmupLeavingNoMeasuredBatch) {
  ExpectOneLineError(SweepArgs(db_, "2,5", /*warmup=*/6), "0 <= --warmup < --batches");
}

TEST_F(CliSweepErrorTest, UnknownBackend) {
  ExpectOneLineError(SweepArgs(db_) + " --backend tcp,mpi", "unknown backend 'mpi'");
}

TEST_F(CliSweepErrorTest, BackendGivenTwice) {
  ExpectOneLineError(SweepArgs(db_) + " --backend tcp,tcp", "'tcp' given twice");
}

TEST_F(CliSweepErrorTest, BackendLeftOutOfThisBuildSaysWhatToInstall) {
  std::string missing;
  for (const char* backend : {"grpc", "torch"}) {
    if (!CheckBackend(backend).ok()) missing = backend;
  }
  if (missing.empty()) GTEST_SKIP() << "this build has every backend";

  ExpectOneLineError(SweepArgs(db_) + " --backend tcp," + missing,
                     "backend '" + missing + "' is not in this build: CMake found no");
}

TEST_F(CliSweepErrorTest, BaseLinkWithoutPlanFirst) {
  ExpectOneLineError(SweepArgs(db_) + " --base-link rtt=1ms", "--base-link is for --plan-first");
}

TEST_F(CliSweepErrorTest, BadBaseLink) {
  ExpectOneLineError(SweepArgs(db_) + " --plan-first --base-link rtt=fast", "--base-link");
}

TEST_F(CliSweepErrorTest, UnknownDataset) {
  ExpectOneLineError(SweepArgs(db_) + " --dataset imagenet:/data", "knows cifar10:DIR");
}

TEST_F(CliSweepErrorTest, DatasetAndImagesTogether) {
  ExpectOneLineError(SweepArgs(db_) + " --dataset cifar10:/a --images /b",
                     "give one input source, not both");
}

TEST_F(CliSweepErrorTest, MissingCifarFile) {
  ExpectOneLineError(SweepArgs(db_) + " --dataset cifar10:" + dir_.path() + "/none.bin",
                     dir_.path() + "/none.bin");
}

TEST_F(CliSweepErrorTest, ImageFormatLeftOutOfThisBuildSaysWhatToInstall) {
  // Only the file's first bytes, which tell its format: no decoder runs.
  std::string name, first_bytes, needle;
  if (!CheckImageFormatBuilt(ImageFormat::kJpeg).ok()) {
    name = "a.jpg";
    first_bytes = std::string("\xFF\xD8\xFF\xE0", 4);
    needle = "a.jpg: this build has no JPEG support: CMake found no libjpeg";
  } else if (!CheckImageFormatBuilt(ImageFormat::kPng).ok()) {
    name = "a.png";
    first_bytes = std::string("\x89PNG\r\n\x1A\n", 8);
    needle = "a.png: this build has no PNG support: CMake found no libpng";
  } else {
    GTEST_SKIP() << "this build decodes JPEG and PNG";
  }
  std::ofstream(dir_.path() + "/" + name) << first_bytes;

  ExpectOneLineError(SweepArgs(db_) + " --images " + dir_.path(), needle);
}

TEST_F(CliSweepErrorTest, MeanOfTwoChannels) {
  ExpectOneLineError(SweepArgs(db_) + " --images /x --mean 0.4,0.5", "--mean '0.4,0.5': 2 values");
}

TEST_F(CliSweepErrorTest, ZeroStd) {
  ExpectOneLineError(SweepArgs(db_) + " --images /x --std 0", "each > 0");
}

TEST_F(CliSweepErrorTest, ParetoOnAMissingDatabase) {
  ExpectOneLineError("pareto --db " + dir_.path() + "/missing.db", "missing.db");
}

}  // namespace
}  // namespace paretopipe
