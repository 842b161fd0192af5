// The control messages' parsers against what a peer may send: every field of
// its type and within its range (docs/protocol.md, "Limits"), JSON bounded in
// size and depth, and nothing that throws or casts out of range.
#include "control/protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace paretopipe {
namespace {

using nlohmann::json;

StageConfig ValidConfig() {
  StageConfig c;
  c.run_id = 3;
  c.model = "resnet18";
  c.num_classes = 10;
  c.seed = 18446744073709551615u;
  c.stage = 1;
  c.stages = 2;
  c.block_begin = 4;
  c.block_end = -1;
  c.input_shape = {2, 128, 4, 4};
  c.extra_input_shapes = {{2, 64, 8, 8}};
  c.backend = "tcp";
  c.self = "127.0.0.1:7001";
  c.source = "127.0.0.1:7000";
  return c;
}

// The error StageConfigFromJson gives for ValidConfig() with `field` set to
// `value`; empty when it accepts it.
std::string ErrorWith(const std::string& field, const json& value) {
  json j = ToJson(ValidConfig());
  j[field] = value;
  Result<StageConfig> c = StageConfigFromJson(j);
  return c.ok() ? std::string() : c.status().message();
}

TEST(ProtocolTest, ValidConfigurationRoundTrips) {
  Result<StageConfig> back = StageConfigFromJson(ToJson(ValidConfig()));

  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(ToJson(*back), ToJson(ValidConfig()));
}

TEST(ProtocolTest, FloatWhereAnIntegerBelongsIsRefusedNamingTheField) {
  // get<int>() would cast 1e300 with undefined behaviour, and take 1.5 as 1.
  EXPECT_EQ(ErrorWith("stage", 1e300),
            "stage configuration: stage must be an integer in 0..1, got 1e+300");
  EXPECT_NE(ErrorWith("batches", 1.5).find("batches must be an integer"), std::string::npos);
  EXPECT_NE(ErrorWith("seed", -1).find("seed must be an integer in 0.."), std::string::npos);
}

TEST(ProtocolTest, IntegerBeyondIntIsRefusedNotWrapped) {
  // 2^32 + 1 would wrap to stage 1 of a 2-stage run.
  EXPECT_NE(ErrorWith("stage", int64_t{1} << 32 | 1).find("stage must be an integer in 0..1"),
            std::string::npos);
}

TEST(ProtocolTest, EveryLimitIsEnforcedNamingTheField) {
  const struct {
    const char* field;
    json value;
    const char* error;
  } cases[] = {
      {"run_id", -1, "run_id must be an integer in 0.."},
      {"stages", 257, "stages must be an integer in 1..256"},
      {"stage", 2, "stage must be an integer in 0..1"},
      {"block_begin", -1, "block_begin must be an integer in 0.."},
      {"block_end", 4, "block range [4, 4) is empty"},
      {"block_end", -2, "block_end must be an integer in -1.."},
      {"num_classes", 0, "num_classes must be an integer in 1.."},
      {"batches", 0, "batches must be an integer in 1..1000000"},
      {"window", 1025, "window must be an integer in 1..1024"},
      {"stall_timeout_ms", 0, "stall_timeout_ms must be an integer in 1..3600000"},
      {"input_shape", json::array(), "input_shape is empty"},
      {"input_shape", {1, 2, 3, 4, 5, 6, 7, 8, 9}, "input_shape has 9 values, at most 8"},
      {"input_shape", {2, 0, 4}, "input_shape must be an integer in 1.."},
      {"input_shape", {1 << 20, 1 << 20, 1 << 20}, "input shape [1048576, 1048576, 1048576]"},
      {"extra_input_shapes", json::array({json::array({2, 3}), 5}),
       "extra_input_shapes must be an array"},
      {"model", std::string(257, 'm'), "model is 257 bytes long, at most 256"},
      {"input_digest", std::string(129, 'a'), "input_digest is 129 bytes long, at most 128"},
      {"keep_outputs", 1, "keep_outputs must be true or false"},
      {"backend", nullptr, "backend must be a string, got null"},
  };
  for (const auto& c : cases) {
    const std::string error = ErrorWith(c.field, c.value);
    EXPECT_NE(error.find(c.error), std::string::npos)
        << c.field << " = " << c.value.dump() << ": " << (error.empty() ? "accepted" : error);
  }
}

TEST(ProtocolTest, MissingFieldIsNamed) {
  json j = ToJson(ValidConfig());
  j.erase("window");

  Result<StageConfig> c = StageConfigFromJson(j);

  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "stage configuration: window is missing");
}

TEST(ProtocolTest, TraceWithAFloatOrUnevenColumnsIsRefused) {
  StageTrace t;
  t.stage = 1;
  t.batches.resize(2);
  json j = ToJson(t);
  json float_value = j;
  float_value["batches"]["send_end_ns"][1] = 1e300;
  json uneven = j;
  uneven["batches"]["bytes_in"].push_back(7);

  EXPECT_TRUE(StageTraceFromJson(j).ok());
  EXPECT_NE(
      StageTraceFromJson(float_value).status().message().find("send_end_ns must be an integer"),
      std::string::npos);
  EXPECT_NE(StageTraceFromJson(uneven).status().message().find("bytes_in has 3 values, at most 2"),
            std::string::npos)
      << StageTraceFromJson(uneven).status().message();
}

