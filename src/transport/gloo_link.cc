#include "transport/gloo_link.h"

#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "transport/gloo_c10d.h"

namespace paretopipe {
namespace {

using std::chrono::milliseconds;

// The part of an exception worth a user's line: c10 errors without their
// backtrace, Gloo's without the advice paragraphs after the first line.
std::string Describe(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10_error != nullptr ? c10_error->what_without_backtrace() : e.what();
  return text.substr(0, text.find('\n'));
}

// Rounded up, so that a wait of this long ends at or after the deadline.
milliseconds TimeLeft(Deadline deadline) {
  return std::chrono::ceil<milliseconds>(deadline - Clock::now());
}

int64_t NanosSince(Clock::time_point begin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begin).count();
}

class GlooLink final : public Link {
 public:
  // `unusable` is non-OK when the link cannot work (group not joined, bad
  // rank): every call then returns it.
  GlooLink(c10::intrusive_ptr<c10d::ProcessGroupGloo> group, int peer_rank, int tag, bool sending,
           std::string peer, Status unusable)
      : group_(std::move(group)),
        peer_rank_(peer_rank),
        tag_(tag),
        sending_(sending),
        peer_(std::move(peer)),
        failure_(std::move(unusable)) {}

  ~GlooLink() override { Shutdown(); }

  const char* backend() const override { return "torch"; }
  const std::string& peer() const override { return peer_; }
  Status Send(const FrameHeader& header, const void* payload, Deadline deadline) override;
  Status WaitForFrame(Deadline deadline) override;
  Status ReceiveHeader(FrameHeader* header, const FrameLimits& limits, Deadline deadline) override;
  Status ReceivePayload(void* out, size_t bytes, Deadline deadline) override;
  void Shutdown() override;
  LinkTiming last_send_timing() const override { return send_timing_; }
  LinkTiming last_receive_timing() const override { return receive_timing_; }

 private:
  Status ShutDownStatus() const { return Status::Unavailable(peer_ + ": link shut down"); }
  Status CheckDirection(bool sending) const;
  // Sends (or receives, as the link goes) one message of `bytes` bytes at
  // `data` and waits for it until `deadline`. `what` names it in errors.
  Status Transfer(void* data, size_t bytes, Deadline deadline, const char* what);
  Status Fail(Status status) { return failure_ = std::move(status); }

  const c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  const int peer_rank_;
  const int tag_;
  const bool sending_;
  const std::string peer_;

  std::mutex mu_;  // Orders posting a message against Shutdown() aborting it.
  c10::intrusive_ptr<c10d::Work> pending_;  // Guarded by mu_.
  std::atomic<bool> shut_down_{false};

  // The rest is touched only by the one thread using the link.
  // The first failure, returned by every later call: after a Gloo error the
  // group's connections are closed, and after a refused header the messages
  // on the tag are no longer at a frame boundary.
  Status failure_;
  // Header buffers are members because Gloo holds them until the message
  // completes or the link is shut down.
  std::array<uint8_t, kFrameHeaderBytes> send_header_{};
  std::array<uint8_t, kFrameHeaderBytes> receive_header_{};
  bool header_waiting_ = false;   // WaitForFrame received it; ReceiveHeader has not taken it.
  uint64_t payload_pending_ = 0;  // Bytes the frame header announced, not yet received.
  LinkTiming send_timing_;
  LinkTiming receive_timing_;
};

Status GlooLink::CheckDirection(bool sending) const {
  if (sending == sending_) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("link with {} only {}", peer_, sending_ ? "sends" : "receives"));
}

Status GlooLink::Transfer(void* data, size_t bytes, Deadline deadline, const char* what) {
  // Formatted only on failure: no allocation per message.
  auto context = [&] {
    return fmt::format("{} {} {} {}", sending_ ? "sending" : "receiving", what,
                       sending_ ? "to" : "from", peer_);
  };
  if (!failure_.ok()) return failure_;
  if (shut_down_) return ShutDownStatus();
  // Checked before posting: a message never posted leaves the group intact.
  if (TimeLeft(deadline).count() <= 0) {
    return Status::Unavailable(context() + ": deadline passed before it began");
  }

  c10::intrusive_ptr<c10d::Work> work;
  try {
    std::vector<at::Tensor> tensors{
        at::from_blob(data, {static_cast<int64_t>(bytes)}, at::TensorOptions(at::kByte))};
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return ShutDownStatus();
    work = sending_ ? group_->send(tensors, peer_rank_, tag_)
                    : group_->recv(tensors, peer_rank_, tag_);
    pending_ = work;
  } catch (const std::exception& e) {
    return Fail(Status::Unavailable(fmt::format("{}: {}", context(), Describe(e))));
  }

  Status status;
  try {
    // One wait for all the time left, never polling in short waits: a Gloo
    // wait that times out closes the group's connections. Gloo reads a
    // timeout of 0 as "forever", hence at least 1 ms.
    if (!work->wait(std::max(TimeLeft(deadline), milliseconds(1))) && !shut_down_) {
      status = Status::Internal(context() + ": aborted by Gloo");
    }
  } catch (const std::exception& e) {
    status = Status::Unavailable(
        fmt::format("{}{}: {}", context(),
                    Clock::now() >= deadline ? ": not done before the deadline" : "", Describe(e)));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.reset();
  }
  // Dropping the work frees Gloo's buffer: after an abort Gloo no longer
  // writes into `data`, which the caller may free once we return.
  work.reset();
  if (shut_down_) return ShutDownStatus();
  if (!status.ok()) return Fail(status);
  return Status::Ok();
}

