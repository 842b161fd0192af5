#include "sweep/local_workers.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "netem/testbed.h"
#include "util/auth.h"

namespace paretopipe {
namespace {

// A worker loads LibTorch (about a second) before it listens.
constexpr std::chrono::seconds kStartTimeout{60};

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// Reads the announce line "listening on HOST:PORT" from the worker's stdout.
Result<Endpoint> ReadAnnounce(int fd, pid_t pid) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Status::Unavailable(fmt::format("local worker (pid {}) did not start within {} s", pid,
                                             kStartTimeout.count()));
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[256];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      int status = 0;
      waitpid(pid, &status, WNOHANG);
      return Status::Unavailable(
          fmt::format("local worker (pid {}) exited before listening (see its error above)", pid));
    }
    line.append(buf, n);
  }
  line.resize(line.find('\n'));
  const std::string prefix = "listening on ";
  const size_t at = line.find(prefix);
  if (at == std::string::npos) return Status::Internal(fmt::format("local worker said '{}'", line));
  return ParseEndpoint(line.substr(at + prefix.size()));
}

// A pipe whose ends close with it.
class Pipe {
 public:
  Pipe() {
    if (pipe2(fds_, O_CLOEXEC) != 0) fds_[0] = fds_[1] = -1;
  }
  ~Pipe() {
    CloseReadEnd();
    CloseWriteEnd();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  bool ok() const { return fds_[0] >= 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void CloseReadEnd() { Close(0); }
  void CloseWriteEnd() { Close(1); }

 private:
  void Close(int i) {
    if (fds_[i] >= 0) close(fds_[i]);
    fds_[i] = -1;
  }
  int fds_[2];
};

// Waits for one byte from the child (it is ready to be placed) within the
// start timeout.
Status WaitReady(int fd, pid_t pid) {
  pollfd p{fd, POLLIN, 0};
  char c = 0;
  if (poll(&p, 1, 10000) != 1 || read(fd, &c, 1) != 1) {
    return Status::Unavailable(fmt::format("local worker (pid {}) did not start", pid));
  }
  if (c != 'r') {
    return Status::Unavailable(fmt::format(
        "local worker (pid {}) could not make its network namespace (unshare: needs root)", pid));
  }
  return Status::Ok();
}

}  // namespace

Result<LocalWorkers> LocalWorkers::Start(const LocalWorkerOptions& o) {
  LocalWorkers workers;
  if (!o.devices.empty() && static_cast<int>(o.devices.size()) != o.count) {
    return Status::InvalidArgument(
        fmt::format("--local-device given {} time(s) for {} workers: give one per worker",
                    o.devices.size(), o.count));
  }
  workers.options_ = o;
  PP_ASSIGN_OR_RETURN(workers.secret_, RandomHex(kAuthNonceBytes));
  const std::vector<int> allowed = AllowedCpus();
  const bool pin = o.devices.empty() && static_cast<int>(allowed.size()) >= o.count;
  for (int i = 0; i < o.count; ++i) {
    const DeviceLimits* device = o.devices.empty() ? nullptr : &o.devices[i];
    std::vector<int> cpus;
    if (pin) cpus = {allowed[i]};
    if (device) cpus = device->cpus;
    for (int c : cpus) {
      if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
        return Status::InvalidArgument(fmt::format(
            "--local-device {}: cpu {} is not one this process may use ({})", device->name, c,
            fmt::join(allowed, ", ")));
      }
    }
    // Owned by `workers` from the start: on any error below, Stop() ends
    // the child first and then removes its group.
    workers.groups_.emplace_back();
    CpuQuotaGroup& group = workers.groups_.back();
    if (device && device->cpu_quota > 0) {
      PP_ASSIGN_OR_RETURN(group, CpuQuotaGroup::Create(fmt::format("{}-{}", i, device->name),
                                                       device->cpu_quota));
    }
    workers.pids_.push_back(-1);
    workers.exits_.emplace_back();
    workers.cpus_.push_back(cpus);
    workers.limits_.push_back(device         ? FormatDeviceLimits(*device)
                              : cpus.empty() ? ""
                                             : fmt::format("cpus {}", fmt::join(cpus, "+")));
    const std::string host = o.testbed ? o.testbed->WorkerAddress(i) : "127.0.0.1";
    PP_ASSIGN_OR_RETURN(Endpoint endpoint, workers.Spawn(i, host + ":0"));
    workers.endpoints_.push_back(endpoint);
  }
  return workers;
}

