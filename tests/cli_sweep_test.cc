// `paretopipe sweep`, `pareto`, `export` and `worker` as a user runs them:
// the real binary, real worker processes on loopback, a real SQLite file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

// One sweep with local workers, shared by the tests that read its output and database.
class CliSweepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new ScopedTempDir();
    db_ = new std::string(temp_->path() + "/runs.db");
    sweep_ = new CommandOutcome(RunBinary(SweepArgs(*db_), temp_->path()));
  }
  static void TearDownTestSuite() {
    delete sweep_;
    delete db_;
    delete temp_;
  }

  static ScopedTempDir* temp_;
  static std::string* db_;
  static CommandOutcome* sweep_;
  ScopedTempDir dir_;  // This test's own outputs.
};

ScopedTempDir* CliSweepTest::temp_ = nullptr;
std::string* CliSweepTest::db_ = nullptr;
CommandOutcome* CliSweepTest::sweep_ = nullptr;

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

TEST_F(CliSweepTest, ExportJsonIsAnArrayOfBothRuns) {
  ASSERT_EQ(sweep_->exit_code, 0) << sweep_->err;

  const CommandOutcome o = RunBinary("export --db " + *db_ + " --json", dir_.path());

  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << o.out;
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j.size(), 2u);
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

TEST_F(CliSweepErrorTest, CutBeyondTheModel) {
  ExpectOneLineError(SweepArgs(db_, "99"), "'99' is not valid");
}

TEST_F(CliSweepErrorTest, TupleOfTwoCutsWithTwoWorkers) {
  ExpectOneLineError(SweepArgs(db_, "3:5"), "2 stages need 1");
}

TEST_F(CliSweepErrorTest, WarmupLeavingNoMeasuredBatch) {
  ExpectOneLineError(SweepArgs(db_, "2,5", /*warmup=*/6), "0 <= --warmup < --batches");
}

TEST_F(CliSweepErrorTest, ParetoOnAMissingDatabase) {
  ExpectOneLineError("pareto --db " + dir_.path() + "/missing.db", "missing.db");
}

}  // namespace
}  // namespace paretopipe
