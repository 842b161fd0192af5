// Export: one flat row per run, as RFC 4180 CSV and as JSON.
#include "analysis/export.h"

#include <gtest/gtest.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace paretopipe {
namespace {

// Splits RFC 4180 text (CRLF line ends) into records of fields.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        field += ch;
      }
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      record.push_back(std::move(field));
      field.clear();
    } else if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      record.push_back(std::move(field));
      field.clear();
      records.push_back(std::move(record));
      record.clear();
      ++i;
    } else {
      field += ch;
    }
  }
  EXPECT_TRUE(field.empty() && record.empty()) << "text does not end with CRLF";
  return records;
}

RunRecord RunWithStages(int stage_count, int64_t id) {
  RunRecord r;
  r.id = id;
  r.started_at_utc = "2026-11-26T19:46:49Z";
  r.config.model = "resnet18";
  r.config.seed = 42;
  r.config.sweep_id = "sweep-a";
  r.config.input_side_px = 224;
  for (int s = 0; s < stage_count; ++s) {
    if (s > 0) r.config.cuts.push_back(3 * s);
    r.config.workers.push_back("127.0.0.1:700" + std::to_string(s));
    StageEnvironment e;
    e.stage = s;
    e.hostname = "host" + std::to_string(s);
    e.cpu_model = "AMD EPYC 7B13";
    e.kernel = "6.1.0";
    e.libtorch_version = "1.13.1";
    e.blas = "openblas";
    r.environment.push_back(e);
    StageStats t;
    t.stage = s;
    t.block_begin = s == 0 ? 0 : 3 * s;
    t.block_end = 3 * (s + 1);
    t.endpoint = r.config.workers.back();
    t.compute_ms_mean = 10.5 + s;
    t.queue_ms_mean = 0.25;
    t.recv_ms_mean = 0.5;
    t.send_ms_mean = 0.75;
    t.bytes_out_per_batch = 802816;
    t.idle_fraction = 0.1;
    t.cpu_ms = 900.5;
    t.peak_rss_bytes = 123456789;
    t.clock.offset_ns = -5000 - s;
    t.clock.uncertainty_ns = 250;
    r.stages.push_back(t);
  }
  r.latency_ms_mean = {0.1 + 0.2, 0.25, 0.35, 3};  // 0.30000000000000004: needs 17 digits.
  r.latency_ms_p50 = {30.0, 29.0, 31.0, 3};
  r.latency_ms_p95 = {35.0, 34.0, 36.0, 3};
  r.latency_ms_p99 = {40.0, 39.0, 41.0, 3};
  r.throughput_ips = {500.0, 490.0, 510.0, 3};
  return r;
}

size_t IndexOf(const std::vector<std::string>& columns, const std::string& name) {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return i;
  }
  ADD_FAILURE() << "no column " << name;
  return 0;
}

