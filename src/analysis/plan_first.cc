// Plan-first sweeps: which candidates to measure, and what the measurements say.
#include "analysis/plan_first.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "netem/condition.h"

namespace paretopipe {
namespace {

// a beats b: at least as good on both objectives, better on one.
bool Beats(double a_latency, double a_throughput, double b_latency, double b_throughput) {
  return a_latency <= b_latency && a_throughput >= b_throughput &&
         (a_latency < b_latency || a_throughput > b_throughput);
}

}  // namespace

Result<LinkModel> ConditionedLink(const LinkModel& base, const std::string& net, bool forward) {
  PP_ASSIGN_OR_RETURN(NetCondition c, ParseNetCondition(net.empty() ? "none" : net));
  if (!forward && c.forward_only) return base;
  LinkModel link = base;
  link.delay_ms += std::chrono::duration<double, std::milli>(c.delay).count();
  if (c.rate_bits_per_s > 0) {
    const double rate = static_cast<double>(c.rate_bits_per_s);
    link.rate_bits_per_s = base.rate_bits_per_s > 0 ? std::min(base.rate_bits_per_s, rate) : rate;
  }
  return link;
}

Result<PlanProblem> ChainProblem(const std::vector<const DeviceProfile*>& stages,
                                 const LinkModel& base, const std::string& net, int64_t batch,
                                 int window) {
  if (stages.empty()) return Status::InvalidArgument("a chain needs at least one stage");
  for (const DeviceProfile* p : stages) PP_RETURN_IF_ERROR(CheckSameModel(*stages[0], *p));
  PlanProblem problem;
  for (const DeviceProfile* p : stages) problem.compute_ms.push_back(p->block_compute_ms);
  problem.block_output_bytes = stages[0]->block_output_bytes;
  PP_ASSIGN_OR_RETURN(const LinkModel forward, ConditionedLink(base, net, true));
  PP_ASSIGN_OR_RETURN(const LinkModel back, ConditionedLink(base, net, false));
  const size_t m = stages.size();
  problem.links.assign(m, std::vector<LinkModel>(m));
  for (size_t a = 0; a < m; ++a) {
    for (size_t b = 0; b < m; ++b) problem.links[a][b] = b > a ? forward : back;
  }
  problem.batch = batch;
  problem.window = window;
  problem.min_stages = problem.max_stages = static_cast<int>(m);
  return problem;
}

double DominanceFactor(double latency_ms, double throughput_ips,
                       const std::vector<PlanPrediction>& front) {
  double best = std::numeric_limits<double>::infinity();
  for (const PlanPrediction& f : front) {
    const double worse =
        std::max(latency_ms / f.steady_latency_ms, f.throughput_ips / throughput_ips);
    best = std::min(best, std::max(1.0, worse));
  }
  return best;
}

Result<PlanFirstSelection> SelectPlanFirst(const PlanProblem& problem,
                                           const std::vector<std::vector<int>>& candidates,
                                           int controls, double margin) {
  if (candidates.empty()) return Status::InvalidArgument("plan-first: no candidate to predict");
  if (!(margin >= 0)) {
    return Status::InvalidArgument(fmt::format("plan-first: margin {} is negative", margin));
  }
  const int stages = static_cast<int>(problem.compute_ms.size());
  PlanFirstSelection out;
  for (const std::vector<int>& cuts : candidates) {
    Placement placement{cuts, {}};
    for (int s = 0; s < stages; ++s) placement.devices.push_back(s);
    Result<PlanPrediction> p = Predict(problem, placement);
    if (!p.ok()) {
      return p.status().WithContext(fmt::format("plan-first: cuts {}", fmt::join(cuts, ":")));
    }
    out.predictions.push_back(std::move(p).value());
  }
  const std::vector<PlanPrediction>& p = out.predictions;
  std::vector<PlanPrediction> front_points;
  for (size_t i = 0; i < p.size(); ++i) {
    bool beaten = false;
    for (size_t j = 0; j < p.size() && !beaten; ++j) {
      beaten = Beats(p[j].steady_latency_ms, p[j].throughput_ips, p[i].steady_latency_ms,
                     p[i].throughput_ips);
    }
    if (!beaten) {
      out.front.push_back(i);
      front_points.push_back(p[i]);
    }
  }
  std::vector<size_t> dominated;
  for (size_t i = 0; i < p.size(); ++i) {
    out.factor.push_back(
        DominanceFactor(p[i].steady_latency_ms, p[i].throughput_ips, front_points));
    if (std::binary_search(out.front.begin(), out.front.end(), i)) continue;
    (out.factor[i] <= 1 + margin ? out.near : dominated).push_back(i);
  }
  std::stable_sort(dominated.begin(), dominated.end(),
                   [&](size_t a, size_t b) { return out.factor[a] < out.factor[b]; });
  dominated.resize(std::min(dominated.size(), static_cast<size_t>(std::max(controls, 0))));
  std::sort(dominated.begin(), dominated.end());
  out.controls = std::move(dominated);
  return out;
}

PlanFirstOutcome JudgePlanFirst(const std::vector<PlanFirstMeasurement>& runs) {
  PlanFirstOutcome out;
  // Without a measured front run there is nothing for a control to beat.
  const bool have_front = std::any_of(runs.begin(), runs.end(),
                                      [](const PlanFirstMeasurement& r) { return !r.control; });
  for (const PlanFirstMeasurement& r : runs) {
    bool measured_beaten = false, beaten_by_front = false, beaten_by_control = false;
    for (const PlanFirstMeasurement& o : runs) {
      if (!Beats(o.latency_ms, o.throughput_ips, r.latency_ms, r.throughput_ips)) continue;
      measured_beaten = true;
      (o.control ? beaten_by_control : beaten_by_front) = true;
    }
    if (!measured_beaten) out.measured_front.push_back(r.candidate);
    if (r.control && have_front && !beaten_by_front) out.beating_controls.push_back(r.candidate);
    if (!r.control && beaten_by_control) out.beaten_front.push_back(r.candidate);
  }
  for (std::vector<size_t>* v : {&out.measured_front, &out.beating_controls, &out.beaten_front}) {
    std::sort(v->begin(), v->end());
  }
  return out;
}

}  // namespace paretopipe
