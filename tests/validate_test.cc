// Validate: a measured run beside the planner's prediction for its own
// placement, with numbers worked out by hand, and the figures of a group.
#include "analysis/validate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace paretopipe {
namespace {

// Three blocks. On the pi they take 10, 20 and 30 ms per batch, on the
// server 1, 2 and 3; they output 1 MB, 500 kB and 4 kB per batch.
DeviceProfile Profile(const std::string& name, std::vector<double> block_ms) {
  DeviceProfile p;
  p.source = name + ".json";
  p.model = "tiny";
  p.batch = 8;
  p.input_shape = {8, 3, 32, 32};
  p.device = "cpu";
  p.block_names = {"a", "b", "c"};
  p.block_compute_ms = std::move(block_ms);
  p.block_output_bytes = {1000000, 500000, 4000};
  return p;
}

ValidationOptions PiAndServer() {
  ValidationOptions o;
  o.devices = {{"pi", Profile("pi", {10, 20, 30})}, {"server", Profile("server", {1, 2, 3})}};
  return o;  // Base link: none (no cost), so the condition alone makes the link.
}

RunRecord MeasuredRun(int64_t id, int cut, double latency_ms, double throughput_ips) {
  RunRecord r;
  r.id = id;
  r.config.model = "tiny";
  r.config.cuts = {cut};
  r.config.batch_size = 8;
  r.config.input_side_px = 32;
  r.config.window = 4;
  r.config.backend = "tcp";
  r.config.net = "delay=50ms,rate=8mbit";
  StageEnvironment pi, server;
  pi.stage = 0;
  pi.limits = "pi: cpus 0";
  server.stage = 1;
  server.limits = "server: cpus 1";
  r.environment = {pi, server};
  r.latency_ms_mean.mean = latency_ms;
  r.throughput_ips.mean = throughput_ips;
  return r;
}

TEST(ValidateTest, RunIsPredictedForItsOwnPlacementOnItsOwnCondition) {
  // Cut 1: the pi computes block 0 (10 ms), the server blocks 1-2 (5 ms).
  // The 1 MB activation at 8 Mbit/s takes 1000 ms, plus 50 ms of delay:
  // latency 10 + 1000 + 50 + 5 = 1065 ms in an idle pipeline. The credit
  // returns in 50 ms, so the window allows (1065 + 50) / 4 = 278.75 ms per
  // batch; the link's 1000 ms is the bottleneck: 8 images per 1000 ms =
  // 8 img/s. Its 4 batches queue in front of the link: each takes
  // 4 * 1000 - 50 = 3950 ms from stage 1's compute to the sink's end.
  Result<ValidationReport> report = Validate({MeasuredRun(1, 1, 3900, 7.5)}, PiAndServer());

  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->runs.size(), 1u);
  const RunComparison& r = report->runs[0];
  EXPECT_EQ(r.devices, (std::vector<std::string>{"pi", "server"}));
  EXPECT_DOUBLE_EQ(r.predicted_idle_latency_ms, 1065);
  EXPECT_DOUBLE_EQ(r.predicted_latency_ms, 3950);
  EXPECT_DOUBLE_EQ(r.predicted_throughput_ips, 8);
  EXPECT_EQ(r.predicted_bottleneck, "hop 1");
  EXPECT_DOUBLE_EQ(r.latency_error, (3950.0 - 3900) / 3900);
  EXPECT_DOUBLE_EQ(r.throughput_error, (8 - 7.5) / 7.5);
  EXPECT_EQ(report->overall.runs, 1);
  EXPECT_DOUBLE_EQ(report->overall.latency_within_10, 1);
  EXPECT_DOUBLE_EQ(report->overall.throughput_within_10, 1);
}

