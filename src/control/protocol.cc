#include "control/protocol.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <stdexcept>
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

namespace {

// Reads the fields of one JSON object, each of its exact type and within its
// range, or throws std::invalid_argument naming `what` and the field.
// nlohmann's own get<int>() would accept 1e300 and convert it with a cast
// whose result is undefined, and wrap 2^32 to 0: a message from the network
// must not reach either.
class FieldReader {
 public:
  FieldReader(const json& j, const char* what) : j_(j), what_(what) {
    if (!j.is_object()) Fail("", fmt::format("is a JSON {}, not an object", j.type_name()));
  }

  int64_t Int(const char* key, int64_t min, int64_t max) const {
    return IntOf(At(key), key, min, max);
  }
  uint64_t UInt64(const char* key) const {
    const json& v = At(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      Fail(key, fmt::format("must be an integer in 0..{}, got {}", UINT64_MAX, Excerpt(v)));
    }
    return v.get<uint64_t>();
  }
  bool Bool(const char* key) const {
    const json& v = At(key);
    if (!v.is_boolean()) Fail(key, fmt::format("must be true or false, got {}", Excerpt(v)));
    return v.get<bool>();
  }
  std::string String(const char* key, size_t max_bytes) const {
    const json& v = At(key);
    if (!v.is_string()) Fail(key, fmt::format("must be a string, got {}", Excerpt(v)));
    const std::string& text = v.get_ref<const std::string&>();
    if (text.size() > max_bytes) {
      Fail(key, fmt::format("is {} bytes long, at most {} allowed", text.size(), max_bytes));
    }
    return text;
  }
  // An array of at most `max_size` integers, each in [min, max].
  std::vector<int64_t> Ints(const char* key, size_t max_size, int64_t min, int64_t max) const {
    return IntsOf(At(key), key, max_size, min, max);
  }
  std::vector<int64_t> IntsOf(const json& v, const std::string& key, size_t max_size, int64_t min,
                              int64_t max) const {
    if (!v.is_array()) Fail(key, fmt::format("must be an array, got {}", Excerpt(v)));
    if (v.size() > max_size) {
      Fail(key, fmt::format("has {} values, at most {} allowed", v.size(), max_size));
    }
    std::vector<int64_t> out;
    out.reserve(v.size());
    for (const json& x : v) out.push_back(IntOf(x, key, min, max));
    return out;
  }
  // A JSON number (integer or not) in [min, max]; NaN and infinities cannot
  // be written in JSON, so every value read is finite.
  double Double(const char* key, double min, double max) const {
    const json& v = At(key);
    if (!v.is_number() || !(v.get<double>() >= min && v.get<double>() <= max)) {
      Fail(key, fmt::format("must be a number in {}..{}, got {}", min, max, Excerpt(v)));
    }
    return v.get<double>();
  }
  const json& At(const std::string& key) const {
    auto it = j_.find(key);
    if (it == j_.end()) Fail(key, "is missing");
    return *it;
  }
  [[noreturn]] void Fail(const std::string& key, const std::string& problem) const {
    throw std::invalid_argument(key.empty() ? fmt::format("{} {}", what_, problem)
                                            : fmt::format("{}: {} {}", what_, key, problem));
  }

 private:
  int64_t IntOf(const json& v, const std::string& key, int64_t min, int64_t max) const {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX) ||
        v.get<int64_t>() < min || v.get<int64_t>() > max) {
      Fail(key, fmt::format("must be an integer in {}..{}, got {}", min, max, Excerpt(v)));
    }
    return v.get<int64_t>();
  }
  // A value as it appears in an error: the first 40 characters of its JSON.
  static std::string Excerpt(const json& v) {
    std::string text = v.dump();
    return text.size() > 40 ? text.substr(0, 40) + "..." : text;
  }

  const json& j_;
  const char* what_;
};

