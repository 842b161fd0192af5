// Running gnuplot (Debian's gnuplot-nox) on a script file as a child process,
// and writing text into gnuplot scripts safely.
//
// Owns: spawning gnuplot, bounding its run time, turning its failures into
// one-line Statuses, quoting. Must not touch: what the figures show
// (figures.h), the runs.
// Thread safety: functions of their arguments; RunGnuplot may run in several
// threads at once (each starts its own child).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "util/status.h"

namespace paretopipe {

// The Debian package that provides gnuplot with the svg and pngcairo
// terminals and no X11 dependency; named in the error when gnuplot is missing.
inline constexpr const char* kGnuplotPackage = "gnuplot-nox";

// `text` as a gnuplot single-quoted string literal, quotes included: ' doubled,
// control characters (line breaks) turned into spaces. Single quotes because
// gnuplot runs `backquoted` shell commands inside double-quoted strings, and
// model names, network conditions and errors come from the database.
std::string GnuplotString(std::string_view text);

// `text` as one field of a gnuplot data block: double-quoted, with the
// characters a data line cannot escape (double quotes, control characters)
// replaced by ' and a space. Data blocks are read raw: no substitution, no
// escapes.
std::string GnuplotDataField(std::string_view text);

// Runs `gnuplot script_path` with `working_dir` as its current directory (a
// relative `script_path` and the script's relative output names are taken
// from there), standard input and output on /dev/null. `gnuplot` is a
// command name looked up on PATH, or a path.
// Returns OK when gnuplot exits with status 0 within `timeout`.
// Errors (one line each): NotFound when gnuplot cannot be started (the
// message names the package to install); Internal when it exits non-zero or
// by a signal, with the line of its stderr that names the problem;
// Unavailable when it runs past `timeout` (it is killed).
// REQUIRES: working_dir exists.
Status RunGnuplot(const std::string& gnuplot, const std::string& script_path,
                  const std::string& working_dir,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace paretopipe
