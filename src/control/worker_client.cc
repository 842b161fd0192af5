#include "control/worker_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "control/handshake.h"
#include "control/protocol.h"
#include "model/model.h"
#include "model/state_dict.h"
#include "model/tensor_file.h"
#include "profile/profiler.h"
#include "runtime/input_set.h"
#include "runtime/tensor_frame.h"

namespace paretopipe {
using nlohmann::json;

namespace {
// Control replies come at once, except configure (builds a segment, may
// load VGG-16's weights: seconds on a Pi).
constexpr std::chrono::milliseconds kReplyTimeout{10000};
constexpr std::chrono::milliseconds kConfigureTimeout{300000};
// Profiling VGG-16 at a large batch on a Pi takes minutes; the heartbeat
// timeout notices a dead worker long before this.
constexpr std::chrono::minutes kProfileTimeout{10};
// The worker's `connect` waits up to its link timeout (10 s) per connection.
constexpr std::chrono::milliseconds kConnectLinksTimeout{30000};
// After a lost session the worker needs a moment to notice and end it.
constexpr std::chrono::milliseconds kReconnectTimeout{10000};
constexpr std::chrono::milliseconds kBusyRetry{100};

// The worker's links wait up to its link timeout, then the sweep has a
// minute: the reply may take that long and a little more.
constexpr std::chrono::seconds kBackendProbeTimeout{75};

// The "sizes_probe" object of a probe or probe_backend reply.
Result<MessageSizeProbe> SizesProbeFromReply(const json& reply, const std::string& what) {
  const json p = reply.value("sizes_probe", json::object());
  MessageSizeProbe r;
  const json bytes = p.value("bytes", json()), rtt = p.value("rtt_ms", json());
  const json burst_ms = p.value("burst_ms_per_message", json());
  if (!bytes.is_array() || !rtt.is_array() || bytes.size() != rtt.size() || !burst_ms.is_number()) {
    return Status::InvalidArgument(what + ": malformed size sweep reply");
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (!bytes[i].is_number_integer() || !rtt[i].is_number()) {
      return Status::InvalidArgument(what + ": malformed size sweep sample");
    }
    r.bytes.push_back(bytes[i].get<int64_t>());
    r.rtt_ms.push_back(rtt[i].get<double>());
  }
  r.burst_ms_per_message = burst_ms.get<double>();
  return r;
}

Result<json> CheckReply(const std::string& text, const std::string& label) {
  PP_ASSIGN_OR_RETURN(json reply, ParseJsonObject(text, label + " reply"));
  if (!reply.value("ok", false)) return StatusOfErrorReply(reply, label);
  return reply;
}
}  // namespace

WorkerClient::WorkerClient(Endpoint endpoint, Socket socket, std::string secret)
    : endpoint_(std::move(endpoint)),
      socket_(std::move(socket)),
      secret_(std::move(secret)),
      label_("worker " + endpoint_.ToString()) {}

Result<Socket> WorkerClient::OpenSession(const Endpoint& endpoint, const std::string& secret,
                                         Deadline deadline) {
  const std::string label = "worker " + endpoint.ToString();
  while (true) {
    Result<Socket> socket = ConnectTcp(endpoint, deadline);
    if (!socket.ok()) return socket.status().WithContext(label);
    PP_RETURN_IF_ERROR(
        SayHello(*socket, kRoleControl, -1, secret, DeadlineIn(kReplyTimeout)).WithContext(label));
    // The worker serves one orchestrator at a time and answers a second with
    // an error frame. Ask something to learn which it was.
    PP_RETURN_IF_ERROR(SendJsonFrame(*socket, FrameType::kControl, json{{"op", "info"}}.dump(),
                                     DeadlineIn(kReplyTimeout))
                           .WithContext(label));
    Result<std::string> reply =
        ReceiveJsonFrame(*socket, FrameType::kControl, DeadlineIn(kReplyTimeout));
    if (reply.ok()) return socket;
    // Busy: our own previous session may still be ending on the worker.
    if (Clock::now() + kBusyRetry >= deadline ||
        reply.status().message().find("busy") == std::string::npos) {
      return reply.status().WithContext(label);
    }
    std::this_thread::sleep_for(kBusyRetry);
  }
}

Result<std::unique_ptr<WorkerClient>> WorkerClient::Connect(const Endpoint& endpoint,
                                                            std::chrono::milliseconds timeout,
                                                            const std::string& secret) {
  PP_ASSIGN_OR_RETURN(Socket socket, OpenSession(endpoint, secret, DeadlineIn(timeout)));
  return std::unique_ptr<WorkerClient>(new WorkerClient(endpoint, std::move(socket), secret));
}

void WorkerClient::Abandon() {
  // Closing the session ends the worker's side too: it cancels a pass in
  // progress and drops the run. The next request opens a new session.
  std::lock_guard<std::mutex> lock(socket_mu_);
  socket_.Close();
  broken_ = true;
}

Status WorkerClient::Send(const std::string& request_json, Deadline deadline) {
  // Interrupted after its last reply: the session is shut down all the same.
  if (interrupted_.exchange(false)) Abandon();
  if (broken_) {
    PP_ASSIGN_OR_RETURN(Socket session,
                        OpenSession(endpoint_, secret_, DeadlineIn(kReconnectTimeout)));
    std::lock_guard<std::mutex> lock(socket_mu_);
    socket_ = std::move(session);
    broken_ = false;
  }
  Status sent = SendJsonFrame(socket_, FrameType::kControl, request_json, deadline);
  if (!sent.ok()) Abandon();
  return sent.WithContext(label_);
}

Result<std::string> WorkerClient::ReadReply(Deadline deadline) {
  if (broken_) return Status::Unavailable(label_ + ": control connection lost");
  Result<std::string> text =
      ReceiveJsonReply(socket_, FrameType::kControl, deadline, heartbeat_timeout_);
  // A reply that did not come (or came malformed) leaves the channel out of
  // step: the next reply read would be this one. Start afresh instead.
  if (!text.ok()) {
    Abandon();
    return text.status().WithContext(label_);
  }
  return text;
}

Result<std::string> WorkerClient::Call(const std::string& request_json, Deadline deadline) {
  PP_RETURN_IF_ERROR(Send(request_json, deadline));
  return ReadReply(deadline);
}

Result<WorkerInfo> WorkerClient::Info() {
  PP_ASSIGN_OR_RETURN(std::string text,
                      Call(json{{"op", "info"}}.dump(), DeadlineIn(kReplyTimeout)));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  if (reply.value("protocol", 0) != kProtocolVersion) {
    return Status::InvalidArgument(fmt::format("{} speaks protocol {}, this orchestrator {}",
                                               label_, reply.value("protocol", 0),
                                               kProtocolVersion));
  }
  WorkerInfo info;
  const json threads = reply.value("threads", json());
  if (!threads.is_number_integer() || threads.get<int64_t>() < 1 || threads.get<int64_t>() > 4096) {
    return Status::InvalidArgument(label_ + ": info: threads is not a thread count");
  }
  info.threads = threads.get<int>();
  for (auto [key, out] : {std::pair<const char*, std::string*>{"device", &info.device},
                          {"device_name", &info.device_name}}) {
    const json value = reply.value(key, json());
    if (!value.is_string() || value.get_ref<const std::string&>().size() > 256) {
      return Status::InvalidArgument(fmt::format("{}: info: {} is not a name", label_, key));
    }
    *out = value.get<std::string>();
  }
  const json ports = reply.value("backends", json::object());
  if (!ports.is_object())
    return Status::InvalidArgument(label_ + ": info: backends is not an object");
  for (const auto& [name, port] : ports.items()) {
    if (!port.is_number_integer() || port.get<int64_t>() < 0 || port.get<int64_t>() > 65535) {
      return Status::InvalidArgument(
          fmt::format("{}: info: backend {} port is not a port", label_, name));
    }
    info.backend_ports[name] = port.get<uint16_t>();
  }
  info.machine = MachineFromJson(reply.value("machine", json::object()));
  return info;
}

Result<LinkMeasurement> WorkerClient::ProbeLink(const Endpoint& target,
                                                std::chrono::milliseconds min_bulk) {
  // The worker's own limit is a minute; its reply comes after.
  PP_ASSIGN_OR_RETURN(std::string text,
                      Call(json{{"op", "probe"},
                                {"target", target.ToString()},
                                {"min_bulk_ms", min_bulk.count()}}
                               .dump(),
                           DeadlineIn(std::chrono::seconds(75))));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  const json p = reply.value("probe", json::object());
  LinkMeasurement m;
  m.pings = p.value("pings", 0);
  m.rtt_ms_min = p.value("rtt_ms_min", 0.0);
  m.rtt_ms_median = p.value("rtt_ms_median", 0.0);
  m.rtt_ms_max = p.value("rtt_ms_max", 0.0);
  m.bandwidth_mbit = p.value("bandwidth_mbit", 0.0);
  m.bulk_bytes = p.value("bulk_bytes", int64_t{0});
  m.bulk_s = p.value("bulk_s", 0.0);
  return m;
}

Result<MessageSizeProbe> WorkerClient::ProbeMessageSizes(const Endpoint& target,
                                                         const std::vector<int64_t>& sizes,
                                                         int repeats, int burst) {
  PP_ASSIGN_OR_RETURN(std::string text, Call(json{{"op", "probe"},
                                                  {"target", target.ToString()},
                                                  {"sizes", sizes},
                                                  {"repeats", repeats},
                                                  {"burst", burst}}
                                                 .dump(),
                                             DeadlineIn(std::chrono::seconds(75))));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  return SizesProbeFromReply(reply, label_ + ": probe");
}

Status WorkerClient::BeginBackendProbe(const std::string& backend, int64_t run_id, int stage,
                                       const std::string& self, const std::string& peer) {
  PP_ASSIGN_OR_RETURN(std::string text, Call(json{{"op", "probe_backend"},
                                                  {"step", "begin"},
                                                  {"backend", backend},
                                                  {"run_id", run_id},
                                                  {"stage", stage},
                                                  {"self", self},
                                                  {"peer", peer}}
                                                 .dump(),
                                             DeadlineIn(kReplyTimeout)));
  return CheckReply(text, label_).status();
}

Status WorkerClient::StartBackendEcho(int64_t messages) {
  return Send(json{{"op", "probe_backend"}, {"step", "echo"}, {"messages", messages}}.dump(),
              DeadlineIn(kReplyTimeout));
}

Status WorkerClient::FinishBackendEcho() {
  PP_ASSIGN_OR_RETURN(std::string text, ReadReply(DeadlineIn(kBackendProbeTimeout)));
  return CheckReply(text, label_).status();
}

Result<MessageSizeProbe> WorkerClient::ProbeBackendSizes(const std::vector<int64_t>& sizes,
                                                         int repeats, int burst) {
  PP_ASSIGN_OR_RETURN(std::string text, Call(json{{"op", "probe_backend"},
                                                  {"step", "time"},
                                                  {"sizes", sizes},
                                                  {"repeats", repeats},
                                                  {"burst", burst}}
                                                 .dump(),
                                             DeadlineIn(kBackendProbeTimeout)));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  return SizesProbeFromReply(reply, label_ + ": probe_backend");
}

Result<std::string> WorkerClient::Profile(const ModelSpec& model, int64_t batch,
                                          int64_t input_side_px, int repeat, int warmup) {
  ProfileRequest request;
  request.model = model;
  request.batch = batch;
  request.input_side_px = input_side_px;
  request.repeat = repeat;
  request.warmup = warmup;
  json message = ToJson(request);
  message["op"] = "profile";
  PP_ASSIGN_OR_RETURN(std::string text, Call(message.dump(), DeadlineIn(kProfileTimeout)));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  if (!reply.contains("profile") || !reply["profile"].is_object()) {
    return Status::InvalidArgument(label_ + ": profile reply without a profile");
  }
  return reply["profile"].dump();
}

Result<ClockOffset> WorkerClient::SyncClock(int samples) {
  std::vector<ClockSample> got;
  const std::string request = json{{"op", "clock"}}.dump();
  for (int i = 0; i < samples; ++i) {
    ClockSample s;
    s.t0_ns = SteadyNowNs();
    PP_ASSIGN_OR_RETURN(std::string text, Call(request, DeadlineIn(kReplyTimeout)));
    s.t3_ns = SteadyNowNs();
    PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
    s.t1_ns = reply.value("t1", int64_t{0});
    s.t2_ns = reply.value("t2", int64_t{0});
    got.push_back(s);
  }
  return EstimateClockOffset(got);
}

Status WorkerClient::Configure(const StageConfig& config, const std::string& weights_path,
                               const InputSet* inputs, const std::string* module) {
  PP_ASSIGN_OR_RETURN(std::string text,
                      Call(json{{"op", "configure"}, {"config", ToJson(config)}}.dump(),
                           DeadlineIn(kConfigureTimeout)));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  // The worker may ask for this stage's TorchScript segment or its weights
  // (it has no file with their digest), then for the input set, each at most
  // once, before its final reply. Any failure in between leaves it
  // mid-upload: abandon the session.
  for (const std::string need : {"need_module", "need_weights", "need_inputs"}) {
    if (!reply.value(need, false)) continue;
    Status uploaded = need == "need_module"    ? UploadModule(config, module)
                      : need == "need_weights" ? UploadWeights(config, weights_path)
                                               : UploadInputs(config, inputs);
    if (!uploaded.ok()) {
      Abandon();
      return uploaded;
    }
    PP_ASSIGN_OR_RETURN(text, ReadReply(DeadlineIn(kConfigureTimeout)));
    PP_ASSIGN_OR_RETURN(reply, CheckReply(text, label_));
  }
  if (reply.value("need_module", false) || reply.value("need_weights", false) ||
      reply.value("need_inputs", false)) {
    Abandon();
    return Status::InvalidArgument(label_ + ": configure: asked for an upload twice");
  }
  return Status::Ok();
}

Status WorkerClient::UploadModule(const StageConfig& config, const std::string* module) {
  if (module == nullptr || config.module_digest.empty()) {
    return Status::InvalidArgument(label_ + " asks for a TorchScript segment this run does not have");
  }
  // The bytes travel as a uint8 tensor frame; from_blob only views them.
  const torch::Tensor bytes =
      torch::from_blob(const_cast<char*>(module->data()),
                       {static_cast<int64_t>(module->size())}, torch::kUInt8);
  return SendTensor(socket_, FrameType::kTensor, 0, bytes, DeadlineIn(kConfigureTimeout))
      .WithContext(label_ + ": sending the TorchScript segment");
}

Status WorkerClient::UploadInputs(const StageConfig& config, const InputSet* inputs) {
  if (inputs == nullptr || inputs->digest != config.input_digest) {
    return Status::InvalidArgument(label_ + " asks for an input set this run does not have");
  }
  return SendTensor(socket_, FrameType::kTensor, 0, inputs->images, DeadlineIn(kConfigureTimeout))
      .WithContext(label_ + ": sending the input set");
}

Status WorkerClient::UploadWeights(const StageConfig& config, const std::string& weights_path) {
  if (weights_path.empty()) {
    return Status::InvalidArgument(label_ + " asks for weights, and this run has no weights file");
  }
  PP_ASSIGN_OR_RETURN(ModelDef def,
                      DefineModel(ModelSpec{config.model, config.num_classes, config.seed, ""}));
  PP_ASSIGN_OR_RETURN(
      NamedTensors tensors,
      ReadStateDict(weights_path, StageKeys(def, config.block_begin, config.block_end)));
  // ReadStateDict returns every key of the file; those of other stages' blocks are undefined.
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [](const auto& entry) { return !entry.second.defined(); }),
                tensors.end());
  json keys = json::array();
  for (const auto& [key, tensor] : tensors) keys.push_back(key);
  PP_RETURN_IF_ERROR(SendJsonFrame(socket_, FrameType::kControl,
                                   json{{"op", "weights"}, {"keys", keys}}.dump(),
                                   DeadlineIn(kReplyTimeout))
                         .WithContext(label_));
  for (const auto& [key, tensor] : tensors) {
    PP_RETURN_IF_ERROR(
        SendTensor(socket_, FrameType::kTensor, 0, tensor, DeadlineIn(kConfigureTimeout))
            .WithContext(fmt::format("{}: sending weight '{}'", label_, key)));
  }
  return Status::Ok();
}

