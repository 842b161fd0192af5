// Bad input from the network, played on real loopback sockets against a live
// in-process Worker: half a header and then silence, frames too large or
// corrupt on every role a connection can take, control messages naming
// blocks the model does not have or weights the stage does not hold, and
// activations of the wrong shape or dtype. Each time the worker drops (or
// fails) what was bad, says why, and goes on serving. Every wait is bounded.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/protocol.h"
#include "control/worker.h"
#include "control/worker_client.h"
#include "model/cuts.h"
#include "peer_util.h"
#include "sweep/pipeline_run.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using nlohmann::json;
using testing::ClosedByWorkerWithin;
using testing::LogCapture;
using testing::SendRaw;
using testing::ServingWorker;

// Every wait ends within a few seconds: a worker that keeps a bad connection
// open, or a stage that waits for the rest of a bad frame, fails the test
// instead of hanging it.
constexpr std::chrono::milliseconds kTestDeadline(3000);
// Short, so that a peer that stalls in its hello is dropped within the test.
constexpr std::chrono::milliseconds kHelloTimeout(500);

// A small run: resnet18 at 32 px, batch 2, split after block 4.
constexpr const char* kModel = "resnet18";
constexpr int64_t kNumClasses = 10;
constexpr int64_t kInputSidePx = 32;
constexpr int64_t kBatchSize = 2;
constexpr int kCut = 4;
constexpr int64_t kRunId = 77;

using HeaderBytes = std::array<uint8_t, kFrameHeaderBytes>;

HeaderBytes Encoded(const FrameHeader& header) {
  HeaderBytes bytes{};
  EncodeFrameHeader(header, bytes.data());
  return bytes;
}

// A valid activation frame header, for corrupting.
HeaderBytes ActivationHeader(DType dtype, const std::vector<int64_t>& shape) {
  return Encoded(TensorFrameHeader(FrameType::kActivation, 0, dtype, shape).value());
}

// A frame no receiver may accept, and words of the error it must cause.
struct BadFrame {
  std::string name;
  HeaderBytes header;
  std::string reason;
};

void PrintTo(const BadFrame& f, std::ostream* os) { *os << f.name; }

// The malformed frames every role must refuse, whatever it expects.
std::vector<BadFrame> MalformedFrames() {
  std::vector<BadFrame> frames;
  // 1 GiB + 4 bytes: beyond the activation limit (1 GiB) and far beyond the
  // control limit (16 MiB). Nothing but the header is ever sent.
  frames.push_back(
      {"Oversized", ActivationHeader(DType::kFloat32, {(int64_t{1} << 28) + 1}), "exceeds limit"});
  BadFrame magic{"BadMagic", ActivationHeader(DType::kFloat32, {2, 3}), "bad magic"};
  magic.header[0] ^= 0xff;
  frames.push_back(magic);
  // payload_bytes, u64 at offset 16 (docs/wire-format.md): 25 for 2 x 3 float32.
  BadFrame payload{"DimsTimesDTypeIsNotThePayload", ActivationHeader(DType::kFloat32, {2, 3}),
                   "is 24 bytes but payload is 25 bytes"};
  payload.header[16] = 25;
  frames.push_back(payload);
  // rank, u8 at offset 25.
  BadFrame rank{"Rank9", ActivationHeader(DType::kFloat32, {2, 3}), "rank 9 outside 0..8"};
  rank.header[25] = 9;
  frames.push_back(rank);
  return frames;
}

std::string FrameName(const ::testing::TestParamInfo<BadFrame>& info) { return info.param.name; }

class BadInputTest : public ::testing::Test {
 protected:
  static WorkerOptions Options() {
    WorkerOptions o;
    o.hello_timeout = kHelloTimeout;
    o.link_timeout = kTestDeadline;
    return o;
  }

  Socket Connect() {
    Result<Socket> socket = ConnectTcp(worker_.endpoint(), DeadlineIn(kTestDeadline));
    EXPECT_TRUE(socket.ok()) << socket.status().message();
    return socket.ok() ? std::move(socket).value() : Socket();
  }

  // A raw connection that has said hello as `role` (for run kRunId).
  Socket ConnectAs(const std::string& role) {
    Socket socket = Connect();
    json hello{{"role", role}, {"protocol", kProtocolVersion}};
    if (role == kRoleData || role == kRoleCredit) hello["run_id"] = kRunId;
    EXPECT_TRUE(
        SendJsonFrame(socket, FrameType::kHello, hello.dump(), DeadlineIn(kTestDeadline)).ok());
    return socket;
  }

