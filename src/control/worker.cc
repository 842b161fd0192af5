// Worker: accepts connections, serves one orchestrator's control session and
// hands data and credit connections to the stage of the current run.
#include "control/worker.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "control/handshake.h"
#include "control/protocol.h"
#include "control/stage_transport.h"
#include "metrics/machine.h"
#include "model/device.h"
#include "model/segment.h"
#include "model/state_dict.h"
#include "model/torchscript.h"
#include "model/zoo.h"
#include "profile/profiler.h"
#include "runtime/input_set.h"
#include "runtime/stage.h"
#include "runtime/stage_device.h"
#include "runtime/tensor_frame.h"
#include "transport/link_probe.h"
#include "util/digest.h"

namespace paretopipe {
namespace {
using nlohmann::json;

// Control replies are small and immediate; a worker that cannot send one in
// 10 s has lost its orchestrator.
constexpr std::chrono::milliseconds kReplyTimeout{10000};
// The orchestrator reads a stage's tensors from its file before it sends
// them: VGG-16's 528 MB from a slow SD card takes a while.
constexpr std::chrono::minutes kUploadTimeout{5};
// A link probe takes a dozen round trips and a bulk transfer of at most 5 s
// (transport/link_probe.h): a minute covers round trips of seconds.
constexpr std::chrono::seconds kProbeTimeout{60};
// A linkprobe size sweep: within the serving end's probe timeout.
constexpr std::chrono::seconds kSizeProbeTimeout = kProbeTimeout;
// The bounds of a probe_backend sweep, as the probe op's: 32 sizes of 50
// timed messages each, a burst of 1000.
constexpr size_t kMaxProbeSizes = 32;
constexpr int kMaxProbeRepeats = 50;
constexpr int kMaxProbeBurst = 1000;

// `request[field]` as an integer in [min, max], else InvalidArgument naming
// `op` and the field. Not value<int64_t>(): it would cast a float such as
// 1e300 out of range.
Result<int64_t> IntField(const json& request, const char* op, const char* field, int64_t min,
                         int64_t max) {
  const json v = request.value(field, json());
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(max)) ||
      v.get<int64_t>() < min || v.get<int64_t>() > max) {
    return Status::InvalidArgument(fmt::format("{}: {} must be an integer in {}..{}, got {}", op,
                                               field, min, max, v.dump().substr(0, 40)));
  }
  return v.get<int64_t>();
}

struct Connection {
  std::thread thread;
  std::atomic<bool> done{false};
};

// Sends a heartbeat on the control connection every `interval` while it
// lives (one request in progress), so the orchestrator waiting for the reply
// can tell a worker that is busy (building a stage, running a pass) from one
// that is dead or hung. Every other send on the connection meanwhile must
// hold `send_mu`.
class HeartbeatSender {
 public:
  HeartbeatSender(Socket& socket, std::mutex& send_mu, std::chrono::milliseconds interval)
      : thread_([this, &socket, &send_mu, interval] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!stop_cv_.wait_for(lock, interval, [this] { return stop_; })) {
            std::lock_guard<std::mutex> send(send_mu);
            // A full send buffer for a whole interval: the orchestrator reads
            // nothing; its own timeout will end the session.
            if (!SendHeartbeat(socket, DeadlineIn(interval)).ok()) return;
          }
        }) {}
  ~HeartbeatSender() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
  }
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;  // Last: starts once the members above exist.
};

