// A bounded blocking queue between the threads of one stage (receive ->
// compute -> send). Close() wakes every waiter, so one failing thread stops
// the others instead of leaving them blocked.
//
// Thread safety: safe for any number of producers and consumers.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "transport/socket.h"

namespace paretopipe {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  // Waits for room, then appends. False when closed or `deadline` passed.
  bool Push(T value, Deadline deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return closed_ || items_.size() < capacity_; }) ||
        closed_) {
      return false;
    }
    items_.push_back(std::move(value));
    cv_.notify_all();
    return true;
  }

  // Waits for an item. Empty when closed or `deadline` passed.
  std::optional<T> Pop(Deadline deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return closed_ || !items_.empty(); }) ||
        items_.empty()) {
      return std::nullopt;
    }
    T value = std::move(items_.front());
    items_.pop_front();
    cv_.notify_all();
    return value;
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace paretopipe
