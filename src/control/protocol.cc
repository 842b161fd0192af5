#include "control/protocol.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <utility>

namespace paretopipe {
using nlohmann::json;

json ToJson(const StageConfig& c) {
  return json{{"run_id", c.run_id},
              {"model", c.model},
              {"num_classes", c.num_classes},
              {"seed", c.seed},
              {"weights_digest", c.weights_digest},
              {"module_digest", c.module_digest},
              {"stage", c.stage},
              {"stages", c.stages},
              {"block_begin", c.block_begin},
              {"block_end", c.block_end},
              {"input_shape", c.input_shape},
              {"extra_input_shapes", c.extra_input_shapes},
              {"batches", c.batches},
              {"window", c.window},
              {"backend", c.backend},
              {"self", c.self},
              {"next", c.next},
              {"source", c.source},
              {"device", c.device},
              {"input_seed", c.input_seed},
              {"input_digest", c.input_digest},
              {"input_images", c.input_images},
              {"keep_outputs", c.keep_outputs},
              {"top1", c.top1},
              {"stall_timeout_ms", c.stall_timeout.count()}};
}

Result<StageConfig> StageConfigFromJson(const json& j) {
  StageConfig c;
  try {
    c.run_id = j.at("run_id").get<int64_t>();
    c.model = j.at("model").get<std::string>();
    c.num_classes = j.at("num_classes").get<int64_t>();
    c.seed = j.at("seed").get<uint64_t>();
    c.weights_digest = j.at("weights_digest").get<std::string>();
    c.module_digest = j.at("module_digest").get<std::string>();
    c.stage = j.at("stage").get<int>();
    c.stages = j.at("stages").get<int>();
    c.block_begin = j.at("block_begin").get<int64_t>();
    c.block_end = j.at("block_end").get<int64_t>();
    c.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
    c.extra_input_shapes = j.at("extra_input_shapes").get<std::vector<std::vector<int64_t>>>();
    c.batches = j.at("batches").get<int>();
    c.window = j.at("window").get<int>();
    c.backend = j.at("backend").get<std::string>();
    c.self = j.at("self").get<std::string>();
    c.next = j.at("next").get<std::string>();
    c.source = j.at("source").get<std::string>();
    c.device = j.at("device").get<std::string>();
    c.input_seed = j.at("input_seed").get<uint64_t>();
    c.input_digest = j.at("input_digest").get<std::string>();
    c.input_images = j.at("input_images").get<int64_t>();
    c.keep_outputs = j.at("keep_outputs").get<bool>();
    c.top1 = j.at("top1").get<bool>();
    c.stall_timeout = std::chrono::milliseconds(j.at("stall_timeout_ms").get<int64_t>());
  } catch (const json::exception& e) {
    return Status::InvalidArgument(fmt::format("stage configuration: {}", e.what()));
  }
  if (c.stages < 1 || c.stage < 0 || c.stage >= c.stages || c.batches < 1 || c.window < 1 ||
      c.input_shape.empty() || c.input_shape.size() > kMaxFrameRank ||
      c.stall_timeout.count() <= 0) {
    return Status::InvalidArgument(fmt::format(
        "stage configuration: stage {} of {}, {} batches, window {}, input rank {}: out of range",
        c.stage, c.stages, c.batches, c.window, c.input_shape.size()));
  }
  // Bounds that keep a configuration from the network from exhausting memory
  // or overflowing arithmetic (a stage holds `batches` trace rows, `window`
  // queued batches, and waits up to the stall timeout, converted to ns).
  constexpr int kMaxBatches = 1000000, kMaxWindow = 1024;
  constexpr int64_t kMaxStallMs = 3600 * 1000;
  constexpr int64_t kMaxInputBytes = int64_t{1} << 30;  // The frame payload limit.
  // An input set is one tensor frame (the frame limit bounds it in bytes).
  constexpr int64_t kMaxInputImages = int64_t{1} << 20;
  if (c.input_digest.empty() != (c.input_images == 0) || c.input_images < 0 ||
      c.input_images > kMaxInputImages || (!c.input_digest.empty() && c.stage != 0)) {
    return Status::InvalidArgument(fmt::format(
        "stage configuration: input set of {} images (max {}) with digest '{}' at stage {}: "
        "only the source takes an input set, and it needs both",
        c.input_images, kMaxInputImages, c.input_digest, c.stage));
  }
  if (c.batches > kMaxBatches || c.window > kMaxWindow || c.stall_timeout.count() > kMaxStallMs) {
    return Status::InvalidArgument(fmt::format(
        "stage configuration: {} batches (max {}), window {} (max {}), stall timeout {} ms (max "
        "{})",
        c.batches, kMaxBatches, c.window, kMaxWindow, c.stall_timeout.count(), kMaxStallMs));
  }
  constexpr size_t kMaxInputTensors = 16;
  if (c.extra_input_shapes.size() + 1 > kMaxInputTensors) {
    return Status::InvalidArgument(fmt::format("stage configuration: {} input tensors (max {})",
                                               c.extra_input_shapes.size() + 1, kMaxInputTensors));
  }
  int64_t bytes = 0;  // float32, over every input tensor.
  for (size_t i = 0; i <= c.extra_input_shapes.size(); ++i) {
    const std::vector<int64_t>& shape = i == 0 ? c.input_shape : c.extra_input_shapes[i - 1];
    int64_t tensor_bytes = 4;
    bool ok = !shape.empty() && shape.size() <= kMaxFrameRank;
    for (int64_t d : shape) {
      ok = ok && d >= 1 && d <= kMaxInputBytes && (tensor_bytes *= d) <= kMaxInputBytes;
      if (!ok) break;
    }
    if (!ok || (bytes += tensor_bytes) > kMaxInputBytes) {
      return Status::InvalidArgument(fmt::format(
          "stage configuration: input shape [{}] out of range (at most {} bytes of float32 in "
          "all)",
          fmt::join(shape, ", "), kMaxInputBytes));
    }
  }
  return c;
}

namespace {
// The per-batch columns of a trace, as they travel.
constexpr std::pair<const char*, int64_t BatchTrace::*> kTraceColumns[] = {
    {"batch_id", &BatchTrace::batch_id},
    {"recv_begin_ns", &BatchTrace::recv_begin_ns},
    {"recv_end_ns", &BatchTrace::recv_end_ns},
    {"compute_begin_ns", &BatchTrace::compute_begin_ns},
    {"compute_end_ns", &BatchTrace::compute_end_ns},
    {"send_begin_ns", &BatchTrace::send_begin_ns},
    {"send_end_ns", &BatchTrace::send_end_ns},
    {"bytes_in", &BatchTrace::bytes_in},
    {"bytes_out", &BatchTrace::bytes_out},
    {"send_serialize_ns", &BatchTrace::send_serialize_ns},
    {"recv_deserialize_ns", &BatchTrace::recv_deserialize_ns},
    {"recv_queued_ns", &BatchTrace::recv_queued_ns}};
}  // namespace

json ToJson(const StageTrace& t) {
  // Columns, not objects: a pass of 1000 batches stays a few tens of KB.
  json cols = json::object();
  for (const auto& [name, field] : kTraceColumns) {
    json a = json::array();
    for (const BatchTrace& b : t.batches) a.push_back(b.*field);
    cols[name] = std::move(a);
  }
  return json{{"stage", t.stage},
              {"cpu_ns", t.cpu_ns},
              {"peak_rss_bytes", t.peak_rss_bytes},
              {"batches", std::move(cols)},
              {"top1", t.top1}};
}

Result<StageTrace> StageTraceFromJson(const json& j) {
  StageTrace t;
  try {
    t.stage = j.at("stage").get<int>();
    t.cpu_ns = j.at("cpu_ns").get<int64_t>();
    t.peak_rss_bytes = j.at("peak_rss_bytes").get<int64_t>();
    const json& cols = j.at("batches");
    const size_t n = cols.at("batch_id").size();
    t.batches.resize(n);
    for (const auto& [name, field] : kTraceColumns) {
      const json& a = cols.at(name);
      if (a.size() != n) {
        return Status::InvalidArgument(
            fmt::format("stage trace: column {} has {} values, expected {}", name, a.size(), n));
      }
      for (size_t i = 0; i < n; ++i) t.batches[i].*field = a[i].get<int64_t>();
    }
    t.top1 = j.at("top1").get<std::vector<int64_t>>();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format("stage trace: {}", e.what()));
  }
  return t;
}

