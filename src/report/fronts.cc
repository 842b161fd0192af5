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

}  // namespace paretopipe
