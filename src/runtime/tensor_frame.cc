#include "runtime/tensor_frame.h"

#include <fmt/format.h>

#include "runtime/dtype.h"

namespace paretopipe {

Result<FrameHeader> TensorHeader(FrameType type, uint64_t batch_id, const torch::Tensor& tensor) {
  FrameHeader h;
  h.type = type;
  h.batch_id = batch_id;
  h.dtype = FrameDTypeOf(tensor.scalar_type());
  if (h.dtype == DType::kNone) {
    return Status::InvalidArgument(fmt::format("tensor dtype {} cannot be sent",
                                               std::string(c10::toString(tensor.scalar_type()))));
  }
  if (tensor.dim() > kMaxFrameRank) {
    return Status::InvalidArgument(
        fmt::format("tensor of rank {} cannot be sent (at most {})", tensor.dim(), kMaxFrameRank));
  }
  h.rank = static_cast<int>(tensor.dim());
  for (int i = 0; i < h.rank; ++i) h.shape[i] = tensor.size(i);
  h.payload_bytes = tensor.nbytes();
  return h;
}

Status SendTensor(Socket& socket, FrameType type, uint64_t batch_id, const torch::Tensor& tensor,
                  Deadline deadline) {
  const torch::Tensor t = tensor.to(torch::kCPU).contiguous();  // No copy when already so.
  PP_ASSIGN_OR_RETURN(FrameHeader h, TensorHeader(type, batch_id, t));
  return socket.SendFrame(h, t.numel() ? t.data_ptr() : nullptr, deadline);
}

Result<torch::Tensor> ReceiveTensorPayload(Socket& socket, const FrameHeader& header,
                                           Deadline deadline) {
  // A header DecodeFrameHeader returned is valid already; one from anywhere
  // else must not make the tensor smaller than the bytes read into it.
  FrameLimits no_limit;
  no_limit.max_payload_bytes = UINT64_MAX;
  PP_RETURN_IF_ERROR(ValidateFrameHeader(header, no_limit));
  if (header.type != FrameType::kActivation && header.type != FrameType::kTensor) {
    return Status::InvalidArgument(
        fmt::format("a {} frame carries no tensor", FrameTypeName(header.type)));
  }
  PP_ASSIGN_OR_RETURN(c10::ScalarType dtype, TorchDTypeOf(header.dtype));
  torch::Tensor t = torch::empty(header.Shape(), dtype);
  PP_RETURN_IF_ERROR(
      socket.ReceiveExact(t.numel() ? t.data_ptr() : nullptr, header.payload_bytes, deadline));
  return t;
}

}  // namespace paretopipe
