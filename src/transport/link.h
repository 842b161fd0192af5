// A Link carries frames one way between two adjacent pipeline stages:
// activations forward, credits back. The pipeline runtime sees only this
// interface, so every backend runs the same stage loop with the same flow
// control, metrics and error handling. Implementations: TcpLink (the custom
// framing of docs/wire-format.md, over one TCP connection), GrpcLink
// (transport/grpc_link.h, a gRPC stream) and GlooLink (transport/gloo_link.h,
// c10d ProcessGroupGloo send/recv).
//
// Owns: moving one frame (a header and its payload bytes) across. Must not
// touch: models, what a frame means to a stage.
// Thread safety: one sending and one receiving thread may use a Link at the
// same time; Shutdown() may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "transport/frame.h"
#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

// Where a frame's time went inside a backend, beyond the time in the calls
// themselves (the per-hop breakdown of docs/metrics.md). Zero where a
// backend has no such step (TCP writes and reads the caller's memory).
struct LinkTiming {
  int64_t serialize_ns = 0;    // Send: making the backend's message from header and payload.
  int64_t deserialize_ns = 0;  // Receive: from the backend's message into the caller's buffer.
  int64_t queued_ns = 0;       // Receive: the frame waited, fully arrived, in the backend's
                               // own queue before the stage asked for it.
};

class Link {
 public:
  virtual ~Link() = default;

  // The backend's name as runs record it, e.g. "tcp".
  virtual const char* backend() const = 0;
  // The other end, for messages ("host:port").
  virtual const std::string& peer() const = 0;

  // Sends `header` and its header.payload_bytes bytes at `payload` (null when
  // 0) straight from the caller's memory. Blocks until the backend has taken
  // every byte or `deadline` passes (Unavailable).
  virtual Status Send(const FrameHeader& header, const void* payload, Deadline deadline) = 0;

  // Blocks until the next frame starts to arrive, so that a stage's receive
  // time excludes the wait for the previous stage. Unavailable on timeout.
  virtual Status WaitForFrame(Deadline deadline) = 0;

  // Receives and validates the next frame's header against `limits`.
  virtual Status ReceiveHeader(FrameHeader* header, const FrameLimits& limits,
                               Deadline deadline) = 0;

  // Receives the payload of the header just received, exactly `bytes` bytes,
  // into `out`. REQUIRES: out != nullptr or bytes == 0.
  virtual Status ReceivePayload(void* out, size_t bytes, Deadline deadline) = 0;

  // Wakes every thread blocked on this link; later calls fail.
  virtual void Shutdown() = 0;

  // The timing of the last Send (serialize_ns) and of the last frame
  // received (deserialize_ns, queued_ns), read by the thread that made the
  // call, right after it.
  virtual LinkTiming last_send_timing() const { return {}; }
  virtual LinkTiming last_receive_timing() const { return {}; }
};

// The custom TCP backend: frames as they are on the wire, one sendmsg per
// frame from the caller's memory, received straight into the caller's buffer.
class TcpLink : public Link {
 public:
  explicit TcpLink(Socket socket) : socket_(std::move(socket)) {}

  const char* backend() const override { return "tcp"; }
  const std::string& peer() const override { return socket_.peer(); }
  Status Send(const FrameHeader& header, const void* payload, Deadline deadline) override;
  Status WaitForFrame(Deadline deadline) override;
  Status ReceiveHeader(FrameHeader* header, const FrameLimits& limits, Deadline deadline) override;
  Status ReceivePayload(void* out, size_t bytes, Deadline deadline) override;
  void Shutdown() override { socket_.Shutdown(); }

 private:
  Socket socket_;
};

}  // namespace paretopipe
