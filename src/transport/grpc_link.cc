#include "transport/grpc_link.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/method_handler.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

#include "transport/pipeline.grpc.pb.h"
#include "util/auth.h"

namespace paretopipe {
namespace {

// gRPC keeps the method name as a static string, so it must be a literal; the
// assertion ties it to the .proto.
constexpr char kFramesMethod[] = "/paretopipe.wire.Pipeline/Frames";
constexpr char kChallengeMethod[] = "/paretopipe.wire.Pipeline/Challenge";
static_assert(std::string_view(wire::Pipeline::service_full_name()) == "paretopipe.wire.Pipeline");

constexpr char kRoleKey[] = "pp-role";
constexpr char kRunIdKey[] = "pp-run-id";
constexpr char kNonceKey[] = "pp-nonce";
constexpr char kProofKey[] = "pp-proof";

// Challenges a server remembers at once: far more than the links of any
// run, few enough that a stranger asking for challenges in a loop cannot
// exhaust memory (each entry is a few hundred bytes).
constexpr size_t kMaxPendingChallenges = 4096;
constexpr const char* kRoles[] = {"data", "credit"};

// gRPC's message limits are ints; its 4 MiB default receive limit would
// refuse most activations. Frame sizes are checked against FrameLimits.
constexpr int kMaxMessageBytes = std::numeric_limits<int>::max();

// Frames a receiving link holds, fully arrived, before its stream stops
// reading and HTTP/2 flow control pushes back on the sender.
constexpr size_t kReceiveQueueFrames = 2;

// Destroying a server waits this long for streams to end before cancelling them.
constexpr auto kServerShutdownGrace = std::chrono::seconds(1);
// Destroying a sending link waits this long for the receiver to take the
// frames in flight (the stream's clean end) before cancelling the stream.
constexpr auto kCloseGrace = std::chrono::seconds(5);

// Keepalive pings find a peer that stopped answering (a frozen host, a
// partition) where TCP alone would wait for minutes, and close the connection.
constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 10'000;
// After a failed Send, how long gRPC may keep the payload. Destroying the
// call frees what gRPC still queues at once; bytes already in a socket write
// wait for the peer to read them, or for keepalive to close the connection.
constexpr auto kReleaseAfterCancel =
    std::chrono::milliseconds(2 * kKeepaliveTimeMs + 2 * kKeepaliveTimeoutMs);

int64_t NsSince(Clock::time_point begin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begin).count();
}

// gRPC takes system-clock deadlines; ours are steady-clock. Clamped so that a
// far deadline does not overflow.
std::chrono::system_clock::time_point ToSystemDeadline(Deadline deadline) {
  const auto left = std::clamp<Clock::duration>(deadline - Clock::now(), Clock::duration::zero(),
                                                std::chrono::hours(24 * 365));
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(left);
}

bool KnownRole(std::string_view role) {
  return std::find(std::begin(kRoles), std::end(kRoles), role) != std::end(kRoles);
}

// ---- A frame as a protobuf-encoded wire::Frame (see pipeline.proto) ----

constexpr uint8_t kHeaderTag = (wire::Frame::kHeaderFieldNumber << 3) | 2;  // Length-delimited.
constexpr uint8_t kPayloadTag = (wire::Frame::kPayloadFieldNumber << 3) | 2;
constexpr size_t kMaxVarintBytes = 10;
// Everything of a message but the payload: header field and payload field tag.
constexpr size_t kMaxPrefixBytes = 1 + 2 + kFrameHeaderBytes + 1 + kMaxVarintBytes;

size_t PutVarint(uint64_t value, uint8_t* out) {
  size_t n = 0;
  for (; value >= 0x80; value >>= 7) out[n++] = static_cast<uint8_t>(value | 0x80);
  out[n++] = static_cast<uint8_t>(value);
  return n;
}

// Parses a varint at `*at`, advancing it. False if it runs past `end` or 64 bits.
bool GetVarint(const uint8_t** at, const uint8_t* end, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *at < end; shift += 7) {
    const uint8_t byte = *(*at)++;
    *value |= uint64_t{byte & 0x7fu} << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

// Writes the message bytes before the payload; returns their count.
size_t EncodePrefix(const FrameHeader& header, uint8_t* out) {
  size_t n = 0;
  out[n++] = kHeaderTag;
  n += PutVarint(kFrameHeaderBytes, out + n);
  EncodeFrameHeader(header, out + n);
  n += kFrameHeaderBytes;
  if (header.payload_bytes > 0) {
    out[n++] = kPayloadTag;
    n += PutVarint(header.payload_bytes, out + n);
  }
  return n;
}

// Copies `bytes` bytes from `slices`, starting `offset` bytes in, to `out`.
void CopyOut(const std::vector<grpc::Slice>& slices, size_t offset, size_t bytes, uint8_t* out) {
  for (const grpc::Slice& s : slices) {
    if (bytes == 0) break;
    if (offset >= s.size()) {
      offset -= s.size();
      continue;
    }
    const size_t n = std::min(bytes, s.size() - offset);
    std::memcpy(out, s.begin() + offset, n);
    out += n;
    bytes -= n;
    offset = 0;
  }
}

// ---- Sending ----

// Set when gRPC drops its last reference to a payload slice: from then on
// the caller's memory is the caller's again.
struct PayloadRelease {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;

  // The slice's destroy callback; `arg` is a heap-allocated reference, so the
  // callback stays safe even if nobody waits any more.
  static void OnRelease(void* arg) {
    auto* self = static_cast<std::shared_ptr<PayloadRelease>*>(arg);
    {
      std::lock_guard<std::mutex> lock((*self)->mu);
      (*self)->released = true;
    }
    (*self)->cv.notify_all();
    delete self;
  }
  bool WaitUntil(Deadline deadline) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_until(lock, deadline, [&] { return released; });
  }
};

// The frame as one gRPC message: the prefix copied, the payload referenced.
grpc::ByteBuffer FrameMessage(const uint8_t* prefix, size_t prefix_bytes, const void* payload,
                              size_t payload_bytes,
                              const std::shared_ptr<PayloadRelease>& release) {
  grpc::Slice parts[2] = {grpc::Slice(prefix, prefix_bytes), grpc::Slice()};
  if (payload_bytes == 0) return grpc::ByteBuffer(parts, 1);
  // gRPC only reads the payload; its slice type has no const flavour.
  parts[1] = grpc::Slice(const_cast<void*>(payload), payload_bytes, &PayloadRelease::OnRelease,
                         new std::shared_ptr<PayloadRelease>(release));
  return grpc::ByteBuffer(parts, 2);
}

grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  // A pool of its own per channel: links never share a connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // gRPC's retry support keeps every message of a streaming call until the
  // call is committed (the server's first response, or 256 KiB sent), so
  // Send would wait for its payload's release in vain. Frames are never
  // worth retrying anyway: a failed stream fails the run.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Retry a refused connection soon (gRPC's default first wait is 1 s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  // Keep pinging while the stream is idle between runs (default: 2 pings, then silence).
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return args;
}

