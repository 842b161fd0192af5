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
#include "netns_util.h"
#include "test_util.h"

namespace paretopipe {
namespace {

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
  PP_REQUIRE_ROOT();
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
  PP_REQUIRE_ROOT();
  Bed bed;
  ASSERT_NO_FATAL_FAILURE(bed.Start());
  const LinkMeasurement base = bed.Probe("none");
  const LinkMeasurement forward = bed.Probe("delay=50ms,dir=forward");
  EXPECT_NEAR(forward.rtt_ms_median - base.rtt_ms_median, 50, 10);
}

TEST(TestbedTest, RateCapsTheMeasuredThroughput) {
  PP_REQUIRE_ROOT();
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
  PP_REQUIRE_ROOT();
  std::set<ino_t> namespaces;
  {
    Bed bed;
    ASSERT_NO_FATAL_FAILURE(bed.Start());
    bed.Probe("delay=20ms,rate=50mbit");
    EXPECT_NE(testing::TestbedInterfaces(getpid()).find(bed.testbed->host_interface()),
              std::string::npos);
    namespaces = testing::NamespacesOf(bed.workers.pids());
    EXPECT_EQ(namespaces.size(), 2u);
    kill(bed.workers.pids()[1], SIGKILL);
    // The survivor's probe to the dead worker fails (within its connect timeout).
    Result<LinkMeasurement> m = bed.clients[0]->ProbeLink(bed.workers.endpoints()[1]);
    EXPECT_FALSE(m.ok());
  }
  EXPECT_EQ(testing::TestbedInterfaces(getpid()), "");
  testing::ExpectNamespacesGone(namespaces);
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
