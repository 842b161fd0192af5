// Does splitting a model cost compute? For every mobilenet_v2 cut, the whole
// model against its two stages (all three built fresh for each cut, so none
// has older, differently placed weights; the stages as two devices would) run
// back to back on one thread of control. Each iteration times both, in
// alternating order, so drift and noise of a shared machine hit both alike;
// the counter `overhead_pct` is the median over iterations of
// 100 x (split time / whole time - 1), a paired comparison that a few
// disturbed iterations cannot move. `whole_ms` and `split_ms` are medians.
//
//   build/bench/segment_bench --benchmark_min_time=5 [--benchmark_filter=...]
// Environment: PP_BENCH_BATCH (default 1), PP_BENCH_THREADS (default: all CPUs).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>

#include "metrics/stats.h"
#include "model/device.h"
#include "model/segment.h"

namespace paretopipe {
namespace {

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoll(v) : fallback;
}

std::unique_ptr<Segment> Build(BlockRange range) {
  auto segment = Segment::Build({"mobilenet_v2", 1000, 0, ""}, range);
  if (!segment.ok()) {
    std::fprintf(stderr, "%s\n", segment.status().message().c_str());
    std::exit(1);
  }
  return std::move(segment).value();
}

double TimeMs(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

void BM_MobileNetV2Split(benchmark::State& state) {
  const int64_t cut = state.range(0);
  const int64_t batch = EnvInt("PP_BENCH_BATCH", 1);
  (void)ConfigureCompute(static_cast<int>(EnvInt("PP_BENCH_THREADS", DefaultThreads())));
  auto whole = Build({0, -1});
  auto stage1 = Build({0, cut});
  auto stage2 = Build({cut, -1});
  const torch::Tensor x = torch::rand({batch, 3, 224, 224});
  for (int i = 0; i < 3; ++i) (void)stage2->Run(stage1->Run(x).value()), (void)whole->Run(x);  // Warm-up.

  std::vector<double> whole_ms, split_ms, overhead_pct;
  bool split_first = false;
  for (auto _ : state) {
    auto run_whole = [&] { benchmark::DoNotOptimize(whole->Run(x).value()); };
    auto run_split = [&] { benchmark::DoNotOptimize(stage2->Run(stage1->Run(x).value()).value()); };
    double w, s;
    if (split_first) {
      s = TimeMs(run_split);
      w = TimeMs(run_whole);
    } else {
      w = TimeMs(run_whole);
      s = TimeMs(run_split);
    }
    split_first = !split_first;
    whole_ms.push_back(w);
    split_ms.push_back(s);
    overhead_pct.push_back(100.0 * (s / w - 1.0));
    state.SetIterationTime(s / 1e3);
  }
  state.counters["whole_ms"] = Summarize(whole_ms).median;
  state.counters["split_ms"] = Summarize(split_ms).median;
  state.counters["overhead_pct"] = Summarize(overhead_pct).median;
}
BENCHMARK(BM_MobileNetV2Split)->DenseRange(1, 18)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace paretopipe

BENCHMARK_MAIN();
