// ResultStore: runs round-trip through SQLite field by field, each insert is
// its own transaction, and files of another version or kind are refused.
#include "store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>

namespace paretopipe {
namespace {

// A fresh directory, removed with its contents when this object dies.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "pp_store_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A prediction whose numbers differ from each other and from `latency_ms`.
RunPrediction Prediction(double latency_ms, const std::string& role, const std::string& source) {
  RunPrediction p;
  p.latency_ms = latency_ms;
  p.idle_latency_ms = latency_ms - 7.25;
  p.throughput_ips = 4000 / latency_ms;
  p.bottleneck = "stage 2";
  p.role = role;
  p.source = source;
  return p;
}

// A run of `stage_count` stages with every field set to a distinct value, two
// repeats with confidence intervals, and samples. Stage 1 (when there is one)
// ran on a GPU, the others on the CPU.
RunRecord FullRecord(int stage_count) {
  RunRecord r;
  r.started_at_utc = "2026-11-26T19:46:49Z";
  r.config.model = "resnet18";
  r.config.num_classes = 10;
  r.config.seed = 18446744073709551615ull;  // Above INT64_MAX: stored as two's complement.
  r.config.weights_digest = "ab12cd";
  r.config.batch_size = 16;
  r.config.input_side_px = 224;
  r.config.batches = 40;
  r.config.warmup = 3;
  r.config.window = 5;
  r.config.repeats = 2;
  r.config.backend = "tcp";
  r.config.threads = 2;
  r.config.device = "";  // Each stage's, below.
  r.config.sweep_id = "sweep-a";
  r.config.input = "cifar10:/data/test_batch.bin mean=0.5,0.5,0.5 std=0.5,0.5,0.5";
  r.config.input_digest = "9f86d0";
  r.config.input_images = 256;
  r.accuracy = Accuracy{256, 97};
  for (int s = 0; s < stage_count; ++s) {
    if (s > 0) r.config.cuts.push_back(3 * s);
    r.config.workers.push_back("10.0.0." + std::to_string(s + 1) + ":700" + std::to_string(s));

    StageEnvironment e;
    e.stage = s;
    e.endpoint = r.config.workers.back();
    e.hostname = "host" + std::to_string(s);
    e.cpu_model = "Intel(R) Xeon(R), 2.2GHz";
    e.kernel = "6.1.0-18-amd64";
    e.arch = "x86_64";
    e.blas = "openblas 0.3.21";
    e.libtorch_version = "1.13.1";
    e.compiler = "GCC 12.2.0";
    e.logical_cpus = 8 + s;
    e.threads = 2;
    if (s == 1) {
      e.device = "cuda:0";
      e.device_name = "NVIDIA H200";
    }
    r.environment.push_back(e);
    r.config.device += (s == 0 ? "" : ",") + e.device;

    StageStats t;
    t.stage = s;
    t.block_begin = s == 0 ? 0 : 3 * s;
    t.block_end = 3 * (s + 1);
    t.endpoint = e.endpoint;
    t.clock = {-123456789 + s, 4567 + s, 9134 + s, 16};
    t.compute_ms_mean = 12.25 + s;
    t.compute_ms_p50 = 12.0 + s;
    t.compute_ms_p95 = 14.5 + s;
    t.queue_ms_mean = 0.1 + s;
    t.recv_ms_mean = 0.7 * s;
    t.send_ms_mean = s + 1 < stage_count ? 0.3 : 0.0;
    t.bytes_out_per_batch = s + 1 < stage_count ? 3211264.0 : 0.0;
    t.idle_fraction = 0.125 + 0.01 * s;
    t.cpu_ms = 1234.5 + s;
    t.peak_rss_bytes = 987654321 + s;
    if (s == 1) {
      t.copy_in_ms_mean = 0.125;
      t.copy_out_ms_mean = 0.0625 + 1.0 / 3.0;  // Not exactly representable.
      t.device_peak_bytes = int64_t{80} << 30;
      t.device_utilization_pct = 87.5;
    }
    r.stages.push_back(t);
    if (s + 1 < stage_count) {
      HopStats h;
      h.hop = s;
      h.bytes_per_frame = 3211264.0;
      h.hop_ms_mean = 2.5 + s;
      h.hop_ms_p50 = 2.25 + s;
      h.serialize_ms_mean = 0.125;
      h.wire_ms_mean = 1.875 + s;
      h.queue_ms_mean = 0.25;
      h.deserialize_ms_mean = 0.25;
      h.send_ms_mean = 1.5;
      h.recv_ms_mean = 1.25;
      h.clock_uncertainty_ms = 0.0625;
      r.hops.push_back(h);
    }
  }
  for (int rep = 0; rep < 2; ++rep) {
    RepeatSummary p;
    p.repeat = rep;
    p.measured_batches = 37;
    p.latency_ms_mean = 30.1 + rep;
    p.latency_ms_p50 = 29.9 + rep;
    p.latency_ms_p95 = 35.3 + rep;
    p.latency_ms_p99 = 40.7 + rep;
    p.throughput_ips = 512.25 - rep;
    p.window_s = 1.15625;
    p.latency_uncertainty_ms = 0.0123;
    r.repeats.push_back(p);
    for (int b = 0; b < 4; ++b) {
      BatchSample sample;
      sample.repeat = rep;
      sample.batch_id = b;
      sample.warmup = b < 3;
      sample.latency_ms = 0.1 + 0.2 + b;  // Not exactly representable: tests the round trip.
      for (int s = 0; s < stage_count; ++s) sample.stage_compute_ms.push_back(1.0 / 3.0 + s);
      r.samples.push_back(sample);
    }
  }
  r.config.net = "delay=200ms,rate=5mbit";
  r.config.net_emulation = "userspace+htb";
  r.config.testbed = "netns";
  r.environment.front().limits = "pi: cpus 0, quota 0.25";
  for (int h = 0; h + 1 < stage_count; ++h) {
    LinkMeasurement l;
    l.hop = h;
    l.pings = 10;
    l.rtt_ms_min = 400.1;
    l.rtt_ms_median = 400.3 + h;
    l.rtt_ms_max = 401.9;
    l.bandwidth_mbit = 4.8 + 0.1 * h;
    l.bulk_bytes = 1 << 20;
    l.bulk_s = 3.2;
    r.links.push_back(l);
  }
  r.latency_ms_mean = {30.6, 24.2, 37.0, 2};
  r.latency_ms_p50 = {30.4, 24.0, 36.8, 2};
  r.latency_ms_p95 = {35.8, 29.4, 42.2, 2};
  r.latency_ms_p99 = {41.2, 34.8, 47.6, 2};
  r.throughput_ips = {511.75, 505.4, 518.1, 2};
  r.prediction = Prediction(28.5 + 1.0 / 3.0, "front",
                            "plan-first: each worker profiled (10 passes), base link none");
  return r;
}

// A run measured once: no confidence intervals.
RunRecord OneRepeatRecord() {
  RunRecord r = FullRecord(2);
  r.config.repeats = 1;
  r.repeats.resize(1);
  r.samples.resize(4);
  for (Estimate* e : {&r.latency_ms_mean, &r.latency_ms_p50, &r.latency_ms_p95, &r.latency_ms_p99,
                      &r.throughput_ips}) {
    *e = {e->mean, std::nullopt, std::nullopt, 1};
  }
  return r;
}

// A run that failed before any repeat finished.
RunRecord FailedRecord() {
  RunRecord r;
  r.started_at_utc = "2026-11-26T20:00:00Z";
  r.status = "failed";
  r.error = "worker 10.0.0.2:7001: connection refused, \"retry\"\nafter 3 attempts";
  r.config.model = "vgg16";
  r.config.backend = "grpc";
  r.config.cuts = {5};
  r.config.workers = {"10.0.0.1:7000", "10.0.0.2:7001"};
  r.config.sweep_id = "sweep-b";
  return r;
}

void ExpectSameEstimate(const Estimate& a, const Estimate& b, const char* name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.ci_low, b.ci_low);
  EXPECT_EQ(a.ci_high, b.ci_high);
  EXPECT_EQ(a.n, b.n);
}

// Field by field, so that a failure names the field.
void ExpectSameRecord(const RunRecord& a, const RunRecord& b) {
  EXPECT_EQ(a.started_at_utc, b.started_at_utc);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.error, b.error);
  const RunConfig &c = a.config, &d = b.config;
  EXPECT_EQ(c.model, d.model);
  EXPECT_EQ(c.num_classes, d.num_classes);
  EXPECT_EQ(c.seed, d.seed);
  EXPECT_EQ(c.weights_digest, d.weights_digest);
  EXPECT_EQ(c.cuts, d.cuts);
  EXPECT_EQ(c.batch_size, d.batch_size);
  EXPECT_EQ(c.input_side_px, d.input_side_px);
  EXPECT_EQ(c.batches, d.batches);
  EXPECT_EQ(c.warmup, d.warmup);
  EXPECT_EQ(c.window, d.window);
  EXPECT_EQ(c.repeats, d.repeats);
  EXPECT_EQ(c.backend, d.backend);
  EXPECT_EQ(c.threads, d.threads);
  EXPECT_EQ(c.device, d.device);
  EXPECT_EQ(c.workers, d.workers);
  EXPECT_EQ(c.sweep_id, d.sweep_id);
  EXPECT_EQ(c.net, d.net);
  EXPECT_EQ(c.net_emulation, d.net_emulation);
  EXPECT_EQ(c.testbed, d.testbed);
  EXPECT_EQ(c.input, d.input);
  EXPECT_EQ(c.input_digest, d.input_digest);
  EXPECT_EQ(c.input_images, d.input_images);
  ASSERT_EQ(a.accuracy.has_value(), b.accuracy.has_value());
  if (a.accuracy) {
    EXPECT_EQ(a.accuracy->images, b.accuracy->images);
    EXPECT_EQ(a.accuracy->correct, b.accuracy->correct);
  }
  ASSERT_EQ(a.prediction.has_value(), b.prediction.has_value());
  if (a.prediction) {
    EXPECT_EQ(a.prediction->latency_ms, b.prediction->latency_ms);
    EXPECT_EQ(a.prediction->idle_latency_ms, b.prediction->idle_latency_ms);
    EXPECT_EQ(a.prediction->throughput_ips, b.prediction->throughput_ips);
    EXPECT_EQ(a.prediction->bottleneck, b.prediction->bottleneck);
    EXPECT_EQ(a.prediction->role, b.prediction->role);
    EXPECT_EQ(a.prediction->source, b.prediction->source);
  }
  ASSERT_EQ(a.links.size(), b.links.size());
  for (size_t i = 0; i < a.links.size(); ++i) {
    SCOPED_TRACE("link " + std::to_string(i));
    const LinkMeasurement &l = a.links[i], &m = b.links[i];
    EXPECT_EQ(l.hop, m.hop);
    EXPECT_EQ(l.pings, m.pings);
    EXPECT_EQ(l.rtt_ms_min, m.rtt_ms_min);
    EXPECT_EQ(l.rtt_ms_median, m.rtt_ms_median);
    EXPECT_EQ(l.rtt_ms_max, m.rtt_ms_max);
    EXPECT_EQ(l.bandwidth_mbit, m.bandwidth_mbit);
    EXPECT_EQ(l.bulk_bytes, m.bulk_bytes);
    EXPECT_EQ(l.bulk_s, m.bulk_s);
  }

