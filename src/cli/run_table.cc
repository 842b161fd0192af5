#include "cli/run_table.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include "cli/format.h"

namespace paretopipe::cli {
namespace {

std::string WithCi(const Estimate& e, int decimals) {
  if (!e.ci_low || !e.ci_high) return fmt::format("{:.{}f}", e.mean, decimals);
  const double half = (*e.ci_high - *e.ci_low) / 2;
  return fmt::format("{:.{}f} ± {:.{}f}", e.mean, decimals, half, decimals);
}

const Estimate& LatencyOf(const RunRecord& r, LatencyStat stat) {
  switch (stat) {
    case LatencyStat::kP50:
      return r.latency_ms_p50;
    case LatencyStat::kP95:
      return r.latency_ms_p95;
    case LatencyStat::kP99:
      return r.latency_ms_p99;
    case LatencyStat::kMean:
      break;
  }
  return r.latency_ms_mean;
}

}  // namespace

std::string FormatRunTable(const std::vector<RunRecord>& runs, LatencyStat stat, RowOrder order) {
  std::vector<ParetoPoint> points;
  std::map<int64_t, const RunRecord*> by_id;
  for (const RunRecord& r : runs) {
    points.push_back(PointOf(r, stat));
    by_id[r.id] = &r;
  }
  const std::vector<ParetoResult> ranked = ParetoFront(points);
  std::map<int64_t, ParetoResult> place;
  for (const ParetoResult& p : ranked) place[p.point.run_id] = p;

  std::vector<const RunRecord*> rows;
  if (order == RowOrder::kAsRun) {
    for (const RunRecord& r : runs) rows.push_back(&r);
  } else {
    for (const ParetoResult& p : ranked) rows.push_back(by_id[p.point.run_id]);
  }

  const std::string latency_head = fmt::format("latency {} ms", LatencyStatName(stat));
  std::string out = fmt::format("{:>5}  {:<9} {:>16}  {:>18}  {:>20}  {}\n", "run", "cuts",
                                "MB sent/batch", latency_head, "throughput img/s", "pareto");
  for (const RunRecord* r : rows) {
    const ParetoResult& p = place[r->id];
    std::string where;
    if (r->status != "ok") {
      where = "failed: " + r->error;
    } else if (p.on_front) {
      where = p.knee ? "front, knee" : "front";
    } else if (p.duplicate) {
      where = fmt::format("duplicate of #{}", p.duplicate_of);
    } else {
      where = fmt::format("dominated ({})", p.dominated_by);
    }
    std::vector<std::string> sent;
    for (size_t s = 0; s + 1 < r->stages.size(); ++s) {
      sent.push_back(fmt::format("{:.2f}", r->stages[s].bytes_out_per_batch / 1e6));
    }
    const std::string marker = r->status == "ok" && p.on_front ? (p.knee ? "K" : "*") : " ";
    out += fmt::format("{:>5}{} {:<9} {:>16}  {:>18}  {:>20}  {}\n", r->id, marker,
                       fmt::format("{}", fmt::join(r->config.cuts, ":")),
                       r->status == "ok" ? fmt::format("{}", fmt::join(sent, "+")) : "-",
                       r->status == "ok" ? WithCi(LatencyOf(*r, stat), 2) : "-",
                       r->status == "ok" ? WithCi(r->throughput_ips, 1) : "-", where);
  }
  return out;
}

}  // namespace paretopipe::cli