namespace {
constexpr std::pair<Status::Code, const char*> kCodeNames[] = {
    {Status::Code::kInvalidArgument, "invalid_argument"},
    {Status::Code::kNotFound, "not_found"},
    {Status::Code::kIoError, "io_error"},
    {Status::Code::kUnavailable, "unavailable"},
    {Status::Code::kInternal, "internal"}};
}  // namespace

json ErrorReply(const Status& status) {
  std::string code = "unavailable";
  for (const auto& [c, name] : kCodeNames) {
    if (c == status.code()) code = name;
  }
  return json{{"ok", false}, {"error", status.message()}, {"code", code}};
}

Status StatusOfErrorReply(const json& reply, const std::string& label) {
  const std::string message =
      fmt::format("{}: {}", label, reply.value("error", std::string("failed without a reason")));
  const std::string code = reply.value("code", std::string("unavailable"));
  if (code == "invalid_argument") return Status::InvalidArgument(message);
  if (code == "not_found") return Status::NotFound(message);
  if (code == "io_error") return Status::IoError(message);
  if (code == "internal") return Status::Internal(message);
  return Status::Unavailable(message);
}

Result<json> ParseJsonObject(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(
        fmt::format("{}: not a JSON object ({} bytes)", what, text.size()));
  }
  return j;
}

}  // namespace paretopipe
