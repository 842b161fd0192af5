#include "store/store.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

namespace paretopipe {
namespace {

// The schema of version kStoreSchemaVersion; docs/store.md describes every
// column. Changing it means a new version number: a build refuses files of any
// other version rather than misreading them.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sweep_id TEXT NOT NULL,
  started_at_utc TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT NOT NULL,
  model TEXT NOT NULL,
  num_classes INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  weights_digest TEXT NOT NULL,
  cuts TEXT NOT NULL,
  stages INTEGER NOT NULL,
  batch_size INTEGER NOT NULL,
  input_side_px INTEGER NOT NULL,
  batches INTEGER NOT NULL,
  warmup INTEGER NOT NULL,
  "window" INTEGER NOT NULL,
  repeats INTEGER NOT NULL,
  backend TEXT NOT NULL,
  threads INTEGER NOT NULL,
  device TEXT NOT NULL,
  workers TEXT NOT NULL,
  latency_ms_mean REAL, latency_ms_mean_ci_low REAL, latency_ms_mean_ci_high REAL,
  latency_ms_p50 REAL, latency_ms_p50_ci_low REAL, latency_ms_p50_ci_high REAL,
  latency_ms_p95 REAL, latency_ms_p95_ci_low REAL, latency_ms_p95_ci_high REAL,
  latency_ms_p99 REAL, latency_ms_p99_ci_low REAL, latency_ms_p99_ci_high REAL,
  throughput_ips REAL, throughput_ips_ci_low REAL, throughput_ips_ci_high REAL,
  repeats_n INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_sweep_id ON runs (sweep_id);
CREATE INDEX IF NOT EXISTS runs_model ON runs (model);

CREATE TABLE IF NOT EXISTS run_environment (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  stage INTEGER NOT NULL,
  endpoint TEXT NOT NULL,
  hostname TEXT NOT NULL,
  cpu_model TEXT NOT NULL,
  kernel TEXT NOT NULL,
  arch TEXT NOT NULL,
  blas TEXT NOT NULL,
  libtorch_version TEXT NOT NULL,
  compiler TEXT NOT NULL,
  logical_cpus INTEGER NOT NULL,
  threads INTEGER NOT NULL,
  PRIMARY KEY (run_id, stage)
);

CREATE TABLE IF NOT EXISTS run_repeats (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  repeat INTEGER NOT NULL,
  measured_batches INTEGER NOT NULL,
  latency_ms_mean REAL,
  latency_ms_p50 REAL,
  latency_ms_p95 REAL,
  latency_ms_p99 REAL,
  throughput_ips REAL,
  window_s REAL,
  latency_uncertainty_ms REAL,
  PRIMARY KEY (run_id, repeat)
);

CREATE TABLE IF NOT EXISTS run_stages (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  stage INTEGER NOT NULL,
  block_begin INTEGER NOT NULL,
  block_end INTEGER NOT NULL,
  endpoint TEXT NOT NULL,
  clock_offset_ns INTEGER NOT NULL,
  clock_uncertainty_ns INTEGER NOT NULL,
  clock_rtt_ns INTEGER NOT NULL,
  clock_samples INTEGER NOT NULL,
  compute_ms_mean REAL,
  compute_ms_p50 REAL,
  compute_ms_p95 REAL,
  queue_ms_mean REAL,
  recv_ms_mean REAL,
  send_ms_mean REAL,
  bytes_out_per_batch REAL,
  idle_fraction REAL,
  cpu_ms REAL,
  peak_rss_bytes INTEGER NOT NULL,
  PRIMARY KEY (run_id, stage)
);

CREATE TABLE IF NOT EXISTS run_samples (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  repeat INTEGER NOT NULL,
  batch_id INTEGER NOT NULL,
  warmup INTEGER NOT NULL,
  latency_ms REAL,
  stage_compute_ms TEXT NOT NULL,
  PRIMARY KEY (run_id, repeat, batch_id)
);
)sql";

// Version 2 added the per-hop breakdown; a version 1 file gains the table on
// its first open for writing.
constexpr const char* kHopsSql = R"sql(
CREATE TABLE IF NOT EXISTS run_hops (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  hop INTEGER NOT NULL,
  bytes_per_frame REAL,
  hop_ms_mean REAL,
  hop_ms_p50 REAL,
  serialize_ms_mean REAL,
  wire_ms_mean REAL,
  queue_ms_mean REAL,
  deserialize_ms_mean REAL,
  send_ms_mean REAL,
  recv_ms_mean REAL,
  clock_uncertainty_ms REAL,
  PRIMARY KEY (run_id, hop)
);
)sql";

// Version 3: the network condition asked for and how it was emulated, the
// limits of emulated devices, and the links as probed before each run.
constexpr const char* kVersion3Sql = R"sql(
ALTER TABLE runs ADD COLUMN net TEXT NOT NULL DEFAULT 'none';
ALTER TABLE runs ADD COLUMN net_emulation TEXT NOT NULL DEFAULT 'none';
ALTER TABLE runs ADD COLUMN testbed TEXT NOT NULL DEFAULT '';
ALTER TABLE run_environment ADD COLUMN limits TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS run_links (
  run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  hop INTEGER NOT NULL,
  pings INTEGER NOT NULL,
  rtt_ms_min REAL,
  rtt_ms_median REAL,
  rtt_ms_max REAL,
  bandwidth_mbit REAL,
  bulk_bytes INTEGER NOT NULL,
  bulk_s REAL,
  PRIMARY KEY (run_id, hop)
);
CREATE INDEX IF NOT EXISTS runs_net ON runs (net);
)sql";

// Version 4: the source's input (synthetic or a dataset) and the top-1
// accuracy scored on it (NULL: no labels).
constexpr const char* kVersion4Sql = R"sql(
ALTER TABLE runs ADD COLUMN input TEXT NOT NULL DEFAULT 'synthetic';
ALTER TABLE runs ADD COLUMN input_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN input_images INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN accuracy_images INTEGER;
ALTER TABLE runs ADD COLUMN accuracy_correct INTEGER;
)sql";

