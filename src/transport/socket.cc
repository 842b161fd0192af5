#include "transport/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>
#include <thread>

namespace paretopipe {
namespace {

// A refused connection usually means the worker has not called listen() yet;
// 20 ms keeps the retry loop cheap without adding noticeable start-up delay.
constexpr auto kConnectRetryInterval = std::chrono::milliseconds(20);
// Enough for any plausible burst of connecting stages and workers.
constexpr int kListenBacklog = 64;

std::string ErrnoText(int err) { return std::strerror(err); }

int64_t ElapsedMs(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// Waits until `fd` is ready for `events` (or has an error or hang-up, which the
// caller's next syscall reports). Returns false once `deadline` has passed.
bool WaitReady(int fd, short events, Deadline deadline) {
  for (;;) {
    const auto remaining = deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) return false;
    // Round up, so poll never returns just before the deadline and spins.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
    pollfd pfd{fd, events, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(ms, INT_MAX)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // Let the next syscall report the error.
  }
}

// Data sockets are blocking, with SO_RCVTIMEO / SO_SNDTIMEO bounding each
// call: a recv() that finds no data sleeps in the kernel and returns with it,
// one syscall, where a non-blocking socket pays recv (EAGAIN), poll and recv
// again. The timeout is set in slices of at most kTimeoutSliceUs, so that
// while the deadline is further away the value stays the same and costs no
// setsockopt; an idle wait wakes every slice to check the deadline.
constexpr int64_t kTimeoutSliceUs = 100'000;

// Prepares one blocking call on `fd` (`option` is SO_RCVTIMEO or SO_SNDTIMEO)
// to return by `deadline`. Returns the flags for the call: MSG_DONTWAIT once
// the deadline has passed, so that bytes already there are still taken.
int PrepareWait(int fd, int option, Deadline deadline, int64_t* timeout_us) {
  const auto remaining = deadline - Clock::now();
  if (remaining <= Clock::duration::zero()) return MSG_DONTWAIT;
  // At least 1 µs: a zero timeval means "wait forever" to the kernel.
  const int64_t us = std::max<int64_t>(
      1, std::min<int64_t>(std::chrono::ceil<std::chrono::microseconds>(remaining).count(),
                           kTimeoutSliceUs));
  if (us != *timeout_us) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(us / 1'000'000);
    tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
    if (::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv)) != 0) return MSG_DONTWAIT;
    *timeout_us = us;
  }
  return 0;
}

Status ApplyOptions(int fd, const SocketOptions& options) {
  const int one = 1;
  if (options.no_delay && ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return Status::IoError("setsockopt(TCP_NODELAY): " + ErrnoText(errno));
  }
  if (options.buffer_bytes > 0) {
    const int bytes = options.buffer_bytes;
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) != 0) {
      return Status::IoError(
          fmt::format("setsockopt(SO_SNDBUF/SO_RCVBUF, {}): {}", bytes, ErrnoText(errno)));
    }
  }
  return Status::Ok();
}

// Resolves an IPv4 host name or address; the port is set by the caller.
Result<sockaddr_in> ResolveIpv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string name = host.empty() ? "0.0.0.0" : host;
  const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return Status::Unavailable(fmt::format("cannot resolve host '{}': {}", name,
                                           rc != 0 ? gai_strerror(rc) : "no address"));
  }
  sockaddr_in addr;
  std::memcpy(&addr, found->ai_addr, sizeof(addr));
  ::freeaddrinfo(found);
  return addr;
}

std::string AddressString(const sockaddr_in& addr) {
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr.sin_addr, text, sizeof(text));
  return fmt::format("{}:{}", text, ntohs(addr.sin_port));
}

