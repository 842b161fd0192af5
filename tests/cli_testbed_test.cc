// `paretopipe sweep --testbed netns --net ... --local-device ...` as a user
// runs it: the real binary, workers in their own network namespaces, a real
// SQLite file. Needs root, as CI has; skips without it.
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "netem/tc.h"
#include "store/store.h"
#include "netns_util.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::CommandOutcome;
using testing::ScopedTempDir;
using testing::Shell;
using testing::TestbedInterfaces;

// A small sweep of resnet18 at 64 px on the testbed.
std::string TestbedSweep(const std::string& db, const std::string& extra) {
  return fmt::format(
      "{} sweep resnet18 --num-classes 10 --input-size 64 --cuts 2,6 --batch 2 --batches 5 "
      "--warmup 1 --repeat 1 --testbed netns --db {} {}",
      PARETOPIPE_BINARY, db, extra);
}

std::vector<RunRecord> Runs(const std::string& db) {
  Result<std::unique_ptr<ResultStore>> store = ResultStore::OpenReadOnly(db);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return {};
  Result<std::vector<RunRecord>> runs = (*store)->LoadRuns({});
  EXPECT_TRUE(runs.ok()) << runs.status().message();
  return runs.ok() ? *runs : std::vector<RunRecord>{};
}

// The worker processes `pid` started (not a passing `ip` or `tc`).
std::vector<pid_t> WorkersOf(pid_t pid) {
  std::vector<pid_t> out;
  std::ifstream in(fmt::format("/proc/{}/task/{}/children", pid, pid));
  pid_t child;
  while (in >> child) {
    if (testing::Slurp(fmt::format("/proc/{}/cmdline", child)).find("worker") !=
        std::string::npos) {
      out.push_back(child);
    }
  }
  return out;
}

