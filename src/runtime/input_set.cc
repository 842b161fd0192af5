#include "runtime/input_set.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "util/digest.h"

namespace paretopipe {

torch::Tensor InputSet::Batch(int64_t batch_id, int64_t batch_size) const {
  const int64_t n = count();
  const int64_t first = (batch_id * batch_size) % n;
  if (first + batch_size <= n) return images.narrow(0, first, batch_size);
  torch::Tensor index = torch::arange(first, first + batch_size, torch::kLong).remainder(n);
  return images.index_select(0, index);
}

torch::Tensor SyntheticBatch(uint64_t input_seed, int64_t batch_id, int batches,
                             const std::vector<int64_t>& shape) {
  const int64_t distinct = std::min(batches, 4);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(input_seed +
                                                      static_cast<uint64_t>(batch_id % distinct));
  return torch::rand(shape, gen, torch::kFloat);
}

Result<InputSet> MakeInputSet(torch::Tensor images) {
  if (!images.defined() || images.dim() != 4 || images.size(0) < 1 ||
      images.scalar_type() != torch::kFloat) {
    return Status::InvalidArgument(
        fmt::format("input set: expected a float32 N x C x H x W tensor with N >= 1, got {}",
                    images.defined() ? fmt::format("[{}] {}", fmt::join(images.sizes(), ", "),
                                                   c10::toString(images.scalar_type()))
                                     : std::string("none")));
  }
  InputSet set;
  set.images = images.to(torch::kCPU).contiguous();
  set.digest = Sha256OfBytes(set.images.data_ptr(), set.images.nbytes());
  return set;
}

}  // namespace paretopipe
