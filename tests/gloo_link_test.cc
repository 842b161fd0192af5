// The torch backend on loopback: ranks of one process group as threads (and,
// for a peer's death, a forked process). Frames cross intact and in order on
// every link, waits end at their deadline, Shutdown wakes a blocked receiver,
// and every failure is a Status naming the peer, never a crash or a hang.
#include "transport/gloo_link.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <numeric>
#include <thread>
#include <vector>

namespace paretopipe {
namespace {

using std::chrono::milliseconds;

// Generous: the tests share a small, noisy machine, and a Gloo timeout
// breaks the group, so a wait that should succeed must never come close.
constexpr milliseconds kTestDeadline(30000);
constexpr int kDataTag = 0;
constexpr int kCreditTag = 1;

GlooGroup::Options GroupOptions(int rank, int world_size) {
  static std::atomic<int> run{0};
  GlooGroup::Options options;
  options.rank = rank;
  options.world_size = world_size;
  options.store_host = "127.0.0.1";
  options.bind_host = "127.0.0.1";
  options.prefix = "test/" + std::to_string(run++);
  options.timeout = kTestDeadline;
  return options;
}

// Creates every rank of a group of `world_size` and joins them concurrently.
std::vector<std::unique_ptr<GlooGroup>> JoinedGroups(int world_size) {
  std::vector<std::unique_ptr<GlooGroup>> groups;
  GlooGroup::Options options = GroupOptions(0, world_size);
  for (int rank = 0; rank < world_size; ++rank) {
    options.rank = rank;
    auto group = GlooGroup::Create(options);
    EXPECT_TRUE(group.ok()) << group.status().message();
    if (!group.ok()) return {};
    groups.push_back(std::move(group).value());
    options.store_port = groups[0]->store_port();
  }
  std::vector<Status> joined(world_size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world_size; ++rank) {
    threads.emplace_back(
        [&, rank] { joined[rank] = groups[rank]->Join(DeadlineIn(kTestDeadline)); });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : joined) EXPECT_TRUE(s.ok()) << s.message();
  return groups;
}

std::string RankLabel(int rank) { return "rank " + std::to_string(rank); }

std::unique_ptr<Link> Sender(GlooGroup& group, int to, int tag) {
  return group.MakeLink(to, tag, /*sending=*/true, RankLabel(to));
}
std::unique_ptr<Link> Receiver(GlooGroup& group, int from, int tag) {
  return group.MakeLink(from, tag, /*sending=*/false, RankLabel(from));
}

FrameHeader Credit(uint64_t batch_id) {
  FrameHeader h;
  h.type = FrameType::kCredit;
  h.batch_id = batch_id;
  return h;
}

FrameHeader Activation(uint64_t batch_id, std::vector<int64_t> shape) {
  FrameHeader h =
      TensorFrameHeader(FrameType::kActivation, batch_id, DType::kFloat32, shape).value();
  h.origin_ns = 1000 + static_cast<int64_t>(batch_id);
  return h;
}

struct Received {
  Status status;
  FrameHeader header;
  std::vector<uint8_t> payload;
};

Received ReceiveFrame(Link& link) {
  Received r;
  r.status = link.WaitForFrame(DeadlineIn(kTestDeadline));
  if (!r.status.ok()) return r;
  r.status = link.ReceiveHeader(&r.header, FrameLimits{}, DeadlineIn(kTestDeadline));
  if (!r.status.ok()) return r;
  r.payload.resize(r.header.payload_bytes);
  r.status = link.ReceivePayload(r.payload.data(), r.payload.size(), DeadlineIn(kTestDeadline));
  return r;
}

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

TEST(GlooLinkTest, FramesOfEverySizeArriveIntactAndInOrder) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto sender = Sender(*groups[0], 1, kDataTag);
  auto receiver = Receiver(*groups[1], 0, kDataTag);
  std::vector<float> small(1024), large(5 * 256 * 1024);  // 4 KiB, 5 MiB.
  std::iota(small.begin(), small.end(), 0.5f);
  std::iota(large.begin(), large.end(), -7.0f);
  const FrameHeader sent[] = {Credit(1), Activation(2, {1024}), Activation(3, {5, 256, 1024})};

