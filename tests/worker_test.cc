// The worker daemon against misbehaving peers: whatever arrives on its port,
// it closes that one connection, logs why, and goes on serving the next
// orchestrator.
#include "control/worker.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/protocol.h"
#include "control/worker_client.h"
#include "peer_util.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::ClosedByWorkerWithin;
using testing::LogCapture;
using testing::SendRaw;
using testing::ServingWorker;

// Every wait ends within a few seconds, so a worker that keeps a bad
// connection open fails the test instead of hanging it.
constexpr std::chrono::milliseconds kTestDeadline(3000);

std::array<uint8_t, kFrameHeaderBytes> Encoded(const FrameHeader& header) {
  std::array<uint8_t, kFrameHeaderBytes> bytes{};
  EncodeFrameHeader(header, bytes.data());
  return bytes;
}

std::array<uint8_t, kFrameHeaderBytes> HelloHeader(uint64_t payload_bytes) {
  return Encoded(TextFrameHeader(FrameType::kHello, payload_bytes).value());
}

class WorkerConnectionTest : public ::testing::Test {
 protected:
  static WorkerOptions Options() {
    WorkerOptions o;
    // Short, so that a peer that says nothing is dropped within the test's deadline.
    o.hello_timeout = std::chrono::milliseconds(500);
    return o;
  }

  // A raw TCP connection to the worker, for playing a misbehaving peer.
  Socket Connect() {
    Result<Socket> socket = ConnectTcp(worker_.endpoint(), DeadlineIn(kTestDeadline));
    EXPECT_TRUE(socket.ok()) << socket.status().message();
    return socket.ok() ? std::move(socket).value() : Socket();
  }

  // The worker closed `socket`, logged a message containing `reason`, and an
  // orchestrator can still connect and ask for Info().
  void ExpectClosedLoggedAndStillServing(Socket& socket, const std::string& reason) {
    EXPECT_TRUE(ClosedByWorkerWithin(socket, kTestDeadline))
        << "the worker kept the connection open";
    EXPECT_TRUE(log_.sink().WaitFor(reason, kTestDeadline))
        << "no log message contains '" << reason << "'; the log:\n"
        << log_.sink().All();
    Result<std::unique_ptr<WorkerClient>> client =
        WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
    ASSERT_TRUE(client.ok()) << client.status().message();
    Result<WorkerInfo> info = (*client)->Info();
    ASSERT_TRUE(info.ok()) << info.status().message();
    EXPECT_EQ(info->threads, 1);
  }

  LogCapture log_;  // Before the worker: installed before it starts, removed after it stops.
  ServingWorker worker_{Options()};
};

TEST_F(WorkerConnectionTest, WrongMagicIsClosed) {
  Socket peer = Connect();
  std::array<uint8_t, kFrameHeaderBytes> header = HelloHeader(2);
  header[0] ^= 0xff;

  SendRaw(peer, header.data(), header.size());

  ExpectClosedLoggedAndStillServing(peer, "bad magic");
}

TEST_F(WorkerConnectionTest, WrongVersionIsClosed) {
  Socket peer = Connect();
  std::array<uint8_t, kFrameHeaderBytes> header = HelloHeader(2);
  header[4] = 2;  // Version, u16 little-endian at offset 4 (docs/wire-format.md).

  SendRaw(peer, header.data(), header.size());

  ExpectClosedLoggedAndStillServing(peer, "version 2 not supported");
}

TEST_F(WorkerConnectionTest, TruncatedHeaderThenCloseIsClosed) {
  Socket peer = Connect();
  const std::array<uint8_t, kFrameHeaderBytes> header = HelloHeader(2);

  SendRaw(peer, header.data(), 40);
  ::shutdown(peer.fd(), SHUT_WR);

  ExpectClosedLoggedAndStillServing(peer, "mid-frame (got 40 of 128 bytes");
}

TEST_F(WorkerConnectionTest, PayloadOverTheLimitIsClosedBeforeReadingIt) {
  Socket peer = Connect();
  const std::array<uint8_t, kFrameHeaderBytes> header = HelloHeader(kMaxControlPayloadBytes + 1);

  SendRaw(peer, header.data(), header.size());

  ExpectClosedLoggedAndStillServing(peer, "exceeds limit");
}

TEST_F(WorkerConnectionTest, PeerGoneMidPayloadIsClosed) {
  Socket peer = Connect();
  const std::string hello = R"({"role": "control"})";
  const std::array<uint8_t, kFrameHeaderBytes> header = HelloHeader(hello.size());

  SendRaw(peer, header.data(), header.size());
  SendRaw(peer, hello.data(), 5);
  ::shutdown(peer.fd(), SHUT_WR);

  ExpectClosedLoggedAndStillServing(peer, "closed the connection mid-frame (got 5 of");
}

TEST_F(WorkerConnectionTest, GarbageBytesAreClosed) {
  Socket peer = Connect();
  std::string garbage;
  while (garbage.size() < 300) garbage += "GET / HTTP/1.1\r\nHost: worker\r\n\r\n";

  SendRaw(peer, garbage.data(), garbage.size());

  ExpectClosedLoggedAndStillServing(peer, "bad magic");
}

TEST_F(WorkerConnectionTest, SilentPeerIsClosedAfterTheHelloTimeout) {
  Socket peer = Connect();

  // Nothing sent.

  ExpectClosedLoggedAndStillServing(peer, "timed out");
}

TEST_F(WorkerConnectionTest, FirstFrameOtherThanHelloIsClosed) {
  Socket peer = Connect();

  ASSERT_TRUE(
      SendJsonFrame(peer, FrameType::kControl, R"({"op": "info"})", DeadlineIn(kTestDeadline))
          .ok());

  ExpectClosedLoggedAndStillServing(peer, "first frame is control, expected hello");
}

