#include "metrics/pipeline_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <string>

#include "metrics/stats.h"

namespace paretopipe {

namespace {

constexpr double kNsPerMs = 1e6;
constexpr double kNsPerS = 1e9;

double NsToMs(int64_t ns) { return static_cast<double>(ns) / kNsPerMs; }

double Mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

// A batch's compute time at one stage (docs/metrics.md): the GPU's own,
// from CUDA events, on a CUDA stage; the host interval on a CPU stage.
int64_t ComputeNs(const BatchTrace& b) {
  return b.device_compute_ns >= 0 ? b.device_compute_ns : b.compute_end_ns - b.compute_begin_ns;
}

std::string Where(size_t stage, int64_t batch_id) {
  return "stage " + std::to_string(stage) + " batch " + std::to_string(batch_id);
}

// Checks what every summary relies on: the stages saw the same batches, the
// warm-up leaves something to measure, and no interval runs backwards (a
// backwards interval means the runtime recorded its timestamps out of order,
// and every number derived from it would be garbage).
Status ValidateTraces(const std::vector<StageTrace>& stages, int warmup) {
  if (stages.empty()) return Status::InvalidArgument("no stages");
  const std::vector<BatchTrace>& first = stages.front().batches;
  if (warmup < 0) {
    return Status::InvalidArgument("warm-up of " + std::to_string(warmup) + " batches is negative");
  }
  if (first.empty()) return Status::InvalidArgument("stage 0 recorded no batches");
  if (static_cast<size_t>(warmup) >= first.size()) {
    return Status::InvalidArgument("warm-up of " + std::to_string(warmup) +
                                   " batches leaves none of the " + std::to_string(first.size()) +
                                   " batches to measure");
  }
  for (size_t s = 0; s < stages.size(); ++s) {
    const std::vector<BatchTrace>& batches = stages[s].batches;
    if (batches.size() != first.size()) {
      return Status::InvalidArgument("stage " + std::to_string(s) + " recorded " +
                                     std::to_string(batches.size()) +
                                     " batches, stage 0 recorded " + std::to_string(first.size()));
    }
    for (size_t i = 0; i < batches.size(); ++i) {
      const BatchTrace& b = batches[i];
      if (b.batch_id != first[i].batch_id) {
        return Status::InvalidArgument("stage " + std::to_string(s) + " batch #" +
                                       std::to_string(i) + " has id " + std::to_string(b.batch_id) +
                                       ", stage 0 has id " + std::to_string(first[i].batch_id));
      }
      if (b.recv_end_ns < b.recv_begin_ns) {
        return Status::InvalidArgument(Where(s, b.batch_id) + ": receive ends before it begins");
      }
      if (b.compute_begin_ns < b.recv_end_ns) {
        return Status::InvalidArgument(Where(s, b.batch_id) +
                                       ": compute begins before its input was received");
      }
      if (b.compute_end_ns < b.compute_begin_ns) {
        return Status::InvalidArgument(Where(s, b.batch_id) + ": compute ends before it begins");
      }
      if (b.send_end_ns < b.send_begin_ns) {
        return Status::InvalidArgument(Where(s, b.batch_id) + ": send ends before it begins");
      }
      if (b.device_compute_ns < -1 || b.copy_in_ns < -1 || b.copy_out_ns < -1) {
        return Status::InvalidArgument(Where(s, b.batch_id) +
                                       ": a device time is negative but not -1 (none)");
      }
      // A stage's compute times must all mean one thing: a mean over GPU and
      // host times together would be neither.
      if ((b.device_compute_ns >= 0) != (batches.front().device_compute_ns >= 0)) {
        return Status::InvalidArgument(Where(s, b.batch_id) + ": device compute time " +
                                       std::to_string(b.device_compute_ns) + " ns, batch " +
                                       std::to_string(batches.front().batch_id) + "'s is " +
                                       std::to_string(batches.front().device_compute_ns) +
                                       ": a stage times every batch on the GPU or none");
      }
    }
  }
  return Status::Ok();
}

// Coefficients of A&S 26.7.5 (below): t ~= x + g1/v + g2/v^2 + g3/v^3 + g4/v^4.
double CornishFisherT(double x, double v) {
  const double x2 = x * x, x3 = x2 * x, x5 = x3 * x2, x7 = x5 * x2, x9 = x7 * x2;
  const double g1 = (x3 + x) / 4;
  const double g2 = (5 * x5 + 16 * x3 + 3 * x) / 96;
  const double g3 = (3 * x7 + 19 * x5 + 17 * x3 - 15 * x) / 384;
  const double g4 = (79 * x9 + 776 * x7 + 1482 * x5 - 1920 * x3 - 945 * x) / 92160;
  return x + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

}  // namespace

ClockOffset EstimateClockOffset(const std::vector<ClockSample>& samples) {
  ClockOffset best;
  best.samples = static_cast<int>(samples.size());
  bool found = false;
  for (const ClockSample& s : samples) {
    const int64_t rtt = (s.t3_ns - s.t0_ns) - (s.t2_ns - s.t1_ns);
    // The smallest round trip had the least queueing in it, so the least room
    // for asymmetry between the two directions, which is what biases the offset.
    if (found && rtt >= best.rtt_ns) continue;
    found = true;
    best.rtt_ns = rtt;
    best.offset_ns = ((s.t1_ns - s.t0_ns) + (s.t2_ns - s.t3_ns)) / 2;
    // Rounded up so the interval never claims more precision than a sample had.
    best.uncertainty_ns = std::max<int64_t>(0, (rtt + 1) / 2);
  }
  return best;
}

Result<RepeatSummary> SummarizeRepeat(int repeat, const std::vector<StageTrace>& stages, int warmup,
                                      int64_t batch_size, std::vector<BatchSample>* samples) {
  const std::string context = "repeat " + std::to_string(repeat);
  if (batch_size <= 0) {
    return Status::InvalidArgument(context + ": batch size " + std::to_string(batch_size) +
                                   " is not positive");
  }
  PP_RETURN_IF_ERROR(ValidateTraces(stages, warmup).WithContext(context));

  const StageTrace& source = stages.front();
  const StageTrace& sink = stages.back();
  const size_t n = source.batches.size();
  const size_t first_measured = static_cast<size_t>(warmup);
  // With one stage both ends are read off one clock and the offset cancels.
  const int64_t uncertainty_ns =
      stages.size() == 1 ? 0 : source.clock.uncertainty_ns + sink.clock.uncertainty_ns;

  std::vector<BatchSample> new_samples;
  new_samples.reserve(n);
  std::vector<double> latencies_ms;
  latencies_ms.reserve(n - first_measured);
  for (size_t i = 0; i < n; ++i) {
    const BatchTrace& in = source.batches[i];
    const BatchTrace& out = sink.batches[i];
    const int64_t latency_ns = (out.compute_end_ns - sink.clock.offset_ns) -
                               (in.compute_begin_ns - source.clock.offset_ns);
    if (latency_ns < -uncertainty_ns) {
      return Status::InvalidArgument(
          context + " batch " + std::to_string(in.batch_id) + ": end-to-end latency " +
          std::to_string(NsToMs(latency_ns)) + " ms is negative beyond the clock offsets' " +
          "uncertainty of " + std::to_string(NsToMs(uncertainty_ns)) +
          " ms; the clock offsets of stage 0 (" + std::to_string(source.clock.offset_ns) +
          " ns) and stage " + std::to_string(stages.size() - 1) + " (" +
          std::to_string(sink.clock.offset_ns) + " ns) are wrong");
    }
    BatchSample sample;
    sample.repeat = repeat;
    sample.batch_id = in.batch_id;
    sample.warmup = i < first_measured;
    sample.latency_ms = NsToMs(latency_ns);
    sample.stage_compute_ms.reserve(stages.size());
    for (const StageTrace& stage : stages) {
      const BatchTrace& b = stage.batches[i];
      sample.stage_compute_ms.push_back(NsToMs(ComputeNs(b)));
    }
    if (!sample.warmup) latencies_ms.push_back(sample.latency_ms);
    new_samples.push_back(std::move(sample));
  }

  // The window is measured on the sink's clock alone when it can be, so that
  // throughput carries no clock-offset error at all.
  const int64_t window_begin_ns = warmup > 0 ? sink.batches[first_measured - 1].compute_end_ns
                                             : source.batches[0].compute_begin_ns -
                                                   source.clock.offset_ns + sink.clock.offset_ns;
  const int64_t window_ns = sink.batches[n - 1].compute_end_ns - window_begin_ns;
  if (window_ns <= 0) {
    return Status::InvalidArgument(context + ": measurement window of " +
                                   std::to_string(window_ns) + " ns at the sink is not positive");
  }

  RepeatSummary summary;
  summary.repeat = repeat;
  summary.measured_batches = static_cast<int>(latencies_ms.size());
  summary.latency_ms_mean = Mean(latencies_ms);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  summary.latency_ms_p50 = Percentile(latencies_ms, 0.50);
  summary.latency_ms_p95 = Percentile(latencies_ms, 0.95);
  summary.latency_ms_p99 = Percentile(latencies_ms, 0.99);
  summary.window_s = static_cast<double>(window_ns) / kNsPerS;
  summary.throughput_ips = static_cast<double>(summary.measured_batches) *
                           static_cast<double>(batch_size) / summary.window_s;
  summary.latency_uncertainty_ms = NsToMs(uncertainty_ns);

  if (samples != nullptr) {
    samples->insert(samples->end(), std::make_move_iterator(new_samples.begin()),
                    std::make_move_iterator(new_samples.end()));
  }
  return summary;
}

namespace {

// Every repeat has the same stages and traces SummarizeRepeat would accept.
Status ValidateRepeats(const std::vector<std::vector<StageTrace>>& repeats, int warmup) {
  if (repeats.empty()) return Status::InvalidArgument("no repeats to summarize");
  const size_t num_stages = repeats.front().size();
  for (size_t r = 0; r < repeats.size(); ++r) {
    if (repeats[r].size() != num_stages) {
      return Status::InvalidArgument("repeat " + std::to_string(r) + " has " +
                                     std::to_string(repeats[r].size()) + " stages, repeat 0 has " +
                                     std::to_string(num_stages));
    }
    PP_RETURN_IF_ERROR(
        ValidateTraces(repeats[r], warmup).WithContext("repeat " + std::to_string(r)));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<StageStats>> SummarizeStages(const std::vector<std::vector<StageTrace>>& repeats,
                                                int warmup) {
  PP_RETURN_IF_ERROR(ValidateRepeats(repeats, warmup));
  const size_t num_stages = repeats.front().size();

  const size_t first_measured = static_cast<size_t>(warmup);
  std::vector<StageStats> result;
  result.reserve(num_stages);
  for (size_t s = 0; s < num_stages; ++s) {
    std::vector<double> compute_ms, queue_ms, recv_ms, send_ms, bytes_out, idle, cpu_ms;
    std::vector<double> copy_in_ms, copy_out_ms, utilization_pct;
    StageStats stats;
    stats.stage = static_cast<int>(s);
    stats.clock = repeats.front()[s].clock;
    for (const std::vector<StageTrace>& repeat : repeats) {
      const StageTrace& trace = repeat[s];
      const std::vector<BatchTrace>& batches = trace.batches;
      int64_t busy_ns = 0;
      for (size_t i = first_measured; i < batches.size(); ++i) {
        const BatchTrace& b = batches[i];
        // Busy on the host interval even on a CUDA stage: the compute thread
        // is taken until the copy-out is done, whatever the GPU's own time.
        busy_ns += b.compute_end_ns - b.compute_begin_ns;
        compute_ms.push_back(NsToMs(ComputeNs(b)));
        if (b.copy_in_ns >= 0) copy_in_ms.push_back(NsToMs(b.copy_in_ns));
        if (b.copy_out_ns >= 0) copy_out_ms.push_back(NsToMs(b.copy_out_ns));
        queue_ms.push_back(NsToMs(b.compute_begin_ns - b.recv_end_ns));
        recv_ms.push_back(NsToMs(b.recv_end_ns - b.recv_begin_ns));
        send_ms.push_back(NsToMs(b.send_end_ns - b.send_begin_ns));
        bytes_out.push_back(static_cast<double>(b.bytes_out));
      }
      const int64_t window_begin_ns = warmup > 0 ? batches[first_measured - 1].compute_end_ns
                                                 : batches.front().compute_begin_ns;
      const int64_t window_ns = batches.back().compute_end_ns - window_begin_ns;
      // A zero-length window (one batch that took no time) has nothing idle in it.
      const double busy_fraction =
          window_ns > 0 ? static_cast<double>(busy_ns) / static_cast<double>(window_ns) : 1.0;
      idle.push_back(std::clamp(1.0 - busy_fraction, 0.0, 1.0));
      cpu_ms.push_back(NsToMs(trace.cpu_ns));
      stats.peak_rss_bytes = std::max(stats.peak_rss_bytes, trace.peak_rss_bytes);
      if (trace.device_peak_bytes >= 0) {
        stats.device_peak_bytes =
            std::max(stats.device_peak_bytes.value_or(0), trace.device_peak_bytes);
      }
      if (trace.device_utilization_pct >= 0) {
        utilization_pct.push_back(trace.device_utilization_pct);
      }
    }
    stats.compute_ms_mean = Mean(compute_ms);
    std::sort(compute_ms.begin(), compute_ms.end());
    stats.compute_ms_p50 = Percentile(compute_ms, 0.50);
    stats.compute_ms_p95 = Percentile(compute_ms, 0.95);
    stats.queue_ms_mean = Mean(queue_ms);
    stats.recv_ms_mean = Mean(recv_ms);
    stats.send_ms_mean = Mean(send_ms);
    stats.bytes_out_per_batch = Mean(bytes_out);
    stats.idle_fraction = Mean(idle);
    stats.cpu_ms = Mean(cpu_ms);
    if (!copy_in_ms.empty()) stats.copy_in_ms_mean = Mean(copy_in_ms);
    if (!copy_out_ms.empty()) stats.copy_out_ms_mean = Mean(copy_out_ms);
    if (!utilization_pct.empty()) stats.device_utilization_pct = Mean(utilization_pct);
    result.push_back(std::move(stats));
  }
  return result;
}

Result<std::vector<HopStats>> SummarizeHops(const std::vector<std::vector<StageTrace>>& repeats,
                                            int warmup) {
  PP_RETURN_IF_ERROR(ValidateRepeats(repeats, warmup));
  const size_t num_stages = repeats.front().size();
  std::vector<HopStats> result;
  for (size_t h = 0; h + 1 < num_stages; ++h) {
    std::vector<double> hop_ms, serialize_ms, queue_ms, deserialize_ms, send_ms, recv_ms, bytes;
    for (const std::vector<StageTrace>& repeat : repeats) {
      const StageTrace& tx = repeat[h];
      const StageTrace& rx = repeat[h + 1];
      for (size_t i = static_cast<size_t>(warmup); i < tx.batches.size(); ++i) {
        const BatchTrace& s = tx.batches[i];
        const BatchTrace& r = rx.batches[i];
        hop_ms.push_back(NsToMs((r.recv_end_ns - rx.clock.offset_ns) -
                                (s.send_begin_ns - tx.clock.offset_ns)));
        serialize_ms.push_back(NsToMs(s.send_serialize_ns));
        queue_ms.push_back(NsToMs(r.recv_queued_ns));
        deserialize_ms.push_back(NsToMs(r.recv_deserialize_ns));
        send_ms.push_back(NsToMs(s.send_end_ns - s.send_begin_ns));
        recv_ms.push_back(NsToMs(r.recv_end_ns - r.recv_begin_ns));
        bytes.push_back(static_cast<double>(s.bytes_out));
      }
    }
    HopStats hop;
    hop.hop = static_cast<int>(h);
    hop.bytes_per_frame = Mean(bytes);
    hop.hop_ms_mean = Mean(hop_ms);
    hop.serialize_ms_mean = Mean(serialize_ms);
    hop.queue_ms_mean = Mean(queue_ms);
    hop.deserialize_ms_mean = Mean(deserialize_ms);
    hop.wire_ms_mean =
        hop.hop_ms_mean - hop.serialize_ms_mean - hop.queue_ms_mean - hop.deserialize_ms_mean;
    hop.send_ms_mean = Mean(send_ms);
    hop.recv_ms_mean = Mean(recv_ms);
    std::sort(hop_ms.begin(), hop_ms.end());
    hop.hop_ms_p50 = Percentile(hop_ms, 0.50);
    // Each repeat has its own offsets: the bound of the pooled hops is the widest.
    int64_t uncertainty_ns = 0;
    for (const std::vector<StageTrace>& repeat : repeats) {
      uncertainty_ns = std::max(uncertainty_ns, repeat[h].clock.uncertainty_ns +
                                                    repeat[h + 1].clock.uncertainty_ns);
    }
    hop.clock_uncertainty_ms = NsToMs(uncertainty_ns);
    result.push_back(hop);
  }
  return result;
}

double StudentT975(int degrees_of_freedom) {
  // t_{0.975} for 1..30 degrees of freedom to 9 digits, as scipy.stats.t.ppf
  // gives them (the 3-digit rows of any printed t table agree). A small
  // sample is where an expansion in 1/df is least accurate, so it is tabled.
  static constexpr double kTable[30] = {
      12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
      2.364624252,  2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830,
      2.160368656,  2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.100922040,
      2.093024054,  2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
      2.059538553,  2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456};
  if (degrees_of_freedom < 1) return std::numeric_limits<double>::quiet_NaN();
  if (degrees_of_freedom <= 30) return kTable[degrees_of_freedom - 1];
  // Beyond the table, the Cornish-Fisher expansion of t in terms of the normal
  // quantile z_{0.975} = 1.959964 (Abramowitz & Stegun, Handbook of
  // Mathematical Functions, 26.7.5); its error above 30 degrees of freedom
  // is below 1e-5.
  return CornishFisherT(1.959964, static_cast<double>(degrees_of_freedom));
}

Estimate EstimateMean(const std::vector<double>& values) {
  Estimate estimate;
  estimate.n = static_cast<int>(values.size());
  if (values.empty()) return estimate;
  estimate.mean = Mean(values);
  if (values.size() < 2) return estimate;
  double sum_sq = 0;
  for (double v : values) sum_sq += (v - estimate.mean) * (v - estimate.mean);
  const double n = static_cast<double>(values.size());
  const double stddev = std::sqrt(sum_sq / (n - 1));
  const double half_width = StudentT975(estimate.n - 1) * stddev / std::sqrt(n);
  estimate.ci_low = estimate.mean - half_width;
  estimate.ci_high = estimate.mean + half_width;
  return estimate;
}

void SummarizeAcrossRepeats(RunRecord* record) {
  std::vector<double> mean, p50, p95, p99, throughput;
  for (const RepeatSummary& r : record->repeats) {
    mean.push_back(r.latency_ms_mean);
    p50.push_back(r.latency_ms_p50);
    p95.push_back(r.latency_ms_p95);
    p99.push_back(r.latency_ms_p99);
    throughput.push_back(r.throughput_ips);
  }
  record->latency_ms_mean = EstimateMean(mean);
  record->latency_ms_p50 = EstimateMean(p50);
  record->latency_ms_p95 = EstimateMean(p95);
  record->latency_ms_p99 = EstimateMean(p99);
  record->throughput_ips = EstimateMean(throughput);
}

}  // namespace paretopipe
