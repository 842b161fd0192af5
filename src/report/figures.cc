#include "report/figures.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

#include "report/fronts.h"
#include "report/gnuplot.h"

namespace paretopipe {

std::vector<FigureKind> AllFigureKinds() {
  return {FigureKind::kFront, FigureKind::kBreakdown, FigureKind::kBytes, FigureKind::kMoves,
          FigureKind::kPrediction};
}

Result<FigureKind> ParseFigureKind(const std::string& text) {
  std::string names;
  for (FigureKind kind : AllFigureKinds()) {
    if (text == FigureKindName(kind)) return kind;
    names += (names.empty() ? "" : ", ") + std::string(FigureKindName(kind));
  }
  return Status::InvalidArgument(fmt::format("figure kind '{}' is not one of {}", text, names));
}

const char* FigureKindName(FigureKind kind) {
  switch (kind) {
    case FigureKind::kFront:
      return "front";
    case FigureKind::kBreakdown:
      return "breakdown";
    case FigureKind::kBytes:
      return "bytes";
    case FigureKind::kMoves:
      return "moves";
    case FigureKind::kPrediction:
      return "prediction";
  }
  return "unknown";
}

namespace {

// Okabe and Ito's palette: distinguishable with every common colour-vision
// deficiency, and in greyscale print by lightness.
constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};
constexpr const char* kFrontColour = "#0072B2";
constexpr const char* kDominatedColour = "#8C8C8C";
constexpr const char* kKneeColour = "#D55E00";
constexpr const char* kIntervalColour = "#C4C4C4";
constexpr const char* kComputeColour = "#0072B2";
constexpr const char* kTransferColour = "#E69F00";
constexpr const char* kQueueColour = "#A0A0A0";

// Pixels of one panel, key below it included. Wide enough for a dozen bars
// or labelled points, small enough for two side by side on a laptop screen.
constexpr int kPanelWidthPx = 600;
constexpr int kPanelHeightPx = 450;
constexpr int kTitleHeightPx = 40;

const char* Colour(size_t i) { return kPalette[i % (sizeof kPalette / sizeof kPalette[0])]; }

// Enough digits that a point lands where its value says, few enough to read.
std::string Num(double v) { return fmt::format("{:.9g}", v); }

// An axis's span: from, to.
struct Axis {
  double from = 0, to = 1;
  std::string Gnuplot() const { return fmt::format("[{}:{}]", Num(from), Num(to)); }
  double Clamp(double v) const { return std::min(std::max(v, from), to); }
};

struct Range {
  double lo = 0, hi = 0;
  bool empty = true;
  void Add(double v) {
    if (!std::isfinite(v)) return;
    if (empty) {
      lo = hi = v;
      empty = false;
    } else {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  // `below` and `above` are fractions of the span added on each side (room
  // for labels right of and above the points); never below zero for
  // quantities that cannot be negative.
  Axis Padded(double below, double above) const {
    double span = hi - lo;
    if (!(span > 0)) span = std::max(std::abs(hi) * 0.2, 1e-3);
    Axis a;
    a.from = lo >= 0 ? std::max(0.0, lo - below * span) : lo - below * span;
    a.to = hi + above * span;
    return a;
  }
};

// Where a point's label goes. gnuplot places labels where it is told and
// never moves them apart, so points that crowd together would print their
// cuts over each other: each label takes, of a few places around its point,
// the one that overlaps the labels placed before it and the points least.
// Pixel sizes are estimates (gnuplot computes the real margins), good enough
// to pull labels apart.
struct LabelRequest {
  double x = 0, y = 0;  // The point, in data units.
  std::string text;
  std::string colour;  // "#RRGGBB".
};

struct PlacedLabel {
  double x = 0, y = 0;  // The label's anchor, in data units.
  bool right_aligned = false;
  std::string text, colour;
};

struct PanelPixels {
  Axis x, y;
  double width_px = 0, height_px = 0;  // Of the plotting area inside the axes.
};

std::vector<PlacedLabel> PlaceLabels(const std::vector<LabelRequest>& labels,
                                     const PanelPixels& panel) {
  struct Box {
    double x0, y0, x1, y1;
  };
  auto overlap = [](const Box& a, const Box& b) {
    const double w = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
    const double h = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0.0;
  };
  auto px = [&](double x) {
    return (x - panel.x.from) / (panel.x.to - panel.x.from) * panel.width_px;
  };
  auto py = [&](double y) {
    return (y - panel.y.from) / (panel.y.to - panel.y.from) * panel.height_px;
  };
  constexpr double kCharWidthPx = 6.5, kHeightPx = 12, kGapPx = 5, kMarkerPx = 5;
  std::vector<Box> taken;
  for (const LabelRequest& l : labels)
    taken.push_back(
        {px(l.x) - kMarkerPx, py(l.y) - kMarkerPx, px(l.x) + kMarkerPx, py(l.y) + kMarkerPx});
  std::vector<PlacedLabel> placed;
  for (const LabelRequest& l : labels) {
    const double x = px(l.x), y = py(l.y);
    // Two pixels of air each side, so that neighbours do not read as one label.
    const double w = kCharWidthPx * static_cast<double>(l.text.size()) + 4;
    // Right and up first: where a reader looks for a point's label.
    struct Candidate {
      double dx, dy;
      bool right_aligned;
    };
    const Candidate candidates[] = {
        {kGapPx, kGapPx, false},
        {kGapPx, -kGapPx - kHeightPx, false},
        {-kGapPx, kGapPx, true},
        {-kGapPx, -kGapPx - kHeightPx, true},
        {kGapPx, kHeightPx + 2 * kGapPx, false},
        {-kGapPx, kHeightPx + 2 * kGapPx, true},
        {kGapPx, -2 * kHeightPx - 2 * kGapPx, false},
        {-kGapPx, -2 * kHeightPx - 2 * kGapPx, true},
    };
    double best_cost = -1;
    Box best_box{};
    Candidate best = candidates[0];
    for (const Candidate& c : candidates) {
      const double x0 = c.right_aligned ? x + c.dx - w : x + c.dx;
      const Box box{x0, y + c.dy, x0 + w, y + c.dy + kHeightPx};
      double cost = 0;
      for (const Box& t : taken) cost += overlap(box, t);
      // Outside the axes a label is cut off or crosses the tics.
      const Box inside{0, 0, panel.width_px, panel.height_px};
      cost += (w * kHeightPx - overlap(box, inside)) * 2;
      if (best_cost < 0 || cost < best_cost - 1e-9) {
        best_cost = cost;
        best_box = box;
        best = c;
      }
    }
    taken.push_back(best_box);
    PlacedLabel p;
    p.right_aligned = best.right_aligned;
    p.x = panel.x.from + (x + best.dx) / panel.width_px * (panel.x.to - panel.x.from);
    p.y = panel.y.from +
          (y + best.dy + kHeightPx / 2) / panel.height_px * (panel.y.to - panel.y.from);
    p.text = l.text;
    p.colour = l.colour;
    placed.push_back(std::move(p));
  }
  return placed;
}

struct Grid {
  int rows = 1, cols = 1;
};

Grid GridFor(int panels, int panel_width_px) {
  Grid g;
  g.cols = panels <= 1 || panel_width_px > 760 ? 1 : (panels <= 4 ? 2 : 3);
  g.rows = (panels + g.cols - 1) / g.cols;
  return g;
}

// The title's lines: gnuplot never wraps text, so a title wider than its
// figure is broken once, after the last ": " or ", " that lets the first
// line fit (the comma dropped).
std::vector<std::string> TitleLines(const std::string& title, int width_px) {
  constexpr double kTitleCharPx = 8.5;  // DejaVu Sans at 13 pt, on average; an estimate.
  const size_t fits = static_cast<size_t>(std::max(0.0, (width_px - 40) / kTitleCharPx));
  if (title.size() <= fits) return {title};
  size_t at = std::string::npos;
  for (const char* mark : {": ", ", "}) {
    const size_t found = title.rfind(mark, fits);
    if (found != std::string::npos && found > 0 && (at == std::string::npos || found > at))
      at = found;
  }
  if (at == std::string::npos) return {title};
  return {title.substr(0, title[at] == ',' ? at : at + 1), title.substr(at + 2)};
}

// What every figure shares: clean axes, light grid, the key under the panel
// where it never covers a point, fixed side margins so that panels align.
std::string Preamble(const Figure& figure, const Grid& grid) {
  std::string title;
  for (const std::string& line : TitleLines(figure.title, figure.width_px))
    title += (title.empty() ? "" : ".\"\\n\".") + GnuplotString(line);
  return fmt::format(
      "reset\n"
      "set encoding utf8\n"
      "set border 3 lc rgb '#404040'\n"
      "set tics nomirror\n"
      "set grid back lc rgb '#E6E6E6' lw 1 dt solid\n"
      "set key outside below center horizontal samplen 2.5 spacing 1.1 width 1 height 0.8\n"
      "set xlabel offset 0,0.3\n"
      "set lmargin 11\n"
      "set rmargin 4\n"
      "set bars small\n"
      "# A point's tooltip on the page: which run, where it stands, its numbers.\n"
      "ht(id, cuts, where, ms, ips) = sprintf(\"run #%d, cuts %s: %s\\n%.3f ms, %.2f img/s\", "
      "id, cuts, where, ms, ips)\n"
      "set multiplot layout {},{} title {} font ',13'\n",
      grid.rows, grid.cols, title);
}

// REQUIRES: f->title is set (a long one takes two lines).
void SetSize(Figure* f, const Grid& grid, int panel_width_px) {
  f->width_px = grid.cols * panel_width_px;
  const size_t title_lines = TitleLines(f->title, f->width_px).size();
  f->height_px =
      grid.rows * kPanelHeightPx + kTitleHeightPx + static_cast<int>(title_lines - 1) * 18;
}

std::string LatencyAxis(LatencyStat stat) {
  return fmt::format("latency, {} (ms)", LatencyStatName(stat));
}

// The axes of a latency-throughput figure: one scale for every panel, over
// the drawable points of `groups` (set into *x, *y), as gnuplot commands.
// Intervals are cut at the axes: with two or three repeats they can be wider
// than the spread of all the points, and would squeeze the points into a
// corner.
std::string LatencyThroughputAxes(const std::vector<RunGroup>& groups, LatencyStat stat, Axis* x,
                                  Axis* y) {
  Range xr, yr;
  for (const RunGroup& g : groups) {
    for (const ParetoResult& p : g.ranked) {
      if (!IsPlottable(p.point)) continue;
      xr.Add(p.point.latency_ms);
      yr.Add(p.point.throughput_ips);
    }
  }
  *x = xr.Padded(0.08, 0.16);
  *y = yr.Padded(0.1, 0.12);
  return fmt::format(
      "set xlabel {}\nset ylabel 'throughput (images/s)'\nset xrange {}\nset yrange {}\n",
      GnuplotString(LatencyAxis(stat)), x->Gnuplot(), y->Gnuplot());
}

// Runs of `model` grouped by backend and network, each with at least one run
// that can be drawn.
std::vector<RunGroup> DrawableGroups(const std::vector<RunRecord>& runs, const std::string& model,
                                     LatencyStat stat) {
  std::vector<RunGroup> kept;
  for (RunGroup& g : GroupRuns(runs, stat)) {
    if (g.model != model) continue;
    const bool any = std::any_of(g.ranked.begin(), g.ranked.end(),
                                 [](const ParetoResult& p) { return IsPlottable(p.point); });
    if (any) kept.push_back(std::move(g));
  }
  return kept;
}

const RunRecord& RunOf(const RunGroup& g, int64_t id) {
  for (const RunRecord* r : g.runs) {
    if (r->id == id) return *r;
  }
  return *g.runs.front();  // Unreachable: ranked points come from g.runs.
}

std::string WhereText(const ParetoResult& p) {
  if (p.on_front) return p.knee ? "on the front, knee" : "on the front";
  if (p.duplicate) return fmt::format("duplicate of #{}", p.duplicate_of);
  return fmt::format("dominated by {} run{}", p.dominated_by, p.dominated_by == 1 ? "" : "s");
}

// A row of a points block: latency, throughput, run id, cuts, where it stands.
// The label and the place reach the SVG inside a JavaScript string in an
// attribute (the hypertext): quotes and backslashes are dropped on the way.
std::string PointRow(const ParetoPoint& p, const std::string& where) {
  auto hypertext = [](const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c != '\'' && c != '"' && c != '\\') out += c;
    }
    return out;
  };
  return fmt::format("{} {} {} {} {}\n", Num(p.latency_ms), Num(p.throughput_ips), p.run_id,
                     GnuplotDataField(hypertext(p.label)), GnuplotDataField(hypertext(where)));
}

std::string PointRow(const ParetoResult& p) { return PointRow(p.point, WhereText(p)); }

// `text` safe in a gnuplot comment: a line break would end the comment and
// a trailing backslash would continue it onto the next command.
std::string CommentText(std::string_view text) {
  std::string out;
  for (char c : text) {
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c == '\\' ? '/' : c;
  }
  return out;
}

std::string Block(const std::string& name, const std::string& comment, const std::string& rows) {
  return fmt::format("# {}\n{} << EOD\n{}EOD\n", CommentText(comment), name, rows);
}

// Joins plot clauses into one `plot` command.
std::string PlotCommand(const std::vector<std::string>& clauses) {
  std::string out = "plot ";
  for (size_t i = 0; i < clauses.size(); ++i) out += (i ? ", \\\n     " : "") + clauses[i];
  return out + "\n";
}

constexpr const char* kHypertext = "(ht($3, strcol(4), strcol(5), $1, $2))";

std::string PanelTitle(const RunGroup& g) {
  return GnuplotString(fmt::format("backend {}, network {}", g.backend, g.net));
}

// Label blocks `<name>_l` (left-aligned) and `<name>_r`, and the clauses
// that print them.
void AddLabels(const std::string& name, const std::string& what,
               const std::vector<PlacedLabel>& labels, const char* font, Figure* f,
               std::vector<std::string>* clauses) {
  for (bool right : {false, true}) {
    std::string rows;
    for (const PlacedLabel& l : labels) {
      if (l.right_aligned != right) continue;
      rows += fmt::format("{} {} {} {}\n", Num(l.x), Num(l.y), GnuplotDataField(l.text),
                          std::stoul(l.colour.substr(1), nullptr, 16));
    }
    if (rows.empty()) continue;
    const std::string block = name + (right ? "_r" : "_l");
    f->data += Block(block, what + ": labels; x y text rgb", rows);
    clauses->push_back(
        fmt::format("{} using 1:2:3:4 with labels {} font {} tc rgb variable notitle", block,
                    right ? "right" : "left", font));
  }
}

// The plotting area of a panel of a latency-throughput figure, less the
// margins, tics, title and key gnuplot draws around it (estimates).
PanelPixels ScatterPixels(const Axis& x, const Axis& y) {
  PanelPixels p;
  p.x = x;
  p.y = y;
  p.width_px = kPanelWidthPx - 110;
  p.height_px = kPanelHeightPx - 165;
  return p;
}

std::optional<Figure> FrontFigure(const std::vector<RunRecord>& runs, const std::string& model,
                                  LatencyStat stat) {
  const std::vector<RunGroup> groups = DrawableGroups(runs, model, stat);
  if (groups.empty()) return std::nullopt;
  Figure f;
  f.kind = FigureKind::kFront;
  f.model = model;
  f.title =
      fmt::format("{}: latency against throughput ({} latency)", model, LatencyStatName(stat));
  f.panels = static_cast<int>(groups.size());
  const Grid grid = GridFor(f.panels, kPanelWidthPx);
  SetSize(&f, grid, kPanelWidthPx);

  Axis x, y;
  f.commands = Preamble(f, grid) + LatencyThroughputAxes(groups, stat, &x, &y);

  for (size_t i = 0; i < groups.size(); ++i) {
    const RunGroup& g = groups[i];
    std::string front, dominated, knee, intervals;
    std::vector<LabelRequest> labels;
    for (const ParetoResult& p : g.ranked) {
      if (!IsPlottable(p.point)) continue;
      (p.on_front ? front : dominated) += PointRow(p);
      if (p.knee) knee += PointRow(p);
      // Duplicates sit on their front point, which is labelled already.
      if (!p.duplicate) {
        labels.push_back({p.point.latency_ms, p.point.throughput_ips, p.point.label,
                          p.on_front ? "#1A1A1A" : "#6E6E6E"});
      }
      const RunRecord& r = RunOf(g, p.point.run_id);
      const Estimate& l = LatencyEstimate(r, stat);
      const Estimate& t = r.throughput_ips;
      if ((l.ci_low && l.ci_high) || (t.ci_low && t.ci_high)) {
        intervals +=
            fmt::format("{} {} {} {} {} {}\n", Num(p.point.latency_ms), Num(p.point.throughput_ips),
                        Num(x.Clamp(l.ci_low.value_or(p.point.latency_ms))),
                        Num(x.Clamp(l.ci_high.value_or(p.point.latency_ms))),
                        Num(y.Clamp(t.ci_low.value_or(p.point.throughput_ips))),
                        Num(y.Clamp(t.ci_high.value_or(p.point.throughput_ips))));
      }
    }
    const std::string n = std::to_string(i + 1);
    const std::string panel = fmt::format("{}, backend {}, network {}", model, g.backend, g.net);
    f.data += Block("$front_" + n,
                    panel +
                        ": the Pareto front by latency; latency_ms throughput_ips run_id cuts "
                        "where",
                    front);
    if (!dominated.empty())
      f.data += Block("$dominated_" + n, panel + ": runs off the front, same columns", dominated);
    if (!knee.empty()) f.data += Block("$knee_" + n, panel + ": the knee", knee);
    if (!intervals.empty()) {
      f.data += Block("$ci_" + n,
                      panel +
                          ": 95% intervals, cut at the axes; latency throughput latency_low "
                          "latency_high throughput_low throughput_high",
                      intervals);
    }

    std::vector<std::string> clauses;
    if (!intervals.empty()) {
      clauses.push_back(fmt::format(
          "$ci_{} using 1:2:3:4:5:6 with xyerrorbars pt 7 ps 0 lw 1 lc rgb '{}' title '95% CI'", n,
          kIntervalColour));
    }
    clauses.push_back(
        fmt::format("$front_{} using 1:2 with lines lw 2 lc rgb '{}' notitle", n, kFrontColour));
    clauses.push_back(fmt::format(
        "keyentry with linespoints pt 7 ps 1.3*ps_scale lw 2 lc rgb '{}' title 'Pareto front'",
        kFrontColour));
    if (!dominated.empty()) {
      clauses.push_back(
          fmt::format("$dominated_{} using 1:2:{} with labels hypertext point pt 6 ps 1.3*ps_scale "
                      "lw 1.5 lc rgb '{}' "
                      "notitle",
                      n, kHypertext, kDominatedColour));
      clauses.push_back(fmt::format(
          "keyentry with points pt 6 ps 1.3*ps_scale lw 1.5 lc rgb '{}' title 'dominated'",
          kDominatedColour));
    }
    clauses.push_back(
        fmt::format("$front_{} using 1:2:{} with labels hypertext point pt 7 ps 1.3*ps_scale lc "
                    "rgb '{}' notitle",
                    n, kHypertext, kFrontColour));
    if (!knee.empty()) {
      clauses.push_back(fmt::format(
          "$knee_{} using 1:2 with points pt 6 ps 3.2*ps_scale lw 2.5 lc rgb '{}' title 'knee'", n,
          kKneeColour));
    }
    // Every point labelled with its cuts.
    AddLabels("$labels_" + n, panel, PlaceLabels(labels, ScatterPixels(x, y)), "small_font", &f,
              &clauses);
    f.commands += fmt::format("set title {}\n", PanelTitle(g));
    f.commands += PlotCommand(clauses);
  }
  f.commands += "unset multiplot\n";
  return f;
}

// The time of one batch along the pipeline, in the order it is spent.
enum class Part { kCompute, kTransfer, kQueue };

struct Segment {
  Part part;
  double ms;
};

// Stage 1's compute, hop 1's transfer, stage 2's queueing, stage 2's
// compute, ... (docs/report.md, "Where the time goes"). Stage 1's queueing is
// left out: latency starts when stage 1 starts computing.
std::vector<Segment> PathOf(const RunRecord& r) {
  std::vector<Segment> path;
  for (size_t s = 0; s < r.stages.size(); ++s) {
    if (s > 0) {
      const double hop_queue = s - 1 < r.hops.size() ? r.hops[s - 1].queue_ms_mean : 0;
      path.push_back({Part::kQueue, r.stages[s].queue_ms_mean + hop_queue});
    }
    // A GPU stage's compute_ms is its kernels alone; on a batch's path the
    // copy back to the host follows them (its copy to the device is in the
    // queue time, between receiving and computing).
    path.push_back(
        {Part::kCompute, r.stages[s].compute_ms_mean + r.stages[s].copy_out_ms_mean.value_or(0)});
    if (s + 1 < r.stages.size()) {
      // Runs stored before the per-hop breakdown (schema 1) have only the
      // sender's time in its send call.
      const double transfer = s < r.hops.size()
                                  ? std::max(0.0, r.hops[s].hop_ms_mean - r.hops[s].queue_ms_mean)
                                  : r.stages[s].send_ms_mean;
      path.push_back({Part::kTransfer, transfer});
    }
  }
  return path;
}

// Runs of a group that can be drawn, by cuts then run id.
std::vector<const RunRecord*> BarsOf(const RunGroup& g) {
  std::vector<const RunRecord*> bars;
  for (const ParetoResult& p : g.ranked) {
    if (IsPlottable(p.point)) bars.push_back(&RunOf(g, p.point.run_id));
  }
  std::sort(bars.begin(), bars.end(), [](const RunRecord* a, const RunRecord* b) {
    // Two-stage pipelines first, then three-stage ones, ...: a reader compares
    // cuts of the same depth.
    return std::make_tuple(a->config.cuts.size(), std::cref(a->config.cuts), a->id) <
           std::make_tuple(b->config.cuts.size(), std::cref(b->config.cuts), b->id);
  });
  return bars;
}

// x labels: the cuts, with the run id where a panel has one cut twice.
std::vector<std::string> BarLabels(const std::vector<const RunRecord*>& bars) {
  std::map<std::string, int> seen;
  for (const RunRecord* r : bars) ++seen[CutLabel(*r)];
  std::vector<std::string> labels;
  for (const RunRecord* r : bars) {
    const std::string cut = CutLabel(*r);
    labels.push_back(seen[cut] > 1 ? fmt::format("{} #{}", cut, r->id) : cut);
  }
  return labels;
}

int BarPanelWidth(size_t bars) {
  return std::max(kPanelWidthPx, static_cast<int>(bars) * 38 + 160);
}

std::string BarXtics(size_t bars) {
  return bars > 10 ? "set xtics rotate by -45 scale 0\n" : "set xtics scale 0\n";
}

std::optional<Figure> BreakdownFigure(const std::vector<RunRecord>& runs, const std::string& model,
                                      LatencyStat stat) {
  const std::vector<RunGroup> groups = DrawableGroups(runs, model, stat);
  if (groups.empty()) return std::nullopt;
  Figure f;
  f.kind = FigureKind::kBreakdown;
  f.model = model;
  f.title = fmt::format("{}: where a batch's time goes, per cut", model);
  f.panels = static_cast<int>(groups.size());
  size_t most_bars = 0;
  double top_ms = 0;
  for (const RunGroup& g : groups) {
    const auto bars = BarsOf(g);
    most_bars = std::max(most_bars, bars.size());
    for (const RunRecord* r : bars) {
      double total = 0;
      for (const Segment& s : PathOf(*r)) total += s.ms;
      top_ms = std::max({top_ms, total, r->latency_ms_mean.mean});
    }
  }
  const int panel_width = BarPanelWidth(most_bars);
  const Grid grid = GridFor(f.panels, panel_width);
  SetSize(&f, grid, panel_width);
  f.commands = Preamble(f, grid);
  f.commands += fmt::format(
      "set style data histograms\n"
      "set style histogram rowstacked\n"
      "set key maxrows 2\n"
      "set style fill solid 1.0 border lc rgb '#FFFFFF'\n"
      "set boxwidth 0.72 relative\n"
      "{}"
      "set xlabel 'cuts (blocks where stages begin)'\n"
      "set ylabel 'time per batch (ms)'\n"
      "set yrange [0:{}]\n",
      BarXtics(most_bars), Num(top_ms > 0 ? top_ms * 1.1 : 1));

  for (size_t i = 0; i < groups.size(); ++i) {
    const RunGroup& g = groups[i];
    const auto bars = BarsOf(g);
    const auto labels = BarLabels(bars);
    // Columns follow the longest pipeline's path; shorter runs end in zeros.
    std::vector<Part> columns;
    for (const RunRecord* r : bars) {
      const auto path = PathOf(*r);
      if (path.size() > columns.size()) {
        columns.clear();
        for (const Segment& s : path) columns.push_back(s.part);
      }
    }
    std::string rows;
    for (size_t b = 0; b < bars.size(); ++b) {
      const auto path = PathOf(*bars[b]);
      rows += GnuplotDataField(labels[b]);
      // A shorter path's last compute (the sink) sits in the longest one's
      // last column, so that compute stays at the top of every bar.
      std::vector<double> values(columns.size(), 0.0);
      for (size_t c = 0; c < path.size(); ++c) {
        const size_t at = c + 1 == path.size() ? columns.size() - 1 : c;
        values[at] += path[c].ms;
      }
      for (double v : values) rows += " " + Num(v);
      rows += fmt::format(" {} {}\n", Num(bars[b]->latency_ms_mean.mean), bars[b]->id);
    }
    const std::string n = std::to_string(i + 1);
    std::string header = "cuts";
    for (Part p : columns)
      header += p == Part::kCompute    ? " compute_ms"
                : p == Part::kTransfer ? " transfer_ms"
                                       : " queue_ms";
    f.data += Block("$breakdown_" + n,
                    fmt::format("{}, backend {}, network {}: {} latency_ms_mean run_id", model,
                                g.backend, g.net, header),
                    rows);
    std::vector<std::string> clauses;
    std::set<Part> titled;
    for (size_t c = 0; c < columns.size(); ++c) {
      const Part p = columns[c];
      const char* colour = p == Part::kCompute    ? kComputeColour
                           : p == Part::kTransfer ? kTransferColour
                                                  : kQueueColour;
      const char* name = p == Part::kCompute    ? "stage compute"
                         : p == Part::kTransfer ? "transfer (hop)"
                                                : "queueing";
      const bool first = titled.insert(p).second;
      clauses.push_back(fmt::format("$breakdown_{} using {}{} lc rgb '{}' {}", n, c + 2,
                                    c == 0 ? ":xtic(1)" : "", colour,
                                    first ? fmt::format("title '{}'", name) : "notitle"));
    }
    clauses.push_back(fmt::format(
        "$breakdown_{} using 0:{} with points pt 13 ps 1.5*ps_scale lc rgb '#000000' title "
        "'measured latency (mean)'",
        n, columns.size() + 2));
    f.commands += fmt::format("set title {}\nset xrange [-0.7:{}]\n", PanelTitle(g),
                              Num(static_cast<double>(bars.size()) - 0.3));
    f.commands += PlotCommand(clauses);
  }
  f.commands += "unset multiplot\n";
  return f;
}

struct ByteUnit {
  const char* name;
  double bytes;
};

// The largest binary unit the biggest value reaches, so that bars read in
// small numbers.
ByteUnit UnitFor(double max_bytes) {
  if (max_bytes >= 1024.0 * 1024 * 1024) return {"GiB", 1024.0 * 1024 * 1024};
  if (max_bytes >= 1024.0 * 1024) return {"MiB", 1024.0 * 1024};
  if (max_bytes >= 1024.0) return {"KiB", 1024.0};
  return {"bytes", 1.0};
}

std::string FormatBytes(double bytes, const ByteUnit& unit) {
  return fmt::format("{:.3g} {}", bytes / unit.bytes, unit.name);
}

std::optional<Figure> BytesFigure(const std::vector<RunRecord>& runs, const std::string& model) {
  // Bytes at a cut depend on the model, the cut, the batch and the input
  // size, not on the other cuts, the backend or the network: a panel per
  // batch and input size, one bar per block where some run cut.
  std::map<std::pair<int64_t, int>, std::map<int, double>> panels;
  for (const RunRecord& r : runs) {
    if (r.config.model != model || r.status != "ok") continue;
    for (size_t h = 0; h < r.config.cuts.size(); ++h) {
      double bytes = -1;
      if (h < r.hops.size()) {
        bytes = r.hops[h].bytes_per_frame;
      } else if (h < r.stages.size()) {
        bytes = r.stages[h].bytes_out_per_batch;
      }
      if (bytes < 0 || !std::isfinite(bytes)) continue;
      // Runs come in id order: the latest measurement wins.
      panels[{r.config.batch_size, r.config.input_side_px}][r.config.cuts[h]] = bytes;
    }
  }
  if (panels.empty()) return std::nullopt;
  Figure f;
  f.kind = FigureKind::kBytes;
  f.model = model;
  f.title = fmt::format("{}: bytes crossing each cut, per batch", model);
  f.panels = static_cast<int>(panels.size());
  double most = 0;
  size_t most_bars = 0;
  for (const auto& [key, bars] : panels) {
    most_bars = std::max(most_bars, bars.size());
    for (const auto& [cut, bytes] : bars) most = std::max(most, bytes);
  }
  const ByteUnit unit = UnitFor(most);
  const int panel_width = BarPanelWidth(most_bars);
  const Grid grid = GridFor(f.panels, panel_width);
  SetSize(&f, grid, panel_width);
  f.commands = Preamble(f, grid);
  f.commands += fmt::format(
      "set style fill solid 0.85 noborder\n"
      "set boxwidth 0.7\n"
      "{}"
      "set xlabel 'cut (block where the next stage begins)'\n"
      "set ylabel 'per batch ({})'\n"
      "set yrange [0:{}]\n"
      "unset key\n",
      BarXtics(most_bars), unit.name, Num(most > 0 ? most / unit.bytes * 1.15 : 1));
  int i = 0;
  for (const auto& [key, bars] : panels) {
    const std::string n = std::to_string(++i);
    std::string rows;
    for (const auto& [cut, bytes] : bars) {
      rows += fmt::format("{} {} {} {}\n", GnuplotDataField(std::to_string(cut)),
                          Num(bytes / unit.bytes), Num(bytes),
                          GnuplotDataField(FormatBytes(bytes, unit)));
    }
    f.data += Block(
        "$bytes_" + n,
        fmt::format("{}, batch {}: cut value_{} bytes_per_batch text", model, key.first, unit.name),
        rows);
    const std::string title = key.second > 0
                                  ? fmt::format("batch of {}, input {} px", key.first, key.second)
                                  : fmt::format("batch of {}", key.first);
    f.commands += fmt::format("set title {}\nset xrange [-0.7:{}]\n", GnuplotString(title),
                              Num(static_cast<double>(bars.size()) - 0.3));
    f.commands += PlotCommand({
        fmt::format("$bytes_{} using 0:2:xtic(1) with boxes lc rgb '{}' notitle", n, kFrontColour),
        fmt::format("$bytes_{} using 0:2:4 with labels offset char 0,0.8 font small_font notitle",
                    n),
    });
  }
  f.commands += "unset multiplot\n";
  return f;
}

std::optional<Figure> MovesFigure(const std::vector<RunRecord>& runs, const std::string& model,
                                  LatencyStat stat) {
  const std::vector<RunGroup> groups = DrawableGroups(runs, model, stat);
  std::vector<std::string> backends, nets;
  for (const RunGroup& g : groups) {
    if (std::find(backends.begin(), backends.end(), g.backend) == backends.end())
      backends.push_back(g.backend);
    if (std::find(nets.begin(), nets.end(), g.net) == nets.end()) nets.push_back(g.net);
  }
  if (backends.size() < 2 && nets.size() < 2) return std::nullopt;

  // A panel holds several groups, each a series in its own colour; a
  // condition (backend) keeps its colour in every panel.
  struct Panel {
    std::string title;
    std::vector<std::pair<const RunGroup*, size_t>> series;  // Group, colour index.
    std::vector<std::string> names;
  };
  std::vector<Panel> panels;
  auto index_of = [](const std::vector<std::string>& v, const std::string& s) {
    return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
  };
  if (nets.size() > 1) {
    for (const std::string& b : backends) {
      Panel p;
      p.title = fmt::format("backend {}: the front under each network condition", b);
      for (const RunGroup& g : groups) {
        if (g.backend != b) continue;
        p.series.push_back({&g, index_of(nets, g.net)});
        p.names.push_back("network " + g.net);
      }
      panels.push_back(std::move(p));
    }
  }
  if (backends.size() > 1) {
    for (const std::string& net : nets) {
      Panel p;
      p.title = fmt::format("network {}: the front of each backend", net);
      for (const RunGroup& g : groups) {
        if (g.net != net) continue;
        p.series.push_back({&g, index_of(backends, g.backend)});
        p.names.push_back("backend " + g.backend);
      }
      panels.push_back(std::move(p));
    }
  }

  Figure f;
  f.kind = FigureKind::kMoves;
  f.model = model;
  f.title = fmt::format("{}: how the front moves across {} ({} latency)", model,
                        nets.size() < 2       ? "backends"
                        : backends.size() < 2 ? "networks"
                                              : "networks and backends",
                        LatencyStatName(stat));
  f.panels = static_cast<int>(panels.size());
  const Grid grid = GridFor(f.panels, kPanelWidthPx);
  SetSize(&f, grid, kPanelWidthPx);
  Axis x, y;
  f.commands = Preamble(f, grid) + LatencyThroughputAxes(groups, stat, &x, &y);
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const Panel& panel = panels[pi];
    std::vector<std::string> clauses;
    std::vector<LabelRequest> labels;
    for (size_t si = 0; si < panel.series.size(); ++si) {
      const auto& [g, colour_index] = panel.series[si];
      const char* c = Colour(colour_index);
      std::string front, rest;
      for (const ParetoResult& p : g->ranked) {
        if (!IsPlottable(p.point)) continue;
        (p.on_front ? front : rest) += PointRow(p);
        // Only the fronts' points are labelled: with every condition's
        // dominated runs too, the labels would hide the fronts.
        if (p.on_front)
          labels.push_back({p.point.latency_ms, p.point.throughput_ips, p.point.label, c});
      }
      const std::string name = fmt::format("$moves_{}_{}", pi + 1, si + 1);
      const std::string what = fmt::format("{}, backend {}, network {}", model, g->backend, g->net);
      f.data += Block(name + "_front",
                      what + ": the front; latency_ms throughput_ips run_id cuts where", front);
      if (!rest.empty()) f.data += Block(name + "_rest", what + ": off the front", rest);
      clauses.push_back(
          fmt::format("{}_front using 1:2 with lines lw 2 lc rgb '{}' notitle", name, c));
      clauses.push_back(
          fmt::format("keyentry with linespoints pt 7 ps 1.1*ps_scale lw 2 lc rgb '{}' title {}", c,
                      GnuplotString(panel.names[si])));
      clauses.push_back(
          fmt::format("{}_front using 1:2:{} with labels hypertext point pt 7 ps 1.1*ps_scale lc "
                      "rgb '{}' notitle",
                      name, kHypertext, c));
      if (!rest.empty()) {
        clauses.push_back(
            fmt::format("{}_rest using 1:2:{} with labels hypertext point pt 6 ps 0.9*ps_scale lc "
                        "rgb '{}' notitle",
                        name, kHypertext, c));
      }
    }
    AddLabels(fmt::format("$moves_{}_labels", pi + 1), fmt::format("{}, {}", model, panel.title),
              PlaceLabels(labels, ScatterPixels(x, y)), "tiny_font", &f, &clauses);
    f.commands += fmt::format("set title {}\n", GnuplotString(panel.title));
    f.commands += PlotCommand(clauses);
  }
  f.commands += "unset multiplot\n";
  return f;
}

