// A user-space Ethernet switch between TAP interfaces: the testbed's network.
// Each local worker's network namespace has one TAP interface whose other
// side is a file descriptor here; the switch forwards frames between them by
// learned MAC address, and on the links between workers it can hold each
// frame for a delay (plus jitter) and drop a share of them: netem's delay
// line, for kernels without the netem qdisc. Frames to or from the host port
// (the orchestrator's control traffic) are never delayed.
//
// A TAP interface that is not made persistent disappears when its descriptor
// closes, so the switch going away removes the whole network, whatever else
// crashed.
//
// Owns: the TAP descriptors, the forwarding thread and the delay queue. Must
// not touch: addresses, qdiscs, processes (the testbed).
// Thread safety: SetDelay, counters and RemovePort are safe from any thread
// while the switch runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "netem/condition.h"
#include "util/status.h"

namespace paretopipe {

class TapSwitch {
 public:
  // Port number of the host (orchestrator's) interface.
  static constexpr int kHostPort = 0;

  TapSwitch();
  ~TapSwitch();  // Stops the thread and closes every TAP: the interfaces vanish.
  TapSwitch(const TapSwitch&) = delete;
  TapSwitch& operator=(const TapSwitch&) = delete;

  // Creates TAP interface `name` in this process's network namespace, as
  // port number `port` (kHostPort, or 1 + stage index: a
  // frame from port a to port b, both workers, is "forward" when b > a).
  // REQUIRES: CAP_NET_ADMIN; Start() not yet called.
  Status AddPort(int port, const std::string& name);

  // Starts forwarding.
  Status Start();

  // What later frames between worker ports get: the condition's delay,
  // jitter and loss (rate is shaped by the kernel on each interface).
  void SetCondition(const NetCondition& condition);

  struct Counters {
    int64_t frames_forwarded = 0;
    int64_t frames_delayed = 0;
    int64_t frames_lost = 0;     // Dropped by the loss rate.
    int64_t frames_dropped = 0;  // An interface could not take them (gone or full).
  };
  Counters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace paretopipe
