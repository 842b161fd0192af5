// Faults during a sweep, each a real one: a worker process killed with
// SIGKILL or frozen with SIGSTOP in the middle of a run, the orchestrator
// killed between runs. What must hold (docs/RELIABILITY.md): the failed run
// is stored with its reason, every finished run stays, the sweep goes on (or
// stops with --fail-fast), and `sweep --resume` ends with exactly the runs an
// undisturbed sweep has, none twice.
#include <dirent.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::CommandOutcome;
using testing::ScopedTempDir;

// Three cuts of resnet18 at 64 px; enough batches that a run lasts a couple
// of seconds here, so a fault sent a moment after run 1 ends lands in run 2.
std::string SweepArgs(const std::string& db) {
  return "sweep resnet18 --num-classes 10 --input-size 64 --cuts 2,4,6 --batch 2 --batches 150 "
         "--warmup 2 --repeat 2 --db " +
         db;
}

// The pids whose parent is `parent` (from /proc/PID/stat).
std::vector<pid_t> ChildPids(pid_t parent) {
  std::vector<pid_t> children;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return children;
  while (dirent* e = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces, so parse after ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) children.push_back(pid);
  }
  closedir(proc);
  std::sort(children.begin(), children.end());
  return children;
}

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

// `paretopipe ARGS` as a child process with its output in files under `dir`,
// for tests that act on it while it runs. Killed when this object dies.
class RunningCommand {
 public:
  RunningCommand(const std::string& args, const std::string& dir)
      : out_(dir + "/running.out"), err_(dir + "/running.err") {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const std::string command =
          "exec " + std::string(PARETOPIPE_BINARY) + " " + args + " >" + out_ + " 2>" + err_;
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~RunningCommand() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  RunningCommand(const RunningCommand&) = delete;
  RunningCommand& operator=(const RunningCommand&) = delete;

  pid_t pid() const { return pid_; }
  std::string out() const { return testing::Slurp(out_); }
  std::string err() const { return testing::Slurp(err_); }

  // Waits up to `limit` for `text` in the standard output.
  bool WaitForOutput(const std::string& text, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (out().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Waits up to `limit` for the command to exit; its exit status, or -1 when
  // it did not exit in time or died of a signal.
  int Wait(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// The runs stored in `db`, in id order.
std::vector<RunRecord> Runs(const std::string& db) {
  Result<std::unique_ptr<ResultStore>> store = ResultStore::Open(db);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return {};
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns({});
  EXPECT_TRUE(runs.ok()) << runs.status().message();
  return runs.ok() ? *runs : std::vector<RunRecord>{};
}

// What identifies a run's configuration, for comparing two sweeps.
std::multiset<std::string> Configurations(const std::vector<RunRecord>& runs) {
  std::multiset<std::string> keys;
  for (const RunRecord& r : runs) {
    const RunConfig& c = r.config;
    std::string cuts;
    for (int cut : c.cuts) cuts += std::to_string(cut) + ":";
    keys.insert(fmt::format("{} cuts {} {} batch {}x{} warmup {} repeats {} {}", c.model, cuts,
                            c.backend, c.batch_size, c.batches, c.warmup, c.repeats, r.status));
  }
  return keys;
}

std::set<std::string> SweepIds(const std::vector<RunRecord>& runs) {
  std::set<std::string> ids;
  for (const RunRecord& r : runs) ids.insert(r.config.sweep_id);
  return ids;
}

// Waits until `sweep` has stored its first run, then 300 ms into the second,
// and gives its local workers (in start order: stage 1 first).
void WaitIntoSecondRun(RunningCommand& sweep, std::vector<pid_t>* workers) {
  ASSERT_TRUE(sweep.WaitForOutput("[1/3]", std::chrono::seconds(120)))
      << sweep.out() << sweep.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  *workers = ChildPids(sweep.pid());
  ASSERT_EQ(workers->size(), 2u) << "the sweep's local workers";
}

TEST(SweepFaultTest, KilledWorkerFailsOneRunTheSweepGoesOnAndResumeEndsAsAnUndisturbedSweep) {
  ScopedTempDir dir;
  const std::string undisturbed_db = dir.path() + "/undisturbed.db", db = dir.path() + "/runs.db";
  const CommandOutcome undisturbed = testing::RunCommand(
      std::string(PARETOPIPE_BINARY) + " " + SweepArgs(undisturbed_db), dir.path());
  ASSERT_EQ(undisturbed.exit_code, 0) << undisturbed.out << undisturbed.err;

  std::vector<pid_t> workers;
  {
    RunningCommand sweep(SweepArgs(db), dir.path());
    ASSERT_NO_FATAL_FAILURE(WaitIntoSecondRun(sweep, &workers));
    ASSERT_EQ(kill(workers[1], SIGKILL), 0);
    ASSERT_EQ(sweep.Wait(std::chrono::seconds(120)), 0) << sweep.out() << sweep.err();
    const std::string out = sweep.out();
    EXPECT_NE(out.find("killed by signal 9"), std::string::npos) << out;
    EXPECT_NE(out.find("started it again on the same address"), std::string::npos) << out;
  }
  std::vector<RunRecord> runs = Runs(db);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].status, "ok") << runs[0].error;
  EXPECT_EQ(runs[1].status, "failed");
  EXPECT_NE(runs[1].error.find("local worker 2"), std::string::npos) << runs[1].error;
  EXPECT_EQ(runs[2].status, "ok") << "the sweep went on with a restarted worker: " << runs[2].error;

  const CommandOutcome resumed = testing::RunCommand(
      std::string(PARETOPIPE_BINARY) + " " + SweepArgs(db) + " --resume", dir.path());

  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_NE(resumed.out.find("2 configuration(s) were already complete and skipped, 1 failed "
                             "record(s) replaced"),
            std::string::npos)
      << resumed.out;
  runs = Runs(db);
  EXPECT_EQ(Configurations(runs), Configurations(Runs(undisturbed_db)));
  EXPECT_EQ(SweepIds(runs).size(), 1u) << "the resumed runs belong to the sweep they finish";
}

TEST(SweepFaultTest, OrchestratorKilledMidSweepLeavesADatabaseThatOpensAndResumeFinishesIt) {
  ScopedTempDir dir;
  const std::string db = dir.path() + "/runs.db";
  std::vector<pid_t> workers;
  {
    RunningCommand sweep(SweepArgs(db), dir.path());
    ASSERT_NO_FATAL_FAILURE(WaitIntoSecondRun(sweep, &workers));
    ASSERT_EQ(kill(sweep.pid(), SIGKILL), 0);
    EXPECT_EQ(sweep.Wait(std::chrono::seconds(10)), -1);  // Killed by the signal.
  }
  // The local workers die with their orchestrator (PR_SET_PDEATHSIG).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         std::any_of(workers.begin(), workers.end(), Alive)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (pid_t w : workers) EXPECT_FALSE(Alive(w)) << "local worker " << w << " outlived the sweep";
  const std::vector<RunRecord> before = Runs(db);  // Opens cleanly after the kill.
  ASSERT_GE(before.size(), 1u);
  ASSERT_LT(before.size(), 3u);
  for (const RunRecord& r : before) EXPECT_EQ(r.status, "ok") << r.error;

  const CommandOutcome resumed = testing::RunCommand(
      std::string(PARETOPIPE_BINARY) + " " + SweepArgs(db) + " --resume", dir.path());

  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  const std::vector<RunRecord> after = Runs(db);
  ASSERT_EQ(after.size(), 3u);
  std::set<std::vector<int>> cuts;
  for (const RunRecord& r : after) {
    EXPECT_EQ(r.status, "ok") << r.error;
    cuts.insert(r.config.cuts);
  }
  EXPECT_EQ(cuts, (std::set<std::vector<int>>{{2}, {4}, {6}}));
  EXPECT_EQ(SweepIds(after), SweepIds(before));
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id) << "a finished run was stored again";
  }
}

TEST(SweepFaultTest, HungWorkerIsNoticedByItsMissingHeartbeatsAndFailFastStops) {
  ScopedTempDir dir;
  const std::string db = dir.path() + "/runs.db";
  RunningCommand sweep(SweepArgs(db) + " --heartbeat-timeout 2 --fail-fast", dir.path());
  std::vector<pid_t> workers;
  ASSERT_NO_FATAL_FAILURE(WaitIntoSecondRun(sweep, &workers));
  // Stage 1: whatever run 2 is doing (its link probe, configure or pass),
  // the orchestrator is waiting on this worker's reply.
  const pid_t frozen = workers[0];
  const auto frozen_at = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(frozen, SIGSTOP), 0);

  const bool failed = sweep.WaitForOutput("[2/3]", std::chrono::seconds(30));
  const double noticed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - frozen_at).count();
  kill(frozen, SIGCONT);
  ASSERT_TRUE(failed) << sweep.out() << sweep.err();
  // Two seconds of silence, plus the root-cause grace of the pass.
  EXPECT_LT(noticed_s, 8.0);
  EXPECT_NE(sweep.Wait(std::chrono::seconds(30)), 0) << "--fail-fast ends with an error";
  const std::vector<RunRecord> runs = Runs(db);
  ASSERT_EQ(runs.size(), 2u) << "--fail-fast stops after the failed run: " << sweep.out();
  EXPECT_EQ(runs[0].status, "ok") << runs[0].error;
  EXPECT_EQ(runs[1].status, "failed");
  EXPECT_NE(runs[1].error.find("neither a reply nor a heartbeat for 2.0 s"), std::string::npos)
      << runs[1].error;
}

}  // namespace
}  // namespace paretopipe
