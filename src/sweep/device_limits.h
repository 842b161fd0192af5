// Emulated devices on one machine: a local worker limited to some CPUs
// (affinity) and a share of CPU time (a cgroup's CPU quota), so that one
// machine can stand in for a Raspberry Pi and a server
// (`--local-device pi=cpus:0,quota:0.25 --local-device server=cpus:1`); a
// local worker may also compute on a GPU (`server=cpus:1-15,device:cuda`).
//
// Owns: the text form of a device, the cgroup that enforces its quota.
// Must not touch: starting processes (local_workers.h), the network.
// Thread safety: values and one-owner objects.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

struct DeviceLimits {
  std::string name;        // e.g. "pi".
  std::vector<int> cpus;   // Affinity; empty: the worker's default (its own core).
  double cpu_quota = 0;    // CPUs' worth of time per period (0.25: a quarter of one); 0: none.
  int threads = 0;         // Intra-op threads; 0: the sweep's choice.
  std::string device;      // The worker's --device ("cuda:0"); empty: the CPU.
};

// Parses "NAME=cpus:0,quota:0.25,threads:1,device:cuda:0": cpus as a list
// "0", "0-3" or "0+2"; quota a positive number of CPUs; device as the
// worker's --device; each key optional.
Result<DeviceLimits> ParseDeviceLimits(const std::string& text);

// "pi: cpus 0, quota 0.25": how runs record a device.
std::string FormatDeviceLimits(const DeviceLimits& device);

// A cgroup that caps its processes at `cpu_quota` CPUs (cgroup v2 cpu.max, or
// v1 cpu.cfs_quota_us), removed when this object goes (after its processes
// ended). Groups left by a process that was killed are removed by the next
// Create.
class CpuQuotaGroup {
 public:
  // Unavailable, saying why, when no writable cgroup CPU controller exists.
  static Result<CpuQuotaGroup> Create(const std::string& name, double cpu_quota);

  CpuQuotaGroup() = default;
  ~CpuQuotaGroup();
  CpuQuotaGroup(CpuQuotaGroup&& other) noexcept;
  CpuQuotaGroup& operator=(CpuQuotaGroup&& other) noexcept;
  CpuQuotaGroup(const CpuQuotaGroup&) = delete;
  CpuQuotaGroup& operator=(const CpuQuotaGroup&) = delete;

  // Moves process `pid` into the group.
  Status Add(pid_t pid) const;
  // Removes the group's directory. REQUIRES: its processes have ended.
  void Remove();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace paretopipe
