#include "sweep/script_stages.h"

#include <fmt/format.h>

#include <algorithm>

#include "model/torchscript.h"
#include "util/digest.h"

namespace paretopipe {

ScriptStages::~ScriptStages() = default;

Result<std::unique_ptr<ScriptStages>> ScriptStages::Load(const std::string& path,
                                                         std::vector<int64_t> node_bounds,
                                                         size_t stage_count) {
  std::unique_ptr<ScriptStages> stages(new ScriptStages());
  stages->stages_hint_ = stage_count;
  PP_ASSIGN_OR_RETURN(stages->model_, ScriptModel::Load(path));
  stages->node_bounds_ = std::move(node_bounds);
  return stages;
}

Result<std::shared_ptr<StageCompute>> ScriptStages::Whole() const {
  PP_ASSIGN_OR_RETURN(std::unique_ptr<ScriptSegment> whole, model_->Cut(0, model_->node_count()));
  return std::shared_ptr<StageCompute>(std::make_shared<ScriptStageCompute>(std::move(whole)));
}

Result<ScriptStageModule> ScriptStages::Module(int64_t block_begin, int64_t block_end) {
  const int64_t blocks = static_cast<int64_t>(node_bounds_.size()) - 1;
  if (block_begin < 0 || block_begin >= block_end || block_end > blocks) {
    return Status::InvalidArgument(fmt::format("{}: blocks [{}, {}) outside its {} blocks",
                                               model_->path(), block_begin, block_end, blocks));
  }
  auto cached = cache_.find({block_begin, block_end});
  if (cached != cache_.end()) return cached->second;
  PP_ASSIGN_OR_RETURN(std::unique_ptr<ScriptSegment> segment,
                      model_->Cut(node_bounds_[block_begin], node_bounds_[block_end]));
  PP_ASSIGN_OR_RETURN(std::string bytes, segment->Serialize());
  ScriptStageModule module;
  module.digest = Sha256OfBytes(bytes.data(), bytes.size());
  module.bytes = std::make_shared<const std::string>(std::move(bytes));
  constexpr size_t kKept = 4;
  const size_t keep = std::max(kKept, stages_hint_);
  while (recent_.size() >= keep) {
    cache_.erase(recent_.front());
    recent_.erase(recent_.begin());
  }
  cache_[{block_begin, block_end}] = module;
  recent_.push_back({block_begin, block_end});
  return module;
}

}  // namespace paretopipe
