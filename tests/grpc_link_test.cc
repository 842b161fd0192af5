// The gRPC backend of Link on loopback: frames arrive intact and in order,
// several are in flight at once, the caller's memory is free when Send
// returns, every wait ends at its deadline, and a peer going away is noticed
// promptly. Timing bounds are loose: the test machine is shared and small.
#include "transport/grpc_link.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

namespace paretopipe {
namespace {

constexpr std::chrono::milliseconds kTestDeadline(5000);
constexpr auto kPromptly = std::chrono::seconds(5);

// Collects what a server accepts.
class Inbox {
 public:
  struct Accepted {
    std::string role;
    int64_t run_id = 0;
    std::unique_ptr<Link> link;
  };

  GrpcLinkServer::Accept Callback() {
    return [this](const std::string& role, int64_t run_id, std::unique_ptr<Link> link) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        accepted_.push_back({role, run_id, std::move(link)});
      }
      cv_.notify_all();
    };
  }

  // The next accepted link; an empty one if none comes by the deadline.
  Accepted Take() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, kTestDeadline, [&] { return !accepted_.empty(); })) return {};
    Accepted a = std::move(accepted_.front());
    accepted_.pop_front();
    return a;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Accepted> accepted_;
};

// A server and one link through it. The inbox is declared first so that it
// outlives the server, which may call it until destroyed.
struct GrpcLinks {
  Inbox inbox;
  std::unique_ptr<GrpcLinkServer> server;
  std::unique_ptr<Link> sender, receiver;
  std::string role;
  int64_t run_id = 0;
};

std::unique_ptr<GrpcLinks> ConnectedGrpcLinks(int64_t run_id = 7) {
  auto links = std::make_unique<GrpcLinks>();
  links->server = GrpcLinkServer::Start({"127.0.0.1", 0}, links->inbox.Callback()).value();
  links->sender = ConnectGrpcLink({"127.0.0.1", links->server->port()}, "data", run_id,
                                  DeadlineIn(kTestDeadline))
                      .value();
  Inbox::Accepted accepted = links->inbox.Take();
  EXPECT_NE(accepted.link, nullptr) << "no stream accepted";
  links->receiver = std::move(accepted.link);
  links->role = accepted.role;
  links->run_id = accepted.run_id;
  return links;
}

FrameHeader FloatFrame(uint64_t batch_id, int64_t elements) {
  FrameHeader h =
      TensorFrameHeader(FrameType::kActivation, batch_id, DType::kFloat32, {1, elements}).value();
  h.sent_ns = 1000 + static_cast<int64_t>(batch_id);
  h.origin_ns = 2000 + static_cast<int64_t>(batch_id);
  return h;
}

std::vector<float> Ramp(int64_t elements, float start) {
  std::vector<float> v(static_cast<size_t>(elements));
  std::iota(v.begin(), v.end(), start);
  return v;
}

struct Received {
  Status status;
  FrameHeader header;
  std::vector<uint8_t> payload;
};

Received ReceiveFrame(Link& link, const FrameLimits& limits = {}) {
  Received r;
  r.status = link.WaitForFrame(DeadlineIn(kTestDeadline));
  if (r.status.ok()) r.status = link.ReceiveHeader(&r.header, limits, DeadlineIn(kTestDeadline));
  if (!r.status.ok()) return r;
  r.payload.resize(r.header.payload_bytes);
  r.status = link.ReceivePayload(r.payload.data(), r.payload.size(), DeadlineIn(kTestDeadline));
  return r;
}

std::vector<uint8_t> Bytes(const std::vector<float>& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return {p, p + v.size() * sizeof(float)};
}

TEST(GrpcLinkTest, FramesOfEverySizeArriveIntactInOrderWithTheirHeaders) {
  auto links = ConnectedGrpcLinks(int64_t{1} << 40);
  const int64_t sizes[] = {0, 1024, 5 << 18};  // 0 B, 4 KiB, 5 MiB (gRPC's default limit: 4 MiB).
  std::vector<std::vector<float>> sent;
  for (int i = 0; i < 3; ++i) sent.push_back(Ramp(sizes[i], 0.5f + i));

  Status send_status;
  std::thread sender([&] {
    for (int i = 0; i < 3 && send_status.ok(); ++i) {
      send_status =
          links->sender->Send(FloatFrame(i, sizes[i]), sent[i].data(), DeadlineIn(kTestDeadline));
    }
  });
  std::vector<Received> got;
  for (int i = 0; i < 3; ++i) got.push_back(ReceiveFrame(*links->receiver));
  sender.join();

  ASSERT_TRUE(send_status.ok()) << send_status.message();
  EXPECT_EQ(links->role, "data");
  EXPECT_EQ(links->run_id, int64_t{1} << 40);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status.message();
    EXPECT_EQ(got[i].header.type, FrameType::kActivation);
    EXPECT_EQ(got[i].header.batch_id, static_cast<uint64_t>(i));
    EXPECT_EQ(got[i].header.Shape(), (std::vector<int64_t>{1, sizes[i]}));
    EXPECT_EQ(got[i].header.sent_ns, 1000 + i);
    EXPECT_EQ(got[i].header.origin_ns, 2000 + i);
    EXPECT_EQ(got[i].payload, Bytes(sent[i])) << "frame " << i;
  }
  EXPECT_STREQ(links->receiver->backend(), "grpc");
  EXPECT_EQ(links->sender->peer(), fmt::format("127.0.0.1:{}", links->server->port()));
  EXPECT_EQ(links->receiver->peer().rfind("127.0.0.1:", 0), 0u) << links->receiver->peer();
}

