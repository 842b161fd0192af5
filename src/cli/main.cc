// paretopipe: the command line. Owns argument parsing and printing; every
// computation lives in the layers below (model, metrics, profile). Errors are
// one line on stderr and exit status 1 (2 for a malformed command line).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "analysis/export.h"
#include "analysis/pareto.h"
#include "cli/format.h"
#include "cli/linkprobe_command.h"
#include "cli/plan_command.h"
#include "cli/plan_inputs.h"
#include "cli/run_table.h"
#include "cli/validate_command.h"
#include "control/stage_transport.h"
#include "control/worker.h"
#include "metrics/machine.h"
#include "model/cuts.h"
#include "model/device.h"
#include "model/run_file.h"
#include "model/zoo.h"
#include "netem/condition.h"
#include "netem/tc.h"
#include "profile/profiler.h"
#include "report/report.h"
#include "store/store.h"
#include "sweep/sweep.h"
#include "util/auth.h"

namespace paretopipe::cli {
namespace {

// Options every model-taking command shares.
struct ModelOptions {
  std::string name;
  int64_t num_classes = 1000;
  uint64_t seed = 0;
  std::string weights;
  std::string granularity = "module";
  int max_cut_tensors = 1;

  ModelSpec Spec() const {
    ModelSpec spec{name, num_classes, seed, weights};
    spec.granularity = granularity;
    spec.max_cut_tensors = max_cut_tensors;
    return spec;
  }
};

void AddModelOptions(CLI::App* cmd, ModelOptions& o, bool with_weights) {
  cmd->add_option("MODEL", o.name,
                  "Model name (see `paretopipe models`), or a TorchScript file (.pt, .ts) saved "
                  "from torch.jit.script or torch.jit.trace")
      ->required();
  cmd->add_option("--num-classes", o.num_classes, "Classes of the classifier head")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the deterministic random weights")
      ->capture_default_str();
  if (with_weights) {
    cmd->add_option("--weights", o.weights,
                    "State dict saved by torch.save(model.state_dict(), FILE); "
                    "keys as torchvision names them");
  }
}

// --granularity of a TorchScript model (model/torchscript.h).
void AddGranularityOption(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("--granularity", o.granularity,
                  "TorchScript models: cuts (and blocks) only between modules (module), or "
                  "between any two nodes of the frozen graph (op); see `paretopipe cuts MODEL.pt`")
      ->check(CLI::IsMember({"module", "op"}))
      ->capture_default_str();
}

int Fail(const Status& status) {
  std::fprintf(stderr, "paretopipe: error: %s\n", status.message().c_str());
  return 1;
}

// The text of `path` (a PEM certificate or key), for `option`'s error.
Result<std::string> ReadPemFile(const std::string& option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("{} {}: cannot read it", option, path));
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return Status::InvalidArgument(fmt::format("{} {}: not a PEM file", option, path));
  }
  return text.str();
}

// The files `worker` names for authentication and TLS, read into `options`.
struct WorkerSecurityFiles {
  std::string token, tls_cert, tls_key, tls_ca;
};
Status LoadWorkerSecurity(const WorkerSecurityFiles& f, WorkerOptions* options) {
  if (!f.token.empty()) {
    PP_ASSIGN_OR_RETURN(options->secret, ReadSecretFile(f.token));
  }
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    return Status::InvalidArgument("--tls-cert and --tls-key go together");
  }
  if (!f.tls_cert.empty()) {
    PP_ASSIGN_OR_RETURN(options->tls_cert_pem, ReadPemFile("--tls-cert", f.tls_cert));
    PP_ASSIGN_OR_RETURN(options->tls_key_pem, ReadPemFile("--tls-key", f.tls_key));
  }
  if (!f.tls_ca.empty()) {
    PP_ASSIGN_OR_RETURN(options->tls_ca_pem, ReadPemFile("--tls-ca", f.tls_ca));
  }
  return Status::Ok();
}