// Receives exactly `bytes` bytes into `out`, or discards them when `out` is
// null. `what` names the bytes in messages ("frame header", "payload");
// `at_frame_start` says whether a close before the first byte is a clean close
// between frames.
Status ReceiveAll(int fd, const std::string& peer, const std::atomic<bool>& shut_down, uint8_t* out,
                  size_t bytes, Deadline deadline, int64_t* timeout_us, const char* what,
                  bool at_frame_start) {
  if (fd < 0)
    return Status::InvalidArgument(fmt::format("receive from {}: socket is closed", peer));
  const Clock::time_point start = Clock::now();
  size_t got = 0;
  while (got < bytes) {
    // MSG_TRUNC with no buffer makes Linux TCP drop the bytes without copying them.
    const int flags = PrepareWait(fd, SO_RCVTIMEO, deadline, timeout_us);
    const ssize_t n = out != nullptr ? ::recv(fd, out + got, bytes - got, flags)
                                     : ::recv(fd, nullptr, bytes - got, flags | MSG_TRUNC);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    const int err = n == 0 ? 0 : errno;
    if (shut_down.load()) {
      return Status::Unavailable(fmt::format(
          "connection to {} was shut down here while waiting for the {} (got {} of {} bytes)", peer,
          what, got, bytes));
    }
    if (n == 0) {
      if (got == 0 && at_frame_start) {
        return Status::Unavailable(fmt::format("peer {} closed the connection", peer));
      }
      return Status::Unavailable(
          fmt::format("peer {} closed the connection mid-frame (got {} of {} bytes of the {})",
                      peer, got, bytes, what));
    }
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      if ((flags & MSG_DONTWAIT) != 0) {
        return Status::Unavailable(
            fmt::format("peer {}: timed out after {} ms waiting for the {} (got {} of {} bytes)",
                        peer, ElapsedMs(start), what, got, bytes));
      }
      // A timeout slice passed (or the fd was handed to us non-blocking): wait
      // for data in poll(); the next PrepareWait checks the deadline.
      WaitReady(fd, POLLIN, deadline);
      continue;
    }
    if (err == ECONNRESET) {
      return Status::Unavailable(fmt::format(
          "peer {} reset the connection (got {} of {} bytes of the {})", peer, got, bytes, what));
    }
    return Status::Unavailable(fmt::format("recv from {}: {}", peer, ErrnoText(err)));
  }
  return Status::Ok();
}

}  // namespace

std::string Endpoint::ToString() const { return host + ":" + std::to_string(port); }

Result<Endpoint> ParseEndpoint(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument(fmt::format("endpoint '{}': expected HOST:PORT", text));
  }
  const std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(),
                                           [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::InvalidArgument(
        fmt::format("endpoint '{}': port '{}' is not a number", text, port_text));
  }
  const int port = std::stoi(port_text);
  if (port > 65535) {
    return Status::InvalidArgument(fmt::format("endpoint '{}': port {} exceeds 65535", text, port));
  }
  Endpoint endpoint;
  endpoint.host = text.substr(0, colon);
  endpoint.port = static_cast<uint16_t>(port);
  return endpoint;
}

// ---------------------------------------------------------------------------
// Socket

Socket::Socket(int fd, std::string peer) : fd_(fd), peer_(std::move(peer)) {}

Socket::~Socket() { Close(); }

Socket::Socket(Socket&& other) noexcept
    : fd_(other.fd_), peer_(std::move(other.peer_)), shut_down_(other.shut_down_.load()) {
  other.fd_ = -1;
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = other.fd_;
    peer_ = std::move(other.peer_);
    shut_down_.store(other.shut_down_.load());
    other.fd_ = -1;
  }
  return *this;
}