// A role's colour and point types (filled for the measured point, hollow
// for the predicted one): shape as well as colour, so that roles stay apart
// in greyscale print.
struct RoleStyle {
  const char* role;
  const char* colour;
  int filled_pt, hollow_pt;
};
constexpr RoleStyle kRoleStyles[] = {
    {"front", "#0072B2", 7, 6},     // Circles.
    {"near", "#CC79A7", 11, 10},    // Inverted triangles.
    {"control", "#D55E00", 9, 8},   // Triangles.
    {"validate", "#009E73", 5, 4},  // Squares.
    {"other", "#6E6E6E", 13, 12},   // Diamonds: a role this report does not know.
};
constexpr const char* kPredictionFrontColour = "#333333";

const RoleStyle& StyleOf(const std::string& role) {
  for (const RoleStyle& s : kRoleStyles) {
    if (role == s.role) return s;
  }
  return kRoleStyles[std::size(kRoleStyles) - 1];
}

// The front's points by latency, for a step line: from each point the line
// runs right at its throughput, then up to the next.
std::string StepRows(const PredictionGroup& g, bool predicted) {
  std::vector<ParetoPoint> front;
  for (const PredictedRun& p : g.runs) {
    if (predicted ? p.on_predicted_front : p.on_measured_front)
      front.push_back(predicted ? p.predicted : p.measured);
  }
  std::sort(front.begin(), front.end(), [](const ParetoPoint& a, const ParetoPoint& b) {
    return std::make_tuple(a.latency_ms, -a.throughput_ips, a.run_id) <
           std::make_tuple(b.latency_ms, -b.throughput_ips, b.run_id);
  });
  std::string rows;
  for (const ParetoPoint& p : front)
    rows += fmt::format("{} {} {}\n", Num(p.latency_ms), Num(p.throughput_ips), p.run_id);
  return rows;
}

