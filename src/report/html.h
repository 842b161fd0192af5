// The report's HTML page: one self-contained file (figures inline as SVG, a
// few lines of CSS and JavaScript, no network fetches) that opens offline.
//
// Owns: the page's layout, the run table, escaping every stored text put into
// it (model names, errors and host names come from the database). Must not
// touch: files, processes, what the figures draw (figures.h).
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "analysis/accuracy.h"
#include "analysis/pareto.h"
#include "metrics/run_record.h"
#include "report/figures.h"

namespace paretopipe {

// `text` with &, <, >, " and ' replaced by character references: safe in
// element content and in quoted attribute values.
std::string HtmlEscape(std::string_view text);

// gnuplot's SVG made fit to sit inside an HTML page beside other figures: the
// XML prologue dropped, every id (and every reference to one: href='#..',
// url(#..)) prefixed with `id_prefix` so that figures cannot take each
// other's point shapes, the top <title> set to `title`, and a class and label
// added to the <svg> element. Returns "" when `svg` has no <svg element.
std::string InlineSvg(std::string_view svg, const std::string& id_prefix, const std::string& title);

// A figure as the page shows it.
struct PageFigure {
  // A kPrediction figure is followed by the table of its predictions.
  FigureKind kind = FigureKind::kFront;
  std::string caption;     // Plain text.
  std::string svg_inline;  // From InlineSvg.
  // Beside index.html, relative names: the figure as files, and its script.
  std::string svg_file, png_file, script_file;
};

struct PageModel {
  std::string model;
  std::vector<PageFigure> figures;
};

struct PageContent {
  std::string source;  // Where the runs came from, e.g. the database path.
  LatencyStat latency = LatencyStat::kMean;
  std::vector<PageModel> models;
  std::vector<AccuracyDisagreement> accuracy_disagreements;  // FindAccuracyDisagreements(runs).
};

// The whole page: title, a red warning block listing the runs whose accuracy
// disagrees with their group (when any), the sweep's summary (models, runs,
// backends, network conditions, hosts), per model its fronts and knees in
// words and its figures (the prediction figure followed by a table of each
// predicted run against its measurement, the errors' MAPE and whether a
// control run reached the measured front), then the table of every run,
// sortable by clicking a column header.
std::string RenderReportPage(const std::vector<RunRecord>& runs, const PageContent& content);

}  // namespace paretopipe