TEST(GrpcLinkTest, EightFramesAreInFlightBeforeTheReceiverReadsAny) {
  auto links = ConnectedGrpcLinks();
  const std::vector<float> payload = Ramp(256, 1.0f);  // 1 KiB: 8 fit HTTP/2's first window.

  for (int i = 0; i < 8; ++i) {
    Status s = links->sender->Send(FloatFrame(i, 256), payload.data(), DeadlineIn(kTestDeadline));
    ASSERT_TRUE(s.ok()) << "frame " << i << ": " << s.message();
  }
  for (int i = 0; i < 8; ++i) {
    Received r = ReceiveFrame(*links->receiver);
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_EQ(r.header.batch_id, static_cast<uint64_t>(i));
    EXPECT_EQ(r.payload, Bytes(payload));
  }
}

TEST(GrpcLinkTest, PayloadMemoryIsTheCallersAgainWhenSendReturns) {
  auto links = ConnectedGrpcLinks();
  const int64_t elements = 5 << 18;  // 5 MiB: more than gRPC sends in one go.
  std::vector<float> buffer = Ramp(elements, 3.0f);
  const std::vector<uint8_t> expected = Bytes(buffer);

  // The stream's reader takes the frame without the receiver asking.
  Status sent =
      links->sender->Send(FloatFrame(0, elements), buffer.data(), DeadlineIn(kTestDeadline));
  std::fill(buffer.begin(), buffer.end(), -1.0f);
  Received r = ReceiveFrame(*links->receiver);

  ASSERT_TRUE(sent.ok()) << sent.message();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.payload == expected) << "the frame changed after Send returned";
}

TEST(GrpcLinkTest, WaitForFrameEndsAtItsDeadlineNamingThePeer) {
  auto links = ConnectedGrpcLinks();
  const auto begin = Clock::now();

  Status s = links->receiver->WaitForFrame(DeadlineIn(std::chrono::milliseconds(200)));

  const auto elapsed = Clock::now() - begin;
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_NE(s.message().find(links->receiver->peer()), std::string::npos) << s.message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(190)) << "returned before its deadline";
  EXPECT_LT(elapsed, kPromptly);
}

