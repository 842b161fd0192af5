// `paretopipe validate`: the planner's predictions beside measured runs
// (analysis/validate.h). Owns the command's options, loading the runs and
// profiles, printing and, with --save, storing each compared run's
// prediction beside it; the comparison and its figures are
// analysis/validate.h's. Needs no LibTorch and runs no model.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/run_table.h"

namespace paretopipe::cli {

// Registers the `validate` subcommand on `app`. Not copyable or movable:
// CLI11 writes the options into its members.
class ValidateCommand {
 public:
  explicit ValidateCommand(CLI::App& app);

  ValidateCommand(const ValidateCommand&) = delete;
  ValidateCommand& operator=(const ValidateCommand&) = delete;

  // After app.parse(): whether `validate` was the subcommand given.
  bool parsed() const { return command_->parsed(); }

  // Loads the runs and profiles, compares and prints (a table, or JSON with
  // --json) on stdout. With --save, first stores every compared run's
  // prediction (role "validate") in the database, except where the run
  // already has one that a sweep made before measuring it (role "front" or
  // "control"), and says how many were saved and kept. Returns 0, or 1 after
  // one line "paretopipe: error: ..." on stderr (also when no run could be
  // compared, or a prediction could not be saved: those saved before stay).
  // REQUIRES: parsed().
  int Run() const;

 private:
  CLI::App* command_;
  AnalysisFilter filter_{"paretopipe.db", "", "", "", ""};
  std::vector<std::string> devices_;  // NAME=PROFILE.json
  std::string base_link_ = "none";    // SPEC or link.json
  bool json_ = false;
  bool save_ = false;
};

}  // namespace paretopipe::cli
