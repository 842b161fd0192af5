#include "transport/frame.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

namespace paretopipe {
namespace {

// Byte offsets of the header fields; docs/wire-format.md has the same table.
constexpr size_t kMagicOffset = 0;                                   // u32
constexpr size_t kVersionOffset = 4;                                 // u16
constexpr size_t kTypeOffset = 6;                                    // u16
constexpr size_t kBatchIdOffset = 8;                                 // u64
constexpr size_t kPayloadBytesOffset = 16;                           // u64
constexpr size_t kDTypeOffset = 24;                                  // u8
constexpr size_t kRankOffset = 25;                                   // u8
constexpr size_t kReservedOffset = 26;                               // 2 bytes, zero
constexpr size_t kFlagsOffset = 28;                                  // u32
constexpr size_t kSentNsOffset = 32;                                 // i64
constexpr size_t kOriginNsOffset = 40;                               // i64
constexpr size_t kShapeOffset = 48;                                  // 8 x i64
constexpr size_t kPaddingOffset = kShapeOffset + 8 * kMaxFrameRank;  // zero up to 128
static_assert(kPaddingOffset <= kFrameHeaderBytes, "header fields overflow the fixed header");

// Version 1 defines no flag; a set bit means a newer sender, which this build
// must not half-understand.
constexpr uint32_t kKnownFlags = 0;

// Explicit shifts rather than memcpy of host integers: the wire is little-endian
// whatever the host is, and compilers turn these into single moves on x86 and ARM.
void PutU16(uint8_t* p, uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool IsKnownType(uint16_t code) {
  return code >= static_cast<uint16_t>(FrameType::kHello) &&
         code <= static_cast<uint16_t>(FrameType::kHeartbeat);
}
bool IsKnownDType(uint8_t code) { return code <= static_cast<uint8_t>(DType::kBool); }

bool IsTensorType(FrameType type) {
  return type == FrameType::kActivation || type == FrameType::kTensor;
}
bool IsTextType(FrameType type) {
  return type == FrameType::kHello || type == FrameType::kControl || type == FrameType::kError;
}

std::string ShapeString(const FrameHeader& header) {
  std::string s = "[";
  for (int i = 0; i < header.rank; ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(header.shape[i]);
  }
  return s + "]";
}

Status HeaderError(const std::string& message) {
  return Status::InvalidArgument("frame header: " + message);
}

}  // namespace

size_t DTypeBytes(DType dtype) {
  switch (dtype) {
    case DType::kNone:
      return 0;
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
      return 1;
    case DType::kInt16:
      return 2;
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kNone:
      return "none";
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kInt8:
      return "int8";
    case DType::kUInt8:
      return "uint8";
    case DType::kInt16:
      return "int16";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kBool:
      return "bool";
  }
  return "unknown";
}

const char* FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return "hello";
    case FrameType::kActivation:
      return "activation";
    case FrameType::kCredit:
      return "credit";
    case FrameType::kEnd:
      return "end";
    case FrameType::kControl:
      return "control";
    case FrameType::kTensor:
      return "tensor";
    case FrameType::kError:
      return "error";
    case FrameType::kHeartbeat:
      return "heartbeat";
  }
  return "unknown";
}

int64_t FrameHeader::NumElements() const {
  if (rank < 0 || rank > kMaxFrameRank) return -1;
  int64_t elements = 1;
  for (int i = 0; i < rank; ++i) {
    if (shape[i] < 0 || __builtin_mul_overflow(elements, shape[i], &elements)) return -1;
  }
  return elements;
}

