#include "cli/run_table.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <set>

#include "cli/format.h"
#include "netem/condition.h"
#include "store/store.h"

namespace paretopipe::cli {
namespace {

std::string WithCi(const Estimate& e, int decimals) {
  if (!e.ci_low || !e.ci_high) return fmt::format("{:.{}f}", e.mean, decimals);
  const double half = (*e.ci_high - *e.ci_low) / 2;
  return fmt::format("{:.{}f} ± {:.{}f}", e.mean, decimals, half, decimals);
}

}  // namespace

std::map<int64_t, ParetoResult> PlaceOnFronts(const std::vector<RunRecord>& runs,
                                              LatencyStat stat,
                                              std::vector<ParetoResult>* ranked) {
  // One front per backend and network condition: a front across them would
  // answer another question (which backend or network as well as which cut)
  // and hide each one's shape. Groups in the order their first run came (a
  // sweep's --net and --backend order).
  std::vector<std::string> order;
  std::map<std::string, std::vector<ParetoPoint>> points;
  for (const RunRecord& r : runs) {
    const std::string key = r.config.backend + "|" + r.config.net;
    if (!points.count(key)) order.push_back(key);
    points[key].push_back(PointOf(r, stat));
  }
  std::map<int64_t, ParetoResult> place;
  for (const std::string& backend : order) {
    for (const ParetoResult& p : ParetoFront(points[backend])) {
      place[p.point.run_id] = p;
      if (ranked) ranked->push_back(p);
    }
  }
  return place;
}

std::string FormatRunTable(const std::vector<RunRecord>& runs, LatencyStat stat, RowOrder order) {
  std::map<int64_t, const RunRecord*> by_id;
  std::set<std::string> backends, nets;
  bool show_accuracy = false;
  for (const RunRecord& r : runs) {
    by_id[r.id] = &r;
    backends.insert(r.config.backend);
    nets.insert(r.config.net);
    show_accuracy = show_accuracy || r.accuracy.has_value();
  }
  std::vector<ParetoResult> ranked;
  std::map<int64_t, ParetoResult> place = PlaceOnFronts(runs, stat, &ranked);
  const bool show_backend = backends.size() > 1;
  const bool show_net = nets.size() > 1 || (!nets.empty() && *nets.begin() != "none");
  size_t net_width = 7;
  for (const std::string& n : nets) net_width = std::max(net_width, n.size());

  std::vector<const RunRecord*> rows;
  if (order == RowOrder::kAsRun) {
    for (const RunRecord& r : runs) rows.push_back(&r);
  } else {
    for (const ParetoResult& p : ranked) rows.push_back(by_id[p.point.run_id]);
  }

  const std::string latency_head = fmt::format("latency {} ms", LatencyStatName(stat));
  std::string out = fmt::format(
      "{:>5}  {:<9} {}{}{:>16}  {:>18}  {:>20}  {}{}\n", "run", "cuts",
      show_backend ? fmt::format("{:<7}", "backend") : "",
      show_net ? fmt::format("{:<{}}  {:<22}", "network", net_width, "measured rtt, rate") : "",
      "MB sent/batch", latency_head, "throughput img/s",
      show_accuracy ? fmt::format("{:>8}  ", "top-1 %") : "",
      show_backend || show_net
          ? fmt::format("pareto (per {})", show_backend && show_net ? "backend and network"
                                           : show_backend           ? "backend"
                                                                    : "network")
          : "pareto");
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
    std::string measured = "-";
    if (!r->links.empty()) {
      // The slowest hop: what bounds the pipeline.
      double rtt = 0, mbit = 1e18;
      for (const LinkMeasurement& l : r->links) {
        rtt = std::max(rtt, l.rtt_ms_median);
        mbit = std::min(mbit, l.bandwidth_mbit);
      }
      measured = fmt::format("{:.1f} ms, {:.1f} Mbit/s", rtt, mbit);
    }
    std::string accuracy;
    if (show_accuracy) {
      accuracy = fmt::format(
          "{:>8}  ", r->accuracy ? fmt::format("{:.2f}", 100 * r->accuracy->top1()) : "-");
    }
    out += fmt::format("{:>5}{} {:<9} {}{}{:>16}  {:>18}  {:>20}  {}{}\n", r->id, marker,
                       fmt::format("{}", fmt::join(r->config.cuts, ":")),
                       show_backend ? fmt::format("{:<7}", r->config.backend) : "",
                       show_net ? fmt::format("{:<{}}  {:<22}", r->config.net, net_width, measured)
                                : "",
                       r->status == "ok" ? fmt::format("{}", fmt::join(sent, "+")) : "-",
                       r->status == "ok" ? WithCi(LatencyEstimate(*r, stat), 2) : "-",
                       r->status == "ok" ? WithCi(r->throughput_ips, 1) : "-", accuracy, where);
  }
  return out;
}

