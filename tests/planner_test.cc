#include "analysis/planner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

namespace paretopipe {
namespace {

std::vector<std::vector<LinkModel>> AllLinks(int devices, const LinkModel& link) {
  return std::vector<std::vector<LinkModel>>(devices, std::vector<LinkModel>(devices, link));
}

// The worked example of docs/planner.md: two devices, four blocks.
//   pi:     10, 20, 30, 40 ms per block
//   server:  1,  2,  3,  4 ms per block
//   block outputs 8000, 4000, 2000, 100 bytes
//   both links: overhead 0.5 ms, 8 Mbit/s (1 ms per 1000 bytes), delay 5 ms.
PlanProblem WorkedExample(int window) {
  PlanProblem p;
  p.compute_ms = {{10, 20, 30, 40}, {1, 2, 3, 4}};
  p.block_output_bytes = {8000, 4000, 2000, 100};
  p.links = AllLinks(2, LinkModel{0.5, 8e6, 5});
  p.batch = 8;
  p.window = window;
  return p;
}

TEST(PlannerTest, TwoStagePredictionMatchesTheHandComputedNumbers) {
  // Blocks 0-1 on pi, 2-3 on server (cut 2, which carries block 1's 4000 bytes):
  //   C1 = 10 + 20 = 30, C2 = 3 + 4 = 7
  //   T1 = 0.5 + 4000 * 8 / 8e6 * 1000 = 4.5, D1 = 5
  //   latency = 30 + (4.5 + 5) + 7 = 46.5
  //   R (server -> pi, 0 bytes) = 0.5 + 5 = 5.5
  //   K = 2: period = max(30, 7, 4.5, (46.5 + 5.5) / 2 = 26) = 30, stage 1
  //   throughput = 8 * 1000 / 30 = 266.67 img/s
  Result<PlanPrediction> p = Predict(WorkedExample(2), Placement{{2}, {0, 1}});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_DOUBLE_EQ(p->latency_ms, 46.5);
  EXPECT_EQ(p->stage_compute_ms, (std::vector<double>{30, 7}));
  EXPECT_EQ(p->hop_transfer_ms, (std::vector<double>{4.5}));
  EXPECT_EQ(p->hop_delay_ms, (std::vector<double>{5}));
  EXPECT_EQ(p->hop_bytes, (std::vector<int64_t>{4000}));
  EXPECT_DOUBLE_EQ(p->credit_return_ms, 5.5);
  EXPECT_DOUBLE_EQ(p->period_ms, 30);
  EXPECT_DOUBLE_EQ(p->throughput_ips, 8 * 1000 / 30.0);
  EXPECT_EQ(BottleneckName(p->bottleneck), "stage 1");
}

TEST(PlannerTest, WindowOfOneMakesTheRoundTripThePeriod) {
  // As above with K = 1: period = (46.5 + 5.5) / 1 = 52 > 30.
  Result<PlanPrediction> p = Predict(WorkedExample(1), Placement{{2}, {0, 1}});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_DOUBLE_EQ(p->period_ms, 52);
  EXPECT_EQ(BottleneckName(p->bottleneck), "window");
}

TEST(PlannerTest, SlowLinkMakesTheHopTheBottleneck) {
  // Cut 1 carries 8000 bytes at 0.8 Mbit/s: T1 = 0.5 + 80 = 80.5 > C1 = 10, C2 = 9.
  PlanProblem problem = WorkedExample(4);
  problem.links = AllLinks(2, LinkModel{0.5, 8e5, 5});
  Result<PlanPrediction> p = Predict(problem, Placement{{1}, {0, 1}});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_DOUBLE_EQ(p->period_ms, 80.5);
  EXPECT_EQ(BottleneckName(p->bottleneck), "hop 1");
}

TEST(PlannerTest, BatchesQueueInFrontOfABottleneckAfterTheSource) {
  // As above: the hop's 80.5 ms is the period; the idle latency is
  // 10 + (80.5 + 5) + 9 = 104.5, R = 5.5. With K = 4 batches in flight each
  // waits for the link: 4 * 80.5 - 5.5 = 316.5 ms from stage 1's compute on.
  PlanProblem problem = WorkedExample(4);
  problem.links = AllLinks(2, LinkModel{0.5, 8e5, 5});

  Result<PlanPrediction> p = Predict(problem, Placement{{1}, {0, 1}});

  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_DOUBLE_EQ(p->latency_ms, 104.5);
  EXPECT_DOUBLE_EQ(p->steady_latency_ms, 4 * 80.5 - 5.5);
}

TEST(PlannerTest, BatchesWaitingForTheSourceAddNoLatency) {
  // The worked example's stage 1 (30 ms) is the bottleneck: batches wait
  // for it before their latency starts.
  Result<PlanPrediction> p = Predict(WorkedExample(4), Placement{{2}, {0, 1}});

  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(BottleneckName(p->bottleneck), "stage 1");
  EXPECT_DOUBLE_EQ(p->steady_latency_ms, p->latency_ms);
}

TEST(PlannerTest, OneStagePlanHasItsComputeAsLatencyAndPeriod) {
  Result<PlanPrediction> p = Predict(WorkedExample(1), Placement{{}, {1}});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_DOUBLE_EQ(p->latency_ms, 10);
  EXPECT_DOUBLE_EQ(p->period_ms, 10);
  EXPECT_DOUBLE_EQ(p->credit_return_ms, 0);
}

TEST(PlannerTest, FrontOfTheWorkedExampleIsSortedAndHasNoDominatedPlan) {
  Result<std::vector<PlanPrediction>> front = PlanFront(WorkedExample(2));
  ASSERT_TRUE(front.ok()) << front.status().message();
  ASSERT_FALSE(front->empty());
  // Everything on the server alone (10 ms, 10 ms) beats every split here.
  EXPECT_EQ(front->front().placement, (Placement{{}, {1}}));
  for (size_t i = 1; i < front->size(); ++i) {
    EXPECT_GT((*front)[i].latency_ms, (*front)[i - 1].latency_ms);
    EXPECT_LT((*front)[i].period_ms, (*front)[i - 1].period_ms);
  }
}

TEST(PlannerTest, TiedPlacementsKeepTheFewestStagesThenTheSmallestDevices) {
  // Two identical devices, free links, K = 1: on one device (either) or split
  // at cut 1 (either order), latency = period = 2. One stage on device 0 stays.
  PlanProblem problem;
  problem.compute_ms = {{1, 1}, {1, 1}};
  problem.block_output_bytes = {100, 100};
  problem.links = AllLinks(2, LinkModel{});
  for (bool brute_force : {false, true}) {
    SCOPED_TRACE(brute_force ? "brute force" : "dynamic programme");
    Result<std::vector<PlanPrediction>> front =
        brute_force ? PlanFrontBruteForce(problem) : PlanFront(problem);
    ASSERT_TRUE(front.ok()) << front.status().message();
    ASSERT_EQ(front->size(), 1u);
    EXPECT_EQ(front->front().placement, (Placement{{}, {0}}));
  }
}

TEST(PlannerTest, StageRangeRestrictsThePlans) {
  PlanProblem problem = WorkedExample(2);
  problem.min_stages = 2;
  Result<std::vector<PlanPrediction>> front = PlanFront(problem);
  ASSERT_TRUE(front.ok()) << front.status().message();
  for (const PlanPrediction& p : *front) EXPECT_EQ(p.placement.devices.size(), 2u);
}

TEST(PlannerTest, ImpossibleStageRangeIsRefused) {
  PlanProblem problem = WorkedExample(2);
  problem.min_stages = 3;  // Only two devices.
  Result<std::vector<PlanPrediction>> front = PlanFront(problem);
  ASSERT_FALSE(front.ok());
  EXPECT_NE(front.status().message().find("no placement has 3 or more stages"), std::string::npos)
      << front.status().message();
}

TEST(PlannerTest, PlacementRepeatingADeviceIsRefused) {
  PlanProblem problem = WorkedExample(2);
  problem.compute_ms.push_back({1, 1, 1, 1});
  problem.links = AllLinks(3, LinkModel{});
  Result<PlanPrediction> p = Predict(problem, Placement{{1, 2}, {0, 1, 0}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("device 0 runs two stages"), std::string::npos);
}

TEST(PlannerTest, PlacementWithDecreasingCutsIsRefused) {
  PlanProblem problem = WorkedExample(2);
  problem.compute_ms.push_back({1, 1, 1, 1});
  problem.links = AllLinks(3, LinkModel{});
  EXPECT_FALSE(Predict(problem, Placement{{2, 1}, {0, 1, 2}}).ok());
  EXPECT_FALSE(Predict(problem, Placement{{4}, {0, 1}}).ok());
}

TEST(PlannerTest, NegativeComputeTimeIsRefused) {
  PlanProblem problem = WorkedExample(2);
  problem.compute_ms[1][2] = -1;
  EXPECT_FALSE(PlanFront(problem).ok());
}

// A random instance: device speeds times block costs (or small integers, so
// that sums tie exactly), output bytes, links of every kind.
PlanProblem RandomProblem(std::mt19937_64& rng, int max_devices, int max_blocks) {
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  PlanProblem p;
  const int devices = pick(2, max_devices);
  const int blocks = pick(1, max_blocks);
  const bool integers = pick(0, 2) == 0;
  std::vector<double> base(blocks);
  for (double& b : base) b = integers ? pick(0, 3) : uniform(0.1, 10);
  for (int d = 0; d < devices; ++d) {
    // Sometimes a copy of the previous device, as two identical boards are.
    if (d > 0 && pick(0, 3) == 0) {
      p.compute_ms.push_back(p.compute_ms.back());
      continue;
    }
    const double speed = integers ? pick(1, 3) : uniform(0.2, 5);
    std::vector<double> row(blocks);
    for (int b = 0; b < blocks; ++b) {
      row[b] = integers ? base[b] * speed : base[b] * speed * uniform(0.8, 1.25);
    }
    p.compute_ms.push_back(row);
  }
  for (int b = 0; b < blocks; ++b) {
    p.block_output_bytes.push_back(integers ? pick(0, 4) * 1000 : pick(0, 2000000));
  }
  auto random_link = [&]() {
    LinkModel l;
    const int kind = pick(0, 3);
    if (kind == 0) return l;  // Free: same machine.
    l.rate_bits_per_s = kind == 1 ? 0 : (integers ? 8e6 : uniform(1e6, 1e9));
    l.overhead_ms = pick(0, 1) ? 0 : (integers ? 1 : uniform(0, 1));
    l.delay_ms = pick(0, 1) ? 0 : (integers ? pick(1, 5) : uniform(0, 50));
    return l;
  };
  if (pick(0, 2) == 0) {
    p.links = AllLinks(devices, random_link());
  } else {
    p.links = AllLinks(devices, LinkModel{});
    for (int a = 0; a < devices; ++a) {
      for (int b = 0; b < devices; ++b) p.links[a][b] = random_link();
    }
  }
  p.batch = pick(1, 16);
  p.window = pick(1, 4);
  const int max_possible = std::min(devices, blocks);
  p.min_stages = pick(1, max_possible);
  p.max_stages = pick(0, 1) ? 0 : pick(p.min_stages, devices);
  return p;
}

bool Near(double a, double b) {
  return a == b || std::abs(a - b) <= 1e-9 * std::max(std::abs(a), std::abs(b));
}

std::string Describe(const PlanPrediction& p) {
  std::string s = "cuts";
  for (int c : p.placement.cuts) s += " " + std::to_string(c);
  s += " devices";
  for (int d : p.placement.devices) s += " " + std::to_string(d);
  return s + " latency " + std::to_string(p.latency_ms) + " period " + std::to_string(p.period_ms);
}

// PlanFront and PlanFrontBruteForce on `trials` random problems: the same
// (latency, period) points, and each DP plan's numbers are its own prediction.
void ExpectSameFronts(uint64_t seed, int trials, int max_devices, int max_blocks) {
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < trials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const PlanProblem problem = RandomProblem(rng, max_devices, max_blocks);
    Result<std::vector<PlanPrediction>> dp = PlanFront(problem);
    Result<std::vector<PlanPrediction>> oracle = PlanFrontBruteForce(problem);
    ASSERT_TRUE(dp.ok()) << dp.status().message();
    ASSERT_TRUE(oracle.ok()) << oracle.status().message();
    ASSERT_EQ(dp->size(), oracle->size())
        << "first DP point: " << (dp->empty() ? "-" : Describe(dp->front()))
        << "; first oracle point: " << (oracle->empty() ? "-" : Describe(oracle->front()));
    for (size_t i = 0; i < dp->size(); ++i) {
      const PlanPrediction& mine = (*dp)[i];
      const PlanPrediction& truth = (*oracle)[i];
      ASSERT_TRUE(Near(mine.latency_ms, truth.latency_ms) && Near(mine.period_ms, truth.period_ms))
          << "point " << i << ": DP " << Describe(mine) << ", oracle " << Describe(truth);
      Result<PlanPrediction> own = Predict(problem, mine.placement);
      ASSERT_TRUE(own.ok()) << own.status().message();
      EXPECT_TRUE(Near(own->latency_ms, mine.latency_ms) && Near(own->period_ms, mine.period_ms))
          << Describe(mine) << " predicts " << Describe(*own);
      EXPECT_EQ(own->throughput_ips, mine.throughput_ips);
    }
  }
}

TEST(PlannerTest, DynamicProgrammeFindsTheBruteForceFrontOnRandomInstances) {
  ExpectSameFronts(20240610, 2000, /*max_devices=*/4, /*max_blocks=*/12);
}

// Five devices exercise the pruning by subsets (a set minus a device that is
// neither the first nor the last) at more depths.
TEST(PlannerTest, DynamicProgrammeFindsTheBruteForceFrontWithFiveDevices) {
  ExpectSameFronts(7, 400, /*max_devices=*/5, /*max_blocks=*/10);
}

}  // namespace
}  // namespace paretopipe