TEST(ValidateTest, RegretAndFrontMembershipCompareThePredictedChoiceWithTheMeasuredBest) {
  // Cut 2 is predicted better on both (a 500 ms link: 4 * 500 - 50 =
  // 1950 ms, 16 img/s, against 3950 ms, 8 img/s), but measured slower than
  // cut 1: the predicted-fastest choice costs (4000 - 3900) / 3900 of
  // latency, and the measured front has both.
  Result<ValidationReport> report =
      Validate({MeasuredRun(1, 1, 3900, 7.5), MeasuredRun(2, 2, 4000, 15)}, PiAndServer());

  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->groups.size(), 1u);
  const ValidationFigures& f = report->groups[0].figures;
  EXPECT_DOUBLE_EQ(report->runs[1].predicted_idle_latency_ms, 30 + 500 + 50 + 3);
  EXPECT_DOUBLE_EQ(report->runs[1].predicted_latency_ms, 1950);
  EXPECT_DOUBLE_EQ(f.latency_regret, 100.0 / 3900);
  EXPECT_DOUBLE_EQ(f.throughput_regret, 0);
  EXPECT_EQ(f.predicted_front, 1);
  EXPECT_EQ(f.measured_front, 2);
  EXPECT_EQ(f.both_fronts, 1);
  EXPECT_DOUBLE_EQ(f.front_precision(), 1);
  EXPECT_DOUBLE_EQ(f.front_recall(), 0.5);
  EXPECT_FALSE(report->runs[0].predicted_front);
  EXPECT_TRUE(report->runs[0].measured_front);
}

TEST(ValidateTest, ForwardOnlyConditionLeavesTheCreditsUndelayed) {
  RunRecord run = MeasuredRun(1, 2, 600, 15);
  run.config.net = "delay=50ms,rate=8mbit,dir=forward";
  run.config.cuts = {2};
  ValidationOptions o = PiAndServer();
  // Make the window the bottleneck: one batch in flight.
  run.config.window = 1;

  Result<ValidationReport> report = Validate({run}, o);

  ASSERT_TRUE(report.ok()) << report.status().message();
  // 583 ms of latency and no credit delay: the window allows one batch per
  // 583 ms, and nothing queues.
  EXPECT_DOUBLE_EQ(report->runs[0].predicted_throughput_ips, 8 * 1000.0 / 583);
  EXPECT_DOUBLE_EQ(report->runs[0].predicted_latency_ms, 583);
  EXPECT_EQ(report->runs[0].predicted_bottleneck, "window");
}

TEST(ValidateTest, RunsWithoutProfilesAreSkippedSayingWhyAndNoneLeftIsAnError) {
  RunRecord unknown = MeasuredRun(7, 1, 1100, 7.5);
  unknown.environment[1].limits = "";
  unknown.environment[1].hostname = "gpu-box";
  RunRecord other_batch = MeasuredRun(8, 1, 1100, 7.5);
  other_batch.config.batch_size = 4;

  Result<ValidationReport> some =
      Validate({unknown, other_batch, MeasuredRun(9, 1, 1100, 7.5)}, PiAndServer());
  Result<ValidationReport> none = Validate({unknown}, PiAndServer());

  ASSERT_TRUE(some.ok()) << some.status().message();
  ASSERT_EQ(some->runs.size(), 1u);
  ASSERT_EQ(some->skipped.size(), 2u);
  EXPECT_NE(some->skipped[0].find("run 7: stage 2: no profile named gpu-box"), std::string::npos)
      << some->skipped[0];
  EXPECT_NE(some->skipped[1].find("at batch 8"), std::string::npos) << some->skipped[1];
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no measured run could be predicted"), std::string::npos);
}

TEST(ValidateTest, FailedRunsAreLeftOut) {
  RunRecord failed = MeasuredRun(3, 1, 0, 0);
  failed.status = "failed";

  Result<ValidationReport> report = Validate({failed, MeasuredRun(4, 1, 1100, 7.5)}, PiAndServer());

  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->runs.size(), 1u);
  EXPECT_TRUE(report->skipped.empty());
}

}  // namespace
}  // namespace paretopipe
