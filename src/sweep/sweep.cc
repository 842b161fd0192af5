#include "sweep/sweep.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <ostream>
#include <random>
#include <sstream>
#include <thread>

#include "control/stage_transport.h"
#include "control/worker_client.h"
#include "model/cuts.h"
#include "model/segment.h"
#include "model/zoo.h"
#include "netem/condition.h"
#include "netem/tc.h"
#include "netem/testbed.h"
#include "runtime/input_set.h"
#include "store/store.h"
#include "sweep/device_limits.h"
#include "sweep/local_workers.h"
#include "sweep/output_check.h"
#include "sweep/pipeline_run.h"
#include "sweep/plan_first_sweep.h"
#include "util/auth.h"
#include "util/cpus.h"
#include "util/digest.h"

namespace paretopipe {
namespace {

// Workers started by hand may take a moment; local ones announce their port
// only once listening.
constexpr std::chrono::seconds kConnectTimeout{20};
// One-way delays from which a sweep suggests a longer warm-up, and the
// warm-up that covered TCP's ramp at a 200 ms round trip (docs/planner.md).
constexpr std::chrono::milliseconds kLongDelay{25};
constexpr int kLongDelayWarmup = 10;

Result<std::vector<int>> ParseTuple(const std::string& text, int64_t num_blocks, int stages) {
  std::vector<int> cuts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ':')) {
    try {
      size_t used = 0;
      const int v = std::stoi(part, &used);
      if (used != part.size()) throw std::invalid_argument(part);
      cuts.push_back(v);
    } catch (const std::exception&) {
      return Status::InvalidArgument(fmt::format("--cuts: '{}' is not a cut index", part));
    }
  }
  if (static_cast<int>(cuts.size()) != stages - 1) {
    return Status::InvalidArgument(
        fmt::format("--cuts: '{}' has {} cut(s); {} stages need {} (write tuples as 3:9)", text,
                    cuts.size(), stages, stages - 1));
  }
  for (size_t i = 0; i < cuts.size(); ++i) {
    if (cuts[i] < 1 || cuts[i] > num_blocks - 1 || (i > 0 && cuts[i] <= cuts[i - 1])) {
      return Status::InvalidArgument(fmt::format(
          "--cuts: '{}' is not valid: cuts must increase within 1..{} (see `paretopipe cuts`)",
          text, num_blocks - 1));
    }
  }
  return cuts;
}

void Enumerate(int first, int64_t num_blocks, int left, std::vector<int>* current,
               std::vector<std::vector<int>>* out, size_t limit) {
  if (out->size() > limit) return;
  if (left == 0) {
    out->push_back(*current);
    return;
  }
  for (int c = first; c <= num_blocks - left; ++c) {
    current->push_back(c);
    Enumerate(c + 1, num_blocks, left - 1, current, out, limit);
    current->pop_back();
  }
}

std::string ClockText(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

struct Condition {
  NetCondition value;
  std::string text;  // Canonical.
};

Result<std::vector<Condition>> ParseConditions(const std::vector<std::string>& texts) {
  std::vector<Condition> out;
  for (const std::string& t : texts.empty() ? std::vector<std::string>{"none"} : texts) {
    PP_ASSIGN_OR_RETURN(NetCondition c, ParseNetCondition(t));
    const std::string text = FormatNetCondition(c);
    for (const Condition& o : out) {
      if (o.text == text) {
        return Status::InvalidArgument(fmt::format("--net '{}' given twice", text));
      }
    }
    out.push_back(Condition{c, text});
  }
  return out;
}

// What makes two runs the same measurement, for --resume: everything that
// changes the numbers, not where the workers listened (local workers get new
// ports) nor when it ran. `threads` is left out because a run stores the
// workers' actual count where the plan said 0 ("as many as available").
std::string RunKey(const RunConfig& c) {
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", c.model, c.num_classes,
                     c.seed, c.weights_digest, fmt::join(c.cuts, ":"), c.batch_size,
                     c.input_side_px, c.batches, c.warmup, c.window, c.repeats, c.backend, c.device,
                     c.net, c.testbed, c.input_digest, c.input_images);
}

