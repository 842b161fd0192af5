// The tcp, grpc and torch transports of a worker's stage. grpc and torch
// only when CMake built them (PARETOPIPE_HAVE_GRPC,
// PARETOPIPE_HAVE_TORCH_BACKEND: src/CMakeLists.txt defines both, 0 or 1).
#include "control/stage_transport.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "control/handshake.h"
#include "control/protocol.h"

#if !defined(PARETOPIPE_HAVE_GRPC) || !defined(PARETOPIPE_HAVE_TORCH_BACKEND)
#error "PARETOPIPE_HAVE_GRPC and PARETOPIPE_HAVE_TORCH_BACKEND come from src/CMakeLists.txt"
#endif
#if PARETOPIPE_HAVE_GRPC
#include "transport/grpc_link.h"
#endif
#if PARETOPIPE_HAVE_TORCH_BACKEND
#include "transport/gloo_link.h"
#endif

namespace paretopipe {
namespace {

// Every backend ParetoPipe has, in `paretopipe sweep --backend` order, and
// whether this build has it.
struct Backend {
  const char* name;
  bool built;
  const char* missing;  // Why not built: the rest of CheckBackend's message.
};
constexpr Backend kBackends[] = {
    {"tcp", true, ""},
    {"grpc", PARETOPIPE_HAVE_GRPC != 0,
     "CMake found no gRPC when it was configured (install libgrpc++-dev and "
     "protobuf-compiler-grpc, then reconfigure)"},
    {"torch", PARETOPIPE_HAVE_TORCH_BACKEND != 0,
     "CMake found no usable c10d ProcessGroupGloo in LibTorch when it was configured, or "
     "PARETOPIPE_TORCH_BACKEND was OFF (the configure output says which; on Debian, install "
     "libgloo-dev, then reconfigure)"},
};

// The links a stage needs, by position.
bool NeedsIn(const StageConfig& c) { return c.stage > 0; }
bool NeedsOut(const StageConfig& c) { return c.stage < c.stages - 1; }
bool NeedsCreditsIn(const StageConfig& c) { return c.stage == 0 && c.stages > 1; }
bool NeedsCreditsOut(const StageConfig& c) { return c.stage == c.stages - 1 && c.stages > 1; }

// The links of one run, owned.
struct OwnedLinks {
  std::unique_ptr<Link> in, out, credits_in, credits_out;

  void Fill(StageLinks* links) const {
    links->in = in.get();
    links->out = out.get();
    links->credits_in = credits_in.get();
    links->credits_out = credits_out.get();
  }
};

// Backends whose links the other stages open to this worker: incoming links
// are delivered (by the worker's listener or the gRPC server) into an inbox
// keyed by role; outgoing ones are opened by Open().
class InboxTransport : public AcceptingTransport {
 public:
  explicit InboxTransport(const TransportOptions& options) : options_(options) {}

  void BeginRun(const StageConfig& config) override {
    EndRun();
    std::lock_guard<std::mutex> lock(mu_);
    config_ = config;
    run_id_ = config.run_id;
  }

  void Deliver(const std::string& role, int64_t run_id, std::unique_ptr<Link> link) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (run_id != run_id_ || run_id_ < 0 || (role != kRoleData && role != kRoleCredit)) {
      spdlog::warn("worker {}: {} {} link from {} for run {} closed: the current run is {}",
                   options_.worker_name, name(), role, link->peer(), run_id, run_id_);
      return;
    }
    inbox_[role] = std::move(link);
    cv_.notify_all();
  }

