// Who may connect to a worker (docs/protocol.md, "Authentication"): with a
// shared secret every connection to its TCP port and every gRPC link proves
// it holds the secret, both ways, by a challenge-response; a wrong, missing
// or replayed proof is refused and the worker goes on serving; without a
// secret a worker listens on loopback only. Real sockets, on loopback only;
// every wait is bounded. The gRPC links' own tests are in grpc_auth_test.cc,
// built only with gRPC.
#include "util/auth.h"

#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "control/protocol.h"
#include "control/worker.h"
#include "control/worker_client.h"
#include "model/cuts.h"
#include "model/device.h"
#include "sweep/pipeline_run.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using nlohmann::json;
using testing::ScopedTempDir;
using testing::ServingWorker;

constexpr std::chrono::milliseconds kTestDeadline(3000);
constexpr const char* kSecret = "correct horse battery staple";

// A pipeline run small enough for well under a second on one core.
RunPlan SmallPlan(const std::string& backend) {
  const ModelSpec spec{"resnet18", 10, 5, ""};
  Result<ModelAnalysis> analysis = AnalyzeModel(spec, 32);
  EXPECT_TRUE(analysis.ok()) << analysis.status().message();
  RunPlan plan;
  if (!analysis.ok()) return plan;
  RunConfig& c = plan.config;
  c.model = spec.name;
  c.num_classes = spec.num_classes;
  c.seed = spec.seed;
  c.cuts = {4};
  c.batch_size = 2;
  c.input_side_px = static_cast<int>(analysis->input_side_px);
  c.batches = 4;
  c.warmup = 1;
  c.window = 2;
  c.repeats = 1;
  c.threads = 1;
  c.backend = backend;
  plan.num_blocks = static_cast<int64_t>(analysis->blocks.size());
  plan.run_id = 4242;
  plan.input_seed = 17;
  plan.clock_samples = 2;
  plan.stage_input_shapes = StageInputShapes(*analysis, c.batch_size, c.cuts);
  return plan;
}

WorkerOptions WithSecret(const std::string& secret) {
  WorkerOptions o;
  o.secret = secret;
  return o;
}

// Two workers sharing `secret` (empty: none) and an orchestrator's client
// for each, connected with `client_secret`.
class AuthPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ConfigureCompute(1).ok()); }

  void StartWorkers(const WorkerOptions& options, const std::string& client_secret) {
    for (int s = 0; s < 2; ++s) {
      workers_.push_back(std::make_unique<ServingWorker>(options));
      ASSERT_TRUE(workers_.back()->ok());
      Result<std::unique_ptr<WorkerClient>> client =
          WorkerClient::Connect(workers_.back()->endpoint(), kTestDeadline, client_secret);
      ASSERT_TRUE(client.ok()) << client.status().message();
      clients_.push_back(std::move(client).value());
    }
  }
  std::vector<WorkerClient*> Clients() const { return {clients_[0].get(), clients_[1].get()}; }
  void TearDown() override {
    clients_.clear();
    workers_.clear();
  }

  std::vector<std::unique_ptr<ServingWorker>> workers_;
  std::vector<std::unique_ptr<WorkerClient>> clients_;
};

class AuthBackendTest : public AuthPipelineTest,
                        public ::testing::WithParamInterface<std::string> {};

TEST_P(AuthBackendTest, RightTokenRunsAPipelineWithProbeControlAndDataLinks) {
  PP_REQUIRE_BACKEND(GetParam());
  StartWorkers(WithSecret(kSecret), kSecret);

  // The probe role: worker 1 connects to worker 2's port, authenticated.
  Result<LinkMeasurement> probe = clients_[0]->ProbeLink(workers_[1]->endpoint());
  Result<RunRecord> record = RunPipeline(Clients(), SmallPlan(GetParam()));

  ASSERT_TRUE(probe.ok()) << probe.status().message();
  EXPECT_GT(probe->pings, 0);
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ(record->status, "ok");
}

INSTANTIATE_TEST_SUITE_P(TcpAndGrpc, AuthBackendTest, ::testing::Values("tcp", "grpc"));

