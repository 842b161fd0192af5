#include "metrics/pipeline_metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace paretopipe {
namespace {

constexpr int64_t kMs = 1'000'000;  // ns.

// A batch whose receive, compute and send follow each other without gaps.
BatchTrace Batch(int64_t id, int64_t compute_begin_ns, int64_t compute_end_ns) {
  BatchTrace b;
  b.batch_id = id;
  b.recv_begin_ns = b.recv_end_ns = compute_begin_ns;
  b.compute_begin_ns = compute_begin_ns;
  b.compute_end_ns = compute_end_ns;
  b.send_begin_ns = b.send_end_ns = compute_end_ns;
  return b;
}

ClockOffset Offset(int64_t offset_ns, int64_t uncertainty_ns = 0) {
  ClockOffset c;
  c.offset_ns = offset_ns;
  c.uncertainty_ns = uncertainty_ns;
  return c;
}

// Two stages, 4 batches: on the orchestrator's timebase batch i enters the
// source at 10 i ms, computes 2 ms there, and the sink computes it 3 ms from
// 10 i + 5 ms, so every end-to-end latency is 8 ms. The source's clock reads
// 1000 ms ahead of the orchestrator's, the sink's 500 ms behind.
std::vector<StageTrace> TwoStages(int64_t source_offset_ns = 1000 * kMs,
                                  int64_t sink_offset_ns = -500 * kMs) {
  StageTrace source, sink;
  source.stage = 0;
  sink.stage = 1;
  source.clock = Offset(source_offset_ns);
  sink.clock = Offset(sink_offset_ns);
  for (int64_t i = 0; i < 4; ++i) {
    const int64_t t = 10 * i * kMs;
    source.batches.push_back(Batch(i, t + source_offset_ns, t + 2 * kMs + source_offset_ns));
    sink.batches.push_back(Batch(i, t + 5 * kMs + sink_offset_ns, t + 8 * kMs + sink_offset_ns));
  }
  return {source, sink};
}

TEST(ClockOffsetTest, KeepsTheMinimumRoundTripSample) {
  // Worker clock = orchestrator + 100 us. Sample 2 has 10 us each way; the
  // others queued 1 ms on the way back, which skews their offsets.
  const int64_t offset = 100'000;
  std::vector<ClockSample> samples = {
      {0, 10'000 + offset, 12'000 + offset, 1'022'000},
      {5'000'000, 5'010'000 + offset, 5'011'000 + offset, 5'021'000},
      {9'000'000, 9'010'000 + offset, 9'011'000 + offset, 10'021'000},
  };
  const ClockOffset c = EstimateClockOffset(samples);
  EXPECT_EQ(c.samples, 3);
  EXPECT_EQ(c.rtt_ns, 20'000);
  EXPECT_EQ(c.offset_ns, offset);
  EXPECT_EQ(c.uncertainty_ns, 10'000);
}

TEST(ClockOffsetTest, RecoversANegativeOffsetFromSymmetricDelays) {
  const int64_t offset = -7'654'321;
  const ClockOffset c =
      EstimateClockOffset({{1'000'000, 1'000'500 + offset, 1'000'600 + offset, 1'001'100}});
  EXPECT_EQ(c.offset_ns, offset);
  EXPECT_EQ(c.rtt_ns, 1'000);
  EXPECT_EQ(c.uncertainty_ns, 500);
}

TEST(ClockOffsetTest, UncertaintyRoundsHalfTheRoundTripUp) {
  const ClockOffset c = EstimateClockOffset({{0, 1, 1, 3}});
  EXPECT_EQ(c.rtt_ns, 3);
  EXPECT_EQ(c.uncertainty_ns, 2);
}

TEST(SummarizeRepeatTest, LatencyCorrectsEachStageClockByItsOffset) {
  std::vector<BatchSample> samples;
  auto summary = SummarizeRepeat(0, TwoStages(), /*warmup=*/0, /*batch_size=*/8, &samples);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  EXPECT_DOUBLE_EQ(summary->latency_ms_mean, 8.0);
  EXPECT_DOUBLE_EQ(summary->latency_ms_p50, 8.0);
  EXPECT_DOUBLE_EQ(summary->latency_ms_p99, 8.0);
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_DOUBLE_EQ(samples[2].latency_ms, 8.0);
  ASSERT_EQ(samples[2].stage_compute_ms.size(), 2u);
  EXPECT_DOUBLE_EQ(samples[2].stage_compute_ms[0], 2.0);
  EXPECT_DOUBLE_EQ(samples[2].stage_compute_ms[1], 3.0);
}

TEST(SummarizeRepeatTest, WithoutWarmupTheWindowStartsAtTheSourcesFirstCompute) {
  // 4 batches * 8 images from 0 ms to 38 ms on the orchestrator's timebase.
  auto summary = SummarizeRepeat(0, TwoStages(), 0, 8, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  EXPECT_DOUBLE_EQ(summary->window_s, 0.038);
  EXPECT_DOUBLE_EQ(summary->throughput_ips, 32 / 0.038);
}

TEST(SummarizeRepeatTest, WarmupBatchesAreExcludedFromLatencyAndThroughput) {
  std::vector<StageTrace> stages = TwoStages();
  // Warm-up batch 0 is slow at the sink (ends at 14 ms, latency 14 ms); no
  // measured number may show it, and the window starts where it ended.
  BatchTrace& slow = stages[1].batches[0];
  slow.compute_end_ns = slow.send_begin_ns = slow.send_end_ns =
      14 * kMs + stages[1].clock.offset_ns;
  auto summary = SummarizeRepeat(0, stages, /*warmup=*/1, 8, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  EXPECT_EQ(summary->measured_batches, 3);
  EXPECT_DOUBLE_EQ(summary->latency_ms_mean, 8.0);
  EXPECT_DOUBLE_EQ(summary->latency_ms_p99, 8.0);
  EXPECT_DOUBLE_EQ(summary->window_s, 0.024);  // 14 ms to 38 ms.
  EXPECT_DOUBLE_EQ(summary->throughput_ips, 24 / 0.024);
}

TEST(SummarizeRepeatTest, ThroughputCountsMeasuredImagesOverTheSinkWindow) {
  // Sink compute ends at 8, 18, 28, 38 ms; warm-up 1: 3 batches of 8 in 30 ms.
  auto summary = SummarizeRepeat(0, TwoStages(), /*warmup=*/1, 8, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  EXPECT_DOUBLE_EQ(summary->window_s, 0.030);
  EXPECT_DOUBLE_EQ(summary->throughput_ips, 24 / 0.030);
}

TEST(SummarizeRepeatTest, ThroughputDependsOnTheSinkClockOnly) {
  std::vector<StageTrace> shifted = TwoStages();
  shifted[1].clock.offset_ns -= 123 * kMs;  // A wrong sink offset moves latency, not throughput.
  auto base = SummarizeRepeat(0, TwoStages(), 1, 8, nullptr);
  auto moved = SummarizeRepeat(0, shifted, 1, 8, nullptr);
  ASSERT_TRUE(base.ok() && moved.ok());
  EXPECT_DOUBLE_EQ(moved->throughput_ips, base->throughput_ips);
  EXPECT_DOUBLE_EQ(moved->window_s, base->window_s);
  EXPECT_NE(moved->latency_ms_mean, base->latency_ms_mean);
}

TEST(SummarizeRepeatTest, WarmupSamplesAreFlagged) {
  std::vector<BatchSample> samples;
  ASSERT_TRUE(SummarizeRepeat(2, TwoStages(), 2, 8, &samples).ok());
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_TRUE(samples[0].warmup);
  EXPECT_TRUE(samples[1].warmup);
  EXPECT_FALSE(samples[2].warmup);
  EXPECT_EQ(samples[3].repeat, 2);
  EXPECT_EQ(samples[3].batch_id, 3);
}

TEST(SummarizeRepeatTest, UncertaintyIsTheSumOfSourceAndSinkUncertainty) {
  std::vector<StageTrace> stages = TwoStages();
  stages[0].clock.uncertainty_ns = 30'000;
  stages[1].clock.uncertainty_ns = 20'000;
  auto summary = SummarizeRepeat(0, stages, 1, 8, nullptr);
  ASSERT_TRUE(summary.ok());
  EXPECT_DOUBLE_EQ(summary->latency_uncertainty_ms, 0.05);
}

TEST(SummarizeRepeatTest, OneStageLatencyIsItsComputeTimeWhateverItsOffset) {
  StageTrace only;
  only.clock = Offset(987 * kMs, 40'000);
  for (int64_t i = 0; i < 3; ++i) {
    only.batches.push_back(Batch(i, 10 * i * kMs, 10 * i * kMs + (i + 1) * kMs));
  }
  auto summary = SummarizeRepeat(0, {only}, 0, 4, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  EXPECT_DOUBLE_EQ(summary->latency_ms_mean, 2.0);  // (1 + 2 + 3) / 3.
  EXPECT_DOUBLE_EQ(summary->latency_ms_p50, 2.0);
  EXPECT_DOUBLE_EQ(summary->latency_uncertainty_ms, 0.0);
  EXPECT_DOUBLE_EQ(summary->window_s, 0.023);  // 0 to 23 ms.
}

TEST(SummarizeRepeatTest, MismatchedBatchIdsAreRejected) {
  std::vector<StageTrace> stages = TwoStages();
  stages[1].batches[2].batch_id = 7;
  auto summary = SummarizeRepeat(0, stages, 1, 8, nullptr);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(summary.status().message().find("stage 1"), std::string::npos)
      << summary.status().message();
}

TEST(SummarizeRepeatTest, StagesWithDifferentBatchCountsAreRejected) {
  std::vector<StageTrace> stages = TwoStages();
  stages[0].batches.pop_back();
  EXPECT_FALSE(SummarizeRepeat(0, stages, 1, 8, nullptr).ok());
}

TEST(SummarizeRepeatTest, WarmupCoveringEveryBatchIsRejected) {
  auto summary = SummarizeRepeat(0, TwoStages(), 4, 8, nullptr);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), Status::Code::kInvalidArgument);
}

TEST(SummarizeRepeatTest, NonPositiveBatchSizeIsRejected) {
  EXPECT_FALSE(SummarizeRepeat(0, TwoStages(), 1, 0, nullptr).ok());
}

TEST(SummarizeRepeatTest, ComputeEndingBeforeItBeginsIsRejectedWithItsPlace) {
  std::vector<StageTrace> stages = TwoStages();
  stages[1].batches[3].compute_end_ns = stages[1].batches[3].compute_begin_ns - 1;
  auto summary = SummarizeRepeat(0, stages, 1, 8, nullptr);
  ASSERT_FALSE(summary.ok());
  EXPECT_NE(summary.status().message().find("stage 1 batch 3: compute ends before it begins"),
            std::string::npos)
      << summary.status().message();
}

TEST(SummarizeRepeatTest, NegativeLatencyWithinTheUncertaintyIsAccepted) {
  std::vector<StageTrace> stages = TwoStages();
  // The sink offset is wrong by 8.5 ms, i.e. latencies of -0.5 ms, inside a 1 ms uncertainty.
  stages[1].clock.offset_ns += 8'500'000;
  stages[1].clock.uncertainty_ns = 1 * kMs;
  auto summary = SummarizeRepeat(0, stages, 1, 8, nullptr);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  EXPECT_DOUBLE_EQ(summary->latency_ms_mean, -0.5);
}

TEST(SummarizeRepeatTest, NegativeLatencyBeyondTheUncertaintyBlamesTheClockOffsets) {
  std::vector<StageTrace> stages = TwoStages();
  stages[1].clock.offset_ns += 20 * kMs;
  auto summary = SummarizeRepeat(0, stages, 1, 8, nullptr);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(summary.status().message().find("clock offsets"), std::string::npos)
      << summary.status().message();
}

TEST(SummarizeRepeatTest, RejectedRepeatAppendsNoSamples) {
  std::vector<StageTrace> stages = TwoStages();
  stages[1].batches[2].batch_id = 7;
  std::vector<BatchSample> samples;
  EXPECT_FALSE(SummarizeRepeat(0, stages, 1, 8, &samples).ok());
  EXPECT_TRUE(samples.empty());
}

TEST(SummarizeStagesTest, StageComputingHalfTheWindowIsHalfIdle) {
  // Computes 5 ms of every 10 ms; with warm-up 1 the window runs from the end
  // of batch 0 (5 ms) to the end of batch 4 (45 ms): 40 ms, 20 ms of compute.
  StageTrace stage;
  for (int64_t i = 0; i < 5; ++i)
    stage.batches.push_back(Batch(i, 10 * i * kMs, (10 * i + 5) * kMs));
  auto stats = SummarizeStages({{stage}}, /*warmup=*/1);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_DOUBLE_EQ((*stats)[0].idle_fraction, 0.5);
  EXPECT_DOUBLE_EQ((*stats)[0].compute_ms_mean, 5.0);
}

TEST(SummarizeStagesTest, QueueRecvSendAndBytesComeFromTheirOwnIntervals) {
  StageTrace stage;
  for (int64_t i = 0; i < 3; ++i) {
    BatchTrace b;
    b.batch_id = i;
    const int64_t t = 100 * i * kMs;
    b.recv_begin_ns = t;
    b.recv_end_ns = t + 2 * kMs;       // recv 2 ms.
    b.compute_begin_ns = t + 3 * kMs;  // queue 1 ms.
    b.compute_end_ns = t + (10 + i) * kMs;
    b.send_begin_ns = t + 20 * kMs;
    b.send_end_ns = t + 24 * kMs;  // send 4 ms.
    b.bytes_out = 1000 * (i + 1);
    stage.batches.push_back(b);
  }
  auto stats = SummarizeStages({{stage}}, /*warmup=*/1);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  const StageStats& s = (*stats)[0];
  EXPECT_DOUBLE_EQ(s.recv_ms_mean, 2.0);
  EXPECT_DOUBLE_EQ(s.queue_ms_mean, 1.0);
  EXPECT_DOUBLE_EQ(s.send_ms_mean, 4.0);
  EXPECT_DOUBLE_EQ(s.compute_ms_mean, 8.5);  // Batches 1 and 2: 8 and 9 ms.
  EXPECT_DOUBLE_EQ(s.compute_ms_p50, 8.5);
  EXPECT_DOUBLE_EQ(s.compute_ms_p95, 8.95);
  EXPECT_DOUBLE_EQ(s.bytes_out_per_batch, 2500.0);
}

TEST(SummarizeStagesTest, CpuIsMeanPerRepeatAndRssIsTheMaximum) {
  std::vector<std::vector<StageTrace>> repeats = {TwoStages(), TwoStages()};
  repeats[0][1].cpu_ns = 10 * kMs;
  repeats[1][1].cpu_ns = 30 * kMs;
  repeats[0][1].peak_rss_bytes = 5000;
  repeats[1][1].peak_rss_bytes = 7000;
  repeats[1][1].clock.uncertainty_ns = 99;
  auto stats = SummarizeStages(repeats, 1);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  ASSERT_EQ(stats->size(), 2u);
  EXPECT_EQ((*stats)[1].stage, 1);
  EXPECT_DOUBLE_EQ((*stats)[1].cpu_ms, 20.0);
  EXPECT_EQ((*stats)[1].peak_rss_bytes, 7000);
  EXPECT_EQ((*stats)[1].clock.uncertainty_ns, 0);  // The first repeat's clock.
  EXPECT_EQ((*stats)[1].clock.offset_ns, -500 * kMs);
}

// A CUDA stage of 4 batches, every 10 ms: the host holds each batch for 8 ms
// (copies and waits included) while the GPU's events time `device_ms` of
// kernels, with copies of 1 ms in and 0.5 ms out. Batch 0, the warm-up, took
// 100 ms on the GPU.
StageTrace CudaStage(double device_ms) {
  StageTrace stage;
  for (int64_t i = 0; i < 4; ++i) {
    BatchTrace b = Batch(i, 10 * i * kMs, (10 * i + 8) * kMs);
    b.device_compute_ns = i == 0 ? 100 * kMs : static_cast<int64_t>(device_ms * kMs);
    b.copy_in_ns = i == 0 ? 100 * kMs : kMs;
    b.copy_out_ns = i == 0 ? 100 * kMs : kMs / 2;
    stage.batches.push_back(b);
  }
  return stage;
}

TEST(SummarizeStagesTest, CudaStageComputeIsTheEventTimeNotTheHostInterval) {
  std::vector<std::vector<StageTrace>> repeats = {{CudaStage(4)}, {CudaStage(6)}};
  repeats[0][0].device_peak_bytes = 300;
  repeats[1][0].device_peak_bytes = 200;
  repeats[0][0].device_utilization_pct = 40;
  repeats[1][0].device_utilization_pct = 60;

  auto stats = SummarizeStages(repeats, /*warmup=*/1);

  ASSERT_TRUE(stats.ok()) << stats.status().message();
  const StageStats& s = (*stats)[0];
  EXPECT_DOUBLE_EQ(s.compute_ms_mean, 5.0);  // 4 ms thrice, 6 ms thrice; not 8.
  EXPECT_DOUBLE_EQ(s.compute_ms_p50, 5.0);
  EXPECT_DOUBLE_EQ(s.compute_ms_p95, 6.0);
  EXPECT_EQ(s.copy_in_ms_mean, 1.0);
  EXPECT_EQ(s.copy_out_ms_mean, 0.5);
  EXPECT_EQ(s.device_peak_bytes, 300);
  EXPECT_EQ(s.device_utilization_pct, 50.0);
  // The host interval still says how long the stage was taken: 24 of 30 ms.
  EXPECT_NEAR(s.idle_fraction, 0.2, 1e-12);
}

TEST(SummarizeStagesTest, CpuStageIsTimedOnTheHostAndHasNoGpuNumbers) {
  auto stats = SummarizeStages({TwoStages()}, /*warmup=*/1);

  ASSERT_TRUE(stats.ok()) << stats.status().message();
  for (const StageStats& s : *stats) {
    EXPECT_DOUBLE_EQ(s.compute_ms_mean, s.stage == 0 ? 2.0 : 3.0);
    EXPECT_FALSE(s.copy_in_ms_mean.has_value());
    EXPECT_FALSE(s.copy_out_ms_mean.has_value());
    EXPECT_FALSE(s.device_peak_bytes.has_value());
    EXPECT_FALSE(s.device_utilization_pct.has_value());
  }
}

TEST(SummarizeStagesTest, UtilizationAveragesOnlyTheRepeatsThatMeasuredIt) {
  std::vector<std::vector<StageTrace>> repeats = {{CudaStage(4)}, {CudaStage(4)}};
  repeats[0][0].device_utilization_pct = -1;  // No NVML then.
  repeats[1][0].device_utilization_pct = 70;

  auto stats = SummarizeStages(repeats, /*warmup=*/1);

  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ((*stats)[0].device_utilization_pct, 70.0);
  EXPECT_FALSE((*stats)[0].device_peak_bytes.has_value());
}

TEST(SummarizeRepeatTest, SamplesOfACudaStageCarryItsEventTime) {
  std::vector<StageTrace> stages = TwoStages();
  for (BatchTrace& b : stages[1].batches) b.device_compute_ns = kMs / 4;
  std::vector<BatchSample> samples;

  ASSERT_TRUE(SummarizeRepeat(0, stages, 1, 8, &samples).ok());

  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(samples[2].stage_compute_ms, (std::vector<double>{2.0, 0.25}));
}

TEST(SummarizeRepeatTest, StageTimingSomeBatchesOnTheGpuAndOthersNotIsRejected) {
  std::vector<StageTrace> stages = TwoStages();
  stages[1].batches[2].device_compute_ns = kMs;

  auto summary = SummarizeRepeat(0, stages, 1, 8, nullptr);

  ASSERT_FALSE(summary.ok());
  EXPECT_NE(summary.status().message().find(
                "stage 1 batch 2: device compute time 1000000 ns, batch 0's is -1"),
            std::string::npos)
      << summary.status().message();
}

TEST(SummarizeStagesTest, RepeatsWithDifferentStageCountsAreRejected) {
  std::vector<std::vector<StageTrace>> repeats = {TwoStages(), {TwoStages()[0]}};
  EXPECT_FALSE(SummarizeStages(repeats, 1).ok());
}

TEST(SummarizeHopsTest, HopTimeCrossesClocksAndSplitsIntoItsParts) {
  // On the orchestrator's timebase the source sends batch i from 10 i + 2 ms
  // (a 1 ms send call, 0.1 ms of it serializing); the sink receives it from
  // 10 i + 4 ms to 10 i + 5 ms, after it waited 0.5 ms in the backend's queue,
  // 0.2 ms of the receive copying it out. So the hop takes 3 ms: 0.1
  // serializing, 0.5 queued, 0.2 deserializing, 2.2 on the wire.
  std::vector<StageTrace> traces = TwoStages(1000 * kMs, -500 * kMs);
  for (int64_t i = 0; i < 4; ++i) {
    BatchTrace& s = traces[0].batches[i];
    s.send_begin_ns = 10 * i * kMs + 2 * kMs + 1000 * kMs;
    s.send_end_ns = s.send_begin_ns + kMs;
    s.send_serialize_ns = kMs / 10;
    s.bytes_out = 4096;
    BatchTrace& r = traces[1].batches[i];
    r.recv_begin_ns = 10 * i * kMs + 4 * kMs - 500 * kMs;
    r.recv_end_ns = r.recv_begin_ns + kMs;
    r.recv_queued_ns = kMs / 2;
    r.recv_deserialize_ns = kMs / 5;
  }
  traces[0].clock.uncertainty_ns = kMs / 100;
  traces[1].clock.uncertainty_ns = kMs / 50;

  Result<std::vector<HopStats>> hops = SummarizeHops({traces}, 1);

  ASSERT_TRUE(hops.ok()) << hops.status().message();
  ASSERT_EQ(hops->size(), 1u);
  const HopStats& h = hops->front();
  EXPECT_EQ(h.hop, 0);
  EXPECT_DOUBLE_EQ(h.bytes_per_frame, 4096);
  EXPECT_NEAR(h.hop_ms_mean, 3.0, 1e-9);
  EXPECT_NEAR(h.hop_ms_p50, 3.0, 1e-9);
  EXPECT_NEAR(h.serialize_ms_mean, 0.1, 1e-9);
  EXPECT_NEAR(h.queue_ms_mean, 0.5, 1e-9);
  EXPECT_NEAR(h.deserialize_ms_mean, 0.2, 1e-9);
  EXPECT_NEAR(h.wire_ms_mean, 2.2, 1e-9);
  EXPECT_NEAR(h.send_ms_mean, 1.0, 1e-9);
  EXPECT_NEAR(h.recv_ms_mean, 1.0, 1e-9);
  EXPECT_NEAR(h.clock_uncertainty_ms, 0.03, 1e-9);
}

TEST(SummarizeHopsTest, PoolsRepeatsEachOnItsOwnOffsetsAndSkipsWarmup) {
  // Repeat 0 as TwoStages (every hop 3 ms); repeat 1 with other offsets and
  // every hop 5 ms. Batch 0 of each is a warm-up that took 100 ms: excluded.
  auto repeat = [](int64_t tx_offset, int64_t rx_offset, int64_t hop_ns, int64_t uncertainty) {
    std::vector<StageTrace> t = TwoStages(tx_offset, rx_offset);
    t[0].clock.uncertainty_ns = t[1].clock.uncertainty_ns = uncertainty;
    for (int64_t i = 0; i < 4; ++i) {
      BatchTrace& s = t[0].batches[i];
      BatchTrace& r = t[1].batches[i];
      s.send_begin_ns = s.send_end_ns = 10 * i * kMs + 2 * kMs + tx_offset;
      r.recv_end_ns = 10 * i * kMs + 2 * kMs + (i == 0 ? 100 * kMs : hop_ns) + rx_offset;
      r.recv_begin_ns = r.recv_end_ns;
      r.compute_begin_ns = std::max(r.compute_begin_ns, r.recv_end_ns);
      r.compute_end_ns = std::max(r.compute_end_ns, r.compute_begin_ns + kMs);
    }
    return t;
  };

  Result<std::vector<HopStats>> hops =
      SummarizeHops({repeat(1000 * kMs, -500 * kMs, 3 * kMs, kMs / 10),
                     repeat(-70 * kMs, 40 * kMs, 5 * kMs, kMs / 4)},
                    1);

  ASSERT_TRUE(hops.ok()) << hops.status().message();
  ASSERT_EQ(hops->size(), 1u);
  EXPECT_NEAR(hops->front().hop_ms_mean, 4.0, 1e-9);
  EXPECT_NEAR(hops->front().hop_ms_p50, 4.0, 1e-9);
  EXPECT_NEAR(hops->front().clock_uncertainty_ms, 0.5, 1e-9);  // The wider repeat's.
}

TEST(SummarizeHopsTest, OneStageHasNoHops) {
  std::vector<StageTrace> one = {TwoStages()[0]};
  Result<std::vector<HopStats>> hops = SummarizeHops({one}, 1);
  ASSERT_TRUE(hops.ok()) << hops.status().message();
  EXPECT_TRUE(hops->empty());
}

TEST(StudentTTest, TabledQuantilesMatchPublishedValues) {
  EXPECT_NEAR(StudentT975(1), 12.706, 1e-3);
  EXPECT_NEAR(StudentT975(2), 4.303, 1e-3);
  EXPECT_NEAR(StudentT975(30), 2.042, 1e-3);
}

TEST(StudentTTest, ExpansionBeyondTheTableIsAccurate) {
  EXPECT_NEAR(StudentT975(100), 1.984, 1e-3);
  EXPECT_NEAR(StudentT975(100), 1.9839715, 1e-6);
  EXPECT_NEAR(StudentT975(31), 2.0395134, 1e-6);  // Where the table hands over.
  EXPECT_NEAR(StudentT975(1'000'000), 1.959964, 1e-5);
}

TEST(EstimateMeanTest, ThreeValuesUseTwoDegreesOfFreedom) {
  const Estimate e = EstimateMean({1, 2, 3});
  EXPECT_EQ(e.n, 3);
  EXPECT_DOUBLE_EQ(e.mean, 2.0);
  ASSERT_TRUE(e.ci_low.has_value() && e.ci_high.has_value());
  const double half_width = StudentT975(2) * 1.0 / std::sqrt(3.0);  // Sample stddev is 1.
  EXPECT_NEAR(*e.ci_high - 2.0, half_width, 1e-12);
  EXPECT_NEAR(2.0 - *e.ci_low, half_width, 1e-12);
  EXPECT_NEAR(half_width, 4.303 / std::sqrt(3.0), 1e-3);
}

TEST(EstimateMeanTest, OneValueHasNoInterval) {
  const Estimate e = EstimateMean({42});
  EXPECT_EQ(e.n, 1);
  EXPECT_DOUBLE_EQ(e.mean, 42);
  EXPECT_FALSE(e.ci_low.has_value());
  EXPECT_FALSE(e.ci_high.has_value());
}

TEST(SummarizeAcrossRepeatsTest, FillsEveryEstimateFromTheRepeats) {
  RunRecord record;
  for (int r = 0; r < 3; ++r) {
    RepeatSummary s;
    s.repeat = r;
    s.latency_ms_mean = 10 + r;
    s.latency_ms_p50 = 9 + r;
    s.latency_ms_p95 = 20 + r;
    s.latency_ms_p99 = 30 + r;
    s.throughput_ips = 100 * (r + 1);
    record.repeats.push_back(s);
  }
  SummarizeAcrossRepeats(&record);
  EXPECT_EQ(record.latency_ms_mean.n, 3);
  EXPECT_DOUBLE_EQ(record.latency_ms_mean.mean, 11);
  EXPECT_DOUBLE_EQ(record.latency_ms_p50.mean, 10);
  EXPECT_DOUBLE_EQ(record.latency_ms_p95.mean, 21);
  EXPECT_DOUBLE_EQ(record.latency_ms_p99.mean, 31);
  EXPECT_DOUBLE_EQ(record.throughput_ips.mean, 200);
  ASSERT_TRUE(record.throughput_ips.ci_high.has_value());
  EXPECT_NEAR(*record.throughput_ips.ci_high - 200, StudentT975(2) * 100 / std::sqrt(3.0), 1e-9);
}

}  // namespace
}  // namespace paretopipe
