// Derives a run's numbers from the raw timestamps its stages recorded.
//
// Owns: the arithmetic of latency, throughput and per-stage statistics, as
// docs/metrics.md defines them. Must not touch: clocks (it is given
// timestamps), sockets, the store.
// Thread safety: pure functions.
#pragma once

#include <vector>

#include "metrics/run_record.h"
#include "util/status.h"

namespace paretopipe {

// Summarizes one measurement pass. `stages` are in stage order, each with the
// same batch ids in the same order; batches [0, warmup) are excluded.
//  - latency of a batch: (sink compute_end - sink offset) - (source
//    compute_begin - source offset), in ms, on the orchestrator's timebase;
//  - throughput: (measured batches * batch_size) / (sink compute_end of the
//    last batch - sink compute_end of the last warm-up batch), on the sink's
//    clock alone, so no offset enters it. With warmup == 0 the window starts
//    at the source's compute_begin of batch 0 (offset-corrected).
//  - latency_uncertainty_ms: source plus sink uncertainty; 0 with one stage,
//    whose latency is read off a single clock.
// Appends one BatchSample per batch (warm-up flagged) to `samples` on success
// only, each stage's compute time in it as SummarizeStages's compute_ms;
// `samples` may be nullptr.
// Errors: InvalidArgument when stages disagree on batches, when there are
// no measured batches, when warmup >= batches, when batch_size <= 0, when a
// recv, queue, compute or send interval is negative, when a device time is
// below -1, when a stage times some batches on the GPU and others not, or
// when a latency is more negative than its uncertainty (the clock offsets
// are wrong).
Result<RepeatSummary> SummarizeRepeat(int repeat, const std::vector<StageTrace>& stages, int warmup,
                                      int64_t batch_size, std::vector<BatchSample>* samples);

// Per-stage statistics over the measured batches of every repeat.
// `repeats[r][s]` is stage s's trace in repeat r. Fills stage, clock, timing,
// bytes, idle_fraction, cpu_ms (mean per repeat), peak_rss_bytes (max); the
// caller fills block ranges and endpoints. `clock` is the first repeat's.
// idle_fraction is 1 - (compute time of the measured batches) / (window),
// with the window on the stage's own clock from the compute_end of the last
// warm-up batch (compute_begin of batch 0 when warmup == 0) to the
// compute_end of the last batch; averaged over repeats, clamped to [0, 1].
// On a CUDA stage (device_compute_ns >= 0) compute_ms_* are of
// device_compute_ns, while idle_fraction keeps the host interval
// compute_end - compute_begin; copy_in_ms_mean and copy_out_ms_mean are the
// means of the batches' copies that are >= 0, device_peak_bytes the largest
// and device_utilization_pct the mean of the repeats' values that are >= 0;
// each stays absent when there are none (a CPU stage).
// Errors: InvalidArgument on no repeats, repeats with different numbers of
// stages, or any repeat SummarizeRepeat would reject for its traces.
Result<std::vector<StageStats>> SummarizeStages(const std::vector<std::vector<StageTrace>>& repeats,
                                                int warmup);

// Per-hop statistics over the measured batches of every repeat, for the
// links between consecutive stages (HopStats in run_record.h): hop_ms of a
// batch is (receiver recv_end - receiver offset) - (sender send_begin -
// sender offset), each repeat with its own offsets. Empty for one stage.
// Errors: as SummarizeStages.
Result<std::vector<HopStats>> SummarizeHops(const std::vector<std::vector<StageTrace>>& repeats,
                                            int warmup);

// Mean and 95% confidence interval (Student t) of `values`: mean +- t * s /
// sqrt(n), s the sample standard deviation. No interval when n == 1.
// REQUIRES: !values.empty().
Estimate EstimateMean(const std::vector<double>& values);

// The 0.975 quantile of Student's t distribution with `degrees_of_freedom`
// degrees of freedom: exact to 1e-9 for 1..30, within 1e-5 above.
// REQUIRES: degrees_of_freedom >= 1.
double StudentT975(int degrees_of_freedom);

// Fills the across-repeat estimates of `record` from record->repeats (each
// repeat's statistic is one value; n == 0 everywhere when there are none).
void SummarizeAcrossRepeats(RunRecord* record);

}  // namespace paretopipe