  std::vector<Status> send_status;
  std::thread sending([&] {
    send_status.push_back(sender->Send(sent[0], nullptr, DeadlineIn(kTestDeadline)));
    send_status.push_back(sender->Send(sent[1], small.data(), DeadlineIn(kTestDeadline)));
    send_status.push_back(sender->Send(sent[2], large.data(), DeadlineIn(kTestDeadline)));
  });
  std::vector<Received> got;
  for (int i = 0; i < 3; ++i) got.push_back(ReceiveFrame(*receiver));
  sending.join();

  for (const Status& s : send_status) EXPECT_TRUE(s.ok()) << s.message();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status.message();
    EXPECT_EQ(got[i].header.type, sent[i].type);
    EXPECT_EQ(got[i].header.batch_id, sent[i].batch_id);
    EXPECT_EQ(got[i].header.Shape(), sent[i].Shape());
    EXPECT_EQ(got[i].header.origin_ns, sent[i].origin_ns);
  }
  EXPECT_TRUE(got[0].payload.empty());
  EXPECT_EQ(got[1].payload, Bytes(small));
  EXPECT_EQ(got[2].payload, Bytes(large));
  EXPECT_STREQ(sender->backend(), "torch");
  EXPECT_EQ(receiver->peer(), "rank 0");
}

TEST(GlooLinkTest, DataAndCreditLinksWorkConcurrently) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto data_out = Sender(*groups[0], 1, kDataTag);
  auto credits_in = Receiver(*groups[0], 1, kCreditTag);
  auto data_in = Receiver(*groups[1], 0, kDataTag);
  auto credits_out = Sender(*groups[1], 0, kCreditTag);
  constexpr int kBatches = 20;
  std::vector<float> activation(4096, 1.5f);

  // Rank 0 sends on one thread while it receives credits on another.
  std::atomic<int> failures{0};
  std::thread source([&] {
    for (int i = 0; i < kBatches; ++i) {
      if (!data_out->Send(Activation(i, {4096}), activation.data(), DeadlineIn(kTestDeadline))
               .ok()) {
        ++failures;
      }
    }
  });
  std::thread sink([&] {
    for (int i = 0; i < kBatches; ++i) {
      Received r = ReceiveFrame(*data_in);
      if (!r.status.ok() || r.header.batch_id != static_cast<uint64_t>(i) ||
          r.payload != Bytes(activation) ||
          !credits_out->Send(Credit(i), nullptr, DeadlineIn(kTestDeadline)).ok()) {
        ++failures;
      }
    }
  });
  std::vector<uint64_t> credited;
  for (int i = 0; i < kBatches; ++i) {
    Received r = ReceiveFrame(*credits_in);
    EXPECT_TRUE(r.status.ok()) << r.status.message();
    credited.push_back(r.header.batch_id);
  }
  source.join();
  sink.join();

  EXPECT_EQ(failures, 0);
  std::vector<uint64_t> expected(kBatches);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(credited, expected);
}