Result<uint16_t> WorkerClient::OpenLinks(const std::string& rendezvous) {
  json request{{"op", "connect"}};
  if (!rendezvous.empty()) request["rendezvous"] = rendezvous;
  PP_ASSIGN_OR_RETURN(std::string text, Call(request.dump(), DeadlineIn(kConnectLinksTimeout)));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  const json port = reply.value("rendezvous_port", json(0));
  if (!port.is_number_integer() || port.get<int64_t>() < 0 || port.get<int64_t>() > 65535) {
    return Status::InvalidArgument(label_ + ": connect: rendezvous_port is not a port");
  }
  return port.get<uint16_t>();
}

void WorkerClient::Interrupt() {
  interrupted_ = true;
  // Not while the owning thread closes or replaces the socket: Shutdown
  // could then reach a descriptor number reused by another connection.
  std::lock_guard<std::mutex> lock(socket_mu_);
  if (socket_.valid()) socket_.Shutdown();
}

Status WorkerClient::StartPass(int repeat) {
  return Send(json{{"op", "pass"}, {"repeat", repeat}}.dump(), DeadlineIn(kReplyTimeout));
}

Result<StageTrace> WorkerClient::FinishPass(std::vector<KeptOutput>* outputs, Deadline deadline) {
  PP_ASSIGN_OR_RETURN(std::string text, ReadReply(deadline));
  PP_ASSIGN_OR_RETURN(json reply, CheckReply(text, label_));
  // From here a malformed reply may leave output frames unread: abandon on error.
  Result<StageTrace> trace = ReadTrace(reply, outputs);
  if (!trace.ok()) Abandon();
  return trace;
}