// Limits of a configuration (docs/protocol.md, "Limits"): they keep one
// message from exhausting a worker's memory or overflowing its arithmetic.
constexpr int kMaxStages = 256;                       // Far beyond any testbed.
constexpr int64_t kMaxBlockIndex = 1 << 20;           // Zoo models have < 100 blocks.
constexpr int64_t kMaxClasses = 1 << 20;              // ImageNet-21k has 21841.
constexpr size_t kMaxNameBytes = 256;                 // Model, backend, device, endpoints.
constexpr size_t kMaxDigestBytes = 128;               // A SHA-256 in hex is 64.
constexpr int kMaxBatches = 1000000;                  // A stage holds one trace row per batch.
constexpr int kMaxWindow = 1024;                      // Batches queued in a stage.
constexpr int64_t kMaxStallMs = 3600 * 1000;          // Converted to ns: far from overflow.
constexpr int64_t kMaxInputBytes = int64_t{1} << 30;  // The frame payload limit.
// An input set is one tensor frame (the frame limit bounds it in bytes).
constexpr int64_t kMaxInputImages = int64_t{1} << 20;
constexpr size_t kMaxInputTensors = 16;
// A trace's values are timestamps, byte counts and classes: any int64 but
// the most negative, which no clock or count gives.
constexpr int64_t kMinTraceValue = INT64_MIN + 1;

}  // namespace

