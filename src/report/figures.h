// The report's figures as gnuplot programs: the runs' numbers written into
// named data blocks (`$front_1 << EOD`), then the commands that draw them.
// docs/report.md says what each figure shows and which stored numbers it plots.
//
// The front's data blocks carry run ids, and every point a figure draws for
// a run is a hypertext label whose text starts "run #<id>" and says where the
// run stands ("on the front", "dominated by N runs"): in the SVG they become
// elements with that text (tooltips on the page), so a reader, or a test, can
// tell which runs a front holds from the figure itself.
//
// Owns: what each figure shows and how it looks. Must not touch: files,
// processes (report.h runs gnuplot), the store.
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "analysis/pareto.h"
#include "metrics/run_record.h"
#include "util/status.h"

namespace paretopipe {

enum class FigureKind {
  kFront,       // Latency against throughput, a panel per backend and network condition.
  kBreakdown,   // Per cut, stacked compute, transfer and queueing time.
  kBytes,       // Bytes crossing each cut.
  kMoves,       // The fronts of every network condition (backend) overlaid.
  kPrediction,  // The planner's predicted latency and throughput beside the measured ones.
};

// Every kind, in the order above.
std::vector<FigureKind> AllFigureKinds();

// Parses "front", "breakdown", "bytes", "moves", "prediction".
Result<FigureKind> ParseFigureKind(const std::string& text);
const char* FigureKindName(FigureKind kind);

// A figure as gnuplot input without its terminal.
struct Figure {
  FigureKind kind = FigureKind::kFront;
  std::string model;
  std::string title;     // Drawn above the panels; also the page's caption.
  std::string data;      // The data blocks.
  std::string commands;  // From `set multiplot` to `unset multiplot`.
  int width_px = 0, height_px = 0;
  int panels = 0;
};

// The figure of `kind` for the runs of `model` among `runs` (others are
// ignored), latency being the statistic `stat`. Failed runs and runs with a
// non-finite metric are not drawn. Every panel of a figure shares its axes'
// scales, so that panels can be compared at a glance.
// Returns nullopt when there is nothing to draw: no finished run of `model`,
// for kMoves a single backend and a single network condition, for
// kPrediction no run that GroupPredictions (fronts.h) keeps. kPrediction
// ignores `stat`: the planner predicts the mean latency.
std::optional<Figure> BuildFigure(FigureKind kind, const std::vector<RunRecord>& runs,
                                  const std::string& model, LatencyStat stat);

// The complete script drawing `figure` to `svg_file` (gnuplot's svg terminal)
// and to `png_file` (pngcairo), each skipped when empty. File names are
// written as given: relative ones are taken from gnuplot's working directory.
std::string GnuplotScript(const Figure& figure, const std::string& svg_file,
                          const std::string& png_file);

}  // namespace paretopipe
