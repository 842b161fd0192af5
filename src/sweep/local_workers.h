// Worker processes on this machine, for the embedded default: a sweep
// without --workers starts them on loopback and stops them at the end. On
// the testbed (--testbed netns) each starts in its own network namespace;
// with --local-device each is limited like the device it stands in for.
//
// Owns: spawning, placing (CPUs, cgroup, namespace) and stopping local
// `paretopipe worker` processes. Must not touch: what the workers compute,
// how the testbed's network is built.
// Thread safety: not thread-safe; one owner.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "sweep/device_limits.h"
#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

class Testbed;

struct LocalWorkerOptions {
  std::string binary;  // The paretopipe executable.
  int count = 2;
  int threads = 1;  // Intra-op threads, where a device does not say.
  std::string log_level = "warn";
  // One per worker (or empty): CPUs, CPU quota, threads. Without them each
  // worker is pinned to its own CPU when there are enough.
  std::vector<DeviceLimits> devices;
  // When set, worker i runs in its own network namespace on this testbed,
  // listening on testbed->WorkerAddress(i). Must outlive the workers.
  Testbed* testbed = nullptr;
};

class LocalWorkers {
 public:
  // Starts the workers (`worker --listen HOST:0`, HOST loopback or the
  // testbed address) and waits until each says on which port it listens.
  // Workers die with this process (PR_SET_DEATHSIG).
  static Result<LocalWorkers> Start(const LocalWorkerOptions& options);

  LocalWorkers() = default;
  ~LocalWorkers();  // Stop().
  LocalWorkers(LocalWorkers&& other) noexcept;
  LocalWorkers& operator=(LocalWorkers&& other) noexcept;
  LocalWorkers(const LocalWorkers&) = delete;
  LocalWorkers& operator=(const LocalWorkers&) = delete;

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  // CPUs each worker may run on (empty: any).
  const std::vector<std::vector<int>>& cpus() const { return cpus_; }
  // How each worker is limited, as runs record it ("pi: cpus 0, quota 0.25";
  // "cpus 1" when only pinned; "" when not limited).
  const std::vector<std::string>& limits() const { return limits_; }
  const std::vector<pid_t>& pids() const { return pids_; }

  // Sends SIGTERM, waits up to 5 s, then SIGKILL; removes the cgroups.
  // Idempotent.
  void Stop();

 private:
  std::vector<pid_t> pids_;
  std::vector<Endpoint> endpoints_;
  std::vector<std::vector<int>> cpus_;
  std::vector<std::string> limits_;
  std::vector<CpuQuotaGroup> groups_;
};

}  // namespace paretopipe