// Starts `command` through the shell with its output into `out`; returns its pid.
pid_t Spawn(const std::string& command, const std::string& out) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Waits up to `limit` for `pid`; its exit status, or -1 after killing it.
int WaitExit(pid_t pid, std::chrono::seconds limit) {
  int status = 0;
  for (int i = 0; i < limit.count() * 10; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// A sweep whose first run (unshaped) is short and whose second, 400 batches
// of 1 Mbit at 2 Mbit/s, is not; each worker in a CPU-quota cgroup.
std::string InterruptibleSweep(const std::string& db) {
  return fmt::format(
      "{} sweep resnet18 --num-classes 10 --input-size 64 --cuts 2 --batch 2 --batches 400 "
      "--warmup 1 --repeat 1 --testbed netns --net none --net rate=2mbit "
      "--local-device a=quota:0.9 --local-device b=quota:0.9 --db {}",
      PARETOPIPE_BINARY, db);
}

// Waits until the first run is stored and the second under way.
void AwaitSecondRun(const std::string& out) {
  for (int i = 0; i < 1200 && testing::Slurp(out).find("[1/2]") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
}

std::string QuotaGroups(pid_t sweep) {
  return Shell(fmt::format("find /sys/fs/cgroup -maxdepth 3 -name 'paretopipe-{}-*'", sweep));
}

// A sweep from InterruptibleSweep, in its second run, and what it started.
struct RunningSweep {
  ScopedTempDir dir;
  std::string db = dir.path() + "/runs.db", out = dir.path() + "/out";
  pid_t pid = -1;
  std::set<testing::NamespacedProcess> namespaces;

  void Start() {
    pid = Spawn(InterruptibleSweep(db), out);
    ASSERT_GT(pid, 0);
    AwaitSecondRun(out);
    namespaces = testing::NamespacesOf(WorkersOf(pid));
    ASSERT_EQ(namespaces.size(), 2u) << testing::Slurp(out);
  }
};

TEST(CliTestbedTest, EveryRunHoldsTheConditionAskedForAndTheOneMeasured) {
  PP_REQUIRE_ROOT();
  ScopedTempDir dir;
  const std::string db = dir.path() + "/runs.db";
  const CommandOutcome o = testing::RunCommand(
      TestbedSweep(db,
                   "--net none --net delay=20ms,rate=50mbit --local-device pi=cpus:0,quota:0.5 "
                   "--local-device server=cpus:1"),
      dir.path());
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("network namespaces"), std::string::npos) << o.out;
  const std::vector<RunRecord> runs = Runs(db);
  ASSERT_EQ(runs.size(), 4u) << o.out;  // 2 cuts x 2 conditions.
  for (const RunRecord& r : runs) {
    SCOPED_TRACE(fmt::format("run {} cuts {} under {}", r.id, r.config.cuts[0], r.config.net));
    EXPECT_EQ(r.status, "ok") << r.error;
    EXPECT_EQ(r.config.testbed, "netns");
    ASSERT_EQ(r.links.size(), 1u);
    const LinkMeasurement& l = r.links[0];
    EXPECT_EQ(l.pings, 10);
    ASSERT_EQ(r.environment.size(), 2u);
    EXPECT_EQ(r.environment[0].limits, "pi: cpus 0, quota 0.5");
    EXPECT_EQ(r.environment[1].limits, "server: cpus 1");
    if (r.config.net == "none") {
      EXPECT_EQ(r.config.net_emulation, "none");
      EXPECT_LT(l.rtt_ms_median, 10);
      EXPECT_GT(l.bandwidth_mbit, 100);
    } else {
      EXPECT_EQ(r.config.net, "delay=20ms,rate=50mbit");
      EXPECT_TRUE(r.config.net_emulation == "netem+htb" ||
                  r.config.net_emulation == "userspace+htb")
          << r.config.net_emulation;
      EXPECT_NEAR(l.rtt_ms_median, 40, 8);
      // The cap holds (unshaped, this link carries over 1000 Mbit/s); below
      // it the probe's own speed counts, which a loaded machine (an ASan
      // build beside other builds: 40 Mbit/s) slows, so only half is asked.
      EXPECT_LE(l.bandwidth_mbit, 55);
      EXPECT_GE(l.bandwidth_mbit, 25);
    }
  }
  // The quota's cgroup went with the sweep.
  const size_t at = o.out.find("switch on pph");
  ASSERT_NE(at, std::string::npos) << o.out;
  const int64_t sweep_pid = std::stoll(o.out.substr(at + strlen("switch on pph")));
  EXPECT_EQ(Shell(fmt::format("find /sys/fs/cgroup -maxdepth 3 -name 'paretopipe-{}-*'",
                              sweep_pid)),
            "");
  EXPECT_EQ(TestbedInterfaces(sweep_pid), "");

  const CommandOutcome pareto = testing::RunCommand(
      fmt::format("{} pareto --db {} --net delay=20ms,rate=50mbit", PARETOPIPE_BINARY, db),
      dir.path());
  EXPECT_EQ(pareto.exit_code, 0) << pareto.err;
  EXPECT_NE(pareto.out.find("delay=20ms,rate=50mbit"), std::string::npos) << pareto.out;
  EXPECT_EQ(pareto.out.find(" none "), std::string::npos) << pareto.out;
}

// grpc and torch bind and rendezvous on the testbed's addresses too, and
// their frames cross the same shaped links.
TEST(CliTestbedTest, EveryBackendRunsUnderACondition) {
  PP_REQUIRE_ROOT();
  PP_REQUIRE_BACKEND("grpc");
  PP_REQUIRE_BACKEND("torch");
  ScopedTempDir dir;
  const std::string db = dir.path() + "/runs.db";
  const CommandOutcome o = testing::RunCommand(
      TestbedSweep(db, "--net delay=10ms,rate=50mbit --backend grpc,torch"), dir.path());
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  const std::vector<RunRecord> runs = Runs(db);
  ASSERT_EQ(runs.size(), 4u) << o.out;
  for (const RunRecord& r : runs) {
    SCOPED_TRACE(fmt::format("run {} on {}", r.id, r.config.backend));
    EXPECT_EQ(r.status, "ok") << r.error;
    ASSERT_EQ(r.links.size(), 1u);
    EXPECT_NEAR(r.links[0].rtt_ms_median, 20, 5);
    // Every frame crossed the delayed link: no hop is faster than its delay.
    ASSERT_EQ(r.hops.size(), 1u);
    EXPECT_GT(r.hops[0].hop_ms_p50, 9.0);
  }
  // Backends side by side, within the condition they ran under.
  const CommandOutcome by = testing::RunCommand(
      fmt::format("{} pareto --db {} --by backend", PARETOPIPE_BINARY, db), dir.path());
  EXPECT_EQ(by.exit_code, 0) << by.err;
  EXPECT_NE(by.out.find("network delay=10ms,rate=50mbit\n"), std::string::npos) << by.out;
  EXPECT_NE(by.out.find("torch against grpc"), std::string::npos) << by.out;
}

TEST(CliTestbedTest, AWorkerKilledMidRunFailsThatRunAndLeavesNothingBehind) {
  PP_REQUIRE_ROOT();
  ScopedTempDir dir;
  const std::string db = dir.path() + "/runs.db";
  const std::string out = dir.path() + "/out";
  // Long enough to be killed in the middle: 400 batches of 1 Mbit at 2 Mbit/s.
  const std::string command = fmt::format(
      "{} sweep resnet18 --num-classes 10 --input-size 64 --cuts 2 --batch 2 --batches 400 "
      "--warmup 1 --repeat 1 --testbed netns --net delay=5ms,rate=2mbit --db {} --stall-timeout 5",
      PARETOPIPE_BINARY, db);
  const pid_t sweep = Spawn(command, out);
  ASSERT_GT(sweep, 0);
  // Wait until the run is under way: the sweep has said how many runs.
  for (int i = 0; i < 600 && testing::Slurp(out).find("run(s) of 2 stages") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const std::vector<pid_t> workers = WorkersOf(sweep);
  ASSERT_EQ(workers.size(), 2u) << testing::Slurp(out);
  const std::set<testing::NamespacedProcess> namespaces = testing::NamespacesOf(workers);
  EXPECT_EQ(namespaces.size(), 2u);
  kill(workers[1], SIGKILL);
  EXPECT_GE(WaitExit(sweep, std::chrono::seconds(60)), 0)
      << "the sweep did not end within 60 s of its worker's death\n"
      << testing::Slurp(out);
  const std::vector<RunRecord> runs = Runs(db);
  ASSERT_EQ(runs.size(), 1u) << testing::Slurp(out);
  EXPECT_EQ(runs[0].status, "failed");
  EXPECT_EQ(runs[0].config.net, "delay=5ms,rate=2mbit");
  EXPECT_EQ(TestbedInterfaces(sweep), "");
  testing::ExpectNamespacesGone(namespaces);
}

TEST(CliTestbedTest, CtrlCMidRunCleansUpAndKeepsFinishedRuns) {
  PP_REQUIRE_ROOT();
  RunningSweep running;
  ASSERT_NO_FATAL_FAILURE(running.Start());
  const pid_t sweep = running.pid;
  const std::string &db = running.db, &out = running.out;
  const auto& namespaces = running.namespaces;
  EXPECT_NE(QuotaGroups(sweep), "");
  kill(sweep, SIGINT);
  EXPECT_EQ(WaitExit(sweep, std::chrono::seconds(30)), 130) << testing::Slurp(out);
  EXPECT_NE(testing::Slurp(out).find("interrupted"), std::string::npos) << testing::Slurp(out);
  const std::vector<RunRecord> runs = Runs(db);
  ASSERT_EQ(runs.size(), 1u) << testing::Slurp(out);  // The finished run, and only it.
  EXPECT_EQ(runs[0].status, "ok");
  EXPECT_EQ(TestbedInterfaces(sweep), "");
  EXPECT_EQ(QuotaGroups(sweep), "");
  testing::ExpectNamespacesGone(namespaces);
}

TEST(CliTestbedTest, AnOrchestratorKilledLeavesNoNetworkAndItsGroupsGoNextTime) {
  PP_REQUIRE_ROOT();
  RunningSweep running;
  ASSERT_NO_FATAL_FAILURE(running.Start());
  const pid_t sweep = running.pid;
  const std::string& db = running.db;
  const auto& namespaces = running.namespaces;
  kill(sweep, SIGKILL);
  EXPECT_EQ(WaitExit(sweep, std::chrono::seconds(10)), 128 + SIGKILL);
  EXPECT_EQ(Runs(db).size(), 1u);  // The finished run survived.
  EXPECT_EQ(TestbedInterfaces(sweep), "");  // TAPs went with their descriptors.
  testing::ExpectNamespacesGone(namespaces);  // Workers went with their parent.
  // Killed, it could not remove its cgroups: the next sweep with a quota does.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(testing::RunCommand(TestbedSweep(running.dir.path() + "/again.db",
                                             "--net none --local-device a=quota:0.9 "
                                             "--local-device b=cpus:0"),
                                running.dir.path())
                .exit_code,
            0);
  EXPECT_EQ(QuotaGroups(sweep), "");
}