// Version 5: where each stage computed (CPU or which GPU) and, for a GPU
// stage, its copies, device memory and utilization (NULL on a CPU stage).
constexpr const char* kVersion5Sql = R"sql(
ALTER TABLE run_environment ADD COLUMN device TEXT NOT NULL DEFAULT 'cpu';
ALTER TABLE run_environment ADD COLUMN device_name TEXT NOT NULL DEFAULT '';
ALTER TABLE run_stages ADD COLUMN copy_in_ms_mean REAL;
ALTER TABLE run_stages ADD COLUMN copy_out_ms_mean REAL;
ALTER TABLE run_stages ADD COLUMN device_peak_bytes INTEGER;
ALTER TABLE run_stages ADD COLUMN device_utilization_pct REAL;
)sql";

// Version 6: the planner's prediction for a run's own configuration, at most
// one per run (`sweep --plan-first` before the run, `validate --save` after).
// A table beside runs, not columns of it: most runs have none, and replacing
// a prediction must not rewrite the measurement.
constexpr const char* kVersion6Sql = R"sql(
CREATE TABLE IF NOT EXISTS run_predictions (
  run_id INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  latency_ms REAL NOT NULL,
  idle_latency_ms REAL NOT NULL,
  throughput_ips REAL NOT NULL,
  bottleneck TEXT NOT NULL,
  role TEXT NOT NULL,
  source TEXT NOT NULL
);
)sql";

// A lock held by another connection (a sweep's insert, a reader switching the
// journal mode) lasts milliseconds; 5 s rides out any of them while still
// failing within a human's patience when something truly holds the file.
constexpr int kBusyTimeoutMs = 5000;

// What a failed SQLite call means to the caller: a broken constraint is bad
// input (say, two stages numbered alike), a lock held past the busy timeout is
// worth retrying, anything else is the file or the disk.
Status StatusOf(int rc, const std::string& message) {
  switch (rc & 0xff) {  // The primary code, without the extended bits.
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return Status::InvalidArgument(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(message);
    default:
      return Status::IoError(message);
  }
}

// A prepared statement, finalized on destruction. Binds and reads columns in
// order, so the SQL's column list is the one place that fixes positions.
class Statement {
 public:
  Statement() = default;
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status Prepare(sqlite3* db, const std::string& sql) {
    db_ = db;
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) {
      return StatusOf(rc, sqlite3_errmsg(db));
    }
    return Status::Ok();
  }

  // Clears bindings and rewinds, for the next row.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bind_index_ = 1;
  }

  Statement& Int(int64_t v) {
    Check(sqlite3_bind_int64(stmt_, bind_index_++, v));
    return *this;
  }
  Statement& Real(double v) {
    Check(sqlite3_bind_double(stmt_, bind_index_++, v));
    return *this;
  }
  Statement& OptReal(const std::optional<double>& v) {
    if (v) return Real(*v);
    Check(sqlite3_bind_null(stmt_, bind_index_++));
    return *this;
  }
  Statement& OptInt(const std::optional<int64_t>& v) {
    if (v) return Int(*v);
    Check(sqlite3_bind_null(stmt_, bind_index_++));
    return *this;
  }
  Statement& Text(const std::string& v) {
    Check(sqlite3_bind_text(stmt_, bind_index_++, v.data(), static_cast<int>(v.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }

  // Runs a statement that returns no rows (an INSERT): OK when done.
  Status Execute() {
    if (bind_status_ != SQLITE_OK) return Status::Internal(sqlite3_errstr(bind_status_));
    int rc = sqlite3_step(stmt_);
    if (rc != SQLITE_DONE) return ErrorOf(rc);
    return Status::Ok();
  }

  // Advances to the next row: true with a row, false when done, or an error.
  Result<bool> Next() {
    if (bind_status_ != SQLITE_OK) return Status::Internal(sqlite3_errstr(bind_status_));
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      column_ = 0;
      return true;
    }
    if (rc == SQLITE_DONE) return false;
    return ErrorOf(rc);
  }

  int64_t ColInt() { return sqlite3_column_int64(stmt_, column_++); }
  // NULL reads as NaN: SQLite stores a NaN it is given as NULL.
  double ColReal() { return ColOptReal().value_or(std::numeric_limits<double>::quiet_NaN()); }
  std::optional<double> ColOptReal() {
    int col = column_++;
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_double(stmt_, col);
  }
  std::optional<int64_t> ColOptInt() {
    int col = column_++;
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(stmt_, col);
  }
  std::string ColText() {
    int col = column_++;
    const unsigned char* text = sqlite3_column_text(stmt_, col);
    if (text == nullptr) return "";
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_status_ == SQLITE_OK) bind_status_ = rc;
  }
  Status ErrorOf(int rc) const {
    const char* message = sqlite3_errmsg(db_);
    return StatusOf(rc, message != nullptr ? message : sqlite3_errstr(rc));
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_index_ = 1;
  int bind_status_ = SQLITE_OK;
  int column_ = 0;
};

// "INSERT INTO table (a, b) VALUES (?, ?)".
std::string InsertSql(const char* table, const std::vector<const char*>& columns) {
  std::string names, marks;
  for (size_t i = 0; i < columns.size(); ++i) {
    names += (i ? ", " : "") + std::string(columns[i]);
    marks += i ? ", ?" : "?";
  }
  return fmt::format("INSERT INTO {} ({}) VALUES ({})", table, names, marks);
}

std::string SelectSql(const char* table, const std::vector<const char*>& columns) {
  std::string names;
  for (size_t i = 0; i < columns.size(); ++i) names += (i ? ", " : "") + std::string(columns[i]);
  return fmt::format("SELECT {} FROM {}", names, table);
}

// Column lists, in the order the statements bind and read them.
// clang-format off
const std::vector<const char*> kRunColumns = {
    "sweep_id", "started_at_utc", "status", "error",
    "model", "num_classes", "seed", "weights_digest", "cuts", "stages",
    "batch_size", "input_side_px", "batches", "warmup", "\"window\"", "repeats",
    "backend", "threads", "device", "workers",
    "latency_ms_mean", "latency_ms_mean_ci_low", "latency_ms_mean_ci_high",
    "latency_ms_p50", "latency_ms_p50_ci_low", "latency_ms_p50_ci_high",
    "latency_ms_p95", "latency_ms_p95_ci_low", "latency_ms_p95_ci_high",
    "latency_ms_p99", "latency_ms_p99_ci_low", "latency_ms_p99_ci_high",
    "throughput_ips", "throughput_ips_ci_low", "throughput_ips_ci_high",
    "repeats_n"};

// Version 3's columns follow the older ones.
const std::vector<const char*> kRunColumnsV3 = {"net", "net_emulation", "testbed"};
const std::vector<const char*> kRunColumnsV4 = {"input", "input_digest", "input_images",
                                                "accuracy_images", "accuracy_correct"};

const std::vector<const char*> kEnvironmentColumns = {
    "run_id", "stage", "endpoint", "hostname", "cpu_model", "kernel", "arch", "blas",
    "libtorch_version", "compiler", "logical_cpus", "threads"};
const std::vector<const char*> kEnvironmentColumnsV3 = {"limits"};
const std::vector<const char*> kEnvironmentColumnsV5 = {"device", "device_name"};

const std::vector<const char*> kLinkColumns = {
    "run_id", "hop", "pings", "rtt_ms_min", "rtt_ms_median", "rtt_ms_max",
    "bandwidth_mbit", "bulk_bytes", "bulk_s"};

const std::vector<const char*> kRepeatColumns = {
    "run_id", "repeat", "measured_batches",
    "latency_ms_mean", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99",
    "throughput_ips", "window_s", "latency_uncertainty_ms"};

const std::vector<const char*> kStageColumns = {
    "run_id", "stage", "block_begin", "block_end", "endpoint",
    "clock_offset_ns", "clock_uncertainty_ns", "clock_rtt_ns", "clock_samples",
    "compute_ms_mean", "compute_ms_p50", "compute_ms_p95",
    "queue_ms_mean", "recv_ms_mean", "send_ms_mean",
    "bytes_out_per_batch", "idle_fraction", "cpu_ms", "peak_rss_bytes"};
const std::vector<const char*> kStageColumnsV5 = {
    "copy_in_ms_mean", "copy_out_ms_mean", "device_peak_bytes", "device_utilization_pct"};

const std::vector<const char*> kHopColumns = {
    "run_id", "hop", "bytes_per_frame", "hop_ms_mean", "hop_ms_p50",
    "serialize_ms_mean", "wire_ms_mean", "queue_ms_mean", "deserialize_ms_mean",
    "send_ms_mean", "recv_ms_mean", "clock_uncertainty_ms"};

const std::vector<const char*> kSampleColumns = {
    "run_id", "repeat", "batch_id", "warmup", "latency_ms", "stage_compute_ms"};

const std::vector<const char*> kPredictionColumns = {
    "run_id", "latency_ms", "idle_latency_ms", "throughput_ips", "bottleneck", "role", "source"};
// clang-format on

std::string JoinInts(const std::vector<int>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + std::to_string(values[i]);
  return out;
}

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  size_t begin = 0;
  while (true) {
    size_t comma = text.find(',', begin);
    parts.push_back(text.substr(begin, comma - begin));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return parts;
}

Result<std::vector<int>> ParseCuts(const std::string& text) {
  std::vector<int> cuts;
  for (const std::string& part : SplitComma(text)) {
    int value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (ec != std::errc() || end != part.data() + part.size()) {
      return Status::InvalidArgument(fmt::format("cuts '{}' is not a list of integers", text));
    }
    cuts.push_back(value);
  }
  return cuts;
}

// Endpoints are "host:port" and never contain a comma, so a plain join is
// unambiguous (and reads well in sqlite3).
std::string JoinWorkers(const std::vector<std::string>& workers) {
  std::string out;
  for (size_t i = 0; i < workers.size(); ++i) out += (i ? "," : "") + workers[i];
  return out;
}

// A JSON array of numbers; fmt's "{}" is the shortest text that reads back as
// the same double. JSON has no NaN or infinity: they become null.
std::string DoublesToJson(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    out += std::isfinite(values[i]) ? fmt::format("{}", values[i]) : "null";
  }
  return out + "]";
}

