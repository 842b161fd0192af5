// Helpers of the tests that build network namespaces: what must be gone
// afterwards, and the skip when not root.
#pragma once

#include <dirent.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "netem/tc.h"

namespace paretopipe::testing {

// Namespaces, interfaces, qdiscs and cgroups need root; CI has it. The
// testbed's switch also needs the tun driver.
#define PP_REQUIRE_ROOT()                                                                      \
  if (!::paretopipe::HaveNetAdmin() || geteuid() != 0)                                         \
    GTEST_SKIP() << "needs root: network namespaces, interfaces, qdiscs and cgroups; CI runs as " \
                    "root";                                                                    \
  if (access("/dev/net/tun", R_OK | W_OK) != 0)                                                \
  GTEST_SKIP() << "needs /dev/net/tun (the tun driver) for the testbed's switch"

// Standard output of a shell command.
inline std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  pclose(pipe);
  return out;
}

// A process's network namespace and command line: a namespace number may be
// reused by another test's namespace once ours is gone, its worker's
// command line (with its testbed address) is not.
using NamespacedProcess = std::pair<ino_t, std::string>;

inline std::optional<NamespacedProcess> Describe(const std::string& pid) {
  struct stat st;
  if (stat(fmt::format("/proc/{}/ns/net", pid).c_str(), &st) != 0) return std::nullopt;
  std::ifstream in(fmt::format("/proc/{}/cmdline", pid));
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return NamespacedProcess{st.st_ino, cmdline};
}

// What `pids` are now: their namespaces and command lines.
inline std::set<NamespacedProcess> NamespacesOf(const std::vector<pid_t>& pids) {
  std::set<NamespacedProcess> out;
  for (pid_t pid : pids) {
    if (auto d = Describe(std::to_string(pid))) out.insert(*d);
  }
  return out;
}

// Fails the test if, after 5 s, any process still runs in one of `gone`'s
// namespaces with its command line (a worker that outlived its testbed).
// A namespace ends with its last process: ParetoPipe makes no named ones.
inline void ExpectNamespacesGone(const std::set<NamespacedProcess>& gone) {
  std::set<NamespacedProcess> left;
  for (int i = 0; i < 50; ++i) {
    left.clear();
    DIR* proc = opendir("/proc");
    while (dirent* e = proc ? readdir(proc) : nullptr) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      if (auto d = Describe(e->d_name); d && gone.count(*d)) left.insert(*d);
    }
    if (proc) closedir(proc);
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const auto& [ns, cmdline] : left) {
    ADD_FAILURE() << "network namespace " << ns << " still has its worker";
  }
}

// A named network namespace with a veth pair (aa, bb) for a test; deleted
// with this object, also when an assertion ends the test early.
class ScopedNamespace {
 public:
  explicit ScopedNamespace(const std::string& name) : name_(name) {
    ok_ = Shell(fmt::format("ip netns add {0} && ip -n {0} link add aa type veth peer name bb "
                            "&& echo ok",
                            name)) == "ok\n";
  }
  ~ScopedNamespace() { Shell(fmt::format("ip netns del {} 2>/dev/null", name_)); }
  ScopedNamespace(const ScopedNamespace&) = delete;
  ScopedNamespace& operator=(const ScopedNamespace&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// The interfaces in this namespace of the testbed of process `pid`
// ("pph<pid>", "ppw<pid>_<i>"), one per line.
inline std::string TestbedInterfaces(int64_t pid) {
  return Shell(fmt::format("ip -o link show | grep -o -E 'pp(h{0}|w{0}_[0-9]+)'", pid));
}

}  // namespace paretopipe::testing