TEST_F(WorkerConnectionTest, HelloThatIsNotJsonIsClosed) {
  Socket peer = Connect();

  ASSERT_TRUE(
      SendJsonFrame(peer, FrameType::kHello, "role=control", DeadlineIn(kTestDeadline)).ok());

  ExpectClosedLoggedAndStillServing(peer, "hello: not a JSON object");
}

TEST_F(WorkerConnectionTest, HelloWithAnUnknownRoleIsClosed) {
  Socket peer = Connect();

  ASSERT_TRUE(
      SendJsonFrame(peer, FrameType::kHello, R"({"role": "spy"})", DeadlineIn(kTestDeadline)).ok());

  ExpectClosedLoggedAndStillServing(peer, "unknown role 'spy'");
}

TEST_F(WorkerConnectionTest, HelloWithARoleOfTheWrongTypeIsClosed) {
  Socket peer = Connect();

  ASSERT_TRUE(
      SendJsonFrame(peer, FrameType::kHello, R"({"role": 5})", DeadlineIn(kTestDeadline)).ok());

  ExpectClosedLoggedAndStillServing(peer, "type must be string");
}

TEST_F(WorkerConnectionTest, DataHelloWithARunIdOfTheWrongTypeIsClosed) {
  Socket peer = Connect();

  ASSERT_TRUE(SendJsonFrame(peer, FrameType::kHello, R"({"role": "data", "run_id": "x"})",
                            DeadlineIn(kTestDeadline))
                  .ok());

  ExpectClosedLoggedAndStillServing(peer, "hello run_id must be an integer, got \"x\"");
}

TEST_F(WorkerConnectionTest,
       ControlMessageWithAFieldOfTheWrongTypeGetsAnErrorReplyAndTheSessionGoesOn) {
  Socket control = Connect();
  ASSERT_TRUE(SendJsonFrame(control, FrameType::kHello, R"({"role": "control", "protocol": 1})",
                            DeadlineIn(kTestDeadline))
                  .ok());

  ASSERT_TRUE(
      SendJsonFrame(control, FrameType::kControl, R"({"op": ["info"]})", DeadlineIn(kTestDeadline))
          .ok());
  Result<std::string> reply =
      ReceiveJsonFrame(control, FrameType::kControl, DeadlineIn(kTestDeadline));
  ASSERT_TRUE(
      SendJsonFrame(control, FrameType::kControl, R"({"op": "info"})", DeadlineIn(kTestDeadline))
          .ok());
  Result<std::string> next =
      ReceiveJsonFrame(control, FrameType::kControl, DeadlineIn(kTestDeadline));

  ASSERT_TRUE(reply.ok()) << reply.status().message();
  const nlohmann::json j = nlohmann::json::parse(*reply);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_NE(j["error"].get<std::string>().find("malformed control message"), std::string::npos)
      << *reply;
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_TRUE(nlohmann::json::parse(*next)["ok"].get<bool>()) << *next;
}

TEST_F(WorkerConnectionTest, AbandonedSessionIsReopenedByTheNextRequest) {
  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
  ASSERT_TRUE(client.ok()) << client.status().message();

  (*client)->Abandon();
  Result<WorkerInfo> info = (*client)->Info();

  EXPECT_TRUE(info.ok()) << info.status().message();
  EXPECT_TRUE(log_.sink().WaitFor("disconnected", kTestDeadline)) << log_.sink().All();
}

TEST_F(WorkerConnectionTest, DataConnectionForARunThatDoesNotExistIsClosed) {
  Socket peer = Connect();

  ASSERT_TRUE(SendJsonFrame(peer, FrameType::kHello, R"({"role": "data", "run_id": 424242})",
                            DeadlineIn(kTestDeadline))
                  .ok());

  ExpectClosedLoggedAndStillServing(peer, "tcp data link from");
  EXPECT_TRUE(log_.sink().WaitFor("for run 424242 closed", kTestDeadline)) << log_.sink().All();
}

TEST_F(WorkerConnectionTest, SecondOrchestratorIsRefusedWhileTheFirstIsConnected) {
  Result<std::unique_ptr<WorkerClient>> first =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE((*first)->Info().ok());  // The first session is established.
  // Connect retries "busy" until its deadline (its own previous session may
  // be ending), then gives up with the worker's reason.
  Result<std::unique_ptr<WorkerClient>> refused =
      WorkerClient::Connect(worker_.endpoint(), std::chrono::milliseconds(500));

  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("worker busy: another orchestrator is connected"),
            std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find(worker_.endpoint().ToString()), std::string::npos)
      << "the error should name the worker: " << refused.status().message();
  EXPECT_TRUE(log_.sink().WaitFor("another one is connected", kTestDeadline)) << log_.sink().All();
  EXPECT_TRUE((*first)->Info().ok()) << "the first orchestrator lost its session";
}

TEST_F(WorkerConnectionTest, NextOrchestratorIsServedOnceTheFirstLeaves) {
  {
    Result<std::unique_ptr<WorkerClient>> first =
        WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
    ASSERT_TRUE(first.ok()) << first.status().message();
    ASSERT_TRUE((*first)->Info().ok());
  }
  ASSERT_TRUE(log_.sink().WaitFor("disconnected", kTestDeadline)) << log_.sink().All();

  Result<std::unique_ptr<WorkerClient>> next =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline);

  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_TRUE((*next)->Info().ok());
}

}  // namespace
}  // namespace paretopipe