  ASSERT_EQ(a.environment.size(), b.environment.size());
  for (size_t i = 0; i < a.environment.size(); ++i) {
    SCOPED_TRACE("environment " + std::to_string(i));
    const StageEnvironment &e = a.environment[i], &f = b.environment[i];
    EXPECT_EQ(e.stage, f.stage);
    EXPECT_EQ(e.endpoint, f.endpoint);
    EXPECT_EQ(e.hostname, f.hostname);
    EXPECT_EQ(e.cpu_model, f.cpu_model);
    EXPECT_EQ(e.kernel, f.kernel);
    EXPECT_EQ(e.arch, f.arch);
    EXPECT_EQ(e.blas, f.blas);
    EXPECT_EQ(e.libtorch_version, f.libtorch_version);
    EXPECT_EQ(e.compiler, f.compiler);
    EXPECT_EQ(e.logical_cpus, f.logical_cpus);
    EXPECT_EQ(e.threads, f.threads);
    EXPECT_EQ(e.limits, f.limits);
    EXPECT_EQ(e.device, f.device);
    EXPECT_EQ(e.device_name, f.device_name);
  }
  ASSERT_EQ(a.repeats.size(), b.repeats.size());
  for (size_t i = 0; i < a.repeats.size(); ++i) {
    SCOPED_TRACE("repeat " + std::to_string(i));
    const RepeatSummary &p = a.repeats[i], &q = b.repeats[i];
    EXPECT_EQ(p.repeat, q.repeat);
    EXPECT_EQ(p.measured_batches, q.measured_batches);
    EXPECT_EQ(p.latency_ms_mean, q.latency_ms_mean);
    EXPECT_EQ(p.latency_ms_p50, q.latency_ms_p50);
    EXPECT_EQ(p.latency_ms_p95, q.latency_ms_p95);
    EXPECT_EQ(p.latency_ms_p99, q.latency_ms_p99);
    EXPECT_EQ(p.throughput_ips, q.throughput_ips);
    EXPECT_EQ(p.window_s, q.window_s);
    EXPECT_EQ(p.latency_uncertainty_ms, q.latency_uncertainty_ms);
  }
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (size_t i = 0; i < a.stages.size(); ++i) {
    SCOPED_TRACE("stage " + std::to_string(i));
    const StageStats &s = a.stages[i], &t = b.stages[i];
    EXPECT_EQ(s.stage, t.stage);
    EXPECT_EQ(s.block_begin, t.block_begin);
    EXPECT_EQ(s.block_end, t.block_end);
    EXPECT_EQ(s.endpoint, t.endpoint);
    EXPECT_EQ(s.clock.offset_ns, t.clock.offset_ns);
    EXPECT_EQ(s.clock.uncertainty_ns, t.clock.uncertainty_ns);
    EXPECT_EQ(s.clock.rtt_ns, t.clock.rtt_ns);
    EXPECT_EQ(s.clock.samples, t.clock.samples);
    EXPECT_EQ(s.compute_ms_mean, t.compute_ms_mean);
    EXPECT_EQ(s.compute_ms_p50, t.compute_ms_p50);
    EXPECT_EQ(s.compute_ms_p95, t.compute_ms_p95);
    EXPECT_EQ(s.queue_ms_mean, t.queue_ms_mean);
    EXPECT_EQ(s.recv_ms_mean, t.recv_ms_mean);
    EXPECT_EQ(s.send_ms_mean, t.send_ms_mean);
    EXPECT_EQ(s.bytes_out_per_batch, t.bytes_out_per_batch);
    EXPECT_EQ(s.idle_fraction, t.idle_fraction);
    EXPECT_EQ(s.cpu_ms, t.cpu_ms);
    EXPECT_EQ(s.peak_rss_bytes, t.peak_rss_bytes);
    EXPECT_EQ(s.copy_in_ms_mean, t.copy_in_ms_mean);
    EXPECT_EQ(s.copy_out_ms_mean, t.copy_out_ms_mean);
    EXPECT_EQ(s.device_peak_bytes, t.device_peak_bytes);
    EXPECT_EQ(s.device_utilization_pct, t.device_utilization_pct);
  }
  ASSERT_EQ(a.hops.size(), b.hops.size());
  for (size_t i = 0; i < a.hops.size(); ++i) {
    SCOPED_TRACE("hop " + std::to_string(i));
    const HopStats &s = a.hops[i], &t = b.hops[i];
    EXPECT_EQ(s.hop, t.hop);
    EXPECT_EQ(s.bytes_per_frame, t.bytes_per_frame);
    EXPECT_EQ(s.hop_ms_mean, t.hop_ms_mean);
    EXPECT_EQ(s.hop_ms_p50, t.hop_ms_p50);
    EXPECT_EQ(s.serialize_ms_mean, t.serialize_ms_mean);
    EXPECT_EQ(s.wire_ms_mean, t.wire_ms_mean);
    EXPECT_EQ(s.queue_ms_mean, t.queue_ms_mean);
    EXPECT_EQ(s.deserialize_ms_mean, t.deserialize_ms_mean);
    EXPECT_EQ(s.send_ms_mean, t.send_ms_mean);
    EXPECT_EQ(s.recv_ms_mean, t.recv_ms_mean);
    EXPECT_EQ(s.clock_uncertainty_ms, t.clock_uncertainty_ms);
  }
  ASSERT_EQ(a.samples.size(), b.samples.size());
  for (size_t i = 0; i < a.samples.size(); ++i) {
    SCOPED_TRACE("sample " + std::to_string(i));
    const BatchSample &s = a.samples[i], &t = b.samples[i];
    EXPECT_EQ(s.repeat, t.repeat);
    EXPECT_EQ(s.batch_id, t.batch_id);
    EXPECT_EQ(s.warmup, t.warmup);
    EXPECT_EQ(s.latency_ms, t.latency_ms);
    EXPECT_EQ(s.stage_compute_ms, t.stage_compute_ms);
  }
  ExpectSameEstimate(a.latency_ms_mean, b.latency_ms_mean, "latency_ms_mean");
  ExpectSameEstimate(a.latency_ms_p50, b.latency_ms_p50, "latency_ms_p50");
  ExpectSameEstimate(a.latency_ms_p95, b.latency_ms_p95, "latency_ms_p95");
  ExpectSameEstimate(a.latency_ms_p99, b.latency_ms_p99, "latency_ms_p99");
  ExpectSameEstimate(a.throughput_ips, b.throughput_ips, "throughput_ips");
}