// The stored runs of the sweep --resume names, by RunKey.
struct ResumeState {
  std::string sweep_id;
  std::map<std::string, RunRecord> done;               // Key -> a successful run.
  std::map<std::string, std::vector<int64_t>> failed;  // Key -> ids of its failed runs.
  size_t stored = 0;
};

Result<ResumeState> LoadResumeState(const ResultStore& store, const std::string& resume,
                                    const std::string& model) {
  RunFilter filter;
  if (resume == "last") {
    filter.model = model;
  } else {
    filter.sweep_id = resume;
  }
  PP_ASSIGN_OR_RETURN(std::vector<RunRecord> runs, store.LoadRuns(filter));
  if (runs.empty()) {
    return Status::NotFound(
        resume == "last"
            ? fmt::format("--resume: {} holds no sweep of {} to resume", store.path(), model)
            : fmt::format("--resume: {} holds no sweep {}", store.path(), resume));
  }
  ResumeState state;
  state.sweep_id = runs.back().config.sweep_id;  // Runs come in id order: the latest sweep.
  for (const RunRecord& r : runs) {
    if (r.config.sweep_id != state.sweep_id) continue;
    ++state.stored;
    const std::string key = RunKey(r.config);
    if (r.status == "ok") {
      state.done.emplace(key, r);
    } else {
      state.failed[key].push_back(r.id);
    }
  }
  return state;
}

// The least time the activations of every run need at `rate_bits_per_s`:
// what a user should know before a sweep over a slow link starts.
double TransferFloorSeconds(const std::vector<std::vector<int64_t>>& shapes_per_stage,
                            int batches_per_run, int64_t rate_bits_per_s) {
  double bytes = 0;
  for (size_t i = 1; i < shapes_per_stage.size(); ++i) {
    double n = 4;  // float32
    for (int64_t d : shapes_per_stage[i]) n *= static_cast<double>(d);
    bytes += n;
  }
  return bytes * 8 * batches_per_run / static_cast<double>(rate_bits_per_s);
}

}  // namespace

void SweepInterrupt::Request() {
  requested_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  for (WorkerClient* c : clients_) c->Interrupt();
}

void SweepInterrupt::Attach(const std::vector<WorkerClient*>& clients) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_ = clients;
  if (requested_) {
    for (WorkerClient* c : clients_) c->Interrupt();
  }
}

Result<std::vector<std::vector<int>>> ParseCutList(const std::string& text, int64_t num_blocks,
                                                   int stages, int max_runs) {
  if (stages < 2) return Status::InvalidArgument("a pipeline needs at least 2 workers");
  std::vector<std::vector<int>> out;
  if (text == "all") {
    std::vector<int> current;
    Enumerate(1, num_blocks, stages - 1, &current, &out, static_cast<size_t>(max_runs));
    if (static_cast<int>(out.size()) > max_runs) {
      return Status::InvalidArgument(fmt::format(
          "--cuts all: more than {} combinations of {} cuts over {} blocks; pass an explicit list, "
          "e.g. --cuts {}",
          max_runs, stages - 1, num_blocks, stages == 3 ? "3:9,5:12" : "3,8,14"));
    }
    return out;
  }
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    PP_ASSIGN_OR_RETURN(std::vector<int> cuts, ParseTuple(item, num_blocks, stages));
    out.push_back(std::move(cuts));
  }
  if (out.empty()) return Status::InvalidArgument("--cuts: empty list");
  return out;
}

Result<std::vector<std::string>> ParseBackendList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    PP_RETURN_IF_ERROR(CheckBackend(item).WithContext("--backend"));
    if (std::find(out.begin(), out.end(), item) != out.end()) {
      return Status::InvalidArgument(fmt::format("--backend: '{}' given twice", item));
    }
    out.push_back(item);
  }
  if (out.empty()) return Status::InvalidArgument("--backend: empty list");
  return out;
}

