#include "cli/plan_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "analysis/device_profile.h"
#include "analysis/link_model.h"
#include "analysis/planner.h"
#include "cli/format.h"
#include "cli/plan_inputs.h"
#include "util/status.h"

namespace paretopipe::cli {
namespace {

int IndexOf(const std::vector<NamedProfile>& devices, const std::string& name) {
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// The links between every ordered pair of `devices`: --link A>B (that
// direction) over --link A-B (both) over --net (every other pair).
Result<std::vector<std::vector<LinkModel>>> ResolveLinks(const std::vector<NamedProfile>& devices,
                                                         const std::vector<std::string>& specs,
                                                         const std::string& net) {
  const int n = static_cast<int>(devices.size());
  std::vector<std::vector<LinkModel>> links(n, std::vector<LinkModel>(n));
  enum Level { kNone, kBoth, kDirected };
  std::vector<std::vector<Level>> given(n, std::vector<Level>(n, kNone));
  std::vector<std::string> names;
  for (const NamedProfile& d : devices) names.push_back(d.name);
  const std::string known = fmt::format("{}", fmt::join(names, ", "));
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq + 1 == spec.size()) {
      return Status::InvalidArgument(fmt::format(
          "--link {}: give A-B=SPEC or A-B=link.json (A>B for one direction only)", spec));
    }
    const std::string key = spec.substr(0, eq);
    int from = -1, to = -1;
    bool directed = false;
    if (const size_t gt = key.find('>'); gt != std::string::npos) {
      directed = true;
      from = IndexOf(devices, key.substr(0, gt));
      to = IndexOf(devices, key.substr(gt + 1));
    } else {
      // Names may contain '-': take the one split whose both sides are devices.
      int matches = 0;
      for (size_t dash = key.find('-'); dash != std::string::npos; dash = key.find('-', dash + 1)) {
        const int a = IndexOf(devices, key.substr(0, dash)),
                  b = IndexOf(devices, key.substr(dash + 1));
        if (a >= 0 && b >= 0) {
          from = a;
          to = b;
          ++matches;
        }
      }
      if (matches > 1) {
        return Status::InvalidArgument(
            fmt::format("--link {}: '{}' splits into devices in more than one way", spec, key));
      }
    }
    if (from < 0 || to < 0) {
      return Status::InvalidArgument(
          fmt::format("--link {}: '{}' is not two devices joined by - (both directions) or > (one "
                      "direction); devices: {}",
                      spec, key, known));
    }
    if (from == to) {
      return Status::InvalidArgument(
          fmt::format("--link {}: a device does not send to itself (one stage per device)", spec));
    }
    Result<LinkModel> link = ReadLinkValue(spec.substr(eq + 1));
    if (!link.ok()) return link.status().WithContext("--link " + key);
    const Level level = directed ? kDirected : kBoth;
    const std::vector<std::pair<int, int>> pairs =
        directed ? std::vector<std::pair<int, int>>{{from, to}}
                 : std::vector<std::pair<int, int>>{{from, to}, {to, from}};
    for (const auto& [a, b] : pairs) {
      if (given[a][b] == level) {
        return Status::InvalidArgument(fmt::format("--link {}: {} -> {} is given twice", spec,
                                                   devices[a].name, devices[b].name));
      }
      if (given[a][b] < level) {
        links[a][b] = *link;
        given[a][b] = level;
      }
    }
  }
  std::optional<LinkModel> fallback;
  if (!net.empty()) {
    Result<LinkModel> link = ReadLinkValue(net);
    if (!link.ok()) return link.status().WithContext("--net");
    fallback = *link;
  }
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b || given[a][b] != kNone) continue;
      if (!fallback) {
        return Status::InvalidArgument(fmt::format(
            "no link model for {} -> {}: give --link {}-{}=SPEC|link.json or --net SPEC for every "
            "pair not given (e.g. --net rtt=40ms,rate=20mbit)",
            devices[a].name, devices[b].name, devices[a].name, devices[b].name));
      }
      links[a][b] = *fallback;
    }
  }
  return links;
}