std::unique_ptr<ResultStore> OpenOrDie(const std::string& path) {
  Result<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(store).value() : nullptr;
}

int64_t InsertOrDie(ResultStore& store, const RunRecord& record) {
  Result<int64_t> id = store.InsertRun(record);
  EXPECT_TRUE(id.ok()) << id.status().message();
  return id.ok() ? *id : -1;
}

std::vector<RunRecord> LoadOrDie(const ResultStore& store, const RunFilter& filter) {
  Result<std::vector<RunRecord>> runs = store.LoadRuns(filter);
  EXPECT_TRUE(runs.ok()) << runs.status().message();
  return runs.ok() ? std::move(runs).value() : std::vector<RunRecord>();
}

// Every run with every row, samples included: what ExpectSameRecord compares.
RunFilter Everything() {
  RunFilter filter;
  filter.with_samples = true;
  return filter;
}

// Runs `sql` on a plain SQLite connection and returns the first column of the
// first row as text ("NULL" for null, "" without rows).
std::string QueryOnOwnConnection(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    out = text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

TEST(ResultStoreTest, ThreeStageRunRoundTripsFieldByField) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  ASSERT_NE(store, nullptr);
  RunRecord record = FullRecord(3);

  int64_t id = InsertOrDie(*store, record);
  RunFilter filter;
  filter.with_samples = true;
  std::vector<RunRecord> runs = LoadOrDie(*store, filter);

  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, id);
  ExpectSameRecord(runs[0], record);
}