class GrpcSendLink final : public Link {
 public:
  explicit GrpcSendLink(std::string peer) : peer_(std::move(peer)) {
    watchdog_ = std::thread([this] { Watch(); });
  }
  ~GrpcSendLink() override;

  // Opens the stream on a connected channel, with `metadata` besides the
  // role and run id. Unavailable if it is not open by `deadline`.
  Status Open(std::shared_ptr<grpc::Channel> channel, const std::string& role, int64_t run_id,
              const std::map<std::string, std::string>& metadata, Deadline deadline);

  const char* backend() const override { return "grpc"; }
  const std::string& peer() const override { return peer_; }
  Status Send(const FrameHeader& header, const void* payload, Deadline deadline) override;
  Status WaitForFrame(Deadline) override { return OnlySends(); }
  Status ReceiveHeader(FrameHeader*, const FrameLimits&, Deadline) override { return OnlySends(); }
  Status ReceivePayload(void*, size_t, Deadline) override { return OnlySends(); }
  void Shutdown() override;
  LinkTiming last_send_timing() const override { return send_timing_; }

 private:
  Status OnlySends() const {
    return Status::InvalidArgument(fmt::format("gRPC link to {} only sends", peer_));
  }
  bool ShutDown() {
    std::lock_guard<std::mutex> lock(mu_);
    return shut_down_;
  }
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    if (context_) context_->TryCancel();
  }
  // Sync gRPC writes have no deadline of their own: the watchdog cancels the
  // call when an armed deadline passes. Disarm() says whether it fired.
  void Arm(Deadline deadline);
  bool Disarm();
  void Watch();
  // Waits for the call's final status (at most kCloseGrace, then cancels) and
  // destroys the call, which is what makes gRPC drop the messages a failed
  // stream still holds. REQUIRES: the call is open.
  grpc::Status EndCall();

  const std::string peer_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ByteBuffer response_;
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer_;  // Null once the call ended.
  Status broken_;  // Set when the call ends: every later Send returns it.
  LinkTiming send_timing_;

  std::mutex mu_;
  std::condition_variable cv_;
  // Other threads only cancel it, under mu_; the sending thread destroys it under mu_.
  std::unique_ptr<grpc::ClientContext> context_;
  bool shut_down_ = false;
  bool stop_watchdog_ = false;
  std::optional<Deadline> armed_;
  bool fired_ = false;
  std::thread watchdog_;
};