std::optional<Figure> PredictionFigure(const std::vector<RunRecord>& runs,
                                       const std::string& model) {
  const std::vector<PredictionGroup> groups = GroupPredictions(runs, model);
  if (groups.empty()) return std::nullopt;
  const PredictionErrors errors = MeanAbsolutePercentageErrors(groups);
  Figure f;
  f.kind = FigureKind::kPrediction;
  f.model = model;
  f.title = fmt::format(
      "{}: predicted (hollow) vs measured (filled), latency MAPE {:.1f}%, throughput MAPE {:.1f}%",
      model, errors.latency_mape_pct, errors.throughput_mape_pct);
  f.panels = static_cast<int>(groups.size());
  const Grid grid = GridFor(f.panels, kPanelWidthPx);
  SetSize(&f, grid, kPanelWidthPx);

  // One scale over both point sets; intervals are cut at it, as in `front`.
  Range xr, yr;
  for (const PredictionGroup& g : groups) {
    for (const PredictedRun& p : g.runs) {
      for (const ParetoPoint* point : {&p.predicted, &p.measured}) {
        xr.Add(point->latency_ms);
        yr.Add(point->throughput_ips);
      }
    }
  }
  const Axis x = xr.Padded(0.08, 0.16), y = yr.Padded(0.1, 0.12);
  f.commands = Preamble(f, grid);
  f.commands += fmt::format(
      "set xlabel {}\nset ylabel 'throughput (images/s)'\nset xrange {}\nset yrange {}\n",
      GnuplotString(LatencyAxis(LatencyStat::kMean)), x.Gnuplot(), y.Gnuplot());

  for (size_t i = 0; i < groups.size(); ++i) {
    const PredictionGroup& g = groups[i];
    const std::string n = std::to_string(i + 1);
    const std::string panel = fmt::format("{}, backend {}, network {}", model, g.backend, g.net);
    std::map<std::string, std::string> measured, predicted;  // Rows by role style.
    std::string links, intervals;
    std::vector<LabelRequest> labels;
    for (const PredictedRun& p : g.runs) {
      const RoleStyle& style = StyleOf(p.role);
      const std::string role = p.role.empty() ? "no role" : "role " + p.role;
      measured[style.role] +=
          PointRow(p.measured, fmt::format("measured, {}, {} the measured front", role,
                                           p.on_measured_front ? "on" : "off"));
      predicted[style.role] +=
          PointRow(p.predicted, fmt::format("predicted, {}, {} the predicted front", role,
                                            p.on_predicted_front ? "on" : "off"));
      links += fmt::format("{} {} {} {} {}\n", Num(p.predicted.latency_ms),
                           Num(p.predicted.throughput_ips),
                           Num(p.measured.latency_ms - p.predicted.latency_ms),
                           Num(p.measured.throughput_ips - p.predicted.throughput_ips),
                           std::stoul(std::string(style.colour).substr(1), nullptr, 16));
      labels.push_back(
          {p.measured.latency_ms, p.measured.throughput_ips, p.measured.label, "#1A1A1A"});
      const Estimate& l = p.run->latency_ms_mean;
      const Estimate& t = p.run->throughput_ips;
      if ((l.ci_low && l.ci_high) || (t.ci_low && t.ci_high)) {
        const ParetoPoint& m = p.measured;
        intervals += fmt::format("{} {} {} {} {} {}\n", Num(m.latency_ms), Num(m.throughput_ips),
                                 Num(x.Clamp(l.ci_low.value_or(m.latency_ms))),
                                 Num(x.Clamp(l.ci_high.value_or(m.latency_ms))),
                                 Num(y.Clamp(t.ci_low.value_or(m.throughput_ips))),
                                 Num(y.Clamp(t.ci_high.value_or(m.throughput_ips))));
      }
    }
    const std::string columns = "latency_ms throughput_ips run_id cuts where";
    for (const RoleStyle& s : kRoleStyles) {
      if (!measured.count(s.role)) continue;
      f.data +=
          Block(fmt::format("$measured_{}_{}", n, s.role),
                fmt::format("{}: measured, role {}; {}", panel, s.role, columns), measured[s.role]);
      f.data += Block(fmt::format("$predicted_{}_{}", n, s.role),
                      fmt::format("{}: predicted, role {}; {}", panel, s.role, columns),
                      predicted[s.role]);
    }
    f.data += Block("$links_" + n,
                    panel + ": predicted to measured; latency throughput dlatency dthroughput rgb",
                    links);
    f.data += Block("$pareto_predicted_" + n,
                    panel + ": the predicted front by latency; latency_ms throughput_ips run_id",
                    StepRows(g, true));
    f.data += Block("$pareto_measured_" + n,
                    panel + ": the measured front by latency; latency_ms throughput_ips run_id",
                    StepRows(g, false));
    if (!intervals.empty()) {
      f.data += Block("$ci_" + n,
                      panel +
                          ": measured 95% intervals, cut at the axes; latency throughput "
                          "latency_low latency_high throughput_low throughput_high",
                      intervals);
    }

    std::vector<std::string> clauses;
    if (!intervals.empty()) {
      clauses.push_back(fmt::format(
          "$ci_{} using 1:2:3:4:5:6 with xyerrorbars pt 7 ps 0 lw 1 lc rgb '{}' title '95% CI'", n,
          kIntervalColour));
    }
    clauses.push_back(fmt::format(
        "$links_{} using 1:2:3:4:5 with vectors nohead lw 1 lc rgb variable notitle", n));
    clauses.push_back(fmt::format(
        "$pareto_predicted_{} using 1:2 with steps lw 1.5 dt 2 lc rgb '{}' title 'predicted front'",
        n, kPredictionFrontColour));
    clauses.push_back(fmt::format(
        "$pareto_measured_{} using 1:2 with steps lw 2 lc rgb '{}' title 'measured front'", n,
        kPredictionFrontColour));
    for (const RoleStyle& s : kRoleStyles) {
      if (!measured.count(s.role)) continue;
      clauses.push_back(
          fmt::format("$predicted_{}_{} using 1:2:{} with labels hypertext point pt {} "
                      "ps 1.3*ps_scale lw 1.5 lc rgb '{}' notitle",
                      n, s.role, kHypertext, s.hollow_pt, s.colour));
      clauses.push_back(
          fmt::format("$measured_{}_{} using 1:2:{} with labels hypertext point pt {} "
                      "ps 1.3*ps_scale lc rgb '{}' notitle",
                      n, s.role, kHypertext, s.filled_pt, s.colour));
      clauses.push_back(fmt::format(
          "keyentry with points pt {} ps 1.3*ps_scale lc rgb '{}' title {}", s.filled_pt, s.colour,
          GnuplotString(std::string(s.role) == "other" ? "other role"
                                                       : fmt::format("role {}", s.role))));
    }
    // The measured points labelled with their cuts; a predicted point is
    // found at the other end of its line.
    AddLabels("$labels_" + n, panel, PlaceLabels(labels, ScatterPixels(x, y)), "small_font", &f,
              &clauses);
    f.commands += fmt::format(
        "set title {}\n", GnuplotString(fmt::format("backend {}, network {}", g.backend, g.net)));
    f.commands += PlotCommand(clauses);
  }
  f.commands += "unset multiplot\n";
  return f;
}

}  // namespace