TEST(ResultStoreTest, RunWithoutAPredictionReadsBackWithout) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord record = FullRecord(2);
  record.prediction.reset();

  InsertOrDie(*store, record);
  std::vector<RunRecord> runs = LoadOrDie(*store, Everything());

  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(runs[0].prediction.has_value());
  ExpectSameRecord(runs[0], record);
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT count(*) FROM run_predictions"), "0");
}

TEST(ResultStoreTest, SavePredictionReplacesTheRunsEarlierOneAndLeavesItsMeasurement) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord record = FullRecord(2);
  record.prediction.reset();
  const int64_t id = InsertOrDie(*store, record);
  const RunPrediction first = Prediction(10, "validate", "validate: pi=a.json; base link none");
  const RunPrediction second =
      Prediction(20.5, "validate", "validate: pi=b.json; base link rtt=1ms,rate=unlimited");

  ASSERT_TRUE(store->SavePrediction(id, first).ok());
  Status replaced = store->SavePrediction(id, second);

  ASSERT_TRUE(replaced.ok()) << replaced.message();
  std::vector<RunRecord> runs = LoadOrDie(*store, Everything());
  ASSERT_EQ(runs.size(), 1u);
  record.prediction = second;
  ExpectSameRecord(runs[0], record);
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT count(*) FROM run_predictions"), "1");
}

TEST(ResultStoreTest, SavePredictionForAnUnknownRunIsNotFoundAndWritesNothing) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  const int64_t id = InsertOrDie(*store, FullRecord(2));

  Status status = store->SavePrediction(id + 1, FullRecord(2).prediction.value());

  EXPECT_EQ(status.code(), Status::Code::kNotFound) << status.message();
  EXPECT_EQ(status.message(), path + ": save prediction of run " + std::to_string(id + 1) +
                                  ": no such run in this database");
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT count(*) FROM run_predictions"), "1");
}

TEST(ResultStoreTest, PredictionWithANumberThatIsNotFiniteIsRefused) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord record = FullRecord(2);
  const int64_t id = InsertOrDie(*store, record);
  RunPrediction nan = *record.prediction, infinite = *record.prediction;
  nan.latency_ms = std::numeric_limits<double>::quiet_NaN();
  infinite.throughput_ips = std::numeric_limits<double>::infinity();
  RunRecord with_nan = record;
  with_nan.prediction = nan;

  Status saved = store->SavePrediction(id, infinite);
  Result<int64_t> inserted = store->InsertRun(with_nan);

  EXPECT_EQ(saved.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(saved.message().find("throughput_ips"), std::string::npos) << saved.message();
  ASSERT_FALSE(inserted.ok());
  EXPECT_EQ(inserted.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(inserted.status().message().find("latency_ms"), std::string::npos)
      << inserted.status().message();
  std::vector<RunRecord> runs = LoadOrDie(*store, Everything());
  ASSERT_EQ(runs.size(), 1u);
  ExpectSameRecord(runs[0], record);
}

TEST(ResultStoreTest, ReadOnlyStoreRefusesToSaveAPrediction) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  RunRecord record = FullRecord(2);
  record.prediction.reset();
  int64_t id = 0;
  {
    std::unique_ptr<ResultStore> writer = OpenOrDie(path);
    ASSERT_NE(writer, nullptr);
    id = InsertOrDie(*writer, record);
  }
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(path);
  ASSERT_TRUE(store.ok()) << store.status().message();

  Status saved = (*store)->SavePrediction(id, FullRecord(2).prediction.value());

  EXPECT_FALSE(saved.ok());
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT count(*) FROM run_predictions"), "0");
}

TEST(ResultStoreTest, GpuStageKeepsItsDeviceNumbersAndCpuStageHasNulls) {
  TempDir dir;
  const std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  const RunRecord record = FullRecord(2);  // Stage 0 on the CPU, stage 1 on cuda:0.

  InsertOrDie(*store, record);
  const std::vector<RunRecord> runs = LoadOrDie(*store, RunFilter{});

  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].config.device, "cpu,cuda:0");
  EXPECT_EQ(runs[0].environment[0].device, "cpu");
  EXPECT_EQ(runs[0].environment[1].device, "cuda:0");
  EXPECT_EQ(runs[0].environment[1].device_name, "NVIDIA H200");
  EXPECT_FALSE(runs[0].stages[0].copy_in_ms_mean.has_value());
  EXPECT_FALSE(runs[0].stages[0].device_utilization_pct.has_value());
  EXPECT_EQ(runs[0].stages[1].copy_in_ms_mean, 0.125);
  EXPECT_EQ(runs[0].stages[1].device_peak_bytes, int64_t{80} << 30);
  EXPECT_EQ(runs[0].stages[1].device_utilization_pct, 87.5);
  EXPECT_EQ(
      QueryOnOwnConnection(path,
                           "SELECT coalesce(copy_in_ms_mean, copy_out_ms_mean, device_peak_bytes, "
                           "device_utilization_pct) IS NULL FROM run_stages WHERE stage = 0"),
      "1");
}