Status GrpcSendLink::Open(std::shared_ptr<grpc::Channel> channel, const std::string& role,
                          int64_t run_id, const std::map<std::string, std::string>& metadata,
                          Deadline deadline) {
  channel_ = std::move(channel);
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = std::make_unique<grpc::ClientContext>();
  }
  context_->AddMetadata(kRoleKey, role);
  context_->AddMetadata(kRunIdKey, std::to_string(run_id));
  for (const auto& [key, value] : metadata) context_->AddMetadata(key, value);
  static const grpc::internal::RpcMethod method(kFramesMethod,
                                                grpc::internal::RpcMethod::CLIENT_STREAMING);
  Arm(deadline);
  // Blocks until the call's headers are sent.
  writer_.reset(grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
      channel_.get(), method, context_.get(), &response_));
  if (Disarm()) {
    broken_ = Status::Unavailable(fmt::format("gRPC {}: stream not open by the deadline", peer_));
  }
  return broken_;
}

GrpcSendLink::~GrpcSendLink() {
  if (writer_) {
    if (broken_.ok() && !ShutDown()) {
      // A clean end, so that the receiver gets every frame already sent; a
      // cancel would drop those gRPC has not handed to the receiver yet.
      Arm(Clock::now() + kCloseGrace);
      writer_->WritesDone();
    } else {
      Cancel();
    }
    EndCall();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_watchdog_ = true;
  }
  cv_.notify_all();
  watchdog_.join();
}

void GrpcSendLink::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
  }
  Cancel();  // Wakes a blocked Write.
}

void GrpcSendLink::Arm(Deadline deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = deadline;
    fired_ = false;
  }
  cv_.notify_all();
}

bool GrpcSendLink::Disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_.reset();
  return fired_;
}

void GrpcSendLink::Watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_watchdog_) {
    if (!armed_) {
      cv_.wait(lock);
    } else if (Clock::now() < *armed_) {
      cv_.wait_until(lock, *armed_);
    } else {
      armed_.reset();
      fired_ = true;
      if (context_) context_->TryCancel();
    }
  }
}

grpc::Status GrpcSendLink::EndCall() {
  // Armed by the caller for a clean end; otherwise the call has failed or is
  // cancelled and its status is known at once.
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!armed_) armed_ = Clock::now() + kCloseGrace;
  }
  cv_.notify_all();
  const grpc::Status status = writer_->Finish();
  Disarm();
  writer_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  context_.reset();
  return status;
}

