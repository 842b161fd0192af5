// Plan-first sweeps (docs/planner.md, "Plan-first sweeps"): instead of
// measuring every candidate split, predict them all, measure the predicted
// front and a few dominated controls, and say afterwards whether any
// measured point beat the predicted front.
//
// Owns: the chain problem of a sweep (stage s on worker s), choosing what to
// measure, and judging the outcome. Must not touch: running anything, the
// store, profiling (the sweep gets the profiles from its workers).
// Thread safety: pure functions of their arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/device_profile.h"
#include "analysis/link_model.h"
#include "analysis/planner.h"
#include "util/status.h"

namespace paretopipe {

// The link that network condition `net` (netem/condition.h text; "" or
// "none": none) makes of `base`: its delay added, its rate a cap on the
// base's. `forward`: towards later stages; the way back (the credits) of a
// forward-only condition stays `base`. InvalidArgument for a bad `net`.
Result<LinkModel> ConditionedLink(const LinkModel& base, const std::string& net, bool forward);

// The problem of a pipeline whose stage s runs on device s (`stages[s]`, in
// stage order), every hop `base` under `net` (ConditionedLink), with exactly
// stages.size() stages. REQUIRES: every pointer non-null. InvalidArgument
// when the profiles are not of one model (CheckSameModel) or `net` is bad.
Result<PlanProblem> ChainProblem(const std::vector<const DeviceProfile*>& stages,
                                 const LinkModel& base, const std::string& net, int64_t batch,
                                 int window);

// What a plan-first sweep measures out of its candidates (each a cut tuple
// of a ChainProblem). Objectives are those a sweep measures: steady-state
// latency (PlanPrediction::steady_latency_ms) and throughput.
struct PlanFirstSelection {
  std::vector<PlanPrediction> predictions;  // One per candidate, in candidate order.
  // Indices into the candidates, ascending. `front`: no other candidate is
  // predicted at least as good on both objectives and better on one (equal
  // predictions are all on it). `near`: off the front by at most the margin
  // (DominanceFactor <= 1 + margin): within the prediction's error, so as
  // likely to be on the measured front. `controls`: the next ones, closest to
  // the front first (smallest DominanceFactor), ties by index.
  std::vector<size_t> front;
  std::vector<size_t> near;
  std::vector<size_t> controls;
  // DominanceFactor of each candidate (1 on the front).
  std::vector<double> factor;
};

// How far a predicted point is behind the front: the smallest, over front
// points f, of max(latency / f.latency, f.throughput / throughput). 1 on the
// front; 1.2 means it must get 20% better on its worse objective to reach
// the nearest front point.
double DominanceFactor(double latency_ms, double throughput_ips,
                       const std::vector<PlanPrediction>& front);

// Predicts every candidate and chooses the front, the near ones within
// `margin` (>= 0; 0.05: 5%) and `controls` controls (fewer when fewer
// candidates are left). InvalidArgument when a candidate is not a valid cut
// tuple of `problem`, there are none, or the margin is negative.
Result<PlanFirstSelection> SelectPlanFirst(const PlanProblem& problem,
                                           const std::vector<std::vector<int>>& candidates,
                                           int controls, double margin);

// One measured run of a plan-first sweep.
struct PlanFirstMeasurement {
  size_t candidate = 0;
  bool control = false;
  double latency_ms = 0, throughput_ips = 0;
};

// The verdict on one group of comparable runs (same condition and backend).
struct PlanFirstOutcome {
  // Candidates (indices) whose measurement no other measurement of the group
  // beats: the measured front.
  std::vector<size_t> measured_front;
  // Controls that no measured front or near run beats: the prediction
  // placed them behind the front, measurement says they are not.
  std::vector<size_t> beating_controls;
  // Front and near runs that some measured control beats.
  std::vector<size_t> beaten_front;
};

// Judges `runs` (ok runs only; `control` false for front and near runs; a
// group without controls has no verdict on them). Indices are candidates,
// as in the selection.
PlanFirstOutcome JudgePlanFirst(const std::vector<PlanFirstMeasurement>& runs);

}  // namespace paretopipe
