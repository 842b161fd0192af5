// A sweep: every requested split of a model, each run on the workers and
// stored at once, so a sweep stopped halfway keeps every finished run.
//
// Owns: which cuts to run, starting local workers when none are given, the
// progress display, storing each run. Must not touch: the store's SQL, the
// per-batch loop, metric arithmetic.
// Thread safety: one sweep at a time per process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>
#include <vector>

#include "analysis/link_model.h"
#include "metrics/run_record.h"
#include "sweep/input_source.h"
#include "util/status.h"

namespace paretopipe {

class WorkerClient;

// Stops a running sweep from another thread (Ctrl-C): the run in progress is
// abandoned (its workers' sessions shut down, so they cancel it) and not
// stored, the sweep returns with what it stored, and everything it started
// (workers, testbed, cgroups) is cleaned up as on a normal end.
// Thread safety: Request() from any thread, at any time.
class SweepInterrupt {
 public:
  void Request();
  bool requested() const { return requested_; }
  // The sweep's clients, to shut down on Request(); null or empty to detach.
  void Attach(const std::vector<WorkerClient*>& clients);

 private:
  std::atomic<bool> requested_{false};
  std::mutex mu_;
  std::vector<WorkerClient*> clients_;
};

struct SweepOptions {
  std::string model;
  int64_t num_classes = 1000;
  uint64_t seed = 0;
  std::string weights_path;
  std::string granularity = "module";  // TorchScript models: "module" or "op" cuts.
  int max_cut_tensors = 1;             // TorchScript models: tensors a cut may carry.
  int64_t input_side_px = 0;           // 0: the model's nominal size.
  std::string cuts = "all";          // "all", "3,8,14" (one cut each) or "3:9,5:12" (tuples).
  std::vector<std::string> workers;  // HOST:PORT per stage; empty: start local ones.
  // The --workers' shared secret (their --token-file); empty: none. Local
  // workers always get a fresh secret of the sweep's own instead.
  std::string secret;
  int local = 2;                     // Local workers (stages) when `workers` is empty.
  int64_t batch_size = 8;
  int batches = 64;
  int warmup = 4;
  int window = 4;
  int repeats = 3;
  std::string backend = "tcp";  // Comma-separated: every cut runs on each.
  int threads = 0;              // Per local worker; 0: available CPUs / workers.
  std::string db_path = "paretopipe.db";
  int max_runs = 500;      // "all" refuses more combinations than this.
  std::string binary;      // The paretopipe executable, for local workers.
  bool keep_going = true;  // A failed run is stored and the sweep goes on (--fail-fast: false).
  // --resume: "" starts a new sweep; "last" (this model's latest sweep in the
  // database) or a sweep id continues that sweep: a configuration it already
  // ran successfully is skipped, a failed one is run again and its failed
  // record replaced (ResultStore::InsertRun), so a resumed sweep ends with
  // one record per configuration, as an undisturbed one does.
  std::string resume;
  // How long a stage waits for a frame or a credit before it fails the run.
  std::chrono::milliseconds stall_timeout{60000};
  // How long a busy worker may stay silent (no reply, no heartbeat) before
  // the orchestrator counts it as dead or hung (WorkerClient).
  std::chrono::milliseconds heartbeat_timeout{10000};
  // Network conditions (netem/condition.h), each cut runs under each; empty
  // means {"none"}. Applied on the testbed; with --workers a single one is
  // only declared (applied outside ParetoPipe, e.g. `netem apply`).
  std::vector<std::string> net;
  std::string testbed;  // "" (loopback or --workers) or "netns".
  // --local-device, one per local worker (sweep/device_limits.h).
  std::vector<std::string> local_devices;
  InputOptions input;                   // Synthetic by default.
  // Compare every run's outputs with the whole model's, computed here; a run
  // whose outputs differ fails with the difference.
  bool verify = false;
  // --plan-first (sweep/plan_first_sweep.h): every worker profiles the
  // model, and under each condition only the predicted front of the cuts and
  // `plan_controls` dominated controls are measured.
  bool plan_first = false;
  int plan_controls = 2;
  double plan_margin = 0.05;  // Candidates this near the predicted front are measured too.
  int plan_profile_repeat = 10;         // Timed passes of each worker's profile.
  LinkModel plan_base_link;             // --base-link: the hops with no condition.
  SweepInterrupt* interrupt = nullptr;  // May be null.
};

struct SweepResult {
  std::string sweep_id;
  // In the order run, ids set; with --resume, the configurations already
  // complete appear in their place as stored (samples not loaded).
  std::vector<RunRecord> runs;
  double wall_s = 0;            // Whole sweep, from first connection to last insert.
  double passes_s = 0;          // Sum of the runs' measurement passes (warm-up batches included).
  bool interrupted = false;     // Stopped by SweepInterrupt; `runs` holds what was stored.
  int skipped = 0;              // --resume: configurations already complete in the database.
  int replaced = 0;             // --resume: failed records replaced by a new try.
};

// Parses --cuts for a model of `num_blocks` blocks split into `stages`
// stages: each element has stages - 1 strictly increasing cuts in
// [1, num_blocks - 1]. "all" enumerates every combination, refused past
// `max_runs` with a message suggesting an explicit list.
Result<std::vector<std::vector<int>>> ParseCutList(const std::string& text, int64_t num_blocks,
                                                   int stages, int max_runs);

// Parses --backend: a comma-separated list of backend names (tcp, grpc,
// torch), each at most once and each in this build (CheckBackend).
Result<std::vector<std::string>> ParseBackendList(const std::string& text);

// Runs the sweep; `progress` receives one line per run. Returns the runs
// (failed ones included, status "failed") or the error that stopped it
// before the first run (bad options, unreachable workers, database).
Result<SweepResult> RunSweep(const SweepOptions& options, std::ostream& progress);

}  // namespace paretopipe
