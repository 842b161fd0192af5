// The runs of a report grouped as `paretopipe pareto` ranks them: one Pareto
// front per model, backend and network condition, because a front across them
// would answer another question (which backend or network as well as which
// cut) and hide each one's shape. The runs the planner predicted are grouped
// the same way, each beside its prediction.
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

// A run the planner predicted (RunRecord::prediction), beside what it
// measured. Latency is the mean (latency_ms_mean): the planner predicts the
// steady-state mean, so no other statistic compares with it.
struct PredictedRun {
  const RunRecord* run = nullptr;
  std::string role;                 // RunPrediction::role: "front", "control", "validate".
  ParetoPoint predicted, measured;  // Labelled with the cuts.
  bool on_predicted_front = false;  // Among the predicted points of its group.
  bool on_measured_front = false;   // Among the measured points of its group.
  // (predicted - measured) / measured: +0.1 is a prediction 10% too high.
  double latency_error = 0, throughput_error = 0;
};

// The predicted runs of one model, backend and network condition.
struct PredictionGroup {
  std::string model, backend, net;
  std::vector<PredictedRun> runs;  // In the order given (the store's: run id).
};

// The runs of `model` among `runs` that can be compared with their
// prediction, grouped as GroupRuns groups them: finished, with a prediction
// whose latency and throughput are finite and non-negative, and a measured
// latency_ms_mean and throughput_ips that are finite and above zero (a
// relative error needs them). Both fronts are taken among these runs only,
// so that a control run is judged against the runs predicted beside it.
// Groups without such a run are left out: empty when no run qualifies.
std::vector<PredictionGroup> GroupPredictions(const std::vector<RunRecord>& runs,
                                              const std::string& model);

// Mean absolute percentage errors over every run of `groups`: the mean of
// |latency_error| and of |throughput_error|, times 100. 0 with no runs.
struct PredictionErrors {
  int runs = 0;
  double latency_mape_pct = 0, throughput_mape_pct = 0;
};
PredictionErrors MeanAbsolutePercentageErrors(const std::vector<PredictionGroup>& groups);

}  // namespace paretopipe
