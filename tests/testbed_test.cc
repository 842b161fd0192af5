// The one-machine testbed (netem/testbed.h) with real worker processes in
// their own network namespaces: conditions change what the link probe
// measures by the amounts asked for, and nothing is left behind. These tests
// need root (namespaces, interfaces, qdiscs); without it they skip.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sched.h>
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
#include "sweep/device_limits.h"
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
      auto c = WorkerClient::Connect(e, std::chrono::seconds(20), workers.secret());
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
  std::set<testing::NamespacedProcess> namespaces;
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

// Every command the shapers build is one tc accepts: here netem is refused
// by the kernel, never by tc's parser; on a kernel with netem, all succeed.
TEST(TcCommandsTest, EveryShapeIsAcceptedByTc) {
  PP_REQUIRE_ROOT();
  testing::ScopedNamespace scoped(fmt::format("pp-tc-{}", getpid()));
  ASSERT_TRUE(scoped.ok());
  const std::string& ns = scoped.name();
  const std::vector<std::string> conditions = {
      "delay=200ms,jitter=10ms,loss=0.5%,rate=5mbit,burst=32kbit", "rate=1mbit", "delay=50ms",
      "loss=1%", "delay=20ms,rate=100mbit"};
  for (const std::string& text : conditions) {
    Result<NetCondition> c = ParseNetCondition(text);
    ASSERT_TRUE(c.ok());
    for (const std::vector<std::string>& matches :
         {std::vector<std::string>{}, std::vector<std::string>{"ip dport 7001 0xffff"},
          std::vector<std::string>{"ip dst 10.213.1.3/32", "ip dst 10.213.1.4/32"}}) {
      SCOPED_TRACE(text + (matches.empty() ? "" : " with " + matches[0]));
      testing::Shell(fmt::format("ip netns exec {} tc qdisc del dev aa root 2>/dev/null", ns));
      for (bool kernel_delay : {true, false}) {
        TcOptions o;
        o.matches = matches;
        o.kernel_delay = kernel_delay;
        testing::Shell(fmt::format("ip netns exec {} tc qdisc del dev aa root 2>/dev/null", ns));
        for (const auto& cmd : TcApplyCommands(TcTarget{"aa", 0, 1500}, *c, o)) {
          const std::string out = testing::Shell(
              fmt::format("ip netns exec {} {} 2>&1 && echo accepted", ns, CommandLine(cmd)));
          const bool refused_by_kernel =
              out.find("Specified qdisc kind is unknown") != std::string::npos;
          EXPECT_TRUE(out.find("accepted") != std::string::npos || refused_by_kernel)
              << CommandLine(cmd) << ": " << out;
          if (refused_by_kernel) break;  // What follows hangs under the missing qdisc.
        }
      }
    }
  }
}

TEST(LocalDevicesTest, AffinityAndQuotaAreAppliedToTheWorkerAndRemovedAfter) {
  PP_REQUIRE_ROOT();
  LocalWorkerOptions o;
  o.binary = PARETOPIPE_BINARY;
  o.count = 2;
  Result<DeviceLimits> pi = ParseDeviceLimits("pi=cpus:0,quota:0.25,threads:1");
  Result<DeviceLimits> server = ParseDeviceLimits("server=cpus:1");
  ASSERT_TRUE(pi.ok() && server.ok());
  o.devices = {*pi, *server};
  Result<LocalWorkers> w = LocalWorkers::Start(o);
  ASSERT_TRUE(w.ok()) << w.status().message();
  const pid_t pid = w->pids()[0];
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(pid, sizeof(set), &set), 0);
  EXPECT_EQ(CPU_COUNT(&set), 1);
  EXPECT_TRUE(CPU_ISSET(0, &set));
  const std::string group = fmt::format("paretopipe-{}-0-pi", getpid());
  EXPECT_NE(testing::Slurp(fmt::format("/proc/{}/cgroup", pid)).find(group), std::string::npos);
  const std::string path = testing::Shell(
      fmt::format("find /sys/fs/cgroup -maxdepth 3 -type d -name '{}' | head -1", group));
  ASSERT_FALSE(path.empty());
  const std::string dir = path.substr(0, path.size() - 1);
  const std::string quota = testing::Slurp(dir + "/cpu.max") + testing::Slurp(dir + "/cpu.cfs_quota_us");
  EXPECT_EQ(quota.substr(0, 5), "25000") << quota;
  EXPECT_EQ(w->limits()[0], "pi: cpus 0, quota 0.25, threads 1");
  EXPECT_EQ(w->limits()[1], "server: cpus 1");
  w->Stop();
  EXPECT_EQ(testing::Shell(fmt::format("find /sys/fs/cgroup -maxdepth 3 -name '{}'", group)), "");
}

TEST(LocalDevicesTest, DeviceTextParsesAndRefusesNonsense) {
  Result<DeviceLimits> d = ParseDeviceLimits("pi=cpus:0-2+5,quota:0.5");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->name, "pi");
  EXPECT_EQ(d->cpus, (std::vector<int>{0, 1, 2, 5}));
  EXPECT_DOUBLE_EQ(d->cpu_quota, 0.5);
  EXPECT_EQ(FormatDeviceLimits(*d), "pi: cpus 0+1+2+5, quota 0.5");
  for (const char* bad : {"=cpus:0", "pi=quota:0", "pi=quota:abc", "pi=cpus:3-1", "pi=speed:2",
                          "p i=cpus:0", "pi=threads:0"}) {
    EXPECT_FALSE(ParseDeviceLimits(bad).ok()) << bad;
  }
}

TEST(LocalDevicesTest, DeviceKeyNamesTheWorkersComputeDevice) {
  Result<DeviceLimits> d = ParseDeviceLimits("server=cpus:1-3,device:cuda:1");

  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->cpus, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(d->device, "cuda:1");
  EXPECT_EQ(FormatDeviceLimits(*d), "server: cpus 1+2+3, device cuda:1");
  EXPECT_FALSE(ParseDeviceLimits("server=device:").ok());
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