// An orchestrator whose machine vanished (power, Wi-Fi) sends no FIN; TCP
// keepalive notices within about 25 s (10 s idle, 3 probes 5 s apart), so
// the worker is free for the next orchestrator instead of "busy" for an hour.
void EnableKeepalive(Socket& socket) {
  int on = 1, idle_s = 10, interval_s = 5, count = 3;
  setsockopt(socket.fd(), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  setsockopt(socket.fd(), IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
  setsockopt(socket.fd(), IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
  setsockopt(socket.fd(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

// True for addresses only this machine can reach: 127.0.0.0/8, ::1,
// "localhost". Everything else, the wildcard addresses included, is not.
bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  const std::string bare = host.size() > 2 && host.front() == '[' && host.back() == ']'
                               ? host.substr(1, host.size() - 2)
                               : host;
  return inet_pton(AF_INET6, bare.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace

struct Worker::Impl {
  WorkerOptions options;
  Listener listener;
  std::map<std::string, std::string> local_weights;  // SHA-256 -> path.
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::list<Connection> connections;
  bool control_busy = false;
  Socket* control_socket = nullptr;
  StageRunner* running = nullptr;  // The stage while a pass runs, for Stop().
  StageLinks probing;              // The links while probe_backend runs, for Stop().
  std::set<Socket*> probes;        // Link probes in progress, shut down by Stop().

  // Registers a probe's socket for Stop() while it lives.
  struct ProbeGuard {
    ProbeGuard(Impl* im, Socket* s) : im_(im), s_(s) {
      std::lock_guard<std::mutex> lock(im_->mu);
      im_->probes.insert(s_);
    }
    ~ProbeGuard() {
      std::lock_guard<std::mutex> lock(im_->mu);
      im_->probes.erase(s_);
    }
    Impl* im_;
    Socket* s_;
  };

  // Every backend's transport; `tcp` takes the data and credit connections
  // this worker's listener accepts.
  std::vector<std::unique_ptr<StageTransport>> transports;
  AcceptingTransport* tcp = nullptr;

  // The control session's state (touched by the session thread only, except
  // runner->Abort() from Stop()).
  std::string segment_key;
  std::shared_ptr<StageCompute> segment;
  std::shared_ptr<StageDevice> device;  // Where every stage of this worker computes.
  std::unique_ptr<StageRunner> runner;
  // The source's images, kept across runs (a sweep sends them once).
  std::shared_ptr<const InputSet> input_set;
  StageTransport* transport = nullptr;  // The current run's backend.
  // In a probe_backend run (links only, no stage): this end's stage, 0 (the
  // prober) or 1 (the echo); -1 otherwise.
  int probe_stage = -1;

  std::string Name() const { return listener.endpoint().ToString(); }

  // Held by every send on the control connection while a request is in
  // progress (HeartbeatSender sends beside them).
  std::mutex send_mu;
  Status SendControl(Socket& socket, const std::string& json_text) {
    std::lock_guard<std::mutex> lock(send_mu);
    return SendJsonFrame(socket, FrameType::kControl, json_text, DeadlineIn(kReplyTimeout));
  }

  void HandleConnection(Socket socket);
  void HandleConnectionOrThrow(Socket socket);
  void ServeControl(Socket& socket);
  Result<json> Dispatch(Socket& socket, const json& request, int64_t received_ns);
  Result<json> Configure(Socket& socket, const json& request);
  // Asks the orchestrator for config's input set and receives it.
  Result<InputSet> ReceiveInputSet(Socket& socket, const StageConfig& config);
  // Asks the orchestrator for config's TorchScript segment and loads it.
  Result<std::unique_ptr<ScriptSegment>> ReceiveModule(Socket& socket, const StageConfig& config);
  Result<json> Probe(const json& request);
  Result<json> ProbeBackend(const json& request);
  // This worker's transport of `backend` (CheckBackend passed); `op` names
  // the request in the error.
  Result<StageTransport*> TransportFor(const std::string& backend, const char* op) const {
    for (const auto& t : transports) {
      if (backend == t->name()) return t.get();
    }
    return Status::Internal(fmt::format("{}: no transport for backend '{}'", op, backend));
  }
  // Runs `exchange` on this run's links, which Stop() shuts down meanwhile.
  Status WithProbeLinks(const std::function<Status(const StageLinks&)>& exchange);
  Result<json> ProfileDevice(const json& request);
  Result<json> Connect(const json& request);
  Result<json> Pass(Socket& socket, const json& request);
  void EndRun();
};

void Worker::Impl::HandleConnection(Socket socket) {
  const std::string peer = socket.peer();
  // Nothing a peer sends may end the daemon: a JSON field of the wrong type
  // (nlohmann throws) or a failed allocation closes this connection only.
  try {
    HandleConnectionOrThrow(std::move(socket));
  } catch (const std::exception& e) {
    spdlog::warn("worker {}: connection from {} closed: {}", Name(), peer, e.what());
  }
}

void Worker::Impl::HandleConnectionOrThrow(Socket socket) {
  const std::string peer = socket.peer();
  // With a token, the whole challenge-response fits in the hello timeout:
  // a stranger cannot hold a connection (and its thread) longer.
  Result<json> hello = AcceptHello(socket, options.secret, DeadlineIn(options.hello_timeout));
  if (!hello.ok()) {
    spdlog::warn("worker {}: connection from {} closed: {}", Name(), peer,
                 hello.status().message());
    return;
  }
  const std::string role = hello->value("role", "");
  if (role == kRoleControl) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (control_busy) {
        spdlog::warn("worker {}: refused orchestrator {}: another one is connected", Name(), peer);
        const std::string reason = "worker busy: another orchestrator is connected";
        socket.SendFrame(TextFrameHeader(FrameType::kError, reason.size()).value(), reason.data(),
                         DeadlineIn(kReplyTimeout));
        return;
      }
      control_busy = true;
      control_socket = &socket;
    }
    EnableKeepalive(socket);
    spdlog::info("worker {}: orchestrator {} connected", Name(), peer);
    ServeControl(socket);
    spdlog::info("worker {}: orchestrator {} disconnected", Name(), peer);
    EndRun();
    std::lock_guard<std::mutex> lock(mu);
    control_busy = false;
    control_socket = nullptr;
    return;
  }
  if (role == kRoleProbe) {
    ProbeGuard guard(this, &socket);
    const Status s = stopping ? Status::Unavailable("stopping")
                              : ServeLinkProbe(socket, DeadlineIn(kProbeTimeout));
    if (!s.ok()) spdlog::info("worker {}: link probe from {}: {}", Name(), peer, s.message());
    return;
  }
  if (role == kRoleData || role == kRoleCredit) {
    if (Status s = ApplySocketOptions(socket, SocketOptions{}); !s.ok()) {
      spdlog::warn("worker {}: connection from {} closed: {}", Name(), peer, s.message());
      return;
    }
    // Not value<int64_t>(): it would cast a float such as 1e300 out of range.
    const json run_id = hello->value("run_id", json(-1));
    if (!run_id.is_number_integer()) {
      spdlog::warn("worker {}: connection from {} closed: hello run_id must be an integer, got {}",
                   Name(), peer, run_id.dump().substr(0, 40));
      return;
    }
    tcp->Deliver(role, run_id.get<int64_t>(), std::make_unique<TcpLink>(std::move(socket)));
    return;
  }
  spdlog::warn("worker {}: connection from {} closed: unknown role '{}'", Name(), peer, role);
}

void Worker::Impl::ServeControl(Socket& socket) {
  while (!stopping) {
    FrameHeader h;
    Status s = socket.ReceiveHeader(&h, FrameLimits{kMaxControlPayloadBytes},
                                    DeadlineIn(options.idle_session_timeout));
    std::string text;
    if (s.ok() && h.type != FrameType::kControl) {
      s = Status::InvalidArgument(
          fmt::format("expected a control frame, got {}", FrameTypeName(h.type)));
    }
    if (s.ok()) {
      text.resize(h.payload_bytes);
      s = socket.ReceiveExact(text.data(), text.size(), DeadlineIn(kReplyTimeout));
    }
    const int64_t received_ns = SteadyNowNs();
    if (!s.ok()) {
      if (!stopping) spdlog::info("worker {}: control session ended: {}", Name(), s.message());
      return;
    }
    Result<json> request = ParseJsonObject(text, "control message");
    Result<json> reply = Status::Internal("not dispatched");
    try {
      // The clock exchange and info answer at once: no heartbeat thread in
      // the middle of a clock sample.
      const std::string op =
          request.ok() && request->is_object() ? request->value("op", "") : std::string();
      std::optional<HeartbeatSender> heartbeat;
      if (op != "clock" && op != "info") {
        heartbeat.emplace(socket, send_mu, options.heartbeat_interval);
      }
      reply =
          request.ok() ? Dispatch(socket, *request, received_ns) : Result<json>(request.status());
    } catch (const std::exception& e) {  // A field of the wrong type, a failed allocation.
      reply = Status::InvalidArgument(fmt::format("malformed control message: {}", e.what()));
    }
    json out = reply.ok() ? *reply : ErrorReply(reply.status());
    if (!reply.ok()) spdlog::warn("worker {}: {}", Name(), reply.status().message());
    if (out.contains("t2")) out["t2"] = SteadyNowNs();
    if (!SendJsonFrame(socket, FrameType::kControl, out.dump(), DeadlineIn(kReplyTimeout)).ok())
      return;
    // A pass's kept outputs follow its reply as tensor frames.
    if (reply.ok() && (*request)["op"] == "pass" && runner) {
      for (const KeptOutput& o : runner->TakeOutputs()) {
        Result<FrameHeader> fh =
            TensorFrameHeader(FrameType::kTensor, o.batch_id, DType::kFloat32, o.shape);
        if (!fh.ok() || !socket.SendFrame(*fh, o.values.data(), DeadlineIn(kReplyTimeout)).ok())
          return;
      }
    }
  }
}

Result<json> Worker::Impl::Dispatch(Socket& socket, const json& request, int64_t received_ns) {
  const std::string op = request.value("op", "");
  if (op == "clock") return json{{"ok", true}, {"t1", received_ns}, {"t2", 0}};
  if (op == "info") {
    json ports = json::object();
    for (const auto& t : transports) ports[t->name()] = t->port();
    return json{{"ok", true},
                {"backends", std::move(ports)},
                {"machine", MachineToJson(DescribeMachine())},
                {"threads", options.threads},
                {"device", device->name()},
                {"device_name", device->description()},
                {"protocol", kProtocolVersion},
                {"pid", static_cast<int64_t>(getpid())}};
  }
  if (op == "probe") return Probe(request);
  if (op == "probe_backend") return ProbeBackend(request);
  if (op == "profile") return ProfileDevice(request);
  if (op == "configure") return Configure(socket, request);
  if (op == "connect") return Connect(request);
  if (op == "pass") return Pass(socket, request);
  if (op == "finish") {
    EndRun();
    return json{{"ok", true}};
  }
  return Status::InvalidArgument(fmt::format("unknown control operation '{}'", op));
}

// Measures the network to `target` (the next stage's worker) from here, so
// the probe crosses the path the activations take.
Result<json> Worker::Impl::Probe(const json& request) {
  PP_ASSIGN_OR_RETURN(Endpoint target, ParseEndpoint(request.value("target", "")));
  const Deadline deadline = DeadlineIn(kProbeTimeout);
  // Kernel-tuned buffers: the probe measures the path, not our 4 MiB choice.
  PP_ASSIGN_OR_RETURN(
      Socket socket,
      ConnectTcp(target, std::min(deadline, DeadlineIn(kReplyTimeout)), SocketOptions{true, 0}));
  ProbeGuard guard(this, &socket);
  if (stopping) return Status::Unavailable("worker stopping");
  PP_RETURN_IF_ERROR(SayHello(socket, kRoleProbe, -1, this->options.secret,
                              std::min(deadline, DeadlineIn(this->options.hello_timeout)))
                         .WithContext(fmt::format("probe to worker {}", target.ToString())));
  if (request.contains("sizes")) {  // `paretopipe linkprobe`'s size sweep.
    const json& sizes = request["sizes"];
    const json repeats = request.value("repeats", json(5)),
               burst = request.value("burst", json(20));
    std::vector<int64_t> bytes;
    if (!sizes.is_array() || sizes.empty() || sizes.size() > 32) {
      return Status::InvalidArgument("probe: sizes must be an array of 1 to 32 sizes");
    }
    for (const json& s : sizes) {
      if (!s.is_number_integer()) return Status::InvalidArgument("probe: a size is not an integer");
      bytes.push_back(s.get<int64_t>());
    }
    if (!repeats.is_number_integer() || repeats.get<int64_t>() < 1 || repeats.get<int64_t>() > 50 ||
        !burst.is_number_integer() || burst.get<int64_t>() < 2 || burst.get<int64_t>() > 1000) {
      return Status::InvalidArgument("probe: repeats must be 1..50 and burst 2..1000");
    }
    PP_ASSIGN_OR_RETURN(MessageSizeProbe r,
                        ProbeMessageSizes(socket, bytes, repeats.get<int>(), burst.get<int>(),
                                          DeadlineIn(kSizeProbeTimeout)));
    return json{{"ok", true},
                {"sizes_probe",
                 {{"bytes", r.bytes},
                  {"rtt_ms", r.rtt_ms},
                  {"burst_ms_per_message", r.burst_ms_per_message}}}};
  }
  LinkProbeOptions options;
  // Not value<int64_t>(): it would convert a float such as 1e300 with an
  // undefined cast.
  const json bulk = request.value("min_bulk_ms", json(0));
  if (!bulk.is_number_integer()) {
    return Status::InvalidArgument(
        fmt::format("probe: min_bulk_ms must be an integer, got {}", bulk.dump().substr(0, 40)));
  }
  // Capped below at 10 s anyway; the cap first keeps 2^64 - 1 from wrapping.
  const int64_t bulk_ms =
      bulk.is_number_unsigned()
          ? static_cast<int64_t>(std::min<uint64_t>(bulk.get<uint64_t>(), 10000))
          : bulk.get<int64_t>();
  if (bulk_ms > 0) {
    options.bulk_min = std::chrono::milliseconds(std::min<int64_t>(bulk_ms, 10000));
    options.bulk_max = std::max(options.bulk_max, options.bulk_min);
  }
  PP_ASSIGN_OR_RETURN(LinkProbeResult r, ProbeLink(socket, options, deadline));
  return json{{"ok", true},
              {"probe",
               {{"pings", r.pings},
                {"rtt_ms_min", r.rtt_ms_min},
                {"rtt_ms_median", r.rtt_ms_median},
                {"rtt_ms_max", r.rtt_ms_max},
                {"bandwidth_mbit", r.bandwidth_mbit},
                {"bulk_bytes", r.bulk_bytes},
                {"bulk_s", r.bulk_s}}}};
}

// `paretopipe linkprobe --backend`: a 2-stage run of links only, no model,
// on the chosen backend's own Links. "begin" sets it up as configure does (and,
// like configure, ends the current run: a pass cannot be running, the session
// reads its next request only after a pass's reply); the orchestrator then
// sends "connect" to both ends, "echo" to stage 1 and "time" to stage 0, and
// "finish" to both.
Result<json> Worker::Impl::ProbeBackend(const json& request) {
  const json step = request.value("step", json());
  if (step == "begin") {
    EndRun();
    // Strings as configure's (docs/protocol.md, "Limits").
    for (const char* field : {"backend", "self", "peer"}) {
      const json v = request.value(field, json());
      if (!v.is_string() || v.get_ref<const std::string&>().size() > 256) {
        return Status::InvalidArgument(
            fmt::format("probe_backend: {} must be a string of at most 256 bytes, got {}", field,
                        v.dump().substr(0, 40)));
      }
    }
    StageConfig config;
    config.backend = request.at("backend").get<std::string>();
    PP_RETURN_IF_ERROR(CheckBackend(config.backend).WithContext("probe_backend: backend"));
    PP_ASSIGN_OR_RETURN(config.run_id, IntField(request, "probe_backend", "run_id", 1,
                                                std::numeric_limits<int64_t>::max()));
    PP_ASSIGN_OR_RETURN(const int64_t stage, IntField(request, "probe_backend", "stage", 0, 1));
    config.stage = static_cast<int>(stage);
    config.stages = 2;
    config.self = request.at("self").get<std::string>();
    // Stage 0 opens the data link to its peer, stage 1 the credit link back.
    (stage == 0 ? config.next : config.source) = request.at("peer").get<std::string>();
    config.device = device->name();
    // The links' own timeout: a probe of the largest sizes stays within it.
    config.stall_timeout = kSizeProbeTimeout;
    PP_ASSIGN_OR_RETURN(StageTransport * chosen, TransportFor(config.backend, "probe_backend"));
    PP_RETURN_IF_ERROR(chosen->Admit(config).WithContext(
        fmt::format("probe_backend: {} backend", config.backend)));
    transport = chosen;
    probe_stage = config.stage;
    transport->BeginRun(config);
    spdlog::info("worker {}: run {}: link probe, stage {} of 2, {}", Name(), config.run_id,
                 config.stage + 1, config.backend);
    return json{{"ok", true}};
  }
  if (step == "echo") {
    if (probe_stage != 1) {
      return Status::InvalidArgument("probe_backend: echo: no link probe begun as stage 1");
    }
    PP_ASSIGN_OR_RETURN(
        const int64_t messages,
        IntField(request, "probe_backend", "messages", 1,
                 LinkProbeMessages(kMaxProbeSizes, kMaxProbeRepeats, kMaxProbeBurst)));
    const Deadline deadline = DeadlineIn(kSizeProbeTimeout);
    PP_RETURN_IF_ERROR(WithProbeLinks([&](const StageLinks& links) {
      return EchoLinkProbe(*links.in, *links.credits_out, messages, deadline);
    }));
    return json{{"ok", true}, {"messages", messages}};
  }
  if (step == "time") {
    if (probe_stage != 0) {
      return Status::InvalidArgument("probe_backend: time: no link probe begun as stage 0");
    }
    const json sizes = request.value("sizes", json());
    if (!sizes.is_array() || sizes.empty() || sizes.size() > kMaxProbeSizes) {
      return Status::InvalidArgument(
          fmt::format("probe_backend: sizes must be an array of 1 to {} sizes", kMaxProbeSizes));
    }
    std::vector<int64_t> bytes;
    for (const json& size : sizes) {
      if (!size.is_number_integer() || size.get<int64_t>() < 1 ||
          size.get<int64_t>() > (int64_t{64} << 20)) {
        return Status::InvalidArgument(
            fmt::format("probe_backend: sizes: {} is not an integer in 1..67108864",
                        size.dump().substr(0, 40)));
      }
      bytes.push_back(size.get<int64_t>());
    }
    PP_ASSIGN_OR_RETURN(const int64_t repeats,
                        IntField(request, "probe_backend", "repeats", 1, kMaxProbeRepeats));
    PP_ASSIGN_OR_RETURN(const int64_t burst,
                        IntField(request, "probe_backend", "burst", 2, kMaxProbeBurst));
    const Deadline deadline = DeadlineIn(kSizeProbeTimeout);
    MessageSizeProbe r;
    PP_RETURN_IF_ERROR(WithProbeLinks([&](const StageLinks& links) {
      Result<MessageSizeProbe> timed =
          ProbeLinkMessageSizes(*links.out, *links.credits_in, bytes, static_cast<int>(repeats),
                                static_cast<int>(burst), deadline);
      if (timed.ok()) r = std::move(timed).value();
      return timed.status();
    }));
    return json{{"ok", true},
                {"sizes_probe",
                 {{"bytes", r.bytes},
                  {"rtt_ms", r.rtt_ms},
                  {"burst_ms_per_message", r.burst_ms_per_message}}}};
  }
  return Status::InvalidArgument(fmt::format(
      "probe_backend: step must be begin, echo or time, got {}", step.dump().substr(0, 40)));
}

Status Worker::Impl::WithProbeLinks(const std::function<Status(const StageLinks&)>& exchange) {
  StageLinks links;
  PP_RETURN_IF_ERROR(transport->TakeLinks(DeadlineIn(options.link_timeout), &links));
  // A stage that skipped connect has the links its peer opened, not its own.
  if (probe_stage == 0 ? !links.out || !links.credits_in : !links.in || !links.credits_out) {
    return Status::InvalidArgument("probe_backend: this end's links are not open: connect first");
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return Status::Unavailable("worker stopping");
    probing = links;
  }
  Status s = exchange(links);
  std::lock_guard<std::mutex> lock(mu);
  probing = StageLinks();
  return s;
}

// Times every block of a zoo model here, on this worker's device and threads
// (profile/profiler.h), so that a planner sees this machine, not the
// orchestrator's. Only a zoo model: a TorchScript file is a path on the
// orchestrator's machine, and a worker never opens a path from the network.
Result<json> Worker::Impl::ProfileDevice(const json& request) {
  PP_ASSIGN_OR_RETURN(ProfileRequest profile, ProfileRequestFromJson(request));
  if (IsTorchScriptFile(profile.model.name)) {
    return Status::InvalidArgument(fmt::format(
        "profile: model: name '{}' is a TorchScript file, which this worker does not have: it "
        "profiles zoo models only (run `paretopipe profile` where the file is)",
        profile.model.name));
  }
  Result<ZooEntry> entry = FindZooModel(profile.model.name);
  PP_RETURN_IF_ERROR(entry.status().WithContext("profile: model: name"));
  if (profile.input_side_px != 0 && profile.input_side_px < entry->min_input_side_px) {
    return Status::InvalidArgument(
        fmt::format("profile: input_side_px {} is below {}'s smallest input side, {}",
                    profile.input_side_px, entry->name, entry->min_input_side_px));
  }
  // Like configure, a profile ends the current run: its links and their
  // peers have nothing to do with the timing. A pass cannot be running: the
  // session reads its next request only after the pass's reply.
  EndRun();
  if (stopping) return Status::Unavailable("worker stopping");
  profile.device = device->name();
  profile.threads = options.threads;
  const auto t0 = Clock::now();
  Result<Profile> measured = RunProfile(profile);
  PP_RETURN_IF_ERROR(measured.status().WithContext(fmt::format(
      "profile: {} at batch {} on {}", profile.model.name, profile.batch, profile.device)));
  spdlog::info("worker {}: profiled {} ({} blocks, input {}, {} timed passes) on {} in {:.1f} s",
               Name(), profile.model.name, measured->blocks.size(),
               fmt::join(measured->input_shape, "x"), profile.repeat, profile.device,
               std::chrono::duration<double>(Clock::now() - t0).count());
  return json{{"ok", true}, {"profile", ProfileToJson(*measured)}};
}

Result<json> Worker::Impl::Configure(Socket& socket, const json& request) {
  if (!request.contains("config")) return Status::InvalidArgument("configure: no config");
  PP_ASSIGN_OR_RETURN(StageConfig config, StageConfigFromJson(request["config"]));
  EndRun();
  if (config.device != device->name()) {
    return Status::InvalidArgument(
        fmt::format("configure: stage {} asks for device {}, but this worker computes on {} "
                    "(its --device)",
                    config.stage + 1, config.device, device->name()));
  }
  PP_RETURN_IF_ERROR(CheckBackend(config.backend).WithContext("configure"));
  PP_ASSIGN_OR_RETURN(StageTransport * chosen, TransportFor(config.backend, "configure"));
  PP_RETURN_IF_ERROR(
      chosen->Admit(config).WithContext(fmt::format("configure: {} backend", config.backend)));
  const auto t0 = Clock::now();
  const std::string key =
      config.module_digest.empty()
          ? fmt::format("{}|{}|{}|{}|{}|{}|{}", config.model, config.num_classes, config.seed,
                        config.weights_digest, config.block_begin, config.block_end, config.device)
          : fmt::format("torchscript|{}|{}", config.module_digest, config.device);
  std::string weights_from = config.weights_digest.empty() ? "seed" : "cache";
  if (!config.module_digest.empty()) weights_from = "torchscript, cache";
  if (!config.module_digest.empty() && key != segment_key) {
    if (!options.allow_remote_models) {
      return Status::InvalidArgument(
          "this run's model is TorchScript, which is code: this worker runs the orchestrator's "
          "TorchScript only when started with --allow-remote-models");
    }
    if (config.device != "cpu") {
      return Status::InvalidArgument(fmt::format(
          "TorchScript stages run on the CPU in this version, not on {}", config.device));
    }
    segment.reset();
    segment_key.clear();
    weights_from = "torchscript, received";
    PP_ASSIGN_OR_RETURN(std::unique_ptr<ScriptSegment> received, ReceiveModule(socket, config));
    segment = std::make_shared<ScriptStageCompute>(std::move(received));
    std::vector<torch::Tensor> zeros = {torch::zeros(config.input_shape)};
    for (const std::vector<int64_t>& shape : config.extra_input_shapes) {
      zeros.push_back(torch::zeros(shape));
    }
    Status primed = segment->RunAll(zeros).status();
    PP_RETURN_IF_ERROR(primed.WithContext(
        fmt::format("stage {}: input {}", config.stage + 1, fmt::join(config.input_shape, "x"))));
    segment_key = key;  // Only a segment that ran is kept for the next run.
  }
  if (key != segment_key) {
    segment.reset();
    segment_key.clear();
    ModelSpec spec{config.model, config.num_classes, config.seed, ""};
    BlockRange range{config.block_begin, config.block_end};
    // The model and the range first: no weights are asked for a stage that
    // cannot be built.
    PP_ASSIGN_OR_RETURN(const ModelDef def, DefineModel(spec));
    PP_RETURN_IF_ERROR(
        Segment::CheckRange(def, &range).WithContext(fmt::format("stage {}", config.stage + 1)));
    Result<std::unique_ptr<Segment>> built = Status::Internal("not built");
    auto local = local_weights.find(config.weights_digest);
    if (config.weights_digest.empty()) {
      built = Segment::Build(spec, range, config.device);
    } else if (local != local_weights.end()) {
      spec.weights_path = local->second;
      weights_from = "local";
      built = Segment::Build(spec, range, config.device);
    } else {
      // Ask the orchestrator for this stage's tensors, then read them.
      weights_from = "received";
      PP_RETURN_IF_ERROR(SendControl(socket, json{{"ok", true}, {"need_weights", true}}.dump()));
      PP_ASSIGN_OR_RETURN(std::string text, ReceiveJsonFrame(socket, FrameType::kControl,
                                                             DeadlineIn(kUploadTimeout)));
      PP_ASSIGN_OR_RETURN(json upload, ParseJsonObject(text, "weights upload"));
      if (upload.value("op", "") != "weights" || !upload.contains("keys") ||
          !upload["keys"].is_array()) {
        return Status::InvalidArgument(
            "weights upload: expected {\"op\": \"weights\", \"keys\": [...]}");
      }
      NamedTensors tensors;
      // Weights are large (VGG-16's classifier is 400 MB): allow a generous
      // time per tensor, and a limit above the largest zoo tensor.
      const FrameLimits limits{uint64_t{2} << 30};
      // Only this stage's tensors, each once: anything else is memory the
      // orchestrator has no reason to make this worker spend.
      const KeyFilter stage_keys = StageKeys(def, range.begin, range.end);
      std::set<std::string> seen;
      for (const json& k : upload["keys"]) {
        if (!k.is_string()) return Status::InvalidArgument("weights upload: key is not a string");
        const std::string& key = k.get_ref<const std::string&>();
        if (!stage_keys(key) || !seen.insert(key).second) {
          return Status::InvalidArgument(fmt::format(
              "weights upload: key '{}' is {} blocks [{}, {}) of {}", key.substr(0, 200),
              stage_keys(key) ? "sent twice for" : "not a tensor of", range.begin, range.end,
              config.model));
        }
        FrameHeader h;
        PP_RETURN_IF_ERROR(socket.ReceiveHeader(&h, limits, DeadlineIn(kUploadTimeout)));
        if (h.type != FrameType::kTensor) {
          return Status::InvalidArgument(
              fmt::format("weights upload: expected a tensor frame for '{}', got a {} frame",
                          k.get<std::string>(), FrameTypeName(h.type)));
        }
        PP_ASSIGN_OR_RETURN(torch::Tensor t,
                            ReceiveTensorPayload(socket, h, DeadlineIn(kUploadTimeout)));
        tensors.emplace_back(k.get<std::string>(), std::move(t));
      }
      built = Segment::BuildWithWeights(spec, range, tensors,
                                        fmt::format("weights {} received from the orchestrator",
                                                    config.weights_digest.substr(0, 12)),
                                        config.device);
    }
    PP_RETURN_IF_ERROR(built.status());
    segment = std::move(built).value();
    segment_key = key;
    // One untimed forward pass: the first call of a new segment allocates
    // and initializes what later calls reuse; no run should measure that.
    Status primed = CatchTorchErrors([&] {
      c10::InferenceMode inference;
      return segment->Run(torch::zeros(config.input_shape)).status();
    });
    PP_RETURN_IF_ERROR(primed.WithContext(
        fmt::format("stage {}: input {}", config.stage + 1, fmt::join(config.input_shape, "x"))));
  }
  std::string inputs_from = "synthetic";
  if (!config.input_digest.empty()) {
    inputs_from = "cache";
    if (!input_set || input_set->digest != config.input_digest) {
      input_set.reset();  // Free the old set before receiving the new one.
      inputs_from = "received";
      PP_ASSIGN_OR_RETURN(InputSet received, ReceiveInputSet(socket, config));
      input_set = std::make_shared<const InputSet>(std::move(received));
    }
  }
  const double build_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  runner = std::make_unique<StageRunner>(config, segment,
                                         config.input_digest.empty() ? nullptr : input_set, device);
  transport = chosen;
  transport->BeginRun(config);
  spdlog::info(
      "worker {}: run {}: stage {} of {}, {} blocks [{}, {}), {}, weights: {}, inputs: {}, ready "
      "in {:.0f} ms",
      Name(), config.run_id, config.stage + 1, config.stages, config.model, config.block_begin,
      config.block_end, config.backend, weights_from, inputs_from, build_ms);
  return json{{"ok", true}, {"build_ms", build_ms}, {"weights", weights_from}};
}

Result<std::unique_ptr<ScriptSegment>> Worker::Impl::ReceiveModule(Socket& socket,
                                                                   const StageConfig& config) {
  PP_RETURN_IF_ERROR(SendControl(socket, json{{"ok", true}, {"need_module", true}}.dump()));
  // The module holds this stage's weights: as large as the weights upload allows.
  const FrameLimits limits{uint64_t{2} << 30};
  FrameHeader h;
  PP_RETURN_IF_ERROR(socket.ReceiveHeader(&h, limits, DeadlineIn(kUploadTimeout)));
  if (h.type != FrameType::kTensor || h.dtype != DType::kUInt8 || h.rank != 1) {
    return Status::InvalidArgument(
        fmt::format("module upload: expected the module's bytes as a uint8 tensor, got a {} frame "
                    "of {} with rank {}",
                    FrameTypeName(h.type), DTypeName(h.dtype), h.rank));
  }
  PP_ASSIGN_OR_RETURN(torch::Tensor bytes,
                      ReceiveTensorPayload(socket, h, DeadlineIn(kUploadTimeout)));
  const std::string module(static_cast<const char*>(bytes.data_ptr()),
                           static_cast<size_t>(bytes.numel()));
  const std::string digest = Sha256OfBytes(module.data(), module.size());
  if (digest != config.module_digest) {
    return Status::InvalidArgument(
        fmt::format("module upload: the bytes received have SHA-256 {}, the run names {}", digest,
                    config.module_digest));
  }
  return ScriptSegment::Deserialize(
      module, fmt::format("stage {} of {} (module {})", config.stage + 1, config.model,
                          digest.substr(0, 12)));
}

Result<InputSet> Worker::Impl::ReceiveInputSet(Socket& socket, const StageConfig& config) {
  PP_RETURN_IF_ERROR(SendControl(socket, json{{"ok", true}, {"need_inputs", true}}.dump()));
  // The whole set is one frame: 1 GiB holds 1700 images at 224 px.
  const FrameLimits limits{uint64_t{1} << 30};
  FrameHeader h;
  PP_RETURN_IF_ERROR(socket.ReceiveHeader(&h, limits, DeadlineIn(kUploadTimeout)));
  std::vector<int64_t> expected = config.input_shape;
  expected[0] = config.input_images;
  if (h.type != FrameType::kTensor || h.dtype != DType::kFloat32 || h.Shape() != expected) {
    return Status::InvalidArgument(
        fmt::format("input set upload: expected a float32 tensor [{}], got a {} frame of {} [{}]",
                    fmt::join(expected, ", "), FrameTypeName(h.type), DTypeName(h.dtype),
                    fmt::join(h.Shape(), ", ")));
  }
  PP_ASSIGN_OR_RETURN(torch::Tensor images,
                      ReceiveTensorPayload(socket, h, DeadlineIn(kUploadTimeout)));
  PP_ASSIGN_OR_RETURN(InputSet set, MakeInputSet(std::move(images)));
  if (set.digest != config.input_digest) {
    return Status::InvalidArgument(
        fmt::format("input set upload: the images received have SHA-256 {}, the run names {}",
                    set.digest, config.input_digest));
  }
  return set;
}

Result<json> Worker::Impl::Connect(const json& request) {
  // A probe_backend run has links and no stage.
  if (!transport) return Status::InvalidArgument("connect: no run configured");
  uint16_t rendezvous_port = 0;
  PP_RETURN_IF_ERROR(transport->Connect(request.value("rendezvous", ""),
                                        DeadlineIn(options.link_timeout), &rendezvous_port));
  json reply{{"ok", true}};
  if (rendezvous_port != 0) reply["rendezvous_port"] = rendezvous_port;
  return reply;
}

Result<json> Worker::Impl::Pass(Socket& socket, const json& request) {
  if (!runner) return Status::InvalidArgument("pass: no run configured");
  const StageConfig& c = runner->config();
  StageLinks links;
  PP_RETURN_IF_ERROR(transport->TakeLinks(DeadlineIn(options.link_timeout), &links));
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return Status::Unavailable("worker stopping");
    running = runner.get();
  }
  // While the pass runs nobody reads the control connection; watch it, so a
  // pass whose orchestrator left (Ctrl-C, a crash, an abandoned session)
  // stops at once instead of at the stall timeout.
  std::atomic<bool> pass_done{false};
  std::thread watcher([&] {
    while (!pass_done) {
      pollfd p{socket.fd(), POLLRDHUP, 0};
      if (poll(&p, 1, 200) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
        runner->Cancel("the orchestrator closed the control connection during the pass");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  });
  Result<StageTrace> ran = runner->RunPass(links);
  pass_done = true;
  watcher.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    running = nullptr;
  }
  PP_ASSIGN_OR_RETURN(StageTrace trace, std::move(ran));
  // Only logged: as JSON, whatever its type (value<int>() would cast a float).
  const std::string repeat = request.value("repeat", json(0)).dump().substr(0, 40);
  spdlog::debug("worker {}: run {} pass {} done", Name(), c.run_id, repeat);
  return json{{"ok", true},
              {"trace", ToJson(trace)},
              {"outputs", c.keep_outputs && c.stage == c.stages - 1 ? c.batches : 0}};
}

void Worker::Impl::EndRun() {
  runner.reset();
  probe_stage = -1;
  if (transport) transport->EndRun();
  transport = nullptr;
}

Worker::Worker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Worker::~Worker() {
  Stop();
  for (Connection& c : impl_->connections) {
    if (c.thread.joinable()) c.thread.join();
  }
}

Result<std::unique_ptr<Worker>> Worker::Create(const WorkerOptions& options) {
  // Anyone who reaches the port can make the worker compute (and, with
  // --allow-remote-models, run code): beyond loopback only with a secret.
  if (options.secret.empty() && !IsLoopbackHost(options.listen.host)) {
    return Status::InvalidArgument(fmt::format(
        "--listen {} is not loopback: give --token-file FILE (a shared secret, the same for the "
        "orchestrator) to accept connections from other machines",
        options.listen.ToString()));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.threads <= 0) impl->options.threads = DefaultThreads();
  PP_RETURN_IF_ERROR(ConfigureCompute(impl->options.threads));
  PP_ASSIGN_OR_RETURN(impl->device, MakeStageDevice(options.device));
  for (const std::string& path : options.weights_files) {
    PP_ASSIGN_OR_RETURN(std::string digest, Sha256OfFile(path));
    impl->local_weights[digest] = path;
  }
  PP_ASSIGN_OR_RETURN(impl->listener, Listener::Listen(options.listen));
  TransportOptions t;
  t.worker_name = impl->Name();
  t.tcp_port = impl->listener.endpoint().port;
  t.grpc_listen = {options.listen.host, options.grpc_port};
  t.connect_timeout = options.link_timeout;
  t.secret = options.secret;
  t.auth_timeout = options.hello_timeout;
  t.tls_cert_pem = options.tls_cert_pem;
  t.tls_key_pem = options.tls_key_pem;
  t.tls_ca_pem = options.tls_ca_pem;
  t.allow_unauthenticated_torch = options.allow_unauthenticated_torch;
  PP_ASSIGN_OR_RETURN(impl->transports, MakeStageTransports(t, &impl->tcp));
  return std::unique_ptr<Worker>(new Worker(std::move(impl)));
}

const Endpoint& Worker::endpoint() const { return impl_->listener.endpoint(); }

Status Worker::Serve() {
  Impl& im = *impl_;
  while (!im.stopping) {
    // Kernel-tuned buffers until the hello says what the connection carries:
    // a link probe measures the path as TCP's autotuning meets it.
    Result<Socket> accepted =
        im.listener.Accept(DeadlineIn(std::chrono::milliseconds(500)), SocketOptions{true, 0});
    // Reap finished connection threads so a daemon serving for weeks does not grow.
    for (auto it = im.connections.begin(); it != im.connections.end();) {
      if (it->done) {
        it->thread.join();
        it = im.connections.erase(it);
      } else {
        ++it;
      }
    }
    if (!accepted.ok()) continue;  // Timeout (to check `stopping`) or a failed handshake.
    Connection& c = im.connections.emplace_back();
    c.thread = std::thread([&im, &c, socket = std::move(accepted).value()]() mutable {
      im.HandleConnection(std::move(socket));
      c.done = true;
    });
  }
  return Status::Ok();
}

void Worker::Stop() {
  Impl& im = *impl_;
  im.stopping = true;
  im.listener.Shutdown();
  std::lock_guard<std::mutex> lock(im.mu);
  if (im.control_socket) im.control_socket->Shutdown();
  for (Socket* probe : im.probes) probe->Shutdown();
  if (im.running) im.running->Abort();
  for (Link* link :
       {im.probing.in, im.probing.out, im.probing.credits_in, im.probing.credits_out}) {
    if (link) link->Shutdown();
  }
  for (const auto& t : im.transports) t->Stop();
}

}  // namespace paretopipe