Status GrpcSendLink::Send(const FrameHeader& header, const void* payload, Deadline deadline) {
  if (ShutDown()) return Status::Unavailable(fmt::format("gRPC link to {} was shut down", peer_));
  if (!broken_.ok()) return broken_;
  // Checked here so a bad header fails at its origin, as TcpLink's does.
  FrameLimits no_limit;
  no_limit.max_payload_bytes = std::numeric_limits<uint64_t>::max();
  PP_RETURN_IF_ERROR(ValidateFrameHeader(header, no_limit).WithContext("send to " + peer_));
  if (header.payload_bytes > 0 && payload == nullptr) {
    return Status::InvalidArgument(
        fmt::format("send to {}: {} payload bytes at null", peer_, header.payload_bytes));
  }
  if (header.payload_bytes > kMaxMessageBytes - kMaxPrefixBytes) {
    return Status::InvalidArgument(
        fmt::format("send to {}: frame payload {} bytes exceeds gRPC's message limit of {} bytes",
                    peer_, header.payload_bytes, kMaxMessageBytes - kMaxPrefixBytes));
  }

  const Clock::time_point begin = Clock::now();
  uint8_t prefix[kMaxPrefixBytes];
  const size_t prefix_bytes = EncodePrefix(header, prefix);
  auto release = header.payload_bytes > 0 ? std::make_shared<PayloadRelease>() : nullptr;
  grpc::ByteBuffer message =
      FrameMessage(prefix, prefix_bytes, payload, header.payload_bytes, release);
  send_timing_ = {};
  send_timing_.serialize_ns = NsSince(begin);

  Arm(deadline);
  const bool written = writer_->Write(message);
  message.Clear();  // Drops our reference to the payload: only gRPC's remain.
  const bool late = written && release && !release->WaitUntil(deadline);
  const bool timed_out = Disarm() || late;
  if (written && !timed_out) return Status::Ok();

  // The stream is lost. A failed stream keeps its messages until its call is
  // destroyed, so the payload is the caller's again only after EndCall.
  if (timed_out) Cancel();
  const grpc::Status status = EndCall();
  if (release && !release->WaitUntil(Clock::now() + kReleaseAfterCancel)) {
    broken_ = Status::Internal(fmt::format(
        "send to {}: gRPC still holds the payload {} ms after the stream ended", peer_,
        std::chrono::duration_cast<std::chrono::milliseconds>(kReleaseAfterCancel).count()));
  } else if (ShutDown()) {
    broken_ = Status::Unavailable(fmt::format("gRPC link to {} was shut down", peer_));
  } else if (timed_out) {
    broken_ = Status::Unavailable(fmt::format(
        "send to {}: frame of {} bytes not taken before the deadline (receiver not reading?)",
        peer_, header.payload_bytes));
  } else {
    broken_ = Status::Unavailable(fmt::format("peer {} closed the stream: {} (gRPC status {})",
                                              peer_, status.error_message(),
                                              static_cast<int>(status.error_code())));
  }
  return broken_;
}

// ---- Receiving ----

// What a receiving link shares with the server thread that reads its stream.
// Either may end first: the stream (the peer closed it) or the link.
struct StreamQueue {
  struct Arrival {
    grpc::ByteBuffer message;
    Clock::time_point arrived;
  };

  explicit StreamQueue(std::string peer_address) : peer(std::move(peer_address)) {}

  // Ends the stream from this side: wakes every wait, cancels the call.
  void Shutdown(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!shut_down) reason = why;
      shut_down = true;
      if (context != nullptr) context->TryCancel();
    }
    cv.notify_all();
  }

  const std::string peer;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Arrival> frames;              // At most kReceiveQueueFrames.
  grpc::ServerContext* context = nullptr;  // While the server thread reads the stream.
  bool shut_down = false;                  // By the link or the server; `reason` says which.
  bool ended = false;                      // The stream ended: no frames after `frames`.
  std::string reason;                      // Why no more frames come.
};

class GrpcReceiveLink final : public Link {
 public:
  explicit GrpcReceiveLink(std::shared_ptr<StreamQueue> queue) : queue_(std::move(queue)) {}
  ~GrpcReceiveLink() override { queue_->Shutdown("receiving link closed"); }

  const char* backend() const override { return "grpc"; }
  const std::string& peer() const override { return queue_->peer; }
  Status Send(const FrameHeader&, const void*, Deadline) override {
    return Status::InvalidArgument(fmt::format("gRPC link from {} only receives", peer()));
  }
  Status WaitForFrame(Deadline deadline) override;
  Status ReceiveHeader(FrameHeader* header, const FrameLimits& limits, Deadline deadline) override;
  Status ReceivePayload(void* out, size_t bytes, Deadline deadline) override;
  void Shutdown() override {
    queue_->Shutdown(fmt::format("gRPC link from {} was shut down here", peer()));
  }
  LinkTiming last_receive_timing() const override { return receive_timing_; }

 private:
  // Unavailable once the link is shut down, even with frames still queued.
  Status CheckOpen() {
    std::lock_guard<std::mutex> lock(queue_->mu);
    return queue_->shut_down ? Status::Unavailable(queue_->reason) : Status::Ok();
  }
  Status Malformed(size_t message_bytes, const std::string& why) {
    message_.Clear();
    slices_.clear();
    return Status::InvalidArgument(
        fmt::format("from {}: message of {} bytes is not a frame: {}", peer(), message_bytes, why));
  }

  std::shared_ptr<StreamQueue> queue_;
  // The frame taken from the queue, until its payload has been received.
  grpc::ByteBuffer message_;
  std::vector<grpc::Slice> slices_;  // message_'s bytes, once its header is read.
  size_t payload_offset_ = 0;
  uint64_t payload_bytes_ = 0;
  LinkTiming receive_timing_;
};

