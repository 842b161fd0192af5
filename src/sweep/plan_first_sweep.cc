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
  return seconds < 10   ? fmt::format("{:.1f} s", seconds)
         : seconds < 60 ? fmt::format("{:.0f} s", seconds)
                        : fmt::format("{:.0f} min {:02.0f} s", std::floor(seconds / 60),
                                      std::fmod(seconds, 60));
}

}  // namespace

bool SweepPlan::Chosen(size_t k, size_t c) const {
  const PlanFirstSelection& s = selections[k];
  return std::binary_search(s.front.begin(), s.front.end(), c) ||
         std::binary_search(s.near.begin(), s.near.end(), c) ||
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
  out.role = std::binary_search(s.front.begin(), s.front.end(), c) ? "front"
             : std::binary_search(s.near.begin(), s.near.end(), c) ? "near"
                                                                   : "control";
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
                        SelectPlanFirst(*problem, r.candidates, r.controls, r.margin));
    std::vector<std::string> factors;
    for (size_t c : selection.controls) {
      factors.push_back(fmt::format("{:.2f}x", selection.factor[c]));
    }
    const size_t chosen =
        selection.front.size() + selection.near.size() + selection.controls.size();
    progress << fmt::format(
        "plan-first under {}: of {} candidate(s), measuring the predicted front (cuts {}), {} "
        "within {:.0f}% of it (cuts {}) and {} control(s) (cuts {}{}); skipping {}\n",
        net, r.candidates.size(), CutsList(r.candidates, selection.front), selection.near.size(),
        100 * r.margin, CutsList(r.candidates, selection.near), selection.controls.size(),
        CutsList(r.candidates, selection.controls),
        factors.empty() ? "" : fmt::format("; {} behind the front", fmt::join(factors, ", ")),
        r.candidates.size() - chosen);
    plan.selections.push_back(std::move(selection));
  }
  return plan;
}

void PrintPlanFirstVerdict(const SweepPlan& plan, const PlanFirstRequest& r,
                           const std::vector<std::string>& backends,
                           const std::vector<PlanFirstRun>& runs, std::ostream& progress) {
  const size_t full = r.candidates.size() * r.conditions.size() * backends.size();
  double measured_s = 0, skipped_s = 0;
  bool estimated = true;
  std::vector<std::string> groups;
  for (size_t k = 0; k < r.conditions.size(); ++k) {
    const std::vector<PlanPrediction>& predicted = plan.selections[k].predictions;
    // A run's passes, as predicted: each repeat fills the pipeline once
    // (its idle latency) and then delivers a batch per period.
    auto passes_s = [&](size_t c) {
      return r.repeats * (r.batches * predicted[c].period_ms + predicted[c].latency_ms) / 1000;
    };
    for (const std::string& backend : backends) {
      std::vector<PlanFirstMeasurement> measured;
      std::vector<bool> made(r.candidates.size(), false);
      double overhead_s = 0;
      int timed = 0;
      for (const PlanFirstRun& run : runs) {
        if (run.condition != k || run.backend != backend) continue;
        made[run.candidate] = true;
        if (run.wall_s >= 0) {
          measured_s += run.wall_s;
          overhead_s += run.wall_s - passes_s(run.candidate);
          ++timed;
        }
        if (run.record->status != "ok") continue;
        measured.push_back({run.candidate, run.control, run.record->latency_ms_mean.mean,
                            run.record->throughput_ips.mean});
      }
      if (timed > 0) {
        overhead_s = std::max(0.0, overhead_s / timed);
        for (size_t c = 0; c < r.candidates.size(); ++c) {
          if (!made[c]) skipped_s += overhead_s + passes_s(c);
        }
      } else {
        estimated = false;
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
            "control(s) cuts {} beat the predicted front: no measured front or near run is "
            "better on both metrics (the prediction missed {})",
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
  if (estimated) {
    const double saved_s = skipped_s - plan.profile_s;
    const double full_s = measured_s + skipped_s;
    progress << fmt::format(
        "; the {} skipped would have taken about {} more (their predicted passes plus the "
        "measured runs' mean time around the passes): {} about {} of an estimated {} ({:.0f}%)",
        full - runs.size(), Duration(skipped_s), saved_s >= 0 ? "saved" : "lost",
        Duration(std::abs(saved_s)), Duration(full_s),
        full_s > 0 ? 100 * std::abs(saved_s) / full_s : 0.0);
  }
  progress << "\n";
  for (const std::string& g : groups) progress << g << "\n";
  progress << std::flush;
}

}  // namespace paretopipe
