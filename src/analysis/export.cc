#include "analysis/export.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <variant>

namespace paretopipe {
namespace {

// One cell: empty (absent), integer, unsigned (the seed), double or text.
using Cell = std::variant<std::monostate, int64_t, uint64_t, double, std::string>;

// clang-format off
// Columns of one stage, after the "stageN_" prefix. New ones are appended,
// so that a script reading columns by position keeps working.
const char* const kStageColumns[] = {
    "block_begin", "block_end", "endpoint",
    "compute_ms_mean", "queue_ms_mean", "recv_ms_mean", "send_ms_mean",
    "bytes_out_per_batch", "idle_fraction", "cpu_ms", "peak_rss_bytes",
    "clock_offset_ns", "clock_uncertainty_ns", "limits",
    "device", "device_name", "copy_in_ms_mean", "copy_out_ms_mean",
    "device_peak_bytes", "device_utilization_pct"};

// Columns of one hop (stage N to N + 1), after the "hopN_" prefix.
const char* const kHopColumns[] = {
    "bytes_per_frame", "hop_ms_mean", "serialize_ms_mean", "wire_ms_mean", "queue_ms_mean",
    "deserialize_ms_mean", "send_ms_mean", "recv_ms_mean", "clock_uncertainty_ms"};

// Columns of one link as probed before the run, after the "linkN_" prefix.
const char* const kLinkColumns[] = {"rtt_ms_median", "rtt_ms_min", "rtt_ms_max",
                                    "bandwidth_mbit"};

// Columns before the per-stage ones, in order; RowOf fills them in this order.
const char* const kRunColumns[] = {
    "id", "sweep_id", "started_at_utc", "status", "error",
    "model", "num_classes", "seed", "weights_digest", "cuts", "stages",
    "batch_size", "input_side_px", "batches", "warmup", "window", "repeats",
    "backend", "threads", "device", "workers",
    "latency_ms_mean", "latency_ms_mean_ci_low", "latency_ms_mean_ci_high",
    "latency_ms_p50", "latency_ms_p50_ci_low", "latency_ms_p50_ci_high",
    "latency_ms_p95", "latency_ms_p95_ci_low", "latency_ms_p95_ci_high",
    "latency_ms_p99", "latency_ms_p99_ci_low", "latency_ms_p99_ci_high",
    "throughput_ips", "throughput_ips_ci_low", "throughput_ips_ci_high",
    "repeats_n",
    "hostname", "cpu_model", "kernel", "libtorch_version", "blas",
    "net", "net_emulation", "testbed",
    "input", "input_digest", "input_images",
    "accuracy_top1", "accuracy_images", "accuracy_correct"};
// clang-format on

// The stage count of a run: from its cuts, or from its statistics if those
// number more stages (they never should).
int StageCount(const RunRecord& run) {
  int count = static_cast<int>(run.config.cuts.size()) + 1;
  for (const StageStats& s : run.stages) count = std::max(count, s.stage + 1);
  return count;
}

int MaxStageCount(const std::vector<RunRecord>& runs) {
  int count = 0;
  for (const RunRecord& run : runs) count = std::max(count, StageCount(run));
  return count;
}

template <typename T>
Cell Optional(const std::optional<T>& value) {
  if (value) return *value;
  return std::monostate();
}

std::vector<Cell> RowOf(const RunRecord& run, int stage_count) {
  const RunConfig& c = run.config;
  std::vector<Cell> row;
  row.emplace_back(run.id);
  row.emplace_back(c.sweep_id);
  row.emplace_back(run.started_at_utc);
  row.emplace_back(run.status);
  row.emplace_back(run.error);
  row.emplace_back(c.model);
  row.emplace_back(c.num_classes);
  row.emplace_back(c.seed);
  row.emplace_back(c.weights_digest);
  row.emplace_back(fmt::format("{}", fmt::join(c.cuts, ",")));
  row.emplace_back(static_cast<int64_t>(c.cuts.size()) + 1);
  row.emplace_back(c.batch_size);
  row.emplace_back(int64_t{c.input_side_px});
  row.emplace_back(int64_t{c.batches});
  row.emplace_back(int64_t{c.warmup});
  row.emplace_back(int64_t{c.window});
  row.emplace_back(int64_t{c.repeats});
  row.emplace_back(c.backend);
  row.emplace_back(int64_t{c.threads});
  row.emplace_back(c.device);
  row.emplace_back(fmt::format("{}", fmt::join(c.workers, ",")));
  for (const Estimate* e : {&run.latency_ms_mean, &run.latency_ms_p50, &run.latency_ms_p95,
                            &run.latency_ms_p99, &run.throughput_ips}) {
    // A mean over no repeats (a run that failed before one finished) is absent.
    row.push_back(e->n > 0 ? Cell(e->mean) : Cell());
    row.push_back(Optional(e->ci_low));
    row.push_back(Optional(e->ci_high));
  }
  row.emplace_back(int64_t{run.latency_ms_mean.n});

  const StageEnvironment* source = nullptr;
  for (const StageEnvironment& e : run.environment) {
    if (e.stage == 0) source = &e;
  }
  if (source == nullptr && !run.environment.empty()) source = &run.environment.front();
  for (const std::string* field :
       {source ? &source->hostname : nullptr, source ? &source->cpu_model : nullptr,
        source ? &source->kernel : nullptr, source ? &source->libtorch_version : nullptr,
        source ? &source->blas : nullptr}) {
    row.push_back(field ? Cell(*field) : Cell());
  }
  row.emplace_back(c.net);
  row.emplace_back(c.net_emulation);
  row.emplace_back(c.testbed);
  row.emplace_back(c.input);
  row.emplace_back(c.input_digest);
  row.emplace_back(c.input_images);
  if (run.accuracy) {
    row.emplace_back(run.accuracy->top1());
    row.emplace_back(run.accuracy->images);
    row.emplace_back(run.accuracy->correct);
  } else {
    row.insert(row.end(), 3, Cell());
  }

  for (int stage = 0; stage < stage_count; ++stage) {
    const StageStats* s = nullptr;
    for (const StageStats& candidate : run.stages) {
      if (candidate.stage == stage) s = &candidate;
    }
    const StageEnvironment* env = nullptr;
    for (const StageEnvironment& candidate : run.environment) {
      if (candidate.stage == stage) env = &candidate;
    }
    // A stage without statistics (a run that failed before them) leaves
    // their cells empty; its environment may still be known.
    static const StageStats kNoStats;
    static const StageEnvironment kNoEnvironment;
    const StageStats& t = s ? *s : kNoStats;
    const StageEnvironment& e = env ? *env : kNoEnvironment;
    auto stat = [s](Cell cell) { return s ? std::move(cell) : Cell(); };
    auto environment = [env](const std::string& text) { return env ? Cell(text) : Cell(); };
    row.push_back(stat(int64_t{t.block_begin}));
    row.push_back(stat(int64_t{t.block_end}));
    row.push_back(stat(t.endpoint));
    row.push_back(stat(t.compute_ms_mean));
    row.push_back(stat(t.queue_ms_mean));
    row.push_back(stat(t.recv_ms_mean));
    row.push_back(stat(t.send_ms_mean));
    row.push_back(stat(t.bytes_out_per_batch));
    row.push_back(stat(t.idle_fraction));
    row.push_back(stat(t.cpu_ms));
    row.push_back(stat(t.peak_rss_bytes));
    row.push_back(stat(t.clock.offset_ns));
    row.push_back(stat(t.clock.uncertainty_ns));
    row.push_back(environment(e.limits));
    row.push_back(environment(e.device));
    row.push_back(environment(e.device_name));
    row.push_back(stat(Optional(t.copy_in_ms_mean)));
    row.push_back(stat(Optional(t.copy_out_ms_mean)));
    row.push_back(stat(Optional(t.device_peak_bytes)));
    row.push_back(stat(Optional(t.device_utilization_pct)));
  }
  for (int hop = 0; hop + 1 < stage_count; ++hop) {
    const HopStats* h = nullptr;
    for (const HopStats& candidate : run.hops) {
      if (candidate.hop == hop) h = &candidate;
    }
    if (h == nullptr) {
      row.insert(row.end(), std::size(kHopColumns), Cell());
      continue;
    }
    for (double v : {h->bytes_per_frame, h->hop_ms_mean, h->serialize_ms_mean, h->wire_ms_mean,
                     h->queue_ms_mean, h->deserialize_ms_mean, h->send_ms_mean, h->recv_ms_mean,
                     h->clock_uncertainty_ms}) {
      row.emplace_back(v);
    }
  }
  for (int hop = 0; hop + 1 < stage_count; ++hop) {
    const LinkMeasurement* l = nullptr;
    for (const LinkMeasurement& candidate : run.links) {
      if (candidate.hop == hop) l = &candidate;
    }
    if (l == nullptr) {
      row.insert(row.end(), std::size(kLinkColumns), Cell());
      continue;
    }
    for (double v : {l->rtt_ms_median, l->rtt_ms_min, l->rtt_ms_max, l->bandwidth_mbit}) {
      row.emplace_back(v);
    }
  }
  return row;
}

// RFC 4180: a field containing a comma, a quote or a line break is quoted,
// with its quotes doubled.
void AppendCsvField(const std::string& text, std::string* out) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) {
    *out += text;
    return;
  }
  *out += '"';
  for (char ch : text) {
    if (ch == '"') *out += '"';
    *out += ch;
  }
  *out += '"';
}

