#include "analysis/pareto.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace paretopipe {
namespace {

ParetoPoint Point(int64_t run_id, double latency_ms, double throughput_ips) {
  ParetoPoint p;
  p.run_id = run_id;
  p.label = std::to_string(run_id);
  p.latency_ms = latency_ms;
  p.throughput_ips = throughput_ips;
  return p;
}

std::vector<int64_t> RunIds(const std::vector<ParetoResult>& results) {
  std::vector<int64_t> ids;
  for (const ParetoResult& r : results) ids.push_back(r.point.run_id);
  return ids;
}

const ParetoResult& Find(const std::vector<ParetoResult>& results, int64_t run_id) {
  for (const ParetoResult& r : results) {
    if (r.point.run_id == run_id) return r;
  }
  ADD_FAILURE() << "run " << run_id << " missing";
  return results.front();
}

TEST(ParetoTest, SinglePointIsOnTheFrontAndIsTheKnee) {
  const auto results = ParetoFront({Point(1, 10, 100)});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].on_front);
  EXPECT_TRUE(results[0].knee);
  EXPECT_FALSE(results[0].duplicate);
  EXPECT_EQ(results[0].dominated_by, 0);
}

TEST(ParetoTest, EmptyInputGivesEmptyOutput) { EXPECT_TRUE(ParetoFront({}).empty()); }

TEST(ParetoTest, EqualPointsPutTheLowestRunIdOnTheFrontAndTheRestAsItsDuplicates) {
  const auto results = ParetoFront({Point(7, 10, 100), Point(3, 10, 100), Point(5, 10, 100)});
  ASSERT_EQ(RunIds(results), (std::vector<int64_t>{3, 5, 7}));
  EXPECT_TRUE(results[0].on_front);
  EXPECT_TRUE(results[0].knee);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_FALSE(results[i].on_front);
    EXPECT_TRUE(results[i].duplicate);
    EXPECT_EQ(results[i].duplicate_of, 3);
    EXPECT_EQ(results[i].dominated_by, 0);  // Equals do not dominate each other.
  }
}

TEST(ParetoTest, FullyDominatedChainLeavesOnlyTheBestOnTheFront) {
  // Each later point is slower and lower in throughput than all before it.
  const auto results =
      ParetoFront({Point(4, 40, 10), Point(2, 20, 30), Point(1, 10, 40), Point(3, 30, 20)});
  ASSERT_EQ(RunIds(results), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(results[0].on_front);
  EXPECT_TRUE(results[0].knee);
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_FALSE(results[i].on_front);
    EXPECT_EQ(results[i].dominated_by, static_cast<int>(i));
  }
}

TEST(ParetoTest, EqualLatencyKeepsOnlyTheHigherThroughputOnTheFront) {
  const auto results = ParetoFront({Point(1, 10, 50), Point(2, 10, 80)});
  EXPECT_TRUE(Find(results, 2).on_front);
  EXPECT_FALSE(Find(results, 1).on_front);
  EXPECT_EQ(Find(results, 1).dominated_by, 1);
}

TEST(ParetoTest, EqualThroughputKeepsOnlyTheLowerLatencyOnTheFront) {
  const auto results = ParetoFront({Point(1, 12, 80), Point(2, 10, 80)});
  EXPECT_TRUE(Find(results, 2).on_front);
  EXPECT_FALSE(Find(results, 1).on_front);
}

TEST(ParetoTest, ConvexFrontHasItsKneeAtTheBend) {
  // Throughput rises steeply up to 20 ms, then barely: the bend is run 3.
  const auto results = ParetoFront({Point(1, 10, 10), Point(2, 15, 60), Point(3, 20, 90),
                                    Point(4, 40, 95), Point(5, 80, 100), Point(6, 50, 50)});
  int knees = 0;
  for (const ParetoResult& r : results) knees += r.knee ? 1 : 0;
  EXPECT_EQ(knees, 1);
  EXPECT_TRUE(Find(results, 3).knee);
  EXPECT_FALSE(Find(results, 6).on_front);
  EXPECT_EQ(Find(results, 6).dominated_by, 3);  // Runs 2, 3 and 4.
}

TEST(ParetoTest, TwoFrontPointsHaveNoKnee) {
  const auto results = ParetoFront({Point(1, 10, 10), Point(2, 20, 30)});
  EXPECT_TRUE(results[0].on_front && results[1].on_front);
  EXPECT_FALSE(results[0].knee || results[1].knee);
}

TEST(ParetoTest, StraightFrontHasNoKnee) {
  const auto results = ParetoFront({Point(1, 10, 10), Point(2, 20, 20), Point(3, 30, 30)});
  for (const ParetoResult& r : results) EXPECT_FALSE(r.knee);
}

