// How many CPUs this process may run on: the size of its affinity mask (what
// taskset, cgroups cpusets and container limits leave), not the machine's total.
#pragma once

#include <sched.h>

#include <algorithm>
#include <thread>

namespace paretopipe {

inline int AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace paretopipe
