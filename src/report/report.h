// report: turns stored runs into figures and one HTML page
// (`paretopipe report`, `paretopipe plot`; docs/report.md).
//
// The figures are drawn by gnuplot (Debian's gnuplot-nox) from scripts this
// part writes: it does the axes, ticks, labels and both SVG and PNG, and needs
// no Python or JavaScript plotting stack on a Pi or a CI box. Each figure's
// script stays beside it, so `gnuplot front-resnet18.gp` redraws it.
//
// Owns: which figures a report has, their files, the page. Must not touch:
// the store's SQL (callers load the runs), models, running pipelines.
// Thread safety: functions of their arguments; two calls must not write into
// the same directory at once.
#pragma once

#include <string>
#include <vector>

#include "analysis/accuracy.h"
#include "analysis/pareto.h"
#include "metrics/run_record.h"
#include "report/figures.h"
#include "util/status.h"

namespace paretopipe {

struct ReportOptions {
  std::string output_dir;  // Created when missing; files in it are overwritten.
  LatencyStat latency = LatencyStat::kMean;
  std::string gnuplot = "gnuplot";  // Command name on PATH, or a path.
  std::string source;               // Shown on the page: where the runs came from.
};

struct ReportResult {
  std::string index_html;          // Path of the page.
  std::vector<std::string> files;  // Every file written: figures (.svg, .png), scripts, the page.
  int figures = 0;
  std::vector<AccuracyDisagreement> accuracy_disagreements;
};

// Writes, into options.output_dir, for each model among `runs` the figures
// front, breakdown, bytes, (with several backends or network conditions)
// moves and (when runs have a planner's prediction) prediction, each as
// <kind>-<model>.svg, .png and the .gp script that drew them, then
// index.html holding every figure inline, the fronts and knees in words, the
// predictions against the measurements, the accuracy check and the table of
// every run (failed ones included).
// Errors: IoError when a file cannot be written; the errors of RunGnuplot
// (gnuplot missing: NotFound naming the package).
// REQUIRES: !runs.empty().
Result<ReportResult> WriteReport(const std::vector<RunRecord>& runs, const ReportOptions& options);

// Writes the one figure of `kind` of the runs to `path`, as SVG or PNG from
// its extension (.svg, .png). The gnuplot script lives in a temporary file
// beside `path` while gnuplot runs.
// Errors: InvalidArgument for another extension or runs of several models
// (the message lists them); NotFound when the figure has nothing to draw; the
// errors of RunGnuplot.
Status WritePlot(const std::vector<RunRecord>& runs, FigureKind kind, LatencyStat stat,
                 const std::string& path, const std::string& gnuplot = "gnuplot");

// `model` as a file name part: ASCII letters, digits, '-', '_' and '.' kept,
// everything else (a '/', spaces, a leading dot) '_'.
std::string FileNamePart(const std::string& model);

}  // namespace paretopipe
