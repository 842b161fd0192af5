#include "transport/link.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace paretopipe {

Status TcpLink::Send(const FrameHeader& header, const void* payload, Deadline deadline) {
  return socket_.SendFrame(header, payload, deadline);
}

Status TcpLink::WaitForFrame(Deadline deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Status::Unavailable(fmt::format("no frame from {} before the deadline", peer()));
    }
    pollfd p{socket_.fd(), POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
    if (n > 0) return Status::Ok();  // Readable, closed or failed: the receive says which.
    if (n < 0 && errno != EINTR) {
      return Status::IoError(fmt::format("waiting for {}: {}", peer(), std::strerror(errno)));
    }
  }
}

Status TcpLink::ReceiveHeader(FrameHeader* header, const FrameLimits& limits, Deadline deadline) {
  return socket_.ReceiveHeader(header, limits, deadline);
}

Status TcpLink::ReceivePayload(void* out, size_t bytes, Deadline deadline) {
  return socket_.ReceiveExact(out, bytes, deadline);
}

}  // namespace paretopipe
