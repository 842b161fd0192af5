// Shared-secret authentication primitives: reading the secret, fresh nonces,
// the HMAC-SHA256 proofs both ends of a connection exchange, and comparing
// them in constant time. The handshakes that use them are in
// control/handshake.h (the TCP port) and transport/grpc_link.h (gRPC links);
// docs/protocol.md, "Authentication", describes both. OpenSSL's libcrypto
// does the cryptography.
//
// Owns: secret files and proof arithmetic. Must not touch: sockets, frames.
// Thread safety: pure functions (RAND_bytes is thread-safe).
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace paretopipe {

// Bytes of randomness in a nonce (hex-encoded on the wire: twice as many
// characters). 256 bits: a nonce never repeats in practice.
inline constexpr size_t kAuthNonceBytes = 32;

// Reads the shared secret from `path`: the whole file, one trailing newline
// ("\n" or "\r\n") stripped. InvalidArgument naming the file when it is
// empty or readable by group or others (like ssh's private keys: a secret
// others can read is no secret); IoError naming it when it cannot be read.
Result<std::string> ReadSecretFile(const std::string& path);

// Writes `secret` to a new file readable by its owner only (0600) in
// $TMPDIR (or /tmp) and returns its path. The caller removes it.
Result<std::string> WriteSecretFile(const std::string& secret);

// `bytes` bytes from OpenSSL's CSPRNG, lower-case hex. Internal error if the
// generator is not seeded.
Result<std::string> RandomHex(size_t bytes);

// Which end a proof comes from: a worker's proof must never pass as a
// client's (a reflection attack), so the side is part of what is signed.
enum class AuthSide { kWorker, kClient };

// What one handshake's proofs cover: the connection's purpose and both
// fresh nonces. Binding the role and run id means an eavesdropper cannot
// reuse a handshake for another purpose; binding both nonces means neither
// side's proof is valid on any other connection.
struct AuthTranscript {
  std::string role;          // "control", "data", "credit", "probe".
  int64_t run_id = -1;       // -1 where the role has none.
  std::string client_nonce;  // Hex, as sent.
  std::string worker_nonce;  // Hex, as sent.
};

// Lower-case hex HMAC-SHA256(secret, side | role | run_id | nonces).
std::string AuthProof(const std::string& secret, AuthSide side, const AuthTranscript& t);

// True when `a` and `b` are equal, in time independent of where they differ
// (CRYPTO_memcmp), so a forger learns nothing from the refusal's timing.
bool ProofsEqual(const std::string& a, const std::string& b);

}  // namespace paretopipe