TEST(GlooLinkTest, ThreeRankChainWithCreditsBack) {
  auto groups = JoinedGroups(3);
  ASSERT_EQ(groups.size(), 3u);
  constexpr int kBatches = 10;
  std::vector<float> input(3 * 1000);
  std::iota(input.begin(), input.end(), 0.0f);
  std::atomic<int> failures{0};

  std::thread source([&] {
    auto out = Sender(*groups[0], 1, kDataTag);
    for (int i = 0; i < kBatches; ++i) {
      if (!out->Send(Activation(i, {3, 1000}), input.data(), DeadlineIn(kTestDeadline)).ok()) {
        ++failures;
      }
    }
  });
  std::thread middle([&] {
    auto in = Receiver(*groups[1], 0, kDataTag);
    auto out = Sender(*groups[1], 2, kDataTag);
    for (int i = 0; i < kBatches; ++i) {
      Received r = ReceiveFrame(*in);
      if (!r.status.ok() ||
          !out->Send(r.header, r.payload.data(), DeadlineIn(kTestDeadline)).ok()) {
        ++failures;
      }
    }
  });
  std::thread sink([&] {
    auto in = Receiver(*groups[2], 1, kDataTag);
    auto credits = Sender(*groups[2], 0, kCreditTag);
    for (int i = 0; i < kBatches; ++i) {
      Received r = ReceiveFrame(*in);
      if (!r.status.ok() || r.payload != Bytes(input) || r.header.origin_ns != 1000 + i ||
          !credits->Send(Credit(i), nullptr, DeadlineIn(kTestDeadline)).ok()) {
        ++failures;
      }
    }
  });
  auto credits_in = Receiver(*groups[0], 2, kCreditTag);
  for (int i = 0; i < kBatches; ++i) {
    Received r = ReceiveFrame(*credits_in);
    EXPECT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_EQ(r.header.batch_id, static_cast<uint64_t>(i));
  }
  source.join();
  middle.join();
  sink.join();

  EXPECT_EQ(failures, 0);
}

TEST(GlooLinkTest, SenderMayOverwriteItsBufferOnceSendReturns) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto sender = Sender(*groups[0], 1, kDataTag);
  auto receiver = Receiver(*groups[1], 0, kDataTag);
  std::vector<float> buffer(64 * 1024, 1.0f);

  Status first, second;
  std::thread sending([&] {
    first = sender->Send(Activation(1, {64, 1024}), buffer.data(), DeadlineIn(kTestDeadline));
    std::fill(buffer.begin(), buffer.end(), 2.0f);
    second = sender->Send(Activation(2, {64, 1024}), buffer.data(), DeadlineIn(kTestDeadline));
  });
  Received a = ReceiveFrame(*receiver);
  Received b = ReceiveFrame(*receiver);
  sending.join();

  ASSERT_TRUE(first.ok() && second.ok()) << first.message() << second.message();
  EXPECT_EQ(a.payload, Bytes(std::vector<float>(64 * 1024, 1.0f)));
  EXPECT_EQ(b.payload, Bytes(std::vector<float>(64 * 1024, 2.0f)));
}

TEST(GlooLinkTest, WaitForFrameEndsAtItsDeadlineAndLaterCallsFailCleanly) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto receiver = Receiver(*groups[1], 0, kDataTag);
  auto sender = Sender(*groups[0], 1, kDataTag);
  const auto begin = Clock::now();

  Status waited = receiver->WaitForFrame(DeadlineIn(milliseconds(500)));

  const auto elapsed = Clock::now() - begin;
  EXPECT_EQ(waited.code(), Status::Code::kUnavailable);
  EXPECT_NE(waited.message().find("rank 0"), std::string::npos) << waited.message();
  EXPECT_GE(elapsed, milliseconds(450)) << "returned before its deadline";
  EXPECT_LT(elapsed, milliseconds(10000));
  // Gloo closed the group's connections on the timeout: this end fails at
  // once, the other end by its deadline (at once unless its send races
  // Gloo's noticing the closed connection).
  FrameHeader h;
  EXPECT_EQ(receiver->ReceiveHeader(&h, FrameLimits{}, DeadlineIn(kTestDeadline)).code(),
            Status::Code::kUnavailable);
  const auto send_begin = Clock::now();
  Status sent = sender->Send(Credit(1), nullptr, DeadlineIn(milliseconds(2000)));
  EXPECT_EQ(sent.code(), Status::Code::kUnavailable) << sent.message();
  EXPECT_LT(Clock::now() - send_begin, milliseconds(10000)) << sent.message();
}

