// sweep --plan-first: profile the workers, choose what to measure, judge it.
#include "sweep/plan_first_sweep.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ostream>

#include "control/worker_client.h"

namespace paretopipe {
namespace {

// Untimed passes before a worker's profile: allocator, caches, thread pool.
constexpr int kProfileWarmup = 2;

std::string CutsText(const std::vector<int>& cuts) {
  return fmt::format("{}", fmt::join(cuts, ":"));
}

std::string CutsList(const std::vector<std::vector<int>>& candidates,
                     const std::vector<size_t>& indices) {
  std::vector<std::string> parts;
  for (size_t i : indices) parts.push_back(CutsText(candidates[i]));
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, ", "));
}

std::string Duration(double seconds) {
  return seconds < 60 ? fmt::format("{:.0f} s", seconds)
                      : fmt::format("{:.0f} min {:02.0f} s", std::floor(seconds / 60),
                                    std::fmod(seconds, 60));
}

}  // namespace

bool SweepPlan::Chosen(size_t k, size_t c) const {
  const PlanFirstSelection& s = selections[k];
  return std::binary_search(s.front.begin(), s.front.end(), c) ||
         std::binary_search(s.controls.begin(), s.controls.end(), c);
}

RunPrediction SweepPlan::PredictionOf(size_t k, size_t c) const {
  const PlanFirstSelection& s = selections[k];
  const PlanPrediction& p = s.predictions[c];
  RunPrediction out;
  out.latency_ms = p.steady_latency_ms;
  out.idle_latency_ms = p.latency_ms;
  out.throughput_ips = p.throughput_ips;
  out.bottleneck = BottleneckName(p.bottleneck);
  out.role = std::binary_search(s.front.begin(), s.front.end(), c) ? "front" : "control";
  out.source = source;
  return out;
}

Result<SweepPlan> PlanSweep(const std::vector<WorkerClient*>& clients, const PlanFirstRequest& r,
                            std::ostream& progress) {
  if (IsTorchScriptFile(r.model.name)) {
    return Status::InvalidArgument(
        "--plan-first: workers profile zoo models only; a TorchScript model's stages are not "
        "profiled yet (sweep it without --plan-first)");
  }
  SweepPlan plan;
  const auto begin = std::chrono::steady_clock::now();
  for (size_t s = 0; s < clients.size(); ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string context = fmt::format("--plan-first: profiling stage {}", s + 1);
    Result<std::string> text =
        clients[s]->Profile(r.model, r.batch, r.input_side_px, r.profile_repeat, kProfileWarmup);
    if (!text.ok()) return text.status().WithContext(context);
    Result<DeviceProfile> profile =
        ParseDeviceProfile(*text, fmt::format("stage {}'s worker", s + 1));
    if (!profile.ok()) return profile.status().WithContext(context);
    if (profile->model != r.model.name || profile->batch != r.batch) {
      return Status::InvalidArgument(
          fmt::format("{}: the worker profiled {} at batch {}, not {} at batch {}", context,
                      profile->model, profile->batch, r.model.name, r.batch));
    }
    double total_ms = 0;
    for (double ms : profile->block_compute_ms) total_ms += ms;
    progress << fmt::format(
                    "plan-first: stage {}'s worker ({}, {} thread(s)) profiled {} blocks in {}: "
                    "the whole model {:.1f} ms per batch\n",
                    s + 1, profile->device, profile->threads, profile->block_compute_ms.size(),
                    Duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                                 .count()),
                    total_ms)
             << std::flush;
    plan.profiles.push_back(std::move(profile).value());
  }
  plan.profile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  std::vector<const DeviceProfile*> stages;
  for (const DeviceProfile& p : plan.profiles) stages.push_back(&p);
  plan.source = fmt::format("plan-first: each worker profiled ({} passes), base link {}",
                            r.profile_repeat, DescribeLinkModel(r.base_link));
  for (const std::string& net : r.conditions) {
    Result<PlanProblem> problem = ChainProblem(stages, r.base_link, net, r.batch, r.window);
    if (!problem.ok()) return problem.status().WithContext("--plan-first");
    PP_ASSIGN_OR_RETURN(PlanFirstSelection selection,
                        SelectPlanFirst(*problem, r.candidates, r.controls));
    std::vector<std::string> factors;
    for (size_t c : selection.controls)
      factors.push_back(fmt::format("{:.2f}x", selection.factor[c]));
    progress << fmt::format(
        "plan-first under {}: of {} candidate(s), measuring the predicted front (cuts {}) and {} "
        "control(s) (cuts {}{}); skipping {}\n",
        net, r.candidates.size(), CutsList(r.candidates, selection.front),
        selection.controls.size(), CutsList(r.candidates, selection.controls),
        factors.empty() ? "" : fmt::format("; {} behind the front", fmt::join(factors, ", ")),
        r.candidates.size() - selection.front.size() - selection.controls.size());
    plan.selections.push_back(std::move(selection));
  }
  return plan;
}

