// Validation of the planner against measurement: for every measured run in
// the store whose stages have a device profile, the planner's prediction for
// that run's own placement (analysis/planner.h Predict) beside what the run
// measured, and per group of comparable runs how well the prediction would
// have chosen: errors, regret and Pareto membership (docs/planner.md,
// "Validation").
//
// Owns: matching runs to profiles and links, and the error figures. Must not
// touch: the store's SQL (it is given RunRecords), running anything.
// Thread safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "analysis/device_profile.h"
#include "analysis/link_model.h"
#include "metrics/run_record.h"
#include "util/status.h"

namespace paretopipe {

struct ValidationOptions {
  // Profiles by device name. A run's stage matches the profile named as its
  // emulated device (`--local-device NAME=...`, StageEnvironment::limits),
  // else as its host (StageEnvironment::hostname), else as its endpoint.
  std::vector<std::pair<std::string, DeviceProfile>> devices;
  // The link between two stages when the run asked for no network condition
  // (loopback, a LAN): e.g. from `paretopipe linkprobe`. A run's condition
  // (RunConfig::net) adds its delay and caps the rate on top of it.
  LinkModel base_link;
};

// One measured run beside its prediction.
struct RunComparison {
  int64_t run_id = 0;
  std::string group;  // GroupValidation::group it belongs to.
  std::vector<int> cuts;
  std::vector<std::string> devices;  // Profile names, in stage order.
  // The prediction is PlanPrediction::steady_latency_ms (queueing in a full
  // pipeline, as sweeps measure); the idle-pipeline latency beside it.
  double predicted_latency_ms = 0, measured_latency_ms = 0;
  double predicted_idle_latency_ms = 0;
  double predicted_throughput_ips = 0, measured_throughput_ips = 0;
  std::string predicted_bottleneck;  // "stage 2", "hop 1", "window".
  // (predicted - measured) / measured.
  double latency_error = 0, throughput_error = 0;
  bool predicted_front = false;  // On the front of the group's predictions.
  bool measured_front = false;   // On the front of the group's measurements.
};

// How the predictions of a set of runs compare with their measurements.
struct ValidationFigures {
  int runs = 0;
  double latency_mape = 0, throughput_mape = 0;            // Mean |error|, a fraction.
  double latency_within_10 = 0, throughput_within_10 = 0;  // Share with |error| <= 0.1.
  // Choosing the configuration with the best prediction instead of the best
  // measurement costs this fraction of the best measured value (0: the same
  // choice, or one measured as good). Over several groups: the largest.
  double latency_regret = 0, throughput_regret = 0;
  // Of the runs on the predicted front, the share on the measured front
  // (precision), and of the measured front, the share predicted on it
  // (recall). Over several groups: pooled counts.
  int predicted_front = 0, measured_front = 0, both_fronts = 0;
  double front_precision() const {
    return predicted_front > 0 ? static_cast<double>(both_fronts) / predicted_front : 0;
  }
  double front_recall() const {
    return measured_front > 0 ? static_cast<double>(both_fronts) / measured_front : 0;
  }
};

struct GroupValidation {
  // Runs that competed: the same model, batch, input size, network
  // condition, backend, window and devices ("mobilenet_v2 batch 8 224px
  // net delay=100ms tcp window 4 on pi,server").
  std::string group;
  ValidationFigures figures;
};

struct ValidationReport {
  std::vector<RunComparison> runs;      // In the order given.
  std::vector<GroupValidation> groups;  // In order of first run.
  ValidationFigures overall;
  // Runs not compared, each with why ("run 12: stage 2 (server): no profile
  // named server, hostname h or endpoint e"): failed runs are not listed.
  std::vector<std::string> skipped;
};

// Compares every ok run of `runs` that can be predicted. InvalidArgument
// when none can, the message giving the first reasons.
Result<ValidationReport> Validate(const std::vector<RunRecord>& runs,
                                  const ValidationOptions& options);

}  // namespace paretopipe
