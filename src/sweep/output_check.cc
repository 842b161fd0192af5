#include "sweep/output_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/compute.h"
#include "runtime/input_set.h"

namespace paretopipe {

OutputCheck::OutputCheck(std::shared_ptr<StageCompute> whole,
                         std::shared_ptr<const InputSet> inputs, uint64_t input_seed)
    : whole_(std::move(whole)), inputs_(std::move(inputs)), input_seed_(input_seed) {}

OutputCheck::~OutputCheck() = default;

Result<OutputComparison> OutputCheck::Compare(const std::vector<KeptOutput>& outputs, int batches,
                                              const std::vector<int64_t>& input_shape) {
  OutputComparison result;
  if (outputs.size() != static_cast<size_t>(batches)) {
    return Status::Internal(fmt::format("--verify: the sink returned {} outputs of {} batches",
                                        outputs.size(), batches));
  }
  const int64_t batch = input_shape.empty() ? 1 : input_shape[0];
  for (const KeptOutput& o : outputs) {
    // Batches with the same input: synthetic ones cycle over min(batches, 4);
    // an input set's repeat every lcm(count, batch) / batch batches, so the
    // first image of the batch names its input when the count is a multiple
    // of the batch, and the batch id itself otherwise.
    int64_t key = o.batch_id;
    if (!inputs_) {
      key = o.batch_id % std::min(batches, 4);
    } else if (inputs_->count() % batch == 0) {
      key = (o.batch_id * batch) % inputs_->count();
    }
    auto it = expected_.find({key, batch});
    if (it == expected_.end()) {
      const torch::Tensor input =
          inputs_ ? inputs_->Batch(o.batch_id, batch)
                  : SyntheticBatch(input_seed_, o.batch_id, batches, input_shape);
      PP_ASSIGN_OR_RETURN(torch::Tensor out, whole_->Run(input));
      out = out.to(torch::kCPU).contiguous();
      it = expected_
               .emplace(
                   std::make_pair(key, batch),
                   std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel()))
               .first;
    }
    const std::vector<float>& want = it->second;
    if (want.size() != o.values.size()) {
      return Status::InvalidArgument(
          fmt::format("--verify: batch {} has {} output values, the whole model {}", o.batch_id,
                      o.values.size(), want.size()));
    }
    for (size_t i = 0; i < want.size(); ++i) {
      double diff = std::fabs(static_cast<double>(o.values[i]) - want[i]);
      // NaN where the whole model has a number (or the reverse) is as far
      // apart as values get; NaN in both is the same result.
      if (std::isnan(diff)) {
        diff = std::isnan(o.values[i]) && std::isnan(want[i])
                   ? 0.0
                   : std::numeric_limits<double>::infinity();
      }
      result.max_abs_diff = std::max(result.max_abs_diff, diff);
      result.max_abs_value =
          std::max(result.max_abs_value, static_cast<double>(std::fabs(want[i])));
    }
    ++result.batches;
  }
  return result;
}

}  // namespace paretopipe
