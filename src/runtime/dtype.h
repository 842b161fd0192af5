// Frame dtypes <-> LibTorch scalar types, for every place that puts a tensor
// in a frame or takes one out.
#pragma once

#include <c10/core/ScalarType.h>

#include "transport/frame.h"
#include "util/status.h"

namespace paretopipe {

// kNone for a scalar type frames cannot carry (complex, quantized).
DType FrameDTypeOf(c10::ScalarType type);

// InvalidArgument for kNone and unknown codes.
Result<c10::ScalarType> TorchDTypeOf(DType dtype);

}  // namespace paretopipe
