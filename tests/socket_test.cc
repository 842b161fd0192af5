#include "transport/socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>
#include <vector>

#include "loopback.h"

namespace paretopipe {
namespace {

using std::chrono::milliseconds;

// Every wait in these tests ends within a few seconds, so a broken wake-up
// fails the test instead of hanging it.
constexpr milliseconds kTestDeadline(3000);
// "Returned within a generous bound": far above any scheduling noise, well
// below kTestDeadline.
constexpr milliseconds kGenerousBound(2500);

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

using Pair = testing::LoopbackPair;
Pair Connected() { return testing::ConnectedLoopback(kTestDeadline); }

// Writes raw bytes, bypassing SendFrame, to play a misbehaving peer.
void SendRaw(Socket& socket, const void* data, size_t bytes) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    const ssize_t n = ::send(socket.fd(), p, bytes, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    ASSERT_GT(n, 0);
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

std::array<uint8_t, kFrameHeaderBytes> EncodedTensorHeader(const std::vector<int64_t>& shape) {
  std::array<uint8_t, kFrameHeaderBytes> bytes;
  EncodeFrameHeader(TensorFrameHeader(FrameType::kActivation, 1, DType::kUInt8, shape).value(),
                    bytes.data());
  return bytes;
}

Status ReceiveHeaderError(Socket& socket) {
  FrameHeader header;
  return socket.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(kTestDeadline));
}

TEST(EndpointTest, ParsesHostAndPort) {
  const Endpoint endpoint = ParseEndpoint("10.0.0.2:7001").value();
  EXPECT_EQ(endpoint.host, "10.0.0.2");
  EXPECT_EQ(endpoint.port, 7001);
  EXPECT_EQ(endpoint.ToString(), "10.0.0.2:7001");
  EXPECT_EQ(ParseEndpoint("localhost:0").value().port, 0);
}

TEST(EndpointTest, RejectsMissingOrOutOfRangePorts) {
  for (const char* text : {"10.0.0.2", "10.0.0.2:", ":7001", "host:70000", "host:7x", "host:-1"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(ParseEndpoint(text).status().code(), Status::Code::kInvalidArgument);
  }
}

TEST(ListenerTest, PortZeroReportsTheRealPort) {
  const Listener listener = Listener::Listen({"127.0.0.1", 0}).value();
  EXPECT_NE(listener.endpoint().port, 0);
  EXPECT_EQ(listener.endpoint().host, "127.0.0.1");
}

TEST(SocketTest, FramesOfEverySizeArriveIntact) {
  Pair pair = Connected();
  const std::vector<int64_t> sizes = {0, 1, 4096 + 3, 1 << 20, 16 << 20};
  std::thread sender([&] {
    for (int64_t size : sizes) {
      std::vector<uint8_t> payload(static_cast<size_t>(size));
      for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 31 + size);
      FrameHeader header = TensorFrameHeader(FrameType::kActivation, static_cast<uint64_t>(size),
                                             DType::kUInt8, {size})
                               .value();
      header.sent_ns = 1000 + size;
      EXPECT_TRUE(pair.client.SendFrame(header, payload.data(), DeadlineIn(kTestDeadline)).ok());
    }
  });
  for (int64_t size : sizes) {
    SCOPED_TRACE(size);
    FrameHeader header;
    ASSERT_TRUE(pair.server.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
    EXPECT_EQ(header.batch_id, static_cast<uint64_t>(size));
    EXPECT_EQ(header.sent_ns, 1000 + size);
    ASSERT_EQ(header.payload_bytes, static_cast<uint64_t>(size));
    std::vector<uint8_t> payload(static_cast<size_t>(size));
    ASSERT_TRUE(
        pair.server.ReceiveExact(payload.data(), payload.size(), DeadlineIn(kTestDeadline)).ok());
    size_t wrong = 0;
    for (size_t i = 0; i < payload.size(); ++i) {
      wrong += payload[i] != static_cast<uint8_t>(i * 31 + size);
    }
    EXPECT_EQ(wrong, 0u);
  }
  sender.join();
}

TEST(SocketTest, DiscardSkipsAPayloadAndKeepsTheStreamInStep) {
  Pair pair = Connected();
  const std::vector<uint8_t> first(100000, 1), second(10, 2);
  ASSERT_TRUE(
      pair.client
          .SendFrame(TensorFrameHeader(FrameType::kTensor, 1, DType::kUInt8, {100000}).value(),
                     first.data(), DeadlineIn(kTestDeadline))
          .ok());
  ASSERT_TRUE(pair.client
                  .SendFrame(TensorFrameHeader(FrameType::kTensor, 2, DType::kUInt8, {10}).value(),
                             second.data(), DeadlineIn(kTestDeadline))
                  .ok());
  FrameHeader header;
  ASSERT_TRUE(pair.server.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
  ASSERT_TRUE(pair.server.Discard(header.payload_bytes, DeadlineIn(kTestDeadline)).ok());
  ASSERT_TRUE(pair.server.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
  EXPECT_EQ(header.batch_id, 2u);
  std::vector<uint8_t> payload(10);
  ASSERT_TRUE(pair.server.ReceiveExact(payload.data(), 10, DeadlineIn(kTestDeadline)).ok());
  EXPECT_EQ(payload, second);
}

TEST(SocketTest, SendFrameRejectsAnInvalidHeaderBeforeSendingAnything) {
  Pair pair = Connected();
  FrameHeader header;
  header.type = FrameType::kActivation;  // dtype none: no receiver would accept it.
  const Status status = pair.client.SendFrame(header, nullptr, DeadlineIn(kTestDeadline));
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "activation frame has dtype none")) << status.message();
}

TEST(SocketTest, JsonFrameRoundTrips) {
  Pair pair = Connected();
  const std::string json = R"({"role":"stage","index":1})";
  ASSERT_TRUE(SendJsonFrame(pair.client, FrameType::kHello, json, DeadlineIn(kTestDeadline)).ok());
  ASSERT_TRUE(SendJsonFrame(pair.client, FrameType::kControl, "", DeadlineIn(kTestDeadline)).ok());
  EXPECT_EQ(ReceiveJsonFrame(pair.server, FrameType::kHello, DeadlineIn(kTestDeadline)).value(),
            json);
  EXPECT_EQ(ReceiveJsonFrame(pair.server, FrameType::kControl, DeadlineIn(kTestDeadline)).value(),
            "");
}

TEST(SocketTest, ErrorFrameBecomesUnavailableWithThePeersReason) {
  Pair pair = Connected();
  ASSERT_TRUE(
      SendJsonFrame(pair.client, FrameType::kError, "out of memory", DeadlineIn(kTestDeadline))
          .ok());
  const Status status =
      ReceiveJsonFrame(pair.server, FrameType::kControl, DeadlineIn(kTestDeadline)).status();
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "reported an error: out of memory")) << status.message();
}

TEST(SocketTest, UnexpectedFrameTypeNamesBothTypes) {
  Pair pair = Connected();
  ASSERT_TRUE(
      SendJsonFrame(pair.client, FrameType::kControl, "{}", DeadlineIn(kTestDeadline)).ok());
  const Status status =
      ReceiveJsonFrame(pair.server, FrameType::kHello, DeadlineIn(kTestDeadline)).status();
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "expected a hello frame, got a control frame"))
      << status.message();
}

