// The torch backend: frames between pipeline stages as point-to-point
// messages of a c10d ProcessGroupGloo, the way a PyTorch pipeline passes
// activations with torch.distributed send/recv. One GlooGroup per run holds
// the process group (world size = number of stages, rank = stage index); its
// links carry frames one way between two ranks, each on its own tag.
//
// A frame is two Gloo messages on the link's tag: the 128-byte encoded
// FrameHeader, then, when payload_bytes > 0, the payload, sent from and
// received into the caller's memory (no copy either way). Gloo moves a
// message only once the receiver has posted the matching receive, so Send
// blocks until the next stage asks for the frame (WaitForFrame, then
// ReceivePayload).
//
// Gloo's failure model shapes the contracts below. A wait that times out
// closes every connection of the group (its own and, through them, the
// peers'); a peer process that exits is noticed at once ("connection closed
// by peer"), though a send that races that notice waits out its deadline.
// Afterwards every operation of the group fails. So a link that failed stays
// failed (each later call returns the first error), and a run whose link
// failed must destroy the group and make a new one. The same holds after
// Shutdown(): Gloo keeps the aborted receive's place, and a frame that then
// arrives for it stalls the connection to that peer, with Gloo's device
// thread spinning, until the group is destroyed. Gloo also terminates the
// process when a message is larger than the receive posted for it; the links
// never post a receive that disagrees with the frame header, which is why
// ReceivePayload insists on the announced size.
//
// This header includes no LibTorch header, so torch-free code can use it.
// Thread safety: Create, Join, MakeLink and the destructor from one thread;
// each link as Link says (one sending or receiving thread, Shutdown from any).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "transport/link.h"
#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

class GlooGroup {
 public:
  struct Options {
    int rank = 0;
    int world_size = 1;
    // The TCPStore used to rendezvous: rank 0's address as the peers reach it.
    std::string store_host;
    // 0 at rank 0: the store server picks a free port (see store_port()).
    // Required at the other ranks.
    uint16_t store_port = 0;
    // Key prefix in the store, unique per run (e.g. "run/17").
    std::string prefix;
    // Address this process's Gloo device binds and advertises to its peers.
    std::string bind_host;
    // Cap on each rendezvous wait (store connect, key exchange, Gloo connect);
    // Join also ends at its deadline, whichever comes first.
    std::chrono::milliseconds timeout{60000};
  };

  // Checks `options`; at rank 0 also starts the store server. Returns
  // InvalidArgument for inconsistent options, Unavailable when the store
  // server cannot start. The group does not exist until Join().
  // Sets SIGPIPE to be ignored, unless the process has its own handler: Gloo
  // writes without MSG_NOSIGNAL, and a peer that vanished must fail a send,
  // not kill the process.
  static Result<std::unique_ptr<GlooGroup>> Create(Options options);

  // Destroys the process group, then (rank 0) the store server. Does not block
  // on peers, dead or alive. REQUIRES: the group's links are destroyed or no
  // longer used.
  ~GlooGroup();
  GlooGroup(const GlooGroup&) = delete;
  GlooGroup& operator=(const GlooGroup&) = delete;

  // The port the store listens on: at rank 0 the one the server picked.
  uint16_t store_port() const;

  // Rendezvous: connects to the store (retrying while it refuses: rank 0 may
  // still be starting) and makes the process group, blocking until every
  // rank has joined. Unavailable, naming the rank and store, when
  // that does not happen before `deadline` (or Options::timeout). After a
  // failure, destroy the group: its store keys are half written.
  Status Join(Deadline deadline);

  // A link to `peer_rank` that sends (or receives) frames on `tag`. Each
  // direction between two ranks needs its own tag (data forward on one,
  // credits back on another); two links on the same peer and tag would take
  // each other's messages. `peer_label` names the peer in messages.
  // REQUIRES: Join() succeeded; 0 <= peer_rank < world_size, peer_rank != rank;
  // tag >= 0. The group must outlive its links.
  std::unique_ptr<Link> MakeLink(int peer_rank, int tag, bool sending, std::string peer_label);

 private:
  struct Impl;  // The c10d objects, out of this header so it needs no LibTorch.
  explicit GlooGroup(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace paretopipe
