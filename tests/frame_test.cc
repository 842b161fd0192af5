#include "transport/frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace paretopipe {
namespace {

using Bytes = std::array<uint8_t, kFrameHeaderBytes>;

FrameLimits NoLimit() {
  FrameLimits limits;
  limits.max_payload_bytes = std::numeric_limits<uint64_t>::max();
  return limits;
}

Bytes Encode(const FrameHeader& header) {
  Bytes bytes;
  EncodeFrameHeader(header, bytes.data());
  return bytes;
}

void PutLE(Bytes& bytes, size_t offset, uint64_t value, int width) {
  for (int i = 0; i < width; ++i) bytes[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

FrameHeader Activation(DType dtype, const std::vector<int64_t>& shape) {
  Result<FrameHeader> header = TensorFrameHeader(FrameType::kActivation, 7, dtype, shape);
  EXPECT_TRUE(header.ok()) << header.status().message();
  return header.value();
}

// The decode error for `bytes`, which must not decode.
Status DecodeError(const Bytes& bytes, const FrameLimits& limits = FrameLimits{}) {
  Result<FrameHeader> decoded = DecodeFrameHeader(bytes.data(), limits);
  EXPECT_FALSE(decoded.ok());
  return decoded.status();
}

void ExpectSameHeader(const FrameHeader& a, const FrameHeader& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.batch_id, b.batch_id);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.rank, b.rank);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.payload_bytes, b.payload_bytes);
  EXPECT_EQ(a.sent_ns, b.sent_ns);
  EXPECT_EQ(a.origin_ns, b.origin_ns);
  EXPECT_EQ(a.flags, b.flags);
}

TEST(FrameTest, EveryDTypeRoundTrips) {
  for (int code = 1; code <= static_cast<int>(DType::kBool); ++code) {
    const DType dtype = static_cast<DType>(code);
    SCOPED_TRACE(DTypeName(dtype));
    FrameHeader header = Activation(dtype, {2, 3, 5});
    header.sent_ns = 123456789;
    header.origin_ns = -42;
    EXPECT_EQ(header.payload_bytes, 30 * DTypeBytes(dtype));
    Result<FrameHeader> decoded = DecodeFrameHeader(Encode(header).data(), FrameLimits{});
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    ExpectSameHeader(*decoded, header);
  }
}

TEST(FrameTest, EveryRankFromZeroToEightRoundTrips) {
  for (int rank = 0; rank <= kMaxFrameRank; ++rank) {
    SCOPED_TRACE(rank);
    std::vector<int64_t> shape;
    for (int i = 0; i < rank; ++i) shape.push_back(i + 1);
    const FrameHeader header = Activation(DType::kFloat32, shape);
    Result<FrameHeader> decoded = DecodeFrameHeader(Encode(header).data(), FrameLimits{});
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    ExpectSameHeader(*decoded, header);
    EXPECT_EQ(decoded->Shape(), shape);
  }
}

TEST(FrameTest, RankZeroIsAScalarOfOneElement) {
  const FrameHeader header = Activation(DType::kFloat64, {});
  EXPECT_EQ(header.NumElements(), 1);
  EXPECT_EQ(header.payload_bytes, 8u);
}

TEST(FrameTest, EmptyTensorHasZeroPayloadBytesAndRoundTrips) {
  const FrameHeader header = Activation(DType::kFloat32, {4, 0, 3});
  EXPECT_EQ(header.NumElements(), 0);
  EXPECT_EQ(header.payload_bytes, 0u);
  Result<FrameHeader> decoded = DecodeFrameHeader(Encode(header).data(), FrameLimits{});
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ExpectSameHeader(*decoded, header);
}

TEST(FrameTest, ExtremeFieldValuesRoundTrip) {
  FrameHeader header = TensorFrameHeader(FrameType::kTensor, std::numeric_limits<uint64_t>::max(),
                                         DType::kUInt8, {std::numeric_limits<int64_t>::max()})
                           .value();
  header.sent_ns = std::numeric_limits<int64_t>::min();
  header.origin_ns = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(header.payload_bytes, uint64_t{std::numeric_limits<int64_t>::max()});
  Result<FrameHeader> decoded = DecodeFrameHeader(Encode(header).data(), NoLimit());
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ExpectSameHeader(*decoded, header);
}