Result<StageConfig> StageConfigFromJson(const json& j) {
  StageConfig c;
  try {
    const FieldReader r(j, "stage configuration");
    c.run_id = r.Int("run_id", 0, INT64_MAX);
    c.model = r.String("model", kMaxNameBytes);
    c.num_classes = r.Int("num_classes", 1, kMaxClasses);
    c.seed = r.UInt64("seed");
    c.weights_digest = r.String("weights_digest", kMaxDigestBytes);
    c.module_digest = r.String("module_digest", kMaxDigestBytes);
    c.stages = static_cast<int>(r.Int("stages", 1, kMaxStages));
    c.stage = static_cast<int>(r.Int("stage", 0, c.stages - 1));
    c.block_begin = r.Int("block_begin", 0, kMaxBlockIndex - 1);
    // -1: the model's last block (BlockRange).
    c.block_end = r.Int("block_end", -1, kMaxBlockIndex);
    if (c.block_end != -1 && c.block_end <= c.block_begin) {
      r.Fail("block_end",
             fmt::format("must be -1 or above block_begin: block range [{}, {}) is empty",
                         c.block_begin, c.block_end));
    }
    c.input_shape = r.Ints("input_shape", kMaxFrameRank, 1, kMaxInputBytes);
    const json& extra = r.At("extra_input_shapes");
    if (!extra.is_array() || extra.size() + 1 > kMaxInputTensors) {
      r.Fail("extra_input_shapes",
             fmt::format("must be an array of at most {} shapes", kMaxInputTensors - 1));
    }
    for (const json& shape : extra) {
      c.extra_input_shapes.push_back(
          r.IntsOf(shape, "extra_input_shapes", kMaxFrameRank, 1, kMaxInputBytes));
    }
    c.batches = static_cast<int>(r.Int("batches", 1, kMaxBatches));
    c.window = static_cast<int>(r.Int("window", 1, kMaxWindow));
    c.backend = r.String("backend", kMaxNameBytes);
    c.self = r.String("self", kMaxNameBytes);
    c.next = r.String("next", kMaxNameBytes);
    c.source = r.String("source", kMaxNameBytes);
    c.device = r.String("device", kMaxNameBytes);
    c.input_seed = r.UInt64("input_seed");
    c.input_digest = r.String("input_digest", kMaxDigestBytes);
    c.input_images = r.Int("input_images", 0, kMaxInputImages);
    c.keep_outputs = r.Bool("keep_outputs");
    c.top1 = r.Bool("top1");
    c.stall_timeout = std::chrono::milliseconds(r.Int("stall_timeout_ms", 1, kMaxStallMs));
  } catch (const std::exception& e) {  // FieldReader's, or a failed allocation.
    return Status::InvalidArgument(e.what());
  }
  if (c.input_shape.empty()) {
    return Status::InvalidArgument("stage configuration: input_shape is empty");
  }
  if (c.input_digest.empty() != (c.input_images == 0) ||
      (!c.input_digest.empty() && c.stage != 0)) {
    return Status::InvalidArgument(fmt::format(
        "stage configuration: input set of {} images (max {}) with digest '{}' at stage {}: "
        "only the source takes an input set, and it needs both",
        c.input_images, kMaxInputImages, c.input_digest, c.stage));
  }
  int64_t bytes = 0;  // float32, over every input tensor.
  for (size_t i = 0; i <= c.extra_input_shapes.size(); ++i) {
    const std::vector<int64_t>& shape = i == 0 ? c.input_shape : c.extra_input_shapes[i - 1];
    // Each dim is at most kMaxInputBytes (2^30), so the product is checked
    // after every factor and stays far from overflow.
    int64_t tensor_bytes = 4;
    bool ok = !shape.empty();
    for (int64_t d : shape) {
      ok = ok && (tensor_bytes *= d) <= kMaxInputBytes;
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
// Limits of a profile request (docs/protocol.md, "Limits"): `paretopipe
// profile` asks only for batch >= 1, repeat >= 1, warmup >= 0; a request from
// the network is also bounded above, so that one message cannot keep a
// worker busy for hours or allocate an input of gigabytes.
constexpr int64_t kMaxProfileBatch = 4096;
constexpr int64_t kMaxProfileRepeat = 200;
constexpr int64_t kMaxProfileWarmup = 50;
constexpr int64_t kMinProfileSidePx = 16;  // Below every zoo model's smallest input.
constexpr int64_t kMaxProfileSidePx = 1024;
}  // namespace

json ToJson(const ProfileRequest& r) {
  return json{
      {"model",
       {{"name", r.model.name}, {"num_classes", r.model.num_classes}, {"seed", r.model.seed}}},
      {"batch", r.batch},
      {"input_side_px", r.input_side_px},
      {"repeat", r.repeat},
      {"warmup", r.warmup}};
}

Result<ProfileRequest> ProfileRequestFromJson(const json& j) {
  ProfileRequest p;
  try {
    const FieldReader r(j, "profile");
    const FieldReader model(r.At("model"), "profile: model");
    p.model.name = model.String("name", kMaxNameBytes);
    p.model.num_classes = model.Int("num_classes", 1, kMaxClasses);
    p.model.seed = model.UInt64("seed");
    p.batch = r.Int("batch", 1, kMaxProfileBatch);
    p.input_side_px = r.Int("input_side_px", 0, kMaxProfileSidePx);
    if (p.input_side_px != 0 && p.input_side_px < kMinProfileSidePx) {
      r.Fail("input_side_px",
             fmt::format("must be 0 (the model's nominal size) or in {}..{}, got {}",
                         kMinProfileSidePx, kMaxProfileSidePx, p.input_side_px));
    }
    p.repeat = static_cast<int>(r.Int("repeat", 1, kMaxProfileRepeat));
    p.warmup = static_cast<int>(r.Int("warmup", 0, kMaxProfileWarmup));
  } catch (const std::exception& e) {  // FieldReader's, or a failed allocation.
    return Status::InvalidArgument(e.what());
  }
  return p;
}

namespace {
// The per-batch columns of a trace, as they travel, each with its least value.
struct TraceColumn {
  const char* name;
  int64_t BatchTrace::*field;
  int64_t min;
};
constexpr TraceColumn kTraceColumns[] = {
    {"batch_id", &BatchTrace::batch_id, kMinTraceValue},
    {"recv_begin_ns", &BatchTrace::recv_begin_ns, kMinTraceValue},
    {"recv_end_ns", &BatchTrace::recv_end_ns, kMinTraceValue},
    {"compute_begin_ns", &BatchTrace::compute_begin_ns, kMinTraceValue},
    {"compute_end_ns", &BatchTrace::compute_end_ns, kMinTraceValue},
    {"send_begin_ns", &BatchTrace::send_begin_ns, kMinTraceValue},
    {"send_end_ns", &BatchTrace::send_end_ns, kMinTraceValue},
    {"bytes_in", &BatchTrace::bytes_in, kMinTraceValue},
    {"bytes_out", &BatchTrace::bytes_out, kMinTraceValue},
    {"send_serialize_ns", &BatchTrace::send_serialize_ns, kMinTraceValue},
    {"recv_deserialize_ns", &BatchTrace::recv_deserialize_ns, kMinTraceValue},
    {"recv_queued_ns", &BatchTrace::recv_queued_ns, kMinTraceValue},
    // Durations on the GPU: -1 on a CPU stage.
    {"device_compute_ns", &BatchTrace::device_compute_ns, -1},
    {"copy_in_ns", &BatchTrace::copy_in_ns, -1},
    {"copy_out_ns", &BatchTrace::copy_out_ns, -1}};
}  // namespace

json ToJson(const StageTrace& t) {
  // Columns, not objects: a pass of 1000 batches stays a few tens of KB.
  json cols = json::object();
  for (const TraceColumn& column : kTraceColumns) {
    json a = json::array();
    for (const BatchTrace& b : t.batches) a.push_back(b.*column.field);
    cols[column.name] = std::move(a);
  }
  return json{{"stage", t.stage},
              {"cpu_ns", t.cpu_ns},
              {"peak_rss_bytes", t.peak_rss_bytes},
              {"device_peak_bytes", t.device_peak_bytes},
              {"device_utilization_pct", t.device_utilization_pct},
              {"batches", std::move(cols)},
              {"top1", t.top1}};
}

Result<StageTrace> StageTraceFromJson(const json& j) {
  StageTrace t;
  try {
    const FieldReader r(j, "stage trace");
    t.stage = static_cast<int>(r.Int("stage", 0, kMaxStages - 1));
    t.cpu_ns = r.Int("cpu_ns", -1, INT64_MAX);
    t.peak_rss_bytes = r.Int("peak_rss_bytes", -1, INT64_MAX);
    t.device_peak_bytes = r.Int("device_peak_bytes", -1, INT64_MAX);
    // -1 (unknown) or a percentage: nothing in between.
    t.device_utilization_pct = r.Double("device_utilization_pct", -1, 100);
    if (t.device_utilization_pct < 0 && t.device_utilization_pct != -1) {
      r.Fail("device_utilization_pct",
             fmt::format("must be -1 (unknown) or in 0..100, got {}", t.device_utilization_pct));
    }
    const FieldReader cols(r.At("batches"), "stage trace batches");
    const size_t n = cols.At("batch_id").is_array() ? cols.At("batch_id").size() : 0;
    if (n > static_cast<size_t>(kMaxBatches)) {
      cols.Fail("batch_id", fmt::format("has {} values, at most {} allowed", n, kMaxBatches));
    }
    t.batches.resize(n);
    for (const TraceColumn& column : kTraceColumns) {
      const std::vector<int64_t> values = cols.Ints(column.name, n, column.min, INT64_MAX);
      if (values.size() != n) {
        return Status::InvalidArgument(fmt::format(
            "stage trace: column {} has {} values, expected {}", column.name, values.size(), n));
      }
      for (size_t i = 0; i < n; ++i) t.batches[i].*column.field = values[i];
    }
    // One class per image: at most a pass's images, itself bounded by the frame limit.
    t.top1 = r.Ints("top1", kMaxJsonObjectBytes / 2, 0, INT64_MAX);
  } catch (const std::exception& e) {  // FieldReader's, or a failed allocation.
    return Status::InvalidArgument(e.what());
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
  // A field of another type counts as absent: value<std::string>() would throw.
  auto text = [&reply](const char* key, const char* otherwise) {
    const json v = reply.is_object() ? reply.value(key, json()) : json();
    return v.is_string() ? v.get<std::string>() : std::string(otherwise);
  };
  const std::string message =
      fmt::format("{}: {}", label, text("error", "failed without a reason"));
  const std::string code = text("code", "unavailable");
  if (code == "invalid_argument") return Status::InvalidArgument(message);
  if (code == "not_found") return Status::NotFound(message);
  if (code == "io_error") return Status::IoError(message);
  if (code == "internal") return Status::Internal(message);
  return Status::Unavailable(message);
}

namespace {
// Whether arrays and objects in `text` nest deeper than `max_depth`, counting
// brackets outside strings (text that is not JSON fails to parse anyway).
bool NestedDeeperThan(const std::string& text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > max_depth) return true;
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}
}  // namespace

Result<json> ParseJsonObject(const std::string& text, const std::string& what) {
  if (text.size() > kMaxJsonObjectBytes) {
    return Status::InvalidArgument(fmt::format("{}: {} bytes of JSON, at most {} allowed", what,
                                               text.size(), kMaxJsonObjectBytes));
  }
  // Checked before parsing: the parser would build (or, told to skip, still
  // track) every level of a megabyte of "[[[[".
  if (NestedDeeperThan(text, kMaxJsonDepth)) {
    return Status::InvalidArgument(
        fmt::format("{}: JSON nested deeper than {} levels", what, kMaxJsonDepth));
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(
        fmt::format("{}: not a JSON object ({} bytes)", what, text.size()));
  }
  return j;
}

}  // namespace paretopipe