TEST(ExportTest, ColumnsListRunFieldsThenEachStageThenEachHopThenEachLink) {
  std::vector<std::string> columns = ExportColumns({RunWithStages(2, 1)});

  std::vector<std::string> first(columns.begin(), columns.begin() + 11);
  EXPECT_EQ(first, (std::vector<std::string>{"id", "sweep_id", "started_at_utc", "status", "error",
                                             "model", "num_classes", "seed", "weights_digest",
                                             "cuts", "stages"}));
  std::vector<std::string> stage_columns = {"block_begin",
                                            "block_end",
                                            "endpoint",
                                            "compute_ms_mean",
                                            "queue_ms_mean",
                                            "recv_ms_mean",
                                            "send_ms_mean",
                                            "bytes_out_per_batch",
                                            "idle_fraction",
                                            "cpu_ms",
                                            "peak_rss_bytes",
                                            "clock_offset_ns",
                                            "clock_uncertainty_ns",
                                            "limits",
                                            "device",
                                            "device_name",
                                            "copy_in_ms_mean",
                                            "copy_out_ms_mean",
                                            "device_peak_bytes",
                                            "device_utilization_pct"};
  std::vector<std::string> hop_columns = {
      "bytes_per_frame",     "hop_ms_mean",  "serialize_ms_mean", "wire_ms_mean",
      "queue_ms_mean",       "deserialize_ms_mean", "send_ms_mean", "recv_ms_mean",
      "clock_uncertainty_ms"};
  std::vector<std::string> link_columns = {"rtt_ms_median", "rtt_ms_min", "rtt_ms_max",
                                           "bandwidth_mbit"};
  ASSERT_GE(columns.size(),
            2 * stage_columns.size() + hop_columns.size() + link_columns.size());
  const size_t link1 = columns.size() - link_columns.size();
  for (size_t i = 0; i < link_columns.size(); ++i) {
    EXPECT_EQ(columns[link1 + i], "link1_" + link_columns[i]);
  }
  size_t hop1 = link1 - hop_columns.size();
  for (size_t i = 0; i < hop_columns.size(); ++i) {
    EXPECT_EQ(columns[hop1 + i], "hop1_" + hop_columns[i]);
  }
  size_t stage1 = hop1 - 2 * stage_columns.size();
  for (size_t i = 0; i < stage_columns.size(); ++i) {
    EXPECT_EQ(columns[stage1 + i], "stage1_" + stage_columns[i]);
    EXPECT_EQ(columns[stage1 + stage_columns.size() + i], "stage2_" + stage_columns[i]);
  }
  for (const char* name : {"batch_size",
                           "input_side_px",
                           "batches",
                           "warmup",
                           "window",
                           "repeats",
                           "backend",
                           "threads",
                           "device",
                           "workers",
                           "latency_ms_mean",
                           "latency_ms_mean_ci_low",
                           "latency_ms_mean_ci_high",
                           "latency_ms_p99_ci_high",
                           "throughput_ips",
                           "throughput_ips_ci_low",
                           "throughput_ips_ci_high",
                           "hostname",
                           "cpu_model",
                           "kernel",
                           "libtorch_version",
                           "blas"}) {
    IndexOf(columns, name);
  }
}

TEST(ExportTest, CsvQuotesFieldsWithCommaQuoteOrLineBreak) {
  RunRecord run = RunWithStages(2, 7);
  run.status = "failed";
  run.error = "worker 127.0.0.1:7001: \"frame\" too large, giving up\nbye";

  std::string csv = RunsToCsv({run});

  EXPECT_NE(csv.find(",\"worker 127.0.0.1:7001: \"\"frame\"\" too large, giving up\nbye\","),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find(",\"127.0.0.1:7000,127.0.0.1:7001\","), std::string::npos) << "workers";
  std::vector<std::vector<std::string>> records = ParseCsv(csv);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1][IndexOf(records[0], "error")], run.error);
}

TEST(ExportTest, RunsWithTwoAndThreeStagesShareOneHeaderAndLeaveMissingStageEmpty) {
  RunRecord two = RunWithStages(2, 1);
  RunRecord three = RunWithStages(3, 2);
  HopStats second_hop;
  second_hop.hop = 1;
  second_hop.hop_ms_mean = 2.5;
  three.hops.push_back(second_hop);

  std::vector<std::vector<std::string>> records = ParseCsv(RunsToCsv({two, three}));

  ASSERT_EQ(records.size(), 3u);
  const std::vector<std::string>& header = records[0];
  EXPECT_EQ(header, ExportColumns({two, three}));
  EXPECT_EQ(header.back(), "link2_bandwidth_mbit");
  EXPECT_EQ(records[1][IndexOf(header, "hop2_hop_ms_mean")], "");
  EXPECT_EQ(records[2][IndexOf(header, "hop2_hop_ms_mean")], "2.5");
  EXPECT_EQ(records[1].size(), header.size());
  EXPECT_EQ(records[2].size(), header.size());
  EXPECT_EQ(records[1][IndexOf(header, "stages")], "2");
  EXPECT_EQ(records[2][IndexOf(header, "stages")], "3");
  EXPECT_EQ(records[2][IndexOf(header, "cuts")], "3,6");
  EXPECT_EQ(records[1][IndexOf(header, "stage2_endpoint")], "127.0.0.1:7001");
  EXPECT_EQ(records[1][IndexOf(header, "stage3_endpoint")], "");
  EXPECT_EQ(records[1][IndexOf(header, "stage3_compute_ms_mean")], "");
  EXPECT_EQ(records[2][IndexOf(header, "stage3_compute_ms_mean")], "12.5");
  EXPECT_EQ(records[2][IndexOf(header, "stage3_clock_offset_ns")], "-5002");
  EXPECT_EQ(records[2][IndexOf(header, "hostname")], "host0");
  EXPECT_EQ(records[1][IndexOf(header, "hop2_hop_ms_mean")], "");
  EXPECT_EQ(records[2][IndexOf(header, "hop1_hop_ms_mean")], "");
  EXPECT_EQ(records[2][IndexOf(header, "hop2_hop_ms_mean")], "2.5");
}

