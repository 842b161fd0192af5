#include "sweep/local_workers.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

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

}  // namespace

Result<LocalWorkers> LocalWorkers::Start(const std::string& binary, int count, int threads,
                                         const std::string& log_level) {
  LocalWorkers workers;
  const std::vector<int> allowed = AllowedCpus();
  const bool pin = static_cast<int>(allowed.size()) >= count;
  for (int i = 0; i < count; ++i) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
      return Status::IoError(fmt::format("pipe: {}", strerror(errno)));
    const int cpu = pin ? allowed[i] : -1;
    const std::string threads_arg = std::to_string(threads);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return Status::IoError(fmt::format("fork: {}", strerror(errno)));
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);
      if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
      }
      dup2(pipe_fds[1], STDOUT_FILENO);
      execl(binary.c_str(), binary.c_str(), "worker", "--listen", "127.0.0.1:0", "--threads",
            threads_arg.c_str(), "--log-level", log_level.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(pipe_fds[1]);
    workers.pids_.push_back(pid);
    workers.cpus_.push_back(cpu);
    Result<Endpoint> endpoint = ReadAnnounce(pipe_fds[0], pid);
    close(pipe_fds[0]);
    if (!endpoint.ok())
      return endpoint.status().WithContext(fmt::format("starting {} worker", binary));
    workers.endpoints_.push_back(*endpoint);
  }
  return workers;
}

LocalWorkers::~LocalWorkers() { Stop(); }

LocalWorkers::LocalWorkers(LocalWorkers&& other) noexcept
    : pids_(std::move(other.pids_)),
      endpoints_(std::move(other.endpoints_)),
      cpus_(std::move(other.cpus_)) {
  other.pids_.clear();
}

LocalWorkers& LocalWorkers::operator=(LocalWorkers&& other) noexcept {
  if (this != &other) {
    Stop();
    pids_ = std::move(other.pids_);
    endpoints_ = std::move(other.endpoints_);
    cpus_ = std::move(other.cpus_);
    other.pids_.clear();
  }
  return *this;
}

void LocalWorkers::Stop() {
  for (pid_t pid : pids_) kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (pid_t pid : pids_) {
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
}

}  // namespace paretopipe
