// ParetoPipe's wire format: one fixed 128-byte header, then the payload.
// Every message between pipeline stages and between the orchestrator and a
// worker is a frame; docs/wire-format.md describes the bytes.
//
// Owns: encoding and validating frame headers. Must not touch: sockets,
// models, LibTorch (a tensor here is a dtype, a shape and bytes).
// Thread safety: pure functions and values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

inline constexpr uint32_t kFrameMagic = 0x31465050;  // "PPF1" read as little-endian bytes.
inline constexpr uint16_t kFrameVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 128;
inline constexpr int kMaxFrameRank = 8;

// Element types a frame may carry. Values are wire codes: never renumber.
enum class DType : uint8_t {
  kNone = 0,  // Frames without a tensor (control, credit, end).
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
  kInt8 = 5,
  kUInt8 = 6,
  kInt16 = 7,
  kInt32 = 8,
  kInt64 = 9,
  kBool = 10,
};

// Bytes per element; 0 for kNone and unknown codes.
size_t DTypeBytes(DType dtype);
const char* DTypeName(DType dtype);

// What a frame means. Values are wire codes: never renumber.
enum class FrameType : uint16_t {
  kHello = 1,       // First frame on every connection; payload is JSON naming the role.
  kActivation = 2,  // A batch's tensor, from one stage to the next.
  kCredit = 3,      // From the sink back to the source: batch `batch_id` left the pipeline.
  kEnd = 4,         // No more batches in this run.
  kControl = 5,     // Orchestrator <-> worker message; payload is JSON.
  kTensor = 6,      // A named tensor following a control message (weights upload).
  kError = 7,       // The sender gives up; payload is a UTF-8 reason.
  // Worker -> orchestrator while a request is in progress: "still alive".
  // No payload; a reader skips it (docs/protocol.md, "Heartbeats").
  kHeartbeat = 8,
};

struct FrameHeader {
  FrameType type = FrameType::kControl;
  uint64_t batch_id = 0;
  DType dtype = DType::kNone;
  int rank = 0;                                // 0..kMaxFrameRank; shape[rank..] are zero.
  std::array<int64_t, kMaxFrameRank> shape{};  // Dims, each >= 0.
  uint64_t payload_bytes = 0;
  // Sender's steady clock (ns since its own epoch) when the send began. Clocks
  // of different machines never agree: compare only after offset correction.
  int64_t sent_ns = 0;
  // For kActivation: the source's steady clock when stage-1 compute of this
  // batch began; carried along so the sink can report it.
  int64_t origin_ns = 0;
  uint32_t flags = 0;  // Reserved, 0.

  std::vector<int64_t> Shape() const { return {shape.begin(), shape.begin() + rank}; }
  // Product of the dims (1 for rank 0); -1 when rank is out of range, a dim is
  // negative or the product overflows int64 (never for a validated header).
  int64_t NumElements() const;
};

// Limits a receiver enforces before trusting a header.
struct FrameLimits {
  uint64_t max_payload_bytes = uint64_t{1}
                               << 30;  // 1 GiB: larger than any zoo activation at batch 64.
};

// Builds a header for a tensor frame; payload_bytes = elements * DTypeBytes.
// Returns InvalidArgument for rank > kMaxFrameRank, negative dims or kNone dtype.
Result<FrameHeader> TensorFrameHeader(FrameType type, uint64_t batch_id, DType dtype,
                                      const std::vector<int64_t>& shape);

// Builds a header for a frame whose payload is `payload_bytes` bytes of text
// (kHello, kControl, kError): dtype kUInt8, rank 1, shape {payload_bytes}.
// Returns InvalidArgument for other types or a size beyond int64.
Result<FrameHeader> TextFrameHeader(FrameType type, uint64_t payload_bytes);

// Checks the rules DecodeFrameHeader enforces on the fields of a header: known
// type and dtype, rank and dims, the payload each type may carry, the payload
// size implied by dtype and shape, `limits`. Senders use it to fail early.
Status ValidateFrameHeader(const FrameHeader& header, const FrameLimits& limits);

// "hello", "activation", ...; "unknown" for codes outside FrameType.
const char* FrameTypeName(FrameType type);

// Writes `header` as kFrameHeaderBytes little-endian bytes. Dims at and beyond
// `rank` are written as zero. Does not validate: an invalid header encodes to
// bytes that DecodeFrameHeader rejects.
void EncodeFrameHeader(const FrameHeader& header, uint8_t* out);

// Parses and validates kFrameHeaderBytes bytes: magic, version, known type and
// dtype, rank <= kMaxFrameRank, dims >= 0, for tensor frames elements times
// element size == payload_bytes (checked without overflow), payload within
// `limits`. Errors say which field is wrong and its value.
Result<FrameHeader> DecodeFrameHeader(const uint8_t* bytes, const FrameLimits& limits);

}  // namespace paretopipe