Status Socket::SendFrame(const FrameHeader& header, const void* payload, Deadline deadline) {
  if (fd_ < 0) return Status::InvalidArgument(fmt::format("send to {}: socket is closed", peer_));
  // Checked here so a bad header fails at its origin with a clear message
  // rather than as a protocol error at the receiver.
  FrameLimits no_limit;
  no_limit.max_payload_bytes = std::numeric_limits<uint64_t>::max();
  Status valid = ValidateFrameHeader(header, no_limit);
  if (!valid.ok()) return valid.WithContext("send to " + peer_);
  if (payload == nullptr && header.payload_bytes > 0) {
    return Status::InvalidArgument(
        fmt::format("send to {}: null payload of {} bytes", peer_, header.payload_bytes));
  }

  uint8_t encoded[kFrameHeaderBytes];
  EncodeFrameHeader(header, encoded);
  iovec iov[2];
  iov[0].iov_base = encoded;
  iov[0].iov_len = kFrameHeaderBytes;
  iov[1].iov_base = const_cast<void*>(payload);
  iov[1].iov_len = static_cast<size_t>(header.payload_bytes);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = header.payload_bytes > 0 ? 2 : 1;

  const size_t total = kFrameHeaderBytes + static_cast<size_t>(header.payload_bytes);
  size_t sent = 0;
  const Clock::time_point start = Clock::now();
  while (sent < total) {
    // MSG_NOSIGNAL: a vanished peer must be an error status, not a SIGPIPE
    // that kills the whole process.
    const int flags = PrepareWait(fd_, SO_SNDTIMEO, deadline, &send_timeout_us_);
    ssize_t n = ::sendmsg(fd_, &msg, flags | MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      while (n > 0) {  // Skip what the kernel took; resume mid-iovec.
        if (static_cast<size_t>(n) >= msg.msg_iov[0].iov_len) {
          n -= static_cast<ssize_t>(msg.msg_iov[0].iov_len);
          ++msg.msg_iov;
          --msg.msg_iovlen;
        } else {
          msg.msg_iov[0].iov_base = static_cast<uint8_t*>(msg.msg_iov[0].iov_base) + n;
          msg.msg_iov[0].iov_len -= static_cast<size_t>(n);
          n = 0;
        }
      }
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (shut_down_.load()) {
      return Status::Unavailable(fmt::format(
          "connection to {} was shut down here while sending a frame (sent {} of {} bytes)", peer_,
          sent, total));
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
      if ((flags & MSG_DONTWAIT) != 0) {
        return Status::Unavailable(
            fmt::format("peer {}: timed out after {} ms sending a {} frame (sent {} of {} bytes)",
                        peer_, ElapsedMs(start), FrameTypeName(header.type), sent, total));
      }
      WaitReady(fd_, POLLOUT, deadline);  // As in ReceiveAll.
      continue;
    }
    if (err == EPIPE || err == ECONNRESET) {
      return Status::Unavailable(fmt::format(
          "peer {} closed the connection while we sent a {} frame (sent {} of {} bytes)", peer_,
          FrameTypeName(header.type), sent, total));
    }
    return Status::Unavailable(fmt::format("sendmsg to {}: {}", peer_, ErrnoText(err)));
  }
  return Status::Ok();
}

Status Socket::ReceiveHeader(FrameHeader* header, const FrameLimits& limits, Deadline deadline) {
  uint8_t encoded[kFrameHeaderBytes];
  PP_RETURN_IF_ERROR(ReceiveAll(fd_, peer_, shut_down_, encoded, kFrameHeaderBytes, deadline,
                                &receive_timeout_us_, "frame header", /*at_frame_start=*/true));
  Result<FrameHeader> decoded = DecodeFrameHeader(encoded, limits);
  if (!decoded.ok()) return decoded.status().WithContext("peer " + peer_);
  *header = *decoded;
  return Status::Ok();
}

Status Socket::ReceiveExact(void* out, size_t bytes, Deadline deadline) {
  if (bytes == 0) return Status::Ok();
  return ReceiveAll(fd_, peer_, shut_down_, static_cast<uint8_t*>(out), bytes, deadline,
                    &receive_timeout_us_, "payload",
                    /*at_frame_start=*/false);
}

Status Socket::Discard(size_t bytes, Deadline deadline) {
  if (bytes == 0) return Status::Ok();
  return ReceiveAll(fd_, peer_, shut_down_, nullptr, bytes, deadline, &receive_timeout_us_,
                    "payload",
                    /*at_frame_start=*/false);
}

void Socket::Shutdown() {
  shut_down_.store(true);
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void Socket::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<Socket> ConnectTcp(const Endpoint& endpoint, Deadline deadline,
                          const SocketOptions& options) {
  const std::string peer = endpoint.ToString();
  Result<sockaddr_in> resolved = ResolveIpv4(endpoint.host);
  if (!resolved.ok()) return resolved.status().WithContext("connect to " + peer);
  sockaddr_in addr = *resolved;
  addr.sin_port = htons(endpoint.port);

  const Clock::time_point start = Clock::now();
  for (int attempt = 1;; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return Status::IoError(fmt::format("connect to {}: socket(): {}", peer, ErrnoText(errno)));
    Socket socket(fd, peer);
    // Before connect(): the receive buffer size fixes the TCP window scale
    // offered in the SYN.
    Status applied = ApplyOptions(fd, options);
    if (!applied.ok()) return applied.WithContext("connect to " + peer);

    int err = 0;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      err = errno;
      if (err == EINPROGRESS || err == EINTR) {
        if (!WaitReady(fd, POLLOUT, deadline)) {
          return Status::Unavailable(fmt::format(
              "connect to {}: timed out after {} ms{}", peer, ElapsedMs(start),
              attempt > 1 ? fmt::format(" ({} earlier attempts: connection refused)", attempt - 1)
                          : std::string()));
        }
        socklen_t len = sizeof(err);
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
    if (err == 0) {
      // Non-blocking only to bound connect(); data calls block with timeouts (PrepareWait).
      if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        return Status::IoError(fmt::format("connect to {}: fcntl: {}", peer, ErrnoText(errno)));
      }
      return socket;
    }
    if (err != ECONNREFUSED) {
      return Status::Unavailable(fmt::format("connect to {}: {}", peer, ErrnoText(err)));
    }
    const auto remaining = deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) {
      return Status::Unavailable(
          fmt::format("connect to {}: connection refused ({} attempts over {} ms)", peer, attempt,
                      ElapsedMs(start)));
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(kConnectRetryInterval, remaining));
  }
}

// ---------------------------------------------------------------------------
// Listener

Result<Listener> Listener::Listen(const Endpoint& endpoint) {
  const std::string where = "listen on " + endpoint.ToString();
  Result<sockaddr_in> resolved = ResolveIpv4(endpoint.host);
  if (!resolved.ok()) return resolved.status().WithContext(where);
  sockaddr_in addr = *resolved;
  addr.sin_port = htons(endpoint.port);

  Listener listener;
  // Non-blocking so that Accept never blocks in accept() itself: every wait is
  // a poll() bounded by the deadline.
  listener.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener.fd_ < 0) return Status::IoError(where + ": socket(): " + ErrnoText(errno));
  // SO_REUSEADDR: a restarted worker can bind its port while connections of
  // its previous run sit in TIME_WAIT.
  const int one = 1;
  if (::setsockopt(listener.fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return Status::IoError(where + ": setsockopt(SO_REUSEADDR): " + ErrnoText(errno));
  }
  if (::bind(listener.fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::IoError(where + ": bind: " + ErrnoText(errno));
  }
  if (::listen(listener.fd_, kListenBacklog) != 0) {
    return Status::IoError(where + ": listen: " + ErrnoText(errno));
  }
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(listener.fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return Status::IoError(where + ": getsockname: " + ErrnoText(errno));
  }
  listener.endpoint_.host = endpoint.host.empty() ? "0.0.0.0" : endpoint.host;
  listener.endpoint_.port = ntohs(bound.sin_port);
  return listener;
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

Listener::Listener(Listener&& other) noexcept
    : fd_(other.fd_), endpoint_(std::move(other.endpoint_)), shut_down_(other.shut_down_.load()) {
  other.fd_ = -1;
}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    endpoint_ = std::move(other.endpoint_);
    shut_down_.store(other.shut_down_.load());
    other.fd_ = -1;
  }
  return *this;
}

Result<Socket> Listener::Accept(Deadline deadline, const SocketOptions& options) {
  const std::string where = "listener " + endpoint_.ToString();
  if (fd_ < 0) return Status::InvalidArgument(where + ": not listening");
  const Clock::time_point start = Clock::now();
  for (;;) {
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    const int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                             SOCK_CLOEXEC);  // Blocking: see PrepareWait.
    if (fd >= 0) {
      Socket socket(fd, AddressString(addr));
      PP_RETURN_IF_ERROR(ApplyOptions(fd, options).WithContext(where));
      return socket;
    }
    const int err = errno;
    if (shut_down_.load()) return Status::Unavailable(where + " was shut down");
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      if (!WaitReady(fd_, POLLIN, deadline)) {
        return Status::Unavailable(fmt::format("{}: timed out after {} ms waiting for a connection",
                                               where, ElapsedMs(start)));
      }
      continue;
    }
    return Status::Unavailable(where + ": accept: " + ErrnoText(err));
  }
}