  Status Connect(const std::string& /*rendezvous*/, Deadline deadline,
                 uint16_t* rendezvous_port) override {
    *rendezvous_port = 0;
    auto open = [&](const std::string& endpoint, const char* role, const char* whom,
                    std::unique_ptr<Link>* into) -> Status {
      Result<std::unique_ptr<Link>> link = Open(endpoint, role, deadline);
      if (!link.ok()) {
        return link.status().WithContext(fmt::format("{} connect to {} {}", name(), whom, endpoint));
      }
      *into = std::move(link).value();
      return Status::Ok();
    };
    if (NeedsOut(config_))
      PP_RETURN_IF_ERROR(open(config_.next, kRoleData, "the next stage", &links_.out));
    if (NeedsCreditsOut(config_))
      PP_RETURN_IF_ERROR(open(config_.source, kRoleCredit, "the source", &links_.credits_out));
    return Status::Ok();
  }

  Status TakeLinks(Deadline deadline, StageLinks* links) override {
    std::unique_lock<std::mutex> lock(mu_);
    auto take = [&](const char* role, std::unique_ptr<Link>* into) -> Status {
      if (*into) return Status::Ok();  // A later pass of the same run.
      if (!cv_.wait_until(lock, deadline, [&] { return inbox_.count(role) > 0 || stopping_; }) ||
          stopping_) {
        return Status::Unavailable(fmt::format("stage {}: no {} {} link arrived in time",
                                               config_.stage + 1, name(), role));
      }
      *into = std::move(inbox_[role]);
      inbox_.erase(role);
      return Status::Ok();
    };
    if (NeedsIn(config_)) PP_RETURN_IF_ERROR(take(kRoleData, &links_.in));
    if (NeedsCreditsIn(config_)) PP_RETURN_IF_ERROR(take(kRoleCredit, &links_.credits_in));
    links_.Fill(links);
    return Status::Ok();
  }

  void EndRun() override {
    OwnedLinks dropped = std::move(links_);
    links_ = OwnedLinks();
    std::map<std::string, std::unique_ptr<Link>> unclaimed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      run_id_ = -1;
      unclaimed.swap(inbox_);
    }
  }

  void Stop() override {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }

 protected:
  // Opens this stage's link in `role` to `endpoint` ("host:port").
  virtual Result<std::unique_ptr<Link>> Open(const std::string& endpoint, const char* role,
                                             Deadline deadline) = 0;

  const TransportOptions options_;
  StageConfig config_;  // The session thread's; Deliver reads run_id_ only.

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t run_id_ = -1;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<Link>> inbox_;  // Role -> link, for run_id_.
  OwnedLinks links_;
};

class TcpTransport : public InboxTransport {
 public:
  using InboxTransport::InboxTransport;
  const char* name() const override { return "tcp"; }
  uint16_t port() const override { return options_.tcp_port; }

 protected:
  Result<std::unique_ptr<Link>> Open(const std::string& endpoint, const char* role,
                                     Deadline deadline) override {
    PP_ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(endpoint));
    PP_ASSIGN_OR_RETURN(Socket socket, ConnectTcp(e, deadline));
    PP_RETURN_IF_ERROR(SayHello(socket, role, config_.run_id, options_.secret,
                                std::min(deadline, DeadlineIn(options_.auth_timeout))));
    return std::unique_ptr<Link>(std::make_unique<TcpLink>(std::move(socket)));
  }
};

#if PARETOPIPE_HAVE_GRPC
class GrpcTransport : public InboxTransport {
 public:
  using InboxTransport::InboxTransport;
  const char* name() const override { return "grpc"; }
  uint16_t port() const override { return server_->port(); }

  Status Start() {
    Result<std::unique_ptr<GrpcLinkServer>> server = GrpcLinkServer::Start(
        options_.grpc_listen,
        [this](const std::string& role, int64_t run_id, std::unique_ptr<Link> link) {
          Deliver(role, run_id, std::move(link));
        },
        Security());
    if (!server.ok()) {
      return server.status().WithContext(
          fmt::format("gRPC server on {}", options_.grpc_listen.ToString()));
    }
    server_ = std::move(server).value();
    return Status::Ok();
  }

  ~GrpcTransport() override {
    EndRun();  // Links before the server whose streams they are.
    server_.reset();
  }

