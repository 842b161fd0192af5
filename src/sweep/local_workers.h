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
  // Every local worker gets a fresh random secret (secret()) as its
  // --token-file: on the testbed they listen on addresses other namespaces
  // reach. With it, accept torch runs all the same (the workers are the
  // caller's own, on this machine): --allow-unauthenticated-torch.
  bool allow_unauthenticated_torch = false;
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
  // The shared secret the workers demand of every connection (util/auth.h).
  const std::string& secret() const { return secret_; }

  // Collects the workers that have exited (killed, crashed, out of memory)
  // since the last call, without waiting; returns what happened to each
  // ("local worker 2 (pid 812) was killed by signal 9 (KILL)").
  std::vector<std::string> Reap();

  // Starts again, on the same address and placed as before, every worker
  // that has exited (Reap() first). Returns what happened to each one
  // restarted. Its state (segment, input set) is gone: the next configure
  // sends what it needs again.
  struct Restarted {
    int index;         // Which worker (0-based, as endpoints()).
    std::string exit;  // How it had exited, as Reap() says.
  };
  Result<std::vector<Restarted>> RestartExited();

  // Sends SIGTERM, waits up to 5 s, then SIGKILL; removes the cgroups.
  // Idempotent.
  void Stop();

 private:
  // Forks and execs worker `i` listening on `listen`, places it (CPUs,
  // cgroup, testbed namespace) and waits for its announce line.
  // REQUIRES: cpus_, limits_, groups_ and pids_ have an entry `i`.
  Result<Endpoint> Spawn(int i, const std::string& listen);

  LocalWorkerOptions options_;
  std::string secret_;
  std::vector<pid_t> pids_;         // -1 while a worker is not running.
  std::vector<std::string> exits_;  // How each worker last exited.
  std::vector<Endpoint> endpoints_;
  std::vector<std::vector<int>> cpus_;
  std::vector<std::string> limits_;
  std::vector<CpuQuotaGroup> groups_;
};

}  // namespace paretopipe
