// Per-hop cost of each backend (tcp, grpc, torch) on loopback, through the
// same Link interface the pipeline uses. grpc and torch only when this build
// has them (PARETOPIPE_HAVE_GRPC, PARETOPIPE_HAVE_TORCH_BACKEND from
// bench/CMakeLists.txt).
//
//   BM_Hop/<backend>/N:    latency. The sender sends one activation frame of
//                          N bytes; the receiver takes header and payload into
//                          its own buffer and returns a header-only credit on a
//                          second link, which the sender waits for. Time per
//                          iteration: one frame of N bytes plus one credit.
//   BM_Stream/<backend>/N: throughput. As a pipeline with --window 4: the
//                          sender keeps up to 4 frames in flight and waits for
//                          a credit only when 4 are outstanding. Time per
//                          iteration: one frame at steady state.
// bytes/s counts payload bytes only. Backends of one size are registered
// back to back, so drift of this shared machine hits them alike: compare
// them as ratios within one run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport/frame.h"
#include "transport/link.h"
#include "transport/socket.h"
#if PARETOPIPE_HAVE_GRPC
#include "transport/grpc_link.h"
#endif
#if PARETOPIPE_HAVE_TORCH_BACKEND
#include "transport/gloo_link.h"
#endif

namespace paretopipe {
namespace {

// Generous: a hop of 16 MiB on loopback takes milliseconds, not seconds.
constexpr std::chrono::seconds kHopDeadline(30);
constexpr int kWindow = 4;

void Check(const Status& status, benchmark::State* state = nullptr) {
  if (status.ok()) return;
  if (state != nullptr) state->SkipWithError(status.message().c_str());
  std::fprintf(stderr, "backend_bench: %s\n", status.message().c_str());
}

// Two one-way links between A and B: frames A -> B, credits B -> A.
struct LinkPair {
  std::unique_ptr<Link> frames_out, frames_in, credits_out, credits_in;
  // What must outlive the links (a gRPC server, Gloo groups).
  std::shared_ptr<void> keep;
};

LinkPair TcpPair() {
  Listener listener = Listener::Listen({"127.0.0.1", 0}).value();
  auto accept = [&] { return listener.Accept(DeadlineIn(kHopDeadline)).value(); };
  Socket a_out = ConnectTcp(listener.endpoint(), DeadlineIn(kHopDeadline)).value();
  Socket b_in = accept();
  Socket b_out = ConnectTcp(listener.endpoint(), DeadlineIn(kHopDeadline)).value();
  Socket a_in = accept();
  LinkPair p;
  p.frames_out = std::make_unique<TcpLink>(std::move(a_out));
  p.frames_in = std::make_unique<TcpLink>(std::move(b_in));
  p.credits_out = std::make_unique<TcpLink>(std::move(b_out));
  p.credits_in = std::make_unique<TcpLink>(std::move(a_in));
  return p;
}

#if PARETOPIPE_HAVE_GRPC
LinkPair GrpcPair() {
  struct Inbox {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::unique_ptr<Link>> links;
  };
  auto inbox = std::make_shared<Inbox>();
  std::shared_ptr<GrpcLinkServer> server =
      GrpcLinkServer::Start({"127.0.0.1", 0},
                            [inbox](const std::string& role, int64_t, std::unique_ptr<Link> link) {
                              std::lock_guard<std::mutex> lock(inbox->mu);
                              inbox->links[role] = std::move(link);
                              inbox->cv.notify_all();
                            })
          .value();
  const Endpoint at{"127.0.0.1", server->port()};
  LinkPair p;
  p.frames_out = ConnectGrpcLink(at, "data", 1, DeadlineIn(kHopDeadline)).value();
  p.credits_out = ConnectGrpcLink(at, "credit", 1, DeadlineIn(kHopDeadline)).value();
  // Each stream reaches the server when it opens, before its first frame.
  p.keep = server;
  auto take = [inbox](const std::string& role) {
    std::unique_lock<std::mutex> lock(inbox->mu);
    inbox->cv.wait_for(lock, kHopDeadline, [&] { return inbox->links.count(role) > 0; });
    return std::move(inbox->links[role]);
  };
  p.frames_in = take("data");
  p.credits_in = take("credit");
  return p;
}
#endif  // PARETOPIPE_HAVE_GRPC

#if PARETOPIPE_HAVE_TORCH_BACKEND
LinkPair TorchPair() {
  GlooGroup::Options o;
  o.world_size = 2;
  o.store_host = o.bind_host = "127.0.0.1";
  o.prefix = "bench";
  o.timeout = kHopDeadline;
  o.rank = 0;
  std::shared_ptr<GlooGroup> a = GlooGroup::Create(o).value();
  o.rank = 1;
  o.store_port = a->store_port();
  std::shared_ptr<GlooGroup> b = GlooGroup::Create(o).value();
  Status joined_b;
  std::thread join_b([&] { joined_b = b->Join(DeadlineIn(kHopDeadline)); });
  Check(a->Join(DeadlineIn(kHopDeadline)));
  join_b.join();
  Check(joined_b);
  LinkPair p;
  p.frames_out = a->MakeLink(1, 0, true, "rank 1");
  p.frames_in = b->MakeLink(0, 0, false, "rank 0");
  p.credits_out = b->MakeLink(0, 1, true, "rank 0");
  p.credits_in = a->MakeLink(1, 1, false, "rank 1");
  p.keep = std::make_shared<std::pair<std::shared_ptr<GlooGroup>, std::shared_ptr<GlooGroup>>>(a, b);
  return p;
}
#endif  // PARETOPIPE_HAVE_TORCH_BACKEND

// The link pair makers of this build's backends; the benchmarks' first
// argument indexes this.
using PairMaker = LinkPair (*)();
const std::vector<PairMaker>& Backends() {
  static const std::vector<PairMaker> built = {
    TcpPair,
#if PARETOPIPE_HAVE_GRPC
    GrpcPair,
#endif
#if PARETOPIPE_HAVE_TORCH_BACKEND
    TorchPair,
#endif
  };
  return built;
}

// Receives one frame (header, then payload into `buffer`); false at the end.
bool ReceiveFrame(Link& link, std::vector<uint8_t>& buffer, Status* status) {
  FrameHeader h;
  *status = link.WaitForFrame(DeadlineIn(kHopDeadline));
  if (status->ok()) *status = link.ReceiveHeader(&h, FrameLimits{}, DeadlineIn(kHopDeadline));
  if (!status->ok() || h.type == FrameType::kEnd) return false;
  *status = link.ReceivePayload(buffer.data(), h.payload_bytes, DeadlineIn(kHopDeadline));
  return status->ok();
}

// The receiving stage: every frame is answered by a credit. Adds up where
// the receiver's time went inside the backend (LinkTiming) into `timing`.
std::thread StartReceiver(LinkPair& p, int64_t bytes, LinkTiming* timing, int64_t* frames) {
  return std::thread([&p, bytes, timing, frames] {
    std::vector<uint8_t> buffer(static_cast<size_t>(bytes));
    FrameHeader credit;
    credit.type = FrameType::kCredit;
    Status status;
    while (ReceiveFrame(*p.frames_in, buffer, &status)) {
      const LinkTiming t = p.frames_in->last_receive_timing();
      timing->deserialize_ns += t.deserialize_ns;
      timing->queued_ns += t.queued_ns;
      ++*frames;
      status = p.credits_out->Send(credit, nullptr, DeadlineIn(kHopDeadline));
      if (!status.ok()) break;
    }
    Check(status);
  });
}

// The sender's side, as a pipeline's source has it: a thread that takes
// credits as they come (with torch, a credit's send waits until its receive
// is posted, so credits must always be awaited) and the loop that waits for
// one when `window` frames are outstanding.
void Run(benchmark::State& state, int window) {
  const int64_t bytes = state.range(1);
  LinkPair p = Backends()[static_cast<size_t>(state.range(0))]();
  LinkTiming received;
  int64_t received_frames = 0;
  std::thread receiver = StartReceiver(p, bytes, &received, &received_frames);
  int64_t serialize_ns = 0;
  std::mutex mu;
  std::condition_variable cv;
  int64_t sent = 0, credited = 0;
  bool done = false;
  std::thread credits([&] {
    FrameHeader credit;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return done || credited < sent; });
        if (credited == sent) return;  // Done and nothing outstanding.
      }
      Status s = p.credits_in->WaitForFrame(DeadlineIn(kHopDeadline));
      if (s.ok()) s = p.credits_in->ReceiveHeader(&credit, FrameLimits{}, DeadlineIn(kHopDeadline));
      if (!s.ok()) return Check(s);
      std::lock_guard<std::mutex> lock(mu);
      ++credited;
      cv.notify_all();
    }
  });
  const std::vector<uint8_t> payload(static_cast<size_t>(bytes), 0x5a);
  FrameHeader header = TensorFrameHeader(FrameType::kActivation, 0, DType::kUInt8, {bytes}).value();
  auto wait_until_outstanding_below = [&](int64_t limit) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, kHopDeadline, [&] { return sent - credited < limit; });
  };
  for (auto _ : state) {
    wait_until_outstanding_below(window);
    ++header.batch_id;
    {
      std::lock_guard<std::mutex> lock(mu);
      ++sent;
      cv.notify_all();
    }
    Check(p.frames_out->Send(header, payload.data(), DeadlineIn(kHopDeadline)), &state);
    serialize_ns += p.frames_out->last_send_timing().serialize_ns;
    if (window == 1) wait_until_outstanding_below(1);
  }
  wait_until_outstanding_below(1);
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  }
  credits.join();
  FrameHeader end;
  end.type = FrameType::kEnd;
  Check(p.frames_out->Send(end, nullptr, DeadlineIn(kHopDeadline)));
  receiver.join();
  state.SetBytesProcessed(state.iterations() * bytes);
  state.SetLabel(p.frames_out->backend());
  // Per frame, µs: inside the backend, as the per-hop breakdown has them.
  const double frames = std::max<int64_t>(1, received_frames);
  state.counters["ser_us"] = serialize_ns / 1e3 / std::max<int64_t>(1, state.iterations());
  state.counters["deser_us"] = received.deserialize_ns / 1e3 / frames;
  state.counters["queued_us"] = received.queued_ns / 1e3 / frames;
}

void BM_Hop(benchmark::State& state) { Run(state, 1); }
void BM_Stream(benchmark::State& state) { Run(state, kWindow); }

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t bytes : {4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20}) {
    for (size_t backend = 0; backend < Backends().size(); ++backend) {
      b->Args({static_cast<int64_t>(backend), bytes});
    }
  }
  b->ArgNames({"backend", "bytes"})->UseRealTime();
}

BENCHMARK(BM_Hop)->Apply(Sizes);
BENCHMARK(BM_Stream)->Apply(Sizes);

}  // namespace
}  // namespace paretopipe

BENCHMARK_MAIN();