TEST(ResultStoreTest, OneRepeatRunStoresAbsentConfidenceIntervalsAsNull) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord record = OneRepeatRecord();

  int64_t id = InsertOrDie(*store, record);
  RunFilter filter;
  filter.with_samples = true;
  std::vector<RunRecord> runs = LoadOrDie(*store, filter);

  ASSERT_EQ(runs.size(), 1u);
  ExpectSameRecord(runs[0], record);
  EXPECT_FALSE(runs[0].throughput_ips.ci_low.has_value());
  std::string where = " FROM runs WHERE id = " + std::to_string(id);
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT latency_ms_p95_ci_low" + where), "NULL");
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT throughput_ips_ci_high" + where), "NULL");
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT repeats_n" + where), "1");
}

TEST(ResultStoreTest, FailedRunKeepsItsErrorTextAndHasNoMeans) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord record = FailedRecord();

  int64_t id = InsertOrDie(*store, record);
  std::vector<RunRecord> runs = LoadOrDie(*store, RunFilter());

  ASSERT_EQ(runs.size(), 1u);
  ExpectSameRecord(runs[0], record);
  EXPECT_EQ(QueryOnOwnConnection(
                path, "SELECT latency_ms_mean FROM runs WHERE id = " + std::to_string(id)),
            "NULL");
}

TEST(ResultStoreTest, NotANumberIsStoredAsNullAndReadsBackAsNotANumber) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord record = FullRecord(2);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  record.stages[1].idle_fraction = nan;
  record.samples[0].stage_compute_ms[1] = nan;
  record.latency_ms_p99.mean = nan;

  InsertOrDie(*store, record);
  RunFilter filter;
  filter.with_samples = true;
  std::vector<RunRecord> runs = LoadOrDie(*store, filter);

  ASSERT_EQ(runs.size(), 1u);
  EXPECT_TRUE(std::isnan(runs[0].stages[1].idle_fraction));
  EXPECT_TRUE(std::isnan(runs[0].samples[0].stage_compute_ms[1]));
  EXPECT_EQ(runs[0].samples[0].stage_compute_ms[0], record.samples[0].stage_compute_ms[0]);
  EXPECT_TRUE(std::isnan(runs[0].latency_ms_p99.mean));
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT idle_fraction FROM run_stages WHERE stage = 1"),
            "NULL");
}

TEST(ResultStoreTest, SamplesLoadOnlyWhenAsked) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  ASSERT_NE(store, nullptr);
  InsertOrDie(*store, FullRecord(2));

  std::vector<RunRecord> without = LoadOrDie(*store, RunFilter());

  ASSERT_EQ(without.size(), 1u);
  EXPECT_TRUE(without[0].samples.empty());
  EXPECT_EQ(without[0].stages.size(), 2u);
}

TEST(ResultStoreTest, FiltersSelectByModelBackendSweepAndStatus) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  ASSERT_NE(store, nullptr);
  RunRecord resnet_tcp = FullRecord(2);  // resnet18, tcp, sweep-a, ok
  RunRecord resnet_grpc = FullRecord(2);
  resnet_grpc.config.backend = "grpc";
  resnet_grpc.config.sweep_id = "sweep-b";
  RunRecord vgg_failed = FailedRecord();  // vgg16, grpc, sweep-b, failed
  int64_t a = InsertOrDie(*store, resnet_tcp);
  int64_t b = InsertOrDie(*store, resnet_grpc);
  int64_t c = InsertOrDie(*store, vgg_failed);
  auto ids = [&](const RunFilter& filter) {
    std::vector<int64_t> out;
    for (const RunRecord& r : LoadOrDie(*store, filter)) out.push_back(r.id);
    return out;
  };

  RunFilter by_model;
  by_model.model = "resnet18";
  RunFilter by_backend;
  by_backend.backend = "grpc";
  RunFilter by_sweep;
  by_sweep.sweep_id = "sweep-b";
  RunFilter ok_grpc;
  ok_grpc.backend = "grpc";
  ok_grpc.only_ok = true;
  RunFilter nothing;
  nothing.model = "mobilenet_v2";

  EXPECT_EQ(ids(RunFilter()), (std::vector<int64_t>{a, b, c}));
  EXPECT_EQ(ids(by_model), (std::vector<int64_t>{a, b}));
  EXPECT_EQ(ids(by_backend), (std::vector<int64_t>{b, c}));
  EXPECT_EQ(ids(by_sweep), (std::vector<int64_t>{b, c}));
  EXPECT_EQ(ids(ok_grpc), (std::vector<int64_t>{b}));
  EXPECT_EQ(ids(nothing), (std::vector<int64_t>{}));
}

TEST(ResultStoreTest, EachInsertIsVisibleToAnotherConnectionWhenItReturns) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> writer = OpenOrDie(path);
  ASSERT_NE(writer, nullptr);
  Result<std::unique_ptr<ResultStore>> reader = ResultStore::OpenReadOnly(path);
  ASSERT_TRUE(reader.ok()) << reader.status().message();

  for (int i = 1; i <= 3; ++i) {
    InsertOrDie(*writer, FullRecord(2));
    EXPECT_EQ(LoadOrDie(**reader, RunFilter()).size(), static_cast<size_t>(i));
  }
}

