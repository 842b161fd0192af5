// Pipeline efficiency and sweep overhead, measured by a real sweep on local
// workers (docs/BENCHMARKS.md, "Pipeline efficiency and sweep overhead").
//
// Efficiency of a run = measured throughput / bound, where the bound is
// batch / max over stages of the mean compute time per batch: the
// throughput a pipeline would reach if its slowest stage computed without a
// pause. Sweep overhead = sweep wall time minus the time inside measurement
// passes, per run.
//
// Usage: pipeline_bench [MODEL] [--cuts all] [--batch 8] [--batches 64]
//        [--warmup 4] [--window 4] [--repeat 3] [--db FILE]
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <sstream>

#include "sweep/sweep.h"

int main(int argc, char** argv) {
  paretopipe::SweepOptions o;
  o.model = "mobilenet_v2";
  o.db_path = "/tmp/pipeline_bench.db";
  CLI::App app{"Pipeline efficiency and sweep overhead on local workers"};
  app.add_option("MODEL", o.model);
  app.add_option("--cuts", o.cuts);
  app.add_option("--batch", o.batch_size);
  app.add_option("--batches", o.batches);
  app.add_option("--warmup", o.warmup);
  app.add_option("--window", o.window);
  app.add_option("--repeat", o.repeats);
  app.add_option("--db", o.db_path);
  CLI11_PARSE(app, argc, argv);
  o.binary = PARETOPIPE_BINARY;

  std::ostringstream progress;
  paretopipe::Result<paretopipe::SweepResult> result = paretopipe::RunSweep(o, progress);
  if (!result.ok()) {
    std::cerr << "pipeline_bench: " << result.status().message() << "\n";
    return 1;
  }
  fmt::print("{} batch {}, {} batches ({} warm-up), window {}, {} repeat(s), 2 local workers\n",
             o.model, o.batch_size, o.batches, o.warmup, o.window, o.repeats);
  fmt::print("{:>6} {:>12} {:>12} {:>12} {:>12} {:>10}\n", "cut", "stage1 ms", "stage2 ms",
             "bound img/s", "img/s", "efficiency");
  std::vector<double> efficiencies;
  for (const paretopipe::RunRecord& r : result->runs) {
    if (r.status != "ok") {
      fmt::print("{:>6} failed: {}\n", fmt::join(r.config.cuts, ":"), r.error);
      continue;
    }
    double slowest_ms = 0;
    for (const auto& s : r.stages) slowest_ms = std::max(slowest_ms, s.compute_ms_mean);
    const double bound = r.config.batch_size * 1000.0 / slowest_ms;
    const double efficiency = r.throughput_ips.mean / bound;
    efficiencies.push_back(efficiency);
    fmt::print("{:>6} {:>12.2f} {:>12.2f} {:>12.1f} {:>12.1f} {:>10.3f}\n",
               fmt::join(r.config.cuts, ":"), r.stages[0].compute_ms_mean,
               r.stages.back().compute_ms_mean, bound, r.throughput_ips.mean, efficiency);
  }
  std::sort(efficiencies.begin(), efficiencies.end());
  if (!efficiencies.empty()) {
    fmt::print("efficiency: min {:.3f}, median {:.3f}, max {:.3f}\n", efficiencies.front(),
               efficiencies[efficiencies.size() / 2], efficiencies.back());
  }
  const double overhead = result->wall_s - result->passes_s;
  fmt::print("sweep wall {:.1f} s, inside passes {:.1f} s, overhead {:.1f} s = {:.3f} s per run\n",
             result->wall_s, result->passes_s, overhead, overhead / result->runs.size());
  return 0;
}
