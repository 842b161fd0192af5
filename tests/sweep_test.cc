// Sweeps: --cuts parsing, and a sweep over two in-process workers storing
// one run per requested cut.
#include "sweep/sweep.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "model/device.h"
#include "store/store.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::ScopedTempDir;
using testing::ServingWorker;
using Cuts = std::vector<std::vector<int>>;

constexpr int64_t kBlocks = 18;  // As many as mobilenet_v2 has: cuts 1..17.
constexpr int kMaxRuns = 500;

Cuts ParseOrDie(const std::string& text, int stages) {
  Result<Cuts> cuts = ParseCutList(text, kBlocks, stages, kMaxRuns);
  EXPECT_TRUE(cuts.ok()) << text << ": " << cuts.status().message();
  return cuts.ok() ? *cuts : Cuts{};
}

// Expects InvalidArgument with a message containing `needle`.
void ExpectParseError(const std::string& text, int stages, const std::string& needle) {
  Result<Cuts> cuts = ParseCutList(text, kBlocks, stages, kMaxRuns);
  ASSERT_FALSE(cuts.ok()) << "'" << text << "' for " << stages << " stages was accepted";
  EXPECT_EQ(cuts.status().code(), Status::Code::kInvalidArgument) << text;
  EXPECT_NE(cuts.status().message().find(needle), std::string::npos)
      << "'" << text << "': " << cuts.status().message();
}

TEST(ParseCutListTest, AllForTwoStagesIsEveryCutOnce) {
  const Cuts cuts = ParseOrDie("all", 2);

  ASSERT_EQ(cuts.size(), static_cast<size_t>(kBlocks - 1));
  for (int i = 0; i < kBlocks - 1; ++i) EXPECT_EQ(cuts[i], std::vector<int>{i + 1});
}

TEST(ParseCutListTest, AllForThreeStagesIsEveryIncreasingPair) {
  const Cuts cuts = ParseOrDie("all", 3);

  EXPECT_EQ(cuts.size(), static_cast<size_t>((kBlocks - 1) * (kBlocks - 2) / 2));
  EXPECT_EQ(cuts.front(), (std::vector<int>{1, 2}));
  EXPECT_EQ(cuts.back(), (std::vector<int>{kBlocks - 2, kBlocks - 1}));
}

TEST(ParseCutListTest, CommaSeparatedCutsForTwoStages) {
  EXPECT_EQ(ParseOrDie("3,8,14", 2), (Cuts{{3}, {8}, {14}}));
}

TEST(ParseCutListTest, ColonTuplesForThreeStages) {
  EXPECT_EQ(ParseOrDie("3:9,5:12", 3), (Cuts{{3, 9}, {5, 12}}));
}

TEST(ParseCutListTest, TupleOfTheWrongSizeIsRefused) {
  ExpectParseError("3", 3, "'3' has 1 cut(s); 3 stages need 2");
  ExpectParseError("3:9", 2, "'3:9' has 2 cut(s); 2 stages need 1");
  ExpectParseError("3:9,5", 3, "'5' has 1 cut(s)");
}

TEST(ParseCutListTest, NonIncreasingTupleIsRefused) {
  ExpectParseError("9:3", 3, "cuts must increase");
  ExpectParseError("5:5", 3, "cuts must increase");
}

TEST(ParseCutListTest, CutOutOfRangeIsRefused) {
  ExpectParseError("0", 2, "within 1..17");
  ExpectParseError("18", 2, "within 1..17");
  ExpectParseError("-3", 2, "within 1..17");
}

TEST(ParseCutListTest, GarbageIsRefused) {
  ExpectParseError("abc", 2, "'abc' is not a cut index");
  ExpectParseError("3x", 2, "'3x' is not a cut index");
  ExpectParseError("3,,5", 2, "'' has 0 cut(s)");
  ExpectParseError("", 2, "empty");
}

