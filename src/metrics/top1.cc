#include "metrics/top1.h"

#include <fmt/format.h>

namespace paretopipe {

Result<std::optional<Accuracy>> ScoreTop1(const std::vector<std::vector<int64_t>>& passes,
                                          int64_t batch_size, const std::vector<int64_t>& labels) {
  if (batch_size < 1) return Status::InvalidArgument("top-1: batch size must be >= 1");
  const size_t n = labels.size();
  std::vector<bool> seen(n, false);
  Accuracy accuracy;
  for (size_t pass = 0; pass < passes.size(); ++pass) {
    const std::vector<int64_t>& top1 = passes[pass];
    if (top1.size() % static_cast<size_t>(batch_size) != 0) {
      return Status::InvalidArgument(
          fmt::format("top-1: pass {} has {} predictions, not whole batches of {}", pass,
                      top1.size(), batch_size));
    }
    for (size_t p = 0; p < top1.size() && n > 0; ++p) {
      const size_t image = p % n;
      if (seen[image] || labels[image] < 0) continue;
      seen[image] = true;
      ++accuracy.images;
      if (top1[p] == labels[image]) ++accuracy.correct;
    }
  }
  if (accuracy.images == 0) return std::optional<Accuracy>();
  return std::optional<Accuracy>(accuracy);
}

}  // namespace paretopipe