TEST(GlooLinkTest, ShutdownWakesABlockedWaitForFrame) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto receiver = Receiver(*groups[1], 0, kDataTag);
  Status waited;
  std::thread waiting([&] { waited = receiver->WaitForFrame(DeadlineIn(kTestDeadline)); });
  std::this_thread::sleep_for(milliseconds(200));
  const auto begin = Clock::now();

  receiver->Shutdown();
  waiting.join();

  EXPECT_EQ(waited.code(), Status::Code::kUnavailable);
  EXPECT_NE(waited.message().find("shut down"), std::string::npos) << waited.message();
  EXPECT_LT(Clock::now() - begin, milliseconds(5000));
  Status later = receiver->WaitForFrame(DeadlineIn(kTestDeadline));
  EXPECT_NE(later.message().find("shut down"), std::string::npos) << later.message();
}

TEST(GlooLinkTest, ShutdownWakesABlockedSend) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto sender = Sender(*groups[0], 1, kDataTag);  // Rank 1 never receives.
  std::vector<float> values(1024);
  Status sent;
  std::thread sending([&] {
    sent = sender->Send(Activation(1, {1024}), values.data(), DeadlineIn(kTestDeadline));
  });
  std::this_thread::sleep_for(milliseconds(200));
  const auto begin = Clock::now();

  sender->Shutdown();
  sending.join();

  EXPECT_EQ(sent.code(), Status::Code::kUnavailable);
  EXPECT_NE(sent.message().find("shut down"), std::string::npos) << sent.message();
  EXPECT_LT(Clock::now() - begin, milliseconds(5000));
}

TEST(GlooLinkTest, JoinWithAMissingRankFailsByItsDeadline) {
  auto group = GlooGroup::Create(GroupOptions(0, 2));
  ASSERT_TRUE(group.ok()) << group.status().message();
  const auto begin = Clock::now();

  Status joined = (*group)->Join(DeadlineIn(milliseconds(1500)));

  EXPECT_EQ(joined.code(), Status::Code::kUnavailable);
  EXPECT_NE(joined.message().find("rank 0 of 2"), std::string::npos) << joined.message();
  EXPECT_LT(Clock::now() - begin, milliseconds(15000));
}

TEST(GlooLinkTest, JoinWithoutAStoreRetriesUntilItsDeadline) {
  // A port nobody listens on: bound, then released.
  uint16_t port = Listener::Listen({"127.0.0.1", 0}).value().endpoint().port;
  GlooGroup::Options options = GroupOptions(1, 2);
  options.store_port = port;
  auto group = GlooGroup::Create(options);
  ASSERT_TRUE(group.ok()) << group.status().message();
  const auto begin = Clock::now();

  Status joined = (*group)->Join(DeadlineIn(milliseconds(1500)));

  EXPECT_EQ(joined.code(), Status::Code::kUnavailable);
  EXPECT_NE(joined.message().find(std::to_string(port)), std::string::npos) << joined.message();
  EXPECT_GE(Clock::now() - begin, milliseconds(1000)) << "gave up long before its deadline";
  EXPECT_LT(Clock::now() - begin, milliseconds(15000));
}

TEST(GlooLinkTest, JoinWaitsForAStoreThatStartsLate) {
  GlooGroup::Options options = GroupOptions(0, 2);
  options.store_port = Listener::Listen({"127.0.0.1", 0}).value().endpoint().port;
  GlooGroup::Options peer_options = options;
  peer_options.rank = 1;
  auto peer = GlooGroup::Create(peer_options);
  ASSERT_TRUE(peer.ok()) << peer.status().message();
  Status peer_joined;
  std::thread joining([&] { peer_joined = (*peer)->Join(DeadlineIn(kTestDeadline)); });
  std::this_thread::sleep_for(milliseconds(500));

  auto group = GlooGroup::Create(options);
  ASSERT_TRUE(group.ok()) << group.status().message();
  Status joined = (*group)->Join(DeadlineIn(kTestDeadline));
  joining.join();

  EXPECT_TRUE(joined.ok()) << joined.message();
  EXPECT_TRUE(peer_joined.ok()) << peer_joined.message();
}

