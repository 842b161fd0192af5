// The worker daemon: `paretopipe worker`. It listens on one TCP port (and a
// gRPC port for the grpc backend; control/stage_transport.h); every
// connection to the TCP port opens with a hello frame naming its role:
//  - control: an orchestrator configures a stage, runs passes and reads the
//    traces (one orchestrator at a time; docs/protocol.md);
//  - data: the previous stage's activations for the current run;
//  - credit: the sink's credits, when this worker is the source.
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
  std::vector<std::string> weights_files;  // Local weights, used when their SHA-256 matches.
  // Accept TorchScript segments from the orchestrator. A TorchScript module is
  // code (it can call any operator, e.g. write files), so a worker runs one
  // only when whoever started it said so.
  bool allow_remote_models = false;
  // How long a new connection may take to say who it is. Short: a stranger
  // holding a connection open must not block anyone.
  std::chrono::milliseconds hello_timeout{5000};
  // How long a pass waits for its incoming connections after it is started.
  std::chrono::milliseconds link_timeout{10000};
};

class Worker {
 public:
  // Configures compute for `options.threads`, hashes the local weights files
  // and binds the listening socket (port 0 picks a free port).
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
