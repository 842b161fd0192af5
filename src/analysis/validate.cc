// Validate: predictions for measured runs, and the figures over them.
#include "analysis/validate.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "analysis/pareto.h"
#include "analysis/plan_first.h"
#include "analysis/planner.h"

namespace paretopipe {
namespace {

// The name a stage's emulated device was given ("pi: cpus 0, quota 0.25").
std::string LimitsName(const StageEnvironment& e) { return e.limits.substr(0, e.limits.find(':')); }

// The profile for a stage, by emulated device name, then host, then endpoint.
Result<std::pair<std::string, const DeviceProfile*>> ProfileOf(const StageEnvironment& e,
                                                               const ValidationOptions& o) {
  for (const std::string& name : {LimitsName(e), e.hostname, e.endpoint}) {
    if (name.empty()) continue;
    for (const auto& [n, profile] : o.devices) {
      if (n == name) return std::make_pair(n, &profile);
    }
  }
  return Status::NotFound(fmt::format("stage {}: no profile named {}{}{}", e.stage + 1,
                                      LimitsName(e).empty() ? "" : LimitsName(e) + ", ", e.hostname,
                                      e.endpoint.empty() ? "" : " or " + e.endpoint));
}

Result<RunComparison> Compare(const RunRecord& run, const ValidationOptions& o) {
  const RunConfig& c = run.config;
  const int stages = static_cast<int>(c.cuts.size()) + 1;
  if (static_cast<int>(run.environment.size()) != stages) {
    return Status::InvalidArgument(
        fmt::format("{} stages but {} environments", stages, run.environment.size()));
  }
  RunComparison out;
  out.run_id = run.id;
  out.cuts = c.cuts;
  std::vector<const DeviceProfile*> profiles;
  for (const StageEnvironment& e : run.environment) {
    PP_ASSIGN_OR_RETURN(auto named, ProfileOf(e, o));
    out.devices.push_back(named.first);
    profiles.push_back(named.second);
  }
  const DeviceProfile& first = *profiles[0];
  if (first.model != c.model || first.batch != c.batch_size ||
      (c.input_side_px > 0 && first.input_shape.size() == 4 &&
       first.input_shape[2] != c.input_side_px)) {
    return Status::InvalidArgument(fmt::format(
        "profile {} is of {} at batch {} ({} px), the run of {} at batch {} ({} px)", first.source,
        first.model, first.batch, first.input_shape.size() == 4 ? first.input_shape[2] : 0, c.model,
        c.batch_size, c.input_side_px));
  }
  PP_ASSIGN_OR_RETURN(const PlanProblem problem,
                      ChainProblem(profiles, o.base_link, c.net, c.batch_size, c.window));
  Placement placement{c.cuts, {}};
  for (int s = 0; s < stages; ++s) placement.devices.push_back(s);
  PP_ASSIGN_OR_RETURN(const PlanPrediction p, Predict(problem, placement));

  // A sweep measures batches in a full pipeline: their queueing counts.
  out.predicted_latency_ms = p.steady_latency_ms;
  out.predicted_idle_latency_ms = p.latency_ms;
  out.predicted_throughput_ips = p.throughput_ips;
  out.predicted_bottleneck = BottleneckName(p.bottleneck);
  out.measured_latency_ms = run.latency_ms_mean.mean;
  out.measured_throughput_ips = run.throughput_ips.mean;
  out.latency_error = (p.steady_latency_ms - out.measured_latency_ms) / out.measured_latency_ms;
  out.throughput_error =
      (p.throughput_ips - out.measured_throughput_ips) / out.measured_throughput_ips;
  std::set<std::string> names(out.devices.begin(), out.devices.end());
  out.group = fmt::format("{} batch {} {}px net {} {} window {} on {}", c.model, c.batch_size,
                          c.input_side_px, c.net.empty() ? "none" : c.net, c.backend, c.window,
                          fmt::join(names, ","));
  return out;
}

// The figures of `runs` (one group, or all: see ValidationFigures).
void AddErrors(const std::vector<const RunComparison*>& runs, ValidationFigures* f) {
  f->runs = static_cast<int>(runs.size());
  for (const RunComparison* r : runs) {
    f->latency_mape += std::abs(r->latency_error) / f->runs;
    f->throughput_mape += std::abs(r->throughput_error) / f->runs;
    f->latency_within_10 += (std::abs(r->latency_error) <= 0.1 ? 1.0 : 0.0) / f->runs;
    f->throughput_within_10 += (std::abs(r->throughput_error) <= 0.1 ? 1.0 : 0.0) / f->runs;
  }
}

// Marks the fronts of one group's runs and fills its regret and front counts.
void ScoreGroup(std::vector<RunComparison*>& runs, ValidationFigures* f) {
  std::vector<ParetoPoint> predicted, measured;
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto id = static_cast<int64_t>(i);
    predicted.push_back({id, "", runs[i]->predicted_latency_ms, runs[i]->predicted_throughput_ips});
    measured.push_back({id, "", runs[i]->measured_latency_ms, runs[i]->measured_throughput_ips});
  }
  // A duplicate of a front point is as good as it: on the front too.
  for (const ParetoResult& r : ParetoFront(predicted)) {
    runs[r.point.run_id]->predicted_front = r.on_front || r.duplicate;
  }
  for (const ParetoResult& r : ParetoFront(measured)) {
    runs[r.point.run_id]->measured_front = r.on_front || r.duplicate;
  }
  for (const RunComparison* r : runs) {
    f->predicted_front += r->predicted_front;
    f->measured_front += r->measured_front;
    f->both_fronts += r->predicted_front && r->measured_front;
  }
  auto by = [&](auto key) {
    return *std::min_element(
        runs.begin(), runs.end(),
        [&](const RunComparison* a, const RunComparison* b) { return key(a) < key(b); });
  };
  const double best_latency =
      by([](const RunComparison* r) { return r->measured_latency_ms; })->measured_latency_ms;
  const double best_throughput = by([](const RunComparison* r) {
                                   return -r->measured_throughput_ips;
                                 })->measured_throughput_ips;
  const RunComparison* fastest = by([](const RunComparison* r) { return r->predicted_latency_ms; });
  const RunComparison* busiest =
      by([](const RunComparison* r) { return -r->predicted_throughput_ips; });
  f->latency_regret = (fastest->measured_latency_ms - best_latency) / best_latency;
  f->throughput_regret = (best_throughput - busiest->measured_throughput_ips) / best_throughput;
}

}  // namespace

