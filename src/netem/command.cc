#include "netem/command.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace paretopipe {
namespace {

// iproute2 lives in /usr/sbin, which a non-login root shell may lack on PATH.
std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = getenv("PATH") ? getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    const std::string candidate = path.substr(begin, end - begin) + "/" + name;
    if (end > begin && access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  return "";
}

}  // namespace

std::string CommandLine(const std::vector<std::string>& argv) {
  return fmt::format("{}", fmt::join(argv, " "));
}

Result<CommandResult> RunCommand(const std::vector<std::string>& argv, pid_t netns_pid,
                                 std::chrono::milliseconds timeout) {
  const std::string program = FindProgram(argv.at(0));
  if (program.empty()) {
    return Status::NotFound(fmt::format("{}: not found (Debian package iproute2)", argv[0]));
  }
  int ns_fd = -1;
  if (netns_pid > 0) {
    ns_fd = open(fmt::format("/proc/{}/ns/net", netns_pid).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) {
      return Status::Unavailable(
          fmt::format("network namespace of pid {}: {}", netns_pid, strerror(errno)));
    }
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    if (ns_fd >= 0) close(ns_fd);
    return Status::IoError(fmt::format("pipe: {}", strerror(errno)));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    if (ns_fd >= 0) close(ns_fd);
    return Status::IoError(fmt::format("fork: {}", strerror(errno)));
  }
  if (pid == 0) {
    if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) != 0) _exit(126);
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // A sweep blocks Ctrl-C in its threads.
    execv(program.c_str(), args.data());
    _exit(127);
  }
  close(out[1]);
  if (ns_fd >= 0) close(ns_fd);
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (result.output.size() < (1 << 20)) result.output.append(buf, n);
  }
  close(out[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (!result.output.empty() && result.output.back() == '\n') result.output.pop_back();
  if (timed_out) {
    return Status::Unavailable(
        fmt::format("{}: no answer within {} ms", CommandLine(argv), timeout.count()));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (result.exit_code == 126 && netns_pid > 0) {
    return Status::Unavailable(fmt::format("{}: could not enter the network namespace of pid {}",
                                           CommandLine(argv), netns_pid));
  }
  return result;
}

Status RunChecked(const std::vector<std::string>& argv, pid_t netns_pid) {
  PP_ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv, netns_pid));
  if (r.exit_code != 0) {
    return Status::Unavailable(
        fmt::format("`{}` failed ({}): {}", CommandLine(argv), r.exit_code, r.output));
  }
  return Status::Ok();
}

}  // namespace paretopipe
