// ResultStore keeps every run in one SQLite file (default ./paretopipe.db).
// Each run is written in its own transaction, so a crash loses at most the run
// in progress and the file always opens cleanly. The schema version is stored
// (PRAGMA user_version) and checked on open; docs/store.md describes the tables.
//
// Owns: the SQLite schema, writing and reading RunRecords. Must not touch:
// models, sockets, running anything.
// Thread safety: one ResultStore per thread; not safe for concurrent use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/run_record.h"
#include "util/status.h"

struct sqlite3;

namespace paretopipe {

// 2: per-hop breakdown (run_hops). 3: network conditions (runs.net,
// net_emulation, testbed), device limits (run_environment.limits) and link
// probes (run_links). 4: the input (runs.input, input_digest, input_images)
// and top-1 accuracy (accuracy_images, accuracy_correct). 5: each stage's
// device (run_environment.device, device_name) and GPU numbers (run_stages
// copy_in_ms_mean, copy_out_ms_mean, device_peak_bytes,
// device_utilization_pct). 6: the planner's prediction beside a run
// (run_predictions). Open() upgrades a version 1 to 5 file; OpenReadOnly
// reads them as they are.
inline constexpr int kStoreSchemaVersion = 6;

struct RunFilter {
  std::optional<std::string> model;
  std::optional<std::string> backend;
  std::optional<std::string> sweep_id;
  std::optional<std::string> net;  // Canonical condition text (netem/condition.h).
  bool only_ok = false;            // Skip failed runs.
  bool with_samples = false;       // Load per-batch samples (large).
};

class ResultStore {
 public:
  // Opens (creating when absent) the database at `path`, creating the schema in
  // a new file. Errors: IoError when the file cannot be opened or is not a
  // SQLite database; InvalidArgument when its schema version differs from
  // kStoreSchemaVersion (the message names both versions).
  static Result<std::unique_ptr<ResultStore>> Open(const std::string& path);

  // Opens an existing database read-only; NotFound when `path` does not exist.
  static Result<std::unique_ptr<ResultStore>> OpenReadOnly(const std::string& path);

  ~ResultStore();
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  // Inserts `record` (config, environment, repeats, stages, samples, summary,
  // and its prediction when present) in one transaction and returns its id.
  // Nothing is written on error; a prediction with a number that is not
  // finite is InvalidArgument.
  // The failed runs `replaces` (a resumed sweep's earlier tries of the same
  // configuration) are deleted in the same transaction, so a crash never
  // leaves both or neither; a run in `replaces` that is not a failed run is
  // an error (InvalidArgument) and nothing is written.
  Result<int64_t> InsertRun(const RunRecord& record, const std::vector<int64_t>& replaces = {});

  // Runs matching `filter`, in id order, fully populated (samples only when
  // asked). A file older than version 6 has no predictions: every run's
  // `prediction` is empty.
  Result<std::vector<RunRecord>> LoadRuns(const RunFilter& filter) const;

  // Stores `prediction` as the prediction of run `run_id`, replacing the one
  // it had, in its own transaction. The run's measurement is not touched.
  // Errors: InvalidArgument when a number of `prediction` is not finite,
  // NotFound when the database has no run `run_id`; nothing is written then.
  // Choosing whether to replace (a sweep's "front" or "control" prediction
  // is the record of what was predicted before the run) is the caller's.
  Status SavePrediction(int64_t run_id, const RunPrediction& prediction);

  const std::string& path() const { return path_; }

 private:
  ResultStore(sqlite3* db, std::string path, int64_t version);
  sqlite3* db_;
  std::string path_;
  int64_t version_;
};

}  // namespace paretopipe