// A CUDA stage's trace: the GPU's times per batch, its memory and utilization.
StageTrace GpuTrace() {
  StageTrace t;
  t.stage = 1;
  t.batches.resize(2);
  for (int64_t i = 0; i < 2; ++i) {
    BatchTrace& b = t.batches[i];
    b.batch_id = i;
    b.compute_begin_ns = 1000 + i;
    b.compute_end_ns = 9000 + i;
    b.device_compute_ns = 6000 + i;
    b.copy_in_ns = 700 + i;
    b.copy_out_ns = 0;  // A real value: not "unknown".
  }
  t.device_peak_bytes = int64_t{80} << 30;
  t.device_utilization_pct = 87.25;
  return t;
}

TEST(ProtocolTest, TraceOfAGpuStageRoundTripsAndACpuStageReadsUnknown) {
  const StageTrace gpu = GpuTrace();
  StageTrace cpu;
  cpu.batches.resize(1);

  // Through text, as the pass reply travels.
  Result<StageTrace> gpu_back = StageTraceFromJson(json::parse(ToJson(gpu).dump()));
  Result<StageTrace> cpu_back = StageTraceFromJson(json::parse(ToJson(cpu).dump()));

  ASSERT_TRUE(gpu_back.ok()) << gpu_back.status().message();
  ASSERT_EQ(gpu_back->batches.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(gpu_back->batches[i].device_compute_ns, gpu.batches[i].device_compute_ns);
    EXPECT_EQ(gpu_back->batches[i].copy_in_ns, gpu.batches[i].copy_in_ns);
    EXPECT_EQ(gpu_back->batches[i].copy_out_ns, 0);
  }
  EXPECT_EQ(gpu_back->device_peak_bytes, int64_t{80} << 30);
  EXPECT_EQ(gpu_back->device_utilization_pct, 87.25);
  ASSERT_TRUE(cpu_back.ok()) << cpu_back.status().message();
  EXPECT_EQ(cpu_back->batches[0].device_compute_ns, -1);
  EXPECT_EQ(cpu_back->batches[0].copy_in_ns, -1);
  EXPECT_EQ(cpu_back->batches[0].copy_out_ns, -1);
  EXPECT_EQ(cpu_back->device_peak_bytes, -1);
  EXPECT_EQ(cpu_back->device_utilization_pct, -1);
}

TEST(ProtocolTest, GpuFieldsOutOfRangeOrMissingAreRefusedNamingTheField) {
  const struct {
    const char* field;  // "batches/..." for a column, its first value replaced.
    json value;
    const char* error;
  } cases[] = {
      {"batches/device_compute_ns", -2, "device_compute_ns must be an integer in -1.."},
      {"batches/copy_in_ns", 1.5, "copy_in_ns must be an integer in -1.."},
      {"batches/copy_out_ns", -5, "copy_out_ns must be an integer in -1.."},
      {"device_peak_bytes", -2, "device_peak_bytes must be an integer in -1.."},
      {"device_utilization_pct", 100.5, "device_utilization_pct must be a number in -1..100"},
      {"device_utilization_pct", -0.5, "device_utilization_pct must be -1 (unknown) or in 0..100"},
      {"device_utilization_pct", "87", "device_utilization_pct must be a number in -1..100"},
      {"device_utilization_pct", nullptr, "device_utilization_pct must be a number"},
  };
  for (const auto& c : cases) {
    json j = ToJson(GpuTrace());
    const std::string field = c.field;
    if (field.rfind("batches/", 0) == 0) {
      j["batches"][field.substr(8)][0] = c.value;
    } else {
      j[field] = c.value;
    }
    Result<StageTrace> t = StageTraceFromJson(j);
    const std::string error = t.ok() ? "accepted" : t.status().message();
    EXPECT_NE(error.find(c.error), std::string::npos)
        << c.field << " = " << c.value.dump() << ": " << error;
  }
  json missing = ToJson(GpuTrace());
  missing["batches"].erase("copy_out_ns");
  EXPECT_EQ(StageTraceFromJson(missing).status().message(),
            "stage trace batches: copy_out_ns is missing");
}

TEST(ProtocolTest, JsonNestedTooDeepIsRefusedBeforeParsing) {
  const std::string deep =
      "{\"a\": " + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  const std::string in_string = "{\"a\": \"" + std::string(1000, '[') + "\"}";

  Result<json> refused = ParseJsonObject(deep, "control message");

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "control message: JSON nested deeper than 32 levels");
  EXPECT_TRUE(ParseJsonObject(in_string, "control message").ok()) << "brackets inside a string";
}

TEST(ProtocolTest, JsonBeyondTheSizeLimitIsRefused) {
  const std::string big = "{\"a\": \"" + std::string(kMaxJsonObjectBytes, 'x') + "\"}";

  Result<json> refused = ParseJsonObject(big, "control message");

  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("at most 16777216 allowed"), std::string::npos);
}

TEST(ProtocolTest, ErrorReplyWithFieldsOfTheWrongTypeIsReadWithoutThrowing) {
  const Status s = StatusOfErrorReply(json{{"ok", false}, {"error", 5}, {"code", {1}}}, "worker");

  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(s.message(), "worker: failed without a reason");
}

}  // namespace
}  // namespace paretopipe