TEST(SocketTest, WrongMagicIsInvalidArgumentNamingThePeer) {
  Pair pair = Connected();
  std::array<uint8_t, kFrameHeaderBytes> bytes = EncodedTensorHeader({4});
  bytes[0] = 'X';
  SendRaw(pair.client, bytes.data(), bytes.size());
  const Status status = ReceiveHeaderError(pair.server);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(
      Contains(status.message(), "peer " + pair.server.peer() + ": frame header: bad magic"))
      << status.message();
}

TEST(SocketTest, WrongVersionIsInvalidArgument) {
  Pair pair = Connected();
  std::array<uint8_t, kFrameHeaderBytes> bytes = EncodedTensorHeader({4});
  bytes[4] = 2;
  SendRaw(pair.client, bytes.data(), bytes.size());
  const Status status = ReceiveHeaderError(pair.server);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "version 2 not supported")) << status.message();
}

TEST(SocketTest, PayloadOverTheLimitIsRejectedBeforeReadingIt) {
  Pair pair = Connected();
  const std::array<uint8_t, kFrameHeaderBytes> bytes = EncodedTensorHeader({1 << 20});
  SendRaw(pair.client, bytes.data(), bytes.size());
  FrameHeader header;
  FrameLimits limits;
  limits.max_payload_bytes = 4096;
  const Status status = pair.server.ReceiveHeader(&header, limits, DeadlineIn(kTestDeadline));
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "payload 1048576 bytes exceeds limit 4096"))
      << status.message();
}