Status GrpcReceiveLink::WaitForFrame(Deadline deadline) {
  PP_RETURN_IF_ERROR(CheckOpen());
  if (message_.Valid()) return Status::Ok();
  std::unique_lock<std::mutex> lock(queue_->mu);
  StreamQueue& q = *queue_;
  q.cv.wait_until(lock, deadline, [&] { return q.shut_down || q.ended || !q.frames.empty(); });
  if (q.shut_down) return Status::Unavailable(q.reason);
  if (q.frames.empty()) {
    return Status::Unavailable(
        q.ended ? q.reason : fmt::format("no frame from {} before the deadline", peer()));
  }
  message_.Swap(&q.frames.front().message);
  receive_timing_ = {};
  receive_timing_.queued_ns = NsSince(q.frames.front().arrived);
  q.frames.pop_front();
  lock.unlock();
  q.cv.notify_all();  // Room for the server thread's next message.
  return Status::Ok();
}

Status GrpcReceiveLink::ReceiveHeader(FrameHeader* header, const FrameLimits& limits,
                                      Deadline deadline) {
  if (!slices_.empty()) {
    return Status::Internal(
        fmt::format("from {}: next header asked for before the payload of the last", peer()));
  }
  PP_RETURN_IF_ERROR(WaitForFrame(deadline));
  const Clock::time_point begin = Clock::now();
  const size_t size = message_.Length();
  if (!message_.Dump(&slices_).ok()) return Malformed(size, "gRPC cannot read it");

  uint8_t prefix[kMaxPrefixBytes];
  const size_t prefix_bytes = std::min(size, kMaxPrefixBytes);
  CopyOut(slices_, 0, prefix_bytes, prefix);
  const uint8_t* at = prefix;
  const uint8_t* end = prefix + prefix_bytes;
  uint64_t field_bytes = 0;
  if (prefix_bytes < 3 + kFrameHeaderBytes || *at++ != kHeaderTag ||
      !GetVarint(&at, end, &field_bytes) || field_bytes != kFrameHeaderBytes ||
      end - at < static_cast<ptrdiff_t>(kFrameHeaderBytes)) {
    return Malformed(size, fmt::format("no {}-byte header field first", kFrameHeaderBytes));
  }
  Result<FrameHeader> decoded = DecodeFrameHeader(at, limits);
  if (!decoded.ok()) {
    message_.Clear();
    slices_.clear();
    return decoded.status().WithContext(fmt::format("frame from {}", peer()));
  }
  at += kFrameHeaderBytes;
  payload_bytes_ = decoded->payload_bytes;
  if (payload_bytes_ > 0 && (at == end || *at++ != kPayloadTag ||
                             !GetVarint(&at, end, &field_bytes) || field_bytes != payload_bytes_)) {
    return Malformed(size,
                     fmt::format("no payload field of {} bytes after the header", payload_bytes_));
  }
  payload_offset_ = static_cast<size_t>(at - prefix);
  if (size != payload_offset_ + payload_bytes_) {
    return Malformed(size, fmt::format("the header announces {} payload bytes", payload_bytes_));
  }
  *header = *decoded;
  receive_timing_.deserialize_ns = NsSince(begin);
  if (payload_bytes_ == 0) {  // The frame is complete: no ReceivePayload needed.
    message_.Clear();
    slices_.clear();
  }
  return Status::Ok();
}

Status GrpcReceiveLink::ReceivePayload(void* out, size_t bytes, Deadline) {
  PP_RETURN_IF_ERROR(CheckOpen());
  if (slices_.empty()) {
    if (bytes == 0) return Status::Ok();
    return Status::Internal(
        fmt::format("from {}: payload of {} bytes asked for before a header", peer(), bytes));
  }
  if (bytes != payload_bytes_) {
    return Status::Internal(fmt::format("from {}: payload of {} bytes asked for, the frame has {}",
                                        peer(), bytes, payload_bytes_));
  }
  const Clock::time_point begin = Clock::now();
  CopyOut(slices_, payload_offset_, bytes, static_cast<uint8_t*>(out));
  message_.Clear();
  slices_.clear();
  receive_timing_.deserialize_ns += NsSince(begin);
  return Status::Ok();
}

// "ipv4:127.0.0.1:5000" as gRPC names peers -> "127.0.0.1:5000".
std::string PeerAddress(const std::string& grpc_peer) {
  for (const char* scheme : {"ipv4:", "ipv6:"}) {
    if (grpc_peer.rfind(scheme, 0) == 0) return grpc_peer.substr(std::strlen(scheme));
  }
  return grpc_peer;
}

