#include "cli/validate_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "analysis/link_model.h"
#include "analysis/validate.h"
#include "cli/plan_inputs.h"
#include "store/store.h"

namespace paretopipe::cli {
namespace {

int Fail(const Status& status) {
  std::fprintf(stderr, "paretopipe: error: %s\n", status.message().c_str());
  return 1;
}

std::string Percent(double fraction) { return fmt::format("{:+.1f}%", 100 * fraction); }

nlohmann::json FiguresJson(const ValidationFigures& f) {
  return {{"runs", f.runs},
          {"latency_mape", f.latency_mape},
          {"throughput_mape", f.throughput_mape},
          {"latency_within_10", f.latency_within_10},
          {"throughput_within_10", f.throughput_within_10},
          {"latency_regret", f.latency_regret},
          {"throughput_regret", f.throughput_regret},
          {"predicted_front", f.predicted_front},
          {"measured_front", f.measured_front},
          {"both_fronts", f.both_fronts},
          {"front_precision", f.front_precision()},
          {"front_recall", f.front_recall()}};
}

void PrintFigures(const ValidationFigures& f) {
  std::cout << fmt::format(
      "  {} run(s): latency MAPE {:.1f}% ({:.0f}% within ±10%), throughput MAPE {:.1f}% ({:.0f}% "
      "within ±10%)\n  regret of the predicted best: latency {:.1f}%, throughput {:.1f}%; "
      "Pareto membership precision {:.2f}, recall {:.2f} ({} predicted, {} measured, {} both)\n",
      f.runs, 100 * f.latency_mape, 100 * f.latency_within_10, 100 * f.throughput_mape,
      100 * f.throughput_within_10, 100 * f.latency_regret, 100 * f.throughput_regret,
      f.front_precision(), f.front_recall(), f.predicted_front, f.measured_front, f.both_fronts);
}

// A prediction that `validate` did not make (a plan-first sweep's: "front",
// "near", "control") was made before its run was measured: the honest
// record of the planner, which a prediction made after the fact, knowing
// the measurement was there to compare, must not replace.
bool PredictedBeforeTheRun(const RunRecord& run) {
  return run.prediction && run.prediction->role != "validate";
}

// The base link as the user gave it: a spec described canonically, a
// link.json named with what it holds.
std::string BaseLinkText(const std::string& value, const LinkModel& link) {
  const std::string described = DescribeLinkModel(link);
  if (value == "none" || value.find('=') != std::string::npos) return described;
  return fmt::format("{} ({})", value, described);
}

// "validate: pi=a.json, server=b.json; base link none": the --device
// arguments of the profiles the run's stages matched, and the base link.
std::string SourceOf(const RunComparison& run, const std::vector<std::string>& device_args,
                     const std::string& base_link) {
  std::vector<std::string> used;
  for (const std::string& name : run.devices) {
    for (const std::string& arg : device_args) {
      if (arg.substr(0, arg.find('=')) == name &&
          std::find(used.begin(), used.end(), arg) == used.end()) {
        used.push_back(arg);
      }
    }
  }
  return fmt::format("validate: {}; base link {}", fmt::join(used, ", "), base_link);
}

struct SaveCounts {
  int saved = 0;
  int kept = 0;  // Runs whose prediction a sweep made before measuring them.
};

// Stores the prediction of every run in `report` beside the run in `db`,
// each in its own transaction, except where PredictedBeforeTheRun.
Result<SaveCounts> SavePredictions(const std::string& db, const std::vector<RunRecord>& runs,
                                   const ValidationReport& report,
                                   const std::vector<std::string>& device_args,
                                   const std::string& base_link) {
  PP_ASSIGN_OR_RETURN(std::unique_ptr<ResultStore> store, ResultStore::Open(db));
  std::map<int64_t, const RunRecord*> by_id;
  for (const RunRecord& r : runs) by_id[r.id] = &r;
  SaveCounts counts;
  for (const RunComparison& c : report.runs) {
    if (PredictedBeforeTheRun(*by_id.at(c.run_id))) {
      ++counts.kept;
      continue;
    }
    RunPrediction p;
    p.latency_ms = c.predicted_latency_ms;
    p.idle_latency_ms = c.predicted_idle_latency_ms;
    p.throughput_ips = c.predicted_throughput_ips;
    p.bottleneck = c.predicted_bottleneck;
    p.role = "validate";
    p.source = SourceOf(c, device_args, base_link);
    PP_RETURN_IF_ERROR(store->SavePrediction(c.run_id, p));
    ++counts.saved;
  }
  return counts;
}

}  // namespace

ValidateCommand::ValidateCommand(CLI::App& app) {
  command_ = app.add_subcommand(
      "validate",
      "Compare the planner's predictions with every measured run that has profiles for its "
      "devices: errors, regret, Pareto membership (docs/planner.md)");
  command_->add_option("--db", filter_.db, "SQLite file of runs")->capture_default_str();
  command_
      ->add_option("--device", devices_,
                   "NAME=PROFILE.json, repeatable: the profile of the device a stage ran on, "
                   "matched by its --local-device name, else its hostname, else its address")
      ->required();
  command_
      ->add_option("--base-link", base_link_,
                   "The link between stages without a network condition: SPEC "
                   "(rtt=0.1ms,rate=10gbit,overhead=0.05ms) or a link.json from linkprobe; a "
                   "run's --net condition is added on top")
      ->capture_default_str();
  command_->add_option("--model", filter_.model, "Only runs of this model");
  command_->add_option("--sweep", filter_.sweep, "Only runs of this sweep id, or `last`");
  command_->add_option("--backend", filter_.backend, "Only runs on this backend");
  command_->add_option("--net", filter_.net, "Only runs under this network condition");
  command_->add_flag("--json", json_, "The comparison as JSON");
  command_->add_flag("--save", save_,
                     "Store each compared run's prediction beside it in --db (role validate), "
                     "except a prediction sweep --plan-first made before the run, which is kept");
}

int ValidateCommand::Run() const {
  ValidationOptions options;
  Result<std::vector<NamedProfile>> devices = ReadNamedProfiles(devices_);
  if (!devices.ok()) return Fail(devices.status());
  for (NamedProfile& d : *devices) options.devices.emplace_back(d.name, std::move(d.profile));
  Result<LinkModel> base = ReadLinkValue(base_link_);
  if (!base.ok()) return Fail(base.status().WithContext("--base-link"));
  options.base_link = *base;

  Result<std::vector<RunRecord>> runs = LoadForAnalysis(filter_, /*only_ok=*/true);
  if (!runs.ok()) return Fail(runs.status());
  Result<ValidationReport> report = Validate(*runs, options);
  if (!report.ok()) return Fail(report.status());
  SaveCounts saved;
  if (save_) {
    Result<SaveCounts> counts =
        SavePredictions(filter_.db, *runs, *report, devices_, BaseLinkText(base_link_, *base));
    if (!counts.ok()) return Fail(counts.status().WithContext("--save"));
    saved = *counts;
  }

  if (json_) {
    nlohmann::json j = {{"overall", FiguresJson(report->overall)}, {"skipped", report->skipped}};
    if (save_) j["save"] = {{"saved", saved.saved}, {"kept", saved.kept}};
    for (const GroupValidation& g : report->groups) {
      j["groups"].push_back({{"group", g.group}, {"figures", FiguresJson(g.figures)}});
    }
    for (const RunComparison& r : report->runs) {
      j["runs"].push_back({{"run_id", r.run_id},
                           {"group", r.group},
                           {"cuts", r.cuts},
                           {"devices", r.devices},
                           {"predicted_latency_ms", r.predicted_latency_ms},
                           {"measured_latency_ms", r.measured_latency_ms},
                           {"predicted_throughput_ips", r.predicted_throughput_ips},
                           {"measured_throughput_ips", r.measured_throughput_ips},
                           {"predicted_bottleneck", r.predicted_bottleneck},
                           {"predicted_front", r.predicted_front},
                           {"measured_front", r.measured_front}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  for (const GroupValidation& g : report->groups) {
    std::cout << g.group << "\n";
    std::cout << fmt::format("  {:>5} {:<10} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7} {:<9} {}\n", "run",
                             "cuts", "pred ms", "meas ms", "error", "pred i/s", "meas i/s", "error",
                             "limit", "front P/M");
    for (const RunComparison& r : report->runs) {
      if (r.group != g.group) continue;
      std::cout << fmt::format(
          "  {:>5} {:<10} {:>9.2f} {:>9.2f} {:>7} {:>9.1f} {:>9.1f} {:>7} {:<9} {}/{}\n", r.run_id,
          fmt::format("{}", fmt::join(r.cuts, ",")), r.predicted_latency_ms, r.measured_latency_ms,
          Percent(r.latency_error), r.predicted_throughput_ips, r.measured_throughput_ips,
          Percent(r.throughput_error), r.predicted_bottleneck, r.predicted_front ? "*" : "-",
          r.measured_front ? "*" : "-");
    }
    PrintFigures(g.figures);
  }
  std::cout << "overall:\n";
  PrintFigures(report->overall);
  if (!report->skipped.empty()) {
    std::cout << fmt::format("{} run(s) not compared, e.g. {}\n", report->skipped.size(),
                             report->skipped.front());
  }
  if (save_) {
    std::cout << fmt::format(
        "saved the prediction of {} run(s) in {}; kept the one sweep --plan-first made before "
        "the run for {} run(s)\n",
        saved.saved, filter_.db, saved.kept);
  }
  return 0;
}

}  // namespace paretopipe::cli