TEST(SocketTest, PeerClosingBetweenFramesIsACleanClose) {
  Pair pair = Connected();
  pair.client.Close();
  const Status status = ReceiveHeaderError(pair.server);
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_EQ(status.message(), "peer " + pair.server.peer() + " closed the connection");
}

TEST(SocketTest, TruncatedHeaderIsAMidFrameClose) {
  Pair pair = Connected();
  const std::array<uint8_t, kFrameHeaderBytes> bytes = EncodedTensorHeader({4});
  SendRaw(pair.client, bytes.data(), 50);
  pair.client.Close();
  const Status status = ReceiveHeaderError(pair.server);
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "closed the connection mid-frame (got 50 of 128 bytes"))
      << status.message();
}

TEST(SocketTest, PeerDisconnectingMidPayloadIsUnavailable) {
  Pair pair = Connected();
  const std::array<uint8_t, kFrameHeaderBytes> bytes = EncodedTensorHeader({1000});
  SendRaw(pair.client, bytes.data(), bytes.size());
  const std::vector<uint8_t> partial(300, 7);
  SendRaw(pair.client, partial.data(), partial.size());
  pair.client.Close();
  FrameHeader header;
  ASSERT_TRUE(pair.server.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
  std::vector<uint8_t> payload(header.payload_bytes);
  const Status status =
      pair.server.ReceiveExact(payload.data(), payload.size(), DeadlineIn(kTestDeadline));
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "closed the connection mid-frame (got 300 of 1000 bytes"))
      << status.message();
}

TEST(SocketTest, SendingToAClosedPeerIsUnavailableNotSigpipe) {
  Pair pair = Connected();
  pair.server.Close();
  const std::vector<uint8_t> payload(16 << 20);
  const FrameHeader header =
      TensorFrameHeader(FrameType::kActivation, 0, DType::kUInt8, {16 << 20}).value();
  Status status;
  // The first send may still fit the kernel's buffers; the peer's reset stops a later one.
  for (int i = 0; i < 10 && status.ok(); ++i) {
    status = pair.client.SendFrame(header, payload.data(), DeadlineIn(kTestDeadline));
  }
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "closed the connection")) << status.message();
}

TEST(SocketTest, ReceiveHeaderTimesOutAtItsDeadline) {
  Pair pair = Connected();
  const auto start = Clock::now();
  FrameHeader header;
  const Status status =
      pair.server.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(milliseconds(200)));
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_GE(Clock::now() - start, milliseconds(150)) << "gave up before its deadline";
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "timed out after")) << status.message();
  EXPECT_TRUE(Contains(status.message(), "waiting for the frame header")) << status.message();
}

TEST(SocketTest, HalfAHeaderThenSilenceTimesOutAtTheDeadlineNamingTheBytesReceived) {
  Pair pair = Connected();
  const std::array<uint8_t, kFrameHeaderBytes> header = EncodedTensorHeader({4});
  SendRaw(pair.client, header.data(), kFrameHeaderBytes / 2);  // And then nothing.
  const auto start = Clock::now();
  FrameHeader received;
  const Status status =
      pair.server.ReceiveHeader(&received, FrameLimits{}, DeadlineIn(milliseconds(200)));
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_GE(Clock::now() - start, milliseconds(150)) << "gave up before its deadline";
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "timed out after")) << status.message();
  EXPECT_TRUE(Contains(status.message(), "(got 64 of 128 bytes)")) << status.message();
}