TEST(GrpcLinkTest, ShutdownWakesABlockedWaitForFrame) {
  auto links = ConnectedGrpcLinks();
  Status waited;
  std::thread receiver(
      [&] { waited = links->receiver->WaitForFrame(DeadlineIn(kTestDeadline * 4)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto begin = Clock::now();

  links->receiver->Shutdown();
  receiver.join();

  EXPECT_EQ(waited.code(), Status::Code::kUnavailable);
  EXPECT_NE(waited.message().find("shut down"), std::string::npos) << waited.message();
  EXPECT_LT(Clock::now() - begin, kPromptly);
  EXPECT_FALSE(links->receiver->WaitForFrame(DeadlineIn(kTestDeadline)).ok());
}

TEST(GrpcLinkTest, ReceiverLearnsPromptlyThatTheSenderWasDestroyed) {
  auto links = ConnectedGrpcLinks();
  const std::vector<float> payload = Ramp(16, 0.0f);
  ASSERT_TRUE(
      links->sender->Send(FloatFrame(0, 16), payload.data(), DeadlineIn(kTestDeadline)).ok());
  ASSERT_TRUE(ReceiveFrame(*links->receiver).status.ok());
  const auto begin = Clock::now();

  links->sender.reset();
  Status s = links->receiver->WaitForFrame(DeadlineIn(std::chrono::seconds(10)));

  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_NE(s.message().find("closed the stream"), std::string::npos) << s.message();
  EXPECT_LT(Clock::now() - begin, kPromptly);
}

TEST(GrpcLinkTest, FramesSentBeforeTheSenderIsDestroyedStillArrive) {
  auto links = ConnectedGrpcLinks();
  const std::vector<float> payload = Ramp(1024, 0.0f);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        links->sender->Send(FloatFrame(i, 1024), payload.data(), DeadlineIn(kTestDeadline)).ok());
  }
  std::thread closer([&] { links->sender.reset(); });  // Waits for the receiver to take them.

  for (int i = 0; i < 4; ++i) {
    Received r = ReceiveFrame(*links->receiver);
    ASSERT_TRUE(r.status.ok()) << "frame " << i << ": " << r.status.message();
    EXPECT_EQ(r.header.batch_id, static_cast<uint64_t>(i));
  }
  closer.join();
  Status end = links->receiver->WaitForFrame(DeadlineIn(kTestDeadline));
  EXPECT_NE(end.message().find("closed the stream"), std::string::npos) << end.message();
}

TEST(GrpcLinkTest, SendBlockedByAReceiverThatDoesNotReadEndsAtItsDeadline) {
  auto links = ConnectedGrpcLinks();
  const int64_t elements = 4 << 18;  // 4 MiB: a few fill the stream's queue and HTTP/2 windows.
  const std::vector<float> payload = Ramp(elements, 0.0f);
  Status s;
  std::chrono::steady_clock::duration last_send{};
  int sent = 0;
  for (; sent < 64 && s.ok(); ++sent) {
    const int i = sent;
    const auto begin = Clock::now();
    s = links->sender->Send(FloatFrame(i, elements), payload.data(),
                            DeadlineIn(std::chrono::milliseconds(300)));
    last_send = Clock::now() - begin;
  }

  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_NE(s.message().find("deadline"), std::string::npos) << s.message();
  EXPECT_GT(sent, 3) << "the stream's queue holds frames the receiver has not asked for";
  EXPECT_LT(last_send, kPromptly);
  EXPECT_FALSE(
      links->sender->Send(FloatFrame(0, elements), payload.data(), DeadlineIn(kTestDeadline)).ok())
      << "a stream cancelled mid-frame cannot carry more frames";
}

TEST(GrpcLinkTest, SenderFailsPromptlyOnceTheServerIsDestroyed) {
  auto links = ConnectedGrpcLinks();
  const auto begin = Clock::now();

  links->server.reset();  // With both links alive.

  EXPECT_LT(Clock::now() - begin, kPromptly) << "destroying the server hung";
  const std::vector<float> payload = Ramp(1024, 0.0f);
  Status s;
  for (int i = 0; s.ok() && Clock::now() - begin < kPromptly; ++i) {
    s = links->sender->Send(FloatFrame(i, 1024), payload.data(), DeadlineIn(kTestDeadline));
    if (s.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.message();
  EXPECT_LT(Clock::now() - begin, kPromptly);
  EXPECT_EQ(links->receiver->WaitForFrame(DeadlineIn(kTestDeadline)).code(),
            Status::Code::kUnavailable);
}

TEST(GrpcLinkTest, ConnectWithNothingListeningFailsByItsDeadlineNamingTheEndpoint) {
  uint16_t port;
  {
    Inbox inbox;
    port = GrpcLinkServer::Start({"127.0.0.1", 0}, inbox.Callback()).value()->port();
  }  // Now nothing listens there.
  const auto begin = Clock::now();

  auto link =
      ConnectGrpcLink({"127.0.0.1", port}, "credit", 1, DeadlineIn(std::chrono::milliseconds(500)));

  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(link.status().message().find(fmt::format("127.0.0.1:{}", port)), std::string::npos)
      << link.status().message();
  EXPECT_GE(Clock::now() - begin, std::chrono::milliseconds(450));
  EXPECT_LT(Clock::now() - begin, kPromptly);
}

TEST(GrpcLinkTest, UnknownRoleIsRefused) {
  auto link = ConnectGrpcLink({"127.0.0.1", 1}, "activations", 1, DeadlineIn(kTestDeadline));
  EXPECT_EQ(link.status().code(), Status::Code::kInvalidArgument);
}

TEST(GrpcLinkTest, HeaderBeyondTheReceiversLimitIsRefusedNamingThePeer) {
  auto links = ConnectedGrpcLinks();
  const std::vector<float> payload = Ramp(1024, 0.0f);
  ASSERT_TRUE(
      links->sender->Send(FloatFrame(0, 1024), payload.data(), DeadlineIn(kTestDeadline)).ok());
  FrameLimits small;
  small.max_payload_bytes = 1000;

  Received r = ReceiveFrame(*links->receiver, small);

  EXPECT_EQ(r.status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status.message().find(links->receiver->peer()), std::string::npos)
      << r.status.message();
}

TEST(GrpcLinkTest, TimingCountsTheCopyOutOfGrpcsBuffers) {
  auto links = ConnectedGrpcLinks();
  const int64_t elements = 5 << 18;
  const std::vector<float> payload = Ramp(elements, 0.0f);
  ASSERT_TRUE(
      links->sender->Send(FloatFrame(0, elements), payload.data(), DeadlineIn(kTestDeadline)).ok());
  const LinkTiming sent = links->sender->last_send_timing();

  ASSERT_TRUE(ReceiveFrame(*links->receiver).status.ok());

  const LinkTiming received = links->receiver->last_receive_timing();
  EXPECT_GT(sent.serialize_ns, 0);
  EXPECT_GT(received.deserialize_ns, 0);
  EXPECT_GE(received.queued_ns, 0);
}

}  // namespace
}  // namespace paretopipe
