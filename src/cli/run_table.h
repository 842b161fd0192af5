// The table of runs that `sweep` and `pareto` print. Presentation only: the
// front comes from analysis/pareto, every number from the run record.
#pragma once

#include <string>
#include <vector>

#include "analysis/pareto.h"
#include "metrics/run_record.h"

namespace paretopipe::cli {

enum class RowOrder { kAsRun, kParetoFirst };

// One row per run: id, cuts, bytes sent per batch on each link, latency
// (`stat`, mean across repeats with its 95% CI), throughput (likewise), and
// the run's place: "front", "front, knee", "duplicate of #N", "dominated
// (N)", "failed: reason".
std::string FormatRunTable(const std::vector<RunRecord>& runs, LatencyStat stat, RowOrder order);

}  // namespace paretopipe::cli
