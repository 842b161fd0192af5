// Who may open a gRPC link (docs/protocol.md, "Authentication"): with a
// shared secret every stream proves it holds the secret, both ways, by a
// challenge-response in its metadata; a wrong, missing or replayed proof is
// refused; with a certificate the links are TLS. Part of auth_test.cc's
// specification, apart because it speaks gRPC itself: built only when CMake
// found gRPC. Real sockets, on loopback only; every wait is bounded.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "transport/grpc_link.h"
#include "transport/pipeline.grpc.pb.h"
#include "util/auth.h"

namespace paretopipe {
namespace {

using testing::ScopedTempDir;

constexpr std::chrono::milliseconds kTestDeadline(3000);
constexpr const char* kSecret = "correct horse battery staple";

// A GrpcLinkServer keeping the links it accepts.
class GrpcAuthTest : public ::testing::Test {
 protected:
  void Serve(const GrpcSecurity& security) {
    Result<std::unique_ptr<GrpcLinkServer>> server = GrpcLinkServer::Start(
        {"127.0.0.1", 0},
        [this](const std::string&, int64_t, std::unique_ptr<Link> link) {
          std::lock_guard<std::mutex> lock(mu_);
          accepted_.push_back(std::move(link));
        },
        security);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
  }
  Endpoint endpoint() const { return {"127.0.0.1", server_->port()}; }

  // Sends one end frame on `link` and receives it on the server's side.
  void ExpectFrameArrives(Link& link) {
    FrameHeader end;
    end.type = FrameType::kEnd;
    ASSERT_TRUE(link.Send(end, nullptr, DeadlineIn(kTestDeadline)).ok());
    std::unique_ptr<Link> in;
    for (auto until = DeadlineIn(kTestDeadline); !in && Clock::now() < until;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!accepted_.empty()) {
          in = std::move(accepted_.front());
          accepted_.erase(accepted_.begin());
        }
      }
      if (!in) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(in);
    FrameHeader got;
    ASSERT_TRUE(in->ReceiveHeader(&got, FrameLimits{}, DeadlineIn(kTestDeadline)).ok());
    EXPECT_EQ(got.type, FrameType::kEnd);
  }

  size_t Accepted() {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_.size();
  }

  std::mutex mu_;
  std::vector<std::unique_ptr<Link>> accepted_;
  std::unique_ptr<GrpcLinkServer> server_;
};

GrpcSecurity GrpcSecret(const std::string& secret) {
  GrpcSecurity s;
  s.secret = secret;
  return s;
}

TEST_F(GrpcAuthTest, RightTokenOpensTheLinkWrongOrMissingOnesAreRefused) {
  Serve(GrpcSecret(kSecret));

  Result<std::unique_ptr<Link>> none =
      ConnectGrpcLink(endpoint(), "data", 1, DeadlineIn(kTestDeadline));
  Result<std::unique_ptr<Link>> wrong =
      ConnectGrpcLink(endpoint(), "data", 1, DeadlineIn(kTestDeadline), GrpcSecret("wrong"));
  Result<std::unique_ptr<Link>> right =
      ConnectGrpcLink(endpoint(), "data", 1, DeadlineIn(kTestDeadline), GrpcSecret(kSecret));

  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("authentication required"), std::string::npos)
      << none.status().message();
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("failed authentication"), std::string::npos)
      << wrong.status().message();
  ASSERT_TRUE(right.ok()) << right.status().message();
  ExpectFrameArrives(**right);
  EXPECT_EQ(Accepted(), 0u);  // Only the authenticated stream reached the server's callback.
}

TEST_F(GrpcAuthTest, ClientWithATokenRefusesAServerWithout) {
  Serve(GrpcSecurity{});

  Result<std::unique_ptr<Link>> link =
      ConnectGrpcLink(endpoint(), "data", 1, DeadlineIn(kTestDeadline), GrpcSecret(kSecret));

  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.status().message().find("has no token"), std::string::npos)
      << link.status().message();
}

