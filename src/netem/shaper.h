// A LinkShaper makes the links between the testbed's workers emulate a
// network condition. Two implementations: KernelNetemShaper (netem for
// delay, jitter and loss, htb for rate, all in the kernel) and
// UserspaceDelayShaper (the TAP switch holds frames for the delay; htb still
// shapes the rate in the kernel), for kernels without the netem qdisc.
//
// Owns: which qdiscs and switch settings a condition becomes. Must not touch:
// interfaces' existence, processes.
// Thread safety: one caller at a time.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "netem/condition.h"
#include "netem/tap_switch.h"
#include "util/status.h"

namespace paretopipe {

// One worker's interface, inside its namespace.
struct ShapedInterface {
  pid_t netns_pid = 0;
  std::string dev;
  std::string address;  // IPv4, without prefix.
  int64_t mtu_bytes = 1500;
};

class LinkShaper {
 public:
  virtual ~LinkShaper() = default;

  // Applies `condition` to the links between `interfaces` (stage order): the
  // egress of each towards every other (with forward_only, towards later
  // stages only), replacing what was there. On error no condition is left
  // applied.
  virtual Status Apply(const std::vector<ShapedInterface>& interfaces,
                       const NetCondition& condition) = 0;

  // How `condition` is emulated, as runs record it: "none", or the parts
  // joined by "+": "netem" or "userspace" for delay, jitter and loss, "htb"
  // for the rate; e.g. "userspace+htb".
  virtual std::string Emulation(const NetCondition& condition) const = 0;
};

std::unique_ptr<LinkShaper> MakeKernelNetemShaper();
// REQUIRES: `tap_switch` outlives the shaper.
std::unique_ptr<LinkShaper> MakeUserspaceDelayShaper(TapSwitch* tap_switch);

}  // namespace paretopipe
