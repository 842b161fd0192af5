#include "transport/link_probe.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace paretopipe {
namespace {

// Messages are short text in kControl frames: "ping <padding>", "bulk <ms>",
// and the receiver's "got <bytes> <span_ns> <half_bytes> <half_ns>".
constexpr size_t kPingBytes = 64;
constexpr size_t kChunkBytes = 256 * 1024;
// Reads the receiver times; beyond this it stops recording (rate is then
// over what it recorded).
constexpr size_t kMaxSamples = 1 << 20;
// The largest sized message of ProbeMessageSizes: tens of MB, as the largest
// activations of the zoo's models at batch 8.
constexpr int64_t kMaxSizedBytes = int64_t{64} << 20;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

Status SendText(Socket& s, const std::string& text, Deadline deadline) {
  return SendJsonFrame(s, FrameType::kControl, text, deadline);
}

}  // namespace

Result<LinkProbeResult> ProbeLink(Socket& socket, const LinkProbeOptions& o, Deadline deadline) {
  LinkProbeResult r;
  std::vector<double> rtts;
  const std::string ping = "ping " + std::string(kPingBytes - 5, '.');
  for (int i = 0; i < o.pings + 2; ++i) {
    const int64_t t0 = NowNs();
    PP_RETURN_IF_ERROR(SendText(socket, ping, deadline));
    Result<std::string> echo = ReceiveJsonFrame(socket, FrameType::kControl,
                                                std::min(deadline, DeadlineIn(o.peer_silence)));
    if (!echo.ok() && Clock::now() < deadline) {
      return echo.status().WithContext(
          fmt::format("link probe: no echo from {} within {} ms (a dead or hung peer)",
                      socket.peer(), o.peer_silence.count()));
    }
    PP_RETURN_IF_ERROR(echo.status());
    const int64_t t1 = NowNs();
    if (*echo != ping) return Status::InvalidArgument("link probe: the echo differs from the ping");
    if (i >= 2) rtts.push_back((t1 - t0) / 1e6);
  }
  std::sort(rtts.begin(), rtts.end());
  r.pings = static_cast<int>(rtts.size());
  if (!rtts.empty()) {
    r.rtt_ms_min = rtts.front();
    r.rtt_ms_max = rtts.back();
    r.rtt_ms_median = rtts.size() % 2 ? rtts[rtts.size() / 2]
                                      : (rtts[rtts.size() / 2 - 1] + rtts[rtts.size() / 2]) / 2;
  }
  const auto bulk = std::clamp(
      std::chrono::milliseconds(static_cast<int64_t>(r.rtt_ms_median * o.rtt_multiple)),
      o.bulk_min, o.bulk_max);
  PP_RETURN_IF_ERROR(SendText(socket, fmt::format("bulk {}", bulk.count()), deadline));
  // Write for `bulk`, then wait for the receiver's answer: it answers once
  // it has timed `bulk` of arrivals, which start a one-way delay later, and
  // what is queued on the way keeps its link busy until then. Writing no
  // longer leaves little behind for the run that follows to wait out.
  std::vector<char> chunk(kChunkBytes, 'x');
  const Deadline stop_writing = Clock::now() + bulk;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status::Unavailable("link probe: bulk transfer timed out");
    const bool writing = Clock::now() < stop_writing;
    pollfd p{socket.fd(), static_cast<short>(writing ? POLLIN | POLLOUT : POLLIN), 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000))) < 0 &&
        errno != EINTR) {
      return Status::IoError(fmt::format("link probe: poll: {}", strerror(errno)));
    }
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) break;
    if (writing && (p.revents & POLLOUT)) {
      const ssize_t n = send(socket.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
    }
  }
  PP_ASSIGN_OR_RETURN(std::string got, ReceiveJsonFrame(socket, FrameType::kControl, deadline));
  int64_t bytes = 0, span_ns = 0, half_bytes = 0, half_ns = 0;
  if (std::sscanf(got.c_str(), "got %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64, &bytes,
                  &span_ns, &half_bytes, &half_ns) != 4) {
    return Status::InvalidArgument(fmt::format("link probe: unexpected answer '{}'", got));
  }
  // Closing resets rather than drains: what is still queued here would take
  // seconds at a low rate, and the receiver waits for the end.
  const linger reset{1, 0};
  setsockopt(socket.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  r.bulk_bytes = bytes;
  r.bulk_s = span_ns / 1e9;
  if (half_ns > 0) r.bandwidth_mbit = half_bytes * 8.0 / (half_ns / 1e9) / 1e6;
  return r;
}