std::optional<std::string> Metadata(const grpc::ServerContext& context, const char* key) {
  auto it = context.client_metadata().find(key);
  if (it == context.client_metadata().end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

// The service, with messages as raw ByteBuffers (see pipeline.proto). Each
// stream runs on one of gRPC's sync server threads, which reads it into the
// stream's queue.
class FrameService final : public grpc::Service {
 public:
  FrameService(GrpcLinkServer::Accept accept, GrpcSecurity security)
      : accept_(std::move(accept)), security_(std::move(security)) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        kFramesMethod, grpc::internal::RpcMethod::CLIENT_STREAMING,
        new grpc::internal::ClientStreamingHandler<FrameService, grpc::ByteBuffer,
                                                   grpc::ByteBuffer>(
            [](FrameService* self, grpc::ServerContext* context,
               grpc::ServerReader<grpc::ByteBuffer>* reader,
               grpc::ByteBuffer* response) { return self->Frames(context, reader, response); },
            this)));
    AddMethod(new grpc::internal::RpcServiceMethod(
        kChallengeMethod, grpc::internal::RpcMethod::NORMAL_RPC,
        new grpc::internal::RpcMethodHandler<FrameService, wire::ChallengeRequest,
                                             wire::ChallengeReply>(
            [](FrameService* self, grpc::ServerContext* context,
               const wire::ChallengeRequest* request,
               wire::ChallengeReply* reply) { return self->Challenge(context, *request, reply); },
            this)));
  }

  // Ends every open stream and refuses new ones, so that no server thread
  // stays blocked on a link nobody reads.
  void Stop() {
    std::set<std::shared_ptr<StreamQueue>> open;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      open = open_;
    }
    for (const auto& q : open) q->Shutdown(fmt::format("gRPC server for {} stopped", q->peer));
  }

 private:
  // A challenge handed out and not yet used.
  struct Pending {
    AuthTranscript transcript;  // Complete: the server's nonce is the map's key.
    Clock::time_point expires;
  };

  grpc::Status Frames(grpc::ServerContext* context, grpc::ServerReader<grpc::ByteBuffer>* reader,
                      grpc::ByteBuffer* response);
  grpc::Status Challenge(grpc::ServerContext* context, const wire::ChallengeRequest& request,
                         wire::ChallengeReply* reply);
  // OK when the stream's metadata carries a proof for a pending challenge of
  // this role and run id; the challenge is used up either way.
  grpc::Status Authenticate(const grpc::ServerContext& context, const std::string& role,
                            int64_t run_id);

  const GrpcLinkServer::Accept accept_;
  const GrpcSecurity security_;
  std::mutex mu_;
  bool stopping_ = false;
  std::set<std::shared_ptr<StreamQueue>> open_;
  std::map<std::string, Pending> challenges_;  // By the server's nonce.
};

bool IsHexNonce(const std::string& text) {
  return text.size() == 2 * kAuthNonceBytes && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

grpc::Status FrameService::Challenge(grpc::ServerContext* /*context*/,
                                     const wire::ChallengeRequest& request,
                                     wire::ChallengeReply* reply) {
  if (security_.secret.empty()) {
    reply->set_auth_required(false);
    return grpc::Status::OK;
  }
  if (!IsHexNonce(request.client_nonce()) || !KnownRole(request.role())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "challenge: client_nonce must be 64 hex digits and role data or credit");
  }
  Result<std::string> nonce = RandomHex(kAuthNonceBytes);
  if (!nonce.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, nonce.status().message());
  const AuthTranscript t{request.role(), request.run_id(), request.client_nonce(), *nonce};
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Clock::time_point now = Clock::now();
    for (auto it = challenges_.begin(); it != challenges_.end();) {
      it = it->second.expires < now ? challenges_.erase(it) : std::next(it);
    }
    if (challenges_.size() >= kMaxPendingChallenges) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many challenges pending");
    }
    challenges_[*nonce] = Pending{t, now + security_.challenge_lifetime};
  }
  reply->set_auth_required(true);
  reply->set_server_nonce(*nonce);
  reply->set_server_proof(AuthProof(security_.secret, AuthSide::kWorker, t));
  return grpc::Status::OK;
}