int CmdModels(bool json) {
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const ZooEntry& e : ZooModels()) {
      out.push_back({{"name", e.name},
                     {"description", e.description},
                     {"input_shape", {e.input_channels, e.input_side_px, e.input_side_px}},
                     {"min_input_side_px", e.min_input_side_px},
                     {"blocks", e.num_blocks},
                     {"valid_cuts", {{"first", 1}, {"last", e.num_blocks - 1}}}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  fmt::print("{:<14} {:>9} {:>7} {:>6}  {}\n", "model", "input", "blocks", "cuts", "description");
  for (const ZooEntry& e : ZooModels()) {
    fmt::print("{:<14} {:>9} {:>7} {:>6}  {}\n", e.name,
               fmt::format("{}x{}x{}", e.input_channels, e.input_side_px, e.input_side_px),
               e.num_blocks, fmt::format("1..{}", e.num_blocks - 1), e.description);
  }
  return 0;
}

int CmdCuts(const ModelOptions& m, int64_t batch, int64_t input_side_px, bool json) {
  if (batch < 1)
    return Fail(Status::InvalidArgument(fmt::format("--batch must be at least 1, got {}", batch)));
  Result<ModelAnalysis> analysis = AnalyzeModel(m.Spec(), input_side_px);
  if (!analysis.ok()) return Fail(analysis.status());
  const std::vector<CutInfo> cuts = CutsAtBatch(*analysis, batch);
  const ModelAnalysis& a = *analysis;
  if (json) {
    nlohmann::ordered_json out = {
        {"model", a.entry.name},
        {"num_classes", a.num_classes},
        {"batch", batch},
        {"input_shape", {batch, a.entry.input_channels, a.input_side_px, a.input_side_px}},
        {"dtype", "float32"},
        {"blocks", a.entry.num_blocks},
        {"parameters", a.total_parameters},
        {"macs", a.total_macs * batch}};
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const CutInfo& c : cuts) {
      rows.push_back({{"cut", c.cut},
                      {"stage1_blocks", {0, c.cut}},
                      {"stage2_blocks", {c.cut, a.entry.num_blocks}},
                      {"last_block_before", c.last_block_before},
                      {"first_block_after", c.first_block_after},
                      {"shape", c.shape},
                      {"bytes", c.bytes},
                      {"macs_before", c.macs_before},
                      {"macs_share_before", c.macs_share_before}});
    }
    out["cuts"] = rows;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  fmt::print(
      "{}: {} blocks, valid cuts 1..{}; batch {}, input {}x{}x{}x{} fp32; {} parameters, {} MACs\n",
      a.entry.name, a.entry.num_blocks, a.entry.num_blocks - 1, batch, batch,
      a.entry.input_channels, a.input_side_px, a.input_side_px, WithCommas(a.total_parameters),
      Short(static_cast<double>(a.total_macs * batch)));
  fmt::print(
      "cut k: stage 1 runs blocks [0, k), stage 2 runs [k, {}); the activation is block k-1's "
      "output\n\n",
      a.entry.num_blocks);
  fmt::print("{:>4}  {:<26} {:<30} {:>16} {:>14} {:>8}\n", "cut", "stage 1 ends with",
             "stage 2 starts with", "activation", "bytes", "MACs <k");
  for (const CutInfo& c : cuts) {
    fmt::print("{:>4}  {:<26} {:<30} {:>16} {:>14} {:>7.1f}%\n", c.cut, c.last_block_before,
               c.first_block_after, ShapeText(c.shape), WithCommas(c.bytes),
               100.0 * c.macs_share_before);
  }
  return 0;
}

int CmdProfile(const ProfileRequest& request, const std::string& output) {
  // Opened before profiling, so a bad path fails in a second, not after the run.
  std::ofstream out;
  if (!output.empty()) {
    out.open(output);
    if (!out)
      return Fail(Status::IoError(
          fmt::format("cannot write profile to {}: {}", output, std::strerror(errno))));
  }
  Result<Profile> profile = RunProfile(request);
  if (!profile.ok()) return Fail(profile.status());
  const Profile& p = *profile;
  if (IsReferenceBlas(p.machine)) {
    std::fprintf(stderr,
                 "paretopipe: warning: the reference BLAS (%s) is loaded; LibTorch runs about 5x "
                 "slower than with OpenBLAS (apt-get install libopenblas0-pthread)\n",
                 p.machine.blas_path.c_str());
  }
  if (!output.empty()) {
    // Replace, not throw, on a hostname or path that is not UTF-8.
    out << ProfileToJson(p).dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
        << "\n";
    out.close();
    if (!out) return Fail(Status::IoError(fmt::format("cannot write profile to {}", output)));
  }
  fmt::print("{} on {} ({} CPUs, {}), {} thread(s), LibTorch {}\n", p.request.model.name,
             p.machine.cpu_model, p.machine.logical_cpus, p.machine.blas, p.request.threads,
             p.machine.libtorch_version);
  fmt::print("batch {}, input {}, {} warm-up + {} timed passes; per-block compute time in ms\n\n",
             p.request.batch, ShapeText(p.input_shape), p.request.warmup, p.request.repeat);
  fmt::print("{:>5}  {:<28} {:>9} {:>9} {:>19} {:>14} {:>9}\n", "block", "name", "median", "p95",
             "median 95% CI", "output bytes", "MACs");
  for (const BlockProfile& b : p.blocks) {
    fmt::print(
        "{:>5}  {:<28} {:>9.3f} {:>9.3f} {:>19} {:>14} {:>9}\n", b.index, b.name,
        b.compute_ms.median, b.compute_ms.p95,
        fmt::format("[{:.3f}, {:.3f}]", b.compute_ms.median_ci_low, b.compute_ms.median_ci_high),
        WithCommas(b.output_bytes), Short(static_cast<double>(b.macs)));
  }
  fmt::print("{:>5}  {:<28} {:>9.3f} {:>9.3f}\n", "", "total (sum of blocks)", p.total_ms.median,
             p.total_ms.p95);
  if (!output.empty()) fmt::print("\nprofile written to {}\n", output);
  return 0;
}

int CmdRun(const RunFileRequest& request) {
  Result<RunFileResult> result = RunOnTensorFile(request);
  if (!result.ok()) return Fail(result.status());
  fmt::print("{} blocks [{}, {}): {} -> {} in {:.1f} ms; wrote {}\n", request.model.name,
             result->from, result->to, ShapeText(result->input_shape),
             ShapeText(result->output_shape), result->compute_ms, request.output_path);
  return 0;
}

int CmdWorker(const WorkerOptions& options, const std::string& listen,
              const std::string& log_level) {
  Result<Endpoint> endpoint = ParseEndpoint(listen);
  if (!endpoint.ok()) return Fail(endpoint.status().WithContext("--listen"));
  // The log goes to stderr: stdout carries only the "listening on" line,
  // which a local sweep reads through a pipe it then closes.
  spdlog::set_default_logger(spdlog::stderr_color_mt("worker"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  std::signal(SIGPIPE, SIG_IGN);
  WorkerOptions o = options;
  o.listen = *endpoint;
  // SIGINT and SIGTERM stop the worker cleanly: blocked here before any
  // thread starts (threads inherit the mask), taken by one waiting thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  Result<std::unique_ptr<Worker>> worker = Worker::Create(o);
  if (!worker.ok()) return Fail(worker.status().WithContext("worker"));
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    (*worker)->Stop();
  });
  // Local sweeps read this line to learn the port.
  std::printf("paretopipe worker listening on %s\n", (*worker)->endpoint().ToString().c_str());
  std::fflush(stdout);
  // Serve returns only after Stop(), which only the stopper calls: joining
  // keeps the worker alive until Stop() has returned.
  Status served = (*worker)->Serve();
  stopper.join();
  if (!served.ok()) return Fail(served);
  return 0;
}

int CmdSweep(SweepOptions options, const std::string& latency) {
  Result<LatencyStat> stat = ParseLatencyStat(latency);
  if (!stat.ok()) return Fail(stat.status());
  options.binary = "/proc/self/exe";
  // Ctrl-C (or SIGTERM) stops the sweep cleanly: the run in progress is
  // abandoned, workers, testbed and cgroups go as at a normal end, and the
  // finished runs are listed. A second one quits at once. The signals are
  // taken by one thread; every other thread (and child, until its exec
  // unblocks them) has them blocked.
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
  SweepInterrupt interrupt;
  std::atomic<bool> sweep_done{false};
  std::thread watcher([&] {
    while (!sweep_done) {
      const timespec poll{0, 200'000'000};
      if (sigtimedwait(&stop_signals, nullptr, &poll) <= 0) continue;
      if (interrupt.requested()) _exit(130);
      std::fprintf(stderr,
                   "paretopipe: interrupted; stopping the sweep and cleaning up (again to quit "
                   "at once)\n");
      interrupt.Request();
    }
  });
  options.interrupt = &interrupt;
  Result<SweepResult> result = RunSweep(options, std::cout);
  sweep_done = true;
  watcher.join();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (!result.ok()) return Fail(result.status());
  std::cout << "\n" << FormatRunTable(result->runs, *stat, RowOrder::kAsRun);
  int failed = 0;
  for (const RunRecord& r : result->runs) failed += r.status != "ok";
  std::cout << fmt::format(
      "\nsweep took {:.1f} s: {:.1f} s measuring, {:.1f} s around the passes ({:.2f} s per run)\n",
      result->wall_s, result->passes_s, result->wall_s - result->passes_s,
      (result->wall_s - result->passes_s) /
          std::max<size_t>(1, result->runs.size() - result->skipped));
  std::cout << fmt::format(
      "{} run(s){} stored in {} (sweep {}). * on the Pareto front, K its knee. "
      "`paretopipe pareto --db {}` ranks them.\n",
      result->runs.size() - result->skipped, failed ? fmt::format(", {} failed,", failed) : "",
      options.db_path, result->sweep_id, options.db_path);
  if (result->interrupted) {
    std::fprintf(stderr, "paretopipe: interrupted: the run in progress was not stored\n");
    return 130;
  }
  if (result->skipped > 0 || result->replaced > 0) {
    std::cout << fmt::format(
        "resumed: {} configuration(s) were already complete and skipped, {} failed record(s) "
        "replaced by a new try\n",
        result->skipped, result->replaced);
  }
  return failed > 0 && failed == static_cast<int>(result->runs.size()) - result->skipped ? 1 : 0;
}

// The interface's MTU, for the token bucket's least depth (one packet).
int64_t InterfaceMtu(const std::string& dev) {
  std::ifstream in("/sys/class/net/" + dev + "/mtu");
  int64_t mtu = 0;
  return (in >> mtu) && mtu > 0 ? mtu : 1500;
}

struct NetemRequest {
  std::string dev, delay, jitter, loss, rate, burst;
  int port = 0;
};

int CmdNetem(const std::string& action, const NetemRequest& r) {
  if (action != "show" && !HaveNetAdmin()) {
    return Fail(Status::InvalidArgument(fmt::format(
        "netem {} changes the qdiscs of {}: that needs root (CAP_NET_ADMIN); run it with sudo",
        action, r.dev)));
  }
  if (r.dev.find('/') != std::string::npos || r.dev.empty() || r.dev.size() > 15) {
    return Fail(Status::InvalidArgument(fmt::format("--dev '{}' is not an interface name", r.dev)));
  }
  const TcTarget target{r.dev, 0, InterfaceMtu(r.dev)};
  if (action == "clear") {
    if (Status s = TcClear(target); !s.ok()) return Fail(s);
    std::cout << fmt::format("{}: back to the default qdisc\n", r.dev);
    return 0;
  }
  if (action == "apply") {
    std::vector<std::string> parts;
    for (const auto& [key, value] :
         {std::pair{"delay", r.delay}, std::pair{"jitter", r.jitter}, std::pair{"loss", r.loss},
          std::pair{"rate", r.rate}, std::pair{"burst", r.burst}}) {
      if (!value.empty()) parts.push_back(fmt::format("{}={}", key, value));
    }
    if (parts.empty()) {
      return Fail(Status::InvalidArgument(
          "netem apply: nothing to apply; give --delay, --jitter, --loss or --rate"));
    }
    Result<NetCondition> c = ParseNetCondition(fmt::format("{}", fmt::join(parts, ",")));
    if (!c.ok()) return Fail(c.status());
    TcOptions options;
    if (r.port > 0) {
      options.matches = {fmt::format("ip dport {} 0xffff", r.port),
                         fmt::format("ip sport {} 0xffff", r.port)};
    }
    if (Status s = TcApply(target, *c, options); !s.ok()) return Fail(s);
    std::cout << fmt::format("{}: {} on egress{}; `paretopipe netem clear --dev {}` removes it\n",
                             r.dev, FormatNetCondition(*c),
                             r.port > 0 ? fmt::format(" to and from port {}", r.port) : "", r.dev);
  }
  Result<std::string> shown = TcShow(target);
  if (!shown.ok()) return Fail(shown.status());
  std::cout << *shown;
  return 0;
}

// LoadForAnalysis for commands that need at least one run: NotFound, naming
// the filters, when none matches.
Result<std::vector<RunRecord>> LoadSomeForAnalysis(const AnalysisFilter& f, bool only_ok) {
  PP_ASSIGN_OR_RETURN(std::vector<RunRecord> runs, LoadForAnalysis(f, only_ok));
  if (runs.empty()) {
    return Status::NotFound(fmt::format("{}: no {}runs{}{}{}", f.db, only_ok ? "finished " : "",
                                        f.model.empty() ? "" : " of " + f.model,
                                        f.backend.empty() ? "" : " on " + f.backend,
                                        f.net.empty() ? "" : " under " + f.net));
  }
  return runs;
}

int CmdPareto(const AnalysisFilter& f, const std::string& latency, const std::string& by, bool csv,
              bool json) {
  const std::string& db = f.db;
  Result<LatencyStat> stat = ParseLatencyStat(latency);
  if (!stat.ok()) return Fail(stat.status());
  Result<std::vector<RunRecord>> runs = LoadSomeForAnalysis(f, /*only_ok=*/true);
  if (!runs.ok()) return Fail(runs.status());
  std::set<std::string> models;
  for (const RunRecord& r : *runs) models.insert(r.config.model);
  if (models.size() > 1) {
    return Fail(Status::InvalidArgument(
        fmt::format("{} holds runs of several models ({}); choose one with --model", db,
                    fmt::join(models, ", "))));
  }
  if (!csv && !json) {
    std::cout << (by == "backend" ? FormatBackendComparison(*runs, *stat)
                                  : FormatRunTable(*runs, *stat, RowOrder::kParetoFirst));
    return 0;
  }
  std::map<int64_t, const RunRecord*> by_id;
  for (const RunRecord& r : *runs) by_id[r.id] = &r;
  std::vector<ParetoResult> ranked;
  PlaceOnFronts(*runs, *stat, &ranked);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::string text =
      "run_id,cuts,backend,net,latency_ms,throughput_ips,on_front,knee,duplicate_of,"
      "dominated_by\n";
  for (const ParetoResult& p : ranked) {
    const RunRecord& r = *by_id[p.point.run_id];
    const std::string cuts = fmt::format("{}", fmt::join(r.config.cuts, ":"));
    out.push_back({{"run_id", r.id},
                   {"cuts", r.config.cuts},
                   {"backend", r.config.backend},
                   {"net", r.config.net},
                   {"latency_stat", LatencyStatName(*stat)},
                   {"latency_ms", p.point.latency_ms},
                   {"throughput_ips", p.point.throughput_ips},
                   {"on_front", p.on_front},
                   {"knee", p.knee},
                   {"duplicate_of", p.duplicate ? nlohmann::ordered_json(p.duplicate_of)
                                                : nlohmann::ordered_json()},
                   {"dominated_by", p.dominated_by}});
    // The condition's text has commas: quoted, as RFC 4180 has it.
    text += fmt::format("{},{},{},\"{}\",{},{},{},{},{},{}\n", r.id, cuts, r.config.backend,
                        r.config.net, p.point.latency_ms, p.point.throughput_ips,
                        p.on_front ? 1 : 0, p.knee ? 1 : 0,
                        p.duplicate ? std::to_string(p.duplicate_of) : "", p.dominated_by);
  }
  std::cout << (json ? out.dump(2) + "\n" : text);
  return 0;
}

int CmdExport(const AnalysisFilter& f, bool csv, const std::string& output) {
  Result<std::vector<RunRecord>> runs = LoadForAnalysis(f, /*only_ok=*/false);
  if (!runs.ok()) return Fail(runs.status());
  const std::string text = csv ? RunsToCsv(*runs) : RunsToJson(*runs);
  if (output.empty() || output == "-") {
    std::cout << text;
    return 0;
  }
  std::ofstream out(output);
  if (!(out << text))
    return Fail(Status::IoError(fmt::format("cannot write {}: {}", output, std::strerror(errno))));
  return 0;
}

int CmdReport(const AnalysisFilter& f, const std::string& latency, const std::string& output_dir,
              const std::string& gnuplot) {
  Result<LatencyStat> stat = ParseLatencyStat(latency);
  if (!stat.ok()) return Fail(stat.status());
  // Failed runs too: the page lists them with their errors.
  Result<std::vector<RunRecord>> runs = LoadSomeForAnalysis(f, /*only_ok=*/false);
  if (!runs.ok()) return Fail(runs.status());
  ReportOptions options;
  options.output_dir = output_dir;
  options.latency = *stat;
  options.gnuplot = gnuplot;
  options.source = f.db;
  Result<ReportResult> report = WriteReport(*runs, options);
  if (!report.ok()) return Fail(report.status());
  std::printf("%s: %zu runs, %d figures (each also as .svg, .png and the gnuplot script)\n",
              report->index_html.c_str(), runs->size(), report->figures);
  if (!report->accuracy_disagreements.empty()) {
    std::vector<std::string> ids;
    for (const AccuracyDisagreement& d : report->accuracy_disagreements)
      ids.push_back(fmt::format("#{}", d.run_id));
    std::fprintf(stderr,
                 "paretopipe: warning: accuracy differs between runs that must agree: runs %s "
                 "(flagged in the report)\n",
                 fmt::format("{}", fmt::join(ids, ", ")).c_str());
  }
  return 0;
}

int CmdPlot(const AnalysisFilter& f, const std::string& latency, const std::string& kind,
            const std::string& output, const std::string& gnuplot) {
  Result<LatencyStat> stat = ParseLatencyStat(latency);
  if (!stat.ok()) return Fail(stat.status());
  Result<FigureKind> figure = ParseFigureKind(kind);
  if (!figure.ok()) return Fail(figure.status());
  Result<std::vector<RunRecord>> runs = LoadSomeForAnalysis(f, /*only_ok=*/true);
  if (!runs.ok()) return Fail(runs.status());
  Status s = WritePlot(*runs, *figure, *stat, output, gnuplot);
  if (!s.ok()) return Fail(s);
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "ParetoPipe: where should a neural network be split across edge devices?\n"
      "Runs every split of a model as a pipeline, measures latency and throughput, "
      "and finds the Pareto front."};
  app.name("paretopipe");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(PARETOPIPE_VERSION));

  bool models_json = false;
  CLI::App* models =
      app.add_subcommand("models", "List the built-in models and their split points");
  models->add_flag("--json", models_json, "Print JSON");

  ModelOptions cuts_model;
  int64_t cuts_batch = 1, cuts_input = 0;
  bool cuts_json = false;
  CLI::App* cuts = app.add_subcommand("cuts",
                                      "Per cut index: the blocks on each side, the activation "
                                      "crossing it and the multiply-accumulates (MACs) before it");
  AddModelOptions(cuts, cuts_model, /*with_weights=*/false);
  cuts->add_option("--batch,-b", cuts_batch, "Batch size")->capture_default_str();
  cuts->add_option("--input-size", cuts_input,
                   "Square input side (default: the model's nominal size)");
  cuts->add_flag("--json", cuts_json, "Print JSON");
  AddGranularityOption(cuts, cuts_model);
  cuts->add_option("--max-cut-tensors", cuts_model.max_cut_tensors,
                   "TorchScript models: admit cuts that carry up to N tensors (e.g. 2 inside a "
                   "residual block: the skip connection and the main path)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  ModelOptions profile_model;
  ProfileRequest profile_request;
  std::string profile_output;
  CLI::App* profile = app.add_subcommand(
      "profile", "Time every block of a model on this machine; write a device profile (JSON)");
  AddModelOptions(profile, profile_model, /*with_weights=*/true);
  AddGranularityOption(profile, profile_model);
  profile->add_option("--batch,-b", profile_request.batch, "Batch size")->capture_default_str();
  profile->add_option("--repeat,-r", profile_request.repeat, "Timed passes")->capture_default_str();
  profile->add_option("--warmup", profile_request.warmup, "Untimed passes before timing")
      ->capture_default_str();
  profile
      ->add_option("--threads,-t", profile_request.threads, "Intra-op threads (default: all CPUs)")
      ->check(CLI::PositiveNumber);
  profile->add_option("--device", profile_request.device, "cpu, cuda or cuda:N")
      ->capture_default_str();
  profile->add_option("--input-size", profile_request.input_side_px,
                      "Square input side (default: the model's nominal size)");
  profile->add_option("-o,--output", profile_output, "Write the profile JSON to this file");

  ModelOptions run_model;
  RunFileRequest run_request;
  CLI::App* run = app.add_subcommand(
      "run",
      "Run blocks [from, to) of a model on a tensor file (torch.save format) and write the result");
  AddModelOptions(run, run_model, /*with_weights=*/true);
  run->add_option("--from", run_request.from, "First block")->capture_default_str();
  run->add_option("--to", run_request.to, "One past the last block (default: the end)");
  run->add_option("--input,-i", run_request.input_path, "Input tensor file (torch.save(tensor))")
      ->required();
  run->add_option("--output,-o", run_request.output_path, "Output tensor file")->required();
  run->add_option("--threads,-t", run_request.threads, "Intra-op threads (default: all CPUs)")
      ->check(CLI::PositiveNumber);
  run->add_option("--device", run_request.device, "cpu, cuda or cuda:N")->capture_default_str();
  AddGranularityOption(run, run_model);
  run->add_option("--input-size", run_request.input_side_px,
                  "TorchScript models with --from > 0: the image side the blocks were numbered "
                  "at (as given to `cuts --input-size`; default 224)");

  WorkerOptions worker_options;
  std::string worker_listen = "127.0.0.1:7000", worker_log_level = "info";
  CLI::App* worker = app.add_subcommand(
      "worker",
      "Serve pipeline stages to an orchestrator (`paretopipe sweep --workers`) until stopped");
  worker
      ->add_option(
          "--listen", worker_listen,
          "HOST:PORT to listen on (port 0: any free port). Loopback by default: anyone who "
          "can reach this port can make the worker compute, so another address needs "
          "--token-file")
      ->capture_default_str();
  WorkerSecurityFiles worker_files;
  worker->add_option(
      "--token-file", worker_files.token,
      "File holding a shared secret (mode 600; one trailing newline ignored). Every connection "
      "(orchestrator, other workers, grpc links) must then prove it holds the same secret, by "
      "a challenge-response that never sends it; torch runs are refused. Required to listen "
      "beyond loopback");
  worker->add_option("--tls-cert", worker_files.tls_cert,
                     "PEM certificate of the grpc backend's server (with --tls-key): its links "
                     "are then TLS, and the previous stage's worker needs --tls-ca");
  worker->add_option("--tls-key", worker_files.tls_key, "PEM private key of --tls-cert");
  worker->add_option("--tls-ca", worker_files.tls_ca,
                     "PEM CA certificate: this worker's grpc links to the next stage use TLS and "
                     "verify its certificate (which must name the host in its address)");
  worker->add_flag("--allow-unauthenticated-torch", worker_options.allow_unauthenticated_torch,
                   "With --token-file, accept torch runs all the same: c10d's store and Gloo "
                   "accept any peer while a run lasts. Only on a network you trust");
  worker
      ->add_option("--grpc-port", worker_options.grpc_port,
                   "Port of the grpc backend's server, on the --listen address (0: any free "
                   "port; orchestrators learn it from the worker)")
      ->capture_default_str();
  worker
      ->add_option("--device", worker_options.device,
                   "Where this worker's stages compute: cpu, cuda or cuda:N (a GPU needs a build "
                   "against a CUDA LibTorch, docs/gpu.md)")
      ->capture_default_str();
  worker->add_option("--threads,-t", worker_options.threads, "Intra-op threads (default: all CPUs)")
      ->check(CLI::PositiveNumber);
  worker->add_option(
      "--weights", worker_options.weights_files,
      "Local weights files (state dicts); used instead of receiving the tensors when "
      "the orchestrator's file has the same SHA-256");
  worker->add_flag("--allow-remote-models", worker_options.allow_remote_models,
                   "Accept TorchScript models' segments from the orchestrator. A TorchScript "
                   "module is code that can call any operator (read and write files, open "
                   "sockets): allow it only for orchestrators you trust");
  worker->add_option("--log-level", worker_log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  SweepOptions sweep_options;
  ModelOptions sweep_model;
  std::string sweep_workers, sweep_latency = "mean";
  CLI::App* sweep = app.add_subcommand("sweep",
                                       "Run a model split at every cut (or the cuts given) as a "
                                       "pipeline over workers; store every run");
  AddModelOptions(sweep, sweep_model, /*with_weights=*/true);
  sweep
      ->add_option("--cuts", sweep_options.cuts,
                   "all, a list of cuts (3,8,14) for 2 stages, or of tuples (3:9,5:12) for more")
      ->capture_default_str();
  sweep->add_option(
      "--workers", sweep_workers,
      "HOST:PORT of each stage's worker, comma-separated, in stage order (default: start "
      "--local workers on this machine, which get a fresh shared secret of the sweep's own)");
  std::string sweep_token_file;
  sweep->add_option("--token-file", sweep_token_file,
                    "The --workers' shared secret (the file each was given as --token-file): "
                    "the sweep proves it holds it, and checks each worker does too");
  sweep
      ->add_option("--local", sweep_options.local,
                   "Local workers (= stages) when --workers is not given")
      ->capture_default_str()
      ->check(CLI::Range(2, 64));
  sweep->add_option("--batch,-b", sweep_options.batch_size, "Images per batch")
      ->capture_default_str();
  sweep->add_option("--batches", sweep_options.batches, "Batches per repeat, warm-up included")
      ->capture_default_str();
  sweep
      ->add_option("--warmup", sweep_options.warmup,
                   "Leading batches excluded from every statistic")
      ->capture_default_str();
  sweep
      ->add_option("--window", sweep_options.window,
                   "Batches in flight at most (1: one at a time; more: stages overlap)")
      ->capture_default_str();
  sweep
      ->add_option("--repeat,-r", sweep_options.repeats,
                   "Measurement passes per run (gives 95% CIs)")
      ->capture_default_str();
  sweep
      ->add_option("--backend", sweep_options.backend,
                   fmt::format("Transports between stages, comma-separated: tcp (our framing), "
                               "grpc, torch (c10d Gloo); this build has {}. Every cut runs on "
                               "each, interleaved, so drift in the machine's speed does not "
                               "favour one",
                               fmt::join(BackendNames(), ", ")))
      ->capture_default_str();
  sweep
      ->add_option("--threads,-t", sweep_options.threads,
                   "Intra-op threads per local worker (default: CPUs / workers)")
      ->check(CLI::PositiveNumber);
  sweep->add_option("--input-size", sweep_options.input_side_px,
                    "Square input side (default: the model's nominal size)");
  sweep->add_option("--db", sweep_options.db_path, "SQLite file the runs go to")
      ->capture_default_str();
  double sweep_stall_s = 60;
  sweep
      ->add_option("--stall-timeout", sweep_stall_s,
                   "Seconds a stage waits for a frame or a credit before the run fails (raise it "
                   "for models whose batch takes longer than this on a slow device)")
      ->capture_default_str();
  sweep
      ->add_option("--latency", sweep_latency,
                   "Latency statistic of the final table: mean, p50, p95, p99")
      ->capture_default_str();
  sweep->add_option(
      "--net", sweep_options.net,
      "Network condition on the links between stages, repeatable: every cut runs under each "
      "(none, or keys delay, jitter, loss, rate, burst, dir, e.g. delay=200ms,rate=5mbit). "
      "delay is added in each direction of a link, so the round trip grows by twice the delay; "
      "dir=forward limits the condition to the direction of the activations, like netem on one "
      "interface. Applied on --testbed netns; with --workers, a single --net only labels runs "
      "whose network you shaped yourself (`paretopipe netem apply`). Every run also records the "
      "round trip and rate measured on its links just before it");
  sweep
      ->add_option("--testbed", sweep_options.testbed,
                   "netns: each local worker in its own network namespace, joined by a switch "
                   "whose links carry the --net conditions (needs root)")
      ->check(CLI::IsMember({"netns"}));
  sweep->add_option(
      "--local-device", sweep_options.local_devices,
      "Limit local worker i (in order) like a slower device, repeatable: "
      "NAME=cpus:0,quota:0.25,threads:1,device:cuda (CPU affinity; CPU quota in CPUs through a "
      "cgroup; intra-op threads; the worker's --device). Recorded with every run");
  AddGranularityOption(sweep, sweep_model);
  sweep
      ->add_option("--max-cut-tensors", sweep_model.max_cut_tensors,
                   "TorchScript models: also run cuts that carry up to N tensors (inside a "
                   "skip connection); each tensor travels as its own frame of the batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bool sweep_fail_fast = false;
  sweep->add_flag("--fail-fast", sweep_fail_fast,
                  "Stop at the first failed run (it is stored) instead of going on with the next "
                  "configuration");
  sweep->add_flag(
      "--resume{last}", sweep_options.resume,
      "Continue a sweep in --db: --resume (this model's latest sweep) or --resume=SWEEP_ID. Runs "
      "already complete there are skipped, failed ones run again and replace their failed "
      "record; give the same options as the sweep had");
  double sweep_heartbeat_s = 10;
  sweep
      ->add_option("--heartbeat-timeout", sweep_heartbeat_s,
                   "Seconds without a reply or heartbeat from a busy worker before it counts as "
                   "dead or hung and the run fails (workers send a heartbeat every second)")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  sweep->add_flag("--verify", sweep_options.verify,
                  "Check every run's outputs against the whole model, computed by the "
                  "orchestrator on the same inputs; a run whose outputs differ fails");
  sweep->add_flag("--plan-first", sweep_options.plan_first,
                  "Predict before measuring: each worker profiles the model on its own device, "
                  "and under each --net only the cuts predicted on or near (--margin) the Pareto "
                  "front and a few dominated controls are run; the sweep ends saying what that "
                  "saved and whether "
                  "a control beat the predicted front (docs/planner.md)");
  sweep
      ->add_option("--controls", sweep_options.plan_controls,
                   "--plan-first: dominated cuts measured per condition, the ones predicted "
                   "closest to the front")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  sweep
      ->add_option("--margin", sweep_options.plan_margin,
                   "--plan-first: also measure the cuts predicted within this fraction of the "
                   "front (the prediction's error; 0.05: 5%)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  sweep
      ->add_option("--profile-repeat", sweep_options.plan_profile_repeat,
                   "--plan-first: timed passes of each worker's profile")
      ->check(CLI::Range(1, 200))
      ->capture_default_str();
  std::string sweep_base_link;
  sweep->add_option("--base-link", sweep_base_link,
                    "--plan-first: the link between workers before any --net, as rtt=..,rate=.. "
                    "or a link.json from `paretopipe linkprobe` (default: none, no cost)");
  sweep->add_option("--dataset", sweep_options.input.dataset,
                    "Feed real images instead of synthetic ones: cifar10:DIR (the CIFAR-10 binary "
                    "test batch, DIR/test_batch.bin or the file itself). Every run then reports "
                    "top-1 accuracy, which must be the same at every cut");
  sweep->add_option("--images", sweep_options.input.images_dir,
                    "Feed the JPEG and PNG files of DIR (subfolders are classes, as torchvision's "
                    "ImageFolder; their sorted order gives the label indices)");
  sweep
      ->add_option("--mean", sweep_options.input.mean,
                   "Normalization mean of --dataset/--images, one value or R,G,B (torchvision's "
                   "Normalize; 0.485,0.456,0.406 for ImageNet-trained weights)")
      ->capture_default_str();
  sweep
      ->add_option("--std", sweep_options.input.std,
                   "Normalization std, one value or R,G,B (0.229,0.224,0.225 for ImageNet)")
      ->capture_default_str();
  sweep
      ->add_option("--max-images", sweep_options.input.max_images,
                   "Images of --dataset/--images loaded (at most one pass's worth); batches "
                   "cycle through them")
      ->capture_default_str();

  NetemRequest netem_request;
  CLI::App* netem = app.add_subcommand(
      "netem",
      "Emulate a network condition on an interface with tc (netem for delay, jitter and loss; "
      "tbf, or htb with --port, for rate). Changes need root");
  netem->require_subcommand(1);
  CLI::App* netem_apply =
      netem->add_subcommand("apply", "Replace the interface's root qdisc with the condition");
  CLI::App* netem_clear = netem->add_subcommand("clear", "Remove what apply added");
  CLI::App* netem_show = netem->add_subcommand("show", "Show the qdiscs, classes and filters");
  for (CLI::App* sub : {netem_apply, netem_clear, netem_show}) {
    sub->add_option("--dev", netem_request.dev, "Interface, e.g. eth0")->required();
  }
  netem_apply->add_option("--delay", netem_request.delay,
                          "Added to every packet leaving the interface, e.g. 200ms");
  netem_apply->add_option("--jitter", netem_request.jitter, "Uniform around the delay, e.g. 10ms");
  netem_apply->add_option("--loss", netem_request.loss, "Packets dropped, e.g. 0.5%");
  netem_apply->add_option("--rate", netem_request.rate, "Rate limit, e.g. 5mbit");
  netem_apply->add_option("--burst", netem_request.burst,
                          "Token bucket depth, e.g. 32kbit (default: 10 ms at the rate, at "
                          "least one packet)");
  netem_apply
      ->add_option("--port", netem_request.port,
                   "Shape only TCP/UDP traffic to or from this port (a u32 filter), e.g. the "
                   "pipeline's; the rest passes unshaped")
      ->check(CLI::Range(1, 65535));

  std::string pareto_db = "paretopipe.db", pareto_model, pareto_sweep, pareto_latency = "mean";
  std::string pareto_backend, pareto_by;
  bool pareto_csv = false, pareto_json = false;
  CLI::App* pareto = app.add_subcommand("pareto",
                                        "The Pareto front of stored runs (lowest latency, highest "
                                        "throughput), then the dominated runs");
  pareto->add_option("--db", pareto_db, "SQLite file of runs")->capture_default_str();
  pareto->add_option("--model", pareto_model, "Only runs of this model");
  pareto->add_option("--sweep", pareto_sweep, "Only runs of this sweep id, or `last`");
  pareto->add_option("--backend", pareto_backend, "Only runs on this backend (tcp, grpc, torch)");
  std::string pareto_net;
  pareto->add_option("--net", pareto_net,
                     "Only runs under this network condition (as `sweep --net` wrote it)");
  CLI::Option* pby =
      pareto
          ->add_option(
              "--by", pareto_by,
              "backend: the backends side by side for each cut, with the per-hop breakdown")
          ->check(CLI::IsMember({"backend"}));
  pareto->add_option("--latency", pareto_latency, "mean, p50, p95 or p99")->capture_default_str();
  auto* pcsv = pareto->add_flag("--csv", pareto_csv, "Print CSV");
  auto* pjson = pareto->add_flag("--json", pareto_json, "Print JSON")->excludes(pcsv);
  pby->excludes(pcsv)->excludes(pjson);

  std::string export_db = "paretopipe.db", export_model, export_sweep, export_output;
  bool export_csv = false, export_json = false;
  CLI::App* exportc = app.add_subcommand("export", "Every stored run, one row each (for pandas)");
  exportc->add_option("--db", export_db, "SQLite file of runs")->capture_default_str();
  exportc->add_option("--model", export_model, "Only runs of this model");
  exportc->add_option("--sweep", export_sweep, "Only runs of this sweep id, or `last`");
  std::string export_backend;
  exportc->add_option("--backend", export_backend, "Only runs on this backend (tcp, grpc, torch)");
  std::string export_net;
  exportc->add_option("--net", export_net,
                      "Only runs under this network condition (as `sweep --net` wrote it)");
  exportc->add_option("-o,--output", export_output,
                      "Write to this file (default: standard output)");
  auto* ecsv = exportc->add_flag("--csv", export_csv, "CSV");
  auto* ejson = exportc->add_flag("--json", export_json, "JSON array of objects")->excludes(ecsv);
  exportc->callback([&] {
    if (!export_csv && !export_json) throw CLI::RequiredError("--csv or --json");
  });
  (void)ejson;

  AnalysisFilter report_filter{"paretopipe.db", "", "", "", ""};
  std::string report_latency = "mean", report_output = "report", report_gnuplot = "gnuplot";
  CLI::App* report = app.add_subcommand(
      "report",
      "An HTML page (self-contained, opens offline) with every figure and a sortable table of "
      "every run; each figure also as SVG and PNG (docs/report.md; needs gnuplot-nox)");
  report->add_option("--db", report_filter.db, "SQLite file of runs")->capture_default_str();
  report->add_option("--model", report_filter.model,
                     "Only runs of this model (default: every model)");
  report->add_option("--sweep", report_filter.sweep, "Only runs of this sweep id, or `last`");
  report->add_option("--backend", report_filter.backend, "Only runs on this backend");
  report->add_option("--net", report_filter.net,
                     "Only runs under this network condition (as `sweep --net` wrote it)");
  report->add_option("--latency", report_latency, "mean, p50, p95 or p99")->capture_default_str();
  report->add_option("-o,--output", report_output, "Directory to write index.html and figures into")
      ->capture_default_str();
  report->add_option("--gnuplot", report_gnuplot, "gnuplot program")->capture_default_str();

  AnalysisFilter plot_filter{"paretopipe.db", "", "", "", ""};
  std::string plot_latency = "mean", plot_kind = "front", plot_output, plot_gnuplot = "gnuplot";
  CLI::App* plot = app.add_subcommand(
      "plot",
      "One figure of one model's runs, as SVG or PNG from the file's extension, for scripts");
  plot->add_option("--db", plot_filter.db, "SQLite file of runs")->capture_default_str();
  plot->add_option("--model", plot_filter.model, "Only runs of this model (needed with several)");
  plot->add_option("--sweep", plot_filter.sweep, "Only runs of this sweep id, or `last`");
  plot->add_option("--backend", plot_filter.backend, "Only runs on this backend");
  plot->add_option("--net", plot_filter.net,
                   "Only runs under this network condition (as `sweep --net` wrote it)");
  plot->add_option("--latency", plot_latency, "mean, p50, p95 or p99")->capture_default_str();
  std::vector<std::string> plot_kinds;
  for (FigureKind kind : AllFigureKinds()) plot_kinds.push_back(FigureKindName(kind));
  plot->add_option("--kind", plot_kind,
                   "front (latency against throughput), breakdown (compute, transfer, queueing "
                   "per cut), bytes (bytes crossing each cut), moves (fronts per network "
                   "condition and backend) or prediction (the planner's predictions against "
                   "the measurements)")
      ->check(CLI::IsMember(plot_kinds))
      ->capture_default_str();
  plot->add_option("-o,--output", plot_output, "FILE.svg or FILE.png")->required();
  plot->add_option("--gnuplot", plot_gnuplot, "gnuplot program")->capture_default_str();

  PlanCommand plan(app);
  LinkProbeCommand linkprobe(app);
  ValidateCommand validate(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "paretopipe: error: %s (see --help)\n", e.what());
    return 2;
  }

  // The model name is checked before anything is built (or a database
  // created), for a fast, clear error. A TorchScript file is checked when it
  // is loaded.
  auto check_model = [](const ModelOptions& m) -> Status {
    if (IsTorchScriptFile(m.name)) return Status::Ok();
    Result<ZooEntry> entry = FindZooModel(m.name);
    return entry.status();
  };
  if (models->parsed()) return CmdModels(models_json);
  if (cuts->parsed()) {
    if (Status s = check_model(cuts_model); !s.ok()) return Fail(s);
    return CmdCuts(cuts_model, cuts_batch, cuts_input, cuts_json);
  }
  if (profile->parsed()) {
    if (Status s = check_model(profile_model); !s.ok()) return Fail(s);
    profile_request.model = profile_model.Spec();
    return CmdProfile(profile_request, profile_output);
  }
  if (worker->parsed()) {
    if (Status s = LoadWorkerSecurity(worker_files, &worker_options); !s.ok()) return Fail(s);
    return CmdWorker(worker_options, worker_listen, worker_log_level);
  }
  if (sweep->parsed()) {
    if (Status s = check_model(sweep_model); !s.ok()) return Fail(s);
    sweep_options.model = sweep_model.name;
    sweep_options.granularity = sweep_model.granularity;
    sweep_options.max_cut_tensors = sweep_model.max_cut_tensors;
    sweep_options.num_classes = sweep_model.num_classes;
    sweep_options.seed = sweep_model.seed;
    sweep_options.weights_path = sweep_model.weights;
    if (!sweep_workers.empty()) sweep_options.workers = CLI::detail::split(sweep_workers, ',');
    if (!sweep_token_file.empty()) {
      Result<std::string> secret = ReadSecretFile(sweep_token_file);
      if (!secret.ok()) return Fail(secret.status());
      sweep_options.secret = *secret;
    }
    sweep_options.stall_timeout =
        std::chrono::milliseconds(static_cast<int64_t>(sweep_stall_s * 1000));
    sweep_options.heartbeat_timeout =
        std::chrono::milliseconds(static_cast<int64_t>(sweep_heartbeat_s * 1000));
    sweep_options.keep_going = !sweep_fail_fast;
    if (!sweep_base_link.empty()) {
      if (!sweep_options.plan_first) {
        return Fail(Status::InvalidArgument("--base-link is for --plan-first"));
      }
      Result<LinkModel> link = cli::ReadLinkValue(sweep_base_link);
      if (!link.ok()) return Fail(link.status().WithContext("--base-link"));
      sweep_options.plan_base_link = *link;
    }
    return CmdSweep(sweep_options, sweep_latency);
  }
  if (netem->parsed()) {
    const std::string action = netem_apply->parsed()   ? "apply"
                               : netem_clear->parsed() ? "clear"
                                                       : "show";
    return CmdNetem(action, netem_request);
  }
  if (plan.parsed()) return plan.Run();
  if (linkprobe.parsed()) return linkprobe.Run();
  if (validate.parsed()) return validate.Run();
  if (pareto->parsed()) {
    return CmdPareto(
        AnalysisFilter{pareto_db, pareto_model, pareto_backend, pareto_sweep, pareto_net},
        pareto_latency, pareto_by, pareto_csv, pareto_json);
  }
  if (exportc->parsed())
    return CmdExport(
        AnalysisFilter{export_db, export_model, export_backend, export_sweep, export_net},
        export_csv, export_output);
  if (report->parsed())
    return CmdReport(report_filter, report_latency, report_output, report_gnuplot);
  if (plot->parsed())
    return CmdPlot(plot_filter, plot_latency, plot_kind, plot_output, plot_gnuplot);
  if (run->parsed()) {
    if (Status s = check_model(run_model); !s.ok()) return Fail(s);
    run_request.model = run_model.Spec();
    return CmdRun(run_request);
  }
  return 0;
}

}  // namespace
}  // namespace paretopipe::cli

int main(int argc, char** argv) {
  try {
    return paretopipe::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    // Last line of defence: the layers below return Status; this keeps a
    // missed exception from becoming an abort with a stack trace.
    std::string message = e.what();
    std::fprintf(stderr, "paretopipe: error: %s\n", message.substr(0, message.find('\n')).c_str());
    return 1;
  }
}