Status GlooLink::Send(const FrameHeader& header, const void* payload, Deadline deadline) {
  send_timing_ = {};
  PP_RETURN_IF_ERROR(CheckDirection(true));
  // Checked here so a bad header fails at its origin, as TcpLink does.
  FrameLimits no_limit;
  no_limit.max_payload_bytes = std::numeric_limits<uint64_t>::max();
  PP_RETURN_IF_ERROR(ValidateFrameHeader(header, no_limit).WithContext("send to " + peer_));
  if (payload == nullptr && header.payload_bytes > 0) {
    return Status::InvalidArgument(
        fmt::format("send to {}: null payload of {} bytes", peer_, header.payload_bytes));
  }

  const auto begin = Clock::now();
  EncodeFrameHeader(header, send_header_.data());
  send_timing_.serialize_ns = NanosSince(begin);
  PP_RETURN_IF_ERROR(Transfer(send_header_.data(), kFrameHeaderBytes, deadline, "frame header"));
  if (header.payload_bytes == 0) return Status::Ok();
  Status sent = Transfer(const_cast<void*>(payload), header.payload_bytes, deadline, "payload");
  // The header went alone: the receiver now expects a payload that will not come.
  if (!sent.ok() && failure_.ok() && !shut_down_) Fail(sent);
  return sent;
}

Status GlooLink::WaitForFrame(Deadline deadline) {
  PP_RETURN_IF_ERROR(CheckDirection(false));
  if (header_waiting_) return Status::Ok();
  if (payload_pending_ > 0 && failure_.ok()) {
    return Status::InvalidArgument(
        fmt::format("link with {}: the previous frame's {} payload bytes were not received", peer_,
                    payload_pending_));
  }
  PP_RETURN_IF_ERROR(Transfer(receive_header_.data(), kFrameHeaderBytes, deadline, "frame header"));
  header_waiting_ = true;
  return Status::Ok();
}

Status GlooLink::ReceiveHeader(FrameHeader* header, const FrameLimits& limits, Deadline deadline) {
  receive_timing_ = {};
  PP_RETURN_IF_ERROR(WaitForFrame(deadline));
  header_waiting_ = false;
  const auto begin = Clock::now();
  Result<FrameHeader> decoded = DecodeFrameHeader(receive_header_.data(), limits);
  receive_timing_.deserialize_ns = NanosSince(begin);
  if (!decoded.ok()) return Fail(decoded.status().WithContext("frame header from " + peer_));
  *header = std::move(decoded).value();
  payload_pending_ = header->payload_bytes;
  return Status::Ok();
}

Status GlooLink::ReceivePayload(void* out, size_t bytes, Deadline deadline) {
  PP_RETURN_IF_ERROR(CheckDirection(false));
  if (!failure_.ok()) return failure_;
  // Never post a receive of another size than the sender's message: Gloo
  // terminates the process when a message exceeds its receive.
  if (bytes != payload_pending_) {
    return Status::InvalidArgument(
        fmt::format("payload from {}: asked for {} bytes, the frame header announced {}", peer_,
                    bytes, payload_pending_));
  }
  if (bytes == 0) return Status::Ok();
  if (out == nullptr) {
    return Status::InvalidArgument(fmt::format("payload from {}: null buffer", peer_));
  }
  PP_RETURN_IF_ERROR(Transfer(out, bytes, deadline, "payload"));
  payload_pending_ = 0;
  return Status::Ok();
}

void GlooLink::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  if (!pending_) return;
  try {
    // Makes the blocked wait return (normally, without an exception); the
    // shut_down_ flag tells it why.
    pending_->abort();
  } catch (const std::exception&) {
    // Nothing left to wake: the work has failed or completed already.
  }
}

// Gloo writes to its sockets without MSG_NOSIGNAL, so a write to a peer that
// just vanished would kill this process with SIGPIPE rather than fail the
// send. Ignored unless the program installed a handler of its own.
void IgnoreSigpipeUnlessHandled() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
}

