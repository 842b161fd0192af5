// The runs that the analysis commands select from a database (pareto,
// export, report, plot, validate), and the table of runs that `sweep` and
// `pareto` print. Presentation only: the front comes from analysis/pareto,
// every number from the run record.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "analysis/pareto.h"
#include "metrics/run_record.h"
#include "util/status.h"

namespace paretopipe::cli {

// What the analysis commands select: empty strings select everything.
struct AnalysisFilter {
  std::string db, model, backend, sweep, net;
};

// Runs of `f.db` matching the filters (`sweep` may be "last": the latest
// sweep among the matching runs; `net` is any spelling of a condition);
// only finished ones when `only_ok`.
Result<std::vector<RunRecord>> LoadForAnalysis(const AnalysisFilter& f, bool only_ok);

enum class RowOrder { kAsRun, kParetoFirst };

// One row per run: id, cuts, bytes sent per batch on each link, latency
// (`stat`, mean across repeats with its 95% CI), throughput (likewise), and
// the run's place: "front", "front, knee", "duplicate of #N", "dominated
// (N)", "failed: reason".
// With runs of several backends, each backend has its own front and the
// table a backend column.
std::string FormatRunTable(const std::vector<RunRecord>& runs, LatencyStat stat, RowOrder order);

// The backends side by side: per cut, one row per backend (its latest
// finished run) with throughput, latency, its place on its backend's front
// and the per-hop breakdown summed over the hops (docs/metrics.md); then, for
// each backend, the median ratio of its throughput and hop time to the first
// backend's over the cuts both ran.
std::string FormatBackendComparison(const std::vector<RunRecord>& runs, LatencyStat stat);

// Each run's place on the front of its backend's runs, by run id; fills
// `ranked` (may be null) backend by backend, in the order of their first run, each front first.
std::map<int64_t, ParetoResult> PlaceOnFronts(const std::vector<RunRecord>& runs, LatencyStat stat,
                                              std::vector<ParetoResult>* ranked);

}  // namespace paretopipe::cli
