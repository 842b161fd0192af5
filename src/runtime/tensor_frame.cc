#include "runtime/tensor_frame.h"

#include <fmt/format.h>

#include "runtime/dtype.h"

namespace paretopipe {

Status SendTensor(Socket& socket, FrameType type, uint64_t batch_id, const torch::Tensor& tensor,
                  Deadline deadline) {
  const DType dtype = FrameDTypeOf(tensor.scalar_type());
  if (dtype == DType::kNone) {
    return Status::InvalidArgument(fmt::format("tensor dtype {} cannot be sent",
                                               std::string(c10::toString(tensor.scalar_type()))));
  }
  const torch::Tensor t = tensor.to(torch::kCPU).contiguous();  // No copy when already so.
  PP_ASSIGN_OR_RETURN(FrameHeader h, TensorFrameHeader(type, batch_id, dtype, t.sizes().vec()));
  return socket.SendFrame(h, t.numel() ? t.data_ptr() : nullptr, deadline);
}

Result<torch::Tensor> ReceiveTensorPayload(Socket& socket, const FrameHeader& header,
                                           Deadline deadline) {
  PP_ASSIGN_OR_RETURN(c10::ScalarType dtype, TorchDTypeOf(header.dtype));
  torch::Tensor t = torch::empty(header.Shape(), dtype);
  PP_RETURN_IF_ERROR(
      socket.ReceiveExact(t.numel() ? t.data_ptr() : nullptr, header.payload_bytes, deadline));
  return t;
}

}  // namespace paretopipe