Result<MessageSizeProbe> ProbeMessageSizes(Socket& socket, const std::vector<int64_t>& sizes,
                                           int repeats, int burst, Deadline deadline) {
  if (repeats < 1 || burst < 2) {
    return Status::InvalidArgument("link probe: repeats must be >= 1 and the burst >= 2");
  }
  MessageSizeProbe r;
  std::vector<char> payload;
  for (const int64_t size : sizes) {
    if (size < 1 || size > kMaxSizedBytes) {
      return Status::InvalidArgument(
          fmt::format("link probe: message size {} is outside 1..{}", size, kMaxSizedBytes));
    }
    payload.assign(static_cast<size_t>(size), 'x');
    for (int i = 0; i < repeats + 1; ++i) {
      const int64_t t0 = NowNs();
      // As an activation travels on the tcp backend: one frame, header and bytes.
      PP_ASSIGN_OR_RETURN(const FrameHeader h,
                          TensorFrameHeader(FrameType::kTensor, 0, DType::kUInt8, {size}));
      PP_RETURN_IF_ERROR(SendText(socket, fmt::format("echo {}", size), deadline));
      PP_RETURN_IF_ERROR(socket.SendFrame(h, payload.data(), deadline));
      PP_ASSIGN_OR_RETURN(std::string ack, ReceiveJsonFrame(socket, FrameType::kControl, deadline));
      const int64_t t1 = NowNs();
      if (ack != "ok") return Status::InvalidArgument("link probe: unexpected acknowledgement");
      if (i == 0) continue;  // Untimed: the first of a size grows the buffers.
      r.bytes.push_back(size);
      r.rtt_ms.push_back((t1 - t0) / 1e6);
    }
  }
  const std::string ping = "ping " + std::string(kPingBytes - 5, '.');
  double single_ms = 0;
  for (int i = 0; i < 3; ++i) {  // The fastest of three lone pings.
    const int64_t t0 = NowNs();
    PP_RETURN_IF_ERROR(SendText(socket, ping, deadline));
    PP_RETURN_IF_ERROR(ReceiveJsonFrame(socket, FrameType::kControl, deadline).status());
    const double ms = (NowNs() - t0) / 1e6;
    single_ms = i == 0 ? ms : std::min(single_ms, ms);
  }
  const int64_t t0 = NowNs();
  for (int i = 0; i < burst; ++i) PP_RETURN_IF_ERROR(SendText(socket, ping, deadline));
  for (int i = 0; i < burst; ++i) {
    PP_RETURN_IF_ERROR(ReceiveJsonFrame(socket, FrameType::kControl, deadline).status());
  }
  const double total_ms = (NowNs() - t0) / 1e6;
  r.burst_ms_per_message = std::max(0.0, (total_ms - single_ms) / (burst - 1));
  return r;
}

