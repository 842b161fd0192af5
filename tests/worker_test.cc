// The worker daemon against misbehaving peers: whatever arrives on its port,
// it closes that one connection, logs why, and goes on serving the next
// orchestrator. And its "profile" operation: a zoo model's blocks timed on
// the worker itself, every malformed request refused naming its field.
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
#include <tuple>
#include <vector>

#include "analysis/device_profile.h"
#include "control/protocol.h"
#include "control/worker_client.h"
#include "model/cuts.h"
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

class WorkerProfileTest : public WorkerConnectionTest {
 protected:
  // A control session of raw frames, for requests WorkerClient never sends.
  Socket OpenControlSession() {
    Socket control = Connect();
    const nlohmann::json hello = {{"role", kRoleControl}, {"protocol", kProtocolVersion}};
    EXPECT_TRUE(
        SendJsonFrame(control, FrameType::kHello, hello.dump(), DeadlineIn(kTestDeadline)).ok());
    return control;
  }

  // Sends `request` on `control` and returns the worker's reply.
  static nlohmann::json Ask(Socket& control, const nlohmann::json& request) {
    EXPECT_TRUE(
        SendJsonFrame(control, FrameType::kControl, request.dump(), DeadlineIn(kTestDeadline))
            .ok());
    Result<std::string> reply =
        ReceiveJsonReply(control, FrameType::kControl, DeadlineIn(kTestDeadline), kTestDeadline);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? nlohmann::json::parse(*reply) : nlohmann::json::object();
  }
};