Status ValidateFrameHeader(const FrameHeader& h, const FrameLimits& limits) {
  if (!IsKnownType(static_cast<uint16_t>(h.type))) {
    return HeaderError(fmt::format("unknown frame type {}", static_cast<unsigned>(h.type)));
  }
  if (!IsKnownDType(static_cast<uint8_t>(h.dtype))) {
    return HeaderError(fmt::format("unknown dtype code {}", static_cast<unsigned>(h.dtype)));
  }
  if (h.rank < 0 || h.rank > kMaxFrameRank) {
    return HeaderError(fmt::format("rank {} outside 0..{}", h.rank, kMaxFrameRank));
  }
  for (int i = 0; i < kMaxFrameRank; ++i) {
    if (i < h.rank && h.shape[i] < 0) {
      return HeaderError(fmt::format("dim {} is negative ({})", i, h.shape[i]));
    }
    if (i >= h.rank && h.shape[i] != 0) {
      return HeaderError(
          fmt::format("dim {} is {} beyond rank {} (must be 0)", i, h.shape[i], h.rank));
    }
  }
  if ((h.flags & ~kKnownFlags) != 0) {
    return HeaderError(fmt::format("flags 0x{:08x} not supported (this build knows 0x{:08x})",
                                   h.flags, kKnownFlags));
  }
  if (h.payload_bytes > limits.max_payload_bytes) {
    return HeaderError(fmt::format("payload {} bytes exceeds limit {}", h.payload_bytes,
                                   limits.max_payload_bytes));
  }

  const char* type_name = FrameTypeName(h.type);
  if (IsTensorType(h.type)) {
    if (h.dtype == DType::kNone) {
      return HeaderError(fmt::format("{} frame has dtype none", type_name));
    }
  } else if (IsTextType(h.type)) {
    if (h.dtype != DType::kUInt8 || h.rank != 1) {
      return HeaderError(fmt::format("{} frame must be uint8 of rank 1, got {} of rank {}",
                                     type_name, DTypeName(h.dtype), h.rank));
    }
  } else {  // kCredit, kEnd, kHeartbeat: the header is the whole message.
    if (h.dtype != DType::kNone || h.rank != 0 || h.payload_bytes != 0) {
      return HeaderError(
          fmt::format("{} frame carries no payload, got dtype {}, rank {}, payload {} bytes",
                      type_name, DTypeName(h.dtype), h.rank, h.payload_bytes));
    }
    return Status::Ok();
  }

  // Every frame with a payload describes it by dtype and shape; the product is
  // computed with overflow checks because the dims come from the network.
  uint64_t bytes = DTypeBytes(h.dtype);
  for (int i = 0; i < h.rank; ++i) {
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(h.shape[i]), &bytes)) {
      return HeaderError(fmt::format("shape {} of {} overflows 64-bit byte count", ShapeString(h),
                                     DTypeName(h.dtype)));
    }
  }
  if (bytes != h.payload_bytes) {
    return HeaderError(fmt::format("shape {} of {} is {} bytes but payload is {} bytes",
                                   ShapeString(h), DTypeName(h.dtype), bytes, h.payload_bytes));
  }
  return Status::Ok();
}

Result<FrameHeader> TensorFrameHeader(FrameType type, uint64_t batch_id, DType dtype,
                                      const std::vector<int64_t>& shape) {
  if (shape.size() > static_cast<size_t>(kMaxFrameRank)) {
    return Status::InvalidArgument(
        fmt::format("tensor frame: rank {} exceeds {}", shape.size(), kMaxFrameRank));
  }
  if (!IsTensorType(type)) {
    return Status::InvalidArgument(
        fmt::format("tensor frame: type {} carries no tensor", FrameTypeName(type)));
  }
  FrameHeader h;
  h.type = type;
  h.batch_id = batch_id;
  h.dtype = dtype;
  h.rank = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) h.shape[i] = shape[i];
  h.payload_bytes = DTypeBytes(dtype);
  for (int64_t dim : shape) {
    // Negative dims are reported by ValidateFrameHeader below; skip them here
    // so their conversion to uint64 cannot masquerade as an overflow.
    if (dim >= 0 &&
        __builtin_mul_overflow(h.payload_bytes, static_cast<uint64_t>(dim), &h.payload_bytes)) {
      h.payload_bytes = 0;
      break;
    }
  }
  FrameLimits no_limit;
  no_limit.max_payload_bytes = std::numeric_limits<uint64_t>::max();
  Status status = ValidateFrameHeader(h, no_limit);
  if (!status.ok()) return status;
  return h;
}