TEST(ResultStoreTest, TwoWritersOnOneFileBothCommitEveryRun) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  ASSERT_NE(OpenOrDie(path), nullptr);  // Create the schema before the race.
  auto write_five = [&path] {
    std::unique_ptr<ResultStore> store = OpenOrDie(path);
    if (store == nullptr) return;
    for (int i = 0; i < 5; ++i) InsertOrDie(*store, FullRecord(2));
  };

  std::thread first(write_five), second(write_five);
  first.join();
  second.join();

  std::vector<RunRecord> runs = LoadOrDie(*OpenOrDie(path), RunFilter());
  ASSERT_EQ(runs.size(), 10u);
  // Every run arrived whole: no writer's transaction interleaved with another's.
  const RunRecord expected = FullRecord(2);
  for (const RunRecord& r : runs) {
    EXPECT_EQ(r.stages.size(), expected.stages.size()) << "run " << r.id;
    EXPECT_EQ(r.repeats.size(), expected.repeats.size()) << "run " << r.id;
    EXPECT_EQ(r.environment.size(), expected.environment.size()) << "run " << r.id;
  }
}

TEST(ResultStoreTest, RunsSurviveClosingAndReopening) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  RunRecord record = FullRecord(3);
  OpenOrDie(path)->InsertRun(record);

  std::unique_ptr<ResultStore> reopened = OpenOrDie(path);
  ASSERT_NE(reopened, nullptr);
  RunFilter filter;
  filter.with_samples = true;
  std::vector<RunRecord> runs = LoadOrDie(*reopened, filter);

  ASSERT_EQ(runs.size(), 1u);
  ExpectSameRecord(runs[0], record);
}

TEST(ResultStoreTest, IdsIncreaseWithEveryInsert) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  ASSERT_NE(store, nullptr);

  int64_t first = InsertOrDie(*store, FullRecord(2));
  int64_t second = InsertOrDie(*store, FailedRecord());
  int64_t third = InsertOrDie(*store, FullRecord(3));

  EXPECT_GT(first, 0);
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST(ResultStoreTest, FailedInsertWritesNothingAndNamesTheFile) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord record = FullRecord(3);
  record.stages[2].stage = 1;  // Two stages numbered 1: the second row breaks the key.

  Result<int64_t> id = store->InsertRun(record);

  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(id.status().message().rfind(path + ": insert run: ", 0), 0u) << id.status().message();
  EXPECT_TRUE(LoadOrDie(*store, RunFilter()).empty());
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT count(*) FROM run_environment"), "0");
}

TEST(ResultStoreTest, ARunReplacingAFailedOneDeletesItInTheSameInsert) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  ASSERT_NE(store, nullptr);
  const int64_t kept = InsertOrDie(*store, FullRecord(2));
  const int64_t failed = InsertOrDie(*store, FailedRecord());

  Result<int64_t> retry = store->InsertRun(FullRecord(2), {failed});

  ASSERT_TRUE(retry.ok()) << retry.status().message();
  std::vector<int64_t> ids;
  for (const RunRecord& r : LoadOrDie(*store, RunFilter())) ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{kept, *retry}));
}

// The store's own connection enforces the foreign keys: the failed run's
// prediction goes with it.
TEST(ResultStoreTest, ReplacingAFailedRunDeletesItsPrediction) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  RunRecord failed_record = FailedRecord();
  failed_record.prediction = FullRecord(2).prediction;
  const int64_t failed = InsertOrDie(*store, failed_record);
  ASSERT_EQ(QueryOnOwnConnection(path, "SELECT count(*) FROM run_predictions WHERE run_id = " +
                                           std::to_string(failed)),
            "1");

  Result<int64_t> retry = store->InsertRun(FullRecord(2), {failed});

  ASSERT_TRUE(retry.ok()) << retry.status().message();
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT group_concat(run_id) FROM run_predictions"),
            std::to_string(*retry));
}

TEST(ResultStoreTest, ReplacingASuccessfulRunIsRefusedAndWritesNothing) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  ASSERT_NE(store, nullptr);
  const int64_t ok = InsertOrDie(*store, FullRecord(2));
  const int64_t failed = InsertOrDie(*store, FailedRecord());

  Result<int64_t> retry = store->InsertRun(FullRecord(2), {failed, ok});

  ASSERT_FALSE(retry.ok());
  EXPECT_NE(retry.status().message().find("is not a failed run"), std::string::npos)
      << retry.status().message();
  EXPECT_EQ(LoadOrDie(*store, RunFilter()).size(), 2u) << "the failed run was deleted anyway";
}

TEST(ResultStoreTest, EstimatesOverDifferentRepeatCountsAreRefused) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  ASSERT_NE(store, nullptr);
  RunRecord record = FullRecord(2);
  record.throughput_ips.n = 1;

  Result<int64_t> id = store->InsertRun(record);

  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(LoadOrDie(*store, RunFilter()).empty());
}

TEST(ResultStoreTest, DeletingARunDeletesItsRows) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  std::unique_ptr<ResultStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  int64_t id = InsertOrDie(*store, FullRecord(2));
  for (const char* table :
       {"run_environment", "run_repeats", "run_stages", "run_samples", "run_predictions"}) {
    ASSERT_NE(QueryOnOwnConnection(path, std::string("SELECT count(*) FROM ") + table), "0")
        << table << " has no rows to delete";
  }

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(
          db,
          ("PRAGMA foreign_keys = ON; DELETE FROM runs WHERE id = " + std::to_string(id)).c_str(),
          nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);

  for (const char* table :
       {"run_environment", "run_repeats", "run_stages", "run_samples", "run_predictions"}) {
    EXPECT_EQ(QueryOnOwnConnection(path, std::string("SELECT count(*) FROM ") + table), "0")
        << table;
  }
}

TEST(ResultStoreTest, NewDatabaseUsesWriteAheadLogAndCurrentSchemaVersion) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");

  ASSERT_NE(OpenOrDie(path), nullptr);

  EXPECT_EQ(QueryOnOwnConnection(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryOnOwnConnection(path, "PRAGMA user_version"), std::to_string(kStoreSchemaVersion));
}