Status ServeLinkProbe(Socket& socket, Deadline deadline) {
  std::vector<char> sized;
  for (;;) {
    Result<std::string> msg = ReceiveJsonFrame(socket, FrameType::kControl, deadline);
    if (!msg.ok()) return msg.status();
    if (msg->rfind("ping", 0) == 0) {
      PP_RETURN_IF_ERROR(SendText(socket, *msg, deadline));
      continue;
    }
    if (int64_t size = 0; std::sscanf(msg->c_str(), "echo %" SCNd64, &size) == 1) {
      if (size < 1 || size > kMaxSizedBytes) {
        return Status::InvalidArgument(fmt::format("link probe: echo of {} bytes", size));
      }
      FrameHeader h;
      PP_RETURN_IF_ERROR(
          socket.ReceiveHeader(&h, FrameLimits{static_cast<uint64_t>(kMaxSizedBytes)}, deadline));
      if (h.type != FrameType::kTensor || h.payload_bytes != static_cast<uint64_t>(size)) {
        return Status::InvalidArgument(
            fmt::format("link probe: expected a {}-byte tensor frame, got a {} frame of {} bytes",
                        size, FrameTypeName(h.type), h.payload_bytes));
      }
      sized.resize(static_cast<size_t>(size));
      PP_RETURN_IF_ERROR(socket.ReceiveExact(sized.data(), sized.size(), deadline));
      PP_RETURN_IF_ERROR(SendText(socket, "ok", deadline));
      continue;
    }
    int64_t ms = 0;
    if (std::sscanf(msg->c_str(), "bulk %" SCNd64, &ms) != 1 || ms < 1 || ms > 60000) {
      return Status::InvalidArgument(fmt::format("link probe: unexpected message '{}'",
                                                 msg->substr(0, 40)));
    }
    // (arrival time, bytes so far) per read.
    std::vector<std::pair<int64_t, int64_t>> samples;
    std::vector<char> buf(kChunkBytes);
    int64_t total = 0, first_ns = 0;
    for (;;) {
      const int64_t now = NowNs();
      if (first_ns > 0 && now - first_ns >= ms * 1000000) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Status::Unavailable("link probe: no bulk bytes in time");
      pollfd p{socket.fd(), POLLIN, 0};
      const int wait_ms = first_ns > 0 ? 10 : static_cast<int>(std::min<int64_t>(left.count(), 1000));
      if (poll(&p, 1, wait_ms) <= 0) continue;
      const ssize_t n = recv(socket.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n == 0) return Status::Unavailable("link probe: the prober closed during the transfer");
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return Status::IoError(fmt::format("link probe: recv: {}", strerror(errno)));
      }
      const int64_t t = NowNs();
      if (first_ns == 0) first_ns = t;
      total += n;
      if (samples.size() < kMaxSamples) samples.emplace_back(t, total);
    }
    // The rate over the second half of the window: TCP's slow start and the
    // token bucket's initial burst fall in the first.
    int64_t span = 0, half_bytes = 0, half_ns = 0;
    if (samples.size() >= 2) {
      const int64_t last_t = samples.back().first;
      span = last_t - samples.front().first;
      // From the last read at or before the middle: the bytes read after it
      // arrived after it.
      const int64_t mid = samples.front().first + span / 2;
      int64_t at_mid = samples.front().second, t_at_mid = samples.front().first;
      for (const auto& [t, cum] : samples) {
        if (t > mid) break;
        at_mid = cum;
        t_at_mid = t;
      }
      half_bytes = samples.back().second - at_mid;
      half_ns = last_t - t_at_mid;
    }
    PP_RETURN_IF_ERROR(SendText(
        socket, fmt::format("got {} {} {} {}", total, span, half_bytes, half_ns), deadline));
    // The prober stops writing when it sees the answer and resets the
    // connection; until then, discard what is in flight.
    const Deadline drained = std::min(deadline, DeadlineIn(std::chrono::seconds(5)));
    while (Clock::now() < drained) {
      pollfd p{socket.fd(), POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = recv(socket.fd(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
    return Status::Ok();
  }
}

namespace {

// A probe message on a backend's link: an activation frame of uint8 [bytes].
Status SendProbeFrame(Link& out, uint64_t batch_id, int64_t bytes, const char* payload,
                      Deadline deadline) {
  PP_ASSIGN_OR_RETURN(FrameHeader h,
                      TensorFrameHeader(FrameType::kActivation, batch_id, DType::kUInt8, {bytes}));
  h.sent_ns = NowNs();
  return out.Send(h, payload, deadline);
}

// Reads the credit of `batch_id` from `credits_in`.
Status ReceiveProbeCredit(Link& credits_in, uint64_t batch_id, Deadline deadline) {
  FrameHeader h;
  PP_RETURN_IF_ERROR(
      credits_in.ReceiveHeader(&h, FrameLimits{}, deadline)
          .WithContext(fmt::format("link probe: credits from {}", credits_in.peer())));
  if (h.type != FrameType::kCredit || h.batch_id != batch_id) {
    return Status::InvalidArgument(
        fmt::format("link probe: from {}: expected the credit of message {}, got a {} frame of {}",
                    credits_in.peer(), batch_id, FrameTypeName(h.type), h.batch_id));
  }
  return Status::Ok();
}

}  // namespace

int64_t LinkProbeMessages(int64_t sizes, int repeats, int burst) {
  return sizes * (repeats + 1) + 3 + burst;
}

Result<MessageSizeProbe> ProbeLinkMessageSizes(Link& out, Link& credits_in,
                                               const std::vector<int64_t>& sizes, int repeats,
                                               int burst, Deadline deadline) {
  if (repeats < 1 || burst < 2) {
    return Status::InvalidArgument("link probe: repeats must be >= 1 and the burst >= 2");
  }
  for (const int64_t size : sizes) {
    if (size < 1 || size > kMaxSizedBytes) {
      return Status::InvalidArgument(
          fmt::format("link probe: message size {} is outside 1..{}", size, kMaxSizedBytes));
    }
  }
  MessageSizeProbe r;
  uint64_t batch_id = 0;
  // One message, timed from its send's start to its credit's arrival.
  auto round_trip_ms = [&](int64_t size, const char* payload) -> Result<double> {
    const int64_t t0 = NowNs();
    PP_RETURN_IF_ERROR(SendProbeFrame(out, batch_id, size, payload, deadline)
                           .WithContext(fmt::format("link probe: send to {}", out.peer())));
    PP_RETURN_IF_ERROR(ReceiveProbeCredit(credits_in, batch_id, deadline));
    ++batch_id;
    return (NowNs() - t0) / 1e6;
  };
  std::vector<char> payload;
  for (const int64_t size : sizes) {
    payload.assign(static_cast<size_t>(size), 'x');
    for (int i = 0; i < repeats + 1; ++i) {
      PP_ASSIGN_OR_RETURN(const double ms, round_trip_ms(size, payload.data()));
      if (i == 0) continue;  // Untimed: the first of a size grows the buffers.
      r.bytes.push_back(size);
      r.rtt_ms.push_back(ms);
    }
  }
  payload.assign(kPingBytes, 'x');
  double single_ms = 0;
  for (int i = 0; i < 3; ++i) {  // The fastest of three lone pings.
    PP_ASSIGN_OR_RETURN(const double ms, round_trip_ms(kPingBytes, payload.data()));
    single_ms = i == 0 ? ms : std::min(single_ms, ms);
  }
  // The credits are read while the burst is sent: a backend whose sends wait
  // for the receiver (Gloo) would otherwise stall the echoing peer.
  const uint64_t first = batch_id;
  const int64_t t0 = NowNs();
  Status credits;
  std::thread reader([&] {
    for (int i = 0; i < burst && credits.ok(); ++i) {
      credits = ReceiveProbeCredit(credits_in, first + i, deadline);
    }
  });
  Status sent;
  for (int i = 0; i < burst && sent.ok(); ++i) {
    sent = SendProbeFrame(out, first + i, kPingBytes, payload.data(), deadline)
               .WithContext(fmt::format("link probe: send to {}", out.peer()));
  }
  // A failed send leaves credits that will never come: wake the reader.
  if (!sent.ok()) credits_in.Shutdown();
  reader.join();
  PP_RETURN_IF_ERROR(sent);
  PP_RETURN_IF_ERROR(credits);
  const double total_ms = (NowNs() - t0) / 1e6;
  r.burst_ms_per_message = std::max(0.0, (total_ms - single_ms) / (burst - 1));
  return r;
}

Status EchoLinkProbe(Link& in, Link& credits_out, int64_t messages, Deadline deadline) {
  const FrameLimits limits{static_cast<uint64_t>(kMaxSizedBytes)};
  std::vector<char> payload;
  for (int64_t b = 0; b < messages; ++b) {
    FrameHeader h;
    PP_RETURN_IF_ERROR(in.ReceiveHeader(&h, limits, deadline)
                           .WithContext(fmt::format("link probe: message {} of {} from {}", b,
                                                    messages, in.peer())));
    if (h.type != FrameType::kActivation || h.batch_id != static_cast<uint64_t>(b)) {
      return Status::InvalidArgument(
          fmt::format("link probe: from {}: expected activation {} of {}, got a {} frame of {}",
                      in.peer(), b, messages, FrameTypeName(h.type), h.batch_id));
    }
    payload.resize(h.payload_bytes);
    PP_RETURN_IF_ERROR(
        in.ReceivePayload(payload.data(), h.payload_bytes, deadline)
            .WithContext(fmt::format("link probe: message {} from {}", b, in.peer())));
    FrameHeader credit;
    credit.type = FrameType::kCredit;
    credit.batch_id = h.batch_id;
    credit.sent_ns = NowNs();
    PP_RETURN_IF_ERROR(
        credits_out.Send(credit, nullptr, deadline)
            .WithContext(fmt::format("link probe: credit to {}", credits_out.peer())));
  }
  return Status::Ok();
}

}  // namespace paretopipe
