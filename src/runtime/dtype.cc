#include "runtime/dtype.h"

#include <fmt/format.h>

namespace paretopipe {

DType FrameDTypeOf(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat:
      return DType::kFloat32;
    case c10::kDouble:
      return DType::kFloat64;
    case c10::kHalf:
      return DType::kFloat16;
    case c10::kBFloat16:
      return DType::kBFloat16;
    case c10::kChar:
      return DType::kInt8;
    case c10::kByte:
      return DType::kUInt8;
    case c10::kShort:
      return DType::kInt16;
    case c10::kInt:
      return DType::kInt32;
    case c10::kLong:
      return DType::kInt64;
    case c10::kBool:
      return DType::kBool;
    default:
      return DType::kNone;
  }
}

Result<c10::ScalarType> TorchDTypeOf(DType d) {
  switch (d) {
    case DType::kFloat32:
      return c10::kFloat;
    case DType::kFloat64:
      return c10::kDouble;
    case DType::kFloat16:
      return c10::kHalf;
    case DType::kBFloat16:
      return c10::kBFloat16;
    case DType::kInt8:
      return c10::kChar;
    case DType::kUInt8:
      return c10::kByte;
    case DType::kInt16:
      return c10::kShort;
    case DType::kInt32:
      return c10::kInt;
    case DType::kInt64:
      return c10::kLong;
    case DType::kBool:
      return c10::kBool;
    default:
      return Status::InvalidArgument(fmt::format("dtype {} has no tensor type", DTypeName(d)));
  }
}

}  // namespace paretopipe