TEST(ParseCutListTest, OneStageIsRefused) { ExpectParseError("3", 1, "at least 2 workers"); }

TEST(ParseCutListTest, AllPastTheLimitSuggestsAnExplicitList) {
  // 4 stages: C(17, 3) = 680 combinations, more than 500.
  ExpectParseError("all", 4, "more than 500 combinations");
  ExpectParseError("all", 4, "pass an explicit list, e.g. --cuts");
}

TEST(ParseCutListTest, AllAtTheLimitIsAccepted) {
  // 3 stages: C(17, 2) = 136 combinations.
  Result<Cuts> cuts = ParseCutList("all", kBlocks, 3, 136);
  ASSERT_TRUE(cuts.ok()) << cuts.status().message();
  EXPECT_EQ(cuts->size(), 136u);
}

class RunSweepTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ConfigureCompute(1).ok()); }

  SweepOptions Options() const {
    SweepOptions o;
    o.model = "resnet18";
    o.num_classes = 10;
    o.seed = 3;
    o.input_side_px = 32;
    o.cuts = "2,5";
    o.workers = {first_.endpoint().ToString(), second_.endpoint().ToString()};
    o.batch_size = 2;
    o.batches = 4;
    o.warmup = 1;
    o.window = 2;
    o.repeats = 1;
    o.threads = 1;
    o.db_path = db_path_;
    return o;
  }

  ServingWorker first_, second_;
  ScopedTempDir temp_;
  std::string db_path_ = temp_.path() + "/runs.db";
};

TEST_F(RunSweepTest, StoresOneOkRunPerRequestedCut) {
  const SweepOptions options = Options();
  std::ostringstream progress;

  Result<SweepResult> result = RunSweep(options, progress);

  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_EQ(result->runs.size(), 2u);
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db_path_);
  ASSERT_TRUE(store.ok()) << store.status().message();
  RunFilter filter;
  filter.with_samples = true;
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns(filter);
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  ASSERT_EQ(runs->size(), 2u);
  const std::vector<std::vector<int>> expected_cuts{{2}, {5}};
  for (size_t i = 0; i < runs->size(); ++i) {
    const RunRecord& r = (*runs)[i];
    EXPECT_EQ(r.id, result->runs[i].id);
    EXPECT_EQ(r.status, "ok") << r.error;
    EXPECT_EQ(r.config.model, "resnet18");
    EXPECT_EQ(r.config.cuts, expected_cuts[i]);
    EXPECT_EQ(r.config.sweep_id, result->sweep_id);
    EXPECT_EQ(r.config.workers, options.workers);
    EXPECT_EQ(r.config.batch_size, 2);
    EXPECT_EQ(r.config.input_side_px, 32);
    EXPECT_EQ(r.stages.size(), 2u);
    EXPECT_EQ(r.repeats.size(), 1u);
    EXPECT_EQ(r.samples.size(), static_cast<size_t>(options.batches * options.repeats));
    EXPECT_GT(r.latency_ms_mean.mean, 0);
    EXPECT_GT(r.throughput_ips.mean, 0);
  }
  EXPECT_NE(progress.str().find("[1/2] cuts 2"), std::string::npos) << progress.str();
  EXPECT_NE(progress.str().find("[2/2] cuts 5"), std::string::npos) << progress.str();
}

TEST_F(RunSweepTest, BadCutsFailBeforeAnyRunIsStored) {
  SweepOptions options = Options();
  options.cuts = "3:5";  // A tuple of two cuts, with two workers.
  std::ostringstream progress;

  Result<SweepResult> result = RunSweep(options, progress);

  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("2 stages need 1"), std::string::npos) << result.status().message();
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db_path_);
  if (store.ok()) {
    Result<std::vector<RunRecord>> runs = (*store)->LoadRuns({});
    ASSERT_TRUE(runs.ok()) << runs.status().message();
    EXPECT_TRUE(runs->empty());
  }
}

}  // namespace
}  // namespace paretopipe