// "3" or "2..4" or "2.." (up to the number of devices).
Status ParseStages(const std::string& text, int* min, int* max) {
  auto bad = [&] {
    return Status::InvalidArgument(
        fmt::format("--stages {}: give N or A..B (e.g. 2..4), each at least 1", text));
  };
  try {
    const size_t dots = text.find("..");
    size_t used = 0;
    if (dots == std::string::npos) {
      *min = *max = std::stoi(text, &used);
      if (used != text.size()) return bad();
    } else {
      *min = std::stoi(text.substr(0, dots), &used);
      if (used != dots) return bad();
      const std::string rest = text.substr(dots + 2);
      *max = rest.empty() ? 0 : std::stoi(rest, &used);
      if (!rest.empty() && used != rest.size()) return bad();
    }
  } catch (const std::exception&) {
    return bad();
  }
  if (*min < 1 || *max < 0 || (*max > 0 && *max < *min)) return bad();
  return Status::Ok();
}

// How many placements the problem has: sum over stage counts m of
// C(blocks - 1, m - 1) ways to cut times devices! / (devices - m)! orders.
double PlacementCount(int blocks, int devices, int min_stages, int max_stages) {
  double total = 0;
  for (int m = min_stages; m <= max_stages; ++m) {
    double ways = 1;
    for (int i = 0; i < m - 1; ++i) ways = ways * (blocks - 1 - i) / (i + 1);
    for (int i = 0; i < m; ++i) ways *= devices - i;
    total += ways;
  }
  return total;
}

std::string BottleneckText(const PlanPrediction& p, const std::vector<NamedProfile>& devices,
                           int window) {
  const Placement& pl = p.placement;
  switch (p.bottleneck.kind) {
    case Bottleneck::Kind::kStage:
      return fmt::format("{} ({})", BottleneckName(p.bottleneck),
                         devices[pl.devices[p.bottleneck.index]].name);
    case Bottleneck::Kind::kHop:
      return fmt::format("{} ({}->{})", BottleneckName(p.bottleneck),
                         devices[pl.devices[p.bottleneck.index]].name,
                         devices[pl.devices[p.bottleneck.index + 1]].name);
    case Bottleneck::Kind::kWindow:
      return fmt::format("window (K={})", window);
  }
  return "?";
}

std::string CutsText(const Placement& p) {
  return p.cuts.empty() ? "-" : fmt::format("{}", fmt::join(p.cuts, ","));
}

std::string DevicesText(const Placement& p, const std::vector<NamedProfile>& devices) {
  std::vector<std::string> names;
  for (int d : p.devices) names.push_back(devices[d].name);
  return fmt::format("{}", fmt::join(names, ">"));
}

nlohmann::ordered_json FrontJson(const std::vector<PlanPrediction>& front,
                                 const std::vector<NamedProfile>& devices,
                                 const PlanProblem& problem, const std::string& model) {
  nlohmann::ordered_json out;
  out["model"] = model;
  out["batch"] = problem.batch;
  out["window"] = problem.window;
  out["blocks"] = problem.block_output_bytes.size();
  out["stages"] = {problem.min_stages, problem.max_stages};
  nlohmann::ordered_json devs = nlohmann::ordered_json::array();
  for (const NamedProfile& d : devices) {
    devs.push_back({{"name", d.name},
                    {"profile", d.profile.source},
                    {"device", d.profile.device},
                    {"threads", d.profile.threads},
                    {"hostname", d.profile.hostname}});
  }
  out["devices"] = devs;
  nlohmann::ordered_json links = nlohmann::ordered_json::array();
  for (size_t a = 0; a < devices.size(); ++a) {
    for (size_t b = 0; b < devices.size(); ++b) {
      if (a == b) continue;
      const LinkModel& l = problem.links[a][b];
      links.push_back({{"from", devices[a].name},
                       {"to", devices[b].name},
                       {"overhead_ms", l.overhead_ms},
                       {"rate_bits_per_s", l.rate_bits_per_s},
                       {"delay_ms", l.delay_ms}});
    }
  }
  out["links"] = links;
  nlohmann::ordered_json plans = nlohmann::ordered_json::array();
  for (const PlanPrediction& p : front) {
    const Placement& pl = p.placement;
    nlohmann::ordered_json stages = nlohmann::ordered_json::array();
    nlohmann::ordered_json hops = nlohmann::ordered_json::array();
    for (size_t i = 0; i < pl.devices.size(); ++i) {
      const int from = i == 0 ? 0 : pl.cuts[i - 1];
      const int to = i + 1 == pl.devices.size()
                         ? static_cast<int>(problem.block_output_bytes.size())
                         : pl.cuts[i];
      stages.push_back({{"device", devices[pl.devices[i]].name},
                        {"blocks", {from, to}},
                        {"compute_ms", p.stage_compute_ms[i]}});
      if (i + 1 < pl.devices.size()) {
        hops.push_back({{"from", devices[pl.devices[i]].name},
                        {"to", devices[pl.devices[i + 1]].name},
                        {"cut", pl.cuts[i]},
                        {"bytes", p.hop_bytes[i]},
                        {"transfer_ms", p.hop_transfer_ms[i]},
                        {"delay_ms", p.hop_delay_ms[i]}});
      }
    }
    std::vector<std::string> names;
    for (int d : pl.devices) names.push_back(devices[d].name);
    nlohmann::ordered_json plan = {{"cuts", pl.cuts},
                                   {"devices", names},
                                   {"latency_ms", p.latency_ms},
                                   {"steady_latency_ms", p.steady_latency_ms},
                                   {"period_ms", p.period_ms},
                                   {"throughput_ips", nullptr},
                                   {"bottleneck", BottleneckName(p.bottleneck)},
                                   {"credit_return_ms", p.credit_return_ms},
                                   {"stages", stages},
                                   {"hops", hops}};
    if (std::isfinite(p.throughput_ips)) plan["throughput_ips"] = p.throughput_ips;
    plans.push_back(plan);
  }
  out["front"] = plans;
  return out;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "paretopipe: error: %s\n", status.message().c_str());
  return 1;
}

}  // namespace

