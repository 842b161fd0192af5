// The orchestrator's side of one worker's control channel.
//
// Owns: the control conversation with one worker (requests, replies, the
// weights upload, the clock exchange). Must not touch: the store, what a
// sweep is.
// Thread safety: one thread at a time per client, except Interrupt(), which
// any thread may call; not copyable.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "metrics/machine.h"
#include "metrics/run_record.h"
#include "model/zoo.h"
#include "runtime/stage.h"
#include "transport/link_probe.h"
#include "transport/socket.h"
#include "util/status.h"

namespace paretopipe {

struct InputSet;

// A worker's answer to "info".
struct WorkerInfo {
  MachineInfo machine;
  int threads = 0;          // Intra-op threads.
  std::string device;       // "cpu" or "cuda:N": where its stages compute (--device).
  std::string device_name;  // The GPU's name; empty for the CPU.
  std::map<std::string, uint16_t> backend_ports;  // Backend name -> port (0: none fixed).
};

class WorkerClient {
 public:
  // Connects to the worker at `endpoint` (retrying refused connections until
  // `timeout`: a local worker may still be starting) and says hello. With a
  // `secret` (the worker's --token-file), both sides prove they hold it
  // (control/handshake.h), on this and every later session; a worker that
  // refuses, or has no secret, fails the call with InvalidArgument.
  static Result<std::unique_ptr<WorkerClient>> Connect(const Endpoint& endpoint,
                                                       std::chrono::milliseconds timeout,
                                                       const std::string& secret = "");

  const Endpoint& endpoint() const { return endpoint_; }

  // How long the worker may stay silent while it works on a request (it
  // sends a heartbeat every second, docs/protocol.md) before a reply counts
  // as lost: the worker is dead, hung or cut off. Default 10 s.
  void set_heartbeat_timeout(std::chrono::milliseconds timeout) { heartbeat_timeout_ = timeout; }

  // What the worker says of itself: its machine, threads, device and the
  // port of each backend it offers. InvalidArgument when it speaks another
  // protocol version or a field is missing or of the wrong type.
  Result<WorkerInfo> Info();

  // Makes the worker time messages of each of `sizes` bytes to `target`
  // (transport/link_probe.h ProbeMessageSizes; within a minute in all).
  Result<MessageSizeProbe> ProbeMessageSizes(const Endpoint& target,
                                             const std::vector<int64_t>& sizes, int repeats,
                                             int burst);

  // `paretopipe linkprobe --backend`: a run of links only between two
  // workers (docs/protocol.md, "probe_backend"). BeginBackendProbe makes this
  // worker stage `stage` (0: the prober, 1: the echo) of run `run_id` on
  // `backend`, `self` its own address and `peer` the other end's address for
  // that backend (empty for torch); it ends the worker's current run, like
  // Configure. Then OpenLinks on both (stage 0 first), StartBackendEcho on
  // stage 1, ProbeBackendSizes on stage 0 (the round trips, as
  // ProbeMessageSizes's), FinishBackendEcho on stage 1 and EndRun on both.
  Status BeginBackendProbe(const std::string& backend, int64_t run_id, int stage,
                           const std::string& self, const std::string& peer);
  Status StartBackendEcho(int64_t messages);
  Status FinishBackendEcho();
  Result<MessageSizeProbe> ProbeBackendSizes(const std::vector<int64_t>& sizes, int repeats,
                                             int burst);

  // Makes the worker measure the network to `target` (the next stage's
  // control endpoint): round trip and bandwidth (transport/link_probe.h),
  // the bulk transfer lasting at least `min_bulk` (0: the probe's default).
  Result<LinkMeasurement> ProbeLink(const Endpoint& target,
                                    std::chrono::milliseconds min_bulk = {});