Result<StageTrace> WorkerClient::ReadTrace(const json& reply, std::vector<KeptOutput>* outputs) {
  if (!reply.contains("trace") || !reply.contains("outputs") ||
      !reply["outputs"].is_number_integer()) {
    return Status::InvalidArgument(label_ + ": pass reply without a trace or output count");
  }
  PP_ASSIGN_OR_RETURN(StageTrace trace, StageTraceFromJson(reply["trace"]));
  const int64_t n = reply["outputs"].get<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    FrameHeader h;
    PP_RETURN_IF_ERROR(
        socket_.ReceiveHeader(&h, FrameLimits{}, DeadlineIn(kReplyTimeout)).WithContext(label_));
    if (h.type != FrameType::kTensor || h.dtype != DType::kFloat32) {
      return Status::InvalidArgument(
          fmt::format("{}: expected a float32 output tensor, got a {} frame of {}", label_,
                      FrameTypeName(h.type), DTypeName(h.dtype)));
    }
    KeptOutput o{static_cast<int64_t>(h.batch_id), h.Shape(), {}};
    o.values.resize(h.payload_bytes / sizeof(float));
    PP_RETURN_IF_ERROR(
        socket_.ReceiveExact(o.values.data(), h.payload_bytes, DeadlineIn(kReplyTimeout))
            .WithContext(label_));
    if (outputs) outputs->push_back(std::move(o));
  }
  return trace;
}

Status WorkerClient::EndRun() {
  // A lost or interrupted session already ended the run: the worker drops a
  // run when its session closes. Reconnecting here would only wait out the
  // reconnect timeout for a worker that may be gone.
  if (interrupted_.exchange(false)) Abandon();
  if (broken_) return Status::Ok();
  PP_ASSIGN_OR_RETURN(std::string text,
                      Call(json{{"op", "finish"}}.dump(), DeadlineIn(kReplyTimeout)));
  return CheckReply(text, label_).status();
}

}  // namespace paretopipe