Result<std::vector<double>> DoublesFromJson(const std::string& text) {
  auto bad = [&] {
    return Status::InvalidArgument(
        fmt::format("stage_compute_ms '{}' is not a JSON array of numbers", text));
  };
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return bad();
  std::vector<double> values;
  for (std::string part : SplitComma(text.substr(1, text.size() - 2))) {
    size_t first = part.find_first_not_of(" \t\r\n");
    size_t last = part.find_last_not_of(" \t\r\n");
    if (first == std::string::npos) return bad();
    part = part.substr(first, last - first + 1);
    if (part == "null") {
      values.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    double value = 0;
    // from_chars, not strtod: independent of the process locale.
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (ec != std::errc() || end != part.data() + part.size()) return bad();
    values.push_back(value);
  }
  return values;
}

// Every estimate of a run has the same n, the repeats it is over; the runs
// table keeps it once (repeats_n).
Result<int> RepeatsN(const RunRecord& r) {
  const std::pair<const char*, const Estimate*> estimates[] = {
      {"latency_ms_mean", &r.latency_ms_mean},
      {"latency_ms_p50", &r.latency_ms_p50},
      {"latency_ms_p95", &r.latency_ms_p95},
      {"latency_ms_p99", &r.latency_ms_p99},
      {"throughput_ips", &r.throughput_ips}};
  for (const auto& [name, estimate] : estimates) {
    if (estimate->n != r.latency_ms_mean.n) {
      return Status::InvalidArgument(
          fmt::format("estimates disagree on the number of repeats: latency_ms_mean n={}, {} n={}",
                      r.latency_ms_mean.n, name, estimate->n));
    }
  }
  return r.latency_ms_mean.n;
}

// An estimate over no repeats has no mean: NULL, so that SQL aggregates skip it.
void BindEstimate(Statement& s, const Estimate& e) {
  if (e.n == 0) {
    s.OptReal(std::nullopt);
  } else {
    s.Real(e.mean);
  }
  s.OptReal(e.ci_low).OptReal(e.ci_high);
}

// The mean is NaN when NULL; the caller sets n and makes it 0 when n is 0.
Estimate ReadEstimate(Statement& s) {
  Estimate e;
  e.mean = s.ColReal();
  e.ci_low = s.ColOptReal();
  e.ci_high = s.ColOptReal();
  return e;
}

// Runs one or more statements without parameters or results.
Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    Status status = StatusOf(rc, error != nullptr ? error : sqlite3_errmsg(db));
    sqlite3_free(error);
    return status;
  }
  return Status::Ok();
}

