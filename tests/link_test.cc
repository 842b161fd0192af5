// The Link interface as the pipeline runtime uses it, on the TCP backend:
// a frame goes across with its bytes, waits end at their deadline, and
// Shutdown wakes a blocked receiver.
#include "transport/link.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>
#include <vector>

#include "loopback.h"

namespace paretopipe {
namespace {

constexpr std::chrono::milliseconds kTestDeadline(3000);

struct LinkPair {
  std::unique_ptr<Link> sender, receiver;
};

LinkPair ConnectedTcpLinks() {
  testing::LoopbackPair pair = testing::ConnectedLoopback(kTestDeadline);
  return {std::make_unique<TcpLink>(std::move(pair.client)),
          std::make_unique<TcpLink>(std::move(pair.server))};
}

TEST(TcpLinkTest, FrameArrivesWithItsHeaderAndBytes) {
  LinkPair links = ConnectedTcpLinks();
  std::vector<float> sent(2 * 3 * 4);
  std::iota(sent.begin(), sent.end(), 0.5f);
  FrameHeader h = TensorFrameHeader(FrameType::kActivation, 7, DType::kFloat32, {2, 3, 4}).value();
  h.origin_ns = 42;

  ASSERT_TRUE(links.sender->Send(h, sent.data(), DeadlineIn(kTestDeadline)).ok());
  ASSERT_TRUE(links.receiver->WaitForFrame(DeadlineIn(kTestDeadline)).ok());
  FrameHeader got;
  ASSERT_TRUE(links.receiver->ReceiveHeader(&got, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
  std::vector<float> received(got.payload_bytes / sizeof(float));
  ASSERT_TRUE(
      links.receiver->ReceivePayload(received.data(), got.payload_bytes, DeadlineIn(kTestDeadline))
          .ok());

  EXPECT_EQ(got.batch_id, 7u);
  EXPECT_EQ(got.origin_ns, 42);
  EXPECT_EQ(got.Shape(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(received, sent);
  EXPECT_STREQ(links.sender->backend(), "tcp");
}

TEST(TcpLinkTest, WaitForFrameEndsAtItsDeadlineNamingThePeer) {
  LinkPair links = ConnectedTcpLinks();
  const auto begin = Clock::now();

  Status s = links.receiver->WaitForFrame(DeadlineIn(std::chrono::milliseconds(100)));

  const auto elapsed = Clock::now() - begin;
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_NE(s.message().find(links.receiver->peer()), std::string::npos) << s.message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(90)) << "returned before its deadline";
  EXPECT_LT(elapsed, std::chrono::milliseconds(2500));
}

TEST(TcpLinkTest, ShutdownWakesABlockedReceiver) {
  LinkPair links = ConnectedTcpLinks();
  Status received;
  std::thread receiver([&] {
    FrameHeader h;
    received = links.receiver->ReceiveHeader(&h, FrameLimits{}, DeadlineIn(kTestDeadline));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto begin = Clock::now();

  links.receiver->Shutdown();
  receiver.join();

  EXPECT_FALSE(received.ok());
  EXPECT_NE(received.message().find("shut down"), std::string::npos) << received.message();
  EXPECT_LT(Clock::now() - begin, std::chrono::milliseconds(2500));
}

}  // namespace
}  // namespace paretopipe