TEST(CliNetemTest, ApplyShowClearOnAnInterface) {
  PP_REQUIRE_ROOT();
  testing::ScopedNamespace scoped(fmt::format("pp-cli-{}", getpid()));
  ASSERT_TRUE(scoped.ok());
  const std::string& ns = scoped.name();
  const std::string in_ns = fmt::format("ip netns exec {} {} netem ", ns, PARETOPIPE_BINARY);
  const std::string applied =
      Shell(in_ns + "apply --dev aa --rate 5mbit --burst 32kbit --port 7001 2>&1; echo rc=$?");
  EXPECT_NE(applied.find("aa: rate=5mbit,burst=4000b on egress to and from port 7001"),
            std::string::npos)
      << applied;
  EXPECT_NE(applied.find("rc=0"), std::string::npos) << applied;
  const std::string shown = Shell(in_ns + "show --dev aa 2>&1");
  EXPECT_NE(shown.find("htb"), std::string::npos) << shown;
  EXPECT_NE(shown.find("flowid 1:10"), std::string::npos) << shown;
  const std::string delayed = Shell(in_ns + "apply --dev aa --delay 100ms 2>&1; echo rc=$?");
  const bool kernel_has_netem = delayed.find("rc=0") != std::string::npos;
  if (!kernel_has_netem) {
    EXPECT_NE(delayed.find("this kernel has no netem qdisc"), std::string::npos) << delayed;
    EXPECT_NE(delayed.find("rc=1"), std::string::npos) << delayed;
  }
  EXPECT_NE(Shell(in_ns + "clear --dev aa 2>&1; echo rc=$?").find("rc=0"), std::string::npos);
  EXPECT_EQ(Shell(fmt::format("ip netns exec {} tc qdisc show dev aa", ns)).find("htb"),
            std::string::npos);
  const std::string missing = Shell(in_ns + "apply --dev nosuch0 --rate 1mbit 2>&1; echo rc=$?");
  EXPECT_NE(missing.find("no interface 'nosuch0'"), std::string::npos) << missing;
}

TEST(CliTestbedTest, ConditionsNeedTheTestbedOrOneDeclaredCondition) {
  ScopedTempDir dir;
  const CommandOutcome local = testing::RunCommand(
      fmt::format("{} sweep resnet18 --net delay=10ms --db {}/x.db", PARETOPIPE_BINARY,
                  dir.path()),
      dir.path());
  EXPECT_EQ(local.exit_code, 1);
  EXPECT_NE(local.err.find("--net needs --testbed netns"), std::string::npos) << local.err;
  const CommandOutcome remote = testing::RunCommand(
      fmt::format("{} sweep resnet18 --workers 127.0.0.1:1,127.0.0.1:2 --net delay=10ms --net "
                  "rate=1mbit --db {}/x.db",
                  PARETOPIPE_BINARY, dir.path()),
      dir.path());
  EXPECT_EQ(remote.exit_code, 1);
  EXPECT_NE(remote.err.find("single --net"), std::string::npos) << remote.err;
  const CommandOutcome bad = testing::RunCommand(
      fmt::format("{} sweep resnet18 --testbed netns --net rate=5mbps --db {}/x.db",
                  PARETOPIPE_BINARY, dir.path()),
      dir.path());
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bytes per second"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace paretopipe