TEST_F(AuthPipelineTest, TorchRunIsRefusedByWorkersWithAToken) {
  PP_REQUIRE_BACKEND("torch");
  StartWorkers(WithSecret(kSecret), kSecret);

  Result<RunRecord> record = RunPipeline(Clients(), SmallPlan("torch"));

  ASSERT_FALSE(record.ok());
  EXPECT_NE(record.status().message().find("cannot authenticate"), std::string::npos)
      << record.status().message();
}

TEST_F(AuthPipelineTest, ConfigureNamingAModelFileNeverOpensIt) {
  const WorkerOptions without_secret;
  StartWorkers(without_secret, "");
  ScopedTempDir dir;
  const std::string path = dir.path() + "/model.pt";
  std::ofstream(path) << "not a module";
  const int watch = inotify_init1(IN_NONBLOCK);
  ASSERT_GE(watch, 0);
  ASSERT_GE(inotify_add_watch(watch, path.c_str(), IN_OPEN | IN_ACCESS), 0);
  StageConfig config;
  config.run_id = 7;
  config.model = path;  // A path where a model name belongs, without a module digest.
  config.num_classes = 10;
  config.block_end = -1;
  config.input_shape = {1, 3, 32, 32};
  config.backend = "tcp";

  Status configured = clients_[0]->Configure(config, "");

  ASSERT_FALSE(configured.ok());
  EXPECT_NE(configured.message().find("not in the zoo"), std::string::npos) << configured.message();
  char events[4096];
  EXPECT_LT(read(watch, events, sizeof(events)), 0) << "the worker opened " << path;
  close(watch);
}

// One worker with a token, for the connection-level tests.
class AuthConnectionTest : public ::testing::Test {
 protected:
  AuthConnectionTest() : worker_(WithSecret(kSecret)) {}
  void SetUp() override { ASSERT_TRUE(worker_.ok()); }

  // Says a hello with `nonce` as a control client would and returns the
  // worker's challenge.
  Result<json> HelloWithNonce(Socket& socket, const std::string& nonce) {
    const json hello{{"role", kRoleControl}, {"protocol", kProtocolVersion}, {"nonce", nonce}};
    PP_RETURN_IF_ERROR(
        SendJsonFrame(socket, FrameType::kHello, hello.dump(), DeadlineIn(kTestDeadline)));
    PP_ASSIGN_OR_RETURN(std::string text,
                        ReceiveJsonFrame(socket, FrameType::kHello, DeadlineIn(kTestDeadline)));
    return ParseJsonObject(text, "challenge");
  }

  ServingWorker worker_;
};

TEST_F(AuthConnectionTest, WrongTokenIsRefusedAndTheWorkerServesTheRightOneAfter) {
  Result<std::unique_ptr<WorkerClient>> wrong =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline, "not the secret");
  Result<std::unique_ptr<WorkerClient>> right =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline, kSecret);

  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("authentication failed"), std::string::npos)
      << wrong.status().message();
  ASSERT_TRUE(right.ok()) << right.status().message();
  EXPECT_TRUE((*right)->Info().ok());
}

TEST_F(AuthConnectionTest, ClientWithoutATokenIsRefusedClearly) {
  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(worker_.endpoint(), kTestDeadline);

  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("authentication required"), std::string::npos)
      << client.status().message();
}

TEST(AuthWithoutTokenTest, ClientWithATokenRefusesAWorkerWithout) {
  const WorkerOptions without_secret;
  ServingWorker worker(without_secret);
  ASSERT_TRUE(worker.ok());

  Result<std::unique_ptr<WorkerClient>> client =
      WorkerClient::Connect(worker.endpoint(), kTestDeadline, kSecret);

  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("has no token"), std::string::npos)
      << client.status().message();
}