TEST(ResultStoreTest, FileOfAnotherSchemaVersionIsRefused) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  ASSERT_NE(OpenOrDie(path), nullptr);
  QueryOnOwnConnection(path, "PRAGMA user_version = 7");

  Result<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
  Result<std::unique_ptr<ResultStore>> read_only = ResultStore::OpenReadOnly(path);

  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store.status().message(), path + ": schema version 7, this build reads version 6");
  ASSERT_FALSE(read_only.ok());
  EXPECT_EQ(read_only.status().code(), Status::Code::kInvalidArgument);
}

// Turns a current file into what a build of `version` (1 to 5) wrote.
void Downgrade(const std::string& path, int version) {
  QueryOnOwnConnection(path, "DROP TABLE run_predictions");
  if (version <= 4) {
    for (const char* sql : {"ALTER TABLE run_environment DROP COLUMN device",
                            "ALTER TABLE run_environment DROP COLUMN device_name",
                            "ALTER TABLE run_stages DROP COLUMN copy_in_ms_mean",
                            "ALTER TABLE run_stages DROP COLUMN copy_out_ms_mean",
                            "ALTER TABLE run_stages DROP COLUMN device_peak_bytes",
                            "ALTER TABLE run_stages DROP COLUMN device_utilization_pct"}) {
      QueryOnOwnConnection(path, sql);
    }
  }
  for (const char* column :
       {"input", "input_digest", "input_images", "accuracy_images", "accuracy_correct"}) {
    if (version <= 3) {
      QueryOnOwnConnection(path, std::string("ALTER TABLE runs DROP COLUMN ") + column);
    }
  }
  for (const char* sql :
       {"DROP INDEX runs_net", "DROP TABLE run_links", "ALTER TABLE runs DROP COLUMN net",
        "ALTER TABLE runs DROP COLUMN net_emulation", "ALTER TABLE runs DROP COLUMN testbed",
        "ALTER TABLE run_environment DROP COLUMN limits"}) {
    if (version <= 2) QueryOnOwnConnection(path, sql);
  }
  if (version == 1) QueryOnOwnConnection(path, "DROP TABLE run_hops");
  QueryOnOwnConnection(path, "PRAGMA user_version = " + std::to_string(version));
}

TEST(ResultStoreTest, OlderFilesReadAsTheyAreAndAreUpgradedOnWrite) {
  for (int version : {1, 2, 3, 4}) {
    SCOPED_TRACE("version " + std::to_string(version));
    TempDir dir;
    std::string path = dir.File("paretopipe.db");
    {
      std::unique_ptr<ResultStore> store = OpenOrDie(path);
      RunRecord run = FullRecord(2);
      if (version <= 2) {
        run.links.clear();
        run.config.net = "none";
        run.config.net_emulation = "none";
        run.config.testbed = "";
        run.environment.front().limits = "";
      }
      if (version == 1) run.hops.clear();
      ASSERT_TRUE(store->InsertRun(run).ok());
    }
    Downgrade(path, version);
    EXPECT_EQ(QueryOnOwnConnection(path,
                                   "SELECT count(*) FROM pragma_table_info('runs') WHERE "
                                   "name = 'net' OR name = 'input'"),
              version <= 2   ? "0"
              : version == 3 ? "1"
                             : "2");
    EXPECT_EQ(
        QueryOnOwnConnection(path,
                             "SELECT count(*) FROM pragma_table_info('run_stages') WHERE name LIKE "
                             "'device%' OR name LIKE 'copy%'"),
        "0");

    Result<std::unique_ptr<ResultStore>> read_only = ResultStore::OpenReadOnly(path);
    ASSERT_TRUE(read_only.ok()) << read_only.status().message();
    Result<std::vector<RunRecord>> old_runs = (*read_only)->LoadRuns(RunFilter{});
    ASSERT_TRUE(old_runs.ok()) << old_runs.status().message();
    ASSERT_EQ(old_runs->size(), 1u);
    EXPECT_EQ(old_runs->front().hops.size(), version == 1 ? 0u : 1u);
    EXPECT_FALSE(old_runs->front().prediction.has_value());
    if (version <= 3) {
      EXPECT_EQ(old_runs->front().config.input, "synthetic");  // Before 4, no run had another.
      EXPECT_FALSE(old_runs->front().accuracy.has_value());
    } else {
      EXPECT_EQ(old_runs->front().config.input, FullRecord(2).config.input);
      EXPECT_TRUE(old_runs->front().accuracy.has_value());
    }
    // Before 5, every stage computed on the CPU.
    for (const StageEnvironment& e : old_runs->front().environment) {
      EXPECT_EQ(e.device, "cpu");
      EXPECT_EQ(e.device_name, "");
    }
    for (const StageStats& t : old_runs->front().stages) {
      EXPECT_FALSE(t.copy_in_ms_mean || t.copy_out_ms_mean || t.device_peak_bytes ||
                   t.device_utilization_pct)
          << "stage " << t.stage;
    }
    if (version <= 2) {
      EXPECT_EQ(old_runs->front().config.net, "none");
      EXPECT_TRUE(old_runs->front().links.empty());
      RunFilter shaped;
      shaped.net = "delay=200ms";
      EXPECT_TRUE(LoadOrDie(**read_only, shaped).empty());  // Older runs had no condition.
    } else {
      EXPECT_EQ(old_runs->front().config.net, FullRecord(2).config.net);
      EXPECT_EQ(old_runs->front().links.size(), FullRecord(2).links.size());
    }
    // Reading wrote nothing.
    EXPECT_EQ(QueryOnOwnConnection(path, "PRAGMA user_version"), std::to_string(version));

    std::unique_ptr<ResultStore> upgraded = OpenOrDie(path);
    ASSERT_TRUE(upgraded->InsertRun(FullRecord(2)).ok());
    RunFilter everything;
    everything.with_samples = true;
    Result<std::vector<RunRecord>> runs = upgraded->LoadRuns(everything);
    ASSERT_TRUE(runs.ok()) << runs.status().message();
    ASSERT_EQ(runs->size(), 2u);
    EXPECT_EQ((*runs)[0].environment.back().device, "cpu");
    EXPECT_FALSE((*runs)[0].stages.back().device_peak_bytes.has_value());
    EXPECT_FALSE((*runs)[0].prediction.has_value());
    if (version <= 3) {
      EXPECT_EQ((*runs)[0].config.input, "synthetic");
      EXPECT_EQ((*runs)[0].config.input_images, 0);
      EXPECT_FALSE((*runs)[0].accuracy.has_value());
    }
    if (version <= 2) {
      EXPECT_EQ((*runs)[0].config.net, "none");
      EXPECT_EQ((*runs)[0].config.net_emulation, "none");
      EXPECT_TRUE((*runs)[0].links.empty());
    }
    ExpectSameRecord((*runs)[1], FullRecord(2));
    EXPECT_EQ(QueryOnOwnConnection(path, "PRAGMA user_version"), "6");
  }
}