Result<ValidationReport> Validate(const std::vector<RunRecord>& runs,
                                  const ValidationOptions& options) {
  ValidationReport report;
  for (const RunRecord& run : runs) {
    if (run.status != "ok") continue;
    Result<RunComparison> compared = Compare(run, options);
    if (!compared.ok()) {
      report.skipped.push_back(fmt::format("run {}: {}", run.id, compared.status().message()));
      continue;
    }
    report.runs.push_back(std::move(compared).value());
  }
  if (report.runs.empty()) {
    const size_t shown = std::min<size_t>(report.skipped.size(), 3);
    return Status::InvalidArgument(
        fmt::format("no measured run could be predicted{}{}", shown ? ": " : " (no ok runs)",
                    fmt::join(report.skipped.begin(), report.skipped.begin() + shown, "; ")));
  }
  std::map<std::string, std::vector<RunComparison*>> by_group;
  for (RunComparison& r : report.runs) {
    if (!by_group.count(r.group)) report.groups.push_back({r.group, {}});
    by_group[r.group].push_back(&r);
  }
  std::vector<const RunComparison*> all;
  for (GroupValidation& g : report.groups) {
    std::vector<RunComparison*>& members = by_group[g.group];
    ScoreGroup(members, &g.figures);
    AddErrors({members.begin(), members.end()}, &g.figures);
    all.insert(all.end(), members.begin(), members.end());
    ValidationFigures& o = report.overall;
    o.latency_regret = std::max(o.latency_regret, g.figures.latency_regret);
    o.throughput_regret = std::max(o.throughput_regret, g.figures.throughput_regret);
    o.predicted_front += g.figures.predicted_front;
    o.measured_front += g.figures.measured_front;
    o.both_fronts += g.figures.both_fronts;
  }
  AddErrors(all, &report.overall);
  return report;
}

}  // namespace paretopipe