TEST_F(AuthConnectionTest, ReplayedClientProofIsRefused) {
  // A legitimate client's handshake, recorded: its nonce and its proof.
  Result<std::string> client_nonce = RandomHex(kAuthNonceBytes);
  ASSERT_TRUE(client_nonce.ok());
  std::string recorded_proof;
  {
    Result<Socket> socket = ConnectTcp(worker_.endpoint(), DeadlineIn(kTestDeadline));
    ASSERT_TRUE(socket.ok());
    Result<json> challenge = HelloWithNonce(*socket, *client_nonce);
    ASSERT_TRUE(challenge.ok()) << challenge.status().message();
    const AuthTranscript t{kRoleControl, -1, *client_nonce,
                           (*challenge)["nonce"].get<std::string>()};
    recorded_proof = AuthProof(kSecret, AuthSide::kClient, t);
    ASSERT_TRUE(SendJsonFrame(*socket, FrameType::kHello, json{{"proof", recorded_proof}}.dump(),
                              DeadlineIn(kTestDeadline))
                    .ok());
    ASSERT_TRUE(SendJsonFrame(*socket, FrameType::kControl, json{{"op", "info"}}.dump(),
                              DeadlineIn(kTestDeadline))
                    .ok());
    Result<std::string> info =
        ReceiveJsonFrame(*socket, FrameType::kControl, DeadlineIn(kTestDeadline));
    ASSERT_TRUE(info.ok()) << "the recorded handshake itself failed: " << info.status().message();
  }
  // The same bytes on a new connection: the worker's nonce is new.
  Result<Socket> replay = ConnectTcp(worker_.endpoint(), DeadlineIn(kTestDeadline));
  ASSERT_TRUE(replay.ok());
  Result<json> challenge = HelloWithNonce(*replay, *client_nonce);
  ASSERT_TRUE(challenge.ok()) << challenge.status().message();
  ASSERT_TRUE(SendJsonFrame(*replay, FrameType::kHello, json{{"proof", recorded_proof}}.dump(),
                            DeadlineIn(kTestDeadline))
                  .ok());

  Result<std::string> answer =
      ReceiveJsonFrame(*replay, FrameType::kControl, DeadlineIn(kTestDeadline));

  ASSERT_FALSE(answer.ok());
  EXPECT_NE(answer.status().message().find("authentication failed"), std::string::npos)
      << answer.status().message();
  EXPECT_TRUE(WorkerClient::Connect(worker_.endpoint(), kTestDeadline, kSecret).ok());
}

TEST(AuthListenTest, NonLoopbackListenWithoutATokenIsRefused) {
  WorkerOptions options;
  options.listen = {"0.0.0.0", 0};

  Result<std::unique_ptr<Worker>> worker = Worker::Create(options);

  ASSERT_FALSE(worker.ok());
  EXPECT_NE(worker.status().message().find("is not loopback"), std::string::npos);
}

TEST(AuthCliTest, NonLoopbackListenWithoutATokenFailsWithOneLine) {
  ScopedTempDir dir;

  testing::CommandOutcome o =
      testing::RunCommand(std::string(PARETOPIPE_BINARY) + " worker --listen 0.0.0.0:0", dir.path(),
                          std::chrono::seconds(60));

  EXPECT_NE(o.exit_code, 0);
  EXPECT_FALSE(o.signaled);
  EXPECT_NE(o.err.find("--listen 0.0.0.0:0 is not loopback: give --token-file"), std::string::npos)
      << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
}

TEST(AuthCliTest, EmptyOrWorldReadableTokenFileIsRefusedNamingIt) {
  ScopedTempDir dir;
  const std::string empty = dir.path() + "/empty", open = dir.path() + "/open";
  std::ofstream(empty) << "\n";
  std::ofstream(open) << "secret\n";
  chmod(empty.c_str(), 0600);
  chmod(open.c_str(), 0644);

  Result<std::string> from_empty = ReadSecretFile(empty);
  Result<std::string> from_open = ReadSecretFile(open);
  chmod(open.c_str(), 0600);
  Result<std::string> from_private = ReadSecretFile(open);

  ASSERT_FALSE(from_empty.ok());
  EXPECT_NE(from_empty.status().message().find(empty + " is empty"), std::string::npos);
  ASSERT_FALSE(from_open.ok());
  EXPECT_NE(from_open.status().message().find("chmod 600 " + open), std::string::npos);
  ASSERT_TRUE(from_private.ok());
  EXPECT_EQ(*from_private, "secret");
}

}  // namespace
}  // namespace paretopipe