TEST(ExportTest, CsvDoublesReadBackExactly) {
  RunRecord run = RunWithStages(2, 1);

  std::vector<std::vector<std::string>> records = ParseCsv(RunsToCsv({run}));

  const std::string& text = records[1][IndexOf(records[0], "latency_ms_mean")];
  double value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  EXPECT_EQ(value, 0.1 + 0.2) << text;
}

TEST(ExportTest, AbsentConfidenceIntervalIsAnEmptyCell) {
  RunRecord run = RunWithStages(2, 1);
  run.throughput_ips = {500.0, std::nullopt, std::nullopt, 1};

  std::vector<std::vector<std::string>> records = ParseCsv(RunsToCsv({run}));

  EXPECT_EQ(records[1][IndexOf(records[0], "throughput_ips")], "500");
  EXPECT_EQ(records[1][IndexOf(records[0], "throughput_ips_ci_low")], "");
  EXPECT_EQ(records[1][IndexOf(records[0], "throughput_ips_ci_high")], "");
}

TEST(ExportTest, NoRunsGiveHeaderOnlyCsvAndEmptyJsonArray) {
  std::vector<std::vector<std::string>> records = ParseCsv(RunsToCsv({}));

  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].front(), "id");
  EXPECT_EQ(nlohmann::json::parse(RunsToJson({})), nlohmann::json::array());
}

