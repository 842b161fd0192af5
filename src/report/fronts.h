// The runs of a report grouped as `paretopipe pareto` ranks them: one Pareto
// front per model, backend and network condition, because a front across them
// would answer another question (which backend or network as well as which
// cut) and hide each one's shape.
//
// Owns: the grouping the figures and the page share, and the numbers they
// show of a run (a latency statistic with its interval). Must not touch: the
// store, files.
// Thread safety: pure functions; a RunGroup points into the runs it was made
// from, which must outlive it.
#pragma once

#include <string>
#include <vector>

#include "analysis/pareto.h"
#include "metrics/run_record.h"

namespace paretopipe {

struct RunGroup {
  std::string model, backend, net;
  std::vector<const RunRecord*> runs;  // In the order given (the store's: run id).
  // ParetoFront over PointOf(run, stat) of every run above: the front first,
  // sorted by latency, then duplicates, dominated runs and, last, the failed
  // runs and runs with a non-finite metric (never on the front).
  std::vector<ParetoResult> ranked;
};

// Groups `runs` by (model, backend, net), in the order each group's first run
// comes, and ranks each group. Failed runs are kept (ranked invalid).
std::vector<RunGroup> GroupRuns(const std::vector<RunRecord>& runs, LatencyStat stat);

// A run's cuts as the figures label them: "16", "3,8"; "-" for one stage.
std::string CutLabel(const RunRecord& run);

// Whether ParetoFront could place this point: finite, non-negative metrics.
bool IsPlottable(const ParetoPoint& point);

}  // namespace paretopipe
