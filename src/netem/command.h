// Running iproute2's `ip` and `tc`, optionally inside another network
// namespace: what netem and the testbed use to change interfaces and qdiscs.
//
// Owns: fork, setns, exec, the captured output and a time limit. Must not
// touch: what the commands mean.
// Thread safety: safe from any thread (fork from a multi-threaded process
// calls only async-signal-safe functions before exec).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

struct CommandResult {
  int exit_code = 0;   // 128 + signal when killed.
  std::string output;  // stdout and stderr together, trailing newline removed.
};

// Runs argv[0] (searched on PATH, then /usr/sbin and /sbin) with `argv`. When
// netns_pid > 0, the command runs in that process's network namespace.
// Returns the exit code and output; an error only when the command could not
// run or ran past `timeout` (it is then killed).
// REQUIRES: !argv.empty().
Result<CommandResult> RunCommand(const std::vector<std::string>& argv, pid_t netns_pid = 0,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

// RunCommand, with a non-zero exit turned into an error carrying the command
// line and its output.
Status RunChecked(const std::vector<std::string>& argv, pid_t netns_pid = 0);

// The command line as a shell would show it.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace paretopipe
