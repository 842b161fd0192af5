// Top-1 accuracy of a run from the classes its sink picked.
//
// Owns: matching predictions to labels. Must not touch: models, I/O.
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "metrics/run_record.h"
#include "util/status.h"

namespace paretopipe {

// Scores the sink's top-1 classes of each pass (StageTrace::top1) against
// `labels`, one per image of the input set (-1: unlabelled). Position p of a
// pass is image p modulo labels.size(), as the source cycles through the set.
// Each labelled image counts once, at its first prediction. Returns nullopt
// when no image is labelled; InvalidArgument when a pass's length is not a
// whole number of batches of `batch_size`.
Result<std::optional<Accuracy>> ScoreTop1(const std::vector<std::vector<int64_t>>& passes,
                                          int64_t batch_size, const std::vector<int64_t>& labels);

}  // namespace paretopipe