TEST_F(WorkerProfileTest, ProfilesEveryBlockOfAZooModelOnItsOwnDeviceAndThreads) {
  const ModelSpec model{"resnet18", 10, 3, ""};
  Result<ModelAnalysis> analysis = AnalyzeModel(model, 32);
  ASSERT_TRUE(analysis.ok()) << analysis.status().message();
  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
  ASSERT_TRUE(client.ok()) << client.status().message();
  Result<WorkerInfo> info = (*client)->Info();
  ASSERT_TRUE(info.ok()) << info.status().message();

  Result<std::string> text = (*client)->Profile(model, /*batch=*/2, /*input_side_px=*/32,
                                                /*repeat=*/2, /*warmup=*/1);

  ASSERT_TRUE(text.ok()) << text.status().message();
  Result<DeviceProfile> profile = ParseDeviceProfile(*text, "reply");
  ASSERT_TRUE(profile.ok()) << profile.status().message();
  EXPECT_EQ(profile->model, "resnet18");
  EXPECT_EQ(profile->batch, 2);
  EXPECT_EQ(profile->input_shape, (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_EQ(profile->device, "cpu");
  EXPECT_EQ(profile->threads, info->threads);
  ASSERT_EQ(profile->block_compute_ms.size(), analysis->blocks.size());
  for (size_t k = 0; k < analysis->blocks.size(); ++k) {
    const BlockAnalysis& block = analysis->blocks[k];
    EXPECT_EQ(profile->block_names[k], block.name);
    EXPECT_GT(profile->block_compute_ms[k], 0) << block.name;
    EXPECT_EQ(profile->block_output_bytes[k], 2 * block.output_bytes) << block.name;
  }
}

TEST_F(WorkerProfileTest, MalformedRequestsAreRefusedNamingTheFieldAndTheSessionGoesOn) {
  const nlohmann::json valid = {
      {"op", "profile"}, {"model", {{"name", "resnet18"}, {"num_classes", 10}, {"seed", 0}}},
      {"batch", 1},      {"input_side_px", 32},
      {"repeat", 1},     {"warmup", 0}};
  // Each a JSON merge patch of `valid` (null removes a field), and what the error says.
  const std::pair<const char*, const char*> cases[] = {
      {R"({"batch": 0})", "profile: batch must be an integer in 1..4096, got 0"},
      {R"({"batch": 4097})", "profile: batch must be an integer in 1..4096, got 4097"},
      {R"({"batch": 2.0})", "profile: batch must be an integer in 1..4096, got 2.0"},
      {R"({"repeat": "x"})", "profile: repeat must be an integer in 1..200, got \"x\""},
      {R"({"repeat": 201})", "profile: repeat must be an integer in 1..200, got 201"},
      {R"({"warmup": -1})", "profile: warmup must be an integer in 0..50, got -1"},
      {R"({"warmup": null})", "profile: warmup is missing"},
      {R"({"input_side_px": 8})",
       "profile: input_side_px must be 0 (the model's nominal size) or in 16..1024, got 8"},
      {R"({"input_side_px": 4096})", "profile: input_side_px must be an integer in 0..1024"},
      {R"({"input_side_px": 16})", "profile: input_side_px 16 is below resnet18's smallest"},
      {R"({"model": null})", "profile: model is missing"},
      {R"({"model": "resnet18"})", "profile: model is a JSON string, not an object"},
      {R"({"model": {"name": "nosuchnet"}})", "profile: model: name: unknown model 'nosuchnet'"},
      {R"({"model": {"num_classes": 0}})", "profile: model: num_classes must be an integer in 1.."},
      {R"({"model": {"seed": -1}})", "profile: model: seed must be an integer in 0.."},
      {R"({"model": {"name": "/home/pi/net.pt"}})",
       "profile: model: name '/home/pi/net.pt' is a TorchScript file, which this worker does not "
       "have"},
  };
  Socket control = OpenControlSession();

  for (const auto& [patch, error] : cases) {
    SCOPED_TRACE(patch);
    nlohmann::json request = valid;
    request.merge_patch(nlohmann::json::parse(patch));

    const nlohmann::json reply = Ask(control, request);

    EXPECT_EQ(reply.value("ok", true), false) << reply.dump();
    EXPECT_NE(reply.value("error", "").find(error), std::string::npos) << reply.dump();
  }
  EXPECT_EQ(Ask(control, {{"op", "info"}}).value("ok", false), true);
}

TEST_F(WorkerProfileTest, ClientProfileOfATorchScriptFileFailsNamingTheWorker) {
  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
  ASSERT_TRUE(client.ok()) << client.status().message();

  Result<std::string> profile = (*client)->Profile({"/home/pi/net.pt", 10, 0, ""}, 1, 32, 2, 1);

  ASSERT_FALSE(profile.ok());
  EXPECT_NE(profile.status().message().find("worker " + worker_.endpoint().ToString() +
                                            ": profile: model: name '/home/pi/net.pt' is a "
                                            "TorchScript file"),
            std::string::npos)
      << profile.status().message();
  Result<WorkerInfo> info = (*client)->Info();
  EXPECT_TRUE(info.ok()) << info.status().message();
}

// The "probe_backend" operation: a run of links only, for `paretopipe
// linkprobe --backend`.
class WorkerProbeBackendTest : public WorkerProfileTest {};

TEST_F(WorkerProbeBackendTest, MalformedRequestsAreRefusedNamingTheFieldAndTheSessionGoesOn) {
  const nlohmann::json begin = {
      {"op", "probe_backend"}, {"step", "begin"}, {"backend", "tcp"},
      {"run_id", 7},           {"stage", 0},      {"self", worker_.endpoint().ToString()},
      {"peer", "127.0.0.1:1"}};
  const nlohmann::json time = {{"op", "probe_backend"},
                               {"step", "time"},
                               {"sizes", {64, 1024}},
                               {"repeats", 2},
                               {"burst", 4}};
  // Each a JSON merge patch of `begin` or `time` (null removes a field), and what the error says.
  const std::tuple<const nlohmann::json*, const char*, const char*> cases[] = {
      {&begin, R"({"stage": 2})", "probe_backend: stage must be an integer in 0..1, got 2"},
      {&begin, R"({"run_id": 0})", "probe_backend: run_id must be an integer in 1.."},
      {&begin, R"({"run_id": 1.5})", "probe_backend: run_id must be an integer in 1.."},
      {&begin, R"({"backend": "nccl"})", "probe_backend: backend: unknown backend 'nccl'"},
      {&begin, R"({"self": null})", "probe_backend: self must be a string"},
      {&begin, R"({"peer": 5})", "probe_backend: peer must be a string"},
      {&begin, R"({"step": "go"})", "probe_backend: step must be begin, echo or time, got \"go\""},
      {&time, R"({"step": "echo", "messages": 1})",
       "probe_backend: echo: no link probe begun as stage 1"},
      {&time, "{}", "probe_backend: time: no link probe begun as stage 0"},
  };
  // After a valid begin as stage 0 (it opens nothing until connect).
  const std::pair<const char*, const char*> begun_cases[] = {
      {R"({"sizes": []})", "probe_backend: sizes must be an array of 1 to 32 sizes"},
      {R"({"sizes": [0]})", "probe_backend: sizes: 0 is not an integer in 1..67108864"},
      {R"({"sizes": [67108865]})", "probe_backend: sizes: 67108865 is not an integer in 1.."},
      {R"({"repeats": 51})", "probe_backend: repeats must be an integer in 1..50, got 51"},
      {R"({"burst": 1})", "probe_backend: burst must be an integer in 2..1000, got 1"},
      {R"({"burst": null})", "probe_backend: burst must be an integer in 2..1000, got null"},
  };
  Socket control = OpenControlSession();

  for (const auto& [valid, patch, error] : cases) {
    SCOPED_TRACE(patch);
    nlohmann::json request = *valid;
    request.merge_patch(nlohmann::json::parse(patch));
    const nlohmann::json reply = Ask(control, request);
    EXPECT_EQ(reply.value("ok", true), false) << reply.dump();
    EXPECT_NE(reply.value("error", "").find(error), std::string::npos) << reply.dump();
  }
  ASSERT_EQ(Ask(control, begin).value("ok", false), true);
  for (const auto& [patch, error] : begun_cases) {
    SCOPED_TRACE(patch);
    nlohmann::json request = time;
    request.merge_patch(nlohmann::json::parse(patch));
    const nlohmann::json reply = Ask(control, request);
    EXPECT_EQ(reply.value("ok", true), false) << reply.dump();
    EXPECT_NE(reply.value("error", "").find(error), std::string::npos) << reply.dump();
  }
  EXPECT_EQ(Ask(control, {{"op", "finish"}}).value("ok", false), true);
  EXPECT_EQ(Ask(control, {{"op", "info"}}).value("ok", false), true);
}

TEST_F(WorkerProbeBackendTest, TimesEverySizeThroughTheBackendsLinksWhileThePeerEchoesCredits) {
  ServingWorker peer{Options()};
  ASSERT_TRUE(peer.ok());
  Result<std::unique_ptr<WorkerClient>> a =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
  Result<std::unique_ptr<WorkerClient>> b = WorkerClient::Connect(peer.endpoint(), kTestDeadline);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::vector<int64_t> sizes = {64, 4096, 262144};
  const int repeats = 3, burst = 5;

  ASSERT_TRUE((*a)->BeginBackendProbe("tcp", 11, 0, worker_.endpoint().ToString(),
                                      peer.endpoint().ToString())
                  .ok());
  ASSERT_TRUE((*b)->BeginBackendProbe("tcp", 11, 1, peer.endpoint().ToString(),
                                      worker_.endpoint().ToString())
                  .ok());
  ASSERT_TRUE((*a)->OpenLinks("").ok());
  ASSERT_TRUE((*b)->OpenLinks("").ok());
  ASSERT_TRUE((*b)->StartBackendEcho(LinkProbeMessages(sizes.size(), repeats, burst)).ok());
  Result<MessageSizeProbe> probe = (*a)->ProbeBackendSizes(sizes, repeats, burst);
  const Status echoed = (*b)->FinishBackendEcho();

  ASSERT_TRUE(probe.ok()) << probe.status().message();
  EXPECT_TRUE(echoed.ok()) << echoed.message();
  EXPECT_EQ(probe->bytes,
            (std::vector<int64_t>{64, 64, 64, 4096, 4096, 4096, 262144, 262144, 262144}));
  ASSERT_EQ(probe->rtt_ms.size(), probe->bytes.size());
  for (double ms : probe->rtt_ms) EXPECT_GT(ms, 0);
  EXPECT_GE(probe->burst_ms_per_message, 0);
  EXPECT_TRUE((*a)->EndRun().ok());
  EXPECT_TRUE((*b)->EndRun().ok());
}

}  // namespace
}  // namespace paretopipe
