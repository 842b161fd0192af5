// Soak: do two long-lived workers leak memory or descriptors when they are
// reconfigured thousands of times? (docs/BENCHMARKS.md, "Soak"; not run in CI.)
//
// Starts two local `paretopipe worker` processes once, then runs small
// sweeps on them (every cut of the model, on every backend given) until
// --minutes have passed. After each sweep it samples each worker's resident
// memory (VmRSS, /proc/PID/status) and open descriptors (/proc/PID/fd). It
// passes when, after the warm-up sweeps, every worker's RSS stays within 5%
// of its value at the end of warm-up and its descriptor count does not grow
// (beyond two descriptors of a connection still closing).
//
// Usage: soak_bench [MODEL] [--minutes 10] [--warmup-sweeps 3] [--backend tcp,grpc,torch]
//        [--csv FILE]
// --backend defaults to every backend of this build.
// Exit status: 0 flat, 1 growth found, 2 a sweep failed to run.
#include <dirent.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/stage_transport.h"
#include "sweep/local_workers.h"
#include "sweep/sweep.h"

namespace {

// VmRSS of `pid` in KiB; -1 when unreadable.
int64_t RssKiB(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

// Open descriptors of `pid`; -1 when unreadable.
int OpenFds(pid_t pid) {
  DIR* dir = opendir(fmt::format("/proc/{}/fd", pid).c_str());
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

struct Sample {
  double elapsed_s;
  int sweeps;
  int64_t reconfigurations;  // Per worker: one configure per run.
  std::vector<int64_t> rss_kib;
  std::vector<int> fds;
};

}  // namespace

int main(int argc, char** argv) {
  std::string model = "mobilenet_v2", csv;
  std::string backend = fmt::format("{}", fmt::join(paretopipe::BackendNames(), ","));
  double minutes = 10;
  int warmup_sweeps = 3;
  CLI::App app{"Worker memory and descriptors over repeated sweeps"};
  app.add_option("MODEL", model);
  app.add_option("--minutes", minutes);
  app.add_option("--warmup-sweeps", warmup_sweeps);
  app.add_option("--backend", backend);
  app.add_option("--csv", csv, "Write every sample as CSV");
  CLI11_PARSE(app, argc, argv);

  paretopipe::LocalWorkerOptions lo;
  lo.binary = PARETOPIPE_BINARY;
  lo.count = 2;
  lo.allow_unauthenticated_torch = true;  // Its own workers, on this machine.
  paretopipe::Result<paretopipe::LocalWorkers> workers = paretopipe::LocalWorkers::Start(lo);
  if (!workers.ok()) {
    std::cerr << "soak_bench: " << workers.status().message() << "\n";
    return 2;
  }
  paretopipe::SweepOptions o;
  o.model = model;
  o.input_side_px = 32;  // Small: the point is many reconfigurations, not compute.
  o.batch_size = 1;
  o.batches = 3;
  o.warmup = 1;
  o.window = 2;
  o.repeats = 1;
  o.backend = backend;
  o.db_path = fmt::format("/tmp/soak_bench_{}.db", getpid());
  o.binary = PARETOPIPE_BINARY;
  for (const paretopipe::Endpoint& e : workers->endpoints()) o.workers.push_back(e.ToString());
  o.secret = workers->secret();

  const auto begin = std::chrono::steady_clock::now();
  const auto end = begin + std::chrono::duration<double>(minutes * 60);
  std::vector<Sample> samples;
  int64_t runs_per_worker = 0;
  fmt::print("{} at 32 px, every cut on {}, 2 workers (pids {}, {})\n", model, backend,
             workers->pids()[0], workers->pids()[1]);
  fmt::print("{:>8} {:>7} {:>9} {:>11} {:>11} {:>6} {:>6}\n", "time s", "sweeps", "configs",
             "w1 RSS MiB", "w2 RSS MiB", "w1 fd", "w2 fd");
  while (std::chrono::steady_clock::now() < end) {
    std::ostringstream progress;
    paretopipe::Result<paretopipe::SweepResult> result = paretopipe::RunSweep(o, progress);
    if (!result.ok()) {
      std::cerr << "soak_bench: " << result.status().message() << "\n" << progress.str();
      return 2;
    }
    for (const paretopipe::RunRecord& r : result->runs) {
      if (r.status != "ok") {
        std::cerr << "soak_bench: a run failed: " << r.error << "\n";
        return 2;
      }
    }
    runs_per_worker += static_cast<int64_t>(result->runs.size());
    Sample s{std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count(),
             static_cast<int>(samples.size()) + 1,
             runs_per_worker,
             {},
             {}};
    // The sweep closed its control sessions as it returned; let the workers
    // finish closing them, so a sample never counts a socket on its way out.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (pid_t pid : workers->pids()) {
      s.rss_kib.push_back(RssKiB(pid));
      s.fds.push_back(OpenFds(pid));
    }
    fmt::print("{:>8.0f} {:>7} {:>9} {:>11.1f} {:>11.1f} {:>6} {:>6}\n", s.elapsed_s, s.sweeps,
               s.reconfigurations, s.rss_kib[0] / 1024.0, s.rss_kib[1] / 1024.0, s.fds[0],
               s.fds[1]);
    std::fflush(stdout);
    samples.push_back(std::move(s));
  }
  std::remove(o.db_path.c_str());
  for (const char* suffix : {"-wal", "-shm"}) std::remove((o.db_path + suffix).c_str());
  if (!csv.empty()) {
    std::ofstream out(csv);
    out << "elapsed_s,sweeps,reconfigurations,w1_rss_kib,w2_rss_kib,w1_fds,w2_fds\n";
    for (const Sample& s : samples) {
      out << fmt::format("{:.1f},{},{},{},{},{},{}\n", s.elapsed_s, s.sweeps, s.reconfigurations,
                         s.rss_kib[0], s.rss_kib[1], s.fds[0], s.fds[1]);
    }
  }
  if (static_cast<int>(samples.size()) <= warmup_sweeps + 1) {
    std::cerr << "soak_bench: too few sweeps after warm-up to judge; give more --minutes\n";
    return 2;
  }
  bool flat = true;
  const Sample& base = samples[warmup_sweeps - 1];
  for (size_t w = 0; w < base.rss_kib.size(); ++w) {
    int64_t max_rss = 0;
    int max_fds = 0;
    for (size_t i = warmup_sweeps; i < samples.size(); ++i) {
      max_rss = std::max(max_rss, samples[i].rss_kib[w]);
      max_fds = std::max(max_fds, samples[i].fds[w]);
    }
    const double growth = static_cast<double>(max_rss) / base.rss_kib[w] - 1;
    // Two descriptors of slack: a connection of the last run may still be
    // closing (gRPC, Gloo tear down in the background). A leak grows by one
    // or more per run: thousands here.
    const bool ok = growth <= 0.05 && max_fds <= base.fds[w] + 2;
    flat = flat && ok;
    fmt::print(
        "worker {}: RSS {:.1f} MiB after warm-up, at most {:.1f} MiB later ({:+.1f}%); "
        "descriptors {} after warm-up, at most {} later: {}\n",
        w + 1, base.rss_kib[w] / 1024.0, max_rss / 1024.0, 100 * growth, base.fds[w], max_fds,
        ok ? "flat" : "GROWS");
  }
  return flat ? 0 : 1;
}