TEST(FrameTest, EncodingFollowsTheDocumentedByteLayout) {
  FrameHeader header = Activation(DType::kFloat16, {2, 3});
  header.batch_id = 0x0102030405060708;
  header.sent_ns = 0x1112131415161718;
  header.origin_ns = 0x2122232425262728;
  const Bytes bytes = Encode(header);
  EXPECT_EQ(std::memcmp(bytes.data(), "PPF1", 4), 0);
  EXPECT_EQ(bytes[4], 1);  // version, little-endian u16
  EXPECT_EQ(bytes[5], 0);
  EXPECT_EQ(bytes[6], 2);     // type kActivation
  EXPECT_EQ(bytes[8], 0x08);  // batch_id, least significant byte first
  EXPECT_EQ(bytes[15], 0x01);
  EXPECT_EQ(bytes[16], 12);    // payload_bytes = 6 elements * 2 bytes
  EXPECT_EQ(bytes[24], 3);     // dtype kFloat16
  EXPECT_EQ(bytes[25], 2);     // rank
  EXPECT_EQ(bytes[32], 0x18);  // sent_ns
  EXPECT_EQ(bytes[40], 0x28);  // origin_ns
  EXPECT_EQ(bytes[48], 2);     // shape[0]
  EXPECT_EQ(bytes[56], 3);     // shape[1]
  for (size_t i = 64; i < kFrameHeaderBytes; ++i) EXPECT_EQ(bytes[i], 0) << "byte " << i;
}

TEST(FrameTest, TextAndBareFramesRoundTrip) {
  FrameHeader control = TextFrameHeader(FrameType::kControl, 17).value();
  FrameHeader end;
  end.type = FrameType::kEnd;
  end.batch_id = 99;
  FrameHeader credit;
  credit.type = FrameType::kCredit;
  for (const FrameHeader& header : {control, end, credit}) {
    SCOPED_TRACE(FrameTypeName(header.type));
    Result<FrameHeader> decoded = DecodeFrameHeader(Encode(header).data(), FrameLimits{});
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    ExpectSameHeader(*decoded, header);
  }
  EXPECT_EQ(control.dtype, DType::kUInt8);
  EXPECT_EQ(control.Shape(), std::vector<int64_t>{17});
}

TEST(FrameTest, BadMagicIsRejectedWithTheValueAndTheExpectedOne) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {1}));
  PutLE(bytes, 0, 0x12345678, 4);
  const Status status = DecodeError(bytes);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(status.message(), "frame header: bad magic 0x12345678 (expected 0x31465050 \"PPF1\")");
}

TEST(FrameTest, UnsupportedVersionIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {1}));
  PutLE(bytes, 4, 9, 2);
  EXPECT_EQ(DecodeError(bytes).message(),
            "frame header: version 9 not supported (this build speaks 1)");
}

TEST(FrameTest, UnknownFrameTypeIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {1}));
  PutLE(bytes, 6, 99, 2);
  EXPECT_EQ(DecodeError(bytes).message(), "frame header: unknown frame type 99");
  PutLE(bytes, 6, 0, 2);
  EXPECT_EQ(DecodeError(bytes).message(), "frame header: unknown frame type 0");
}

TEST(FrameTest, UnknownDTypeIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {1}));
  bytes[24] = 11;
  EXPECT_EQ(DecodeError(bytes).message(), "frame header: unknown dtype code 11");
}

TEST(FrameTest, RankAboveEightIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {1}));
  bytes[25] = 9;
  EXPECT_EQ(DecodeError(bytes).message(), "frame header: rank 9 outside 0..8");
}

TEST(FrameTest, NegativeDimIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {2, 2}));
  PutLE(bytes, 48 + 8, static_cast<uint64_t>(int64_t{-2}), 8);
  EXPECT_EQ(DecodeError(bytes).message(), "frame header: dim 1 is negative (-2)");
}

TEST(FrameTest, NonZeroDimBeyondRankIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {2}));
  PutLE(bytes, 48 + 8 * 3, 5, 8);
  EXPECT_EQ(DecodeError(bytes).message(), "frame header: dim 3 is 5 beyond rank 1 (must be 0)");
}

TEST(FrameTest, PayloadOverTheLimitIsRejectedWithBothNumbers) {
  Bytes bytes = Encode(Activation(DType::kUInt8, {1}));
  PutLE(bytes, 16, 4294967295u, 8);
  const Status status = DecodeError(bytes);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(status.message(), "frame header: payload 4294967295 bytes exceeds limit 1073741824");
}

TEST(FrameTest, PayloadThatDisagreesWithShapeIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {2, 3}));
  PutLE(bytes, 16, 20, 8);
  EXPECT_EQ(DecodeError(bytes).message(),
            "frame header: shape [2, 3] of float32 is 24 bytes but payload is 20 bytes");
}

TEST(FrameTest, ShapeWhoseByteCountOverflowsIsRejected) {
  Bytes bytes = Encode(Activation(DType::kFloat32, {1, 1}));
  PutLE(bytes, 48, uint64_t{1} << 40, 8);
  PutLE(bytes, 56, uint64_t{1} << 40, 8);
  const Status status = DecodeError(bytes, NoLimit());
  EXPECT_NE(status.message().find("overflows"), std::string::npos) << status.message();
}