void PrintPlanFirstVerdict(const SweepPlan& plan, const PlanFirstRequest& r,
                           const std::vector<std::string>& backends,
                           const std::vector<PlanFirstRun>& runs, std::ostream& progress) {
  const size_t full = r.candidates.size() * r.conditions.size() * backends.size();
  double measured_s = 0, estimated_full_s = 0;
  bool estimate_complete = true;
  std::vector<std::string> groups;
  for (size_t k = 0; k < r.conditions.size(); ++k) {
    for (const std::string& backend : backends) {
      std::vector<PlanFirstMeasurement> measured;
      double wall_s = 0;
      int timed = 0;
      for (const PlanFirstRun& run : runs) {
        if (run.condition != k || run.backend != backend) continue;
        if (run.wall_s >= 0) {
          wall_s += run.wall_s;
          ++timed;
        }
        if (run.record->status != "ok") continue;
        measured.push_back({run.candidate, run.control, run.record->latency_ms_mean.mean,
                            run.record->throughput_ips.mean});
      }
      measured_s += wall_s;
      if (timed > 0) {
        estimated_full_s += wall_s / timed * static_cast<double>(r.candidates.size());
      } else {
        estimate_complete = false;
      }
      const PlanFirstOutcome outcome = JudgePlanFirst(measured);
      std::string verdict;
      const bool any_control = std::any_of(measured.begin(), measured.end(),
                                           [](const PlanFirstMeasurement& m) { return m.control; });
      if (!any_control) {
        verdict = "no control measured, so no check of the predicted front";
      } else if (outcome.beating_controls.empty()) {
        verdict = "no control beat the predicted front";
      } else {
        verdict = fmt::format(
            "control(s) cuts {} beat the predicted front: no measured front run is better on "
            "both metrics (the prediction missed {})",
            CutsList(r.candidates, outcome.beating_controls),
            outcome.beating_controls.size() == 1 ? "it" : "them");
      }
      groups.push_back(fmt::format("  under {}, {}: measured front cuts {}; {}", r.conditions[k],
                                   backend, CutsList(r.candidates, outcome.measured_front),
                                   verdict));
    }
  }
  progress << fmt::format(
      "plan-first: measured {} of {} configuration(s) in {}, after {} of "
      "profiling",
      runs.size(), full, Duration(measured_s), Duration(plan.profile_s));
  if (estimate_complete && estimated_full_s > 0) {
    const double saved_s = estimated_full_s - measured_s - plan.profile_s;
    progress << fmt::format(
        "; all {} would have taken about {} (each condition and backend's mean run time times "
        "its {} candidates): {} about {} ({:.0f}%)",
        full, Duration(estimated_full_s), r.candidates.size(), saved_s >= 0 ? "saved" : "lost",
        Duration(std::abs(saved_s)), 100 * std::abs(saved_s) / estimated_full_s);
  }
  progress << "\n";
  for (const std::string& g : groups) progress << g << "\n";
  progress << std::flush;
}

}  // namespace paretopipe
