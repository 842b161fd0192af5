// Measures the network between two stages, just before a run: the round
// trip by small ping-pong messages, and the bandwidth by a short bulk
// transfer, both over a fresh TCP connection between the two workers (the
// path their activations take). Runs record the result as the condition
// achieved, beside the condition asked for (docs/metrics.md, "Link probe").
//
// `paretopipe linkprobe --backend grpc|torch` times the same message sizes
// through a backend's own Links instead (ProbeLinkMessageSizes,
// EchoLinkProbe): a frame forward on a data link, a credit back on a credit
// link, as a 2-stage pipeline's sink returns it.
//
// Owns: the probe's exchange on one connection or one pair of links, both
// ends. Must not touch: how conditions are applied, how links are made.
// Thread safety: functions on the caller's socket or links; one probe at a
// time on each.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "transport/link.h"
#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

struct LinkProbeOptions {
  int pings = 10;  // Timed round trips, after 2 untimed ones.
  // The bulk transfer runs for `rtt_multiple` round trips (TCP reaches the
  // link's rate after a few), within [bulk_min, bulk_max].
  int rtt_multiple = 8;
  std::chrono::milliseconds bulk_min{500};
  std::chrono::milliseconds bulk_max{5000};
  // A ping unanswered for this long fails the probe at once: the peer is
  // dead or hung (no link worth a pipeline has a 10 s round trip).
  std::chrono::milliseconds peer_silence{10000};
};

struct LinkProbeResult {
  int pings = 0;
  double rtt_ms_min = 0, rtt_ms_median = 0, rtt_ms_max = 0;
  // Payload bits per second over the second half of the transfer (the first
  // half includes TCP's slow start), as the receiver's clock saw them.
  double bandwidth_mbit = 0;
  int64_t bulk_bytes = 0;  // Received in all.
  double bulk_s = 0;       // From the receiver's first byte to its last.
};

// The sending end: pings, then the bulk transfer. `socket` is connected to a
// peer in ServeLinkProbe; afterwards, closing it resets the connection.
// Unavailable when the peer stops answering by `deadline`.
Result<LinkProbeResult> ProbeLink(Socket& socket, const LinkProbeOptions& options,
                                  Deadline deadline);

// Round trips of messages of several sizes (`paretopipe linkprobe`, which
// fits a link model to them: analysis/link_model.h).
struct MessageSizeProbe {
  // One per timed message: its size and the time from sending its first byte
  // until the peer's 2-byte acknowledgement of its last arrived.
  std::vector<int64_t> bytes;
  std::vector<double> rtt_ms;
  // `burst` 64-byte pings sent back to back, then their echoes read: the
  // time from the first send to the last echo, less one ping's round trip,
  // per ping after the first. The link's fixed cost per message when the
  // delay overlaps (what a pipeline's stream of messages pays).
  double burst_ms_per_message = 0;
};

// The sending end of a size sweep, to a peer in ServeLinkProbe: for each of
// `sizes` (bytes, 1 B to 64 MiB) one untimed then `repeats` timed messages,
// then the burst. Unavailable when the peer stops answering by `deadline`.
Result<MessageSizeProbe> ProbeMessageSizes(Socket& socket, const std::vector<int64_t>& sizes,
                                           int repeats, int burst, Deadline deadline);

// The receiving end: echoes pings, acknowledges sized messages, times the
// bulk bytes, replies with what it received. Returns when the prober is done
// (it closes the connection) or `deadline` passes.
Status ServeLinkProbe(Socket& socket, Deadline deadline);

// The size sweep of ProbeMessageSizes through a backend's links: each
// message is one activation frame of uint8 [size] sent on `out`, and its
// acknowledgement the credit frame of the same batch id on `credits_in`,
// from a peer in EchoLinkProbe; the rtt is from the start of the send to the
// credit's arrival. Then `burst` 64-byte frames back to back while another
// thread reads their credits (as a pipeline's source does), for
// burst_ms_per_message. Sizes 1 B to 64 MiB; the peer must expect
// LinkProbeMessages(sizes.size(), repeats, burst) frames. InvalidArgument
// for a bad argument or an unexpected credit; the link's error (Unavailable
// at `deadline`) otherwise.
Result<MessageSizeProbe> ProbeLinkMessageSizes(Link& out, Link& credits_in,
                                               const std::vector<int64_t>& sizes, int repeats,
                                               int burst, Deadline deadline);

// The frames ProbeLinkMessageSizes sends for `sizes` sizes.
int64_t LinkProbeMessages(int64_t sizes, int repeats, int burst);

// The receiving end: receives `messages` activation frames (batch ids 0, 1,
// ...; payloads up to 64 MiB) from `in`, and on each one's last byte sends
// its credit on `credits_out`. Returns once all are answered; the first
// error (a link's, Unavailable at `deadline`, InvalidArgument for an
// unexpected frame) otherwise.
Status EchoLinkProbe(Link& in, Link& credits_out, int64_t messages, Deadline deadline);

}  // namespace paretopipe
