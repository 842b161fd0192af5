// A LinkModel predicts how long one message of a given size takes from one
// device to the next: a fixed per-message overhead, serialization at a rate,
// and a one-way propagation delay (docs/planner.md, "The link model"). The
// planner (analysis/planner.h) reads one per ordered pair of devices.
//
// Owns: the model, its text form (`rtt=40ms,rate=20mbit,overhead=0.2ms`) and
// its file form (link.json, written by `linkprobe`). Must not touch: how a
// link is shaped (netem/) or measured (transport/link_probe.h).
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

struct LinkModel {
  double overhead_ms = 0;      // Per message, whatever its size.
  double rate_bits_per_s = 0;  // Serialization rate; 0: unlimited.
  double delay_ms = 0;         // One way; half the round trip of a symmetric link.

  // How long the link is busy with a message of `bytes`: overhead_ms +
  // bytes * 8 / rate_bits_per_s * 1000 (the second term is 0 when the rate is
  // unlimited). The delay is not included: it overlaps the next message.
  double TransferMs(int64_t bytes) const;

  // From the first byte sent to the last byte received: TransferMs(bytes) + delay_ms.
  double TimeMs(int64_t bytes) const { return TransferMs(bytes) + delay_ms; }

  bool operator==(const LinkModel& other) const;
};

// Parses "none" (no cost at all) or comma-separated key=value pairs:
// rtt=40ms (the delay is half of it) or delay=20ms (one way; not both),
// rate=20mbit or rate=unlimited (the default), overhead=0.2ms (default 0).
// Times and rates take the units of `--net` (netem/condition.h, whose parser
// reads them): us, ms, s; bit, kbit, mbit, gbit.
// Returns InvalidArgument naming the offending key=value otherwise.
Result<LinkModel> ParseLinkSpec(const std::string& spec);

// Reads a link file: a JSON object {"format": "paretopipe.link", "version": 1,
// "overhead_ms", "rate_bits_per_s" (0: unlimited), "delay_ms", "fit": {...}}
// (docs/planner.md). `fit` and unknown keys are ignored; the three numbers
// are required, finite and non-negative. `source` names the text in errors.
Result<LinkModel> ParseLinkFile(const std::string& text, const std::string& source);

// ParseLinkFile of the file at `path`; IoError when it cannot be read.
Result<LinkModel> ReadLinkFile(const std::string& path);

// A link model fitted to measured round trips (`paretopipe linkprobe`):
// messages of several sizes each acknowledged by a tiny reply, so
//   rtt(bytes) = 2 * (overhead + delay) + bytes * 8 / rate * 1000
// (the message's overhead, serialization and delay, then the reply's
// overhead and delay). A weighted least-squares line through the median rtt
// of each size (weights 1 / rtt^2: relative errors count alike for 100 B
// and 10 MB) gives the rate from its slope (unlimited when the slope is not
// positive) and overhead + delay from its intercept; `overhead_ms` (the
// per-message cost of back-to-back messages, measured apart) splits them:
// delay = intercept / 2 - overhead, at least 0.
struct LinkFit {
  LinkModel model;
  int sizes = 0;    // Distinct sizes, each a median of its samples.
  int samples = 0;  // Round trips in all.
  double intercept_ms = 0, slope_ms_per_mbyte = 0;
  // Of the medians against the line: root mean square (ms) and the largest
  // |residual| / median.
  double rms_residual_ms = 0, max_relative_residual = 0;
};

// Fits `rtt_ms[i]` of messages of `bytes[i]`. InvalidArgument with fewer
// than two distinct sizes, mismatched lengths, or a negative or non-finite
// number.
Result<LinkFit> FitLinkModel(const std::vector<int64_t>& bytes, const std::vector<double>& rtt_ms,
                             double overhead_ms);

// The link file (docs/planner.md, "Link files") of `fit`, with `measured`
// (e.g. "pi:7001 -> server:7001 over tcp") and the `backend` whose frames
// were timed ("tcp", "grpc", "torch") in its "fit" object.
std::string LinkFileText(const LinkFit& fit, const std::string& measured,
                         const std::string& backend = "tcp");

// "rtt=40ms,rate=20mbit,overhead=0.2ms"-like text for tables: the delay as
// rtt, "none" for a link without cost. Display only: rounded to 4 digits.
std::string DescribeLinkModel(const LinkModel& link);

}  // namespace paretopipe
