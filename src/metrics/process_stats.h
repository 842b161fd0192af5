// Resource use of this process, for per-stage statistics.
//
// Owns: reading /proc and the CPU-time clock. Must not touch: models, sockets.
// Thread safety: safe from any thread; ResetPeakRss affects the whole process.
#pragma once

#include <cstdint>

namespace paretopipe {

// CPU time (user + system) of every thread of this process so far, in ns
// (CLOCK_PROCESS_CPUTIME_ID).
int64_t ProcessCpuNs();

// Resets the kernel's peak-resident-set mark (VmHWM) to the current resident
// set, by writing "5" to /proc/self/clear_refs (Linux >= 4.0), so that a
// long-running worker reports the peak of each pass, not of its lifetime.
// Returns false when the kernel refused; PeakRssBytes is then the lifetime peak.
bool ResetPeakRss();

// Peak resident set since the last reset (VmHWM in /proc/self/status), in
// bytes; 0 when unreadable.
int64_t PeakRssBytes();

}  // namespace paretopipe
