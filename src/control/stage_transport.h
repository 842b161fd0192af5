// How a worker makes the links of its stage for one run, one implementation
// per communication backend:
//  - tcp: our framing over TCP; connections arrive at the worker's own port
//    with a hello naming their role (docs/protocol.md);
//  - grpc: a client stream per link to the next worker's gRPC server;
//  - torch: c10d ProcessGroupGloo point-to-point send/recv, one process group
//    per run (rank = stage), rendezvous through a TCPStore that stage 0 hosts.
//    Neither the store nor Gloo's pairs authenticate their peers, so a
//    worker with a shared secret refuses torch runs (Admit).
// grpc and torch are optional: a build whose CMake found no gRPC, or no
// usable c10d Gloo in LibTorch, leaves them out (cmake/OptionalFeatures.cmake),
// and this file is the one place that knows which are built.
// The stage loop (runtime/stage.h) sees only the Links these make, so every
// backend gets the same flow control, metrics and error handling.
//
// Owns: opening, accepting and dropping one run's links. Must not touch: the
// stage loop, models, the control protocol's messages.
// Thread safety: Deliver() may be called from any thread; the rest from the
// worker's control session thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/stage.h"
#include "transport/link.h"
#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

// The backends this build has, so those a worker offers, in the order
// `paretopipe sweep --backend` lists them.
const std::vector<std::string>& BackendNames();

// OK when `name` is one of BackendNames(). Else InvalidArgument, one line:
// "unknown backend 'x' (known: ...)", or, for a backend this build left out,
// "backend 'grpc' is not in this build: " and what to install.
Status CheckBackend(const std::string& name);

class StageTransport {
 public:
  virtual ~StageTransport() = default;

  virtual const char* name() const = 0;
  // The port peers reach this backend on (tcp: the worker's own); 0 for
  // torch, whose rendezvous port is chosen per run (Connect).
  virtual uint16_t port() const = 0;

  // Whether this backend may carry `config`'s run on this worker: OK, or
  // why not (before anything of the run is built).
  virtual Status Admit(const StageConfig& /*config*/) const { return Status::Ok(); }

  // A new run: forgets the last run's links and accepts only `config`'s.
  virtual void BeginRun(const StageConfig& config) = 0;

  // Opens the links this stage starts: to the next stage, and at the sink to
  // the source. For torch, joins the run's process group in the background;
  // at stage 0 it first starts the rendezvous store and returns its port
  // (`*rendezvous_port`, else 0), which the other stages get as
  // `rendezvous` ("host:port"); its join then has the worker's whole
  // connect timeout, not `deadline`, because it ends only when the last
  // stage has connected.
  virtual Status Connect(const std::string& rendezvous, Deadline deadline,
                         uint16_t* rendezvous_port) = 0;

  // Waits until `deadline` for the links the other stages start and fills
  // `links` with all of this stage's links. They stay valid until EndRun()
  // or the next BeginRun().
  virtual Status TakeLinks(Deadline deadline, StageLinks* links) = 0;

  // Drops the run's links.
  virtual void EndRun() = 0;

  // The worker is stopping: wakes a waiting TakeLinks; later ones fail.
  // Safe from any thread.
  virtual void Stop() = 0;
};

// A link that arrived for `run_id` in `role` ("data" or "credit"): kept for
// TakeLinks when it belongs to the current run, else dropped with a log line.
// Implemented by the tcp and grpc transports.
class AcceptingTransport : public StageTransport {
 public:
  virtual void Deliver(const std::string& role, int64_t run_id, std::unique_ptr<Link> link) = 0;
};

struct TransportOptions {
  std::string worker_name;  // For log lines: the worker's endpoint.
  uint16_t tcp_port = 0;    // The worker's own listening port.
  Endpoint grpc_listen;     // Where the gRPC server listens (port 0: any).
  std::chrono::milliseconds connect_timeout{10000};
  // The worker's shared secret (empty: none): tcp and grpc links prove it,
  // both ways, within `auth_timeout`; torch runs are refused (Admit).
  std::string secret;
  std::chrono::milliseconds auth_timeout{5000};
  // PEM text: the gRPC server's certificate and key (TLS when set), and the
  // CA the next stage's gRPC server is verified against (TLS when set).
  std::string tls_cert_pem, tls_key_pem, tls_ca_pem;
  bool allow_unauthenticated_torch = false;  // Admit torch runs despite a secret.
};

// Every built backend's transport, in BackendNames() order; the grpc one
// starts its server. `*tcp` is the tcp one, which takes the data and credit
// connections the worker's own listener accepts (Deliver). InvalidArgument
// for TLS options in a build without the grpc backend, whose links they are.
Result<std::vector<std::unique_ptr<StageTransport>>> MakeStageTransports(
    const TransportOptions& options, AcceptingTransport** tcp);

}  // namespace paretopipe
