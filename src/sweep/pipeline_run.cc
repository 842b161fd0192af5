#include "sweep/pipeline_run.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "metrics/pipeline_metrics.h"
#include "metrics/top1.h"
#include "runtime/input_set.h"

namespace paretopipe {

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<std::vector<int64_t>> StageInputShapes(const ModelAnalysis& analysis,
                                                   int64_t batch_size,
                                                   const std::vector<int>& cuts) {
  std::vector<std::vector<int64_t>> shapes;
  shapes.push_back(
      {batch_size, analysis.entry.input_channels, analysis.input_side_px, analysis.input_side_px});
  for (int cut : cuts) {
    std::vector<int64_t> shape = analysis.blocks[cut - 1].output_shape;  // At batch 1.
    shape[0] = batch_size;
    shapes.push_back(std::move(shape));
  }
  return shapes;
}

std::vector<std::vector<std::vector<int64_t>>> StageExtraInputShapes(
    const ModelAnalysis& analysis, int64_t batch_size, const std::vector<int>& cuts) {
  std::vector<std::vector<std::vector<int64_t>>> shapes(1);
  for (int cut : cuts) {
    std::vector<std::vector<int64_t>> extras = analysis.blocks[cut - 1].extra_output_shapes;
    for (std::vector<int64_t>& shape : extras) shape[0] = batch_size;
    shapes.push_back(std::move(extras));
  }
  return shapes;
}

namespace {

// How long the orchestrator waits, after a stage reported that its peer
// went away, for the stage at fault to report its own error before it
// interrupts the rest. Neighbours of a failed stage see it within
// milliseconds on tcp and grpc.
constexpr std::chrono::milliseconds kRootCauseGrace{2000};

// Waits for every stage's pass at once. A failure makes the others stop
// soon (their sessions are interrupted, so the workers cancel their passes)
// rather than each waiting for its stall timeout: not every backend tells a
// stage promptly that its peer is gone. Reports the root cause: a stage's
// own failure (a malformed frame, a compute error) over the "peer closed"
// (Unavailable) its neighbours saw after it, which is why an Unavailable
// first gets a grace period for the real cause to arrive.
Status FinishAll(const std::vector<WorkerClient*>& workers, Deadline deadline,
                 std::vector<KeptOutput>* outputs, std::vector<StageTrace>* traces) {
  const int stages = static_cast<int>(workers.size());
  std::mutex mu;
  std::condition_variable cv;
  Status first_error;
  int finished = 0;
  std::vector<bool> replied(stages, false);
  std::vector<std::thread> threads;
  for (int s = 0; s < stages; ++s) {
    threads.emplace_back([&, s] {
      if (outputs && s == stages - 1) outputs->clear();
      Result<StageTrace> trace =
          workers[s]->FinishPass(s == stages - 1 ? outputs : nullptr, deadline);
      std::lock_guard<std::mutex> lock(mu);
      ++finished;
      replied[s] = true;
      cv.notify_all();
      if (trace.ok()) {
        (*traces)[s] = std::move(trace).value();
        (*traces)[s].stage = s;
      } else if (first_error.ok() || (first_error.code() == Status::Code::kUnavailable &&
                                      trace.status().code() != Status::Code::kUnavailable)) {
        first_error = trace.status();
      }
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished == stages || !first_error.ok(); });
    if (finished < stages) {
      if (first_error.code() == Status::Code::kUnavailable) {
        cv.wait_for(lock, kRootCauseGrace, [&] {
          return finished == stages || first_error.code() != Status::Code::kUnavailable;
        });
      }
      for (int t = 0; t < stages; ++t) {
        if (!replied[t]) workers[t]->Interrupt();
      }
    }
  }
  for (std::thread& t : threads) t.join();
  return first_error;
}

Status RunPasses(const std::vector<WorkerClient*>& workers, const RunPlan& plan, RunRecord* record,
                 std::vector<KeptOutput>* outputs, RunTiming* timing) {
  const RunConfig& cfg = plan.config;
  const int stages = static_cast<int>(workers.size());
  // Each stage's address for this run's backend: the host the orchestrator
  // reaches the worker at, the port the worker reports for the backend.
  std::vector<std::string> backend_endpoints;
  for (int s = 0; s < stages; ++s) {
    PP_ASSIGN_OR_RETURN(WorkerInfo info, workers[s]->Info());
    const MachineInfo& m = info.machine;
    auto port = info.backend_ports.find(cfg.backend);
    if (port == info.backend_ports.end()) {
      std::vector<std::string> offered;
      for (const auto& [name, unused_port] : info.backend_ports) offered.push_back(name);
      return Status::InvalidArgument(
          fmt::format("worker {} does not offer the {} backend: its build has {}",
                      workers[s]->endpoint().ToString(), cfg.backend, fmt::join(offered, ", ")));
    }
    // Port 0: the backend has no fixed port (torch meets through a per-run
    // rendezvous), so there is no address to pass.
    backend_endpoints.push_back(
        port->second ? Endpoint{workers[s]->endpoint().host, port->second}.ToString() : "");
    StageEnvironment env;
    env.stage = s;
    env.endpoint = workers[s]->endpoint().ToString();
    env.hostname = m.hostname;
    env.cpu_model = m.cpu_model;
    env.kernel = m.kernel;
    env.arch = m.arch;
    env.blas = m.blas;
    env.libtorch_version = m.libtorch_version;
    env.compiler = m.compiler;
    env.logical_cpus = m.logical_cpus;
    env.threads = info.threads;
    env.device = info.device;
    env.device_name = info.device_name;
    record->environment.push_back(env);
  }
  if (record->config.threads <= 0) record->config.threads = record->environment[0].threads;
  std::vector<std::string> devices;
  for (const StageEnvironment& env : record->environment) devices.push_back(env.device);
  record->config.device = StageDevicesText(devices);
  for (int s = 0; s < stages; ++s) {
    StageConfig c;
    c.run_id = plan.run_id;
    c.model = cfg.model;
    c.num_classes = cfg.num_classes;
    c.seed = cfg.seed;
    c.weights_digest = cfg.weights_digest;
    const std::string* module = nullptr;
    if (!plan.stage_modules.empty()) {
      c.module_digest = plan.stage_modules[s].digest;
      module = plan.stage_modules[s].bytes.get();
    }
    c.stage = s;
    c.stages = stages;
    c.block_begin = s == 0 ? 0 : cfg.cuts[s - 1];
    c.block_end = s == stages - 1 ? plan.num_blocks : cfg.cuts[s];
    c.input_shape = plan.stage_input_shapes[s];
    if (s < static_cast<int>(plan.stage_extra_input_shapes.size())) {
      c.extra_input_shapes = plan.stage_extra_input_shapes[s];
    }
    c.batches = cfg.batches;
    c.window = cfg.window;
    c.backend = cfg.backend;
    c.self = workers[s]->endpoint().ToString();
    c.next = s + 1 < stages ? backend_endpoints[s + 1] : "";
    c.source = backend_endpoints[0];
    c.device = record->environment[s].device;
    c.input_seed = plan.input_seed;
    if (s == 0 && plan.inputs) {
      c.input_digest = plan.inputs->digest;
      c.input_images = plan.inputs->count();
    }
    c.keep_outputs = plan.keep_outputs;
    c.top1 = s == stages - 1 && !plan.labels.empty();
    c.stall_timeout = plan.stall_timeout;
    PP_RETURN_IF_ERROR(workers[s]->Configure(c, plan.weights_path,
                                             s == 0 ? plan.inputs.get() : nullptr, module));
  }
  PP_ASSIGN_OR_RETURN(uint16_t rendezvous_port, workers[0]->OpenLinks(""));
  const std::string rendezvous =
      rendezvous_port ? Endpoint{workers[0]->endpoint().host, rendezvous_port}.ToString() : "";
  for (int s = 1; s < stages; ++s) PP_RETURN_IF_ERROR(workers[s]->OpenLinks(rendezvous).status());

  std::vector<std::vector<StageTrace>> repeats;
  for (int r = 0; r < cfg.repeats; ++r) {
    std::vector<ClockOffset> clocks;
    for (WorkerClient* w : workers) {
      PP_ASSIGN_OR_RETURN(ClockOffset clock, w->SyncClock(plan.clock_samples));
      clocks.push_back(clock);
    }
    const auto pass_begin = std::chrono::steady_clock::now();
    // A pass ends when its stages do; each stage gives up after its stall
    // timeout per wait, so this bound is reached only if a worker hangs.
    const Deadline pass_deadline = DeadlineIn(plan.stall_timeout * (cfg.batches + 2));
    // Sink first: every stage is waiting before the source makes its first batch.
    for (int s = stages - 1; s >= 0; --s) {
      Status started = workers[s]->StartPass(r);
      if (!started.ok()) {
        // The stages already started would wait for input until their stall
        // timeout: end their sessions, which cancels their passes.
        for (int t = stages - 1; t > s; --t) workers[t]->Abandon();
        return started;
      }
    }
    std::vector<StageTrace> traces(stages);
    PP_RETURN_IF_ERROR(
        FinishAll(workers, pass_deadline, outputs, &traces).WithContext(fmt::format("repeat {}", r)));
    for (int s = 0; s < stages; ++s) traces[s].clock = clocks[s];
    timing->passes_s +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_begin).count();
    PP_ASSIGN_OR_RETURN(RepeatSummary summary,
                        SummarizeRepeat(r, traces, cfg.warmup, cfg.batch_size, &record->samples));
    record->repeats.push_back(summary);
    repeats.push_back(std::move(traces));
  }
  if (!plan.labels.empty()) {
    std::vector<std::vector<int64_t>> top1;
    for (const std::vector<StageTrace>& traces : repeats) top1.push_back(traces.back().top1);
    PP_ASSIGN_OR_RETURN(record->accuracy, ScoreTop1(top1, cfg.batch_size, plan.labels));
  }
  PP_ASSIGN_OR_RETURN(record->stages, SummarizeStages(repeats, cfg.warmup));
  PP_ASSIGN_OR_RETURN(record->hops, SummarizeHops(repeats, cfg.warmup));
  for (int s = 0; s < stages; ++s) {
    StageStats& st = record->stages[s];
    st.block_begin = s == 0 ? 0 : cfg.cuts[s - 1];
    st.block_end = s == stages - 1 ? static_cast<int>(plan.num_blocks) : cfg.cuts[s];
    st.endpoint = workers[s]->endpoint().ToString();
  }
  SummarizeAcrossRepeats(record);
  return Status::Ok();
}

}  // namespace

