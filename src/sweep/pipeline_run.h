// One run: a model split at given cuts, placed on workers (one per stage),
// measured for `repeats` passes, summarized into a RunRecord.
//
// Owns: the order of a run (configure, connect, clock exchange, passes,
// summary). Must not touch: the store, how workers are started, cut choice.
// Thread safety: one run at a time per set of clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/worker_client.h"
#include "metrics/run_record.h"
#include "model/cuts.h"
#include "sweep/script_stages.h"
#include "util/status.h"

namespace paretopipe {

struct RunPlan {
  RunConfig config;          // Model, cuts, batch, batches, warm-up, window, repeats.
  std::string weights_path;  // Orchestrator's weights file (sent to workers without it).
  int64_t num_blocks = 0;    // Of the model.
  // What each stage receives, batch included: stage 0 the input image batch,
  // stage i the activation at cuts[i-1].
  std::vector<std::vector<int64_t>> stage_input_shapes;
  // Each stage's second and later input tensors (StageExtraInputShapes);
  // empty: one tensor per stage.
  std::vector<std::vector<std::vector<int64_t>>> stage_extra_input_shapes;
  int64_t run_id = 0;  // Distinguishes this run's connections on the workers.
  uint64_t input_seed = 0;
  // A dataset's images instead of synthetic input (config.input_digest is
  // its digest), and their labels (one per image, -1 unlabelled; empty: no
  // accuracy is scored).
  std::shared_ptr<const InputSet> inputs;
  std::vector<int64_t> labels;
  // A TorchScript model: each stage's segment module, in stage order (its
  // worker receives it instead of weights). Empty for a zoo model.
  std::vector<ScriptStageModule> stage_modules;
  bool keep_outputs = false;  // Return the sink's outputs (for checks).
  int clock_samples = 16;     // Clock exchanges per worker before each pass.
  // How long a stage waits for a frame, a credit or queue room before it
  // fails the pass (StageConfig::stall_timeout).
  std::chrono::milliseconds stall_timeout{60000};
};

// RunConfig::device from each stage's device in order: the one name when
// all are alike ("cpu"), else all of them ("cpu,cuda:0").
std::string StageDevicesText(const std::vector<std::string>& devices);

// Where a run's wall time went, for the sweep's overhead accounting.
struct RunTiming {
  double passes_s = 0;  // From starting each pass to its last trace received, summed.
  double total_s = 0;   // Whole RunPipeline call.
};

// Runs `plan` on `workers` (stage order). Returns the record with
// configuration, environment, per-repeat summaries, per-stage statistics,
// samples and across-repeat estimates; started_at_utc and status filled. On
// failure returns the first error (the workers are told to end the run).
// `outputs` (may be null) receives the sink's outputs of the last pass.
Result<RunRecord> RunPipeline(const std::vector<WorkerClient*>& workers, const RunPlan& plan,
                              std::vector<KeptOutput>* outputs = nullptr,
                              RunTiming* timing = nullptr);

// What each stage of `analysis`'s model split at `cuts` receives at batch
// `batch_size`: stage 0 the image batch, stage i the activation at cuts[i-1].
// REQUIRES: cuts increasing within [1, number of blocks - 1].
std::vector<std::vector<int64_t>> StageInputShapes(const ModelAnalysis& analysis,
                                                   int64_t batch_size,
                                                   const std::vector<int>& cuts);

// The second and later tensors each stage receives, when a cut carries
// several (TorchScript cuts inside a skip connection): per stage, empty for
// stage 0 and for single-tensor cuts.
std::vector<std::vector<std::vector<int64_t>>> StageExtraInputShapes(
    const ModelAnalysis& analysis, int64_t batch_size, const std::vector<int>& cuts);

// Current UTC time as ISO 8601 ("2026-11-26T19:46:49Z").
std::string UtcNow();

}  // namespace paretopipe
