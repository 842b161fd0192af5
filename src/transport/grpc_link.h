// The gRPC backend of Link: each link is one long-lived client-streaming call
// (service paretopipe.wire.Pipeline, method Frames, transport/pipeline.proto)
// from the sending stage, the client, to the receiving stage, the server. Each
// gRPC message is one frame, so several frames are in flight at once; HTTP/2
// flow control is the only back-pressure besides the pipeline's own credits.
// Every link has a channel, and so a TCP connection, of its own.
//
// Copies. Send: the frame header (128 bytes and a few bytes of protobuf
// field tags) is copied into a slice; the payload is a slice that references
// the caller's memory, and gRPC's transport hands it to sendmsg from there,
// like TcpLink. Send returns once gRPC has released that slice, so the caller
// may reuse the memory at once. Receive: gRPC reads the socket into buffers
// of its own (the kernel-to-user copy every receiver pays) and delivers a
// message that references them; ReceivePayload copies the payload from them
// into the caller's buffer. That second copy is forced: gRPC's sync API
// cannot read into memory the caller names, because a message arrives before
// the caller asks for it. Protobuf's generated classes are not used because
// they would copy the payload into a std::string on both sides.
//
// Owns: the gRPC server, channels and calls of the links. Must not touch:
// models, LibTorch, what a frame means.
// Thread safety: GrpcLinkServer's methods are safe from any thread; the
// links follow Link's rules (one sending and one receiving thread, Shutdown()
// from any thread). A link may outlive its server: its calls then fail.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "transport/link.h"
#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

// Who may open a link, and whether it is encrypted. Default: anyone, in
// plaintext, as on loopback.
//
// With a secret, every stream is preceded by a unary Challenge call: the
// client sends a fresh nonce naming the link (role, run id), the server
// answers with a fresh nonce of its own and its proof of the secret; the
// client checks that proof, then opens the stream with the server's nonce
// and its own proof in metadata. The server accepts each of its nonces once
// and for `challenge_lifetime` only, so a recorded stream opening cannot be
// replayed (util/auth.h has the proofs; docs/protocol.md the details).
//
// The proofs authenticate the stream's opening, not its bytes: with TLS
// (a certificate and key on the server, the CA that signed it on the
// client) the bytes are encrypted and tamper-proof too.
struct GrpcSecurity {
  std::string secret;  // Empty: no authentication.
  std::chrono::milliseconds challenge_lifetime{5000};
  std::string tls_cert_pem, tls_key_pem;  // Server: TLS with these (PEM text).
  std::string tls_ca_pem;                 // Client: TLS, verifying against this CA (PEM text).
  // Server: told of each stream refused for its authentication, with the
  // peer's address and why (for the log). May be empty; must not throw.
  std::function<void(const std::string& peer, const std::string& why)> on_refused;
};

// Accepts gRPC streams from sending stages and turns each into a receiving Link.
class GrpcLinkServer {
 public:
  // Called on a gRPC thread for each incoming stream, with the role ("data"
  // or "credit") and run id the client named. The callee owns the link; the
  // stream stays open until the link is shut down or destroyed, the client
  // ends it or the server is destroyed. The link delivers every frame that
  // arrived before the stream ended, then fails with Unavailable ("peer ...
  // closed the stream"). Must return promptly and not throw.
  using Accept =
      std::function<void(const std::string& role, int64_t run_id, std::unique_ptr<Link> link)>;

  // Starts serving on `endpoint` (port 0: any free port; an empty host: every
  // interface). Unavailable, naming the endpoint, if it cannot listen there
  // (or, with TLS, if the certificate and key are not a usable pair).
  // Streams that fail `security`'s authentication are refused with
  // UNAUTHENTICATED and never reach `accept`.
  static Result<std::unique_ptr<GrpcLinkServer>> Start(const Endpoint& endpoint, Accept accept,
                                                       const GrpcSecurity& security = {});

  // Ends every open stream (their links' calls then fail) and stops serving,
  // within about a second even if links are alive.
  ~GrpcLinkServer();
  GrpcLinkServer(const GrpcLinkServer&) = delete;
  GrpcLinkServer& operator=(const GrpcLinkServer&) = delete;

  // The port it listens on, the real one when 0 was asked for.
  uint16_t port() const;

 private:
  struct Impl;
  explicit GrpcLinkServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Opens a sending Link: a stream to the GrpcLinkServer at `endpoint`, naming
// `role` ("data" or "credit") and `run_id`. Retries the connection until
// `deadline` (the receiving worker may still be starting), then fails with
// Unavailable naming the endpoint (with TLS: also when the server's
// certificate does not verify). InvalidArgument for another role, and when
// authentication fails: the server's proof is wrong, or one side has a
// secret and the other none.
//
// The link only sends: its receive calls return InvalidArgument. Send blocks
// until gRPC has released the caller's payload (see the top of this file) or
// `deadline` passes; then the call is cancelled and Send returns Unavailable,
// as every later Send does. Destroying the link closes the stream cleanly,
// waiting a few seconds at most for the receiver to take the frames in
// flight; Shutdown() instead cancels the stream at once.
Result<std::unique_ptr<Link>> ConnectGrpcLink(const Endpoint& endpoint, const std::string& role,
                                              int64_t run_id, Deadline deadline,
                                              const GrpcSecurity& security = {});

}  // namespace paretopipe