PlanCommand::PlanCommand(CLI::App& app) {
  command_ = app.add_subcommand(
      "plan",
      "Predict, from device profiles and link models, the latency and throughput of every split "
      "of a model over the devices (which segment on which device, in which order), and print "
      "the predicted Pareto front (docs/planner.md)");
  command_->add_option("MODEL", model_, "The model the profiles are of (e.g. mobilenet_v2)")
      ->required();
  command_
      ->add_option("--device,-d", devices_,
                   "NAME=PROFILE.json: a device and its profile (`paretopipe profile MODEL -o "
                   "FILE` run on it); one per device, at least one")
      ->required();
  command_->add_option(
      "--link,-l", links_,
      "A-B=SPEC or A-B=link.json: the link between devices A and B, both directions (A>B: "
      "from A to B only). SPEC: rtt=40ms,rate=20mbit[,overhead=0.2ms] (or delay= one way, "
      "rate=unlimited, none); link.json as `linkprobe` writes it");
  command_->add_option("--net", net_,
                       "SPEC or link.json for every pair of devices that --link does not give");
  command_->add_option("--stages", stages_,
                       "Stage counts to consider: N or A..B (default: 1..number of devices)");
  command_->add_option("--batch,-b", batch_,
                       "Batch size; must be the profiles' (default: the profiles' batch)");
  command_
      ->add_option("--window", window_,
                   "Batches in flight (the source waits for a credit from the sink before "
                   "each), as `sweep --window`")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command_->add_flag("--json", json_, "Print JSON");
}

