// Worker processes on this machine, for the embedded default: a sweep
// without --workers starts them on loopback and stops them at the end.
//
// Owns: spawning, pinning and stopping local `paretopipe worker` processes.
// Must not touch: what the workers compute.
// Thread safety: not thread-safe; one owner.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

class LocalWorkers {
 public:
  // Starts `count` workers running `binary` (the paretopipe executable) with
  // `worker --listen 127.0.0.1:0 --threads T`, each pinned to its own CPU
  // when this process may use at least `count` CPUs (so two stages never
  // share a core), and waits until each says on which port it listens.
  // Workers die with this process (PR_SET_DEATHSIG).
  static Result<LocalWorkers> Start(const std::string& binary, int count, int threads,
                                    const std::string& log_level = "warn");

  LocalWorkers() = default;
  ~LocalWorkers();  // Stop().
  LocalWorkers(LocalWorkers&& other) noexcept;
  LocalWorkers& operator=(LocalWorkers&& other) noexcept;
  LocalWorkers(const LocalWorkers&) = delete;
  LocalWorkers& operator=(const LocalWorkers&) = delete;

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  // CPU each worker is pinned to, or -1.
  const std::vector<int>& cpus() const { return cpus_; }

  // Sends SIGTERM, waits up to 5 s, then SIGKILL. Idempotent.
  void Stop();

 private:
  std::vector<pid_t> pids_;
  std::vector<Endpoint> endpoints_;
  std::vector<int> cpus_;
};

}  // namespace paretopipe