std::string StageDevicesText(const std::vector<std::string>& devices) {
  if (!devices.empty() && std::all_of(devices.begin(), devices.end(),
                                      [&](const std::string& d) { return d == devices[0]; })) {
    return devices[0];
  }
  return fmt::format("{}", fmt::join(devices, ","));
}

Result<RunRecord> RunPipeline(const std::vector<WorkerClient*>& workers, const RunPlan& plan,
                              std::vector<KeptOutput>* outputs, RunTiming* timing) {
  const auto begin = std::chrono::steady_clock::now();
  RunTiming local_timing;
  if (timing == nullptr) timing = &local_timing;
  *timing = RunTiming();
  const RunConfig& cfg = plan.config;
  if (workers.empty() || cfg.cuts.size() + 1 != workers.size() ||
      plan.stage_input_shapes.size() != workers.size()) {
    return Status::InvalidArgument(fmt::format("{} cuts need {} workers, got {}", cfg.cuts.size(),
                                               cfg.cuts.size() + 1, workers.size()));
  }
  if (!plan.stage_modules.empty() && plan.stage_modules.size() != workers.size()) {
    return Status::InvalidArgument(fmt::format("run plan: {} stage modules for {} stages",
                                               plan.stage_modules.size(), workers.size()));
  }
  if (plan.inputs && (plan.config.input_digest != plan.inputs->digest ||
                      (!plan.labels.empty() &&
                       static_cast<int64_t>(plan.labels.size()) != plan.inputs->count()))) {
    return Status::InvalidArgument(
        "run plan: the input set's digest or label count does not match its configuration");
  }
  if (cfg.warmup >= cfg.batches) {
    return Status::InvalidArgument(fmt::format(
        "--warmup {} leaves no measured batch of --batches {}", cfg.warmup, cfg.batches));
  }
  RunRecord record;
  record.config = cfg;
  record.started_at_utc = UtcNow();
  Status s = RunPasses(workers, plan, &record, outputs, timing);
  // End the run on every worker, also after a failure, so they drop its links.
  for (WorkerClient* w : workers) w->EndRun();
  timing->total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  PP_RETURN_IF_ERROR(s);
  return record;
}

}  // namespace paretopipe