TEST(FrameTest, TensorFrameWithoutDTypeIsRejected) {
  FrameHeader header;
  header.type = FrameType::kActivation;
  EXPECT_EQ(DecodeError(Encode(header)).message(), "frame header: activation frame has dtype none");
}

TEST(FrameTest, BareFrameWithRankOrPayloadIsRejected) {
  FrameHeader end;
  end.type = FrameType::kEnd;
  end.rank = 1;
  end.shape[0] = 4;
  const Status status = DecodeError(Encode(end));
  EXPECT_NE(status.message().find("end frame carries no payload"), std::string::npos)
      << status.message();
}

TEST(FrameTest, HeartbeatWithAPayloadIsRejected) {
  FrameHeader heartbeat;
  heartbeat.type = FrameType::kHeartbeat;
  heartbeat.dtype = DType::kUInt8;
  heartbeat.rank = 1;
  heartbeat.shape[0] = 8;
  heartbeat.payload_bytes = 8;
  const Status status = DecodeError(Encode(heartbeat));
  EXPECT_NE(status.message().find("heartbeat frame carries no payload"), std::string::npos)
      << status.message();
}

TEST(FrameTest, FrameTypeBeyondHeartbeatIsRejected) {
  FrameHeader heartbeat;
  heartbeat.type = FrameType::kHeartbeat;
  Bytes bytes = Encode(heartbeat);
  bytes[6] = 9;  // Type, u16 at offset 6: one past the last known type.
  const Status status = DecodeError(bytes);
  EXPECT_NE(status.message().find("unknown frame type 9"), std::string::npos) << status.message();
}

TEST(FrameTest, TextFrameMustBeUInt8OfRankOne) {
  FrameHeader control = TextFrameHeader(FrameType::kControl, 4).value();
  control.dtype = DType::kInt8;
  EXPECT_EQ(DecodeError(Encode(control)).message(),
            "frame header: control frame must be uint8 of rank 1, got int8 of rank 1");
  FrameHeader hello;
  hello.type = FrameType::kHello;
  EXPECT_EQ(DecodeError(Encode(hello)).message(),
            "frame header: hello frame must be uint8 of rank 1, got none of rank 0");
}

TEST(FrameTest, NonZeroReservedPaddingOrFlagsAreRejected) {
  const Bytes good = Encode(Activation(DType::kFloat32, {1}));
  Bytes reserved = good;
  reserved[27] = 1;
  EXPECT_EQ(DecodeError(reserved).message(), "frame header: reserved byte 27 is 1");
  Bytes padding = good;
  padding[127] = 3;
  EXPECT_EQ(DecodeError(padding).message(), "frame header: padding byte 127 is 3");
  Bytes flags = good;
  PutLE(flags, 28, 0x10, 4);
  EXPECT_EQ(DecodeError(flags).message(),
            "frame header: flags 0x00000010 not supported (this build knows 0x00000000)");
}

TEST(FrameTest, TensorFrameHeaderRejectsWhatNoReceiverWouldAccept) {
  const std::vector<int64_t> nine_dims(9, 1);
  EXPECT_EQ(
      TensorFrameHeader(FrameType::kActivation, 0, DType::kFloat32, nine_dims).status().code(),
      Status::Code::kInvalidArgument);
  EXPECT_EQ(
      TensorFrameHeader(FrameType::kActivation, 0, DType::kFloat32, {2, -1}).status().message(),
      "frame header: dim 1 is negative (-1)");
  EXPECT_FALSE(TensorFrameHeader(FrameType::kActivation, 0, DType::kNone, {2}).ok());
  EXPECT_FALSE(TensorFrameHeader(FrameType::kControl, 0, DType::kFloat32, {2}).ok());
  EXPECT_FALSE(
      TensorFrameHeader(FrameType::kTensor, 0, DType::kInt64, {int64_t{1} << 62, int64_t{1} << 2})
          .ok());
}

TEST(FrameTest, DTypeSizesMatchTheirNames) {
  EXPECT_EQ(DTypeBytes(DType::kNone), 0u);
  EXPECT_EQ(DTypeBytes(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeBytes(DType::kFloat64), 8u);
  EXPECT_EQ(DTypeBytes(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeBytes(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeBytes(DType::kInt8), 1u);
  EXPECT_EQ(DTypeBytes(DType::kUInt8), 1u);
  EXPECT_EQ(DTypeBytes(DType::kInt16), 2u);
  EXPECT_EQ(DTypeBytes(DType::kInt32), 4u);
  EXPECT_EQ(DTypeBytes(DType::kInt64), 8u);
  EXPECT_EQ(DTypeBytes(DType::kBool), 1u);
  EXPECT_EQ(DTypeBytes(static_cast<DType>(200)), 0u);
  EXPECT_STREQ(DTypeName(static_cast<DType>(200)), "unknown");
}

}  // namespace
}  // namespace paretopipe
