#include "analysis/pareto.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>

namespace paretopipe {

Result<LatencyStat> ParseLatencyStat(const std::string& text) {
  for (LatencyStat stat :
       {LatencyStat::kMean, LatencyStat::kP50, LatencyStat::kP95, LatencyStat::kP99}) {
    if (text == LatencyStatName(stat)) return stat;
  }
  return Status::InvalidArgument(
      fmt::format("latency statistic '{}' is not one of mean, p50, p95, p99", text));
}

const char* LatencyStatName(LatencyStat stat) {
  switch (stat) {
    case LatencyStat::kMean:
      return "mean";
    case LatencyStat::kP50:
      return "p50";
    case LatencyStat::kP95:
      return "p95";
    case LatencyStat::kP99:
      return "p99";
  }
  return "unknown";
}

namespace {

bool IsValid(const ParetoPoint& p) {
  return std::isfinite(p.latency_ms) && std::isfinite(p.throughput_ips) && p.latency_ms >= 0 &&
         p.throughput_ips >= 0;
}

bool SameMetrics(const ParetoPoint& a, const ParetoPoint& b) {
  return a.latency_ms == b.latency_ms && a.throughput_ips == b.throughput_ips;
}

// The output order within each group: latency ascending, throughput
// descending, run id ascending.
bool BetterFirst(const ParetoPoint& a, const ParetoPoint& b) {
  if (a.latency_ms != b.latency_ms) return a.latency_ms < b.latency_ms;
  if (a.throughput_ips != b.throughput_ips) return a.throughput_ips > b.throughput_ips;
  return a.run_id < b.run_id;
}

// Counts, for each of `points` (all valid), the points that dominate it, in
// O(n log n): sweep by latency ascending, keep a Fenwick tree over throughput
// ranks of the points already swept, and count those with throughput at least
// as high. Points with the same latency enter the tree together before any
// of them is counted, and the exact equals (which do not dominate) are
// subtracted.
std::vector<int> CountDominators(const std::vector<ParetoPoint>& points,
                                 const std::vector<size_t>& by_metrics) {
  const size_t n = by_metrics.size();
  std::vector<double> throughputs;
  throughputs.reserve(n);
  for (size_t i : by_metrics) throughputs.push_back(points[i].throughput_ips);
  std::sort(throughputs.begin(), throughputs.end());
  throughputs.erase(std::unique(throughputs.begin(), throughputs.end()), throughputs.end());
  const size_t ranks = throughputs.size();
  // Fenwick tree indexed by descending throughput rank (1-based), so a prefix
  // sum counts the points with throughput >= a value.
  std::vector<int> tree(ranks + 1, 0);
  auto rank_of = [&](double throughput) {
    const size_t ascending = static_cast<size_t>(
        std::lower_bound(throughputs.begin(), throughputs.end(), throughput) - throughputs.begin());
    return ranks - ascending;  // 1 for the highest throughput.
  };
  auto add = [&](size_t rank) {
    for (; rank <= ranks; rank += rank & (~rank + 1)) ++tree[rank];
  };
  auto count_at_least = [&](size_t rank) {
    int total = 0;
    for (; rank > 0; rank -= rank & (~rank + 1)) total += tree[rank];
    return total;
  };

  std::vector<int> dominated_by(points.size(), 0);
  for (size_t group_begin = 0; group_begin < n;) {
    size_t group_end = group_begin;
    while (group_end < n &&
           points[by_metrics[group_end]].latency_ms == points[by_metrics[group_begin]].latency_ms) {
      add(rank_of(points[by_metrics[group_end]].throughput_ips));
      ++group_end;
    }
    // Within the group, `by_metrics` runs of exact equals are contiguous.
    for (size_t run_begin = group_begin; run_begin < group_end;) {
      size_t run_end = run_begin;
      while (run_end < group_end &&
             SameMetrics(points[by_metrics[run_end]], points[by_metrics[run_begin]])) {
        ++run_end;
      }
      const int at_least = count_at_least(rank_of(points[by_metrics[run_begin]].throughput_ips));
      for (size_t k = run_begin; k < run_end; ++k) {
        dominated_by[by_metrics[k]] = at_least - static_cast<int>(run_end - run_begin);
      }
      run_begin = run_end;
    }
    group_begin = group_end;
  }
  return dominated_by;
}

// Index into `front` of the knee, or -1. `front` is sorted by latency
// ascending and, being a front without duplicates, throughput ascending too.
int FindKnee(const std::vector<ParetoResult>& front) {
  if (front.size() == 1) return 0;
  if (front.size() < 3) return -1;
  const ParetoPoint& lo = front.front().point;
  const ParetoPoint& hi = front.back().point;
  const double latency_range = hi.latency_ms - lo.latency_ms;
  const double throughput_range = hi.throughput_ips - lo.throughput_ips;
  // Scaled to [0, 1], the ends are (0, 0) and (1, 1) and the distance to the
  // line joining them is |x - y| / sqrt(2); the constant factor is dropped.
  // A front that is straight to rounding error has no knee: 1e-9 of the
  // ranges is far above double rounding and far below any real bend.
  constexpr double kStraight = 1e-9;
  int knee = -1;
  double farthest = kStraight;
  for (size_t i = 1; i + 1 < front.size(); ++i) {
    const double x = (front[i].point.latency_ms - lo.latency_ms) / latency_range;
    const double y = (front[i].point.throughput_ips - lo.throughput_ips) / throughput_range;
    const double distance = std::abs(x - y);
    if (distance > farthest) {
      farthest = distance;
      knee = static_cast<int>(i);
    }
  }
  return knee;
}

}  // namespace

std::vector<ParetoResult> ParetoFront(const std::vector<ParetoPoint>& points) {
  std::vector<size_t> valid, invalid;
  for (size_t i = 0; i < points.size(); ++i) (IsValid(points[i]) ? valid : invalid).push_back(i);
  auto better_first = [&](size_t a, size_t b) { return BetterFirst(points[a], points[b]); };
  std::sort(valid.begin(), valid.end(), better_first);
  const std::vector<int> dominated_by = CountDominators(points, valid);

  std::vector<ParetoResult> front, duplicates, dominated;
  for (size_t i : valid) {
    ParetoResult r;
    r.point = points[i];
    r.dominated_by = dominated_by[i];
    if (r.dominated_by > 0) {
      dominated.push_back(std::move(r));
    } else if (!front.empty() && SameMetrics(front.back().point, r.point)) {
      // Sorted, so the first of equals (lowest run id) is already on the front.
      r.duplicate = true;
      r.duplicate_of = front.back().point.run_id;
      duplicates.push_back(std::move(r));
    } else {
      r.on_front = true;
      front.push_back(std::move(r));
    }
  }
  const int knee = FindKnee(front);
  if (knee >= 0) front[static_cast<size_t>(knee)].knee = true;

  std::vector<ParetoResult> result;
  result.reserve(points.size());
  for (auto* group : {&front, &duplicates, &dominated}) {
    std::move(group->begin(), group->end(), std::back_inserter(result));
  }
  // Invalid points are compared with nothing; they keep their run-id order.
  std::stable_sort(invalid.begin(), invalid.end(),
                   [&](size_t a, size_t b) { return points[a].run_id < points[b].run_id; });
  for (size_t i : invalid) {
    ParetoResult r;
    r.point = points[i];
    result.push_back(std::move(r));
  }
  return result;
}

ParetoPoint PointOf(const RunRecord& run, LatencyStat stat) {
  ParetoPoint p;
  p.run_id = run.id;
  for (size_t i = 0; i < run.config.cuts.size(); ++i) {
    if (i > 0) p.label += ",";
    p.label += std::to_string(run.config.cuts[i]);
  }
  // A failed run measured nothing; NaN keeps it off the front rather than
  // letting its zero latency win.
  if (run.status != "ok") {
    p.latency_ms = std::numeric_limits<double>::quiet_NaN();
    p.throughput_ips = std::numeric_limits<double>::quiet_NaN();
    return p;
  }
  p.latency_ms = LatencyEstimate(run, stat).mean;
  p.throughput_ips = run.throughput_ips.mean;
  return p;
}

const Estimate& LatencyEstimate(const RunRecord& run, LatencyStat stat) {
  switch (stat) {
    case LatencyStat::kP50:
      return run.latency_ms_p50;
    case LatencyStat::kP95:
      return run.latency_ms_p95;
    case LatencyStat::kP99:
      return run.latency_ms_p99;
    case LatencyStat::kMean:
      break;
  }
  return run.latency_ms_mean;
}

}  // namespace paretopipe
