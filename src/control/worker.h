// The worker daemon: `paretopipe worker`. It listens on one TCP port (and a
// gRPC port for the grpc backend; control/stage_transport.h); every
// connection to the TCP port opens with a hello frame naming its role:
//  - control: an orchestrator configures a stage, runs passes and reads the
//    traces (one orchestrator at a time; docs/protocol.md);
//  - data: the previous stage's activations for the current run;
//  - credit: the sink's credits, when this worker is the source;
//  - probe: the previous stage measuring the link.
// With a shared secret, each hello is followed by a challenge-response
// (control/handshake.h) before anything is served.
// It reconfigures between runs without restarting, keeps the last segment it
// built, and serves until Stop(). A connection that sends anything malformed
// is closed with a logged reason; the worker goes on serving.
//
// Owns: accepting connections, the control session, building stages.
// Must not touch: the store, sweeps, analysis.
// Thread safety: Serve() runs on one thread; Stop() may be called from any.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

struct WorkerOptions {
  Endpoint listen{"127.0.0.1", 7000};
  // The gRPC backend's server, on the listen address (0: any free port).
  uint16_t grpc_port = 0;
  int threads = 0;                         // Intra-op threads; 0: all available CPUs.
  // Where this worker's stages compute: "cpu", "cuda" or "cuda:N" (a GPU
  // needs a build against a CUDA LibTorch; runtime/stage_device.h).
  std::string device = "cpu";
  std::vector<std::string> weights_files;  // Local weights, used when their SHA-256 matches.
  // Accept TorchScript segments from the orchestrator. A TorchScript module is
  // code (it can call any operator, e.g. write files), so a worker runs one
  // only when whoever started it said so.
  bool allow_remote_models = false;
  // The shared secret (`--token-file`); empty: none. With one, every
  // connection to the TCP port and every gRPC link must prove it holds the
  // same secret (control/handshake.h), and torch runs are refused (c10d
  // cannot authenticate its peers). Without one the worker listens on
  // loopback only: Create refuses another address.
  std::string secret;
  // PEM text: with a certificate and key the gRPC server speaks TLS; with a
  // CA this worker's gRPC links to the next stage use TLS and verify the
  // next worker's certificate against it. Empty: plaintext.
  std::string tls_cert_pem, tls_key_pem, tls_ca_pem;
  // With a secret, accept torch runs all the same: their c10d store and
  // Gloo connections accept any peer for the run's duration. For workers on
  // a machine (or network) trusted anyway, e.g. a local sweep's own.
  bool allow_unauthenticated_torch = false;
  // How long a new connection may take to say who it is. Short: a stranger
  // holding a connection open must not block anyone.
  std::chrono::milliseconds hello_timeout{5000};
  // How long a pass waits for its incoming connections after it is started.
  std::chrono::milliseconds link_timeout{10000};
  // While a request is in progress the worker sends a heartbeat this often,
  // so its orchestrator tells "busy" from "dead or hung" (its
  // --heartbeat-timeout, 10 s by default, is ten of these).
  std::chrono::milliseconds heartbeat_interval{1000};
  // A control session that sends nothing for this long is closed, freeing
  // the worker for another orchestrator (one whose machine vanished is
  // noticed sooner, by TCP keepalive, within about 25 s).
  std::chrono::milliseconds idle_session_timeout{std::chrono::hours(1)};
};

class Worker {
 public:
  // Configures compute for `options.threads`, opens `options.device`
  // (Unavailable when this build or machine has no such device), hashes the local weights files
  // and binds the listening socket (port 0 picks a free port).
  // InvalidArgument when `options.listen` is not a loopback address and
  // there is no secret.
  static Result<std::unique_ptr<Worker>> Create(const WorkerOptions& options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The bound address, with the real port.
  const Endpoint& endpoint() const;

  // Accepts and serves connections until Stop(). Returns OK after Stop().
  Status Serve();

  // Stops Serve() and every session; returns at once.
  void Stop();

 private:
  struct Impl;
  explicit Worker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace paretopipe
