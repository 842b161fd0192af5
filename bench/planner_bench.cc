// The planner's exact front (analysis/planner.h) on random problems of
// blocks x devices, as docs/BENCHMARKS.md reports it. No LibTorch.
//
// The problems look like profiled CNNs on mixed devices: block costs drawn
// log-normally, each device a speed factor (up to 25x apart) with per-block
// noise, activations shrinking along the model, and every ordered pair of
// devices its own link (1 Mbit/s..1 Gbit/s, 0.05..20 ms one way, 0..0.5 ms
// per message). Window 4, every stage count from 1 to the number of devices.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "analysis/planner.h"

namespace paretopipe {
namespace {

PlanProblem RandomProblem(int blocks, int devices, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  std::lognormal_distribution<double> block_cost(0.0, 0.8);
  PlanProblem p;
  std::vector<double> base(blocks);
  for (double& b : base) b = block_cost(rng);
  for (int d = 0; d < devices; ++d) {
    const double speed = std::exp(uniform(std::log(0.2), std::log(5.0)));
    std::vector<double> row(blocks);
    for (int b = 0; b < blocks; ++b) row[b] = base[b] * speed * uniform(0.8, 1.25);
    p.compute_ms.push_back(row);
  }
  for (int b = 0; b < blocks; ++b) {
    // From ~12 MB at the input side down to ~32 kB at the head, noisily.
    const double shrink = std::pow(400.0, -static_cast<double>(b) / blocks);
    p.block_output_bytes.push_back(static_cast<int64_t>(12.8e6 * shrink * uniform(0.5, 1.5)));
  }
  p.links.assign(devices, std::vector<LinkModel>(devices));
  for (int a = 0; a < devices; ++a) {
    for (int b = 0; b < devices; ++b) {
      p.links[a][b] = LinkModel{uniform(0, 0.5), std::exp(uniform(std::log(1e6), std::log(1e9))),
                                uniform(0.05, 20)};
    }
  }
  p.batch = 8;
  p.window = 4;
  return p;
}

// The variants: 0, the problem above; 1, one link model for every pair (as
// `plan --net` gives), which leaves more ties; 2, every device must run a
// stage (--stages N..N), which turns off the pruning by subsets of devices.
void RunPlanFront(benchmark::State& state, int variant) {
  const int blocks = static_cast<int>(state.range(0));
  const int devices = static_cast<int>(state.range(1));
  PlanProblem problem = RandomProblem(blocks, devices, 1234);
  if (variant == 1) {
    for (auto& row : problem.links) row.assign(devices, LinkModel{0.2, 100e6, 5});
  }
  if (variant == 2) problem.min_stages = devices;
  PlanFrontStats stats;
  size_t front_size = 0;
  for (auto _ : state) {
    Result<std::vector<PlanPrediction>> front = PlanFront(problem, &stats);
    if (!front.ok()) {
      state.SkipWithError(front.status().message().c_str());
      return;
    }
    front_size = front->size();
    benchmark::DoNotOptimize(front_size);
  }
  state.counters["front"] = static_cast<double>(front_size);
  state.counters["pairs_kept"] = static_cast<double>(stats.pairs_kept);
  state.counters["candidates"] = static_cast<double>(stats.candidates);
}

void BM_PlanFront(benchmark::State& state) { RunPlanFront(state, 0); }
void BM_PlanFrontOneLinkModel(benchmark::State& state) { RunPlanFront(state, 1); }
void BM_PlanFrontEveryDevice(benchmark::State& state) { RunPlanFront(state, 2); }

BENCHMARK(BM_PlanFront)
    ->ArgNames({"blocks", "devices"})
    ->ArgsProduct({{25, 50, 100, 200}, {2, 4, 8}})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK(BM_PlanFrontOneLinkModel)
    ->ArgNames({"blocks", "devices"})
    ->ArgsProduct({{200}, {4, 8}})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK(BM_PlanFrontEveryDevice)
    ->ArgNames({"blocks", "devices"})
    ->ArgsProduct({{200}, {4, 8}})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

}  // namespace
}  // namespace paretopipe

BENCHMARK_MAIN();
