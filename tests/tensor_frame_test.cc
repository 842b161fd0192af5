// SendTensor / ReceiveTensorPayload: a tensor crosses a loopback TCP
// connection as one frame and arrives with the same dtype, shape and values.
#include "runtime/tensor_frame.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <torch/torch.h>

#include <chrono>
#include <string>
#include <vector>

#include "loopback.h"

namespace paretopipe {
namespace {

// Every wait ends within a few seconds, so a lost frame fails the test
// instead of hanging it.
constexpr std::chrono::milliseconds kTestDeadline(3000);

// Sends `tensor` through a fresh connection and returns what arrived. The
// tensors used here are small, so the send completes into the socket buffers
// before the receive starts.
torch::Tensor RoundTrip(const torch::Tensor& tensor, uint64_t batch_id = 7) {
  testing::LoopbackPair pair = testing::ConnectedLoopback(kTestDeadline);
  const Status sent =
      SendTensor(pair.client, FrameType::kTensor, batch_id, tensor, DeadlineIn(kTestDeadline));
  EXPECT_TRUE(sent.ok()) << sent.message();
  FrameHeader header;
  const Status got = pair.server.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(kTestDeadline));
  EXPECT_TRUE(got.ok()) << got.message();
  if (!got.ok()) return torch::Tensor();
  EXPECT_EQ(header.type, FrameType::kTensor);
  EXPECT_EQ(header.batch_id, batch_id);
  Result<torch::Tensor> received =
      ReceiveTensorPayload(pair.server, header, DeadlineIn(kTestDeadline));
  EXPECT_TRUE(received.ok()) << received.status().message();
  return received.ok() ? std::move(received).value() : torch::Tensor();
}

void ExpectSameTensor(const torch::Tensor& sent, const torch::Tensor& received) {
  ASSERT_TRUE(received.defined());
  EXPECT_EQ(received.scalar_type(), sent.scalar_type());
  EXPECT_EQ(received.sizes(), sent.sizes());
  EXPECT_TRUE(received.is_contiguous());
  EXPECT_TRUE(torch::equal(received, sent)) << "sent " << sent << "\nreceived " << received;
}

class TensorFrameDTypeTest : public ::testing::TestWithParam<torch::ScalarType> {};

TEST_P(TensorFrameDTypeTest, RoundTripKeepsDTypeShapeAndValues) {
  const torch::ScalarType dtype = GetParam();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  // Values every dtype represents exactly: small integers, signed where the
  // dtype is, so the comparison is exact.
  torch::Tensor values = torch::randint(-100, 100, {2, 3, 5}, gen, torch::kLong);
  if (dtype == torch::kByte) values = values.abs();
  if (dtype == torch::kBool) values = values.gt(0);
  const torch::Tensor sent = values.to(dtype);
  ExpectSameTensor(sent, RoundTrip(sent));
}

INSTANTIATE_TEST_SUITE_P(EveryFrameDType, TensorFrameDTypeTest,
                         ::testing::Values(torch::kFloat, torch::kDouble, torch::kHalf,
                                           torch::kBFloat16, torch::kChar, torch::kShort,
                                           torch::kInt, torch::kLong, torch::kByte, torch::kBool),
                         [](const ::testing::TestParamInfo<torch::ScalarType>& info) {
                           return std::string(c10::toString(info.param));
                         });

TEST(TensorFrameTest, FractionalFloatsArriveBitForBit) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const torch::Tensor sent = torch::randn({4, 7}, gen, torch::kFloat) * 1e-3;
  ExpectSameTensor(sent, RoundTrip(sent));
}

TEST(TensorFrameTest, EmptyTensorWithAZeroDimRoundTrips) {
  const torch::Tensor sent = torch::empty({3, 0, 4}, torch::kFloat);
  const torch::Tensor received = RoundTrip(sent);
  ExpectSameTensor(sent, received);
  EXPECT_EQ(received.numel(), 0);
}

TEST(TensorFrameTest, ZeroDimScalarRoundTrips) {
  const torch::Tensor sent = torch::scalar_tensor(2.5, torch::kDouble);
  const torch::Tensor received = RoundTrip(sent);
  ExpectSameTensor(sent, received);
  EXPECT_EQ(received.dim(), 0);
}

TEST(TensorFrameTest, TransposedTensorArrivesInLogicalOrder) {
  const torch::Tensor base = torch::arange(24, torch::kFloat).reshape({4, 6});
  const torch::Tensor sent = base.t();
  ASSERT_FALSE(sent.is_contiguous());
  ExpectSameTensor(sent, RoundTrip(sent));
}

TEST(TensorFrameTest, SteppedSliceArrivesAsItsElementsOnly) {
  const torch::Tensor base = torch::arange(60, torch::kInt).reshape({6, 10});
  const torch::Tensor sent =
      base.slice(/*dim=*/1, /*start=*/1, /*end=*/9, /*step=*/3).slice(0, 2, 5);
  ASSERT_FALSE(sent.is_contiguous());
  ASSERT_EQ(sent.sizes(), (std::vector<int64_t>{3, 3}));
  ExpectSameTensor(sent, RoundTrip(sent));
}

TEST(TensorFrameTest, ComplexTensorIsRefusedWithoutSendingAnything) {
  testing::LoopbackPair pair = testing::ConnectedLoopback(kTestDeadline);
  const torch::Tensor complex = torch::zeros({2, 2}, torch::kComplexFloat);

  const Status sent =
      SendTensor(pair.client, FrameType::kTensor, 0, complex, DeadlineIn(kTestDeadline));

  EXPECT_EQ(sent.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(sent.message().find("ComplexFloat"), std::string::npos) << sent.message();
  pollfd p{pair.server.fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, /*timeout_ms=*/100), 0) << "bytes arrived for a refused tensor";
}

}  // namespace
}  // namespace paretopipe