std::string CsvText(const Cell& cell) {
  struct {
    std::string operator()(std::monostate) const { return ""; }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(uint64_t v) const { return std::to_string(v); }
    // fmt's "{}" is the shortest text that reads back as the same double.
    std::string operator()(double v) const { return fmt::format("{}", v); }
    std::string operator()(const std::string& v) const { return v; }
  } visitor;
  return std::visit(visitor, cell);
}

nlohmann::ordered_json JsonOf(const Cell& cell) {
  struct {
    nlohmann::ordered_json operator()(std::monostate) const { return nullptr; }
    nlohmann::ordered_json operator()(int64_t v) const { return v; }
    nlohmann::ordered_json operator()(uint64_t v) const { return v; }
    // JSON has no NaN or infinity.
    nlohmann::ordered_json operator()(double v) const {
      if (!std::isfinite(v)) return nullptr;
      return v;
    }
    nlohmann::ordered_json operator()(const std::string& v) const { return v; }
  } visitor;
  return std::visit(visitor, cell);
}

}  // namespace

std::vector<std::string> ExportColumns(const std::vector<RunRecord>& runs) {
  std::vector<std::string> columns(std::begin(kRunColumns), std::end(kRunColumns));
  int stage_count = MaxStageCount(runs);
  for (int stage = 1; stage <= stage_count; ++stage) {
    for (const char* name : kStageColumns)
      columns.push_back(fmt::format("stage{}_{}", stage, name));
  }
  for (int hop = 1; hop < stage_count; ++hop) {
    for (const char* name : kHopColumns) columns.push_back(fmt::format("hop{}_{}", hop, name));
  }
  for (int hop = 1; hop < stage_count; ++hop) {
    for (const char* name : kLinkColumns) columns.push_back(fmt::format("link{}_{}", hop, name));
  }
  return columns;
}

std::string RunsToCsv(const std::vector<RunRecord>& runs) {
  // CRLF ends every record, as RFC 4180 and sqlite3's csv mode write it.
  const char* const kEol = "\r\n";
  std::string out;
  std::vector<std::string> columns = ExportColumns(runs);
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) out += ',';
    AppendCsvField(columns[i], &out);
  }
  out += kEol;
  int stage_count = MaxStageCount(runs);
  for (const RunRecord& run : runs) {
    std::vector<Cell> row = RowOf(run, stage_count);
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) out += ',';
      AppendCsvField(CsvText(row[i]), &out);
    }
    out += kEol;
  }
  return out;
}

std::string RunsToJson(const std::vector<RunRecord>& runs) {
  std::vector<std::string> columns = ExportColumns(runs);
  int stage_count = MaxStageCount(runs);
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const RunRecord& run : runs) {
    std::vector<Cell> row = RowOf(run, stage_count);
    nlohmann::ordered_json object = nlohmann::ordered_json::object();
    for (size_t i = 0; i < row.size(); ++i) object[columns[i]] = JsonOf(row[i]);
    array.push_back(std::move(object));
  }
  // replace: an error message from a worker may hold bytes that are not UTF-8.
  return array.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace paretopipe