namespace {

// One network condition's runs.
std::string FormatBackendComparisonOfOneNetwork(const std::vector<RunRecord>& runs,
                                                LatencyStat stat) {
  // The latest finished run of each (cuts, backend); cuts in order.
  std::vector<std::string> backends;
  std::map<std::vector<int>, std::map<std::string, const RunRecord*>> cells;
  for (const RunRecord& r : runs) {
    if (r.status != "ok") continue;
    if (std::find(backends.begin(), backends.end(), r.config.backend) == backends.end())
      backends.push_back(r.config.backend);
    cells[r.config.cuts][r.config.backend] = &r;  // Runs come in id order: the last wins.
  }
  const std::map<int64_t, ParetoResult> place = PlaceOnFronts(runs, stat, nullptr);
  const std::string latency_head = fmt::format("latency {} ms", LatencyStatName(stat));
  std::string out = fmt::format(
      "{:<9} {:<7} {:>5}  {:>16}  {:>18}  {:<11}  {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8}\n",
      "cuts", "backend", "run", "throughput img/s", latency_head, "pareto", "MB/batch", "hop ms",
      "serial.", "wire", "queue", "deserial.", "send", "recv");
  // Per backend, its throughput and hop time over the first backend's, per cut.
  std::map<std::string, std::vector<double>> throughput_ratio, hop_ratio;
  for (const auto& [cuts, by_backend] : cells) {
    bool first_row = true;
    for (const std::string& b : backends) {
      auto cell = by_backend.find(b);
      if (cell == by_backend.end()) continue;
      const RunRecord& r = *cell->second;
      const ParetoResult& p = place.at(r.id);
      // Hops add up along the pipeline: a frame crosses each in turn.
      HopStats sum;
      for (const HopStats& h : r.hops) {
        sum.bytes_per_frame += h.bytes_per_frame;
        sum.hop_ms_mean += h.hop_ms_mean;
        sum.serialize_ms_mean += h.serialize_ms_mean;
        sum.wire_ms_mean += h.wire_ms_mean;
        sum.queue_ms_mean += h.queue_ms_mean;
        sum.deserialize_ms_mean += h.deserialize_ms_mean;
        sum.send_ms_mean += h.send_ms_mean;
        sum.recv_ms_mean += h.recv_ms_mean;
      }
      auto ms = [&](double v) { return r.hops.empty() ? std::string("-") : fmt::format("{:.3f}", v); };
      out += fmt::format(
          "{:<9} {:<7} {:>5}  {:>16}  {:>18}  {:<11}  {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8}\n",
          first_row ? fmt::format("{}", fmt::join(cuts, ":")) : "", b, r.id,
          WithCi(r.throughput_ips, 1), WithCi(LatencyEstimate(r, stat), 2),
          p.on_front ? (p.knee ? "front, knee" : "front") : "", 
          r.hops.empty() ? "-" : fmt::format("{:.2f}", sum.bytes_per_frame / 1e6),
          ms(sum.hop_ms_mean), ms(sum.serialize_ms_mean), ms(sum.wire_ms_mean),
          ms(sum.queue_ms_mean), ms(sum.deserialize_ms_mean), ms(sum.send_ms_mean),
          ms(sum.recv_ms_mean));
      first_row = false;
      const auto base = by_backend.find(backends.front());
      if (b != backends.front() && base != by_backend.end()) {
        const RunRecord& t = *base->second;
        if (t.throughput_ips.mean > 0)
          throughput_ratio[b].push_back(r.throughput_ips.mean / t.throughput_ips.mean);
        double base_hop = 0;
        for (const HopStats& h : t.hops) base_hop += h.hop_ms_mean;
        if (base_hop > 0 && !r.hops.empty()) hop_ratio[b].push_back(sum.hop_ms_mean / base_hop);
      }
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  };
  for (const std::string& b : backends) {
    if (throughput_ratio[b].empty()) continue;
    out += fmt::format("\n{} against {} over {} cut(s): throughput x{:.3f} (median; min {:.3f}, max {:.3f})",
                       b, backends.front(), throughput_ratio[b].size(), median(throughput_ratio[b]),
                       *std::min_element(throughput_ratio[b].begin(), throughput_ratio[b].end()),
                       *std::max_element(throughput_ratio[b].begin(), throughput_ratio[b].end()));
    if (!hop_ratio[b].empty()) out += fmt::format(", hop time x{:.2f} (median)", median(hop_ratio[b]));
  }
  if (backends.size() > 1) out += "\n";
  return out;
}

}  // namespace

std::string FormatBackendComparison(const std::vector<RunRecord>& runs, LatencyStat stat) {
  // Backends compare within one network condition: a section per condition,
  // in the order their first run came.
  std::vector<std::string> nets;
  for (const RunRecord& r : runs) {
    if (std::find(nets.begin(), nets.end(), r.config.net) == nets.end())
      nets.push_back(r.config.net);
  }
  if (nets.size() == 1 && nets[0] == "none") return FormatBackendComparisonOfOneNetwork(runs, stat);
  std::string out;
  for (const std::string& net : nets) {
    std::vector<RunRecord> subset;
    for (const RunRecord& r : runs) {
      if (r.config.net == net) subset.push_back(r);
    }
    out += fmt::format("{}network {}\n", out.empty() ? "" : "\n", net);
    out += FormatBackendComparisonOfOneNetwork(subset, stat);
  }
  return out;
}

Result<std::vector<RunRecord>> LoadForAnalysis(const AnalysisFilter& f, bool only_ok) {
  const std::string& sweep = f.sweep;
  PP_ASSIGN_OR_RETURN(std::unique_ptr<ResultStore> store, ResultStore::OpenReadOnly(f.db));
  RunFilter filter;
  if (!f.model.empty()) filter.model = f.model;
  if (!f.backend.empty()) filter.backend = f.backend;
  if (!f.net.empty()) {
    // Written as the sweep stored it: the canonical text of the condition.
    PP_ASSIGN_OR_RETURN(NetCondition c, ParseNetCondition(f.net));
    filter.net = FormatNetCondition(c);
  }
  filter.only_ok = only_ok;
  if (!sweep.empty() && sweep != "last") filter.sweep_id = sweep;
  PP_ASSIGN_OR_RETURN(std::vector<RunRecord> runs, store->LoadRuns(filter));
  if (sweep == "last" && !runs.empty()) {
    const std::string last = runs.back().config.sweep_id;
    std::vector<RunRecord> kept;
    for (RunRecord& r : runs) {
      if (r.config.sweep_id == last) kept.push_back(std::move(r));
    }
    runs = std::move(kept);
  }
  return runs;
}

}  // namespace paretopipe::cli