TEST(ExportTest, JsonParsesBackWithTheSameValuesAndNulls) {
  RunRecord two = RunWithStages(2, 1);
  two.throughput_ips.ci_low.reset();
  two.throughput_ips.ci_high.reset();
  two.error = "a \"quoted\", message";
  RunRecord three = RunWithStages(3, 2);
  three.config.seed = 18446744073709551615ull;

  nlohmann::ordered_json json = nlohmann::ordered_json::parse(RunsToJson({two, three}));

  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 2u);
  std::vector<std::string> keys;
  for (const auto& item : json[0].items()) keys.push_back(item.key());
  EXPECT_EQ(keys, ExportColumns({two, three}));
  EXPECT_EQ(json[0]["id"], 1);
  EXPECT_EQ(json[0]["error"], two.error);
  EXPECT_EQ(json[0]["latency_ms_mean"].get<double>(), 0.1 + 0.2);
  EXPECT_TRUE(json[0]["throughput_ips_ci_low"].is_null());
  EXPECT_EQ(json[0]["throughput_ips"].get<double>(), 500.0);
  EXPECT_TRUE(json[0]["stage3_endpoint"].is_null());
  EXPECT_TRUE(json[0]["stage3_peak_rss_bytes"].is_null());
  EXPECT_EQ(json[0]["cuts"], "3");
  EXPECT_EQ(json[1]["cuts"], "3,6");
  EXPECT_EQ(json[1]["stages"], 3);
  EXPECT_EQ(json[1]["seed"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(json[1]["stage3_peak_rss_bytes"], 123456789);
  EXPECT_EQ(json[1]["stage3_clock_offset_ns"], -5002);
  EXPECT_EQ(json[1]["stage2_endpoint"], "127.0.0.1:7001");
}

TEST(ExportTest, GpuStageHasItsDeviceAndCopiesAndCpuStageLeavesThemEmpty) {
  RunRecord run = RunWithStages(2, 1);
  run.config.device = "cpu,cuda:0";
  run.environment[1].device = "cuda:0";
  run.environment[1].device_name = "NVIDIA H200";
  run.stages[1].copy_in_ms_mean = 0.5;
  run.stages[1].copy_out_ms_mean = 0.25;
  run.stages[1].device_peak_bytes = int64_t{3} << 30;
  run.stages[1].device_utilization_pct = 62.5;

  std::vector<std::vector<std::string>> records = ParseCsv(RunsToCsv({run}));
  nlohmann::json json = nlohmann::json::parse(RunsToJson({run}));

  ASSERT_EQ(records.size(), 2u);
  const std::vector<std::string>& header = records[0];
  const std::vector<std::string>& row = records[1];
  EXPECT_EQ(row[IndexOf(header, "device")], "cpu,cuda:0");
  EXPECT_EQ(row[IndexOf(header, "stage1_device")], "cpu");
  EXPECT_EQ(row[IndexOf(header, "stage1_device_name")], "");
  EXPECT_EQ(row[IndexOf(header, "stage1_copy_in_ms_mean")], "");
  EXPECT_EQ(row[IndexOf(header, "stage1_device_utilization_pct")], "");
  EXPECT_EQ(row[IndexOf(header, "stage2_device")], "cuda:0");
  EXPECT_EQ(row[IndexOf(header, "stage2_device_name")], "NVIDIA H200");
  EXPECT_EQ(row[IndexOf(header, "stage2_copy_in_ms_mean")], "0.5");
  EXPECT_EQ(row[IndexOf(header, "stage2_copy_out_ms_mean")], "0.25");
  EXPECT_EQ(row[IndexOf(header, "stage2_device_peak_bytes")], "3221225472");
  EXPECT_EQ(row[IndexOf(header, "stage2_device_utilization_pct")], "62.5");
  EXPECT_TRUE(json[0]["stage1_device_peak_bytes"].is_null());
  EXPECT_EQ(json[0]["stage2_device_peak_bytes"], int64_t{3} << 30);
}

TEST(ExportTest, FailedRunWithoutRepeatsHasNullMeans) {
  RunRecord run;
  run.id = 3;
  run.status = "failed";
  run.error = "connection refused";
  run.config.cuts = {4};

  nlohmann::json json = nlohmann::json::parse(RunsToJson({run}));

  EXPECT_TRUE(json[0]["latency_ms_mean"].is_null());
  EXPECT_TRUE(json[0]["throughput_ips"].is_null());
  EXPECT_EQ(json[0]["repeats_n"], 0);
  EXPECT_TRUE(json[0]["hostname"].is_null());
  EXPECT_TRUE(json[0]["stage2_endpoint"].is_null());
  EXPECT_TRUE(json[0]["stage2_device"].is_null());
}

TEST(ExportTest, StageWithoutStatisticsStillHasItsEnvironment) {
  RunRecord run = RunWithStages(2, 4);
  run.status = "failed";
  run.stages.clear();
  run.environment[1].device = "cuda:1";
  run.environment[1].limits = "pi: cpus 0";

  nlohmann::json json = nlohmann::json::parse(RunsToJson({run}));

  EXPECT_TRUE(json[0]["stage2_compute_ms_mean"].is_null());
  EXPECT_TRUE(json[0]["stage2_copy_in_ms_mean"].is_null());
  EXPECT_EQ(json[0]["stage2_limits"], "pi: cpus 0");
  EXPECT_EQ(json[0]["stage2_device"], "cuda:1");
  EXPECT_EQ(json[0]["stage2_device_name"], "");
}

}  // namespace
}  // namespace paretopipe