 protected:
  Result<std::unique_ptr<Link>> Open(const std::string& endpoint, const char* role,
                                     Deadline deadline) override {
    PP_ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(endpoint));
    return ConnectGrpcLink(e, role, config_.run_id, deadline, Security());
  }

 private:
  GrpcSecurity Security() const {
    GrpcSecurity s;
    s.secret = options_.secret;
    s.challenge_lifetime = options_.auth_timeout;
    s.tls_cert_pem = options_.tls_cert_pem;
    s.tls_key_pem = options_.tls_key_pem;
    s.tls_ca_pem = options_.tls_ca_pem;
    s.on_refused = [name = options_.worker_name](const std::string& peer, const std::string& why) {
      spdlog::warn("worker {}: grpc link from {} refused: authentication failed: {}", name, peer,
                   why);
    };
    return s;
  }

  std::unique_ptr<GrpcLinkServer> server_;
};
#endif  // PARETOPIPE_HAVE_GRPC

#if PARETOPIPE_HAVE_TORCH_BACKEND
// Tags of the torch backend's two kinds of message between a pair of ranks:
// activations flow forward on one, credits back from the sink on the other.
constexpr int kDataTag = 0;
constexpr int kCreditTag = 1;

// One c10d process group per run. Joining blocks until every stage has
// joined, and the orchestrator connects stages one after another, so the
// join runs on its own thread and TakeLinks waits for it. That thread owns
// the group until the join ends (by its deadline), so dropping a run whose
// group never formed does not wait for it.
class TorchTransport : public StageTransport {
 public:
  explicit TorchTransport(const TransportOptions& options) : options_(options) {}
  ~TorchTransport() override { EndRun(); }

  const char* name() const override { return "torch"; }
  uint16_t port() const override { return 0; }  // Per run: the rendezvous port.

  Status Admit(const StageConfig& /*config*/) const override {
    if (options_.secret.empty() || options_.allow_unauthenticated_torch) return Status::Ok();
    // c10d's TCPStore and Gloo's pairs take any peer that connects: a
    // stranger could join the group or feed it tensors. Refusing is the only
    // way to keep the token's promise.
    return Status::InvalidArgument(
        "this worker has a token (--token-file) and the torch backend (c10d Gloo) cannot "
        "authenticate its peers: use the tcp or grpc backend (or, on a network you trust, start "
        "the worker with --allow-unauthenticated-torch)");
  }

  void BeginRun(const StageConfig& config) override {
    EndRun();
    config_ = config;
  }

  Status Connect(const std::string& rendezvous, Deadline /*deadline*/,
                 uint16_t* rendezvous_port) override {
    *rendezvous_port = 0;
    EndRun();
    PP_ASSIGN_OR_RETURN(Endpoint self, ParseEndpoint(config_.self));
    GlooGroup::Options o;
    o.rank = config_.stage;
    o.world_size = config_.stages;
    o.prefix = fmt::format("paretopipe/run/{}", config_.run_id);
    o.bind_host = self.host;
    o.timeout = config_.stall_timeout;
    if (config_.stage == 0) {
      o.store_host = self.host;
    } else {
      Result<Endpoint> store = ParseEndpoint(rendezvous);
      if (!store.ok()) return store.status().WithContext("torch rendezvous from the orchestrator");
      o.store_host = store->host;
      o.store_port = store->port;
    }
    auto join = std::make_shared<Join>();
    PP_ASSIGN_OR_RETURN(join->group, GlooGroup::Create(o));
    if (config_.stage == 0) *rendezvous_port = join->group->store_port();
    // The join may take until every stage has connected: allow the worker's
    // whole connect timeout from now, not what is left of this request's.
    const Deadline join_deadline = DeadlineIn(options_.connect_timeout);
    std::thread([join, join_deadline] {
      Status s = join->group->Join(join_deadline);
      std::lock_guard<std::mutex> lock(join->mu);
      join->done = true;
      join->status = s;
      join->cv.notify_all();
    }).detach();
    join_ = std::move(join);
    return Status::Ok();
  }