// The result of a one-value query such as "PRAGMA user_version".
Result<int64_t> QueryInt(sqlite3* db, const char* sql) {
  Statement s;
  PP_RETURN_IF_ERROR(s.Prepare(db, sql));
  PP_ASSIGN_OR_RETURN(bool row, s.Next());
  if (!row) return Status::Internal(fmt::format("'{}' returned no row", sql));
  return s.ColInt();
}

Result<std::string> QueryText(sqlite3* db, const char* sql) {
  Statement s;
  PP_RETURN_IF_ERROR(s.Prepare(db, sql));
  PP_ASSIGN_OR_RETURN(bool row, s.Next());
  if (!row) return Status::Internal(fmt::format("'{}' returned no row", sql));
  return s.ColText();
}

// Closes the connection unless released: Open's error paths must not leak it.
class DbGuard {
 public:
  explicit DbGuard(sqlite3* db) : db_(db) {}
  ~DbGuard() { sqlite3_close_v2(db_); }
  DbGuard(const DbGuard&) = delete;
  DbGuard& operator=(const DbGuard&) = delete;
  sqlite3* get() const { return db_; }
  sqlite3* release() { return std::exchange(db_, nullptr); }

 private:
  sqlite3* db_;
};

// Opens a connection; IoError with the path when SQLite cannot.
Result<sqlite3*> OpenConnection(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Status::IoError(fmt::format("{}: {}", path, message));
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return db;
}

std::vector<const char*> Concat(std::vector<const char*> a, const std::vector<const char*>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Reads the schema version. SQLite opens any file lazily, so a file that is
// not a database shows here, at the first read.
Result<int64_t> ReadVersion(sqlite3* db, const std::string& path) {
  Result<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok())
    return Status::IoError(fmt::format("{}: {}", path, version.status().message()));
  return version;
}

Status CheckVersion(int64_t version, const std::string& path) {
  if (version != kStoreSchemaVersion) {
    return Status::InvalidArgument(fmt::format("{}: schema version {}, this build reads version {}",
                                               path, version, kStoreSchemaVersion));
  }
  return Status::Ok();
}