void Listener::Shutdown() {
  // The flag first: the woken Accept reads it to explain why accept() failed.
  shut_down_.store(true);
  // shutdown(), not close(): it wakes a poll() on the descriptor on Linux (the
  // socket leaves LISTEN and reports POLLHUP), while the descriptor stays
  // valid, so a concurrent Accept never touches a reused fd number.
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

Status ApplySocketOptions(const Socket& socket, const SocketOptions& options) {
  return ApplyOptions(socket.fd(), options).WithContext(socket.peer());
}

// ---------------------------------------------------------------------------
// JSON frames

Status SendJsonFrame(Socket& socket, FrameType type, const std::string& json_text,
                     Deadline deadline) {
  if (json_text.size() > kMaxControlPayloadBytes) {
    return Status::InvalidArgument(fmt::format("send to {}: {} payload {} bytes exceeds limit {}",
                                               socket.peer(), FrameTypeName(type), json_text.size(),
                                               kMaxControlPayloadBytes));
  }
  Result<FrameHeader> header = TextFrameHeader(type, json_text.size());
  if (!header.ok()) return header.status().WithContext("send to " + socket.peer());
  return socket.SendFrame(*header, json_text.data(), deadline);
}

namespace {
// The rest of a text frame whose header `header` was read: checks its type
// and size, reads the payload.
Result<std::string> ReceiveJsonPayload(Socket& socket, const FrameHeader& header, FrameType type,
                                       Deadline deadline) {
  if (header.type != type && header.type != FrameType::kError) {
    return Status::InvalidArgument(fmt::format("peer {}: expected a {} frame, got a {} frame",
                                               socket.peer(), FrameTypeName(type),
                                               FrameTypeName(header.type)));
  }
  if (header.payload_bytes > kMaxControlPayloadBytes) {
    return Status::InvalidArgument(fmt::format("peer {}: {} payload {} bytes exceeds limit {}",
                                               socket.peer(), FrameTypeName(header.type),
                                               header.payload_bytes, kMaxControlPayloadBytes));
  }
  std::string text(static_cast<size_t>(header.payload_bytes), '\0');
  PP_RETURN_IF_ERROR(socket.ReceiveExact(text.data(), text.size(), deadline));
  if (header.type == FrameType::kError) {
    return Status::Unavailable(fmt::format("peer {} reported an error: {}", socket.peer(), text));
  }
  return text;
}
}  // namespace

Result<std::string> ReceiveJsonFrame(Socket& socket, FrameType type, Deadline deadline) {
  FrameHeader header;
  // Default limits first, so that an unexpected large frame is reported by its
  // type rather than as an oversized control payload.
  PP_RETURN_IF_ERROR(socket.ReceiveHeader(&header, FrameLimits{}, deadline));
  return ReceiveJsonPayload(socket, header, type, deadline);
}

Result<std::string> ReceiveJsonReply(Socket& socket, FrameType type, Deadline deadline,
                                     std::chrono::milliseconds silence) {
  while (true) {
    const Deadline quiet = std::min(deadline, DeadlineIn(silence));
    FrameHeader header;
    Status received = socket.ReceiveHeader(&header, FrameLimits{}, quiet);
    if (!received.ok() && quiet < deadline && Clock::now() >= quiet) {
      return Status::Unavailable(fmt::format(
          "peer {} sent neither a reply nor a heartbeat for {:.1f} s: it is dead, hung or "
          "unreachable",
          socket.peer(), std::chrono::duration<double>(silence).count()));
    }
    PP_RETURN_IF_ERROR(received);
    if (header.type != FrameType::kHeartbeat) {
      return ReceiveJsonPayload(socket, header, type, deadline);
    }
  }
}

Status SendHeartbeat(Socket& socket, Deadline deadline) {
  FrameHeader header;
  header.type = FrameType::kHeartbeat;
  header.sent_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  return socket.SendFrame(header, nullptr, deadline);
}

}  // namespace paretopipe
