#include "report/gnuplot.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

extern char** environ;

namespace paretopipe {

std::string GnuplotString(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

std::string GnuplotDataField(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') {
      out += '\'';
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += "\"";
  return out;
}

namespace {

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

// gnuplot prints the offending command, a caret under it, then
// `"script.gp" line 12: undefined variable: x`; that last kind of line is the
// one worth a user's attention. Without one, the last line it printed.
std::string ErrorLineOf(const std::string& stderr_text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < stderr_text.size()) {
    size_t end = stderr_text.find('\n', start);
    if (end == std::string::npos) end = stderr_text.size();
    const std::string line = Trim(stderr_text.substr(start, end - start));
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->find(" line ") != std::string::npos && it->find(": ") != std::string::npos) return *it;
  }
  return lines.empty() ? "no message on stderr" : lines.back();
}

}  // namespace

Status RunGnuplot(const std::string& gnuplot, const std::string& script_path,
                  const std::string& working_dir, std::chrono::milliseconds timeout) {
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0)
    return Status::IoError(fmt::format("gnuplot: cannot make a pipe: {}", std::strerror(errno)));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addchdir_np(&actions, working_dir.c_str());
  std::vector<char*> argv = {const_cast<char*>(gnuplot.c_str()),
                             const_cast<char*>(script_path.c_str()), nullptr};
  pid_t pid = 0;
  const int spawn_error =
      posix_spawnp(&pid, gnuplot.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(err_pipe[1]);
  if (spawn_error != 0) {
    close(err_pipe[0]);
    if (spawn_error == ENOENT || spawn_error == EACCES) {
      return Status::NotFound(
          fmt::format("cannot run {}: {}; figures need gnuplot: install the Debian package {} "
                      "(apt-get install {})",
                      gnuplot, std::strerror(spawn_error), kGnuplotPackage, kGnuplotPackage));
    }
    return Status::Internal(
        fmt::format("cannot start {} in {}: {}", gnuplot, working_dir, std::strerror(spawn_error)));
  }

  // Read stderr until gnuplot closes it by exiting; the tail is enough to
  // explain a failure, and bounds memory whatever gnuplot prints.
  constexpr size_t kKeepBytes = 64 * 1024;
  std::string stderr_text;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{err_pipe[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    if (ready == 0) {
      timed_out = true;
      break;
    }
    char buffer[4096];
    const ssize_t got = read(err_pipe[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    stderr_text.append(buffer, static_cast<size_t>(got));
    if (stderr_text.size() > kKeepBytes) stderr_text.erase(0, stderr_text.size() - kKeepBytes);
  }
  close(err_pipe[0]);
  if (timed_out) kill(pid, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR)
      return Status::Internal(
          fmt::format("gnuplot {}: waitpid: {}", script_path, std::strerror(errno)));
  }
  if (timed_out) {
    return Status::Unavailable(fmt::format("gnuplot {} did not finish within {} s; killed",
                                           script_path, timeout.count() / 1000.0));
  }
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) return Status::Ok();
  const std::string how = WIFEXITED(wait_status)
                              ? fmt::format("exit status {}", WEXITSTATUS(wait_status))
                              : fmt::format("signal {}", WTERMSIG(wait_status));
  return Status::Internal(
      fmt::format("gnuplot {} failed ({}): {}", script_path, how, ErrorLineOf(stderr_text)));
}

}  // namespace paretopipe
