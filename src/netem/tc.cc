#include "netem/tc.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "netem/command.h"

namespace paretopipe {
namespace {

constexpr const char* kNetemMissing = "kernel has no netem qdisc";

// netem holds every delayed packet: at its default limit (1000 packets) a
// 200 ms delay would cap a link at 60 Mbit/s. This many packets hold a
// 10 Gbit/s link's 200 ms.
constexpr int kNetemLimitPackets = 200000;
// How long tbf may queue a packet before dropping it: the queue a shaped
// link builds (the Python original's `tbf ... latency 400ms`). htb's class
// gets the same bound, so a flow that ends leaves at most this much behind
// for the next one to wait out.
constexpr const char* kTbfLatency = "400ms";
constexpr double kQueueSeconds = 0.4;
// htb needs a rate; a class that only delays is given one no link reaches.
constexpr int64_t kUnlimitedBitsPerS = 100'000'000'000;

std::vector<std::string> Tc(std::vector<std::string> rest) {
  rest.insert(rest.begin(), "tc");
  return rest;
}

// `limit_packets` 0: kNetemLimitPackets.
std::vector<std::string> NetemArgs(const NetCondition& c, int64_t limit_packets = 0) {
  std::vector<std::string> a = {
      "netem", "limit", std::to_string(limit_packets > 0 ? limit_packets : kNetemLimitPackets)};
  if (c.delay.count() > 0 || c.jitter.count() > 0) {
    a.push_back("delay");
    a.push_back(TcTime(c.delay));
    if (c.jitter.count() > 0) a.push_back(TcTime(c.jitter));
  }
  if (c.loss_percent > 0) {
    a.push_back("loss");
    a.push_back(fmt::format("{}%", c.loss_percent));
  }
  return a;
}

void Append(std::vector<std::string>* to, const std::vector<std::string>& from) {
  to->insert(to->end(), from.begin(), from.end());
}

// A failed tc command as the user should read it: a missing interface by
// name, anything else with the command line and tc's own words.
Status FailureOf(const TcTarget& t, const std::vector<std::string>& cmd,
                 const std::string& output) {
  if (output.find("Cannot find device") != std::string::npos) {
    return Status::NotFound(fmt::format("no interface '{}' (see `ip link`)", t.dev));
  }
  return Status::Unavailable(fmt::format("`{}` failed: {}", CommandLine(cmd), output));
}

}  // namespace

std::vector<std::vector<std::string>> TcApplyCommands(const TcTarget& t, const NetCondition& c,
                                                      const TcOptions& o) {
  std::vector<std::vector<std::string>> cmds;
  const bool delay = o.kernel_delay && c.has_delay();
  const bool rate = c.rate_bits_per_s > 0;
  if (!delay && !rate) return cmds;
  const std::string burst = fmt::format("{}b", EffectiveBurstBytes(c, t.mtu_bytes + 64));
  if (o.matches.empty()) {
    if (delay) {
      std::vector<std::string> netem = {"qdisc", "add", "dev", t.dev, "root", "handle", "1:"};
      Append(&netem, NetemArgs(c));
      cmds.push_back(Tc(netem));
    }
    if (rate) {
      std::vector<std::string> tbf = {"qdisc", "add", "dev", t.dev};
      if (delay) {
        Append(&tbf, {"parent", "1:", "handle", "2:"});
      } else {
        Append(&tbf, {"root", "handle", "1:"});
      }
      Append(&tbf, {"tbf", "rate", TcRate(c.rate_bits_per_s), "burst", burst, "latency",
                    kTbfLatency});
      cmds.push_back(Tc(tbf));
    }
    return cmds;
  }
  const std::string class_rate = TcRate(rate ? c.rate_bits_per_s : kUnlimitedBitsPerS);
  // default 0: packets no filter claims leave unshaped.
  cmds.push_back(Tc({"qdisc", "add", "dev", t.dev, "root", "handle", "1:", "htb", "default",
                        "0"}));
  cmds.push_back(Tc({"class", "add", "dev", t.dev, "parent", "1:", "classid", "1:10", "htb",
                        "rate", class_rate, "ceil", class_rate, "burst", burst, "cburst", burst,
                        "quantum", std::to_string(t.mtu_bytes + 14)}));
  // The class's queue: under a rate, what the link holds in flight over the
  // delay plus kQueueSeconds of backlog, as tbf's latency bounds it.
  const int64_t queue_bytes = std::max<int64_t>(
      2 * (t.mtu_bytes + 14),
      static_cast<int64_t>(c.rate_bits_per_s / 8.0 *
                           (kQueueSeconds + (delay ? c.delay.count() / 1e6 : 0))));
  if (delay) {
    std::vector<std::string> netem = {"qdisc", "add", "dev", t.dev, "parent", "1:10", "handle",
                                      "10:"};
    Append(&netem, NetemArgs(c, rate ? queue_bytes / (t.mtu_bytes + 14) + 1 : 0));
    cmds.push_back(Tc(netem));
  } else if (rate) {
    cmds.push_back(Tc({"qdisc", "add", "dev", t.dev, "parent", "1:10", "handle", "10:", "bfifo",
                       "limit", std::to_string(queue_bytes)}));
  }
  for (const std::string& m : o.matches) {
    std::vector<std::string> f = {"filter", "add", "dev", t.dev, "parent", "1:", "protocol",
                                  "ip", "prio", "1", "u32"};
    std::istringstream words(m);
    std::string w;
    bool first = true;
    while (words >> w) {
      if (first) f.push_back("match");
      first = false;
      f.push_back(w);
    }
    Append(&f, {"flowid", "1:10"});
    cmds.push_back(Tc(f));
  }
  return cmds;
}

std::vector<std::string> TcClearCommand(const TcTarget& t) {
  return Tc({"qdisc", "del", "dev", t.dev, "root"});
}

Status TcClear(const TcTarget& t) {
  PP_ASSIGN_OR_RETURN(CommandResult r, RunCommand(TcClearCommand(t), t.netns_pid));
  if (r.exit_code == 0) return Status::Ok();
  // "Cannot delete qdisc with handle of zero" / "No such file or directory":
  // the interface has only its default qdisc.
  if (r.output.find("handle of zero") != std::string::npos ||
      r.output.find("No such file") != std::string::npos ||
      r.output.find("Invalid handle") != std::string::npos) {
    return Status::Ok();
  }
  return FailureOf(t, TcClearCommand(t), r.output);
}

Status TcApply(const TcTarget& t, const NetCondition& c, const TcOptions& o) {
  PP_RETURN_IF_ERROR(TcClear(t));
  for (const std::vector<std::string>& cmd : TcApplyCommands(t, c, o)) {
    PP_ASSIGN_OR_RETURN(CommandResult r, RunCommand(cmd, t.netns_pid));
    if (r.exit_code == 0) continue;
    (void)TcClear(t);  // Leave nothing half-applied.
    if (r.output.find("qdisc kind is unknown") != std::string::npos &&
        std::find(cmd.begin(), cmd.end(), "netem") != cmd.end()) {
      return Status::Unavailable(fmt::format(
          "{} on {}: this kernel has no netem qdisc (module sch_netem), so delay, jitter and "
          "loss cannot be applied here; rate alone works (tbf), and `sweep --testbed netns` "
          "emulates delay in user space",
          kNetemMissing, t.dev));
    }
    return FailureOf(t, cmd, r.output);
  }
  return Status::Ok();
}

Result<std::string> TcShow(const TcTarget& t) {
  std::string out;
  const std::vector<std::vector<std::string>> cmds = {
      Tc({"-s", "qdisc", "show", "dev", t.dev}),
      Tc({"class", "show", "dev", t.dev}),
      Tc({"filter", "show", "dev", t.dev})};
  for (const auto& cmd : cmds) {
    PP_ASSIGN_OR_RETURN(CommandResult r, RunCommand(cmd, t.netns_pid));
    if (r.exit_code != 0) return FailureOf(t, cmd, r.output);
    if (!r.output.empty()) out += r.output + "\n";
  }
  return out;
}

Result<bool> KernelHasNetem(const TcTarget& t) {
  NetCondition probe;
  probe.delay = std::chrono::milliseconds(1);
  const Status s = TcApply(t, probe, TcOptions{});
  if (IsNetemMissing(s)) return false;
  PP_RETURN_IF_ERROR(s);
  PP_RETURN_IF_ERROR(TcClear(t));
  return true;
}

bool IsNetemMissing(const Status& status) {
  return status.message().find(kNetemMissing) != std::string::npos;
}

bool HaveNetAdmin() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      const uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
      constexpr int kCapNetAdmin = 12;
      return (caps >> kCapNetAdmin) & 1;
    }
  }
  return geteuid() == 0;
}

}  // namespace paretopipe