  Status TakeLinks(Deadline deadline, StageLinks* links) override {
    if (!join_) return Status::InvalidArgument("torch links: connect first");
    if (!links_made_) {
      std::unique_lock<std::mutex> lock(join_->mu);
      // In slices, to see Stop(), which may not touch join_ (another thread's).
      while (!join_->done && !stopping_ && Clock::now() < deadline) {
        join_->cv.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
      }
      if (!join_->done) {
        return Status::Unavailable(
            fmt::format("stage {}: the torch process group of {} stages did not form in time",
                        config_.stage + 1, config_.stages));
      }
      PP_RETURN_IF_ERROR(join_->status.WithContext(fmt::format("stage {}", config_.stage + 1)));
      lock.unlock();
      GlooGroup& group = *join_->group;
      auto label = [&](int rank) { return fmt::format("rank {} (stage {})", rank, rank + 1); };
      const int s = config_.stage, last = config_.stages - 1;
      if (NeedsIn(config_)) links_.in = group.MakeLink(s - 1, kDataTag, false, label(s - 1));
      if (NeedsOut(config_)) links_.out = group.MakeLink(s + 1, kDataTag, true, label(s + 1));
      if (NeedsCreditsIn(config_))
        links_.credits_in = group.MakeLink(last, kCreditTag, false, label(last));
      if (NeedsCreditsOut(config_))
        links_.credits_out = group.MakeLink(0, kCreditTag, true, label(0));
      links_made_ = true;
    }
    links_.Fill(links);
    return Status::Ok();
  }

  void EndRun() override {
    links_ = OwnedLinks();  // Links before the group they use.
    links_made_ = false;
    // A finished join's group goes now; an unfinished one's with its
    // thread, by the join's deadline.
    join_.reset();
  }

  void Stop() override { stopping_ = true; }

 private:
  // A run's process group and its join, shared with the joining thread.
  struct Join {
    std::unique_ptr<GlooGroup> group;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
  };

  const TransportOptions options_;
  StageConfig config_;
  std::shared_ptr<Join> join_;
  OwnedLinks links_;
  bool links_made_ = false;
  std::atomic<bool> stopping_{false};
};
#endif  // PARETOPIPE_HAVE_TORCH_BACKEND

}  // namespace

const std::vector<std::string>& BackendNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> built;
    for (const Backend& b : kBackends) {
      if (b.built) built.push_back(b.name);
    }
    return built;
  }();
  return names;
}

Status CheckBackend(const std::string& name) {
  for (const Backend& b : kBackends) {
    if (name != b.name) continue;
    if (b.built) return Status::Ok();
    return Status::InvalidArgument(
        fmt::format("backend '{}' is not in this build: {}", name, b.missing));
  }
  return Status::InvalidArgument(
      fmt::format("unknown backend '{}' (known: {})", name, fmt::join(BackendNames(), ", ")));
}

Result<std::vector<std::unique_ptr<StageTransport>>> MakeStageTransports(
    const TransportOptions& options, AcceptingTransport** tcp) {
  std::vector<std::unique_ptr<StageTransport>> transports;
  auto tcp_transport = std::make_unique<TcpTransport>(options);
  *tcp = tcp_transport.get();
  transports.push_back(std::move(tcp_transport));
#if PARETOPIPE_HAVE_GRPC
  auto grpc = std::make_unique<GrpcTransport>(options);
  PP_RETURN_IF_ERROR(grpc->Start());
  transports.push_back(std::move(grpc));
#else
  if (!options.tls_cert_pem.empty() || !options.tls_ca_pem.empty()) {
    return CheckBackend("grpc").WithContext(
        "--tls-cert, --tls-ca: TLS is for the grpc backend's links");
  }
#endif
#if PARETOPIPE_HAVE_TORCH_BACKEND
  transports.push_back(std::make_unique<TorchTransport>(options));
#endif
  return transports;
}

}  // namespace paretopipe