  // Makes the worker time every block of the zoo model `model` on its own
  // device and intra-op threads (profile/profiler.h RunProfile): `warmup`
  // untimed passes, then `repeat` timed ones, at `batch` and a square input
  // of `input_side_px` (0: the model's nominal size). model.weights_path is
  // not sent: a block's time does not depend on the weights' values. Returns
  // the profile's JSON text (docs/profile-format.md; analysis/device_profile.h
  // reads it). InvalidArgument, naming the worker and the field, when the
  // worker refuses the request (a TorchScript file, which it does not have;
  // a value out of range: docs/protocol.md); NotFound for a model not in the
  // zoo. Waits up to 10 minutes (a big model on a Pi); a dead worker fails it
  // within the heartbeat timeout. Ends the worker's current run, like Configure.
  Result<std::string> Profile(const ModelSpec& model, int64_t batch, int64_t input_side_px,
                              int repeat, int warmup);

  // `samples` clock exchanges; the minimum-RTT one gives the offset.
  Result<ClockOffset> SyncClock(int samples);

  // Configures the worker's stage for a run. When the worker has no local
  // copy of the weights (config.weights_digest), sends it the tensors of its
  // blocks only, read from `weights_path`. When it has no input set with
  // config.input_digest, sends it `inputs` (which must be that set). When it
  // has no TorchScript segment with config.module_digest, sends it `module`
  // (ScriptSegment::Serialize bytes with that digest).
  Status Configure(const StageConfig& config, const std::string& weights_path,
                   const InputSet* inputs = nullptr, const std::string* module = nullptr);

  // Makes the worker open its links to the next stage (and the sink's to the
  // source). Call on every stage after all are configured, stage 0 first:
  // with the torch backend its reply is the rendezvous port (else 0), which
  // the others get as `rendezvous` ("host:port").
  Result<uint16_t> OpenLinks(const std::string& rendezvous);

  // Wakes a FinishPass blocked in another thread (it fails); the worker sees
  // the session end and cancels its pass. Safe from any thread.
  void Interrupt();

  // Starts a measurement pass; FinishPass waits for its trace.
  Status StartPass(int repeat);
  // Waits until `deadline` for the pass started last. Fills `outputs` with
  // what the sink kept, when asked for (may be null).
  Result<StageTrace> FinishPass(std::vector<KeptOutput>* outputs, Deadline deadline);

  // Gives up the current session (e.g. a pass that will never be read):
  // the worker cancels what it was doing for it. The next request opens a
  // new session, so requests and replies never get out of step.
  void Abandon();

  // Ends the run on the worker (drops its links; keeps its segment). After a
  // lost session there is nothing to do: the worker ended the run then.
  Status EndRun();

 private:
  WorkerClient(Endpoint endpoint, Socket socket, std::string secret);
  // Connects, says hello (authenticated with `secret` when not empty) and
  // checks the worker serves us (not busy with another orchestrator),
  // retrying "busy" until `deadline`.
  static Result<Socket> OpenSession(const Endpoint& endpoint, const std::string& secret,
                                    Deadline deadline);
  Status Send(const std::string& request_json, Deadline deadline);
  Result<std::string> ReadReply(Deadline deadline);
  Result<std::string> Call(const std::string& request_json, Deadline deadline);
  Status UploadWeights(const StageConfig& config, const std::string& weights_path);
  Status UploadInputs(const StageConfig& config, const InputSet* inputs);
  Status UploadModule(const StageConfig& config, const std::string* module);
  Result<StageTrace> ReadTrace(const nlohmann::json& reply, std::vector<KeptOutput>* outputs);

  Endpoint endpoint_;
  Socket socket_;
  const std::string secret_;  // For the sessions reopened after a lost one.
  std::string label_;    // "worker H:P", for messages.
  bool broken_ = false;  // The session was abandoned; reopen before the next request.
  std::chrono::milliseconds heartbeat_timeout_{10000};
  std::atomic<bool> interrupted_{false};  // Interrupt() shut the session down.
  // Orders Interrupt() against closing or replacing socket_ (the owning
  // thread's reads and writes need no lock: Shutdown is safe beside them).
  std::mutex socket_mu_;
};

}  // namespace paretopipe
