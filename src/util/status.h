// Status and Result: how errors cross API edges in ParetoPipe.
//
// Functions that can fail on user input, files or the network return a Status
// (or a Result<T> holding either a value or a non-OK Status) instead of
// throwing, so that a failure becomes one clear line at the command line and
// never an exception escaping a thread. The message carries the context a
// user needs ("weights model.pth: key 'fc.weight' has shape [10, 512], the
// model expects [1000, 512]").
//
// Thread safety: values; safe to copy and move between threads.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace paretopipe {

class Status {
 public:
  enum class Code { kOk, kInvalidArgument, kNotFound, kIoError, kUnavailable, kInternal };

  Status() = default;  // OK.
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string message) {
    return Status(Code::kInvalidArgument, std::move(message));
  }
  static Status NotFound(std::string message) { return Status(Code::kNotFound, std::move(message)); }
  static Status IoError(std::string message) { return Status(Code::kIoError, std::move(message)); }
  static Status Unavailable(std::string message) {
    return Status(Code::kUnavailable, std::move(message));
  }
  static Status Internal(std::string message) { return Status(Code::kInternal, std::move(message)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "`context`: <this message>".
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// Either a T or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design.
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design.
    if (status_.ok()) status_ = Status::Internal("Result built from an OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok(). Violating it is a programming error and aborts with the status.
  T& value() & { return (CheckOk(), *value_); }
  const T& value() const& { return (CheckOk(), *value_); }
  T&& value() && { return (CheckOk(), std::move(*value_)); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  void CheckOk() const {
    if (!value_) {
      std::fprintf(stderr, "paretopipe: internal error: value() of a failed Result: %s\n",
                   status_.message().c_str());
      std::abort();
    }
  }

  std::optional<T> value_;
  Status status_;  // OK exactly when value_ holds a value.
};

}  // namespace paretopipe

// Returns early from the enclosing function if `expr` (a Status) is not OK.
#define PP_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::paretopipe::Status pp_status_ = (expr);    \
    if (!pp_status_.ok()) return pp_status_;     \
  } while (0)

#define PP_CONCAT_INNER(a, b) a##b
#define PP_CONCAT(a, b) PP_CONCAT_INNER(a, b)

// `lhs = value of expr` (a Result<T>), or returns its Status from the enclosing function.
#define PP_ASSIGN_OR_RETURN(lhs, expr) PP_ASSIGN_OR_RETURN_IMPL(PP_CONCAT(pp_result_, __LINE__), lhs, expr)
#define PP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
