// A network condition to emulate on the links between pipeline stages: the
// delay added in each direction, its jitter, packet loss and a rate limit.
// `sweep --net` and `netem apply` both parse it.
//
// Owns: the text form of a condition and its units. Must not touch: how a
// condition is applied (netem/shaper.h) or measured (transport/link_probe.h).
// Thread safety: plain values and pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "util/status.h"

namespace paretopipe {

struct NetCondition {
  std::chrono::microseconds delay{0};   // Added in each direction of a link.
  std::chrono::microseconds jitter{0};  // Uniform in [-jitter, +jitter] around the delay.
  double loss_percent = 0;              // Of packets, in each direction.
  int64_t rate_bits_per_s = 0;          // 0: unlimited.
  int64_t burst_bytes = 0;              // Token bucket depth; 0: chosen from the rate.
  // Only towards later stages (the direction of the activations), as netem
  // on one interface would; credits and acknowledgements go back undelayed.
  bool forward_only = false;

  bool none() const {
    return delay.count() == 0 && jitter.count() == 0 && loss_percent == 0 && rate_bits_per_s == 0;
  }
  bool has_delay() const { return delay.count() > 0 || jitter.count() > 0 || loss_percent > 0; }
};

// Parses "none" or comma-separated key=value pairs: delay=200ms, jitter=10ms,
// loss=0.5%, rate=5mbit, burst=32kbit, dir=forward|both. Times take us, ms or
// s; rates bit, kbit, mbit or gbit (tc's "mbps" means megabytes per second,
// so *bps is refused as ambiguous); sizes b, kb, mb, kbit or mbit.
Result<NetCondition> ParseNetCondition(const std::string& text);

// The canonical text of `condition` ("none", "delay=200ms,rate=5mbit"):
// ParseNetCondition(FormatNetCondition(c)) == c, and equal conditions give
// equal text, so runs can be grouped by it.
std::string FormatNetCondition(const NetCondition& condition);

// tc's forms: "200ms", "5mbit", "4096b".
std::string TcTime(std::chrono::microseconds t);
std::string TcRate(int64_t bits_per_s);

// The token bucket depth used for `condition`: its burst, or when 0 the
// larger of 1/100 s at the rate and `min_bytes` (one packet must fit, or
// tbf and htb drop it).
int64_t EffectiveBurstBytes(const NetCondition& condition, int64_t min_bytes);

}  // namespace paretopipe