TEST(SocketTest, ReceiveExactTimesOutMidPayload) {
  Pair pair = Connected();
  const std::vector<uint8_t> partial(10, 1);
  SendRaw(pair.client, partial.data(), partial.size());
  std::vector<uint8_t> payload(100);
  const auto start = Clock::now();
  const Status status =
      pair.server.ReceiveExact(payload.data(), payload.size(), DeadlineIn(milliseconds(200)));
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_GE(Clock::now() - start, milliseconds(150)) << "gave up before its deadline";
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "(got 10 of 100 bytes)")) << status.message();
}

TEST(SocketTest, SendFrameTimesOutWhenThePeerDoesNotRead) {
  Pair pair = Connected();
  // Far beyond both sockets' buffers (4 MiB each, doubled by Linux), and never read.
  const std::vector<uint8_t> payload(64 << 20);
  const FrameHeader header =
      TensorFrameHeader(FrameType::kActivation, 0, DType::kUInt8, {64 << 20}).value();
  const auto start = Clock::now();
  const Status status =
      pair.client.SendFrame(header, payload.data(), DeadlineIn(milliseconds(300)));
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_GE(Clock::now() - start, milliseconds(150)) << "gave up before its deadline";
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "timed out after")) << status.message();
}

TEST(SocketTest, ShutdownWakesABlockedReceiveHeader) {
  Pair pair = Connected();
  Status status;
  std::thread receiver([&] { status = ReceiveHeaderError(pair.server); });
  std::this_thread::sleep_for(milliseconds(100));
  pair.server.Shutdown();
  receiver.join();
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "was shut down here")) << status.message();
}

TEST(ListenerTest, AcceptTimesOutAtItsDeadline) {
  Listener listener = Listener::Listen({"127.0.0.1", 0}).value();
  const auto start = Clock::now();
  const Status status = listener.Accept(DeadlineIn(milliseconds(200))).status();
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_GE(Clock::now() - start, milliseconds(150)) << "gave up before its deadline";
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "timed out after")) << status.message();
}

TEST(ListenerTest, ShutdownWakesABlockedAccept) {
  Listener listener = Listener::Listen({"127.0.0.1", 0}).value();
  Status status;
  std::thread acceptor([&] { status = listener.Accept(DeadlineIn(kTestDeadline)).status(); });
  std::this_thread::sleep_for(milliseconds(100));
  listener.Shutdown();
  acceptor.join();
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "was shut down")) << status.message();
}

TEST(ListenerTest, AcceptAfterShutdownFailsAtOnce) {
  Listener listener = Listener::Listen({"127.0.0.1", 0}).value();
  listener.Shutdown();
  const Status status = listener.Accept(DeadlineIn(kTestDeadline)).status();
  EXPECT_TRUE(Contains(status.message(), "was shut down")) << status.message();
}

// A port that was free a moment ago: bound by a listener that is gone.
uint16_t RecentlyFreedPort() { return Listener::Listen({"127.0.0.1", 0}).value().endpoint().port; }

TEST(ConnectTest, RefusedUntilTheDeadlineIsUnavailable) {
  const uint16_t port = RecentlyFreedPort();
  const auto start = Clock::now();
  const Status status = ConnectTcp({"127.0.0.1", port}, DeadlineIn(milliseconds(200))).status();
  EXPECT_LT(Clock::now() - start, kGenerousBound);
  EXPECT_GE(Clock::now() - start, milliseconds(150)) << "gave up before its deadline";
  EXPECT_EQ(status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(status.message(), "connection refused")) << status.message();
}

TEST(ConnectTest, RetriesUntilTheListenerAppears) {
  const uint16_t port = RecentlyFreedPort();
  Result<Socket> client = Status::Unavailable("not run");
  std::thread connector([&] {
    client = ConnectTcp({"127.0.0.1", port}, DeadlineIn(kTestDeadline));
  });
  std::this_thread::sleep_for(milliseconds(150));
  Listener listener = Listener::Listen({"127.0.0.1", port}).value();
  Result<Socket> server = listener.Accept(DeadlineIn(kTestDeadline));
  connector.join();
  ASSERT_TRUE(client.ok()) << client.status().message();
  ASSERT_TRUE(server.ok()) << server.status().message();
}

}  // namespace
}  // namespace paretopipe
