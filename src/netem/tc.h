// Traffic control through iproute2's `tc`: the qdiscs that emulate a
// NetCondition on one interface's egress. netem adds delay, jitter and loss;
// tbf (whole interface) or htb (a class that u32 filters feed) limits the
// rate. Commands are built by pure functions, so tests read them without root.
//
// Owns: the tc command lines and their errors. Must not touch: which
// interfaces exist (the testbed), how conditions are parsed.
// Thread safety: pure functions; Apply/Clear run commands and may be called
// from any thread, not concurrently on one interface.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "netem/condition.h"
#include "util/status.h"

namespace paretopipe {

struct TcTarget {
  std::string dev;       // Interface name.
  pid_t netns_pid = 0;   // Run tc in this process's network namespace (0: ours).
  int64_t mtu_bytes = 1500;
};

struct TcOptions {
  // u32 selectors ("ip dport 7001 0xffff"); a packet matching any is shaped.
  // Empty: every packet leaving the interface.
  std::vector<std::string> matches;
  // Emulate delay, jitter and loss with the netem qdisc. False when they are
  // emulated elsewhere (the testbed's user-space delay line): only the rate
  // is shaped here.
  bool kernel_delay = true;
};

// The commands that make `dev` emulate `condition`, after a clear:
//   whole interface:  netem as root, tbf as its child (or tbf alone, netem alone);
//   with matches:     htb root (unmatched traffic unshaped), class 1:10 at the
//                     rate, netem under it, one u32 filter per match.
// Empty for a condition with nothing to apply here.
std::vector<std::vector<std::string>> TcApplyCommands(const TcTarget& target,
                                                      const NetCondition& condition,
                                                      const TcOptions& options);

// `tc qdisc del dev DEV root`.
std::vector<std::string> TcClearCommand(const TcTarget& target);

// Replaces whatever root qdisc `dev` has with `condition`. A kernel without
// netem gives an error saying so (IsNetemMissing tells it apart).
Status TcApply(const TcTarget& target, const NetCondition& condition, const TcOptions& options);

// Removes the root qdisc of `dev`; OK when there was none.
Status TcClear(const TcTarget& target);

// What `tc -s qdisc`, `tc class` and `tc filter` show for `dev`.
Result<std::string> TcShow(const TcTarget& target);

// Whether this kernel has the netem qdisc, tried on `target` (which must
// have no root qdisc of ours; left as found).
Result<bool> KernelHasNetem(const TcTarget& target);

// True when `status` came from a kernel without the netem qdisc.
bool IsNetemMissing(const Status& status);

// Root (or CAP_NET_ADMIN in a user namespace): what changing qdiscs needs.
bool HaveNetAdmin();

}  // namespace paretopipe
