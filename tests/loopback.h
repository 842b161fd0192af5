// A connected TCP pair on 127.0.0.1, for transport tests. No LibTorch: the
// transport's own test binary includes it too.
#pragma once

#include <chrono>

#include "transport/socket.h"

namespace paretopipe::testing {

struct LoopbackPair {
  Listener listener;
  Socket client;  // Connected end.
  Socket server;  // Accepted end.
};

// REQUIRES: loopback works (aborts the test binary through Result::value otherwise).
inline LoopbackPair ConnectedLoopback(
    std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
  LoopbackPair pair;
  pair.listener = Listener::Listen({"127.0.0.1", 0}).value();
  pair.client = ConnectTcp(pair.listener.endpoint(), DeadlineIn(timeout)).value();
  pair.server = pair.listener.Accept(DeadlineIn(timeout)).value();
  return pair;
}

}  // namespace paretopipe::testing