Result<SweepResult> RunSweep(const SweepOptions& o, std::ostream& progress) {
  PP_ASSIGN_OR_RETURN(std::vector<std::string> backends, ParseBackendList(o.backend));
  if (o.stall_timeout < std::chrono::seconds(1) || o.stall_timeout > std::chrono::hours(1)) {
    return Status::InvalidArgument(fmt::format("--stall-timeout {} s: must be within 1..3600 s",
                                               o.stall_timeout.count() / 1000.0));
  }
  if (o.heartbeat_timeout < std::chrono::seconds(1) ||
      o.heartbeat_timeout > std::chrono::hours(1)) {
    return Status::InvalidArgument(fmt::format("--heartbeat-timeout {} s: must be within 1..3600 s",
                                               o.heartbeat_timeout.count() / 1000.0));
  }
  if (o.batch_size < 1 || o.batches < 1 || o.warmup < 0 || o.warmup >= o.batches || o.window < 1 ||
      o.repeats < 1) {
    return Status::InvalidArgument(
        fmt::format("need --batch >= 1, --batches >= 1, 0 <= --warmup < --batches, --window >= 1, "
                    "--repeat >= 1 "
                    "(got {}, {}, {}, {}, {})",
                    o.batch_size, o.batches, o.warmup, o.window, o.repeats));
  }
  const int stages = o.workers.empty() ? o.local : static_cast<int>(o.workers.size());
  std::vector<Endpoint> endpoints;
  for (const std::string& w : o.workers) {
    Result<Endpoint> e = ParseEndpoint(w);
    if (!e.ok()) return e.status().WithContext("--workers");
    endpoints.push_back(*e);
  }
  PP_ASSIGN_OR_RETURN(std::vector<Condition> conditions, ParseConditions(o.net));
  const bool any_condition = std::any_of(conditions.begin(), conditions.end(),
                                         [](const Condition& c) { return !c.value.none(); });
  if (!o.testbed.empty() && o.testbed != "netns") {
    return Status::InvalidArgument(
        fmt::format("--testbed {}: the only testbed is netns", o.testbed));
  }
  // Before anything is created (the database file included).
  if (!o.testbed.empty() && !HaveNetAdmin()) {
    return Status::InvalidArgument(
        "--testbed netns needs root (CAP_NET_ADMIN) to create network namespaces and "
        "interfaces; run as root or with sudo");
  }
  if (!o.testbed.empty() && !o.workers.empty()) {
    return Status::InvalidArgument(
        "--testbed netns starts its own local workers: leave out --workers");
  }
  if (any_condition && o.testbed.empty() && o.workers.empty()) {
    return Status::InvalidArgument(
        "--net needs --testbed netns with local workers: loopback has no links to shape");
  }
  if (any_condition && !o.workers.empty() && conditions.size() > 1) {
    return Status::InvalidArgument(
        "with --workers, ParetoPipe cannot change the network between runs: apply one condition "
        "on the devices (`paretopipe netem apply`) and give it as a single --net to label the "
        "runs");
  }
  if (!o.local_devices.empty() && !o.workers.empty()) {
    return Status::InvalidArgument("--local-device limits local workers: leave out --workers");
  }
  if (!o.input.synthetic()) PP_RETURN_IF_ERROR(ValidateInputOptions(o.input));
  std::vector<DeviceLimits> devices;
  for (const std::string& d : o.local_devices) {
    PP_ASSIGN_OR_RETURN(DeviceLimits limits, ParseDeviceLimits(d));
    devices.push_back(std::move(limits));
  }

  PP_ASSIGN_OR_RETURN(std::unique_ptr<ResultStore> store, ResultStore::Open(o.db_path));
  ResumeState resume;
  if (!o.resume.empty()) {
    PP_ASSIGN_OR_RETURN(resume, LoadResumeState(*store, o.resume, o.model));
  }
  ModelSpec spec{o.model, o.num_classes, o.seed, ""};
  spec.granularity = o.granularity;
  spec.max_cut_tensors = o.max_cut_tensors;
  PP_ASSIGN_OR_RETURN(ModelAnalysis analysis, AnalyzeModel(spec, o.input_side_px));
  // A TorchScript model's stages get their segments from its file, cut here.
  std::unique_ptr<ScriptStages> script;
  if (IsTorchScriptFile(o.model)) {
    if (!o.weights_path.empty()) {
      return Status::InvalidArgument(
          "--weights: a TorchScript file carries its own weights; leave out --weights");
    }
    PP_ASSIGN_OR_RETURN(
        script, ScriptStages::Load(o.model, analysis.node_bounds, static_cast<size_t>(stages)));
  }
  const int64_t num_blocks = static_cast<int64_t>(analysis.blocks.size());
  PP_ASSIGN_OR_RETURN(std::vector<std::vector<int>> combos,
                      ParseCutList(o.cuts, num_blocks, stages, o.max_runs));
  std::string digest;
  if (!o.weights_path.empty()) {
    PP_ASSIGN_OR_RETURN(digest, Sha256OfFile(o.weights_path));
  }
  // A TorchScript file's own digest names its weights, so runs of another
  // export at the same path never count as the same model (fronts, accuracy).
  if (script) {
    PP_ASSIGN_OR_RETURN(digest, Sha256OfFile(o.model));
  }
  std::unique_ptr<OutputCheck> check;
  if (o.verify) {
    std::shared_ptr<StageCompute> whole;
    if (script) {
      PP_ASSIGN_OR_RETURN(whole, script->Whole());
    } else {
      ModelSpec weighted = spec;
      weighted.weights_path = o.weights_path;
      PP_ASSIGN_OR_RETURN(std::unique_ptr<Segment> built, Segment::Build(weighted, {0, -1}, "cpu"));
      whole = std::move(built);
    }
    check = std::make_unique<OutputCheck>(std::move(whole), nullptr, o.seed);
  }
  // Loaded once: every run gets the same images, so their accuracies compare.
  LoadedInput input;
  if (!o.input.synthetic()) {
    PP_ASSIGN_OR_RETURN(
        input, LoadInput(o.input, analysis.input_side_px, int64_t{o.batches} * o.batch_size));
    progress << fmt::format("input: {} ({} images of {} px, {}, SHA-256 {})\n", input.description,
                            input.set->count(), analysis.input_side_px,
                            input.labels.empty() ? "unlabelled: no accuracy" : "labelled",
                            input.set->digest.substr(0, 12));
    if (check) {
      std::shared_ptr<StageCompute> whole = check->whole();
      check = std::make_unique<OutputCheck>(std::move(whole), input.set, o.seed);
    }
  }

  const auto t_begin = std::chrono::steady_clock::now();
  std::unique_ptr<Testbed> testbed;
  if (o.testbed == "netns") {
    PP_ASSIGN_OR_RETURN(testbed, Testbed::Create(stages));
  }
  std::string secret = o.secret;
  LocalWorkers local;
  if (o.workers.empty()) {
    LocalWorkerOptions lo;
    lo.allow_unauthenticated_torch =
        std::find(backends.begin(), backends.end(), "torch") != backends.end();
    lo.binary = o.binary;
    lo.count = stages;
    lo.threads = o.threads > 0 ? o.threads : std::max(1, AvailableCpus() / stages);
    lo.devices = devices;
    lo.testbed = testbed.get();
    PP_ASSIGN_OR_RETURN(local, LocalWorkers::Start(lo));
    secret = local.secret();
    endpoints = local.endpoints();
    std::vector<std::string> names;
    for (size_t i = 0; i < endpoints.size(); ++i) {
      names.push_back(local.limits()[i].empty()
                          ? endpoints[i].ToString()
                          : fmt::format("{} ({})", endpoints[i].ToString(), local.limits()[i]));
    }
    progress << fmt::format("started {} local workers{} on {} ({} thread(s) each)\n", stages,
                            testbed ? " in network namespaces" : "", fmt::join(names, ", "),
                            lo.threads);
    if (testbed) {
      progress << fmt::format(
          "testbed: switch on {}; delay, jitter and loss {}, rate by the kernel's htb\n",
          testbed->host_interface(),
          testbed->kernel_netem() ? "by the kernel's netem"
                                  : "in user space (this kernel has no netem qdisc)");
    }
  }
  std::vector<std::unique_ptr<WorkerClient>> clients;
  std::vector<WorkerClient*> ptrs;
  for (const Endpoint& e : endpoints) {
    PP_ASSIGN_OR_RETURN(auto client, WorkerClient::Connect(e, kConnectTimeout, secret));
    client->set_heartbeat_timeout(o.heartbeat_timeout);
    ptrs.push_back(client.get());
    clients.push_back(std::move(client));
  }

  // Where each stage computes is the worker's own choice (its --device).
  std::vector<std::string> devices_in_order;
  for (size_t s = 0; s < clients.size(); ++s) {
    PP_ASSIGN_OR_RETURN(WorkerInfo info, clients[s]->Info());
    devices_in_order.push_back(info.device);
    if (info.device != "cpu") {
      progress << fmt::format("stage {} computes on {} ({}) at {}\n", s + 1, info.device,
                              info.device_name, endpoints[s].ToString());
    }
  }
  const std::string stage_devices = StageDevicesText(devices_in_order);

  PlanFirstRequest plan_request;
  SweepPlan sweep_plan;
  if (o.plan_first) {
    plan_request.model = spec;
    plan_request.batch = o.batch_size;
    plan_request.input_side_px = analysis.input_side_px;
    plan_request.window = o.window;
    plan_request.profile_repeat = o.plan_profile_repeat;
    plan_request.controls = o.plan_controls;
    plan_request.margin = o.plan_margin;
    plan_request.batches = o.batches;
    plan_request.repeats = o.repeats;
    plan_request.base_link = o.plan_base_link;
    for (const Condition& cond : conditions) plan_request.conditions.push_back(cond.text);
    plan_request.candidates = combos;
    PP_ASSIGN_OR_RETURN(sweep_plan, PlanSweep(ptrs, plan_request, progress));
  }
  // What runs, in order. Conditions and backends interleave per cut: the
  // machine's speed drifts over a long sweep, and this way the drift falls
  // on every one alike.
  struct Job {
    size_t combo = 0, condition = 0, backend = 0;
  };
  std::vector<Job> jobs;
  for (size_t k = 0; k < combos.size(); ++k) {
    for (size_t n = 0; n < conditions.size(); ++n) {
      if (o.plan_first && !sweep_plan.Chosen(n, k)) continue;
      for (size_t b = 0; b < backends.size(); ++b) jobs.push_back({k, n, b});
    }
  }

  // Detached before the clients go, on every return below.
  struct Detach {
    SweepInterrupt* interrupt;
    ~Detach() {
      if (interrupt) interrupt->Attach({});
    }
  } detach{o.interrupt};
  if (o.interrupt) o.interrupt->Attach(ptrs);
  SweepResult result;
  if (o.resume.empty()) {
    PP_ASSIGN_OR_RETURN(const std::string suffix, RandomHex(3));  // 6 hex digits.
    result.sweep_id = UtcNow() + "-" + suffix;
  } else {
    result.sweep_id = resume.sweep_id;
  }
  const int64_t run_base = static_cast<int64_t>(std::random_device{}() & 0x7fffffff) << 16;
  const size_t total = jobs.size();
  progress << fmt::format(
                  "sweep {}: {} {} run(s) of {} stages over {}{}, batch {}, {} batches ({} "
                  "warm-up), window "
                  "{}, {} repeat(s); results in {}\n",
                  result.sweep_id, o.model, total, stages, fmt::join(backends, ", "),
                  conditions.size() > 1 || any_condition
                      ? fmt::format(" under {} condition(s)", conditions.size())
                      : "",
                  o.batch_size, o.batches, o.warmup, o.window, o.repeats, o.db_path)
           << std::flush;
  if (!o.resume.empty()) {
    progress << fmt::format(
        "resuming sweep {}: {} run(s) stored, {} complete, {} configuration(s) failed before and "
        "run again\n",
        resume.sweep_id, resume.stored, resume.done.size(), resume.failed.size());
  }
  for (size_t n = 0; n < conditions.size(); ++n) {
    const Condition& cond = conditions[n];
    if (cond.value.rate_bits_per_s == 0) continue;
    double floor_s = 0;
    for (const Job& job : jobs) {
      if (job.condition != n) continue;
      floor_s += TransferFloorSeconds(StageInputShapes(analysis, o.batch_size, combos[job.combo]),
                                      o.batches * o.repeats, cond.value.rate_bits_per_s);
    }
    if (floor_s < 60) continue;
    progress << fmt::format(
        "note: under {} the activations alone need at least {} of transfer; --batch, --batches "
        "and --repeat shorten it\n",
        cond.text, ClockText(floor_s));
  }
  // Each run opens new connections, and TCP opens its congestion window one
  // round trip at a time: at a 200 ms round trip the first 7 batches of a
  // run took 0.2 to 0.9 s instead of 0.15 (docs/planner.md, "Measured"), so
  // a short warm-up leaves that ramp in the first repeat's measured batches.
  for (const Condition& cond : conditions) {
    if (cond.value.delay < kLongDelay || o.warmup >= kLongDelayWarmup) continue;
    progress << fmt::format(
        "note: under {} each run's fresh TCP connections need several round trips to open their "
        "window, longer than --warmup {} batches may last; --warmup {} keeps that ramp out of "
        "the first repeat's measurements\n",
        cond.text, o.warmup, kLongDelayWarmup);
  }
  const std::string declared = any_condition && !testbed ? "external" : "";
  std::string applied;  // The testbed's current condition.
  std::vector<std::pair<size_t, double>> run_jobs;  // Per result.runs: its job, its wall time.
  for (size_t i = 0; i < total; ++i) {
    if (o.interrupt && o.interrupt->requested()) break;
    const Job& job = jobs[i];
    const std::vector<int>& cuts = combos[job.combo];
    const Condition& cond = conditions[job.condition];
    const std::string& backend = backends[job.backend];
    const auto run_begin = std::chrono::steady_clock::now();
    RunPlan plan;
    RunConfig& c = plan.config;
    c.model = o.model;
    c.num_classes = o.num_classes;
    c.seed = o.seed;
    c.weights_digest = digest;
    c.cuts = cuts;
    c.batch_size = o.batch_size;
    c.input_side_px = static_cast<int>(analysis.input_side_px);
    c.batches = o.batches;
    c.warmup = o.warmup;
    c.window = o.window;
    c.repeats = o.repeats;
    c.backend = backend;
    c.threads = o.threads;
    c.device = stage_devices;
    for (const Endpoint& e : endpoints) c.workers.push_back(e.ToString());
    c.sweep_id = result.sweep_id;
    plan.weights_path = o.weights_path;
    plan.num_blocks = num_blocks;
    plan.run_id = run_base + static_cast<int64_t>(i);
    plan.input_seed = o.seed;
    plan.stage_input_shapes = StageInputShapes(analysis, o.batch_size, c.cuts);
    plan.stage_extra_input_shapes = StageExtraInputShapes(analysis, o.batch_size, c.cuts);
    plan.stall_timeout = o.stall_timeout;
    if (input.set) {
      plan.inputs = input.set;
      plan.labels = input.labels;
      c.input = input.description;
      c.input_digest = input.set->digest;
      c.input_images = input.set->count();
    }
    c.net = cond.text;
    c.testbed = o.testbed;
    c.net_emulation = declared.empty() ? "none" : declared;
    const std::string key = RunKey(c);
    if (auto done = resume.done.find(key); done != resume.done.end()) {
      ++result.skipped;
      progress << fmt::format("[{}/{}] cuts {:<8} {}already in {} (run {})\n", i + 1, total,
                              fmt::format("{}", fmt::join(c.cuts, ":")),
                              backends.size() > 1 ? fmt::format("{:<6} ", backend) : "", o.db_path,
                              done->second.id)
               << std::flush;
      result.runs.push_back(done->second);
      run_jobs.emplace_back(i, -1.0);
      continue;
    }
    const std::vector<int64_t> replaces = resume.failed[key];
    // A local worker that exited (killed, crashed, out of memory) since the
    // last run is started again, so one lost worker costs one run, not the
    // rest of the sweep.
    Status ready = Status::Ok();
    if (o.workers.empty()) {
      Result<std::vector<LocalWorkers::Restarted>> restarted = local.RestartExited();
      if (!restarted.ok()) ready = restarted.status();
      for (const auto& r : restarted.ok() ? *restarted : std::vector<LocalWorkers::Restarted>{}) {
        progress << fmt::format("note: {}; started it again on the same address\n", r.exit);
        // Its client may still hold the dead worker's connection (when the
        // run it died in failed elsewhere first): start a new session.
        clients[r.index]->Abandon();
      }
    }
    if (script) {
      for (size_t s = 0; s <= c.cuts.size(); ++s) {
        const int64_t begin = s == 0 ? 0 : c.cuts[s - 1];
        const int64_t end = s == c.cuts.size() ? num_blocks : c.cuts[s];
        PP_ASSIGN_OR_RETURN(ScriptStageModule module, script->Module(begin, end));
        plan.stage_modules.push_back(std::move(module));
      }
    }
    // Apply the condition, then measure what the links achieve: the record
    // holds both, so no plot claims a condition that was not there.
    if (ready.ok() && testbed && applied != cond.text) {
      ready = testbed->Apply(cond.value).WithContext("applying --net " + cond.text);
      applied = ready.ok() ? cond.text : "";
    }
    if (testbed) c.net_emulation = testbed->emulation();
    std::vector<LinkMeasurement> links;
    for (size_t h = 0; ready.ok() && h + 1 < ptrs.size(); ++h) {
      Result<LinkMeasurement> m = ptrs[h]->ProbeLink(endpoints[h + 1]);
      if (!m.ok()) {
        ready = m.status().WithContext(fmt::format("link probe, stage {} to {}", h + 1, h + 2));
        break;
      }
      m->hop = static_cast<int>(h);
      links.push_back(*m);
    }
    RunTiming timing;
    plan.keep_outputs = check != nullptr;
    std::vector<KeptOutput> outputs;
    Result<RunRecord> run =
        ready.ok() ? RunPipeline(ptrs, plan, &outputs, &timing) : Result<RunRecord>(ready);
    std::string verified;
    if (run.ok() && check) {
      Result<OutputComparison> compared =
          check->Compare(outputs, c.batches, plan.stage_input_shapes[0]);
      // The whole model runs here, on the CPU with this process's threads,
      // the stages with theirs: a reduction may round apart in the last
      // bits. A GPU stage differs more: cuDNN picks other algorithms and
      // convolutions use TF32 (10-bit mantissa) by default.
      const double relative = c.device == "cpu" ? 1e-4 : 1e-3;
      const double tolerance = compared.ok() ? relative * compared->max_abs_value + 1e-6 : 0;
      if (!compared.ok()) {
        run = compared.status();
      } else if (compared->max_abs_diff > tolerance) {
        run = Status::InvalidArgument(fmt::format(
            "--verify: the outputs differ from the whole model's: max |diff| {:.3g} over {} "
            "batches (largest |output| {:.3g})",
            compared->max_abs_diff, compared->batches, compared->max_abs_value));
      } else {
        verified =
            compared->identical()
                ? ", outputs = whole model"
                : fmt::format(", outputs = whole model within {:.1g} (relative {:.1g})",
                              compared->max_abs_diff,
                              compared->max_abs_diff / std::max(compared->max_abs_value, 1e-30));
      }
    }
    if (!run.ok() && o.workers.empty()) {
      // A worker that died fails the run at once (its neighbours and this
      // orchestrator see its connections close); say which one and how. It
      // is reaped within moments of closing its sockets.
      std::vector<std::string> exits = local.Reap();
      for (int tries = 0; exits.empty() && tries < 10; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        exits = local.Reap();
      }
      if (!exits.empty()) {
        run = run.status().WithContext(fmt::format("{}", fmt::join(exits, "; ")));
      }
    }
    result.passes_s += timing.passes_s;
    // An interrupted run is not a failed one: nothing of it is stored.
    if (o.interrupt && o.interrupt->requested()) break;
    RunRecord record;
    if (run.ok()) {
      record = std::move(run).value();
    } else {
      record.config = c;
      record.started_at_utc = UtcNow();
      record.status = "failed";
      record.error = run.status().message();
    }
    record.links = links;
    if (o.plan_first) record.prediction = sweep_plan.PredictionOf(job.condition, job.combo);
    for (size_t k = 0; k < record.environment.size() && k < local.limits().size(); ++k) {
      record.environment[k].limits = local.limits()[k];
    }
    Result<int64_t> id = store->InsertRun(record, replaces);
    if (!id.ok()) return id.status();
    record.id = *id;
    result.replaced += static_cast<int>(replaces.size());
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_begin).count();
    // Runs skipped by --resume took no time: the rate is of runs made.
    const double eta =
        elapsed / static_cast<double>(result.runs.size() - result.skipped + 1) * (total - i - 1);
    std::string what =
        record.status == "ok"
            ? fmt::format("latency {:.2f} ms, throughput {:.1f} img/s{}{}",
                          record.latency_ms_mean.mean, record.throughput_ips.mean,
                          record.accuracy
                              ? fmt::format(", top-1 {:.2f}% of {}", 100 * record.accuracy->top1(),
                                            record.accuracy->images)
                              : "",
                          verified)
            : "FAILED: " + record.error;
    if (record.prediction) {
      what += fmt::format(" (predicted {:.2f} ms, {:.1f} img/s; {})", record.prediction->latency_ms,
                          record.prediction->throughput_ips, record.prediction->role);
    }
    std::string link_text;
    for (const LinkMeasurement& l : record.links) {
      link_text += fmt::format("{}rtt {:.1f} ms, {:.0f} Mbit/s", link_text.empty() ? "" : "; ",
                               l.rtt_ms_median, l.bandwidth_mbit);
    }
    progress << fmt::format("[{}/{}] cuts {:<8} {}{}{}  (elapsed {}, ETA {})\n", i + 1, total,
                            fmt::format("{}", fmt::join(c.cuts, ":")),
                            backends.size() > 1 ? fmt::format("{:<6} ", backend) : "",
                            conditions.size() > 1 || any_condition
                                ? fmt::format("[{}; measured {}] ", cond.text, link_text)
                                : "",
                            what, ClockText(elapsed), ClockText(eta))
             << std::flush;
    result.runs.push_back(std::move(record));
    run_jobs.emplace_back(
        i, std::chrono::duration<double>(std::chrono::steady_clock::now() - run_begin).count());
    if (!run.ok() && !o.keep_going) return run.status();
  }
  if (o.plan_first) {
    std::vector<PlanFirstRun> planned;
    for (size_t r = 0; r < run_jobs.size(); ++r) {
      const Job& job = jobs[run_jobs[r].first];
      const bool control = sweep_plan.PredictionOf(job.condition, job.combo).role == "control";
      planned.push_back({job.condition, backends[job.backend], job.combo, control, &result.runs[r],
                         run_jobs[r].second});
    }
    PrintPlanFirstVerdict(sweep_plan, plan_request, backends, planned, progress);
  }
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_begin).count();
  result.interrupted = o.interrupt && o.interrupt->requested();
  return result;
}

}  // namespace paretopipe
