// The stages of a TorchScript model in a sweep: the orchestrator loads the
// file once, cuts its graph at the block bounds the analysis found and
// serializes each stage's segment (model/torchscript.h), which the worker of
// that stage receives instead of weights.
//
// Owns: the loaded model and the serialized segments, cached by block range
// (a sweep runs each range under several backends and conditions). Must not
// touch: the network, the store.
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace paretopipe {

class ScriptModel;
class StageCompute;

struct ScriptStageModule {
  std::shared_ptr<const std::string> bytes;  // ScriptSegment::Serialize.
  std::string digest;                        // SHA-256 of bytes, hex.
};

class ScriptStages {
 public:
  // Loads `path`; `node_bounds` as ModelAnalysis::node_bounds.
  static Result<std::unique_ptr<ScriptStages>> Load(const std::string& path,
                                                    std::vector<int64_t> node_bounds,
                                                    size_t stages = 2);
  ~ScriptStages();
  ScriptStages(const ScriptStages&) = delete;
  ScriptStages& operator=(const ScriptStages&) = delete;

  // The segment of blocks [block_begin, block_end). Keeps the last few (as
  // many as a pipeline has stages, at least 4) for the runs that follow.
  // REQUIRES: 0 <= block_begin < block_end <= number of blocks.
  Result<ScriptStageModule> Module(int64_t block_begin, int64_t block_end);

  // The whole model, as a stage would compute it (for sweep --verify).
  Result<std::shared_ptr<StageCompute>> Whole() const;

 private:
  ScriptStages() = default;
  std::unique_ptr<ScriptModel> model_;
  std::vector<int64_t> node_bounds_;
  // The segments of the last combination run: a sweep runs one combination
  // under every backend and condition before the next, and every segment
  // holds its share of the weights (all of them would be the model times
  // the number of cuts).
  std::map<std::pair<int64_t, int64_t>, ScriptStageModule> cache_;
  std::vector<std::pair<int64_t, int64_t>> recent_;  // Oldest first.
  size_t stages_hint_ = 0;
};

}  // namespace paretopipe
