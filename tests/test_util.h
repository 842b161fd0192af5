// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "control/worker.h"

#include "model/segment.h"

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

}  // namespace paretopipe::testing
