// The hello that opens every connection to a worker's TCP port (roles
// control, data, credit and probe), and the challenge-response that
// authenticates it when the worker has a shared secret (`--token-file`):
//
//   client -> worker  hello {"role", "protocol", "run_id"?, "nonce": Nc}
//   worker -> client  hello {"nonce": Nw, "proof": HMAC(secret, worker|role|run|Nc|Nw)}
//   client -> worker  hello {"proof": HMAC(secret, client|role|run|Nc|Nw)}
//
// Both nonces are fresh 256-bit random numbers, so a proof recorded on one
// connection is worthless on any other; the secret never crosses the wire.
// Without a secret on either side the hello is the bare first frame, as
// before. docs/protocol.md, "Authentication", has the details.
//
// Owns: the hello exchange, both ends, for every role (one implementation).
// Must not touch: what a role does once admitted.
// Thread safety: functions on the caller's socket.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

// The client's end, on a freshly connected `socket`: says hello as `role`
// (with `run_id` when >= 0) and, when `secret` is not empty, proves it holds
// the secret and checks that the worker does too. Returns OK when the worker
// may be spoken to. InvalidArgument ("refused the connection: ...") when the
// worker refuses, answers with a wrong proof or has no secret while we have
// one; Unavailable when the connection fails or `deadline` passes first.
Status SayHello(Socket& socket, const std::string& role, int64_t run_id, const std::string& secret,
                Deadline deadline);

// The worker's end, on a freshly accepted `socket`: receives the hello and,
// when `secret` is not empty, runs the challenge-response, all by
// `deadline`. Returns the hello (a JSON object with a string "role") when
// the peer is admitted. Otherwise returns why (for the worker's log) and,
// where it helps the peer, has sent it an error frame saying why; the
// caller closes the connection.
Result<nlohmann::json> AcceptHello(Socket& socket, const std::string& secret, Deadline deadline);

}  // namespace paretopipe
