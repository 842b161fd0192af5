// Helpers for tests that play a misbehaving peer of a worker on loopback:
// raw bytes onto a socket, "did the worker close it", and the worker's log.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport/socket.h"

namespace paretopipe::testing {

// Keeps every log message, for tests that check what was logged.
class CapturingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Waits until a message containing `needle` was logged, or `timeout` passed.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    do {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const std::string& m : messages_) {
          if (m.find(needle) != std::string::npos) return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (Clock::now() < deadline);
    return false;
  }

  std::string All() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string all;
    for (const std::string& m : messages_) all += m + "\n";
    return all;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    messages_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> messages_;  // Guarded by the base's mutex_.
};

// Makes the default logger write into a CapturingSink while it lives.
// Install before any worker thread starts and outlive them: the default
// logger must not be swapped under a thread that logs.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()), sink_(std::make_shared<CapturingSink>()) {
    auto logger = std::make_shared<spdlog::logger>("worker_test", sink_);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  CapturingSink& sink() { return *sink_; }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<CapturingSink> sink_;
};

inline void SendRaw(Socket& socket, const void* data, size_t bytes) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    const ssize_t n = ::send(socket.fd(), p, bytes, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    ASSERT_GT(n, 0) << strerror(errno);
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

// True when the worker closes `socket` within `timeout`: reads (and drops
// whatever the worker sends first, e.g. an error frame) until end of stream
// or a reset.
inline bool ClosedByWorkerWithin(Socket& socket, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::array<char, 4096> buffer;
  while (Clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{socket.fd(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) continue;
    const ssize_t n = ::recv(socket.fd(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return true;  // ECONNRESET: closed with bytes unread.
  }
  return false;
}

}  // namespace paretopipe::testing
