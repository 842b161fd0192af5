// Plan-first sweeps: the chain problem of a sweep, which cuts it measures
// (numbers worked out by hand) and the verdict on what it measured.
#include "analysis/plan_first.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace paretopipe {
namespace {

// Four blocks. The pi takes 8, 2, 8 and 6 ms per batch, the server 3, 1, 3
// and 1; they output 4000, 1000, 1000 and 1000 bytes per batch of 8.
DeviceProfile Profile(const std::string& name, std::vector<double> block_ms) {
  DeviceProfile p;
  p.source = name + ".json";
  p.model = "tiny";
  p.batch = 8;
  p.input_shape = {8, 3, 32, 32};
  p.device = "cpu";
  p.block_names = {"a", "b", "c", "d"};
  p.block_compute_ms = std::move(block_ms);
  p.block_output_bytes = {4000, 1000, 1000, 1000};
  return p;
}

class PlanFirstTest : public ::testing::Test {
 protected:
  PlanProblem Problem(const std::string& net) {
    Result<PlanProblem> problem = ChainProblem({&pi_, &server_}, LinkModel{}, net, 8, 4);
    EXPECT_TRUE(problem.ok()) << problem.status().message();
    return problem.ok() ? *problem : PlanProblem{};
  }

  DeviceProfile pi_ = Profile("pi", {8, 2, 8, 6});
  DeviceProfile server_ = Profile("server", {3, 1, 3, 1});
};

TEST_F(PlanFirstTest, ChainPutsStageSOnDeviceSWithTheConditionOnEveryHop) {
  const PlanProblem p = Problem("delay=10ms,rate=8mbit");
  ASSERT_EQ(p.compute_ms.size(), 2u);
  EXPECT_EQ(p.compute_ms[0], pi_.block_compute_ms);
  EXPECT_EQ(p.compute_ms[1], server_.block_compute_ms);
  EXPECT_EQ(p.min_stages, 2);
  EXPECT_EQ(p.max_stages, 2);
  EXPECT_EQ(p.window, 4);
  EXPECT_DOUBLE_EQ(p.links[0][1].delay_ms, 10);
  EXPECT_DOUBLE_EQ(p.links[0][1].rate_bits_per_s, 8e6);
  EXPECT_DOUBLE_EQ(p.links[1][0].delay_ms, 10);  // The credits cross the same delay.
}

TEST_F(PlanFirstTest, ChainRefusesProfilesOfDifferentModels) {
  DeviceProfile other = server_;
  other.block_output_bytes[0] = 5000;
  EXPECT_FALSE(ChainProblem({&pi_, &other}, LinkModel{}, "none", 8, 4).ok());
  EXPECT_FALSE(ChainProblem({&pi_, &server_}, LinkModel{}, "delay=fast", 8, 4).ok());
}

TEST_F(PlanFirstTest, MeasuresThePredictedFrontAndTheNearestDominatedCut) {
  // delay 10 ms one way, 8 Mbit/s, window 4; the credit returns in R = 10 ms.
  // Cut 1: pi 8, hop 4000 B = 4 ms, server 5: latency 8 + 4 + 10 + 5 = 27;
  //   period max(8, 4, 5, (27 + 10) / 4 = 9.25) = 9.25 (the window), so
  //   steady latency max(27, 4 * 9.25 - 10) = 27 and 8000 / 9.25 = 864.9 img/s.
  // Cut 2: pi 10, hop 1 ms, server 4: latency 25; period max(10, (25 + 10) / 4)
  //   = 10, stage 1: steady latency 25, 800 img/s.
  // Cut 3: pi 18, hop 1, server 1: latency 30, period 18: 444.4 img/s.
  // Cuts 1 and 2 trade latency for throughput; cut 3 is behind cut 2 by
  // max(30 / 25, 800 / 444.4) = 1.8 and behind cut 1 by 1.95.
  const std::vector<std::vector<int>> candidates = {{1}, {2}, {3}};
  Result<PlanFirstSelection> s =
      SelectPlanFirst(Problem("delay=10ms,rate=8mbit"), candidates, 2, 0);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->predictions.size(), 3u);
  EXPECT_DOUBLE_EQ(s->predictions[0].steady_latency_ms, 27);
  EXPECT_DOUBLE_EQ(s->predictions[0].throughput_ips, 8000 / 9.25);
  EXPECT_DOUBLE_EQ(s->predictions[1].steady_latency_ms, 25);
  EXPECT_DOUBLE_EQ(s->predictions[1].throughput_ips, 800);
  EXPECT_DOUBLE_EQ(s->predictions[2].steady_latency_ms, 30);
  EXPECT_EQ(s->front, (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(s->near.empty());
  EXPECT_EQ(s->controls, (std::vector<size_t>{2}));  // Only one is dominated.
  EXPECT_DOUBLE_EQ(s->factor[0], 1);
  EXPECT_DOUBLE_EQ(s->factor[2], 1.8);
}

TEST_F(PlanFirstTest, ControlsAreTheDominatedCutsClosestToTheFront) {
  // No network, window 4: stage 1 is every cut's bottleneck, so the steady
  // latency is the idle one. Cut 1: latency 8 + 5 = 13, period 8: 1000
  // img/s. Cut 2: 14 ms, period 10: 800 img/s, behind cut 1 by
  // max(14 / 13, 1000 / 800) = 1.25. Cut 3: 19 ms, 444.4 img/s, behind by 2.25.
  const std::vector<std::vector<int>> candidates = {{1}, {2}, {3}};
  Result<PlanFirstSelection> s = SelectPlanFirst(Problem("none"), candidates, 1, 0);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->front, (std::vector<size_t>{0}));  // 13 ms and 1000 img/s beat both.
  EXPECT_EQ(s->controls, (std::vector<size_t>{1}));
  EXPECT_DOUBLE_EQ(s->factor[1], 1.25);
  EXPECT_DOUBLE_EQ(s->factor[2], 2.25);
  Result<PlanFirstSelection> none = SelectPlanFirst(Problem("none"), candidates, 0, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->controls.empty());
}

TEST_F(PlanFirstTest, RefusesACandidateThatIsNotACutOfTheModel) {
  EXPECT_FALSE(SelectPlanFirst(Problem("none"), {{4}}, 1, 0).ok());
  EXPECT_FALSE(SelectPlanFirst(Problem("none"), {{1, 2}}, 1, 0).ok());
  EXPECT_FALSE(SelectPlanFirst(Problem("none"), {}, 1, 0).ok());
  EXPECT_FALSE(SelectPlanFirst(Problem("none"), {{1}}, 1, -0.1).ok());
}

TEST_F(PlanFirstTest, CutsWithinTheMarginOfTheFrontAreMeasuredAsNearAndControlsComeAfter) {
  // No network (the numbers of the test above): cut 2 is 1.25x behind cut
  // 1, cut 3 2.25x. A 30% margin takes cut 2 as near; the control is cut 3.
  Result<PlanFirstSelection> s = SelectPlanFirst(Problem("none"), {{1}, {2}, {3}}, 1, 0.3);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->front, (std::vector<size_t>{0}));
  EXPECT_EQ(s->near, (std::vector<size_t>{1}));
  EXPECT_EQ(s->controls, (std::vector<size_t>{2}));
  // At exactly the factor, a cut is near: 1.25 <= 1 + 0.25.
  Result<PlanFirstSelection> edge = SelectPlanFirst(Problem("none"), {{1}, {2}, {3}}, 0, 0.25);
  ASSERT_TRUE(edge.ok());
  EXPECT_EQ(edge->near, (std::vector<size_t>{1}));
  EXPECT_TRUE(edge->controls.empty());
}