// Connects a client to the store at host:port. c10d gives up at once on a
// refused connection, but rank 0 may still be starting: retry, as ConnectTcp
// does, until `deadline`. Throws the last error.
c10::intrusive_ptr<c10d::TCPStore> ConnectStore(const std::string& host, uint16_t port,
                                                milliseconds cap, Deadline deadline) {
  constexpr milliseconds kRetryInterval(200);
  while (true) {
    try {
      c10d::TCPStoreOptions options;
      options.port = port;
      options.timeout = std::max(std::min(cap, TimeLeft(deadline)), milliseconds(1));
      return c10::make_intrusive<c10d::TCPStore>(host, options);
    } catch (const std::exception&) {
      if (TimeLeft(deadline) <= kRetryInterval) throw;
      std::this_thread::sleep_for(kRetryInterval);
    }
  }
}

}  // namespace

struct GlooGroup::Impl {
  Options options;
  c10::intrusive_ptr<c10d::TCPStore> store;  // Rank 0: since Create; others: since Join.
  c10::intrusive_ptr<c10d::ProcessGroupGloo> process_group;  // Set by a successful Join.
};

GlooGroup::GlooGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GlooGroup::~GlooGroup() {
  try {
    impl_->process_group.reset();  // Before the store: rank 0's peers may still read it.
    impl_->store.reset();
  } catch (const std::exception&) {
    // Nothing to report from a destructor; the process goes on without the group.
  }
}

Result<std::unique_ptr<GlooGroup>> GlooGroup::Create(Options options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return Status::InvalidArgument(fmt::format("gloo group: rank {} is not in a world of {}",
                                               options.rank, options.world_size));
  }
  if (options.store_host.empty() || options.bind_host.empty()) {
    return Status::InvalidArgument("gloo group: store_host and bind_host are required");
  }
  if (options.rank != 0 && options.store_port == 0) {
    return Status::InvalidArgument(
        fmt::format("gloo group: rank {} needs the store port rank 0 picked", options.rank));
  }
  if (options.timeout.count() <= 0) {
    return Status::InvalidArgument("gloo group: timeout must be positive");
  }

  IgnoreSigpipeUnlessHandled();
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const Options& o = impl->options;
  if (o.rank == 0) {
    try {
      c10d::TCPStoreOptions store_options;
      store_options.port = o.store_port;
      store_options.isServer = true;
      store_options.waitWorkers = false;  // Join waits for them, by its deadline.
      store_options.timeout = o.timeout;
      impl->store = c10::make_intrusive<c10d::TCPStore>(o.store_host, store_options);
    } catch (const std::exception& e) {
      return Status::Unavailable(fmt::format("gloo group: starting the store on {}:{}: {}",
                                             o.store_host, o.store_port, Describe(e)));
    }
  }
  return std::unique_ptr<GlooGroup>(new GlooGroup(std::move(impl)));
}

uint16_t GlooGroup::store_port() const {
  return impl_->store ? impl_->store->getPort() : impl_->options.store_port;
}

Status GlooGroup::Join(Deadline deadline) {
  const Options& o = impl_->options;
  const std::string context =
      fmt::format("gloo group: rank {} of {} joining via store {}:{} (prefix '{}')", o.rank,
                  o.world_size, o.store_host, store_port(), o.prefix);
  if (impl_->process_group) return Status::InvalidArgument(context + ": already joined");
  const milliseconds timeout = std::min(o.timeout, TimeLeft(deadline));
  if (timeout.count() <= 0) return Status::Unavailable(context + ": deadline passed");
  try {
    if (!impl_->store) impl_->store = ConnectStore(o.store_host, o.store_port, timeout, deadline);
    // The Gloo rendezvous reads keys with the store's own timeout.
    impl_->store->setTimeout(timeout);
    auto store = c10::make_intrusive<c10d::PrefixStore>(o.prefix, impl_->store);
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(o.bind_host));
    // The pool runs collectives only; send and recv complete on Gloo's device thread.
    gloo_options->threads = 1;
    impl_->process_group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, gloo_options);
  } catch (const std::exception& e) {
    return Status::Unavailable(fmt::format("{}: {}", context, Describe(e)));
  }
  return Status::Ok();
}

std::unique_ptr<Link> GlooGroup::MakeLink(int peer_rank, int tag, bool sending,
                                          std::string peer_label) {
  const Options& o = impl_->options;
  Status usable;
  if (!impl_->process_group) {
    usable = Status::InvalidArgument(
        fmt::format("link with {}: gloo group of rank {} has not joined", peer_label, o.rank));
  } else if (peer_rank < 0 || peer_rank >= o.world_size || peer_rank == o.rank || tag < 0) {
    usable = Status::InvalidArgument(
        fmt::format("link with {}: peer rank {} tag {} invalid for rank {} of {}", peer_label,
                    peer_rank, tag, o.rank, o.world_size));
  }
  return std::make_unique<GlooLink>(impl_->process_group, peer_rank, tag, sending,
                                    std::move(peer_label), std::move(usable));
}

}  // namespace paretopipe