TEST(GlooLinkTest, MalformedHeaderIsRefusedNamingThePeer) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto sender = Sender(*groups[0], 1, kDataTag);
  // Two receivers on one tag take turns on its messages: the first takes a
  // frame's header and leaves its payload (128 bytes of garbage) to the second,
  // which reads it as the next header.
  auto first = Receiver(*groups[1], 0, kDataTag);
  auto second = Receiver(*groups[1], 0, kDataTag);
  std::vector<uint8_t> garbage(kFrameHeaderBytes, 0xAB);
  FrameHeader h = TensorFrameHeader(FrameType::kActivation, 1, DType::kUInt8, {128}).value();
  Status sent;
  std::thread sending([&] { sent = sender->Send(h, garbage.data(), DeadlineIn(kTestDeadline)); });

  FrameHeader got;
  ASSERT_TRUE(first->ReceiveHeader(&got, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
  Status refused = second->ReceiveHeader(&got, FrameLimits{}, DeadlineIn(kTestDeadline));
  sending.join();

  EXPECT_TRUE(sent.ok()) << sent.message();
  EXPECT_EQ(refused.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.message().find("rank 0"), std::string::npos) << refused.message();
  // Not at a frame boundary any more: the link stays refused.
  EXPECT_EQ(second->WaitForFrame(DeadlineIn(kTestDeadline)).code(), Status::Code::kInvalidArgument);
}

TEST(GlooLinkTest, PayloadOfAnotherSizeThanAnnouncedIsRefusedWithoutReceiving) {
  auto groups = JoinedGroups(2);
  ASSERT_EQ(groups.size(), 2u);
  auto sender = Sender(*groups[0], 1, kDataTag);
  auto receiver = Receiver(*groups[1], 0, kDataTag);
  std::vector<float> values(1024, 3.0f);
  Status sent;
  std::thread sending([&] {
    sent = sender->Send(Activation(1, {1024}), values.data(), DeadlineIn(kTestDeadline));
  });
  FrameHeader h;
  ASSERT_TRUE(receiver->ReceiveHeader(&h, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
  std::vector<uint8_t> out(h.payload_bytes);

  Status too_small = receiver->ReceivePayload(out.data(), 100, DeadlineIn(kTestDeadline));
  Status right = receiver->ReceivePayload(out.data(), out.size(), DeadlineIn(kTestDeadline));
  sending.join();

  EXPECT_EQ(too_small.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(right.ok()) << right.message();
  EXPECT_EQ(out, Bytes(values));
  EXPECT_TRUE(sent.ok()) << sent.message();
}

TEST(GlooLinkTest, PeerProcessExitEndsAPendingWaitByItsDeadline) {
  GlooGroup::Options options = GroupOptions(0, 2);
  auto group = GlooGroup::Create(options);
  ASSERT_TRUE(group.ok()) << group.status().message();
  options.rank = 1;
  options.store_port = (*group)->store_port();
  // Forked while this process runs no thread but the store server's, which
  // the child does not inherit; the child uses nothing of the parent's group.
  const pid_t child = fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    auto peer = GlooGroup::Create(options);
    const bool joined = peer.ok() && (*peer)->Join(DeadlineIn(kTestDeadline)).ok();
    std::this_thread::sleep_for(milliseconds(300));
    _exit(joined ? 0 : 1);  // No destructors: the peer vanishes as a crash would.
  }
  ASSERT_TRUE((*group)->Join(DeadlineIn(kTestDeadline)).ok());
  auto receiver = Receiver(**group, 1, kDataTag);
  const auto begin = Clock::now();

  Status waited = receiver->WaitForFrame(DeadlineIn(milliseconds(10000)));

  const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
  int child_status = 0;
  waitpid(child, &child_status, 0);
  EXPECT_TRUE(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0)
      << "the child did not join";
  EXPECT_EQ(waited.code(), Status::Code::kUnavailable);
  EXPECT_LT(elapsed, milliseconds(12000));
  std::cout << "peer exit noticed after " << elapsed.count() << " ms: " << waited.message() << "\n";
}

}  // namespace
}  // namespace paretopipe