  std::unique_ptr<WorkerClient> Orchestrator() {
    Result<std::unique_ptr<WorkerClient>> client =
        WorkerClient::Connect(worker_.endpoint(), kTestDeadline);
    EXPECT_TRUE(client.ok()) << client.status().message();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  // An orchestrator can connect and ask for Info(): the worker still serves.
  void ExpectStillServing() {
    std::unique_ptr<WorkerClient> client = Orchestrator();
    ASSERT_NE(client, nullptr);
    Result<WorkerInfo> info = client->Info();
    EXPECT_TRUE(info.ok()) << info.status().message();
  }

  void ExpectLogged(const std::string& reason) {
    EXPECT_TRUE(log_.sink().WaitFor(reason, kTestDeadline))
        << "no log message contains '" << reason << "'; the log:\n"
        << log_.sink().All();
  }

  // Stage `stage` (0 or 1) of the small run split at kCut, as the
  // orchestrator would configure it.
  StageConfig RunConfig(int stage) {
    const ModelSpec spec{kModel, kNumClasses, 5, ""};
    Result<ModelAnalysis> analysis = AnalyzeModel(spec, kInputSidePx);
    EXPECT_TRUE(analysis.ok()) << analysis.status().message();
    StageConfig c;
    c.run_id = kRunId;
    c.model = kModel;
    c.num_classes = kNumClasses;
    c.seed = spec.seed;
    c.stage = stage;
    c.stages = 2;
    c.block_begin = stage == 0 ? 0 : kCut;
    c.block_end = stage == 0 ? kCut : -1;
    if (analysis.ok()) c.input_shape = StageInputShapes(*analysis, kBatchSize, {kCut})[stage];
    c.batches = 2;
    c.window = 2;
    c.self = worker_.endpoint().ToString();
    c.stall_timeout = kTestDeadline;
    return c;
  }

  LogCapture log_;  // Before the worker: installed before it starts, removed after it stops.
  ServingWorker worker_{Options()};
};

TEST_F(BadInputTest, HalfAHelloHeaderThenSilenceIsDroppedAtTheHelloTimeoutWhileOthersAreServed) {
  Socket staller = Connect();
  const HeaderBytes hello = Encoded(TextFrameHeader(FrameType::kHello, 20).value());
  const auto start = Clock::now();

  SendRaw(staller, hello.data(), kFrameHeaderBytes / 2);  // And then nothing.

  ExpectStillServing();  // Meanwhile.
  EXPECT_TRUE(ClosedByWorkerWithin(staller, kTestDeadline)) << "the worker kept the staller";
  EXPECT_GE(Clock::now() - start, kHelloTimeout - std::chrono::milliseconds(100))
      << "dropped before the hello timeout";
  ExpectLogged("timed out");
  ExpectLogged("(got 64 of 128 bytes)");
  ExpectStillServing();  // Afterwards.
}

// A malformed frame as the first frame (instead of a hello), as an
// orchestrator's control message, and inside a link probe: the connection
// is closed, the reason logged, and the worker serves the next orchestrator.
struct RoleAndFrame {
  std::string role;  // "" for the first frame, before any hello.
  BadFrame frame;
};

void PrintTo(const RoleAndFrame& p, std::ostream* os) {
  *os << (p.role.empty() ? "hello" : p.role) << ", " << p.frame.name;
}

class BadFrameOnAConnectionTest : public BadInputTest,
                                  public ::testing::WithParamInterface<RoleAndFrame> {};

TEST_P(BadFrameOnAConnectionTest, ClosesTheConnectionLogsWhyAndServesOn) {
  const RoleAndFrame& p = GetParam();
  Socket peer = p.role.empty() ? Connect() : ConnectAs(p.role);

  SendRaw(peer, p.frame.header.data(), p.frame.header.size());

  EXPECT_TRUE(ClosedByWorkerWithin(peer, kTestDeadline)) << "the worker kept the connection";
  ExpectLogged(p.frame.reason);
  ExpectStillServing();
}

std::vector<RoleAndFrame> ConnectionCases() {
  std::vector<RoleAndFrame> cases;
  for (const std::string role : {"", kRoleControl, kRoleProbe}) {
    for (const BadFrame& f : MalformedFrames()) cases.push_back({role, f});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(EveryRole, BadFrameOnAConnectionTest,
                         ::testing::ValuesIn(ConnectionCases()),
                         [](const ::testing::TestParamInfo<RoleAndFrame>& info) {
                           const std::string& role = info.param.role;
                           return (role.empty() ? std::string("Hello") : role) + "_" +
                                  info.param.frame.name;
                         });

// The data role: this worker is the sink of a two-stage run, the test its
// previous stage. A bad activation fails the pass with the frame's problem
// named, and the orchestrator's session goes on.
class BadActivationTest : public BadInputTest, public ::testing::WithParamInterface<BadFrame> {};

TEST_P(BadActivationTest, FailsThePassNamingTheProblemAndTheSessionGoesOn) {
  // The sink returns credits to the source: a listener nobody accepts on
  // takes them (a few bytes, queued by the kernel).
  Result<Listener> source = Listener::Listen({"127.0.0.1", 0});
  ASSERT_TRUE(source.ok()) << source.status().message();
  StageConfig config = RunConfig(1);
  config.source = source->endpoint().ToString();
  std::unique_ptr<WorkerClient> orchestrator = Orchestrator();
  ASSERT_NE(orchestrator, nullptr);
  ASSERT_TRUE(orchestrator->Configure(config, "").ok());
  ASSERT_TRUE(orchestrator->OpenLinks("").ok());
  Socket previous = ConnectAs(kRoleData);
  ASSERT_TRUE(orchestrator->StartPass(0).ok());

  SendRaw(previous, GetParam().header.data(), GetParam().header.size());
  Result<StageTrace> pass = orchestrator->FinishPass(nullptr, DeadlineIn(kTestDeadline * 2));

  ASSERT_FALSE(pass.ok()) << "a bad activation passed";
  EXPECT_NE(pass.status().message().find(GetParam().reason), std::string::npos)
      << pass.status().message();
  EXPECT_NE(pass.status().message().find("stage 2 batch 0"), std::string::npos)
      << pass.status().message();
  Result<WorkerInfo> info = orchestrator->Info();
  EXPECT_TRUE(info.ok()) << "the session ended: " << info.status().message();
}

std::vector<BadFrame> BadActivations() {
  std::vector<BadFrame> frames = MalformedFrames();
  // Valid frames, but not what this stage takes: resnet18's activation
  // after block 4 at 32 px is float32 [2, 128, 4, 4].
  frames.push_back({"WrongShape", ActivationHeader(DType::kFloat32, {2, 128, 4, 5}),
                    "expected activation of batch 0 float32 [2, 128, 4, 4], got activation frame "
                    "of batch 0 dtype float32 shape [2, 128, 4, 5]"});
  frames.push_back({"WrongDType", ActivationHeader(DType::kFloat64, {2, 128, 4, 4}),
                    "got activation frame of batch 0 dtype float64 shape [2, 128, 4, 4]"});
  frames.push_back(
      {"WrongRank", ActivationHeader(DType::kFloat32, {2, 4096}), "dtype float32 shape [2, 4096]"});
  return frames;
}

INSTANTIATE_TEST_SUITE_P(Sink, BadActivationTest, ::testing::ValuesIn(BadActivations()), FrameName);

// The credit role: this worker is the source of a two-stage run, the test
// its sink. A bad credit fails the pass naming the credit link.
class BadCreditTest : public BadInputTest, public ::testing::WithParamInterface<BadFrame> {};

TEST_P(BadCreditTest, FailsThePassNamingTheCreditLinkAndTheSessionGoesOn) {
  // The source sends its activations on: a listener nobody accepts on takes
  // the first few (tens of KB, queued by the kernel).
  Result<Listener> next = Listener::Listen({"127.0.0.1", 0});
  ASSERT_TRUE(next.ok()) << next.status().message();
  StageConfig config = RunConfig(0);
  config.next = next->endpoint().ToString();
  config.source = config.self;
  std::unique_ptr<WorkerClient> orchestrator = Orchestrator();
  ASSERT_NE(orchestrator, nullptr);
  ASSERT_TRUE(orchestrator->Configure(config, "").ok());
  ASSERT_TRUE(orchestrator->OpenLinks("").ok());
  Socket sink = ConnectAs(kRoleCredit);
  ASSERT_TRUE(orchestrator->StartPass(0).ok());

  SendRaw(sink, GetParam().header.data(), GetParam().header.size());
  Result<StageTrace> pass = orchestrator->FinishPass(nullptr, DeadlineIn(kTestDeadline * 2));

  ASSERT_FALSE(pass.ok()) << "a bad credit passed";
  EXPECT_NE(pass.status().message().find(GetParam().reason), std::string::npos)
      << pass.status().message();
  EXPECT_NE(pass.status().message().find("credits from the sink"), std::string::npos)
      << pass.status().message();
  Result<WorkerInfo> info = orchestrator->Info();
  EXPECT_TRUE(info.ok()) << "the session ended: " << info.status().message();
}

std::vector<BadFrame> BadCredits() {
  std::vector<BadFrame> frames = MalformedFrames();
  frames.push_back({"ActivationInsteadOfACredit", ActivationHeader(DType::kFloat32, {2, 3}),
                    "expected the credit of batch 0, got a activation frame"});
  return frames;
}

INSTANTIATE_TEST_SUITE_P(Source, BadCreditTest, ::testing::ValuesIn(BadCredits()), FrameName);

// Configurations naming blocks resnet18 (blocks 0..N-1) does not have: the
// worker refuses each with the range in its error, and the session goes on.
struct BadRange {
  std::string name;
  int64_t begin, end;
  std::string reason;
};

void PrintTo(const BadRange& r, std::ostream* os) { *os << r.name; }

class BadBlockRangeTest : public BadInputTest, public ::testing::WithParamInterface<BadRange> {};

TEST_P(BadBlockRangeTest, IsRefusedNamingTheRangeAndTheSessionGoesOn) {
  const BadRange& r = GetParam();
  StageConfig config = RunConfig(1);
  config.block_begin = r.begin;
  config.block_end = r.end;
  std::unique_ptr<WorkerClient> orchestrator = Orchestrator();
  ASSERT_NE(orchestrator, nullptr);

  const Status configured = orchestrator->Configure(config, "");

  ASSERT_FALSE(configured.ok()) << "block range [" << r.begin << ", " << r.end << ") accepted";
  EXPECT_EQ(configured.code(), Status::Code::kInvalidArgument) << configured.message();
  EXPECT_NE(configured.message().find(r.reason), std::string::npos) << configured.message();
  Result<WorkerInfo> info = orchestrator->Info();
  EXPECT_TRUE(info.ok()) << "the session ended: " << info.status().message();
  orchestrator.reset();
  ExpectStillServing();  // By the next orchestrator.
}

INSTANTIATE_TEST_SUITE_P(
    Resnet18, BadBlockRangeTest,
    ::testing::Values(
        BadRange{"BeyondTheLastBlock", 100, 200, "block range [100, 200) out of range: resnet18"},
        BadRange{"EndPastTheLastBlock", 0, 999, "block range [0, 999) out of range: resnet18"},
        BadRange{"Empty", 3, 3, "block range [3, 3) is empty"},
        BadRange{"Reversed", 5, 2, "block range [5, 2) is empty"},
        BadRange{"NegativeBegin", -1, 2, "block_begin must be an integer in 0.."}),
    [](const ::testing::TestParamInfo<BadRange>& info) { return info.param.name; });

TEST_F(BadInputTest, WeightsUploadOfAKeyOutsideTheStagesBlocksIsRefused) {
  StageConfig config = RunConfig(0);  // Blocks [0, 4): resnet18's fc is the last block's.
  config.weights_digest = std::string(64, 'a');  // No worker has it: it asks for the tensors.
  Socket control = ConnectAs(kRoleControl);
  auto call = [&](const json& request) -> json {
    EXPECT_TRUE(
        SendJsonFrame(control, FrameType::kControl, request.dump(), DeadlineIn(kTestDeadline))
            .ok());
    Result<std::string> reply =
        ReceiveJsonFrame(control, FrameType::kControl, DeadlineIn(kTestDeadline));
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? json::parse(*reply) : json::object();
  };

  const json asked = call({{"op", "configure"}, {"config", ToJson(config)}});
  const json refused = call({{"op", "weights"}, {"keys", {"fc.weight"}}});

  EXPECT_TRUE(asked.value("need_weights", false)) << asked.dump();
  EXPECT_FALSE(refused.value("ok", true)) << refused.dump();
  EXPECT_NE(
      refused.value("error", "")
          .find("weights upload: key 'fc.weight' is not a tensor of blocks [0, 4) of resnet18"),
      std::string::npos)
      << refused.dump();
  EXPECT_TRUE(call({{"op", "info"}}).value("ok", false)) << "the session ended";
}

TEST_F(BadInputTest, DataHelloWithAFloatRunIdIsClosedNamingIt) {
  Socket peer = Connect();

  ASSERT_TRUE(SendJsonFrame(peer, FrameType::kHello, R"({"role": "data", "run_id": 1e300})",
                            DeadlineIn(kTestDeadline))
                  .ok());

  EXPECT_TRUE(ClosedByWorkerWithin(peer, kTestDeadline)) << "the worker kept the connection";
  ExpectLogged("hello run_id must be an integer, got 1e+300");
  ExpectStillServing();
}

TEST_F(BadInputTest, ControlMessageWithAFloatWhereAnIntegerBelongsIsRefusedByName) {
  json config = ToJson(RunConfig(1));
  config["stage"] = 1e300;  // get<int>() would cast it with undefined behaviour.
  Socket session = ConnectAs(kRoleControl);

  ASSERT_TRUE(SendJsonFrame(session, FrameType::kControl,
                            json{{"op", "configure"}, {"config", config}}.dump(),
                            DeadlineIn(kTestDeadline))
                  .ok());
  Result<std::string> reply =
      ReceiveJsonFrame(session, FrameType::kControl, DeadlineIn(kTestDeadline));

  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_NE(reply->find("stage configuration: stage must be an integer in 0..1, got 1e+300"),
            std::string::npos)
      << *reply;
}

}  // namespace
}  // namespace paretopipe
