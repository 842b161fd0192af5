// `paretopipe plan`: the predicted Pareto front of every way to split a
// model over named devices, from each device's profile (`paretopipe
// profile`) and a model of each link (docs/planner.md). Owns the command's
// options, reading its files and printing; the prediction and the front are
// analysis/planner.h's. Needs no LibTorch and runs no model.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace paretopipe::cli {

// Registers the `plan` subcommand on `app`. Not copyable or movable: CLI11
// writes the options into its members.
class PlanCommand {
 public:
  explicit PlanCommand(CLI::App& app);

  PlanCommand(const PlanCommand&) = delete;
  PlanCommand& operator=(const PlanCommand&) = delete;

  // After app.parse(): whether `plan` was the subcommand given.
  bool parsed() const { return command_->parsed(); }

  // Reads the profiles and links, computes the front and prints it (a table,
  // or JSON with --json) on stdout. Returns the exit status: 0, or 1 after
  // one line "paretopipe: error: ..." on stderr.
  // REQUIRES: parsed().
  int Run() const;

 private:
  CLI::App* command_;
  std::string model_;
  std::vector<std::string> devices_;  // NAME=PROFILE.json
  std::vector<std::string> links_;    // A-B=SPEC|FILE or A>B=SPEC|FILE
  std::string net_;                   // SPEC for every other pair.
  std::string stages_;                // "N" or "A..B"; empty: 1..devices.
  int64_t batch_ = 0;                 // 0: the profiles' batch.
  int window_ = 4;
  bool json_ = false;
};

}  // namespace paretopipe::cli