int PlanCommand::Run() const {
  Result<std::vector<NamedProfile>> devices = ReadNamedProfiles(devices_);
  if (!devices.ok()) return Fail(devices.status());
  const DeviceProfile& first = devices->front().profile;
  if (first.model != model_) {
    return Fail(Status::InvalidArgument(fmt::format("the profiles are of {}, not {} (profile {})",
                                                    first.model, model_, first.source)));
  }
  if (batch_ != 0 && batch_ != first.batch) {
    return Fail(Status::InvalidArgument(fmt::format(
        "--batch {}: the profiles are at batch {}; compute time is not proportional to the "
        "batch, so profile again with --batch {}",
        batch_, first.batch, batch_)));
  }
  PlanProblem problem;
  for (const NamedProfile& d : *devices) problem.compute_ms.push_back(d.profile.block_compute_ms);
  problem.block_output_bytes = first.block_output_bytes;
  Result<std::vector<std::vector<LinkModel>>> links = ResolveLinks(*devices, links_, net_);
  if (!links.ok()) return Fail(links.status());
  problem.links = std::move(*links);
  problem.batch = first.batch;
  problem.window = window_;
  if (!stages_.empty()) {
    if (Status s = ParseStages(stages_, &problem.min_stages, &problem.max_stages); !s.ok()) {
      return Fail(s);
    }
  }
  Result<std::vector<PlanPrediction>> front = PlanFront(problem);
  if (!front.ok()) return Fail(front.status());

  const int n = static_cast<int>(problem.block_output_bytes.size());
  const int d = static_cast<int>(devices->size());
  const int max_stages = std::min({problem.max_stages == 0 ? d : problem.max_stages, d, n});
  problem.max_stages = max_stages;
  if (json_) {
    std::cout << FrontJson(*front, *devices, problem, model_).dump(2) << "\n";
    return 0;
  }
  const std::string stage_counts =
      problem.min_stages == max_stages
          ? fmt::format("{} stage{}", max_stages, max_stages == 1 ? "" : "s")
          : fmt::format("{} to {} stages", problem.min_stages, max_stages);
  const double placements = PlacementCount(n, d, problem.min_stages, max_stages);
  fmt::print(
      "{}: {} blocks, batch {}, window {}; {}: {} placements\n", model_, n, problem.batch,
      problem.window, stage_counts,
      placements < 1e12 ? WithCommas(std::llround(placements)) : fmt::format("{:.2g}", placements));
  for (const NamedProfile& dev : *devices) {
    fmt::print("  device {}: {} ({}{}{}), whole model {:.3f} ms\n", dev.name, dev.profile.source,
               dev.profile.device.empty() ? "?" : dev.profile.device,
               dev.profile.threads > 0 ? fmt::format(", {} thread{}", dev.profile.threads,
                                                     dev.profile.threads == 1 ? "" : "s")
                                       : "",
               dev.profile.hostname.empty() ? "" : ", on " + dev.profile.hostname, [&] {
                 double total = 0;
                 for (double t : dev.profile.block_compute_ms) total += t;
                 return total;
               }());
  }
  // The links: those unlike the most common one by name, then that one.
  std::vector<std::string> described;
  for (int a = 0; a < d; ++a) {
    for (int b = 0; b < d; ++b) {
      if (a != b) described.push_back(DescribeLinkModel(problem.links[a][b]));
    }
  }
  std::string common;
  ptrdiff_t common_count = 0;
  for (const std::string& text : described) {
    const ptrdiff_t count = std::count(described.begin(), described.end(), text);
    if (count > common_count) {
      common = text;
      common_count = count;
    }
  }
  for (int a = 0, i = 0; a < d; ++a) {
    for (int b = 0; b < d; ++b) {
      if (a == b) continue;
      if (described[i] != common || common_count == 1) {
        fmt::print("  link {}->{}: {}\n", (*devices)[a].name, (*devices)[b].name, described[i]);
      }
      ++i;
    }
  }
  if (common_count > 1) {
    fmt::print("  link {}: {}\n",
               common_count == static_cast<ptrdiff_t>(described.size()) ? "every pair"
                                                                        : "every other pair",
               common);
  }
  fmt::print("\npredicted Pareto front ({} plan{}), lowest latency first:\n", front->size(),
             front->size() == 1 ? "" : "s");
  std::vector<std::string> cuts, order;
  size_t cuts_width = 4, devices_width = 7;
  for (const PlanPrediction& p : *front) {
    cuts.push_back(CutsText(p.placement));
    order.push_back(DevicesText(p.placement, *devices));
    cuts_width = std::max(cuts_width, cuts.back().size());
    devices_width = std::max(devices_width, order.back().size());
  }
  // "full ms": the latency once --window batches are in flight, which a
  // sweep measures (docs/planner.md, "Queueing").
  fmt::print("{:<{}}  {:<{}}  {:>10}  {:>10}  {:>16}  {:>9}  {}\n", "cuts", cuts_width, "devices",
             devices_width, "latency ms", "full ms", "throughput img/s", "period ms", "bottleneck");
  for (size_t i = 0; i < front->size(); ++i) {
    const PlanPrediction& p = (*front)[i];
    fmt::print("{:<{}}  {:<{}}  {:>10.2f}  {:>10.2f}  {:>16.2f}  {:>9.2f}  {}\n", cuts[i],
               cuts_width, order[i], devices_width, p.latency_ms, p.steady_latency_ms,
               p.throughput_ips, p.period_ms, BottleneckText(p, *devices, problem.window));
  }
  return 0;
}

}  // namespace paretopipe::cli