grpc::Status FrameService::Authenticate(const grpc::ServerContext& context, const std::string& role,
                                        int64_t run_id) {
  const std::optional<std::string> nonce = Metadata(context, kNonceKey);
  const std::optional<std::string> proof = Metadata(context, kProofKey);
  std::optional<Pending> pending;
  if (nonce) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = challenges_.find(*nonce);
    if (it != challenges_.end()) {
      pending = it->second;
      challenges_.erase(it);  // Once only: a replayed opening finds nothing.
    }
  }
  std::string why;
  if (!nonce || !proof) {
    why = fmt::format("no {} and {} metadata (the sender has no token?)", kNonceKey, kProofKey);
  } else if (!pending) {
    why = "unknown or already used challenge (a replay?)";
  } else if (pending->expires < Clock::now()) {
    why = "challenge expired";
  } else if (pending->transcript.role != role || pending->transcript.run_id != run_id ||
             !ProofsEqual(*proof,
                          AuthProof(security_.secret, AuthSide::kClient, pending->transcript))) {
    why = "wrong proof";
  } else {
    return grpc::Status::OK;
  }
  const std::string peer = PeerAddress(context.peer());
  if (security_.on_refused) security_.on_refused(peer, why);
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      fmt::format("authentication failed: {}", why));
}

grpc::Status FrameService::Frames(grpc::ServerContext* context,
                                  grpc::ServerReader<grpc::ByteBuffer>* reader,
                                  grpc::ByteBuffer* response) {
  const std::optional<std::string> role = Metadata(*context, kRoleKey);
  const std::optional<std::string> run_text = Metadata(*context, kRunIdKey);
  int64_t run_id = 0;
  if (!role || !KnownRole(*role)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        fmt::format("metadata {} must be 'data' or 'credit'", kRoleKey));
  }
  if (!run_text || run_text->empty() ||
      std::from_chars(run_text->data(), run_text->data() + run_text->size(), run_id).ptr !=
          run_text->data() + run_text->size()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        fmt::format("metadata {} must be a decimal int64", kRunIdKey));
  }
  if (!security_.secret.empty()) {
    grpc::Status admitted = Authenticate(*context, *role, run_id);
    if (!admitted.ok()) return admitted;
  }

  auto queue = std::make_shared<StreamQueue>(PeerAddress(context->peer()));
  queue->context = context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is stopping");
    open_.insert(queue);
  }
  try {
    accept_(*role, run_id, std::make_unique<GrpcReceiveLink>(queue));
  } catch (...) {
    queue->Shutdown("the server's accept callback failed");
  }

  grpc::ByteBuffer message;
  while (reader->Read(&message)) {
    const Clock::time_point arrived = Clock::now();
    std::unique_lock<std::mutex> lock(queue->mu);
    queue->cv.wait(lock,
                   [&] { return queue->shut_down || queue->frames.size() < kReceiveQueueFrames; });
    if (queue->shut_down) break;
    queue->frames.push_back({grpc::ByteBuffer(), arrived});
    queue->frames.back().message.Swap(&message);
    lock.unlock();
    queue->cv.notify_all();
  }

  bool shut_down;
  {
    std::lock_guard<std::mutex> lock(queue->mu);
    queue->context = nullptr;
    queue->ended = true;
    shut_down = queue->shut_down;
    if (!shut_down) {
      queue->reason = fmt::format("peer {} closed the stream{}", queue->peer,
                                  context->IsCancelled() ? " (cancelled)" : "");
    }
  }
  queue->cv.notify_all();
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_.erase(queue);
  }
  if (shut_down) return grpc::Status(grpc::StatusCode::CANCELLED, "the receiver ended the stream");
  grpc::Slice empty;  // An empty wire::FramesDone.
  *response = grpc::ByteBuffer(&empty, 1);
  return grpc::Status::OK;
}

}  // namespace

// ---- GrpcLinkServer ----

struct GrpcLinkServer::Impl {
  Impl(Accept accept, const GrpcSecurity& security) : service(std::move(accept), security) {}
  FrameService service;
  std::unique_ptr<grpc::Server> server;
  uint16_t port = 0;
};