TEST_F(GrpcAuthTest, ReplayedStreamOpeningIsRefused) {
  Serve(GrpcSecret(kSecret));
  auto channel = grpc::CreateChannel(endpoint().ToString(), grpc::InsecureChannelCredentials());
  std::unique_ptr<wire::Pipeline::Stub> stub = wire::Pipeline::NewStub(channel);
  // A legitimate opening: a challenge, then the stream with the proof.
  Result<std::string> client_nonce = RandomHex(kAuthNonceBytes);
  ASSERT_TRUE(client_nonce.ok());
  wire::ChallengeRequest request;
  request.set_client_nonce(*client_nonce);
  request.set_role("data");
  request.set_run_id(1);
  wire::ChallengeReply reply;
  grpc::ClientContext challenge_context;
  challenge_context.set_deadline(std::chrono::system_clock::now() + kTestDeadline);
  ASSERT_TRUE(stub->Challenge(&challenge_context, request, &reply).ok());
  const AuthTranscript t{"data", 1, *client_nonce, reply.server_nonce()};
  const std::string proof = AuthProof(kSecret, AuthSide::kClient, t);
  auto open = [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kTestDeadline);
    context.AddMetadata("pp-role", "data");
    context.AddMetadata("pp-run-id", "1");
    context.AddMetadata("pp-nonce", reply.server_nonce());
    context.AddMetadata("pp-proof", proof);
    wire::FramesDone done;
    std::unique_ptr<grpc::ClientWriter<wire::Frame>> writer = stub->Frames(&context, &done);
    writer->WritesDone();
    return writer->Finish();
  };

  const grpc::Status first = open();
  const grpc::Status replayed = open();  // The same metadata, recorded.

  EXPECT_TRUE(first.ok()) << first.error_message();
  EXPECT_EQ(replayed.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(replayed.error_message().find("already used"), std::string::npos)
      << replayed.error_message();
}

// A self-signed certificate for 127.0.0.1 made by the openssl command, or
// empty when there is no openssl.
struct TestCertificate {
  std::string cert_pem, key_pem;
};
TestCertificate MakeCertificate(const std::string& dir, const std::string& name) {
  const std::string key = dir + "/" + name + ".key", cert = dir + "/" + name + ".crt";
  testing::CommandOutcome o = testing::RunCommand(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
      "subjectAltName=IP:127.0.0.1 -keyout " +
          key + " -out " + cert,
      dir, std::chrono::seconds(60));
  if (o.exit_code != 0) return {};
  return {testing::Slurp(cert), testing::Slurp(key)};
}

TEST_F(GrpcAuthTest, TlsLinkVerifiesTheServerAndAWrongCaIsRefused) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no openssl command to make a test certificate";
  }
  ScopedTempDir dir;
  const TestCertificate server = MakeCertificate(dir.path(), "server");
  const TestCertificate other = MakeCertificate(dir.path(), "other");
  ASSERT_FALSE(server.cert_pem.empty());
  ASSERT_FALSE(other.cert_pem.empty());
  GrpcSecurity serving = GrpcSecret(kSecret);
  serving.tls_cert_pem = server.cert_pem;
  serving.tls_key_pem = server.key_pem;
  Serve(serving);
  GrpcSecurity trusting = GrpcSecret(kSecret);
  trusting.tls_ca_pem = server.cert_pem;
  GrpcSecurity mistrusting = GrpcSecret(kSecret);
  mistrusting.tls_ca_pem = other.cert_pem;

  Result<std::unique_ptr<Link>> wrong_ca = ConnectGrpcLink(
      endpoint(), "data", 1, DeadlineIn(std::chrono::milliseconds(1500)), mistrusting);
  Result<std::unique_ptr<Link>> plaintext = ConnectGrpcLink(
      endpoint(), "data", 1, DeadlineIn(std::chrono::milliseconds(1500)), GrpcSecret(kSecret));
  Result<std::unique_ptr<Link>> right =
      ConnectGrpcLink(endpoint(), "data", 1, DeadlineIn(kTestDeadline), trusting);

  ASSERT_FALSE(wrong_ca.ok());
  EXPECT_NE(wrong_ca.status().message().find("over TLS"), std::string::npos)
      << wrong_ca.status().message();
  EXPECT_EQ(wrong_ca.status().message().find('\n'), std::string::npos);
  EXPECT_FALSE(plaintext.ok());
  ASSERT_TRUE(right.ok()) << right.status().message();
  ExpectFrameArrives(**right);
}

}  // namespace
}  // namespace paretopipe