TEST(ResultStoreTest, VersionFiveFileKeepsItsRunsAndAcceptsPredictionsOnceUpgraded) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  RunRecord old_run = FullRecord(2);
  old_run.prediction.reset();
  int64_t id = 0;
  {
    std::unique_ptr<ResultStore> store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    id = InsertOrDie(*store, old_run);
  }
  Downgrade(path, 5);
  ASSERT_EQ(QueryOnOwnConnection(
                path, "SELECT count(*) FROM sqlite_master WHERE name = 'run_predictions'"),
            "0");
  {
    Result<std::unique_ptr<ResultStore>> read_only = ResultStore::OpenReadOnly(path);
    ASSERT_TRUE(read_only.ok()) << read_only.status().message();
    std::vector<RunRecord> runs = LoadOrDie(**read_only, Everything());
    ASSERT_EQ(runs.size(), 1u);
    ExpectSameRecord(runs[0], old_run);  // GPU numbers and all; no prediction.
    EXPECT_EQ(QueryOnOwnConnection(path, "PRAGMA user_version"), "5");
  }

  std::unique_ptr<ResultStore> upgraded = OpenOrDie(path);
  ASSERT_NE(upgraded, nullptr);
  Status saved = upgraded->SavePrediction(id, FullRecord(2).prediction.value());

  ASSERT_TRUE(saved.ok()) << saved.message();
  EXPECT_EQ(QueryOnOwnConnection(path, "PRAGMA user_version"), "6");
  std::vector<RunRecord> runs = LoadOrDie(*upgraded, Everything());
  ASSERT_EQ(runs.size(), 1u);
  old_run.prediction = FullRecord(2).prediction;
  ExpectSameRecord(runs[0], old_run);
}

TEST(ResultStoreTest, RunOnUnlabelledInputHasNoAccuracyAndZeroIsNotAbsent) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  RunRecord unlabelled = FullRecord(2), none_right = FullRecord(2);
  unlabelled.accuracy.reset();
  none_right.accuracy = Accuracy{64, 0};
  InsertOrDie(*store, unlabelled);
  InsertOrDie(*store, none_right);

  const std::vector<RunRecord> runs = LoadOrDie(*store, RunFilter{});

  ASSERT_EQ(runs.size(), 2u);
  EXPECT_FALSE(runs[0].accuracy.has_value());
  ASSERT_TRUE(runs[1].accuracy.has_value());
  EXPECT_EQ(runs[1].accuracy->images, 64);
  EXPECT_EQ(runs[1].accuracy->correct, 0);
}

TEST(ResultStoreTest, FilterByNetworkCondition) {
  TempDir dir;
  std::unique_ptr<ResultStore> store = OpenOrDie(dir.File("paretopipe.db"));
  RunRecord shaped = FullRecord(2), plain = FullRecord(2);
  plain.config.net = "none";
  InsertOrDie(*store, shaped);
  InsertOrDie(*store, plain);
  RunFilter filter;
  filter.net = "delay=200ms,rate=5mbit";
  const std::vector<RunRecord> runs = LoadOrDie(*store, filter);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].config.net, "delay=200ms,rate=5mbit");
}

TEST(ResultStoreTest, SqliteFileOfAnotherProgramIsRefused) {
  TempDir dir;
  std::string path = dir.File("other.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE notes (text TEXT)", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }

  Result<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);

  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(QueryOnOwnConnection(path, "SELECT count(*) FROM sqlite_master"), "1");
}

TEST(ResultStoreTest, FileThatIsNotSqliteIsRefusedWithItsPath) {
  TempDir dir;
  std::string path = dir.File("notes.txt");
  std::ofstream(path) << "this is not a database, just some text that is long enough\n";

  Result<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
  Result<std::unique_ptr<ResultStore>> read_only = ResultStore::OpenReadOnly(path);

  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kIoError);
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().message();
  ASSERT_FALSE(read_only.ok());
  EXPECT_EQ(read_only.status().code(), Status::Code::kIoError);
}

TEST(ResultStoreTest, OpenInMissingDirectoryIsIoError) {
  TempDir dir;
  std::string path = dir.File("no/such/dir/paretopipe.db");

  Result<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);

  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kIoError);
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().message();
}

TEST(ResultStoreTest, OpenReadOnlyOnMissingFileIsNotFoundAndCreatesNothing) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");

  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(path);

  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kNotFound);
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().message();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ResultStoreTest, ReadOnlyStoreRefusesInserts) {
  TempDir dir;
  std::string path = dir.File("paretopipe.db");
  ASSERT_NE(OpenOrDie(path), nullptr);
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(path);
  ASSERT_TRUE(store.ok()) << store.status().message();

  Result<int64_t> id = (*store)->InsertRun(FullRecord(2));

  EXPECT_FALSE(id.ok());
  EXPECT_TRUE(LoadOrDie(**store, RunFilter()).empty());
}

}  // namespace
}  // namespace paretopipe