TEST(ParetoTest, OutputIsFrontThenDuplicatesThenDominatedEachByLatency) {
  const auto results = ParetoFront({
      Point(1, 30, 5),    // Dominated by 3 and 4.
      Point(2, 20, 100),  // Front.
      Point(3, 25, 60),   // Dominated by 2.
      Point(4, 5, 10),    // Front.
      Point(5, 20, 100),  // Duplicate of 2.
      Point(6, 25, 70),   // Dominated by 2.
  });
  EXPECT_EQ(RunIds(results), (std::vector<int64_t>{4, 2, 5, 6, 3, 1}));
  EXPECT_TRUE(results[0].on_front && results[1].on_front);
  EXPECT_TRUE(results[2].duplicate);
  EXPECT_EQ(results[2].duplicate_of, 2);
  EXPECT_EQ(results[3].dominated_by, 2);  // Run 6: by 2 and 5.
  EXPECT_EQ(results[4].dominated_by, 3);  // Run 3: by 2, 5 and 6.
  EXPECT_EQ(results[5].dominated_by, 5);  // Run 1: by every other point.
}

TEST(ParetoTest, InvalidPointsAreLeftOffTheFrontAndPlacedLast) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto results =
      ParetoFront({Point(9, nan, 100), Point(1, 10, 10), Point(4, -1, 1000), Point(2, 1, nan)});
  EXPECT_EQ(RunIds(results), (std::vector<int64_t>{1, 2, 4, 9}));
  EXPECT_TRUE(results[0].on_front);
  EXPECT_TRUE(results[0].knee);
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_FALSE(results[i].on_front);
    EXPECT_FALSE(results[i].duplicate);
    EXPECT_FALSE(results[i].knee);
  }
}

TEST(ParetoTest, DominatedByCountsMatchPairwiseComparison) {
  // Coarse values so that ties on one or both metrics are frequent.
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> value(0, 15);
  std::vector<ParetoPoint> points;
  for (int i = 0; i < 500; ++i) points.push_back(Point(i, value(rng), value(rng)));
  const auto results = ParetoFront(points);
  ASSERT_EQ(results.size(), points.size());
  for (const ParetoResult& r : results) {
    int expected = 0;
    for (const ParetoPoint& o : points) {
      const ParetoPoint& p = r.point;
      if (o.latency_ms <= p.latency_ms && o.throughput_ips >= p.throughput_ips &&
          (o.latency_ms < p.latency_ms || o.throughput_ips > p.throughput_ips)) {
        ++expected;
      }
    }
    EXPECT_EQ(r.dominated_by, expected) << "run " << r.point.run_id;
    EXPECT_EQ(r.on_front, expected == 0 && !r.duplicate);
  }
}

TEST(ParetoTest, ParseLatencyStatAcceptsEveryName) {
  for (LatencyStat stat :
       {LatencyStat::kMean, LatencyStat::kP50, LatencyStat::kP95, LatencyStat::kP99}) {
    auto parsed = ParseLatencyStat(LatencyStatName(stat));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, stat);
  }
}

TEST(ParetoTest, ParseLatencyStatRejectsP90ListingTheValidNames) {
  auto parsed = ParseLatencyStat("p90");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
  const std::string& message = parsed.status().message();
  EXPECT_NE(message.find("p90"), std::string::npos);
  EXPECT_NE(message.find("mean, p50, p95, p99"), std::string::npos) << message;
}

TEST(ParetoTest, PointOfTakesTheChosenStatisticsMeanAndJoinsCuts) {
  RunRecord run;
  run.id = 12;
  run.config.cuts = {3, 8};
  run.latency_ms_mean.mean = 11;
  run.latency_ms_p50.mean = 10;
  run.latency_ms_p95.mean = 15;
  run.latency_ms_p99.mean = 19;
  run.throughput_ips.mean = 250;
  const ParetoPoint p = PointOf(run, LatencyStat::kP95);
  EXPECT_EQ(p.run_id, 12);
  EXPECT_EQ(p.label, "3,8");
  EXPECT_DOUBLE_EQ(p.latency_ms, 15);
  EXPECT_DOUBLE_EQ(p.throughput_ips, 250);
  EXPECT_DOUBLE_EQ(PointOf(run, LatencyStat::kP99).latency_ms, 19);
}

TEST(ParetoTest, FailedRunsPointIsInvalid) {
  RunRecord run;
  run.status = "failed";
  EXPECT_TRUE(std::isnan(PointOf(run, LatencyStat::kMean).latency_ms));
  EXPECT_FALSE(ParetoFront({PointOf(run, LatencyStat::kMean)})[0].on_front);
}

}  // namespace
}  // namespace paretopipe
