// The planner predicts, from per-block profiles of each device and a model of
// each link, the latency and steady-state throughput of every way to run a
// model as a pipeline: its blocks split into contiguous segments, each on a
// different device, in a chosen order. It returns the predicted Pareto front
// (lowest latency, highest throughput), computed exactly by dynamic
// programming. The model, its assumptions and where it is known to be wrong
// are in docs/planner.md; this header states the arithmetic.
//
// Owns: the prediction and the front. Must not touch: running or timing a
// model, reading files (analysis/device_profile.h and analysis/link_model.h
// read them), the store.
// Thread safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/link_model.h"
#include "util/status.h"

namespace paretopipe {

// The most devices PlanFront accepts: its work and memory grow as 2^devices.
inline constexpr int kMaxPlanDevices = 10;

struct PlanProblem {
  // compute_ms[d][b]: block b's compute time per batch on device d (>= 0,
  // finite). Every device has the same number of blocks n >= 1.
  std::vector<std::vector<double>> compute_ms;
  // block_output_bytes[b]: bytes block b outputs per batch; cut k (between
  // blocks k-1 and k, 1 <= k < n) carries block_output_bytes[k - 1].
  std::vector<int64_t> block_output_bytes;
  // links[a][b]: the link from device a to device b (a != b; the diagonal is
  // not read). One row and column per device.
  std::vector<std::vector<LinkModel>> links;
  int64_t batch = 1;   // Images per batch, for throughput_ips.
  int window = 1;      // K: batches the source may have in the pipeline (>= 1).
  int min_stages = 1;  // Plans with min_stages..max_stages stages (>= 1).
  int max_stages = 0;  // 0: as many as there are devices (or blocks, if fewer).
};

// Where a model runs: cuts[i] is the first block of stage i + 2 (strictly
// increasing, within 1..n-1), devices[i] the device of stage i + 1 (all
// distinct: a device is one worker, running one stage). devices.size() ==
// cuts.size() + 1.
struct Placement {
  std::vector<int> cuts;
  std::vector<int> devices;

  bool operator==(const Placement& other) const {
    return cuts == other.cuts && devices == other.devices;
  }
};

// What limits the period: the compute of a stage, a hop's transfer, or the
// window (the round trip of the K batches and their credits).
struct Bottleneck {
  enum class Kind { kStage, kHop, kWindow };
  Kind kind = Kind::kStage;
  int index = 0;  // The stage (0-based) or the hop (0-based: hop i is stage i -> i + 1).
};

// The prediction for one placement, with m stages:
//   C_i   = sum of the compute times of stage i's blocks on its device,
//           computed as a difference of prefix sums over the blocks;
//   T_i   = links[d_i][d_i+1].TransferMs(bytes of the cut after stage i);
//   D_i   = links[d_i][d_i+1].delay_ms;
//   latency_ms = C_1 + (T_1 + D_1) + C_2 + ... + C_m, added left to right;
//   R     = links[d_m][d_1].TimeMs(0): the sink's credit back to the source
//           (0 when m == 1);
//   period_ms = max(max_i C_i, max_i T_i, (latency_ms + R) / K);
//   throughput_ips = batch * 1000 / period_ms (infinite when period_ms is 0).
// PlanFront and PlanFrontBruteForce compute these with the same operations in
// the same order, so one placement gets bit-identical numbers from both.
struct PlanPrediction {
  Placement placement;
  double latency_ms = 0;
  double period_ms = 0;
  double throughput_ips = 0;
  double credit_return_ms = 0;  // R.
  // The latency a batch sees once the pipeline is full (docs/planner.md,
  // "Queueing"): latency_ms when stage 1 is the bottleneck (batches wait
  // for it before their latency starts) or there is one stage, else
  // max(latency_ms, K * period_ms - R): the K batches in flight queue in
  // front of the bottleneck. What a sweep measures with --window K. Not
  // used by PlanFront, whose latency is latency_ms.
  double steady_latency_ms = 0;
  std::vector<double> stage_compute_ms;  // C_i, one per stage.
  std::vector<double> hop_transfer_ms;   // T_i, one per hop (stages - 1).
  std::vector<double> hop_delay_ms;      // D_i.
  std::vector<int64_t> hop_bytes;        // Bytes crossing each hop's cut.
  // The first term equal to period_ms, looking at stages, then hops, then the window.
  Bottleneck bottleneck;
};

// OK when `problem` is well formed (as PlanProblem's comments require) and
// some placement exists for its stage range; otherwise InvalidArgument
// naming what is wrong.
Status ValidatePlanProblem(const PlanProblem& problem);

// The prediction for `placement`. InvalidArgument when the problem or the
// placement is malformed (cuts not increasing or out of range, a device
// repeated or unknown, a stage count outside the problem's range).
Result<PlanPrediction> Predict(const PlanProblem& problem, const Placement& placement);

// Work counters of one PlanFront call, for benchmarks.
struct PlanFrontStats {
  int64_t pairs_kept = 0;        // Partial plans kept, over all states.
  int64_t candidates = 0;        // Partial plans generated and tested for dominance.
  int64_t final_candidates = 0;  // Complete plans compared for the front.
};

// The predicted Pareto front over every placement allowed by the problem:
// the placements no other beats on both latency_ms (lower) and period_ms
// (lower, i.e. throughput higher), sorted by latency_ms ascending (so period
// descending). Exact: no placement is skipped by a heuristic and comparisons
// have no tolerance.
//
// Method: dynamic programming over states (blocks placed, set of devices
// used, first device, last device), keeping per state the non-dominated
// (latency so far, largest stage or hop time so far) pairs. The final period
// is non-decreasing in both, and the completions of a partial plan depend
// only on its state, so a pair dominated within its state cannot lead to a
// front point that no kept pair reaches. Details: docs/planner.md.
//
// Ties: several placements may have exactly the same (latency_ms,
// period_ms). One is returned: among those that reach the final comparison,
// the one with the fewest stages, then the lexicographically smallest cuts,
// then devices. A tied placement may be pruned earlier (as weakly dominated),
// so this is deterministic but not always the smallest of all tied
// placements; PlanFrontBruteForce applies the same rule to all of them.
//
// `stats` (may be null) receives work counters.
// Returns InvalidArgument as ValidatePlanProblem does.
Result<std::vector<PlanPrediction>> PlanFront(const PlanProblem& problem,
                                              PlanFrontStats* stats = nullptr);

// The same front by predicting every placement: the test oracle of
// PlanFront. Exponential: for small problems (tests) only.
Result<std::vector<PlanPrediction>> PlanFrontBruteForce(const PlanProblem& problem);

// "stage 2", "hop 1" or "window" (1-based, for people).
std::string BottleneckName(const Bottleneck& bottleneck);

}  // namespace paretopipe
