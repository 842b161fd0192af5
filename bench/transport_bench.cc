// Per-hop cost of the TCP transport on loopback, against what a naive
// "serialize, then send" would pay.
//
// Each iteration is one hop as a pipeline stage sees it: the sender sends one
// activation frame of N bytes, the receiver reads header and payload into its
// own buffer and answers with a 128-byte credit frame, which the sender waits
// for. Time per iteration is therefore one frame of N bytes plus one
// header-only return; bytes/s counts the N payload bytes only.
//
//   transport: Socket::SendFrame (header and payload as two iovecs, no copy),
//              Socket::ReceiveHeader + ReceiveExact.
//   raw:       memcpy of header and payload into a staging buffer, then plain
//              blocking send() of it; plain blocking recv() of the header and
//              then of the payload.
//
// The two variants of each size are registered back to back, so drift of this
// shared machine hits both alike; compare them as ratios within one run.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>
#include <vector>

#include "transport/frame.h"
#include "transport/socket.h"

namespace paretopipe {
namespace {

// Generous: a hop of 16 MiB on loopback takes milliseconds, not seconds.
constexpr std::chrono::seconds kHopDeadline(30);

struct Connection {
  Listener listener;
  Socket sender;
  Socket receiver;
};

Connection Connect() {
  Connection c;
  c.listener = Listener::Listen({"127.0.0.1", 0}).value();
  c.sender = ConnectTcp(c.listener.endpoint(), DeadlineIn(kHopDeadline)).value();
  c.receiver = c.listener.Accept(DeadlineIn(kHopDeadline)).value();
  return c;
}

void Check(const Status& status, benchmark::State* state = nullptr) {
  if (status.ok()) return;
  if (state != nullptr) state->SkipWithError(status.message().c_str());
  std::fprintf(stderr, "transport_bench: %s\n", status.message().c_str());
}

FrameHeader CreditFrame() {
  FrameHeader credit;
  credit.type = FrameType::kCredit;
  return credit;
}

void BM_TransportHop(benchmark::State& state) {
  const int64_t bytes = state.range(0);
  Connection c = Connect();
  std::thread receiver([&c, bytes] {
    std::vector<uint8_t> buffer(static_cast<size_t>(bytes));
    const FrameHeader credit = CreditFrame();
    for (;;) {
      FrameHeader header;
      Status status = c.receiver.ReceiveHeader(&header, FrameLimits{}, DeadlineIn(kHopDeadline));
      if (!status.ok() || header.type == FrameType::kEnd) return Check(status);
      status =
          c.receiver.ReceiveExact(buffer.data(), header.payload_bytes, DeadlineIn(kHopDeadline));
      if (status.ok()) status = c.receiver.SendFrame(credit, nullptr, DeadlineIn(kHopDeadline));
      if (!status.ok()) return Check(status);
    }
  });

  const std::vector<uint8_t> payload(static_cast<size_t>(bytes), 0x5a);
  FrameHeader header = TensorFrameHeader(FrameType::kActivation, 0, DType::kUInt8, {bytes}).value();
  for (auto _ : state) {
    ++header.batch_id;
    Check(c.sender.SendFrame(header, payload.data(), DeadlineIn(kHopDeadline)), &state);
    FrameHeader credit;
    Check(c.sender.ReceiveHeader(&credit, FrameLimits{}, DeadlineIn(kHopDeadline)), &state);
  }
  FrameHeader end;
  end.type = FrameType::kEnd;
  Check(c.sender.SendFrame(end, nullptr, DeadlineIn(kHopDeadline)));
  receiver.join();
  state.SetBytesProcessed(state.iterations() * bytes);
}

// Plain blocking I/O on the same connection kind (TCP_NODELAY, same buffers).
void MakeBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK); }

bool SendAll(int fd, const uint8_t* data, size_t bytes) {
  while (bytes > 0) {
    const ssize_t n = ::send(fd, data, bytes, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

bool RecvAll(int fd, uint8_t* data, size_t bytes) {
  while (bytes > 0) {
    const ssize_t n = ::recv(fd, data, bytes, 0);
    if (n <= 0) return false;
    data += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

void BM_RawHop(benchmark::State& state) {
  const int64_t bytes = state.range(0);
  Connection c = Connect();
  MakeBlocking(c.sender.fd());
  MakeBlocking(c.receiver.fd());
  const int receiver_fd = c.receiver.fd();
  std::thread receiver([receiver_fd, bytes] {
    std::vector<uint8_t> buffer(static_cast<size_t>(bytes));
    uint8_t header[kFrameHeaderBytes];
    for (;;) {
      if (!RecvAll(receiver_fd, header, sizeof(header))) return;
      Result<FrameHeader> decoded = DecodeFrameHeader(header, FrameLimits{});
      if (!decoded.ok() || decoded->type == FrameType::kEnd) return Check(decoded.status());
      if (!RecvAll(receiver_fd, buffer.data(), decoded->payload_bytes)) return;
      EncodeFrameHeader(CreditFrame(), header);
      if (!SendAll(receiver_fd, header, sizeof(header))) return;
    }
  });

  const std::vector<uint8_t> payload(static_cast<size_t>(bytes), 0x5a);
  std::vector<uint8_t> staging(kFrameHeaderBytes + static_cast<size_t>(bytes));
  FrameHeader header = TensorFrameHeader(FrameType::kActivation, 0, DType::kUInt8, {bytes}).value();
  uint8_t credit[kFrameHeaderBytes];
  for (auto _ : state) {
    ++header.batch_id;
    EncodeFrameHeader(header, staging.data());
    std::memcpy(staging.data() + kFrameHeaderBytes, payload.data(), payload.size());
    if (!SendAll(c.sender.fd(), staging.data(), staging.size()) ||
        !RecvAll(c.sender.fd(), credit, sizeof(credit))) {
      state.SkipWithError("raw send/recv failed");
      break;
    }
  }
  FrameHeader end;
  end.type = FrameType::kEnd;
  EncodeFrameHeader(end, credit);
  SendAll(c.sender.fd(), credit, sizeof(credit));
  receiver.join();
  state.SetBytesProcessed(state.iterations() * bytes);
}

}  // namespace
}  // namespace paretopipe

int main(int argc, char** argv) {
  for (int64_t bytes : {int64_t{4} << 10, int64_t{64} << 10, int64_t{1} << 20, int64_t{4} << 20,
                        int64_t{16} << 20}) {
    // Real time: the work is split between two threads and the kernel.
    benchmark::RegisterBenchmark("transport_hop", paretopipe::BM_TransportHop)
        ->Arg(bytes)
        ->UseRealTime();
    benchmark::RegisterBenchmark("raw_hop", paretopipe::BM_RawHop)->Arg(bytes)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
