// LibTorch tensors in and out of frames: the one place that knows both.
// Torch-facing: include only from .cc files.
//
// Thread safety: as the Socket used.
#pragma once

#include <torch/types.h>

#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

// The header of a frame of `type` carrying `tensor` (which must be on the CPU
// and contiguous to be sent from its storage). Allocates nothing: it is built
// for every activation a stage sends. InvalidArgument for a dtype frames
// cannot carry or a rank above kMaxFrameRank.
Result<FrameHeader> TensorHeader(FrameType type, uint64_t batch_id, const torch::Tensor& tensor);

// Sends `tensor` as one frame of `type`. A CPU, contiguous tensor is sent
// straight from its storage; any other is first made so (one copy).
// InvalidArgument for dtypes frames cannot carry.
Status SendTensor(Socket& socket, FrameType type, uint64_t batch_id, const torch::Tensor& tensor,
                  Deadline deadline);

// Receives the payload of a tensor frame whose `header` was just read into a
// new CPU tensor of its dtype and shape.
Result<torch::Tensor> ReceiveTensorPayload(Socket& socket, const FrameHeader& header,
                                           Deadline deadline);

}  // namespace paretopipe
