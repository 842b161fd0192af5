// TCP sockets for frames: connect, listen, send a frame straight from the
// caller's memory (one sendmsg with the header and payload as two iovecs, no
// intermediate copy), receive into the caller's memory. Every wait has a deadline.
//
// Owns: file descriptors, socket options, partial reads and writes, timeouts.
// Must not touch: models, LibTorch, what a frame means.
// Thread safety: a Socket may be used by one sending and one receiving thread
// at the same time; two concurrent senders (or receivers) are not allowed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "transport/frame.h"
#include "util/status.h"

namespace paretopipe {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// A deadline `timeout` from now.
inline Deadline DeadlineIn(std::chrono::milliseconds timeout) { return Clock::now() + timeout; }

struct Endpoint {
  std::string host;  // IPv4 address or host name.
  uint16_t port = 0;

  std::string ToString() const;  // "host:port".
};

// Parses "HOST:PORT" (port 0..65535; 0 means "any" when listening).
Result<Endpoint> ParseEndpoint(const std::string& text);

// Socket options used for every data connection: TCP_NODELAY (a frame is sent
// at once, not held for Nagle) and 4 MiB send and receive buffers (a large
// activation drains in few round trips).
// The kernel caps buffer_bytes at net.core.wmem_max / rmem_max; 0 or less
// leaves the buffers to the kernel's autotuning.
struct SocketOptions {
  bool no_delay = true;
  int buffer_bytes = 4 << 20;
};

class Socket {
 public:
  Socket() = default;
  // Takes ownership of `fd`, a connected TCP socket, blocking or not.
  explicit Socket(int fd, std::string peer);
  ~Socket();
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  const std::string& peer() const { return peer_; }  // "host:port" of the other end.

  // Sends header and `payload_bytes` bytes at `payload` (may be null when 0)
  // with sendmsg, resuming after partial writes, until all bytes are queued in
  // the kernel or `deadline` passes (Unavailable). Allocates nothing.
  Status SendFrame(const FrameHeader& header, const void* payload, Deadline deadline);

  // Receives and validates the next header. Unavailable on timeout or when the
  // peer closed (the message says whether it closed cleanly between frames or
  // mid-frame); InvalidArgument for a malformed header.
  Status ReceiveHeader(FrameHeader* header, const FrameLimits& limits, Deadline deadline);

  // Receives exactly `bytes` bytes into `out`. REQUIRES: out != nullptr or bytes == 0.
  Status ReceiveExact(void* out, size_t bytes, Deadline deadline);

  // Reads and discards `bytes` bytes (a payload the caller does not want).
  Status Discard(size_t bytes, Deadline deadline);

  // Shuts down both directions, waking a thread blocked in this socket; its
  // call returns Unavailable saying the socket was shut down here. Safe from
  // another thread while the socket is in use.
  void Shutdown();
  // Closes the descriptor. REQUIRES: no other thread is using the socket
  // (Shutdown() first, join, then Close()).
  void Close();

 private:
  int fd_ = -1;
  std::string peer_;
  // Set by Shutdown(), so a woken receiver reports "shut down here" rather
  // than blaming the peer for the end of stream it sees.
  std::atomic<bool> shut_down_{false};
  // The SO_RCVTIMEO / SO_SNDTIMEO last set (µs; -1: never), so that a wait
  // with a far deadline costs no setsockopt. Each is touched only by the one
  // receiving or the one sending thread.
  int64_t receive_timeout_us_ = -1;
  int64_t send_timeout_us_ = -1;
};

// Applies `options` to a connected socket (e.g. once its hello said what it
// carries).
Status ApplySocketOptions(const Socket& socket, const SocketOptions& options);

// Connects to `endpoint`, retrying refused connections until `deadline` (a
// worker may still be starting). Applies `options`.
Result<Socket> ConnectTcp(const Endpoint& endpoint, Deadline deadline,
                          const SocketOptions& options = {});

class Listener {
 public:
  // Binds and listens on `endpoint` (port 0 picks a free port) with SO_REUSEADDR.
  static Result<Listener> Listen(const Endpoint& endpoint);

  Listener() = default;
  ~Listener();
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // The bound address, with the real port when 0 was asked for.
  const Endpoint& endpoint() const { return endpoint_; }

  // Waits for the next connection until `deadline` (Unavailable on timeout) and
  // applies `options` to it.
  Result<Socket> Accept(Deadline deadline, const SocketOptions& options = {});

  // Makes a blocked Accept return Unavailable; safe from another thread.
  void Shutdown();

 private:
  int fd_ = -1;
  Endpoint endpoint_;
  std::atomic<bool> shut_down_{false};  // Set by Shutdown(); see Socket::shut_down_.
};

// A payload that is JSON text, sent as one kControl/kHello frame. Control
// payloads are small; limit enforced on receipt.
inline constexpr uint64_t kMaxControlPayloadBytes = 16 << 20;

// Sends `json_text` as a frame of `type` (kControl or kHello; kError sends a
// UTF-8 reason). The payload is described as uint8 of shape {size}, like every
// text frame (TextFrameHeader). InvalidArgument beyond kMaxControlPayloadBytes.
Status SendJsonFrame(Socket& socket, FrameType type, const std::string& json_text,
                     Deadline deadline);
// Receives one frame that must be of `type` and have a text payload of at most
// kMaxControlPayloadBytes, returning the text. A kError frame becomes an
// Unavailable status carrying the peer's reason; another type is InvalidArgument
// naming both. After an error the connection is not at a frame boundary: close it.
Result<std::string> ReceiveJsonFrame(Socket& socket, FrameType type, Deadline deadline);

// ReceiveJsonFrame for the reply to a request that may take long (a worker
// building a stage, running a pass): kHeartbeat frames before the reply are
// skipped, each restarting the `silence` limit. Unavailable, naming the peer
// as dead or hung, when `silence` passes without any frame; the reply itself
// must come by `deadline`.
Result<std::string> ReceiveJsonReply(Socket& socket, FrameType type, Deadline deadline,
                                     std::chrono::milliseconds silence);

// Sends one kHeartbeat frame (header only).
Status SendHeartbeat(Socket& socket, Deadline deadline);

}  // namespace paretopipe