GrpcLinkServer::GrpcLinkServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<GrpcLinkServer>> GrpcLinkServer::Start(const Endpoint& endpoint,
                                                              Accept accept,
                                                              const GrpcSecurity& security) {
  auto impl = std::make_unique<Impl>(std::move(accept), security);
  const std::string address =
      fmt::format("{}:{}", endpoint.host.empty() ? "0.0.0.0" : endpoint.host, endpoint.port);
  const bool tls = !security.tls_cert_pem.empty() || !security.tls_key_pem.empty();
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (tls) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({security.tls_key_pem, security.tls_cert_pem});
    credentials = grpc::SslServerCredentials(ssl);
  }
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // gRPC sets SO_REUSEPORT by default, so a second server on a taken port
  // would start and silently share it; fail as TCP's listener does.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Accept the clients' keepalive pings: the stream carries no data from the
  // server, and by default the server would count the pings as abuse and
  // close the connection.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kKeepaliveTimeMs / 2);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.RegisterService(&impl->service);
  impl->server = builder.BuildAndStart();
  if (!impl->server || port <= 0) {
    return Status::Unavailable(
        tls ? fmt::format("gRPC server cannot listen on {} with TLS (is the certificate PEM and "
                          "the key its private key?)",
                          address)
            : fmt::format("gRPC server cannot listen on {}", address));
  }
  impl->port = static_cast<uint16_t>(port);
  return std::unique_ptr<GrpcLinkServer>(new GrpcLinkServer(std::move(impl)));
}

GrpcLinkServer::~GrpcLinkServer() {
  impl_->service.Stop();
  impl_->server->Shutdown(ToSystemDeadline(Clock::now() + kServerShutdownGrace));
  impl_->server->Wait();
}

uint16_t GrpcLinkServer::port() const { return impl_->port; }

Result<std::unique_ptr<Link>> ConnectGrpcLink(const Endpoint& endpoint, const std::string& role,
                                              int64_t run_id, Deadline deadline,
                                              const GrpcSecurity& security) {
  const std::string target = endpoint.ToString();
  if (!KnownRole(role)) {
    return Status::InvalidArgument(
        fmt::format("gRPC link to {}: role '{}' is neither 'data' nor 'credit'", target, role));
  }
  const bool tls = !security.tls_ca_pem.empty();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = security.tls_ca_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateCustomChannel(target, credentials, ChannelArgs());
  if (!channel->WaitForConnected(ToSystemDeadline(deadline))) {
    // gRPC keeps retrying a failed TLS handshake like a refused connection,
    // so both end here; say what to check.
    return Status::Unavailable(
        tls ? fmt::format("cannot connect to gRPC server {} over TLS by the deadline: no server "
                          "there, a plaintext one, or its certificate is not signed by the "
                          "--tls-ca CA or does not name {}",
                          target, endpoint.host)
            : fmt::format("cannot connect to gRPC server {}: not connected by the deadline",
                          target));
  }

  // Every link asks for a challenge, with a secret or without: a server and
  // a client that disagree about authentication then fail here, clearly,
  // instead of at the first frame.
  AuthTranscript t{role, run_id, "", ""};
  PP_ASSIGN_OR_RETURN(t.client_nonce, RandomHex(kAuthNonceBytes));
  wire::ChallengeRequest request;
  request.set_client_nonce(t.client_nonce);
  request.set_role(role);
  request.set_run_id(run_id);
  wire::ChallengeReply reply;
  grpc::ClientContext context;
  context.set_deadline(ToSystemDeadline(deadline));
  const grpc::Status challenged =
      wire::Pipeline::NewStub(channel)->Challenge(&context, request, &reply);
  if (!challenged.ok()) {
    return Status::Unavailable(fmt::format("gRPC link to {}: challenge failed: {} (gRPC status {})",
                                           target, challenged.error_message(),
                                           static_cast<int>(challenged.error_code())));
  }
  std::map<std::string, std::string> metadata;
  if (reply.auth_required() && security.secret.empty()) {
    return Status::InvalidArgument(fmt::format(
        "gRPC server {} refused the link: authentication required (its worker has a token; give "
        "the same --token-file)",
        target));
  }
  if (!reply.auth_required() && !security.secret.empty()) {
    return Status::InvalidArgument(fmt::format(
        "gRPC server {} has no token (its worker was started without --token-file) and this side "
        "has one: refusing to send unauthenticated",
        target));
  }
  if (reply.auth_required()) {
    t.worker_nonce = reply.server_nonce();
    if (!ProofsEqual(reply.server_proof(), AuthProof(security.secret, AuthSide::kWorker, t))) {
      return Status::InvalidArgument(fmt::format(
          "gRPC server {} failed authentication: its proof does not match this side's token (a "
          "different --token-file?)",
          target));
    }
    metadata[kNonceKey] = t.worker_nonce;
    metadata[kProofKey] = AuthProof(security.secret, AuthSide::kClient, t);
  }
  auto link = std::make_unique<GrpcSendLink>(target);
  PP_RETURN_IF_ERROR(link->Open(std::move(channel), role, run_id, metadata, deadline));
  return std::unique_ptr<Link>(std::move(link));
}

}  // namespace paretopipe
