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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "netem/tc.h"

namespace paretopipe::testing {

// Namespaces, interfaces, qdiscs and cgroups need root; CI has it.
#define PP_REQUIRE_ROOT()                                                                      \
  if (!::paretopipe::HaveNetAdmin() || geteuid() != 0)                                         \
  GTEST_SKIP() << "needs root: network namespaces, interfaces, qdiscs and cgroups; CI runs as " \
                  "root"

// Network namespaces in use by any process.
inline std::set<ino_t> LiveNetworkNamespaces() {
  std::set<ino_t> out;
  DIR* proc = opendir("/proc");
  while (dirent* e = proc ? readdir(proc) : nullptr) {
    struct stat st;
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (stat(fmt::format("/proc/{}/ns/net", e->d_name).c_str(), &st) == 0) out.insert(st.st_ino);
  }
  if (proc) closedir(proc);
  return out;
}

// The network namespaces of `pids`.
inline std::set<ino_t> NamespacesOf(const std::vector<pid_t>& pids) {
  std::set<ino_t> out;
  for (pid_t pid : pids) {
    struct stat st;
    if (stat(fmt::format("/proc/{}/ns/net", pid).c_str(), &st) == 0) out.insert(st.st_ino);
  }
  return out;
}

// Fails the test for each of `gone` still in use after 5 s (a namespace
// ends with its last process; other tests may make their own meanwhile, so
// only these are checked).
inline void ExpectNamespacesGone(const std::set<ino_t>& gone) {
  std::set<ino_t> alive;
  for (int i = 0; i < 50; ++i) {
    alive = LiveNetworkNamespaces();
    bool any = false;
    for (ino_t ns : gone) any |= alive.count(ns) > 0;
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (ino_t ns : gone) EXPECT_FALSE(alive.count(ns)) << "network namespace " << ns << " left";
}

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

// The interfaces in this namespace of the testbed of process `pid`
// ("pph<pid>", "ppw<pid>_<i>"), one per line.
inline std::string TestbedInterfaces(int64_t pid) {
  return Shell(fmt::format("ip -o link show | grep -o -E 'pp(h{0}|w{0}_[0-9]+)'", pid));
}

}  // namespace paretopipe::testing
