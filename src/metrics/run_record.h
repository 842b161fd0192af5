// What one pipeline run measured: its configuration, the machines it ran on,
// the raw per-batch timestamps each stage recorded, and the numbers derived
// from them. docs/metrics.md defines every field.
//
// Owns: the data model of a run, shared by the runtime that fills it, the
// store that keeps it and the analysis that reads it. Must not touch: I/O,
// models, sockets.
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace paretopipe {

// The offset of a worker's steady clock from the orchestrator's, estimated by
// an NTP-style exchange: worker_time ~= orchestrator_time + offset_ns, within
// +- uncertainty_ns (half the round trip of the minimum-RTT sample).
struct ClockOffset {
  int64_t offset_ns = 0;
  int64_t uncertainty_ns = 0;
  int64_t rtt_ns = 0;  // Round trip of the sample kept.
  int samples = 0;     // Exchanges made.
};

// One ping of the exchange: t0 and t3 on the orchestrator's clock (send,
// receive), t1 and t2 on the worker's (receive, reply).
struct ClockSample {
  int64_t t0_ns = 0, t1_ns = 0, t2_ns = 0, t3_ns = 0;
};

// Keeps the sample with the smallest round trip (t3 - t0) - (t2 - t1):
// offset = ((t1 - t0) + (t2 - t3)) / 2, uncertainty = rtt / 2.
// REQUIRES: !samples.empty().
ClockOffset EstimateClockOffset(const std::vector<ClockSample>& samples);

// Timestamps one stage recorded for one batch, on that worker's steady clock
// (ns). The source (stage 1) receives nothing: its recv_begin_ns ==
// recv_end_ns == the time the input batch was ready. The sink (last stage)
// sends nothing: its send_begin_ns == send_end_ns == compute_end_ns.
struct BatchTrace {
  int64_t batch_id = 0;
  int64_t recv_begin_ns = 0;     // First byte of the frame header read (blocking wait excluded).
  int64_t recv_end_ns = 0;       // Last payload byte in memory.
  int64_t compute_begin_ns = 0;  // Segment forward started.
  int64_t compute_end_ns = 0;    // Segment forward returned (CUDA: synchronized).
  int64_t send_begin_ns = 0;     // sendmsg of the header started.
  int64_t send_end_ns = 0;       // Last byte handed to the kernel.
  int64_t bytes_in = 0;          // Payload bytes received (0 at the source).
  int64_t bytes_out = 0;         // Payload bytes sent (0 at the sink).
  // Inside the link's calls (transport/link.h LinkTiming): making the
  // backend's message (within send), copying out of it (within receive), and
  // the time the whole frame waited in the backend's queue before the receive.
  int64_t send_serialize_ns = 0;
  int64_t recv_deserialize_ns = 0;
  int64_t recv_queued_ns = 0;
  // A CUDA stage (docs/metrics.md, "GPU stages"): the batch's compute as
  // CUDA events timed it on the GPU (the segment's kernels, copies
  // excluded), the host-to-device copy of its input and the device-to-host
  // copy of its output, each from a pair of events on the stream that ran
  // it. -1 on a CPU stage, whose compute is compute_end_ns - compute_begin_ns.
  int64_t device_compute_ns = -1;
  int64_t copy_in_ns = -1;
  int64_t copy_out_ns = -1;
};

// Everything one stage reports at the end of a measurement pass.
struct StageTrace {
  int stage = 0;                    // 0-based.
  std::vector<BatchTrace> batches;  // In batch order, warm-up included.
  int64_t cpu_ns = 0;               // Process CPU time (user + system) during the pass.
  int64_t peak_rss_bytes = 0;       // Peak resident set during the pass (VmHWM after a reset).
  ClockOffset clock;                // This worker's clock against the orchestrator's.
  // The sink, when asked (StageConfig::top1): the top-1 class of every image,
  // batches in order, batch b's images at [b * batch, (b + 1) * batch).
  std::vector<int64_t> top1;
  // A CUDA stage: the most device memory LibTorch's allocator held in
  // tensors during the pass (bytes), and the GPU's utilization over the pass
  // (NVML: percent of sample periods in which a kernel ran). -1 when unknown:
  // a CPU stage, or no NVML on the worker.
  int64_t device_peak_bytes = -1;
  double device_utilization_pct = -1;
};

// Per-stage numbers over the measured batches (warm-up excluded).
struct StageStats {
  int stage = 0;
  int block_begin = 0, block_end = 0;  // Blocks [begin, end) this stage ran.
  std::string endpoint;                // Worker address.
  ClockOffset clock;
  double compute_ms_mean = 0, compute_ms_p50 = 0, compute_ms_p95 = 0;
  double queue_ms_mean = 0;        // Received (or input ready) until compute began.
  double recv_ms_mean = 0;         // Receiving one frame, first header byte to last payload byte.
  double send_ms_mean = 0;         // Sending one frame, until the kernel took the last byte.
  double bytes_out_per_batch = 0;  // Payload bytes sent per batch on the link to the next stage.
  // Time in the measurement window this stage did not compute, as a fraction
  // of the window (pipeline bubbles plus communication).
  double idle_fraction = 0;
  double cpu_ms = 0;  // Process CPU time over the pass, all threads.
  int64_t peak_rss_bytes = 0;
  // A CUDA stage (absent on a CPU stage): compute_ms_* are then the GPU time
  // of the segment's kernels from CUDA events; these are the copies around
  // them, the most device memory held in tensors over the repeats and the
  // GPU's mean utilization (absent without NVML). docs/metrics.md.
  std::optional<double> copy_in_ms_mean, copy_out_ms_mean;
  std::optional<int64_t> device_peak_bytes;
  std::optional<double> device_utilization_pct;
};

// The link from stage `hop` to stage `hop + 1`, over the measured batches of
// every repeat (docs/metrics.md, "Per-hop breakdown"). hop_ms runs from the
// sender's send call to the last payload byte in the receiver's memory, read
// off two clocks: it carries clock_uncertainty_ms. It is split into
// serialize + wire + queue + deserialize; send_ms and recv_ms are the time in
// the two calls, which overlap the wire time and each other.
struct HopStats {
  int hop = 0;  // 0-based: from stage hop to stage hop + 1.
  double bytes_per_frame = 0;
  double hop_ms_mean = 0, hop_ms_p50 = 0;
  double serialize_ms_mean = 0;
  double wire_ms_mean = 0;  // hop - serialize - queue - deserialize.
  double queue_ms_mean = 0;
  double deserialize_ms_mean = 0;
  double send_ms_mean = 0, recv_ms_mean = 0;
  double clock_uncertainty_ms = 0;  // Sender's plus receiver's, largest over repeats.
};

// The network between stage `hop` and `hop + 1` as measured just before the
// run (transport/link_probe.h): the condition achieved, beside the one asked
// for (RunConfig::net). docs/metrics.md, "Link probe".
struct LinkMeasurement {
  int hop = 0;
  int pings = 0;
  double rtt_ms_min = 0, rtt_ms_median = 0, rtt_ms_max = 0;
  double bandwidth_mbit = 0;  // Over the second half of the bulk transfer.
  int64_t bulk_bytes = 0;
  double bulk_s = 0;
};

// One measurement pass (a repeat) of a run.
struct RepeatSummary {
  int repeat = 0;  // 0-based.
  int measured_batches = 0;
  double latency_ms_mean = 0, latency_ms_p50 = 0, latency_ms_p95 = 0, latency_ms_p99 = 0;
  double throughput_ips = 0;  // Images per second at the sink over the measurement window.
  double window_s = 0;        // Length of that window.
  // Worst-case error of every latency from clock offsets: the sum of the
  // source's and the sink's uncertainty.
  double latency_uncertainty_ms = 0;
};

// A mean across repeats with its 95% confidence interval (Student t, n - 1
// degrees of freedom). ci_low and ci_high are absent with one repeat.
struct Estimate {
  double mean = 0;
  std::optional<double> ci_low, ci_high;
  int n = 0;
};

// Latency per batch, for the samples table.
struct BatchSample {
  int repeat = 0;
  int64_t batch_id = 0;
  bool warmup = false;
  double latency_ms = 0;
  std::vector<double> stage_compute_ms;  // One per stage.
};

struct RunConfig {
  std::string model;
  int64_t num_classes = 1000;
  uint64_t seed = 0;
  std::string
      weights_digest;     // SHA-256 of the weights file, hex; empty with seeded initialization.
  std::vector<int> cuts;  // Block indices where stages begin (stage i+1 starts at cuts[i]).
  int64_t batch_size = 8;
  int input_side_px = 0;
  int batches = 64;  // Per repeat, warm-up included.
  int warmup = 4;
  int window = 4;
  int repeats = 3;
  std::string backend = "tcp";
  int threads = 1;  // Intra-op threads per worker.
  // Where the stages computed: one name when all stages used the same device
  // ("cpu"), else each stage's in order ("cpu,cuda:0"): a worker's
  // --device. StageEnvironment has each stage's.
  std::string device = "cpu";
  std::vector<std::string> workers;  // Endpoints, in stage order.
  std::string sweep_id;              // Runs of one sweep share it.
  // The network condition asked for (netem/condition.h's canonical text,
  // "none" when none), how it was emulated ("none"; "netem", "userspace"
  // and/or "htb" joined by "+"; "external" when applied outside ParetoPipe
  // and only declared), and where the workers ran ("" or "netns").
  std::string net = "none";
  std::string net_emulation = "none";
  std::string testbed;
  // The source's images: "synthetic" (uniform [0, 1) from the seed), or a
  // dataset with its normalization ("cifar10:/data/cifar mean=0.5,0.5,0.5
  // std=0.5,0.5,0.5", "images:/photos ..."); then the SHA-256 (hex) of the
  // transformed float32 input tensor and how many images it holds (batch b
  // takes images b * batch_size ... modulo input_images). Empty and 0 when
  // synthetic.
  std::string input = "synthetic";
  std::string input_digest;
  int64_t input_images = 0;
};

// Top-1 accuracy of the sink's outputs (argmax of the logits) against the
// input's labels, each distinct image counted once however often batches
// revisited it. docs/metrics.md, "Accuracy".
struct Accuracy {
  int64_t images = 0;   // Distinct labelled images classified.
  int64_t correct = 0;  // Of those, how many had the label as top-1.
  double top1() const { return images > 0 ? static_cast<double>(correct) / images : 0.0; }
};

// The machine one stage ran on.
struct StageEnvironment {
  int stage = 0;
  std::string endpoint;
  std::string hostname, cpu_model, kernel, arch, blas, libtorch_version, compiler;
  int logical_cpus = 0;
  int threads = 0;
  // Where the stage computed ("cpu", "cuda:0") and, for a GPU, its name
  // ("NVIDIA H200"); empty for the CPU, which cpu_model names.
  std::string device = "cpu";
  std::string device_name;
  // How a local worker was limited to stand in for a device ("pi: cpus 0,
  // quota 0.25"); empty when not limited.
  std::string limits;
};

// The planner's prediction for a run's own configuration (docs/planner.md),
// stored beside what the run measured: by `sweep --plan-first` for the runs
// it chose, by `validate --save` for the runs it compared.
struct RunPrediction {
  double latency_ms = 0;       // Steady-state latency (PlanPrediction::steady_latency_ms).
  double idle_latency_ms = 0;  // One batch through an empty pipeline.
  double throughput_ips = 0;
  std::string bottleneck;  // "stage 2", "hop 1", "window".
  // Why the run was measured: "front" (on the predicted front of its
  // sweep's candidates), "near" (within the sweep's --margin of it),
  // "control" (predicted dominated, measured to check the prediction) or
  // "validate" (predicted after the fact).
  std::string role;
  std::string source;  // How it was predicted: the profiles and links, for people.
};

struct RunRecord {
  int64_t id = 0;              // Assigned by the store.
  std::string started_at_utc;  // ISO 8601, e.g. "2026-11-26T19:46:49Z".
  std::string status = "ok";   // "ok" or "failed".
  std::string error;           // Why, when failed.
  RunConfig config;
  std::vector<StageEnvironment> environment;
  std::vector<RepeatSummary> repeats;
  std::vector<StageStats> stages;  // Over all repeats' measured batches.
  std::vector<HopStats> hops;      // stages.size() - 1 links.
  std::vector<LinkMeasurement> links;  // Probed before the run, one per hop.
  std::vector<BatchSample> samples;
  // Across repeats.
  Estimate latency_ms_mean, latency_ms_p50, latency_ms_p95, latency_ms_p99;
  Estimate throughput_ips;
  // Present when the input had labels.
  std::optional<Accuracy> accuracy;
  std::optional<RunPrediction> prediction;  // Present when the planner predicted it.
};

}  // namespace paretopipe
