// `sweep --plan-first`: the sweep's side of planning before measuring. Each
// worker profiles the model's blocks on its own device (so a Pi is profiled
// on the Pi, with its threads), the planner predicts every candidate split
// under each network condition, and the sweep measures only the predicted
// front and a few controls (analysis/plan_first.h; docs/planner.md,
// "Plan-first sweeps"). Afterwards: what the sweep saved and whether a
// measured point beat the predicted front.
//
// Owns: profiling the workers, the per-condition selection, the closing
// verdict. Must not touch: the run loop, the store.
// Thread safety: one call at a time (it drives the sweep's clients).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "analysis/link_model.h"
#include "analysis/plan_first.h"
#include "metrics/run_record.h"
#include "model/zoo.h"
#include "util/status.h"

namespace paretopipe {

class WorkerClient;

struct PlanFirstRequest {
  ModelSpec model;
  int64_t batch = 1;
  int64_t input_side_px = 0;
  int window = 1;
  int profile_repeat = 10;                   // Timed passes of each worker's profile.
  int controls = 2;                          // Dominated candidates measured per condition.
  double margin = 0.05;                      // Candidates this near the front are measured too.
  int batches = 1, repeats = 1;              // Per run (warm-up included), for the time estimate.
  LinkModel base_link;                       // Every hop with no condition (default: no cost).
  std::vector<std::string> conditions;       // Canonical --net texts, in sweep order.
  std::vector<std::vector<int>> candidates;  // The cut tuples a full sweep would run.
};

struct SweepPlan {
  std::vector<DeviceProfile> profiles;         // One per stage.
  std::vector<PlanFirstSelection> selections;  // One per condition.
  std::string source;                          // RunPrediction::source.
  double profile_s = 0;                        // Wall time of the profiling.

  // Whether candidate `c` is measured under condition `k`, and its prediction.
  bool Chosen(size_t k, size_t c) const;
  RunPrediction PredictionOf(size_t k, size_t c) const;
};

// Profiles every worker (one after another, so they do not slow each
// other), predicts and selects; prints one line per worker and per
// condition to `progress`. Errors name the worker or the condition.
Result<SweepPlan> PlanSweep(const std::vector<WorkerClient*>& clients, const PlanFirstRequest& r,
                            std::ostream& progress);

// One run a plan-first sweep made (or found complete, when resumed).
struct PlanFirstRun {
  size_t condition = 0;
  std::string backend;
  size_t candidate = 0;
  bool control = false;
  const RunRecord* record = nullptr;
  double wall_s = -1;  // From its link probe to its insert; -1: not run now (resumed).
};

// Prints the closing lines: configurations measured of all, the time taken
// and the estimated time of the full sweep (docs/planner.md, "Time saved"),
// and per condition and backend the measured front and whether any control
// beat the predicted front.
void PrintPlanFirstVerdict(const SweepPlan& plan, const PlanFirstRequest& r,
                           const std::vector<std::string>& backends,
                           const std::vector<PlanFirstRun>& runs, std::ostream& progress);

}  // namespace paretopipe