Result<FrameHeader> TextFrameHeader(FrameType type, uint64_t payload_bytes) {
  if (!IsTextType(type)) {
    return Status::InvalidArgument(
        fmt::format("text frame: type {} does not carry text", FrameTypeName(type)));
  }
  if (payload_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument(
        fmt::format("text frame: {} bytes does not fit a dim", payload_bytes));
  }
  FrameHeader h;
  h.type = type;
  h.dtype = DType::kUInt8;
  h.rank = 1;
  h.shape[0] = static_cast<int64_t>(payload_bytes);
  h.payload_bytes = payload_bytes;
  return h;
}

void EncodeFrameHeader(const FrameHeader& h, uint8_t* out) {
  std::memset(out, 0, kFrameHeaderBytes);
  PutU32(out + kMagicOffset, kFrameMagic);
  PutU16(out + kVersionOffset, kFrameVersion);
  PutU16(out + kTypeOffset, static_cast<uint16_t>(h.type));
  PutU64(out + kBatchIdOffset, h.batch_id);
  PutU64(out + kPayloadBytesOffset, h.payload_bytes);
  out[kDTypeOffset] = static_cast<uint8_t>(h.dtype);
  out[kRankOffset] = static_cast<uint8_t>(h.rank);
  PutU32(out + kFlagsOffset, h.flags);
  PutU64(out + kSentNsOffset, static_cast<uint64_t>(h.sent_ns));
  PutU64(out + kOriginNsOffset, static_cast<uint64_t>(h.origin_ns));
  const int dims = h.rank < 0 ? 0 : (h.rank > kMaxFrameRank ? kMaxFrameRank : h.rank);
  for (int i = 0; i < dims; ++i) {
    PutU64(out + kShapeOffset + 8 * i, static_cast<uint64_t>(h.shape[i]));
  }
}

Result<FrameHeader> DecodeFrameHeader(const uint8_t* bytes, const FrameLimits& limits) {
  const uint32_t magic = GetU32(bytes + kMagicOffset);
  if (magic != kFrameMagic) {
    return HeaderError(
        fmt::format("bad magic 0x{:08x} (expected 0x{:08x} \"PPF1\")", magic, kFrameMagic));
  }
  const uint16_t version = GetU16(bytes + kVersionOffset);
  if (version != kFrameVersion) {
    return HeaderError(
        fmt::format("version {} not supported (this build speaks {})", version, kFrameVersion));
  }
  const uint16_t type = GetU16(bytes + kTypeOffset);
  if (!IsKnownType(type)) return HeaderError(fmt::format("unknown frame type {}", type));
  const uint8_t dtype = bytes[kDTypeOffset];
  if (!IsKnownDType(dtype)) return HeaderError(fmt::format("unknown dtype code {}", dtype));
  const uint8_t rank = bytes[kRankOffset];
  if (rank > kMaxFrameRank) {
    return HeaderError(fmt::format("rank {} outside 0..{}", rank, kMaxFrameRank));
  }
  // Reserved and padding bytes must be zero so that a later version can give
  // them a meaning that version-1 receivers are sure to notice.
  for (size_t i = kReservedOffset; i < kFlagsOffset; ++i) {
    if (bytes[i] != 0) return HeaderError(fmt::format("reserved byte {} is {}", i, bytes[i]));
  }
  for (size_t i = kPaddingOffset; i < kFrameHeaderBytes; ++i) {
    if (bytes[i] != 0) return HeaderError(fmt::format("padding byte {} is {}", i, bytes[i]));
  }

  FrameHeader h;
  h.type = static_cast<FrameType>(type);
  h.batch_id = GetU64(bytes + kBatchIdOffset);
  h.payload_bytes = GetU64(bytes + kPayloadBytesOffset);
  h.dtype = static_cast<DType>(dtype);
  h.rank = rank;
  h.flags = GetU32(bytes + kFlagsOffset);
  h.sent_ns = static_cast<int64_t>(GetU64(bytes + kSentNsOffset));
  h.origin_ns = static_cast<int64_t>(GetU64(bytes + kOriginNsOffset));
  for (int i = 0; i < kMaxFrameRank; ++i) {
    h.shape[i] = static_cast<int64_t>(GetU64(bytes + kShapeOffset + 8 * i));
  }
  Status status = ValidateFrameHeader(h, limits);
  if (!status.ok()) return status;
  return h;
}

}  // namespace paretopipe