// Rolls back the open transaction unless committed, so that an error anywhere
// in InsertRun leaves nothing behind.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (open_) Exec(db_, "ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // IMMEDIATE takes the write lock now, so that a concurrent writer waits
  // (busy_timeout) here rather than failing midway with SQLITE_BUSY.
  Status Begin() {
    PP_RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    PP_RETURN_IF_ERROR(Exec(db_, "COMMIT"));
    open_ = false;
    return Status::Ok();
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

Status CreateSchema(sqlite3* db) {
  Transaction transaction(db);
  PP_RETURN_IF_ERROR(transaction.Begin());
  // Checked again under the write lock: another process may have created the
  // schema since this one read version 0.
  PP_ASSIGN_OR_RETURN(int64_t version, QueryInt(db, "PRAGMA user_version"));
  if (version == 0) {
    PP_ASSIGN_OR_RETURN(int64_t tables,
                        QueryInt(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"));
    if (tables != 0) {
      return Status::InvalidArgument(
          "schema version 0 and tables of another program: not a ParetoPipe database");
    }
    PP_RETURN_IF_ERROR(Exec(db, kSchemaSql));
    PP_RETURN_IF_ERROR(Exec(db, kHopsSql));
    PP_RETURN_IF_ERROR(Exec(db, kVersion3Sql));
    PP_RETURN_IF_ERROR(Exec(db, kVersion4Sql));
    PP_RETURN_IF_ERROR(Exec(db, kVersion5Sql));
    PP_RETURN_IF_ERROR(Exec(db, kVersion6Sql));
    PP_RETURN_IF_ERROR(
        Exec(db, fmt::format("PRAGMA user_version = {}", kStoreSchemaVersion).c_str()));
  }
  return transaction.Commit();
}

// Upgrades a version 1 to 5 file in place: adds run_hops (version 1 runs
// have none), version 3's columns (their defaults say "no condition, no
// limits") and run_links (older runs have none), version 4's (synthetic
// input, no accuracy), version 5's (every stage on the CPU, no GPU
// numbers), then version 6's run_predictions (older runs have none).
Status Migrate(sqlite3* db) {
  Transaction transaction(db);
  PP_RETURN_IF_ERROR(transaction.Begin());
  PP_ASSIGN_OR_RETURN(int64_t version, QueryInt(db, "PRAGMA user_version"));
  if (version >= 1 && version <= 5) {
    if (version == 1) PP_RETURN_IF_ERROR(Exec(db, kHopsSql));
    if (version <= 2) PP_RETURN_IF_ERROR(Exec(db, kVersion3Sql));
    if (version <= 3) PP_RETURN_IF_ERROR(Exec(db, kVersion4Sql));
    if (version <= 4) PP_RETURN_IF_ERROR(Exec(db, kVersion5Sql));
    PP_RETURN_IF_ERROR(Exec(db, kVersion6Sql));
    PP_RETURN_IF_ERROR(
        Exec(db, fmt::format("PRAGMA user_version = {}", kStoreSchemaVersion).c_str()));
  }
  return transaction.Commit();
}

// A NaN would be stored as NULL (and refused by NOT NULL with a message
// naming no field), an infinity as a number no reader expects: both are a
// planner bug the caller should hear about by name.
Status CheckPrediction(const RunPrediction& p) {
  const std::pair<const char*, double> numbers[] = {{"latency_ms", p.latency_ms},
                                                    {"idle_latency_ms", p.idle_latency_ms},
                                                    {"throughput_ips", p.throughput_ips}};
  for (const auto& [name, value] : numbers) {
    if (!std::isfinite(value)) {
      return Status::InvalidArgument(
          fmt::format("prediction {} is {}, not a finite number", name, value));
    }
  }
  return Status::Ok();
}

// `verb`: "INSERT" for a new run, "INSERT OR REPLACE" to replace the run's
// earlier prediction (the key is run_id).
Status WritePrediction(sqlite3* db, int64_t run_id, const RunPrediction& p, const char* verb) {
  PP_RETURN_IF_ERROR(CheckPrediction(p));
  Statement s;
  std::string sql = InsertSql("run_predictions", kPredictionColumns);
  sql.replace(0, strlen("INSERT"), verb);
  PP_RETURN_IF_ERROR(s.Prepare(db, sql));
  s.Int(run_id).Real(p.latency_ms).Real(p.idle_latency_ms).Real(p.throughput_ips);
  s.Text(p.bottleneck).Text(p.role).Text(p.source);
  return s.Execute().WithContext("prediction");
}

Status CheckRunExists(sqlite3* db, int64_t run_id) {
  Statement s;
  PP_RETURN_IF_ERROR(s.Prepare(db, "SELECT count(*) FROM runs WHERE id = ?"));
  s.Int(run_id);
  PP_ASSIGN_OR_RETURN(bool row, s.Next());
  if (!row || s.ColInt() == 0) return Status::NotFound("no such run in this database");
  return Status::Ok();
}

Status InsertRunRows(sqlite3* db, const RunRecord& r, int64_t* id) {
  PP_ASSIGN_OR_RETURN(int repeats_n, RepeatsN(r));
  const RunConfig& c = r.config;
  {
    Statement s;
    PP_RETURN_IF_ERROR(s.Prepare(
        db, InsertSql("runs", Concat(Concat(kRunColumns, kRunColumnsV3), kRunColumnsV4))));
    s.Text(c.sweep_id).Text(r.started_at_utc).Text(r.status).Text(r.error);
    // SQLite integers are signed: a seed above 2^63 - 1 is kept as its two's
    // complement and read back unchanged.
    s.Text(c.model).Int(c.num_classes).Int(static_cast<int64_t>(c.seed)).Text(c.weights_digest);
    s.Text(JoinInts(c.cuts)).Int(static_cast<int64_t>(c.cuts.size()) + 1);
    s.Int(c.batch_size).Int(c.input_side_px).Int(c.batches).Int(c.warmup).Int(c.window);
    s.Int(c.repeats).Text(c.backend).Int(c.threads).Text(c.device).Text(JoinWorkers(c.workers));
    BindEstimate(s, r.latency_ms_mean);
    BindEstimate(s, r.latency_ms_p50);
    BindEstimate(s, r.latency_ms_p95);
    BindEstimate(s, r.latency_ms_p99);
    BindEstimate(s, r.throughput_ips);
    s.Int(repeats_n);
    s.Text(c.net).Text(c.net_emulation).Text(c.testbed);
    s.Text(c.input).Text(c.input_digest).Int(c.input_images);
    s.OptInt(r.accuracy ? std::optional<int64_t>(r.accuracy->images) : std::nullopt);
    s.OptInt(r.accuracy ? std::optional<int64_t>(r.accuracy->correct) : std::nullopt);
    PP_RETURN_IF_ERROR(s.Execute());
    *id = sqlite3_last_insert_rowid(db);
  }
  {
    Statement s;
    PP_RETURN_IF_ERROR(s.Prepare(
        db, InsertSql("run_environment", Concat(Concat(kEnvironmentColumns, kEnvironmentColumnsV3),
                                                kEnvironmentColumnsV5))));
    for (const StageEnvironment& e : r.environment) {
      s.Reset();
      s.Int(*id).Int(e.stage).Text(e.endpoint).Text(e.hostname).Text(e.cpu_model).Text(e.kernel);
      s.Text(e.arch).Text(e.blas).Text(e.libtorch_version).Text(e.compiler);
      s.Int(e.logical_cpus).Int(e.threads).Text(e.limits).Text(e.device).Text(e.device_name);
      PP_RETURN_IF_ERROR(s.Execute().WithContext(fmt::format("environment of stage {}", e.stage)));
    }
  }
  {
    Statement s;
    PP_RETURN_IF_ERROR(s.Prepare(db, InsertSql("run_repeats", kRepeatColumns)));
    for (const RepeatSummary& p : r.repeats) {
      s.Reset();
      s.Int(*id).Int(p.repeat).Int(p.measured_batches);
      s.Real(p.latency_ms_mean).Real(p.latency_ms_p50).Real(p.latency_ms_p95);
      s.Real(p.latency_ms_p99).Real(p.throughput_ips).Real(p.window_s);
      s.Real(p.latency_uncertainty_ms);
      PP_RETURN_IF_ERROR(s.Execute().WithContext(fmt::format("repeat {}", p.repeat)));
    }
  }
  {
    Statement s;
    PP_RETURN_IF_ERROR(
        s.Prepare(db, InsertSql("run_stages", Concat(kStageColumns, kStageColumnsV5))));
    for (const StageStats& t : r.stages) {
      s.Reset();
      s.Int(*id).Int(t.stage).Int(t.block_begin).Int(t.block_end).Text(t.endpoint);
      s.Int(t.clock.offset_ns).Int(t.clock.uncertainty_ns).Int(t.clock.rtt_ns);
      s.Int(t.clock.samples);
      s.Real(t.compute_ms_mean).Real(t.compute_ms_p50).Real(t.compute_ms_p95);
      s.Real(t.queue_ms_mean).Real(t.recv_ms_mean).Real(t.send_ms_mean);
      s.Real(t.bytes_out_per_batch).Real(t.idle_fraction).Real(t.cpu_ms).Int(t.peak_rss_bytes);
      s.OptReal(t.copy_in_ms_mean).OptReal(t.copy_out_ms_mean).OptInt(t.device_peak_bytes);
      s.OptReal(t.device_utilization_pct);
      PP_RETURN_IF_ERROR(s.Execute().WithContext(fmt::format("stage {}", t.stage)));
    }
  }
  {
    Statement s;
    PP_RETURN_IF_ERROR(s.Prepare(db, InsertSql("run_hops", kHopColumns)));
    for (const HopStats& h : r.hops) {
      s.Reset();
      s.Int(*id).Int(h.hop).Real(h.bytes_per_frame).Real(h.hop_ms_mean).Real(h.hop_ms_p50);
      s.Real(h.serialize_ms_mean).Real(h.wire_ms_mean).Real(h.queue_ms_mean);
      s.Real(h.deserialize_ms_mean).Real(h.send_ms_mean).Real(h.recv_ms_mean);
      s.Real(h.clock_uncertainty_ms);
      PP_RETURN_IF_ERROR(s.Execute().WithContext(fmt::format("hop {}", h.hop)));
    }
  }
  {
    Statement s;
    PP_RETURN_IF_ERROR(s.Prepare(db, InsertSql("run_links", kLinkColumns)));
    for (const LinkMeasurement& l : r.links) {
      s.Reset();
      s.Int(*id).Int(l.hop).Int(l.pings).Real(l.rtt_ms_min).Real(l.rtt_ms_median);
      s.Real(l.rtt_ms_max).Real(l.bandwidth_mbit).Int(l.bulk_bytes).Real(l.bulk_s);
      PP_RETURN_IF_ERROR(s.Execute().WithContext(fmt::format("link {}", l.hop)));
    }
  }
  {
    Statement s;
    PP_RETURN_IF_ERROR(s.Prepare(db, InsertSql("run_samples", kSampleColumns)));
    for (const BatchSample& b : r.samples) {
      s.Reset();
      s.Int(*id).Int(b.repeat).Int(b.batch_id).Int(b.warmup ? 1 : 0).Real(b.latency_ms);
      s.Text(DoublesToJson(b.stage_compute_ms));
      PP_RETURN_IF_ERROR(s.Execute().WithContext(
          fmt::format("sample of repeat {} batch {}", b.repeat, b.batch_id)));
    }
  }
  if (r.prediction) PP_RETURN_IF_ERROR(WritePrediction(db, *id, *r.prediction, "INSERT"));
  return Status::Ok();
}

// Reads the rows of one child table for `run_id`, in key order.
template <typename Fn>
Status ForEachChildRow(Statement& s, int64_t run_id, Fn&& fn) {
  s.Reset();
  s.Int(run_id);
  while (true) {
    PP_ASSIGN_OR_RETURN(bool row, s.Next());
    if (!row) return Status::Ok();
    PP_RETURN_IF_ERROR(fn());
  }
}

std::string ChildSelectSql(const char* table, const std::vector<const char*>& columns,
                           const char* order) {
  // run_id is the first column of every child table and is not read back.
  std::vector<const char*> rest(columns.begin() + 1, columns.end());
  return SelectSql(table, rest) + " WHERE run_id = ? ORDER BY " + order;
}

Status LoadRunRows(sqlite3* db, const RunFilter& filter, int64_t version,
                   std::vector<RunRecord>* runs) {
  const bool has_hops = version >= 2, v3 = version >= 3, v4 = version >= 4, v5 = version >= 5,
             v6 = version >= 6;
  if (filter.net && !v3 && *filter.net != "none") return Status::Ok();  // Older runs had none.
  std::vector<const char*> run_columns = v3 ? Concat(kRunColumns, kRunColumnsV3) : kRunColumns;
  if (v4) run_columns = Concat(run_columns, kRunColumnsV4);
  std::string sql = "SELECT id, " + SelectSql("runs", run_columns).substr(strlen("SELECT "));
  std::vector<std::string> where;
  if (filter.model) where.push_back("model = ?");
  if (filter.backend) where.push_back("backend = ?");
  if (filter.sweep_id) where.push_back("sweep_id = ?");
  if (filter.net && v3) where.push_back("net = ?");
  if (filter.only_ok) where.push_back("status = 'ok'");
  for (size_t i = 0; i < where.size(); ++i) sql += (i ? " AND " : " WHERE ") + where[i];
  sql += " ORDER BY id";

  Statement s;
  PP_RETURN_IF_ERROR(s.Prepare(db, sql));
  s.Reset();
  if (filter.model) s.Text(*filter.model);
  if (filter.backend) s.Text(*filter.backend);
  if (filter.sweep_id) s.Text(*filter.sweep_id);
  if (filter.net && v3) s.Text(*filter.net);
  while (true) {
    PP_ASSIGN_OR_RETURN(bool row, s.Next());
    if (!row) break;
    RunRecord r;
    RunConfig& c = r.config;
    r.id = s.ColInt();
    c.sweep_id = s.ColText();
    r.started_at_utc = s.ColText();
    r.status = s.ColText();
    r.error = s.ColText();
    c.model = s.ColText();
    c.num_classes = s.ColInt();
    c.seed = static_cast<uint64_t>(s.ColInt());
    c.weights_digest = s.ColText();
    std::string cuts = s.ColText();
    Result<std::vector<int>> parsed = ParseCuts(cuts);
    if (!parsed.ok()) return parsed.status().WithContext(fmt::format("run {}", r.id));
    c.cuts = std::move(parsed).value();
    s.ColInt();  // stages: derived from the cuts.
    c.batch_size = s.ColInt();
    c.input_side_px = static_cast<int>(s.ColInt());
    c.batches = static_cast<int>(s.ColInt());
    c.warmup = static_cast<int>(s.ColInt());
    c.window = static_cast<int>(s.ColInt());
    c.repeats = static_cast<int>(s.ColInt());
    c.backend = s.ColText();
    c.threads = static_cast<int>(s.ColInt());
    c.device = s.ColText();
    c.workers = SplitComma(s.ColText());
    r.latency_ms_mean = ReadEstimate(s);
    r.latency_ms_p50 = ReadEstimate(s);
    r.latency_ms_p95 = ReadEstimate(s);
    r.latency_ms_p99 = ReadEstimate(s);
    r.throughput_ips = ReadEstimate(s);
    int n = static_cast<int>(s.ColInt());
    for (Estimate* e : {&r.latency_ms_mean, &r.latency_ms_p50, &r.latency_ms_p95, &r.latency_ms_p99,
                        &r.throughput_ips}) {
      e->n = n;
      if (n == 0 && std::isnan(e->mean)) e->mean = 0;
    }
    if (v3) {
      c.net = s.ColText();
      c.net_emulation = s.ColText();
      c.testbed = s.ColText();
    }
    if (v4) {
      c.input = s.ColText();
      c.input_digest = s.ColText();
      c.input_images = s.ColInt();
      std::optional<int64_t> images = s.ColOptInt(), correct = s.ColOptInt();
      if (images && correct) r.accuracy = Accuracy{*images, *correct};
    }
    runs->push_back(std::move(r));
  }

  Statement env, rep, stg, hop, lnk, smp, prd;
  std::vector<const char*> environment_columns =
      v3 ? Concat(kEnvironmentColumns, kEnvironmentColumnsV3) : kEnvironmentColumns;
  if (v5) environment_columns = Concat(environment_columns, kEnvironmentColumnsV5);
  PP_RETURN_IF_ERROR(
      env.Prepare(db, ChildSelectSql("run_environment", environment_columns, "stage")));
  if (v3) PP_RETURN_IF_ERROR(lnk.Prepare(db, ChildSelectSql("run_links", kLinkColumns, "hop")));
  PP_RETURN_IF_ERROR(rep.Prepare(db, ChildSelectSql("run_repeats", kRepeatColumns, "repeat")));
  PP_RETURN_IF_ERROR(stg.Prepare(
      db, ChildSelectSql("run_stages", v5 ? Concat(kStageColumns, kStageColumnsV5) : kStageColumns,
                         "stage")));
  if (has_hops) PP_RETURN_IF_ERROR(hop.Prepare(db, ChildSelectSql("run_hops", kHopColumns, "hop")));
  if (v6) {
    PP_RETURN_IF_ERROR(
        prd.Prepare(db, ChildSelectSql("run_predictions", kPredictionColumns, "run_id")));
  }
  if (filter.with_samples) {
    PP_RETURN_IF_ERROR(
        smp.Prepare(db, ChildSelectSql("run_samples", kSampleColumns, "repeat, batch_id")));
  }
  for (RunRecord& r : *runs) {
    PP_RETURN_IF_ERROR(ForEachChildRow(env, r.id, [&] {
      StageEnvironment e;
      e.stage = static_cast<int>(env.ColInt());
      e.endpoint = env.ColText();
      e.hostname = env.ColText();
      e.cpu_model = env.ColText();
      e.kernel = env.ColText();
      e.arch = env.ColText();
      e.blas = env.ColText();
      e.libtorch_version = env.ColText();
      e.compiler = env.ColText();
      e.logical_cpus = static_cast<int>(env.ColInt());
      e.threads = static_cast<int>(env.ColInt());
      if (v3) e.limits = env.ColText();
      if (v5) {
        e.device = env.ColText();
        e.device_name = env.ColText();
      }
      r.environment.push_back(std::move(e));
      return Status::Ok();
    }));
    PP_RETURN_IF_ERROR(ForEachChildRow(rep, r.id, [&] {
      RepeatSummary p;
      p.repeat = static_cast<int>(rep.ColInt());
      p.measured_batches = static_cast<int>(rep.ColInt());
      p.latency_ms_mean = rep.ColReal();
      p.latency_ms_p50 = rep.ColReal();
      p.latency_ms_p95 = rep.ColReal();
      p.latency_ms_p99 = rep.ColReal();
      p.throughput_ips = rep.ColReal();
      p.window_s = rep.ColReal();
      p.latency_uncertainty_ms = rep.ColReal();
      r.repeats.push_back(p);
      return Status::Ok();
    }));
    PP_RETURN_IF_ERROR(ForEachChildRow(stg, r.id, [&] {
      StageStats t;
      t.stage = static_cast<int>(stg.ColInt());
      t.block_begin = static_cast<int>(stg.ColInt());
      t.block_end = static_cast<int>(stg.ColInt());
      t.endpoint = stg.ColText();
      t.clock.offset_ns = stg.ColInt();
      t.clock.uncertainty_ns = stg.ColInt();
      t.clock.rtt_ns = stg.ColInt();
      t.clock.samples = static_cast<int>(stg.ColInt());
      t.compute_ms_mean = stg.ColReal();
      t.compute_ms_p50 = stg.ColReal();
      t.compute_ms_p95 = stg.ColReal();
      t.queue_ms_mean = stg.ColReal();
      t.recv_ms_mean = stg.ColReal();
      t.send_ms_mean = stg.ColReal();
      t.bytes_out_per_batch = stg.ColReal();
      t.idle_fraction = stg.ColReal();
      t.cpu_ms = stg.ColReal();
      t.peak_rss_bytes = stg.ColInt();
      if (v5) {
        t.copy_in_ms_mean = stg.ColOptReal();
        t.copy_out_ms_mean = stg.ColOptReal();
        t.device_peak_bytes = stg.ColOptInt();
        t.device_utilization_pct = stg.ColOptReal();
      }
      r.stages.push_back(std::move(t));
      return Status::Ok();
    }));
    if (has_hops) {
      PP_RETURN_IF_ERROR(ForEachChildRow(hop, r.id, [&] {
        HopStats h;
        h.hop = static_cast<int>(hop.ColInt());
        h.bytes_per_frame = hop.ColReal();
        h.hop_ms_mean = hop.ColReal();
        h.hop_ms_p50 = hop.ColReal();
        h.serialize_ms_mean = hop.ColReal();
        h.wire_ms_mean = hop.ColReal();
        h.queue_ms_mean = hop.ColReal();
        h.deserialize_ms_mean = hop.ColReal();
        h.send_ms_mean = hop.ColReal();
        h.recv_ms_mean = hop.ColReal();
        h.clock_uncertainty_ms = hop.ColReal();
        r.hops.push_back(h);
        return Status::Ok();
      }));
    }
    if (v3) {
      PP_RETURN_IF_ERROR(ForEachChildRow(lnk, r.id, [&] {
        LinkMeasurement l;
        l.hop = static_cast<int>(lnk.ColInt());
        l.pings = static_cast<int>(lnk.ColInt());
        l.rtt_ms_min = lnk.ColReal();
        l.rtt_ms_median = lnk.ColReal();
        l.rtt_ms_max = lnk.ColReal();
        l.bandwidth_mbit = lnk.ColReal();
        l.bulk_bytes = lnk.ColInt();
        l.bulk_s = lnk.ColReal();
        r.links.push_back(l);
        return Status::Ok();
      }));
    }
    if (v6) {
      PP_RETURN_IF_ERROR(ForEachChildRow(prd, r.id, [&] {
        RunPrediction p;
        p.latency_ms = prd.ColReal();
        p.idle_latency_ms = prd.ColReal();
        p.throughput_ips = prd.ColReal();
        p.bottleneck = prd.ColText();
        p.role = prd.ColText();
        p.source = prd.ColText();
        r.prediction = std::move(p);
        return Status::Ok();
      }));
    }
    if (filter.with_samples) {
      PP_RETURN_IF_ERROR(ForEachChildRow(smp, r.id, [&]() -> Status {
        BatchSample b;
        b.repeat = static_cast<int>(smp.ColInt());
        b.batch_id = smp.ColInt();
        b.warmup = smp.ColInt() != 0;
        b.latency_ms = smp.ColReal();
        PP_ASSIGN_OR_RETURN(b.stage_compute_ms, DoublesFromJson(smp.ColText()));
        r.samples.push_back(std::move(b));
        return Status::Ok();
      }));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ResultStore>> ResultStore::Open(const std::string& path) {
  Result<sqlite3*> opened = OpenConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!opened.ok()) return opened.status();
  DbGuard db(opened.value());
  PP_ASSIGN_OR_RETURN(int64_t version, ReadVersion(db.get(), path));
  if (version < 0 || version > 5) PP_RETURN_IF_ERROR(CheckVersion(version, path));
  // WAL: a reader (`paretopipe pareto`, sqlite3) reads the last committed runs
  // while a sweep writes, and neither blocks the other. The mode is stored in
  // the file, so readers see it too.
  PP_ASSIGN_OR_RETURN(std::string mode, QueryText(db.get(), "PRAGMA journal_mode = WAL"));
  (void)mode;  // A file system without shared memory keeps its mode; still correct, just locks.
  // synchronous=NORMAL in WAL mode: a committed transaction survives a crash
  // of the process (it is in the WAL file); only a power loss or OS crash may
  // lose the last commits, never corrupt the file. FULL would fsync on every
  // run, for nothing a sweep needs.
  PP_RETURN_IF_ERROR(
      Exec(db.get(), "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL").WithContext(path));
  if (version == 0) {
    PP_RETURN_IF_ERROR(CreateSchema(db.get()).WithContext(path + ": create schema"));
  } else if (version >= 1 && version <= 5) {
    PP_RETURN_IF_ERROR(Migrate(db.get()).WithContext(path + ": upgrade schema"));
  }
  return std::unique_ptr<ResultStore>(new ResultStore(db.release(), path, kStoreSchemaVersion));
}

Result<std::unique_ptr<ResultStore>> ResultStore::OpenReadOnly(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return Status::NotFound(fmt::format("{}: no such file", path));
  }
  Result<sqlite3*> opened = OpenConnection(path, SQLITE_OPEN_READONLY);
  if (!opened.ok()) return opened.status();
  DbGuard db(opened.value());
  PP_ASSIGN_OR_RETURN(int64_t version, ReadVersion(db.get(), path));
  // An older file reads as it is (no hops before 2, no conditions or links
  // before 3, synthetic input and no accuracy before 4, every stage on the
  // CPU before 5, no predictions before 6): reading must not write.
  if (version < 1 || version > 5) PP_RETURN_IF_ERROR(CheckVersion(version, path));
  return std::unique_ptr<ResultStore>(new ResultStore(db.release(), path, version));
}

ResultStore::ResultStore(sqlite3* db, std::string path, int64_t version)
    : db_(db), path_(std::move(path)), version_(version) {}

ResultStore::~ResultStore() { sqlite3_close_v2(db_); }

// Deletes the failed run `id` (its rows go with it: ON DELETE CASCADE).
// Refuses a run that succeeded: a finished measurement is never thrown away.
Status DeleteFailedRun(sqlite3* db, int64_t id) {
  Statement s;
  PP_RETURN_IF_ERROR(s.Prepare(db, "DELETE FROM runs WHERE id = ? AND status != 'ok'"));
  s.Int(id);
  PP_RETURN_IF_ERROR(s.Execute());
  if (sqlite3_changes(db) != 1) {
    return Status::InvalidArgument(
        fmt::format("run {} to replace is not a failed run of this database", id));
  }
  return Status::Ok();
}

Result<int64_t> ResultStore::InsertRun(const RunRecord& record,
                                       const std::vector<int64_t>& replaces) {
  Transaction transaction(db_);
  Status status = transaction.Begin();
  int64_t id = 0;
  for (int64_t old : replaces) {
    if (status.ok()) status = DeleteFailedRun(db_, old);
  }
  if (status.ok()) status = InsertRunRows(db_, record, &id);
  if (status.ok()) status = transaction.Commit();
  if (!status.ok()) return status.WithContext(path_ + ": insert run");
  return id;
}

Status ResultStore::SavePrediction(int64_t run_id, const RunPrediction& prediction) {
  const std::string context = fmt::format("{}: save prediction of run {}", path_, run_id);
  PP_RETURN_IF_ERROR(CheckPrediction(prediction).WithContext(context));
  Transaction transaction(db_);
  Status status = transaction.Begin();
  // Checked under the write lock rather than left to the foreign key: a
  // missing run is NotFound, not a broken constraint.
  if (status.ok()) status = CheckRunExists(db_, run_id);
  if (status.ok()) status = WritePrediction(db_, run_id, prediction, "INSERT OR REPLACE");
  if (status.ok()) status = transaction.Commit();
  return status.WithContext(context);
}

Result<std::vector<RunRecord>> ResultStore::LoadRuns(const RunFilter& filter) const {
  std::vector<RunRecord> runs;
  // One read transaction: the runs and their rows come from one snapshot,
  // even while a sweep inserts.
  Status status = Exec(db_, "BEGIN");
  if (status.ok()) status = LoadRunRows(db_, filter, version_, &runs);
  Exec(db_, status.ok() ? "COMMIT" : "ROLLBACK");
  if (!status.ok()) return status.WithContext(path_ + ": load runs");
  return runs;
}

}  // namespace paretopipe
