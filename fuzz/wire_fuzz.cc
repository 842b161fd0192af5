// libFuzzer target for what a worker or orchestrator parses from the network.
// The first input byte chooses the parser, the rest is its input:
//   0  a 128-byte frame header: DecodeFrameHeader; a header it accepts must
//      encode back to the same bytes
//   1  the same bytes as raw header fields, straight into ValidateFrameHeader
//      (a header a sender built, never encoded)
//   2  a control message: ParseJsonObject, then StageConfigFromJson; a
//      configuration it accepts must survive ToJson and parse back equal
//   3  a worker's reply: ParseJsonObject, then StageTraceFromJson (with the
//      same round trip) and StatusOfErrorReply
// Any other first byte is taken modulo 4. A crash, a sanitizer report or a
// broken round trip (__builtin_trap) is a finding; scripts/fuzz.sh runs it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "control/protocol.h"
#include "transport/frame.h"

namespace paretopipe {
namespace {

// Reads little-endian integers from the fuzzer's bytes, zeros past the end.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t Next(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= uint64_t{at_ < size_ ? data_[at_++] : uint8_t{0}} << (8 * i);
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

void FuzzDecodeHeader(const uint8_t* data, size_t size) {
  uint8_t bytes[kFrameHeaderBytes] = {};
  std::memcpy(bytes, data, size < kFrameHeaderBytes ? size : kFrameHeaderBytes);
  // A small limit as well as the default: both sides of the payload check.
  for (const FrameLimits& limits : {FrameLimits{}, FrameLimits{4096}}) {
    Result<FrameHeader> h = DecodeFrameHeader(bytes, limits);
    if (!h.ok()) continue;
    uint8_t again[kFrameHeaderBytes];
    EncodeFrameHeader(*h, again);
    if (std::memcmp(bytes, again, kFrameHeaderBytes) != 0) __builtin_trap();
    if (h->payload_bytes > limits.max_payload_bytes) __builtin_trap();
    (void)FrameTypeName(h->type);
    (void)h->NumElements();
  }
}

void FuzzValidateHeader(const uint8_t* data, size_t size) {
  ByteReader r(data, size);
  FrameHeader h;
  h.type = static_cast<FrameType>(r.Next(2));
  h.dtype = static_cast<DType>(r.Next(1));
  h.rank = static_cast<int>(static_cast<int32_t>(r.Next(4)));
  for (int64_t& dim : h.shape) dim = static_cast<int64_t>(r.Next(8));
  h.payload_bytes = r.Next(8);
  h.flags = static_cast<uint32_t>(r.Next(4));
  const Status status = ValidateFrameHeader(h, FrameLimits{});
  (void)h.NumElements();
  (void)DTypeName(h.dtype);
  if (status.ok()) {  // What validates must encode and decode to itself.
    uint8_t bytes[kFrameHeaderBytes];
    EncodeFrameHeader(h, bytes);
    Result<FrameHeader> back = DecodeFrameHeader(bytes, FrameLimits{});
    if (!back.ok() || back->Shape() != h.Shape() || back->payload_bytes != h.payload_bytes)
      __builtin_trap();
  }
}

void FuzzStageConfig(const std::string& text) {
  Result<nlohmann::json> j = ParseJsonObject(text, "fuzz");
  if (!j.ok()) return;
  nlohmann::json config = j->contains("config") ? (*j)["config"] : *j;
  Result<StageConfig> c = StageConfigFromJson(config);
  if (!c.ok()) return;
  Result<StageConfig> back = StageConfigFromJson(ToJson(*c));
  if (!back.ok() || ToJson(*back) != ToJson(*c)) __builtin_trap();
}

void FuzzReply(const std::string& text) {
  Result<nlohmann::json> j = ParseJsonObject(text, "fuzz");
  if (!j.ok()) return;
  (void)StatusOfErrorReply(*j, "fuzz");
  nlohmann::json trace = j->contains("trace") ? (*j)["trace"] : *j;
  Result<StageTrace> t = StageTraceFromJson(trace);
  if (!t.ok()) return;
  Result<StageTrace> back = StageTraceFromJson(ToJson(*t));
  if (!back.ok() || ToJson(*back) != ToJson(*t)) __builtin_trap();
}

}  // namespace
}  // namespace paretopipe

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t* rest = data + 1;
  const size_t rest_size = size - 1;
  switch (data[0] % 4) {
    case 0:
      paretopipe::FuzzDecodeHeader(rest, rest_size);
      break;
    case 1:
      paretopipe::FuzzValidateHeader(rest, rest_size);
      break;
    case 2:
      paretopipe::FuzzStageConfig(std::string(reinterpret_cast<const char*>(rest), rest_size));
      break;
    case 3:
      paretopipe::FuzzReply(std::string(reinterpret_cast<const char*>(rest), rest_size));
      break;
  }
  return 0;
}