std::optional<Figure> BuildFigure(FigureKind kind, const std::vector<RunRecord>& runs,
                                  const std::string& model, LatencyStat stat) {
  switch (kind) {
    case FigureKind::kFront:
      return FrontFigure(runs, model, stat);
    case FigureKind::kBreakdown:
      return BreakdownFigure(runs, model, stat);
    case FigureKind::kBytes:
      return BytesFigure(runs, model);
    case FigureKind::kMoves:
      return MovesFigure(runs, model, stat);
    case FigureKind::kPrediction:
      return PredictionFigure(runs, model);
  }
  return std::nullopt;
}

std::string GnuplotScript(const Figure& figure, const std::string& svg_file,
                          const std::string& png_file) {
  std::string script = fmt::format(
      "# {}\n"
      "# Written by paretopipe (docs/report.md); gnuplot redraws it from this directory.\n\n",
      CommentText(figure.title));
  script += figure.data + "\n";
  // DejaVu Sans (fonts-dejavu-core) is on every Debian machine, so a PNG
  // drawn on a Pi looks like one drawn on a CI box; the SVG names it too.
  // The svg terminal draws points larger and text smaller than pngcairo at
  // the same settings: ps_scale and the label fonts even them out.
  if (!svg_file.empty()) {
    script += fmt::format(
        "set terminal svg size {},{} font 'DejaVu Sans,12' background '#FFFFFF' noenhanced\n"
        "ps_scale = 0.7; small_font = ',11'; tiny_font = ',10'\n"
        "set output {}\n{}unset output\n\n",
        figure.width_px, figure.height_px, GnuplotString(svg_file), figure.commands);
  }
  if (!png_file.empty()) {
    script += fmt::format(
        "set terminal pngcairo size {},{} font 'DejaVu Sans,10' background '#FFFFFF' noenhanced\n"
        "ps_scale = 1.0; small_font = ',9'; tiny_font = ',8'\n"
        "set output {}\n{}unset output\n",
        figure.width_px, figure.height_px, GnuplotString(png_file), figure.commands);
  }
  return script;
}

}  // namespace paretopipe
