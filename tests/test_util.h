// Helpers shared by the tests.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/stage_transport.h"
#include "control/worker.h"
#include "model/segment.h"

// Skips the test, saying why, unless this build has the backend `name`:
// CMake leaves out grpc without gRPC, torch without a usable c10d Gloo.
#define PP_REQUIRE_BACKEND(name)                                                        \
  if (const ::paretopipe::Status built = ::paretopipe::CheckBackend(name); !built.ok()) \
  GTEST_SKIP() << built.message()

namespace paretopipe::testing {

// Builds a segment or fails the test.
inline std::unique_ptr<Segment> BuildOrDie(const ModelSpec& spec, BlockRange range = {0, -1}) {
  Result<std::unique_ptr<Segment>> segment = Segment::Build(spec, range);
  EXPECT_TRUE(segment.ok()) << segment.status().message();
  return segment.ok() ? std::move(segment).value() : nullptr;
}

inline torch::Tensor RunOrDie(Segment& segment, const torch::Tensor& x) {
  Result<torch::Tensor> y = segment.Run(x);
  EXPECT_TRUE(y.ok()) << y.status().message();
  return y.ok() ? std::move(y).value() : torch::Tensor();
}

// A fresh temporary directory, removed with everything in it when this object dies.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = ::testing::TempDir() + "pp_test_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A Worker serving on 127.0.0.1 (a free port) on its own thread, as
// `paretopipe worker` would, inside the test process. Stopped and joined when
// this object dies.
class ServingWorker {
 public:
  // `options.listen` is replaced by 127.0.0.1:0; threads 0 becomes 1, so that
  // every computation in the test process runs on one intra-op thread.
  explicit ServingWorker(WorkerOptions options = {}) {
    options.listen = {"127.0.0.1", 0};
    if (options.threads <= 0) options.threads = 1;
    Result<std::unique_ptr<Worker>> worker = Worker::Create(options);
    EXPECT_TRUE(worker.ok()) << worker.status().message();
    if (!worker.ok()) return;
    worker_ = std::move(worker).value();
    thread_ = std::thread([this] { served_ = worker_->Serve(); });
  }
  ~ServingWorker() { Stop(); }
  ServingWorker(const ServingWorker&) = delete;
  ServingWorker& operator=(const ServingWorker&) = delete;

  bool ok() const { return worker_ != nullptr; }
  // REQUIRES: ok().
  Endpoint endpoint() const { return worker_->endpoint(); }

  // Stops serving and joins every thread of the worker. Idempotent.
  void Stop() {
    if (!worker_) return;
    worker_->Stop();
    if (thread_.joinable()) thread_.join();
    EXPECT_TRUE(served_.ok()) << served_.message();
    worker_.reset();
  }

 private:
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
  Status served_;
};

// What a command run through the shell did.
struct CommandOutcome {
  int exit_code = -1;
  bool signaled = false;  // Killed by a signal (or the shell reported one, exit >= 128).
  std::string out, err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `command_line` through the shell with its standard output and error
// captured in files under `dir` (overwritten on every call). A command still
// running after `limit` is killed (reported as signaled), so a hang fails the
// test instead of stalling the suite.
inline CommandOutcome RunCommand(const std::string& command_line, const std::string& dir,
                                 std::chrono::seconds limit = std::chrono::seconds(300)) {
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  const std::string command = "timeout -s KILL " + std::to_string(limit.count()) + " " +
                              command_line + " >" + out + " 2>" + err;
  const int status = std::system(command.c_str());
  CommandOutcome o;
  o.signaled = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = Slurp(out);
  o.err = Slurp(err);
  return o;
}

#ifdef PARETOPIPE_BINARY
// Starting a worker loads LibTorch: a second or two, far more on a loaded machine.
inline constexpr std::chrono::seconds kWorkerStartTimeout(20);

// A `paretopipe worker --listen 127.0.0.1:0` child process. Killed (SIGTERM,
// then SIGKILL) when this object dies, so a failed assertion never leaves
// one behind; it also dies with the test process (PR_SET_PDEATHSIG).
class ChildWorker {
 public:
  explicit ChildWorker(const std::string& log_path = "/dev/null") {
    int out[2];
    if (pipe(out) != 0) {
      ADD_FAILURE() << "pipe: " << strerror(errno);
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) dup2(log, STDERR_FILENO);
      execl(PARETOPIPE_BINARY, PARETOPIPE_BINARY, "worker", "--listen", "127.0.0.1:0", "--threads",
            "1", "--log-level", "warn", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    if (pid_ < 0) {
      ADD_FAILURE() << "fork: " << strerror(errno);
      close(out[0]);
      return;
    }
    ReadListeningLine(out[0]);
    close(out[0]);
  }

  ~ChildWorker() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ChildWorker(const ChildWorker&) = delete;
  ChildWorker& operator=(const ChildWorker&) = delete;

  // "127.0.0.1:PORT", or empty when the worker never said it listens.
  const std::string& endpoint() const { return endpoint_; }

  // Kills the worker at once (SIGKILL), as a crash or a pulled plug would.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  // Reads stdout until "paretopipe worker listening on HOST:PORT\n".
  void ReadListeningLine(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + kWorkerStartTimeout;
    std::string text;
    const std::string prefix = "paretopipe worker listening on ";
    while (text.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[256];
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n <= 0) break;  // The worker exited.
      text.append(buffer, static_cast<size_t>(n));
    }
    const size_t at = text.find(prefix);
    const size_t end = text.find('\n');
    if (at != 0 || end == std::string::npos) {
      ADD_FAILURE() << "worker did not say where it listens within " << kWorkerStartTimeout.count()
                    << " s; its stdout: '" << text << "'";
      return;
    }
    endpoint_ = text.substr(prefix.size(), end - prefix.size());
  }

  pid_t pid_ = -1;
  std::string endpoint_;
};

#endif  // PARETOPIPE_BINARY

}  // namespace paretopipe::testing
