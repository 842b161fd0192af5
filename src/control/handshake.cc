// The hello and its challenge-response (control/handshake.h).
#include "control/handshake.h"

#include <fmt/format.h>

#include "control/protocol.h"
#include "util/auth.h"

namespace paretopipe {
namespace {
using nlohmann::json;

bool IsNonce(const json& j) {
  if (!j.is_string() || j.get_ref<const std::string&>().size() != 2 * kAuthNonceBytes) return false;
  for (char c : j.get_ref<const std::string&>()) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Tells the peer why it is refused (best effort: it may be gone) and returns
// the reason for the worker's log.
Status Refuse(Socket& socket, const std::string& reason, Deadline deadline) {
  Result<FrameHeader> h = TextFrameHeader(FrameType::kError, reason.size());
  if (h.ok()) socket.SendFrame(*h, reason.data(), deadline);
  return Status::InvalidArgument(reason);
}

}  // namespace

Status SayHello(Socket& socket, const std::string& role, int64_t run_id, const std::string& secret,
                Deadline deadline) {
  json hello{{"role", role}, {"protocol", kProtocolVersion}};
  if (run_id >= 0) hello["run_id"] = run_id;
  if (secret.empty()) return SendJsonFrame(socket, FrameType::kHello, hello.dump(), deadline);

  AuthTranscript t{role, run_id, "", ""};
  PP_ASSIGN_OR_RETURN(t.client_nonce, RandomHex(kAuthNonceBytes));
  hello["nonce"] = t.client_nonce;
  PP_RETURN_IF_ERROR(SendJsonFrame(socket, FrameType::kHello, hello.dump(), deadline));
  Result<std::string> text = ReceiveJsonFrame(socket, FrameType::kHello, deadline);
  if (!text.ok()) {
    // An error frame: the worker said why it refuses (e.g. it has no token).
    // Anything else: it closed or stayed silent, as a worker of protocol 4 would.
    return Status::InvalidArgument(
        fmt::format("refused the connection: authentication failed: {}", text.status().message()));
  }
  Result<json> challenge = ParseJsonObject(*text, "authentication challenge");
  if (!challenge.ok() || !IsNonce(challenge->value("nonce", json())) ||
      !challenge->value("proof", json()).is_string()) {
    return Status::InvalidArgument(
        "refused the connection: authentication failed: malformed challenge");
  }
  t.worker_nonce = (*challenge)["nonce"].get<std::string>();
  if (!ProofsEqual((*challenge)["proof"].get<std::string>(),
                   AuthProof(secret, AuthSide::kWorker, t))) {
    return Status::InvalidArgument(
        "authentication failed: the worker's proof does not match this side's token (a "
        "different --token-file?)");
  }
  return SendJsonFrame(socket, FrameType::kHello,
                       json{{"proof", AuthProof(secret, AuthSide::kClient, t)}}.dump(), deadline);
}

Result<json> AcceptHello(Socket& socket, const std::string& secret, Deadline deadline) {
  FrameHeader h;
  PP_RETURN_IF_ERROR(socket.ReceiveHeader(&h, FrameLimits{kMaxControlPayloadBytes}, deadline));
  if (h.type != FrameType::kHello) {
    return Status::InvalidArgument(
        fmt::format("first frame is {}, expected hello", FrameTypeName(h.type)));
  }
  std::string text(h.payload_bytes, '\0');
  PP_RETURN_IF_ERROR(socket.ReceiveExact(text.data(), text.size(), deadline));
  PP_ASSIGN_OR_RETURN(json hello, ParseJsonObject(text, "hello"));
  if (!hello.value("role", json()).is_string()) {
    return Status::InvalidArgument(fmt::format("hello: role: type must be string, but is {}",
                                               hello.value("role", json()).type_name()));
  }
  const bool asks = hello.contains("nonce");
  if (secret.empty()) {
    if (!asks) return hello;
    return Refuse(socket,
                  "this worker has no token (started without --token-file) and this side has "
                  "one: refusing to talk unauthenticated",
                  deadline);
  }
  if (!asks) {
    return Refuse(socket,
                  "authentication required: this worker has a token; give the same "
                  "--token-file",
                  deadline);
  }
  const json run_id = hello.value("run_id", json(-1));
  if (!IsNonce(hello["nonce"]) || !run_id.is_number_integer()) {
    return Refuse(socket, "authentication failed: malformed hello", deadline);
  }
  AuthTranscript t{hello["role"].get<std::string>(), run_id.get<int64_t>(),
                   hello["nonce"].get<std::string>(), ""};
  PP_ASSIGN_OR_RETURN(t.worker_nonce, RandomHex(kAuthNonceBytes));
  PP_RETURN_IF_ERROR(SendJsonFrame(
      socket, FrameType::kHello,
      json{{"nonce", t.worker_nonce}, {"proof", AuthProof(secret, AuthSide::kWorker, t)}}.dump(),
      deadline));
  Result<std::string> answer = ReceiveJsonFrame(socket, FrameType::kHello, deadline);
  if (!answer.ok()) {
    return Status::InvalidArgument(fmt::format(
        "authentication failed: no proof from the client: {}", answer.status().message()));
  }
  Result<json> proof = ParseJsonObject(*answer, "authentication proof");
  if (!proof.ok() || !proof->value("proof", json()).is_string() ||
      !ProofsEqual((*proof)["proof"].get<std::string>(), AuthProof(secret, AuthSide::kClient, t))) {
    return Refuse(socket, "authentication failed", deadline);
  }
  return hello;
}

}  // namespace paretopipe
