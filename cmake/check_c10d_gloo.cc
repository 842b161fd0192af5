// Compiled and linked, never run, by cmake/OptionalFeatures.cmake against
// the LibTorch found: the torch backend is built only when this succeeds. It
// makes each c10d call src/transport/gloo_link.cc makes, with the same
// argument types, so a LibTorch whose c10d API differs, or that lacks Gloo's
// headers or c10d's symbols, switches the backend off with a message at
// configure time instead of failing the build. Keep it in step with
// gloo_link.cc.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "transport/gloo_c10d.h"

namespace {

std::string UseC10dAsGlooLinkDoes(const std::string& host) {
  const std::chrono::milliseconds timeout(1000);
  c10d::TCPStoreOptions store_options;
  store_options.port = 0;
  store_options.isServer = true;
  store_options.waitWorkers = false;
  store_options.timeout = timeout;
  c10::intrusive_ptr<c10d::TCPStore> store =
      c10::make_intrusive<c10d::TCPStore>(host, store_options);
  const uint16_t port = store->getPort();
  store->setTimeout(timeout);
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("paretopipe/run/1", store);
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
  options->threads = 1;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group =
      c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, 0, 2, options);
  uint8_t byte = 0;
  std::vector<at::Tensor> tensors{at::from_blob(&byte, {1}, at::TensorOptions(at::kByte))};
  c10::intrusive_ptr<c10d::Work> work = group->send(tensors, 1, 0);
  work = group->recv(tensors, 1, 0);
  const bool done = work->wait(timeout);
  work->abort();
  try {
    group.reset();
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    if (c10_error != nullptr) return c10_error->what_without_backtrace();
  }
  return std::to_string(port) + (done ? "" : " aborted");
}

}  // namespace

int main(int argc, char** argv) {
  // Linked, so every symbol above must resolve; run, it would do nothing.
  if (argc > 1000) return static_cast<int>(UseC10dAsGlooLinkDoes(argv[0]).size());
  return 0;
}