Result<Endpoint> LocalWorkers::Spawn(int i, const std::string& listen) {
  const LocalWorkerOptions& o = options_;
  const DeviceLimits* device = o.devices.empty() ? nullptr : &o.devices[i];
  const std::vector<int>& cpus = cpus_[i];
  CpuQuotaGroup& group = groups_[i];
  const std::string threads_arg =
      std::to_string(device && device->threads > 0 ? device->threads : o.threads);
  const bool own_netns = o.testbed != nullptr;
  // Built before fork: the child may not allocate. Local workers run the
  // orchestrator's own model, TorchScript included.
  // The secret's file lives only until the worker has read it (it reads it
  // before it listens): nothing is left behind if this process is killed.
  PP_ASSIGN_OR_RETURN(const std::string token_file, WriteSecretFile(secret_));
  struct RemoveFile {
    const std::string& path;
    ~RemoveFile() { unlink(path.c_str()); }
  } remove_token_file{token_file};
  std::vector<std::string> args = {o.binary,       "worker",    "--listen",
                                   listen,         "--threads", threads_arg,
                                   "--log-level",  o.log_level, "--allow-remote-models",
                                   "--token-file", token_file};
  if (o.allow_unauthenticated_torch) args.push_back("--allow-unauthenticated-torch");
  if (device && !device->device.empty()) {
    args.push_back("--device");
    args.push_back(device->device);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Pipe out, ready, go;
  if (!out.ok() || !ready.ok() || !go.ok())
    return Status::IoError(fmt::format("pipe: {}", strerror(errno)));
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status::IoError(fmt::format("fork: {}", strerror(errno)));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    char c = 'r';
    if (own_netns && unshare(CLONE_NEWNET) != 0) c = 'e';
    if (!cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int cpu : cpus) CPU_SET(cpu, &set);
      sched_setaffinity(0, sizeof(set), &set);
    }
    // Wait until the parent has placed this process (cgroup, interface).
    if (write(ready.write_end(), &c, 1) != 1 || c != 'r' || read(go.read_end(), &c, 1) != 1)
      _exit(1);
    dup2(out.write_end(), STDOUT_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // The orchestrator blocks Ctrl-C in its threads.
    execv(o.binary.c_str(), argv.data());
    _exit(127);
  }
  out.CloseWriteEnd();
  ready.CloseWriteEnd();
  go.CloseReadEnd();
  pids_[i] = pid;
  Status placed = WaitReady(ready.read_end(), pid);
  if (placed.ok() && !group.path().empty()) placed = group.Add(pid);
  if (placed.ok() && o.testbed) placed = o.testbed->AttachWorker(i, pid);
  if (placed.ok() && write(go.write_end(), "g", 1) != 1) {
    placed = Status::IoError("worker start pipe");
  }
  // Without "g" the child exits: the go pipe closes with this scope.
  if (!placed.ok()) return placed.WithContext(fmt::format("starting local worker {}", i + 1));
  Result<Endpoint> endpoint = ReadAnnounce(out.read_end(), pid);
  if (!endpoint.ok())
    return endpoint.status().WithContext(fmt::format("starting {} worker", o.binary));
  // A worker on the testbed says the address it bound; the orchestrator
  // reaches it there too.
  return endpoint;
}

std::vector<std::string> LocalWorkers::Reap() {
  std::vector<std::string> reaped;
  for (size_t i = 0; i < pids_.size(); ++i) {
    int status = 0;
    if (pids_[i] <= 0 || waitpid(pids_[i], &status, WNOHANG) != pids_[i]) continue;
    const char* signal_name = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : nullptr;
    const std::string how = WIFSIGNALED(status)
                                ? fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                                              signal_name ? signal_name : "unknown")
                                : fmt::format("exited with status {}", WEXITSTATUS(status));
    exits_[i] = fmt::format("local worker {} (pid {}) {}", i + 1, pids_[i], how);
    pids_[i] = -1;
    reaped.push_back(exits_[i]);
  }
  return reaped;
}

Result<std::vector<LocalWorkers::Restarted>> LocalWorkers::RestartExited() {
  Reap();
  std::vector<Restarted> restarted;
  for (size_t i = 0; i < pids_.size(); ++i) {
    if (pids_[i] > 0) continue;
    // The same port, so the orchestrator's client for it reconnects as it
    // does after any lost session (the listener sets SO_REUSEADDR).
    Result<Endpoint> endpoint = Spawn(static_cast<int>(i), endpoints_[i].ToString());
    if (!endpoint.ok()) {
      return endpoint.status().WithContext(fmt::format("restarting local worker {}", i + 1));
    }
    if (endpoint->ToString() != endpoints_[i].ToString()) {
      return Status::Internal(fmt::format("local worker {} restarted on {}, not {}", i + 1,
                                          endpoint->ToString(), endpoints_[i].ToString()));
    }
    restarted.push_back({static_cast<int>(i), exits_[i]});
  }
  return restarted;
}

LocalWorkers::~LocalWorkers() { Stop(); }

LocalWorkers::LocalWorkers(LocalWorkers&& other) noexcept
    : options_(std::move(other.options_)),
      secret_(std::move(other.secret_)),
      pids_(std::move(other.pids_)),
      exits_(std::move(other.exits_)),
      endpoints_(std::move(other.endpoints_)),
      cpus_(std::move(other.cpus_)),
      limits_(std::move(other.limits_)),
      groups_(std::move(other.groups_)) {
  other.pids_.clear();
  other.groups_.clear();
}

LocalWorkers& LocalWorkers::operator=(LocalWorkers&& other) noexcept {
  if (this != &other) {
    Stop();
    options_ = std::move(other.options_);
    secret_ = std::move(other.secret_);
    pids_ = std::move(other.pids_);
    exits_ = std::move(other.exits_);
    endpoints_ = std::move(other.endpoints_);
    cpus_ = std::move(other.cpus_);
    limits_ = std::move(other.limits_);
    groups_ = std::move(other.groups_);
    other.pids_.clear();
    other.groups_.clear();
  }
  return *this;
}

void LocalWorkers::Stop() {
  for (pid_t pid : pids_) {
    if (pid > 0) kill(pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (pid_t pid : pids_) {
    if (pid <= 0) continue;
    while (waitpid(pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  pids_.clear();
  for (CpuQuotaGroup& g : groups_) g.Remove();
  groups_.clear();
}

}  // namespace paretopipe
