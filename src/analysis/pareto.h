// The Pareto front of runs: those no other run beats on both latency (lower is
// better) and throughput (higher is better), and the knee among them.
//
// Owns: dominance, ranking and the knee. Must not touch: the store's SQL,
// models, running anything (it reads RunRecords it is given).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/run_record.h"
#include "util/status.h"

namespace paretopipe {

enum class LatencyStat { kMean, kP50, kP95, kP99 };

// Parses "mean", "p50", "p95", "p99".
Result<LatencyStat> ParseLatencyStat(const std::string& text);
const char* LatencyStatName(LatencyStat stat);

struct ParetoPoint {
  int64_t run_id = 0;
  std::string label;          // E.g. the cuts, "3" or "3,8".
  double latency_ms = 0;      // Lower is better.
  double throughput_ips = 0;  // Higher is better.
};

struct ParetoResult {
  ParetoPoint point;
  bool on_front = false;
  bool knee = false;
  // Among several points with exactly equal (latency, throughput) on the front,
  // the first (lowest run id) is on_front; the others are duplicates of it.
  bool duplicate = false;
  int64_t duplicate_of = 0;  // run_id, when duplicate.
  int dominated_by = 0;      // How many points dominate this one.
};

// Classifies `points`. A point is dominated when another is at least as good
// on both metrics and strictly better on one. Output: the front sorted by
// latency ascending (ties: throughput descending, then run id), then the
// duplicates, then the dominated points sorted the same way. The knee is the
// front point farthest from the straight line joining the front's two ends,
// with both metrics scaled to [0, 1] over the front; with fewer than three
// front points, none is a knee unless there is exactly one point, which is.
// A straight front (every point on that line) has no knee.
// Points with a NaN, infinite or negative metric are invalid: compared with
// nothing (dominated_by 0), never on the front, and placed last by run id.
// O(n log n).
std::vector<ParetoResult> ParetoFront(const std::vector<ParetoPoint>& points);

// The point of a run for the given latency statistic (across-repeat means).
// A run whose status is not "ok" gets NaN metrics, which ParetoFront treats
// as invalid.
ParetoPoint PointOf(const RunRecord& run, LatencyStat stat);

// The across-repeat estimate of the latency statistic `stat` of `run`.
const Estimate& LatencyEstimate(const RunRecord& run, LatencyStat stat);

}  // namespace paretopipe
