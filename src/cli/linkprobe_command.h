// `paretopipe linkprobe`: measures the link from one worker to another with
// messages from 64 bytes to megabytes and fits the planner's link model to
// them (analysis/link_model.h FitLinkModel), writing a link.json that `plan`
// and `validate` read. Owns the command's options, choosing the sizes and
// printing; the measuring is the workers' (transport/link_probe.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace paretopipe::cli {

class LinkProbeCommand {
 public:
  explicit LinkProbeCommand(CLI::App& app);

  LinkProbeCommand(const LinkProbeCommand&) = delete;
  LinkProbeCommand& operator=(const LinkProbeCommand&) = delete;

  bool parsed() const { return command_->parsed(); }

  // Measures, fits and prints (and writes -o). Returns 0, or 1 after one
  // line "paretopipe: error: ..." on stderr. REQUIRES: parsed().
  int Run() const;

 private:
  CLI::App* command_;
  std::string workers_;  // "A,B": from A to B.
  std::string token_file_;
  std::string backend_ = "tcp";
  int repeats_ = 5;
  int64_t max_bytes_ = int64_t{16} << 20;
  std::string output_;
};

}  // namespace paretopipe::cli
