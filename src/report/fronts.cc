#include "report/fronts.h"

#include <cmath>
#include <map>
#include <tuple>

namespace paretopipe {

std::vector<RunGroup> GroupRuns(const std::vector<RunRecord>& runs, LatencyStat stat) {
  std::vector<RunGroup> groups;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index;
  for (const RunRecord& r : runs) {
    const auto key = std::make_tuple(r.config.model, r.config.backend, r.config.net);
    auto [it, added] = index.emplace(key, groups.size());
    if (added) {
      RunGroup g;
      g.model = r.config.model;
      g.backend = r.config.backend;
      g.net = r.config.net;
      groups.push_back(std::move(g));
    }
    groups[it->second].runs.push_back(&r);
  }
  for (RunGroup& g : groups) {
    std::vector<ParetoPoint> points;
    for (const RunRecord* r : g.runs) points.push_back(PointOf(*r, stat));
    g.ranked = ParetoFront(points);
  }
  return groups;
}

std::string CutLabel(const RunRecord& run) {
  std::string label;
  for (size_t i = 0; i < run.config.cuts.size(); ++i) {
    if (i > 0) label += ",";
    label += std::to_string(run.config.cuts[i]);
  }
  return label.empty() ? "-" : label;
}

bool IsPlottable(const ParetoPoint& p) {
  return std::isfinite(p.latency_ms) && std::isfinite(p.throughput_ips) && p.latency_ms >= 0 &&
         p.throughput_ips >= 0;
}

std::vector<PredictionGroup> GroupPredictions(const std::vector<RunRecord>& runs,
                                              const std::string& model) {
  std::vector<PredictionGroup> groups;
  std::map<std::pair<std::string, std::string>, size_t> index;
  for (const RunRecord& r : runs) {
    if (r.config.model != model || r.status != "ok" || !r.prediction) continue;
    PredictedRun p;
    p.run = &r;
    p.role = r.prediction->role;
    p.predicted = {r.id, CutLabel(r), r.prediction->latency_ms, r.prediction->throughput_ips};
    p.measured = {r.id, CutLabel(r), r.latency_ms_mean.mean, r.throughput_ips.mean};
    if (!IsPlottable(p.predicted) || !IsPlottable(p.measured) || !(p.measured.latency_ms > 0) ||
        !(p.measured.throughput_ips > 0))
      continue;
    p.latency_error = (p.predicted.latency_ms - p.measured.latency_ms) / p.measured.latency_ms;
    p.throughput_error =
        (p.predicted.throughput_ips - p.measured.throughput_ips) / p.measured.throughput_ips;
    auto [it, added] = index.emplace(std::make_pair(r.config.backend, r.config.net), groups.size());
    if (added) groups.push_back({model, r.config.backend, r.config.net, {}});
    groups[it->second].runs.push_back(std::move(p));
  }
  for (PredictionGroup& g : groups) {
    // Ranked by position, not run id: runs built by hand may share an id.
    std::vector<ParetoPoint> predicted, measured;
    for (size_t i = 0; i < g.runs.size(); ++i) {
      predicted.push_back(g.runs[i].predicted);
      predicted.back().run_id = static_cast<int64_t>(i);
      measured.push_back(g.runs[i].measured);
      measured.back().run_id = static_cast<int64_t>(i);
    }
    // A duplicate is as good as the point it repeats: on the front too.
    for (const ParetoResult& p : ParetoFront(predicted)) {
      if (p.on_front || p.duplicate) g.runs[p.point.run_id].on_predicted_front = true;
    }
    for (const ParetoResult& p : ParetoFront(measured)) {
      if (p.on_front || p.duplicate) g.runs[p.point.run_id].on_measured_front = true;
    }
  }
  return groups;
}

PredictionErrors MeanAbsolutePercentageErrors(const std::vector<PredictionGroup>& groups) {
  PredictionErrors e;
  for (const PredictionGroup& g : groups) {
    for (const PredictedRun& p : g.runs) {
      ++e.runs;
      e.latency_mape_pct += std::abs(p.latency_error);
      e.throughput_mape_pct += std::abs(p.throughput_error);
    }
  }
  if (e.runs > 0) {
    e.latency_mape_pct *= 100.0 / e.runs;
    e.throughput_mape_pct *= 100.0 / e.runs;
  }
  return e;
}

}  // namespace paretopipe
