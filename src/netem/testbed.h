// The one-machine testbed: each local worker in its own network namespace,
// the namespaces joined by a TAP switch (netem/tap_switch.h) whose host port
// lets the orchestrator reach every worker, and a network condition applied
// on the links between workers through a LinkShaper.
//
// Nothing outlives the processes: a worker's namespace is made by the worker
// itself (unshare) and ends with it, and the TAP interfaces, with the qdiscs
// on them, vanish when the switch's descriptors close, on a clean exit, an
// error, Ctrl-C or a SIGKILL alike.
//
// Owns: addresses, interfaces, the switch and the shaper. Must not touch:
// starting or stopping the worker processes (sweep/local_workers.h).
// Thread safety: one owner; not copyable.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "netem/condition.h"
#include "netem/shaper.h"
#include "netem/tap_switch.h"
#include "util/status.h"

namespace paretopipe {

class Testbed {
 public:
  // Creates the host interface (its address ends in .1 of a free
  // 10.213.N.0/24) and the switch for up to `workers` workers, and finds out
  // whether this kernel has the netem qdisc; the switch forwards from then
  // on. REQUIRES: root.
  static Result<std::unique_ptr<Testbed>> Create(int workers);
  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  // The address worker `index` (0-based stage) listens on.
  std::string WorkerAddress(int index) const;

  // Gives worker `index` its interface: moves it into the network namespace
  // of `pid` (a process that has unshared a fresh one and waits to exec the
  // worker), names it pp0, sets its address and brings it and lo up.
  Status AttachWorker(int index, pid_t pid);

  // Makes every link between two workers emulate `condition`, replacing the
  // previous one. REQUIRES: every worker attached.
  Status Apply(const NetCondition& condition);

  // How the current condition is emulated, as runs record it (shaper.h).
  std::string emulation() const;
  // Whether delay is emulated by the kernel (netem) or in user space.
  bool kernel_netem() const { return kernel_netem_; }
  const std::string& host_interface() const { return host_dev_; }

  TapSwitch::Counters counters() const { return switch_.counters(); }

 private:
  Testbed() = default;

  int workers_ = 0;
  int subnet_ = 0;  // N of 10.213.N.0/24.
  std::string host_dev_;
  std::vector<pid_t> worker_pids_;
  bool kernel_netem_ = false;
  TapSwitch switch_;
  std::unique_ptr<LinkShaper> shaper_;
  NetCondition condition_;
};

}  // namespace paretopipe