TEST(PlanFirstJudgeTest, AControlMeasuredBetterThanEveryFrontRunBeatsThePredictedFront) {
  // Front runs 0 and 1; control 2 measures faster and with more throughput
  // than run 1 but not than run 0: nothing measured beats it.
  const PlanFirstOutcome o = JudgePlanFirst(
      {{0, false, 20, 500}, {1, false, 30, 300}, {2, true, 25, 400}, {3, true, 40, 100}});
  EXPECT_EQ(o.measured_front, (std::vector<size_t>{0}));
  EXPECT_TRUE(o.beating_controls.empty());  // Run 0 beats control 2.
  EXPECT_EQ(o.beaten_front, (std::vector<size_t>{1}));

  const PlanFirstOutcome missed =
      JudgePlanFirst({{0, false, 20, 300}, {1, false, 30, 400}, {2, true, 25, 600}});
  EXPECT_EQ(missed.measured_front, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(missed.beating_controls, (std::vector<size_t>{2}));
  EXPECT_EQ(missed.beaten_front, (std::vector<size_t>{1}));
}

TEST(PlanFirstJudgeTest, NoVerdictOnControlsWithoutAMeasuredFrontRun) {
  const PlanFirstOutcome o = JudgePlanFirst({{2, true, 25, 400}});
  EXPECT_EQ(o.measured_front, (std::vector<size_t>{2}));
  EXPECT_TRUE(o.beating_controls.empty());
}

}  // namespace
}  // namespace paretopipe
