// Network conditions as text, and the tc commands they become: no root
// needed (the commands are built, not run).
#include <gtest/gtest.h>

#include "netem/condition.h"
#include "netem/tc.h"

namespace paretopipe {
namespace {

NetCondition Parse(const std::string& text) {
  Result<NetCondition> c = ParseNetCondition(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status().message();
  return c.ok() ? *c : NetCondition{};
}

std::string Error(const std::string& text) {
  Result<NetCondition> c = ParseNetCondition(text);
  EXPECT_FALSE(c.ok()) << text;
  return c.ok() ? "" : c.status().message();
}

std::vector<std::string> Lines(const std::vector<std::vector<std::string>>& cmds) {
  std::vector<std::string> out;
  for (const auto& c : cmds) {
    std::string line;
    for (const std::string& w : c) line += (line.empty() ? "" : " ") + w;
    out.push_back(line);
  }
  return out;
}

TEST(NetConditionTest, ParsesEveryKeyWithItsUnits) {
  const NetCondition c = Parse("delay=200ms,jitter=10ms,loss=0.5%,rate=5mbit,burst=32kbit,dir=forward");
  EXPECT_EQ(c.delay, std::chrono::milliseconds(200));
  EXPECT_EQ(c.jitter, std::chrono::milliseconds(10));
  EXPECT_DOUBLE_EQ(c.loss_percent, 0.5);
  EXPECT_EQ(c.rate_bits_per_s, 5'000'000);
  EXPECT_EQ(c.burst_bytes, 4000);
  EXPECT_TRUE(c.forward_only);
  EXPECT_EQ(Parse("delay=0.2s").delay, std::chrono::milliseconds(200));
  EXPECT_EQ(Parse("delay=1500us").delay, std::chrono::microseconds(1500));
  EXPECT_EQ(Parse("rate=1gbit").rate_bits_per_s, 1'000'000'000);
  EXPECT_TRUE(Parse("none").none());
}

TEST(NetConditionTest, CanonicalTextRoundTripsAndIgnoresOrder) {
  for (const std::string text : {"none", "delay=200ms,rate=5mbit", "rate=1mbit",
                                 "delay=50ms,jitter=5ms,loss=1.25%,dir=forward",
                                 "rate=20mbit,burst=4096b"}) {
    EXPECT_EQ(FormatNetCondition(Parse(text)), text);
  }
  EXPECT_EQ(FormatNetCondition(Parse("rate=5mbit,delay=0.2s")), "delay=200ms,rate=5mbit");
  EXPECT_EQ(FormatNetCondition(Parse("rate=5000kbit")), "rate=5mbit");
}

TEST(NetConditionTest, RefusesAmbiguousOrImpossibleConditions) {
  EXPECT_NE(Error("rate=5mbps").find("bytes per second"), std::string::npos);
  EXPECT_NE(Error("delay=200").find("unit"), std::string::npos);
  EXPECT_NE(Error("delay=10ms,jitter=20ms").find("jitter"), std::string::npos);
  EXPECT_NE(Error("loss=120%").find("0..100"), std::string::npos);
  EXPECT_NE(Error("speed=5mbit").find("unknown key 'speed'"), std::string::npos);
  EXPECT_NE(Error("delay=1ms,delay=2ms").find("twice"), std::string::npos);
  EXPECT_NE(Error("burst=32kbit").find("needs a rate"), std::string::npos);
  EXPECT_NE(Error("dir=up").find("forward or both"), std::string::npos);
  EXPECT_NE(Error("delay=-5ms").find("not a time"), std::string::npos);
  EXPECT_NE(Error("").find("none"), std::string::npos);
}

TEST(TcCommandsTest, DelayAndRateOnAWholeInterface) {
  const auto lines =
      Lines(TcApplyCommands(TcTarget{"eth0", 0, 1500}, Parse("delay=200ms,jitter=10ms,loss=0.5%,rate=5mbit,burst=32kbit"), TcOptions{}));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            "tc qdisc add dev eth0 root handle 1: netem limit 200000 delay 200ms 10ms loss 0.5%");
  EXPECT_EQ(lines[1],
            "tc qdisc add dev eth0 parent 1: handle 2: tbf rate 5mbit burst 4000b latency 400ms");
}

TEST(TcCommandsTest, RateAloneIsATokenBucketWithAtLeastOnePacket) {
  const auto lines = Lines(TcApplyCommands(TcTarget{"eth0", 0, 1500}, Parse("rate=1mbit"), {}));
  ASSERT_EQ(lines.size(), 1u);
  // 10 ms at 1 Mbit/s is 1250 bytes, less than a packet: one packet plus slack.
  EXPECT_EQ(lines[0], "tc qdisc add dev eth0 root handle 1: tbf rate 1mbit burst 1564b latency 400ms");
}

TEST(TcCommandsTest, PortFilterShapesOnlyMatchingTraffic) {
  TcOptions o;
  o.matches = {"ip dport 7001 0xffff", "ip sport 7001 0xffff"};
  const auto lines =
      Lines(TcApplyCommands(TcTarget{"eth0", 0, 1500}, Parse("delay=100ms,rate=5mbit"), o));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "tc qdisc add dev eth0 root handle 1: htb default 0");
  EXPECT_EQ(lines[1],
            "tc class add dev eth0 parent 1: classid 1:10 htb rate 5mbit ceil 5mbit burst 6250b "
            "cburst 6250b quantum 1514");
  // Queue: 100 ms in flight plus 400 ms backlog at 5 Mbit/s, 312500 bytes.
  EXPECT_EQ(lines[2], "tc qdisc add dev eth0 parent 1:10 handle 10: netem limit 207 delay 100ms");
  EXPECT_EQ(lines[3],
            "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dport 7001 0xffff "
            "flowid 1:10");
  EXPECT_EQ(lines[4],
            "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip sport 7001 0xffff "
            "flowid 1:10");
}

TEST(TcCommandsTest, WithoutKernelDelayOnlyTheRateIsShaped) {
  TcOptions o;
  o.kernel_delay = false;
  o.matches = {"ip dst 10.213.1.3/32"};
  const auto lines = Lines(TcApplyCommands(TcTarget{"pp0", 0, 1500}, Parse("delay=50ms"), o));
  EXPECT_TRUE(lines.empty()) << lines[0];
  const auto rate = Lines(TcApplyCommands(TcTarget{"pp0", 0, 1500}, Parse("delay=50ms,rate=20mbit"), o));
  ASSERT_EQ(rate.size(), 4u);
  EXPECT_NE(rate[1].find("htb rate 20mbit"), std::string::npos);
  // 400 ms of backlog at 20 Mbit/s: the bound tbf's latency gives.
  EXPECT_EQ(rate[2], "tc qdisc add dev pp0 parent 1:10 handle 10: bfifo limit 1000000");
  EXPECT_NE(rate[3].find("match ip dst 10.213.1.3/32"), std::string::npos);
}

TEST(TcCommandsTest, NoneAppliesNothing) {
  EXPECT_TRUE(TcApplyCommands(TcTarget{"eth0", 0, 1500}, Parse("none"), {}).empty());
}

}  // namespace
}  // namespace paretopipe
