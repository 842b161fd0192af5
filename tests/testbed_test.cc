// The one-machine testbed (netem/testbed.h) with real worker processes in
// their own network namespaces: conditions change what the link probe
// measures by the amounts asked for, and nothing is left behind. These tests
// need root (namespaces, interfaces, qdiscs); without it they skip.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <dirent.h>

#include <filesystem>
#include <set>

#include "control/worker_client.h"
#include "netem/command.h"
#include "netem/condition.h"
#include "netem/tc.h"
#include "netem/testbed.h"
#include "sweep/local_workers.h"
#include "test_util.h"

namespace paretopipe {
namespace {

#define REQUIRE_ROOT()                                                              \
  if (!HaveNetAdmin()) GTEST_SKIP() << "needs root (CAP_NET_ADMIN): network namespaces, " \
                                       "interfaces and qdiscs; CI runs as root"

// Network namespaces in use by any process: none of ours may outlive a test.
std::set<ino_t> LiveNetworkNamespaces() {
  std::set<ino_t> out;
  DIR* proc = opendir("/proc");
  while (dirent* e = proc ? readdir(proc) : nullptr) {
    struct stat st;
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (stat(fmt::format("/proc/{}/ns/net", e->d_name).c_str(), &st) == 0) out.insert(st.st_ino);
  }
  if (proc) closedir(proc);
  return out;
}

std::string RootInterfaces() {
  Result<CommandResult> r = RunCommand({"ip", "-o", "link", "show"});
  return r.ok() ? r->output : "";
}

// Two workers on a fresh testbed and a client for each.
struct Bed {
  std::unique_ptr<Testbed> testbed;
  LocalWorkers workers;
  std::vector<std::unique_ptr<WorkerClient>> clients;

  void Start(int count = 2) {
    Result<std::unique_ptr<Testbed>> t = Testbed::Create(count);
    ASSERT_TRUE(t.ok()) << t.status().message();
    testbed = std::move(t).value();
    LocalWorkerOptions o;
    o.binary = PARETOPIPE_BINARY;
    o.count = count;
    o.threads = 1;
    o.testbed = testbed.get();
    Result<LocalWorkers> w = LocalWorkers::Start(o);
    ASSERT_TRUE(w.ok()) << w.status().message();
    workers = std::move(w).value();
    for (const Endpoint& e : workers.endpoints()) {
      EXPECT_EQ(e.host.rfind("10.213.", 0), 0u) << e.ToString();
      auto c = WorkerClient::Connect(e, std::chrono::seconds(20));
      ASSERT_TRUE(c.ok()) << c.status().message();
      clients.push_back(std::move(c).value());
    }
  }

  LinkMeasurement Probe(const std::string& condition,
                        std::chrono::milliseconds min_bulk = std::chrono::milliseconds(0)) {
    Result<NetCondition> c = ParseNetCondition(condition);
    EXPECT_TRUE(c.ok()) << c.status().message();
    const Status applied = testbed->Apply(*c);
    EXPECT_TRUE(applied.ok()) << applied.message();
    Result<LinkMeasurement> m = clients[0]->ProbeLink(workers.endpoints()[1], min_bulk);
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() ? *m : LinkMeasurement{};
  }
};

TEST(TestbedTest, DelayRaisesTheRoundTripByTwiceTheDelay) {
  REQUIRE_ROOT();
  Bed bed;
  ASSERT_NO_FATAL_FAILURE(bed.Start());
  const LinkMeasurement base = bed.Probe("none");
  const LinkMeasurement delayed = bed.Probe("delay=50ms");
  EXPECT_EQ(bed.testbed->emulation(), bed.testbed->kernel_netem() ? "netem" : "userspace");
  EXPECT_NEAR(delayed.rtt_ms_median - base.rtt_ms_median, 100, 15)
      << "none: " << base.rtt_ms_median << " ms, delay=50ms: " << delayed.rtt_ms_median << " ms";
  EXPECT_GE(delayed.rtt_ms_min - base.rtt_ms_median, 85);
}

TEST(TestbedTest, ForwardOnlyDelaysOneDirection) {
  REQUIRE_ROOT();
  Bed bed;
  ASSERT_NO_FATAL_FAILURE(bed.Start());
  const LinkMeasurement base = bed.Probe("none");
  const LinkMeasurement forward = bed.Probe("delay=50ms,dir=forward");
  EXPECT_NEAR(forward.rtt_ms_median - base.rtt_ms_median, 50, 10);
}

TEST(TestbedTest, RateCapsTheMeasuredThroughput) {
  REQUIRE_ROOT();
  Bed bed;
  ASSERT_NO_FATAL_FAILURE(bed.Start());
  const LinkMeasurement free = bed.Probe("none");
  const LinkMeasurement shaped = bed.Probe("rate=20mbit", std::chrono::seconds(1));
  EXPECT_EQ(bed.testbed->emulation(), "htb");
  EXPECT_GT(free.bandwidth_mbit, 100) << "the unshaped testbed must be far faster than 20 Mbit/s";
  // Payload bits: TCP/IP and Ethernet headers take 66 of every 1514 bytes
  // the token bucket counts, so the cap on payload is 19.1 Mbit/s.
  EXPECT_NEAR(shaped.bandwidth_mbit, 20, 2) << "measured " << shaped.bandwidth_mbit << " Mbit/s";
}

TEST(TestbedTest, NothingIsLeftBehindAfterAWorkerIsKilled) {
  REQUIRE_ROOT();
  const std::set<ino_t> before = LiveNetworkNamespaces();
  const std::string tag = fmt::format("ppw{}_", getpid());
  {
    Bed bed;
    ASSERT_NO_FATAL_FAILURE(bed.Start());
    bed.Probe("delay=20ms,rate=50mbit");
    EXPECT_NE(RootInterfaces().find(bed.testbed->host_interface()), std::string::npos);
    kill(bed.workers.pids()[1], SIGKILL);
    // The survivor's probe to the dead worker fails (within its connect timeout).
    Result<LinkMeasurement> m = bed.clients[0]->ProbeLink(bed.workers.endpoints()[1]);
    EXPECT_FALSE(m.ok());
  }
  const std::string links = RootInterfaces();
  EXPECT_EQ(links.find(fmt::format("pph{}", getpid())), std::string::npos) << links;
  EXPECT_EQ(links.find(tag), std::string::npos) << links;
  // Namespaces go with their last process; allow the kernel a moment.
  std::set<ino_t> after;
  for (int i = 0; i < 50; ++i) {
    after = LiveNetworkNamespaces();
    if (after.size() <= before.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (ino_t ns : after) EXPECT_TRUE(before.count(ns)) << "network namespace " << ns << " left";
}

TEST(TestbedTest, WithoutRootItRefusesClearly) {
  if (geteuid() != 0) GTEST_SKIP() << "runs as root and drops to nobody";
  testing::ScopedTempDir dir;
  chmod(dir.path().c_str(), 0777);
  const testing::CommandOutcome o = testing::RunCommand(
      fmt::format("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} netem "
                  "apply --dev lo --delay 10ms",
                  PARETOPIPE_BINARY),
      dir.path());
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.err.find("needs root"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace paretopipe
